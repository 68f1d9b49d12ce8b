// LiveKit for this platform, on livekit-server-sdk: join tokens, rooms, SIP trunks and dispatch rules, outbound
// SIP calls through the tenant's own trunks, audio-only recordings, webhook verification, and how the agent joins a
// call's room (rtc-node, or a fake in tests). A room belongs to a tenant by its name
// (`t_<tenantId>_<callId>`, inbound SIP rooms `t_<tenantId>_sip_...`), and every method takes the tenant first and
// only ever reads or changes that tenant's rooms.
import {
  AccessToken,
  EgressClient,
  EncodedFileOutput,
  EncodedFileType,
  RoomServiceClient,
  S3Upload,
  SipClient,
  TrackSource,
  TwirpError,
  type VideoGrant,
  WebhookReceiver,
} from 'livekit-server-sdk';
import type { FastifyBaseLogger } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config.js';
import { AppError, notFound } from '../lib/errors.js';
import { ProviderError } from '../lib/provider-error.js';
import { egressRecordingKey } from '../storage/recording-store.js';
import type { CallerWait } from '../voice/transports/livekit.js';
import type { Transport } from '../voice/transports/transport.js';

/** The identity of the person on the call (browser or phone); the agent joins as AGENT_IDENTITY. */
export const CALLER_IDENTITY = 'caller';
export const AGENT_IDENTITY = 'agent';

/** An abandoned room closes on its own: nobody joined within this time, or everybody left this long ago. */
const EMPTY_TIMEOUT_MS = 5 * 60_000;
const DEPARTURE_TIMEOUT_MS = 20_000;
/** Server API calls fail rather than hang a request when LiveKit does not answer. */
const REQUEST_TIMEOUT_MS = 10_000;
/** The agent joins right after the token is made; LiveKit refreshes the token of a connected participant itself. */
const AGENT_TOKEN_TTL_MS = 5 * 60_000;
/** Joining is a signalling round trip and an ICE connection: seconds when LiveKit is well, never this long. */
const AGENT_JOIN_TIMEOUT_MS = 15_000;
/** A browser asking for the microphone, or a phone ringing, before the agent gives the call up. */
const CALLER_TIMEOUT_MS = 60_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ROOM_NAME = /^t_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_(.+)$/;

const tenantPrefix = (tenantId: string) => `t_${checkedUuid(tenantId, 'tenant id')}_`;

/** Ids go into room names that decide ownership: anything but a UUID could forge another tenant's prefix. */
function checkedUuid(id: string, what: string): string {
  if (!UUID.test(id)) throw new Error(`LiveKit rooms are named by UUIDs; got a ${what} that is not one`);
  return id;
}

export function roomName(tenantId: string, callId: string): string {
  return `${tenantPrefix(tenantId)}${checkedUuid(callId, 'call id')}`;
}

/** The prefix of the rooms our dispatch rule puts a tenant's inbound SIP calls in. */
export const sipRoomPrefix = (tenantId: string) => `${tenantPrefix(tenantId)}sip`;

/**
 * The room a call is in: the one named after it, or (`sipRoom`) the room the tenant's dispatch rule made for a phone
 * that dialled in, whose name LiveKit chose. Room names decide ownership, so another tenant's room is refused.
 */
export function callRoom(tenantId: string, callId: string, sipRoom?: string): string {
  if (sipRoom === undefined) return roomName(tenantId, callId);
  if (!sipRoom.startsWith(sipRoomPrefix(tenantId))) throw new Error('not a SIP room of this tenant');
  return sipRoom;
}

/**
 * The participant attribute that carries our call id: set by dialOut, and by the inbound trunk from the `X-Call-Id`
 * SIP header our TwiML adds when Twilio hands a call to LiveKit (Twilio's call row is then the call in the room).
 */
export const CALL_ID_ATTRIBUTE = 'call_id';

/** Our call id in a participant's attributes (CALL_ID_ATTRIBUTE), if there is one that can be. */
export function callIdAttribute(attributes: Record<string, string>): string | undefined {
  const id = attributes[CALL_ID_ATTRIBUTE];
  return id && UUID.test(id) ? id : undefined;
}

