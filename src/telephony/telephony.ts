// Phone and browser calls around the voice pipeline: Twilio's voice and status webhooks (after the route checked
// their signature), the media websockets (Twilio Media Streams, browser PCM) that become a call's Transport,
// outbound calls through Twilio's REST API, and hang-up and transfer of live calls from any instance.
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import type { Config } from '../config.js';
import { AppError } from '../lib/errors.js';
import type { CallTokenService, VerifiedMediaToken } from '../services/call-tokens.js';
import type { Call, CallService, CallStatus } from '../services/calls.js';
import { E164, type PhoneNumberService } from '../services/phone-numbers.js';
import type { CallMetadata, CallVariables } from '../lib/call-input.js';
import type { AgentOverrides } from '../services/settings-schema.js';
import type { SettingsService } from '../services/settings.js';
import type { CallControl, CallScope } from '../voice/call-control.js';
import type { CallOutcome } from '../voice/call-session.js';
import { BrowserTransport, holdEarlyMessages } from '../voice/transports/browser-ws.js';
import { TwilioMediaStreamTransport, type TwilioStart } from '../voice/transports/twilio-media-stream.js';
import type { Transport } from '../voice/transports/transport.js';
import type { MediaProcess, UpgradeRequest } from './media-process.js';
import { type Admission, isRefusal, type Lease } from '../voice/admission.js';
import { ALL_LINES_BUSY, lostAfterMs, type VoiceCalls } from '../voice/voice-calls.js';
import { TwilioError, TwilioNetworkError, TwilioRest } from './twilio-rest.js';
import { connectStream, dialNumber, dialSip, sayAndHangup } from './twiml.js';

/** Twilio's CallStatus values -> ours. */
const TWILIO_STATUS: Record<string, CallStatus> = {
  queued: 'queued',
  initiated: 'queued',
  ringing: 'ringing',
  'in-progress': 'in_progress',
  answered: 'in_progress',
  completed: 'completed',
  busy: 'busy',
  failed: 'failed',
  'no-answer': 'no_answer',
  canceled: 'canceled',
};

export const NOT_IN_SERVICE = 'Sorry, the number you have called is not in service. Goodbye.';
/** What an inbound caller hears when the tenant's monthly minutes or spend cap is reached (no agent is started). */
export const BUDGET_EXCEEDED_MESSAGE = 'Sorry, we cannot take your call right now. Please try again later. Goodbye.';

/**
 * Where Twilio dials a call it hands to LiveKit: LIVEKIT_SIP_URI, with the dialled number as its user when the URI
 * names only LiveKit's SIP host (`sip:xyz.sip.livekit.cloud`). LiveKit picks the inbound trunk by the number called,
 * so the call lands in the room of the tenant whose trunk holds that number (POST /api/v1/voice/livekit/sip). A URI
 * with a user of its own is used as it is.
 */
export function liveKitSipTarget(sipUri: string, dialled: string): string {
  const m = /^(sips?:)([^@?]+)$/i.exec(sipUri);
  return m && E164.test(dialled) ? `${m[1]}${dialled}@${m[2]}` : sipUri;
}

/** Twilio's longest call (its time limit is at most 24 hours). */
const MAX_CALL_SECONDS = 24 * 3600;
/** Twilio's terminal statuses (ours): the call is over. */
const TERMINAL = new Set<CallStatus>(['completed', 'failed', 'busy', 'no_answer', 'canceled']);
/**
 * How long a status callback saying the call is over waits for the session carrying its audio to end it (its
 * recording stored first). Well within Twilio's 15 s for a callback's answer; a session gone (its instance stopped)
 * is not waited for longer than this.
 */
const SESSION_END_WAIT_MS = 5_000;

/**
 * Twilio's CallDuration (whole seconds) in ms, or undefined when it is not a plausible duration (negative, a
 * fraction, longer than any call): the call's own timestamps measure it then, and an out-of-range number never
 * reaches the database's integer column.
 */
export function twilioDurationMs(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,6}$/.test(value.trim())) return undefined;
  const seconds = Number(value.trim());
  return seconds <= MAX_CALL_SECONDS ? seconds * 1000 : undefined;
}

