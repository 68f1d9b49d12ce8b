// Every operation of the app's own /openapi.json gets generated hostile requests (NUL, unpaired surrogates, nesting
// 1000+ deep, huge strings, numbers and arrays, wrong types, bad ids, missing and unknown fields, wrong content
// types) in its path parameters, query and body, as a tenant admin and anonymously: none may answer 5xx, except a
// 502 provider_error (a provider the tenant configured refused, in words the tenant can act on). Twilio and LiveKit
// are configured (their strict fakes), so the telephony routes run their real handlers instead of answering 503
// "not configured". Deterministic: a seeded PRNG.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveKitService } from '../src/telephony/livekit.js';
import { FakeLiveKit } from './fakes/livekit.js';
import { FakeOpenAI } from './fakes/openai.js';
import { type FakeTwilio, startFakeTwilio } from './fakes/twilio.js';
import { bearer, buildTestApp, call, multipart, type Session, signup, type TestApp, waitFor, WIRE_PASS } from './helpers.js';

// The wire pass sends half as many, from another seed: new inputs where the driver's errors differ (node-postgres'
// DatabaseError, not PGlite's), and the embedded pass has already sent the first 10,000.
const SEED = WIRE_PASS ? 0x2b9e41 : 0x16f022;
const AUTHENTICATED_PER_OPERATION = WIRE_PASS ? 75 : 150;
const ANONYMOUS_PER_OPERATION = WIRE_PASS ? 15 : 30;

// ---- a small deterministic PRNG (mulberry32) ------------------------------------------------------------------
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
    chance: (p: number) => next() < p,
  };
}
type Rng = ReturnType<typeof prng>;

// ---- hostile values -------------------------------------------------------------------------------------------
const hostileStrings = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\u0000'.repeat(50),
  '\ud800',
  '\udfff',
  'x\ud800y',
  '\udc00\ud800',
  '😀',
  '😀'.slice(0, 1),
  '\u202e\ufeff\u200b',
  '%00',
  '../../../etc/passwd',
  "' OR '1'='1' --",
  '"; DROP TABLE users; --',
  '${jndi:ldap://x}',
  '<script>alert(1)</script>',
  'null',
  'true',
  '-1',
  '1e309',
  'NaN',
  '0x7fffffff',
  '__proto__',
  'a'.repeat(10_000),
  'é'.repeat(5_000),
  'a'.repeat(300_000),
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '+99999999999999999999',
  'http://127.0.0.1:9/x?y#z',
  'file:///etc/passwd',
];
const hostileNumbers = [
  0,
  -0,
  -1,
  1.5,
  0.1,
  2 ** 31,
  2 ** 31 - 1,
  -(2 ** 31) - 1,
  2 ** 53 + 2,
  1e308,
  -1e308,
  5e-324,
  Number.MAX_SAFE_INTEGER,
];
const hostileOthers: unknown[] = [
  null,
  true,
  false,
  [],
  {},
  [[]],
  { '': 1 },
  [null],
  { __proto__: { admin: true } },
  { constructor: { prototype: { x: 1 } } },
];

/** Raw JSON text JSON.stringify cannot make (or should not: nesting this deep is what it is about). */
function hostileJsonText(rng: Rng): string {
  const depth = rng.pick([1000, 5000, 100_000]);
  return rng.pick([
    () => '['.repeat(depth) + ']'.repeat(depth),
    () => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth),
    () =>
      `{"tools":[{"name":"t","description":"d","url":"http://127.0.0.1:9","parameters":${'{"type":"object","properties":{"a":'.repeat(depth / 10)}{"type":"string"}${'}}'.repeat(depth / 10)}}]}`,
    () => `[${'0,'.repeat(200_000)}0]`,
    () => '{"a":1e400}',
    () => '{"a":123456789012345678901234567890}',
    () => '{"a":"\\u0000"}',
    () => '{"a":"\\ud800"}',
    () => '{"\\u0000":1}',
    () => '{"a":1,"a":2}',
    () => '{',
    () => 'null',
    () => '"text"',
    () => '12345678901234567890123456789',
    () => '\u0000',
    () => '{"a":"\u0000"}',
  ])();
}

function hostileValue(rng: Rng): unknown {
  const kind = rng.int(10);
  if (kind < 5) return rng.pick(hostileStrings);
  if (kind < 7) return rng.pick(hostileNumbers);
  if (kind < 8) return rng.pick(hostileOthers);
  if (kind < 9) return new Array(rng.pick([1000, 50_000])).fill(rng.pick(['x', 0, '\u0000', {}]));
  let v: unknown = rng.pick(['leaf', '\u0000', 1]);
  for (let i = 0, n = rng.pick([40, 1000]); i < n; i++) v = rng.chance(0.5) ? [v] : { a: v };
  return v;
}

