// The turn rules one by one, in virtual time: endpointing, barge-in vs backchannel, the stuck-VAD rule, keypad
// entries, silence prompts and the maximum duration.
import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';
import type { SttEvent } from './stt/stt.js';
import { DTMF_GAP_MS, MAX_RESUMES, STUCK_SPEECH_GRACE_MS, type TurnDecision, TurnDetector, type TurnRules } from './turns.js';

const RULES: TurnRules = { endpointingMs: 500, minInterruptionMs: 300, silencePromptMs: 10_000, maxDurationMs: 60_000 };

function detector(rules: Partial<TurnRules> = {}, opts = { agentSpeaksFirst: true }, previews = false) {
  const clock = new ManualClock();
  const decisions: (TurnDecision & { at: number })[] = [];
  const turns = new TurnDetector({ ...RULES, ...rules }, clock, (d) => decisions.push({ ...d, at: clock.now() }), { previews });
  turns.start(opts);
  const final = (text: string): SttEvent => ({ type: 'final', text, startMs: 0, endMs: 0, confidence: 0.9, endOfTurn: true });
  return {
    clock,
    turns,
    decisions,
    of: (type: TurnDecision['type']) => decisions.filter((d) => d.type === type),
    /** The caller speaks for `ms` (voiced 20 ms frames after the VAD's start), then the VAD says it ended. */
    speak(ms: number, opts: { end?: boolean; voiced?: boolean } = {}) {
      turns.vad('speech-start', true, 20);
      for (let t = 0; t < ms; t += 20) {
        clock.advance(20);
        turns.vad(null, opts.voiced ?? true, 20);
      }
      if (opts.end ?? true) turns.vad('speech-end', false, 20);
    },
    final: (text: string) => turns.stt(final(text)),
    interim: (text: string) => turns.stt({ type: 'interim', text, atMs: clock.now() }),
    /** The agent is replying and its audio is playing. */
    agentTalks() {
      turns.replyStarted();
      turns.agentSpeakingStarted();
    },
  };
}

describe('TurnDetector: end of turn', () => {
  it('ends the turn endpointing ms after the speech ended, once the STT gave its words', () => {
    const d = detector();
    d.clock.advance(1000);
    d.speak(900); // ends at 1900
    d.clock.advance(250);
    d.final('When do you open?');
    // The final came before the endpointing time was up: the rest is waited out (+1 ms: timers may fire early).
    d.clock.advance(250);
    expect(d.of('turn')).toEqual([]);
    d.clock.advance(1);
    expect(d.of('turn')).toEqual([
      { type: 'turn', text: 'When do you open?', startMs: 1000, endMs: 1900, metrics: { endpointing: 501, stt_final: 250 }, at: 2401 },
    ]);
  });

  it('a final after the VAD’s end waits for the endpointing timer that is already running', () => {
    const d = detector();
    d.speak(600, { end: false });
    d.final('Hello');
    d.turns.vad('speech-end', false, 20);
    d.clock.advance(499);
    expect(d.of('turn')).toEqual([]);
    d.clock.advance(1);
    expect(d.of('turn')).toMatchObject([{ text: 'Hello', metrics: { endpointing: 500, stt_final: 0 } }]);
  });

  it('an STT slower than the endpointing ends the turn with its final', () => {
    const d = detector();
    d.speak(600);
    d.clock.advance(800);
    expect(d.of('turn')).toEqual([]);
    d.final('Hello there');
    expect(d.of('turn')).toMatchObject([{ text: 'Hello there', metrics: { endpointing: 800, stt_final: 800 } }]);
  });

  it('speech without words is no turn; the caller speaking again within the endpointing time continues the turn', () => {
    const d = detector();
    d.speak(400);
    d.clock.advance(2000);
    expect(d.of('turn')).toEqual([]);
    d.speak(400);
    d.final('Sorry,');
    d.clock.advance(300);
    d.speak(400); // resumed before the endpointing time
    d.final('my question is');
    d.clock.advance(500);
    expect(d.of('turn')).toEqual([]);
    d.clock.advance(1);
    expect(d.of('turn').map((t) => t.type === 'turn' && t.text)).toEqual(['Sorry, my question is']);
  });

  it('words wait while the agent talks, and no turn ends over it', () => {
    const d = detector();
    d.agentTalks();
    d.speak(100);
    d.final('uh-huh');
    d.clock.advance(2000);
    expect(d.of('turn')).toEqual([]);
  });
});

