import { beforeAll, describe, expect, it } from 'vitest';
import { bearer, type Session, signup, useTestApp } from './helpers.js';

const ADMIN_EMAIL = 'ops@platform.example';
const ADMIN_PASSWORD = 'platform admin password';
const t = useTestApp({ PLATFORM_ADMIN_EMAIL: ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD: ADMIN_PASSWORD });
let root: string; // platform admin's access token
let a: Session;
beforeAll(async () => {
  root = (
    await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } })
  ).json().access_token;
  a = await signup(t.app, { tenant_name: 'Tenant A' });
});

const req = (method: 'GET' | 'POST' | 'PUT', url: string, token: string, payload?: object) =>
  t.app.inject({ method, url, headers: bearer(token), ...(payload && { payload }) });

describe('platform admin', () => {
  it('is bootstrapped from config and lists tenants with counts', async () => {
    expect(root).toBeTruthy();
    await req('POST', '/api/v1/api-keys', a.access_token, { name: 'k1' });
    await req('POST', '/api/v1/users', a.access_token, { email: `m-${Date.now()}@example.com`, password: 'member password 1' });
    const list = (await req('GET', '/api/v1/admin/tenants?limit=200', root)).json();
    const row = list.items.find((x: { id: string }) => x.id === a.tenant.id);
    expect(row.counts).toEqual({ users: 2, calls: 0, documents: 0, phone_numbers: 0, api_keys: 1 });
    expect(list.total).toBeGreaterThanOrEqual(2);
    const one = (await req('GET', `/api/v1/admin/tenants/${a.tenant.id}`, root)).json();
    expect(one.counts.users).toBe(2);
    expect((await req('GET', '/api/v1/admin/tenants/00000000-0000-4000-8000-000000000000', root)).statusCode).toBe(404);
  });

  it('cannot suspend its own tenant (nobody could reactivate it)', async () => {
    const me = (await req('GET', '/api/v1/auth/me', root)).json();
    const res = await req('POST', `/api/v1/admin/tenants/${me.tenant.id}/suspend`, root, {});
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('own_tenant');
    expect((await req('GET', '/api/v1/auth/me', root)).statusCode).toBe(200);
  });

  it('is out of reach of tenant admins and API keys', async () => {
    expect((await req('GET', '/api/v1/admin/tenants', a.access_token)).statusCode).toBe(403);
    expect((await req('POST', `/api/v1/admin/tenants/${a.tenant.id}/suspend`, a.access_token, {})).statusCode).toBe(403);
    const key = (await req('POST', '/api/v1/api-keys', a.access_token, { name: 'k' })).json().key;
    expect((await req('GET', '/api/v1/admin/tenants', key)).statusCode).toBe(403);
  });

  it('suspension blocks the tenant’s users, API keys, logins and refreshes with 403 until reactivated', async () => {
    const s = await signup(t.app, { tenant_name: 'Soon suspended' });
    const key = (await req('POST', '/api/v1/api-keys', s.access_token, { name: 'k' })).json().key;
    const other = await signup(t.app, { tenant_name: 'Bystander' });
    const sus = await req('POST', `/api/v1/admin/tenants/${s.tenant.id}/suspend`, root, { reason: 'unpaid invoice' });
    expect(sus.statusCode).toBe(200);
    expect(sus.json()).toMatchObject({ status: 'suspended', suspended_reason: 'unpaid invoice' });

    const me = await req('GET', '/api/v1/auth/me', s.access_token);
    expect(me.statusCode).toBe(403);
    expect(me.json().error.code).toBe('tenant_suspended');
    expect((await req('GET', '/api/v1/settings/tenant', key)).statusCode).toBe(403);
    const login = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: s.user.email, password: 'correct horse battery' },
    });
    expect(login.statusCode).toBe(403);
    const refresh = await t.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: s.refresh_token } });
    expect(refresh.statusCode).toBe(403);
    expect((await req('GET', '/api/v1/auth/me', other.access_token)).statusCode).toBe(200);

    const re = await req('POST', `/api/v1/admin/tenants/${s.tenant.id}/reactivate`, root);
    expect(re.json()).toMatchObject({ status: 'active', suspended_reason: null });
    expect((await req('GET', '/api/v1/auth/me', s.access_token)).statusCode).toBe(200);
    expect((await req('GET', '/api/v1/settings/tenant', key)).statusCode).toBe(200);
  });
});
