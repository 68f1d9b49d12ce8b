// Runs voice calls: for a call row and a connected Transport, builds the tenant's engines from the registry,
// rebuilds the conversation from the database (a call picked up again after a restart continues where it was,
// without a second greeting), and runs the CallSession to its end. The transports (Twilio, browser, LiveKit)
// only connect audio and hand it here. Recordings are spooled to a file as the call goes and stored at its end; a
// call's recording is one file however many times the call was picked up, and a process that stopped mid-call
// leaves a spool file the next sweep recovers into it.
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { publicFailure } from '../lib/provider-error.js';
import type { Call, CallService } from '../services/calls.js';
import type { AgentOverrides } from '../services/settings.js';
import { type Admission, isRefusal, type Lease } from './admission.js';
import type { CallControl } from './call-control.js';
import { type RecordingStore, recordingKey } from '../storage/recording-store.js';
import { callLogFor } from './call-log.js';
import { type CallOutcome, CallSession } from './call-session.js';
import { realClock, withNow } from './clock.js';
import { mergeRecordings, type Recording, type RecordedTransport, recordTransport, recoverSpooledRecording } from './recording.js';
import type { ProviderRegistry } from './registry.js';
import { speak } from './speaker.js';
import { toHistory } from './text-channel.js';
import type { Transport } from './transports/transport.js';
import { type UsageLine, UsageTally } from './usage-meter.js';

/**
 * A recording being made is written every second while the call's audio flows: a spool file untouched for this
 * long was left by a process that stopped (or a call whose audio stopped, which is ending anyway).
 */
const SPOOL_IDLE_MS = 10_000;
/** How often the spool folder is swept for such files, besides at start-up. */
const SWEEP_EVERY_MS = 30_000;
/** Spool files are `<tenant id>.<call id>.<random>.wav`: a recovered one says whose call it was. */
const SPOOL_NAME = /^([0-9a-f-]{36})\.([0-9a-f-]{36})\.[0-9a-f-]{36}\.wav$/;

/** How often the calls running here are marked alive in the database (CallService.touch). */
export const HEARTBEAT_MS = 15_000;
/**
 * A call not ended whose heartbeat is older than this belongs to an instance that is gone: the sweeper ends it.
 * Several beats, so a busy event loop or a slow database does not end a live call; short enough that a call
 * picked up again after a restart (which beats at once) is normally back well within it.
 */
export const lostAfterMs = (heartbeatMs: number) => 6 * heartbeatMs;
export const LOST_AFTER_MS = lostAfterMs(HEARTBEAT_MS);
/**
 * A live call's usage so far is written every this many heartbeats (and at its end): an instance that stops
 * mid-call loses at most this much of it, and a long call writes a few rows a minute, never one per frame.
 */
const USAGE_FLUSH_BEATS = 4;

/** The longest a message to a refused caller may take (synthesis and playout). */
const ANNOUNCE_MAX_MS = 20_000;

/** What a caller refused at connect time (no place on this instance) hears before the line closes. */
export const ALL_LINES_BUSY = 'Sorry, all our lines are busy. Please call again later. Goodbye.';

/** An outbound call's agent speaks first; a tenant without a greeting still says who is calling. */
const outboundGreeting = (agentName: string) => `Hello, this is ${agentName}. Is this a good time to talk?`;

export class VoiceCalls {
  private readonly live = new Map<string, CallSession>();
  /** Per live call, the write of its usage so far (every USAGE_FLUSH_BEATS heartbeats). */
  private readonly usageFlushes = new Map<string, () => Promise<void>>();
  private beats = 0;
  private readonly runs = new Set<Promise<unknown>>();
  /** Per call whose session runs here, that run (it settles once the session has written the call's end). */
  private readonly running = new Map<string, Promise<unknown>>();
  /** Per call, the storing of its recording parts, one after another (each may merge into the one before). */
  private readonly storing = new Map<string, Promise<void>>();
  private sweeper: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** The sweep running now: one at a time, or two could recover the same file. */
  private sweeping: Promise<void> | undefined;

  constructor(
    private readonly calls: CallService,
    private readonly registry: ProviderRegistry,
    private readonly log: FastifyBaseLogger,
    private readonly recordings: RecordingStore,
    /** Where recordings are written as calls go, until stored. */
    private readonly spoolDir: string,
    private readonly control: CallControl,
    /** Every call run here holds a place: the one reserved when it was admitted, or one taken as its media connects. */
    private readonly admission: Admission,
    /** Where a call's usage is written when it ends (services/usage.ts); none: not recorded. */
    private readonly usage?: { record(tenantId: string, lines: UsageLine[], ref: { callId: string }): Promise<void> },
    /** How often live calls are marked alive (CALL_HEARTBEAT_SECONDS; the sweepers' lost-after is 6 beats). */
    private readonly timing: { heartbeatMs: number } = { heartbeatMs: HEARTBEAT_MS },
  ) {}

