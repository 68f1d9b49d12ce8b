// Local speech-to-text benchmark (not a test): PocketsphinxStt, the engine a call uses without keys or network.
//   (a) word error rate on 30 sentences a caller might say to a clinic, a travel agency or an eSIM seller, spoken
//       by espeak-ng (two voices) at 16 kHz (web) and 8 kHz (phone), general mode and phrases mode;
//   (b) accuracy on the Free Spoken Digit Dataset (real people, 8 kHz), digits mode vs general mode;
//   (c) latency from the end of speech to the final (after flush(), and by the engine's own endpointing) with audio
//       paced in real time, and the real-time factor (engine CPU time / audio time) with CPU and memory per stream.
//
//   npx tsx bench/local-stt.ts                              # everything (about 4.5 minutes on 2 cores)
//   npx tsx bench/local-stt.ts --fsdd /path/to/fsdd --latency-sentences 4 --out bench/results/local-stt.json
//
// Synthetic speech is a weak stand-in for callers: espeak-ng's default voice is recognized far worse than its Klatt
// voices used here (WER 0.75 vs 0.40 at 16 kHz, general mode, a fresh engine per sentence), and real voices differ
// again. The digits recordings are the only real speech here.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type AudioFrame, concatPcm, dbfs, parseWav, resample, toFrames } from '../src/voice/audio.js';
import { digitsFrom, type PocketsphinxMode, PocketsphinxStt, type PocketsphinxStream } from '../src/voice/stt/pocketsphinx-stt.js';
import type { SttEvent } from '../src/voice/stt/stt.js';
import { EspeakTts } from '../src/voice/tts/espeak-tts.js';

export const SENTENCES = [
  'I would like to book an appointment with the doctor on Tuesday morning',
  'Can I change my appointment to next week',
  'I need to cancel my appointment for tomorrow',
  'What time does the clinic open on Saturday',
  'Do you take walk in patients',
  'My daughter has a fever and a bad cough',
  'I need a refill of my prescription',
  'Is there a parking lot near the clinic',
  'Can I speak to a nurse please',
  'How much does a blood test cost',
  'I want to book a flight to London',
  'Do you have any cheap hotels in Paris',
  'I would like to travel in the first week of June',
  'How much is a return ticket to New York',
  'Can I add a second bag to my booking',
  'My flight was cancelled and I need a new one',
  'Is breakfast included in the price',
  'I want to change the date of my trip',
  'We are two adults and one child',
  'Please send the tickets to my email address',
  'I bought an eSIM and it does not work',
  'How do I install the eSIM on my phone',
  'Which countries are covered by the plan',
  'How much data do I get for ten dollars',
  'My phone says no service',
  'Can I get a refund for my data plan',
  'I need more data for my trip to Japan',
  'Does the plan include phone calls',
  'Thank you very much that is all',
  'Yes please go ahead',
];

export const VOICES = [
  { voice: 'en-us+klatt', wordsPerMinute: 165 },
  { voice: 'en-us+klatt2', wordsPerMinute: 150 },
];

// ---- measures ------------------------------------------------------------------------------------------------

/** Words for scoring: lowercase, punctuation stripped (apostrophes kept: "don't" is one word). */
export function normalizeWords(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9' ]+/g, ' ')
    .split(/\s+/)
    .filter(Boolean);
}

/** Word edit distance (substitutions, insertions, deletions) and the reference's length. */
export function wordErrors(reference: string, hypothesis: string): { errors: number; words: number } {
  const r = normalizeWords(reference);
  const h = normalizeWords(hypothesis);
  let previous = Array.from({ length: h.length + 1 }, (_, j) => j);
  for (let i = 1; i <= r.length; i++) {
    const row = [i];
    for (let j = 1; j <= h.length; j++) row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (r[i - 1] === h[j - 1] ? 0 : 1));
    previous = row;
  }
  return { errors: previous[h.length]!, words: r.length };
}

/** Word error rate: word-level Levenshtein distance / reference words. */
export function wer(reference: string, hypothesis: string): number {
  const { errors, words } = wordErrors(reference, hypothesis);
  return words === 0 ? (normalizeWords(hypothesis).length > 0 ? 1 : 0) : errors / words;
}

const percentile = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]! : NaN);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * CPU seconds of a stream's processes (sh, and its children cat and pocketsphinx) and the engine's peak resident
 * memory, from /proc.
 */
