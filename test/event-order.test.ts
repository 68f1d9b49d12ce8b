// Events in order (issue 22): a phone call's recording is stored before its end, also when Twilio's status callback
// (the caller hung up) arrives while the session is still writing the recording: `recording.saved` comes before
// `call.ended` in the audit trail, and `recording.ready` before `call.ended` in the webhooks, with
// `recording_available: true` (voice/README.md). And `call.ended` carries the call's whole cost: when the session
// takes longer than the callback waits (a slow upload), the end still waits for it, so the call's last usage (the
// line's seconds, the last speech) is in the ledger before the event is built.
import { asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookEvents } from '../src/db/schema.js';
import { postSigned } from '../src/sim/simulated-call.js';
import { MemoryTransport } from '../src/voice/transports/memory.js';
import { type FakeDeepgram, startFakeDeepgram } from './fakes/deepgram.js';
import { buildTestApp, type Session, signup, type TestApp, waitFor } from './helpers.js';

const ACCOUNT = { accountSid: `AC${'5'.repeat(32)}`, authToken: 'twilio-test-auth-token' };
let t: TestApp;
let deepgram: FakeDeepgram;
let s: Session;
let base = '';

beforeAll(async () => {
  deepgram = await startFakeDeepgram({});
  t = await buildTestApp({
    TWILIO_ACCOUNT_SID: ACCOUNT.accountSid,
    TWILIO_AUTH_TOKEN: ACCOUNT.authToken,
    TWILIO_API_BASE_URL: 'http://127.0.0.1:9',
  });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const addr = t.app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  s = await signup(t.app);
  await t.deps.settings.putTenant(s.tenant.id, {
    greeting: 'Hello, Sunrise clinic.',
    providers: { stt: { provider: 'deepgram' } },
    provider_keys: { deepgram: deepgram.apiKey },
  });
});
afterAll(async () => {
  await t.close();
  await deepgram.close();
});

/** An inbound phone call (Twilio sid CA + 32 × `ch`) carried by a session, past its greeting. */
async function liveInboundCall(ch: string) {
  const sid = `CA${ch.repeat(32)}`;
  const call = await t.deps.calls.open(s.tenant.id, {
    direction: 'inbound',
    status: 'in_progress',
    fromNumber: '+14155550100',
    toNumber: '+15550001111',
    providerCallSid: sid,
  });
  const running = t.deps.voice.run(s.tenant.id, call.id, new MemoryTransport(8000));
  await waitFor('the greeting', async () => ((await t.deps.calls.transcript(s.tenant.id, call.id)).length ? true : undefined));
  return { sid, call, running };
}

