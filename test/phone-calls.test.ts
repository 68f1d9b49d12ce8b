// Phone and browser calls end to end, on the local engines (pocketsphinx, the local responder, espeak-ng) with
// speech made by espeak-ng: Twilio's side is simulated exactly (signed webhooks, the TwiML's media stream at real
// time, marks echoed after playout) and its REST API is a strict fake. Inbound and outbound calls with a grounded
// answer, barge-in, a keypad digit, hang-up, status callbacks and the recording; every webhook refusing bad
// signatures; hang-up from another instance through Redis. The wire pass (WIRE_PASS) skips the three real-time calls:
// their subject is the audio path, and the rows they write (call, turns, events, status callbacks) are written over
// the wire by this file's status-callback, transfer and refusal tests and by chat, call-events and webhook tests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RedisCache } from '../src/cache/redis-cache.js';
import { buildApp } from '../src/http/app.js';
import { SimulatedCall, postSigned } from '../src/sim/simulated-call.js';
import { Telephony } from '../src/telephony/telephony.js';
import { twilioSignature } from '../src/telephony/twilio-signature.js';
import { CallTokenService } from '../src/services/call-tokens.js';
import { CallControl } from '../src/voice/call-control.js';
import { VoiceCalls } from '../src/voice/voice-calls.js';
import { type FakeCall, type FakeTwilio, startFakeTwilio } from './fakes/twilio.js';
import { speech as speakAs } from './fixtures/speech.js';
import { buildTestApp, type Session, signup, TEST_REDIS_URL, type TestApp, waitFor, WIRE_PASS } from './helpers.js';
import { calls as callsTable, webhookEvents } from '../src/db/schema.js';
import { asc, eq } from 'drizzle-orm';

const ACCOUNT = { accountSid: `AC${'1'.repeat(32)}`, authToken: 'twilio-test-auth-token' };
const NUMBER = '+15550001111';
const CALLER = '+15557654321';
const CLINIC =
  '# Opening hours\n\nThe Sunrise clinic opens at seven thirty on weekdays. On Saturdays the clinic closes at noon.\n\n' +
  '# Parking\n\nFree parking is in the garage on Elm Street, behind the clinic.';

let t: TestApp;
let twilio: FakeTwilio;
let base: string;
/** What the fake Twilio's outbound calls do once answered (set per test). */
let onOutbound: (call: FakeCall, twiml: string, signal: AbortSignal) => Promise<void> = async () => {};

/** The caller's words as speech: 8 kHz for phones, 16 kHz for browsers. */
const speech = (text: string, sampleRate = 8000) => speakAs(text, sampleRate);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies of many shapes, checked by the assertions
async function api(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token && { authorization: `Bearer ${token}` }), ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

async function clinicTenant(number?: string): Promise<Session> {
  const s = await signup(t.app);
  const doc = await api('POST', '/api/v1/documents', s.access_token, { title: 'Clinic', content: CLINIC });
  expect(doc.status).toBe(202);
  await waitFor('document ready', async () =>
    (await api('GET', `/api/v1/documents/${doc.json.id}`, s.access_token)).json.status === 'ready' ? true : undefined,
  );
  const put = await api('PUT', '/api/v1/settings/tenant', s.access_token, { greeting: 'Hello, Sunrise clinic.' });
  expect(put.status).toBe(200);
  if (number) expect((await api('POST', '/api/v1/phone-numbers', s.access_token, { number })).status).toBe(201);
  return s;
}

const turns = async (s: Session, callId: string) =>
  (await api('GET', `/api/v1/calls/${callId}/transcript`, s.access_token)).json.items as {
    speaker: string;
    text: string;
    interrupted: boolean;
    citations: string[];
  }[];
const events = async (s: Session, callId: string) =>
  (await api('GET', `/api/v1/calls/${callId}/events`, s.access_token)).json.items as { type: string; data: Record<string, unknown> }[];

beforeAll(async () => {
  twilio = await startFakeTwilio({ ...ACCOUNT, onCall: (call, twiml, signal) => onOutbound(call, twiml, signal) });
  t = await buildTestApp({
    TWILIO_ACCOUNT_SID: ACCOUNT.accountSid,
    TWILIO_AUTH_TOKEN: ACCOUNT.authToken,
    TWILIO_API_BASE_URL: twilio.baseUrl,
    INGEST_CONCURRENCY: '1',
    // As the service runs by default: the media streams carried by the media process (telephony/media-process.ts).
    MEDIA_PROCESS: 'true',
  });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const addr = t.app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});
