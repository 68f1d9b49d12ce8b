// The chat websocket: replies streamed as the model writes them, browser authentication by subprotocol,
// cancel keeping what was written, sessions resumed and isolated per tenant, bad messages answered in-band.
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { FakeOpenAI } from './fakes/openai.js';
import { buildTestApp, call, type Session, signup, type TestApp, twoTenants, waitFor } from './helpers.js';

let t: TestApp;
let fake: FakeOpenAI;
let a: Session;
let b: Session;
let base = '';
beforeAll(async () => {
  fake = await new FakeOpenAI().start();
  t = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL });
  ({ a, b } = await twoTenants(t.app));
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  base = `ws://127.0.0.1:${(t.app.server.address() as AddressInfo).port}/api/v1/chat/ws`;
  const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', a.access_token, {
    greeting: 'Hello, Sunrise clinic.',
    providers: { llm: { provider: 'openai', model: 'gpt-4o-mini' } },
    provider_keys: { openai: fake.apiKey },
  });
  expect(put.statusCode, put.body).toBe(200);
});
afterAll(async () => {
  await t.close();
  await fake.stop();
});

type Msg = Record<string, unknown> & { type: string };

/** A client that collects what the server sends. */
async function connect(opts: { token?: string; browser?: boolean; query?: string } = {}) {
  const token = opts.token ?? a.access_token;
  const url = base + (opts.query ?? '');
  const ws =
    opts.browser === false ? new WebSocket(url, { headers: { authorization: `Bearer ${token}` } }) : new WebSocket(url, ['bearer', token]);
  const received: Msg[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (data) => {
    received.push(JSON.parse(data.toString()) as Msg);
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((r) =>
    ws.on('close', (code, reason) => r({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (req, res) => {
      req.destroy();
      reject(new Error(`handshake refused: ${res.statusCode}`));
    });
    ws.once('error', reject);
  });
  const next = async (type: string, timeoutMs = 10_000): Promise<Msg> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = received.findIndex((m) => m.type === type);
      if (i >= 0) return received.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no ${type} message; got ${JSON.stringify(received)}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 100);
      });
    }
  };
  const send = (m: unknown) => ws.send(typeof m === 'string' ? m : JSON.stringify(m));
  return { ws, received, next, send, closed };
}

