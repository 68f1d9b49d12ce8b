// A simulated TTS with a fixed time to first byte, for tests and the voice benchmark: a tone whose length
// follows the text (about 14 characters per second, like speech), produced faster than real time.
import type { AudioFrame } from '../audio.js';
import { type Clock, realClock, sleep } from '../clock.js';
import type { TTS } from './tts.js';

export class FakeTts implements TTS {
  readonly provider = 'fake';

  constructor(
    readonly sampleRate: number,
    private readonly firstByteMs: number,
    private readonly msPerChar = 70,
    /** Whose time the first byte takes (a ManualClock in virtual-time tests). */
    private readonly clock: Clock = realClock,
  ) {}

  async *synthesize(text: string, opts: { signal?: AbortSignal } = {}): AsyncIterable<AudioFrame> {
    if (!text.trim()) return;
    await sleep(this.clock, this.firstByteMs);
    const total = Math.round((text.length * this.msPerChar * this.sampleRate) / 1000);
    const piece = this.sampleRate / 10;
    const tone = toneFor(this.sampleRate);
    for (let offset = 0; offset < total; offset += piece) {
      if (opts.signal?.aborted) return;
      const n = Math.min(piece, total - offset);
      // A copy of a precomputed tone: a simulated provider must not spend the pipeline's CPU making audio.
      const pcm = tone.slice(0, n);
      yield { pcm, sampleRate: this.sampleRate, timestampMs: (offset * 1000) / this.sampleRate };
    }
  }
}

const tones = new Map<number, Int16Array>();
/** 100 ms of a 220 Hz tone (a whole number of periods at 8 and 16 kHz), made once per rate. */
function toneFor(sampleRate: number): Int16Array {
  let tone = tones.get(sampleRate);
  if (!tone) {
    tone = Int16Array.from({ length: sampleRate / 10 }, (_, i) => Math.round(6000 * Math.sin((2 * Math.PI * 220 * i) / sampleRate)));
    tones.set(sampleRate, tone);
  }
  return tone;
}