afterAll(async () => {
  await t.close();
  await twilio.close();
});

describe('inbound phone call (simulated Twilio)', () => {
  it.skipIf(WIRE_PASS)(
    'answers from the documents, hangs up, applies the status callback, and keeps a recording',
    async () => {
      const s = await clinicTenant(NUMBER);
      const call = await SimulatedCall.inbound({ ...ACCOUNT, baseUrl: base, from: CALLER, to: NUMBER });
      expect(call.callId).toMatch(/^[0-9a-f-]{36}$/);
      const callId = call.callId!;
      await call.agentDone({ quietMs: 800 });

      const asked = await call.say(await speech('Where is the free parking?'));
      const v2v = await call.answer(asked);
      expect(v2v).toBeGreaterThan(0);
      await call.agentDone({ sinceMs: asked.saidEndMs, quietMs: 800 });
      const ts = await turns(s, callId);
      expect(ts[1]).toMatchObject({ speaker: 'caller' });
      expect(ts[1]!.text.toLowerCase()).toContain('parking');
      expect(ts[2]!.text).toContain('Elm Street');
      expect(ts[2]!.citations.length).toBeGreaterThan(0);

      // Barge-in and keypad digits over this same wire are the simulator's end-to-end test (test/simulate-call.test.ts,
      // which interrupts the answer and presses a key); their rules are tested in virtual time (src/voice/turns.test.ts,
      // src/voice/call-session.test.ts) and Twilio's clear/dtmf messages in the transport's own test.
      await call.hangup();
      const ended = await waitFor('call ended', async () => {
        const c = (await api('GET', `/api/v1/calls/${callId}`, s.access_token)).json;
        return c.ended_at ? c : undefined;
      });
      expect(ended).toMatchObject({ direction: 'inbound', status: 'completed', from_number: CALLER, to_number: NUMBER });
      const evs = await events(s, callId);
      expect(evs.map((e) => e.type)).toEqual(expect.arrayContaining(['call.started', 'twilio.connected', 'twilio.status', 'call.ended']));
      // The media process carried the stream (its socket handed over at the upgrade), and timed the agent's audio as
      // sent for the operator's metrics (GET /metrics), each gap within a sentence.
      expect(t.deps.telephony.mediaProcess?.accepted).toBeGreaterThan(0);
      const exposed = await t.deps.metrics.expose();
      expect(Number(/^voice_media_frame_gap_seconds_count (\d+)$/m.exec(exposed)?.[1] ?? 0)).toBeGreaterThan(10);

      // The recording: stereo, the caller on the left and the agent on the right.
      const rec = await waitFor('recording', async () => {
        const r = await api('GET', `/api/v1/calls/${callId}/recording`, s.access_token);
        return r.status === 200 ? r.json : undefined;
      });
      const wav = Buffer.from(await (await fetch(rec.url.startsWith('http') ? rec.url : `${base}${rec.url}`)).arrayBuffer());
      expect(wav.readUInt16LE(22)).toBe(2);
      expect(wav.readUInt32LE(24)).toBe(8000);
      expect(rec.duration_ms).toBeGreaterThan(3000);
    },
    120_000,
  );

  it('an unknown number hears a polite message and nothing is created; a suspended tenant’s number is unknown too', async () => {
    const before = await t.deps.database.db.$count(callsTable);
    const url = `${base}/api/v1/webhooks/twilio/voice`;
    const res = await postSigned(ACCOUNT, url, {
      AccountSid: ACCOUNT.accountSid,
      CallSid: `CA${'a'.repeat(32)}`,
      From: CALLER,
      To: '+15550009999',
      CallStatus: 'ringing',
      Direction: 'inbound',
    });
    expect(res.status).toBe(200);
    const twiml = await res.text();
    expect(twiml).toContain('<Say');
    expect(twiml).toContain('<Hangup/>');
    expect(twiml).not.toContain('<Stream');
    expect(await t.deps.database.db.$count(callsTable)).toBe(before);
  });
});

