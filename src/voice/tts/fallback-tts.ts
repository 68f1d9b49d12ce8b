// Fallback chain for text-to-speech: a sentence the engine in use cannot synthesize is spoken by the next one.
// The switch sticks for the rest of the call (one instance per call), so a dead provider costs one delay, not
// one per sentence. A sentence cut off mid-way starts again on the next engine: a repeated half sentence is
// better than a missing one. Each engine speaks at its own rate; the chain yields the first one's, resampling the
// others' sentences (band-limited, one resampler per sentence so its audio has no seams).
import { ProviderError } from '../../lib/provider-error.js';
import { type AudioFrame, durationMs, StreamResampler } from '../audio.js';
import type { TTS } from './tts.js';

export class FallbackTts implements TTS {
  readonly sampleRate: number;
  private active = 0;

  constructor(
    private readonly chain: TTS[],
    private readonly onFallback: (failed: TTS, err: unknown) => void = () => {},
  ) {
    if (chain.length === 0) throw new Error('a fallback chain needs at least one TTS');
    this.sampleRate = chain[0]!.sampleRate;
  }

  get provider(): string {
    return this.chain[this.active]!.provider;
  }

  async *synthesize(text: string, opts: { signal?: AbortSignal } = {}): AsyncIterable<AudioFrame> {
    let lastError: unknown;
    for (; this.active < this.chain.length; this.active++) {
      const tts = this.chain[this.active]!;
      try {
        yield* this.atChainRate(tts.synthesize(text, opts), opts.signal);
        return;
      } catch (err) {
        if (opts.signal?.aborted) return;
        lastError = err;
        this.onFallback(tts, err);
        if (this.active === this.chain.length - 1) break;
      }
    }
    throw lastError instanceof ProviderError
      ? lastError
      : new ProviderError('tts', `every TTS in the chain failed: ${String(lastError)}`, true);
  }

  /** A sentence's frames at the chain's rate, whatever rate the engine made them at. */
  private async *atChainRate(frames: AsyncIterable<AudioFrame>, signal: AbortSignal | undefined): AsyncIterable<AudioFrame> {
    let resampler: StreamResampler | undefined;
    let endMs = 0;
    for await (const frame of frames) {
      if (frame.sampleRate === this.sampleRate) {
        yield frame;
        continue;
      }
      resampler ??= new StreamResampler(frame.sampleRate, this.sampleRate);
      const pcm = resampler.push(frame.pcm);
      endMs = frame.timestampMs + durationMs(frame.pcm.length, frame.sampleRate);
      if (pcm.length) yield { pcm, sampleRate: this.sampleRate, timestampMs: frame.timestampMs };
    }
    // The filter's last couple of milliseconds, unless the sentence was cut off.
    const tail = resampler && !signal?.aborted ? resampler.flush() : undefined;
    if (tail?.length) yield { pcm: tail, sampleRate: this.sampleRate, timestampMs: endMs - durationMs(tail.length, this.sampleRate) };
  }
}