describe('TurnDetector: barge-in vs backchannel', () => {
  it('interrupts once minInterruptionMs of voiced speech is heard over the agent', () => {
    const d = detector();
    d.agentTalks();
    d.clock.advance(1000);
    d.speak(280, { end: false });
    expect(d.of('barge-in')).toEqual([]);
    d.clock.advance(20);
    d.turns.vad(null, true, 20);
    expect(d.of('barge-in')).toEqual([{ type: 'barge-in', speechMs: 300, voicedMs: 300, at: 1300 }]);
  });

  it('pauses inside the speech do not count towards the minimum', () => {
    const d = detector();
    d.agentTalks();
    d.speak(400, { end: false, voiced: false });
    expect(d.of('barge-in')).toEqual([]);
    d.speak(300, { end: false });
    expect(d.of('barge-in')).toMatchObject([{ voicedMs: 300 }]);
  });

  it('a backchannel shorter than the minimum does not interrupt, and its words are dropped when the agent finishes', () => {
    const d = detector();
    d.agentTalks();
    d.speak(150);
    d.final('uh-huh');
    d.clock.advance(1000);
    d.turns.replyEnded(false);
    d.clock.advance(5000);
    expect(d.of('barge-in')).toEqual([]);
    expect(d.of('turn')).toEqual([]);
  });

  it('words said before the interruption qualified belong to the caller’s next turn', () => {
    const d = detector();
    d.agentTalks();
    d.speak(100);
    d.final('Sorry,');
    d.clock.advance(100);
    d.speak(400);
    expect(d.of('barge-in')).toHaveLength(1);
    d.final('stop there.');
    d.turns.replyEnded(true);
    d.clock.advance(501);
    expect(d.of('turn')).toMatchObject([{ type: 'turn', text: 'Sorry, stop there.' }]);
  });

  it('with minInterruptionMs 0 the caller interrupts as soon as the VAD hears speech', () => {
    const d = detector({ minInterruptionMs: 0 });
    d.agentTalks();
    d.turns.vad('speech-start', true, 20);
    expect(d.of('barge-in')).toHaveLength(1);
  });

  it('no barge-in when the agent is not speaking', () => {
    const d = detector();
    d.speak(1000);
    d.turns.replyStarted(); // thinking, not speaking yet
    d.speak(1000);
    expect(d.of('barge-in')).toEqual([]);
  });
});

describe('TurnDetector: a VAD stuck on background noise', () => {
  it('ends the turn on the STT’s words endpointing + grace after them, and says it did', () => {
    const d = detector();
    d.turns.vad('speech-start', true, 20); // and never a speech-end
    d.clock.advance(1000);
    d.final('When does the clinic open?');
    d.clock.advance(500 + STUCK_SPEECH_GRACE_MS - 1);
    expect(d.decisions).toEqual([]);
    d.clock.advance(1);
    expect(d.decisions).toEqual([
      { type: 'turn-forced', wordsMsAgo: 2000, at: 3000 },
      { type: 'turn', text: 'When does the clinic open?', startMs: 0, endMs: 1000, metrics: { endpointing: 2000, stt_final: 0 }, at: 3000 },
    ]);
  });

  it('new words (an interim) put the forced end off', () => {
    const d = detector();
    d.turns.vad('speech-start', true, 20);
    d.final('When does');
    d.clock.advance(1000);
    d.interim('the clinic');
    d.clock.advance(5000);
    expect(d.of('turn')).toEqual([]);
    d.final('the clinic open?');
    d.clock.advance(2000);
    expect(d.of('turn')).toMatchObject([{ text: 'When does the clinic open?' }]);
  });

  it('does not force the end of a turn while the agent talks', () => {
    const d = detector();
    d.agentTalks();
    d.turns.vad('speech-start', true, 20);
    d.final('hmm');
    d.clock.advance(10_000);
    expect(d.of('turn-forced')).toEqual([]);
  });
});

