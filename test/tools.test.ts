// Tenant HTTP tools end to end: the settings API (validation, sealed header values, replace-the-list), the
// signing secret (shown once, sealed at rest, per tenant), and chats through the fake OpenAI whose model calls a
// tenant tool served by a local HTTP server: signed requests, invalid arguments, timeouts, errors, isolation.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signingSecrets, tenantConfigs } from '../src/db/schema.js';
import { verify } from '../src/lib/signing.js';
import { FakeOpenAI } from './fakes/openai.js';
import { buildTestApp, call, type Session, signup, type TestApp, twoTenants } from './helpers.js';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let t: TestApp;
let fake: FakeOpenAI;
let a: Session;
let b: Session;
let server: Server;
let base = '';
let received: Received[] = [];
const routes: Record<string, (res: ServerResponse, body: string) => void> = {
  '/book': (res, body) => {
    const { arguments: args } = JSON.parse(body);
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ confirmed: true, reference: 'BK-1042', party_size: args.party_size }));
  },
  '/fail': (res) => res.writeHead(500).end('internal details'),
  '/hang': () => {},
};

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const path = new URL(req.url!, 'http://x').pathname;
    received.push({ path, headers: req.headers, body });
    routes[path]!(res, body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake = await new FakeOpenAI().start();
  t = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL });
  ({ a, b } = await twoTenants(t.app));
  for (const s of [a, b]) {
    const res = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, {
      providers: { llm: { provider: 'openai', model: 'gpt-4o-mini' } },
      provider_keys: { openai: fake.apiKey },
    });
    expect(res.statusCode, res.body).toBe(200);
  }
});
afterAll(async () => {
  await t.close();
  await fake.stop();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  received = [];
});

const put = (s: Session, body: object) => call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, body);
const chat = (s: Session, message: string) => call(t.app, 'POST', '/api/v1/chat', s.access_token, { message });
const events = async (s: Session, id: string) =>
  (await call(t.app, 'GET', `/api/v1/calls/${id}/events`, s.access_token)).json().items as {
    type: string;
    data: Record<string, unknown>;
  }[];

const bookTable = (over: object = {}) => ({
  name: 'book_table',
  description: 'Book a table at the restaurant.',
  parameters: {
    type: 'object',
    properties: {
      party_size: { type: 'integer', description: 'How many people' },
      time: { type: 'string', description: 'HH:MM, 24-hour' },
      seating: { type: 'string', enum: ['inside', 'terrace'] },
    },
    required: ['party_size', 'time'],
  },
  url: `${base}/book`,
  headers: { Authorization: 'Bearer restaurant-token-0123456789' },
  ...over,
});

/** The model calls `name` with `args` on the caller's first words, then says what the tool answered. */
function modelCalls(name: string, args: Record<string, unknown>) {
  fake.chatScript = (body) => {
    const last = (body.messages as { role: string; content: string }[]).at(-1)!;
    return last.role === 'tool' ? { text: `Tool said: ${last.content}` } : { toolCalls: [{ name, arguments: args }] };
  };
}

