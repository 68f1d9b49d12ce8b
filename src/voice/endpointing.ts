// End of turn that reads the words: how long the caller must stay silent before their turn is taken as over, from
// what they have said so far. Shorter after a complete question or sentence, longer after a filler ("um"), a word
// that needs more after it ("and", "to", "the", "my number is") or digits being dictated. Text rules plus the STT's
// own signals; pure (no clock, no state). The TurnDetector asks again whenever new words arrive during the silence.
// Measured in npm run bench:turns.
import { DIGIT_OF } from './spoken-digits.js';

export interface EndpointingHints {
  /**
   * The STT has given its final words for everything said so far (a final, even an empty one, came after the speech
   * ended). Until then the words are stale (the last stretch is not in them yet) and the turn waits at least the
   * base time: a short wait would end the turn without its last words.
   */
  sttCaughtUp: boolean;
  /**
   * The last final's own end-of-utterance flag (Deepgram's speech_final; pocketsphinx and the fake always say true).
   * It shortens the wait only when the words say nothing either way.
   */
  endOfTurn?: boolean;
  /**
   * The engine's confidence (0..1) in the last words, when it gives one: words it is unsure of are not trusted to
   * end the turn sooner (a misheard "four five" reads as a complete sentence), only to make it wait longer.
   */
  confidence?: number;
}

/**
 * How the words end, from most sure the caller goes on to most sure they are done:
 * - opener: all the caller said is a greeting or an announcement ("Hi.", "I have a question.", "Can you help me?"):
 *   the request comes next;
 * - number: a number dictated to a full length for its kind (10 digits after "my phone number is", 16 after "my card
 *   number is", 4 after "my pin is"): probably done, but it may still have more (an extension, a 6-digit PIN);
 * - request: the caller asks for something and has said nothing yet of when or how many ("I need a taxi to the
 *   airport.", "I would like to make a reservation."): they often add it after a pause ("At six in the morning."),
 *   so it waits longer than the base;
 * - brief: a statement of a few words, not a short answer ("My phone says no service."): often the first part of
 *   what the caller has to say, so not shortened.
 * A complete sentence and a question both wait x0.35: on bench:turns the statement's extra time (x0.45) caught no
 * cut-in and paid for the request's.
 */
export type Ending = 'filler' | 'continuation' | 'digits' | 'opener' | 'request' | 'neutral' | 'number' | 'brief' | 'complete' | 'question';

/** The wait, as a multiple of the base (the tenant's endpointing_ms), per kind of ending. */
export const ENDING_FACTORS: Record<Ending, number> = {
  filler: 2.5,
  continuation: 2.5,
  digits: 2.5,
  opener: 2,
  request: 1.4,
  neutral: 1,
  number: 1,
  brief: 1,
  complete: 0.35,
  question: 0.35,
};
/** A statement of at most this many words (fillers not counted) is brief. */
export const BRIEF_MAX_WORDS = 6;
/** Neutral words with the STT's own end-of-utterance flag. */
const END_OF_TURN_FACTOR = 0.8;
/** Words the STT is less sure of than this do not shorten the wait (see EndpointingHints.confidence). */
export const MIN_CONFIDENCE = 0.6;
/** A short wait is never below this: the VAD's own hangover (about 200 ms) is already behind it. */
export const MIN_ENDPOINTING_MS = 150;
/** A long wait is at most this much longer than the base: a caller who stopped after "um" still gets an answer. */
export const MAX_EXTRA_MS = 2500;

/** The silence (ms) that ends the caller's turn after `text`, with `baseMs` the tenant's endpointing time. */
export function endpointingDelay(text: string, baseMs: number, hints: EndpointingHints): number {
  const ending = classifyEnding(text);
  let factor = ENDING_FACTORS[ending];
  if (ending === 'neutral' && hints.endOfTurn) factor = END_OF_TURN_FACTOR;
  if (factor > 1) return Math.round(Math.min(baseMs * factor, baseMs + MAX_EXTRA_MS));
  // Shorter than the base only on words that cover all the caller said, and that the engine is sure of.
  if (!hints.sttCaughtUp || (hints.confidence !== undefined && hints.confidence < MIN_CONFIDENCE)) return baseMs;
  return Math.round(Math.min(baseMs, Math.max(MIN_ENDPOINTING_MS, baseMs * factor)));
}

