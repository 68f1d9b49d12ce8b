import { beforeAll, describe, expect, it } from 'vitest';
import { bearer, type Session, signup, useTestApp } from './helpers.js';

const t = useTestApp({ BODY_LIMIT_BYTES: '4096' });
let s: Session;
beforeAll(async () => {
  s = await signup(t.app);
});

const expectEnvelope = (body: string, code: string) => {
  const parsed = JSON.parse(body);
  expect(parsed.error.code).toBe(code);
  expect(typeof parsed.error.message).toBe('string');
  expect(parsed.error.request_id).toBeTruthy();
};

describe('database path', () => {
  it('runs on the driver this suite was asked for', () => {
    expect(t.deps.database.kind).toBe(process.env.TEST_DB === 'wire' ? 'postgres' : 'embedded');
  });
});

describe('bad input is a 4xx with the error envelope, never a 500', () => {
  const url = '/api/v1/settings/tenant';
  it('malformed JSON -> 400 invalid_json', async () => {
    const res = await t.app.inject({
      method: 'PUT',
      url,
      headers: { ...bearer(s.access_token), 'content-type': 'application/json' },
      payload: '{"agent_name":',
    });
    expect(res.statusCode).toBe(400);
    expectEnvelope(res.body, 'invalid_json');
  });
  it('wrong types, unknown fields -> 422 naming the field', async () => {
    const res = await t.app.inject({ method: 'PUT', url, headers: bearer(s.access_token), payload: { rag: { top_k: 'ten' } } });
    expect(res.statusCode).toBe(422);
    expectEnvelope(res.body, 'validation_error');
    expect(res.json().error.message).toContain('body.rag.top_k');
    const arr = await t.app.inject({
      method: 'PUT',
      url,
      headers: { ...bearer(s.access_token), 'content-type': 'application/json' },
      payload: '[1,2]',
    });
    expect(arr.statusCode).toBe(422);
    const nul = await t.app.inject({
      method: 'PUT',
      url,
      headers: { ...bearer(s.access_token), 'content-type': 'application/json' },
      payload: 'null',
    });
    expect(nul.statusCode).toBeGreaterThanOrEqual(400);
    expect(nul.statusCode).toBeLessThan(500);
  });
  it('huge body -> 413', async () => {
    const res = await t.app.inject({ method: 'PUT', url, headers: bearer(s.access_token), payload: { system_prompt: 'x'.repeat(10_000) } });
    expect(res.statusCode).toBe(413);
    expectEnvelope(res.body, 'payload_too_large');
  });
  it('wrong content type -> 415', async () => {
    const res = await t.app.inject({
      method: 'PUT',
      url,
      headers: { ...bearer(s.access_token), 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect(res.statusCode).toBe(415);
    expectEnvelope(res.body, 'unsupported_media_type');
  });
  it('bad path parameter -> 422, unknown route -> 404, bad query -> 422', async () => {
    const bad = await t.app.inject({ method: 'GET', url: '/api/v1/users/not-a-uuid', headers: bearer(s.access_token) });
    expect(bad.statusCode).toBe(422);
    expect(bad.json().error.details[0].field).toBe('params.id');
    const none = await t.app.inject({ method: 'GET', url: '/api/v1/nope' });
    expect(none.statusCode).toBe(404);
    expectEnvelope(none.body, 'not_found');
    const q = await t.app.inject({ method: 'GET', url: '/api/v1/users?limit=100000', headers: bearer(s.access_token) });
    expect(q.statusCode).toBe(422);
  });
  it('malformed Authorization headers -> 401', async () => {
    for (const authorization of ['Basic abc', 'Bearer', 'Bearer a b', 'Bearer eyJhbGciOiJub25lIn0.e30.', `Bearer ${'x'.repeat(5000)}`]) {
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization } });
      expect(res.statusCode, authorization.slice(0, 30)).toBe(401);
    }
  });
  it('an unexpected failure is a 500 with hidden details outside development', async () => {
    const original = t.deps.settings.getTenant.bind(t.deps.settings);
    t.deps.settings.getTenant = async () => {
      throw new Error('db exploded: password=hunter2');
    };
    try {
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/settings/tenant', headers: bearer(s.access_token) });
      expect(res.statusCode).toBe(500);
      expectEnvelope(res.body, 'internal_error');
      expect(res.body).not.toContain('exploded');
    } finally {
      t.deps.settings.getTenant = original;
    }
  });
});

describe('request ids', () => {
  it('echoes a safe caller id, replaces an unsafe one, and puts it in error bodies', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/nope', headers: { 'x-request-id': 'abc-123' } });
    expect(res.headers['x-request-id']).toBe('abc-123');
    expect(res.json().error.request_id).toBe('abc-123');
    const unsafe = await t.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'bad id\nwith newline' } });
    expect(unsafe.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('health and docs', () => {
  it('/health and /health/ready answer', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/health' })).json().status).toBe('ok');
    const ready = await t.app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks).toEqual({ database: 'ok', redis: 'not_configured' });
  });
  it('/health/ready is 503 when the database is down', async () => {
    const original = t.deps.database.ping;
    t.deps.database.ping = async () => {
      throw new Error('down');
    };
    try {
      const ready = await t.app.inject({ method: 'GET', url: '/health/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().checks.database).toBe('down');
    } finally {
      t.deps.database.ping = original;
    }
  });
  it('serves OpenAPI generated from the route schemas, and the docs UI', async () => {
    const spec = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(spec.openapi).toMatch(/^3\./);
    for (const path of [
      '/api/v1/auth/signup',
      '/api/v1/auth/refresh',
      '/api/v1/api-keys/{id}',
      '/api/v1/users/{id}',
      '/api/v1/settings/tenant',
      '/api/v1/admin/tenants/{id}/suspend',
      '/health/ready',
    ]) {
      expect(spec.paths, path).toHaveProperty([path]);
    }
    const signupBody = spec.paths['/api/v1/auth/signup'].post.requestBody.content['application/json'].schema;
    expect(signupBody.required).toEqual(expect.arrayContaining(['email', 'password', 'tenant_name']));
    const docs = await t.app.inject({ method: 'GET', url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain('swagger');
    // Where to start, at the top of /docs; and / leads there.
    expect(spec.info.description).toContain('Authorization: Bearer <access_token>');
    expect(spec.info.description).toContain('POST /api/v1/api-keys');
    const root = await t.app.inject({ method: 'GET', url: '/' });
    expect([root.statusCode, root.headers.location]).toEqual([302, '/docs']);
  });
  it('every route declares its access level', () => {
    const undeclared: string[] = [];
    // Fastify's printRoutes lacks config, so walk the generated spec: all /api routes besides auth need a bearer.
    const spec = t.app.swagger() as { paths: Record<string, Record<string, { security?: unknown[] }>> };
    for (const [path, ops] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        // Public by design: webhooks (their signatures authenticate them), media websockets (a per-call token), and
        // recording downloads (a signed URL).
        const signed =
          path.startsWith('/api/v1/webhooks/') ||
          ['/api/v1/voice/twilio/stream', '/api/v1/calls/web/stream'].includes(path) ||
          path.startsWith('/api/v1/recordings/');
        const isPublic =
          signed ||
          path.startsWith('/health') ||
          ['/api/v1/auth/signup', '/api/v1/auth/login', '/api/v1/auth/refresh', '/api/v1/auth/logout'].includes(path);
        if (!isPublic && !op.security) undeclared.push(`${method} ${path}`);
      }
    }
    expect(undeclared).toEqual([]);
  });
});
