// The LiveKit API against the fake LiveKit server: a web call's token, rooms scoped per tenant (another tenant's is
// 404 and untouched), SIP provisioning limited to the tenant's own numbers, and the webhook: signed events are
// recorded on the call their room carries and room_finished ends it, egress_ended records the recording; anything
// not signed over the exact body is 403 with nothing recorded. The agent: it joins a web call's room in the
// background with its own token (the fake stands in for rtc-node: the caller is a MemoryTransport), greets the
// caller once in, has Egress record the room when the tenant records calls, and the call ends when the caller
// leaves; a join that fails or times out, and a caller who never comes, end the call and close the room. Outbound
// calls dial only through the tenant's own trunk, after the agent is in the room. Without LiveKit configured, the
// routes answer 503 livekit_not_configured.
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { eq } from 'drizzle-orm';
import { jwtVerify } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { usageRecords, webhookEvents } from '../src/db/schema.js';
import { type AgentJoinSettings, LiveKitService, roomName } from '../src/telephony/livekit.js';
import { liveKitSipTarget } from '../src/telephony/telephony.js';
import { twilioSignature } from '../src/telephony/twilio-signature.js';
import { ALL_LINES_BUSY } from '../src/voice/voice-calls.js';
import { FakeLiveKit } from './fakes/livekit.js';
import { FakeS3 } from './fakes/s3.js';
import { bearer, buildTestApp, call, type Session, signup, type TestApp, twoTenants, uniqueEmail, waitFor } from './helpers.js';

const TWILIO = { accountSid: `AC${'2'.repeat(32)}`, authToken: 'twilio-auth-token-for-livekit-mode' };
const PUBLIC_BASE_URL = 'https://voice.example.com';
let fake: FakeLiveKit;
let t: TestApp;
let a: Session;
let b: Session;
/** The app's LiveKit with the agent joining through the fake instead of rtc-node; tests shorten its timeouts. */
const liveKit = (agent: Partial<AgentJoinSettings> = {}) =>
  new LiveKitService({
    url: fake.url,
    apiKey: fake.apiKey,
    apiSecret: fake.apiSecret,
    sipUri: 'sip:fake.sip.example',
    agent: { connect: fake.connectAgent, ...agent },
  });
beforeAll(async () => {
  fake = await new FakeLiveKit().start();
  t = await buildTestApp({
    LIVEKIT_URL: fake.url,
    LIVEKIT_API_KEY: fake.apiKey,
    LIVEKIT_API_SECRET: fake.apiSecret,
    LIVEKIT_SIP_URI: 'sip:fake.sip.example',
    // Twilio hands calls of numbers in `livekit` mode to LiveKit.
    TWILIO_ACCOUNT_SID: TWILIO.accountSid,
    TWILIO_AUTH_TOKEN: TWILIO.authToken,
    PUBLIC_BASE_URL: PUBLIC_BASE_URL,
  });
  t.deps.livekit = liveKit();
  ({ a, b } = await twoTenants(t.app));
});
afterAll(async () => {
  // Conversations still going end first, so nothing writes to the database after it closes.
  for (const agent of fake.agents) agent.callerLeaves();
  await waitFor('live calls to end', async () => (t.deps.voice.active === 0 ? true : undefined));
  await t.close();
  await fake.stop();
});

const startCall = async (s: Session) => {
  const res = await call(t.app, 'POST', '/api/v1/voice/livekit/token', s.access_token, {});
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as { call_id: string; room: string; token: string; url: string; expires_at: string };
};
const eventsOf = async (s: Session, callId: string) =>
  (await call(t.app, 'GET', `/api/v1/calls/${callId}/events`, s.access_token)).json().items as {
    type: string;
    data: Record<string, unknown>;
  }[];
const deliver = (w: { body: string; headers: Record<string, string> }) =>
  t.app.inject({ method: 'POST', url: '/api/v1/webhooks/livekit', headers: w.headers, payload: w.body });
const callOf = async (s: Session, callId: string) =>
  (await call(t.app, 'GET', `/api/v1/calls/${callId}`, s.access_token)).json() as {
    status: string;
    direction: string;
    from_number: string | null;
    to_number: string | null;
  };
const turnsOf = (s: Session, callId: string) => t.deps.calls.transcript(s.tenant.id, callId);
const agentIn = (room: string) => waitFor(`the agent in ${room}`, async () => fake.agentIn(room));
const ended = (s: Session, callId: string) =>
  waitFor(`call ${callId} to end`, async () => ((await t.deps.calls.get(s.tenant.id, callId)).endedAt ? callOf(s, callId) : undefined));
/** A tenant of its own, with a greeting, so its transcript shows the agent speaking. */
const greetingTenant = async (settings: object = {}) => {
  const s = await signup(t.app);
  const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, { greeting: 'Hello from the clinic.', ...settings });
  expect(put.statusCode, put.body).toBe(200);
  return s;
};

describe('web call token', () => {
  it('creates the call and its room, and returns a token for that room only', async () => {
    const res = await call(t.app, 'POST', '/api/v1/voice/livekit/token', a.access_token, { name: 'Visitor' });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json();
    expect(body.room).toBe(roomName(a.tenant.id, body.call_id));
    expect(body.url).toBe(fake.url.replace('http://', 'ws://'));
    expect(fake.rooms.has(body.room)).toBe(true);

    const { payload } = await jwtVerify(body.token, new TextEncoder().encode(fake.apiSecret), { issuer: fake.apiKey });
    expect(payload).toMatchObject({
      sub: 'caller',
      name: 'Visitor',
      video: { roomJoin: true, room: body.room, canPublish: true, canSubscribe: true, canPublishData: false },
    });
    expect(Object.keys(payload.video as object).filter((k) => /^room(Create|List|Admin|Record)$/.test(k))).toEqual([]);
    expect(Math.abs(new Date(body.expires_at).getTime() / 1000 - payload.exp!)).toBeLessThanOrEqual(2);

    const record = (await call(t.app, 'GET', `/api/v1/calls/${body.call_id}`, a.access_token)).json();
    expect(record).toMatchObject({ id: body.call_id, direction: 'web', status: 'in_progress' });
    // Not tenant B's call.
    expect((await call(t.app, 'GET', `/api/v1/calls/${body.call_id}`, b.access_token)).statusCode).toBe(404);
  });

  it('works without a body, needs credentials, and marks the call failed when LiveKit refuses the room', async () => {
    const bare = await t.app.inject({ method: 'POST', url: '/api/v1/voice/livekit/token', headers: bearer(a.access_token) });
    expect(bare.statusCode, bare.body).toBe(201);
    const anonymous = await t.app.inject({ method: 'POST', url: '/api/v1/voice/livekit/token', payload: {} });
    expect(anonymous.statusCode).toBe(401);

    fake.failNext('RoomService/CreateRoom', 'internal', 'node unavailable');
    const failed = await call(t.app, 'POST', '/api/v1/voice/livekit/token', a.access_token, {});
    expect([failed.statusCode, failed.json().error.code]).toEqual([502, 'provider_error']);
    const latest = (await call(t.app, 'GET', '/api/v1/calls?direction=web&limit=1', a.access_token)).json().items[0];
    expect(latest).toMatchObject({ status: 'failed' });
  });
});

