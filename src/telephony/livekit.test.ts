// LiveKitService against the fake LiveKit server: tokens carry only the grants they should, rooms are scoped per
// tenant, LiveKit's refusals surface with their Twirp code, SIP and egress requests carry the right fields, an
// outbound trunk serves only the tenant its metadata names, the agent joins with its own token, and webhooks verify
// only when signed over these exact bytes. The fake's own checks are tested too: it must refuse what LiveKit
// refuses, or the rest proves nothing. Also here, because it is what the agent relies on: LiveKitTransport's
// waitForCaller, on a plain event emitter standing in for rtc-node's Room.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ParticipantKind, type Room, RoomEvent } from '@livekit/rtc-node';
import { jwtVerify, SignJWT } from 'jose';
import { RoomServiceClient, SipClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeLiveKit } from '../../test/fakes/livekit.js';
import { AppError } from '../lib/errors.js';
import { LiveKitTransport } from '../voice/transports/livekit.js';
import { type AgentConnectOptions, LiveKitError, LiveKitService, parseRoomName, roomName, sipRoomPrefix } from './livekit.js';

let fake: FakeLiveKit;
let lk: LiveKitService;
const tenantA = randomUUID();
const tenantB = randomUUID();

beforeAll(async () => {
  fake = await new FakeLiveKit().start();
  lk = new LiveKitService({ url: fake.url, apiKey: fake.apiKey, apiSecret: fake.apiSecret, sipUri: 'sip:fake.sip.example' });
});
afterAll(async () => {
  await fake.stop();
});

const decode = async (token: string, secret = fake.apiSecret) =>
  (await jwtVerify(token, new TextEncoder().encode(secret), { issuer: fake.apiKey })).payload;
const rejection = async (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (err: unknown) => err,
  );

describe('room names', () => {
  it('belong to one tenant and one call, and refuse ids that are not UUIDs', () => {
    const callId = randomUUID();
    expect(roomName(tenantA, callId)).toBe(`t_${tenantA}_${callId}`);
    expect(parseRoomName(roomName(tenantA, callId))).toEqual({ tenantId: tenantA, callId });
    expect(parseRoomName(`${sipRoomPrefix(tenantA)}_+14155550100_abc`)).toEqual({ tenantId: tenantA, callId: undefined });
    expect(parseRoomName('my-room')).toBeUndefined();
    expect(() => roomName(`${tenantA}_x`, callId)).toThrow(/UUID/);
    expect(() => roomName(tenantA, 'x')).toThrow(/UUID/);
  });
});

describe('tokens', () => {
  it('lets the caller join its own room with a microphone, and nothing more', async () => {
    const callId = randomUUID();
    const before = Math.floor(Date.now() / 1000);
    const t = await lk.callerToken(tenantA, callId, 'caller', 10 * 60_000, 'Web visitor');
    const claims = await decode(t.token);
    expect(t.room).toBe(roomName(tenantA, callId));
    expect(claims).toMatchObject({ iss: fake.apiKey, sub: 'caller', name: 'Web visitor' });
    expect(claims.video).toEqual({
      roomJoin: true,
      room: roomName(tenantA, callId),
      canPublish: true,
      canPublishSources: ['microphone'],
      canSubscribe: true,
      canUpdateOwnMetadata: false,
      canPublishData: false,
    });
    expect(claims.sip).toBeUndefined();
    expect(claims.kind).toBeUndefined();
    expect(claims.exp! - before).toBeGreaterThanOrEqual(600);
    expect(claims.exp! - before).toBeLessThanOrEqual(602);
    expect(Math.abs(t.expiresAt.getTime() / 1000 - claims.exp!)).toBeLessThanOrEqual(2);
    // Signed with our secret and nothing else.
    await expect(decode(t.token, 'another-secret')).rejects.toThrow();
  });

  it('gives the agent the same room as an agent participant', async () => {
    const callId = randomUUID();
    const claims = await decode((await lk.agentToken(tenantA, callId, 60_000)).token);
    expect(claims).toMatchObject({
      sub: 'agent',
      kind: 'agent',
      video: { roomJoin: true, room: roomName(tenantA, callId), canPublish: true, canSubscribe: true, canPublishData: true },
    });
    const video = claims.video as Record<string, unknown>;
    for (const admin of ['roomCreate', 'roomList', 'roomAdmin', 'roomRecord', 'ingressAdmin']) expect(video[admin]).toBeUndefined();
  });
});

