// VAD benchmark (not a test): which VAD should calls use by default, the energy VAD or Silero, and at what cost.
//
//   npx tsx bench/vad.ts                                   # 8 and 16 kHz, every noise, writes bench/results/vad.json
//   npx tsx bench/vad.ts --rates 8000 --fsdd bench/data/fsdd --silero-model other.onnx
//
// Audio: espeak-ng sentences in several voices and the FSDD recordings (real human digits, 8 kHz,
// bench/data/fsdd, CC BY-SA 4.0), each trimmed to where its own level says the voice is, set to -26 dBFS of
// active speech and placed with 0.6-2 s of background between them. The background is a -70 dBFS floor plus, per
// condition, white noise, babble (six espeak talkers at once) or hum (50 Hz mains with harmonics and a fan's brown
// noise) at 20, 10 and 5 dB SNR, or nothing ("clean"); every condition at 8 and 16 kHz, with the same utterances and
// gaps. Labels are frame-level (20 ms frames; a frame is speech when its middle lies inside an utterance), so a
// pause inside a sentence counts as speech, as it does for turn-taking.
//
// Each VAD is scored on its `speaking` state (after its minSpeechMs / minSilenceMs hysteresis, which the call uses):
// frame precision / recall / F1 (macro F1: averaged over the streams, so each condition weighs the same; raw F1: of
// `voiced`, the engine's own per-frame decision); speech-start delay from the true onset to the end of the frame that
// raised the event (p50/p95; an utterance without a start within it is a missed start); false speech-starts per
// minute of noise-only audio (more than 300 ms before and 500 ms after any utterance). Cost: microseconds per 20 ms
// frame, p50/p99 of the wall time of each synchronous push (its CPU time on an idle core; a busy machine shows in
// p99) and the mean from process CPU time; time to load (import + first instance) and the RSS that adds.
// Silero runs once per stream and the thresholds are replayed on its recorded probabilities through the same
// ThresholdVad: the model's output does not depend on the threshold, so this is exactly what three VADs would do.
// `measureVads()` is exported for bench/voice.ts; run directly, this file prints tables and writes the JSON.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type AudioFrame, concatPcm, parseWav, resample, toFrames } from '../src/voice/audio.js';
import { EspeakTts } from '../src/voice/tts/espeak-tts.js';
import { ENERGY_VAD_DEFAULTS, EnergyVad } from '../src/voice/vad/energy-vad.js';
import { ThresholdVad, type VAD } from '../src/voice/vad/vad.js';
import { FSDD_DIR } from './data.js';
import { FLOOR_DBFS, SPEECH_DBFS, trimAndLevel } from './speech-level.js';

export type NoiseKind = 'none' | 'white' | 'babble' | 'hum';

export interface VadBenchOptions {
  rates?: number[];
  /** Noisy conditions (each at every SNR); a clean condition is always included. */
  noises?: Exclude<NoiseKind, 'none'>[];
  snrsDb?: number[];
  /** FSDD recordings; skipped (with a note) when the folder is missing. */
  fsddDir?: string;
  voices?: string[];
  sileroThresholds?: number[];
  sileroModelPath?: string;
  seed?: number;
  log?: (line: string) => void;
}

export interface VadScore {
  precision: number;
  recall: number;
  f1: number;
  /** F1 of the engine's own per-frame decision (`voiced`, no hysteresis). */
  raw_f1: number;
  start_delay_p50_ms: number;
  start_delay_p95_ms: number;
  missed_starts_pct: number;
  false_starts_per_min: number;
}

export interface VadBenchEntry {
  name: string;
  overall: VadScore;
  /** F1 averaged over the (rate, condition) streams: each condition weighs the same. */
  macro_f1: number;
  /** Each condition over all rates. */
  by_condition: Record<string, VadScore>;
  /** Each rate over all conditions. */
  by_rate: Record<string, VadScore & { macro_f1: number }>;
  cpu_us_per_frame: Record<string, { p50: number; p99: number; mean: number }>;
  load_ms: number;
  model_rss_mb: number;
}

export interface VadBenchResult {
  environment: { node: string; cpus: number; date: string };
  data: {
    utterances_espeak: number;
    utterances_fsdd: number;
    speech_s_per_stream: Record<string, number>;
    stream_s: Record<string, number>;
    conditions: string[];
  };
  vads: VadBenchEntry[];
  recommendation: { default: string; reason: string };
}

const FRAME_MS = 20;
const START_EARLY_MS = 100;
const NOISE_ONLY_BEFORE_MS = 300;
const NOISE_ONLY_AFTER_MS = 500;

