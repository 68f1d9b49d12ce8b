// Live calls are admitted at one point and bounded (issue 16, finding 9): past the tenant's or the instance's
// limit a web call is refused with a stable code and Retry-After and a phone caller hears that all lines are busy
// (the call recorded, with its reason); a call's place comes back when it ends or when its media never connects.
// And nothing stays `in_progress` forever (finding 16): the sweeper ends calls whose media never connected, calls
// of a lost instance and idle chat sessions, and leaves live ones (a call picked up again included) alone.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calls as callsTable } from '../src/db/schema.js';
import { postSigned } from '../src/sim/simulated-call.js';
import { MemoryCache } from '../src/cache/memory-cache.js';
import { Admission, type AdmissionLimits } from '../src/voice/admission.js';
import { MemoryTransport } from '../src/voice/transports/memory.js';
import { ALL_LINES_BUSY, LOST_AFTER_MS } from '../src/voice/voice-calls.js';
import { type FakeDeepgram, startFakeDeepgram } from './fakes/deepgram.js';
import { bearer, buildTestApp, type Session, signup, type TestApp, waitFor } from './helpers.js';

const ACCOUNT = { accountSid: `AC${'2'.repeat(32)}`, authToken: 'twilio-test-auth-token' };

// Calls that run use Deepgram's fake for speech-to-text (no local engine needed to keep a call up).
let deepgram: FakeDeepgram;
beforeAll(async () => {
  deepgram = await startFakeDeepgram({});
});
afterAll(() => deepgram.close());
const withDeepgram = (t: TestApp, s: Session) =>
  t.deps.settings.putTenant(s.tenant.id, { providers: { stt: { provider: 'deepgram' } }, provider_keys: { deepgram: deepgram.apiKey } });

/** Timers driven by hand: the connect timeout without waiting for it. */
function manualTimers() {
  let pending: { fn: () => void; ms: number }[] = [];
  return {
    setTimeout: (fn: () => void, ms: number) => {
      const t = { fn, ms };
      pending.push(t);
      return t;
    },
    clearTimeout: (h: unknown) => (pending = pending.filter((t) => t !== h)),
    /** Runs every timer due within `ms`. */
    elapse(ms: number) {
      const due = pending.filter((t) => t.ms <= ms);
      pending = pending.filter((t) => t.ms > ms);
      for (const t of due) t.fn();
    },
  };
}

const limits = (l: Partial<AdmissionLimits> = {}): AdmissionLimits => ({
  maxLiveCalls: 10,
  maxLiveCallsPerTenant: 2,
  connectTimeoutMs: 1000,
  leaseMs: 30_000,
  ...l,
});

describe('Admission', () => {
  it('refuses past the tenant’s and the instance’s limits with distinct codes and Retry-After; a release frees the place once', async () => {
    const a = new Admission(limits({ maxLiveCalls: 3 }), { leases: new MemoryCache() });
    const first = await a.admit('t1', 'web');
    await a.admit('t1', 'inbound');
    await expect(a.admit('t1', 'outbound')).rejects.toMatchObject({ code: 'concurrency_limit', status: 429, retryAfterS: 5 });
    await a.admit('t2', 'web');
    await expect(a.admit('t3', 'web')).rejects.toMatchObject({ code: 'calls_at_capacity', status: 503, retryAfterS: 5 });
    first.release();
    first.release();
    expect([a.liveCalls, a.liveCallsOf('t1'), await a.concurrentCallsOf('t1')]).toEqual([2, 1, 1]);
    await a.admit('t3', 'web');
    await expect(a.admit('t3', 'web')).rejects.toMatchObject({ code: 'calls_at_capacity' });
  });

  it('a reservation is released when its media never connects; a claimed one stays until the session releases it', async () => {
    const timers = manualTimers();
    const b = new Admission(limits(), { leases: new MemoryCache(), timers });
    b.reserve('never-connects', await b.admit('t1', 'web'));
    b.reserve('connects', await b.admit('t1', 'web'));
    const claimed = b.claim('connects')!;
    expect(claimed.kind).toBe('web');
    expect(b.claim('connects')).toBeUndefined();
    await expect(b.admit('t1', 'web')).rejects.toMatchObject({ code: 'concurrency_limit' });
    timers.elapse(1000);
    // The unclaimed one is free again; the connected call still holds its place.
    expect(b.liveCallsOf('t1')).toBe(1);
    expect(b.claim('never-connects')).toBeUndefined();
    claimed.release();
    expect(b.liveCalls).toBe(0);
    // cancel(): a call that ended before connecting gives its place back at once.
    b.reserve('ended-early', await b.admit('t1', 'outbound'));
    b.cancel('ended-early');
    expect(b.liveCalls).toBe(0);
  });
});

