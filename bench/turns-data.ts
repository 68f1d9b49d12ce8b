// The caller utterances of bench:turns: what each says, where they pause and for how long, and how its audio is made.
// Speech is espeak-ng (five voices) at 8 kHz, phone rate; the dictated digits of the `fsdd` ones are Free Spoken
// Digit Dataset recordings (real people, bench/data/fsdd). Every piece is trimmed to its voice and set to -26 dBFS;
// pauses are inserted silence (a -70 dBFS noise floor), 300-1500 ms after fillers, conjunctions, prepositions and
// articles and between groups of digits, drawn from a seeded generator so every run hears the same audio.
//
//   npx tsx bench/turns-data.ts               # writes bench/data/turns-manifest.json (text, pauses, categories)
//   npx tsx bench/turns-data.ts --wav /tmp/t  # also writes each utterance as a WAV to listen to
//
// The audio (about 6 MB) is made again at bench time from the manifest's pieces (a few seconds), not committed.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { concatPcm, encodeWav, parseWav, resample } from '../src/voice/audio.js';
import { EspeakTts } from '../src/voice/tts/espeak-tts.js';
import { BENCH_DATA_DIR, FSDD_DIR } from './data.js';
import { FLOOR_DBFS, trimAndLevel } from './speech-level.js';

export const RATE = 8000;
export const MANIFEST_FILE = path.join(BENCH_DATA_DIR, 'turns-manifest.json');

/**
 * What the caller says, in groups: 'complete' ones have no pause; the others pause after the word before each "|".
 * In the fsdd ones, "<4571>" is dictated with FSDD recordings, one digit after the other (80-250 ms apart).
 */
const SCRIPT: Record<string, string[]> = {
  question: [
    'What time do you open on Saturday?',
    'Can I change my appointment to next week?',
    'Do you take walk in patients?',
    'Is there a parking lot near the clinic?',
    'How much does a blood test cost?',
    'Do you have any cheap hotels in Paris?',
    'Is breakfast included in the price?',
    'How do I install the eSIM on my phone?',
    'Which countries are covered by the plan?',
    'Can I get a refund for my data plan?',
    'Does the plan include phone calls?',
    'Where can I pick up my prescription?',
  ],
  statement: [
    'I need to cancel my appointment for tomorrow.',
    'My daughter has a fever and a bad cough.',
    'I need a refill of my prescription.',
    'I want to book a flight to London.',
    'My flight was cancelled and I need a new one.',
    'We are two adults and one child.',
    'I bought an eSIM and it does not work.',
    'My phone says no service.',
    'I would like a table for two.',
    'Please send the tickets to my email address.',
  ],
  short: ['Yes, that is right.', 'No thanks.', 'Okay.', 'Thank you very much, that is all.'],
  filler: [
    'I would like to um | book an appointment for Tuesday.',
    'My name is uh | John Smith.',
    'I am calling because er | my card was charged twice.',
    'Can I um | speak to a nurse please?',
    'The problem is, you know | the app keeps crashing.',
    'I was wondering if uh | you have any rooms for Friday night.',
    'So it is like | the screen goes black after a minute.',
    'Um | I need to change the date of my trip.',
    'My booking reference is um | I think it is on the email.',
    'I want to uh | upgrade my data plan.',
  ],
  conjunction: [
    'I need to cancel my appointment and | book a new one next week.',
    'I tried to pay online but | the page would not load.',
    'I would like to travel to | Rome in the first week of June.',
    'Can you send the invoice to | my work address?',
    'I am looking for | a hotel near the station.',
    'The charge was for the | premium plan I never ordered.',
    'I want to speak with my | doctor about the results.',
    'My account number is | in the letter you sent me.',
    'I moved house so | I need to update my address.',
    'Could you check if | there is a flight on Sunday?',
    'I need the appointment for my | son, he is six.',
    'We will arrive late because | our train is delayed.',
    'I would like to add a bag and | choose a seat by the window.',
    'The package never arrived and | I have been waiting for two weeks.',
  ],
  digits: [
    'My account number is | four five seven | two nine one.',
    'My phone number is | five five five | two three four | eight eight one zero.',
    'The code is seven | three | nine two.',
    'My member number is | one two | three four | five six.',
    'My zip code is | nine oh two | one oh.',
    'The reference is | six six one | eight four.',
    'My date of birth is | oh three | one two | nineteen eighty.',
    'My card ends in | four | four two one.',
  ],
  fsdd: [
    'My phone number is | <555> | <2348> | <810>',
    'My account number is | <457> | <291>',
    'The order number is | <3306> | <72>',
    'My pin is | <49> | <16>',
    'My member number is | <812> | <559>',
    'The code on the card is | <70> | <4>',
    'It is | <2> | <918> | <63>',
    'My reference is | <11> | <5820>',
  ],
  // A complete sentence, a pause, then more: no rule on the words can know; the set keeps two to show it.
  afterthought: ['I need to book an appointment. | For Tuesday morning if possible.', 'Yes. | And can you send me the receipt too?'],
};

