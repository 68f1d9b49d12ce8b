// /api/v1/webhooks end to end, with the app's own delivery worker and a local receiver that verifies every signature
// (Standard Webhooks, by the spec and by the standard's library): CRUD and its 4xx codes, the secret shown on create
// and rotate only, both secrets signing during the overlap, the test ping, subscriptions (`*`, opt-in
// transcript.turn, nothing from before the endpoint existed), the delivery log, replays of one delivery and of a
// time range, another tenant's ids answering 404 on every route, and a URL resolving to 127.0.0.1 refused when
// private networks are not allowed.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishEvent } from '../src/services/outbox.js';
import { WebhookReceiver } from './fakes/webhook-receiver.js';
import { call, type Session, twoTenants, uniqueEmail, useTestApp, waitFor } from './helpers.js';

const receiver = new WebhookReceiver();
beforeAll(() => receiver.start());
afterAll(() => receiver.stop());

describe('webhook endpoints', () => {
  const t = useTestApp({ WEBHOOK_MAX_ENDPOINTS_PER_TENANT: '4' });
  let a: Session;
  let b: Session;
  beforeAll(async () => {
    ({ a, b } = await twoTenants(t.app));
  });

  const create = async (s: Session, path: string, events: string[] = ['*'], extra: object = {}) => {
    const res = await call(t.app, 'POST', '/api/v1/webhooks', s.access_token, { url: receiver.url(path), events, ...extra });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json();
    receiver.secrets.set(path, [body.secret]);
    return body as { id: string; secret: string; url: string; events: string[] };
  };

  it('creates, lists, reads, changes and deletes an endpoint; the secret is shown on create only', async () => {
    const created = await create(a, '/crud', ['call.ended', 'call.started', 'call.ended'], { description: 'CRM' });
    // Standard Webhooks format: whsec_ + base64 of 32 random bytes.
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(created.secret.slice(6), 'base64')).toHaveLength(32);
    expect(created).toMatchObject({ events: ['call.ended', 'call.started'], description: 'CRM', enabled: true, disabled_reason: null });

    const list = await call(t.app, 'GET', '/api/v1/webhooks', a.access_token);
    expect(list.json().items.map((e: { id: string }) => e.id)).toContain(created.id);
    expect(list.body).not.toContain(created.secret);
    const one = await call(t.app, 'GET', `/api/v1/webhooks/${created.id}`, a.access_token);
    expect(one.json()).not.toHaveProperty('secret');

    const patched = await call(t.app, 'PATCH', `/api/v1/webhooks/${created.id}`, a.access_token, { enabled: false, events: ['*'] });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json()).toMatchObject({ enabled: false, events: ['*'], url: receiver.url('/crud') });

    expect((await call(t.app, 'DELETE', `/api/v1/webhooks/${created.id}`, a.access_token)).statusCode).toBe(204);
    expect((await call(t.app, 'GET', `/api/v1/webhooks/${created.id}`, a.access_token)).statusCode).toBe(404);
    expect((await call(t.app, 'DELETE', `/api/v1/webhooks/${created.id}`, a.access_token)).statusCode).toBe(404);
  });

  it('refuses bad input with 422 and a stable code; at most the configured number of endpoints per tenant (409)', async () => {
    const post = (body: object) => call(t.app, 'POST', '/api/v1/webhooks', b.access_token, body);
    const good = { url: 'https://hooks.example.com/x', events: ['call.ended'] };
    for (const body of [
      { ...good, url: 'ftp://hooks.example.com/x' },
      { ...good, url: 'not a url' },
      { ...good, url: `https://hooks.example.com/${'a'.repeat(2000)}` },
      { ...good, url: 'https://user:pass@hooks.example.com/x' },
      { ...good, events: [] },
      { ...good, events: ['call.exploded'] },
      { ...good, events: ['ping'] },
      { ...good, events: ['endpoint.disabled'] },
      { ...good, description: 'x'.repeat(501) },
      { ...good, secret: 'whsec_mine' },
      { url: good.url },
    ]) {
      const res = await post(body);
      expect(res.statusCode, JSON.stringify(body).slice(0, 80)).toBe(422);
      expect(res.json().error.code).toBe('validation_error');
    }
    const first = await post(good);
    expect(first.statusCode).toBe(201);
    const empty = await call(t.app, 'PATCH', `/api/v1/webhooks/${first.json().id}`, b.access_token, {});
    expect(empty.statusCode).toBe(422);
    for (let i = 0; i < 3; i++) expect((await post(good)).statusCode).toBe(201);
    const over = await post(good);
    expect(over.statusCode).toBe(409);
    expect(over.json().error.code).toBe('webhook_limit_reached');
    const mine = (await call(t.app, 'GET', '/api/v1/webhooks', b.access_token)).json().items as { id: string }[];
    for (const e of mine) await call(t.app, 'DELETE', `/api/v1/webhooks/${e.id}`, b.access_token);
  });

  it('sends a signed ping on test; the delivery log shows the attempt', async () => {
    const ep = await create(a, '/ping');
    const res = await call(t.app, 'POST', `/api/v1/webhooks/${ep.id}/test`, a.access_token);
    expect(res.statusCode, res.body).toBe(202);
    const eventId = res.json().event_id as string;
    const got = await waitFor('ping', async () => receiver.at('/ping')[0]);
    expect(got.id).toBe(eventId);
    expect(got.verifiedBy).toEqual([ep.secret]);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.event).toEqual({
      id: eventId,
      type: 'ping',
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      tenant_id: a.tenant.id,
      data: { endpoint_id: ep.id },
    });
    const log = await waitFor('delivered', async () => {
      const r = (await call(t.app, 'GET', `/api/v1/webhooks/${ep.id}/deliveries`, a.access_token)).json();
      return r.items[0]?.status === 'delivered' ? r : undefined;
    });
    expect(log).toMatchObject({ total: 1, limit: 20, offset: 0 });
    expect(log.items[0]).toMatchObject({ event_id: eventId, event_type: 'ping', attempts: 1, last_status_code: 200 });
    expect(log.items[0].attempt_log).toEqual([
      { attempted_at: expect.any(String), status_code: 200, latency_ms: expect.any(Number), response_body: 'ok', error: null },
    ]);
    const bad = await call(t.app, 'GET', `/api/v1/webhooks/${ep.id}/deliveries?limit=1000`, a.access_token);
    expect(bad.statusCode).toBe(422);
    // A disabled endpoint is not pinged.
    await call(t.app, 'PATCH', `/api/v1/webhooks/${ep.id}`, a.access_token, { enabled: false });
    const off = await call(t.app, 'POST', `/api/v1/webhooks/${ep.id}/test`, a.access_token);
    expect(off.statusCode).toBe(409);
    expect(off.json().error.code).toBe('webhook_disabled');
    await call(t.app, 'DELETE', `/api/v1/webhooks/${ep.id}`, a.access_token);
  });

  it('delivers what each endpoint subscribed to, from its creation on; transcript.turn only when named', async () => {
    const db = t.deps.database.db;
    const callId = randomUUID();
    const turn = {
      call_id: callId,
      seq: 1,
      speaker: 'caller' as const,
      text: 'hi',
      interrupted: false,
      truncated: false,
      start_ms: 0,
      end_ms: 500,
      citations: [],
      citation_details: [],
    };
    const before = await publishEvent(db, a.tenant.id, 'recording.ready', { call_id: callId, duration_ms: 1 }, { callId });
    const all = await create(a, '/all', ['*']);
    const named = await create(a, '/named', ['transcript.turn', 'call.started']);
    const started = await publishEvent(
      db,
      a.tenant.id,
      'call.started',
      { call_id: callId, direction: 'web', status: 'in_progress', from: null, to: null },
      { callId },
    );
    const turned = await publishEvent(db, a.tenant.id, 'transcript.turn', turn, { callId });
    const ready = await publishEvent(db, a.tenant.id, 'recording.ready', { call_id: callId, duration_ms: 2 }, { callId });
    t.deps.webhookDelivery.wake();
    await waitFor('all delivered', async () =>
      receiver.delivered('/all').length >= 2 && receiver.delivered('/named').length >= 2 ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.delivered('/all').map((r) => r.id)).toEqual([started, ready]);
    expect(receiver.delivered('/named').map((r) => r.id)).toEqual([started, turned]);
    expect(receiver.received.some((r) => r.id === before)).toBe(false);
    expect([...receiver.at('/all'), ...receiver.at('/named')].every((r) => r.verifiedBy.length === 1)).toBe(true);
    for (const e of [all, named]) await call(t.app, 'DELETE', `/api/v1/webhooks/${e.id}`, a.access_token);
  });

  it('rotates the secret (shown once); both secrets sign for the overlap', async () => {
    const ep = await create(a, '/rotate');
    const res = await call(t.app, 'POST', `/api/v1/webhooks/${ep.id}/rotate-secret`, a.access_token);
    expect(res.statusCode, res.body).toBe(201);
    const rotated = res.json();
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(ep.secret);
    expect(Date.parse(rotated.previous_secret_expires_at) - Date.now()).toBeGreaterThan(23 * 3600_000);
    expect((await call(t.app, 'GET', `/api/v1/webhooks/${ep.id}`, a.access_token)).body).not.toContain(rotated.secret);
    receiver.secrets.set('/rotate', [rotated.secret, ep.secret]);
    await call(t.app, 'POST', `/api/v1/webhooks/${ep.id}/test`, a.access_token);
    const got = await waitFor('ping', async () => receiver.at('/rotate')[0]);
    expect(String(got.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(got.verifiedBy).toEqual([rotated.secret, ep.secret]);
    await call(t.app, 'DELETE', `/api/v1/webhooks/${ep.id}`, a.access_token);
  });

  it('replays one delivery and a time range: the same webhook-id again, signed', async () => {
    const ep = await create(a, '/replay', ['document.ready']);
    const db = t.deps.database.db;
    const ids = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        await publishEvent(db, a.tenant.id, 'document.ready', {
          document_id: randomUUID(),
          name: `doc ${i}`,
          chunks: i,
          version: 1,
          filename: null,
          embedding_model: 'local',
        }),
      );
    t.deps.webhookDelivery.wake();
    await waitFor('three delivered', async () => (receiver.delivered('/replay').length === 3 ? true : undefined));
    const log = (await call(t.app, 'GET', `/api/v1/webhooks/${ep.id}/deliveries`, a.access_token)).json();
    await waitFor('settled', async () => {
      const r = (await call(t.app, 'GET', `/api/v1/webhooks/${ep.id}/deliveries?status=delivered`, a.access_token)).json();
      return r.total === 3 ? true : undefined;
    });
    const oldest = log.items.at(-1);
    expect(oldest.event_id).toBe(ids[0]);

    const one = await call(t.app, 'POST', `/api/v1/webhooks/deliveries/${oldest.id}/replay`, a.access_token);
    expect(one.statusCode, one.body).toBe(202);
    await waitFor('replayed', async () => (receiver.delivered('/replay').length === 4 ? true : undefined));
    expect(receiver.delivered('/replay')[3]!.id).toBe(ids[0]);

    const range = await call(t.app, 'POST', `/api/v1/webhooks/${ep.id}/replay`, a.access_token, {
      from: new Date(Date.now() - 3600_000).toISOString(),
      to: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(range.statusCode, range.body).toBe(202);
    expect(range.json()).toEqual({ replayed: 3 });
    await waitFor('range replayed', async () => (receiver.delivered('/replay').length === 7 ? true : undefined));
    expect(
      receiver
        .delivered('/replay')
        .slice(4)
        .map((r) => r.id)
        .sort(),
    ).toEqual([...ids].sort());
    expect(receiver.at('/replay').every((r) => r.verifiedBy.length === 1)).toBe(true);
    const empty = await call(t.app, 'POST', `/api/v1/webhooks/${ep.id}/replay`, a.access_token, {
      from: new Date(Date.now() - 7 * 86_400_000).toISOString(),
      to: new Date(Date.now() - 6 * 86_400_000).toISOString(),
    });
    expect(empty.json()).toEqual({ replayed: 0 });

    // Bounded: a range must run forwards and cover at most 31 days.
    for (const body of [
      { from: new Date().toISOString(), to: new Date(Date.now() - 1000).toISOString() },
      { from: new Date(Date.now() - 40 * 86_400_000).toISOString(), to: new Date().toISOString() },
    ]) {
      const res = await call(t.app, 'POST', `/api/v1/webhooks/${ep.id}/replay`, a.access_token, body);
      expect(res.statusCode).toBe(400);
    }
    expect((await call(t.app, 'POST', `/api/v1/webhooks/${ep.id}/replay`, a.access_token, { from: 'yesterday' })).statusCode).toBe(422);
  });

  it('disabling parks pending deliveries; enabling sends them', async () => {
    const ep = await create(a, '/parked');
    receiver.answer = (path) => (path === '/parked' ? { status: 500, body: 'not yet' } : { status: 200, body: 'ok' });
    const id = await publishEvent(t.deps.database.db, a.tenant.id, 'document.ready', {
      document_id: randomUUID(),
      name: 'p',
      chunks: 1,
      version: 1,
      filename: null,
      embedding_model: 'local',
    });
    t.deps.webhookDelivery.wake();
    const url = `/api/v1/webhooks/${ep.id}/deliveries`;
    await waitFor('a failed attempt', async () =>
      (await call(t.app, 'GET', url, a.access_token)).json().items[0]?.attempt_log.length ? true : undefined,
    );
    await call(t.app, 'PATCH', `/api/v1/webhooks/${ep.id}`, a.access_token, { enabled: false });
    const parked = (await call(t.app, 'GET', url, a.access_token)).json().items[0];
    expect(parked).toMatchObject({ event_id: id, status: 'pending', next_attempt_at: null, last_status_code: 500 });
    expect(parked.attempt_log[0]).toMatchObject({ status_code: 500, response_body: 'not yet' });
    receiver.answer = () => ({ status: 200, body: 'ok' });
    await call(t.app, 'PATCH', `/api/v1/webhooks/${ep.id}`, a.access_token, { enabled: true });
    await waitFor('delivered', async () =>
      (await call(t.app, 'GET', url, a.access_token)).json().items[0]?.status === 'delivered' ? true : undefined,
    );
    expect(receiver.delivered('/parked').map((r) => r.id)).toEqual([id]);
    await call(t.app, 'DELETE', `/api/v1/webhooks/${ep.id}`, a.access_token);
  });

  it('answers 404 for another tenant’s endpoint or delivery on every route', async () => {
    const ep = await create(a, '/mine');
    await call(t.app, 'POST', `/api/v1/webhooks/${ep.id}/test`, a.access_token);
    const log = await waitFor('a delivery', async () => {
      const r = (await call(t.app, 'GET', `/api/v1/webhooks/${ep.id}/deliveries`, a.access_token)).json();
      return r.items[0];
    });
    const range = { from: new Date(Date.now() - 3600_000).toISOString(), to: new Date().toISOString() };
    const attempts: [string, string, object?][] = [
      ['GET', `/api/v1/webhooks/${ep.id}`],
      ['PATCH', `/api/v1/webhooks/${ep.id}`, { enabled: false }],
      ['DELETE', `/api/v1/webhooks/${ep.id}`],
      ['POST', `/api/v1/webhooks/${ep.id}/rotate-secret`],
      ['POST', `/api/v1/webhooks/${ep.id}/test`],
      ['GET', `/api/v1/webhooks/${ep.id}/deliveries`],
      ['POST', `/api/v1/webhooks/deliveries/${log.id}/replay`],
      ['POST', `/api/v1/webhooks/${ep.id}/replay`, range],
    ];
    for (const [method, url, body] of attempts) {
      const res = await call(t.app, method as 'GET', url, b.access_token, body);
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    }
    expect((await call(t.app, 'GET', '/api/v1/webhooks', b.access_token)).json().items).toEqual([]);
    // Untouched for its owner.
    const mine = (await call(t.app, 'GET', `/api/v1/webhooks/${ep.id}`, a.access_token)).json();
    expect(mine).toMatchObject({ enabled: true });
    await call(t.app, 'DELETE', `/api/v1/webhooks/${ep.id}`, a.access_token);
  });

  it('members read but cannot write; API keys can write', async () => {
    const ep = await create(a, '/roles');
    const member = { email: uniqueEmail('member'), password: 'correct horse battery' };
    expect((await call(t.app, 'POST', '/api/v1/users', a.access_token, { ...member, role: 'member' })).statusCode).toBe(201);
    const token = (await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: member })).json().access_token as string;
    expect((await call(t.app, 'GET', `/api/v1/webhooks/${ep.id}`, token)).statusCode).toBe(200);
    expect((await call(t.app, 'GET', `/api/v1/webhooks/${ep.id}/deliveries`, token)).statusCode).toBe(200);
    for (const [method, url, body] of [
      ['POST', '/api/v1/webhooks', { url: receiver.url('/x'), events: ['*'] }],
      ['PATCH', `/api/v1/webhooks/${ep.id}`, { enabled: false }],
      ['POST', `/api/v1/webhooks/${ep.id}/rotate-secret`],
      ['POST', `/api/v1/webhooks/${ep.id}/test`],
      ['DELETE', `/api/v1/webhooks/${ep.id}`],
    ] as const) {
      expect((await call(t.app, method, url, token, body)).statusCode, `${method} ${url}`).toBe(403);
    }
    const key = (await call(t.app, 'POST', '/api/v1/api-keys', a.access_token, { name: 'hooks' })).json().key as string;
    expect((await call(t.app, 'POST', `/api/v1/webhooks/${ep.id}/test`, key)).statusCode).toBe(202);
    expect((await call(t.app, 'DELETE', `/api/v1/webhooks/${ep.id}`, key)).statusCode).toBe(204);
  });

  it('is published in /openapi.json', async () => {
    const spec = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    for (const p of [
      '/api/v1/webhooks',
      '/api/v1/webhooks/{id}',
      '/api/v1/webhooks/{id}/rotate-secret',
      '/api/v1/webhooks/{id}/test',
      '/api/v1/webhooks/{id}/deliveries',
      '/api/v1/webhooks/deliveries/{id}/replay',
      '/api/v1/webhooks/{id}/replay',
    ])
      expect(spec.paths, p).toHaveProperty([p]);
  });
});

describe('webhook URLs when private networks are not allowed', () => {
  const t = useTestApp({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'false' });
  let a: Session;
  beforeAll(async () => {
    ({ a } = await twoTenants(t.app));
  });

  it('refuses a URL that is or resolves to 127.0.0.1 (422 url_not_allowed); a public address is accepted', async () => {
    for (const url of [
      receiver.url('/x'),
      receiver.url('/x').replace('127.0.0.1', 'localhost'),
      'http://[::1]/x',
      'http://169.254.169.254/latest',
    ]) {
      const res = await call(t.app, 'POST', '/api/v1/webhooks', a.access_token, { url, events: ['*'] });
      expect(res.statusCode, url).toBe(422);
      expect(res.json().error.code).toBe('url_not_allowed');
    }
    const ok = await call(t.app, 'POST', '/api/v1/webhooks', a.access_token, { url: 'http://203.0.113.10/hooks', events: ['*'] });
    expect(ok.statusCode, ok.body).toBe(201);
    const moved = await call(t.app, 'PATCH', `/api/v1/webhooks/${ok.json().id}`, a.access_token, { url: receiver.url('/x') });
    expect(moved.statusCode).toBe(422);
    expect(moved.json().error.code).toBe('url_not_allowed');
  });
});
