// A local fake of LiveKit's server API (Twirp over HTTP, JSON as livekit-server-sdk sends it) for RoomService,
// SIP and Egress, authenticating like livekit-server's middleware: a Bearer JWT, HS256 with the secret of the key
// named in `iss`, not expired, and the grant each method needs. Errors are Twirp's (`{code, msg}` with
// `Content-Type: application/json` and the code's HTTP status), except where livekit-server itself answers in
// plain text (a token that does not verify). Also signs webhooks exactly as LiveKit does, and lets the agent join
// rooms without rtc-node or a media server (connectAgent): the test plays the caller on a MemoryTransport.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { decodeJwt, errors as joseErrors, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import type { AgentConnector, AgentRoomTransport, CallerWait } from '../../src/telephony/livekit.js';
import type { AudioFrame } from '../../src/voice/audio.js';
import { MemoryTransport } from '../../src/voice/transports/memory.js';
import { listenLocal, type LocalServer } from './local-server.js';

/** Twirp's code -> HTTP status table. */
const TWIRP_STATUS: Record<string, number> = {
  invalid_argument: 400,
  malformed: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  bad_route: 404,
  already_exists: 409,
  failed_precondition: 412,
  internal: 500,
  unimplemented: 501,
};

/** livekit-server's limits.max_room_name_length default. */
const MAX_ROOM_NAME_LENGTH = 256;
/** go-jose's default leeway when livekit-server checks exp and nbf. */
const CLOCK_LEEWAY_MS = 60_000;
/** How long LiveKit's webhook tokens are valid. */
const WEBHOOK_TOKEN_TTL_MS = 5 * 60_000;

type Json = Record<string, unknown>;
interface Claims {
  iss?: string;
  video?: { roomCreate?: boolean; roomList?: boolean; roomAdmin?: boolean; roomRecord?: boolean; room?: string };
  sip?: { admin?: boolean; call?: boolean };
}

class TwirpFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface FakeRoom {
  sid: string;
  name: string;
  emptyTimeout: number;
  departureTimeout: number;
  metadata: string;
  creationTime: number;
}
export interface FakeInboundTrunk {
  sipTrunkId: string;
  name: string;
  metadata: string;
  numbers: string[];
  allowedNumbers: string[];
  /** SIP header name -> participant attribute name, for the headers of an inbound call. */
  headersToAttributes: Record<string, string>;
}
export interface FakeOutboundTrunk {
  sipTrunkId: string;
  name: string;
  metadata: string;
  address: string;
  numbers: string[];
}
export interface FakeDispatchRule {
  sipDispatchRuleId: string;
  rule: Json;
  trunkIds: string[];
  name: string;
  metadata: string;
  attributes: Record<string, string>;
}
export interface FakeEgress {
  egressId: string;
  roomName: string;
  status: string;
  request: Json;
}

/** Reads a protobuf-JSON field by its JSON (camelCase) or proto (snake_case) name: servers accept both. */
function field<T>(body: Json, camel: string): T | undefined {
  const snake = camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return (body[camel] ?? body[snake]) as T | undefined;
}
const str = (body: Json, name: string) => field<string>(body, name) ?? '';
const list = (body: Json, name: string) => field<string[]>(body, name) ?? [];
const id = (prefix: string) => `${prefix}${randomBytes(6).toString('base64url')}`;

export class FakeLiveKit {
  readonly apiKey = `APIfake${randomBytes(4).toString('hex')}`;
  readonly apiSecret = randomBytes(24).toString('base64url');
  url = '';
  /** Every authenticated call, in order: what our code actually asked LiveKit for. */
  readonly requests: { method: string; body: Json; claims: Claims }[] = [];
  readonly rooms = new Map<string, FakeRoom>();
  readonly inboundTrunks: FakeInboundTrunk[] = [];
  /** Outbound trunks are made by the operator (not through this platform): tests add them with addOutboundTrunk. */
  readonly outboundTrunks: FakeOutboundTrunk[] = [];
  readonly dispatchRules: FakeDispatchRule[] = [];
  readonly sipParticipants: Json[] = [];
  readonly egresses = new Map<string, FakeEgress>();
  /** Every agent that joined a room, in order. */
  readonly agents: FakeAgentTransport[] = [];
  /** Whether the caller is already in the room when the agent joins (otherwise the test says when: callerJoins). */
  callerPresent = false;
  private listening?: LocalServer;
  private failures: { method: string; code: string; msg: string }[] = [];
  private joinScripts: ({ kind: 'fail'; error: Error } | { kind: 'hold'; released: Promise<void> })[] = [];

