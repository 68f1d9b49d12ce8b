// Local speech-to-text: pocketsphinx 5prealpha (Debian packages pocketsphinx, pocketsphinx-en-us), no network, no
// keys. One long-lived `pocketsphinx_continuous` per stream reads raw 16 kHz PCM from a pipe, ends utterances with its
// own VAD (0.5 s of silence) and prints each one's words with their times; flush() forces the pending one out by
// writing silence. Phone audio (8 kHz) is upsampled to the 16 kHz model with a narrowband starting point for cepstral
// mean normalization. Modes: the general en-us language model, a digits grammar, or a language model written here
// from the tenant's expected phrases. Measurements behind these choices: bench/local-stt.ts.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EventQueue } from '../../lib/event-queue.js';
import { ProviderError } from '../../lib/provider-error.js';
import { type AudioFrame, StreamResampler } from '../audio.js';
import type { STT, SttEvent, SttStream } from './stt.js';

export type PocketsphinxMode = 'general' | 'digits' | 'phrases';

export interface PocketsphinxOptions {
  /** Rate of the pushed frames: 16000 (web) or 8000 (phone, upsampled here to the 16 kHz model). */
  sampleRate: 8000 | 16000;
  /**
   * 'general': the en-us language model (any English, least accurate); 'digits': only zero..nine and oh (a PIN, a
   * date of birth, an order number); 'phrases': a language model built from `phrases` (accurate when callers say
   * what the tenant expects, poor on anything else).
   */
  mode?: PocketsphinxMode;
  /** What callers are expected to say, for mode 'phrases'; words missing from the dictionary are left out. */
  phrases?: string[];
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

export class PocketsphinxStt implements STT {
  readonly provider = 'local';
  readonly sampleRate: 8000 | 16000;

  constructor(private readonly opts: PocketsphinxOptions) {
    if (opts.sampleRate !== 8000 && opts.sampleRate !== 16000) throw new Error(`pocketsphinx takes 8000 or 16000 Hz, not ${String(opts.sampleRate)}`);
    if (opts.mode === 'phrases' && !opts.phrases?.length) throw new Error("pocketsphinx mode 'phrases' needs phrases");
    this.sampleRate = opts.sampleRate;
  }

  /** Words of `phrases` the dictionary does not know (mode 'phrases'): they can never be recognized. */
  get outOfVocabulary(): string[] {
    const s = this.prepare();
    return s instanceof ProviderError ? [] : s.outOfVocabulary;
  }

  stream(opts: { language?: string; signal?: AbortSignal } = {}): PocketsphinxStream {
    const setup = opts.language && !/^en([-_]|$)/i.test(opts.language) ? new ProviderError('local', `pocketsphinx has no model for language ${opts.language}`, false) : this.prepare();
    return new PocketsphinxStream(this.opts, setup instanceof ProviderError ? setup : setup.args, opts.signal);
  }