describe('tool settings', () => {
  it('refuses each bad tool with the field that is wrong, and stores nothing', async () => {
    const before = (await call(t.app, 'GET', '/api/v1/settings/tenant', a.access_token)).json();
    const params = (properties: object, extra: object = {}) => bookTable({ parameters: { type: 'object', properties, ...extra } });
    const cases: [object[], string][] = [
      [[bookTable({ name: 'Book-Table' })], 'body.tools.0.name'],
      [[bookTable({ name: 'end_call' })], 'body.tools.0.name'],
      [[bookTable({ name: 'search_knowledge' })], 'body.tools.0.name'],
      [[bookTable(), bookTable({ description: 'again' })], 'body.tools.1.name'],
      [[bookTable({ description: '' })], 'body.tools.0.description'],
      [[bookTable({ description: 'x'.repeat(1001) })], 'body.tools.0.description'],
      [[bookTable({ parameters: { type: 'string' } })], 'body.tools.0.parameters.type'],
      [[params({ time: { type: 'date' } })], 'body.tools.0.parameters.properties.time.type'],
      [[params({ time: { type: 'string', minLength: 4 } })], 'body.tools.0.parameters.properties.time.minLength'],
      [[params({ time: { type: 'string', pattern: '^\\d+$' } })], 'body.tools.0.parameters.properties.time.pattern'],
      [[params({ list: { type: 'array' } })], 'body.tools.0.parameters.properties.list.items'],
      [[params({ time: { type: 'string' } }, { required: ['date'] })], 'body.tools.0.parameters.required.0'],
      [[params({ time: { type: 'string' } }, { additionalProperties: false })], 'body.tools.0.parameters.additionalProperties'],
      [
        [
          params({
            a: {
              type: 'object',
              properties: {
                b: {
                  type: 'object',
                  properties: { c: { type: 'object', properties: { d: { type: 'object', properties: { e: { type: 'string' } } } } } },
                },
              },
            },
          }),
        ],
        'body.tools.0.parameters',
      ],
      [[bookTable({ url: 'ftp://example.com/book' })], 'body.tools.0.url'],
      [[bookTable({ url: 'not a url' })], 'body.tools.0.url'],
      [[bookTable({ url: 'https://user:pass@example.com/book' })], 'body.tools.0.url'],
      [[bookTable({ method: 'DELETE' })], 'body.tools.0.method'],
      [[bookTable({ timeout_ms: 50 })], 'body.tools.0.timeout_ms'],
      [[bookTable({ timeout_ms: 30_001 })], 'body.tools.0.timeout_ms'],
      [[bookTable({ headers: { 'X-Voice-Signature': 'forged' } })], 'body.tools.0.headers.X-Voice-Signature'],
      [[bookTable({ headers: { 'Content-Type': 'text/plain' } })], 'body.tools.0.headers.Content-Type'],
      [[bookTable({ headers: { Authorization: 'Bearer x\r\nX-Injected: 1' } })], 'body.tools.0.headers.Authorization'],
      [[bookTable({ headers: { Authorization: { configured: true } } })], 'body.tools.0.headers.Authorization'],
      [[bookTable({ surprise: 1 })], 'body.tools.0.surprise'],
      [Array.from({ length: 21 }, (_, i) => bookTable({ name: `tool_${i}` })), 'body.tools'],
    ];
    for (const [tools, field] of cases) {
      const res = await put(a, { agent_name: 'Changed', tools });
      expect(res.statusCode, `${field}: ${res.body}`).toBe(422);
      expect(res.json().error.code).toBe('validation_error');
      expect(
        res.json().error.details.map((d: { field: string }) => d.field),
        res.body,
      ).toContain(field);
    }
    const after = (await call(t.app, 'GET', '/api/v1/settings/tenant', a.access_token)).json();
    expect(after).toEqual(before);
  });

  it('stores tools with sealed header values; PUT replaces the list, keeps headers sent back as shown', async () => {
    const token = 'Bearer restaurant-token-0123456789';
    const res = await put(a, {
      tools: [bookTable(), bookTable({ name: 'opening_hours', method: 'GET', timeout_ms: 1500, headers: undefined })],
    });
    expect(res.statusCode, res.body).toBe(200);
    const tools = res.json().tools;
    expect(tools[0]).toMatchObject({
      name: 'book_table',
      method: 'POST',
      timeout_ms: 5000,
      headers: { Authorization: { configured: true, last4: '6789' } },
    });
    expect(tools[1]).toMatchObject({ name: 'opening_hours', method: 'GET', timeout_ms: 1500, headers: {} });
    expect(JSON.stringify(res.json())).not.toContain('restaurant-token');
    const [row] = await t.deps.database.db.select().from(tenantConfigs).where(eq(tenantConfigs.tenantId, a.tenant.id));
    expect(JSON.stringify(row)).not.toContain('restaurant-token');
    expect((await t.deps.settings.forProviders(a.tenant.id)).tools[0]!.headers).toEqual({ Authorization: token });

    // Untouched by an unrelated change.
    expect((await put(a, { agent_name: 'Nora' })).json().tools).toHaveLength(2);
    // The GET's tools sent back (one edited, one dropped) keep the stored header value.
    const shown = (await call(t.app, 'GET', '/api/v1/settings/tenant', a.access_token)).json().tools;
    const edited = await put(a, { tools: [{ ...shown[0], description: 'Book a table, now with a terrace.' }] });
    expect(edited.statusCode, edited.body).toBe(200);
    expect(edited.json().tools.map((x: { name: string }) => x.name)).toEqual(['book_table']);
    expect((await t.deps.settings.forProviders(a.tenant.id)).tools[0]).toMatchObject({
      description: 'Book a table, now with a terrace.',
      headers: { Authorization: token },
    });
    expect((await put(a, { tools: [] })).json().tools).toEqual([]);
    // The OpenAPI document says so, and the recursive argument schema it refers to is in it.
    const spec = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(JSON.stringify(spec.paths['/api/v1/settings/tenant'].put)).toContain('replaces the whole list');
    const refs = [...new Set(JSON.stringify(spec).match(/"\$ref":"[^"]+"/g) ?? [])].map((r) => r.slice(8, -1));
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(spec.components.schemas, ref).toHaveProperty([ref.replace('#/components/schemas/', '')]);
  });

  it('only admins and API keys change tools', async () => {
    const member = await call(t.app, 'POST', '/api/v1/users', a.access_token, {
      email: `member-${Date.now()}@example.com`,
      password: 'correct horse battery',
      role: 'member',
    });
    expect(member.statusCode, member.body).toBe(201);
    const login = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: member.json().email, password: 'correct horse battery' },
    });
    const token = login.json().access_token;
    expect((await call(t.app, 'PUT', '/api/v1/settings/tenant', token, { tools: [bookTable()] })).statusCode).toBe(403);
    expect((await call(t.app, 'POST', '/api/v1/settings/signing-secret', token)).statusCode).toBe(403);
    expect((await call(t.app, 'GET', '/api/v1/settings/signing-secret', token)).statusCode).toBe(200);
  });
});

