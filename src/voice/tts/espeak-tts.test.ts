import { describe, expect, it } from 'vitest';
import { concatPcm, dbfs } from '../audio.js';
import { EspeakTts } from './espeak-tts.js';

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
    const t0 = performance.now();
    const short = concatPcm((await collect(tts, 'Hello.')).map((f) => f.pcm));
    const long = concatPcm((await collect(tts, 'Hello, thank you for calling the Sunrise clinic, how can I help you today?')).map((f) => f.pcm));
    expect(performance.now() - t0).toBeLessThan((short.length + long.length) / 16);
    expect(long.length).toBeGreaterThan(short.length * 3);
  });

  it('yields nothing for blank text or once aborted, and reports a missing binary as a ProviderError', async () => {
    expect(await collect(new EspeakTts({ sampleRate: 8000 }), '   ')).toEqual([]);
    const controller = new AbortController();
    controller.abort();
    expect(await collect(new EspeakTts({ sampleRate: 8000 }), 'Never said.', controller.signal)).toEqual([]);
    await expect(collect(new EspeakTts({ sampleRate: 8000, binary: 'espeak-ng-missing' }), 'Hi.')).rejects.toThrow(/espeak-ng is not installed/);
  });
});
