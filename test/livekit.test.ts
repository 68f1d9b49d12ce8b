// The LiveKit API against the fake LiveKit server: a web call's token, rooms scoped per tenant (another tenant's is
// 404 and untouched), SIP provisioning limited to the tenant's own numbers, and the webhook: signed events are
// recorded on the call their room carries and room_finished ends it; anything not signed over the exact body is
// 403 with nothing recorded. Without LiveKit configured, the routes answer 503 livekit_not_configured.
import { randomUUID } from 'node:crypto';
import { jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { roomName } from '../src/telephony/livekit.js';
import { FakeLiveKit } from './fakes/livekit.js';
import { bearer, buildTestApp, call, type Session, type TestApp, twoTenants } from './helpers.js';

let fake: FakeLiveKit;
let t: TestApp;
let a: Session;
let b: Session;
beforeAll(async () => {
  fake = await new FakeLiveKit().start();
  t = await buildTestApp({ LIVEKIT_URL: fake.url, LIVEKIT_API_KEY: fake.apiKey, LIVEKIT_API_SECRET: fake.apiSecret, LIVEKIT_SIP_URI: 'sip:fake.sip.example' });
  ({ a, b } = await twoTenants(t.app));
});
afterAll(async () => {
  await t.close();
  await fake.stop();
});

const startCall = async (s: Session) => {
  const res = await call(t.app, 'POST', '/api/v1/voice/livekit/token', s.access_token, {});
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as { call_id: string; room: string; token: string; url: string; expires_at: string };
};
const eventsOf = async (s: Session, callId: string) =>
  (await call(t.app, 'GET', `/api/v1/calls/${callId}/events`, s.access_token)).json().items as { type: string; data: Record<string, unknown> }[];
const deliver = (w: { body: string; headers: Record<string, string> }) => t.app.inject({ method: 'POST', url: '/api/v1/webhooks/livekit', headers: w.headers, payload: w.body });

describe('web call token', () => {
  it('creates the call and its room, and returns a token for that room only', async () => {
    const res = await call(t.app, 'POST', '/api/v1/voice/livekit/token', a.access_token, { name: 'Visitor' });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json();
    expect(body.room).toBe(roomName(a.tenant.id, body.call_id));
    expect(body.url).toBe(fake.url.replace('http://', 'ws://'));
    expect(fake.rooms.has(body.room)).toBe(true);

    const { payload } = await jwtVerify(body.token, new TextEncoder().encode(fake.apiSecret), { issuer: fake.apiKey });
    expect(payload).toMatchObject({ sub: 'caller', name: 'Visitor', video: { roomJoin: true, room: body.room, canPublish: true, canSubscribe: true, canPublishData: false } });
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
      expect.arrayContaining(['/api/v1/voice/livekit/token', '/api/v1/voice/livekit/rooms', '/api/v1/voice/livekit/rooms/{name}', '/api/v1/voice/livekit/sip', '/api/v1/webhooks/livekit']),
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

    const listA = (await call(t.app, 'GET', '/api/v1/voice/livekit/rooms', a.access_token)).json().items.map((r: { name: string }) => r.name);
    expect(listA).toEqual(expect.arrayContaining([a1.room, a2.room.name]));
    expect(listA).not.toContain(b1.room);
    expect(listA.every((n: string) => n.startsWith(`t_${a.tenant.id}_`))).toBe(true);
    const listB = (await call(t.app, 'GET', '/api/v1/voice/livekit/rooms', b.access_token)).json().items.map((r: { name: string }) => r.name);
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
        egressInfo: { egressId: 'EG_1', roomName: c.room, status: 'EGRESS_COMPLETE', fileResults: [{ filename: 'recordings/x.ogg', location: 's3://calls/recordings/x.ogg', duration: '1000000000' }] },
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
      'livekit.room_finished',
      'call.ended',
    ]);
    expect(events[2]!.data).toMatchObject({ room: c.room, room_sid: 'RM_hook', participant_identity: 'caller', participant_kind: 'STANDARD' });
    expect(events[4]!.data).toMatchObject({ egress_id: 'EG_1', egress_status: 'EGRESS_COMPLETE', files: [{ filename: 'recordings/x.ogg', location: 's3://calls/recordings/x.ogg' }] });
    expect(events.at(-1)!.data).toMatchObject({ status: 'completed' });
    expect((await call(t.app, 'GET', `/api/v1/calls/${c.call_id}`, a.access_token)).json()).toMatchObject({ status: 'completed' });
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
    }
    expect((await eventsOf(a, c.call_id)).map((e) => e.type)).toEqual(['call.started']);
    expect((await call(t.app, 'GET', `/api/v1/calls/${c.call_id}`, a.access_token)).json().status).toBe('in_progress');
    // The genuine delivery still works, also as application/json.
    const res = await deliver({ body: good.body, headers: { ...good.headers, 'content-type': 'application/json' } });
    expect([res.statusCode, res.json().recorded]).toEqual([200, true]);
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
    for (const [method, url] of [
      ['POST', '/api/v1/voice/livekit/token'],
      ['GET', '/api/v1/voice/livekit/rooms'],
      ['POST', '/api/v1/voice/livekit/rooms'],
      ['POST', '/api/v1/webhooks/livekit'],
    ] as const) {
      const res = await bare.app.inject({ method, url, headers: { ...bearer(s.access_token), 'content-type': 'application/json' }, payload: '{}' });
      expect([res.statusCode, res.json().error.code], `${method} ${url}`).toEqual([503, 'livekit_not_configured']);
    }
    expect((await call(bare.app, 'GET', '/api/v1/calls', s.access_token)).json().total).toBe(0);
  });
});
