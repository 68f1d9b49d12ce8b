// UsageMeter: what one call (or chat turn) consumes, counted in memory where it happens (STT audio seconds, LLM
// tokens, TTS characters, embedding tokens) and written to the ledger once (services/usage.ts) when the call ends.
// The engines are wrapped (like the fallback wrappers), so no engine knows it is metered; an audio frame costs one
// addition, never a database write.
import { estimateTokens } from '../rag/chunking.js';
import type { Embedder } from '../rag/embedders/embedder.js';
import type { BilledTo, UsageKey, UsageLine, UsageUnit } from '../services/prices.js';

export type { BilledTo, UsageKey, UsageLine };
import { durationMs } from './audio.js';
import type { LLM, LlmChunk } from './llm/llm.js';
import type { STT, SttStream } from './stt/stt.js';
import type { TTS } from './tts/tts.js';

export interface UsageMeter {
  /** A running total for one line, for hot paths: add to its `quantity` directly. */
  counter(key: UsageKey): { quantity: number };
  add(key: UsageKey, quantity: number): void;
}

/** The meter of one call: totals per line, and what was already handed to the ledger. */
export class UsageTally implements UsageMeter {
  private readonly lines = new Map<string, UsageLine & { reported: number }>();

  counter(key: UsageKey): { quantity: number } {
    const id = `${key.component}|${key.provider}|${key.model}|${key.unit}|${key.billedTo}`;
    let line = this.lines.get(id);
    if (!line) this.lines.set(id, (line = { ...key, quantity: 0, reported: 0 }));
    return line;
  }

  add(key: UsageKey, quantity: number): void {
    if (quantity > 0) this.counter(key).quantity += quantity;
  }

  /** What was used since the last drain (a chat session drains per turn, a call once at its end). */
  drain(): UsageLine[] {
    const out: UsageLine[] = [];
    for (const line of this.lines.values()) {
      const delta = line.quantity - line.reported;
      if (delta <= 0) continue;
      line.reported = line.quantity;
      const { component, provider, model, unit, billedTo } = line;
      out.push({ component, provider, model, unit, billedTo, quantity: delta });
    }
    return out;
  }
}

/** Tokens the LLM reported in its usage fields; when it reports none (an aborted stream, the local responder), estimated. */
export function meteredLlm(llm: LLM, meter: UsageMeter, billedTo: BilledTo): LLM {
  const key = (unit: UsageUnit): UsageKey => ({ component: 'llm', provider: llm.provider, model: llm.model, unit, billedTo });
  return {
    provider: llm.provider,
    model: llm.model,
    async *chat(request) {
      let reported = false;
      let output = '';
      let started = false;
      try {
        for await (const chunk of llm.chat(request) as AsyncIterable<LlmChunk>) {
          started = true;
          if (chunk.type === 'text') output += chunk.text;
          else if (chunk.type === 'tool_call') output += JSON.stringify(chunk.call.arguments) + chunk.call.name;
          else if (chunk.usage) {
            reported = true;
            meter.add(key('input_tokens'), chunk.usage.inputTokens);
            meter.add(key('output_tokens'), chunk.usage.outputTokens);
          }
          yield chunk;
        }
      } finally {
        // A provider that failed before answering handed over to the next in its chain; it is not counted.
        if (started && !reported) {
          const prompt = request.system + request.knowledge.map((k) => k.text).join('\n') + JSON.stringify(request.messages);
          meter.add(key('input_tokens'), estimateTokens(prompt));
          meter.add(key('output_tokens'), estimateTokens(output));
        }
      }
    },
  };
}

/** Seconds of caller audio the engine was sent. */
export function meteredStt(stt: STT, meter: UsageMeter, billedTo: BilledTo): STT {
  return {
    provider: stt.provider,
    sampleRate: stt.sampleRate,
    stream(opts): SttStream {
      const inner = stt.stream(opts);
      const total = meter.counter({ component: 'stt', provider: stt.provider, model: '', unit: 'seconds', billedTo });
      return {
        push(frame) {
          total.quantity += durationMs(frame.pcm.length, frame.sampleRate) / 1000;
          inner.push(frame);
        },
        flush: () => inner.flush(),
        close: () => inner.close(),
        get events() {
          return inner.events;
        },
      };
    },
  };
}

/** Characters sent to the engine (what TTS vendors bill), counted when the text is sent. */
export function meteredTts(tts: TTS, meter: UsageMeter, billedTo: BilledTo): TTS {
  const key: UsageKey = { component: 'tts', provider: tts.provider, model: '', unit: 'characters', billedTo };
  return {
    provider: tts.provider,
    sampleRate: tts.sampleRate,
    synthesize(text, opts) {
      meter.add(key, text.length);
      return tts.synthesize(text, opts);
    },
  };
}

/**
 * Embedding tokens: as the vendor reported them (`onUsage`, the OpenAI embedder), else estimated from the texts
 * (the local embedder, at price 0).
 */
export function meteredEmbedder(embedder: Embedder, meter: UsageMeter, provider: string, billedTo: BilledTo): Embedder {
  const key: UsageKey = { component: 'embeddings', provider, model: embedder.model, unit: 'tokens', billedTo };
  const wrapped: Embedder = Object.create(embedder) as Embedder;
  wrapped.embed = async (texts, opts = {}) => {
    let reported: number | undefined;
    const vectors = await embedder.embed(texts, {
      ...opts,
      onUsage: (tokens) => {
        reported = tokens;
        opts.onUsage?.(tokens);
      },
    });
    meter.add(key, reported ?? texts.reduce((n, t) => n + estimateTokens(t), 0));
    return vectors;
  };
  return wrapped;
}

/**
 * An embedder whose usage is written after each request (`write`): for document ingestion, which has no call to
 * write at the end of. One write per batch of chunks, never per chunk.
 */
export function recordingEmbedder(
  embedder: Embedder,
  provider: string,
  billedTo: BilledTo,
  write: (lines: UsageLine[]) => Promise<void>,
): Embedder {
  const tally = new UsageTally();
  const metered = meteredEmbedder(embedder, tally, provider, billedTo);
  const wrapped: Embedder = Object.create(metered) as Embedder;
  wrapped.embed = async (texts, opts) => {
    const vectors = await metered.embed(texts, opts);
    await write(tally.drain());
    return vectors;
  };
  return wrapped;
}