/**
 * Added after the rules were written for the set above (issue 21, part 3), to check them on utterances they were not
 * written against: more of the same kinds, more afterthoughts, openers (a greeting or an announcement, a pause,
 * then the request), numbers dictated to their full length (a 10-digit phone number, a 16-digit card, a 4-digit
 * PIN, a 5-digit zip code, a year said in words) and an alphanumeric code. Appended after the first set, so its
 * pauses and voices are drawn after the first set's and leave them as they were. `npm run bench:turns` reports both
 * sets.
 */
const ADDED: Record<string, string[]> = {
  question: [
    'Are you open on public holidays?',
    'How long does delivery take to Spain?',
    'Can I pay by credit card?',
    'What is the cancellation fee?',
    'Could you repeat that please?',
    'Is it possible to bring my dog?',
  ],
  statement: [
    'I would like to speak to someone about my bill.',
    'I lost my luggage at the airport.',
    'The heating in my room is not working.',
    'I never received the confirmation email.',
    'I want to cancel my subscription.',
    'We need a room with two beds.',
  ],
  short: ['Yes please.', 'No, that is it.', 'Sure.', 'That works for me.', 'Perfect, thank you.'],
  filler: ['I think it was uh | last Thursday.', 'Hmm | let me check my calendar.', 'The name on the booking is er | Maria Lopez.'],
  conjunction: [
    'I paid with my card but | the money was taken twice.',
    'Can you tell me if | the pharmacy is open late?',
    'I need a room for | three nights starting Friday.',
  ],
  afterthought: [
    'I need a taxi to the airport. | At six in the morning.',
    'My internet is not working. | Since yesterday evening.',
    'That is all. | Oh wait, can I also change my seat?',
    'I would like to make a reservation. | For four people on Friday.',
  ],
  opener: [
    'Hi. | I am calling about my order.',
    'I have a question. | Do you deliver on Sundays?',
    'Can you help me? | I was charged twice this month.',
    'Hello, good morning. | I would like to book a table.',
  ],
  digits: [
    'My phone number is | two zero two | five five five | zero one four three.',
    'My card number is | four five three two | one one two two | three three four four | five five six six.',
    'My pin is | one | nine | eight | four.',
    'I was born in | nineteen | eighty five.',
    'The booking code is | X J four | seven K.',
  ],
  fsdd: [
    'My phone number is | <202> | <555> | <0143>',
    'My card number is | <4532> | <1122> | <3344> | <5566>',
    'My pin is | <7> | <2> | <9> | <4>',
    'My zip code is | <941> | <07>',
  ],
};

/**
 * Written before the rules were tuned for afterthoughts (issue 21, part 3, second round), and held out: the rules are
 * designed on half of the 108 above and these check them. More afterthoughts (a complete question or sentence, a
 * pause, then more), more complete questions and statements, and some of every other kind so the mix stays like a
 * call's. Appended after ADDED, so the 108 keep their pauses and voices.
 */
const HELD_OUT: Record<string, string[]> = {
  question: [
    'Do you have anything available this afternoon?',
    'How late is the pharmacy open tonight?',
    'Can I use my plan in Japan?',
    'Is the airport shuttle free?',
    'Why was I charged a roaming fee?',
    'Which documents do I need to bring?',
  ],
  statement: [
    'My order arrived damaged.',
    'I would like to change my delivery address.',
    'The app will not let me log in.',
    'I need to renew my prescription before Friday.',
  ],
  short: ['No, thank you.', 'Yes, exactly.'],
  afterthought: [
    'Do you have a room for tonight? | With a sea view if possible.',
    'I want to change my flight. | To the one on Monday.',
    'Can I pay in cash? | Or only by card?',
    'My package has not arrived. | It was due on Tuesday.',
    'Thanks. | Actually, one more thing, do you sell gift cards?',
    'I need an appointment with doctor Patel. | Sometime next week.',
  ],
  filler: ['Is it possible to uh | move my booking to May?'],
  conjunction: ['I would like to know if | the hotel has a pool.', 'I called yesterday and | nobody called me back.'],
  opener: ['Good afternoon. | I would like to check my balance.', 'I have a quick question. | Is the museum open on Mondays?'],
  digits: [
    'My order number is | eight one | four four | two seven.',
    'My phone number is | three one two | five five five | zero nine eight seven.',
  ],
  fsdd: ['My account number is | <6034> | <18>', 'My pin is | <5> | <0> | <3> | <8>'],
};