describe('chat websocket', () => {
  it('streams the reply in pieces, authenticated from a browser by subprotocol, and records the turns', async () => {
    fake.chatScript = () => ({ text: 'We open at seven thirty on weekdays and close at noon on Saturdays.' });
    const c = await connect();
    expect(c.ws.protocol).toBe('bearer');
    c.send({ type: 'message', text: 'When do you open?' });
    const session = await c.next('session');
    expect(session.greeting).toBe('Hello, Sunrise clinic.');
    const reply = await c.next('reply');
    const deltas = c.received.filter((m) => m.type === 'delta').map((m) => m.text as string);
    expect(deltas.length).toBeGreaterThan(5);
    expect(deltas.join('')).toBe(reply.reply);
    expect(reply).toMatchObject({ session_id: session.session_id, ended: false, cancelled: false });
    c.ws.close();

    const transcript = (await call(t.app, 'GET', `/api/v1/calls/${session.session_id as string}/transcript`, a.access_token)).json().items;
    expect(transcript.map((x: { speaker: string; text: string }) => [x.speaker, x.text])).toEqual([
      ['agent', 'Hello, Sunrise clinic.'],
      ['caller', 'When do you open?'],
      ['agent', reply.reply],
    ]);
  });

  it('gives each citation readably in the reply: document, title, heading path, page and a short snippet', async () => {
    const s = await signup(t.app);
    const doc = await call(t.app, 'POST', '/api/v1/documents', s.access_token, {
      title: 'Clinic hours',
      content: '# Opening hours\n\nOn Saturdays the clinic closes at noon.\n\n# Parking\n\nFree parking is on Elm Street.',
    });
    await waitFor('document ready', async () =>
      (await call(t.app, 'GET', `/api/v1/documents/${doc.json().id}`, s.access_token)).json().status === 'ready' ? true : undefined,
    );
    const c = await connect({ token: s.access_token });
    c.send({ type: 'message', text: 'When does the clinic close on Saturdays?' });
    const reply = await c.next('reply');
    c.ws.close();
    const citations = reply.citations as Record<string, unknown>[];
    expect(citations.length).toBeGreaterThan(0);
    expect(citations[0]).toEqual({
      chunk_id: expect.any(String),
      document_id: doc.json().id,
      title: 'Clinic hours',
      heading_path: ['Opening hours'],
      page: null,
      snippet: expect.stringContaining('Saturdays the clinic closes at noon'),
    });
  });

  it('resumes a session with the history from the database (Authorization header), and closes when the agent ends it', async () => {
    fake.chatScript = (body) => {
      const msgs = body.messages as { role: string; content: string }[];
      const said = msgs.at(-1)!.content;
      if (/bye/i.test(said)) return { text: 'Goodbye!', toolCalls: [{ name: 'end_call', arguments: { reason: 'caller said goodbye' } }] };
      return { text: `I have seen ${msgs.filter((m) => m.role === 'user').length} messages from you.` };
    };
    const first = await connect();
    first.send({ type: 'message', text: 'Hello' });
    const id = (await first.next('session')).session_id as string;
    expect((await first.next('reply')).reply).toBe('I have seen 1 messages from you.');
    first.ws.close();

    const again = await connect({ browser: false, query: `?session_id=${id}` });
    again.send({ type: 'message', text: 'Still there?' });
    expect((await again.next('reply')).reply).toBe('I have seen 2 messages from you.');
    expect(again.received.some((m) => m.type === 'session')).toBe(false);
    again.send({ type: 'message', text: 'Bye' });
    expect(await again.next('reply')).toMatchObject({ ended: true, action: { type: 'end_call' } });
    expect(await again.closed).toEqual({ code: 1000, reason: 'session ended' });
    const stored = (await call(t.app, 'GET', `/api/v1/calls/${id}`, a.access_token)).json();
    expect(stored.status).toBe('completed');
  });

  it('cancel stops the reply; what was written is kept and marked interrupted', async () => {
    fake.chunkDelayMs = 40;
    fake.chatScript = () => ({ text: Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ') });
    try {
      const c = await connect();
      c.send({ type: 'message', text: 'Tell me everything' });
      const session = await c.next('session');
      await c.next('delta');
      await c.next('delta');
      c.send({ type: 'cancel' });
      const reply = await c.next('reply');
      expect(reply.cancelled).toBe(true);
      const words = (reply.reply as string).split(' ');
      expect(words.length).toBeGreaterThanOrEqual(2);
      expect(words.length).toBeLessThan(60);
      const transcript = (await call(t.app, 'GET', `/api/v1/calls/${session.session_id as string}/transcript`, a.access_token)).json()
        .items;
      expect(transcript.at(-1)).toMatchObject({ speaker: 'agent', text: reply.reply, interrupted: true });
      // The socket is still usable.
      fake.chunkDelayMs = 0;
      fake.chatScript = () => ({ text: 'Short answer.' });
      c.send({ type: 'message', text: 'Briefly then' });
      expect((await c.next('reply')).reply).toBe('Short answer.');
      c.ws.close();
    } finally {
      fake.chunkDelayMs = 0;
    }
  });

  it('answers bad messages in-band with stable codes and keeps the socket open', async () => {
    fake.chatScript = () => ({ text: 'Fine.' });
    const c = await connect();
    c.send('not json');
    expect(await c.next('error')).toMatchObject({ error: { code: 'invalid_json' } });
    c.send({ type: 'shout', text: 'hi' });
    expect(await c.next('error')).toMatchObject({ error: { code: 'validation_error' } });
    c.send({ type: 'message', text: '   ' });
    expect(await c.next('error')).toMatchObject({ error: { code: 'validation_error' } });
    c.send({ type: 'message', text: 'x'.repeat(4001) });
    expect(await c.next('error')).toMatchObject({ error: { code: 'validation_error' } });
    // Text the database cannot store is refused like in REST, naming the field.
    for (const text of ['nul \u0000 here', 'lone \udc00 surrogate']) {
      c.send({ type: 'message', text });
      expect(await c.next('error')).toMatchObject({ error: { code: 'validation_error', details: [{ field: 'message.text' }] } });
    }
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect((await c.next('error')).type).toBe('error');
    c.send({ type: 'message', text: 'Now properly' });
    expect((await c.next('reply')).reply).toBe('Fine.');
    c.ws.close();
  });

  it('answers hostile frames (deep nesting, NUL, surrogates, huge values, wrong types) in-band, never with a server error', async () => {
    fake.chatScript = () => ({ text: 'Fine.' });
    const c = await connect();
    const frames = [
      '['.repeat(100_000) + ']'.repeat(100_000),
      '{"type":"message","text":' + '['.repeat(5000) + '"x"' + ']'.repeat(5000) + '}',
      '{"type":"message","text":"\\u0000"}',
      '{"type":"message","text":"\\ud800"}',
      '{"\\u0000":1}',
      '{"type":"message","text":1e400}',
      `{"type":"message","text":"${'x'.repeat(200_000)}"}`,
      '{"type":"message","text":null}',
      '{"type":["message"],"text":"hi"}',
      '{"type":"cancel","extra":{"__proto__":{"admin":true}}}',
      'null',
      '12345678901234567890123456789',
    ];
    for (const frame of frames) c.send(frame);
    const errors: Msg[] = [];
    for (let i = 0; i < frames.length; i++) errors.push(await c.next('error'));
    expect(
      errors.map((e) => (e.error as { code: string }).code).filter((code) => !['invalid_json', 'validation_error'].includes(code)),
    ).toEqual([]);
    // The socket still works.
    c.send({ type: 'message', text: 'Now properly' });
    expect((await c.next('reply')).reply).toBe('Fine.');
    c.ws.close();
  });

  it('a first message that fails leaves no session: the next message opens a new one', async () => {
    fake.chatScript = () => ({ text: 'Fine.' });
    const c = await connect();
    const sessions = async () => (await call(t.app, 'GET', '/api/v1/calls?direction=chat&limit=1', a.access_token)).json().total as number;
    const before = await sessions();
    // The greeting is written and the session announced; then writing the caller's words fails.
    const addTurn = t.deps.calls.addTurn.bind(t.deps.calls);
    let writes = 0;
    const spy = vi
      .spyOn(t.deps.calls, 'addTurn')
      .mockImplementation((...args) => (++writes === 2 ? Promise.reject(new Error('disk full')) : addTurn(...args)));
    c.send({ type: 'message', text: 'Hello?' });
    const first = await c.next('session');
    expect(await c.next('error')).toMatchObject({ error: { code: 'internal_error' } });
    spy.mockRestore();
    expect(await sessions()).toBe(before);
    expect((await call(t.app, 'GET', `/api/v1/calls/${first.session_id as string}`, a.access_token)).statusCode).toBe(404);
    c.send({ type: 'message', text: 'Hello again' });
    const second = await c.next('session');
    expect(second.session_id).not.toBe(first.session_id);
    expect((await c.next('reply')).session_id).toBe(second.session_id);
    expect(await sessions()).toBe(before + 1);
    c.ws.close();
  });

  it('refuses the handshake without credentials, and keeps sessions to their tenant', async () => {
    await expect(connect({ token: 'not-a-token' })).rejects.toThrow(/401/);
    const noAuth = new WebSocket(base);
    const status = await new Promise<number>((r) =>
      noAuth.once('unexpected-response', (req, res) => {
        req.destroy();
        r(res.statusCode!);
      }),
    );
    expect(status).toBe(401);

    fake.chatScript = () => ({ text: 'Private to A.' });
    const mine = await connect();
    mine.send({ type: 'message', text: 'Hello' });
    const id = (await mine.next('session')).session_id as string;
    await mine.next('reply');
    mine.ws.close();

    const other = await connect({ token: b.access_token, query: `?session_id=${id}` });
    other.send({ type: 'message', text: 'Let me in' });
    expect(await other.next('error')).toMatchObject({ error: { code: 'not_found' } });
    other.ws.close();
    const transcript = (await call(t.app, 'GET', `/api/v1/calls/${id}/transcript`, a.access_token)).json().items;
    expect(transcript.map((x: { text: string }) => x.text)).not.toContain('Let me in');
  });
});