  /**
   * Recovers the recordings left in the spool folder by a process that stopped mid-call: each is completed and
   * stored as (or merged into) its call's recording, with a `recording.recovered` event; what cannot be recovered
   * is removed. Runs at start-up and then every SWEEP_EVERY_MS until close().
   */
  async sweepSpool(): Promise<void> {
    this.sweeper ??= setInterval(
      () => void this.sweepSpool().catch((err: unknown) => this.log.error({ err }, 'spool sweep failed')),
      SWEEP_EVERY_MS,
    ).unref();
    if (!this.sweeping) this.sweeping = this.sweep().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweep(): Promise<void> {
    await mkdir(this.spoolDir, { recursive: true });
    const now = Date.now();
    for (const name of await readdir(this.spoolDir)) {
      const file = path.join(this.spoolDir, name);
      const idle = await stat(file).then(
        (s) => s.isFile() && now - s.mtimeMs > SPOOL_IDLE_MS,
        () => false,
      );
      if (!idle) continue;
      const [, tenantId, callId] = SPOOL_NAME.exec(name) ?? [];
      // This process's own calls are written by it; a quiet one is not abandoned.
      if (callId && this.live.has(callId)) continue;
      const recording = tenantId && callId ? await recoverSpooledRecording(file).catch(() => null) : null;
      const call = recording && (await this.calls.get(tenantId!, callId!).catch(() => null));
      if (!call) {
        await rm(file, { force: true });
        continue;
      }
      const log = this.log.child({ tenantId, callId });
      log.warn({ durationMs: recording.durationMs }, 'recovering the recording of a call left by a stopped process');
      await this.storeRecording(tenantId!, callId!, recording, 'recording.recovered', log);
    }
  }

  /** Stops the periodic spool sweep. */
  close(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** Marks every call running here as alive, so no instance's sweeper takes it for lost. Never throws. */
  private async beat(): Promise<void> {
    await this.calls.touch([...this.live.keys()]).catch((err: unknown) => this.log.warn({ err }, 'call heartbeat failed'));
    if (++this.beats % USAGE_FLUSH_BEATS === 0) await Promise.all([...this.usageFlushes.values()].map((flush) => flush()));
  }

  /**
   * Settles when the session of this call, if it runs here, has ended (its end written, or failed); undefined when
   * it does not run here. Never rejects.
   */
  sessionRun(callId: string): Promise<void> | undefined {
    return this.running.get(callId)?.then(
      () => undefined,
      () => undefined,
    );
  }

  /** Calls whose audio this instance is handling now. */
  get active(): number {
    return this.live.size;
  }

  /**
   * Shutting down: every live call is ended as if hung up, so its transcript, recording and end are written
   * before the process goes; waits at most `timeoutMs` for them.
   */
  async drain(timeoutMs: number): Promise<void> {
    const running = [...this.runs];
    for (const session of this.live.values()) session.hangup('service shutting down');
    await Promise.race([Promise.allSettled(running), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  /**
   * Runs the call on this transport to its end. The call needs a place among the live calls (Admission): the one
   * reserved for it here, else a new one (its media came to another instance than its webhook, or it was picked up
   * again after a restart); without one the transport is closed with ALL_LINES_BUSY as the reason (a browser gets it
   * in its `end` message) and the call ends `busy`.
   */
  async run(
    tenantId: string,
    callId: string,
    transport: Transport,
    opts: {
      beforeClose?: (outcome: CallOutcome) => Promise<void>;
      /** The call's row as the caller just read it for this tenant and id (the media socket's check): not read again. */
      call?: Call;
    } = {},
  ): Promise<CallOutcome> {
    // About when the transport's clock started (it was connected just before): where its audio goes in the recording.
    const connectedAt = performance.now();
    const log = this.log.child({ tenantId, callId });
    const known = opts.call?.tenantId === tenantId && opts.call.id === callId ? opts.call : undefined;
    const call = known ?? (await this.calls.get(tenantId, callId));
    let lease: Lease;
    try {
      // (A chat session never runs here; its kind would not matter.)
      lease = this.admission.claim(callId) ?? (await this.admission.admit(tenantId, call.direction === 'chat' ? 'web' : call.direction));
    } catch (err) {
      if (!isRefusal(err)) throw err;
      log.warn({ code: err.code }, 'call refused as its media connected: no place on this instance');
      await transport.close(ALL_LINES_BUSY).catch(() => undefined);
      await this.calls.event(tenantId, callId, 'call.refused', { reason: err.code });
      await this.calls.end(tenantId, callId, 'busy', `${err.code}: ${err.message}`);
      return { status: 'busy', reason: err.code };
    }
    try {
      return await this.runAdmitted(call, transport, connectedAt, log, opts);
    } finally {
      lease.release();
    }
  }

  private async runAdmitted(
    call: Call,
    transport: Transport,
    connectedAt: number,
    log: FastifyBaseLogger,
    opts: { beforeClose?: (outcome: CallOutcome) => Promise<void> },
  ): Promise<CallOutcome> {
    const { tenantId, id: callId } = call;
    // The call's clock runs from its start, also across a restart: turn times never go backwards.
    const origin = performance.now() - (Date.now() - (call.startedAt ?? new Date()).getTime());
    // The call row was read for this tenant and id just now (run).
    const turns = await this.calls.turns(tenantId, callId);
    // Counted in memory as the call goes (audio seconds, tokens, characters), written once at its end.
    const meter = new UsageTally();
    const parts = await this.registry.voiceFor(tenantId, {
      meter,
      sampleRate: transport.sampleRate,
      // The dialled number's or the outbound request's agent settings, for this call only.
      overrides: call.overrides ?? undefined,
      variables: call.variables,
      onFallback: (stage, provider, err) => {
        log.warn({ stage, provider, err }, 'provider failed during the call; the next one took over');
        // The tenant reads events: the status and a short reason, never the provider's answer (publicFailure).
        const { status, reason } = publicFailure(err);
        void this.calls.event(tenantId, callId, 'provider.fallback', { stage, provider, status, reason }).catch(() => {});
      },
    });
    // A suspended tenant's call (or a deactivated user's web call) does not start, whatever token opened it. Checked
    // right before the session is attached to call control, which from then on hears a suspension.
    const refused = await this.calls.mediaRefusal(tenantId, callId);
    if (refused) {
      log.warn({ reason: refused }, 'call refused at start');
      await this.calls.event(tenantId, callId, 'call.refused', { reason: refused });
      await transport.close(refused);
      await this.calls.end(tenantId, callId, 'failed', refused);
      return { status: 'failed', reason: refused };
    }
    // Recorded unless the tenant switched it off; LiveKit rooms record themselves (Egress). The recording is stored
    // when the session closes the transport, before it writes the call's end, or at the latest when the run ends.
    let recorded: RecordedTransport | undefined;
    let saving: Promise<void> | undefined;
    // On the call's clock, like the transcript's times: a call picked up again records after its earlier part.
    const offsetMs = Math.round(Math.max(0, connectedAt - origin));
    const save = () => (saving ??= recorded ? this.saveRecording(tenantId, callId, recorded, offsetMs, log) : Promise.resolve());
    if (parts.settings.call.recording && transport.kind !== 'livekit') {
      recorded = recordTransport(transport, {
        file: path.join(this.spoolDir, `${tenantId}.${callId}.${randomUUID()}.wav`),
        offsetMs,
        onClose: save,
      });
      transport = recorded.transport;
    }
    // The call's usage is written as it goes (flushUsage, from the heartbeat) and is all in the ledger before its end
    // is written, so whatever announces the end can read its cost. One write at a time per call.
    const lineKind = transport.kind;
    let lineCountedTo = connectedAt;
    let writing: Promise<void> = Promise.resolve();
    const flushUsage = () =>
      (writing = writing.then(async () => {
        // The line's time since the last write (a call picked up again after a restart adds its next part).
        const now = performance.now();
        const lineSeconds = (now - lineCountedTo) / 1000;
        lineCountedTo = now;
        meter.add({ component: 'telephony', provider: lineKind, model: '', unit: 'seconds', billedTo: 'platform' }, lineSeconds);
        await this.usage
          ?.record(tenantId, meter.drain(), { callId })
          .catch((err: unknown) => log.error({ err }, 'call usage could not be recorded'));
      }));
    let usageRecorded: Promise<void> | undefined;
    const recordUsage = () => {
      this.usageFlushes.delete(callId);
      return (usageRecorded ??= flushUsage());
    };
    const callLog = callLogFor(this.calls, tenantId, callId);
    const session = new CallSession({
      callLog: {
        ...callLog,
        end: async (status, reason) => {
          await recordUsage();
          return callLog.end(status, reason);
        },
      },
      transport,
      agent: parts.agent,
      stt: parts.stt,
      tts: parts.tts,
      vad: parts.vad,
      behaviour: {
        ...parts.behaviour,
        greeting: turns.length
          ? null
          : (parts.behaviour.greeting ?? (call.direction === 'outbound' ? outboundGreeting(parts.settings.agent_name) : null)),
        // The maximum is for the whole call, not for each time it is picked up.
        maxDurationMs: Math.max(1000, parts.behaviour.maxDurationMs - (performance.now() - origin)),
      },
      history: toHistory(turns),
      log,
      clock: withNow(realClock, () => performance.now() - origin),
      beforeClose: opts.beforeClose,
    });
    // Seen alive now (a call picked up again must not look lost), then every HEARTBEAT_MS while anything runs here.
    await this.calls.touch([callId]).catch((err: unknown) => log.warn({ err }, 'call heartbeat failed'));
    this.live.set(callId, session);
    if (this.usage) this.usageFlushes.set(callId, flushUsage);
    this.heartbeat ??= setInterval(() => void this.beat(), this.timing.heartbeatMs).unref();
    // Hang-up and transfer reach the session from any instance of the service.
    const detach = this.control.attach(
      callId,
      (command) => (command.type === 'hangup' ? session.hangup(command.reason) : session.transfer(command.to, command.reason)),
      {
        tenantId,
        userId: call.userId ?? undefined,
      },
    );
    const running = session.run();
    this.runs.add(running);
    this.running.set(callId, running);
    try {
      return await running;
    } finally {
      this.runs.delete(running);
      if (this.running.get(callId) === running) this.running.delete(callId);
      detach();
      this.live.delete(callId);
      if (!this.live.size) {
        clearInterval(this.heartbeat);
        this.heartbeat = undefined;
      }
      await recordUsage();
      await save();
    }
  }

  /**
   * Says `text` in the tenant's voice to a caller no agent will talk to (a call refused at the cap), then closes the
   * transport with it as the reason. No speech recognition, no agent, no recording; at most ANNOUNCE_MAX_MS. The
   * speech is metered on `callId` (a cloud voice bills the characters, refused call or not). Never throws: a message
   * that cannot be said still closes the line.
   */
  async announce(tenantId: string, callId: string, transport: Transport, text: string, overrides?: AgentOverrides): Promise<void> {
    const signal = AbortSignal.timeout(ANNOUNCE_MAX_MS);
    const meter = new UsageTally();
    try {
      const tts = await this.registry.ttsFor(tenantId, { sampleRate: transport.sampleRate, overrides, meter });
      await speak({ transport, tts, clock: realClock }, [text], signal);
    } catch (err) {
      this.log.warn({ err, tenantId }, 'the message to a refused caller could not be said');
    } finally {
      await transport.close(text).catch(() => undefined);
      await this.usage
        ?.record(tenantId, meter.drain(), { callId })
        .catch((err: unknown) => this.log.error({ err, tenantId }, 'usage of a refused call could not be recorded'));
    }
  }

  /** Never throws: a recording that cannot be stored must not fail the call. */
  private async saveRecording(
    tenantId: string,
    callId: string,
    recorded: RecordedTransport,
    offsetMs: number,
    log: FastifyBaseLogger,
  ): Promise<void> {
    let recording: Recording;
    try {
      recording = await recorded.finish();
    } catch (err) {
      log.error({ err }, 'recording could not be written');
      await this.calls
        .event(tenantId, callId, 'recording.failed', { error: err instanceof Error ? err.message : String(err) })
        .catch(() => {});
      return;
    }
    await this.storeRecording(tenantId, callId, recording, 'recording.saved', log, { offset_ms: offsetMs });
  }

  /**
   * Stores a finished part of the call's recording, merged with what is stored already (the call was picked up
   * again after a restart); one part at a time per call. Never throws; the file is gone afterwards whatever happens.
   */
  private storeRecording(
    tenantId: string,
    callId: string,
    recording: Recording,
    event: 'recording.saved' | 'recording.recovered',
    log: FastifyBaseLogger,
    data: Record<string, unknown> = {},
  ): Promise<void> {
    const store = async () => {
      try {
        if (recording.durationMs === 0) return;
        const call = await this.calls.get(tenantId, callId);
        const stored = call.recordingKey ? await this.recordings.get(call.recordingKey) : null;
        if (stored) recording = await mergeRecordings(stored, recording.file);
        const key = recordingKey(tenantId, callId);
        await this.recordings.put(key, recording.file, 'audio/wav');
        // The key, its audit entry and the tenant's `recording.ready` are stored together.
        const saved = { duration_ms: recording.durationMs, bytes: recording.bytes, ...data, ...(stored ? { merged: true as const } : {}) };
        await this.calls.setRecording(tenantId, callId, key, recording.durationMs, { type: event, data: saved });
      } catch (err) {
        log.error({ err }, 'recording could not be stored');
        await this.calls
          .event(tenantId, callId, 'recording.failed', { error: err instanceof Error ? err.message : String(err) })
          .catch(() => {});
      } finally {
        // Stored (the store took it), empty, or failed: nothing of it stays behind.
        await rm(recording.file, { force: true }).catch(() => {});
      }
    };
    const done = (this.storing.get(callId) ?? Promise.resolve()).then(store);
    this.storing.set(callId, done);
    void done.then(() => this.storing.get(callId) === done && this.storing.delete(callId));
    return done;
  }
}
