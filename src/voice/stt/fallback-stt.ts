// Fallback chain for speech-to-text: when the engine in use fails (refused connection, dropped socket, crashed
// process), the next one takes over the same stream without dropping the call. The audio since the last final
// result is replayed into it, so the words the caller is saying right now are not lost.
import { ProviderError } from '../../lib/provider-error.js';
import { EventQueue } from '../../lib/event-queue.js';
import type { AudioFrame } from '../audio.js';
import type { STT, SttEvent, SttStream } from './stt.js';

/** Enough to replay an utterance in progress; older audio has been transcribed already. */
const REPLAY_MS = 15_000;

export class FallbackStt implements STT {
  readonly sampleRate: number;

  constructor(
    private readonly chain: STT[],
    private readonly onFallback: (failed: STT, err: unknown) => void = () => {},
  ) {
    if (chain.length === 0) throw new Error('a fallback chain needs at least one STT');
    this.sampleRate = chain[0]!.sampleRate;
    // One rate for the whole chain: the call resamples once, to this rate.
    if (chain.some((s) => s.sampleRate !== this.sampleRate)) throw new Error('every STT in a chain must take the same sample rate');
  }

  get provider(): string {
    return this.chain[0]!.provider;
  }

  stream(opts: { language?: string; signal?: AbortSignal }): SttStream {
    const out = new EventQueue<SttEvent>();
    const replay: AudioFrame[] = [];
    let replayMs = 0;
    let index = 0;
    let current = this.chain[0]!.stream(opts);
    let closing = false;
    let flushPending = false;

    const pump = async () => {
      for (;;) {
        try {
          for await (const event of current.events) {
            if (event.type === 'final') {
              replay.length = 0;
              replayMs = 0;
              flushPending = false;
            }
            out.push(event);
          }
          return out.end();
        } catch (err) {
          if (closing || opts.signal?.aborted) return out.end();
          this.onFallback(this.chain[index]!, err);
          if (++index >= this.chain.length) {
            return out.fail(err instanceof ProviderError ? err : new ProviderError('stt', `every STT in the chain failed: ${String(err)}`, true));
          }
          current = this.chain[index]!.stream(opts);
          for (const frame of replay) current.push(frame);
          if (flushPending) current.flush();
        }
      }
    };
    const pumping = pump();

    return {
      events: out,
      push(frame) {
        replay.push(frame);
        replayMs += (frame.pcm.length * 1000) / frame.sampleRate;
        while (replayMs > REPLAY_MS && replay.length > 1) {
          const old = replay.shift()!;
          replayMs -= (old.pcm.length * 1000) / old.sampleRate;
        }
        current.push(frame);
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