const VOICES = [
  { voice: 'en-us', wordsPerMinute: 165 },
  { voice: 'en-us+klatt', wordsPerMinute: 160 },
  { voice: 'en-gb', wordsPerMinute: 170 },
  { voice: 'en-us+klatt2', wordsPerMinute: 150 },
  { voice: 'en-gb-x-rp', wordsPerMinute: 160 },
];
const DIGIT_NAMES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const PAUSE_MS = [300, 1500] as const;
const DIGIT_GAP_MS = [80, 250] as const;

/** One piece of an utterance: speech (espeak text or an FSDD digit) or inserted silence. */
export type Piece = { say: string } | { digit: number; speaker: string; take: number; gapBeforeMs: number } | { pauseMs: number };

export interface Utterance {
  id: string;
  category: string;
  voice: string;
  wordsPerMinute: number;
  /** Everything the caller says, in words (digits spelled). */
  text: string;
  /** Pauses: after how many words of `text`, and how long. */
  pauses: { afterWord: number; ms: number }[];
  pieces: Piece[];
  /** One of the utterances added after the rules were written (ADDED); absent in the first 68. */
  added?: true;
  /** One of the held-out utterances (HELD_OUT), written before the afterthought rules were tuned. */
  heldOut?: true;
}

function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const wordCount = (s: string) => s.split(/\s+/).filter((w) => /[a-z0-9]/i.test(w)).length;

/** The utterances, their pauses drawn with `seed`. */
export function buildManifest(seed = 21): Utterance[] {
  const random = prng(seed);
  const between = ([lo, hi]: readonly [number, number]) => Math.round((lo + random() * (hi - lo)) / 10) * 10;
  const out: Utterance[] = [];
  let n = 0;
  const scripts = [
    ...Object.entries(SCRIPT).map(([category, lines]) => ({ category, lines, added: false, heldOut: false, first: 0 })),
    ...Object.entries(ADDED).map(([category, lines]) => ({
      category,
      lines,
      added: true,
      heldOut: false,
      first: SCRIPT[category]?.length ?? 0,
    })),
    ...Object.entries(HELD_OUT).map(([category, lines]) => ({
      category,
      lines,
      added: true,
      heldOut: true,
      first: (SCRIPT[category]?.length ?? 0) + (ADDED[category]?.length ?? 0),
    })),
  ];
  for (const { category, lines, added, heldOut, first } of scripts) {
    lines.forEach((line, li) => {
      const i = first + li;
      const { voice, wordsPerMinute } = VOICES[n++ % VOICES.length]!;
      const pieces: Piece[] = [];
      const words: string[] = [];
      const pauses: Utterance['pauses'] = [];
      line.split('|').forEach((part, j) => {
        if (j > 0) {
          const ms = between(PAUSE_MS);
          pieces.push({ pauseMs: ms });
          pauses.push({ afterWord: words.length, ms });
        }
        for (const bit of part
          .trim()
          .split(/(<\d+>)/)
          .filter((b) => b.trim())) {
          const group = /^<(\d+)>$/.exec(bit);
          if (!group) {
            pieces.push({ say: bit.trim() });
            words.push(
              ...bit
                .trim()
                .split(/\s+/)
                .filter((w) => wordCount(w) > 0),
            );
            continue;
          }
          [...group[1]!].forEach((d, k) => {
            const speaker = (i + k) % 2 === 0 ? 'jackson' : 'nicolas';
            pieces.push({ digit: Number(d), speaker, take: Math.floor(random() * 5), gapBeforeMs: k === 0 ? 0 : between(DIGIT_GAP_MS) });
            words.push(DIGIT_NAMES[Number(d)]!);
          });
        }
      });
      out.push({
        id: `${category}-${i + 1}`,
        category,
        voice,
        wordsPerMinute,
        text: words.join(' '),
        pauses,
        pieces,
        ...(added ? { added: true as const } : {}),
        ...(heldOut ? { heldOut: true as const } : {}),
      });
    });
  }
  return out;
}