const SENTENCES = [
  'I would like to book an appointment for next Tuesday',
  'Can you tell me what time you open tomorrow',
  'My account number is four five seven two nine',
  'Yes that is right',
  'No I do not want to cancel it',
  'Could you please transfer me to someone in billing',
  'The package never arrived and I have been waiting for two weeks',
  'Thanks that is all I needed',
];
const BABBLE_SENTENCES = [
  'We went down to the market on Saturday and bought far too many apples',
  'The meeting was moved to the afternoon because the manager was late',
  'Have you seen the new film everyone keeps talking about',
  'It rained all week so the garden finally looks green again',
  'She said the train would be delayed by at least twenty minutes',
  'Put the boxes in the hall and we will sort them out later',
];
const BABBLE_VOICES = ['en-029', 'en-gb-x-rp+f4', 'en-gb-x-gbclan', 'en-us+m3', 'en-gb+f2', 'en-gb-x-gbcwmd'];

const pct = (xs: number[], p: number) =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN;
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const dbToAmplitude = (db: number) => 32768 * 10 ** (db / 20);

function prng(seed: number) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, gaussian };
}

async function speak(text: string, voice: string, rate: number): Promise<Int16Array> {
  const parts: Int16Array[] = [];
  for await (const f of new EspeakTts({ sampleRate: rate, voice }).synthesize(text)) parts.push(f.pcm);
  return concatPcm(parts);
}

/** Unit-RMS noise of the given kind. Babble: six talkers reading different sentences, each looped from a random point. */
function noise(kind: Exclude<NoiseKind, 'none'>, length: number, rate: number, babble: Float32Array[], seed: number): Float32Array {
  const r = prng(seed);
  const out = new Float32Array(length);
  if (kind === 'white') for (let i = 0; i < length; i++) out[i] = r.gaussian();
  if (kind === 'babble') {
    for (const talker of babble) {
      const offset = Math.floor(r.uniform() * talker.length);
      for (let i = 0; i < length; i++) out[i]! += talker[(offset + i) % talker.length]!;
    }
  }
  if (kind === 'hum') {
    const phases = Array.from({ length: 10 }, () => r.uniform() * 2 * Math.PI);
    let brown = 0;
    for (let i = 0; i < length; i++) {
      let hum = 0;
      for (let k = 1; k <= 10 && 50 * k < rate / 2; k++) hum += Math.sin((2 * Math.PI * 50 * k * i) / rate + phases[k - 1]!) / k;
      brown = 0.995 * brown + 0.1 * r.gaussian();
      out[i] = hum + brown;
    }
  }
  let sum = 0;
  for (const x of out) sum += x * x;
  const scale = 1 / Math.sqrt(sum / length || 1);
  for (let i = 0; i < length; i++) out[i]! *= scale;
  return out;
}

interface Span {
  startMs: number;
  endMs: number;
}

interface Stream {
  pcm: Int16Array;
  /** Per 20 ms frame: speech (1) or not. */
  labels: Uint8Array;
  /** Per 20 ms frame: far enough from every utterance that a speech-start there is false. */
  noiseOnly: Uint8Array;
  spans: Span[];
}

/** The utterances in a fixed order with fixed gaps (the same for every condition at a rate). */
function layout(utterances: Float32Array[], rate: number, seed: number) {
  const r = prng(seed);
  const order = utterances.map((u, i) => ({ u, key: r.uniform(), i })).sort((a, b) => a.key - b.key);
  const placed: { at: number; u: Float32Array }[] = [];
  let at = rate; // a second of background first
  for (const { u } of order) {
    placed.push({ at, u });
    at += u.length + Math.round(rate * (0.6 + 1.4 * r.uniform()));
  }
  return { placed, length: at };
}