// ---- values that fit a schema of the OpenAPI document -----------------------------------------------------------
type Schema = Record<string, unknown> & { type?: string | string[]; properties?: Record<string, Schema>; items?: Schema };
interface Operation {
  method: string;
  path: string;
  pathParams: string[];
  query: { name: string; schema: Schema }[];
  body: Schema | undefined;
}

let spec: { paths: Record<string, Record<string, Record<string, unknown>>>; components?: { schemas?: Record<string, Schema> } };
let fakeOpenAI: FakeOpenAI;
let serial = 0;

function resolve(s: Schema): Schema {
  const ref = s.$ref as string | undefined;
  if (!ref) return s;
  return spec.components?.schemas?.[ref.split('/').pop()!] ?? {};
}

function stringFor(s: Schema, name: string, rng: Rng): string {
  if (Array.isArray(s.enum)) return rng.pick(s.enum as string[]);
  const pattern = String(s.pattern ?? '');
  if (pattern.includes('\\+[1-9]')) return `+1555${String(1_000_000 + rng.int(8_999_999))}`;
  if (pattern.startsWith('^[a-z]{2,3}')) return rng.pick(['en', 'en-US', 'fr']);
  if (pattern.startsWith('^[a-z][a-z0-9_]')) return `tool_${rng.int(1000)}`;
  if (pattern.startsWith('^PN')) return `PN${'0123456789abcdef'.repeat(2)}`;
  if (s.format === 'uuid') return rng.pick(realIds.length ? realIds : ['00000000-0000-4000-8000-000000000000']);
  if (s.format === 'uri' || /url$/.test(name)) return fakeOpenAI.baseURL;
  if (s.format === 'date-time') return new Date(Date.UTC(2026, 0, 1)).toISOString();
  if (/email/.test(name)) return `fuzz-${++serial}@example.com`;
  if (/password/.test(name)) return 'correct horse battery';
  const min = Number(s.minLength ?? 1);
  return 'fuzz text '.repeat(Math.max(1, Math.ceil(min / 10))).slice(0, Math.max(min, Math.min(Number(s.maxLength ?? 30), 30)));
}

function valueFor(raw: Schema, name: string, rng: Rng, depth = 0): unknown {
  const s = resolve(raw);
  for (const alt of ['oneOf', 'anyOf'] as const)
    if (Array.isArray(s[alt])) return valueFor(rng.pick(s[alt] as Schema[]), name, rng, depth + 1);
  if (s.const !== undefined) return s.const;
  if (Array.isArray(s.enum)) return rng.pick(s.enum as unknown[]);
  const type = Array.isArray(s.type) ? rng.pick(s.type.filter((t) => t !== 'null')) : s.type;
  switch (type) {
    case 'string':
      return stringFor(s, name, rng);
    case 'integer':
    case 'number': {
      const min = Number(s.minimum ?? 0);
      const max = Number(s.maximum ?? min + 100);
      return type === 'integer' ? min + rng.int(Math.min(max - min, 1000) + 1) : min + rng.next() * Math.min(max - min, 1000);
    }
    case 'boolean':
      return rng.chance(0.5);
    case 'array':
      return depth > 4 ? [] : Array.from({ length: Number(s.minItems ?? rng.int(2)) }, () => valueFor(s.items ?? {}, name, rng, depth + 1));
    default: {
      if (!s.properties) return {};
      const out: Record<string, unknown> = {};
      const required = new Set((s.required as string[] | undefined) ?? []);
      for (const [key, sub] of Object.entries(s.properties)) {
        if (required.has(key) || (depth < 4 && rng.chance(0.5))) out[key] = valueFor(sub, key, rng, depth + 1);
      }
      return out;
    }
  }
}

/** Every path into `v` (object keys, array indexes), for replacing one place with something hostile. */
function pathsOf(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (at.length < 8 && v && typeof v === 'object')
    for (const [k, child] of Object.entries(v)) pathsOf(child, [...at, Array.isArray(v) ? Number(k) : k], out);
  return out;
}
function setAt(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  let o = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  o[path[path.length - 1]!] = value;
  return root;
}