describe('event order at the end of a phone call', () => {
  it('Twilio’s completed callback while the recording is being stored: recording first, then the end', async () => {
    const { sid, call, running } = await liveInboundCall('e');
    // Storage takes its time (an S3 upload): the status callback lands while the recording is still being stored.
    const store = t.deps.recordings;
    const put = store.put.bind(store);
    store.put = async (...args) => {
      await new Promise((r) => setTimeout(r, 1500));
      return put(...args);
    };
    try {
      const res = await postSigned(ACCOUNT, `${base}/api/v1/webhooks/twilio/status`, {
        AccountSid: ACCOUNT.accountSid,
        CallSid: sid,
        CallStatus: 'completed',
        CallDuration: '3',
      });
      expect(res.status).toBe(204);
      await running;
    } finally {
      store.put = put;
    }
    const audit = (await t.deps.calls.events(s.tenant.id, call.id)).map((e) => e.type);
    expect(audit.indexOf('recording.saved')).toBeGreaterThan(-1);
    expect(audit.indexOf('recording.saved')).toBeLessThan(audit.indexOf('call.ended'));
    const published = await t.deps.database.db
      .select({ type: webhookEvents.type, data: webhookEvents.data })
      .from(webhookEvents)
      .where(eq(webhookEvents.callId, call.id))
      .orderBy(asc(webhookEvents.createdAt));
    const types = published.map((e) => e.type).filter((x) => x !== 'transcript.turn');
    expect(types).toEqual(['call.started', 'recording.ready', 'call.ended']);
    expect(published.find((e) => e.type === 'call.ended')!.data).toMatchObject({
      status: 'completed',
      reason: 'twilio: completed',
      recording_available: true,
    });
    expect(await t.deps.calls.get(s.tenant.id, call.id)).toMatchObject({ status: 'completed', endedReason: 'twilio: completed' });
  }, 60_000);

  it('a session slower to end than the callback waits: the callback answers, and call.ended still has the whole usage', async () => {
    const { sid, call, running } = await liveInboundCall('f');
    // The callback waits 100 ms; storing the recording (before the usage and the end are written) takes 1.5 s.
    const telephony = t.deps.telephony;
    telephony.sessionEndWaitMs = 100;
    const store = t.deps.recordings;
    const put = store.put.bind(store);
    let release!: () => void;
    const stored = new Promise<void>((r) => (release = r));
    store.put = async (...args) => {
      await stored;
      return put(...args);
    };
    try {
      const res = await postSigned(ACCOUNT, `${base}/api/v1/webhooks/twilio/status`, {
        AccountSid: ACCOUNT.accountSid,
        CallSid: sid,
        CallStatus: 'completed',
        CallDuration: '3',
      });
      expect(res.status).toBe(204);
      // Answered while the session is still ending: the call is not ended by the callback meanwhile.
      expect((await t.deps.calls.get(s.tenant.id, call.id)).endedAt).toBeNull();
      release();
      await running;
    } finally {
      store.put = put;
      telephony.sessionEndWaitMs = 5000;
    }
    // The callback's status is applied after (changing nothing: the session ended the call).
    await waitFor('twilio.status', async () =>
      (await t.deps.calls.events(s.tenant.id, call.id)).find((e) => e.type === 'twilio.status') ? true : undefined,
    );
    const published = await t.deps.database.db
      .select({ type: webhookEvents.type, data: webhookEvents.data })
      .from(webhookEvents)
      .where(eq(webhookEvents.callId, call.id))
      .orderBy(asc(webhookEvents.createdAt));
    const ended = published.find((e) => e.type === 'call.ended')!.data as { cost: { components: Record<string, unknown> } };
    const final = await t.deps.usage.callCost(s.tenant.id, call.id);
    // The line's seconds and the speech recognised are in the event, as they are in the final ledger.
    expect(final.usage.map((u) => u.component)).toEqual(expect.arrayContaining(['telephony', 'stt']));
    expect(ended.cost).toEqual(final.cost);
    expect(Object.keys(ended.cost.components)).toEqual(expect.arrayContaining(['telephony', 'stt']));
    expect(published.find((e) => e.type === 'call.ended')!.data).toMatchObject({ status: 'completed', recording_available: true });
  }, 60_000);

  it('the call’s end is written once: Twilio’s completed callbacks after the session ended it write only their event', async () => {
    const { sid, call, running } = await liveInboundCall('a');
    const calls = t.deps.calls;
    const end = calls.end.bind(calls);
    let ends = 0;
    calls.end = async (...args) => {
      if (args[1] === call.id) ends++;
      return end(...args);
    };
    const completed = () =>
      postSigned(ACCOUNT, `${base}/api/v1/webhooks/twilio/status`, {
        AccountSid: ACCOUNT.accountSid,
        CallSid: sid,
        CallStatus: 'completed',
        CallDuration: '3',
      });
    try {
      // While the session runs (it is told to hang up and ends the call), then again once it has ended.
      expect((await completed()).status).toBe(204);
      await running;
      expect((await completed()).status).toBe(204);
    } finally {
      calls.end = end;
    }
    expect(ends).toBe(1);
    const statuses = (await calls.events(s.tenant.id, call.id)).filter((e) => e.type === 'twilio.status').map((e) => e.extraData);
    expect(statuses).toEqual([
      expect.objectContaining({ status: 'completed', applied: false }),
      expect.objectContaining({ applied: false }),
    ]);
    expect(await calls.get(s.tenant.id, call.id)).toMatchObject({ status: 'completed', endedReason: 'twilio: completed' });
  }, 60_000);
});