export const TWILIO_VOICE_PATH = '/api/v1/webhooks/twilio/voice';
export const TWILIO_STATUS_PATH = '/api/v1/webhooks/twilio/status';
export const TWILIO_STREAM_PATH = '/api/v1/voice/twilio/stream';
export const BROWSER_STREAM_PATH = '/api/v1/calls/web/stream';

export interface OutboundCall {
  to: string;
  fromNumberId?: string;
  overrides?: AgentOverrides;
  metadata?: CallMetadata;
  variables?: CallVariables;
}

/** What a tenant attaches to a call it starts (lib/call-input.ts). */
export interface CallInput {
  overrides?: AgentOverrides;
  metadata?: CallMetadata;
  variables?: CallVariables;
}

export class Telephony {
  /** Twilio's REST API, when the platform has Twilio credentials. */
  readonly twilio: TwilioRest | undefined;

  constructor(
    private readonly config: Config,
    private readonly calls: CallService,
    private readonly phoneNumbers: PhoneNumberService,
    private readonly settings: SettingsService,
    private readonly voice: VoiceCalls,
    private readonly control: CallControl,
    private readonly tokens: CallTokenService,
    private readonly log: FastifyBaseLogger,
    /** Every new call (web, inbound, outbound) is admitted here first, or refused. */
    private readonly admission: Admission,
    /** The monthly caps (services/usage.ts): at one, new calls are refused (402 budget_exceeded, or said on the line). */
    private readonly usage?: { assertWithinBudget(tenantId: string): Promise<void> },
    /**
     * The operator's metrics: how late each call's audio is sent (OperatorMetrics.frameGap); and the media process,
     * when Twilio streams are carried by one (MEDIA_PROCESS).
     */
    private readonly media?: { frameGap(ms: number): void; process?: MediaProcess },
  ) {
    const { accountSid, authToken, apiBaseUrl } = config.twilio;
    this.twilio = accountSid && authToken ? new TwilioRest({ accountSid, authToken, apiBaseUrl }) : undefined;
  }

  /** The auth token webhooks are signed with; routes answer 503 without it. */
  get twilioAuthToken(): string | undefined {
    return this.config.twilio.accountSid ? this.config.twilio.authToken : undefined;
  }

  // ---- Twilio webhooks (signature already verified) ----