// ---- the requests ---------------------------------------------------------------------------------------------
const badIds = [
  'not-a-uuid',
  '00000000-0000-0000-0000-000000000000',
  '00000000-0000-4000-8000-000000000000',
  "1' or '1'='1",
  '%00',
  '%ud800',
  '%ED%A0%80',
  '%E0%A4%A',
  '%',
  '..%2F..%2Fetc',
  'a'.repeat(300),
  'A'.repeat(36),
  '%F0%9F%98%80',
  '-1',
  '1e999',
];
/** Ids of rows that exist: the fuzzed tenant's, or (on admin routes) the victim tenant's. */
let realIds: string[] = [];
let tenantIds: string[] = [];

interface Built {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
  /** What was hostile about it, for the failure report. */
  cause: string;
}

function buildRequest(op: Operation, rng: Rng, token: string | undefined): Built {
  const headers: Record<string, string> = token ? bearer(token) : {};
  const causes: string[] = [];
  let url = op.path;
  for (const p of op.pathParams) {
    let v: string;
    if (rng.chance(0.4) && realIds.length) v = rng.pick(realIds);
    else if (rng.chance(0.5)) v = rng.pick(badIds);
    else {
      const s = String(rng.pick(hostileStrings)).slice(0, 400);
      v = encodeURIComponent(s.replace(/[\ud800-\udfff]/g, 'x'));
      // encodeURIComponent refuses lone surrogates; their WTF-8 bytes go raw instead.
      if (/[\ud800-\udfff]/.test(s)) v = '%ED%A0%80';
    }
    url = url.replace(`{${p}}`, v);
    causes.push(`path ${p}=${v.slice(0, 30)}`);
  }
  const query: string[] = [];
  for (const q of op.query) {
    if (rng.chance(0.5)) {
      const v = rng.chance(0.5)
        ? String(valueFor(q.schema, q.name, rng))
        : String(rng.pick([...hostileStrings.slice(0, 26), ...hostileNumbers.map(String)]));
      query.push(`${q.name}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, '\u0000'))}`);
      causes.push(`query ${q.name}`);
    }
  }
  if (rng.chance(0.2)) {
    query.push(
      rng.pick([
        'unknown=1',
        '__proto__[x]=1',
        'limit=1&limit=2',
        'limit[]=1',
        'a=%00',
        'b=%ED%A0%80',
        'c=%E0%A4%A',
        `d=${'x'.repeat(5000)}`,
      ]),
    );
    causes.push('extra query');
  }
  if (query.length) url += `?${query.join('&')}`;

  const kind = rng.int(100);
  let payload: string | Buffer | undefined;
  if (kind < 60 && op.body) {
    let body = valueFor(op.body, 'body', rng);
    const mutation = rng.int(6);
    if (mutation === 0) causes.push('valid-looking body');
    else if (mutation <= 3) {
      const where = rng.pick(pathsOf(body));
      body = setAt(body, where, hostileValue(rng));
      causes.push(`body.${where.join('.')} hostile`);
    } else if (mutation === 4 && body && typeof body === 'object') {
      (body as Record<string, unknown>)[
        rng.pick(['extra', '__proto__', 'constructor', '\u0000', '', 'tenant_id', 'role', 'is_platform_admin'])
      ] = hostileValue(rng);
      causes.push('body unknown field');
    } else if (body && typeof body === 'object') {
      const keys = Object.keys(body);
      if (keys.length) delete (body as Record<string, unknown>)[rng.pick(keys)];
      causes.push('body field missing');
    }
    payload = JSON.stringify(body);
    headers['content-type'] = 'application/json';
  } else if (kind < 80) {
    payload = hostileJsonText(rng);
    headers['content-type'] = 'application/json';
    causes.push(`raw JSON ${payload.slice(0, 24)}`);
  } else if (kind < 88) {
    const parts = [
      {
        name: 'file',
        value: rng.pick(['hello', '\u0000\u0000', '%PDF-1.7', 'PK\u0003\u0004']),
        filename: rng.pick(['a.txt', 'a\u0000b.txt', 'x\ud800.md', '../../etc/passwd', 'é'.repeat(400), '']),
      },
    ];
    if (rng.chance(0.6)) parts.push({ name: 'title', value: rng.pick(hostileStrings).slice(0, 5000) } as (typeof parts)[0]);
    const m = multipart(parts);
    payload = m.payload;
    Object.assign(headers, m.headers);
    causes.push('multipart');
  } else if (kind < 94) {
    payload = rng.pick([
      'To=%00&From=%ED%A0%80&CallSid=CA1',
      'CallDuration=99999999999999&CallStatus=completed',
      'a[b][c]=1',
      '%',
      `x=${'y'.repeat(20_000)}`,
    ]);
    headers['content-type'] = 'application/x-www-form-urlencoded';
    causes.push('form body');
  } else if (kind < 97) {
    payload = rng.pick(['\u0000', 'plain', '<xml/>']);
    headers['content-type'] = rng.pick(['text/plain', 'application/xml', 'application/json; charset=utf-16', 'multipart/form-data']);
    causes.push(`content-type ${headers['content-type']}`);
  } else causes.push('no body');
  return { method: op.method, url, headers, payload, cause: causes.join(', ') };
}

