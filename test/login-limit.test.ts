// The per-account login limit counts failures only and does not lock the owner out: past it, an address that has
// been failing on the account is refused, an address that has not still gets its password checked.
import { describe, expect, it } from 'vitest';
import { RedisCache } from '../src/cache/redis-cache.js';
import { buildTestApp, signup, TEST_REDIS_URL, uniqueEmail, useTestApp } from './helpers.js';

const PASSWORD = 'correct horse battery';
const t = useTestApp({ RATE_LIMIT_LOGIN_PER_EMAIL_PER_15_MINUTES: '10' });

const login = (email: string, password: string, ip: string) =>
  t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password }, remoteAddress: ip });

describe('per-account login limit', () => {
  it('10 wrong guesses from A: the owner from B gets in; A is refused even with the right password', async () => {
    const { user } = await signup(t.app, { email: uniqueEmail('owner'), password: PASSWORD });
    const guesses = [];
    for (let i = 0; i < 10; i++) guesses.push((await login(user.email, `wrong guess ${i}`, '198.51.100.1')).statusCode);
    expect(guesses).toEqual(Array(10).fill(401));

    const owner = await login(user.email, PASSWORD, '203.0.113.7');
    expect(owner.statusCode).toBe(200);
    expect(owner.json().user.id).toBe(user.id);
    // Successful logins do not count: the owner can sign in again.
    expect((await login(user.email, PASSWORD, '203.0.113.7')).statusCode).toBe(200);

    // The guessing address is refused without its password being checked, right or wrong, until the window ends.
    const fromA = await login(user.email, PASSWORD, '198.51.100.1');
    expect(fromA.statusCode).toBe(429);
    expect(Number(fromA.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(fromA.headers['retry-after'])).toBeLessThanOrEqual(15 * 60);
    expect(fromA.json().error.code).toBe('rate_limited');

    // Past the limit, another address gets one guess; once it has failed it is refused too.
    expect((await login(user.email, 'wrong again', '192.0.2.9')).statusCode).toBe(401);
    expect((await login(user.email, PASSWORD, '192.0.2.9')).statusCode).toBe(429);
  });

  it('under the limit, failures block nobody', async () => {
    const { user } = await signup(t.app, { email: uniqueEmail('owner'), password: PASSWORD });
    for (let i = 0; i < 9; i++) expect((await login(user.email, 'wrong', '198.51.100.2')).statusCode).toBe(401);
    expect((await login(user.email, PASSWORD, '198.51.100.2')).statusCode).toBe(200);
  });

  it('a campaign spread over many addresses: past 10 times the limit every address is refused', async () => {
    const c = await buildTestApp({ RATE_LIMIT_LOGIN_PER_EMAIL_PER_15_MINUTES: '2' });
    try {
      const { user } = await signup(c.app, { email: uniqueEmail('owner'), password: PASSWORD });
      const each = (ip: string, password: string) =>
        c.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: user.email, password }, remoteAddress: ip });
      // Each of 20 addresses gets one guess (2 under the limit, then one per fresh address).
      for (let i = 0; i < 20; i++) expect((await each(`10.20.0.${i}`, 'wrong')).statusCode).toBe(401);
      // 20 failures = 10 x 2: now even a fresh address with the right password waits for the window.
      expect((await each('10.21.0.1', PASSWORD)).statusCode).toBe(429);
    } finally {
      await c.close();
    }
  });
});

describe('Cache.peekWindow', () => {
  it('Redis: reads a window without adding a hit, 0 when there is none', async () => {
    const cache = new RedisCache(TEST_REDIS_URL, `test:${Date.now()}:${Math.random()}:`);
    await cache.connect();
    try {
      expect(await cache.peekWindow('k')).toEqual({ count: 0, resetMs: 0 });
      await cache.hitWindow('k', 60_000);
      await cache.hitWindow('k', 60_000);
      const peek = await cache.peekWindow('k');
      expect(peek.count).toBe(2);
      expect(peek.resetMs).toBeGreaterThan(0);
      expect((await cache.peekWindow('k')).count).toBe(2);
    } finally {
      await cache.close();
    }
  });
});
