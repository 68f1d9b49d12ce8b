// The text channel end to end on the local engines: answers grounded in the tenant's documents, goodbye ends
// the session, transfer requests are recorded, and everything lands in the calls API; isolated per tenant.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FakeOpenAI } from './fakes/openai.js';
import { buildTestApp, call, type Session, signup, type TestApp, twoTenants, waitFor } from './helpers.js';

let t: TestApp;
let fake: FakeOpenAI;
let a: Session;
let b: Session;
let chunkIds: string[] = [];
let docId = '';
beforeAll(async () => {
  fake = await new FakeOpenAI().start();
  t = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL });
  ({ a, b } = await twoTenants(t.app));
  const doc = await call(t.app, 'POST', '/api/v1/documents', a.access_token, {
    title: 'Clinic hours',
    content:
      '# Opening hours\n\nThe Sunrise clinic opens at seven thirty on weekdays. On Saturdays the clinic closes at noon.\n\n# Parking\n\nFree parking is in the garage on Elm Street.',
  });
  docId = doc.json().id;
  await waitFor('document ready', async () =>
    (await call(t.app, 'GET', `/api/v1/documents/${doc.json().id}`, a.access_token)).json().status === 'ready' ? true : undefined,
  );
  const settings = await call(t.app, 'PUT', '/api/v1/settings/tenant', a.access_token, {
    greeting: 'Hello, Sunrise clinic, how can I help?',
    call: { transfer_number: '+14155550100' },
  });
  expect(settings.statusCode, settings.body).toBe(200);
  chunkIds = (await call(t.app, 'POST', '/api/v1/knowledge/search', a.access_token, { query: 'Saturdays noon', min_score: 0 }))
    .json()
    .results.map((r: { chunk_id: string }) => r.chunk_id);
});
afterAll(async () => {
  await t.close();
  await fake.stop();
});

const chat = (token: string, body: object) => call(t.app, 'POST', '/api/v1/chat', token, body);

