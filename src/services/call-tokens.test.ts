// Call tokens: one media socket per token, on one instance (the in-process cache) and across instances (Redis);
// a token's id is in its signed payload, so another spelling of the same token is the same token.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryCache } from '../cache/memory-cache.js';
import { RedisCache } from '../cache/redis-cache.js';
import { CallTokenService } from './call-tokens.js';

const SECRET = 'test-secret-key-that-is-long-enough-0123456789';
const grant = () => ({ tenantId: randomUUID(), callId: randomUUID(), channel: 'browser' as const });

describe('CallTokenService', () => {
  it('a token is claimed once; each token signed is its own (a new stream of the same call gets a new one)', async () => {
    const tokens = new CallTokenService(SECRET, new MemoryCache());
    const g = grant();
    const { token } = await tokens.sign(g);
    const verified = await tokens.verify(token, 'browser');
    expect(verified).toMatchObject(g);
    // Verifying does not use it up; claiming does, once.
    expect(await tokens.verify(token, 'browser')).toMatchObject(g);
    const claims = await Promise.all([0, 1, 2].map(async () => tokens.claim((await tokens.verify(token, 'browser'))!)));
    expect(claims.sort()).toEqual([false, false, true]);
    const again = await tokens.sign(g);
    expect(await tokens.claim((await tokens.verify(again.token, 'browser'))!)).toBe(true);
    expect(await tokens.verify(token, 'twilio')).toBeNull();
  });

  it('two instances sharing Redis: the token opens one socket across them', async () => {
    const prefix = `test:${randomUUID()}:`;
    const a = new RedisCache('redis://127.0.0.1:6379', prefix);
    const b = new RedisCache('redis://127.0.0.1:6379', prefix);
    await a.connect();
    await b.connect();
    try {
      const onA = new CallTokenService(SECRET, a);
      const onB = new CallTokenService(SECRET, b);
      const { token } = await onA.sign(grant());
      const [x, y] = await Promise.all([
        onA.claim((await onA.verify(token, 'browser'))!),
        onB.claim((await onB.verify(token, 'browser'))!),
      ]);
      expect([x, y].sort()).toEqual([false, true]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
