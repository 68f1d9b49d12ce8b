// Fallback chain for text-to-speech: a sentence the engine in use cannot synthesize is spoken by the next one.
// The switch sticks for the rest of the call (one instance per call), so a dead provider costs one delay, not
// one per sentence. A sentence cut off mid-way starts again on the next engine: a repeated half sentence is
// better than a missing one.
import { ProviderError } from '../../lib/provider-error.js';
import type { AudioFrame } from '../audio.js';
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
    if (chain.some((t) => t.sampleRate !== this.sampleRate)) throw new Error('every TTS in a chain must produce the same sample rate');
  }

  get provider(): string {
    return this.chain[this.active]!.provider;
  }

  async *synthesize(text: string, opts: { signal?: AbortSignal } = {}): AsyncIterable<AudioFrame> {
    let lastError: unknown;
    for (; this.active < this.chain.length; this.active++) {
      const tts = this.chain[this.active]!;
      try {
        for await (const frame of tts.synthesize(text, opts)) yield frame;
        return;
      } catch (err) {
        if (opts.signal?.aborted) return;
        lastError = err;
        this.onFallback(tts, err);
        if (this.active === this.chain.length - 1) break;
      }
    }
    throw lastError instanceof ProviderError ? lastError : new ProviderError('tts', `every TTS in the chain failed: ${String(lastError)}`, true);
  }
}
