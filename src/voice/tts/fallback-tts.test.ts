import { describe, expect, it } from 'vitest';
import { ProviderError } from '../../lib/provider-error.js';
import type { AudioFrame } from '../audio.js';
import { FallbackTts } from './fallback-tts.js';
import type { TTS } from './tts.js';

/** Yields `frames` frames tagged with its name, failing after `failAfter` of them (or never). */
class ScriptedTts implements TTS {
  readonly sampleRate: number = 8000;
  calls = 0;
  constructor(
    readonly provider: string,
    private readonly failAfter = Infinity,
  ) {}
  async *synthesize(text: string): AsyncIterable<AudioFrame> {
    this.calls++;
    for (let i = 0; i < 4; i++) {
      if (i === this.failAfter) throw new ProviderError(this.provider, '503 overloaded', true, 503);
      yield {
        pcm: new Int16Array(160),
        sampleRate: 8000,
        timestampMs: i * 20,
        [Symbol.for('from')]: `${this.provider}:${text}`,
      } as AudioFrame;
    }
  }
}
const from = (f: AudioFrame) => (f as unknown as Record<symbol, string>)[Symbol.for('from')];
const collect = async (tts: TTS, text: string) => {
  const out: string[] = [];
  for await (const f of tts.synthesize(text, {})) out.push(from(f)!);
  return out;
};

describe('FallbackTts', () => {
  it('speaks with the next engine when the first fails before any audio, and stays there', async () => {
    const cloud = new ScriptedTts('elevenlabs', 0);
    const local = new ScriptedTts('local');
    const failed: string[] = [];
    const tts = new FallbackTts([cloud, local], (t) => failed.push(t.provider));
    expect(await collect(tts, 'Hello.')).toEqual(Array(4).fill('local:Hello.'));
    expect(await collect(tts, 'Again.')).toEqual(Array(4).fill('local:Again.'));
    expect(cloud.calls).toBe(1);
    expect(failed).toEqual(['elevenlabs']);
    expect(tts.provider).toBe('local');
  });

  it('starts a sentence cut off mid-way again on the next engine', async () => {
    const tts = new FallbackTts([new ScriptedTts('elevenlabs', 2), new ScriptedTts('local')]);
    expect(await collect(tts, 'Hi.')).toEqual(['elevenlabs:Hi.', 'elevenlabs:Hi.', 'local:Hi.', 'local:Hi.', 'local:Hi.', 'local:Hi.']);
  });

  it("yields every frame at the first engine's rate, resampling a fallback at another rate", async () => {
    class Wideband extends ScriptedTts {
      override readonly sampleRate = 16000;
      override async *synthesize(): AsyncIterable<AudioFrame> {
        this.calls++;
        // 100 ms of a 440 Hz tone at 16 kHz, in 20 ms frames.
        for (let i = 0; i < 5; i++) {
          const pcm = Int16Array.from({ length: 320 }, (_, n) => Math.round(8000 * Math.sin((2 * Math.PI * 440 * (i * 320 + n)) / 16000)));
          yield { pcm, sampleRate: 16000, timestampMs: i * 20 };
        }
      }
    }
    const tts = new FallbackTts([new ScriptedTts('elevenlabs', 0), new Wideband('local')]);
    expect(tts.sampleRate).toBe(8000);
    const frames: AudioFrame[] = [];
    for await (const f of tts.synthesize('Hi.', {})) frames.push(f);
    expect(frames.every((f) => f.sampleRate === 8000)).toBe(true);
    // 100 ms at 8 kHz, nothing lost at the end (the resampler's tail is flushed).
    expect(frames.reduce((n, f) => n + f.pcm.length, 0)).toBe(800);
    const peak = Math.max(...frames.flatMap((f) => [...f.pcm].slice(100)));
    expect(peak).toBeGreaterThan(7000);
  });

  it('throws a ProviderError when every engine fails', async () => {
    const tts = new FallbackTts([new ScriptedTts('a', 0), new ScriptedTts('b', 1)]);
    await expect(collect(tts, 'Hi.')).rejects.toThrow(ProviderError);
  });
});
