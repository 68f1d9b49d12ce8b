// Local speech-to-text: pocketsphinx 5prealpha (Debian packages pocketsphinx, pocketsphinx-en-us), no network, no
// keys. One long-lived `pocketsphinx_continuous` per stream reads raw 16 kHz PCM from a pipe, ends utterances with its
// own VAD (0.5 s of silence) and prints each one's words with their times; flush() forces the pending one out by
// writing silence. Phone audio (8 kHz) is upsampled to the 16 kHz model with a narrowband starting point for cepstral
// mean normalization. Modes: the general en-us language model, a digits grammar, or a trigram model of the tenant's
// domain written here (its documents' words and generic caller phrasing), once per distinct corpus and process. Measurements behind these choices: bench/local-stt.ts.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EventQueue } from '../../lib/event-queue.js';
import { ProviderError } from '../../lib/provider-error.js';
import { DIGIT_OF } from '../spoken-digits.js';
import { type AudioFrame, dbfs, StreamResampler } from '../audio.js';
import type { STT, SttEvent, SttStream } from './stt.js';

export type PocketsphinxMode = 'general' | 'digits' | 'domain';

export interface PocketsphinxOptions {
  /** Rate of the pushed frames: 16000 (web) or 8000 (phone, upsampled here to the 16 kHz model). */
  sampleRate: 8000 | 16000;
  /**
   * 'general': the en-us language model (any English, least accurate); 'digits': only zero..nine and oh (a PIN, a
   * date of birth, an order number); 'domain': a language model of the words of `corpus` and of generic caller
   * phrasing (questions, requests, yes and no, thanks, dates, times, numbers), accurate when callers talk about what
   * the corpus says, in their own sentences; a word in neither is never recognized.
   */
  mode?: PocketsphinxMode;
  /** For mode 'domain': the tenant's knowledge (document text) and any phrases callers are expected to say. */
  corpus?: string;
  /** Default `pocketsphinx_continuous` on the PATH. */
  binary?: string;
  /** Default /usr/share/pocketsphinx/model/en-us (acoustic model en-us/, en-us.lm.bin, cmudict-en-us.dict). */
  modelDir?: string;
}

