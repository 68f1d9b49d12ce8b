// A tenant's concurrent calls are capped across instances (issue 18, "Limits, enforced live"): leases in Redis (or
// in-process without it) that each instance renews while its calls live, so two instances together hold the cap, and
// the calls of an instance that dies stop counting within the lease time (time moved by hand, no waiting). Over the
// cap a phone caller hears that all lines are busy (recorded, refused, no pipeline), and web and outbound calls get
// 429 concurrency_limit. The platform admin sets a tenant's own cap.
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cache } from '../src/cache/cache.js';
import { MemoryCache } from '../src/cache/memory-cache.js';
import { RedisCache } from '../src/cache/redis-cache.js';
import { calls as callsTable } from '../src/db/schema.js';
import { postSigned } from '../src/sim/simulated-call.js';
import { Admission, type Lease } from '../src/voice/admission.js';
import { MemoryTransport } from '../src/voice/transports/memory.js';
import { type FakeDeepgram, startFakeDeepgram } from './fakes/deepgram.js';
import { bearer, buildTestApp, type Session, signup, type TestApp, TEST_REDIS_URL, waitFor } from './helpers.js';

const LEASE_MS = 30_000;

/** Two instances of one deployment: their own admission (capacity, heartbeat), one shared lease store, one clock. */
function twoInstances(store: Cache, cap: number) {
  const clock = { ms: 1_000_000 };
  const make = () =>
    new Admission(
      { maxLiveCalls: 100, maxLiveCallsPerTenant: 20, connectTimeoutMs: 60_000, leaseMs: LEASE_MS },
      { leases: store, now: () => clock.ms, tenantCap: async (tenantId) => (tenantId.startsWith('capped') ? cap : null) },
    );
  return { clock, a: make(), b: make() };
}

describe.each([
  ['Redis', () => new RedisCache(TEST_REDIS_URL, `test:${randomUUID()}:`)],
  ['in-process', () => new MemoryCache()],
] as const)('leases shared by two instances (%s)', (_name, makeStore) => {
  let store: Cache;
  beforeAll(async () => {
    store = makeStore();
    if (store instanceof RedisCache) await store.connect();
  });
  afterAll(() => store.close());

  it('the cap holds across instances, also when both admit at once', async () => {
    const { a, b } = twoInstances(store, 2);
    const tenant = `capped-${randomUUID()}`;
    const tries = await Promise.allSettled([...Array(8).keys()].map((i) => (i % 2 ? a : b).admit(tenant, 'web')));
    const admitted = tries.filter((r): r is PromiseFulfilledResult<Lease> => r.status === 'fulfilled');
    expect(admitted).toHaveLength(2);
    for (const r of tries)
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'concurrency_limit', status: 429, retryAfterS: 5 });
    expect(await a.concurrentCallsOf(tenant)).toBe(2);
    // Another tenant (the platform default, 20) is not affected.
    await b.admit(`other-${randomUUID()}`, 'web');
    // A call ending on one instance frees a place for the other.
    admitted[0]!.value.release();
    await waitFor('the release to reach the store', async () => ((await b.concurrentCallsOf(tenant)) === 1 ? true : undefined));
    const again = await b.admit(tenant, 'inbound');
    await expect(a.admit(tenant, 'outbound')).rejects.toMatchObject({ code: 'concurrency_limit' });
    again.release();
    admitted[1]!.value.release();
  });

  it('an instance that dies (stops renewing) frees its calls’ places within the lease; a live one keeps them', async () => {
    const { clock, a, b } = twoInstances(store, 2);
    const tenant = `capped-${randomUUID()}`;
    // A carries one call, B one: the tenant is at its cap.
    await a.admit(tenant, 'web');
    await b.admit(tenant, 'web');
    await expect(b.admit(tenant, 'web')).rejects.toMatchObject({ code: 'concurrency_limit' });
    // A is killed: it renews nothing from now on. B's heartbeat goes on every third of the lease.
    for (let i = 0; i < 2; i++) {
      clock.ms += LEASE_MS / 3;
      await b.renew();
    }
    // Just before A's lease runs out its call still counts...
    clock.ms += LEASE_MS / 3 - 1;
    await b.renew();
    expect(await b.concurrentCallsOf(tenant)).toBe(2);
    await expect(b.admit(tenant, 'web')).rejects.toMatchObject({ code: 'concurrency_limit' });
    // ...and once it has, only B's live call counts: one place is free, and only one.
    clock.ms += 2;
    expect(await b.concurrentCallsOf(tenant)).toBe(1);
    await b.admit(tenant, 'web');
    await expect(b.admit(tenant, 'web')).rejects.toMatchObject({ code: 'concurrency_limit' });
    // B's first call has lived well past one lease time and still counts, because B renewed it.
    clock.ms += LEASE_MS / 3;
    await b.renew();
    expect(await b.concurrentCallsOf(tenant)).toBe(2);
  });
});

