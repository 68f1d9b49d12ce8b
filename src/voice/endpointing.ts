// End of turn that reads the words: how long the caller must stay silent before their turn is taken as over, from
// what they have said so far. Shorter after a complete question or sentence, longer after a filler ("um"), a word
// that needs more after it ("and", "to", "the", "my number is") or digits being dictated. Text rules plus the STT's
// own signals; pure (no clock, no state). The TurnDetector asks again whenever new words arrive during the silence.
// Measured in npm run bench:turns.

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

/** How the words end, from most sure the caller goes on to most sure they are done. */
export type Ending = 'filler' | 'continuation' | 'digits' | 'neutral' | 'complete' | 'question';

/** The wait, as a multiple of the base (the tenant's endpointing_ms), per kind of ending. */
export const ENDING_FACTORS: Record<Ending, number> = {
  filler: 2.5,
  continuation: 2.5,
  digits: 2.5,
  neutral: 1,
  complete: 0.45,
  question: 0.35,
};
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

const isDigitToken = (w: string) => /^\d+$/.test(w) || DIGIT_WORDS.has(w);

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

  const digits = trailingDigits(words);
  if (digits) return 'digits';

  if (CONTINUATIONS.has(last)) return 'continuation';
  // "in" and "on" need more ("I live in", "my card ends in") unless they end a phrasal verb ("can I check in").
  if ((last === 'in' || last === 'on') && !(before && PARTICLE_VERBS.has(before))) return 'continuation';
  if (last === 'that' && before && BEFORE_THAT_CLAUSE.has(before)) return 'continuation';
  if (AUXILIARIES.has(last) && !(before && PRONOUNS.has(before))) return 'continuation';
  if (trailingMark) return 'continuation';

  // Complete: a question or a sentence ending in a word that can end one.
  const sentences = trimmed.split(/(?<=[.?!])\s+/).filter((s) => wordsOf(s).length > 0);
  const lastSentence = wordsOf(sentences[sentences.length - 1] ?? trimmed);
  if (trimmed.endsWith('?') || QUESTION_STARTS.has(lastSentence[0]!)) return lastSentence.length >= 2 ? 'question' : 'neutral';
  if (SHORT_ANSWERS.has(last) || tail(2) === 'thank you') return 'complete';
  if (/[.!]$/.test(trimmed) || words.length >= 3) return 'complete';
  return 'neutral';
}

/**
 * Digits at the end being dictated: two or more digits, or one after a word that introduces a number ("my number is
 * four"); an STT's "for" or "to" between them counts as a digit.
 */
function trailingDigits(words: string[]): boolean {
  let i = words.length - 1;
  let real = 0;
  let count = 0;
  while (i >= 0) {
    const w = words[i]!;
    if (isDigitToken(w)) {
      // "12" is a number said as one ("room 12"); "4572" is dictated digits.
      real += /^\d{3,}$/.test(w) ? w.length : w === 'double' || w === 'triple' ? 0 : 1;
      count++;
    } else if (DIGIT_HOMOPHONES.has(w) && real > 0 && i > 0 && (isDigitToken(words[i - 1]!) || NUMBER_INTROS.has(words[i - 1]!))) {
      count++;
    } else break;
    i--;
  }
  if (real === 0) return false;
  // "oh" or "o" alone is an answer, not a digit.
  if (count === 1 && /^(oh|o)$/.test(words[words.length - 1]!)) return false;
  if (real >= 2) return true;
  const intro = words[i];
  // "my card ends in four", "ending with six"
  if ((intro === 'in' || intro === 'with') && /^(ends|ending|end|ended)$/.test(words[i - 1] ?? '')) return true;
  return intro !== undefined && NUMBER_INTROS.has(intro);
}