/** Whose room a name is, and which call it carries (none for a room made by a SIP dispatch rule). */
export function parseRoomName(name: string): { tenantId: string; callId: string | undefined } | undefined {
  const m = ROOM_NAME.exec(name);
  if (!m) return undefined;
  return { tenantId: m[1]!, callId: UUID.test(m[2]!) ? m[2]! : undefined };
}

/** A LiveKit server API failure: the Twirp code says what went wrong, `retryable` whether to try again later. */
export class LiveKitError extends ProviderError {
  constructor(
    readonly code: string,
    message: string,
    retryable: boolean,
    status?: number,
  ) {
    super('livekit', message, retryable, status);
  }
}

/** The standard Twirp code for an HTTP status, for failures LiveKit answers without a Twirp body. */
function codeForStatus(status: number): string {
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'permission_denied';
  if (status === 404) return 'not_found';
  if (status === 409) return 'already_exists';
  if (status === 429) return 'resource_exhausted';
  if (status === 503) return 'unavailable';
  if (status >= 400 && status < 500) return 'invalid_argument';
  return 'internal';
}

function liveKitError(what: string, err: unknown): Error {
  if (err instanceof AppError) return err;
  if (err instanceof TwirpError) {
    const code = err.code ?? codeForStatus(err.status);
    // LiveKit answers a bad token with a plain-text body that quotes the token back: never pass that on.
    const message =
      code === 'unauthenticated' ? 'LiveKit refused our credentials (check LIVEKIT_API_KEY and LIVEKIT_API_SECRET)' : err.message;
    const retryable = err.status === 408 || err.status === 429 || err.status >= 500;
    return new LiveKitError(code, `${what}: ${code}: ${message}`, retryable, err.status);
  }
  // fetch failed (refused, DNS, timeout): LiveKit is unreachable right now.
  return new LiveKitError('unavailable', `${what}: ${err instanceof Error ? err.message : String(err)}`, true);
}

export type { CallerWait };

/** The agent's end of a call's room: the call's audio, and when the caller is there to hear it. */
export interface AgentRoomTransport extends Transport {
  /** `ready` once the caller is in the room and (a phone) has answered; otherwise why the wait ended. */
  waitForCaller(signal: AbortSignal): Promise<CallerWait>;
}

export interface AgentConnectOptions {
  url: string;
  /** The agent's join token for this one room. */
  token: string;
  /** Who the caller is; without it, the first phone or browser participant (a phone that dialled in). */
  callerIdentity?: string;
  /** Aborted when the agent gives up joining; the connection must then leave the room. */
  signal: AbortSignal;
}

/** Joins a room as the agent; resolves once audio can flow both ways. */
export type AgentConnector = (opts: AgentConnectOptions) => Promise<AgentRoomTransport>;

export interface AgentJoinSettings {
  connect: AgentConnector;
  joinTimeoutMs: number;
  /** How long the agent waits in the room for the caller to join (browser) or answer (phone). */
  callerTimeoutMs: number;
}

/**
 * rtc-node's LiveKitTransport, loaded when an agent first joins a room: its native library is only needed by a
 * deployment that takes LiveKit calls, and never by the tests, which join with a fake.
 */
const rtcConnector: AgentConnector = async (opts) => {
  const { LiveKitTransport } = await import('../voice/transports/livekit.js');
  return LiveKitTransport.connect(opts);
};

export interface LiveKitSettings {
  /** ws(s):// or http(s):// address of the LiveKit server. */
  url: string;
  apiKey: string;
  apiSecret: string;
  /** Where a SIP provider sends calls for LiveKit (sip:...), shown to tenants provisioning numbers. */
  sipUri?: string;
  /** Recordings are uploaded to this bucket by LiveKit's egress when set; otherwise they stay on the egress host. */
  recordingS3?: Config['recordings']['s3'];
  requestTimeoutMs?: number;
  /** How the agent joins call rooms; tests replace `connect` and shorten the timeouts. */
  agent?: Partial<AgentJoinSettings>;
}

