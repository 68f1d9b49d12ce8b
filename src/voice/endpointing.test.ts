// The endpointing rules on words alone (which endings shorten the wait, which lengthen it, the bounds), then in the
// TurnDetector in virtual time: the wait follows the words heard so far and is asked again as more arrive.
import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';
import {
  BRIEF_MAX_WORDS,
  classifyEnding,
  ENDING_FACTORS,
  endpointingDelay,
  MAX_EXTRA_MS,
  MIN_CONFIDENCE,
  MIN_ENDPOINTING_MS,
} from './endpointing.js';
import { type TurnDecision, TurnDetector } from './turns.js';

const caughtUp = { sttCaughtUp: true, endOfTurn: true };

describe('classifyEnding', () => {
  it.each([
    ['What time do you open on Saturday?', 'question'],
    ['what time do you open on saturday', 'question'],
    ['Can you tell me what time you open', 'question'],
    ['Who am I speaking with?', 'continuation'], // a stranded preposition reads as unfinished: a longer wait, no cut-in
    ['Do you know', 'question'],
    ['My daughter has a fever and a bad cough.', 'complete'],
    ['i would like to book a table for two', 'complete'],
    ['Yes.', 'complete'],
    ['no thanks', 'complete'],
    ['thank you', 'complete'],
    ['yes it is', 'complete'],
    ['yes I do', 'complete'],
    ['can you help me with that', 'question'],
    ['I am in room 12', 'brief'], // not digits: a number said as one; brief: a short statement waits the base time
    ['I will let you know', 'brief'],
    ['what does it look like', 'question'],
    ['I am not feeling well', 'brief'],
  ])('%s -> %s', (text, ending) => expect(classifyEnding(text)).toBe(ending));

  it.each([
    ['My account number is... um', 'filler'],
    ['uh', 'filler'],
    ['I wanted to ask, you know', 'filler'],
    ['it is kind of', 'filler'],
    ['so it is like', 'filler'],
    ['I would like', 'filler'],
    ['Well', 'filler'],
    ['I need to book an appointment and', 'continuation'],
    ['I am calling about', 'continuation'],
    ['can I speak to', 'continuation'],
    ['I want to change the', 'continuation'],
    ['My account number is', 'continuation'],
    ['My account number is...', 'continuation'],
    ['the problem is', 'continuation'],
    ['I think that', 'continuation'],
    ['and then I', 'continuation'],
    ['Sorry,', 'continuation'],
    ['My card ends in', 'continuation'],
    ['I am interested in', 'continuation'],
    ['can I check in', 'question'],
    ['please hold on', 'complete'],
    ['I need', 'continuation'],
  ])('%s -> %s', (text, ending) => expect(classifyEnding(text)).toBe(ending));

  it.each([
    ['my number is four five', 'digits'],
    ['My number is 4 5', 'digits'],
    ['my account number is four', 'digits'],
    ['it is 4572.', 'digits'],
    ['the code is seven seven double three', 'digits'],
    ['my number is for five', 'digits'], // the STT's "for" for "four"
    ['one two three', 'digits'],
    ['my card ends in four', 'digits'],
    ['the one that ends in four', 'digits'],
    ['a table for two', 'brief'], // not digits
    ['for two people at eight', 'brief'],
    ['i would like a table for two people at eight thirty', 'complete'], // a time of day, not dictation
    ['oh', 'neutral'],
  ])('%s -> %s', (text, ending) => expect(classifyEnding(text)).toBe(ending));

  it.each([
    ['Hi.', 'opener'],
    ['Hello, good morning.', 'opener'],
    ['yes hi, I have a quick question', 'opener'],
    ['I have a question.', 'opener'],
    ['Can you help me?', 'opener'],
    ['Hi there. Sorry to bother you.', 'opener'],
    ['Hello?', 'neutral'], // checking the line is up: answered at once
    ['Hi, I have a question about my bill.', 'complete'], // the request is there
    ['Hi. I am calling about my order.', 'complete'],
    ['Can you help me change my seat?', 'question'],
  ])('an opener, with the request still to come: %s -> %s', (text, ending) => expect(classifyEnding(text)).toBe(ending));

  it.each([
    ['My phone says no service.', 'brief'],
    ['My internet is not working.', 'brief'],
    ['My name is uh John Smith.', 'brief'], // fillers are not counted
    ['I need to book an appointment for Tuesday morning.', 'complete'],
    ['No, that is it.', 'complete'], // an answer however short
    ['Yes please.', 'complete'],
    ['That is all, thank you.', 'complete'],
  ])('a statement of at most BRIEF_MAX_WORDS words is brief: %s -> %s', (text, ending) => {
    expect(BRIEF_MAX_WORDS).toBe(6);
    expect(classifyEnding(text)).toBe(ending);
  });

  it.each([
    ['my phone number is five five five two three four eight eight one', 'digits'], // 9
    ['my phone number is five five five two three four eight eight one zero', 'number'], // 10
    ['My phone number is 202 555 0143.', 'number'],
    ['my phone number is one two zero two five five five zero one four', 'digits'], // 10, but a leading 1: 11 due
    ['my phone number is one two zero two five five five zero one four three', 'number'],
    ['my mobile is oh seven seven double oh nine double oh four six one', 'number'], // UK: 11 with its 0, "double" twice
    ['my card number is four five three two one one two two three three four four', 'digits'], // 12 of 16
    ['my card number is four five three two one one two two three three four four five five six six', 'number'],
    ['my card ends in four four two one', 'number'],
    ['my pin is one nine eight', 'digits'],
    ['my pin is one nine eight four', 'number'],
    ['my zip code is nine oh two one oh', 'number'],
    ['I was born in nineteen', 'digits'],
    ['I was born in nineteen eighty', 'digits'], // "eighty" may still get its "five"
    ['I was born in nineteen eighty five', 'number'],
    ['my date of birth is oh three one two one nine eight five', 'number'], // 8
    ['my account number is four five seven two nine one', 'digits'], // a length it does not know: the long wait stays
    ['the code on the card is seven zero four', 'digits'], // a code, not the card's number
    ['the booking code is X J four', 'digits'], // letters dictated in a code
    ['the booking code is XJ4 7K', 'digits'],
    ['I want plan b', 'request'], // a lone letter is a word: not digits
    ['we can come at eight thirty', 'brief'], // a time of day
  ])('a number dictated to its full length for its kind: %s -> %s', (text, ending) => expect(classifyEnding(text)).toBe(ending));

  it.each([
    ['I need a taxi to the airport.', 'request'],
    ['I would like to make a reservation.', 'request'],
    ["I'd like to change my flight", 'request'],
    ['I need to book an appointment.', 'request'],
    ['I need a refill of my prescription.', 'request'],
    ['Hello, good morning. I would like to book a table.', 'request'], // the last sentence counts
    ['We really need a bigger room.', 'request'],
    ['I need to book an appointment for Tuesday morning.', 'complete'], // when: it has its particulars
    ['I would like a table for two.', 'complete'], // how many
    ['I need a taxi at six tomorrow.', 'complete'],
    ['I want to cancel my appointment next week.', 'complete'],
    ['I would like to know if the hotel has a pool.', 'complete'], // an indirect question, answered like one
    ['I want to check whether my order shipped', 'complete'],
    ['My internet is not working.', 'brief'], // a report, not a request
    ['They need a new card.', 'brief'], // someone else's need: a statement
    ['Do you need my address?', 'question'],
  ])('a request with nothing yet of when or how many: %s -> %s', (text, ending) => expect(classifyEnding(text)).toBe(ending));

  it.each([
    ['Is it possible to move my booking to May?', 'question'],
    ['I would like to come in May.', 'complete'],
    ['the appointment I had in may', 'brief'],
    ['I think it may', 'brief'], // "it may": a pronoun before, as with "it is"
    ['the doctor may', 'continuation'],
  ])('"may" after a preposition is the month: %s -> %s', (text, ending) => expect(classifyEnding(text)).toBe(ending));

  it('nothing heard, or a lone word that is no answer, says nothing either way', () => {
    expect(classifyEnding('')).toBe('neutral');
    expect(classifyEnding('Saturday')).toBe('neutral');
  });
});