  /** An outbound trunk as the operator makes it in LiveKit (the platform has no API for it); returns its id. */
  addOutboundTrunk(trunk: { numbers?: string[]; metadata?: string; name?: string } = {}): string {
    const sipTrunkId = id('ST_');
    this.outboundTrunks.push({
      sipTrunkId,
      name: trunk.name ?? 'outbound',
      metadata: trunk.metadata ?? '',
      address: 'sip.carrier.example',
      numbers: trunk.numbers ?? [],
    });
    return sipTrunkId;
  }

  // ---- The agent's side of a room ----

  /** The next agent join fails as rtc-node's connect would (signalling refused, no ICE connection...). */
  failNextJoin(error: Error): void {
    this.joinScripts.push({ kind: 'fail', error });
  }

  /**
   * The next agent join hangs until release(), then joins, whatever the agent's signal said meanwhile: the worst
   * case of a connection that answers late. `aborted` tells whether the agent gave up on it.
   */
  holdNextJoin(): { release(): void; readonly aborted: boolean } {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    this.joinScripts.push({ kind: 'hold', released });
    let signal: AbortSignal | undefined;
    this.holdSignals.push((s) => (signal = s));
    return {
      release,
      get aborted() {
        return signal?.aborted ?? false;
      },
    };
  }
  private holdSignals: ((signal: AbortSignal) => void)[] = [];

  /**
   * Joins as LiveKit's signalling would let a participant join: only with a token this server's key signed, not
   * expired, granting roomJoin to one room, at this server's websocket address. A room that does not exist is
   * created, as LiveKit's auto_create does.
   */
  readonly connectAgent: AgentConnector = async (opts) => {
    const script = this.joinScripts.shift();
    if (script?.kind === 'fail') throw script.error;
    if (script?.kind === 'hold') {
      this.holdSignals.shift()?.(opts.signal);
      await script.released;
    }
    if (opts.url !== this.url.replace(/^http/, 'ws')) throw new Error(`could not establish signal connection to ${opts.url}`);
    const { payload } = await jwtVerify(opts.token, new TextEncoder().encode(this.apiSecret), {
      algorithms: ['HS256'],
      issuer: this.apiKey,
      requiredClaims: ['exp', 'sub'],
    });
    const video = (payload as Claims & { video?: { roomJoin?: boolean } }).video;
    if (!video?.roomJoin || !video.room) throw new Error('could not establish signal connection: permissions denied');
    if (!this.rooms.has(video.room))
      this.rooms.set(video.room, {
        sid: id('RM_'),
        name: video.room,
        emptyTimeout: 300,
        departureTimeout: 20,
        metadata: '',
        creationTime: Date.now(),
      });
    const agent = new FakeAgentTransport(video.room, payload, opts.callerIdentity, this.requests.length);
    this.agents.push(agent);
    if (this.callerPresent) agent.callerJoins();
    return agent;
  };

  /** The agent in this room, once it has joined. */
  agentIn(room: string): FakeAgentTransport | undefined {
    return this.agents.findLast((a) => a.room === room);
  }

  /** The next call of `method` fails with this Twirp error (after authentication, as LiveKit's would). */
  failNext(method: string, code: string, msg: string): void {
    this.failures.push({ method, code, msg });
  }

  async start(): Promise<this> {
    this.listening = await listenLocal(createServer((req, res) => void this.handle(req, res)));
    this.url = this.listening.origin;
    return this;
  }

  async stop(): Promise<void> {
    for (const a of this.agents) a.roomClosed();
    await this.listening?.close();
  }

  /** Twirp method names called so far (e.g. `RoomService/CreateRoom`). */
  called(): string[] {
    return this.requests.map((r) => r.method);
  }

  // ---- Inbound SIP ----

