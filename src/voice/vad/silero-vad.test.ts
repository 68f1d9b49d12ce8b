import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { type AudioFrame, concatPcm, dbfs, parseWav, toFrames } from '../audio.js';
import { EspeakTts } from '../tts/espeak-tts.js';
import { EnergyVad } from './energy-vad.js';
import { THREAD_NICE } from '../../lib/thread-priority.js';
import { loweredBy } from '../../../test/threads.js';
import { SileroVad, sileroRuns } from './silero-vad.js';
import type { VAD } from './vad.js';

// Silero splits some espeak sentences at a weak stretch longer than minSilenceMs (e.g. "...appointment for next
// Tuesday" at 'for'); this one it hears as one utterance at every rate.
const SENTENCE = 'My name is Maria and I need to change my booking';

// Quiet line hiss (about -65 dBFS) rather than digital zero, as on a real line; seeded, so every run hears the same.
function hiss(ms: number, rate: number, amplitude = 30, seed = 1): Int16Array {
  let x = seed;
  const random = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
  return Int16Array.from({ length: (rate * ms) / 1000 }, () => Math.round((random() * 2 - 1) * amplitude));
}

async function speak(rate: number): Promise<Int16Array> {
  const parts: Int16Array[] = [];
  for await (const f of new EspeakTts({ sampleRate: rate }).synthesize(SENTENCE)) parts.push(f.pcm);
  return concatPcm(parts);
}

/** Where the voice really is in a clip, from its own 20 ms levels (espeak pads its output with silence). */
function voicedSpan(pcm: Int16Array, rate: number) {
  const levels = toFrames(pcm, rate).map((f) => dbfs(f.pcm));
  const loud = levels.map((l) => l > -40);
  return { startMs: loud.indexOf(true) * 20, endMs: (loud.lastIndexOf(true) + 1) * 20 };
}

function run(vad: VAD, pcm: Int16Array, rate: number) {
  const events: { event: string; atMs: number }[] = [];
  for (const f of toFrames(pcm, rate)) {
    const e = vad.push(f);
    if (e) events.push({ event: e, atMs: f.timestampMs });
  }
  return events;
}

/** Each clip's probability after each of its frames, read by a VAD of its own in a tight loop. */
const aloneTraces = (frames: AudioFrame[][]) =>
  frames.map((fs) => {
    const vad = new SileroVad();
    return fs.map((f) => (vad.push(f), vad.probability));
  });

/** The same, with the clips' frames interleaved as simultaneous calls' are; `between` runs after each round. */
async function togetherTraces(frames: AudioFrame[][], vads: SileroVad[], between: () => Promise<unknown>): Promise<number[][]> {
  const traces: number[][] = frames.map(() => []);
  for (let i = 0; i < Math.max(...frames.map((fs) => fs.length)); i++) {
    frames.forEach((fs, c) => {
      if (!fs[i]) return;
      vads[c]!.push(fs[i]!);
      traces[c]!.push(vads[c]!.probability);
    });
    await between();
  }
  return traces;
}

function expectSameTraces(traces: number[][], alone: number[][]): void {
  for (const [c, trace] of traces.entries()) {
    expect(trace).toHaveLength(alone[c]!.length);
    expect(Math.max(...trace.map((p, i) => Math.abs(p - alone[c]![i]!)))).toBeLessThan(1e-4);
    // Speech is in every trace, so the comparison is not of zeros alone.
    expect(Math.max(...trace)).toBeGreaterThan(0.9);
  }
}