it('with the shared count unreachable, calls are admitted on this instance’s capacity alone, and said so', async () => {
  const down = new Error('connect ECONNREFUSED');
  const errors: unknown[] = [];
  const fail = () => Promise.reject(down);
  const a = new Admission(
    { maxLiveCalls: 2, maxLiveCallsPerTenant: 1, connectTimeoutMs: 60_000, leaseMs: LEASE_MS },
    {
      leases: { acquireLease: fail, renewLeases: fail, releaseLease: fail, countLeases: fail },
      onStoreError: (err) => errors.push(err),
    },
  );
  const first = await a.admit('t', 'web');
  await a.admit('t', 'web');
  await expect(a.admit('t', 'web')).rejects.toMatchObject({ code: 'calls_at_capacity' });
  await a.renew();
  first.release();
  await waitFor('the release to be tried', async () => (errors.length >= 4 ? true : undefined));
  expect(errors.every((e) => e === down)).toBe(true);
});

const ACCOUNT = { accountSid: `AC${'7'.repeat(32)}`, authToken: 'twilio-test-auth-token' };
const ADMIN = { email: 'ops-capacity@platform.example', password: 'platform admin password' };

describe('a tenant capped at 2 concurrent calls (Redis)', () => {
  let deepgram: FakeDeepgram;
  let t: TestApp;
  let base: string;
  let s: Session;
  let root: string;
  const number = '+15550007777';
  const running: { transport: MemoryTransport; done: Promise<unknown> }[] = [];
  const webCall = () => t.app.inject({ method: 'POST', url: '/api/v1/calls/web', headers: bearer(s.access_token), payload: {} });
  const limits = (id: string, payload?: object) =>
    t.app.inject({ method: payload ? 'PATCH' : 'GET', url: `/api/v1/admin/tenants/${id}/limits`, headers: bearer(root), payload });

  beforeAll(async () => {
    deepgram = await startFakeDeepgram({});
    t = await buildTestApp({
      REDIS_URL: TEST_REDIS_URL,
      TWILIO_ACCOUNT_SID: ACCOUNT.accountSid,
      TWILIO_AUTH_TOKEN: ACCOUNT.authToken,
      DEEPGRAM_BASE_URL: deepgram.url,
      PLATFORM_ADMIN_EMAIL: ADMIN.email,
      PLATFORM_ADMIN_PASSWORD: ADMIN.password,
    });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const addr = t.app.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    root = (await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: ADMIN })).json().access_token;
    s = await signup(t.app);
    await t.deps.settings.putTenant(s.tenant.id, {
      providers: { stt: { provider: 'deepgram' } },
      provider_keys: { deepgram: deepgram.apiKey },
    });
    expect(
      (await t.app.inject({ method: 'POST', url: '/api/v1/phone-numbers', headers: bearer(s.access_token), payload: { number } }))
        .statusCode,
    ).toBe(201);
  });
  afterAll(async () => {
    for (const r of running) r.transport.hangup();
    await Promise.allSettled(running.map((r) => r.done));
    await t.close();
    await deepgram.close();
  });

  it('the platform admin sets the cap (others may not); null goes back to the platform default', async () => {
    expect((await limits(s.tenant.id)).json()).toEqual({ max_concurrent_calls: null, effective: { max_concurrent_calls: 20 } });
    const set = await limits(s.tenant.id, { max_concurrent_calls: 2 });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json()).toEqual({ max_concurrent_calls: 2, effective: { max_concurrent_calls: 2 } });
    expect((await limits(s.tenant.id, { max_concurrent_calls: -1 })).statusCode).toBe(422);
    expect((await limits(randomUUID(), { max_concurrent_calls: 2 })).statusCode).toBe(404);
    // A tenant's own admin cannot raise it.
    const own = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/admin/tenants/${s.tenant.id}/limits`,
      headers: bearer(s.access_token),
      payload: { max_concurrent_calls: 50 },
    });
    expect(own.statusCode).toBe(403);
    const other = await signup(t.app);
    expect((await limits(other.tenant.id, { max_concurrent_calls: null })).json().effective).toEqual({ max_concurrent_calls: 20 });
  });

  it('two calls run; a third is refused: the phone caller hears all lines are busy, web and outbound get 429', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await webCall();
      expect(res.statusCode, res.body).toBe(201);
      const transport = new MemoryTransport(16000);
      running.push({ transport, done: t.deps.voice.run(s.tenant.id, res.json().call_id, transport) });
    }
    await waitFor('both calls to run', async () => (t.deps.voice.active === 2 ? true : undefined));
    expect(await t.deps.admission.concurrentCallsOf(s.tenant.id)).toBe(2);

    // An inbound phone call: polite TwiML, no stream, the call recorded busy with its refusal.
    const callSid = `CA${randomUUID().replace(/-/g, '')}`;
    const res = await postSigned(ACCOUNT, `${base}/api/v1/webhooks/twilio/voice`, {
      AccountSid: ACCOUNT.accountSid,
      CallSid: callSid,
      From: '+15557654321',
      To: number,
      CallStatus: 'ringing',
      Direction: 'inbound',
    });
    expect(res.status).toBe(200);
    const twiml = await res.text();
    expect(twiml).toMatch(/<Say[^>]*>Sorry, all our lines are busy\. Please call again later\. Goodbye\.<\/Say>\s*<Hangup\/>/);
    expect(twiml).not.toContain('<Stream');
    const [row] = await t.deps.database.db.select().from(callsTable).where(eq(callsTable.providerCallSid, callSid));
    expect(row).toMatchObject({ tenantId: s.tenant.id, direction: 'inbound', status: 'busy' });
    const events = await t.deps.calls.events(s.tenant.id, row!.id);
    expect(events.map((e) => [e.type, e.extraData])).toEqual([
      ['call.started', { direction: 'inbound' }],
      ['call.refused', { reason: 'concurrency_limit' }],
      ['call.ended', { status: 'busy', reason: expect.stringMatching(/^concurrency_limit: /) }],
    ]);
    // No pipeline started for it: still the two sessions.
    expect(t.deps.voice.active).toBe(2);

    const web = await webCall();
    expect(web.statusCode).toBe(429);
    expect(web.json().error.code).toBe('concurrency_limit');
    expect(web.headers['retry-after']).toBe('5');
    const outbound = await t.app.inject({
      method: 'POST',
      url: '/api/v1/calls',
      headers: bearer(s.access_token),
      payload: { to: '+15551230000' },
    });
    expect(outbound.statusCode, outbound.body).toBe(429);
    expect(outbound.json().error.code).toBe('concurrency_limit');
    expect(outbound.headers['retry-after']).toBe('5');

    // One call ends: its place is free again, for one call.
    running[0]!.transport.hangup();
    await running[0]!.done;
    await waitFor('the place to come back', async () => ((await t.deps.admission.concurrentCallsOf(s.tenant.id)) === 1 ? true : undefined));
    expect((await webCall()).statusCode).toBe(201);
    expect((await webCall()).statusCode).toBe(429);
  }, 60_000);
});