describe('signing secret', () => {
  it('is shown once when rotated, sealed at rest, and per tenant', async () => {
    const s = await signup(t.app, { tenant_name: 'Fresh' });
    const other = await signup(t.app, { tenant_name: 'Other' });
    const get = (x: Session) => call(t.app, 'GET', '/api/v1/settings/signing-secret', x.access_token);
    expect((await get(s)).json()).toEqual({ configured: false, created_at: null, last4: null, previous_expires_at: null });

    const rotated = await call(t.app, 'POST', '/api/v1/settings/signing-secret', s.access_token);
    expect(rotated.statusCode, rotated.body).toBe(201);
    const { secret } = rotated.json();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{40,}$/);
    expect(rotated.json()).toMatchObject({ configured: true, last4: secret.slice(-4), previous_expires_at: null });
    const shown = (await get(s)).json();
    expect(shown).toEqual({ configured: true, created_at: rotated.json().created_at, last4: secret.slice(-4), previous_expires_at: null });
    expect(JSON.stringify(shown)).not.toContain(secret.slice(6, 20));
    const [row] = await t.deps.database.db.select().from(signingSecrets).where(eq(signingSecrets.tenantId, s.tenant.id));
    expect(JSON.stringify(row)).not.toContain(secret.slice(6));
    expect(row!.secret).toMatch(/^v1\./);
    expect(await t.deps.signingSecrets.forSigning(s.tenant.id)).toEqual([secret]);

    // Another tenant sees and rotates only its own.
    expect((await get(other)).json().configured).toBe(false);
    const theirs = (await call(t.app, 'POST', '/api/v1/settings/signing-secret', other.access_token)).json().secret;
    expect(theirs).not.toBe(secret);
    expect(await t.deps.signingSecrets.forSigning(s.tenant.id)).toEqual([secret]);
    expect((await get(s)).json().last4).toBe(secret.slice(-4));

    // A rotation keeps the previous secret signing for a while, after the new one.
    const next = (await call(t.app, 'POST', '/api/v1/settings/signing-secret', s.access_token)).json();
    expect(next.secret).not.toBe(secret);
    expect(Date.parse(next.previous_expires_at) - Date.now()).toBeGreaterThan(23 * 3600_000);
    expect(await t.deps.signingSecrets.forSigning(s.tenant.id)).toEqual([next.secret, secret]);
  });

  it('is made on first need, once, even by concurrent first requests', async () => {
    const s = await signup(t.app, { tenant_name: 'Lazy' });
    const [x, y] = await Promise.all([t.deps.signingSecrets.forSigning(s.tenant.id), t.deps.signingSecrets.forSigning(s.tenant.id)]);
    expect(x).toEqual(y);
    expect(x![0]).toMatch(/^whsec_/);
    expect((await call(t.app, 'GET', '/api/v1/settings/signing-secret', s.access_token)).json()).toMatchObject({
      configured: true,
      last4: x![0]!.slice(-4),
    });
  });
});