describe('SileroVad', () => {
  const speech = new Map<number, Int16Array>();
  beforeAll(async () => {
    for (const rate of [8000, 16000, 24000]) speech.set(rate, await speak(rate));
  });

  it('runs the windows of simultaneous calls as one batch, with the results each call gets alone', async () => {
    const rate = 8000;
    const clips = [0, 1, 2].map((i) => concatPcm([hiss(300 + i * 100, rate, 30, i + 1), speech.get(rate)!, hiss(600, rate, 30, i + 1)]));
    const frames = clips.map((pcm) => toFrames(pcm, rate));
    // Alone, in a tight loop: each window runs by itself, when the next frame needs it.
    const alone = aloneTraces(frames);
    await new Promise((r) => setImmediate(r));
    // Together, as live calls: each round's frames arrive in one event-loop turn; their windows run as one batch
    // (at the latest when the next round needs them).
    const before = { ...sileroRuns };
    const together = await togetherTraces(
      frames,
      clips.map(() => new SileroVad()),
      () => new Promise((r) => setImmediate(r)),
    );
    const windows = sileroRuns.windows - before.windows;
    const runs = sileroRuns.runs - before.runs;
    // Less than 3: the calls speak at different times, and quiet frames run no window.
    expect(windows / runs).toBeGreaterThan(1.5);
    expectSameTraces(together, alone);
  });

  it('off the event loop (offThread, as in live calls): the same results, computed in the worker thread', async () => {
    const rate = 8000;
    const clips = [0, 1].map((i) => concatPcm([hiss(300 + i * 140, rate, 30, i + 3), speech.get(rate)!, hiss(500, rate, 30, i + 3)]));
    const frames = clips.map((pcm) => toFrames(pcm, rate));
    const alone = aloneTraces(frames);
    const before = { ...sileroRuns };
    const vads = clips.map(() => new SileroVad({ offThread: true }));
    // A live call's next frame comes 20 ms later; here the next round waits for the results instead.
    const traces = await togetherTraces(frames, vads, async () => {
      while (vads.some((v) => v.pending > 0)) await sleep(1);
    });
    // Nothing ran on this thread.
    expect(sileroRuns).toEqual(before);
    expectSameTraces(traces, alone);
    // The worker runs below the event loop (src/lib/thread-priority.ts).
    if (process.platform === 'linux') {
      expect(loweredBy('silero-vad')).toEqual([THREAD_NICE['silero-vad']]);
    }
  });

  it('off the event loop also in a process started with a TypeScript preload (the worker does not inherit it)', async () => {
    // bench:calls starts the service with `--import bench/exit-with-parent.mjs` (stdin kept open): inherited, that
    // preload killed the worker at start, and every call's model ran on the main thread without a word.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--import', './bench/exit-with-parent.mjs', 'test/harness/silero-off-thread.ts'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ mainThreadRuns: 0, pending: 0, warnings: [] });
  });

  it('off the event loop, windows sent faster than the worker answers still run in order, ending where they would alone', async () => {
    const rate = 8000;
    const frames = toFrames(concatPcm([speech.get(rate)!, speech.get(rate)!]), rate);
    const alone = new SileroVad();
    const ahead = new SileroVad({ offThread: true });
    // Pushed without yielding: every window goes out before the first result is back.
    const probabilities = frames.map((f) => (alone.push(f), ahead.push(f), alone.probability));
    expect(ahead.pending).toBeGreaterThan(50);
    while (ahead.pending > 0 || alone.waiting) await sleep(1);
    expect(Math.abs(ahead.probability - alone.probability)).toBeLessThan(1e-4);
    expect(Math.max(...probabilities)).toBeGreaterThan(0.9);
    // The worker keeps the state: a reset there is in order with the windows around it.
    ahead.reset();
    alone.reset();
    const again = frames.slice(0, 40).map((f) => (alone.push(f), ahead.push(f), alone.probability));
    while (ahead.pending > 0 || alone.waiting) await sleep(1);
    expect(Math.abs(ahead.probability - alone.probability)).toBeLessThan(1e-4);
    expect(Math.max(...again)).toBeGreaterThan(0.5);
  });

  it.each([16000, 8000, 24000])('hears espeak speech at %i Hz: starts near its onset and ends after it', (rate) => {
    const voice = speech.get(rate)!;
    const span = voicedSpan(voice, rate);
    const lead = 700;
    const events = run(new SileroVad(), concatPcm([hiss(lead, rate), voice, hiss(1000, rate)]), rate);
    expect(events.map((e) => e.event)).toEqual(['speech-start', 'speech-end']);
    const onset = lead + span.startMs;
    const offset = lead + span.endMs;
    // minSpeechMs (60) plus at most one 32 ms window of model delay, plus a syllable's attack.
    expect(events[0]!.atMs).toBeGreaterThanOrEqual(onset);
    expect(events[0]!.atMs).toBeLessThanOrEqual(onset + 160);
    // minSilenceMs (200) after the voice stops: reported on the frame that completes it (which starts 180 ms in).
    expect(events[1]!.atMs).toBeGreaterThanOrEqual(offset + 180);
    expect(events[1]!.atMs).toBeLessThanOrEqual(offset + 500);
  });

  it('finds the spoken digit in a real 8 kHz recording', () => {
    const { pcm, sampleRate } = parseWav(readFileSync(new URL('../../../test/fixtures/audio/3_nicolas_1.wav', import.meta.url)));
    const events = run(new SileroVad(), concatPcm([hiss(500, sampleRate), pcm, hiss(700, sampleRate)]), sampleRate);
    expect(events.map((e) => e.event)).toEqual(['speech-start', 'speech-end']);
  });

  it('does not take a burst of white noise for speech, where the energy VAD does', () => {
    const rate = 16000;
    const burst = concatPcm([hiss(1000, rate, 30, 1), hiss(800, rate, 3000, 2), hiss(1000, rate, 30, 3)]);
    expect(run(new EnergyVad(), burst, rate).map((e) => e.event)).toContain('speech-start');
    expect(run(new SileroVad(), burst, rate)).toEqual([]);
  });

  it('reset() clears the hysteresis, the model state and the half-filled window', () => {
    class Probe extends SileroVad {
      probabilities(frames: AudioFrame[]) {
        return frames.map((f) => this.confidence(f));
      }
    }
    const rate = 16000;
    const frames = toFrames(concatPcm([hiss(300, rate), speech.get(rate)!]), rate);
    const used = new Probe();
    // Stop in the middle of the speech and of a model window (300 + 1010 ms is not a multiple of 32 ms).
    const first = frames.slice(0, 65);
    for (const f of first) used.push(f);
    expect(used.speaking).toBe(true);
    used.reset();
    expect(used.speaking).toBe(false);
    expect(used.voiced).toBe(false);
    expect(used.probabilities(frames)).toEqual(new Probe().probabilities(frames));
  });

  it('shares one model between calls but keeps each call its own state', () => {
    const rate = 16000;
    const a = new SileroVad();
    const b = new SileroVad();
    // Up to the middle of the sentence.
    const voice = toFrames(concatPcm([hiss(300, rate), speech.get(rate)!]), rate).slice(0, 60);
    const quiet = toFrames(hiss(voice.length * 20, rate), rate);
    voice.forEach((f, i) => {
      a.push(f);
      b.push(quiet[i]!);
    });
    expect(a.speaking).toBe(true);
    expect(b.speaking).toBe(false);
  });
});
