// STT: caller audio in, speech events out. One interface for Deepgram (streaming websocket) and the local engine.
import type { AudioFrame } from '../audio.js';

export type SttEvent =
  | { type: 'speech-start'; atMs: number }
  /** A revisable guess for the words being spoken. */
  | { type: 'interim'; text: string; atMs: number }
  /**
   * Fixed text for a stretch of audio; `endOfTurn` when the engine's endpointing says the caller stopped. The text
   * may be empty (the stretch held no words): the audio up to here is done with all the same.
   */
  | { type: 'final'; text: string; startMs: number; endMs: number; confidence?: number; endOfTurn: boolean }
  | { type: 'speech-end'; atMs: number };

export interface SttStream {
  /** Caller audio, in order, at the engine's sample rate. */
  push(frame: AudioFrame): void;
  /** Asks the engine to finalize what it has heard so far (end of turn decided elsewhere). */
  flush(): void;
  /** Ends the stream; events still pending are delivered, then the iterator ends. */
  close(): Promise<void>;
  readonly events: AsyncIterable<SttEvent>;
}

export interface STT {
  readonly provider: string;
  /** The sample rate frames must have when pushed. */
  readonly sampleRate: number;
  stream(opts: { language?: string; signal?: AbortSignal }): SttStream;
}