describe('text channel', () => {
  it('answers from the documents with citations, ends on goodbye, and records turns, events and metrics', async () => {
    const first = await chat(a.access_token, { message: 'When does the clinic close on Saturdays?' });
    expect(first.statusCode, first.body).toBe(200);
    const r1 = first.json();
    expect(r1.greeting).toBe('Hello, Sunrise clinic, how can I help?');
    expect(r1.reply).toContain('On Saturdays the clinic closes at noon.');
    expect(r1.citations.length).toBeGreaterThan(0);
    // Readable where it is given: the document, its title, the headings above the passage, the page, a snippet.
    expect(r1.citations[0]).toEqual({
      chunk_id: expect.any(String),
      document_id: docId,
      title: 'Clinic hours',
      heading_path: ['Opening hours'],
      page: null,
      snippet: expect.stringContaining('On Saturdays the clinic closes at noon.'),
    });
    expect(chunkIds).toContain(r1.citations[0].chunk_id);
    expect(r1).toMatchObject({ action: null, ended: false });

    const second = (await chat(a.access_token, { session_id: r1.session_id, message: 'Great, thanks. Goodbye!' })).json();
    expect(second).toMatchObject({ session_id: r1.session_id, greeting: null, ended: true, action: { type: 'end_call' } });
    const again = await chat(a.access_token, { session_id: r1.session_id, message: 'Hello?' });
    expect([again.statusCode, again.json().error.code]).toEqual([409, 'conflict']);

    const id = r1.session_id;
    const transcript = (await call(t.app, 'GET', `/api/v1/calls/${id}/transcript`, a.access_token)).json().items;
    expect(transcript.map((x: { seq: number; speaker: string }) => [x.seq, x.speaker])).toEqual([
      [1, 'agent'],
      [2, 'caller'],
      [3, 'agent'],
      [4, 'caller'],
      [5, 'agent'],
    ]);
    expect(transcript[2].citations).toEqual(r1.citations);
    expect(Object.keys(transcript[2].metrics).sort()).toEqual(['llm_total', 'llm_ttft', 'retrieval']);
    const events = (await call(t.app, 'GET', `/api/v1/calls/${id}/events`, a.access_token))
      .json()
      .items.map((e: { type: string }) => e.type);
    expect(events).toEqual(['call.started', 'tool.called', 'call.ended']);
    const record = (await call(t.app, 'GET', `/api/v1/calls/${id}`, a.access_token)).json();
    expect(record).toMatchObject({ direction: 'chat', status: 'completed' });
    expect(record.duration_ms).toBeGreaterThanOrEqual(0);
    expect(record.metrics.retrieval).toMatchObject({ n: 2 });
    const list = (await call(t.app, 'GET', '/api/v1/calls?direction=chat', a.access_token)).json();
    expect(list.items.map((c: { id: string }) => c.id)).toContain(id);
  });

  it('resolves a cited chunk by id for its tenant only (another tenant: 404, like a missing one)', async () => {
    const r = (await chat(a.access_token, { message: 'Where is the free parking?' })).json();
    const cited = r.citations.find((c: { heading_path: string[] }) => c.heading_path[0] === 'Parking');
    expect(cited, JSON.stringify(r.citations)).toBeDefined();
    const own = await call(t.app, 'GET', `/api/v1/knowledge/chunks/${cited.chunk_id}`, a.access_token);
    expect(own.statusCode, own.body).toBe(200);
    expect(own.json()).toEqual({
      chunk_id: cited.chunk_id,
      document_id: docId,
      title: 'Clinic hours',
      heading_path: ['Parking'],
      page: null,
      text: expect.stringContaining('Free parking is in the garage on Elm Street.'),
      chunk_index: expect.any(Number),
      version: 1,
      live: true,
    });
    const theirs = await call(t.app, 'GET', `/api/v1/knowledge/chunks/${cited.chunk_id}`, b.access_token);
    expect([theirs.statusCode, theirs.json().error.code]).toEqual([404, 'not_found']);
    const missing = await call(t.app, 'GET', `/api/v1/knowledge/chunks/${crypto.randomUUID()}`, a.access_token);
    expect(missing.statusCode).toBe(404);
    expect((await call(t.app, 'GET', '/api/v1/knowledge/chunks/not-an-id', a.access_token)).statusCode).toBe(422);
  });

  it('reads turns stored with bare chunk ids (before citations were stored whole) as whole citations', async () => {
    const { id: callId } = await t.deps.calls.start(a.tenant.id, { direction: 'chat' });
    const gone = crypto.randomUUID();
    // As rows were written before: the ids alone (the column's JSON, bypassing today's typed write).
    await t.deps.database.db.execute(
      sql`insert into call_transcripts (tenant_id, call_id, seq, speaker, text, citations)
          values (${a.tenant.id}, ${callId}, 1, 'agent', 'old', ${JSON.stringify([chunkIds[0], gone])}::jsonb)`,
    );
    const items = (await call(t.app, 'GET', `/api/v1/calls/${callId}/transcript`, a.access_token)).json().items;
    // The chunk still stored is described; one since deleted cannot be and is left out.
    expect(items[0].citations).toEqual([expect.objectContaining({ chunk_id: chunkIds[0], document_id: docId, title: 'Clinic hours' })]);
  });

  it('says plainly when the documents do not know, and records a request for a person', async () => {
    const unknown = (await chat(a.access_token, { message: 'Do you sell eSIM plans for Japan?' })).json();
    expect(unknown.reply).toMatch(/I do not have information about that/);
    expect(unknown.citations).toEqual([]);
    const human = (await chat(a.access_token, { session_id: unknown.session_id, message: 'Can I speak to someone please?' })).json();
    expect(human).toMatchObject({ ended: false, action: { type: 'transfer_call', to: '+14155550100' } });
    const events = (await call(t.app, 'GET', `/api/v1/calls/${unknown.session_id}/events`, a.access_token)).json().items;
    expect(events.find((e: { type: string }) => e.type === 'transfer.requested')?.data).toMatchObject({ to: '+14155550100' });
  });

  it('keeps working when the configured LLM cannot answer (no key: falls back to the local responder)', async () => {
    await call(t.app, 'PUT', '/api/v1/settings/tenant', b.access_token, {
      providers: { llm: { provider: 'anthropic', model: 'claude-haiku-4-5' } },
    });
    const res = await chat(b.access_token, { message: 'Goodbye' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ ended: true });
    expect(t.logs.some((l) => l.includes('falling back'))).toBe(true);
  });

  it('uses OpenAI when configured (knowledge in the prompt, end_call as a tool), and falls back when it fails', async () => {
    const s = await signup(t.app);
    await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, {
      providers: { llm: { provider: 'openai', model: 'gpt-4o-mini' } },
      provider_keys: { openai: fake.apiKey },
    });
    fake.chatScript = (body) => {
      const said = (body.messages as { role: string; content: string }[]).at(-1)!.content;
      return /bye/i.test(said)
        ? { text: 'Goodbye from the model.', toolCalls: [{ name: 'end_call', arguments: { reason: 'done' } }] }
        : { text: 'The model says hello.' };
    };
    const first = (await chat(s.access_token, { message: 'Hello there' })).json();
    expect(first.reply).toBe('The model says hello.');
    fake.failNext({ status: 500 }, { status: 500 });
    const fallback = (await chat(s.access_token, { session_id: first.session_id, message: 'Where do I park?' })).json();
    expect(fallback.reply).toMatch(/I do not have information about that/); // the local responder, no documents
    const bye = (await chat(s.access_token, { session_id: first.session_id, message: 'Bye now' })).json();
    expect(bye).toMatchObject({ reply: 'Goodbye from the model.', ended: true, action: { type: 'end_call', reason: 'done' } });
    // The model saw the whole conversation, rebuilt from the database.
    const last = fake.chatRequests.at(-1)!.messages as { role: string; content: string }[];
    expect(last.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant', 'user']);
  });

  it('is tenant-scoped: another tenant can neither read nor continue a session, nor find its knowledge', async () => {
    const own = (await chat(a.access_token, { message: 'Where is the parking?' })).json();
    expect(own.reply).toContain('Elm Street');
    for (const path of ['', '/transcript', '/events']) {
      expect((await call(t.app, 'GET', `/api/v1/calls/${own.session_id}${path}`, b.access_token)).statusCode).toBe(404);
    }
    expect((await chat(b.access_token, { session_id: own.session_id, message: 'hi' })).statusCode).toBe(404);
    expect((await call(t.app, 'GET', '/api/v1/calls', b.access_token)).json().items.map((c: { id: string }) => c.id)).not.toContain(
      own.session_id,
    );
    const theirs = (await chat(b.access_token, { message: 'Where is the parking?' })).json();
    expect(theirs.reply).not.toContain('Elm Street');
    expect(theirs.citations).toEqual([]);
  });

  it('validates settings and messages', async () => {
    const bad = await call(t.app, 'PUT', '/api/v1/settings/tenant', a.access_token, { call: { transfer_number: '555-0100' } });
    expect([bad.statusCode, bad.json().error.details[0].field]).toEqual([422, 'body.call.transfer_number']);
    expect((await chat(a.access_token, { message: '   ' })).statusCode).toBe(422);
    expect((await chat(a.access_token, { message: 'x', session_id: 'nope' })).statusCode).toBe(422);
  });

  it('a message that fails leaves no session behind: refused text, or a failure while answering', async () => {
    const sessions = async () => (await call(t.app, 'GET', '/api/v1/calls?direction=chat&limit=1', a.access_token)).json().total as number;
    const before = await sessions();
    for (const message of ['hello\u0000there', 'lone \ud800 surrogate']) {
      const res = await chat(a.access_token, { message });
      expect(res.statusCode, res.body).toBe(422);
      expect(res.json().error.details[0].field).toBe('body.message');
    }
    // The session's first write (the greeting) fails after the session row was made: the row goes too.
    const spy = vi.spyOn(t.deps.calls, 'addTurn').mockRejectedValueOnce(new Error('disk full'));
    try {
      expect((await chat(a.access_token, { message: 'When do you open?' })).statusCode).toBe(500);
    } finally {
      spy.mockRestore();
    }
    expect(await sessions()).toBe(before);
    // And the next message opens a session as usual.
    expect((await chat(a.access_token, { message: 'When do you open?' })).statusCode).toBe(200);
    expect(await sessions()).toBe(before + 1);
  });
});