  /**
   * A phone call reaching LiveKit's SIP service, routed as LiveKit routes it: the inbound trunk holding the dialled
   * number (and allowing the caller), then that trunk's dispatch rule. An individual rule puts the caller in a new
   * room `<prefix>_<caller number>_<random>` as participant `sip_<caller number>` of kind SIP, with LiveKit's `sip.*`
   * attributes, the rule's attributes, and the SIP headers the trunk maps to attributes. Returns the room and the
   * participant_joined event LiveKit then sends (sign it with webhook()); throws as LiveKit refuses the INVITE when
   * no trunk or rule takes the call.
   */
  sipInbound(call: { from: string; to: string; headers?: Record<string, string> }): { room: string; event: Json } {
    const trunk = this.inboundTrunks.find(
      (t) => t.numbers.includes(call.to) && (t.allowedNumbers.length === 0 || t.allowedNumbers.includes(call.from)),
    );
    if (!trunk) throw new Error(`SIP 404: no inbound trunk for ${call.to}`);
    const rule = this.dispatchRules.find((r) => r.trunkIds.length === 0 || r.trunkIds.includes(trunk.sipTrunkId));
    if (!rule) throw new Error(`SIP 404: no dispatch rule for trunk ${trunk.sipTrunkId}`);
    const individual = field<Json>(rule.rule, 'dispatchRuleIndividual');
    if (!individual) throw new Error('the fake dispatches individual rules only');
    const room = `${str(individual, 'roomPrefix')}_${call.from}_${randomBytes(6).toString('hex')}`;
    this.rooms.set(room, { sid: id('RM_'), name: room, emptyTimeout: 300, departureTimeout: 20, metadata: '', creationTime: Date.now() });
    const attributes: Record<string, string> = { ...rule.attributes };
    // Header names are matched without regard to case, as SIP does.
    for (const [header, value] of Object.entries(call.headers ?? {})) {
      const mapped = Object.entries(trunk.headersToAttributes).find(([h]) => h.toLowerCase() === header.toLowerCase());
      if (mapped) attributes[mapped[1]] = value;
    }
    Object.assign(attributes, {
      'sip.callID': id('SCL_'),
      'sip.callStatus': 'active',
      'sip.phoneNumber': call.from,
      'sip.trunkPhoneNumber': call.to,
      'sip.trunkID': trunk.sipTrunkId,
      'sip.ruleID': rule.sipDispatchRuleId,
    });
    const participant = { sid: id('PA_'), identity: `sip_${call.from}`, state: 'ACTIVE', kind: 'SIP', attributes };
    return { room, event: { event: 'participant_joined', room: { sid: this.rooms.get(room)!.sid, name: room }, participant } };
  }

  // ---- Webhooks ----

  /**
   * A webhook request as LiveKit's server sends it: the WebhookEvent as protobuf-JSON, `Content-Type:
   * application/webhook+json`, and `Authorization: <JWT>` (no Bearer) signed with the API secret, valid 5 minutes,
   * whose `sha256` claim is the base64 SHA-256 of the body.
   */
  async webhook(
    event: Json,
    opts: { apiKey?: string; apiSecret?: string; validForMs?: number; issuedAt?: Date; rawBody?: string } = {},
  ): Promise<{ body: string; headers: Record<string, string> }> {
    const body = opts.rawBody ?? JSON.stringify({ id: id('EV_'), createdAt: String(Math.floor(Date.now() / 1000)), ...event });
    const sha256 = createHash('sha256').update(body).digest('base64');
    // JWT times are whole seconds.
    const now = Math.floor((opts.issuedAt ?? new Date()).getTime() / 1000);
    const token = await new SignJWT({ sha256 })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(opts.apiKey ?? this.apiKey)
      .setNotBefore(now)
      .setIssuedAt(now)
      .setExpirationTime(now + Math.round((opts.validForMs ?? WEBHOOK_TOKEN_TTL_MS) / 1000))
      .sign(new TextEncoder().encode(opts.apiSecret ?? this.apiSecret));
    return { body, headers: { authorization: token, 'content-type': 'application/webhook+json', 'user-agent': 'LiveKit' } };
  }

