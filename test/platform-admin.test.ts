// Platform-admin bootstrap: it creates its own account or refuses; a self-registered account is never promoted.
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { users } from '../src/db/schema.js';
import { bearer, buildTestApp, signup, uniqueEmail, useTestApp } from './helpers.js';

const PASSWORD = 'platform admin password';
const t = useTestApp();

const logLines = (from: number) =>
  t.logs.slice(from).map((l) => JSON.parse(l) as { level: number; msg: string; email?: string; user_id?: string });
const login = (email: string, password: string) =>
  t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } });
const row = async (email: string) => (await t.deps.database.db.select().from(users).where(eq(users.email, email)))[0];

describe('platform admin bootstrap', () => {
  it('does not promote an account that signed up first with the admin address, and logs why', async () => {
    const email = uniqueEmail('ops');
    const squatter = await signup(t.app, { email, password: 'the squatter password' });
    const from = t.logs.length;
    const outcome = await t.deps.accounts.ensurePlatformAdmin({ email, password: PASSWORD }, t.deps.log);
    expect(outcome).toBe('refused');
    expect((await row(email))!.isPlatformAdmin).toBe(false);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/admin/tenants', headers: bearer(squatter.access_token) })).statusCode).toBe(
      403,
    );
    // The configured password does not open the squatter's account either.
    expect((await login(email, PASSWORD)).statusCode).toBe(401);
    const line = logLines(from).find((l) => l.msg.includes('platform admin NOT granted'));
    expect(line).toMatchObject({ level: 50, email, user_id: squatter.user.id });
    expect(line!.msg).toContain('existing tenant user');
  });

  it('creates a fresh address as a platform admin with the configured password, logging the grant', async () => {
    const email = uniqueEmail('ops');
    const from = t.logs.length;
    expect(await t.deps.accounts.ensurePlatformAdmin({ email, password: PASSWORD }, t.deps.log)).toBe('created');
    const created = (await row(email))!;
    expect(created.isPlatformAdmin).toBe(true);
    const grant = logLines(from).find((l) => l.msg.includes('platform admin granted'));
    expect(grant).toMatchObject({ level: 40, email, user_id: created.id });
    const s = await login(email, PASSWORD);
    expect(s.statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/admin/tenants', headers: bearer(s.json().access_token) })).statusCode).toBe(
      200,
    );

    // A restart finds its own account and keeps it (a later signup with the address is refused as taken anyway).
    expect(await t.deps.accounts.ensurePlatformAdmin({ email, password: PASSWORD }, t.deps.log)).toBe('exists');
    expect((await row(email))!.isPlatformAdmin).toBe(true);
    expect((await login(email, PASSWORD)).statusCode).toBe(200);
  });

  it('without a password and no account, creates nothing and says what to set', async () => {
    const email = uniqueEmail('ops');
    const from = t.logs.length;
    expect(await t.deps.accounts.ensurePlatformAdmin({ email, password: undefined }, t.deps.log)).toBe('missing');
    expect(await row(email)).toBeUndefined();
    expect(logLines(from).some((l) => l.msg.includes('PLATFORM_ADMIN_PASSWORD'))).toBe(true);
  });

  it('start-up runs the bootstrap: an app configured with a fresh address gets its admin', async () => {
    const email = uniqueEmail('boot');
    const booted = await buildTestApp({ PLATFORM_ADMIN_EMAIL: email, PLATFORM_ADMIN_PASSWORD: PASSWORD });
    try {
      const s = await booted.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: PASSWORD } });
      expect(s.statusCode).toBe(200);
      expect(s.json().user.is_platform_admin).toBe(true);
      expect(booted.logs.some((l) => l.includes('platform admin granted'))).toBe(true);
    } finally {
      await booted.close();
    }
  });
});
