// A local fake of LiveKit's server API (Twirp over HTTP, JSON as livekit-server-sdk sends it) for RoomService,
// SIP and Egress, authenticating like livekit-server's middleware: a Bearer JWT, HS256 with the secret of the key
// named in `iss`, not expired, and the grant each method needs. Errors are Twirp's (`{code, msg}` with
// `Content-Type: application/json` and the code's HTTP status), except where livekit-server itself answers in
// plain text (a token that does not verify). Also signs webhooks exactly as LiveKit does.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, errors as joseErrors, jwtVerify, SignJWT } from 'jose';

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
  /** Outbound trunks are made by the operator (not through this platform): tests add them here. */
  readonly outboundTrunks = new Set<string>();
  readonly dispatchRules: FakeDispatchRule[] = [];
  readonly sipParticipants: Json[] = [];
  readonly egresses = new Map<string, FakeEgress>();
  private server?: Server;
  private failures: { method: string; code: string; msg: string }[] = [];

  /** The next call of `method` fails with this Twirp error (after authentication, as LiveKit's would). */
  failNext(method: string, code: string, msg: string): void {
    this.failures.push({ method, code, msg });
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  /** Twirp method names called so far (e.g. `RoomService/CreateRoom`). */
  called(): string[] {
    return this.requests.map((r) => r.method);
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
      if (mediaType !== 'application/json') throw new TwirpFailure('bad_route', `unexpected Content-Type: ${JSON.stringify(req.headers['content-type'] ?? '')} (this fake speaks JSON only)`);
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
      if (name.length > MAX_ROOM_NAME_LENGTH) throw new TwirpFailure('invalid_argument', `room name length exceeds limits: max length ${MAX_ROOM_NAME_LENGTH}`);
      // CreateRoom is create-or-update in LiveKit: an existing room is returned with the new settings applied.
      const room = this.rooms.get(name) ?? { sid: id('RM_'), name, emptyTimeout: 300, departureTimeout: 20, metadata: '', creationTime: Date.now() };
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
        throw new TwirpFailure('invalid_argument', 'for security, one of the fields must be set: AuthUsername+AuthPassword, AllowedAddresses or Numbers');
      }
      const allowedNumbers = list(trunk, 'allowedNumbers');
      // LiveKit's trunk validation: two trunks for one number need AllowedNumbers to tell them apart.
      for (const other of this.inboundTrunks) {
        const shared = numbers.filter((n) => other.numbers.includes(n));
        const bothOpen = allowedNumbers.length === 0 && other.allowedNumbers.length === 0;
        if (shared.length && (bothOpen || allowedNumbers.some((n) => other.allowedNumbers.includes(n)))) {
          throw new TwirpFailure('invalid_argument', `Conflicting inbound SIP Trunks: "<new>" and "${other.sipTrunkId}", using the same number(s) ${JSON.stringify(shared)} without AllowedNumbers set`);
        }
      }
      const info: FakeInboundTrunk = { sipTrunkId: id('ST_'), name: str(trunk, 'name'), metadata: str(trunk, 'metadata'), numbers, allowedNumbers };
      this.inboundTrunks.push(info);
      return inboundTrunkJson(info);
    },
    'SIP/ListSIPInboundTrunk': (body, claims) => {
      need(claims.sip?.admin);
      const ids = list(body, 'trunkIds');
      const numbers = list(body, 'numbers');
      const items = this.inboundTrunks.filter(
        (t) => (ids.length === 0 || ids.includes(t.sipTrunkId)) && (numbers.length === 0 || t.numbers.length === 0 || t.numbers.some((n) => numbers.includes(n))),
      );
      return { items: items.map(inboundTrunkJson) };
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
      return { sip_dispatch_rule_id: created.sipDispatchRuleId, rule, trunk_ids: trunkIds, hide_phone_number: false, name: created.name, metadata: created.metadata, attributes: created.attributes };
    },
    'SIP/CreateSIPParticipant': (body, claims) => {
      need(claims.sip?.call);
      const trunkId = str(body, 'sipTrunkId');
      if (!trunkId && !field(body, 'trunk')) throw new TwirpFailure('invalid_argument', 'missing sip trunk id');
      const to = str(body, 'sipCallTo');
      if (!to) throw new TwirpFailure('invalid_argument', 'missing sip callee number');
      if (to.includes('@')) throw new TwirpFailure('invalid_argument', 'SipCallTo should be a phone number or SIP user, not a full SIP URI');
      const room = str(body, 'roomName');
      if (!room) throw new TwirpFailure('invalid_argument', 'missing room name');
      if (trunkId && !this.outboundTrunks.has(trunkId)) throw new TwirpFailure('not_found', 'requested sip trunk does not exist');
      // The callee's room is created when it does not exist yet.
      if (!this.rooms.has(room)) this.rooms.set(room, { sid: id('RM_'), name: room, emptyTimeout: 300, departureTimeout: 20, metadata: '', creationTime: Date.now() });
      this.sipParticipants.push(body);
      return { participant_id: id('PA_'), participant_identity: str(body, 'participantIdentity') || 'sip-participant', room_name: room, sip_call_id: id('SCL_') };
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
  auth_username: '',
  auth_password: '',
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
