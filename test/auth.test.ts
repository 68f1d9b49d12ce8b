import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { users } from '../src/db/schema.js';
import { verifyLegacyPbkdf2 } from '../src/services/passwords.js';
import { bearer, signup, uniqueEmail, useTestApp } from './helpers.js';

const t = useTestApp();

const post = (url: string, payload: unknown, headers = {}) => t.app.inject({ method: 'POST', url, payload: payload as object, headers });

describe('signup and login', () => {
  it('creates a tenant whose first user is its admin, and returns a token pair', async () => {
    const email = uniqueEmail('Founder').toUpperCase();
    const res = await post('/api/v1/auth/signup', {
      email,
      password: 'correct horse battery',
      tenant_name: 'Sunrise Clinic',
      full_name: 'Ada',
    });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body.token_type).toBe('bearer');
    expect(body.expires_in).toBe(30 * 60);
    expect(body.access_token.split('.')).toHaveLength(3);
    expect(body.refresh_token).toMatch(/^vrt_/);
    expect(body.user).toMatchObject({ email: email.toLowerCase(), role: 'admin', is_active: true, full_name: 'Ada' });
    expect(body.tenant).toMatchObject({ name: 'Sunrise Clinic', status: 'active' });
    expect(body.user.tenant_id).toBe(body.tenant.id);
    expect(body.user).not.toHaveProperty('password_hash');
  });

  it('treats emails case-insensitively and refuses a second account for one address', async () => {
    const email = uniqueEmail();
    await signup(t.app, { email });
    const dup = await post('/api/v1/auth/signup', { email: email.toUpperCase(), password: 'another password', tenant_name: 'X' });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error.code).toBe('email_taken');
    const login = await post('/api/v1/auth/login', { email: `  ${email.toUpperCase()} `, password: 'correct horse battery' });
    expect(login.statusCode).toBe(200);
  });

  it('answers a wrong password and an unknown email the same way', async () => {
    const s = await signup(t.app);
    const wrong = await post('/api/v1/auth/login', { email: s.user.email, password: 'not the password' });
    const unknown = await post('/api/v1/auth/login', { email: uniqueEmail('nobody'), password: 'not the password' });
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(wrong.json().error.code).toBe('invalid_credentials');
    expect(unknown.json().error.message).toBe(wrong.json().error.message);
  });

  it('validates signup input and names the field', async () => {
    const res = await post('/api/v1/auth/signup', { email: 'not-an-email', password: 'short', tenant_name: '' });
    expect(res.statusCode).toBe(422);
    const fields = res.json().error.details.map((d: { field: string }) => d.field);
    expect(fields).toEqual(expect.arrayContaining(['body.email', 'body.password', 'body.tenant_name']));
  });

  it('/auth/me returns the user and tenant, and needs a valid token', async () => {
    const s = await signup(t.app);
    const me = await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(s.access_token) });
    expect(me.statusCode).toBe(200);
    expect(me.json().user.id).toBe(s.user.id);
    const none = await t.app.inject({ method: 'GET', url: '/api/v1/auth/me' });
    expect(none.statusCode).toBe(401);
    const tampered = s.access_token.slice(0, -3) + (s.access_token.endsWith('AAA') ? 'BBB' : 'AAA');
    const bad = await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(tampered) });
    expect(bad.statusCode).toBe(401);
    expect(bad.json().error.code).toBe('invalid_token');
  });
});