  // ---- Twirp server ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    try {
      const auth = await this.authenticate(req, res);
      if (auth === 'answered') return;
      const match = /^\/twirp\/livekit\.(\w+)\/(\w+)$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !match) throw new TwirpFailure('bad_route', `no handler for path ${JSON.stringify(req.url)}`);
      // Twirp compares the media type before any parameters; the SDK sends application/json;charset=UTF-8.
      const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (mediaType !== 'application/json')
        throw new TwirpFailure(
          'bad_route',
          `unexpected Content-Type: ${JSON.stringify(req.headers['content-type'] ?? '')} (this fake speaks JSON only)`,
        );
      let body: Json;
      try {
        const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        body = parsed as Json;
      } catch {
        throw new TwirpFailure('malformed', 'the json request could not be decoded');
      }
      const method = `${match[1]}/${match[2]}`;
      const handler = this.handlers[method];
      if (!handler) throw new TwirpFailure('bad_route', `no handler for path "/twirp/livekit.${method}"`);
      this.requests.push({ method, body, claims: auth });
      const scripted = this.failures.findIndex((f) => f.method === method);
      if (scripted >= 0) {
        const [f] = this.failures.splice(scripted, 1);
        throw new TwirpFailure(f!.code, f!.msg);
      }
      const out = handler(body, auth);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out));
    } catch (caught) {
      // A bug in the fake answers as LiveKit's own failures do, instead of crashing the test run.
      const err = caught instanceof TwirpFailure ? caught : new TwirpFailure('internal', String(caught));
      // Exactly `application/json`: the SDK only reads code and msg when the header is equal to that string.
      res.writeHead(TWIRP_STATUS[err.code] ?? 500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: err.code, msg: err.message }));
    }
  }

  /**
   * livekit-server's APIKeyAuthMiddleware: a malformed or unverifiable token is refused at once with 401 and a
   * plain-text body; a request without one goes on with no grants (and the method refuses it).
   */
  private async authenticate(req: IncomingMessage, res: ServerResponse): Promise<Claims | 'answered'> {
    const header = req.headers.authorization;
    if (header === undefined || header === '') return {};
    const plain401 = (text: string) => {
      res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(text);
      return 'answered' as const;
    };
    if (!header.startsWith('Bearer ')) return plain401('invalid authorization header. Must start with Bearer ');
    const token = header.slice('Bearer '.length);
    let iss: string | undefined;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      return plain401('invalid authorization token');
    }
    if (iss !== this.apiKey) return plain401(`invalid API key: ${iss ?? ''}`);
    try {
      const { payload } = await jwtVerify(token, new TextEncoder().encode(this.apiSecret), {
        algorithms: ['HS256'],
        issuer: this.apiKey,
        clockTolerance: CLOCK_LEEWAY_MS / 1000,
        // Every token the SDK signs carries exp; one without it would never expire.
        requiredClaims: ['exp'],
      });
      return payload as Claims;
    } catch (err) {
      const reason = err instanceof joseErrors.JOSEError ? err.code : 'invalid';
      return plain401(`invalid token: ..., error: ${reason}`);
    }
  }

  private readonly handlers: Record<string, (body: Json, claims: Claims) => Json> = {
    'RoomService/CreateRoom': (body, claims) => {
      need(claims.video?.roomCreate);
      const name = str(body, 'name');
      if (name.length > MAX_ROOM_NAME_LENGTH)
        throw new TwirpFailure('invalid_argument', `room name length exceeds limits: max length ${MAX_ROOM_NAME_LENGTH}`);
      // CreateRoom is create-or-update in LiveKit: an existing room is returned with the new settings applied.
      const room = this.rooms.get(name) ?? {
        sid: id('RM_'),
        name,
        emptyTimeout: 300,
        departureTimeout: 20,
        metadata: '',
        creationTime: Date.now(),
      };
      const emptyTimeout = field<number>(body, 'emptyTimeout');
      const departureTimeout = field<number>(body, 'departureTimeout');
      if (emptyTimeout) room.emptyTimeout = emptyTimeout;
      if (departureTimeout) room.departureTimeout = departureTimeout;
      if (str(body, 'metadata')) room.metadata = str(body, 'metadata');
      this.rooms.set(name, room);
      return roomJson(room);
    },
    'RoomService/ListRooms': (body, claims) => {
      need(claims.video?.roomList);
      const names = list(body, 'names');
      return { rooms: [...this.rooms.values()].filter((r) => names.length === 0 || names.includes(r.name)).map(roomJson) };
    },
    // DeleteRoom needs roomCreate, not roomAdmin, in livekit-server.
    'RoomService/DeleteRoom': (body, claims) => {
      need(claims.video?.roomCreate);
      const name = str(body, 'room');
      if (!this.rooms.delete(name)) throw new TwirpFailure('not_found', 'requested room does not exist');
      // Everyone in the room is disconnected, the agent too.
      for (const a of this.agents) if (a.room === name) a.roomClosed();
      return {};
    },
    'SIP/CreateSIPInboundTrunk': (body, claims) => {
      need(claims.sip?.admin);
      const trunk = field<Json>(body, 'trunk');
      if (!trunk) throw new TwirpFailure('invalid_argument', 'missing trunk');
      if (str(trunk, 'sipTrunkId')) throw new TwirpFailure('invalid_argument', 'trunk id must not be set');
      const numbers = list(trunk, 'numbers');
      const hasAuth = str(trunk, 'authUsername') !== '' || str(trunk, 'authPassword') !== '';
      if (!hasAuth && list(trunk, 'allowedAddresses').length === 0 && numbers.length === 0) {
        throw new TwirpFailure(
          'invalid_argument',
          'for security, one of the fields must be set: AuthUsername+AuthPassword, AllowedAddresses or Numbers',
        );
      }
      const allowedNumbers = list(trunk, 'allowedNumbers');
      // LiveKit's trunk validation: two trunks for one number need AllowedNumbers to tell them apart.
      for (const other of this.inboundTrunks) {
        const shared = numbers.filter((n) => other.numbers.includes(n));
        const bothOpen = allowedNumbers.length === 0 && other.allowedNumbers.length === 0;
        if (shared.length && (bothOpen || allowedNumbers.some((n) => other.allowedNumbers.includes(n)))) {
          throw new TwirpFailure(
            'invalid_argument',
            `Conflicting inbound SIP Trunks: "<new>" and "${other.sipTrunkId}", using the same number(s) ${JSON.stringify(shared)} without AllowedNumbers set`,
          );
        }
      }
      const headersToAttributes = field<Record<string, string>>(trunk, 'headersToAttributes') ?? {};
      const info: FakeInboundTrunk = {
        sipTrunkId: id('ST_'),
        name: str(trunk, 'name'),
        metadata: str(trunk, 'metadata'),
        numbers,
        allowedNumbers,
        headersToAttributes,
      };
      this.inboundTrunks.push(info);
      return inboundTrunkJson(info);
    },
    'SIP/ListSIPInboundTrunk': (body, claims) => {
      need(claims.sip?.admin);
      const ids = list(body, 'trunkIds');
      const numbers = list(body, 'numbers');
      const items = this.inboundTrunks.filter(
        (t) =>
          (ids.length === 0 || ids.includes(t.sipTrunkId)) &&
          (numbers.length === 0 || t.numbers.length === 0 || t.numbers.some((n) => numbers.includes(n))),
      );
      return { items: items.map(inboundTrunkJson) };
    },
    'SIP/ListSIPOutboundTrunk': (body, claims) => {
      need(claims.sip?.admin);
      const ids = list(body, 'trunkIds');
      const numbers = list(body, 'numbers');
      const items = this.outboundTrunks.filter(
        (t) => (ids.length === 0 || ids.includes(t.sipTrunkId)) && (numbers.length === 0 || t.numbers.some((n) => numbers.includes(n))),
      );
      return { items: items.map(outboundTrunkJson) };
    },
    'SIP/DeleteSIPTrunk': (body, claims) => {
      need(claims.sip?.admin);
      const trunkId = str(body, 'sipTrunkId');
      if (!trunkId) throw new TwirpFailure('invalid_argument', 'trunk ID is required');
      const at = this.inboundTrunks.findIndex((t) => t.sipTrunkId === trunkId);
      if (at < 0) throw new TwirpFailure('not_found', 'requested sip trunk does not exist');
      this.inboundTrunks.splice(at, 1);
      return { sip_trunk_id: trunkId };
    },
    'SIP/CreateSIPDispatchRule': (body, claims) => {
      need(claims.sip?.admin);
      const wrapped = field<Json>(body, 'dispatchRule');
      const info = wrapped ?? body;
      const rule = field<Json>(info, 'rule');
      if (!rule) throw new TwirpFailure('invalid_argument', 'missing rule');
      const trunkIds = list(info, 'trunkIds');
      const pin = (r: Json) => str(Object.values(r)[0] as Json, 'pin');
      // LiveKit's rule validation: two rules for the same trunks (or both for every trunk) and the same PIN clash.
      for (const other of this.dispatchRules) {
        const sameTrunks = (trunkIds.length === 0 && other.trunkIds.length === 0) || trunkIds.some((t) => other.trunkIds.includes(t));
        if (sameTrunks && pin(rule) === pin(other.rule)) {
          throw new TwirpFailure('invalid_argument', `Conflicting SIP Dispatch Rules: "<new>" and "${other.sipDispatchRuleId}"`);
        }
      }
      const created: FakeDispatchRule = {
        sipDispatchRuleId: id('SDR_'),
        rule,
        trunkIds,
        name: str(info, 'name'),
        metadata: str(info, 'metadata'),
        attributes: field<Record<string, string>>(info, 'attributes') ?? {},
      };
      this.dispatchRules.push(created);
      return {
        sip_dispatch_rule_id: created.sipDispatchRuleId,
        rule,
        trunk_ids: trunkIds,
        hide_phone_number: false,
        name: created.name,
        metadata: created.metadata,
        attributes: created.attributes,
      };
    },
    'SIP/CreateSIPParticipant': (body, claims) => {
      need(claims.sip?.call);
      const trunkId = str(body, 'sipTrunkId');
      if (!trunkId && !field(body, 'trunk')) throw new TwirpFailure('invalid_argument', 'missing sip trunk id');
      const to = str(body, 'sipCallTo');
      if (!to) throw new TwirpFailure('invalid_argument', 'missing sip callee number');
      if (to.includes('@'))
        throw new TwirpFailure('invalid_argument', 'SipCallTo should be a phone number or SIP user, not a full SIP URI');
      const room = str(body, 'roomName');
      if (!room) throw new TwirpFailure('invalid_argument', 'missing room name');
      if (trunkId && !this.outboundTrunks.some((t) => t.sipTrunkId === trunkId))
        throw new TwirpFailure('not_found', 'requested sip trunk does not exist');
      // The callee's room is created when it does not exist yet.
      if (!this.rooms.has(room))
        this.rooms.set(room, {
          sid: id('RM_'),
          name: room,
          emptyTimeout: 300,
          departureTimeout: 20,
          metadata: '',
          creationTime: Date.now(),
        });
      this.sipParticipants.push(body);
      return {
        participant_id: id('PA_'),
        participant_identity: str(body, 'participantIdentity') || 'sip-participant',
        room_name: room,
        sip_call_id: id('SCL_'),
      };
    },
    'Egress/StartRoomCompositeEgress': (body, claims) => {
      need(claims.video?.roomRecord);
      const roomName = str(body, 'roomName');
      const room = this.rooms.get(roomName);
      if (!room) throw new TwirpFailure('not_found', 'requested room does not exist');
      const outputs = ['file', 'stream', 'segments', 'fileOutputs', 'streamOutputs', 'segmentOutputs', 'imageOutputs'].filter((k) => {
        const v = field<unknown>(body, k);
        return Array.isArray(v) ? v.length > 0 : v !== undefined;
      });
      if (outputs.length === 0) throw new TwirpFailure('invalid_argument', 'no output');
      const egress: FakeEgress = { egressId: id('EG_'), roomName, status: 'EGRESS_STARTING', request: body };
      this.egresses.set(egress.egressId, egress);
      return egressJson(egress, room.sid);
    },
    'Egress/StopEgress': (body, claims) => {
      need(claims.video?.roomRecord);
      const egress = this.egresses.get(str(body, 'egressId'));
      if (!egress) throw new TwirpFailure('not_found', 'egress does not exist');
      egress.status = 'EGRESS_ENDING';
      return egressJson(egress, this.rooms.get(egress.roomName)?.sid ?? '');
    },
  };
}