describe('OpenAPI', () => {
  it('documents the LiveKit routes', async () => {
    const doc = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(doc.statusCode).toBe(200);
    expect(Object.keys(doc.json().paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/voice/livekit/token',
        '/api/v1/voice/livekit/calls',
        '/api/v1/voice/livekit/rooms',
        '/api/v1/voice/livekit/rooms/{name}',
        '/api/v1/voice/livekit/sip',
        '/api/v1/webhooks/livekit',
      ]),
    );
  });
});

describe('rooms', () => {
  it('lists only the tenant’s rooms; another tenant’s room is 404 and untouched; deleting ends the call', async () => {
    const a1 = await startCall(a);
    const created = await call(t.app, 'POST', '/api/v1/voice/livekit/rooms', a.access_token);
    expect(created.statusCode, created.body).toBe(201);
    const a2 = created.json();
    expect(a2.room).toMatchObject({ name: roomName(a.tenant.id, a2.call_id), call_id: a2.call_id });
    const b1 = await startCall(b);

    const listA = (await call(t.app, 'GET', '/api/v1/voice/livekit/rooms', a.access_token))
      .json()
      .items.map((r: { name: string }) => r.name);
    expect(listA).toEqual(expect.arrayContaining([a1.room, a2.room.name]));
    expect(listA).not.toContain(b1.room);
    expect(listA.every((n: string) => n.startsWith(`t_${a.tenant.id}_`))).toBe(true);
    const listB = (await call(t.app, 'GET', '/api/v1/voice/livekit/rooms', b.access_token))
      .json()
      .items.map((r: { name: string }) => r.name);
    expect(listB).toEqual([b1.room]);

    const foreign = await call(t.app, 'DELETE', `/api/v1/voice/livekit/rooms/${encodeURIComponent(b1.room)}`, a.access_token);
    expect([foreign.statusCode, foreign.json().error.code]).toEqual([404, 'not_found']);
    expect(fake.rooms.has(b1.room)).toBe(true);
    expect((await call(t.app, 'GET', `/api/v1/calls/${b1.call_id}`, b.access_token)).json().status).toBe('in_progress');

    const own = await call(t.app, 'DELETE', `/api/v1/voice/livekit/rooms/${encodeURIComponent(a1.room)}`, a.access_token);
    expect(own.statusCode, own.body).toBe(204);
    expect(fake.rooms.has(a1.room)).toBe(false);
    expect((await call(t.app, 'GET', `/api/v1/calls/${a1.call_id}`, a.access_token)).json().status).toBe('completed');
    const again = await call(t.app, 'DELETE', `/api/v1/voice/livekit/rooms/${encodeURIComponent(a1.room)}`, a.access_token);
    expect(again.statusCode).toBe(404);
  });
});

describe('SIP provisioning', () => {
  it('connects only the tenant’s own active numbers', async () => {
    const mine = '+14155557001';
    const theirs = '+14155557002';
    await t.deps.phoneNumbers.create(a.tenant.id, { number: mine });
    await t.deps.phoneNumbers.create(b.tenant.id, { number: theirs });

    const stolen = await call(t.app, 'POST', '/api/v1/voice/livekit/sip', a.access_token, { numbers: [mine, theirs] });
    expect([stolen.statusCode, stolen.json().error.code]).toEqual([422, 'validation_error']);
    expect(stolen.json().error.details).toEqual([{ field: 'body.numbers.1', message: 'is not an active phone number of this tenant' }]);
    const unknown = await call(t.app, 'POST', '/api/v1/voice/livekit/sip', a.access_token, { numbers: ['+14155557999'] });
    expect(unknown.statusCode).toBe(422);
    expect(fake.inboundTrunks.some((tr) => tr.numbers.includes(theirs) || tr.numbers.includes('+14155557999'))).toBe(false);

    const ok = await call(t.app, 'POST', '/api/v1/voice/livekit/sip', a.access_token, { numbers: [mine] });
    expect(ok.statusCode, ok.body).toBe(201);
    expect(ok.json()).toMatchObject({ numbers: [mine], room_prefix: `t_${a.tenant.id}_sip`, sip_uri: 'sip:fake.sip.example' });
    const trunk = fake.inboundTrunks.find((tr) => tr.sipTrunkId === ok.json().trunk_id)!;
    expect(trunk.numbers).toEqual([mine]);
    expect(fake.dispatchRules.find((r) => r.sipDispatchRuleId === ok.json().dispatch_rule_id)?.trunkIds).toEqual([trunk.sipTrunkId]);

    const twice = await call(t.app, 'POST', '/api/v1/voice/livekit/sip', a.access_token, { numbers: [mine] });
    expect([twice.statusCode, twice.json().error.code]).toEqual([409, 'conflict']);
    const badFormat = await call(t.app, 'POST', '/api/v1/voice/livekit/sip', a.access_token, { numbers: ['4155557001'] });
    expect(badFormat.statusCode).toBe(422);
  });
});