describe('tools in a conversation', () => {
  let secret = '';
  beforeAll(async () => {
    secret = (await call(t.app, 'POST', '/api/v1/settings/signing-secret', a.access_token)).json().secret;
    const res = await put(a, {
      tools: [
        bookTable(),
        bookTable({
          name: 'slow_lookup',
          url: `${base}/hang`,
          timeout_ms: 300,
          parameters: { type: 'object', properties: {} },
          headers: undefined,
        }),
        bookTable({ name: 'broken_lookup', url: `${base}/fail`, parameters: { type: 'object', properties: {} }, headers: undefined }),
      ],
    });
    expect(res.statusCode, res.body).toBe(200);
  });

  it('calls the tenant tool with a signed request the tenant can verify, and answers from its result', async () => {
    modelCalls('book_table', { party_size: 4, time: '19:30', seating: 'terrace' });
    const res = await chat(a, 'A table for four at half past seven, on the terrace please.');
    expect(res.statusCode, res.body).toBe(200);
    const { session_id: sessionId, reply } = res.json();
    expect(reply).toBe('Tool said: {"confirmed":true,"reference":"BK-1042","party_size":4}');

    expect(received).toHaveLength(1);
    const [r] = received;
    const body = JSON.parse(r!.body);
    expect(body).toMatchObject({
      tool: 'book_table',
      arguments: { party_size: 4, time: '19:30', seating: 'terrace' },
      call_id: sessionId,
      tenant_id: a.tenant.id,
    });
    expect(r!.headers).toMatchObject({
      'x-voice-tool': 'book_table',
      'x-voice-call-id': sessionId,
      'x-voice-request-id': body.request_id,
      authorization: 'Bearer restaurant-token-0123456789',
    });
    const header = r!.headers['x-voice-signature'] as string;
    expect(verify(secret, header, r!.body)).toBe(true);
    // Tampered body, tampered timestamp, too old, or another secret: refused.
    expect(verify(secret, header, r!.body.replace('"party_size":4', '"party_size":40'))).toBe(false);
    expect(
      verify(
        secret,
        header.replace(/t=(\d+)/, (_, s) => `t=${Number(s) + 1}`),
        r!.body,
      ),
    ).toBe(false);
    expect(verify(secret, header, r!.body, { now: body.timestamp + 301 })).toBe(false);
    expect(verify('whsec_someone_else', header, r!.body)).toBe(false);

    // The model was offered the tenant's tool next to the built-ins, with its schema.
    const offered = (fake.chatRequests.at(-1)!.tools as { function: { name: string; parameters: unknown } }[]).map((x) => x.function);
    expect(offered.map((f) => f.name)).toEqual(
      expect.arrayContaining(['end_call', 'search_knowledge', 'book_table', 'slow_lookup', 'broken_lookup']),
    );
    expect(offered.find((f) => f.name === 'book_table')!.parameters).toEqual(bookTable().parameters);

    const called = (await events(a, sessionId)).find((e) => e.type === 'tool.called')!;
    expect(called.data).toMatchObject({ name: 'book_table', status: 'ok', http_status: 200, arguments: { party_size: 4 } });
    expect(called.data.duration_ms).toEqual(expect.any(Number));
  });

  it('refuses invalid arguments without a request, and the model hears why', async () => {
    modelCalls('book_table', { party_size: 'four', time: '19:30' });
    const res = await chat(a, 'A table for four at seven thirty.');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().reply).toMatch(/^Tool said: The book_table tool was not called: party_size must be an integer/);
    expect(received).toEqual([]);
    expect((await events(a, res.json().session_id)).find((e) => e.type === 'tool.called')!.data).toMatchObject({
      status: 'invalid_arguments',
    });
  });

  it('a tool that does not answer in time: the turn still completes, with an answer', async () => {
    modelCalls('slow_lookup', {});
    const res = await chat(a, 'Is there a table free tonight?');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().reply).toBe('Tool said: The slow_lookup tool did not answer in time.');
    expect(received.map((r) => r.path)).toEqual(['/hang']);
    const called = (await events(a, res.json().session_id)).find((e) => e.type === 'tool.called')!.data;
    expect(called).toMatchObject({ name: 'slow_lookup', status: 'timeout' });
    // /hang never answers: given up at its 300 ms, not much later. Bounded on the tool's own time rather than the whole
    // turn's (two model calls and the database besides, which a loaded machine stretches past any bound).
    expect(called.duration_ms).toBeGreaterThanOrEqual(290); // a timer may fire within a millisecond of its time
    expect(called.duration_ms).toBeLessThan(5000);
  });

  it('a tool that fails with 500: the turn completes and the error text stays with us', async () => {
    modelCalls('broken_lookup', {});
    const res = await chat(a, 'Is there a table free tonight?');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().reply).toBe('Tool said: The broken_lookup tool failed and could not help just now.');
    expect((await events(a, res.json().session_id)).find((e) => e.type === 'tool.called')!.data).toMatchObject({
      status: 'http_error',
      http_status: 500,
    });
  });

  it("another tenant's chat is not offered A's tools, and cannot call them", async () => {
    modelCalls('book_table', { party_size: 2, time: '18:00' });
    const res = await chat(b, 'A table for two at six.');
    expect(res.statusCode, res.body).toBe(200);
    const offered = (fake.chatRequests.at(-2)!.tools as { function: { name: string } }[]).map((x) => x.function.name);
    expect(offered).not.toContain('book_table');
    expect(offered).toContain('end_call');
    expect(res.json().reply).toBe('Tool said: Unknown tool book_table.');
    expect(received).toEqual([]);
  });
});