/**
 * A missing grant: livekit-server wraps it with twirpAuthError, so the code is `unauthenticated` (401) with the
 * message "permissions denied", not `permission_denied`.
 */
function need(grant: boolean | undefined): void {
  if (!grant) throw new TwirpFailure('unauthenticated', 'permissions denied');
}

// Responses as a stock Twirp server writes them: proto (snake_case) names, int64 as strings, defaults included.
const roomJson = (r: FakeRoom) => ({
  sid: r.sid,
  name: r.name,
  empty_timeout: r.emptyTimeout,
  departure_timeout: r.departureTimeout,
  max_participants: 0,
  creation_time: String(Math.floor(r.creationTime / 1000)),
  creation_time_ms: String(r.creationTime),
  turn_password: '',
  enabled_codecs: [],
  metadata: r.metadata,
  num_participants: 0,
  num_publishers: 0,
  active_recording: false,
});
const inboundTrunkJson = (t: FakeInboundTrunk) => ({
  sip_trunk_id: t.sipTrunkId,
  name: t.name,
  metadata: t.metadata,
  numbers: t.numbers,
  allowed_addresses: [],
  allowed_numbers: t.allowedNumbers,
  headers_to_attributes: t.headersToAttributes,
  auth_username: '',
  auth_password: '',
});
const outboundTrunkJson = (t: FakeOutboundTrunk) => ({
  sip_trunk_id: t.sipTrunkId,
  name: t.name,
  metadata: t.metadata,
  address: t.address,
  transport: 'SIP_TRANSPORT_AUTO',
  numbers: t.numbers,
  auth_username: '',
  auth_password: '',
  headers: {},
  headers_to_attributes: {},
  attributes_to_headers: {},
});
const egressJson = (e: FakeEgress, roomId: string) => ({
  egress_id: e.egressId,
  room_id: roomId,
  room_name: e.roomName,
  status: e.status,
  started_at: '0',
  ended_at: '0',
  updated_at: String(Date.now() * 1_000_000),
  error: '',
  file_results: [],
});

