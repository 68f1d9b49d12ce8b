// A tenant's quota is one bucket: its API keys share it, and chat websocket messages count against it like REST
// requests. An open chat socket stops answering once its user is deactivated or its tenant suspended.
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { bearer, call, type Session, signup, uniqueEmail, useTestApp } from './helpers.js';

const TENANT_LIMIT = 20;
const ADMIN_EMAIL = 'ops-limits@platform.example';
const ADMIN_PASSWORD = 'platform admin password';
const t = useTestApp({
  RATE_LIMIT_PER_TENANT_PER_MINUTE: String(TENANT_LIMIT),
  PLATFORM_ADMIN_EMAIL: ADMIN_EMAIL,
  PLATFORM_ADMIN_PASSWORD: ADMIN_PASSWORD,
});
let base = '';
let root = '';
beforeAll(async () => {
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  base = `ws://127.0.0.1:${(t.app.server.address() as AddressInfo).port}/api/v1/chat/ws`;
  root = (
    await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } })
  ).json().access_token;
});

type Msg = Record<string, unknown> & { type: string; error?: { code: string; message: string; retry_after?: number } };

async function connect(token: string) {
  const ws = new WebSocket(base, ['bearer', token]);
  const received: Msg[] = [];
  ws.on('message', (data) => received.push(JSON.parse(data.toString()) as Msg));
  const closed = new Promise<{ code: number; reason: string }>((r) =>
    ws.on('close', (code, reason) => r({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
  /** Waits until `n` answers (replies or errors) have arrived. */
  const answers = async (n: number, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = received.filter((m) => m.type === 'reply' || m.type === 'error');
      if (got.length >= n) return got;
      if (Date.now() > deadline) throw new Error(`only ${got.length} of ${n} answers: ${JSON.stringify(received.slice(-3))}`);
      await sleep(50);
    }
  };
  const send = (text: string) => ws.send(JSON.stringify({ type: 'message', text }));
  return { ws, received, answers, send, closed };
}

describe('the tenant bucket', () => {
  it('two API keys of one tenant together cannot exceed the tenant limit', async () => {
    const s = await signup(t.app);
    const k1 = (await call(t.app, 'POST', '/api/v1/api-keys', s.access_token, { name: 'one' })).json().key as string;
    const k2 = (await call(t.app, 'POST', '/api/v1/api-keys', s.access_token, { name: 'two' })).json().key as string;
    // Two requests of the tenant's budget are spent creating the keys.
    const codes: number[] = [];
    for (let i = 0; i < TENANT_LIMIT; i++) codes.push((await call(t.app, 'GET', '/api/v1/settings/tenant', i % 2 ? k1 : k2)).statusCode);
    expect(codes.filter((c) => c === 200)).toHaveLength(TENANT_LIMIT - 2);
    expect(codes.slice(-2)).toEqual([429, 429]);
    // A third key, or the admin, draws on the same exhausted bucket.
    expect((await call(t.app, 'GET', '/api/v1/settings/tenant', s.access_token)).statusCode).toBe(429);
    // Another tenant is not affected.
    const other = await signup(t.app);
    expect((await call(t.app, 'GET', '/api/v1/settings/tenant', other.access_token)).statusCode).toBe(200);
  });
});

describe('chat websocket admission', () => {
  it('a burst of 100 messages against a limit of 20/min: the excess is refused in-band with retry_after', async () => {
    const s = await signup(t.app);
    const c = await connect(s.access_token);
    for (let i = 0; i < 100; i++) c.send(`message ${i}`);
    const got = await c.answers(100);
    const limited = got.filter((m) => m.error?.code === 'rate_limited');
    const replies = got.filter((m) => m.type === 'reply');
    // The handshake was one request of the tenant's 20.
    expect(replies.length).toBe(TENANT_LIMIT - 1);
    expect(limited.length).toBe(100 - (TENANT_LIMIT - 1));
    for (const m of limited) {
      expect(m.error!.retry_after).toBeGreaterThan(0);
      expect(m.error!.retry_after).toBeLessThanOrEqual(60);
    }
    // The socket stays open, and REST shares the exhausted bucket.
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    expect((await call(t.app, 'GET', '/api/v1/auth/me', s.access_token)).statusCode).toBe(429);
    c.ws.close();
  });

  it('a user deactivated while the socket is open: the next message is refused and the socket closed (1008)', async () => {
    const admin = await signup(t.app);
    const email = uniqueEmail('member');
    const created = await call(t.app, 'POST', '/api/v1/users', admin.access_token, {
      email,
      password: 'member password 1',
      role: 'member',
    });
    expect(created.statusCode).toBe(201);
    const member = (
      await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: 'member password 1' } })
    ).json() as Session;
    const c = await connect(member.access_token);
    c.send('hello');
    expect((await c.answers(1))[0]!.type).toBe('reply');
    expect((await call(t.app, 'DELETE', `/api/v1/users/${created.json().id}`, admin.access_token)).statusCode).toBeLessThan(300);
    c.send('still there?');
    const [, refused] = await c.answers(2);
    expect(refused!.error?.code).toBe('account_disabled');
    expect((await c.closed).code).toBe(1008);
  });

  it('a tenant suspended while sockets are open (a user’s and an API key’s): both are refused and closed (1008)', async () => {
    const s = await signup(t.app);
    const key = (await call(t.app, 'POST', '/api/v1/api-keys', s.access_token, { name: 'widget' })).json().key as string;
    const user = await connect(s.access_token);
    const viaKey = await connect(key);
    for (const c of [user, viaKey]) {
      c.send('hello');
      expect((await c.answers(1))[0]!.type).toBe('reply');
    }
    const sus = await t.app.inject({
      method: 'POST',
      url: `/api/v1/admin/tenants/${s.tenant.id}/suspend`,
      headers: bearer(root),
      payload: {},
    });
    expect(sus.statusCode).toBe(200);
    for (const c of [user, viaKey]) {
      c.send('anyone?');
      const [, refused] = await c.answers(2);
      expect(refused!.error?.code).toBe('tenant_suspended');
      expect((await c.closed).code).toBe(1008);
    }
  });
});
