import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisCache } from '../src/cache/redis-cache.js';
import { twilioSignature } from '../src/telephony/twilio-signature.js';
import { bearer, buildTestApp, signup, type TestApp, TEST_REDIS_URL, uniqueEmail } from './helpers.js';

const open: TestApp[] = [];
afterAll(() => Promise.all(open.map((t) => t.close())));
async function app(env: Record<string, string>, cachePrefix?: string) {
  const t = await buildTestApp(env, { cachePrefix });
  open.push(t);
  return t;
}
// Apps are shared by the tests whose limits do not meet (app start-up was most of this file's time): each test uses
// addresses, accounts and tenants of its own, so it starts from empty counters. Built before the tests, under the
// hook timeout rather than a test's.
const TWILIO_TOKEN = 'rate-limit-test-token';
/** Per IP 5 a minute, per tenant 4; Twilio configured (the provider-webhook test). */
let perIp: TestApp;
/** Login, signup and refresh 3 a minute per IP, login 4 per account in 15 minutes. */
let strictAuth: TestApp;
beforeAll(async () => {
  perIp = await app({
    RATE_LIMIT_PER_IP_PER_MINUTE: '5',
    RATE_LIMIT_PER_TENANT_PER_MINUTE: '4',
    TWILIO_ACCOUNT_SID: `AC${'1'.repeat(32)}`,
    TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
    PUBLIC_BASE_URL: 'https://voice.example.com',
  });
  strictAuth = await app({ RATE_LIMIT_AUTH_PER_IP_PER_MINUTE: '3', RATE_LIMIT_LOGIN_PER_EMAIL_PER_15_MINUTES: '4' });
});
const login = (t: TestApp, email: string, ip = '10.0.0.1') =>
  t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: 'wrong password' }, remoteAddress: ip });

describe('rate limits (in-process)', () => {
  it('limits every route per IP and answers 429 with Retry-After and the envelope', async () => {
    const t = perIp;
    const codes = [];
    for (let i = 0; i < 7; i++) codes.push((await t.app.inject({ method: 'GET', url: '/health', remoteAddress: '10.1.1.1' })).statusCode);
    expect(codes).toEqual([200, 200, 200, 200, 200, 429, 429]);
    const res = await t.app.inject({ method: 'GET', url: '/health', remoteAddress: '10.1.1.1' });
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(res.json().error.code).toBe('rate_limited');
    // Another address is not affected.
    expect((await t.app.inject({ method: 'GET', url: '/health', remoteAddress: '10.1.1.2' })).statusCode).toBe(200);
  });

  it('counts a request to an unknown route once', async () => {
    const t = perIp;
    const codes = [];
    for (let i = 0; i < 7; i++) codes.push((await t.app.inject({ method: 'GET', url: '/nope', remoteAddress: '10.6.0.1' })).statusCode);
    expect(codes).toEqual([404, 404, 404, 404, 404, 429, 429]);
  });

  it('is much stricter on login, signup and refresh per IP, and per email on login', async () => {
    const t = strictAuth;
    const email = uniqueEmail();
    const fromOneIp = [];
    for (let i = 0; i < 4; i++) fromOneIp.push((await login(t, email, '10.2.0.1')).statusCode);
    expect(fromOneIp).toEqual([401, 401, 401, 429]);
    // Spreading guesses over many addresses still hits the per-account limit: past it, each address that has
    // failed on the account is refused (test/login-limit.test.ts has the rest of the rule).
    const spread = [];
    for (let i = 0; i < 3; i++) spread.push((await login(t, email, `10.3.0.${i}`)).statusCode);
    expect(spread).toEqual([401, 401, 401]);
    expect((await login(t, email, '10.3.0.0')).statusCode).toBe(429);
    const refresh = [];
    for (let i = 0; i < 4; i++) {
      refresh.push(
        (
          await t.app.inject({
            method: 'POST',
            url: '/api/v1/auth/refresh',
            payload: { refresh_token: 'vrt_x' },
            remoteAddress: '10.4.0.1',
          })
        ).statusCode,
      );
    }
    expect(refresh).toEqual([401, 401, 401, 429]);
  });

  it('does not count a working refresh: a page reloaded often is not signed out', async () => {
    const t = strictAuth;
    let token = (await signup(t.app)).refresh_token;
    const refresh = (refresh_token: string) =>
      t.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token }, remoteAddress: '10.5.0.1' });
    const codes = [];
    for (let i = 0; i < 8; i++) {
      const res = await refresh(token);
      codes.push(res.statusCode);
      token = res.json().refresh_token;
    }
    expect(codes).toEqual(Array(8).fill(200));
    // Refused tokens still count, and past the limit even a good one waits.
    for (let i = 0; i < 3; i++) expect((await refresh('vrt_guess')).statusCode).toBe(401);
    expect((await refresh(token)).statusCode).toBe(429);
  });

  it('limits per tenant across users and IPs', async () => {
    const t = perIp;
    const s = await signup(t.app);
    const codes = [];
    for (let i = 0; i < 5; i++) {
      codes.push(
        (await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(s.access_token), remoteAddress: `10.5.0.${i}` }))
          .statusCode,
      );
    }
    expect(codes).toEqual([200, 200, 200, 200, 429]);
    const other = await signup(t.app);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(other.access_token) })).statusCode).toBe(200);
  });
});