describe('TurnDetector: keypad', () => {
  it('digits less than DTMF_GAP_MS apart are one entry, taken DTMF_GAP_MS after the last', () => {
    const d = detector();
    for (const digit of '1234') {
      d.turns.digit(digit);
      d.clock.advance(DTMF_GAP_MS - 100);
    }
    expect(d.of('turn')).toEqual([]);
    d.clock.advance(100); // 1500 ms after the 4th digit (at 4200)
    expect(d.of('digit').map((x) => x.type === 'digit' && x.digit)).toEqual(['1', '2', '3', '4']);
    expect(d.of('turn')).toEqual([
      { type: 'turn', text: '(pressed on the keypad: 1 2 3 4)', startMs: 5700, endMs: 5700, metrics: {}, at: 5700 },
    ]);
    expect(d.turns.speechEndedAt).toBe(5700);
  });

  it('a gap of DTMF_GAP_MS makes two entries', () => {
    const d = detector();
    d.turns.digit('1');
    d.clock.advance(DTMF_GAP_MS);
    d.turns.digit('2');
    d.clock.advance(DTMF_GAP_MS);
    expect(d.of('turn').map((t) => t.type === 'turn' && t.text)).toEqual(['(pressed on the keypad: 1)', '(pressed on the keypad: 2)']);
  });

  it('# ends an entry at once (and is not part of it); # alone is nothing', () => {
    const d = detector();
    d.turns.digit('#');
    d.turns.digit('4');
    d.turns.digit('2');
    d.turns.digit('#');
    expect(d.of('turn')).toMatchObject([{ text: '(pressed on the keypad: 4 2)', at: 0 }]);
    d.clock.advance(5000);
    expect(d.of('turn')).toHaveLength(1);
  });

  it('32 digits are taken at once; other keys are ignored', () => {
    const d = detector();
    d.turns.digit('x');
    d.turns.digit('12');
    for (let i = 0; i < 32; i++) d.turns.digit(String(i % 10));
    expect(d.of('turn')).toHaveLength(1);
    expect(d.of('digit')).toHaveLength(32);
  });

  it('a digit interrupts the agent like speech', () => {
    const d = detector();
    d.agentTalks();
    d.turns.digit('0');
    expect(d.decisions.map((x) => x.type)).toEqual(['digit', 'barge-in']);
  });
});

describe('TurnDetector: silence and the maximum duration', () => {
  it('prompts a silent caller after silencePromptMs, then says goodbye after as long again', () => {
    const d = detector({}, { agentSpeaksFirst: false });
    d.clock.advance(9999);
    expect(d.decisions).toEqual([]);
    d.clock.advance(1);
    expect(d.decisions).toEqual([{ type: 'silence-prompt', at: 10_000 }]);
    // The prompt is spoken, then the caller stays silent again.
    d.agentTalks();
    d.clock.advance(2000);
    d.turns.replyEnded(false);
    d.clock.advance(10_000);
    expect(d.decisions.map((x) => x.type)).toEqual(['silence-prompt', 'silence-goodbye']);
  });

  it('a caller turn resets the count; speech holds the prompt off; the agent talking is not silence', () => {
    const d = detector({}, { agentSpeaksFirst: false });
    d.clock.advance(10_000);
    d.agentTalks();
    d.turns.replyEnded(false);
    d.clock.advance(5000);
    d.speak(500);
    d.final('I am here');
    d.clock.advance(501);
    expect(d.of('turn')).toHaveLength(1);
    d.agentTalks();
    d.clock.advance(30_000);
    d.turns.replyEnded(false);
    d.clock.advance(10_000);
    expect(d.decisions.map((x) => x.type)).toEqual(['silence-prompt', 'turn', 'silence-prompt']);
  });

  it('the silence prompt waits for the agent’s first words when it speaks first', () => {
    const d = detector();
    d.clock.advance(30_000);
    expect(d.decisions).toEqual([]);
  });

  it('the maximum duration is reached at maxDurationMs whatever happens', () => {
    const d = detector({ maxDurationMs: 5000 });
    d.agentTalks();
    d.clock.advance(4999);
    expect(d.of('max-duration')).toEqual([]);
    d.clock.advance(1);
    expect(d.of('max-duration')).toEqual([{ type: 'max-duration', at: 5000 }]);
  });

  it('stop() ends every decision and timer', () => {
    const d = detector({}, { agentSpeaksFirst: false });
    d.speak(500);
    d.final('Hello');
    d.turns.digit('1');
    d.turns.stop();
    d.clock.advance(120_000);
    expect(d.decisions.map((x) => x.type)).toEqual(['digit']);
    expect(d.clock.pending).toBe(0);
  });
});

