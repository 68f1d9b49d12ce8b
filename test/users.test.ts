import { beforeAll, describe, expect, it } from 'vitest';
import { call, type Session, signup, twoTenants, uniqueEmail, useTestApp } from './helpers.js';

const t = useTestApp();
let a: Session; // tenant A's admin
let b: Session; // tenant B's admin
beforeAll(async () => {
  ({ a, b } = await twoTenants(t.app));
});

const req = (method: Parameters<typeof call>[1], url: string, token: string, payload?: object) => call(t.app, method, url, token, payload);
const login = (email: string, password = 'member password 1') =>
  t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } });

async function createMember(admin: Session, role: 'admin' | 'member' = 'member') {
  const res = await req('POST', '/api/v1/users', admin.access_token, { email: uniqueEmail('member'), password: 'member password 1', role });
  expect(res.statusCode).toBe(201);
  return res.json();
}

describe('users', () => {
  it('an admin creates, lists, reads and updates users of their tenant', async () => {
    const m = await createMember(a);
    expect(m).toMatchObject({ tenant_id: a.tenant.id, role: 'member', is_active: true });
    const list = (await req('GET', '/api/v1/users?limit=100', a.access_token)).json();
    expect(list.items.map((u: { id: string }) => u.id)).toEqual(expect.arrayContaining([a.user.id, m.id]));
    expect(list.items.every((u: { tenant_id: string }) => u.tenant_id === a.tenant.id)).toBe(true);
    expect(list.total).toBe(list.items.length);
    const got = await req('GET', `/api/v1/users/${m.id}`, a.access_token);
    expect(got.json().email).toBe(m.email);
    const up = await req('PATCH', `/api/v1/users/${m.id}`, a.access_token, { role: 'admin', full_name: 'Promoted' });
    expect(up.json()).toMatchObject({ role: 'admin', full_name: 'Promoted' });
  });

  it('a member cannot manage users', async () => {
    const m = await createMember(a);
    const token = (await login(m.email)).json().access_token;
    expect((await req('GET', '/api/v1/users', token)).statusCode).toBe(403);
    expect((await req('POST', '/api/v1/users', token, { email: uniqueEmail(), password: 'abcdefgh1' })).statusCode).toBe(403);
  });

  it('deactivation stops the user’s access token, refresh token and login at once', async () => {
    const m = await createMember(a);
    const session = (await login(m.email)).json();
    expect((await req('GET', '/api/v1/auth/me', session.access_token)).statusCode).toBe(200);
    const del = await req('DELETE', `/api/v1/users/${m.id}`, a.access_token);
    expect(del.statusCode).toBe(200);
    expect(del.json().is_active).toBe(false);
    const me = await req('GET', '/api/v1/auth/me', session.access_token);
    expect(me.statusCode).toBe(403);
    expect(me.json().error.code).toBe('account_disabled');
    const refresh = await t.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: session.refresh_token } });
    expect(refresh.statusCode).toBe(401);
    expect((await login(m.email)).statusCode).toBe(403);
    // Reactivated: can log in again.
    await req('PATCH', `/api/v1/users/${m.id}`, a.access_token, { is_active: true });
    expect((await login(m.email)).statusCode).toBe(200);
  });

  it('the last active admin cannot demote or deactivate themself', async () => {
    const solo = await signup(t.app);
    const demote = await req('PATCH', `/api/v1/users/${solo.user.id}`, solo.access_token, { role: 'member' });
    expect(demote.statusCode).toBe(409);
    expect(demote.json().error.code).toBe('last_admin');
    expect((await req('DELETE', `/api/v1/users/${solo.user.id}`, solo.access_token)).statusCode).toBe(409);
    const other = await createMember(solo, 'admin');
    expect((await req('PATCH', `/api/v1/users/${solo.user.id}`, solo.access_token, { role: 'member' })).statusCode).toBe(200);
    expect(other.role).toBe('admin');
  });

  it('rejects an empty patch and unknown fields by name', async () => {
    const m = await createMember(a);
    expect((await req('PATCH', `/api/v1/users/${m.id}`, a.access_token, {})).statusCode).toBe(422);
    const res = await req('PATCH', `/api/v1/users/${m.id}`, a.access_token, { is_platform_admin: true });
    expect(res.statusCode).toBe(422);
    expect(res.json().error.details[0].field).toBe('body.is_platform_admin');
  });
});

describe('users: tenant isolation', () => {
  it('tenant B cannot read, change or deactivate tenant A’s users: 404 like a missing one', async () => {
    const m = await createMember(a);
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const id of [m.id, missing]) {
      expect((await req('GET', `/api/v1/users/${id}`, b.access_token)).statusCode).toBe(404);
      expect((await req('PATCH', `/api/v1/users/${id}`, b.access_token, { role: 'admin' })).statusCode).toBe(404);
      expect((await req('DELETE', `/api/v1/users/${id}`, b.access_token)).statusCode).toBe(404);
    }
    const list = (await req('GET', '/api/v1/users?limit=200', b.access_token)).json();
    expect(list.items.some((u: { id: string }) => u.id === m.id)).toBe(false);
    const still = (await req('GET', `/api/v1/users/${m.id}`, a.access_token)).json();
    expect(still).toMatchObject({ role: 'member', is_active: true });
  });
});