describe('endpointingDelay', () => {
  it('shortens after a question and a complete sentence, lengthens after a filler, a trailing word or digits', () => {
    expect(endpointingDelay('What time do you open on Saturday?', 700, caughtUp)).toBe(Math.round(700 * ENDING_FACTORS.question));
    expect(endpointingDelay('My daughter has a fever and a bad cough.', 700, caughtUp)).toBe(Math.round(700 * ENDING_FACTORS.complete));
    expect(endpointingDelay('My account number is um', 700, caughtUp)).toBe(1750);
    expect(endpointingDelay('I want to book a flight to', 700, caughtUp)).toBe(1750);
    expect(endpointingDelay('my number is four five', 700, caughtUp)).toBe(1750);
  });

  it('waits the base time on words that say nothing; a little less when the STT says the utterance ended', () => {
    expect(endpointingDelay('Saturday', 700, { sttCaughtUp: true, endOfTurn: false })).toBe(700);
    expect(endpointingDelay('Saturday', 700, { sttCaughtUp: true, endOfTurn: true })).toBe(560);
    expect(endpointingDelay('', 700, { sttCaughtUp: false })).toBe(700);
  });

  it('never shortens before the STT has given the words for all the speech', () => {
    expect(endpointingDelay('What time do you open?', 700, { sttCaughtUp: false, endOfTurn: true })).toBe(700);
    // ...but lengthens at once: stale words that need more still mean more is coming.
    expect(endpointingDelay('My number is', 700, { sttCaughtUp: false })).toBe(1750);
  });

  it('does not shorten on words the STT is unsure of, but still lengthens', () => {
    const complete = 'My daughter has a fever and a bad cough.';
    expect(endpointingDelay(complete, 700, { ...caughtUp, confidence: MIN_CONFIDENCE - 0.01 })).toBe(700);
    expect(endpointingDelay(complete, 700, { ...caughtUp, confidence: MIN_CONFIDENCE })).toBe(245);
    expect(endpointingDelay('my number is four', 700, { ...caughtUp, confidence: 0.1 })).toBe(1750);
  });

  it('waits twice the base after an opener, the base after a brief statement or a complete number, whatever the STT flag', () => {
    expect(endpointingDelay('Hi.', 700, caughtUp)).toBe(1400);
    expect(endpointingDelay('I have a question.', 700, caughtUp)).toBe(1400);
    expect(endpointingDelay('My phone says no service.', 700, caughtUp)).toBe(700);
    expect(endpointingDelay('my pin is one nine eight four', 700, caughtUp)).toBe(700);
    expect(endpointingDelay('my pin is one nine eight', 700, caughtUp)).toBe(1750);
  });

  it('waits longer than the base after a request with nothing of when or how many, whatever the STT flag or confidence', () => {
    expect(ENDING_FACTORS.request).toBeGreaterThan(1);
    const wait = Math.round(700 * ENDING_FACTORS.request);
    expect(endpointingDelay('I need a taxi to the airport.', 700, caughtUp)).toBe(wait);
    expect(endpointingDelay('I need a taxi to the airport.', 700, { sttCaughtUp: false })).toBe(wait);
    expect(endpointingDelay('I need a taxi to the airport.', 700, { ...caughtUp, confidence: 0.1 })).toBe(wait);
    expect(endpointingDelay('I need a taxi to the airport at six.', 700, caughtUp)).toBe(245);
  });

  it('keeps within its bounds whatever the base', () => {
    expect(endpointingDelay('Yes.', 200, caughtUp)).toBe(MIN_ENDPOINTING_MS);
    expect(endpointingDelay('Yes.', 100, caughtUp)).toBe(100); // never longer than a base below the minimum
    expect(endpointingDelay('and', 3000, caughtUp)).toBe(3000 + MAX_EXTRA_MS);
    expect(endpointingDelay('and', 100, caughtUp)).toBe(250);
  });
});

