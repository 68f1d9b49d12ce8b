import { eq } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { apiKeys } from '../src/db/schema.js';
import { call, type Session, twoTenants, useTestApp } from './helpers.js';

const t = useTestApp();
let a: Session;
let b: Session;
beforeAll(async () => {
  ({ a, b } = await twoTenants(t.app));
});

const req = (method: Parameters<typeof call>[1], url: string, token: string, payload?: object) => call(t.app, method, url, token, payload);

describe('API keys', () => {
  it('is shown once, stored hashed, and works as a bearer credential for tenant routes', async () => {
    const res = await req('POST', '/api/v1/api-keys', a.access_token, { name: 'crm sync' });
    expect(res.statusCode).toBe(201);
    const created = res.json();
    expect(created.key).toMatch(/^vak_[A-Za-z0-9_-]{43}$/);
    expect(created.key.startsWith(created.prefix)).toBe(true);
    const [row] = await t.deps.database.db.select().from(apiKeys).where(eq(apiKeys.id, created.id));
    expect(JSON.stringify(row)).not.toContain(created.key);
    const list = (await req('GET', '/api/v1/api-keys', a.access_token)).json();
    expect(list.items.find((k: { id: string }) => k.id === created.id)).not.toHaveProperty('key');
    const settings = await req('GET', '/api/v1/settings/tenant', created.key);
    expect(settings.statusCode).toBe(200);
    const after = (await req('GET', '/api/v1/api-keys', a.access_token)).json();
    expect(after.items.find((k: { id: string }) => k.id === created.id).last_used_at).not.toBeNull();
  });

  it('cannot manage users or keys, nor act as a user', async () => {
    const key = (await req('POST', '/api/v1/api-keys', a.access_token, { name: 'k' })).json().key;
    expect((await req('GET', '/api/v1/users', key)).statusCode).toBe(403);
    expect((await req('POST', '/api/v1/api-keys', key, { name: 'escalate' })).statusCode).toBe(403);
    expect((await req('GET', '/api/v1/auth/me', key)).statusCode).toBe(403);
  });

  it('revoked and expired keys stop working at once', async () => {
    const k = (await req('POST', '/api/v1/api-keys', a.access_token, { name: 'short-lived' })).json();
    expect((await req('DELETE', `/api/v1/api-keys/${k.id}`, a.access_token)).statusCode).toBe(204);
    const res = await req('GET', '/api/v1/settings/tenant', k.key);
    expect(res.statusCode).toBe(401);
    expect((await req('DELETE', `/api/v1/api-keys/${k.id}`, a.access_token)).statusCode).toBe(404);
    const e = (await req('POST', '/api/v1/api-keys', a.access_token, { name: 'expiring' })).json();
    await t.deps.database.db
      .update(apiKeys)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(apiKeys.id, e.id));
    expect((await req('GET', '/api/v1/settings/tenant', e.key)).statusCode).toBe(401);
    expect((await req('POST', '/api/v1/api-keys', a.access_token, { name: 'x', expires_at: '2000-01-01T00:00:00Z' })).statusCode).toBe(422);
  });

  it('a garbage key is 401', async () => {
    expect((await req('GET', '/api/v1/settings/tenant', 'vak_nope')).statusCode).toBe(401);
  });
});

describe('API keys: tenant isolation', () => {
  it('tenant B cannot see or revoke tenant A’s keys, and A’s key sees only A', async () => {
    const k = (await req('POST', '/api/v1/api-keys', a.access_token, { name: 'A key' })).json();
    const listB = (await req('GET', '/api/v1/api-keys', b.access_token)).json();
    expect(listB.items.some((x: { id: string }) => x.id === k.id)).toBe(false);
    expect((await req('DELETE', `/api/v1/api-keys/${k.id}`, b.access_token)).statusCode).toBe(404);
    expect((await req('GET', '/api/v1/settings/tenant', k.key)).statusCode).toBe(200);
    await req('PUT', '/api/v1/settings/tenant', k.key, { agent_name: 'Set by A key' });
    expect((await req('GET', '/api/v1/settings/tenant', b.access_token)).json().agent_name).not.toBe('Set by A key');
  });
});