describe('TurnDetector: previews (a reply prepared while the endpointing time runs)', () => {
  const previews = () => detector({}, { agentSpeaksFirst: true }, true);
  const kinds = (d: ReturnType<typeof detector>) => d.decisions.filter((x) => x.type !== 'silence-prompt').map((x) => [x.type, x.at]);

  it('previews the words when the STT’s final comes after the speech ended, then ends the turn with the same words', () => {
    const d = previews();
    d.speak(900); // ends at 900
    d.clock.advance(250);
    d.final('When do you open?');
    expect(d.of('turn-preview')).toEqual([{ type: 'turn-preview', text: 'When do you open?', at: 1150 }]);
    d.clock.advance(251);
    expect(d.of('turn')).toMatchObject([{ text: 'When do you open?', at: 1401 }]);
    expect(kinds(d)).toEqual([
      ['turn-preview', 1150],
      ['turn', 1401],
    ]);
  });

  it('previews at the speech’s end when the final came while the caller was speaking', () => {
    const d = previews();
    d.speak(600, { end: false });
    d.final('Hello');
    expect(d.of('turn-preview')).toEqual([]);
    d.turns.vad('speech-end', false, 20);
    expect(d.of('turn-preview')).toMatchObject([{ text: 'Hello', at: 600 }]);
  });

  it('waits for the last words when the STT gave a final mid-speech and interim words after it', () => {
    const d = previews();
    d.speak(1200, { end: false });
    d.final('When does the clinic');
    d.interim('open on');
    d.turns.vad('speech-end', false, 20);
    expect(d.of('turn-preview')).toEqual([]);
    d.clock.advance(250);
    d.final('open on Saturdays?');
    expect(d.of('turn-preview')).toMatchObject([{ text: 'When does the clinic open on Saturdays?', at: 1450 }]);
  });

  it('cancels when the caller speaks again, and previews the longer words once their final comes', () => {
    const d = previews();
    d.speak(600);
    d.final('Sorry,');
    d.clock.advance(300);
    d.speak(400); // resumed before the endpointing time: 900 to 1300
    // The speech ended but its words are not in yet: the earlier words alone are not previewed again.
    expect(d.of('turn-preview')).toHaveLength(1);
    d.clock.advance(200);
    d.final('my question is');
    d.clock.advance(501);
    expect(kinds(d)).toEqual([
      ['turn-preview', 600],
      ['turn-preview-cancel', 900],
      ['turn-preview', 1500],
      ['turn', 1801],
    ]);
    expect(d.of('turn-preview-cancel')).toMatchObject([{ reason: 'caller_resumed' }]);
    expect(d.of('turn-preview')[1]).toMatchObject({ text: 'Sorry, my question is' });
  });

  it('nothing is previewed while the agent talks, and a preview is cancelled when the agent starts talking', () => {
    const d = previews();
    d.agentTalks();
    d.speak(100);
    d.final('uh-huh');
    expect(d.of('turn-preview')).toEqual([]);
    d.turns.replyEnded(false);
    d.speak(300);
    d.final('Hello');
    d.agentTalks();
    expect(d.of('turn-preview-cancel')).toMatchObject([{ reason: 'agent_speaking' }]);
  });

  it('off (the default): never a preview', () => {
    const d = detector();
    d.speak(600);
    d.final('Hello');
    d.speak(400);
    d.final('again');
    d.clock.advance(1000);
    expect(d.decisions.map((x) => x.type)).toEqual(['turn']);
  });
});

