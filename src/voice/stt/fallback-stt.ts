// Fallback chain for speech-to-text: when the engine in use fails (refused connection, dropped socket, crashed
// process), the next one takes over the same stream without dropping the call. The audio since the last final
// result is replayed into it, so the words the caller is saying right now are not lost. Audio comes in at the first
// engine's rate; an engine that takes another gets it resampled.
import { ProviderError } from '../../lib/provider-error.js';
import { EventQueue } from '../../lib/event-queue.js';
import { type AudioFrame, durationMs, StreamResampler, toFrames } from '../audio.js';
import type { STT, SttEvent, SttStream } from './stt.js';

/** Enough to replay an utterance in progress; older audio has been transcribed already. */
const REPLAY_MS = 15_000;
/** Replay buffers kept for reuse per stream (see Replay.spare): a few seconds' worth. */
const MAX_SPARE = 4;

/**
 * The caller's audio since the last final result, copied into buffers of a second each rather than kept as the
 * frames it came in: between two finals (the agent talking while the caller listens) that is up to 750 small
 * arrays per call, which at a few hundred calls the garbage collector kept copying and promoting.
 */
class Replay {
  private chunks: { startMs: number; sampleRate: number; pcm: Int16Array; length: number }[] = [];
  /** The chunks' audio in ms, kept as they change (this runs for every caller frame). */
  private totalMs = 0;
  /**
   * Chunk buffers dropped from the replay, up to MAX_SPARE of them, kept for the next chunks: while the caller
   * listens the replay drops a second and starts one every second, and a call then allocates no buffer a second
   * (each a native allocation the garbage collector tracks and frees).
   */
  private spare: Int16Array[] = [];

  push(frame: AudioFrame): void {
    const { pcm, sampleRate, timestampMs } = frame;
    let last = this.chunks.at(-1);
    const continues =
      last && last.sampleRate === sampleRate && Math.abs(last.startMs + durationMs(last.length, sampleRate) - timestampMs) < 1;
    if (!last || !continues || last.length + pcm.length > last.pcm.length) {
      last = { startMs: timestampMs, sampleRate, pcm: this.buffer(Math.max(sampleRate, pcm.length)), length: 0 };
      this.chunks.push(last);
    }
    last.pcm.set(pcm, last.length);
    last.length += pcm.length;
    this.totalMs += durationMs(pcm.length, sampleRate);
    // Whole chunks go once the rest still covers REPLAY_MS.
    while (this.chunks.length > 1 && this.totalMs - durationMs(this.chunks[0]!.length, this.chunks[0]!.sampleRate) >= REPLAY_MS) {
      const first = this.chunks.shift()!;
      this.totalMs -= durationMs(first.length, first.sampleRate);
      this.recycle(first.pcm);
    }
  }

  clear(): void {
    for (const c of this.chunks) this.recycle(c.pcm);
    this.chunks = [];
    this.totalMs = 0;
  }

  /** The audio again, as 20 ms frames at their original times (copies: the buffers are reused). */
  frames(): AudioFrame[] {
    return this.chunks.flatMap((c) => toFrames(c.pcm.subarray(0, c.length), c.sampleRate, c.startMs));
  }

  private recycle(buffer: Int16Array): void {
    if (this.spare.length < MAX_SPARE) this.spare.push(buffer);
  }

  /** A buffer of exactly `samples`, a spare one when there is one (its old samples are written over before use). */
  private buffer(samples: number): Int16Array {
    const i = this.spare.findIndex((b) => b.length === samples);
    if (i < 0) return new Int16Array(samples);
    const [b] = this.spare.splice(i, 1);
    return b!;
  }
}

export class FallbackStt implements STT {
  readonly sampleRate: number;

  constructor(
    private readonly chain: STT[],
    private readonly onFallback: (failed: STT, err: unknown) => void = () => {},
  ) {
    if (chain.length === 0) throw new Error('a fallback chain needs at least one STT');
    // The call resamples to the first engine's rate; the others' are this wrapper's business.
    this.sampleRate = chain[0]!.sampleRate;
  }

  get provider(): string {
    return this.chain[0]!.provider;
  }

  stream(opts: { language?: string; signal?: AbortSignal }): SttStream {
    const out = new EventQueue<SttEvent>();
    const replay = new Replay();
    let index = 0;
    let current = this.chain[0]!.stream(opts);
    /** Set while the engine in use takes another rate than the chain's. */
    let toCurrent: StreamResampler | undefined;
    const pushCurrent = (frame: AudioFrame) => {
      if (!toCurrent) return current.push(frame);
      const pcm = toCurrent.push(frame.pcm);
      if (pcm.length) current.push({ pcm, sampleRate: toCurrent.to, timestampMs: frame.timestampMs });
    };
    let closing = false;
    let flushPending = false;

    const pump = async () => {
      for (;;) {
        try {
          for await (const event of current.events) {
            if (event.type === 'final') {
              replay.clear();
              flushPending = false;
            }
            out.push(event);
          }
          return out.end();
        } catch (err) {
          if (closing || opts.signal?.aborted) return out.end();
          this.onFallback(this.chain[index]!, err);
          if (++index >= this.chain.length) {
            return out.fail(
              err instanceof ProviderError ? err : new ProviderError('stt', `every STT in the chain failed: ${String(err)}`, true),
            );
          }
          const next = this.chain[index]!;
          current = next.stream(opts);
          toCurrent = next.sampleRate === this.sampleRate ? undefined : new StreamResampler(this.sampleRate, next.sampleRate);
          for (const frame of replay.frames()) pushCurrent(frame);
          if (flushPending) current.flush();
        }
      }
    };
    const pumping = pump();

    return {
      events: out,
      push(frame) {
        replay.push(frame);
        pushCurrent(frame);
      },
      flush() {
        flushPending = true;
        current.flush();
      },
      async close() {
        closing = true;
        await current.close();
        await pumping;
      },
    };
  }
}