describe('rooms', () => {
  it('creates, lists and deletes only the tenant’s own rooms', async () => {
    const [a1, a2, b1] = [randomUUID(), randomUUID(), randomUUID()];
    const room = await lk.createRoom(tenantA, a1);
    expect(room).toMatchObject({ name: roomName(tenantA, a1), callId: a1, numParticipants: 0 });
    expect(room.sid).toMatch(/^RM_/);
    expect(Math.abs(room.createdAt.getTime() - Date.now())).toBeLessThan(5_000);
    await lk.createRoom(tenantA, a2);
    await lk.createRoom(tenantB, b1);
    const created = fake.requests.find((r) => r.method === 'RoomService/CreateRoom' && r.body.name === roomName(tenantA, a1))!;
    expect(created.body).toMatchObject({ emptyTimeout: 300, departureTimeout: 20 });
    expect(JSON.parse(created.body.metadata as string)).toEqual({ tenant_id: tenantA, call_id: a1 });

    expect((await lk.listRooms(tenantA)).map((r) => r.callId).sort()).toEqual([a1, a2].sort());
    expect((await lk.listRooms(tenantB)).map((r) => r.callId)).toEqual([b1]);

    // Another tenant's room is "not found", and LiveKit is never asked to delete it.
    const deletes = fake.called().filter((m) => m === 'RoomService/DeleteRoom').length;
    const foreign = await rejection(lk.deleteRoom(tenantA, roomName(tenantB, b1)));
    expect(foreign).toBeInstanceOf(AppError);
    expect(foreign).toMatchObject({ code: 'not_found', status: 404 });
    expect(fake.called().filter((m) => m === 'RoomService/DeleteRoom').length).toBe(deletes);
    expect(fake.rooms.has(roomName(tenantB, b1))).toBe(true);

    await lk.deleteRoom(tenantA, roomName(tenantA, a1));
    expect(fake.rooms.has(roomName(tenantA, a1))).toBe(false);
    // Gone in LiveKit too: not found, reported as such.
    expect(await rejection(lk.deleteRoom(tenantA, roomName(tenantA, a1)))).toMatchObject({ code: 'not_found', status: 404 });
  });

  it('surfaces a wrong API secret as unauthenticated, without the token LiveKit quotes back', async () => {
    const wrong = new LiveKitService({ url: fake.url, apiKey: fake.apiKey, apiSecret: 'not-the-secret' });
    const callId = randomUUID();
    const err = await rejection(wrong.createRoom(tenantA, callId));
    expect(err).toBeInstanceOf(LiveKitError);
    expect(err).toMatchObject({ code: 'unauthenticated', status: 401, retryable: false });
    expect((err as Error).message).not.toMatch(/eyJ/);
    expect(fake.rooms.has(roomName(tenantA, callId))).toBe(false);
  });

  it('reports an unreachable server as retryable', async () => {
    const down = new LiveKitService({ url: 'http://127.0.0.1:9', apiKey: fake.apiKey, apiSecret: fake.apiSecret });
    expect(await rejection(down.listRooms(tenantA))).toMatchObject({ code: 'unavailable', retryable: true });
  });
});

