// Phone numbers: CRUD, validation, platform-wide uniqueness (also under concurrency), only the Twilio account's
// numbers (against the fake Twilio), tenant isolation, and the inbound lookup the Twilio webhook relies on.
import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calls, phoneNumbers } from '../src/db/schema.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio.js';
import { buildTestApp, call, type Session, signup, type TestApp, twoTenants, useTestApp } from './helpers.js';

const t = useTestApp();
let a: Session;
let b: Session;
beforeAll(async () => {
  ({ a, b } = await twoTenants(t.app));
});

const req = (method: Parameters<typeof call>[1], url: string, token: string, payload?: object) => call(t.app, method, url, token, payload);
const URL = '/api/v1/phone-numbers';

// Each test gets numbers no other test uses, so tests do not depend on each other's rows.
let seq = 0;
const freshNumber = () => `+1415555${String(1000 + ++seq).padStart(4, '0')}`;
const SID = `PN${'0123456789abcdef'.repeat(2)}`;

async function register(token: string, body: object = {}) {
  const res = await req('POST', URL, token, { number: freshNumber(), ...body });
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as { id: string; number: string; [k: string]: unknown };
}

describe('phone numbers: CRUD', () => {
  it('registers, reads, lists, changes and deletes a number', async () => {
    const number = freshNumber();
    const created = await req('POST', URL, a.access_token, {
      number,
      friendly_name: 'Front desk',
      provider_sid: SID,
      mode: 'livekit',
      overrides: { agent_name: 'Nora', greeting: 'Clinic, how can I help?', language: 'en-US' },
    });
    expect(created.statusCode, created.body).toBe(201);
    const n = created.json();
    expect(n).toMatchObject({
      number,
      friendly_name: 'Front desk',
      provider: 'twilio',
      provider_sid: SID,
      is_active: true,
      mode: 'livekit',
      overrides: { agent_name: 'Nora', greeting: 'Clinic, how can I help?', language: 'en-US' },
    });

    const got = await req('GET', `${URL}/${n.id}`, a.access_token);
    expect(got.statusCode).toBe(200);
    expect(got.json()).toEqual(n);

    const list = await req('GET', `${URL}?limit=200`, a.access_token);
    expect(list.statusCode).toBe(200);
    expect(list.json()).toMatchObject({ limit: 200, offset: 0 });
    expect(list.json().items.map((x: { id: string }) => x.id)).toContain(n.id);

    const patched = await req('PATCH', `${URL}/${n.id}`, a.access_token, {
      friendly_name: null,
      mode: null,
      is_active: false,
      overrides: { system_prompt: 'Be brief.' },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    // Fields left out keep their value; overrides are replaced whole.
    expect(patched.json()).toMatchObject({
      number,
      friendly_name: null,
      provider_sid: SID,
      mode: null,
      is_active: false,
      overrides: { system_prompt: 'Be brief.' },
    });
    expect(patched.json().overrides).not.toHaveProperty('agent_name');
    expect((await req('GET', `${URL}/${n.id}`, a.access_token)).json()).toEqual(patched.json());

    const del = await req('DELETE', `${URL}/${n.id}`, a.access_token);
    expect(del.statusCode).toBe(204);
    expect(del.body).toBe('');
    expect((await req('GET', `${URL}/${n.id}`, a.access_token)).statusCode).toBe(404);
    expect((await req('DELETE', `${URL}/${n.id}`, a.access_token)).statusCode).toBe(404);
    // The number is free again once deleted.
    expect((await req('POST', URL, b.access_token, { number })).statusCode).toBe(201);
  });

  it('paginates with total, limit and offset', async () => {
    const tenant = await signup(t.app, { tenant_name: 'Paging' });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await register(tenant.access_token)).id);
    const first = (await req('GET', `${URL}?limit=2`, tenant.access_token)).json();
    const second = (await req('GET', `${URL}?limit=2&offset=2`, tenant.access_token)).json();
    expect(first).toMatchObject({ total: 3, limit: 2, offset: 0 });
    expect(first.items).toHaveLength(2);
    expect(second).toMatchObject({ total: 3, limit: 2, offset: 2 });
    expect(second.items).toHaveLength(1);
    const seen = [...first.items, ...second.items].map((x: { id: string }) => x.id);
    expect(new Set(seen)).toEqual(new Set(ids));
    expect((await req('GET', `${URL}?limit=0`, tenant.access_token)).statusCode).toBe(422);
  });

  it('an empty PATCH changes nothing; a PATCH may move the number to a free one', async () => {
    const n = await register(a.access_token, { friendly_name: 'Same' });
    const empty = await req('PATCH', `${URL}/${n.id}`, a.access_token, {});
    expect(empty.statusCode).toBe(200);
    expect(empty.json()).toMatchObject({ number: n.number, friendly_name: 'Same' });
    // Its own number again is no conflict.
    expect((await req('PATCH', `${URL}/${n.id}`, a.access_token, { number: n.number })).statusCode).toBe(200);
    const moved = freshNumber();
    const res = await req('PATCH', `${URL}/${n.id}`, a.access_token, { number: moved });
    expect(res.statusCode).toBe(200);
    expect(res.json().number).toBe(moved);
  });

  it('deleting a number keeps the calls that came in on it', async () => {
    const n = await register(a.access_token);
    const c = await t.deps.calls.start(a.tenant.id, { direction: 'inbound', toNumber: n.number, phoneNumberId: n.id });
    // Patching the number leaves the call linked.
    await req('PATCH', `${URL}/${n.id}`, a.access_token, { friendly_name: 'Renamed', number: freshNumber() });
    expect((await t.deps.database.db.select().from(calls).where(eq(calls.id, c.id)))[0]?.phoneNumberId).toBe(n.id);
    expect((await req('DELETE', `${URL}/${n.id}`, a.access_token)).statusCode).toBe(204);
    const [row] = await t.deps.database.db.select().from(calls).where(eq(calls.id, c.id));
    expect(row).toMatchObject({ phoneNumberId: null, toNumber: n.number });
    expect((await req('GET', `/api/v1/calls/${c.id}`, a.access_token)).statusCode).toBe(200);
  });
});

