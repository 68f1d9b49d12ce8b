// Runs voice calls: for a call row and a connected Transport, builds the tenant's engines from the registry,
// rebuilds the conversation from the database (a call picked up again after a restart continues where it was,
// without a second greeting), and runs the CallSession to its end. The transports (Twilio, browser, LiveKit)
// only connect audio and hand it here.
import type { FastifyBaseLogger } from 'fastify';
import type { CallService } from '../services/calls.js';
import { type CallOutcome, CallSession } from './call-session.js';
import type { ProviderRegistry } from './registry.js';
import { toHistory } from './text-channel.js';
import type { Transport } from './transports/transport.js';

export class VoiceCalls {
  private readonly live = new Map<string, CallSession>();

  constructor(
    private readonly calls: CallService,
    private readonly registry: ProviderRegistry,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Calls whose audio this instance is handling now. */
  get active(): number {
    return this.live.size;
  }

  async run(tenantId: string, callId: string, transport: Transport): Promise<CallOutcome> {
    const log = this.log.child({ tenantId, callId });
    const call = await this.calls.get(tenantId, callId);
    const turns = await this.calls.transcript(tenantId, callId);
    const parts = await this.registry.voiceFor(tenantId, {
      sampleRate: transport.sampleRate,
      onFallback: (stage, provider, err) => {
        log.warn({ stage, provider, err }, 'provider failed during the call; the next one took over');
        void this.calls.event(tenantId, callId, 'provider.fallback', { stage, provider, error: err instanceof Error ? err.message : String(err) }).catch(() => {});
      },
    });
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
        greeting: turns.length ? null : parts.behaviour.greeting,
        // The maximum is for the whole call, not for each time it is picked up.
        maxDurationMs: Math.max(1000, parts.behaviour.maxDurationMs - (performance.now() - origin)),
      },
      history: toHistory(turns),
      log,
      now: () => performance.now() - origin,
    });
    this.live.set(callId, session);
    try {
      return await session.run();
    } finally {
      this.live.delete(callId);
    }
  }
}
