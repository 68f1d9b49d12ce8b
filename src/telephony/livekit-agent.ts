// The agent's side of LiveKit calls: it joins the call's room (within a timeout), waits for the caller (a browser
// joining, a phone answering; a phone that dialled in is already there), has LiveKit's Egress record the room when
// the tenant records calls, runs the conversation with VoiceCalls to its end, then closes the room so nobody is left
// on a silent line. Nothing here may crash the process: every failure is written on the call (`livekit.agent_failed`,
// `recording.failed`) and ends it.
import type { FastifyBaseLogger } from 'fastify';
import { AppError } from '../lib/errors.js';
import type { CallService, CallStatus } from '../services/calls.js';
import type { PhoneNumberService } from '../services/phone-numbers.js';
import type { AgentOverrides, SettingsService } from '../services/settings.js';
import { type Admission, isRefusal, type Lease } from '../voice/admission.js';
import { ALL_LINES_BUSY, type VoiceCalls } from '../voice/voice-calls.js';
import { BUDGET_EXCEEDED_MESSAGE } from './telephony.js';
import { type AgentRoomTransport, callIdAttribute, type CallerWait, callRoom, LiveKitError, type LiveKitService } from './livekit.js';

/** Refused phone calls told why at once, at most (each is an agent in a room and a synthesized message). */
const MAX_ANNOUNCING = 20;
/** On shutdown, calls that are ending get this long to close their rooms before the database goes. */
const STOP_WAIT_MS = 3_000;

export interface LiveKitAgentDeps {
  calls: CallService;
  voice: VoiceCalls;
  settings: SettingsService;
  phoneNumbers: PhoneNumberService;
  log: FastifyBaseLogger;
  admission: Admission;
  /** The monthly caps (services/usage.ts): a new phone call at a cap is refused (recorded, the room closed). */
  usage?: { assertWithinBudget(tenantId: string): Promise<void> };
}