describe('TurnDetector with adaptive endpointing (base 700 ms)', () => {
  function detector(adaptiveEndpointing = true) {
    const clock = new ManualClock();
    const turns: (TurnDecision & { type: 'turn' } & { at: number })[] = [];
    const d = new TurnDetector(
      { endpointingMs: 700, adaptiveEndpointing, minInterruptionMs: 300, silencePromptMs: 60_000, maxDurationMs: 600_000 },
      clock,
      (x) => x.type === 'turn' && turns.push({ ...x, at: clock.now() }),
    );
    d.start({ agentSpeaksFirst: true });
    return {
      clock,
      turns,
      /** The caller speaks for `ms`, then (unless `end` is false) the VAD hears silence. */
      speak(ms: number, end = true) {
        d.vad('speech-start', true, 20);
        clock.advance(ms);
        if (end) d.vad('speech-end', false, 20);
      },
      end: () => d.vad('speech-end', false, 20),
      final: (text: string, endOfTurn = true) => d.stt({ type: 'final', text, startMs: 0, endMs: 0, endOfTurn }),
    };
  }

  it('answers a complete question after a short silence', () => {
    const d = detector();
    d.speak(1500); // speech ends at 1500
    d.clock.advance(200);
    d.final('What time do you open on Saturday?');
    d.clock.advance(44);
    expect(d.turns).toEqual([]);
    d.clock.advance(2); // 245 ms (0.35 x 700) + 1 after the speech ended
    expect(d.turns).toMatchObject([{ text: 'What time do you open on Saturday?', at: 1746, metrics: { endpointing: 246 } }]);
  });

  it('with it off, the same question waits the fixed time', () => {
    const d = detector(false);
    d.speak(1500);
    d.clock.advance(200);
    d.final('What time do you open on Saturday?');
    d.clock.advance(499);
    expect(d.turns).toEqual([]);
    d.clock.advance(2);
    expect(d.turns).toMatchObject([{ at: 2201 }]);
  });

  it('ends at once when the words come after the short wait is over', () => {
    const d = detector();
    d.speak(1000);
    d.clock.advance(400);
    expect(d.turns).toEqual([]); // no words yet: nothing to answer
    d.final('Yes, that is right.');
    expect(d.turns).toMatchObject([{ text: 'Yes, that is right.', at: 1400 }]);
  });

  it('waits longer after "my number is four five", and the caller goes on within it', () => {
    const d = detector();
    d.speak(1800);
    d.clock.advance(200);
    d.final('my number is four five');
    d.clock.advance(1200); // 1.4 s of silence: a fixed 700 ms would have cut in
    expect(d.turns).toEqual([]);
    d.speak(900); // "six seven" (speech ends at 4100)
    d.clock.advance(200);
    d.final('six seven');
    d.clock.advance(1549); // digits still: 1750 ms
    expect(d.turns).toEqual([]);
    d.clock.advance(2);
    expect(d.turns).toMatchObject([{ text: 'my number is four five six seven', at: 5851 }]);
  });

  it('asks again when more words arrive in the silence: a trailing "and" lengthens the wait already running', () => {
    const d = detector();
    d.speak(1000, false);
    d.final('I need a refill of my prescription'); // a final before the VAD's end: the last stretch is not in it
    d.end();
    // Until the STT's next final, the base wait (700 ms) stands.
    d.clock.advance(600);
    expect(d.turns).toEqual([]);
    d.final('and');
    d.clock.advance(1000); // 1600 ms after the speech ended: a 700 ms or 315 ms wait would have ended the turn
    expect(d.turns).toEqual([]);
    d.clock.advance(151);
    expect(d.turns).toMatchObject([{ text: 'I need a refill of my prescription and', at: 2751 }]);
  });

  it('asks again when more words arrive: a complete sentence shortens a wait set on stale words', () => {
    const d = detector();
    d.speak(1000, false);
    d.final('I would like to book a table for'); // a final before the VAD's end: stale
    d.end();
    d.clock.advance(200);
    expect(d.turns).toEqual([]);
    d.final('two people at eight.');
    d.clock.advance(45);
    expect(d.turns).toEqual([]);
    d.clock.advance(1); // 245 ms (0.35 x 700) + 1
    expect(d.turns).toMatchObject([{ text: 'I would like to book a table for two people at eight.', at: 1246 }]);
  });

  it('an empty final says the STT has caught up: the words already heard may end the turn', () => {
    const d = detector();
    d.speak(1000, false);
    d.final('What time do you close?');
    d.end();
    d.clock.advance(300);
    expect(d.turns).toEqual([]); // the final came before the speech ended: the words may be stale
    d.final('', false);
    expect(d.turns).toMatchObject([{ text: 'What time do you close?', at: 1300 }]);
  });
  it('waits after a greeting for the request that follows it', () => {
    const d = detector();
    d.speak(500); // "Hi." (speech ends at 500)
    d.clock.advance(250);
    d.final('Hi.');
    d.clock.advance(1000); // 1250 ms of silence: a complete sentence (315 ms) or the fixed 700 ms would have ended it
    expect(d.turns).toEqual([]);
    d.speak(1500); // "I am calling about my order." (speech ends at 3250)
    d.clock.advance(200);
    d.final('I am calling about my order.');
    d.clock.advance(45);
    expect(d.turns).toEqual([]);
    d.clock.advance(1);
    expect(d.turns).toMatchObject([{ text: 'Hi. I am calling about my order.', at: 3496 }]); // 245 ms + 1
  });

  it('a phone number waits long between its groups and the base time once it has its 10 digits', () => {
    const d = detector();
    d.speak(1500);
    d.clock.advance(250);
    d.final('My phone number is five five five');
    d.clock.advance(1200); // a pause of 1450 ms between groups: no turn
    expect(d.turns).toEqual([]);
    d.speak(1000); // ends at 3950
    d.clock.advance(250);
    d.final('two three four');
    d.clock.advance(1200);
    expect(d.turns).toEqual([]);
    d.speak(1000); // ends at 6400
    d.clock.advance(250);
    d.final('eight eight one zero');
    d.clock.advance(449);
    expect(d.turns).toEqual([]);
    d.clock.advance(2); // 700 ms + 1, not 1750
    expect(d.turns).toMatchObject([{ text: 'My phone number is five five five two three four eight eight one zero', at: 7101 }]);
  });

  it('waits for the particulars after a request: "I need a taxi to the airport." ... "At six in the morning."', () => {
    const run = (adaptive: boolean) => {
      const d = detector(adaptive);
      d.speak(1500); // speech ends at 1500
      d.clock.advance(250);
      d.final('I need a taxi to the airport.');
      d.clock.advance(650); // 900 ms of silence: longer than 700 ms, shorter than 1.4 x 700 = 980 ms
      d.speak(1200); // ends at 3600
      d.clock.advance(250);
      d.final('At six in the morning.');
      d.clock.advance(2000);
      return d.turns;
    };
    // A fixed 700 ms answers the request before the caller has said when.
    expect(run(false).map((t) => t.text)).toEqual(['I need a taxi to the airport.', 'At six in the morning.']);
    // Adaptive: one turn; the particulars made it complete, so its end is the short wait (245 ms + 1).
    expect(run(true)).toMatchObject([{ text: 'I need a taxi to the airport. At six in the morning.', at: 3850 }]);
  });

  it('a request waits 1.4 x the base and no more', () => {
    const d = detector();
    d.speak(1500);
    d.clock.advance(250);
    d.final('I would like to make a reservation.');
    d.clock.advance(729);
    expect(d.turns).toEqual([]);
    d.clock.advance(2); // 980 ms + 1
    expect(d.turns).toMatchObject([{ text: 'I would like to make a reservation.', at: 2481 }]);
  });

  it('a brief statement waits the base time, not the short one', () => {
    const d = detector();
    d.speak(1200);
    d.clock.advance(250);
    d.final('My phone says no service.');
    d.clock.advance(449);
    expect(d.turns).toEqual([]); // 700 ms after the speech: a complete sentence's 245 ms is long past
    d.clock.advance(2);
    expect(d.turns).toMatchObject([{ text: 'My phone says no service.', at: 1901 }]);
  });
});