  /** The voice webhook: the TwiML that connects the call to the agent (or politely ends it). */
  async voiceWebhook(params: Record<string, string>, baseUrl: string): Promise<string> {
    const callSid = params.CallSid ?? '';
    if (params.AccountSid !== this.config.twilio.accountSid || !/^CA[0-9a-f]{32}$/.test(callSid)) {
      this.log.warn({ accountSid: params.AccountSid }, 'voice webhook for another account or without a call');
      return sayAndHangup(NOT_IN_SERVICE);
    }
    // Outbound: the row was made when the call was placed. Inbound: the dialled number names the tenant.
    let call = await this.calls.bySid(callSid);
    let mode: 'media_stream' | 'livekit' = 'media_stream';
    if (!call) {
      const found = await this.phoneNumbers.findForInbound(params.To ?? '');
      if (!found) {
        this.log.info({ to: params.To }, 'call to a number no tenant has');
        return sayAndHangup(NOT_IN_SERVICE);
      }
      mode = found.phoneNumber.mode ?? (await this.settings.forProviders(found.tenantId)).settings.call.telephony_mode;
      const inbound = {
        direction: 'inbound',
        status: 'in_progress',
        fromNumber: params.From ?? '',
        toNumber: params.To ?? '',
        phoneNumberId: found.phoneNumber.id,
        providerCallSid: callSid,
        overrides: found.phoneNumber.overrides,
      } as const;
      try {
        await this.usage?.assertWithinBudget(found.tenantId);
      } catch (err) {
        if (!(err instanceof AppError) || err.code !== 'budget_exceeded') throw err;
        // Recorded like any missed call, with why; no agent, no media stream.
        this.log.warn({ tenantId: found.tenantId }, 'inbound call refused: monthly cap reached');
        const refused = await this.calls.open(found.tenantId, inbound);
        await this.calls.event(found.tenantId, refused.id, 'call.refused', { reason: 'budget_exceeded' });
        await this.calls.end(found.tenantId, refused.id, 'failed', `budget_exceeded: ${err.message}`);
        return sayAndHangup(BUDGET_EXCEEDED_MESSAGE);
      }
      let lease: Lease;
      try {
        lease = await this.admission.admit(found.tenantId, 'inbound');
      } catch (err) {
        if (!isRefusal(err)) throw err;
        // The caller is told, and the tenant sees the call it missed and why.
        this.log.warn({ tenantId: found.tenantId, code: err.code }, 'inbound call refused: all lines busy');
        const refused = await this.calls.open(found.tenantId, inbound);
        await this.calls.event(found.tenantId, refused.id, 'call.refused', { reason: err.code });
        await this.calls.end(found.tenantId, refused.id, 'busy', `${err.code}: ${err.message}`);
        return sayAndHangup(ALL_LINES_BUSY);
      }
      try {
        call = await this.calls.open(found.tenantId, inbound);
      } catch (err) {
        lease.release();
        throw err;
      }
      this.admission.reserve(call.id, lease);
    } else {
      await this.calls.applyProviderStatus(call.tenantId, call.id, 'in_progress', { reason: 'answered' });
    }
    if (call.endedAt) {
      this.admission.cancel(call.id);
      return sayAndHangup(call.status === 'busy' ? ALL_LINES_BUSY : 'This call has already ended. Goodbye.');
    }
    if (mode === 'livekit') {
      if (this.config.livekit.sipUri) {
        await this.calls.event(call.tenantId, call.id, 'twilio.connected', { mode: 'livekit' });
        return dialSip(liveKitSipTarget(this.config.livekit.sipUri, call.toNumber ?? ''), { 'X-Call-Id': call.id });
      }
      this.log.warn({ tenantId: call.tenantId }, 'LiveKit mode chosen but LIVEKIT_SIP_URI is not set; using the media stream');
    }
    const { token } = await this.tokens.sign({ tenantId: call.tenantId, callId: call.id, channel: 'twilio' });
    await this.calls.event(call.tenantId, call.id, 'twilio.connected', { mode: 'media_stream' });
    // call_id is for people and simulators reading the TwiML; the token alone grants the stream.
    return connectStream(`${baseUrl.replace(/^http/, 'ws')}${TWILIO_STREAM_PATH}`, { token, call_id: call.id });
  }

  /** Status callbacks: applied in progress order, once (late or repeated ones change nothing). */
  async statusWebhook(params: Record<string, string>): Promise<void> {
    const call = params.CallSid ? await this.calls.bySid(params.CallSid) : undefined;
    const twilioStatus = params.CallStatus ?? '';
    const status = TWILIO_STATUS[twilioStatus];
    if (!call || !status || params.AccountSid !== this.config.twilio.accountSid) return;
    // A call whose audio a session carries is ended by that session: it stores the recording and writes the call's
    // last usage, then the end, so `recording.ready` comes before `call.ended` and `call.ended` carries the whole
    // cost (voice/README.md). Ending it here first would race both (Twilio's callback and the stream's stop arrive
    // together). So the session is told to hang up and given a moment; a session still ending after it (a slow
    // recording upload) is waited for in the background, as long as its heartbeat says it lives, and Twilio gets its
    // answer now. What Twilio reports applies after, and ends the call only if the session did not.
    if (TERMINAL.has(status) && !call.endedAt && this.carried(call)) {
      const reason = `twilio: ${twilioStatus}`;
      await this.control
        .send(call.id, { type: 'hangup', reason })
        .catch((err: unknown) => this.log.warn({ err, callId: call.id }, 'hang-up could not be sent'));
      const ended = await this.sessionEnded(call, Date.now() + this.sessionEndWaitMs);
      if (!ended) {
        this.afterSession(call, params);
        return;
      }
      return this.applyStatus(call, params, ended);
    }
    await this.applyStatus(call, params, call.endedAt ? 'ended' : undefined);
  }