const NOT_INSTALLED = 'pocketsphinx is not installed (Debian packages pocketsphinx, pocketsphinx-en-us)';
const ENGINE_RATE = 16000;
const DIGIT_WORDS = ['zero', 'oh', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
/**
 * Silence that makes the engine end an utterance: its VAD waits 50 frames (0.5 s) and it reads its input in blocks
 * of 2048 samples (128 ms), plus a margin. Written all at once, it costs the engine a few milliseconds.
 */
const FLUSH_MS = 800;
/** Zeros: a faint noise instead made no difference to when or what the engine answered. */
const FLUSH_SILENCE = new Int16Array((ENGINE_RATE * FLUSH_MS) / 1000);
/**
 * Cepstral mean of band-limited (8 kHz) speech upsampled to 16 kHz: the model's own starting point is that of
 * wideband speech, and pocketsphinx's live normalization weighs it like 5 s of speech, so a short first answer on a
 * phone line was misheard as something else entirely. Measured with pocketsphinx_batch on espeak-ng sentences that
 * are not in the benchmark, resampled 16k -> 8k -> 16k.
 */
const NARROWBAND_CMN_INIT = '55.20,23.65,-29.75,53.47,-38.51,15.44,-7.79,-20.73,4.85,-17.54,14.16,-8.97,0.17';
/**
 * How long close() waits for the last utterance before killing the engine, beyond the time the engine may still need
 * for audio pushed faster than real time (a benchmark, a fallback chain's replay).
 */
const CLOSE_TIMEOUT_MS = 5000;

type Setup = { args: string[]; files: string[]; outOfVocabulary: string[] } | ProviderError;
/** Setups by options: the registry makes an engine per call, the files behind them are made once per process. */
const setups = new Map<string, Exclude<Setup, ProviderError>>();
const MAX_SETUPS = 256;

export class PocketsphinxStt implements STT {
  readonly provider = 'local';
  readonly sampleRate: 8000 | 16000;

  constructor(private readonly opts: PocketsphinxOptions) {
    if (opts.sampleRate !== 8000 && opts.sampleRate !== 16000)
      throw new Error(`pocketsphinx takes 8000 or 16000 Hz, not ${String(opts.sampleRate)}`);
    if (opts.mode === 'domain' && !opts.corpus?.trim()) throw new Error("pocketsphinx mode 'domain' needs a corpus");
    this.sampleRate = opts.sampleRate;
  }

  get mode(): PocketsphinxMode {
    return this.opts.mode ?? 'general';
  }

  /** Words of the corpus the dictionary does not know (mode 'domain'): they can never be recognized. */
  get outOfVocabulary(): string[] {
    const s = this.prepare();
    return s instanceof ProviderError ? [] : s.outOfVocabulary;
  }

  stream(opts: { language?: string; signal?: AbortSignal } = {}): PocketsphinxStream {
    const setup =
      opts.language && !/^en([-_]|$)/i.test(opts.language)
        ? new ProviderError('local', `pocketsphinx has no model for language ${opts.language}`, false)
        : this.prepare();
    return new PocketsphinxStream(this.opts, setup instanceof ProviderError ? setup : setup.args, opts.signal);
  }

  private prepare(): Setup {
    // Hashed: a corpus can be a tenant's whole knowledge, and the map holds one entry per version of it.
    const key = createHash('sha256')
      .update(JSON.stringify([this.opts.modelDir, this.opts.mode, this.opts.corpus, this.opts.sampleRate]))
      .digest('hex');
    const known = setups.get(key);
    // Checked each time: a temp-file cleaner may have removed the files, or an install added the model.
    if (known?.files.every((f) => existsSync(f))) return known;
    const setup = this.configure();
    if (!(setup instanceof ProviderError)) {
      // Old versions of tenants' corpora are dropped first (a Map iterates in insertion order).
      if (setups.size >= MAX_SETUPS) setups.delete(setups.keys().next().value!);
      setups.set(key, setup);
    }
    return setup;
  }

  /** Engine arguments and the files they name (grammar, dictionary, language model, feature parameters). */
  private configure(): Setup {
    const dir = this.opts.modelDir ?? '/usr/share/pocketsphinx/model/en-us';
    const hmm = path.join(dir, 'en-us');
    const dict = path.join(dir, 'cmudict-en-us.dict');
    const lm = path.join(dir, 'en-us.lm.bin');
    const mode = this.opts.mode ?? 'general';
    const files = [path.join(hmm, 'mdef'), path.join(hmm, 'feat.params'), dict, ...(mode === 'general' ? [lm] : [])];
    if (!files.every((f) => existsSync(f))) return new ProviderError('local', NOT_INSTALLED, false);

    const args = ['-hmm', hmm];
    const file = (name: string, content: string) => {
      const written = supportFile(name, content);
      files.push(written);
      return written;
    };
    let outOfVocabulary: string[] = [];
    if (mode === 'general') args.push('-lm', lm, '-dict', dict);
    else if (mode === 'digits') {
      const grammar = `#JSGF V1.0;\ngrammar digits;\npublic <digits> = <digit>+;\n<digit> = ${DIGIT_WORDS.join(' | ')};\n`;
      // A lower word insertion probability than the default 0.65: spoken digit strings (espeak-ng, 1 to 5 digits)
      // came out right 29 times in 40 instead of 20, mostly fewer stray short digits at an abrupt start.
      args.push(
        '-jsgf',
        file('digits.gram', grammar),
        '-dict',
        file('digits.dict', `${[...readDictionary(dict, new Set(DIGIT_WORDS)).values()].flat().join('\n')}\n`),
        '-wip',
        '0.01',
      );
    } else {
      // The vocabulary is the corpus's and the phrasing's only. General English's 5000 most frequent words (the en-us
      // model's unigrams) added to it lowered the WER a little (held-out questions 0.41 vs 0.42, the benchmark's
      // older sentences 0.39 vs 0.42), but the questions' key words were heard less often (0.63 vs 0.67), and
      // those are what retrieval needs: bench/local-stt.ts (d), results domain_with_general_words_removed.
      const text = `${this.opts.corpus ?? ''}\n${CALLER_PHRASING}`;
      // First every word the text could need (each one it looks up, spelled-out numbers and letters included), so
      // that only those are taken from the dictionary: indexing all of it took ~50 ms, longer than the rest.
      const asked = new Set<string>();
      corpusSentences(text, { has: (w) => (asked.add(w), false) });
      const dictionary = readDictionary(dict, asked);
      const { sentences } = corpusSentences(text, dictionary);
      outOfVocabulary = corpusSentences(this.opts.corpus ?? '', dictionary).unknown;
      const words = [...new Set(sentences.flat())].filter((w) => w !== UNKNOWN);
      args.push(
        '-lm',
        file('domain.arpa', languageModel(sentences)),
        '-dict',
        file('domain.dict', `${words.flatMap((w) => dictionary.get(w)!).join('\n')}\n`),
      );
    }
    if (this.opts.sampleRate === 8000) {
      // The model's feat.params is read after the command line and would override a plain -cmninit.
      const params = readFileSync(path.join(hmm, 'feat.params'), 'utf8').replace(/^-cmninit .*$/m, `-cmninit ${NARROWBAND_CMN_INIT}`);
      args.push('-featparams', file('feat-8k.params', params));
    }
    return { args, files, outOfVocabulary };
  }
}

interface Segment {
  word: string;
  startS: number;
  endS: number;
  probability: number;
}

/** "word start end posterior", one line per word after each utterance's text (`-time yes`). */
const SEGMENT_LINE = /^(\S+) (\d+\.\d+) (\d+\.\d+) (\S+)$/;

/** Below this a 20 ms frame is line noise, not speech (the energy VAD's floor). */
const QUIET_DBFS = -50;

export class PocketsphinxStream implements SttStream {
  readonly events: AsyncIterable<SttEvent> = { [Symbol.asyncIterator]: () => this.iterate() };
  private readonly queue = new EventQueue<SttEvent>();
  private readonly child: ChildProcessWithoutNullStreams | undefined;
  private readonly upsampler: StreamResampler | undefined;
  private failure: ProviderError | undefined;
  /** The caller's timeline: the first frame's timestamp; the engine counts from that frame. */
  private baseMs: number | undefined;
  /** Samples written to the engine, and the silence among them that flush() added (not the caller's audio). */
  private engineSamples = 0;
  private injected: { at: number; samples: number }[] = [];
  private heardSinceFlush = false;
  private stdoutRest = '';
  private stderrTail = '';
  private utterance: { text: string; segments: Segment[] } | undefined;
  private exited = false;
  private killed = false;
  private closing: Promise<void> | undefined;
  private readonly startedAt = performance.now();

  constructor(
    private readonly opts: PocketsphinxOptions,
    setup: string[] | ProviderError,
    signal?: AbortSignal,
  ) {
    if (opts.sampleRate === 8000) this.upsampler = new StreamResampler(8000, ENGINE_RATE);
    if (setup instanceof ProviderError || signal?.aborted) {
      this.exited = true;
      if (setup instanceof ProviderError) this.failure = setup;
      this.queue.end();
      return;
    }
    // Node's stdio "pipes" are socket pairs, and pocketsphinx cannot open /dev/stdin when it is a socket (ENXIO):
    // cat turns it into a real pipe. Its own process group lets abort kill sh, cat and the engine together. sh waits
    // for cat too, so an engine that dies is noticed at the next write (a call sends a frame every 20 ms).
    const args = ['-infile', '/dev/stdin', '-time', 'yes', ...setup];
    this.child = spawn('/bin/sh', ['-c', 'cat | "$0" "$@"', opts.binary ?? 'pocketsphinx_continuous', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => this.onOutput(chunk));
    this.child.stderr.setEncoding('utf8');
    // Its log is long (every utterance's search statistics); only the last lines can explain a failure.
    this.child.stderr.on('data', (chunk: string) => (this.stderrTail = (this.stderrTail + chunk).slice(-4000)));
    // The engine gone, writes fail with EPIPE; the close event below says what happened.
    this.child.stdin.on('error', () => {});
    this.child.on('error', (err) => this.fail(new ProviderError('local', `could not start pocketsphinx: ${err.message}`, false)));
    this.child.on('close', (code, sig) => this.onExit(code, sig));
    signal?.addEventListener('abort', () => this.kill(), { once: true });
  }

  /** The stream's sh, leader of its process group (sh, cat, pocketsphinx): for measuring CPU and memory. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  push(frame: AudioFrame): void {
    if (frame.sampleRate !== this.opts.sampleRate)
      throw new Error(`pocketsphinx stream expects ${this.opts.sampleRate} Hz frames, got ${frame.sampleRate}`);
    if (this.exited || this.closing || frame.pcm.length === 0) return;
    this.baseMs ??= frame.timestampMs;
    this.heardSinceFlush = true;
    // Frames too quiet to be speech go in as digital silence: a few seconds of faint line noise (about -65 dBFS)
    // make the engine's voice detector garble the next utterance ("when do you close on saturday" -> "where are
    // you ah ha ha"); zeros do not. Measured with the in-call noise of the memory transport.
    const pcm = dbfs(frame.pcm) < QUIET_DBFS ? new Int16Array(frame.pcm.length) : frame.pcm;
    this.write(this.upsampler ? this.upsampler.push(pcm) : pcm);
  }

  flush(): void {
    if (this.exited || this.closing || !this.heardSinceFlush) return;
    this.heardSinceFlush = false;
    this.injected.push({ at: this.engineSamples, samples: FLUSH_SILENCE.length });
    this.write(FLUSH_SILENCE);
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      if (this.exited || !this.child) return resolve();
      // At the end of its input the engine finishes the utterance in progress, prints it and exits.
      this.child.stdin.end();
      const ahead = Math.max(0, (this.engineSamples * 1000) / ENGINE_RATE - (performance.now() - this.startedAt));
      const timer = setTimeout(() => this.kill(), CLOSE_TIMEOUT_MS + ahead);
      this.child.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.closing;
  }

  private async *iterate(): AsyncGenerator<SttEvent> {
    for await (const event of this.queue) yield event;
    if (this.failure) throw this.failure;
  }

  private write(pcm: Int16Array): void {
    if (pcm.length === 0) return;
    this.engineSamples += pcm.length;
    // A copy: the caller may reuse its frame while the bytes still wait in the pipe.
    this.child?.stdin.write(Buffer.from(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength)));
  }

  private onOutput(chunk: string): void {
    const lines = (this.stdoutRest + chunk).split('\n');
    this.stdoutRest = lines.pop()!;
    for (const line of lines) {
      const seg = SEGMENT_LINE.exec(line);
      if (seg) {
        this.utterance ??= { text: '', segments: [] };
        this.utterance.segments.push({ word: seg[1]!, startS: Number(seg[2]), endS: Number(seg[3]), probability: Number(seg[4]) });
      } else {
        // A text line starts the next utterance (an empty one is printed for noise: it has no words).
        this.emit();
        this.utterance = { text: line.trim(), segments: [] };
      }
    }
    // The engine prints an utterance and its word times with one flush: when the output stops at a line's end, the
    // utterance is complete. (One of over 4 KB of output could be cut in two; a phone utterance never gets there.)
    if (this.stdoutRest === '') this.emit();
  }

  private emit(): void {
    const u = this.utterance;
    this.utterance = undefined;
    if (!u?.text) return;
    const words = u.segments.filter((s) => !/^[<[(]/.test(s.word));
    const timed = words.length > 0 ? words : u.segments;
    const first = timed[0];
    const last = timed[timed.length - 1];
    // Word posteriors come from the language-model search; the grammar search reports 1 for every word.
    const confidence =
      this.opts.mode === 'digits' || words.length === 0
        ? undefined
        : words.reduce((n, w) => n + Math.min(1, w.probability), 0) / words.length;
    this.queue.push({
      type: 'final',
      text: u.text,
      startMs: first ? this.streamMs(first.startS) : this.streamMs(0),
      endMs: last ? this.streamMs(last.endS) : this.streamMs(0),
      ...(confidence === undefined ? {} : { confidence }),
      endOfTurn: true,
    });
  }

  /** Engine seconds (counted over everything written, flush silence included) -> the caller's timeline. */
  private streamMs(engineSeconds: number): number {
    const at = Math.round(engineSeconds * ENGINE_RATE);
    let samples = at;
    for (const i of this.injected) if (i.at < at) samples -= Math.min(i.samples, at - i.at);
    return (this.baseMs ?? 0) + Math.round((samples * 1000) / ENGINE_RATE);
  }

  private onExit(code: number | null, sig: NodeJS.Signals | null): void {
    this.exited = true;
    if (this.stdoutRest) this.onOutput('\n');
    this.emit();
    if (this.killed || (this.closing && code === 0)) return this.queue.end();
    // sh answers 127 for a command it cannot find, 126 for one it cannot run; 128 + n when the engine died of signal n.
    if (code === 127 || code === 126) return this.fail(new ProviderError('local', NOT_INSTALLED, false));
    if (sig || (code !== null && code > 128))
      return this.fail(new ProviderError('local', `pocketsphinx was killed (${sig ?? `signal ${code! - 128}`})`, true));
    const reason =
      this.stderrTail
        .split('\n')
        .filter((l) => /^(ERROR|FATAL)/.test(l))
        .pop() ?? 'no error message';
    this.fail(new ProviderError('local', `pocketsphinx exited with ${String(code)}: ${reason.slice(0, 300)}`, false));
  }

  private fail(err: ProviderError): void {
    if (this.failure) return;
    this.failure = err;
    this.queue.end();
  }

  /** Ends the engine at once (abort, or a close that took too long): no more events. */
  private kill(): void {
    this.killed = true;
    this.queue.end();
    if (!this.child?.pid || this.exited) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * The digits in a transcript, in order: "four oh two" -> "402", "my pin is 1 2 3 4" -> "1234". Other words are
 * skipped, so the general model's "for" or "to" do not count as digits.
 */
export function digitsFrom(text: string): string {
  return tokens(text)
    .map((w) => (/^\d+$/.test(w) ? w : (DIGIT_OF[w] ?? '')))
    .join('');
}

/** Lowercase words as the dictionary spells them (letters, digits, apostrophes). */
function tokens(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9' ]+/g, ' ')
    .split(/\s+/)
    .map((w) => w.replace(/^'+|'+$/g, ''))
    .filter(Boolean);
}

/** Unknown to the dictionary: n-grams across it are not counted, so the words on either side are not made neighbours. */
const UNKNOWN = '<unk>';
const ONES = [
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
  'eleven',
  'twelve',
  'thirteen',
  'fourteen',
  'fifteen',
  'sixteen',
  'seventeen',
  'eighteen',
  'nineteen',
];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];
const CURRENCY: Record<string, string> = { $: 'dollars', '£': 'pounds', '€': 'euros' };
/** Abbreviated units as said aloud. */
const UNITS: Record<string, string> = { kg: 'kilos', km: 'kilometers', gb: 'gigabytes', mb: 'megabytes', min: 'minutes', hrs: 'hours' };

/** 0..999999 as spoken: 129 -> one hundred twenty nine. */
function numberWords(n: number): string[] {
  if (n < 20) return [ONES[n]!];
  if (n < 100) return [TENS[Math.floor(n / 10)]!, ...(n % 10 ? [ONES[n % 10]!] : [])];
  if (n < 1000) return [ONES[Math.floor(n / 100)]!, 'hundred', ...(n % 100 ? numberWords(n % 100) : [])];
  return [...numberWords(Math.floor(n / 1000)), 'thousand', ...(n % 1000 ? numberWords(n % 1000) : [])];
}

/** "fifteen" -> "fifteenth", "twenty two" -> "twenty second". */
function ordinal(words: string[]): string[] {
  const last = words.at(-1)!;
  const special: Record<string, string> = {
    one: 'first',
    two: 'second',
    three: 'third',
    five: 'fifth',
    eight: 'eighth',
    nine: 'ninth',
    twelve: 'twelfth',
  };
  return [...words.slice(0, -1), special[last] ?? (last.endsWith('y') ? `${last.slice(0, -1)}ieth` : `${last}th`)];
}

/**
 * A number as a caller says it: "8:30" eight thirty, "$4.50" four fifty dollars, "2019" twenty nineteen, "911" and
 * "06" digit by digit (as phone numbers are said), "15th" fifteenth, "20GB" twenty gigabytes, "8am" eight a m.
 */
function spokenNumber(token: string): string[] {
  const [, currency, whole, sep, part, percent, unit] = /^([$£€]?)([\d,]+)(?:([.:])(\d+))?(%?)(\p{L}*)$/u.exec(token)!;
  const digits = whole!.replace(/,/g, '');
  const digitByDigit = () => [...digits].map((d) => (d === '0' ? 'oh' : ONES[Number(d)]!));
  let words: string[];
  if (digits.length > 1 && digits.startsWith('0')) words = digitByDigit();
  else if (!currency && /^[2-9]11$/.test(digits)) words = digitByDigit();
  else if (!currency && /^(1[1-9]|20)[1-9]\d$/.test(whole!))
    words = [...numberWords(Number(digits.slice(0, 2))), ...numberWords(Number(digits.slice(2)))];
  else if (digits.length <= 6) words = numberWords(Number(digits));
  else words = digitByDigit();
  const u = unit!.toLowerCase();
  if (sep === ':') words.push(...(Number(part) === 0 ? [] : Number(part) < 10 ? ['oh', ONES[Number(part)]!] : numberWords(Number(part))));
  else if (sep === '.') words.push(...(currency ? numberWords(Number(part)) : ['point', ...[...part!].map((d) => ONES[Number(d)]!)]));
  if (/^(st|nd|rd|th)$/.test(u)) words = ordinal(words);
  else if (u === 'am' || u === 'pm') words.push(u[0]!, 'm');
  else if (u) words.push(UNITS[u] ?? u);
  if (currency) words.push(CURRENCY[currency]!);
  if (percent) words.push('percent');
  return words;
}

/**
 * Text as sentences of dictionary words: numbers spelled out, "Walk-in" walk in, "eSIM" e sim, "QR" q r; a word
 * the dictionary does not know becomes UNKNOWN. Sentences end at . ! ? ; and at line ends (headings, lists).
 */
export function corpusSentences(text: string, known: { has(word: string): boolean }): { sentences: string[][]; unknown: string[] } {
  const sentences: string[][] = [];
  const unknown = new Set<string>();
  for (const raw of text.replace(/[’‘]/g, "'").split(/(?<=[.!?;])\s+|\n+/)) {
    const words: string[] = [];
    const say = (token: string, spoken: string[]) => {
      // Every word looked up (no early stop): the lookups name the words to take from the dictionary.
      if (spoken.filter((w) => !known.has(w)).length === 0) words.push(...spoken);
      else {
        unknown.add(token.toLowerCase());
        words.push(UNKNOWN);
      }
    };
    let previous = '';
    for (const match of raw.match(/[$£€]?\d[\d,]*(?:[.:]\d+)?%?\p{L}*|\p{L}[\p{L}'-]*/gu) ?? []) {
      // "mid-" of "mid-1900s", "students'": what follows the last letter is not part of the word.
      const token = match.replace(/['-]+$/, '');
      const word = token.toLowerCase();
      const afterNumber = /^[$£€\d]/.test(previous) || ONES.includes(previous) || TENS.includes(previous);
      previous = word;
      if (/^[$£€\d]/.test(token)) say(token, spokenNumber(token));
      // am and pm after a time are letters: "eight a m".
      else if ((word === 'am' || word === 'pm') && afterNumber) say(token, [word[0]!, 'm']);
      else if (UNITS[word]) say(token, [UNITS[word]]);
      else if (known.has(word)) words.push(word);
      // Hyphenated and camel-case words by their parts; short capitals (an acronym) letter by letter.
      else
        say(
          token,
          token
            .split(/-+|(?<=\p{Ll})(?=\p{Lu})/u)
            .flatMap((p) => (!known.has(p.toLowerCase()) && /^\p{Lu}{2,5}$/u.test(p) ? p.toLowerCase().split('') : [p.toLowerCase()])),
        );
    }
    if (words.some((w) => w !== UNKNOWN)) sentences.push(words);
  }
  return { sentences, unknown: [...unknown] };
}

/**
 * A language model in ARPA format (trigrams by default): interpolated Kneser-Ney, one discount per order from the
 * counts of counts, written in back-off form. Kneser-Ney's lower orders count in how many different contexts a word
 * was seen rather than how often, which is what predicts it in a sentence nobody wrote down.
 */
export function languageModel(sentences: string[][], order = 3): string {
  // raw[k]: how often each n-gram of k + 1 words (joined by spaces) occurs.
  const raw: Map<string, number>[] = Array.from({ length: order }, () => new Map());
  for (const sentence of sentences) {
    const words = ['<s>', ...sentence, '</s>'];
    for (let i = 0; i < words.length; i++) {
      for (let k = 0; k < order && k <= i; k++) {
        const key = words.slice(i - k, i + 1).join(' ');
        raw[k]!.set(key, (raw[k]!.get(key) ?? 0) + 1);
      }
    }
  }
  raw[0]!.delete('<s>');
  // Below the highest order, an n-gram counts its distinct left neighbours, except at a sentence start (it has none).
  const counts = raw.map((map, k) => {
    if (k === order - 1) return map;
    const continuation = new Map<string, number>();
    for (const key of map.keys()) if (key.startsWith('<s> ')) continuation.set(key, map.get(key)!);
    for (const longer of raw[k + 1]!.keys()) {
      const key = longer.slice(longer.indexOf(' ') + 1);
      if (!key.startsWith('<s>')) continuation.set(key, (continuation.get(key) ?? 0) + 1);
    }
    return continuation;
  });
  // Unknown words take no share of the unigrams (above them, their share goes to the back-off).
  counts[0]!.delete(UNKNOWN);
  const discount = counts.map((map) => {
    let n1 = 0;
    let n2 = 0;
    for (const c of map.values())
      if (c === 1) n1++;
      else if (c === 2) n2++;
    return n1 > 0 && n2 > 0 ? Math.min(0.9, Math.max(0.1, n1 / (n1 + 2 * n2))) : 0.5;
  });

  const written = (key: string) => !key.split(' ').includes(UNKNOWN);
  // prob[k]: the model's probability of each written n-gram's last word after the others.
  const prob: Map<string, number>[] = [];
  const backoff = new Map<string, number>();
  const vocabulary = counts[0]!.size;
  counts.forEach((map, k) => {
    const d = discount[k]!;
    // Per context: total count and number of different followers (the mass the discount moves to the lower order).
    const contexts = new Map<string, { total: number; types: number }>();
    for (const [key, c] of map) {
      const h = k === 0 ? '' : key.slice(0, key.lastIndexOf(' '));
      const t = contexts.get(h) ?? { total: 0, types: 0 };
      t.total += c;
      t.types++;
      contexts.set(h, t);
    }
    const p = new Map<string, number>();
    for (const [key, c] of map) {
      if (!written(key)) continue;
      const cut = key.lastIndexOf(' ');
      const { total, types } = contexts.get(k === 0 ? '' : key.slice(0, cut))!;
      // The lower order: the same word after one word less of context; below the unigrams, every word alike.
      const lower = k === 0 ? 1 / vocabulary : prob[k - 1]!.get(key.slice(key.indexOf(' ') + 1))!;
      p.set(key, Math.max(0, c - d) / total + ((d * types) / total) * lower);
    }
    prob.push(p);
    if (k === 0) return;
    // Back-off weights of the contexts: the mass left for followers not seen, over what the lower order gives them.
    const seen = new Map<string, { p: number; lower: number }>();
    for (const [key, value] of p) {
      const h = key.slice(0, key.lastIndexOf(' '));
      const s = seen.get(h) ?? { p: 0, lower: 0 };
      s.p += value;
      s.lower += prob[k - 1]!.get(key.slice(key.indexOf(' ') + 1))!;
      seen.set(h, s);
    }
    for (const [h, s] of seen) backoff.set(h, Math.max(1e-10, 1 - s.p) / Math.max(1e-10, 1 - s.lower));
  });

  const log = (x: number) => Math.log10(x).toFixed(4);
  const sections = prob.map((p, k) => {
    const lines = [...p].map(([key, value]) => `${log(value)} ${key}${backoff.has(key) ? ` ${log(backoff.get(key)!)}` : ''}`);
    if (k === 0) lines.unshift(`-99 <s> ${log(backoff.get('<s>') ?? 1)}`);
    return lines;
  });
  return [
    '\\data\\',
    ...sections.map((lines, k) => `ngram ${k + 1}=${lines.length}`),
    '',
    ...sections.flatMap((lines, k) => [`\\${k + 1}-grams:`, ...lines, '']),
    '\\end\\',
    '',
  ].join('\n');
}

/** The lines of the pronunciation dictionary (cmudict-en-us, 134k words) for `words`, alternatives ("word(2)") included. */
function readDictionary(file: string, words: ReadonlySet<string>): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const space = line.indexOf(' ');
    if (space < 1) continue;
    const word = line.charCodeAt(space - 1) === 41 /* ) */ ? line.slice(0, line.lastIndexOf('(', space)) : line.slice(0, space);
    if (words.has(word)) found.set(word, [...(found.get(word) ?? []), line]);
  }
  return found;
}

/** Writes a file the engine reads (grammar, dictionary, model parameters) once, named by its content. */
function supportFile(name: string, content: string): string {
  const dir = path.join(tmpdir(), 'pocketsphinx-stt');
  const file = path.join(dir, `${createHash('sha256').update(content).digest('hex').slice(0, 16)}-${name}`);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    // Write then rename: another process preparing the same file never sees half of it.
    const partial = `${file}.${process.pid}.partial`;
    writeFileSync(partial, content);
    renameSync(partial, file);
  }
  return file;
}

/**
 * How callers talk to any business, for mode 'domain': greetings, questions, requests and complaints, yes and no,
 * thanks and goodbye, asking for a person, names and numbers, dates and times. Written as a caller would say it,
 * with generic words only (the tenant's document brings the topic), and not tuned on the benchmark's results.
 */
const CALLER_PHRASING = `
Hello. Hi. Hi there. Good morning. Good afternoon. Good evening. Hello, is this the right number? Hello, can you hear me? Hi, I have a question. Hello, I am calling about my order. Hi, I'm calling to ask about something. I have a quick question. I was wondering if you could help me. Can you help me? I need some help. I need some information. Could you give me some information about that?
What is it? What is that? What are your opening hours? What time do you open? What time do you close? When are you open? Are you open today? Are you open tomorrow? Are you open at the weekend? Where are you? Where are you located? What is your address? How do I get there? How can I contact you? What is your phone number? What is your email address? Do you have a website?
How much is it? How much does it cost? How much do you charge? What is the price? What does it cost? Is it free? Is there a fee? Is there a charge for that? Are there any extra costs? Is that included? What is included in the price? Do you have anything cheaper? Can I pay by card? Can I pay in cash? How can I pay? When do I have to pay? Do I have to pay now?
Do you have it? Do you do that? Do you offer that? Do you sell them? Can I get one? Is it possible? Is it possible to do that today? Is there anything I can do? Is there a way to do that? Are there any left? Which one do you recommend? What do you recommend? What are my options? What is the difference? Which one is better? How does it work? How do I do that? How do I use it? How long does it take? How long will it take? How long is it valid? How many can I have? How often? How soon can I get it? When will it be ready? When can I start? When does it start? When does it end? What happens if I am late? What happens if it does not work? What should I do? What do I need? What do I need to bring? Do I need to do anything? Do I need to book? Can I do it online? Can I do it by phone? Can you send it to me? Can you send me an email? Will I get a confirmation?
I would like to book. I would like to make a booking. I would like to order. I want to buy one. I want to cancel. I want to cancel my order. I need to change my booking. Can I change it? Can I change the time? Can I change the date? Can I cancel it? Can I get a refund? I want my money back. I want to make a complaint. It does not work. It is not working. Something is wrong. I have a problem. I have a problem with my order. I lost it. I forgot my password. I did not get it. I never received it. I got the wrong one. It was broken. Can you check that for me? Can you look into it? Can you tell me the status? Can you fix it? Please help me. Could you repeat that? Sorry, what did you say? Can you say that again? Could you speak more slowly? I did not understand. What do you mean? I don't understand. I'm not sure. Let me think. Just a moment. Hold on a second. Wait a minute.
Yes. No. Yes please. No thank you. No thanks. Yeah. Yep. Nope. Sure. Of course. Okay. OK. All right. Alright. Right. Fine. Great. Perfect. That's right. That is correct. Correct. That's fine. That's great. Sounds good. That works for me. Exactly. I think so. I don't think so. Maybe. Not really. Not yet. Not now. Never mind. Go ahead. Yes, go ahead. Yes, that's it. No, that's wrong. No, that's not right. That's not what I said.
Thank you. Thanks. Thank you very much. Thanks a lot. Thank you for your help. That's very helpful. That is all. That's all. That's all, thank you. That's everything. Nothing else. Nothing else, thanks. No, that's all. Goodbye. Bye. Bye bye. Have a nice day. Have a good day. You too. See you.
Can I speak to someone? Can I talk to a person? I want to speak to a real person. I would like to talk to someone. Can I speak to a human? Can you put me through to someone? Transfer me to an agent. Can I speak to the manager? Can I speak to customer service? Operator. Representative. Is there someone I can talk to? Can someone call me back? Please call me back. Can I leave a message?
My name is John Smith. My name is Maria. My phone number is five five five one two three four. My number is zero seven seven double one. My email is john at gmail dot com. My order number is one two three four five. My reference number is A B C one two three. My date of birth is the fifth of May nineteen eighty. I live in London. The zip code is. My account number is.
Zero. One. Two. Three. Four. Five. Six. Seven. Eight. Nine. Ten. Eleven. Twelve. Thirteen. Fourteen. Fifteen. Sixteen. Seventeen. Eighteen. Nineteen. Twenty. Thirty. Forty. Fifty. Sixty. Seventy. Eighty. Ninety. A hundred. One hundred. Two hundred. A thousand. Twenty one. Thirty five. Forty eight. Ninety nine. One hundred and fifty. Two thousand. Half. A quarter. First. Second. Third. Fourth. Fifth. Tenth. Twentieth. Thirty first. One person. Two people. Three of us. A couple of days. A few weeks. Ten dollars. Twenty euros. Fifty pounds. Five percent.
Monday. Tuesday. Wednesday. Thursday. Friday. Saturday. Sunday. On Monday. Next Tuesday. This Wednesday. Last Thursday. On Friday morning. Saturday afternoon. Sunday evening. January. February. March. April. May. June. July. August. September. October. November. December. On the first of March. On the second of April. On the fifteenth of June. On July the fourth. In August. At the end of September. In October next year. Today. Tomorrow. Yesterday. The day after tomorrow. Tonight. This morning. This afternoon. This evening. This week. Next week. Last week. This month. Next month. This year. At the weekend. In two weeks. In a few days. As soon as possible. Right now. Later. Earlier.
At nine. At ten o'clock. At half past two. At quarter past three. At quarter to four. At eleven thirty. At two fifteen. At four forty five. At eight am. At three pm. In the morning. In the afternoon. In the evening. At noon. At midnight. Around lunchtime. Before ten. After five. Between two and four. For an hour. For thirty minutes. In ten minutes.
`;
