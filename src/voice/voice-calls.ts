// Runs voice calls: for a call row and a connected Transport, builds the tenant's engines from the registry,
// rebuilds the conversation from the database (a call picked up again after a restart continues where it was,
// without a second greeting), and runs the CallSession to its end. The transports (Twilio, browser, LiveKit)
// only connect audio and hand it here.
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { CallService } from '../services/calls.js';
import type { PhoneNumberOverrides } from '../services/phone-numbers.js';
import type { CallControl } from './call-control.js';
import { type RecordingStore, recordingKey } from '../storage/recording-store.js';
import { type CallOutcome, CallSession } from './call-session.js';
import { type RecordedTransport, recordTransport } from './recording.js';
import type { ProviderRegistry } from './registry.js';
import { toHistory } from './text-channel.js';
import type { Transport } from './transports/transport.js';

/** A recording being made is written every second: one untouched for this long was left by a stopped process. */
const STALE_SPOOL_MS = 3_600_000;

/** An outbound call's agent speaks first; a tenant without a greeting still says who is calling. */
const outboundGreeting = (agentName: string) => `Hello, this is ${agentName}. Is this a good time to talk?`;

export class VoiceCalls {
  private readonly live = new Map<string, CallSession>();
  private readonly runs = new Set<Promise<unknown>>();

  constructor(
    private readonly calls: CallService,
    private readonly registry: ProviderRegistry,
    private readonly log: FastifyBaseLogger,
    private readonly recordings: RecordingStore,
    /** Where recordings are written as calls go, until stored. */
    private readonly spoolDir: string,
    private readonly control: CallControl,
  ) {}

  /**
   * Removes recordings left behind by a process that stopped mid-call (a live one is written every second; the
   * call itself, if picked up again, starts a new recording). Runs at start-up.
   */
  async sweepSpool(): Promise<void> {
    await mkdir(this.spoolDir, { recursive: true });
    const now = Date.now();
    for (const name of await readdir(this.spoolDir)) {
      const file = path.join(this.spoolDir, name);
      const stale = await stat(file).then((s) => s.isFile() && now - s.mtimeMs > STALE_SPOOL_MS, () => false);
      if (stale) await rm(file, { force: true });
    }
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

  async run(tenantId: string, callId: string, transport: Transport, opts: { beforeClose?: (outcome: CallOutcome) => Promise<void> } = {}): Promise<CallOutcome> {
    const log = this.log.child({ tenantId, callId });
    const call = await this.calls.get(tenantId, callId);
    const turns = await this.calls.transcript(tenantId, callId);
    const parts = await this.registry.voiceFor(tenantId, {
      sampleRate: transport.sampleRate,
      // The dialled number's or the outbound request's agent settings, for this call only.
      overrides: call.overrides as PhoneNumberOverrides,
      onFallback: (stage, provider, err) => {
        log.warn({ stage, provider, err }, 'provider failed during the call; the next one took over');
        void this.calls.event(tenantId, callId, 'provider.fallback', { stage, provider, error: err instanceof Error ? err.message : String(err) }).catch(() => {});
      },
    });
    // Recorded unless the tenant switched it off; LiveKit rooms record themselves (Egress). The recording is stored
    // when the session closes the transport, before it writes the call's end, or at the latest when the run ends.
    let recorded: RecordedTransport | undefined;
    let saving: Promise<void> | undefined;
    const save = () => (saving ??= recorded ? this.saveRecording(tenantId, callId, recorded, log) : Promise.resolve());
    if (parts.settings.call.recording && transport.kind !== 'livekit') {
      recorded = recordTransport(transport, { file: path.join(this.spoolDir, `${callId}.${randomUUID()}.wav`), onClose: save });
      transport = recorded.transport;
    }
    // The call's clock runs from its start, also across a restart: turn times never go backwards.
    const origin = performance.now() - (Date.now() - (call.startedAt ?? new Date()).getTime());
    const session = new CallSession({
      tenantId,
      callId,
      transport,
      agent: parts.agent,
      stt: parts.stt,
      tts: parts.tts,
      vad: parts.vad,
      calls: this.calls,
      behaviour: {
        ...parts.behaviour,
        greeting: turns.length ? null : (parts.behaviour.greeting ?? (call.direction === 'outbound' ? outboundGreeting(parts.settings.agent_name) : null)),
        // The maximum is for the whole call, not for each time it is picked up.
        maxDurationMs: Math.max(1000, parts.behaviour.maxDurationMs - (performance.now() - origin)),
      },
      history: toHistory(turns),
      log,
      now: () => performance.now() - origin,
      beforeClose: opts.beforeClose,
    });
    this.live.set(callId, session);
    // Hang-up and transfer reach the session from any instance of the service.
    const detach = this.control.attach(callId, (command) => (command.type === 'hangup' ? session.hangup(command.reason) : session.transfer(command.to, command.reason)));
    const running = session.run();
    this.runs.add(running);
    try {
      return await running;
    } finally {
      this.runs.delete(running);
      detach();
      this.live.delete(callId);
      await save();
    }
  }

  /** Never throws: a recording that cannot be stored must not fail the call. */
  private async saveRecording(tenantId: string, callId: string, recorded: RecordedTransport, log: FastifyBaseLogger): Promise<void> {
    let file: string | undefined;
    try {
      const recording = await recorded.finish();
      file = recording.file;
      if (recording.durationMs === 0) return;
      const key = recordingKey(tenantId, callId);
      await this.recordings.put(key, recording.file, 'audio/wav');
      await this.calls.setRecording(tenantId, callId, key, recording.durationMs);
      await this.calls.event(tenantId, callId, 'recording.saved', { duration_ms: recording.durationMs, bytes: recording.bytes });
    } catch (err) {
      log.error({ err }, 'recording could not be stored');
      await this.calls.event(tenantId, callId, 'recording.failed', { error: err instanceof Error ? err.message : String(err) }).catch(() => {});
    } finally {
      // Stored (the store took it), empty, or failed: nothing of it stays behind.
      if (file) await rm(file, { force: true }).catch(() => {});
    }
  }

}