describe('webhook', () => {
  it('records room and participant events on the call, ends it on room_finished, and ignores redeliveries', async () => {
    const c = await startCall(a);
    const room = { sid: 'RM_hook', name: c.room };
    const participant = { sid: 'PA_1', identity: 'caller', state: 'ACTIVE' };
    const sequence = [
      await fake.webhook({ event: 'room_started', room }),
      await fake.webhook({ event: 'participant_joined', room, participant }),
      await fake.webhook({ event: 'track_published', room, participant }),
      await fake.webhook({ event: 'participant_left', room, participant: { ...participant, state: 'DISCONNECTED' } }),
      await fake.webhook({
        event: 'egress_ended',
        egressInfo: {
          egressId: 'EG_1',
          roomName: c.room,
          status: 'EGRESS_COMPLETE',
          fileResults: [{ filename: 'recordings/x.ogg', location: 's3://calls/recordings/x.ogg', duration: '1000000000' }],
        },
      }),
      await fake.webhook({ event: 'room_finished', room }),
    ];
    const recorded = [];
    for (const w of sequence) {
      const res = await deliver(w);
      expect(res.statusCode, res.body).toBe(200);
      recorded.push(res.json().recorded);
    }
    expect(recorded).toEqual([true, true, false, true, true, true]);
    // LiveKit retries a delivery it thinks failed: the same event id is not written twice.
    const again = await deliver(sequence[1]!);
    expect([again.statusCode, again.json().recorded]).toEqual([200, false]);

    const events = await eventsOf(a, c.call_id);
    expect(events.map((e) => e.type)).toEqual([
      'call.started',
      'livekit.room_started',
      'livekit.participant_joined',
      'livekit.participant_left',
      'livekit.egress_ended',
      'recording.saved',
      'livekit.room_finished',
      'call.ended',
    ]);
    expect(events[2]!.data).toMatchObject({
      room: c.room,
      room_sid: 'RM_hook',
      participant_identity: 'caller',
      participant_kind: 'STANDARD',
    });
    expect(events[4]!.data).toMatchObject({
      egress_id: 'EG_1',
      egress_status: 'EGRESS_COMPLETE',
      files: [{ filename: 'recordings/x.ogg', location: 's3://calls/recordings/x.ogg' }],
    });
    expect(events[5]!.data).toEqual({
      egress_id: 'EG_1',
      location: 's3://calls/recordings/x.ogg',
      filename: 'recordings/x.ogg',
      duration_ms: 1000,
      downloadable: false,
    });
    expect(events.at(-1)!.data).toMatchObject({ status: 'completed' });
    expect((await call(t.app, 'GET', `/api/v1/calls/${c.call_id}`, a.access_token)).json()).toMatchObject({ status: 'completed' });
  });

  it('records a failed or fileless egress as such', async () => {
    const c = await startCall(a);
    for (const egressInfo of [
      { egressId: 'EG_failed', roomName: c.room, status: 'EGRESS_FAILED', error: 'no space left' },
      { egressId: 'EG_nofile', roomName: c.room, status: 'EGRESS_COMPLETE' },
    ]) {
      const res = await deliver(await fake.webhook({ event: 'egress_ended', egressInfo }));
      expect([res.statusCode, res.json().recorded]).toEqual([200, true]);
    }
    const events = (await eventsOf(a, c.call_id)).filter((e) => e.type.startsWith('recording.'));
    expect(events).toEqual(
      [
        { type: 'recording.failed', data: { egress_id: 'EG_failed', egress_status: 'EGRESS_FAILED', error: 'no space left' } },
        { type: 'recording.saved', data: { egress_id: 'EG_nofile', downloadable: false } },
      ].map((e) => expect.objectContaining(e)),
    );
  });

  it('refuses what is not signed over the exact body with 403, recording nothing', async () => {
    const c = await startCall(a);
    const event = { event: 'room_finished', room: { sid: 'RM_x', name: c.room } };
    const good = await fake.webhook(event);
    const attempts = [
      { headers: good.headers, payload: good.body.replace('RM_x', 'RM_y') },
      { headers: (await fake.webhook(event, { apiSecret: 'a-guessed-secret' })).headers, payload: good.body },
      { headers: (await fake.webhook(event, { apiKey: 'APIsomeoneelse' })).headers, payload: good.body },
      { headers: (await fake.webhook(event, { issuedAt: new Date(Date.now() - 3_600_000) })).headers, payload: good.body },
      { headers: { 'content-type': 'application/webhook+json' }, payload: good.body },
      { headers: { ...good.headers, authorization: 'Bearer nonsense' }, payload: good.body },
    ];
    for (const [i, attempt] of attempts.entries()) {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/webhooks/livekit', ...attempt });
      expect([res.statusCode, res.json().error?.code], `attempt ${i}`).toEqual([403, 'invalid_signature']);
      // A failed signature counts against the sender's per-IP limit (429 past it); a signed delivery does not.
      expect(res.headers['x-ratelimit-remaining'], `attempt ${i}`).toBeDefined();
    }
    expect((await eventsOf(a, c.call_id)).map((e) => e.type)).toEqual(['call.started']);
    expect((await call(t.app, 'GET', `/api/v1/calls/${c.call_id}`, a.access_token)).json().status).toBe('in_progress');
    // The genuine delivery still works, also as application/json.
    const res = await deliver({ body: good.body, headers: { ...good.headers, 'content-type': 'application/json' } });
    expect([res.statusCode, res.json().recorded]).toEqual([200, true]);
    expect(res.headers['x-ratelimit-remaining']).toBeUndefined();
  });

  it('acknowledges and ignores rooms that are not one of our calls', async () => {
    const bCall = await startCall(b);
    const rooms = [
      'some-other-room',
      `t_${a.tenant.id}_sip_+15551230000_abc`,
      // Tenant A's prefix with tenant B's call: the call is not A's, so nothing is written anywhere.
      `t_${a.tenant.id}_${bCall.call_id}`,
      roomName(a.tenant.id, randomUUID()),
    ];
    for (const name of rooms) {
      const res = await deliver(await fake.webhook({ event: 'room_finished', room: { sid: 'RM_z', name } }));
      expect([res.statusCode, res.json()], name).toEqual([200, { received: true, recorded: false }]);
    }
    expect((await eventsOf(b, bCall.call_id)).map((e) => e.type)).toEqual(['call.started']);
  });
});