export function loadManifest(file = MANIFEST_FILE): Utterance[] {
  return JSON.parse(readFileSync(file, 'utf8')) as Utterance[];
}

// ---- audio ----

export interface RenderedUtterance {
  pcm: Int16Array;
  /** Each stretch of speech between inserted pauses: where it is (ms) and its words. */
  chunks: { startMs: number; endMs: number; text: string }[];
  /** Where the caller's last word ends (ms). */
  endMs: number;
}

const espeakCache = new Map<string, Float32Array>();
async function espeak(text: string, voice: string, wordsPerMinute: number): Promise<Float32Array> {
  const key = `${voice}|${wordsPerMinute}|${text}`;
  const known = espeakCache.get(key);
  if (known) return known;
  const parts: Int16Array[] = [];
  for await (const f of new EspeakTts({ sampleRate: RATE, voice, wordsPerMinute }).synthesize(text)) parts.push(f.pcm);
  const out = trimAndLevel(concatPcm(parts), RATE);
  espeakCache.set(key, out);
  return out;
}

function fsdd(dir: string, digit: number, speaker: string, take: number): Float32Array {
  const { pcm, sampleRate } = parseWav(readFileSync(path.join(dir, `${digit}_${speaker}_${take}.wav`)));
  return trimAndLevel(resample(pcm, sampleRate, RATE), RATE);
}

/** The utterance's audio: `leadMs` of floor, its pieces, `tailMs` of floor. */
export async function render(u: Utterance, opts: { leadMs?: number; tailMs?: number; fsddDir?: string } = {}): Promise<RenderedUtterance> {
  const parts: Float32Array[] = [];
  const chunks: RenderedUtterance['chunks'] = [];
  let atMs = 0;
  const add = (pcm: Float32Array) => {
    parts.push(pcm);
    atMs += (pcm.length * 1000) / RATE;
  };
  const silence = (ms: number) => add(new Float32Array(Math.round((ms * RATE) / 1000)));
  let chunk: { startMs: number; words: string[] } | undefined;
  const closeChunk = () => {
    if (chunk) chunks.push({ startMs: chunk.startMs, endMs: atMs, text: chunk.words.join(' ') });
    chunk = undefined;
  };
  silence(opts.leadMs ?? 600);
  for (const p of u.pieces) {
    if ('pauseMs' in p) {
      closeChunk();
      silence(p.pauseMs);
      continue;
    }
    if ('digit' in p) silence(p.gapBeforeMs);
    chunk ??= { startMs: atMs, words: [] };
    if ('say' in p) {
      add(await espeak(p.say, u.voice, u.wordsPerMinute));
      chunk.words.push(p.say);
    } else {
      add(fsdd(opts.fsddDir ?? FSDD_DIR, p.digit, p.speaker, p.take));
      chunk.words.push(DIGIT_NAMES[p.digit]!);
    }
  }
  closeChunk();
  const endMs = atMs;
  silence(opts.tailMs ?? 4000);
  // A faint noise floor (seeded per utterance): digital silence is no line.
  const random = prng(u.id.split('').reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7));
  const floor = 32768 * 10 ** (FLOOR_DBFS / 20);
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  const pcm = Int16Array.from(all, (s) => {
    const noise = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()) * floor;
    return Math.max(-32768, Math.min(32767, Math.round(s + noise)));
  });
  return { pcm, chunks, endMs };
}

async function main() {
  const args = process.argv.slice(2);
  const wavDir = args.includes('--wav') ? args[args.indexOf('--wav') + 1] : undefined;
  const manifest = buildManifest();
  writeFileSync(MANIFEST_FILE, `${JSON.stringify(manifest, null, 1)}\n`);
  const counts: Record<string, number> = {};
  for (const u of manifest) counts[u.category] = (counts[u.category] ?? 0) + 1;
  console.log(`wrote ${MANIFEST_FILE}: ${manifest.length} utterances`, counts);
  if (!wavDir) return;
  if (readdirSync(FSDD_DIR).length === 0) throw new Error(`no FSDD recordings in ${FSDD_DIR}`);
  mkdirSync(wavDir, { recursive: true });
  for (const u of manifest) writeFileSync(path.join(wavDir, `${u.id}.wav`), encodeWav((await render(u)).pcm, RATE));
  console.log(`wrote ${manifest.length} WAVs to ${wavDir}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
