import { describe, expect, it } from 'vitest';
import type { ChatRequest, KnowledgePassage, LlmChunk, ToolSpec } from './llm.js';
import { extractAnswer, LocalResponder } from './local-responder.js';

const tools: ToolSpec[] = [
  { name: 'end_call', description: 'Hang up', parameters: { type: 'object', properties: {} } },
  { name: 'transfer_call', description: 'Transfer', parameters: { type: 'object', properties: {} } },
];
const hours: KnowledgePassage = {
  chunkId: 'c1',
  documentId: 'd1',
  documentTitle: 'Clinic',
  headingPath: [],
  page: null,
  score: 0.6,
  text: 'Welcome to Sunrise Clinic. The clinic opens at seven thirty on weekdays. On Saturdays it closes at noon. Parking is free.',
};

async function ask(said: string, extra: Partial<ChatRequest> = {}) {
  const chunks: LlmChunk[] = [];
  for await (const c of new LocalResponder().chat({
    system: '',
    messages: [{ role: 'user', content: said }],
    knowledge: [],
    tools,
    ...extra,
  }))
    chunks.push(c);
  return {
    text: chunks.flatMap((c) => (c.type === 'text' ? [c.text] : [])).join(''),
    calls: chunks.flatMap((c) => (c.type === 'tool_call' ? [c.call.name] : [])),
    textChunks: chunks.filter((c) => c.type === 'text').length,
    done: chunks.at(-1),
  };
}

describe('LocalResponder', () => {
  it('answers from the passage sentences that share the question’s words, streamed in pieces', async () => {
    const r = await ask('When does the clinic open on Saturdays?', { knowledge: [hours] });
    expect(r.text).toBe('The clinic opens at seven thirty on weekdays. On Saturdays it closes at noon.');
    expect(r.textChunks).toBeGreaterThan(2);
    expect(r.calls).toEqual([]);
    expect(r.done).toEqual({ type: 'done', finishReason: 'stop' });
  });

  it('says plainly that it does not know when nothing matches', async () => {
    expect((await ask('Do you sell eSIM cards?', { knowledge: [] })).text).toMatch(/I do not have information about that/);
    expect((await ask('Do you sell eSIM cards?', { knowledge: [hours] })).text).toMatch(/I do not have information about that/);
  });

  it('says goodbye and ends the call; hands over to a person when asked', async () => {
    const bye = await ask('Thanks, that is all, goodbye.');
    expect(bye.text).toMatch(/Goodbye/);
    expect(bye.calls).toEqual(['end_call']);
    expect(bye.done).toEqual({ type: 'done', finishReason: 'tool_calls' });
    const human = await ask('Can I speak to someone please?');
    expect(human.calls).toEqual(['transfer_call']);
    const noTransfer = await ask('I want to talk to a human', { tools: [] });
    expect(noTransfer.calls).toEqual([]);
    expect(noTransfer.text).toMatch(/nobody else can take the call/);
  });

  it('stops streaming when aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    expect((await ask('When does the clinic open?', { knowledge: [hours], signal: controller.signal })).text).toBe('');
  });

  it('extractAnswer prefers the better-ranked passage on ties and keeps reading order', () => {
    const other: KnowledgePassage = {
      chunkId: 'c2',
      documentId: 'd1',
      headingPath: [],
      page: null,
      documentTitle: 'Other',
      score: 0.3,
      text: 'The clinic opens late on holidays.',
    };
    expect(extractAnswer('When does the clinic open?', [other, hours])).toBe(
      'The clinic opens late on holidays. The clinic opens at seven thirty on weekdays.',
    );
    expect(extractAnswer('', [hours])).toBeUndefined();
  });
});
