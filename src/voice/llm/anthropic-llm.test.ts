// The Anthropic adapter with the official SDK against the local fake that speaks the Messages streaming protocol.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anthropicUsage, FakeAnthropic } from '../../../test/fakes/anthropic.js';
import { ProviderError } from '../../lib/provider-error.js';
import { AnthropicLlm } from './anthropic-llm.js';
import type { ChatRequest, LlmChunk } from './llm.js';

let fake: FakeAnthropic;
beforeAll(async () => {
  fake = await new FakeAnthropic().start();
});
afterAll(() => fake.stop());

const request = (extra: Partial<ChatRequest> = {}): ChatRequest => ({
  system: 'You answer phone calls.',
  messages: [{ role: 'user', content: 'When do you open?' }],
  knowledge: [
    { chunkId: 'c1', documentId: 'd1', documentTitle: 'Hours', headingPath: [], page: null, text: 'We open at nine.', score: 0.8 },
  ],
  tools: [{ name: 'end_call', description: 'Hang up', parameters: { type: 'object', properties: { reason: { type: 'string' } } } }],
  ...extra,
});
async function collect(llm: AnthropicLlm, req: ChatRequest) {
  const chunks: LlmChunk[] = [];
  for await (const c of llm.chat(req)) chunks.push(c);
  return chunks;
}

describe('AnthropicLlm (official SDK, fake server)', () => {
  it('streams text, sends system + knowledge and tools, and assembles tool use from JSON fragments', async () => {
    fake.script = () => ({ text: 'We open at nine. Goodbye!', toolCalls: [{ name: 'end_call', arguments: { reason: 'done' } }] });
    const chunks = await collect(new AnthropicLlm({ apiKey: fake.apiKey, baseURL: fake.baseURL }), request());
    expect(
      chunks
        .filter((c) => c.type === 'text')
        .map((c) => (c as { text: string }).text)
        .join(''),
    ).toBe('We open at nine. Goodbye!');
    const call = chunks.find((c) => c.type === 'tool_call') as { call: { id: string; name: string; arguments: unknown } };
    expect(call.call).toMatchObject({ name: 'end_call', arguments: { reason: 'done' } });
    expect(call.call.id).toMatch(/^toolu_/);
    const sent = fake.requests.at(-1)!;
    // The usage the fake reported (message_start's input, message_delta's output), as the SDK's events carry it.
    const usage = anthropicUsage(sent, 'We open at nine. Goodbye!', 1);
    expect(chunks.at(-1)).toEqual({
      type: 'done',
      finishReason: 'tool_calls',
      usage: { inputTokens: usage.input_tokens, outputTokens: usage.output_tokens },
    });
    expect(sent).toMatchObject({ model: 'claude-haiku-4-5', max_tokens: 1024, stream: true });
    expect(sent.system).toContain('[1] (Hours) We open at nine.');
    expect((sent.tools as { name: string; input_schema: unknown }[])[0]).toMatchObject({
      name: 'end_call',
      input_schema: { type: 'object' },
    });

    // The tool round trip: tool_use in the assistant turn, tool_result in the next user turn (checked by the fake).
    fake.script = () => ({ text: 'Done.' });
    const next = await collect(
      new AnthropicLlm({ apiKey: fake.apiKey, baseURL: fake.baseURL }),
      request({
        messages: [
          { role: 'user', content: 'Bye' },
          { role: 'assistant', content: 'Goodbye!', toolCalls: [{ id: call.call.id, name: 'end_call', arguments: { reason: 'done' } }] },
          { role: 'tool', toolCallId: call.call.id, content: 'ok' },
          { role: 'user', content: 'One more thing.' },
        ],
      }),
    );
    expect(next.at(-1)).toMatchObject({ finishReason: 'stop' });
    const wire = fake.requests.at(-1)!.messages as { role: string; content: { type: string }[] }[];
    expect(wire.map((m) => [m.role, m.content.map((b) => b.type)])).toEqual([
      ['user', ['text']],
      ['assistant', ['text', 'tool_use']],
      ['user', ['tool_result', 'text']],
    ]);
  });

  it('maps failures: bad key permanent, 429 and 529 retryable with Retry-After', async () => {
    await expect(collect(new AnthropicLlm({ apiKey: 'sk-ant-wrong', baseURL: fake.baseURL }), request())).rejects.toMatchObject({
      status: 401,
      retryable: false,
    });
    fake.failNext({ status: 429, retryAfterS: 7 });
    const limited = await collect(new AnthropicLlm({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 0 }), request()).catch(
      (e: unknown) => e,
    );
    expect(limited).toBeInstanceOf(ProviderError);
    expect(limited).toMatchObject({ status: 429, retryable: true, retryAfterMs: 7000 });
    fake.failNext({ status: 529 });
    await expect(collect(new AnthropicLlm({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 0 }), request())).rejects.toMatchObject(
      { status: 529, retryable: true },
    );
  });
});