function mix(plan: ReturnType<typeof layout>, rate: number, background: Float32Array | null, snrDb: number, floorSeed: number): Stream {
  const f = prng(floorSeed);
  const mixed = new Float32Array(plan.length);
  const floor = dbToAmplitude(FLOOR_DBFS);
  const noiseGain = dbToAmplitude(SPEECH_DBFS - snrDb);
  for (let i = 0; i < mixed.length; i++) mixed[i] = floor * f.gaussian() + (background ? noiseGain * background[i]! : 0);
  for (const { at, u } of plan.placed) for (let i = 0; i < u.length; i++) mixed[at + i]! += u[i]!;
  const pcm = Int16Array.from(mixed, (x) => Math.max(-32768, Math.min(32767, Math.round(x))));
  const spans = plan.placed.map(({ at, u }) => ({ startMs: (at * 1000) / rate, endMs: ((at + u.length) * 1000) / rate }));
  const frames = Math.ceil((plan.length * 1000) / rate / FRAME_MS);
  const labels = new Uint8Array(frames);
  const noiseOnly = new Uint8Array(frames).fill(1);
  const mark = (mask: Uint8Array, fromMs: number, toMs: number, value: number) => {
    for (let k = Math.max(0, Math.ceil(fromMs / FRAME_MS - 0.5)); k < frames && (k + 0.5) * FRAME_MS < toMs; k++) mask[k] = value;
  };
  for (const s of spans) {
    mark(labels, s.startMs, s.endMs, 1);
    mark(noiseOnly, s.startMs - NOISE_ONLY_BEFORE_MS, s.endMs + NOISE_ONLY_AFTER_MS, 0);
  }
  return { pcm, labels, noiseOnly, spans };
}

interface Run {
  speaking: Uint8Array;
  voiced: Uint8Array;
  starts: number[];
}

/** Feeds every frame, timing each push (wall time of one synchronous call: its CPU time on a quiet machine). */
function drive(vad: VAD, frames: AudioFrame[], micros: number[]): { run: Run; cpuUs: number } {
  const speaking = new Uint8Array(frames.length);
  const voiced = new Uint8Array(frames.length);
  const starts: number[] = [];
  const cpu = process.cpuUsage();
  for (let k = 0; k < frames.length; k++) {
    const t = process.hrtime.bigint();
    const event = vad.push(frames[k]!);
    micros.push(Number(process.hrtime.bigint() - t) / 1000);
    speaking[k] = vad.speaking ? 1 : 0;
    voiced[k] = vad.voiced ? 1 : 0;
    if (event === 'speech-start') starts.push((k + 1) * FRAME_MS);
  }
  const used = process.cpuUsage(cpu);
  return { run: { speaking, voiced, starts }, cpuUs: used.user + used.system };
}

/** Replays recorded probabilities through the shared hysteresis at another threshold. */
class ReplayVad extends ThresholdVad {
  private k = 0;
  constructor(
    private readonly probabilities: number[],
    threshold: number,
  ) {
    super({ threshold, minSpeechMs: ENERGY_VAD_DEFAULTS.minSpeechMs, minSilenceMs: ENERGY_VAD_DEFAULTS.minSilenceMs });
  }
  protected confidence(): number {
    return this.probabilities[this.k++]!;
  }
}

interface Tally {
  tp: number;
  fp: number;
  fn: number;
  /** The same counts for `voiced`. */
  rawTp: number;
  rawFp: number;
  rawFn: number;
  delays: number[];
  utterances: number;
  missed: number;
  falseStarts: number;
  noiseOnlyMs: number;
}
const emptyTally = (): Tally => ({
  tp: 0,
  fp: 0,
  fn: 0,
  rawTp: 0,
  rawFp: 0,
  rawFn: 0,
  delays: [],
  utterances: 0,
  missed: 0,
  falseStarts: 0,
  noiseOnlyMs: 0,
});

function tally(t: Tally, stream: Stream, run: Run): void {
  for (let k = 0; k < stream.labels.length; k++) {
    const truth = stream.labels[k] === 1;
    const said = run.speaking[k] === 1;
    if (truth && said) t.tp++;
    else if (said) t.fp++;
    else if (truth) t.fn++;
    const raw = run.voiced[k] === 1;
    if (truth && raw) t.rawTp++;
    else if (raw) t.rawFp++;
    else if (truth) t.rawFn++;
  }
  for (const s of stream.spans) {
    t.utterances++;
    const start = run.starts.find((x) => x >= s.startMs - START_EARLY_MS && x <= s.endMs);
    if (start === undefined) t.missed++;
    else t.delays.push(start - s.startMs);
  }
  // A start is stamped at the end of its frame: look at that frame.
  t.falseStarts += run.starts.filter((x) => stream.noiseOnly[x / FRAME_MS - 1] === 1).length;
  t.noiseOnlyMs += stream.noiseOnly.reduce((sum, x) => sum + x * FRAME_MS, 0);
}

const f1 = (tp: number, fp: number, fn: number) => (2 * tp) / (2 * tp + fp + fn || 1);