// ---- word lists (lowercase; apostrophes kept) ----

const set = (words: string) => new Set(words.split(/\s+/).filter(Boolean));

/** Hesitations: the caller is thinking, not done. */
const FILLERS = set('um umm uhm uh uhh er erm err ah ahh eh hmm hm mm mmm');
const FILLER_PHRASES = ['you know', 'i mean', 'let me see', 'let me think', "let's see", 'sort of', 'kind of', 'how do you say'];
/** Words that need more after them: conjunctions, prepositions, articles and possessives, contracted subjects. */
const CONTINUATIONS = set(`
  and but or nor so because cause cuz if then than which whose whom while whereas although though unless until
  till since whether as plus
  to for of at from with without about by into onto under between via per towards toward across against during
  within regarding including
  the a an my your our their his its every each another
  i we they he she i'm we're they're it's there's that's he's she's you're let's i'd i'll i've we'd we'll we've
  very quite rather just
  want wanna need gonna trying
`);
/** "that" needs more after these ("I think that"), not after others ("can you help me with that"). */
const BEFORE_THAT_CLAUSE = set('think know said say says sure hope mean believe so is was guess realize see told saying wish');
const PARTICLE_VERBS = set(`
  come came check checked log logged sign signed get got fill drop call plug turn turned hand walk move stay let hold
  go carry put switch switched hang logging moving going
`);
/** Verbs that need more after them unless a pronoun came before ("my number is" vs "yes it is"). */
const AUXILIARIES = set('is are was were am be been being can could would will should shall may might must do does did have has had');
const PRONOUNS = set('i we you they he she it that this there who');
/** Before "may", these make it the month ("until May"). */
const MONTH_INTROS = set('in to of until till since from by for before after during early late mid next last this');
/** Answers complete in a word or two. */
const SHORT_ANSWERS = set(`
  yes yeah yep yup no nope nah okay ok sure right correct exactly thanks bye goodbye hello hi hey please great perfect
  fine alright absolutely definitely
`);
const QUESTION_STARTS = set(`
  what what's when where where's which who who's whom whose why how how's do does did can could would will is are was
  were should shall may have has am isn't aren't don't doesn't didn't can't couldn't won't wouldn't
`);
const DIGIT_WORDS = set('zero oh o one two three four five six seven eight nine double triple');
const UNITS = set('one two three four five six seven eight nine');
/** Said as two digits ("nineteen eighty five"); a tens word may still get its unit ("eighty... five"). */
const TEENS = set('ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen');
const TENS = set('twenty thirty forty fifty sixty seventy eighty ninety');
/** A letter spelled out in a code or a name ("X J four seven K"); not "a", "i" (words) or "o" (a digit). */
const isLetter = (w: string) => /^[b-hj-np-z]$/.test(w);
/** Before a short number, a time of day ("at eight thirty"), not dictation. */
const TIME_INTROS = set('at around by before after until till about');
/** Words an STT writes for a spoken digit ("for five" for "four five"); digits only next to a real one. */
const DIGIT_HOMOPHONES = set('for to too won ate');
/** Before a number these mean it is being dictated ("my number is four"); "table for two" is not. */
const NUMBER_INTROS = set(`
  is was are it's its number numbers code pin zip postcode account phone card id reference ref extension digits
  number's
`);

