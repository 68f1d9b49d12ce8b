// TTS: text in, audio frames out as soon as they are made. One interface for ElevenLabs and espeak-ng.
import type { AudioFrame } from '../audio.js';

export interface TTS {
  readonly provider: string;
  /** The rate of the frames it yields. */
  readonly sampleRate: number;
  /** Yields frames (any length) as they are synthesized; stops early when the signal aborts. */
  synthesize(text: string, opts: { signal?: AbortSignal }): AsyncIterable<AudioFrame>;
}