function score(t: Tally): VadScore {
  return {
    precision: round(t.tp / (t.tp + t.fp || 1), 3),
    recall: round(t.tp / (t.tp + t.fn || 1), 3),
    f1: round(f1(t.tp, t.fp, t.fn), 3),
    raw_f1: round(f1(t.rawTp, t.rawFp, t.rawFn), 3),
    start_delay_p50_ms: Math.round(pct(t.delays, 50)),
    start_delay_p95_ms: Math.round(pct(t.delays, 95)),
    missed_starts_pct: round((100 * t.missed) / (t.utterances || 1), 1),
    false_starts_per_min: round(t.falseStarts / (t.noiseOnlyMs / 60000 || 1), 2),
  };
}

function merge(tallies: Tally[]): Tally {
  const into = emptyTally();
  for (const t of tallies) {
    for (const k of ['tp', 'fp', 'fn', 'rawTp', 'rawFp', 'rawFn', 'utterances', 'missed', 'falseStarts', 'noiseOnlyMs'] as const)
      into[k] += t[k];
    into.delays.push(...t.delays);
  }
  return into;
}

export async function measureVads(options: VadBenchOptions = {}): Promise<VadBenchResult> {
  const rates = options.rates ?? [8000, 16000];
  const noises = options.noises ?? ['white', 'babble', 'hum'];
  const snrs = options.snrsDb ?? [20, 10, 5];
  const voices = options.voices ?? ['en-us', 'en-gb', 'en-us+f3', 'en-gb-scotland'];
  const thresholds = options.sileroThresholds ?? [0.3, 0.5, 0.7];
  const fsddDir = options.fsddDir ?? FSDD_DIR;
  const seed = options.seed ?? 42;
  const log = options.log ?? ((line: string) => console.error(line));

  // Load cost first, before the audio fills the heap: importing onnxruntime's binding and reading the model.
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const loadStart = performance.now();
  const { SileroVad } = await import('../src/voice/vad/silero-vad.js');
  new SileroVad({ modelPath: options.sileroModelPath });
  const sileroLoadMs = round(performance.now() - loadStart, 1);
  const sileroRssMb = round((process.memoryUsage().rss - rssBefore) / 2 ** 20, 1);
  const energyStart = performance.now();
  new EnergyVad();
  const energyLoadMs = round(performance.now() - energyStart, 3);

  const fsddFiles = existsSync(fsddDir)
    ? readdirSync(fsddDir)
        .filter((f) => f.endsWith('.wav'))
        .sort()
    : [];
  if (!fsddFiles.length) log(`no FSDD recordings in ${fsddDir}: espeak utterances only`);
  const fsdd = fsddFiles.map((f) => parseWav(readFileSync(path.join(fsddDir, f))));

  const conditions = [
    { name: 'clean', kind: 'none' as NoiseKind, snr: 0 },
    ...noises.flatMap((kind) => snrs.map((snr) => ({ name: `${kind} ${snr} dB`, kind, snr }))),
  ];
  const names = ['energy', ...thresholds.map((t) => `silero ${t}`)];
  /** VAD -> rate -> condition -> counts. */
  const tallies = new Map<string, Map<number, Map<string, Tally>>>(names.map((n) => [n, new Map(rates.map((r) => [r, new Map()]))]));
  const micros = new Map<string, number[]>();
  const cpuTotals = new Map<string, { us: number; frames: number }>();
  const data: VadBenchResult['data'] = {
    utterances_espeak: SENTENCES.length * voices.length,
    utterances_fsdd: fsdd.length,
    speech_s_per_stream: {},
    stream_s: {},
    conditions: conditions.map((c) => c.name),
  };

  for (const rate of rates) {
    log(`${rate} Hz: synthesizing...`);
    const utterances: Float32Array[] = [];
    for (const voice of voices) for (const text of SENTENCES) utterances.push(trimAndLevel(await speak(text, voice, rate), rate));
    for (const f of fsdd) utterances.push(trimAndLevel(resample(f.pcm, f.sampleRate, rate), rate));
    const babble: Float32Array[] = [];
    for (const [i, voice] of BABBLE_VOICES.entries()) {
      const talker = [];
      for (let j = 0; j < BABBLE_SENTENCES.length; j++)
        talker.push(await speak(BABBLE_SENTENCES[(i + j) % BABBLE_SENTENCES.length]!, voice, rate));
      babble.push(Float32Array.from(concatPcm(talker)));
    }
    const plan = layout(utterances, rate, seed);
    data.speech_s_per_stream[rate] = round(utterances.reduce((s, u) => s + u.length, 0) / rate, 1);
    data.stream_s[rate] = round(plan.length / rate, 1);

    for (const [c, { name: condition, kind, snr }] of conditions.entries()) {
      const background = kind === 'none' ? null : noise(kind, plan.length, rate, babble, seed + 1000 + c);
      const stream = mix(plan, rate, background, snr, seed + c);
      const frames = toFrames(stream.pcm, rate);
      log(`${rate} Hz, ${condition}: ${frames.length} frames`);

      const results = new Map<string, Run>();
      const energyMicros = micros.get(`energy ${rate}`) ?? [];
      micros.set(`energy ${rate}`, energyMicros);
      const energy = drive(new EnergyVad(), frames, energyMicros);
      results.set('energy', energy.run);

      const probabilities: number[] = [];
      class RecordingSilero extends SileroVad {
        protected override confidence(frame: AudioFrame): number {
          const p = super.confidence(frame);
          probabilities.push(p);
          return p;
        }
      }
      const sileroMicros = micros.get(`silero ${rate}`) ?? [];
      micros.set(`silero ${rate}`, sileroMicros);
      const silero = drive(new RecordingSilero({ modelPath: options.sileroModelPath }), frames, sileroMicros);
      for (const t of thresholds) results.set(`silero ${t}`, drive(new ReplayVad(probabilities, t), frames, []).run);

      for (const [key, used] of [
        [`energy ${rate}`, energy.cpuUs],
        [`silero ${rate}`, silero.cpuUs],
      ] as const) {
        const total = cpuTotals.get(key) ?? { us: 0, frames: 0 };
        cpuTotals.set(key, { us: total.us + used, frames: total.frames + frames.length });
      }
      for (const [name, run] of results) {
        const t = emptyTally();
        tally(t, stream, run);
        tallies.get(name)!.get(rate)!.set(condition, t);
      }
    }
  }

  const vads: VadBenchEntry[] = names.map((name) => {
    const byRate = tallies.get(name)!;
    const cells = [...byRate.values()].flatMap((m) => [...m.values()]);
    const scores = Object.fromEntries(conditions.map(({ name: c }) => [c, score(merge([...byRate.values()].map((m) => m.get(c)!)))]));
    const rateScores = Object.fromEntries(
      [...byRate].map(([rate, m]) => [
        `${rate} Hz`,
        {
          ...score(merge([...m.values()])),
          macro_f1: round([...m.values()].reduce((sum, t) => sum + f1(t.tp, t.fp, t.fn), 0) / m.size, 3),
        },
      ]),
    );
    const engine = name.startsWith('silero') ? 'silero' : 'energy';
    const cpu = Object.fromEntries(
      rates.map((rate) => {
        const xs = micros.get(`${engine} ${rate}`)!;
        const total = cpuTotals.get(`${engine} ${rate}`)!;
        return [`${rate} Hz`, { p50: round(pct(xs, 50), 1), p99: round(pct(xs, 99), 1), mean: round(total.us / total.frames, 1) }];
      }),
    );
    return {
      name,
      overall: score(merge(cells)),
      macro_f1: round(cells.reduce((sum, t) => sum + f1(t.tp, t.fp, t.fn), 0) / cells.length, 3),
      by_condition: scores,
      by_rate: rateScores,
      cpu_us_per_frame: cpu,
      load_ms: engine === 'silero' ? sileroLoadMs : energyLoadMs,
      model_rss_mb: engine === 'silero' ? sileroRssMb : 0,
    };
  });

  return {
    environment: { node: process.version, cpus: (await import('node:os')).cpus().length, date: new Date().toISOString() },
    data,
    vads,
    recommendation: recommend(vads),
  };
}

