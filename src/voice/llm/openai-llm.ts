// OpenAI chat completions, streaming with tools, through the official SDK; also any OpenAI-compatible server
// (Ollama, vLLM, llama.cpp) by base URL. Tool-call fragments are assembled by index and emitted once complete.
import OpenAI from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { toProviderError } from '../../lib/openai-error.js';
import { type ChatRequest, type LLM, type LlmChunk, systemWithKnowledge, type ToolCall } from './llm.js';

export interface OpenAiLlmOptions {
  apiKey: string;
  model?: string;
  baseURL?: string;
  /** 'openai' or 'openai_compatible': how failures are labelled. */
  provider?: string;
  /** One quick retry at most: a caller is waiting; the fallback chain handles the rest. */
  maxRetries?: number;
  timeoutMs?: number;
  /** How requests are sent: the outbound guard's fetch for a URL a tenant chose (lib/outbound.ts). */
  fetch?: typeof fetch;
}

export class OpenAiLlm implements LLM {
  readonly provider: string;
  readonly model: string;
  private readonly client: OpenAI;

  constructor(opts: OpenAiLlmOptions) {
    this.provider = opts.provider ?? 'openai';
    this.model = opts.model ?? 'gpt-4o-mini';
    this.client = new OpenAI({
      apiKey: opts.apiKey,
      baseURL: opts.baseURL,
      maxRetries: opts.maxRetries ?? 1,
      timeout: opts.timeoutMs ?? 15_000,
      fetch: opts.fetch,
    });
  }

  async *chat(request: ChatRequest): AsyncIterable<LlmChunk> {
    const calls = new Map<number, { id: string; name: string; args: string }>();
    let finish: LlmChunk & { type: 'done' } = { type: 'done', finishReason: 'stop' };
    try {
      const stream = await this.client.chat.completions.create(
        {
          model: this.model,
          messages: toMessages(request),
          ...(request.tools.length && { tools: request.tools.map(toTool) }),
          ...(request.temperature !== undefined && { temperature: request.temperature }),
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: request.signal },
      );
      for await (const chunk of stream) {
        if (chunk.usage)
          finish = { ...finish, usage: { inputTokens: chunk.usage.prompt_tokens, outputTokens: chunk.usage.completion_tokens } };
        const choice = chunk.choices[0];
        if (!choice) continue;
        if (choice.delta.content) yield { type: 'text', text: choice.delta.content };
        for (const t of choice.delta.tool_calls ?? []) {
          const call = calls.get(t.index) ?? { id: '', name: '', args: '' };
          call.id ||= t.id ?? '';
          call.name ||= t.function?.name ?? '';
          call.args += t.function?.arguments ?? '';
          calls.set(t.index, call);
        }
        if (choice.finish_reason) {
          const r = choice.finish_reason;
          finish = {
            ...finish,
            finishReason: r === 'stop' ? 'stop' : r === 'tool_calls' ? 'tool_calls' : r === 'length' ? 'length' : 'other',
          };
        }
      }
    } catch (err) {
      throw toProviderError(err, this.provider);
    }
    for (const [, c] of [...calls].sort(([a], [b]) => a - b))
      yield { type: 'tool_call', call: { id: c.id, name: c.name, arguments: parseArguments(c.args) } };
    yield finish;
  }
}

function toMessages(request: ChatRequest): ChatCompletionMessageParam[] {
  const out: ChatCompletionMessageParam[] = [{ role: 'system', content: systemWithKnowledge(request.system, request.knowledge) }];
  for (const m of request.messages) {
    if (m.role === 'user') out.push({ role: 'user', content: m.content });
    else if (m.role === 'tool') out.push({ role: 'tool', tool_call_id: m.toolCallId, content: m.content });
    else
      out.push({
        role: 'assistant',
        content: m.content || null,
        ...(m.toolCalls?.length && { tool_calls: m.toolCalls.map(toWireCall) }),
      });
  }
  return out;
}

const toWireCall = (c: ToolCall) => ({
  id: c.id,
  type: 'function' as const,
  function: { name: c.name, arguments: JSON.stringify(c.arguments) },
});
const toTool = (t: ChatRequest['tools'][number]): ChatCompletionTool => ({
  type: 'function',
  function: { name: t.name, description: t.description, parameters: t.parameters },
});

/** Models sometimes emit invalid JSON arguments; the tool then sees none rather than the turn failing. */
function parseArguments(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text || '{}') as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