describe('the agent on a web call', () => {
  afterEach(() => {
    t.deps.livekit = liveKit();
    fake.callerPresent = false;
    // A test that failed midway leaves no conversation running into the next one.
    for (const agent of fake.agents) agent.callerLeaves();
  });

  it('joins in the background with its own token, greets once the caller is in, records with Egress, ends when the caller leaves', async () => {
    const s = await greetingTenant();
    // The join is held: the response must come without it.
    const held = fake.holdNextJoin();
    const res = await call(t.app, 'POST', '/api/v1/voice/livekit/token', s.access_token, {});
    expect(res.statusCode, res.body).toBe(201);
    const { call_id: callId, room } = res.json() as { call_id: string; room: string };
    expect(fake.agentIn(room)).toBeUndefined();
    held.release();
    const agent = await agentIn(room);

    // The agent's token: this room, as an agent; never the caller's identity.
    expect(agent.claims).toMatchObject({ sub: 'agent', kind: 'agent', video: { roomJoin: true, room, canPublishData: true } });
    expect(agent.callerIdentity).toBe('caller');
    // Nobody to greet yet: no greeting into an empty room, no recording of one.
    await sleep(300);
    expect(await turnsOf(s, callId)).toEqual([]);
    expect([...fake.egresses.values()].some((e) => e.roomName === room)).toBe(false);

    agent.callerJoins();
    const turns = await waitFor('the greeting', async () => {
      const ts = await turnsOf(s, callId);
      return ts.length ? ts : undefined;
    });
    expect(turns[0]).toMatchObject({ speaker: 'agent', text: 'Hello from the clinic.' });
    expect(agent.caller.heardMs()).toBeGreaterThan(500);
    const started = await waitFor('recording.started', async () => (await eventsOf(s, callId)).find((e) => e.type === 'recording.started'));
    const egress = fake.egresses.get(started.data.egress_id as string);
    expect(egress).toMatchObject({ roomName: room, request: { audioOnly: true } });
    expect((await callOf(s, callId)).status).toBe('in_progress');

    agent.callerLeaves();
    expect(await ended(s, callId)).toMatchObject({ status: 'completed' });
    // The room is closed after the call (which also ends its egress), and the agent's audio with it.
    await waitFor('the room to close', async () => (fake.rooms.has(room) ? undefined : true));
    expect(agent.caller.closedReason).toBeDefined();
    const events = await eventsOf(s, callId);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['call.started', 'recording.started', 'call.ended']));
    expect(events.find((e) => e.type === 'call.ended')!.data).toMatchObject({ status: 'completed', reason: 'caller hung up' });
    // Egress records LiveKit calls: VoiceCalls kept no WAV of its own.
    expect(events.some((e) => e.type === 'recording.saved' || e.type === 'livekit.agent_failed')).toBe(false);
  });

  it('does not record when the tenant switched recording off', async () => {
    const s = await greetingTenant({ call: { recording: false } });
    fake.callerPresent = true;
    const { call_id: callId, room } = await startCall(s);
    const agent = await agentIn(room);
    await waitFor('the greeting', async () => ((await turnsOf(s, callId)).length ? true : undefined));
    expect(fake.requests.some((r) => r.method === 'Egress/StartRoomCompositeEgress' && r.body.roomName === room)).toBe(false);
    agent.callerLeaves();
    expect(await ended(s, callId)).toMatchObject({ status: 'completed' });
    expect((await eventsOf(s, callId)).some((e) => e.type.startsWith('recording.'))).toBe(false);
  });

  it('goes on with the call when Egress refuses the recording', async () => {
    const s = await greetingTenant();
    fake.callerPresent = true;
    fake.failNext('Egress/StartRoomCompositeEgress', 'resource_exhausted', 'no egress instance available');
    const { call_id: callId, room } = await startCall(s);
    const agent = await agentIn(room);
    const failed = await waitFor('recording.failed', async () => (await eventsOf(s, callId)).find((e) => e.type === 'recording.failed'));
    expect(failed.data.error).toMatch(/no egress instance available/);
    await waitFor('the greeting', async () => ((await turnsOf(s, callId)).length ? true : undefined));
    agent.callerLeaves();
    expect(await ended(s, callId)).toMatchObject({ status: 'completed' });
  });

  it('ends the call failed and closes the room when the agent cannot join', async () => {
    const s = await greetingTenant();
    fake.failNextJoin(new Error('could not establish signal connection: connection refused'));
    const { call_id: callId, room } = await startCall(s);
    expect(await ended(s, callId)).toMatchObject({ status: 'failed' });
    const events = await eventsOf(s, callId);
    expect(events.map((e) => e.type)).toEqual(['call.started', 'livekit.agent_failed', 'call.ended']);
    expect(events[1]!.data).toEqual({ stage: 'join', error: 'could not establish signal connection: connection refused' });
    expect(events[2]!.data).toMatchObject({ status: 'failed', reason: 'the agent could not join the livekit room' });
    await waitFor('the room to close', async () => (fake.rooms.has(room) ? undefined : true));
  });

  it('gives up joining after the timeout, and leaves the room should the join complete later', async () => {
    t.deps.livekit = liveKit({ joinTimeoutMs: 200 });
    const s = await greetingTenant();
    const held = fake.holdNextJoin();
    const startedAt = Date.now();
    const { call_id: callId, room } = await startCall(s);
    expect(await ended(s, callId)).toMatchObject({ status: 'failed' });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(200);
    expect(held.aborted).toBe(true);
    const failed = (await eventsOf(s, callId)).find((e) => e.type === 'livekit.agent_failed')!;
    expect(failed.data).toEqual({ stage: 'join', error: 'livekit: the agent did not join the room within 200 ms' });

    held.release();
    const late = await agentIn(room);
    await waitFor('the late agent to leave', async () => (late.closedReason ? true : undefined));
    expect(late.closedReason).toBe('the agent gave up joining');
    expect(await turnsOf(s, callId)).toEqual([]);
  });

  it('gives the call up when the caller never joins', async () => {
    t.deps.livekit = liveKit({ callerTimeoutMs: 300 });
    const s = await greetingTenant();
    const { call_id: callId, room } = await startCall(s);
    const agent = await agentIn(room);
    expect(await ended(s, callId)).toMatchObject({ status: 'canceled' });
    expect((await eventsOf(s, callId)).at(-1)!.data).toMatchObject({ status: 'canceled', reason: 'the caller did not join the room' });
    expect(agent.closedReason).toBe('the caller did not join the room');
    await waitFor('the room to close', async () => (fake.rooms.has(room) ? undefined : true));
    expect(await turnsOf(s, callId)).toEqual([]);
    expect(fake.requests.some((r) => r.method === 'Egress/StartRoomCompositeEgress' && r.body.roomName === room)).toBe(false);
  });

  it('ends the call when its room is deleted through the API', async () => {
    const s = await greetingTenant();
    fake.callerPresent = true;
    const { call_id: callId, room } = await startCall(s);
    const agent = await agentIn(room);
    await waitFor('the greeting', async () => ((await turnsOf(s, callId)).length ? true : undefined));
    expect((await call(t.app, 'DELETE', `/api/v1/voice/livekit/rooms/${encodeURIComponent(room)}`, s.access_token)).statusCode).toBe(204);
    expect(await ended(s, callId)).toMatchObject({ status: 'completed' });
    await waitFor('the agent to leave', async () => (agent.caller.closedReason ? true : undefined));
    await waitFor('the session to end', async () => (t.deps.voice.active === 0 ? true : undefined));
  });
});