  /** How long a status callback saying the call is over waits, before answering, for the session to end the call. */
  sessionEndWaitMs = SESSION_END_WAIT_MS;
  /** Status callbacks waiting in the background for the session carrying their call to end it (stop() drops them). */
  private readonly waitingForSessions = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  /** Stops waiting for sessions (shutdown): their sessions end their calls themselves, or the sweeper does. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.allSettled([...this.waitingForSessions]);
    await this.media?.process?.stop();
  }

  /** A session is carrying the call's audio: its heartbeat is recent. */
  private carried(call: Call): boolean {
    return call.lastSeenAt !== null && Date.now() - call.lastSeenAt.getTime() < lostAfterMs(this.config.calls.heartbeatMs);
  }

  /**
   * Applies what Twilio reported (CallService.applyProviderStatus) and records it. `ended`: the call was just seen
   * ended (its session writes its end after its last turn, so the end and its metrics are complete): an end reported
   * now changes nothing, and is not written a second time.
   */
  private async applyStatus(call: Call, params: Record<string, string>, ended?: 'ended' | 'gone'): Promise<void> {
    const twilioStatus = params.CallStatus ?? '';
    const status = TWILIO_STATUS[twilioStatus]!;
    const durationMs = twilioDurationMs(params.CallDuration);
    const changed =
      ended === 'ended' && TERMINAL.has(status)
        ? false
        : await this.calls.applyProviderStatus(call.tenantId, call.id, status, {
            reason: `twilio: ${twilioStatus}`,
            ...(durationMs !== undefined && { durationMs }),
          });
    await this.calls.event(call.tenantId, call.id, 'twilio.status', {
      status: twilioStatus,
      sequence: params.SequenceNumber ?? null,
      applied: changed,
    });
    // A call Twilio says is over is over here too, wherever its media is; a place reserved for it here is free again.
    if (changed && status !== 'queued' && status !== 'ringing' && status !== 'in_progress') {
      this.admission.cancel(call.id);
      await this.control.send(call.id, { type: 'hangup', reason: `twilio: ${params.CallStatus}` });
    }
  }

  /**
   * Whether the call has ended by `deadline` (epoch ms): 'ended' when it was seen ended, 'gone' when it is no more.
   * A session running here is waited for first (it ends the call before its run settles), then the call is read;
   * one running elsewhere is looked for every 100 ms.
   */
  private async sessionEnded(call: Call, deadline: number): Promise<'ended' | 'gone' | false> {
    for (;;) {
      const here = this.voice.sessionRun(call.id);
      if (here) await this.waitUntil(here, deadline);
      const now = await this.calls.get(call.tenantId, call.id).catch(() => undefined);
      if (!now) return 'gone';
      if (now.endedAt) return 'ended';
      if (Date.now() >= deadline || this.stopping.signal.aborted) return false;
      if (!here) await sleep(100);
    }
  }