  private prepare(): Setup {
    const key = JSON.stringify([this.opts.modelDir, this.opts.mode, this.opts.phrases, this.opts.sampleRate]);
    const known = setups.get(key);
    // Checked each time: a temp-file cleaner may have removed the files, or an install added the model.
    if (known?.files.every((f) => existsSync(f))) return known;
    const setup = this.configure();
    if (!(setup instanceof ProviderError)) setups.set(key, setup);
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
      args.push('-jsgf', file('digits.gram', grammar), '-dict', file('digits.dict', dictionaryFor(dict, DIGIT_WORDS)), '-wip', '0.01');
    } else {
      const known = dictionaryWords(dict);
      const words = new Set((this.opts.phrases ?? []).flatMap(tokens));
      outOfVocabulary = [...words].filter((w) => !known.has(w));
      const phrases = (this.opts.phrases ?? []).map((p) => tokens(p).filter((w) => known.has(w))).filter((p) => p.length > 0);
      if (phrases.length === 0) return new ProviderError('local', 'none of the phrases has a word the dictionary knows', false);
      args.push('-lm', file('phrases.arpa', bigramArpa(phrases)), '-dict', file('phrases.dict', dictionaryFor(dict, [...new Set(phrases.flat())])));
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
    this.child = spawn('/bin/sh', ['-c', 'cat | "$0" "$@"', opts.binary ?? 'pocketsphinx_continuous', ...args], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
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
    if (frame.sampleRate !== this.opts.sampleRate) throw new Error(`pocketsphinx stream expects ${this.opts.sampleRate} Hz frames, got ${frame.sampleRate}`);
    if (this.exited || this.closing || frame.pcm.length === 0) return;
    this.baseMs ??= frame.timestampMs;
    this.heardSinceFlush = true;
    this.write(this.upsampler ? this.upsampler.push(frame.pcm) : frame.pcm);
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
    const confidence = this.opts.mode === 'digits' || words.length === 0 ? undefined : words.reduce((n, w) => n + Math.min(1, w.probability), 0) / words.length;
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
    if (sig || (code !== null && code > 128)) return this.fail(new ProviderError('local', `pocketsphinx was killed (${sig ?? `signal ${code! - 128}`})`, true));
    const reason = this.stderrTail.split('\n').filter((l) => /^(ERROR|FATAL)/.test(l)).pop() ?? 'no error message';
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
  const value: Record<string, string> = { zero: '0', oh: '0', o: '0', one: '1', two: '2', three: '3', four: '4', five: '5', six: '6', seven: '7', eight: '8', nine: '9' };
  return tokens(text)
    .map((w) => (/^\d+$/.test(w) ? w : (value[w] ?? '')))
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

/**
 * A bigram language model in ARPA format from phrases (lists of words): absolute discounting (0.5) with back-off
 * to add-one unigrams, so every word of the vocabulary can follow any other, only less likely than seen pairs.
 */
export function bigramArpa(phrases: string[][]): string {
  const DISCOUNT = 0.5;
  const unigrams = new Map<string, number>();
  const bigrams = new Map<string, Map<string, number>>();
  let total = 0;
  for (const phrase of phrases) {
    const words = ['<s>', ...phrase, '</s>'];
    for (let i = 1; i < words.length; i++) {
      unigrams.set(words[i]!, (unigrams.get(words[i]!) ?? 0) + 1);
      total++;
      const next = bigrams.get(words[i - 1]!) ?? new Map<string, number>();
      next.set(words[i]!, (next.get(words[i]!) ?? 0) + 1);
      bigrams.set(words[i - 1]!, next);
    }
  }
  const p1 = new Map([...unigrams].map(([w, c]) => [w, (c + 1) / (total + unigrams.size)]));
  const log = (p: number) => Math.log10(p).toFixed(4);
  const bigramLines: string[] = [];
  const backoff = new Map<string, number>();
  for (const [history, next] of bigrams) {
    const count = [...next.values()].reduce((a, b) => a + b, 0);
    const reserved = (DISCOUNT * next.size) / count;
    let seen = 0;
    let seenUnigram = 0;
    for (const [word, c] of next) {
      const p = (c - DISCOUNT) / count + reserved * p1.get(word)!;
      seen += p;
      seenUnigram += p1.get(word)!;
      bigramLines.push(`${log(p)} ${history} ${word}`);
    }
    // The mass left for unseen followers, spread over them in proportion to their unigram probability.
    backoff.set(history, seenUnigram < 1 ? Math.max(1e-10, (1 - seen) / (1 - seenUnigram)) : 1e-10);
  }
  const unigramLines = ['<s>', ...unigrams.keys()].map((w) => {
    const bow = backoff.get(w);
    return `${w === '<s>' ? '-99' : log(p1.get(w)!)} ${w}${bow === undefined ? '' : ` ${log(bow)}`}`;
  });
  return ['\\data\\', `ngram 1=${unigramLines.length}`, `ngram 2=${bigramLines.length}`, '', '\\1-grams:', ...unigramLines, '', '\\2-grams:', ...bigramLines, '', '\\end\\', ''].join('\n');
}

/** Words of the pronunciation dictionary (134k in cmudict-en-us). */
function dictionaryWords(file: string): Set<string> {
  return new Set(readFileSync(file, 'utf8').split('\n').map((l) => l.slice(0, l.indexOf(' ')).replace(/\(\d+\)$/, '')));
}

/** The dictionary's lines for `words`, alternative pronunciations ("word(2)") included. */
function dictionaryFor(file: string, words: string[]): string {
  const wanted = new Set(words);
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => wanted.has(l.slice(0, l.indexOf(' ')).replace(/\(\d+\)$/, '')));
  return `${lines.join('\n')}\n`;
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