/**
 * The default is the engine (at Silero's own 0.5, or the energy VAD) with the better F1 averaged over the conditions,
 * provided it costs under a millisecond of CPU per 20 ms frame (5% of a core per call); the other numbers are the
 * reason in words.
 */
function recommend(vads: VadBenchEntry[]): VadBenchResult['recommendation'] {
  const energy = vads.find((v) => v.name === 'energy')!;
  const silero = vads.find((v) => v.name === 'silero 0.5') ?? vads.find((v) => v.name.startsWith('silero'))!;
  const worstMean = (v: VadBenchEntry) => Math.max(...Object.values(v.cpu_us_per_frame).map((c) => c.mean));
  const affordable = worstMean(silero) < 1000;
  const pick = affordable && silero.macro_f1 > energy.macro_f1 ? silero : energy;
  const other = pick === silero ? energy : silero;
  const noisy = (v: VadBenchEntry) => Object.entries(v.by_condition).filter(([c]) => c !== 'clean');
  const noisyF1 = (v: VadBenchEntry) => round(noisy(v).reduce((s, [, x]) => s + x.f1, 0) / (noisy(v).length || 1), 3);
  const bestThreshold = vads.filter((v) => v.name.startsWith('silero')).sort((a, b) => b.macro_f1 - a.macro_f1)[0]!;
  const reason =
    `${pick.name}: F1 averaged over conditions ${pick.macro_f1} vs ${other.macro_f1} (${other.name}); noisy conditions only ${noisyF1(pick)} vs ${noisyF1(other)}; ` +
    `false starts ${pick.overall.false_starts_per_min} vs ${other.overall.false_starts_per_min} per minute of noise; ` +
    `start delay p50 ${pick.overall.start_delay_p50_ms} vs ${other.overall.start_delay_p50_ms} ms, missed starts ${pick.overall.missed_starts_pct}% vs ${other.overall.missed_starts_pct}%. ` +
    `Cost: Silero ${worstMean(silero)} us CPU per 20 ms frame (${round((worstMean(silero) / 20000) * 100, 2)}% of a core per call, ~${Math.floor(20000 / worstMean(silero))} calls per core), ` +
    `${silero.load_ms} ms to load, ${silero.model_rss_mb} MB RSS once per process; energy ${worstMean(energy)} us. ` +
    `Best Silero threshold here: ${bestThreshold.name.split(' ')[1]} (macro F1 ${bestThreshold.macro_f1}).`;
  return { default: pick.name, reason };
}