function operations(): Operation[] {
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, o] of Object.entries(methods)) {
      const params = (o.parameters as { in: string; name: string; schema: Schema }[] | undefined) ?? [];
      const content = (o.requestBody as { content?: Record<string, { schema: Schema }> } | undefined)?.content;
      ops.push({
        method: method.toUpperCase(),
        path,
        pathParams: params.filter((p) => p.in === 'path').map((p) => p.name),
        query: params.filter((p) => p.in === 'query'),
        body: content?.['application/json']?.schema,
      });
    }
  }
  return ops;
}

// ---- the run --------------------------------------------------------------------------------------------------
const PLATFORM_ADMIN = { email: 'platform-admin@example.com', password: 'platform admin password' };
let t: TestApp;
let admin: Session;
let platformAdminToken: string;
let victimTenantId: string;
const TWILIO = { accountSid: `AC${'3'.repeat(32)}`, authToken: 'fuzz-twilio-auth-token' };
let twilio: FakeTwilio;
let livekit: FakeLiveKit;
beforeAll(async () => {
  fakeOpenAI = await new FakeOpenAI().start();
  twilio = await startFakeTwilio({ ...TWILIO, incomingNumbers: ['+15550009999'] });
  livekit = await new FakeLiveKit().start();
  // No ingestion worker: uploads are checked on the request path, which is what is fuzzed; the fake stands in
  // for every OpenAI(-compatible) endpoint a fuzzed setting may point at, so nothing leaves the machine.
  t = await buildTestApp({
    INGEST_CONCURRENCY: '0',
    // Nor a webhook worker: a fuzzed endpoint URL is never sent anything.
    WEBHOOK_DELIVERY_CONCURRENCY: '0',
    OPENAI_BASE_URL: fakeOpenAI.baseURL,
    ANTHROPIC_BASE_URL: fakeOpenAI.baseURL,
    PLATFORM_ADMIN_EMAIL: PLATFORM_ADMIN.email,
    PLATFORM_ADMIN_PASSWORD: PLATFORM_ADMIN.password,
    TWILIO_ACCOUNT_SID: TWILIO.accountSid,
    TWILIO_AUTH_TOKEN: TWILIO.authToken,
    TWILIO_API_BASE_URL: twilio.baseUrl,
    LIVEKIT_URL: livekit.url,
    LIVEKIT_API_KEY: livekit.apiKey,
    LIVEKIT_API_SECRET: livekit.apiSecret,
    LIVEKIT_SIP_URI: 'sip:fake.sip.example',
  });
  // The agent joins LiveKit rooms through the fake (no WebRTC server can run here).
  t.deps.livekit = new LiveKitService({
    url: livekit.url,
    apiKey: livekit.apiKey,
    apiSecret: livekit.apiSecret,
    sipUri: 'sip:fake.sip.example',
    agent: { connect: livekit.connectAgent },
  });
  admin = await signup(t.app, { tenant_name: 'Fuzzed' });
  // The platform admin fuzzes the admin routes, on a tenant of its own: suspending the fuzzed tenant would turn
  // the rest of the run into 403s.
  const login = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: PLATFORM_ADMIN });
  expect(login.statusCode, login.body).toBe(200);
  platformAdminToken = login.json().access_token;
  victimTenantId = (await signup(t.app, { tenant_name: 'Suspended now and then' })).tenant.id;
  spec = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
  // Rows of the tenant's own, so that ids reach the handlers and the database, not only the schemas.
  const doc = await call(t.app, 'POST', '/api/v1/documents', admin.access_token, { title: 'Doc', content: 'Parking is on Elm Street.' });
  const member = await call(t.app, 'POST', '/api/v1/users', admin.access_token, {
    email: 'member@example.com',
    password: 'correct horse battery',
  });
  const key = await call(t.app, 'POST', '/api/v1/api-keys', admin.access_token, { name: 'fuzz' });
  const chat = await call(t.app, 'POST', '/api/v1/chat', admin.access_token, { message: 'Where is the parking?' });
  const number = await call(t.app, 'POST', '/api/v1/phone-numbers', admin.access_token, { number: '+15550009999' });
  tenantIds = [doc.json().id, member.json().id, key.json().id, chat.json().session_id, number.json().id, admin.tenant.id].filter(Boolean);
  expect(tenantIds.length).toBeGreaterThanOrEqual(5);
}, 60_000);
afterAll(async () => {
  // Agents still waiting in rooms end first, so nothing writes to the database after it closes.
  for (const agent of livekit?.agents ?? []) agent.callerLeaves();
  if (t) await waitFor('live calls to end', async () => (t.deps.voice.active === 0 ? true : undefined), 30_000);
  await t?.close();
  await Promise.all([fakeOpenAI?.stop(), twilio?.close(), livekit?.stop()]);
});

