import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Semaphore } from '../../lib/semaphore.js';
import { concatPcm, dbfs } from '../audio.js';
import { EspeakTts } from './espeak-tts.js';

/** CPU time (user + system) of this process's ended children so far, ms (Linux: /proc/self/stat, 100 ticks a second). */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

async function collect(tts: EspeakTts, text: string, signal?: AbortSignal) {
  const frames = [];
  for await (const f of tts.synthesize(text, { signal })) frames.push(f);
  return frames;
}

describe('EspeakTts (espeak-ng)', () => {
  it('speaks a sentence at the call’s rate, in 100 ms pieces with running timestamps', async () => {
    const frames = await collect(new EspeakTts({ sampleRate: 8000 }), 'Your appointment is confirmed for Tuesday at nine.');
    const pcm = concatPcm(frames.map((f) => f.pcm));
    expect(frames.every((f) => f.sampleRate === 8000)).toBe(true);
    expect(frames[0]!.pcm.length).toBe(800);
    expect(frames[1]!.timestampMs).toBe(100);
    const seconds = pcm.length / 8000;
    expect(seconds).toBeGreaterThan(1.5);
    expect(seconds).toBeLessThan(5);
    expect(dbfs(pcm)).toBeGreaterThan(-30);
  });

  it('is faster than real time and longer text takes longer to say', async () => {
    const tts = new EspeakTts({ sampleRate: 16000 });
    // Measured in espeak-ng's CPU time, not wall time: on a loaded machine a process waits for a core however fast it
    // is (CI failed such bounds), while the CPU it spends is what real time has to cover.
    const t0 = childrenCpuMs();
    const short = concatPcm((await collect(tts, 'Hello.')).map((f) => f.pcm));
    const long = concatPcm(
      (await collect(tts, 'Hello, thank you for calling the Sunrise clinic, how can I help you today?')).map((f) => f.pcm),
    );
    expect(childrenCpuMs() - t0).toBeLessThan((short.length + long.length) / 16);
    expect(long.length).toBeGreaterThan(short.length * 3);
  });

  it('yields nothing for blank text or once aborted, and reports a missing binary as a ProviderError', async () => {
    expect(await collect(new EspeakTts({ sampleRate: 8000 }), '   ')).toEqual([]);
    const controller = new AbortController();
    controller.abort();
    expect(await collect(new EspeakTts({ sampleRate: 8000 }), 'Never said.', controller.signal)).toEqual([]);
    await expect(collect(new EspeakTts({ sampleRate: 8000, binary: 'espeak-ng-missing' }), 'Hi.')).rejects.toThrow(
      /espeak-ng is not installed/,
    );
  });

  it('many calls speaking at once share the instance’s slots: never more espeak-ng processes than LOCAL_TTS_CONCURRENCY', async () => {
    // espeak-ng behind a wrapper that logs its start and end, and lingers a little so that processes overlap.
    const dir = mkdtempSync(path.join(tmpdir(), 'va-espeak-'));
    const log = path.join(dir, 'log');
    const binary = path.join(dir, 'espeak-wrapper');
    writeFileSync(binary, `#!/bin/sh\necho s >> '${log}'\nsleep 0.2\nespeak-ng "$@"\ncode=$?\necho e >> '${log}'\nexit $code\n`);
    chmodSync(binary, 0o755);
    const maxAtOnce = () => {
      let now = 0;
      let max = 0;
      for (const line of readFileSync(log, 'utf8').split('\n')) {
        if (line === 's') max = Math.max(max, ++now);
        if (line === 'e') now -= 1;
      }
      return max;
    };
    const speakAll = (slots?: Semaphore) =>
      Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          collect(new EspeakTts({ sampleRate: 8000, binary, slots }), `Caller number ${i}, your table is ready.`),
        ),
      );
    // One engine per call (each call has its own EspeakTts), two slots for the instance.
    const slots = new Semaphore(2);
    const spoken = await speakAll(slots);
    expect(spoken.every((frames) => frames.length > 5)).toBe(true);
    expect(maxAtOnce()).toBeLessThanOrEqual(2);
    expect(slots.active).toBe(0);
    // Without the shared slots the same calls run their processes all at once.
    writeFileSync(log, '');
    await speakAll();
    expect(maxAtOnce()).toBeGreaterThan(2);
  });

  it('a sentence interrupted while waiting for a slot says nothing and leaves the queue', async () => {
    const slots = new Semaphore(1);
    const hold = await slots.acquire();
    const controller = new AbortController();
    const waiting = collect(new EspeakTts({ sampleRate: 8000, slots }), 'Nobody will hear this.', controller.signal);
    controller.abort();
    expect(await waiting).toEqual([]);
    expect(slots.queued).toBe(0);
    hold();
    expect(slots.active).toBe(0);
  });
});