describe('the fake refuses what LiveKit refuses', () => {
  const post = (method: string, body: object, headers: Record<string, string>) =>
    fetch(`${fake.url}/twirp/livekit.${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  const sign = (claims: object, opts: { secret?: string; iss?: string; expiresInMs?: number } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(opts.iss ?? fake.apiKey)
      .setNotBefore(now)
      .setExpirationTime(now + Math.round((opts.expiresInMs ?? 600_000) / 1000))
      .sign(new TextEncoder().encode(opts.secret ?? fake.apiSecret));
  };

  it('answers Twirp errors for missing grants and plain 401s for bad tokens', async () => {
    const noAuth = await post('RoomService/ListRooms', {}, {});
    expect([noAuth.status, noAuth.headers.get('content-type'), await noAuth.json()]).toEqual([
      401,
      'application/json',
      { code: 'unauthenticated', msg: 'permissions denied' },
    ]);
    const wrongGrant = await post(
      'RoomService/CreateRoom',
      { name: 'x' },
      { authorization: `Bearer ${await sign({ video: { roomList: true } })}` },
    );
    expect([wrongGrant.status, (await wrongGrant.json()).code]).toEqual([401, 'unauthenticated']);
    expect(fake.rooms.has('x')).toBe(false);
    const sipWithoutCall = await post('SIP/CreateSIPParticipant', {}, { authorization: `Bearer ${await sign({ sip: { admin: true } })}` });
    expect(sipWithoutCall.status).toBe(401);
    const expired = await post(
      'RoomService/ListRooms',
      {},
      { authorization: `Bearer ${await sign({ video: { roomList: true } }, { expiresInMs: -120_000 })}` },
    );
    expect([expired.status, expired.headers.get('content-type')]).toEqual([401, 'text/plain; charset=utf-8']);
    const otherKey = await post(
      'RoomService/ListRooms',
      {},
      { authorization: `Bearer ${await sign({ video: { roomList: true } }, { iss: 'APIother' })}` },
    );
    expect(otherKey.status).toBe(401);
    const forged = await post(
      'RoomService/ListRooms',
      {},
      { authorization: `Bearer ${await sign({ video: { roomList: true } }, { secret: 'guess' })}` },
    );
    expect(forged.status).toBe(401);
    const ok = await post('RoomService/ListRooms', {}, { authorization: `Bearer ${await sign({ video: { roomList: true } })}` });
    expect(ok.status).toBe(200);
    const protobuf = await fetch(`${fake.url}/twirp/livekit.RoomService/ListRooms`, {
      method: 'POST',
      headers: { 'content-type': 'application/protobuf', authorization: `Bearer ${await sign({ video: { roomList: true } })}` },
      body: '',
    });
    expect([protobuf.status, (await protobuf.json()).code]).toEqual([404, 'bad_route']);
    const unknown = await post('RoomService/Nope', {}, { authorization: `Bearer ${await sign({ video: { roomList: true } })}` });
    expect([unknown.status, (await unknown.json()).code]).toEqual([404, 'bad_route']);
  });

  it('refuses a second trunk for a number, as LiveKit does', async () => {
    const sip = new SipClient(fake.url, fake.apiKey, fake.apiSecret);
    await sip.createSipInboundTrunk('one', ['+15550009999']);
    const err = await rejection(sip.createSipInboundTrunk('two', ['+15550009999']));
    expect(err).toMatchObject({ status: 400, code: 'invalid_argument' });
    expect((err as Error).message).toMatch(/Conflicting inbound SIP Trunks/);
    const rooms = new RoomServiceClient(fake.url, fake.apiKey, fake.apiSecret);
    expect(await rejection(rooms.deleteRoom('never-created'))).toMatchObject({ status: 404, code: 'not_found' });
  });
});

describe('SIP', () => {
  it('provisions a trunk for the numbers and a rule sending each call to its own tenant room', async () => {
    const numbers = ['+14155550101', '+14155550102'];
    const p = await lk.provisionSip(tenantA, numbers);
    expect(p).toMatchObject({ numbers, roomPrefix: `t_${tenantA}_sip`, sipUri: 'sip:fake.sip.example' });
    expect(p.trunkId).toMatch(/^ST_/);
    expect(p.dispatchRuleId).toMatch(/^SDR_/);
    const trunk = fake.inboundTrunks.find((t) => t.sipTrunkId === p.trunkId)!;
    expect(trunk.numbers).toEqual(numbers);
    expect(JSON.parse(trunk.metadata)).toEqual({ tenant_id: tenantA });
    const rule = fake.dispatchRules.find((r) => r.sipDispatchRuleId === p.dispatchRuleId)!;
    expect(rule.rule).toEqual({ dispatchRuleIndividual: { roomPrefix: `t_${tenantA}_sip` } });
    expect(rule.trunkIds).toEqual([p.trunkId]);
    expect(rule.attributes).toEqual({ tenant_id: tenantA });
    // A room LiveKit makes from this rule (`<prefix>_<caller>_<random>`) parses back to the tenant.
    expect(parseRoomName(`${p.roomPrefix}_+15551230000_Abc123`)).toEqual({ tenantId: tenantA, callId: undefined });

    // Numbers already connected are refused before LiveKit is changed.
    const trunks = fake.inboundTrunks.length;
    const again = await rejection(lk.provisionSip(tenantA, ['+14155550102', '+14155550103']));
    expect(again).toMatchObject({ code: 'conflict', status: 409 });
    expect((again as Error).message).toContain('+14155550102');
    expect((again as Error).message).not.toContain('+14155550103');
    expect(fake.inboundTrunks.length).toBe(trunks);
  });

  it('removes the new trunk when the dispatch rule is refused', async () => {
    const before = fake.inboundTrunks.length;
    fake.failNext('SIP/CreateSIPDispatchRule', 'invalid_argument', 'Conflicting SIP Dispatch Rules');
    expect(await rejection(lk.provisionSip(tenantB, ['+14155550199']))).toMatchObject({ code: 'invalid_argument', status: 400 });
    expect(fake.inboundTrunks.length).toBe(before);
    expect(fake.called().slice(-3)).toEqual(['SIP/CreateSIPInboundTrunk', 'SIP/CreateSIPDispatchRule', 'SIP/DeleteSIPTrunk']);
  });

  it('dials out through an outbound trunk into the call’s room', async () => {
    const trunkId = fake.addOutboundTrunk({ numbers: ['+14155550101'] });
    const callId = randomUUID();
    const r = await lk.dialOut(tenantA, callId, { to: '+14155550123', trunkId, fromNumber: '+14155550101' });
    expect(r).toMatchObject({ room: roomName(tenantA, callId), participantIdentity: 'caller' });
    expect(r.sipCallId).toMatch(/^SCL_/);
    const req = fake.requests.findLast((x) => x.method === 'SIP/CreateSIPParticipant')!;
    expect(req.body).toMatchObject({
      sipTrunkId: trunkId,
      sipCallTo: '+14155550123',
      sipNumber: '+14155550101',
      roomName: roomName(tenantA, callId),
      participantIdentity: 'caller',
    });
    expect(req.claims.sip).toEqual({ call: true });
    expect(await rejection(lk.dialOut(tenantA, randomUUID(), { to: '+14155550123', trunkId: 'ST_missing' }))).toMatchObject({
      code: 'not_found',
      status: 404,
    });
  });
});

describe('outbound trunks', () => {
  it('serve only the tenant their metadata names; any other trunk is not found, like a missing one', async () => {
    const mine = fake.addOutboundTrunk({
      name: 'A carrier',
      numbers: ['+14155550160', '*'],
      metadata: JSON.stringify({ tenant_id: tenantA }),
    });
    const theirs = fake.addOutboundTrunk({ numbers: ['+14155550161'], metadata: JSON.stringify({ tenant_id: tenantB }) });
    const unlabelled = fake.addOutboundTrunk({ numbers: ['+14155550162'] });
    const junk = fake.addOutboundTrunk({ metadata: 'tenant_id=' + tenantA });
    const loose = fake.addOutboundTrunk({ metadata: JSON.stringify({ tenant: tenantA }) });

    expect(await lk.outboundTrunk(tenantA, mine)).toEqual({ trunkId: mine, name: 'A carrier', numbers: ['+14155550160', '*'] });
    expect(fake.requests.findLast((r) => r.method === 'SIP/ListSIPOutboundTrunk')!.claims.sip).toEqual({ admin: true });
    expect((await lk.outboundTrunk(tenantB, theirs)).trunkId).toBe(theirs);
    for (const id of [theirs, unlabelled, junk, loose, 'ST_missing']) {
      const err = await rejection(lk.outboundTrunk(tenantA, id));
      expect(err, id).toBeInstanceOf(AppError);
      expect(err, id).toMatchObject({ code: 'not_found', status: 404 });
    }
    expect(await rejection(lk.outboundTrunk(tenantB, mine))).toMatchObject({ code: 'not_found' });
  });
});

describe('the agent joining a room', () => {
  it('connects to the client address with an agent token for the call’s room, listening to the caller only', async () => {
    const joins: AgentConnectOptions[] = [];
    const withAgent = new LiveKitService({
      url: fake.url,
      apiKey: fake.apiKey,
      apiSecret: fake.apiSecret,
      agent: {
        connect: async (opts) => {
          joins.push(opts);
          return fake.connectAgent(opts);
        },
      },
    });
    expect(withAgent.agent).toMatchObject({ joinTimeoutMs: 15_000, callerTimeoutMs: 60_000 });
    const callId = randomUUID();
    const transport = await withAgent.joinAsAgent(tenantA, callId, new AbortController().signal);
    expect(joins).toHaveLength(1);
    expect(joins[0]).toMatchObject({ url: fake.url.replace('http://', 'ws://'), callerIdentity: 'caller' });
    expect(await decode(joins[0]!.token)).toMatchObject({
      sub: 'agent',
      kind: 'agent',
      video: { roomJoin: true, room: roomName(tenantA, callId) },
    });
    expect(fake.agentIn(roomName(tenantA, callId))).toBe(transport);
    await transport.close('done');

    // Given up before it began: nothing connects.
    const aborted = new AbortController();
    aborted.abort(new Error('too late'));
    expect(await rejection(withAgent.joinAsAgent(tenantA, randomUUID(), aborted.signal))).toMatchObject({ message: 'too late' });
    expect(joins).toHaveLength(1);
  });

  it('refuses, in the fake as in LiveKit, a token not signed by the server’s key', async () => {
    const callId = randomUUID();
    const forged = new LiveKitService({
      url: fake.url,
      apiKey: fake.apiKey,
      apiSecret: 'not-the-secret',
      agent: { connect: fake.connectAgent },
    });
    expect(await rejection(forged.joinAsAgent(tenantA, callId, new AbortController().signal))).toBeInstanceOf(Error);
    expect(fake.agentIn(roomName(tenantA, callId))).toBeUndefined();
  });
});

describe('LiveKitTransport.waitForCaller', () => {
  class FakeRoom extends EventEmitter {
    readonly remoteParticipants = new Map<string, { identity: string; kind: ParticipantKind; attributes: Record<string, string> }>();
    join(identity: string, kind: ParticipantKind, attributes: Record<string, string> = {}) {
      const p = { identity, kind, attributes };
      this.remoteParticipants.set(identity, p);
      this.emit(RoomEvent.ParticipantConnected, p);
      return p;
    }
    async disconnect(): Promise<void> {}
  }
  const source = { captureFrame: async () => {}, clearQueue: () => {}, close: async () => {} };
  const setup = () => {
    const room = new FakeRoom();
    return { room, transport: new LiveKitTransport(room as unknown as Room, source, 16000, { callerIdentity: 'caller' }) };
  };
  const state = (p: Promise<string>) => Promise.race([p, new Promise((r) => setTimeout(() => r('pending'), 20))]);

  it('resolves for a browser caller already in the room or joining, not for anyone else', async () => {
    const first = setup();
    first.room.join('caller', ParticipantKind.STANDARD);
    expect(await first.transport.waitForCaller(new AbortController().signal)).toBe('ready');

    const { room, transport } = setup();
    const waiting = transport.waitForCaller(new AbortController().signal);
    room.join('agent-2', ParticipantKind.AGENT);
    room.join('observer', ParticipantKind.STANDARD);
    room.join('EG_recorder', ParticipantKind.EGRESS);
    expect(await state(waiting)).toBe('pending');
    room.join('caller', ParticipantKind.STANDARD);
    expect(await waiting).toBe('ready');
    expect(room.listenerCount(RoomEvent.ParticipantConnected)).toBe(0);
  });

  it('waits for a phone to be answered, and says why it stopped waiting otherwise', async () => {
    const { room, transport } = setup();
    const waiting = transport.waitForCaller(new AbortController().signal);
    const phone = room.join('caller', ParticipantKind.SIP, { 'sip.callStatus': 'dialing' });
    expect(await state(waiting)).toBe('pending');
    phone.attributes['sip.callStatus'] = 'active';
    room.emit(RoomEvent.ParticipantAttributesChanged, { 'sip.callStatus': 'active' }, phone);
    expect(await waiting).toBe('ready');

    const unanswered = setup();
    const ringing = unanswered.transport.waitForCaller(new AbortController().signal);
    const p = unanswered.room.join('caller', ParticipantKind.SIP, { 'sip.callStatus': 'ringing' });
    unanswered.room.emit(RoomEvent.ParticipantDisconnected, p);
    expect(await ringing).toBe('left');
    expect(await unanswered.transport.waitForCaller(new AbortController().signal)).toBe('left');

    const closed = setup();
    const inClosedRoom = closed.transport.waitForCaller(new AbortController().signal);
    closed.room.emit(RoomEvent.Disconnected, 0);
    expect(await inClosedRoom).toBe('room_closed');

    const abandoned = setup();
    const controller = new AbortController();
    const wait = abandoned.transport.waitForCaller(controller.signal);
    controller.abort();
    expect(await wait).toBe('abandoned');
    expect(abandoned.room.listenerCount(RoomEvent.ParticipantAttributesChanged)).toBe(0);
  });
});

describe('recording', () => {
  it('starts an audio-only room composite egress to a file for the call', async () => {
    const callId = randomUUID();
    await lk.createRoom(tenantA, callId);
    const egressId = await lk.startRecording(tenantA, callId);
    expect(egressId).toMatch(/^EG_/);
    const req = fake.requests.findLast((x) => x.method === 'Egress/StartRoomCompositeEgress')!;
    expect(req.claims.video).toEqual({ roomRecord: true });
    expect(req.body).toMatchObject({ roomName: roomName(tenantA, callId), audioOnly: true });
    expect(req.body.fileOutputs).toEqual([{ fileType: 'OGG', filepath: `recordings/${tenantA}/${callId}.ogg` }]);
    expect(fake.egresses.get(egressId)?.roomName).toBe(roomName(tenantA, callId));
    expect(await rejection(lk.startRecording(tenantA, randomUUID()))).toMatchObject({ code: 'not_found' });
  });

  it('has LiveKit upload to the recordings bucket when one is configured', async () => {
    const s3 = {
      bucket: 'calls',
      region: 'eu-west-1',
      endpoint: 'http://minio:9000',
      accessKeyId: 'AK',
      secretAccessKey: 'SK',
      forcePathStyle: true,
    };
    const withS3 = new LiveKitService({ url: fake.url, apiKey: fake.apiKey, apiSecret: fake.apiSecret, recordingS3: s3 });
    const callId = randomUUID();
    await withS3.createRoom(tenantA, callId);
    await withS3.startRecording(tenantA, callId);
    const req = fake.requests.findLast((x) => x.method === 'Egress/StartRoomCompositeEgress')!;
    expect((req.body.fileOutputs as object[])[0]).toMatchObject({
      s3: { bucket: 'calls', region: 'eu-west-1', endpoint: 'http://minio:9000', accessKey: 'AK', secret: 'SK', forcePathStyle: true },
    });
  });
});

describe('webhooks', () => {
  const event = { event: 'room_started', room: { sid: 'RM_1', name: roomName(tenantA, randomUUID()) } };

  it('accepts a webhook signed over exactly its body', async () => {
    const { body, headers } = await fake.webhook(event);
    const verified = await lk.verifyWebhook(body, headers.authorization);
    expect(verified).toMatchObject({ event: 'room_started', room: event.room });
    expect(verified.id).toMatch(/^EV_/);
    // The test vector of protocols.md 2.6: the claim is the padded base64 SHA-256 of the body bytes.
    const vector = await fake.webhook({}, { rawBody: '{"event":"room_started"}' });
    expect((await decode(vector.headers.authorization!)).sha256).toBe('w9NV0uLHjSON8P7eonnkKXDHY4ICORefbHDCviKIgX8=');
    expect(await lk.verifyWebhook(vector.body, vector.headers.authorization)).toMatchObject({ event: 'room_started' });
  });

  it('refuses a tampered body, another secret or key, an expired token and a missing header', async () => {
    const { body, headers } = await fake.webhook(event);
    const cases: [string, string | undefined][] = [
      [body.replace('room_started', 'room_finished'), headers.authorization],
      [`${body} `, headers.authorization],
      [body, (await fake.webhook(event, { apiSecret: 'wrong' })).headers.authorization],
      [body, (await fake.webhook(event, { apiKey: 'APIother' })).headers.authorization],
      [body, undefined],
      [body, ''],
      [body, 'not-a-jwt'],
    ];
    for (const [b, auth] of cases) {
      const err = await rejection(lk.verifyWebhook(b, auth));
      expect(err, `${auth?.slice(0, 10)} ${b.slice(0, 40)}`).toMatchObject({ code: 'invalid_signature', status: 403 });
    }
    const old = await fake.webhook(event, { issuedAt: new Date(Date.now() - 3_600_000) });
    expect(await rejection(lk.verifyWebhook(old.body, old.headers.authorization))).toMatchObject({ code: 'invalid_signature' });
  });
});