export interface OutboundDial {
  to: string;
  trunkId: string;
  fromNumber?: string;
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** The work's result, or the signal's reason as soon as it aborts (the work itself may go on: see join). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export class LiveKitAgent {
  private readonly running = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  /** Refused calls being told why now (sayRefusal). */
  private announcing = 0;

  constructor(private readonly deps: LiveKitAgentDeps) {}

  /** A web call whose room exists: the agent joins and runs it, all in the background. Never rejects. */
  joinWebCall(lk: LiveKitService, tenantId: string, callId: string): void {
    this.track(async () => {
      const transport = await this.join(lk, tenantId, callId).catch(() => undefined);
      if (transport) await this.converse(lk, tenantId, callId, transport, 'web');
    });
  }

  /**
   * A phone reached one of the tenant's SIP rooms (LiveKit's participant_joined webhook, for a SIP participant in a
   * room of the tenant's dispatch rule). Its call is the one Twilio handed over to LiveKit, named in the caller's
   * attributes (CALL_ID_ATTRIBUTE), or else a new inbound call to the dialled number, which must be one of the
   * tenant's active numbers (its agent overrides apply). The agent joins and answers in the background. Returns the
   * call's id; undefined when the room has its call already (LiveKit delivered the event again) or no call may be
   * taken (the room is closed then, which hangs the phone up).
   */
  async answerSipCall(lk: LiveKitService, tenantId: string, room: string, attributes: Record<string, string>): Promise<string | undefined> {
    const callId = callIdAttribute(attributes);
    const toNumber = attributes['sip.trunkPhoneNumber'] ?? '';
    const found = await this.deps.phoneNumbers.findForInbound(toNumber);
    const number = found?.tenantId === tenantId ? found.phoneNumber : undefined;
    if (!callId && !number) {
      this.deps.log.warn({ tenantId, room, toNumber }, 'a phone call reached a SIP room for a number this tenant does not have: hung up');
      await this.closeRoom(lk, tenantId, room);
      return undefined;
    }
    // A call Twilio handed over was admitted at its voice webhook; one that dialled LiveKit directly is new here.
    let lease: Lease | undefined;
    let refused: AppError | undefined;
    try {
      if (!callId) {
        await this.deps.usage?.assertWithinBudget(tenantId);
        lease = await this.deps.admission.admit(tenantId, 'inbound');
      }
    } catch (err) {
      if (!isRefusal(err) && !(err instanceof AppError && err.code === 'budget_exceeded')) throw err;
      refused = err;
    }
    const call = await this.deps.calls
      .openInRoom(tenantId, room, {
        callId,
        fromNumber: attributes['sip.phoneNumber'] ?? '',
        toNumber,
        phoneNumberId: number?.id,
        overrides: number?.overrides,
      })
      .catch((err: unknown) => {
        lease?.release();
        throw err;
      });
    if (!call) {
      lease?.release();
      return undefined;
    }
    if (refused) {
      // The tenant sees the call it missed and why, at once; the caller hears why (as Twilio's <Say> says it on a
      // Twilio call), then closing the room hangs the phone up. No agent, no speech recognition, no place taken.
      this.deps.log.warn({ tenantId, room, code: refused.code }, 'a phone call into a SIP room was refused');
      await this.deps.calls.event(tenantId, call.id, 'call.refused', { reason: refused.code });
      // At a monthly cap the call fails; with all lines busy it is `busy`, like a phone call refused at the webhook.
      const budget = refused.code === 'budget_exceeded';
      await this.deps.calls.end(tenantId, call.id, budget ? 'failed' : 'busy', `${refused.code}: ${refused.message}`);
      // Refusals said at once are bounded too: past MAX_ANNOUNCING the phone is hung up without a word.
      if (this.announcing >= MAX_ANNOUNCING) await this.closeRoom(lk, tenantId, room);
      else {
        this.announcing += 1;
        const message = budget ? BUDGET_EXCEEDED_MESSAGE : ALL_LINES_BUSY;
        this.track(() => this.sayRefusal(lk, tenantId, call.id, room, message, number?.overrides).finally(() => (this.announcing -= 1)));
      }
      return call.id;
    }
    if (lease) this.deps.admission.reserve(call.id, lease);
    await this.deps.calls.event(tenantId, call.id, 'livekit.sip_answered', {
      room,
      sip_call_id: attributes['sip.callID'] ?? null,
      handed_over: call.id === callId,
    });
    this.track(async () => {
      const transport = await this.join(lk, tenantId, call.id, room).catch(() => undefined);
      if (transport) await this.converse(lk, tenantId, call.id, transport, 'inbound', room);
    });
    return call.id;
  }

  /**
   * An outbound phone call whose row exists: its room, the agent in it, then the dial, in that order so that no
   * phone rings for a call nobody would speak on. Any step failing ends the call failed and throws (a number
   * LiveKit refuses is `call_rejected`); once dialled, the conversation runs in the background.
   */
  async placeCall(lk: LiveKitService, tenantId: string, callId: string, dial: OutboundDial): Promise<{ room: string; sipCallId: string }> {
    try {
      await lk.createRoom(tenantId, callId);
    } catch (err) {
      this.deps.admission.cancel(callId);
      await this.deps.calls.end(tenantId, callId, 'failed', 'livekit room could not be created');
      throw err;
    }
    const transport = await this.join(lk, tenantId, callId);
    let placed;
    try {
      placed = await lk.dialOut(tenantId, callId, dial);
    } catch (err) {
      await transport.close('dialling failed').catch(() => undefined);
      await this.deps.calls.event(tenantId, callId, 'livekit.dial_failed', { error: messageOf(err) });
      this.deps.admission.cancel(callId);
      await this.deps.calls.end(tenantId, callId, 'failed', 'livekit could not dial the number');
      await this.closeRoom(lk, tenantId, callRoom(tenantId, callId));
      // LiveKit's 4xx is about this call (the number, the trunk); its 5xx and our credentials are ours to fix.
      if (err instanceof LiveKitError && !err.retryable && err.code !== 'unauthenticated' && err.code !== 'permission_denied') {
        throw new AppError('call_rejected', `LiveKit refused the call: ${err.message}`);
      }
      throw err;
    }
    await this.deps.calls.applyProviderStatus(tenantId, callId, 'ringing', { reason: 'livekit: dialling' });
    await this.deps.calls.event(tenantId, callId, 'livekit.dialed', {
      trunk_id: dial.trunkId,
      sip_call_id: placed.sipCallId,
      participant_identity: placed.participantIdentity,
    });
    this.track(() => this.converse(lk, tenantId, callId, transport, 'outbound'));
    return { room: placed.room, sipCallId: placed.sipCallId };
  }

  /**
   * Shutting down: the agent stops joining and waiting for callers (those calls end failed), and waits a little
   * for calls that are ending to close their rooms. Live conversations are ended by VoiceCalls.drain, before this.
   */
  async stop(timeoutMs = STOP_WAIT_MS): Promise<void> {
    this.stopping.abort(new Error('service shutting down'));
    await Promise.race([Promise.allSettled(this.running), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  // ---- internals ----

  /**
   * The agent in the call's room within the join timeout. A failure is written on the call, ends it failed and
   * closes the room (a browser already in it is not left waiting for an agent that will not come), then is thrown.
   */
  private async join(lk: LiveKitService, tenantId: string, callId: string, sipRoom?: string): Promise<AgentRoomTransport> {
    const { joinTimeoutMs } = lk.agent;
    const deadline = this.deadline(
      joinTimeoutMs,
      () => new LiveKitError('deadline_exceeded', `the agent did not join the room within ${joinTimeoutMs} ms`, true),
    );
    const joining = lk.joinAsAgent(tenantId, callId, deadline.signal, sipRoom);
    try {
      return await untilAborted(joining, deadline.signal);
    } catch (err) {
      // A connection that completes after we gave up must not stay in the room as a silent agent.
      void joining.then(
        (late) => late.close('the agent gave up joining').catch(() => undefined),
        () => undefined,
      );
      this.deps.log.warn({ err, tenantId, callId }, 'the agent could not join the livekit room');
      await this.deps.calls.event(tenantId, callId, 'livekit.agent_failed', { stage: 'join', error: messageOf(err) });
      this.deps.admission.cancel(callId);
      await this.deps.calls.end(tenantId, callId, 'failed', 'the agent could not join the livekit room');
      await this.closeRoom(lk, tenantId, callRoom(tenantId, callId, sipRoom));
      throw err instanceof LiveKitError
        ? err
        : new LiveKitError('unavailable', `the agent could not join the room: ${messageOf(err)}`, true);
    } finally {
      deadline.clear();
    }
  }

  /** Waits for the caller, starts the recording, runs the call to its end, and closes the room after. Never throws. */
  private async converse(
    lk: LiveKitService,
    tenantId: string,
    callId: string,
    transport: AgentRoomTransport,
    caller: 'web' | 'inbound' | 'outbound',
    sipRoom?: string,
  ): Promise<void> {
    const log = this.deps.log.child({ tenantId, callId });
    const { callerTimeoutMs } = lk.agent;
    const deadline = this.deadline(callerTimeoutMs, () => new Error('caller timeout'));
    try {
      const wait = await transport.waitForCaller(deadline.signal);
      deadline.clear();
      if (wait !== 'ready') {
        const [status, reason] = this.callerMissing(wait, caller);
        await transport.close(reason);
        await this.deps.calls.end(tenantId, callId, status, reason);
        return;
      }
      // A phone call is in progress from its answer (a web call already is: this changes nothing then).
      await this.deps.calls.applyProviderStatus(tenantId, callId, 'in_progress', { reason: 'answered' });
      // Started once the caller is there: earlier it would record ringing or an empty room, or run for a browser
      // that never comes. Concurrently, so the greeting does not wait for Egress.
      const recording = this.startRecording(lk, tenantId, callId, log, sipRoom);
      try {
        await this.deps.voice.run(tenantId, callId, transport);
      } finally {
        await recording;
      }
    } catch (err) {
      log.error({ err }, 'livekit call failed');
      await this.deps.calls.event(tenantId, callId, 'livekit.agent_failed', { stage: 'run', error: messageOf(err) }).catch(() => undefined);
      await transport.close('error').catch(() => undefined);
      await this.deps.calls.end(tenantId, callId, 'failed', 'internal error').catch(() => undefined);
    } finally {
      deadline.clear();
      // The caller never came (or the run failed before taking it): the call's place is free again.
      this.deps.admission.cancel(callId);
      await this.closeRoom(lk, tenantId, callRoom(tenantId, callId, sipRoom));
    }
  }

  /** Joins the refused call's room, says `message` to the phone in it, and closes the room. Never throws. */
  private async sayRefusal(
    lk: LiveKitService,
    tenantId: string,
    callId: string,
    room: string,
    message: string,
    overrides?: AgentOverrides,
  ): Promise<void> {
    const deadline = this.deadline(lk.agent.callerTimeoutMs, () => new Error('caller timeout'));
    try {
      const transport = await this.join(lk, tenantId, callId, room).catch(() => undefined);
      if (!transport) return;
      if ((await transport.waitForCaller(deadline.signal)) === 'ready')
        await this.deps.voice.announce(tenantId, callId, transport, message, overrides);
      else await transport.close('the caller left').catch(() => undefined);
    } finally {
      deadline.clear();
      await this.closeRoom(lk, tenantId, room);
    }
  }

  /** How a call the caller never came to ends. */
  private callerMissing(wait: Exclude<CallerWait, 'ready'>, caller: 'web' | 'inbound' | 'outbound'): [CallStatus, string] {
    if (this.stopping.signal.aborted) return ['failed', 'service shutting down'];
    // As the DELETE route and the room_finished webhook say it, whichever of the three comes first.
    if (wait === 'room_closed') return ['completed', 'livekit room closed'];
    if (caller === 'outbound') return ['no_answer', 'the phone was not answered'];
    return ['canceled', wait === 'left' ? 'the caller left before the call began' : 'the caller did not join the room'];
  }

  /** An audio-only room composite of the call, when the tenant records calls. Never throws: the call goes on. */
  private async startRecording(
    lk: LiveKitService,
    tenantId: string,
    callId: string,
    log: FastifyBaseLogger,
    sipRoom?: string,
  ): Promise<void> {
    try {
      if (!(await this.deps.settings.getTenant(tenantId)).call.recording) return;
      const egressId = await lk.startRecording(tenantId, callId, sipRoom);
      await this.deps.calls.event(tenantId, callId, 'recording.started', { egress_id: egressId });
    } catch (err) {
      log.warn({ err }, 'livekit recording could not be started');
      await this.deps.calls.event(tenantId, callId, 'recording.failed', { error: messageOf(err) }).catch(() => undefined);
    }
  }

  /**
   * Deleting the room hangs up whoever is still in it (a phone would otherwise stay connected to an empty room) and
   * ends its recording. Never throws; a room already gone is what we wanted.
   */
  private async closeRoom(lk: LiveKitService, tenantId: string, room: string): Promise<void> {
    await lk.deleteRoom(tenantId, room).catch((err: unknown) => {
      if (!(err instanceof AppError && err.code === 'not_found'))
        this.deps.log.warn({ err, tenantId, room }, 'livekit room could not be closed');
    });
  }

  /** Aborts after `ms` with `reason()`, or at once when the service stops; clear() when done with it. */
  private deadline(ms: number, reason: () => Error): { signal: AbortSignal; clear(): void } {
    const controller = new AbortController();
    const stop = () => controller.abort(this.stopping.signal.reason);
    const timer = setTimeout(() => controller.abort(reason()), ms).unref();
    if (this.stopping.signal.aborted) stop();
    else this.stopping.signal.addEventListener('abort', stop, { once: true });
    return {
      signal: controller.signal,
      clear: () => {
        clearTimeout(timer);
        this.stopping.signal.removeEventListener('abort', stop);
      },
    };
  }

  /** Background work: kept for stop(), and never an unhandled rejection. */
  private track(work: () => Promise<void>): void {
    const running: Promise<void> = work().catch((err: unknown) => this.deps.log.error({ err }, 'livekit agent failed'));
    this.running.add(running);
    void running.finally(() => this.running.delete(running));
  }
}