function table(result: VadBenchResult): string {
  const lines: string[] = [];
  const rates = Object.keys(result.vads[0]!.cpu_us_per_frame);
  lines.push(
    `| VAD | precision | recall | F1 | raw F1 | macro F1 | start delay p50/p95 ms | missed starts % | false starts/min | ${rates.map((r) => `CPU us/frame ${r} p50/p99/mean`).join(' | ')} | load ms | model RSS MB |`,
  );
  lines.push(`|${'---|'.repeat(11 + rates.length)}`);
  for (const v of result.vads) {
    const o = v.overall;
    const cpu = rates.map((r) => {
      const c = v.cpu_us_per_frame[r]!;
      return `${c.p50} / ${c.p99} / ${c.mean}`;
    });
    lines.push(
      `| ${v.name} | ${o.precision} | ${o.recall} | ${o.f1} | ${o.raw_f1} | ${v.macro_f1} | ${o.start_delay_p50_ms} / ${o.start_delay_p95_ms} | ${o.missed_starts_pct} | ${o.false_starts_per_min} | ${cpu.join(' | ')} | ${v.load_ms} | ${v.model_rss_mb} |`,
    );
  }
  lines.push('', 'By rate: macro F1 / F1 / start delay p50 ms / missed starts % / false starts per minute', '');
  lines.push(`| VAD | ${rates.join(' | ')} |`, `|---|${rates.map(() => '---|').join('')}`);
  for (const v of result.vads) {
    const cells = rates.map((r) => {
      const x = v.by_rate[r]!;
      return `${x.macro_f1} / ${x.f1} / ${x.start_delay_p50_ms} / ${x.missed_starts_pct} / ${x.false_starts_per_min}`;
    });
    lines.push(`| ${v.name} | ${cells.join(' | ')} |`);
  }
  lines.push('', `F1 (false starts per minute) by condition, all rates together`, '');
  lines.push(`| condition | ${result.vads.map((v) => v.name).join(' | ')} |`, `|---|${result.vads.map(() => '---|').join('')}`);
  for (const c of result.data.conditions)
    lines.push(`| ${c} | ${result.vads.map((v) => `${v.by_condition[c]!.f1} (${v.by_condition[c]!.false_starts_per_min})`).join(' | ')} |`);
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
  const out = args.get('out') ?? 'bench/results/vad.json';
  const result = await measureVads({
    rates: args.get('rates')?.split(',').map(Number),
    fsddDir: args.get('fsdd'),
    sileroModelPath: args.get('silero-model'),
  });
  console.log(
    `\nVAD: ${result.data.utterances_espeak} espeak + ${result.data.utterances_fsdd} FSDD utterances per stream, ${result.data.conditions.length} conditions x ${Object.keys(result.data.stream_s).length} rates\n`,
  );
  console.log(table(result));
  console.log(`\nRecommended default: ${result.recommendation.default}\n${result.recommendation.reason}`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nJSON: ${out}`);
}