describe('provider webhooks and the per-IP limit', () => {
  it('signed Twilio webhooks are not limited per IP (a provider sends every call from a few addresses); bad signatures count and get 429', async () => {
    const token = TWILIO_TOKEN;
    const t = perIp;
    const url = 'https://voice.example.com/api/v1/webhooks/twilio/status';
    const status = (i: number, signature: string) => {
      const params = { AccountSid: `AC${'1'.repeat(32)}`, CallSid: `CA${String(i).padStart(32, '0')}`, CallStatus: 'completed' };
      return t.app.inject({
        method: 'POST',
        url: '/api/v1/webhooks/twilio/status',
        remoteAddress: '10.9.9.9',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': signature || twilioSignature(token, url, params),
        },
        payload: new URLSearchParams(params).toString(),
      });
    };
    const signed = [];
    for (let i = 0; i < 12; i++) signed.push((await status(i, '')).statusCode);
    expect(signed).toEqual(Array(12).fill(204));
    // They did not use the address's budget: its other requests still have all 5.
    expect((await t.app.inject({ method: 'GET', url: '/health', remoteAddress: '10.9.9.9' })).statusCode).toBe(200);
    const forged = [];
    for (let i = 0; i < 6; i++) forged.push((await status(i, 'Zm9yZ2Vk')).statusCode);
    expect(forged).toEqual([403, 403, 403, 403, 429, 429]);
    // Twilio's real webhooks from that address still go through.
    expect((await status(99, '')).statusCode).toBe(204);
  });
});

describe('rate limits shared through Redis', () => {
  // Started before the tests (the hook timeout, not a test's, covers start-up on a loaded machine).
  let one: TestApp;
  let two: TestApp;
  let redisDown: TestApp;
  beforeAll(async () => {
    const env = { REDIS_URL: TEST_REDIS_URL, RATE_LIMIT_PER_IP_PER_MINUTE: '6' };
    const prefix = `test:shared:${randomUUID()}:`;
    one = await app(env, prefix);
    two = await app(env, prefix);
    redisDown = await app({ REDIS_URL: 'redis://127.0.0.1:1', RATE_LIMIT_PER_IP_PER_MINUTE: '1' });
  });

  it('two instances on one Redis share the count', async () => {
    const ip = '10.9.0.1';
    const codes = [];
    for (let i = 0; i < 4; i++) {
      codes.push((await one.app.inject({ method: 'GET', url: '/health', remoteAddress: ip })).statusCode);
      codes.push((await two.app.inject({ method: 'GET', url: '/health', remoteAddress: ip })).statusCode);
    }
    expect(codes).toEqual([200, 200, 200, 200, 200, 200, 429, 429]);
    const ready = (await one.app.inject({ method: 'GET', url: '/health/ready', remoteAddress: '10.8.0.1' })).json();
    expect(ready.checks.redis).toBe('ok');
  });

  it('the Redis window counter expires and reports time to reset', async () => {
    const cache = new RedisCache(TEST_REDIS_URL, `test:${Date.now()}:${Math.random()}:`);
    await cache.connect();
    try {
      const first = await cache.hitWindow('k', 300);
      const second = await cache.hitWindow('k', 300);
      expect([first.count, second.count]).toEqual([1, 2]);
      expect(second.resetMs).toBeGreaterThan(0);
      expect(second.resetMs).toBeLessThanOrEqual(300);
      await sleep(350);
      expect((await cache.hitWindow('k', 300)).count).toBe(1);
    } finally {
      await cache.close();
    }
  });

  it('when Redis is down: requests still pass (fail open) and readiness says 503', async () => {
    const t = redisDown;
    expect((await t.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    const ready = await t.app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks).toEqual({ database: 'ok', redis: 'down' });
  });
});