describe('webhook signatures', () => {
  it('refuses a missing or wrong X-Twilio-Signature on every Twilio webhook with 403 and changes nothing', async () => {
    const s = await clinicTenant('+15550002222');
    const params = {
      AccountSid: ACCOUNT.accountSid,
      CallSid: `CA${'b'.repeat(32)}`,
      From: CALLER,
      To: '+15550002222',
      CallStatus: 'ringing',
      Direction: 'inbound',
    };
    for (const path of ['/api/v1/webhooks/twilio/voice', '/api/v1/webhooks/twilio/status']) {
      const url = `${base}${path}`;
      const attempts: Record<string, string>[] = [
        {},
        { 'x-twilio-signature': 'bm90IGEgc2lnbmF0dXJl' },
        { 'x-twilio-signature': twilioSignature('another-token', url, params) },
        // Signed for other parameters than the ones sent.
        { 'x-twilio-signature': twilioSignature(ACCOUNT.authToken, url, { ...params, To: '+15550003333' }) },
        // Signed for another URL.
        { 'x-twilio-signature': twilioSignature(ACCOUNT.authToken, `${base}/elsewhere`, params) },
      ];
      for (const headers of attempts) {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
          body: new URLSearchParams(params),
        });
        expect(res.status, `${path} ${JSON.stringify(headers)}`).toBe(403);
        expect((await res.json()).error.code).toBe('invalid_signature');
      }
    }
    expect((await api('GET', '/api/v1/calls', s.access_token)).json.total).toBe(0);
    // A media stream without a valid token is closed at its start message.
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/v1/voice/twilio/stream`);
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
    ws.send(
      JSON.stringify({
        event: 'start',
        sequenceNumber: '1',
        streamSid: `MZ${'c'.repeat(32)}`,
        start: {
          streamSid: `MZ${'c'.repeat(32)}`,
          accountSid: ACCOUNT.accountSid,
          callSid: params.CallSid,
          tracks: ['inbound'],
          mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
          customParameters: { token: 'forged' },
        },
      }),
    );
    const code = await new Promise<number>((r) => ws.once('close', (c) => r(c)));
    expect(code).toBe(1008);
  });

  it('status callbacks apply once and in order: late, repeated or out-of-order ones change nothing', async () => {
    const s = await clinicTenant();
    const placed = await t.deps.calls.open(s.tenant.id, {
      direction: 'outbound',
      status: 'queued',
      fromNumber: NUMBER,
      toNumber: CALLER,
      providerCallSid: `CA${'d'.repeat(32)}`,
    });
    const status = (CallStatus: string, extra: Record<string, string> = {}) =>
      postSigned(ACCOUNT, `${base}/api/v1/webhooks/twilio/status`, {
        AccountSid: ACCOUNT.accountSid,
        CallSid: placed.providerCallSid!,
        CallStatus,
        ...extra,
      });
    for (const st of ['ringing', 'in-progress', 'completed', 'ringing', 'in-progress', 'completed'])
      expect((await status(st, { CallDuration: '42' })).status).toBe(204);
    const c = (await api('GET', `/api/v1/calls/${placed.id}`, s.access_token)).json;
    expect(c).toMatchObject({ status: 'completed', duration_ms: 42_000 });
    expect(c.answered_at).not.toBeNull();
    const applied = (await events(s, placed.id)).filter((e) => e.type === 'twilio.status').map((e) => [e.data.status, e.data.applied]);
    expect(applied).toEqual([
      ['ringing', true],
      ['in-progress', true],
      ['completed', true],
      ['ringing', false],
      ['in-progress', false],
      ['completed', false],
    ]);
    // A call that was never answered ends as Twilio says.
    const missed = await t.deps.calls.open(s.tenant.id, {
      direction: 'outbound',
      status: 'queued',
      fromNumber: NUMBER,
      toNumber: CALLER,
      providerCallSid: `CA${'e'.repeat(32)}`,
    });
    await postSigned(ACCOUNT, `${base}/api/v1/webhooks/twilio/status`, {
      AccountSid: ACCOUNT.accountSid,
      CallSid: missed.providerCallSid!,
      CallStatus: 'no-answer',
    });
    expect((await api('GET', `/api/v1/calls/${missed.id}`, s.access_token)).json).toMatchObject({ status: 'no_answer', answered_at: null });
  });
});

describe('outbound phone call', () => {
  it.skipIf(WIRE_PASS)(
    'is placed through Twilio’s API; the agent speaks first, answers, and the API hangs it up',
    async () => {
      const s = await clinicTenant('+15550004444');
      let sim: SimulatedCall | undefined;
      let heardBeforeSpeaking = 0;
      let v2v = 0;
      const answered = new Promise<void>((resolve) => {
        onOutbound = async (fake, twiml, signal) => {
          sim = await SimulatedCall.fromTwiml(twiml, ACCOUNT, fake.sid);
          signal.addEventListener('abort', () => void sim!.leg.terminate());
          await sim.agentDone({ quietMs: 800 });
          heardBeforeSpeaking = sim.leg.heardMs();
          const q = await sim.say(await speech('When does the clinic close on Saturday?'));
          v2v = await sim.answer(q);
          await sim.agentDone({ sinceMs: q.saidEndMs, quietMs: 800 });
          // Barge-in and keypad digits: test/simulate-call.test.ts end to end, src/voice/call-session.test.ts in virtual time.
          resolve();
          await sim.leg.closed;
        };
      });
      const res = await api('POST', '/api/v1/calls', s.access_token, { to: CALLER });
      expect(res.status, JSON.stringify(res.json)).toBe(201);
      expect(res.json).toMatchObject({ direction: 'outbound', status: 'queued', to_number: CALLER, from_number: '+15550004444' });
      const callId = res.json.id;
      await answered;
      expect(heardBeforeSpeaking).toBeGreaterThan(500);
      expect(v2v).toBeGreaterThan(0);
      const ts = await turns(s, callId);
      expect(ts[0]).toMatchObject({ speaker: 'agent', text: 'Hello, Sunrise clinic.' });
      expect(ts.some((x) => x.speaker === 'agent' && /noon/i.test(x.text))).toBe(true);

      expect((await api('POST', `/api/v1/calls/${callId}/hangup`, s.access_token)).status).toBe(202);
      const fake = [...twilio.calls.values()].find((c) => c.to === CALLER && c.status !== 'queued')!;
      await twilio.settled(fake.sid);
      const ended = await waitFor('ended', async () => {
        const c = (await api('GET', `/api/v1/calls/${callId}`, s.access_token)).json;
        return c.ended_at ? c : undefined;
      });
      expect(ended.status).toBe('completed');
      expect(ended.answered_at).not.toBeNull();
      expect((await api('POST', `/api/v1/calls/${callId}/hangup`, s.access_token)).json.error.code).toBe('call_not_active');
      const evs = await events(s, callId);
      expect(evs.map((e) => e.type)).toEqual(expect.arrayContaining(['twilio.status', 'hangup.requested', 'call.ended']));
      // Twilio's callbacks were delivered and accepted: ringing and answered before, completed after the hang-up.
      expect(fake.callbacks.map((c) => [c.callStatus, c.httpStatus])).toEqual(
        expect.arrayContaining([
          ['ringing', 204],
          ['in-progress', 204],
          ['completed', 204],
        ]),
      );
      const rec = await waitFor('recording', async () => {
        const r = await api('GET', `/api/v1/calls/${callId}/recording`, s.access_token);
        return r.status === 200 ? r.json : undefined;
      });
      const wav = await fetch(rec.url.startsWith('http') ? rec.url : `${base}${rec.url}`);
      expect(wav.status).toBe(200);
      expect(Buffer.from(await wav.arrayBuffer()).readUInt16LE(22)).toBe(2);
    },
    90_000,
  );

  it('is transferred to a person through the API: Twilio dials the number in place of the agent', async () => {
    const s = await clinicTenant('+15550006666');
    const answered = new Promise<void>((resolve) => {
      onOutbound = async (_fake, twiml, signal) => {
        const sim = await SimulatedCall.fromTwiml(twiml, ACCOUNT, _fake.sid);
        signal.addEventListener('abort', () => void sim.leg.terminate());
        await sim.agentDone({ quietMs: 500 });
        resolve();
        await sim.leg.closed;
      };
    });
    const res = await api('POST', '/api/v1/calls', s.access_token, { to: CALLER });
    expect(res.status).toBe(201);
    await answered;
    const moved = await api('POST', `/api/v1/calls/${res.json.id}/transfer`, s.access_token, { to: '+15550007777' });
    expect(moved.status, JSON.stringify(moved.json)).toBe(202);
    const sid = (await t.deps.calls.get(s.tenant.id, res.json.id)).providerCallSid!;
    const fake = await twilio.settled(sid);
    expect(fake.transferredTo).toBe('+15550007777');
    const evs = (await events(s, res.json.id)).map((e) => e.type);
    expect(evs).toEqual(expect.arrayContaining(['transfer.requested', 'transfer.connected']));
    // The tenant's webhooks: the call began, then the transfer started and completed (the hand-over to Twilio).
    const published = (
      await t.deps.database.db
        .select()
        .from(webhookEvents)
        .where(eq(webhookEvents.callId, res.json.id))
        .orderBy(asc(webhookEvents.createdAt))
    ).map((e) => [e.type, e.data]);
    expect(published[0]).toEqual(['call.started', expect.objectContaining({ direction: 'outbound', status: 'queued', to: CALLER })]);
    expect(published.filter(([type]) => String(type).startsWith('transfer.'))).toEqual([
      ['transfer.started', expect.objectContaining({ to: '+15550007777' })],
      ['transfer.completed', { call_id: res.json.id, to: '+15550007777' }],
    ]);
  }, 60_000);

  it('refuses what it cannot do with stable codes, and other tenants’ calls are 404', async () => {
    const s = await clinicTenant();
    expect((await api('POST', '/api/v1/calls', s.access_token, { to: CALLER })).json.error.code).toBe('no_phone_number');
    expect((await api('POST', '/api/v1/calls', s.access_token, { to: '555-1234' })).status).toBe(422);
    const other = await clinicTenant('+15550005555');
    const web = await api('POST', '/api/v1/calls/web', other.access_token, {});
    for (const path of [`/api/v1/calls/${web.json.call_id}/hangup`, `/api/v1/calls/${web.json.call_id}/recording`]) {
      const r = await api(path.endsWith('recording') ? 'GET' : 'POST', path, s.access_token);
      expect(r.status, path).toBe(404);
    }
    expect((await api('POST', `/api/v1/calls/${web.json.call_id}/transfer`, s.access_token, { to: CALLER })).status).toBe(404);
    expect((await api('POST', `/api/v1/calls/${web.json.call_id}/transfer`, other.access_token, { to: CALLER })).json.error.code).toBe(
      'transfer_not_supported',
    );
    // Twilio refusing the destination: 422 call_rejected, and the call is recorded as failed.
    twilio.fail({ status: 400, code: 21211, message: "The 'To' number +15550000000 is not a valid phone number." });
    const refused = await api('POST', '/api/v1/calls', other.access_token, { to: '+15550000000' });
    expect(refused.status).toBe(422);
    expect(refused.json.error.code).toBe('call_rejected');
    const list = (await api('GET', '/api/v1/calls?direction=outbound', other.access_token)).json.items;
    expect(list[0]).toMatchObject({ status: 'failed', to_number: '+15550000000' });
  });
});

describe('browser call, controlled from another instance', () => {
  it.skipIf(WIRE_PASS)(
    'streams 16 kHz PCM both ways; a hang-up sent to a second instance reaches the call through Redis',
    async () => {
      const s = await clinicTenant();
      // Instance B: the same database, its own Redis connection and call control, no calls of its own.
      const prefix = `test-${Date.now()}:`;
      const cacheA = new RedisCache(TEST_REDIS_URL, prefix);
      const cacheB = new RedisCache(TEST_REDIS_URL, prefix);
      await cacheA.connect();
      await cacheB.connect();
      const controlA = new CallControl(cacheA, t.deps.log);
      const controlB = new CallControl(cacheB, t.deps.log);
      await controlA.start();
      await controlB.start();
      // Instance A holds the media: its VoiceCalls uses controlA.
      const voiceA = new VoiceCalls(
        t.deps.calls,
        t.deps.providers,
        t.deps.log,
        t.deps.recordings,
        t.deps.config.recordings.spoolDir,
        controlA,
        t.deps.admission,
      );
      const telA = new Telephony(
        t.deps.config,
        t.deps.calls,
        t.deps.phoneNumbers,
        t.deps.settings,
        voiceA,
        controlA,
        new CallTokenService(t.deps.config.secretKey, cacheA),
        t.deps.log,
        t.deps.admission,
      );
      const telB = new Telephony(
        t.deps.config,
        t.deps.calls,
        t.deps.phoneNumbers,
        t.deps.settings,
        t.deps.voice,
        controlB,
        new CallTokenService(t.deps.config.secretKey, cacheB),
        t.deps.log,
        t.deps.admission,
      );
      const appA = await buildApp({ ...t.deps, telephony: telA, voice: voiceA, control: controlA });
      await appA.listen({ port: 0, host: '127.0.0.1' });
      const appB = await buildApp({ ...t.deps, telephony: telB, control: controlB });
      try {
        const started = await appA.inject({
          method: 'POST',
          url: '/api/v1/calls/web',
          headers: { authorization: `Bearer ${s.access_token}` },
          payload: {},
        });
        expect(started.statusCode, started.body).toBe(201);
        const { call_id: callId, token } = started.json();
        const addr = appA.server.address();
        const ws = new WebSocket(
          `ws://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/api/v1/calls/web/stream?token=${encodeURIComponent(token)}`,
        );
        let agentBytes = 0;
        const control: string[] = [];
        ws.on('message', (data, isBinary) => (isBinary ? (agentBytes += (data as Buffer).length) : control.push(String(data))));
        await new Promise((r) => ws.once('open', r));
        // A microphone: 20 ms of 16 kHz audio at a time, speech when there is some queued, silence otherwise.
        let speaking: Buffer = Buffer.alloc(0);
        const mic = setInterval(() => {
          if (ws.readyState !== ws.OPEN) return;
          const chunk = speaking.length ? speaking.subarray(0, 640) : Buffer.alloc(640);
          speaking = speaking.subarray(chunk.length);
          ws.send(chunk);
        }, 20);
        await waitFor('greeting audio', async () => (agentBytes > 16000 ? true : undefined), 15_000);
        await waitFor(
          'a mark after the greeting',
          async () => (control.some((m) => JSON.parse(m).type === 'mark') ? true : undefined),
          15_000,
        );
        const q = await speech('Where is the free parking?', 16000);
        speaking = Buffer.from(q.buffer, q.byteOffset, q.byteLength);
        await waitFor(
          'answer',
          async () => ((await turns(s, callId)).some((x) => x.speaker === 'agent' && x.text.includes('Elm Street')) ? true : undefined),
          30_000,
        ).catch(async (err) => {
          console.log(JSON.stringify(await turns(s, callId)), JSON.stringify(await events(s, callId)));
          throw err;
        });

        // Hang up through instance B, which does not hold the call.
        const hung = await appB.inject({
          method: 'POST',
          url: `/api/v1/calls/${callId}/hangup`,
          headers: { authorization: `Bearer ${s.access_token}` },
        });
        expect(hung.statusCode, hung.body).toBe(202);
        const code = await new Promise<number>((r) => ws.once('close', (c) => r(c)));
        clearInterval(mic);
        expect(code).toBe(1000);
        expect(control.map((m) => JSON.parse(m).type)).toContain('end');
        const c = await waitFor('ended', async () => {
          const row = await t.deps.calls.get(s.tenant.id, callId);
          return row.endedAt ? row : undefined;
        });
        expect(c.status).toBe('completed');
        expect((await events(s, callId)).some((e) => e.type === 'hangup.requested')).toBe(true);
        // Shutting down ends live calls properly: a second call is ended by drain() with its records complete.
        const second = await appA.inject({
          method: 'POST',
          url: '/api/v1/calls/web',
          headers: { authorization: `Bearer ${s.access_token}` },
          payload: {},
        });
        const ws2 = new WebSocket(
          `ws://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/api/v1/calls/web/stream?token=${encodeURIComponent(second.json().token)}`,
        );
        await new Promise((r) => ws2.once('open', r));
        await waitFor('second call live', async () => (voiceA.active > 0 ? true : undefined));
        const closed2 = new Promise<number>((r) => ws2.once('close', (c2) => r(c2)));
        await voiceA.drain(5000);
        expect(await closed2).toBe(1000);
        const row2 = await t.deps.calls.get(s.tenant.id, second.json().call_id);
        expect(row2.endedAt).not.toBeNull();
        expect((await events(s, row2.id)).find((e) => e.type === 'call.ended')?.data.reason).toBe('service shutting down');
        // A token is for one channel and one call: a browser token cannot open a Twilio stream, and a forged one is refused.
        const bad = new WebSocket(
          `ws://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/api/v1/calls/web/stream?token=forged`,
        );
        expect(await new Promise<number>((r) => bad.once('close', (c2) => r(c2)))).toBe(1008);
      } finally {
        await appA.close();
        await appB.close();
        await cacheA.close();
        await cacheB.close();
      }
    },
    90_000,
  );
});