describe('TurnDetector: resumption (the caller goes on before the reply is heard)', () => {
  /** A detector with resumption on whose session starts a reply at each turn and stops it at a barge-in. */
  function resuming() {
    const clock = new ManualClock();
    const decisions: (TurnDecision & { at: number })[] = [];
    const turns: TurnDetector = new TurnDetector(
      RULES,
      clock,
      (d) => {
        decisions.push({ ...d, at: clock.now() });
        // As the session does: the reply starts at once (thinking: no audio yet).
        if (d.type === 'turn') {
          turns.replyStarted();
          turns.agentSpeakingStarted();
        }
        if (d.type === 'barge-in') turns.replyEnded(true);
      },
      { resumption: true },
    );
    turns.start({ agentSpeaksFirst: true });
    const of = (type: TurnDecision['type']) => decisions.filter((d) => d.type === type);
    /** The caller says `text` (600 ms), then the STT's final; the turn ends 501 ms after the speech. */
    const say = (text: string) => {
      turns.vad('speech-start', true, 20);
      for (let t = 0; t < 600; t += 20) {
        clock.advance(20);
        turns.vad(null, true, 20);
      }
      turns.vad('speech-end', false, 20);
      clock.advance(250);
      turns.stt({ type: 'final', text, startMs: 0, endMs: 0, confidence: 0.9, endOfTurn: true });
      clock.advance(260);
    };
    return { clock, turns, decisions, of, say };
  }

  it('speech before the reply’s first audio takes the turn up again; the next turn has all the words, from the first start', () => {
    const d = resuming();
    d.clock.advance(1000);
    d.say('Yes.');
    expect(d.of('turn')).toMatchObject([{ text: 'Yes.', startMs: 1000 }]);
    d.clock.advance(300);
    d.say('And the receipt too?');
    // The turn was decided at 2101 (501 ms after the speech's end), the caller went on at 2410.
    expect(d.of('turn-resumed')).toEqual([{ type: 'turn-resumed', text: 'Yes.', afterMs: 309, resumes: 1, at: 2410 }]);
    expect(d.of('barge-in')).toEqual([]);
    expect(d.of('turn')).toHaveLength(2);
    expect(d.of('turn')[1]).toMatchObject({ text: 'Yes. And the receipt too?', startMs: 1000, endMs: 3010 });
  });

  it('once the reply’s audio has started, speech is a barge-in or a backchannel as before', () => {
    const d = resuming();
    d.say('Yes.');
    d.turns.agentAudioStarted();
    d.clock.advance(300);
    d.say('And the receipt too?');
    expect(d.of('turn-resumed')).toEqual([]);
    expect(d.of('barge-in')).toHaveLength(1);
  });

  it('off by default: speech before the first audio is an interruption as before', () => {
    const d = detector();
    d.speak(600);
    d.final('Yes.');
    d.clock.advance(600);
    expect(d.of('turn')).toHaveLength(1);
    d.agentTalks();
    d.speak(600);
    expect(d.of('turn-resumed')).toEqual([]);
    expect(d.of('barge-in')).toHaveLength(1);
  });

  it('at most MAX_RESUMES times in a row; the agent’s audio starts the count again', () => {
    const d = resuming();
    d.say('One.');
    for (let i = 0; i < MAX_RESUMES; i++) d.say('more.');
    expect(d.of('turn-resumed').map((r) => (r as { resumes: number }).resumes)).toEqual([1, 2, 3]);
    expect(d.of('turn').at(-1)).toMatchObject({ text: 'One. more. more. more.' });
    // The fourth time the reply stands: speech over it is an interruption (minInterruptionMs of voiced speech).
    d.say('again.');
    expect(d.of('turn-resumed')).toHaveLength(MAX_RESUMES);
    expect(d.of('barge-in')).toHaveLength(1);
    expect(d.of('turn').at(-1)).toMatchObject({ text: 'again.' });
    // Heard audio resets the count.
    d.turns.agentAudioStarted();
    d.turns.replyEnded(false);
    d.say('Hello?');
    d.say('Anyone there?');
    expect(d.of('turn-resumed')).toHaveLength(MAX_RESUMES + 1);
    expect(d.of('turn').at(-1)).toMatchObject({ text: 'Hello? Anyone there?' });
  });

  it('neither a keypad entry nor a turn whose reply was replaced (a goodbye) or ended unheard is taken up again', () => {
    const d = resuming();
    d.turns.digit('4');
    d.turns.digit('#');
    expect(d.of('turn')).toHaveLength(1);
    d.say('Yes.');
    expect(d.of('turn-resumed')).toEqual([]);
    d.turns.agentAudioStarted();
    d.turns.replyEnded(false);
    d.say('Hello.');
    d.turns.replyStarted(); // the maximum duration's goodbye replaces the reply
    d.say('Wait.');
    d.turns.replyEnded(false);
    d.say('Hello.');
    d.turns.callerTurnStored(); // the reply ended without audio: the turn is stored
    d.say('Wait.');
    expect(d.of('turn-resumed')).toEqual([]);
  });
});