/** Server errors a deployment may give for a valid request, with their documented code. */
const ALLOWED_5XX = /"code":"provider_error"/;

describe('fuzzing every operation of /openapi.json', () => {
  it('gives no 5xx to thousands of hostile requests, authenticated and anonymous', async () => {
    const rng = prng(SEED);
    const ops = operations();
    expect(ops.length).toBeGreaterThan(40);
    const failures = new Map<string, string[]>();
    const statuses = new Map<number, number>();
    let sent = 0;
    const started = Date.now();
    const cpuBefore = process.cpuUsage();
    const slowest: [string, number][] = [];
    for (const op of ops) {
      const opStarted = Date.now();
      for (let i = 0; i < AUTHENTICATED_PER_OPERATION + ANONYMOUS_PER_OPERATION; i++) {
        // The admin's own user is left alone (its id is not among the real ids): deactivating it would turn the
        // rest of the run into 403s. Admin routes get the platform admin, and half the time the tenant admin (403).
        const adminRoute = op.path.startsWith('/api/v1/admin/');
        realIds = adminRoute ? [victimTenantId] : tenantIds;
        const signedIn = adminRoute && i % 2 === 0 ? platformAdminToken : admin.access_token;
        const token = i < AUTHENTICATED_PER_OPERATION ? signedIn : rng.pick([undefined, 'not-a-token', 'vak_x', `${admin.access_token}x`]);
        const r = buildRequest(op, rng, token);
        const requestId = `fuzz-${sent}`;
        const res = await t.app.inject({
          method: r.method as 'GET',
          url: r.url,
          headers: { ...r.headers, 'x-request-id': requestId },
          ...(r.payload !== undefined && { payload: r.payload }),
        });
        sent++;
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode >= 500 && !ALLOWED_5XX.test(res.body)) {
          const logged = t.logs.find((l) => l.includes(`"reqId":"${requestId}"`) && l.includes('"err"'));
          const why = logged
            ? String((JSON.parse(logged) as { err?: { message?: string } }).err?.message).slice(0, 160)
            : res.body.slice(0, 160);
          const key = `${op.method} ${op.path} -> ${res.statusCode} ${why}`;
          failures.set(key, [...(failures.get(key) ?? []), r.cause]);
        } else if (res.statusCode >= 400) {
          // Every refusal is the error envelope with a stable code.
          expect(res.json().error.code, `${r.method} ${r.url}`).toBeTypeOf('string');
        }
      }
      slowest.push([`${op.method} ${op.path}`, Date.now() - opStarted]);
      // Keep the log buffer small: failures are looked up right after their request.
      t.logs.length = 0;
    }
    const seconds = (Date.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    console.log(
      `fuzz: ${sent} requests over ${ops.length} operations in ${seconds.toFixed(1)} s (${cpuSeconds.toFixed(1)} s CPU); statuses ${JSON.stringify(Object.fromEntries(statuses))}; ` +
        `slowest ${slowest
          .sort((x, y) => y[1] - x[1])
          .slice(0, 5)
          .map(([op, ms]) => `${op} ${ms} ms`)
          .join(', ')}`,
    );
    const report = [...failures].map(([key, causes]) => `${key}\n    x${causes.length}: ${[...new Set(causes)].slice(0, 5).join(' | ')}`);
    expect(sent).toBeGreaterThanOrEqual(WIRE_PASS ? 5_000 : 10_000);
    expect(report, `server errors:\n${report.join('\n')}`).toEqual([]);
    // Nothing was corrupted: the admin still works.
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(admin.access_token) })).statusCode).toBe(200);
  }, 600_000);
});

