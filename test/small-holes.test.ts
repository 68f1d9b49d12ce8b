// Small holes found by the red team (issue 16 #18): each hostile input gets a clear 4xx (or is made harmless), never a
// 500 or a silent acceptance.
import { createHash, randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { calls } from '../src/db/schema.js';
import { deriveKey } from '../src/lib/derive-key.js';
import { twilioSignature } from '../src/telephony/twilio-signature.js';
import { bearer, type Session, signup, useTestApp } from './helpers.js';

const SECRET_KEY = 'test-secret-key-that-is-long-enough-0123456789';
const ACCOUNT_SID = `AC${'1'.repeat(32)}`;
const AUTH_TOKEN = 'small-holes-auth-token';
const BASE = 'https://voice.example.com';
const ADMIN_EMAIL = 'ops-small@platform.example';
const ADMIN_PASSWORD = 'platform admin password';
const t = useTestApp({
  SECRET_KEY,
  TWILIO_ACCOUNT_SID: ACCOUNT_SID,
  TWILIO_AUTH_TOKEN: AUTH_TOKEN,
  PUBLIC_BASE_URL: BASE,
  PLATFORM_ADMIN_EMAIL: ADMIN_EMAIL,
  PLATFORM_ADMIN_PASSWORD: ADMIN_PASSWORD,
});
let s: Session;
beforeAll(async () => {
  s = await signup(t.app);
});

let sidCounter = 0;
async function placedCall() {
  const sid = `CA${(Date.now().toString(16) + String(++sidCounter)).padStart(32, '0')}`;
  const call = await t.deps.calls.open(s.tenant.id, {
    direction: 'outbound',
    status: 'queued',
    fromNumber: '+15550001111',
    toNumber: '+15557654321',
    providerCallSid: sid,
  });
  return { sid, id: call.id };
}
const statusPath = '/api/v1/webhooks/twilio/status';

describe('Twilio status callbacks', () => {
  it('a signed callback with a huge CallDuration does not 500: the status applies, the duration is measured instead', async () => {
    for (const duration of ['99999999999999999999', '3000000', '-5', '1.5e9']) {
      const { sid, id } = await placedCall();
      const params = { AccountSid: ACCOUNT_SID, CallSid: sid, CallStatus: 'completed', CallDuration: duration };
      const res = await t.app.inject({
        method: 'POST',
        url: statusPath,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': twilioSignature(AUTH_TOKEN, BASE + statusPath, params),
        },
        payload: new URLSearchParams(params).toString(),
      });
      expect(res.statusCode, `${duration}: ${res.body}`).toBe(204);
      const [row] = await t.deps.database.db.select().from(calls).where(eq(calls.id, id));
      expect(row!.status).toBe('completed');
      expect(row!.durationMs).toBeGreaterThanOrEqual(0);
      expect(row!.durationMs).toBeLessThan(3_600_000);
    }
    // A plausible duration is kept as Twilio reports it.
    const { sid, id } = await placedCall();
    const params = { AccountSid: ACCOUNT_SID, CallSid: sid, CallStatus: 'completed', CallDuration: '42' };
    const ok = await t.app.inject({
      method: 'POST',
      url: statusPath,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': twilioSignature(AUTH_TOKEN, BASE + statusPath, params),
      },
      payload: new URLSearchParams(params).toString(),
    });
    expect(ok.statusCode).toBe(204);
    expect((await t.deps.database.db.select().from(calls).where(eq(calls.id, id)))[0]!.durationMs).toBe(42_000);
  });

  it('a JSON body signed over the URL alone (no bodySHA256) is refused; with bodySHA256 it is accepted', async () => {
    const { sid, id } = await placedCall();
    const body = JSON.stringify({ AccountSid: ACCOUNT_SID, CallSid: sid, CallStatus: 'completed' });
    const unsigned = await t.app.inject({
      method: 'POST',
      url: statusPath,
      headers: { 'content-type': 'application/json', 'x-twilio-signature': twilioSignature(AUTH_TOKEN, BASE + statusPath) },
      payload: body,
    });
    expect(unsigned.statusCode).toBe(403);
    expect(unsigned.json().error.code).toBe('invalid_signature');
    expect((await t.deps.database.db.select().from(calls).where(eq(calls.id, id)))[0]!.status).toBe('queued');

    const path = `${statusPath}?bodySHA256=${createHash('sha256').update(body).digest('hex')}`;
    const signed = await t.app.inject({
      method: 'POST',
      url: path,
      headers: { 'content-type': 'application/json', 'x-twilio-signature': twilioSignature(AUTH_TOKEN, BASE + path) },
      payload: body,
    });
    expect(signed.statusCode).toBe(204);
    expect((await t.deps.database.db.select().from(calls).where(eq(calls.id, id)))[0]!.status).toBe('completed');
  });
});

describe('access tokens', () => {
  const key = deriveKey(SECRET_KEY, 'jwt-hs256');
  const forge = (claims: Record<string, unknown>, sub: string, exp: boolean) => {
    const jwt = new SignJWT({ typ: 'access', ...claims })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(sub)
      .setIssuer('voice-agent')
      .setAudience('voice-agent-api')
      .setIssuedAt();
    return (exp ? jwt.setExpirationTime('10m') : jwt).sign(key);
  };
  const me = async (token: string) => t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(token) });

  it('a token signed with our key is honoured only with exp (control: the same token with exp works)', async () => {
    expect((await me(await forge({ tid: s.tenant.id }, s.user.id, true))).statusCode).toBe(200);
    const res = await me(await forge({ tid: s.tenant.id }, s.user.id, false));
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('invalid_token');
  });

  it('a non-UUID sub or tid is 401 invalid_token, not a 500', async () => {
    for (const [sub, tid] of [
      ['not-a-uuid', s.tenant.id],
      [s.user.id, 'x'.repeat(300)],
      [`${randomUUID()}\u0000`, s.tenant.id],
    ] as const) {
      const res = await me(await forge({ tid }, sub, true));
      expect(res.statusCode, res.body).toBe(401);
      expect(res.json().error.code).toBe('invalid_token');
    }
  });
});

describe('platform admin: suspend', () => {
  it('takes no body at all (the reason is optional)', async () => {
    const root = (
      await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } })
    ).json().access_token as string;
    const victim = await signup(t.app);
    const res = await t.app.inject({ method: 'POST', url: `/api/v1/admin/tenants/${victim.tenant.id}/suspend`, headers: bearer(root) });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ status: 'suspended', suspended_reason: null });
    // A body with a reason still works.
    const other = await signup(t.app);
    const withReason = await t.app.inject({
      method: 'POST',
      url: `/api/v1/admin/tenants/${other.tenant.id}/suspend`,
      headers: bearer(root),
      payload: { reason: 'unpaid' },
    });
    expect(withReason.json()).toMatchObject({ status: 'suspended', suspended_reason: 'unpaid' });
  });
});