  /** Until `done` settles, `deadline` (epoch ms) passes or stop() is called, whichever comes first. */
  private async waitUntil(done: Promise<void>, deadline: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let onStop: (() => void) | undefined;
    try {
      await Promise.race([
        done,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
          onStop = resolve;
          this.stopping.signal.addEventListener('abort', onStop, { once: true });
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (onStop) this.stopping.signal.removeEventListener('abort', onStop);
    }
  }

  /**
   * The callback's status, applied once the session has ended the call (its usage and recording written first), or
   * once its heartbeat has stopped (its instance is gone: Twilio's word is then the best there is), or after a
   * lost-after time in any case. Never throws.
   */
  private afterSession(call: Call, params: Record<string, string>): void {
    const lostMs = lostAfterMs(this.config.calls.heartbeatMs);
    const giveUpAt = Date.now() + lostMs;
    const waiting = (async () => {
      let ended: Awaited<ReturnType<Telephony['sessionEnded']>> = false;
      for (;;) {
        ended = await this.sessionEnded(call, Math.min(giveUpAt, Date.now() + 1000));
        if (ended) break;
        if (this.stopping.signal.aborted) return;
        const now = await this.calls.get(call.tenantId, call.id).catch(() => undefined);
        if (!now || !this.carried(now) || Date.now() >= giveUpAt) {
          this.log.warn({ callId: call.id }, 'the session did not end the call; ending it as Twilio reports');
          break;
        }
      }
      await this.applyStatus(call, params, ended || undefined);
    })().catch((err: unknown) => this.log.error({ err, callId: call.id }, 'status callback could not be applied'));
    this.waitingForSessions.add(waiting);
    void waiting.finally(() => this.waitingForSessions.delete(waiting));
  }

  // ---- media websockets ----

  /** A Twilio Media Streams websocket: its start message carries the call's token. */
  async acceptTwilioStream(socket: WebSocket): Promise<void> {
    let call: Call | undefined;
    const media = this.media;
    const accepted = await TwilioMediaStreamTransport.accept(socket, {
      ...(media && { onFrameGap: (ms: number) => media.frameGap(ms) }),
      authorize: async (start) => Boolean((call = await this.authorizeStream(start))),
    });
    if (!accepted || !call) return;
    await this.run(call, accepted.transport);
  }

  /**
   * The media process, when Twilio media streams go to it (MEDIA_PROCESS, and it is not failing to start): then
   * handOffTwilioStream takes them.
   */
  get mediaProcess(): MediaProcess | undefined {
    const process = this.media?.process;
    return process?.available ? process : undefined;
  }

  /**
   * A Twilio Media Streams upgrade, before its handshake: the socket goes to the media process, which does the
   * handshake and the pacing; the call's session runs here on the transport it gives back.
   */
  async handOffTwilioStream(process: MediaProcess, req: UpgradeRequest, socket: Socket, head: Buffer): Promise<void> {
    let call: Call | undefined;
    const transport = await process.accept(req, socket, head, async (start) => Boolean((call = await this.authorizeStream(start))));
    if (!transport || !call) return;
    await this.run(call, transport);
  }

  /** The call a stream's `start` may run: its token is for this Twilio call, the call is live and may start. */
  private async authorizeStream(start: TwilioStart): Promise<Call | undefined> {
    const grant = await this.tokens.verify(start.customParameters.token ?? '', 'twilio');
    if (!grant) return undefined;
    const row = await this.calls.get(grant.tenantId, grant.callId).catch(() => undefined);
    // The token belongs to this Twilio call, and the call is not over.
    if (!row || row.endedAt || (row.providerCallSid && row.providerCallSid !== start.callSid)) return undefined;
    if (await this.refusal(row, grant)) return undefined;
    return row;
  }

  /** A browser's websocket for a web call. */
  async acceptBrowser(socket: WebSocket, token: string): Promise<void> {
    // Before the first await: what the browser sends while this is checked is kept for the transport.
    const early = holdEarlyMessages(socket);
    const grant = await this.tokens.verify(token, 'browser');
    const call = grant && (await this.calls.get(grant.tenantId, grant.callId).catch(() => undefined));
    if (!call || call.endedAt) {
      socket.close(1008, 'invalid or expired call token');
      return;
    }
    let refused: string | null;
    try {
      refused = await this.refusal(call, grant);
    } catch (err) {
      this.log.error({ err, callId: call.id }, 'call token could not be checked');
      socket.close(1011, 'call token could not be checked');
      return;
    }
    if (refused) {
      socket.close(1008, refused);
      return;
    }
    await this.run(call, new BrowserTransport(socket, { early: early.take() }));
  }

  /**
   * Why a media socket with a valid token for a live call may not start, or null: the tenant is suspended or the
   * web call's user deactivated (the call is ended then: no socket will ever run it), or the token was used
   * already (another socket runs the call: it is left alone). The token is used up last, by the socket that starts.
   */
  private async refusal(call: Call, token: VerifiedMediaToken): Promise<string | null> {
    const refused = await this.calls.mediaRefusal(call.tenantId, call.id);
    if (refused) {
      this.log.warn({ tenantId: call.tenantId, callId: call.id, reason: refused }, 'media socket refused');
      await this.calls.event(call.tenantId, call.id, 'call.refused', { reason: refused });
      await this.calls.end(call.tenantId, call.id, 'failed', refused);
      return refused;
    }
    if (!(await this.tokens.claim(token))) {
      this.log.warn({ tenantId: call.tenantId, callId: call.id }, 'a call token was presented again: media socket refused');
      await this.calls.event(call.tenantId, call.id, 'media.token_reused', { channel: token.channel });
      return 'call token already used';
    }
    return null;
  }

  /** Runs the call's session here, reachable by the hang-up and transfer commands of any instance. */
  private async run(call: Call, transport: Transport): Promise<void> {
    const log = this.log.child({ tenantId: call.tenantId, callId: call.id });
    try {
      await this.voice.run(call.tenantId, call.id, transport, { call, beforeClose: (outcome) => this.handOff(call, outcome, log) });
    } catch (err) {
      log.error({ err }, 'call failed');
      await transport.close('error');
      await this.calls.end(call.tenantId, call.id, 'failed', 'internal error').catch(() => {});
    }
  }

  /** A transfer (by the agent or the API): Twilio dials the number in place of the stream, before the stream closes. */
  private async handOff(call: Call, outcome: CallOutcome, log: FastifyBaseLogger): Promise<void> {
    const action = outcome.action;
    if (action?.type !== 'transfer_call' || !call.providerCallSid || !this.twilio) return;
    try {
      const callerId = call.direction === 'inbound' ? call.toNumber : call.fromNumber;
      await this.twilio.redirect(call.providerCallSid, dialNumber(action.to, callerId ?? undefined));
      await this.calls.event(call.tenantId, call.id, 'transfer.connected', { to: action.to });
    } catch (err) {
      log.error({ err }, 'transfer failed');
      await this.calls.event(call.tenantId, call.id, 'transfer.failed', {
        to: action.to,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  // ---- the API's side ----

  /** Places an outbound call through Twilio; the agent speaks first once it is answered. */
  async placeCall(tenantId: string, input: OutboundCall, baseUrl: string): Promise<Call> {
    if (!this.twilio) throw new AppError('twilio_not_configured', 'Phone calls need TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN');
    const from = input.fromNumberId
      ? await this.phoneNumbers.get(tenantId, input.fromNumberId)
      : await this.phoneNumbers.firstActive(tenantId);
    if (!from) throw new AppError('no_phone_number', 'Register a phone number first: outbound calls need a number to call from');
    if (!from.isActive) throw new AppError('phone_number_inactive', 'That phone number is not active');
    await this.usage?.assertWithinBudget(tenantId);
    const lease = await this.admission.admit(tenantId, 'outbound');
    let call: Call;
    try {
      call = await this.calls.open(tenantId, {
        direction: 'outbound',
        status: 'queued',
        fromNumber: from.number,
        toNumber: input.to,
        phoneNumberId: from.id,
        overrides: { ...from.overrides, ...input.overrides },
        metadata: input.metadata,
        variables: input.variables,
      });
    } catch (err) {
      lease.release();
      throw err;
    }
    // Held while the phone rings; given back if it is never answered (status callback, or the connect timeout).
    this.admission.reserve(call.id, lease);
    try {
      const placed = await this.twilio.createCall({
        to: input.to,
        from: from.number,
        url: `${baseUrl}${TWILIO_VOICE_PATH}`,
        statusCallback: `${baseUrl}${TWILIO_STATUS_PATH}`,
      });
      await this.calls.setProviderSid(tenantId, call.id, placed.sid);
      return { ...call, providerCallSid: placed.sid };
    } catch (err) {
      this.admission.cancel(call.id);
      const failure = outboundFailure(err);
      this.log.warn(
        { tenantId, callId: call.id, err, twilioStatus: failure.twilioStatus, twilioCode: failure.twilioCode },
        `outbound call not placed: ${failure.reason}`,
      );
      await this.calls.end(tenantId, call.id, 'failed', failure.reason);
      throw failure.error;
    }
  }

  /** A browser call: the call row and the token its websocket presents. */
  async startWebCall(tenantId: string, userId: string | undefined, input: CallInput = {}) {
    await this.usage?.assertWithinBudget(tenantId);
    const lease = await this.admission.admit(tenantId, 'web');
    let call: Call;
    try {
      call = await this.calls.start(tenantId, { direction: 'web', userId, ...input });
    } catch (err) {
      lease.release();
      throw err;
    }
    // Its place waits for the browser's websocket as long as the token is valid (both: the connect timeout).
    this.admission.reserve(call.id, lease);
    const { token, expiresAt } = await this.tokens.sign({ tenantId, callId: call.id, channel: 'browser' });
    return { call, token, expiresAt };
  }

  async hangup(tenantId: string, callId: string): Promise<void> {
    const call = await this.live(tenantId, callId);
    // Twilio ends the phone leg wherever the media is; the instance holding the media ends the session.
    if (call.providerCallSid && this.twilio)
      await this.twilio.hangup(call.providerCallSid).catch((err: unknown) => this.log.warn({ err, callId }, 'Twilio hang-up failed'));
    await this.control.send(callId, { type: 'hangup', reason: 'hung up through the API' });
  }

  /**
   * Ends every live call of a tenant (suspended) or of one of its users (deactivated), on whichever instance holds
   * it: their tokens were issued before, and media must stop with the access that started it. Never throws (the
   * suspension itself is done); a call that could not be reached is still refused by its next socket.
   */
  async endLiveCalls(scope: CallScope, reason: string): Promise<void> {
    await this.control
      .sendAll(scope, { type: 'hangup', reason })
      .catch((err: unknown) => this.log.error({ err, ...scope }, 'live calls could not be ended'));
  }

  async transfer(tenantId: string, callId: string, to: string): Promise<void> {
    const call = await this.live(tenantId, callId);
    if (call.direction === 'web' || !call.providerCallSid)
      throw new AppError('transfer_not_supported', 'Only phone calls can be transferred');
    await this.control.send(callId, { type: 'transfer', to, reason: 'transferred through the API' });
  }

  private async live(tenantId: string, callId: string): Promise<Call> {
    const call = await this.calls.get(tenantId, callId);
    // The tenant's own chat session: say what it is, not that it does not exist.
    if (call.direction === 'chat')
      throw new AppError(
        'not_a_phone_call',
        'A chat session is not a phone call: it ends when the agent says goodbye or after CHAT_IDLE_TIMEOUT_MINUTES without a message',
      );
    if (call.endedAt) throw new AppError('call_not_active', 'The call has already ended');
    return call;
  }
}

/**
 * Why Twilio did not place an outbound call, said the same way in the API error, the log line and the call's end
 * (`call.ended` reason): never reached (a network error), our credentials refused (401), or Twilio's own error code
 * and message (21211 invalid 'To', ...). Only a refusal of the request itself is the tenant's to fix (422).
 */
export function outboundFailure(err: unknown): { error: AppError; reason: string; twilioStatus?: number; twilioCode?: number } {
  if (err instanceof TwilioNetworkError) {
    const what = err.errno ?? 'network error';
    return err.sent
      ? {
          reason: `twilio did not answer (${what})`,
          error: new AppError(
            'twilio_unreachable',
            `Twilio did not answer (${what}); the call is marked failed: check the call list before trying again`,
          ),
        }
      : {
          reason: `twilio unreachable (${what})`,
          error: new AppError('twilio_unreachable', `Twilio could not be reached (${what}); the call was not placed: try again`),
        };
  }
  if (err instanceof TwilioError) {
    const said = `${err.code ?? `HTTP ${err.status}`} ${err.twilioMessage}`;
    const info = err.moreInfo ? ` (${err.moreInfo})` : '';
    const twilio = { twilioStatus: err.status, twilioCode: err.code };
    if (err.status === 401) {
      return {
        ...twilio,
        reason: `twilio authentication refused (${said})`,
        error: new AppError(
          'twilio_auth_failed',
          `Twilio refused this deployment's credentials (${said}): the operator must fix TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN`,
        ),
      };
    }
    if (err.status >= 400 && err.status < 500 && err.status !== 429) {
      return {
        ...twilio,
        reason: `twilio refused the call (${said})`,
        error: new AppError('call_rejected', `Twilio refused the call: ${said}${info}`),
      };
    }
    return {
      ...twilio,
      reason: `twilio failed (HTTP ${err.status}: ${said})`,
      error: new AppError('provider_error', `Twilio could not place the call (HTTP ${err.status}: ${said}); try again`),
    };
  }
  return { reason: 'twilio request failed', error: new AppError('provider_error', 'Twilio could not place the call; try again') };
}