describe('phone numbers: validation', () => {
  const refused = async (method: 'POST' | 'PATCH', url: string, body: object, field: string) => {
    const res = await req(method, url, a.access_token, body);
    expect(res.statusCode, `${JSON.stringify(body)} -> ${res.body}`).toBe(422);
    expect(res.json().error.code).toBe('validation_error');
    expect(res.json().error.details.map((d: { field: string }) => d.field)).toContain(field);
  };

  it('refuses anything but E.164 as given, without normalising it', async () => {
    for (const number of [
      '4155550100',
      '14155550100',
      '+0415555010',
      '+1 415 555 0100',
      '+1-415-555-0100',
      ' +14155550100',
      '+14155550100 ',
      '+123456',
      '+1234567890123456',
      '+1415555010a',
      '',
    ]) {
      await refused('POST', URL, { number }, 'body.number');
    }
    await refused('POST', URL, {}, 'body.number');
    const count = (await t.deps.database.db.select().from(phoneNumbers).where(eq(phoneNumbers.number, '+14155550100'))).length;
    expect(count).toBe(0);
    // The shortest and longest E.164 lengths are accepted.
    expect((await req('POST', URL, a.access_token, { number: '+1234567' })).statusCode).toBe(201);
    expect((await req('POST', URL, a.access_token, { number: '+123456789012345' })).statusCode).toBe(201);
  });

  it('refuses unknown fields, bad modes, bad SIDs and unknown or over-long overrides', async () => {
    await refused('POST', URL, { number: freshNumber(), tenant_id: b.tenant.id }, 'body.tenant_id');
    await refused('POST', URL, { number: freshNumber(), provider: 'vonage' }, 'body.provider');
    await refused('POST', URL, { number: freshNumber(), mode: 'sip' }, 'body.mode');
    await refused('POST', URL, { number: freshNumber(), is_active: 'yes' }, 'body.is_active');
    await refused('POST', URL, { number: freshNumber(), provider_sid: 'PN123' }, 'body.provider_sid');
    await refused('POST', URL, { number: freshNumber(), provider_sid: `PN${'0123456789ABCDEF'.repeat(2)}` }, 'body.provider_sid');
    await refused('POST', URL, { number: freshNumber(), provider_sid: `CA${'0123456789abcdef'.repeat(2)}` }, 'body.provider_sid');
    await refused('POST', URL, { number: freshNumber(), overrides: { voice: 'alloy' } }, 'body.overrides.voice');
    await refused('POST', URL, { number: freshNumber(), overrides: { agent_name: 'x'.repeat(101) } }, 'body.overrides.agent_name');
    await refused('POST', URL, { number: freshNumber(), overrides: { agent_name: '   ' } }, 'body.overrides.agent_name');
    await refused('POST', URL, { number: freshNumber(), overrides: { greeting: 'x'.repeat(1001) } }, 'body.overrides.greeting');
    await refused('POST', URL, { number: freshNumber(), overrides: { system_prompt: 'x'.repeat(20_001) } }, 'body.overrides.system_prompt');
    await refused('POST', URL, { number: freshNumber(), overrides: { language: 'English' } }, 'body.overrides.language');
    await refused('POST', URL, { number: freshNumber(), overrides: 'none' }, 'body.overrides');

    const n = await register(a.access_token);
    await refused('PATCH', `${URL}/${n.id}`, { number: '555-0100' }, 'body.number');
    await refused('PATCH', `${URL}/${n.id}`, { mode: 'pstn' }, 'body.mode');
    await refused('PATCH', `${URL}/${n.id}`, { overrides: { rag: { enabled: false } } }, 'body.overrides.rag');
    await refused('PATCH', `${URL}/${n.id}`, { id: n.id }, 'body.id');
    // Nothing of the refused PATCHes was applied.
    expect((await req('GET', `${URL}/${n.id}`, a.access_token)).json()).toEqual(n);
    expect((await req('GET', `${URL}/not-a-uuid`, a.access_token)).statusCode).toBe(422);
  });
});

