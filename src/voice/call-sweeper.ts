// Ends the calls nobody carries any more: voice calls whose media never connected (a token never used, a stream
// never opened, an outbound call never answered and never reported), calls of an instance that stopped (crash,
// kill: its heartbeat stopped), and chat sessions left idle. Runs on every instance; one conditional UPDATE per
// sweep (CallService.endStale), so instances sweeping at the same time end each call once.
import type { FastifyBaseLogger } from 'fastify';
import type { CallService } from '../services/calls.js';
import { LOST_AFTER_MS } from './voice-calls.js';

/** How often each instance sweeps; a stale call is ended at most this long after its timeout. */
export const CALL_SWEEP_EVERY_MS = 30_000;

export interface SweepLimits {
  /** A voice call with no heartbeat this long after it was made never connected its media. */
  connectTimeoutMs: number;
  /** A chat session with no message for this long is over. */
  chatIdleMs: number;
  /** A voice call whose heartbeat is this old was carried by an instance that is gone (default LOST_AFTER_MS). */
  lostAfterMs?: number;
  /** How often this instance sweeps (default CALL_SWEEP_EVERY_MS). */
  everyMs?: number;
}

export class CallSweeper {
  private timer: NodeJS.Timeout | undefined;
  /** Sweeps in flight: stop() waits for them, so none runs into a closed database. */
  private readonly running = new Set<Promise<number>>();

  constructor(
    private readonly calls: CallService,
    private readonly limits: SweepLimits,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Sweeps now and then every `everyMs` until stop(). */
  start(): void {
    this.timer ??= setInterval(() => void this.sweep(), this.limits.everyMs ?? CALL_SWEEP_EVERY_MS).unref();
    void this.sweep();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.running]);
  }

  /**
   * One sweep (`now` for tests); how many calls it ended. Never throws: the next sweep tries again. Two at once
   * (here or on other instances) are safe: the UPDATE ends each call once.
   */
  sweep(now = new Date()): Promise<number> {
    const sweeping = this.calls
      .endStale(
        {
          connectTimeoutMs: this.limits.connectTimeoutMs,
          chatIdleMs: this.limits.chatIdleMs,
          lostAfterMs: this.limits.lostAfterMs ?? LOST_AFTER_MS,
        },
        now,
      )
      .then((ended) => {
        for (const c of ended) this.log.info({ tenantId: c.tenantId, callId: c.id, reason: c.reason }, 'stale call ended');
        return ended.length;
      })
      .catch((err: unknown) => {
        this.log.warn({ err }, 'call sweep failed');
        return 0;
      });
    this.running.add(sweeping);
    void sweeping.finally(() => this.running.delete(sweeping));
    return sweeping;
  }
}