/**
 * The agent's end of a room without a media server: the call's audio is a MemoryTransport the test speaks into as
 * the caller (`caller.say`), and the caller joins (a browser in the room, a phone answering) or leaves when the test
 * says so. Its kind is `livekit`, as LiveKitTransport's, so VoiceCalls leaves recording to Egress here too.
 */
export class FakeAgentTransport implements AgentRoomTransport {
  readonly kind = 'livekit';
  readonly caller = new MemoryTransport(16000);
  callerInRoom = false;
  closedReason: string | undefined;
  private callerLeft = false;
  private waiters = new Set<(outcome: CallerWait) => void>();

  constructor(
    readonly room: string,
    /** The claims of the token the agent joined with. */
    readonly claims: JWTPayload,
    readonly callerIdentity: string | undefined,
    /** How many server API requests the fake had answered when the agent joined (to tell what came first). */
    readonly requestsBefore: number,
  ) {
    this.caller.onHangup(() => this.settle(this.callerLeft ? 'left' : 'room_closed'));
  }

  get sampleRate(): number {
    return this.caller.sampleRate;
  }

  /** The caller is in the room and can hear the agent. */
  callerJoins(): void {
    this.callerInRoom = true;
    this.settle('ready');
  }

  /** The caller leaves the room (hangs up, or a phone that was never answered stops ringing). */
  callerLeaves(): void {
    if (this.caller.closedReason === undefined) this.callerLeft = true;
    this.caller.hangup();
  }