describe('outbound calls through LiveKit SIP', () => {
  const from = '+14155550170';
  let trunkA: string;
  let trunkB: string;
  beforeAll(() => {
    trunkA = fake.addOutboundTrunk({ numbers: [from], metadata: JSON.stringify({ tenant_id: a.tenant.id }) });
    trunkB = fake.addOutboundTrunk({ numbers: ['+14155550171'], metadata: JSON.stringify({ tenant_id: b.tenant.id }) });
  });
  afterEach(() => {
    t.deps.livekit = liveKit();
    fake.callerPresent = false;
    // A test that failed midway leaves no conversation running into the next one.
    for (const agent of fake.agents) agent.callerLeaves();
  });
  const dial = (s: Session, body: object) => call(t.app, 'POST', '/api/v1/voice/livekit/calls', s.access_token, body);
  const outboundCalls = async (s: Session) =>
    (await call(t.app, 'GET', '/api/v1/calls?direction=outbound', s.access_token)).json().total as number;
  const dials = () => fake.requests.filter((r) => r.method === 'SIP/CreateSIPParticipant').length;

  it('dials only through the tenant’s own trunk; anything else leaves no call and rings no phone', async () => {
    const before = [dials(), await outboundCalls(a)];
    const unlabelled = fake.addOutboundTrunk({ numbers: ['+14155550172'] });
    for (const trunk_id of [trunkB, unlabelled, 'ST_doesnotexist']) {
      const res = await dial(a, { to: '+14155550199', trunk_id });
      expect([res.statusCode, res.json().error.code], trunk_id).toEqual([404, 'not_found']);
    }
    for (const body of [
      { to: '4155550199', trunk_id: trunkA },
      { to: '+14155550199' },
      { to: '+14155550199', trunk_id: trunkA, from: '+1999' },
    ]) {
      expect((await dial(a, body)).statusCode, JSON.stringify(body)).toBe(422);
    }
    // A member may not place calls (tenant_write).
    const member = { email: uniqueEmail('member'), password: 'correct horse battery' };
    expect((await call(t.app, 'POST', '/api/v1/users', a.access_token, { ...member, role: 'member' })).statusCode).toBe(201);
    const login = (await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: member })).json();
    expect((await dial(login, { to: '+14155550199', trunk_id: trunkA })).statusCode).toBe(403);
    expect([dials(), await outboundCalls(a)]).toEqual(before);
  });

  it('joins the agent, then dials; the agent greets once answered and the call ends when the callee hangs up', async () => {
    const res = await dial(a, { to: '+14155550199', trunk_id: trunkA });
    expect(res.statusCode, res.body).toBe(201);
    const {
      call_id: callId,
      room,
      sip_call_id: sipCallId,
      status,
    } = res.json() as { call_id: string; room: string; sip_call_id: string; status: string };
    expect([room, status]).toEqual([roomName(a.tenant.id, callId), 'ringing']);
    const agent = fake.agentIn(room)!;
    const dialIndex = fake.requests.findLastIndex((r) => r.method === 'SIP/CreateSIPParticipant');
    expect(fake.requests[dialIndex]!.body).toMatchObject({
      sipTrunkId: trunkA,
      sipCallTo: '+14155550199',
      sipNumber: from,
      roomName: room,
      participantIdentity: 'caller',
    });
    // The agent was in the room before the phone rang.
    expect(agent.requestsBefore).toBeLessThanOrEqual(dialIndex);
    expect(await callOf(a, callId)).toMatchObject({
      direction: 'outbound',
      status: 'ringing',
      from_number: from,
      to_number: '+14155550199',
    });
    expect((await eventsOf(a, callId)).find((e) => e.type === 'livekit.dialed')!.data).toMatchObject({
      trunk_id: trunkA,
      sip_call_id: sipCallId,
    });
    // Ringing: nobody to greet.
    await sleep(200);
    expect(await turnsOf(a, callId)).toEqual([]);

    agent.callerJoins();
    const turns = await waitFor('the greeting', async () => {
      const ts = await turnsOf(a, callId);
      return ts.length ? ts : undefined;
    });
    // An outbound call's agent speaks first, saying who calls.
    expect(turns[0]).toMatchObject({ speaker: 'agent' });
    expect(turns[0]!.text).toMatch(/^Hello, this is .+\. Is this a good time to talk\?$/);
    expect((await callOf(a, callId)).status).toBe('in_progress');
    await waitFor('recording.started', async () => (await eventsOf(a, callId)).find((e) => e.type === 'recording.started'));

    agent.callerLeaves();
    expect(await ended(a, callId)).toMatchObject({ status: 'completed' });
    await waitFor('the room to close', async () => (fake.rooms.has(room) ? undefined : true));
  });

  it('ends no_answer when the phone stops ringing unanswered', async () => {
    const res = await dial(a, { to: '+14155550198', trunk_id: trunkA });
    expect(res.statusCode, res.body).toBe(201);
    const { call_id: callId, room } = res.json() as { call_id: string; room: string };
    fake.agentIn(room)!.callerLeaves();
    expect(await ended(a, callId)).toMatchObject({ status: 'no_answer' });
    expect(await turnsOf(a, callId)).toEqual([]);
    await waitFor('the room to close', async () => (fake.rooms.has(room) ? undefined : true));
  });

  it('answers 422 call_rejected when LiveKit refuses the number, and the call ends failed', async () => {
    fake.failNext('SIP/CreateSIPParticipant', 'invalid_argument', 'invalid phone number');
    const res = await dial(a, { to: '+14155550197', trunk_id: trunkA });
    expect([res.statusCode, res.json().error.code]).toEqual([422, 'call_rejected']);
    expect(res.json().error.message).toMatch(/invalid phone number/);
    const latest = (await call(t.app, 'GET', '/api/v1/calls?direction=outbound&limit=1', a.access_token)).json().items[0] as {
      id: string;
      status: string;
      room?: string;
    };
    expect(latest.status).toBe('failed');
    expect((await eventsOf(a, latest.id)).map((e) => e.type)).toEqual(['call.started', 'livekit.dial_failed', 'call.ended']);
    const room = roomName(a.tenant.id, latest.id);
    expect(fake.agentIn(room)!.closedReason).toBe('dialling failed');
    expect(fake.rooms.has(room)).toBe(false);
  });

  it('dials nobody when the agent cannot join: 502, the call failed', async () => {
    const before = dials();
    fake.failNextJoin(new Error('could not establish signal connection'));
    const res = await dial(a, { to: '+14155550196', trunk_id: trunkA });
    expect([res.statusCode, res.json().error.code]).toEqual([502, 'provider_error']);
    expect(dials()).toBe(before);
    const latest = (await call(t.app, 'GET', '/api/v1/calls?direction=outbound&limit=1', a.access_token)).json().items[0] as {
      id: string;
      status: string;
    };
    expect(latest.status).toBe('failed');
    expect((await eventsOf(a, latest.id)).map((e) => e.type)).toEqual(['call.started', 'livekit.agent_failed', 'call.ended']);
  });
});