describe('phone numbers: one owner per number across the platform', () => {
  it('a number registered already is 422 phone_number_unavailable, saying nothing of who holds it', async () => {
    const n = await register(a.access_token);
    const same = await req('POST', URL, a.access_token, { number: n.number });
    const other = await req('POST', URL, b.access_token, { number: n.number });
    for (const res of [same, other]) {
      expect(res.statusCode).toBe(422);
      expect(res.json().error.code).toBe('phone_number_unavailable');
    }
    // Same words whoever holds it: the answer tells B nothing about A.
    expect(other.json().error.message).toBe(same.json().error.message);
    expect(other.body).not.toContain(a.tenant.id);
    expect(other.body).not.toContain(n.id);
    expect(other.body).not.toContain('Tenant A');

    // Moving one of B's numbers onto A's number is refused the same way, and B's number is unchanged.
    const mine = await register(b.access_token);
    const move = await req('PATCH', `${URL}/${mine.id}`, b.access_token, { number: n.number });
    expect(move.statusCode).toBe(422);
    expect(move.json().error.code).toBe('phone_number_unavailable');
    expect((await req('GET', `${URL}/${mine.id}`, b.access_token)).json().number).toBe(mine.number);
    expect((await t.deps.database.db.select().from(phoneNumbers).where(eq(phoneNumbers.number, n.number))).map((r) => r.tenantId)).toEqual([
      a.tenant.id,
    ]);
  });

  it('concurrent registrations of one number give exactly one 201 and 422s, never a 500', async () => {
    // Several numbers, several racers each: a check-then-insert would let two through the check at once.
    for (let round = 0; round < 5; round++) {
      const number = freshNumber();
      const racers = [a, b, a, b].map((s) => req('POST', URL, s.access_token, { number }));
      const results = await Promise.all(racers);
      const statuses = results.map((r) => r.statusCode).sort();
      expect(statuses, results.map((r) => r.body).join('\n')).toEqual([201, 422, 422, 422]);
      for (const r of results.filter((x) => x.statusCode === 422)) expect(r.json().error.code).toBe('phone_number_unavailable');
      expect(await t.deps.database.db.select().from(phoneNumbers).where(eq(phoneNumbers.number, number))).toHaveLength(1);
    }
  });

  it('the service maps the unique violation itself, even when nothing checked first', async () => {
    const number = freshNumber();
    const outcomes = await Promise.allSettled([
      t.deps.phoneNumbers.create(a.tenant.id, { number }),
      t.deps.phoneNumbers.create(b.tenant.id, { number }),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const failed = outcomes.find((o) => o.status === 'rejected');
    expect(failed?.status === 'rejected' && (failed.reason as { code?: string }).code).toBe('phone_number_unavailable');
  });
});

describe('phone numbers: only the Twilio account’s numbers (checked against the fake Twilio)', () => {
  const ACCOUNT = `AC${randomBytes(16).toString('hex')}`;
  const TOKEN = randomBytes(16).toString('hex');
  const OWNED = ['+15550003001', '+15550003002', '+15550003003'];
  let fake: FakeTwilio;
  let v: TestApp;
  let x: Session;
  let y: Session;
  beforeAll(async () => {
    fake = await startFakeTwilio({ accountSid: ACCOUNT, authToken: TOKEN, incomingNumbers: OWNED });
    v = await buildTestApp({
      TWILIO_ACCOUNT_SID: ACCOUNT,
      TWILIO_AUTH_TOKEN: TOKEN,
      TWILIO_API_BASE_URL: fake.baseUrl,
      PHONE_NUMBERS_SKIP_VERIFICATION: 'false',
      PUBLIC_BASE_URL: 'https://voice.example.com',
    });
    ({ a: x, b: y } = await twoTenants(v.app));
  });
  afterAll(async () => {
    await v?.close();
    await fake?.close();
  });
  const vreq = (method: Parameters<typeof call>[1], url: string, token: string, payload?: object) =>
    call(v.app, method, url, token, payload);
  /** The refusal without its request id: what tells one case from another, if anything does. */
  const refusal = (res: { statusCode: number; json(): { error: Record<string, unknown> } }) => {
    const error = { ...res.json().error };
    delete error.request_id;
    return { status: res.statusCode, error };
  };

  it('registers a number of the account, with its SID from Twilio', async () => {
    const res = await vreq('POST', URL, x.access_token, { number: OWNED[0] });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().provider_sid).toBe(fake.incomingNumbers.get(OWNED[0]!));
    expect(fake.requests.some((r) => r.method === 'GET' && r.path === `/2010-04-01/Accounts/${ACCOUNT}/IncomingPhoneNumbers.json`)).toBe(
      true,
    );
  });

  it('refuses a number the account does not have, and one registered by another tenant, with the same answer', async () => {
    const notOwned = await vreq('POST', URL, y.access_token, { number: '+15550009876' });
    expect(refusal(notOwned)).toMatchObject({ status: 422, error: { code: 'phone_number_unavailable' } });
    // OWNED[0] is X's (the test above): Y hears exactly what it heard for a number nobody has.
    const taken = await vreq('POST', URL, y.access_token, { number: OWNED[0] });
    expect(refusal(taken)).toEqual(refusal(notOwned));
    // A partial match on the account is not a match.
    expect(refusal(await vreq('POST', URL, y.access_token, { number: '+1555000300' }))).toEqual(refusal(notOwned));
    // A SID that is not the account's SID for the number is refused the same way.
    expect(refusal(await vreq('POST', URL, y.access_token, { number: OWNED[1], provider_sid: `PN${'0'.repeat(32)}` }))).toEqual(
      refusal(notOwned),
    );
    expect(await v.deps.database.db.select().from(phoneNumbers).where(eq(phoneNumbers.tenantId, y.tenant.id))).toHaveLength(0);
  });

  it('checks a number a PATCH moves to, like a registration', async () => {
    const own = (await vreq('POST', URL, y.access_token, { number: OWNED[2] })).json();
    const notOwned = await vreq('PATCH', `${URL}/${own.id}`, y.access_token, { number: '+15550009877' });
    expect(refusal(notOwned)).toMatchObject({ status: 422, error: { code: 'phone_number_unavailable' } });
    expect(refusal(await vreq('PATCH', `${URL}/${own.id}`, y.access_token, { number: OWNED[0] }))).toEqual(refusal(notOwned));
    // Other changes, and its own number again, need no check.
    expect((await vreq('PATCH', `${URL}/${own.id}`, y.access_token, { number: OWNED[2], friendly_name: 'Desk' })).statusCode).toBe(200);
    const bought = '+15550003004';
    fake.addIncomingNumber(bought);
    const moved = await vreq('PATCH', `${URL}/${own.id}`, y.access_token, { number: bought });
    expect(moved.statusCode, moved.body).toBe(200);
    expect(moved.json()).toMatchObject({ number: bought, provider_sid: fake.incomingNumbers.get(bought) });
    // The new number reaches us; the one left has its webhooks from before registration back.
    expect(fake.numberConfig.get(fake.incomingNumbers.get(bought)!)!.VoiceUrl).toBe(
      'https://voice.example.com/api/v1/webhooks/twilio/voice',
    );
    expect(fake.numberConfig.get(fake.incomingNumbers.get(OWNED[2]!)!)!.VoiceUrl).toBe('https://demo.twilio.com/welcome/voice/');
  });

  it('registering points the number’s voice and status webhooks at us on Twilio; removing gives the old ones back', async () => {
    const number = '+15550003011';
    const sid = fake.addIncomingNumber(number, {
      VoiceUrl: 'https://old.example.com/voice',
      StatusCallback: 'https://old.example.com/status',
    });
    const before = { ...fake.numberConfig.get(sid)! };
    const res = await vreq('POST', URL, x.access_token, { number });
    expect(res.statusCode, res.body).toBe(201);
    expect(fake.numberConfig.get(sid)).toEqual({
      VoiceUrl: 'https://voice.example.com/api/v1/webhooks/twilio/voice',
      VoiceMethod: 'POST',
      StatusCallback: 'https://voice.example.com/api/v1/webhooks/twilio/status',
      StatusCallbackMethod: 'POST',
    });
    expect(fake.requests.filter((r) => r.path === `/2010-04-01/Accounts/${ACCOUNT}/IncomingPhoneNumbers/${sid}.json`)).toMatchObject([
      { method: 'POST', status: 200 },
    ]);
    // Another tenant can neither take it nor remove it; the number keeps pointing at us.
    expect((await vreq('POST', URL, y.access_token, { number })).statusCode).toBe(422);
    expect((await vreq('DELETE', `${URL}/${res.json().id}`, y.access_token)).statusCode).toBe(404);
    expect(fake.numberConfig.get(sid)!.VoiceUrl).toBe('https://voice.example.com/api/v1/webhooks/twilio/voice');
    expect((await vreq('DELETE', `${URL}/${res.json().id}`, x.access_token)).statusCode).toBe(204);
    expect(fake.numberConfig.get(sid)).toEqual(before);
  });

  it('a number Twilio will not configure is not registered; a number the account no longer has is removed anyway', async () => {
    const number = '+15550003012';
    const sid = fake.addIncomingNumber(number);
    fake.fail({ status: 500, code: 20500, message: 'Internal Server Error', path: /\/IncomingPhoneNumbers\/PN[0-9a-f]+\.json$/ });
    const refused = await vreq('POST', URL, x.access_token, { number });
    expect(refused.statusCode).toBe(502);
    expect(await v.deps.database.db.select().from(phoneNumbers).where(eq(phoneNumbers.number, number))).toHaveLength(0);
    const registered = await vreq('POST', URL, x.access_token, { number });
    expect(registered.statusCode, registered.body).toBe(201);
    // Released from the account: Twilio answers 404 for it; the removal still goes through.
    fake.incomingNumbers.delete(number);
    expect((await vreq('DELETE', `${URL}/${registered.json().id}`, x.access_token)).statusCode).toBe(204);
    expect(fake.numberConfig.get(sid)!.VoiceUrl).toBe('https://voice.example.com/api/v1/webhooks/twilio/voice');
  });

  it('without Twilio, and with the check on, numbers cannot be registered (503 twilio_not_configured)', async () => {
    const w = await buildTestApp({ PHONE_NUMBERS_SKIP_VERIFICATION: 'false' });
    try {
      const s = await signup(w.app);
      const res = await call(w.app, 'POST', URL, s.access_token, { number: OWNED[0] });
      expect([res.statusCode, res.json().error.code]).toEqual([503, 'twilio_not_configured']);
    } finally {
      await w.close();
    }
  });
});

describe('phone numbers: tenant isolation', () => {
  it('another tenant’s number is 404 on GET, PATCH and DELETE, and stays as it was', async () => {
    const n = await register(a.access_token, { friendly_name: 'A line' });
    const get = await req('GET', `${URL}/${n.id}`, b.access_token);
    expect(get.statusCode).toBe(404);
    expect(get.json().error.code).toBe('not_found');
    expect((await req('PATCH', `${URL}/${n.id}`, b.access_token, { friendly_name: 'Hijacked', is_active: false })).statusCode).toBe(404);
    // A PATCH to a taken number is still 404, not 409: it must not probe the number either.
    const bOwn = await register(b.access_token);
    expect((await req('PATCH', `${URL}/${n.id}`, b.access_token, { number: bOwn.number })).statusCode).toBe(404);
    expect((await req('DELETE', `${URL}/${n.id}`, b.access_token)).statusCode).toBe(404);
    expect((await req('GET', `${URL}/${n.id}`, a.access_token)).json()).toEqual(n);
    const listB = (await req('GET', `${URL}?limit=200`, b.access_token)).json();
    expect(listB.items.some((x: { id: string }) => x.id === n.id)).toBe(false);
    // The service, called directly, holds the same line.
    await expect(t.deps.phoneNumbers.get(b.tenant.id, n.id)).rejects.toMatchObject({ code: 'not_found' });
  });

  it('an API key manages its own tenant’s numbers; a member may read but not change them', async () => {
    const key = (await req('POST', '/api/v1/api-keys', a.access_token, { name: 'telephony' })).json().key as string;
    const viaKey = await register(key);
    expect((await req('GET', `${URL}/${viaKey.id}`, a.access_token)).statusCode).toBe(200);
    expect((await req('GET', `${URL}/${viaKey.id}`, b.access_token)).statusCode).toBe(404);

    const email = `member-${Date.now()}@example.com`;
    const invited = await req('POST', '/api/v1/users', a.access_token, { email, password: 'correct horse battery', role: 'member' });
    expect(invited.statusCode, invited.body).toBe(201);
    const login = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: 'correct horse battery' } });
    const member = login.json().access_token as string;
    expect((await req('GET', `${URL}/${viaKey.id}`, member)).statusCode).toBe(200);
    expect((await req('POST', URL, member, { number: freshNumber() })).statusCode).toBe(403);
    expect((await req('PATCH', `${URL}/${viaKey.id}`, member, { is_active: false })).statusCode).toBe(403);
    expect((await req('DELETE', `${URL}/${viaKey.id}`, member)).statusCode).toBe(403);
  });

  it('every route needs credentials', async () => {
    const n = await register(a.access_token);
    const anonymous = [
      { method: 'GET' as const, url: URL },
      { method: 'POST' as const, url: URL, payload: { number: freshNumber() } },
      { method: 'GET' as const, url: `${URL}/${n.id}` },
      { method: 'PATCH' as const, url: `${URL}/${n.id}`, payload: { is_active: false } },
      { method: 'DELETE' as const, url: `${URL}/${n.id}` },
    ];
    for (const r of anonymous) {
      const res = await t.app.inject(r);
      expect(res.statusCode, `${r.method} ${r.url}`).toBe(401);
      expect(res.json().error.code).toBe('unauthorized');
    }
    expect((await req('GET', URL, 'not-a-token')).statusCode).toBe(401);
    expect((await req('GET', `${URL}/${n.id}`, a.access_token)).json()).toEqual(n);
  });
});

