// Anthropic messages, streaming with tool use, through the official SDK. Text deltas are passed on as they
// come; a tool_use block's JSON fragments are joined and parsed when the block stops.
import Anthropic from '@anthropic-ai/sdk';
import { httpProviderError, ProviderError } from '../../lib/provider-error.js';
import { type ChatRequest, type LLM, type LlmChunk, systemWithKnowledge } from './llm.js';

export interface AnthropicLlmOptions {
  apiKey: string;
  model?: string;
  baseURL?: string;
  maxRetries?: number;
  timeoutMs?: number;
  maxTokens?: number;
}

type WireMessage = Anthropic.MessageParam;

export class AnthropicLlm implements LLM {
  readonly provider = 'anthropic';
  readonly model: string;
  private readonly client: Anthropic;
  private readonly maxTokens: number;

  constructor(opts: AnthropicLlmOptions) {
    // The fast model by default: on a phone line time to first token matters more than depth (and the SDK
    // warns that claude-sonnet-4-5 reaches end of life on 2026-11-30).
    this.model = opts.model ?? 'claude-haiku-4-5';
    this.maxTokens = opts.maxTokens ?? 1024;
    this.client = new Anthropic({
      apiKey: opts.apiKey,
      baseURL: opts.baseURL,
      maxRetries: opts.maxRetries ?? 1,
      timeout: opts.timeoutMs ?? 15_000,
    });
  }

  async *chat(request: ChatRequest): AsyncIterable<LlmChunk> {
    const blocks = new Map<number, { id: string; name: string; json: string }>();
    let finish: LlmChunk & { type: 'done' } = { type: 'done', finishReason: 'stop' };
    let inputTokens = 0;
    try {
      const stream = await this.client.messages.create(
        {
          model: this.model,
          max_tokens: this.maxTokens,
          system: systemWithKnowledge(request.system, request.knowledge),
          messages: toMessages(request),
          ...(request.tools.length && {
            tools: request.tools.map((t) => ({
              name: t.name,
              description: t.description,
              input_schema: t.parameters as Anthropic.Tool.InputSchema,
            })),
          }),
          ...(request.temperature !== undefined && { temperature: Math.min(1, request.temperature) }),
          stream: true,
        },
        { signal: request.signal },
      );
      for await (const event of stream) {
        switch (event.type) {
          case 'message_start':
            inputTokens = event.message.usage.input_tokens;
            break;
          case 'content_block_start':
            if (event.content_block.type === 'tool_use')
              blocks.set(event.index, { id: event.content_block.id, name: event.content_block.name, json: '' });
            break;
          case 'content_block_delta':
            if (event.delta.type === 'text_delta') yield { type: 'text', text: event.delta.text };
            else if (event.delta.type === 'input_json_delta') {
              const b = blocks.get(event.index);
              if (b) b.json += event.delta.partial_json;
            }
            break;
          case 'content_block_stop': {
            const b = blocks.get(event.index);
            if (b) yield { type: 'tool_call', call: { id: b.id, name: b.name, arguments: parseInput(b.json) } };
            break;
          }
          case 'message_delta': {
            const r = event.delta.stop_reason;
            finish = {
              type: 'done',
              finishReason:
                r === 'end_turn' || r === 'stop_sequence'
                  ? 'stop'
                  : r === 'tool_use'
                    ? 'tool_calls'
                    : r === 'max_tokens'
                      ? 'length'
                      : 'other',
              usage: { inputTokens, outputTokens: event.usage.output_tokens },
            };
            break;
          }
        }
      }
    } catch (err) {
      throw toProviderError(err);
    }
    yield finish;
  }
}

/** Our history as Anthropic turns: tool results travel in a user turn; consecutive same-role turns are merged. */
function toMessages(request: ChatRequest): WireMessage[] {
  const out: WireMessage[] = [];
  const add = (role: 'user' | 'assistant', content: Anthropic.ContentBlockParam[]) => {
    const last = out.at(-1);
    if (last && last.role === role && Array.isArray(last.content)) last.content.push(...content);
    else out.push({ role, content });
  };
  for (const m of request.messages) {
    if (m.role === 'user') add('user', [{ type: 'text', text: m.content }]);
    else if (m.role === 'tool') add('user', [{ type: 'tool_result', tool_use_id: m.toolCallId, content: m.content }]);
    else {
      const content: Anthropic.ContentBlockParam[] = m.content ? [{ type: 'text', text: m.content }] : [];
      for (const c of m.toolCalls ?? []) content.push({ type: 'tool_use', id: c.id, name: c.name, input: c.arguments });
      if (content.length) add('assistant', content);
    }
  }
  return out;
}

function parseInput(json: string): Record<string, unknown> {
  try {
    const v = JSON.parse(json || '{}') as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export function toProviderError(err: unknown): unknown {
  if (err instanceof ProviderError || err instanceof Anthropic.APIUserAbortError) return err;
  if (err instanceof Anthropic.APIConnectionError)
    return new ProviderError(
      'anthropic',
      err.message,
      true,
      undefined,
      undefined,
      err instanceof Anthropic.APIConnectionTimeoutError ? 'timeout' : 'unreachable',
    );
  if (err instanceof Anthropic.APIError)
    return httpProviderError('anthropic', err.status ?? 0, err.message, err.headers?.get?.('retry-after'));
  return err;
}