describe('new calls past the limits', () => {
  let t: TestApp;
  let base: string;
  let a: Session;
  let b: Session;
  let c: Session;
  const webCall = (s: Session) => t.app.inject({ method: 'POST', url: '/api/v1/calls/web', headers: bearer(s.access_token), payload: {} });
  const aCalls: string[] = [];

  beforeAll(async () => {
    t = await buildTestApp({
      MAX_LIVE_CALLS: '3',
      MAX_LIVE_CALLS_PER_TENANT: '2',
      TWILIO_ACCOUNT_SID: ACCOUNT.accountSid,
      TWILIO_AUTH_TOKEN: ACCOUNT.authToken,
      DEEPGRAM_BASE_URL: deepgram.url,
    });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const addr = t.app.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    [a, b, c] = [await signup(t.app), await signup(t.app), await signup(t.app)];
    await withDeepgram(t, a);
  });
  afterAll(() => t.close());

  it('web calls: 429 concurrency_limit past the tenant’s limit, 503 calls_at_capacity past the instance’s, both with Retry-After', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await webCall(a);
      expect(res.statusCode, res.body).toBe(201);
      aCalls.push(res.json().call_id);
    }
    const before = await t.deps.database.db.$count(callsTable);
    const tenantFull = await webCall(a);
    expect(tenantFull.statusCode).toBe(429);
    expect(tenantFull.json().error.code).toBe('concurrency_limit');
    expect(tenantFull.headers['retry-after']).toBe('5');
    // A refused web call leaves no row behind.
    expect(await t.deps.database.db.$count(callsTable)).toBe(before);
    // Another tenant still gets in, until the instance is full; then everyone is refused.
    expect((await webCall(b)).statusCode).toBe(201);
    const instanceFull = await webCall(c);
    expect(instanceFull.statusCode).toBe(503);
    expect(instanceFull.json().error.code).toBe('calls_at_capacity');
    expect(instanceFull.headers['retry-after']).toBe('5');
    expect(await t.deps.database.db.$count(callsTable)).toBe(before + 1);
  });

  it('a phone call past the limit hears that all lines are busy, and the call is recorded busy with its reason', async () => {
    const number = '+15550002222';
    const registered = await t.app.inject({
      method: 'POST',
      url: '/api/v1/phone-numbers',
      headers: bearer(a.access_token),
      payload: { number },
    });
    expect(registered.statusCode, registered.body).toBe(201);
    const callSid = `CA${'b'.repeat(32)}`;
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
    expect(twiml).toMatch(/<Say[^>]*>Sorry, all our lines are busy\. Please call again later\. Goodbye\.<\/Say>/);
    expect(twiml).toContain('<Hangup/>');
    expect(twiml).not.toContain('<Stream');
    const [row] = await t.deps.database.db.select().from(callsTable).where(eq(callsTable.providerCallSid, callSid));
    expect(row).toMatchObject({ tenantId: a.tenant.id, direction: 'inbound', status: 'busy' });
    expect(row!.endedAt).not.toBeNull();
    const events = await t.deps.calls.events(a.tenant.id, row!.id);
    const ended = events.find((e) => e.type === 'call.ended');
    expect(ended?.extraData).toMatchObject({ status: 'busy', reason: expect.stringMatching(/^(concurrency_limit|calls_at_capacity): /) });
    // The refusal is its own event, before the end; no pipeline ran (no turn, nothing connected).
    expect(events.map((e) => e.type)).toEqual(['call.started', 'call.refused', 'call.ended']);
    expect(events[1]!.extraData).toEqual({ reason: expect.stringMatching(/^(concurrency_limit|calls_at_capacity)$/) });
  });

  it('a call’s place comes back when it ends: its session held the place reserved for it, and released it', async () => {
    const callId = aCalls[0]!;
    // The media connects (the browser's websocket, here the in-memory transport): the reserved place is claimed.
    const transport = new MemoryTransport(16000);
    const running = t.deps.voice.run(a.tenant.id, callId, transport);
    await waitFor('the session to run', async () => (t.deps.voice.active === 1 ? true : undefined));
    expect([t.deps.admission.liveCalls, t.deps.admission.liveCallsOf(a.tenant.id)]).toEqual([3, 2]);
    expect((await webCall(c)).statusCode).toBe(503);
    transport.hangup();
    expect(await running).toMatchObject({ status: 'completed' });
    expect([t.deps.admission.liveCalls, t.deps.admission.liveCallsOf(a.tenant.id)]).toEqual([2, 1]);
    expect((await webCall(c)).statusCode).toBe(201);
  }, 60_000);
});