describe('inbound phone calls through LiveKit SIP', () => {
  afterEach(() => {
    fake.callerPresent = false;
    // A test that failed midway leaves no conversation running into the next one.
    for (const agent of fake.agents) agent.callerLeaves();
  });
  /** A tenant with a greeting and a number connected to LiveKit: its inbound trunk and dispatch rule. */
  const connected = async (number: string) => {
    const s = await greetingTenant();
    const phone = await t.deps.phoneNumbers.create(s.tenant.id, { number });
    const res = await call(t.app, 'POST', '/api/v1/voice/livekit/sip', s.access_token, { numbers: [number] });
    expect(res.statusCode, res.body).toBe(201);
    return { s, phone };
  };
  const inboundCalls = async (s: Session) =>
    (await call(t.app, 'GET', '/api/v1/calls?direction=inbound', s.access_token)).json().items as { id: string }[];
  const recordedOf = async (event: Record<string, unknown>) => {
    const res = await deliver(await fake.webhook(event));
    expect(res.statusCode, res.body).toBe(200);
    return res.json().recorded as boolean;
  };

  it('answers a phone the dispatch rule put in a room: a new inbound call the agent greets, one however often LiveKit delivers', async () => {
    const { s } = await connected('+14155557101');
    const { room, event } = fake.sipInbound({ from: '+14155550111', to: '+14155557101' });
    expect(room.startsWith(`t_${s.tenant.id}_sip_`)).toBe(true);
    // room_started comes before anyone is in the room: there is no call yet.
    expect(await recordedOf({ event: 'room_started', room: event.room })).toBe(false);
    expect(await inboundCalls(s)).toEqual([]);

    // Two deliveries at once (LiveKit retries): one call, one agent.
    const signed = await fake.webhook(event);
    const deliveries = await Promise.all([deliver(signed), deliver(signed)]);
    expect(deliveries.map((r) => r.statusCode)).toEqual([200, 200]);
    const agent = await agentIn(room);
    const calls = await inboundCalls(s);
    expect(calls).toHaveLength(1);
    const callId = calls[0]!.id;
    expect(fake.agents.filter((x) => x.room === room)).toHaveLength(1);
    expect(await callOf(s, callId)).toMatchObject({
      direction: 'inbound',
      status: 'in_progress',
      from_number: '+14155550111',
      to_number: '+14155557101',
    });
    // A later redelivery changes nothing.
    expect((await deliver(signed)).json().recorded).toBe(false);
    // Deliveries that both found no call yet: the room takes one call, the second answer is nobody's.
    expect(await t.deps.calls.openInRoom(s.tenant.id, room, { fromNumber: '+14155550111', toNumber: '+14155557101' })).toBeUndefined();
    expect(
      await t.deps.calls.openInRoom(s.tenant.id, room, { callId, fromNumber: '+14155550111', toNumber: '+14155557101' }),
    ).toBeUndefined();
    expect(await inboundCalls(s)).toHaveLength(1);

    // The agent's token is for this room only; the caller is the phone in it, whose identity LiveKit chose.
    expect(agent.claims).toMatchObject({ sub: 'agent', kind: 'agent', video: { roomJoin: true, room } });
    expect(agent.callerIdentity).toBeUndefined();
    agent.callerJoins();
    const turns = await waitFor('the greeting', async () => {
      const ts = await turnsOf(s, callId);
      return ts.length ? ts : undefined;
    });
    expect(turns[0]).toMatchObject({ speaker: 'agent', text: 'Hello from the clinic.' });
    const started = await waitFor('recording.started', async () => (await eventsOf(s, callId)).find((e) => e.type === 'recording.started'));
    expect(fake.egresses.get(started.data.egress_id as string)!.roomName).toBe(room);

    // The tenant's rooms show the call this room carries.
    const rooms = (await call(t.app, 'GET', '/api/v1/voice/livekit/rooms', s.access_token)).json().items as {
      name: string;
      call_id: string | null;
    }[];
    expect(rooms).toEqual([expect.objectContaining({ name: room, call_id: callId })]);
    // The room's later events find the call through its room.
    expect(
      await recordedOf({
        event: 'participant_left',
        room: event.room,
        participant: { ...(event.participant as object), state: 'DISCONNECTED' },
      }),
    ).toBe(true);
    agent.callerLeaves();
    expect(await ended(s, callId)).toMatchObject({ status: 'completed' });
    await waitFor('the room to close', async () => (fake.rooms.has(room) ? undefined : true));
    const events = await eventsOf(s, callId);
    expect(events.filter((e) => e.type === 'livekit.participant_joined')).toHaveLength(1);
    expect(events.find((e) => e.type === 'livekit.sip_answered')!.data).toMatchObject({ room, handed_over: false });
    expect(events.find((e) => e.type === 'livekit.participant_joined')!.data).toMatchObject({
      participant_identity: 'sip_+14155550111',
      participant_kind: 'SIP',
    });
  });

  it('at the tenant’s concurrency cap a phone that dialled in hears that all lines are busy, then the room closes: busy, no agent run', async () => {
    const { s } = await connected('+14155557106');
    // A cap of 0: no call may run.
    await t.deps.tenantAdmin.setLimits(s.tenant.id, { maxConcurrentCalls: 0 });
    fake.callerPresent = true;
    const { room, event } = fake.sipInbound({ from: '+14155550116', to: '+14155557106' });
    expect(await recordedOf(event)).toBe(true);
    const [refused] = await inboundCalls(s);
    // Recorded at once, as a Twilio call refused at its webhook is.
    expect(await callOf(s, refused!.id)).toMatchObject({ status: 'busy' });
    const agent = await agentIn(room);
    await waitFor('the room to close', async () => (fake.rooms.has(room) ? undefined : true));
    // The caller heard the message (seconds of speech), and the line closed with it.
    expect(agent.caller.heardMs()).toBeGreaterThan(1000);
    expect(agent.closedReason).toBe(ALL_LINES_BUSY);
    const events = (await eventsOf(s, refused!.id)).map((e) => e.type);
    expect(events).toEqual(expect.arrayContaining(['call.refused', 'call.ended']));
    expect(events).not.toContain('livekit.sip_answered');
    expect(await turnsOf(s, refused!.id)).toEqual([]);
    expect(t.deps.voice.active).toBe(0);
    // The message's speech is metered on the call (a cloud voice bills it): the message's characters, nothing else.
    const usage = await waitFor('the message metered', async () => {
      const rows = await t.deps.database.db.select().from(usageRecords).where(eq(usageRecords.callId, refused!.id));
      return rows.length ? rows : undefined;
    });
    expect(usage.map((u) => [u.component, u.unit, Number(u.quantity)])).toEqual([['tts', 'characters', ALL_LINES_BUSY.length]]);
  });

  it('a call Twilio handed over (X-Call-Id) is that call; another tenant’s call id in the header takes nothing', async () => {
    const { s } = await connected('+14155557102');
    // The trunk turns the header our TwiML sets into the attribute the call is found by.
    const trunk = fake.inboundTrunks.find((tr) => tr.numbers.includes('+14155557102'))!;
    expect(trunk.headersToAttributes).toEqual({ 'X-Call-Id': 'call_id' });
    const twilioCall = async (owner: Session, to: string) =>
      t.deps.calls.open(owner.tenant.id, {
        direction: 'inbound',
        status: 'in_progress',
        fromNumber: '+14155550112',
        toNumber: to,
        providerCallSid: `CA${randomUUID().replace(/-/g, '')}`,
      });
    const handed = await twilioCall(s, '+14155557102');

    const { room, event } = fake.sipInbound({ from: '+14155550112', to: '+14155557102', headers: { 'x-call-id': handed.id } });
    expect(await recordedOf(event)).toBe(true);
    await agentIn(room);
    expect((await inboundCalls(s)).map((c) => c.id)).toEqual([handed.id]);
    expect((await eventsOf(s, handed.id)).find((e) => e.type === 'livekit.sip_answered')!.data).toMatchObject({ room, handed_over: true });

    // Tenant B's room with tenant A's live call id: B gets a call of its own, A's call is not touched.
    const { s: other } = await connected('+14155557103');
    const victim = await twilioCall(s, '+14155557102');
    const foreign = fake.sipInbound({ from: '+14155550113', to: '+14155557103', headers: { 'X-Call-Id': victim.id } });
    expect(await recordedOf(foreign.event)).toBe(true);
    await agentIn(foreign.room);
    const theirs = await inboundCalls(other);
    expect(theirs).toHaveLength(1);
    expect(theirs[0]!.id).not.toBe(victim.id);
    expect((await eventsOf(s, victim.id)).map((e) => e.type)).toEqual(['call.started']);

    // Closing a SIP room through the API ends its call, as for any room.
    const del = await call(t.app, 'DELETE', `/api/v1/voice/livekit/rooms/${encodeURIComponent(room)}`, s.access_token);
    expect(del.statusCode, del.body).toBe(204);
    expect(await ended(s, handed.id)).toMatchObject({ status: 'completed' });
  });

  it('from Twilio to the agent: a number in livekit mode is dialled into LiveKit as that number, and the agent answers Twilio’s call', async () => {
    const { s, phone } = await connected('+14155557105');
    await t.deps.phoneNumbers.update(s.tenant.id, phone.id, { mode: 'livekit' });
    const params = {
      AccountSid: TWILIO.accountSid,
      CallSid: `CA${'d'.repeat(32)}`,
      From: '+14155550115',
      To: '+14155557105',
      Direction: 'inbound',
      CallStatus: 'ringing',
      ApiVersion: '2010-04-01',
    };
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/webhooks/twilio/voice',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': twilioSignature(TWILIO.authToken, `${PUBLIC_BASE_URL}/api/v1/webhooks/twilio/voice`, params),
      },
      payload: new URLSearchParams(params).toString(),
    });
    expect(res.statusCode, res.body).toBe(200);
    const sip = /<Dial><Sip>([^<]+)<\/Sip><\/Dial>/.exec(res.body)?.[1]?.replace(/&amp;/g, '&');
    const [target, headers] = sip!.split('?');
    // LIVEKIT_SIP_URI names LiveKit's host only: the number called is put in, so the tenant's trunk takes the call.
    expect(target).toBe('sip:+14155557105@fake.sip.example');
    const callId = new URLSearchParams(headers).get('X-Call-Id')!;
    expect((await inboundCalls(s)).map((c) => c.id)).toEqual([callId]);
    // A URI with a user of its own is dialled as it is; parameters stay after the host; no number, no change.
    expect(liveKitSipTarget('sip:agent@fake.sip.example', '+14155557105')).toBe('sip:agent@fake.sip.example');
    expect(liveKitSipTarget('sips:fake.sip.example;transport=tls', '+14155557105')).toBe(
      'sips:+14155557105@fake.sip.example;transport=tls',
    );
    expect(liveKitSipTarget('sip:fake.sip.example', 'anonymous')).toBe('sip:fake.sip.example');

    // LiveKit routes the INVITE by the URI's number, and maps the header to the caller's attribute.
    const { room, event } = fake.sipInbound({
      from: '+14155550115',
      to: target!.slice('sip:'.length, target!.indexOf('@')),
      headers: { 'X-Call-Id': callId },
    });
    expect(await recordedOf(event)).toBe(true);
    const agent = await agentIn(room);
    agent.callerJoins();
    const turns = await waitFor('the greeting', async () => {
      const ts = await turnsOf(s, callId);
      return ts.length ? ts : undefined;
    });
    expect(turns[0]).toMatchObject({ speaker: 'agent', text: 'Hello from the clinic.' });
    expect((await inboundCalls(s)).map((c) => c.id)).toEqual([callId]);
    agent.callerLeaves();
    expect(await ended(s, callId)).toMatchObject({ status: 'completed' });
  });

  it('hangs up a call to a number the tenant no longer has: no call, no agent', async () => {
    const { s, phone } = await connected('+14155557104');
    await t.deps.phoneNumbers.remove(s.tenant.id, phone.id);
    const { room, event } = fake.sipInbound({ from: '+14155550114', to: '+14155557104' });
    expect(await recordedOf(event)).toBe(false);
    expect(fake.rooms.has(room)).toBe(false);
    expect(fake.agentIn(room)).toBeUndefined();
    expect(await inboundCalls(s)).toEqual([]);
  });
});