describe('the text rule, field by field', () => {
  const refused = (
    res: { statusCode: number; body: string; json(): { error: { code: string; details?: { field: string }[] } } },
    field: string,
  ) => {
    expect(res.statusCode, res.body).toBe(422);
    expect(res.json().error.code).toBe('validation_error');
    expect(res.json().error.details?.map((d) => d.field)).toContain(field);
  };

  it('refuses NUL and unpaired surrogates in JSON bodies, also unauthenticated and in JSONB fields', async () => {
    const signupWith = (tenant_name: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/v1/auth/signup',
        payload: { email: 'nul@example.com', password: 'correct horse battery', tenant_name },
      });
    refused(await signupWith('Acme\u0000'), 'body.tenant_name');
    refused(await signupWith('Acme\ud800'), 'body.tenant_name');
    const put = (body: object) => call(t.app, 'PUT', '/api/v1/settings/tenant', admin.access_token, body);
    refused(await put({ providers: { llm: { model: 'gpt\ud800' } } }), 'body.providers.llm.model');
    refused(await put({ greeting: 'Hello\u0000' }), 'body.greeting');
    const tool = {
      name: 'lookup',
      description: 'Looks up \udfff',
      url: 'https://tools.example.com/x',
      parameters: { type: 'object', properties: {} },
    };
    refused(await put({ tools: [tool] }), 'body.tools.0.description');
    refused(
      await call(t.app, 'POST', '/api/v1/phone-numbers', admin.access_token, {
        number: '+15550008888',
        overrides: { greeting: 'Hi\u0000' },
      }),
      'body.overrides.greeting',
    );
    // A key is text too.
    refused(await call(t.app, 'POST', '/api/v1/knowledge/search', admin.access_token, { query: 'x', ['\u0000']: 1 }), 'body');
    // Nothing of it was stored.
    expect((await call(t.app, 'GET', '/api/v1/settings/tenant', admin.access_token)).body).not.toMatch(/\\u0000|\\ud800|\\udfff/);
  });

  it('refuses tool parameters nested too deep before walking them, at any depth', async () => {
    let deep = '{"type":"string"}';
    for (let i = 0; i < 700; i++) deep = `{"type":"object","properties":{"a":${deep}}}`;
    const payload = `{"tools":[{"name":"deep","description":"d","url":"https://tools.example.com/x","parameters":${deep}}]}`;
    const res = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/settings/tenant',
      headers: { ...bearer(admin.access_token), 'content-type': 'application/json' },
      payload,
    });
    expect(res.statusCode, res.body).toBe(422);
    expect(res.json().error.message).toMatch(/nested more than 32 levels deep/);
    let six: object = { type: 'string' };
    for (let i = 0; i < 6; i++) six = { type: 'object', properties: { a: six } };
    const shallow = await call(t.app, 'PUT', '/api/v1/settings/tenant', admin.access_token, {
      tools: [{ name: 'six', description: 'd', url: 'https://tools.example.com/x', parameters: six }],
    });
    refused(shallow, 'body.tools.0.parameters');
    expect(shallow.json().error.message).toMatch(/nested more than 5 levels deep/);
  });

  it('refuses them in query strings, path parameters, multipart filenames and titles', async () => {
    refused(await call(t.app, 'GET', '/api/v1/documents?limit=%00', admin.access_token), 'querystring.limit');
    refused(await call(t.app, 'GET', '/api/v1/documents/%00', admin.access_token), 'params.id');
    const upload = (parts: Parameters<typeof multipart>[0]) => {
      const m = multipart(parts);
      return t.app.inject({
        method: 'POST',
        url: '/api/v1/documents',
        headers: { ...bearer(admin.access_token), ...m.headers },
        payload: m.payload,
      });
    };
    refused(await upload([{ name: 'file', value: 'Parking is on Elm Street.', filename: 'a\u0000.txt' }]), 'body.file.filename');
    refused(
      await upload([
        { name: 'file', value: 'Parking is on Elm Street.', filename: 'a.txt' },
        { name: 'title', value: 'T\u0000' },
      ]),
      'body.title',
    );
    // A long filename is cut whole characters at a time: never half a surrogate pair.
    const ok = await upload([{ name: 'file', value: 'Parking is on Elm Street.', filename: `${'a'.repeat(299)}😀.txt` }]);
    expect(ok.statusCode, ok.body).toBe(202);
    expect(ok.json().filename).toBe(`${'a'.repeat(299)}😀`);
  });
});