/** Words of `text`: lowercase, apostrophes kept, other punctuation dropped; digit strings kept whole. */
function wordsOf(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[’‘]/g, "'")
    .replace(/[^a-z0-9' ]+/g, ' ')
    .split(/\s+/)
    .map((w) => w.replace(/^'+|'+$/g, ''))
    .filter(Boolean);
}

const isDigitToken = (w: string) => /^\d+$/.test(w) || DIGIT_WORDS.has(w) || TEENS.has(w) || TENS.has(w);
/** A token of a code being read out: a digit, a letter, or both ("xj4"). */
const isCodeToken = (w: string) => isDigitToken(w) || isLetter(w) || /^(?=[a-z]*\d)[a-z\d]{2,}$/.test(w);

/** How `text` (everything the caller said this turn) ends. */
export function classifyEnding(text: string): Ending {
  const trimmed = text.trim();
  const words = wordsOf(trimmed);
  if (words.length === 0) return 'neutral';
  const last = words[words.length - 1]!;
  const before = words[words.length - 2];
  const tail = (n: number) => words.slice(-n).join(' ');

  // A pause written out by the STT ("my number is...", "so,", "and -").
  const trailingMark = /(\.\.\.|…|,|;|:|-|–|—)$/.test(trimmed);

  if (FILLERS.has(last)) return 'filler';
  if (FILLER_PHRASES.some((p) => tail(p.split(' ').length) === p)) {
    // "do you know" / "I'll let you know" are not hesitations.
    const w = words[words.length - 3];
    if (!(tail(2) === 'you know' && w && /^(do|did|don't|didn't|would|will|let|to)$/.test(w))) return 'filler';
  }
  // "like" hesitates ("it's like") or needs more ("I would like"), except in "look like", "sound like".
  if (last === 'like' && !(before && /^(look|looks|looked|sound|sounds|feel|feels|seem|seems|you)$/.test(before))) return 'filler';
  // "well" and "so" alone open a sentence: the caller is about to speak.
  if (last === 'well' && (words.length === 1 || /,\s*well\W*$/i.test(trimmed))) return 'filler';

  const number = trailingNumber(words);
  if (number) return numberComplete(words, number) ? 'number' : 'digits';

  if (CONTINUATIONS.has(last)) return 'continuation';
  // "in" and "on" need more ("I live in", "my card ends in") unless they end a phrasal verb ("can I check in").
  if ((last === 'in' || last === 'on') && !(before && PARTICLE_VERBS.has(before))) return 'continuation';
  if (last === 'that' && before && BEFORE_THAT_CLAUSE.has(before)) return 'continuation';
  // "to May", "in May": the month, not the verb that needs more.
  const month = last === 'may' && before !== undefined && MONTH_INTROS.has(before);
  if (AUXILIARIES.has(last) && !(before && PRONOUNS.has(before)) && !month) return 'continuation';
  if (trailingMark) return 'continuation';

  // Complete: a question or a sentence ending in a word that can end one.
  const sentences = trimmed.split(/(?<=[.?!])\s+/).filter((s) => wordsOf(s).length > 0);
  const lastSentence = wordsOf(sentences[sentences.length - 1] ?? trimmed);
  if (isOpener(trimmed)) return 'opener';
  if (trimmed.endsWith('?') || QUESTION_STARTS.has(lastSentence[0]!)) return lastSentence.length >= 2 ? 'question' : 'neutral';
  if (isOpenRequest(lastSentence)) return 'request';
  if (SHORT_ANSWERS.has(last) || tail(2) === 'thank you') return 'complete';
  if (!/[.!]$/.test(trimmed) && words.length < 3) return 'neutral';
  // An answer ("yes it is", "no, that is it") is complete however short; a few words of a statement are not yet.
  if (SHORT_ANSWERS.has(words[0]!)) return 'complete';
  return words.filter((w) => !FILLERS.has(w)).length <= BRIEF_MAX_WORDS ? 'brief' : 'complete';
}

// ---- requests that name what the caller wants but none of its particulars ----

/** "I need", "we would like", "I'd like to", "I'm looking for": the caller asks for something. */
const REQUEST_START =
  /^(?:(?:so|and|um|uh|er|yes|yeah|hi|hello|well|okay|ok) )*(?:i|we)(?: really| just| also)? (?:need|want|wanna|would like|would love|am looking for)\b/;
const INDIRECT_QUESTION = /\b(?:know|ask|check|find out|see) (?:if|whether|what|when|where|which|who|why|how)\b/;
/** When, and how many: a request with one of these already carries its particulars. */
const PARTICULARS = set(`
  today tonight tomorrow yesterday morning afternoon evening night noon midnight week weekend month year now asap soon
  later earlier o'clock am pm monday tuesday wednesday thursday friday saturday sunday january february march april
  may june july august september october november december next
`);

/**
 * A request with nothing yet of when or how many ("I need a taxi to the airport.", "I would like to make a
 * reservation."): callers often add them after a pause ("At six in the morning."), so it waits longer than a complete
 * sentence. "I need to cancel my appointment for tomorrow." and "a table for two" have theirs.
 */
function isOpenRequest(words: string[]): boolean {
  const text = words
    .join(' ')
    .replace(/\b(i|we)'d\b/g, '$1 would')
    .replace(/\bi'm\b/g, 'i am');
  // "I would like to know if the hotel has a pool" asks a question: answered like one.
  if (INDIRECT_QUESTION.test(text)) return false;
  return REQUEST_START.test(text) && !words.some((w) => PARTICULARS.has(w) || isDigitToken(w));
}

// ---- openers: a greeting or an announcement, with the request still to come ----

/** Said before the request: greetings, and announcing one ("I have a question", "can you help me"). */
const OPENERS = [
  /^(hi|hello|hey|hiya|good (morning|afternoon|evening|day))( there| again)?$/,
  /^(i|i've|i have|i've got|i got) (a|one|another|some|a few|a quick|a small) (quick |small |simple )?(question|questions|problem|issue|query)( for you)?$/,
  /^(a )?quick question$/,
  /^(can|could|would) you (help|assist) (me|us)( please| out)?$/,
  /^(can|could|may) i ask (you )?(something|a question|you a question)$/,
  /^i (need|want) (some )?help( please)?$/,
  /^sorry to (bother|trouble) you$/,
];
/** Said around an opener without changing it ("yes hello", "oh hi"). */
const OPENER_SOFTENERS = set('yes yeah yep oh ok okay so um uh er well hi hello hey please');

/** All of `text` is openers (one or more, each a sentence or a clause), with nothing of the request yet. */
function isOpener(text: string): boolean {
  // "Hello?" checks the line is up: the agent should answer at once.
  if (/^\W*(hi|hello|hey)\W*\?\W*$/i.test(text)) return false;
  const clauses = text
    .split(/[.,;!?]+/)
    .map((c) => wordsOf(c))
    .filter((w) => w.length > 0);
  const opens = (w: string[]) => OPENERS.some((re) => re.test(w.join(' ')));
  return (
    clauses.length > 0 &&
    clauses.every((w) => {
      // Each softener off the front in turn: "yes hi" is "hi", "hi there" stays "hi there".
      for (let i = 0; i < w.length; i++) {
        if (opens(w.slice(i))) return true;
        if (!OPENER_SOFTENERS.has(w[i]!)) return false;
      }
      return false;
    })
  );
}

/** The run of code tokens that ends the words, when it is a number or code being dictated. */
interface DictatedRun {
  /** Index of its first word. */
  start: number;
  /** How many digits (and letters) it stands for: "nineteen eighty five" 4, "double three" 2, "4572" 4. */
  length: number;
  /** Its first digit ('0' for "oh"), for the phone number's length. */
  first: string | undefined;
  /** It has letters ("X J four"): a code whose length the rules do not know. */
  letters: boolean;
  /** It ends in a tens word: "nineteen eighty" may still get its "five". */
  openTens: boolean;
}

/**
 * Digits (or a code) at the end being dictated: two or more digits, or one after a word that introduces a number
 * ("my number is four"); an STT's "for" or "to" between them counts as a digit; letters count in a code ("X J four").
 */
function trailingNumber(words: string[]): DictatedRun | undefined {
  let i = words.length - 1;
  let real = 0;
  let count = 0;
  while (i >= 0) {
    const w = words[i]!;
    if (isCodeToken(w)) {
      // "12" is a number said as one ("room 12"); "4572" is dictated digits.
      real += /^\d{3,}$/.test(w) ? w.length : w === 'double' || w === 'triple' ? 0 : 1;
      count++;
    } else if (DIGIT_HOMOPHONES.has(w) && real > 0 && i > 0 && (isCodeToken(words[i - 1]!) || NUMBER_INTROS.has(words[i - 1]!))) {
      count++;
    } else break;
    i--;
  }
  if (real === 0) return undefined;
  const start = i + 1;
  const run = words.slice(start);
  // "oh" or "o" alone is an answer, not a digit; a lone letter is a word ("plan b").
  if (count === 1 && (/^(oh|o)$/.test(run[0]!) || isLetter(run[0]!))) return undefined;
  const measured = measure(run);
  const intro = words[i];
  // "at eight thirty" is a time of day.
  if (intro !== undefined && TIME_INTROS.has(intro) && !measured.letters && measured.length <= 4) return undefined;
  if (real < 2) {
    // "my card ends in four", "ending with six", "born in nineteen"
    const endsIn = (intro === 'in' || intro === 'with') && /^(ends|ending|end|ended|born)$/.test(words[i - 1] ?? '');
    if (!endsIn && !(intro !== undefined && NUMBER_INTROS.has(intro))) return undefined;
  }
  return { start, ...measured };
}

/** How many digits a run of spoken code tokens stands for. */
function measure(run: string[]): Omit<DictatedRun, 'start'> {
  let length = 0;
  let first: string | undefined;
  let letters = false;
  let repeat = 1;
  let afterTens = false;
  for (const w of run) {
    const tens = afterTens;
    afterTens = false;
    if (w === 'double' || w === 'triple') {
      repeat = w === 'double' ? 2 : 3;
      continue;
    }
    if (/^\d+$/.test(w)) {
      first ??= w[0];
      length += w.length;
    } else if (DIGIT_OF[w] !== undefined) {
      first ??= DIGIT_OF[w];
      // "eighty five" is two digits, not three.
      if (!(tens && UNITS.has(w))) length += repeat;
    } else if (TEENS.has(w) || TENS.has(w)) {
      first ??= '1';
      length += 2;
      afterTens = TENS.has(w);
    } else if (DIGIT_HOMOPHONES.has(w)) {
      length += 1;
    } else {
      letters = true;
      length += w.length;
    }
    repeat = 1;
  }
  return { length, first, letters, openTens: afterTens };
}

/**
 * The number has a full length for its kind, named before it ("my phone number is", "my pin is"): 10 digits for a
 * phone number (11 when it starts with 1 or 0: a country or trunk prefix), 16 for a card, 4 for the last digits of
 * a card, a PIN or a year, 5 for a zip code, 8 for a date of birth. A kind it does not know (an account, a
 * reference, an order) never is: those keep the long wait.
 */
function numberComplete(words: string[], run: DictatedRun): boolean {
  if (run.letters || run.openTens) return false;
  const before = words.slice(Math.max(0, run.start - 6), run.start);
  const has = (re: RegExp) => before.some((w) => re.test(w));
  // The first word that names a kind is the head ("the code on the card": a code, not a card).
  const kind = before.find((w) =>
    /^(phone|mobile|cell|cellphone|telephone|card|pin|zip|zipcode|born|year|birth|birthday|dob|code|number|account|reference|order|member|id)$/.test(
      w,
    ),
  );
  let lengths: number[] = [];
  if (kind === undefined || kind === 'number' || kind === 'code') {
    if (has(/^(ends|ending|last)$/)) lengths = [4];
  } else if (/^(phone|mobile|cell|cellphone|telephone)$/.test(kind)) lengths = run.first === '1' || run.first === '0' ? [11] : [10];
  else if (kind === 'card') lengths = has(/^(ends|ending|last)$/) ? [4] : [16];
  else if (kind === 'pin') lengths = [4, 6];
  else if (kind === 'zip' || kind === 'zipcode') lengths = [5, 9];
  else if (kind === 'born' || kind === 'year') lengths = [4];
  else if (/^(birth|birthday|dob)$/.test(kind)) lengths = [8];
  return lengths.includes(run.length);
}