  /** LiveKit closed the room: the agent is disconnected, which LiveKitTransport reports as a hangup. */
  roomClosed(): void {
    this.closedReason ??= 'the room was closed';
    this.caller.hangup();
  }

  waitForCaller(signal: AbortSignal): Promise<CallerWait> {
    if (this.callerInRoom) return Promise.resolve('ready');
    if (this.caller.closedReason !== undefined) return Promise.resolve(this.callerLeft ? 'left' : 'room_closed');
    if (signal.aborted) return Promise.resolve('abandoned');
    return new Promise((resolve) => {
      const done = (outcome: CallerWait) => {
        this.waiters.delete(done);
        signal.removeEventListener('abort', giveUp);
        resolve(outcome);
      };
      const giveUp = () => done('abandoned');
      this.waiters.add(done);
      signal.addEventListener('abort', giveUp, { once: true });
    });
  }

  audio(): AsyncIterable<AudioFrame> {
    return this.caller.audio();
  }
  send(frame: AudioFrame): void {
    this.caller.send(frame);
  }
  mark(name: string): Promise<boolean> {
    return this.caller.mark(name);
  }
  clear(): void {
    this.caller.clear();
  }
  onDtmf(listener: (digit: string) => void): void {
    this.caller.onDtmf(listener);
  }
  onHangup(listener: () => void): void {
    this.caller.onHangup(listener);
  }
  onPlayed(listener: (frame: AudioFrame) => void): void {
    this.caller.onPlayed(listener);
  }
  now(): number {
    return this.caller.now();
  }
  async close(reason: string): Promise<void> {
    this.closedReason ??= reason;
    this.settle('room_closed');
    await this.caller.close(reason);
  }

  private settle(outcome: CallerWait): void {
    for (const w of [...this.waiters]) w(outcome);
  }
}