export interface LiveKitRoom {
  name: string;
  sid: string;
  /** The call the room carries; undefined for an inbound SIP room. */
  callId: string | undefined;
  numParticipants: number;
  createdAt: Date;
}

export interface JoinToken {
  token: string;
  room: string;
  identity: string;
  expiresAt: Date;
}

export interface OutboundTrunk {
  trunkId: string;
  name: string;
  /** The caller ids the trunk may present. */
  numbers: string[];
}

/** What the operator writes in an outbound trunk's metadata to give it to a tenant. */
const trunkOwner = z.object({ tenant_id: z.string() });

/** The tenant an outbound trunk was given to, if its metadata says so. */
function ownerOfTrunk(metadata: string): string | undefined {
  try {
    const parsed = trunkOwner.safeParse(JSON.parse(metadata));
    return parsed.success ? parsed.data.tenant_id : undefined;
  } catch {
    return undefined;
  }
}

export interface SipProvisioning {
  trunkId: string;
  dispatchRuleId: string;
  numbers: string[];
  roomPrefix: string;
  sipUri: string | undefined;
}

/** The parts of a LiveKit webhook we act on (protobuf-JSON of WebhookEvent, camelCase). */
const webhookJson = z.object({
  event: z.string().default(''),
  id: z.string().default(''),
  createdAt: z.string().optional(),
  room: z.object({ name: z.string().default(''), sid: z.string().default('') }).optional(),
  participant: z
    .object({
      identity: z.string().default(''),
      sid: z.string().default(''),
      kind: z.string().default('STANDARD'),
      attributes: z.record(z.string(), z.string()).default({}),
    })
    .optional(),
  egressInfo: z
    .object({
      egressId: z.string().default(''),
      roomName: z.string().default(''),
      status: z.string().default('EGRESS_STARTING'),
      error: z.string().optional(),
      fileResults: z
        .array(
          z.object({
            filename: z.string().default(''),
            location: z.string().default(''),
            duration: z.string().optional(),
            size: z.string().optional(),
          }),
        )
        .default([]),
    })
    .optional(),
});
export type LiveKitWebhookEvent = z.infer<typeof webhookJson>;

/** The settings LiveKit needs that are missing; all missing means LiveKit is simply not used. */
export function missingLiveKitSettings(c: Config['livekit']): string[] {
  return [!c.url && 'LIVEKIT_URL', !c.apiKey && 'LIVEKIT_API_KEY', !c.apiSecret && 'LIVEKIT_API_SECRET'].filter((x): x is string => !!x);
}

export class LiveKitService {
  readonly url: string;
  readonly sipUri: string | undefined;
  readonly agent: AgentJoinSettings;
  private readonly rooms: RoomServiceClient;
  private readonly sip: SipClient;
  private readonly egress: EgressClient;
  private readonly receiver: WebhookReceiver;

  constructor(private readonly settings: LiveKitSettings) {
    const missing = missingLiveKitSettings(settings);
    if (missing.length) throw new Error(`LiveKit is not configured: set ${missing.join(', ')}`);
    this.url = settings.url;
    this.sipUri = settings.sipUri;
    this.agent = { connect: rtcConnector, joinTimeoutMs: AGENT_JOIN_TIMEOUT_MS, callerTimeoutMs: CALLER_TIMEOUT_MS, ...settings.agent };
    // The SDK rewrites ws:// to http:// for its server API calls itself; its timeout is in seconds.
    const options = { requestTimeout: Math.ceil((settings.requestTimeoutMs ?? REQUEST_TIMEOUT_MS) / 1000) };
    this.rooms = new RoomServiceClient(settings.url, settings.apiKey, settings.apiSecret, options);
    this.sip = new SipClient(settings.url, settings.apiKey, settings.apiSecret, options);
    this.egress = new EgressClient(settings.url, settings.apiKey, settings.apiSecret, options);
    this.receiver = new WebhookReceiver(settings.apiKey, settings.apiSecret);
  }