export function processUsage(pid: number | undefined): { cpuS: number; engineRssMb: number } {
  const usage = { cpuS: 0, engineRssMb: 0 };
  if (!pid) return usage;
  let pids = [String(pid)];
  try {
    pids = pids.concat(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
    for (const p of pids) {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after "(comm) ": state(3) ppid pgrp ... utime(14) stime(15), numbered from 1 with the pid.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      usage.cpuS += (Number(f[11]) + Number(f[12])) / clockTicks();
      if (stat.includes('(pocketsphinx_')) {
        const peak = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
        usage.engineRssMb = Number(peak?.[1] ?? 0) / 1024;
      }
    }
  } catch {
    // a process ended between the reads: keep what was read
  }
  return usage;
}

let ticks: number | undefined;
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

async function speak(tts: EspeakTts, text: string): Promise<Int16Array> {
  const parts: Int16Array[] = [];
  for await (const f of tts.synthesize(text)) parts.push(f.pcm);
  return concatPcm(parts);
}

/** Where the speech in `pcm` ends (last 10 ms above -40 dBFS): espeak-ng leaves silence after the words. */
export function speechEndMs(pcm: Int16Array, sampleRate: number): number {
  const w = sampleRate / 100;
  let last = 0;
  for (let i = 0; i + w <= pcm.length; i += w) if (dbfs(pcm.subarray(i, i + w)) > -40) last = i + w;
  return (last * 1000) / sampleRate;
}

function collect(events: AsyncIterable<SttEvent>, onFinal?: (e: Extract<SttEvent, { type: 'final' }>) => void) {
  const finals: Extract<SttEvent, { type: 'final' }>[] = [];
  const done = (async () => {
    for await (const e of events) {
      if (e.type !== 'final') continue;
      finals.push(e);
      onFinal?.(e);
    }
  })();
  return { finals, done };
}

export interface TranscribeResult {
  /** One transcript per utterance (the finals whose middle falls in its stretch of the stream, joined). */
  texts: string[];
  audioS: number;
  cpuS: number;
  /** Peak resident memory of the pocketsphinx process. */
  engineRssMb: number;
}

/**
 * Utterances through one stream as fast as the engine takes them (a call's worth of audio in one process, so the
 * normalization adapts as it does in a call): 300 ms of silence around each, flush() after each.
 */
export async function transcribe(stt: PocketsphinxStt, utterances: Int16Array[]): Promise<TranscribeResult> {
  const rate = stt.sampleRate;
  const stream = stt.stream({}) as PocketsphinxStream;
  const { finals, done } = collect(stream.events);
  const gap = new Int16Array((rate * 300) / 1000);
  const spans: [number, number][] = [];
  let atMs = 0;
  let usage = { cpuS: 0, engineRssMb: 0 };
  for (const pcm of utterances) {
    const start = atMs;
    for (const part of [gap, pcm, gap]) {
      for (const frame of toFrames(part, rate, atMs)) stream.push(frame);
      atMs += (part.length * 1000) / rate;
    }
    stream.flush();
    spans.push([start, atMs]);
  }
  // close() lets the engine finish and exit; its CPU time is read until the process is gone.
  let closed = false;
  const closing = stream.close().then(() => (closed = true));
  while (!closed) {
    const now = processUsage(stream.pid);
    if (now.cpuS >= usage.cpuS) usage = { cpuS: now.cpuS, engineRssMb: Math.max(usage.engineRssMb, now.engineRssMb) };
    await Promise.race([closing, sleep(10)]);
  }
  await done;
  const texts = spans.map(([a, b]) =>
    finals
      .filter((f) => (f.startMs + f.endMs) / 2 >= a && (f.startMs + f.endMs) / 2 < b)
      .map((f) => f.text)
      .join(' '),
  );
  return { texts, audioS: atMs / 1000, ...usage };
}

// ---- (a) word error rate on espeak-ng sentences ----------------------------------------------------------------

export interface WerRow {
  voice: string;
  rate: number;
  mode: string;
  sentences: number;
  wer: number;
  /** Engine CPU seconds per second of audio (sh + cat + pocketsphinx). */
  rtf: number;
  engine_rss_mb: number;
}

export async function measureWer(opts: { sentences?: string[]; voices?: typeof VOICES; rates?: (8000 | 16000)[]; log?: (line: string) => void } = {}) {
  const sentences = opts.sentences ?? SENTENCES;
  const rows: WerRow[] = [];
  const samples: { voice: string; rate: number; mode: string; reference: string; hypothesis: string }[] = [];
  for (const { voice, wordsPerMinute } of opts.voices ?? VOICES) {
    for (const rate of opts.rates ?? [16000, 8000]) {
      const tts = new EspeakTts({ sampleRate: rate, voice, wordsPerMinute });
      const audio = await Promise.all(sentences.map((s) => speak(tts, s)));
      const score = (mode: string, texts: string[], usage: { audioS: number; cpuS: number; engineRssMb: number }) => {
        let errors = 0;
        let words = 0;
        texts.forEach((hypothesis, i) => {
          const e = wordErrors(sentences[i]!, hypothesis);
          errors += e.errors;
          words += e.words;
          samples.push({ voice, rate, mode, reference: sentences[i]!, hypothesis });
        });
        const row = { voice, rate, mode, sentences: sentences.length, wer: round(errors / words), rtf: round(usage.cpuS / usage.audioS), engine_rss_mb: Math.round(usage.engineRssMb) };
        rows.push(row);
        opts.log?.(`  ${voice} ${rate} Hz ${mode}: WER ${row.wer}`);
      };
      const general = await transcribe(new PocketsphinxStt({ sampleRate: rate }), audio);
      score('general', general.texts, general);
      // Phrases mode with the sentence among the tenant's phrases (callers say what was expected)...
      const phrases = await transcribe(new PocketsphinxStt({ sampleRate: rate, mode: 'phrases', phrases: sentences }), audio);
      score('phrases', phrases.texts, phrases);
      // ...and without it (the same request in words the phrases do not have): one model per held-out sentence.
      const heldOut = { texts: [] as string[], audioS: 0, cpuS: 0, engineRssMb: 0 };
      for (let i = 0; i < sentences.length; i++) {
        const r = await transcribe(new PocketsphinxStt({ sampleRate: rate, mode: 'phrases', phrases: sentences.filter((_, j) => j !== i) }), [audio[i]!]);
        heldOut.texts.push(r.texts[0]!);
        heldOut.audioS += r.audioS;
        heldOut.cpuS += r.cpuS;
        heldOut.engineRssMb = Math.max(heldOut.engineRssMb, r.engineRssMb);
      }
      score('phrases, sentence held out', heldOut.texts, heldOut);
    }
  }
  return { rows, samples };
}

// ---- (b) the Free Spoken Digit Dataset ---------------------------------------------------------------------------

export interface DigitsRow {
  mode: string;
  files: number;
  correct: number;
  accuracy: number;
}

/** Each recording (8 kHz, "<digit>_<speaker>_<n>.wav") in a fresh stream, as a call switching to digits would get. */
export async function measureDigits(dir: string, opts: { modes?: PocketsphinxMode[]; log?: (line: string) => void } = {}) {
  const files = readdirSync(dir)
    .filter((f) => /^\d_.*\.wav$/.test(f))
    .sort();
  const rows: DigitsRow[] = [];
  const confusions: Record<string, Record<string, number>> = {};
  for (const mode of opts.modes ?? ['digits', 'general']) {
    const stt = new PocketsphinxStt({ sampleRate: 8000, mode });
    let correct = 0;
    const heard: Record<string, number> = {};
    for (const file of files) {
      const { pcm, sampleRate } = parseWav(readFileSync(path.join(dir, file)));
      const { texts } = await transcribe(stt, [resample(pcm, sampleRate, 8000)]);
      const got = digitsFrom(texts[0] ?? '');
      if (got === file[0]) correct++;
      else heard[`${file[0]}->${got || '(none)'}`] = (heard[`${file[0]}->${got || '(none)'}`] ?? 0) + 1;
    }
    confusions[mode] = heard;
    rows.push({ mode, files: files.length, correct, accuracy: round(correct / files.length) });
    opts.log?.(`  FSDD ${mode}: ${correct}/${files.length}`);
  }
  return { rows, confusions };
}

// ---- (c) latency with real-time audio --------------------------------------------------------------------------

export interface LatencyRow {
  rate: number;
  mode: string;
  /** 'flush': flush() at the end of speech, as a call does when its VAD hears silence; 'endpoint': no flush. */
  trigger: 'flush' | 'endpoint';
  utterances: number;
  p50_ms: number;
  p95_ms: number;
  max_ms: number;
}

/**
 * Sentences paced at real time through one stream (20 ms frames), latency from the end of the speech to its final.
 * With 'flush', flush() is called right after the last voiced frame; with 'endpoint', silence keeps coming until
 * the engine's own VAD ends the utterance.
 */
export async function measureLatency(opts: { rate: 8000 | 16000; mode?: PocketsphinxMode; trigger: 'flush' | 'endpoint'; sentences: string[] }): Promise<LatencyRow> {
  const rate = opts.rate;
  const mode = opts.mode ?? 'general';
  const tts = new EspeakTts({ sampleRate: rate, ...VOICES[0]! });
  const audio = await Promise.all(opts.sentences.map((s) => speak(tts, s)));
  const stream = new PocketsphinxStt({ sampleRate: rate, mode }).stream({});
  let waiting: ((at: number) => void) | undefined;
  const { done } = collect(stream.events, () => waiting?.(performance.now()));
  const latencies: number[] = [];
  let atMs = 0;
  let startedAt = 0;
  const pushPaced = async (frames: AudioFrame[]) => {
    for (const f of frames) {
      stream.push(f);
      atMs += 20;
      const wait = startedAt + atMs - performance.now();
      if (wait > 0) await sleep(wait);
    }
  };
  // The engine loads its model (about 0.3 s for the general one) while the first silence plays.
  startedAt = performance.now();
  await pushPaced(toFrames(new Int16Array(rate), rate, 0));
  for (const pcm of audio) {
    const voiced = pcm.subarray(0, Math.ceil((speechEndMs(pcm, rate) * rate) / 1000));
    const final = new Promise<number>((resolve) => (waiting = resolve));
    await pushPaced(toFrames(voiced, rate, atMs));
    const speechEnded = performance.now();
    if (opts.trigger === 'flush') stream.flush();
    // Silence goes on in real time until the final comes (or 3 s).
    let got: number | undefined;
    void final.then((t) => (got = t));
    const silence = toFrames(new Int16Array((rate * 20) / 1000), rate, 0);
    for (let i = 0; i < 150 && got === undefined; i++) await pushPaced(silence.map((f) => ({ ...f, timestampMs: atMs })));
    if (got !== undefined) latencies.push(got - speechEnded);
    waiting = undefined;
    await pushPaced(toFrames(new Int16Array((rate * 300) / 1000), rate, atMs));
  }
  await stream.close();
  await done;
  return { rate, mode, trigger: opts.trigger, utterances: latencies.length, p50_ms: Math.round(percentile(latencies, 50)), p95_ms: Math.round(percentile(latencies, 95)), max_ms: Math.round(Math.max(...latencies)) };
}

// ---- the whole benchmark ---------------------------------------------------------------------------------------

export async function runLocalSttBench(opts: { fsddDir?: string; latencySentences?: number; log?: (line: string) => void } = {}) {
  const log = opts.log ?? (() => {});
  log('(a) word error rate, espeak-ng sentences');
  const werResult = await measureWer({ log });
  let digits: Awaited<ReturnType<typeof measureDigits>> | undefined;
  if (opts.fsddDir && existsSync(opts.fsddDir)) {
    log('(b) Free Spoken Digit Dataset');
    digits = await measureDigits(opts.fsddDir, { log });
  } else log(`(b) skipped: no FSDD recordings at ${opts.fsddDir ?? '(none given)'}`);
  log('(c) latency, audio in real time');
  const latencySentences = SENTENCES.slice(0, opts.latencySentences ?? 8);
  const latency: LatencyRow[] = [];
  for (const [rate, trigger] of [
    [16000, 'flush'],
    [8000, 'flush'],
    [16000, 'endpoint'],
  ] as const) {
    latency.push(await measureLatency({ rate, trigger, sentences: latencySentences }));
    log(`  ${rate} Hz ${trigger}: p50 ${latency[latency.length - 1]!.p50_ms} ms`);
  }
  const pins = ['four one two', 'nine eight seven six', 'two oh one nine', 'five five three', 'one two three four', 'seven zero eight'];
  latency.push(await measureLatency({ rate: 8000, mode: 'digits', trigger: 'flush', sentences: pins }));
  return { wer: werResult.rows, digits: digits?.rows ?? [], latency, samples: werResult.samples, digit_confusions: digits?.confusions ?? {} };
}

function table(rows: object[]): string {
  if (rows.length === 0) return '(none)';
  const cols = Object.keys(rows[0]!);
  return [`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${cols.map((c) => String((r as Record<string, unknown>)[c])).join(' | ')} |`)].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
  const out = args.get('out') ?? 'bench/results/local-stt.json';
  const started = performance.now();
  const result = await runLocalSttBench({
    fsddDir: args.get('fsdd') ?? '../shared/data/fsdd',
    latencySentences: Number(args.get('latency-sentences') ?? 8),
    log: (line) => console.error(line),
  });
  console.log('\nLocal STT (pocketsphinx 5prealpha, en-us model), word error rate on espeak-ng sentences\n');
  console.log(table(result.wer));
  console.log('\nFree Spoken Digit Dataset (8 kHz, real speakers): the recognized digits equal the label\n');
  console.log(table(result.digits));
  console.log('\nLatency from the end of speech to the final, audio paced in real time\n');
  console.log(table(result.latency));
  mkdirSync(path.dirname(out), { recursive: true });
  const environment = { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, date: new Date().toISOString(), seconds: Math.round((performance.now() - started) / 1000) };
  writeFileSync(out, `${JSON.stringify({ environment, ...result }, null, 2)}\n`);
  console.log(`\nJSON: ${out}`);
}