describe('calls that never connect, calls of a lost instance, idle chats', () => {
  let t: TestApp;
  let s: Session;

  beforeAll(async () => {
    t = await buildTestApp({ MAX_LIVE_CALLS_PER_TENANT: '1', CALL_CONNECT_TIMEOUT_SECONDS: '1', DEEPGRAM_BASE_URL: deepgram.url });
    // Sweeps run when the test says, not on the periodic timer.
    await t.deps.sweeper.stop();
    s = await signup(t.app);
    await withDeepgram(t, s);
  });
  afterAll(() => t.close());

  const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000);
  async function insertCall(values: {
    direction: 'inbound' | 'outbound' | 'web' | 'chat';
    status?: string;
    createdAt: Date;
    lastSeenAt?: Date;
    endedAt?: Date;
  }) {
    const [row] = await t.deps.database.db
      .insert(callsTable)
      .values({ tenantId: s.tenant.id, status: 'in_progress', startedAt: values.createdAt, answeredAt: values.createdAt, ...values })
      .returning();
    return row!.id;
  }
  const rowOf = async (id: string) => (await t.deps.database.db.select().from(callsTable).where(eq(callsTable.id, id)))[0]!;
  const endedEvents = async (id: string) =>
    (await t.deps.calls.events(s.tenant.id, id)).filter((e) => e.type === 'call.ended').map((e) => e.extraData);

  it('a web call whose websocket never opens gives its place back after the connect timeout', async () => {
    const webCall = () => t.app.inject({ method: 'POST', url: '/api/v1/calls/web', headers: bearer(s.access_token), payload: {} });
    const first = await webCall();
    expect(first.statusCode, first.body).toBe(201);
    expect((await webCall()).statusCode).toBe(429);
    await waitFor('the reservation to lapse', async () => (t.deps.admission.liveCallsOf(s.tenant.id) === 0 ? true : undefined), 10_000);
    expect((await webCall()).statusCode).toBe(201);
    // The lapsed call's token no longer connects either: the sweeper ends it (no media) once past the timeout.
    await t.deps.sweeper.sweep(new Date(Date.now() + 2000));
    expect(await rowOf(first.json().call_id)).toMatchObject({ status: 'failed' });
    expect(await endedEvents(first.json().call_id)).toEqual([expect.objectContaining({ status: 'failed', reason: 'no_media' })]);
  });

  it('one sweep ends what nobody carries, with status and reason, and leaves live calls and chats alone; concurrent sweeps end each once', async () => {
    const noMedia = await insertCall({ direction: 'web', createdAt: minutesAgo(10) });
    const neverAnswered = await insertCall({ direction: 'outbound', status: 'ringing', createdAt: minutesAgo(10) });
    const lost = await insertCall({
      direction: 'inbound',
      createdAt: minutesAgo(10),
      lastSeenAt: new Date(Date.now() - LOST_AFTER_MS - 60_000),
    });
    const idleChat = await insertCall({ direction: 'chat', createdAt: minutesAgo(120), lastSeenAt: minutesAgo(60) });
    const activeChat = await insertCall({ direction: 'chat', createdAt: minutesAgo(120), lastSeenAt: minutesAgo(1) });
    const live = await insertCall({ direction: 'web', createdAt: minutesAgo(10), lastSeenAt: new Date(Date.now() - 10_000) });
    const justAdmitted = await insertCall({ direction: 'web', createdAt: new Date() });
    const alreadyEnded = await insertCall({ direction: 'web', status: 'completed', createdAt: minutesAgo(10), endedAt: minutesAgo(9) });

    const swept = await Promise.all([t.deps.sweeper.sweep(), t.deps.sweeper.sweep()]);
    expect(swept[0]! + swept[1]!).toBe(4);

    expect(await rowOf(noMedia)).toMatchObject({ status: 'failed', durationMs: 0 });
    expect(await endedEvents(noMedia)).toEqual([expect.objectContaining({ status: 'failed', reason: 'no_media' })]);
    expect(await rowOf(neverAnswered)).toMatchObject({ status: 'failed' });
    expect(await endedEvents(lost)).toEqual([expect.objectContaining({ status: 'failed', reason: 'instance_lost' })]);
    // A lost call lasted until it was last seen.
    expect((await rowOf(lost)).durationMs).toBeGreaterThan(60_000);
    expect(await rowOf(idleChat)).toMatchObject({ status: 'completed' });
    expect(await endedEvents(idleChat)).toEqual([expect.objectContaining({ status: 'completed', reason: 'idle' })]);
    for (const id of [activeChat, live, justAdmitted]) expect(await rowOf(id)).toMatchObject({ status: 'in_progress', endedAt: null });
    expect(await rowOf(alreadyEnded)).toMatchObject({ status: 'completed' });
    expect(await endedEvents(alreadyEnded)).toEqual([]);
  });

  it('a chat message keeps its session alive; a silent one is ended as idle and takes no more messages', async () => {
    const chat = (message: string, sessionId?: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/v1/chat',
        headers: bearer(s.access_token),
        payload: { message, ...(sessionId && { session_id: sessionId }) },
      });
    const opened = [await chat('Hello?'), await chat('Anyone there?')].map((r) => r.json().session_id as string);
    // Both were last heard from an hour ago; then one of them gets a message.
    for (const id of opened)
      await t.deps.database.db
        .update(callsTable)
        .set({ lastSeenAt: minutesAgo(60) })
        .where(eq(callsTable.id, id));
    expect((await chat('Still here.', opened[0])).statusCode).toBe(200);
    await t.deps.sweeper.sweep();
    expect(await rowOf(opened[0]!)).toMatchObject({ status: 'in_progress', endedAt: null });
    expect(await rowOf(opened[1]!)).toMatchObject({ status: 'completed' });
    expect(await endedEvents(opened[1]!)).toEqual([expect.objectContaining({ reason: 'idle' })]);
    expect((await chat('Hello again?', opened[1])).statusCode).toBe(409);
  });

  it('a call whose media connects when the tenant has no place left is closed with the busy message and ends busy', async () => {
    await waitFor(
      'earlier calls’ places to lapse',
      async () => (t.deps.admission.liveCallsOf(s.tenant.id) === 0 ? true : undefined),
      10_000,
    );
    const callId = await insertCall({ direction: 'web', createdAt: new Date() });
    // Its place was reserved on another instance; here the tenant's only place is taken.
    const other = await t.deps.admission.admit(s.tenant.id, 'web');
    try {
      const transport = new MemoryTransport(16000);
      expect(await t.deps.voice.run(s.tenant.id, callId, transport)).toMatchObject({ status: 'busy', reason: 'concurrency_limit' });
      expect(transport.closedReason).toBe(ALL_LINES_BUSY);
      expect(await rowOf(callId)).toMatchObject({ status: 'busy' });
      expect(t.deps.admission.liveCallsOf(s.tenant.id)).toBe(1);
    } finally {
      other.release();
    }
  });

  it('a call picked up again after its instance was lost beats at once and is not swept while it runs', async () => {
    // Its instance stopped 5 minutes ago, mid-call: the sweeper would end it as lost...
    const callId = await insertCall({ direction: 'web', createdAt: minutesAgo(10), lastSeenAt: minutesAgo(5) });
    // ...but it is picked up again first (a browser reconnecting), and is live here.
    await waitFor(
      'earlier calls’ places to lapse',
      async () => (t.deps.admission.liveCallsOf(s.tenant.id) === 0 ? true : undefined),
      10_000,
    );
    const transport = new MemoryTransport(16000);
    const running = t.deps.voice.run(s.tenant.id, callId, transport);
    await waitFor('the session to run', async () => (t.deps.voice.active === 1 ? true : undefined));
    // Swept the moment it runs, before any periodic heartbeat: it must already count as seen.
    await t.deps.sweeper.sweep();
    expect(await rowOf(callId)).toMatchObject({ status: 'in_progress', endedAt: null });
    transport.hangup();
    expect(await running).toMatchObject({ status: 'completed' });
    expect(await rowOf(callId)).toMatchObject({ status: 'completed' });
  }, 60_000);
});