describe('phone numbers: inbound lookup', () => {
  it('finds the tenant of an active number by exact E.164 match only', async () => {
    const n = await register(b.access_token, { overrides: { greeting: 'B here' }, mode: 'media_stream' });
    const found = await t.deps.phoneNumbers.findForInbound(n.number);
    expect(found?.tenantId).toBe(b.tenant.id);
    expect(found?.phoneNumber).toMatchObject({ id: n.id, number: n.number, mode: 'media_stream', overrides: { greeting: 'B here' } });

    // Near misses find nothing: no normalising on the way in either.
    for (const near of [n.number.slice(1), ` ${n.number}`, `${n.number}0`, n.number.slice(0, -1), `+1 ${n.number.slice(2)}`]) {
      expect(await t.deps.phoneNumbers.findForInbound(near)).toBeNull();
    }

    expect((await req('PATCH', `${URL}/${n.id}`, b.access_token, { is_active: false })).statusCode).toBe(200);
    expect(await t.deps.phoneNumbers.findForInbound(n.number)).toBeNull();
    expect((await req('PATCH', `${URL}/${n.id}`, b.access_token, { is_active: true })).statusCode).toBe(200);
    expect((await t.deps.phoneNumbers.findForInbound(n.number))?.tenantId).toBe(b.tenant.id);

    const inactive = await register(a.access_token, { is_active: false });
    expect(inactive.is_active).toBe(false);
    expect(await t.deps.phoneNumbers.findForInbound(inactive.number)).toBeNull();

    await req('DELETE', `${URL}/${n.id}`, b.access_token);
    expect(await t.deps.phoneNumbers.findForInbound(n.number)).toBeNull();
  });
});