  /**
   * The service when LIVEKIT_URL, _API_KEY and _API_SECRET are all set; undefined when LiveKit is not used. Half a
   * configuration is a deployment mistake: it is logged, and the LiveKit routes answer 503 saying what is missing.
   */
  static fromConfig(config: Config, log?: Pick<FastifyBaseLogger, 'warn'>): LiveKitService | undefined {
    const c = config.livekit;
    const missing = missingLiveKitSettings(c);
    if (missing.length && missing.length < 3) log?.warn({ missing }, 'LiveKit is partly configured and will not be used');
    if (missing.length) return undefined;
    return new LiveKitService({
      url: c.url!,
      apiKey: c.apiKey!,
      apiSecret: c.apiSecret!,
      sipUri: c.sipUri,
      recordingS3: config.recordings.s3,
    });
  }

  /** The address a browser or SDK connects to (the signalling websocket). */
  get clientUrl(): string {
    return this.url.replace(/^http(s?):\/\//, 'ws$1://');
  }

  // ---- Tokens ----

  /**
   * A token for the person on the call: joins this one room only, publishes a microphone and subscribes; no data
   * messages (LiveKit allows them unless refused), no metadata changes, no admin rights of any kind.
   */
  callerToken(tenantId: string, callId: string, identity: string, ttlMs: number, name?: string): Promise<JoinToken> {
    return this.joinToken(roomName(tenantId, callId), identity, ttlMs, { canPublishData: false }, { name });
  }

  /** The agent's token: the call's room (see callRoom), published as an agent participant; it may send data. */
  agentToken(tenantId: string, callId: string, ttlMs: number, sipRoom?: string): Promise<JoinToken> {
    return this.joinToken(
      callRoom(tenantId, callId, sipRoom),
      AGENT_IDENTITY,
      ttlMs,
      { canPublishData: true },
      { name: 'Agent', kind: 'agent' },
    );
  }

  /**
   * Joins the call's room as the agent (no timeout here: the caller of this bounds it with `signal`). The agent
   * listens to CALLER_IDENTITY only, the identity of both the browser's token and the dialled phone; in a room of
   * the SIP dispatch rule (`sipRoom`), to the phone that dialled in, whose identity LiveKit chose.
   */
  async joinAsAgent(tenantId: string, callId: string, signal: AbortSignal, sipRoom?: string): Promise<AgentRoomTransport> {
    const { token } = await this.agentToken(tenantId, callId, AGENT_TOKEN_TTL_MS, sipRoom);
    signal.throwIfAborted();
    return this.agent.connect({ url: this.clientUrl, token, callerIdentity: sipRoom === undefined ? CALLER_IDENTITY : undefined, signal });
  }

  private async joinToken(
    room: string,
    identity: string,
    ttlMs: number,
    grant: VideoGrant,
    opts: { name?: string; kind?: string },
  ): Promise<JoinToken> {
    const ttlSeconds = Math.max(1, Math.ceil(ttlMs / 1000));
    const at = new AccessToken(this.settings.apiKey, this.settings.apiSecret, { identity, ttl: ttlSeconds, name: opts.name });
    at.addGrant({
      roomJoin: true,
      room,
      canPublish: true,
      canPublishSources: [TrackSource.MICROPHONE],
      canSubscribe: true,
      canUpdateOwnMetadata: false,
      ...grant,
    });
    if (opts.kind) at.kind = opts.kind;
    const expiresAt = new Date(Date.now() + ttlSeconds * 1000);
    return { token: await at.toJwt(), room, identity, expiresAt };
  }

  // ---- Rooms ----

  async createRoom(tenantId: string, callId: string): Promise<LiveKitRoom> {
    const name = roomName(tenantId, callId);
    const room = await this.call('create room', () =>
      this.rooms.createRoom({
        name,
        emptyTimeout: EMPTY_TIMEOUT_MS / 1000,
        departureTimeout: DEPARTURE_TIMEOUT_MS / 1000,
        metadata: JSON.stringify({ tenant_id: tenantId, call_id: callId }),
      }),
    );
    return toRoom(room);
  }

  /** The tenant's active rooms. LiveKit lists every room of the project; only this tenant's are kept. */
  async listRooms(tenantId: string): Promise<LiveKitRoom[]> {
    const prefix = tenantPrefix(tenantId);
    const rooms = await this.call('list rooms', () => this.rooms.listRooms());
    return rooms.filter((r) => r.name.startsWith(prefix)).map(toRoom);
  }

  /** Another tenant's room is not found, exactly like a room that does not exist, and LiveKit is not asked. */
  async deleteRoom(tenantId: string, name: string): Promise<void> {
    if (!name.startsWith(tenantPrefix(tenantId))) throw notFound('Room');
    try {
      await this.call('delete room', () => this.rooms.deleteRoom(name));
    } catch (err) {
      if (err instanceof LiveKitError && err.code === 'not_found') throw notFound('Room');
      throw err;
    }
  }

  // ---- SIP ----

  /**
   * Connects the tenant's numbers to LiveKit: one inbound trunk carrying them, and a dispatch rule that puts each
   * call in a room of its own under the tenant's prefix. Numbers already on a trunk are refused (409) before
   * LiveKit is changed; if the rule cannot be created the new trunk is removed again.
   */
  async provisionSip(tenantId: string, numbers: string[]): Promise<SipProvisioning> {
    const prefix = sipRoomPrefix(tenantId);
    const existing = await this.call('list SIP trunks', () => this.sip.listSipInboundTrunk({ numbers }));
    const taken = numbers.filter((n) => existing.some((t) => t.numbers.includes(n)));
    if (taken.length) throw new AppError('conflict', `Already connected to LiveKit: ${taken.join(', ')}`);
    const metadata = JSON.stringify({ tenant_id: tenantId });
    // A call Twilio hands over (telephony mode `livekit`) names its call row in X-Call-Id: see CALL_ID_ATTRIBUTE.
    const headersToAttributes = { 'X-Call-Id': CALL_ID_ATTRIBUTE };
    const trunk = await this.call('create SIP trunk', () =>
      this.sip.createSipInboundTrunk(`tenant ${tenantId}`, numbers, { metadata, headersToAttributes }),
    );
    try {
      const rule = await this.call('create SIP dispatch rule', () =>
        this.sip.createSipDispatchRule(
          { type: 'individual', roomPrefix: prefix },
          { name: `tenant ${tenantId}`, trunkIds: [trunk.sipTrunkId], metadata, attributes: { tenant_id: tenantId } },
        ),
      );
      return {
        trunkId: trunk.sipTrunkId,
        dispatchRuleId: rule.sipDispatchRuleId,
        numbers: trunk.numbers,
        roomPrefix: prefix,
        sipUri: this.sipUri,
      };
    } catch (err) {
      // A trunk without a rule takes calls and leaves them nowhere: do not leave one behind.
      await this.sip.deleteSipTrunk(trunk.sipTrunkId).catch(() => undefined);
      throw err;
    }
  }

  /**
   * The tenant's outbound trunk, or 404 exactly as for a trunk that does not exist. Outbound trunks are made by the
   * operator, outside this platform, with the provider's credentials; the operator gives one to a tenant by writing
   * `{"tenant_id": "<uuid>"}` in its metadata (the label this service puts on the inbound trunks it makes). Only a
   * holder of the sip.admin grant can write trunk metadata, and tenants never get one, so the label cannot be forged
   * by a tenant. All trunks are listed and matched here: asked for ids, LiveKit answers a nil entry for an id it does
   * not know, which the SDK's JSON decoding may refuse.
   */
  async outboundTrunk(tenantId: string, trunkId: string): Promise<OutboundTrunk> {
    const trunks = await this.call('list SIP outbound trunks', () => this.sip.listSipOutboundTrunk());
    const trunk = trunks.find((t) => t.sipTrunkId === trunkId);
    if (!trunk || ownerOfTrunk(trunk.metadata) !== checkedUuid(tenantId, 'tenant id')) throw notFound('SIP trunk');
    return { trunkId: trunk.sipTrunkId, name: trunk.name, numbers: trunk.numbers };
  }

  /**
   * Dials `to` through an outbound trunk into the call's room; the callee joins as CALLER_IDENTITY. The caller
   * decides whether this tenant may use `trunkId` and `fromNumber`.
   */
  async dialOut(
    tenantId: string,
    callId: string,
    input: { to: string; trunkId: string; fromNumber?: string },
  ): Promise<{ participantId: string; participantIdentity: string; sipCallId: string; room: string }> {
    const room = roomName(tenantId, callId);
    const p = await this.call('dial out', () =>
      this.sip.createSipParticipant(input.trunkId, input.to, room, {
        fromNumber: input.fromNumber,
        participantIdentity: CALLER_IDENTITY,
        participantName: 'Phone',
        participantAttributes: { tenant_id: tenantId, [CALL_ID_ATTRIBUTE]: callId },
        playDialtone: false,
      }),
    );
    return { participantId: p.participantId, participantIdentity: p.participantIdentity, sipCallId: p.sipCallId, room };
  }

  // ---- Recording ----

  /** Starts an audio-only recording of the call's room (Ogg/Opus, see callRoom); returns LiveKit's egress id. */
  async startRecording(tenantId: string, callId: string, sipRoom?: string): Promise<string> {
    const room = callRoom(tenantId, callId, sipRoom);
    const s3 = this.settings.recordingS3;
    const file = new EncodedFileOutput({
      fileType: EncodedFileType.OGG,
      filepath: egressRecordingKey(tenantId, callId),
      output: s3
        ? {
            case: 's3',
            value: new S3Upload({
              bucket: s3.bucket,
              region: s3.region,
              endpoint: s3.endpoint ?? '',
              accessKey: s3.accessKeyId ?? '',
              secret: s3.secretAccessKey ?? '',
              forcePathStyle: s3.forcePathStyle,
            }),
          }
        : { case: undefined },
    });
    const info = await this.call('start recording', () => this.egress.startRoomCompositeEgress(room, file, { audioOnly: true }));
    return info.egressId;
  }

  // ---- Webhooks ----

  /**
   * A LiveKit webhook, verified as the SDK's WebhookReceiver does: the Authorization header is a JWT signed with our
   * API secret and issued by our API key, and its `sha256` claim is the hash of exactly these body bytes.
   * Throws `invalid_signature` (403) for anything not signed so, `bad_request` for a signed body that is not an event.
   */
  async verifyWebhook(rawBody: string, authorization: string | undefined): Promise<LiveKitWebhookEvent> {
    // LiveKit sends the bare token; a Bearer prefix is tolerated.
    const token = authorization?.replace(/^Bearer\s+/i, '').trim();
    if (!token) throw new AppError('invalid_signature', 'Missing the Authorization header LiveKit signs webhooks with');
    let event;
    try {
      event = await this.receiver.receive(rawBody, token);
    } catch (err) {
      if (isVerificationFailure(err)) throw new AppError('invalid_signature', 'The webhook is not signed by our LiveKit server');
      throw new AppError('bad_request', 'The webhook body is not a LiveKit event');
    }
    const parsed = webhookJson.safeParse(event.toJson());
    if (!parsed.success) throw new AppError('bad_request', 'The webhook body is not a LiveKit event');
    return parsed.data;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw liveKitError(what, err);
    }
  }
}

/** Errors of the signature check (jose's JWT errors, the body hash), as opposed to a body that does not parse. */
function isVerificationFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('ERR_J')) return true;
  return /sha256|authorization header|invalid token/i.test(err.message);
}

function toRoom(r: { name: string; sid: string; numParticipants: number; creationTime: bigint; creationTimeMs?: bigint }): LiveKitRoom {
  const ms = r.creationTimeMs && r.creationTimeMs > 0n ? Number(r.creationTimeMs) : Number(r.creationTime) * 1000;
  return { name: r.name, sid: r.sid, callId: parseRoomName(r.name)?.callId, numParticipants: r.numParticipants, createdAt: new Date(ms) };
}