describe('refresh tokens', () => {
  it('rotate: the new pair works, the old refresh token does not', async () => {
    const s = await signup(t.app);
    const r1 = await post('/api/v1/auth/refresh', { refresh_token: s.refresh_token });
    expect(r1.statusCode).toBe(200);
    const p1 = r1.json();
    expect(p1.refresh_token).not.toBe(s.refresh_token);
    const me = await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(p1.access_token) });
    expect(me.statusCode).toBe(200);
    const again = await post('/api/v1/auth/refresh', { refresh_token: s.refresh_token });
    expect(again.statusCode).toBe(401);
  });

  it('reuse of a rotated token revokes the whole family, including the newest token', async () => {
    const s = await signup(t.app);
    const p1 = (await post('/api/v1/auth/refresh', { refresh_token: s.refresh_token })).json();
    const p2 = (await post('/api/v1/auth/refresh', { refresh_token: p1.refresh_token })).json();
    // An attacker replays the first token...
    expect((await post('/api/v1/auth/refresh', { refresh_token: s.refresh_token })).statusCode).toBe(401);
    // ...and the legitimate holder of the newest token is logged out too.
    const victim = await post('/api/v1/auth/refresh', { refresh_token: p2.refresh_token });
    expect(victim.statusCode).toBe(401);
    // A separate login is a separate family and keeps working.
    const other = (await post('/api/v1/auth/login', { email: s.user.email, password: 'correct horse battery' })).json();
    expect((await post('/api/v1/auth/refresh', { refresh_token: other.refresh_token })).statusCode).toBe(200);
  });

  it('two concurrent refreshes with one token: exactly one wins', async () => {
    const s = await signup(t.app);
    const [a, b] = await Promise.all([
      post('/api/v1/auth/refresh', { refresh_token: s.refresh_token }),
      post('/api/v1/auth/refresh', { refresh_token: s.refresh_token }),
    ]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([200, 401]);
  });

  it('logout revokes the refresh token and is idempotent', async () => {
    const s = await signup(t.app);
    expect((await post('/api/v1/auth/logout', { refresh_token: s.refresh_token })).statusCode).toBe(204);
    expect((await post('/api/v1/auth/refresh', { refresh_token: s.refresh_token })).statusCode).toBe(401);
    expect((await post('/api/v1/auth/logout', { refresh_token: s.refresh_token })).statusCode).toBe(204);
    expect((await post('/api/v1/auth/refresh', { refresh_token: 'vrt_garbage' })).statusCode).toBe(401);
  });
});

describe('passwords', () => {
  it('stores argon2id hashes', async () => {
    const s = await signup(t.app);
    const [row] = await t.deps.database.db.select().from(users).where(eq(users.id, s.user.id));
    expect(row!.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });

  it('accepts the old system’s PBKDF2 hashes and upgrades them on login', async () => {
    const s = await signup(t.app);
    const salt = randomBytes(16);
    const digest = pbkdf2Sync('legacy password 1', salt, 100_000, 32, 'sha256');
    const ab64 = (b: Buffer) => b.toString('base64').replace(/\+/g, '.').replace(/=+$/, '');
    const legacy = `$pbkdf2-sha256$100000$${ab64(salt)}$${ab64(digest)}`;
    await t.deps.database.db.update(users).set({ passwordHash: legacy }).where(eq(users.id, s.user.id));

    expect((await post('/api/v1/auth/login', { email: s.user.email, password: 'wrong' })).statusCode).toBe(401);
    const ok = await post('/api/v1/auth/login', { email: s.user.email, password: 'legacy password 1' });
    expect(ok.statusCode).toBe(200);
    const [row] = await t.deps.database.db.select().from(users).where(eq(users.id, s.user.id));
    expect(row!.passwordHash).toMatch(/^\$argon2id\$/);
    expect((await post('/api/v1/auth/login', { email: s.user.email, password: 'legacy password 1' })).statusCode).toBe(200);
  });

  it('verifies Django and Werkzeug PBKDF2 formats and rejects tampered ones', () => {
    const django = `pbkdf2_sha256$100000$saltsalt$${pbkdf2Sync('pw1', 'saltsalt', 100_000, 32, 'sha256').toString('base64')}`;
    const werkzeug = `pbkdf2:sha256:100000$saltsalt$${pbkdf2Sync('pw2', 'saltsalt', 100_000, 32, 'sha256').toString('hex')}`;
    expect(verifyLegacyPbkdf2('pw1', django)).toBe(true);
    expect(verifyLegacyPbkdf2('pw2', werkzeug)).toBe(true);
    expect(verifyLegacyPbkdf2('pw2', django)).toBe(false);
    expect(verifyLegacyPbkdf2('pw1', django.replace('100000', '100001'))).toBe(false);
    expect(verifyLegacyPbkdf2('pw1', 'plaintext')).toBe(false);
  });
});

describe('logs', () => {
  it('never contain passwords, tokens or keys', async () => {
    const password = 'very-secret-password-xyz';
    const s = await signup(t.app, { password });
    await post('/api/v1/auth/login', { email: s.user.email, password });
    await post('/api/v1/auth/refresh', { refresh_token: s.refresh_token });
    const key = (await post('/api/v1/api-keys', { name: 'ci' }, bearer(s.access_token))).json().key as string;
    await t.app.inject({ method: 'GET', url: '/api/v1/settings/tenant', headers: bearer(key) });
    await t.app.inject({ method: 'GET', url: '/api/v1/settings/tenant', headers: { ...bearer(key), 'x-request-id': 'trace-123' } });
    const all = t.logs.join('\n');
    expect(all).toContain('trace-123');
    for (const secret of [password, s.access_token, s.refresh_token, key]) expect(all).not.toContain(secret);
  });
});