describe('Egress recordings in the recordings bucket', () => {
  let s3: FakeS3;
  let ts3: TestApp;
  beforeAll(async () => {
    s3 = await new FakeS3({ region: 'eu-central-1', buckets: ['call-recordings'] }).start();
    ts3 = await buildTestApp({
      LIVEKIT_URL: fake.url,
      LIVEKIT_API_KEY: fake.apiKey,
      LIVEKIT_API_SECRET: fake.apiSecret,
      ...s3.recordingsEnv('call-recordings'),
    });
    ts3.deps.livekit = new LiveKitService({
      url: fake.url,
      apiKey: fake.apiKey,
      apiSecret: fake.apiSecret,
      recordingS3: ts3.deps.config.recordings.s3,
      agent: { connect: fake.connectAgent },
    });
  });
  afterAll(async () => {
    for (const agent of fake.agents) agent.callerLeaves();
    await waitFor('live calls to end', async () => (ts3.deps.voice.active === 0 ? true : undefined));
    await ts3.close();
    await s3.stop();
    fake.callerPresent = false;
  });

  /** A web call whose room Egress records, ended by the caller leaving: its call id and Egress's upload request. */
  const recordedCall = async (s: Session) => {
    fake.callerPresent = true;
    const res = await call(ts3.app, 'POST', '/api/v1/voice/livekit/token', s.access_token, {});
    expect(res.statusCode, res.body).toBe(201);
    const { call_id: callId, room } = res.json() as { call_id: string; room: string };
    const agent = await agentIn(room);
    const started = await waitFor('recording.started', async () =>
      (await ts3.deps.calls.events(s.tenant.id, callId)).find((e) => e.type === 'recording.started'),
    );
    const egress = fake.egresses.get(started.extraData.egress_id as string)!;
    agent.callerLeaves();
    await waitFor('the call to end', async () => ((await ts3.deps.calls.get(s.tenant.id, callId)).endedAt ? true : undefined));
    return { callId, room, output: (egress.request.fileOutputs as { filepath: string; s3: Record<string, unknown> }[])[0]! };
  };
  const egressEnded = async (room: string, fileResults: object[]) => {
    const w = await fake.webhook({
      event: 'egress_ended',
      egressInfo: { egressId: `EG_${randomUUID()}`, roomName: room, status: 'EGRESS_COMPLETE', fileResults },
    });
    const res = await ts3.app.inject({ method: 'POST', url: '/api/v1/webhooks/livekit', headers: w.headers, payload: w.body });
    expect([res.statusCode, res.json().recorded], res.body).toEqual([200, true]);
  };

  it('the room’s Ogg that Egress uploaded is the call’s recording, downloadable by its tenant only', async () => {
    const s = await signup(ts3.app);
    const other = await signup(ts3.app);
    const { callId, room, output } = await recordedCall(s);
    // Egress is told to upload into the recordings bucket, at the key the call's recording is then found by.
    expect(output.filepath).toBe(`recordings/${s.tenant.id}/${callId}.ogg`);
    expect(output.s3).toMatchObject({ bucket: 'call-recordings', endpoint: s3.baseUrl, region: 'eu-central-1', forcePathStyle: true });
    // What Egress does then: the file in the bucket, and egress_ended naming it.
    const ogg = Buffer.concat([Buffer.from('OggS'), randomBytes(4000)]);
    s3.buckets
      .get('call-recordings')!
      .set(output.filepath, { body: ogg, contentType: 'audio/ogg', etag: '"egress"', lastModified: new Date() });
    await egressEnded(room, [
      { filename: output.filepath, location: `s3://call-recordings/${output.filepath}`, duration: '2500000000', size: '4004' },
    ]);

    const rec = await call(ts3.app, 'GET', `/api/v1/calls/${callId}/recording`, s.access_token);
    expect(rec.statusCode, rec.body).toBe(200);
    expect(rec.json().duration_ms).toBe(2500);
    const download = await fetch(rec.json().url as string);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(ogg)).toBe(true);
    expect((await call(ts3.app, 'GET', `/api/v1/calls/${callId}/recording`, other.access_token)).statusCode).toBe(404);
    const saved = (await ts3.deps.calls.events(s.tenant.id, callId)).find((e) => e.type === 'recording.saved')!;
    expect(saved.extraData).toMatchObject({ downloadable: true, duration_ms: 2500 });
    // The tenant's systems hear of it once, with the key stored.
    const webhooks = await ts3.deps.database.db.select().from(webhookEvents).where(eq(webhookEvents.callId, callId));
    expect(webhooks.filter((e) => e.type === 'recording.ready').map((e) => [e.tenantId, e.data])).toEqual([
      [s.tenant.id, { call_id: callId, duration_ms: 2500 }],
    ]);
  });

  it('a file Egress wrote anywhere else is named in the event, not made the call’s recording', async () => {
    const s = await signup(ts3.app);
    const { callId, room } = await recordedCall(s);
    await egressEnded(room, [{ filename: `recordings/${s.tenant.id}/${randomUUID()}.ogg`, location: 's3://elsewhere/x.ogg' }]);
    const rec = await call(ts3.app, 'GET', `/api/v1/calls/${callId}/recording`, s.access_token);
    expect([rec.statusCode, rec.json().error.code]).toEqual([404, 'not_found']);
    expect((await ts3.deps.calls.events(s.tenant.id, callId)).find((e) => e.type === 'recording.saved')!.extraData).toMatchObject({
      downloadable: false,
    });
    // Not downloadable: no recording.ready.
    const webhooks = await ts3.deps.database.db.select().from(webhookEvents).where(eq(webhookEvents.callId, callId));
    expect(webhooks.map((e) => e.type)).not.toContain('recording.ready');
  });
});

describe('without LiveKit configured', () => {
  let bare: TestApp;
  let s: Session;
  beforeAll(async () => {
    bare = await buildTestApp();
    ({ a: s } = await twoTenants(bare.app));
  });
  afterAll(async () => {
    await bare.close();
  });

  it('answers 503 livekit_not_configured and creates no call', async () => {
    for (const [method, url, payload = '{}'] of [
      ['POST', '/api/v1/voice/livekit/token'],
      ['GET', '/api/v1/voice/livekit/rooms'],
      ['POST', '/api/v1/voice/livekit/rooms'],
      ['POST', '/api/v1/voice/livekit/calls', JSON.stringify({ to: '+14155550100', trunk_id: 'ST_any' })],
      ['POST', '/api/v1/webhooks/livekit'],
    ] as const) {
      const res = await bare.app.inject({
        method,
        url,
        headers: { ...bearer(s.access_token), 'content-type': 'application/json' },
        payload,
      });
      expect([res.statusCode, res.json().error.code], `${method} ${url}`).toEqual([503, 'livekit_not_configured']);
    }
    expect((await call(bare.app, 'GET', '/api/v1/calls', s.access_token)).json().total).toBe(0);
  });
});
