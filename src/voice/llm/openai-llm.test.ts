// The OpenAI chat adapter with the official SDK against the local fake that speaks the streaming protocol.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeOpenAI } from '../../../test/fakes/openai.js';
import { ProviderError } from '../../lib/provider-error.js';
import type { ChatRequest, LlmChunk } from './llm.js';
import { OpenAiLlm } from './openai-llm.js';

let fake: FakeOpenAI;
beforeAll(async () => {
  fake = await new FakeOpenAI().start();
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
async function collect(llm: OpenAiLlm, req: ChatRequest) {
  const chunks: LlmChunk[] = [];
  for await (const c of llm.chat(req)) chunks.push(c);
  return chunks;
}

describe('OpenAiLlm (official SDK, fake server)', () => {
  it('streams text deltas, sends the knowledge in the system prompt and the tools, reports usage', async () => {
    fake.chatScript = () => ({ text: 'We open at nine on weekdays.' });
    const chunks = await collect(new OpenAiLlm({ apiKey: fake.apiKey, baseURL: fake.baseURL }), request());
    const texts = chunks.filter((c) => c.type === 'text');
    expect(texts.length).toBeGreaterThan(2);
    expect(texts.map((c) => (c as { text: string }).text).join('')).toBe('We open at nine on weekdays.');
    expect(chunks.at(-1)).toMatchObject({
      type: 'done',
      finishReason: 'stop',
      usage: { inputTokens: expect.any(Number), outputTokens: expect.any(Number) },
    });
    const sent = fake.chatRequests.at(-1)!;
    expect(sent).toMatchObject({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true } });
    const messages = sent.messages as { role: string; content: string }[];
    expect(messages[0]!.role).toBe('system');
    expect(messages[0]!.content).toContain('[1] (Hours) We open at nine.');
    expect((sent.tools as { function: { name: string } }[])[0]!.function.name).toBe('end_call');
  });

  it('assembles tool calls from fragments and round-trips them in the history', async () => {
    fake.chatScript = () => ({ text: 'Goodbye!', toolCalls: [{ name: 'end_call', arguments: { reason: 'caller is done' } }] });
    const llm = new OpenAiLlm({ apiKey: fake.apiKey, baseURL: fake.baseURL });
    const chunks = await collect(llm, request());
    const call = chunks.find((c) => c.type === 'tool_call') as { call: { id: string; name: string; arguments: unknown } };
    expect(call.call).toMatchObject({ name: 'end_call', arguments: { reason: 'caller is done' } });
    expect(call.call.id).toMatch(/^call_/);
    expect(chunks.at(-1)).toMatchObject({ finishReason: 'tool_calls' });
    // The next request carries the assistant tool call and its result; the fake checks they pair up.
    fake.chatScript = () => ({ text: 'Done.' });
    const next = await collect(
      llm,
      request({
        messages: [
          { role: 'user', content: 'Bye' },
          {
            role: 'assistant',
            content: 'Goodbye!',
            toolCalls: [{ id: call.call.id, name: 'end_call', arguments: { reason: 'caller is done' } }],
          },
          { role: 'tool', toolCallId: call.call.id, content: 'ok' },
        ],
      }),
    );
    expect(next.at(-1)).toMatchObject({ type: 'done', finishReason: 'stop' });
  });

  it('maps failures: a bad key is permanent, 429 is retryable with Retry-After, an unknown model is permanent', async () => {
    await expect(collect(new OpenAiLlm({ apiKey: 'sk-wrong', baseURL: fake.baseURL }), request())).rejects.toMatchObject({
      retryable: false,
      status: 401,
    });
    fake.failNext({ status: 429, retryAfterS: 3 });
    const err = await collect(new OpenAiLlm({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 0 }), request()).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ retryable: true, status: 429, retryAfterMs: 3000 });
    await expect(collect(new OpenAiLlm({ apiKey: fake.apiKey, baseURL: fake.baseURL, model: 'gpt-9' }), request())).rejects.toMatchObject({
      status: 404,
      retryable: false,
    });
  });

  it('stops when aborted', async () => {
    fake.chatScript = () => ({ text: 'This will never be heard.' });
    const controller = new AbortController();
    controller.abort();
    await expect(
      collect(new OpenAiLlm({ apiKey: fake.apiKey, baseURL: fake.baseURL }), request({ signal: controller.signal })),
    ).rejects.toThrow();
  });
});
