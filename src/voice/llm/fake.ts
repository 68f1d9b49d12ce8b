// A simulated LLM with a fixed time to first token and a steady token rate, for tests and the voice benchmark.
import { type Clock, realClock, sleep } from '../clock.js';
import type { ChatRequest, LLM, LlmChunk } from './llm.js';

export interface FakeLlmOptions {
  /** The reply to the caller's last words. */
  reply: (said: string, request: ChatRequest) => string;
  firstTokenMs: number;
  tokensPerSecond: number;
  /** Whose time the latencies take (a ManualClock in virtual-time tests). */
  clock?: Clock;
}

export class FakeLlm implements LLM {
  readonly provider = 'fake';
  readonly model = 'fake';

  constructor(private readonly opts: FakeLlmOptions) {}

  private get clock(): Clock {
    return this.opts.clock ?? realClock;
  }

  async *chat(request: ChatRequest): AsyncIterable<LlmChunk> {
    const last = [...request.messages].reverse().find((m) => m.role === 'user');
    const words = this.opts.reply(last?.content ?? '', request).split(/(?<=\s)/);
    await sleep(this.clock, this.opts.firstTokenMs, request.signal);
    for (let i = 0; i < words.length; i++) {
      if (request.signal?.aborted) return;
      if (i > 0) await sleep(this.clock, 1000 / this.opts.tokensPerSecond, request.signal);
      yield { type: 'text', text: words[i]! };
    }
    yield { type: 'done', finishReason: 'stop' };
  }
}
