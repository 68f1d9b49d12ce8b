// Admission of live calls: the one place every call that runs the voice agent (browser, inbound and outbound phone,
// LiveKit) is let in or refused, so a single tenant cannot take the whole instance. A call holds a Lease from the
// moment it is admitted (the web-call token, the voice webhook, the outbound request) until its session ends; a
// lease whose media never connects on this instance is released after connectTimeoutMs, so none can leak. Counts
// are this instance's own (the per-tenant cap is per instance too): the "plans and budgets" work extends admit().
import { AppError } from '../lib/errors.js';

/** The kinds of call that run the voice agent (chat sessions do not: no audio engines). */
export type CallKind = 'inbound' | 'outbound' | 'web';

export interface AdmissionLimits {
  /** Live calls this instance carries at most (its CPU and engine processes). */
  maxLiveCalls: number;
  /** Live calls one tenant may have at once on this instance. */
  maxLiveCallsPerTenant: number;
  /** A call admitted before its media connects (token, webhook) keeps its place this long, then loses it. */
  connectTimeoutMs: number;
}

/** A place among the live calls; release() gives it back (once; later calls do nothing). */
export interface Lease {
  readonly tenantId: string;
  readonly kind: CallKind;
  release(): void;
}

/** What a refused client is told to wait before trying again. */
export const RETRY_AFTER_S = 5;

/** The refusal's error: 503 `calls_at_capacity` (the instance) or 429 `too_many_calls` (the tenant), with Retry-After. */
export function isRefusal(err: unknown): err is AppError {
  return err instanceof AppError && (err.code === 'calls_at_capacity' || err.code === 'too_many_calls');
}

interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}
const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class Admission {
  private live = 0;
  private readonly perTenant = new Map<string, number>();
  /** Leases waiting for their call's media to connect here, by call id. */
  private readonly waiting = new Map<string, { lease: Lease; timer: unknown }>();

  constructor(
    readonly limits: AdmissionLimits,
    private readonly timers: Timers = realTimers,
  ) {}

  /** A place for a new call of the tenant, or the refusal (see isRefusal). */
  admit(tenantId: string, kind: CallKind): Lease {
    if (this.live >= this.limits.maxLiveCalls) {
      throw refusal(
        'calls_at_capacity',
        `This service is carrying as many calls as it can (${this.limits.maxLiveCalls}); try again shortly`,
      );
    }
    const mine = this.perTenant.get(tenantId) ?? 0;
    if (mine >= this.limits.maxLiveCallsPerTenant) {
      throw refusal('too_many_calls', `This account has ${mine} live calls, its limit; end one or try again shortly`);
    }
    this.live += 1;
    this.perTenant.set(tenantId, mine + 1);
    let released = false;
    return {
      tenantId,
      kind,
      release: () => {
        if (released) return;
        released = true;
        this.live -= 1;
        const n = (this.perTenant.get(tenantId) ?? 1) - 1;
        if (n > 0) this.perTenant.set(tenantId, n);
        else this.perTenant.delete(tenantId);
      },
    };
  }

  /**
   * Keeps the lease for the call until its media connects here (claim) or connectTimeoutMs passes, whichever is
   * first: a token never used, a webhook whose stream never opens, an outbound call never answered give it back.
   */
  reserve(callId: string, lease: Lease): void {
    this.waiting.get(callId)?.lease.release();
    const timer = this.timers.setTimeout(() => {
      if (this.waiting.get(callId)?.lease !== lease) return;
      this.waiting.delete(callId);
      lease.release();
    }, this.limits.connectTimeoutMs);
    this.waiting.set(callId, { lease, timer });
  }

  /** The call's media connected here: the lease reserved for it on this instance, now the session's to release. */
  claim(callId: string): Lease | undefined {
    const held = this.waiting.get(callId);
    if (!held) return undefined;
    this.waiting.delete(callId);
    this.timers.clearTimeout(held.timer);
    return held.lease;
  }

  /** Gives back the call's reservation now (the call ended before its media connected). */
  cancel(callId: string): void {
    this.claim(callId)?.release();
  }

  /** Live calls on this instance, connected or about to be. */
  get liveCalls(): number {
    return this.live;
  }

  liveCallsOf(tenantId: string): number {
    return this.perTenant.get(tenantId) ?? 0;
  }
}

function refusal(code: 'calls_at_capacity' | 'too_many_calls', message: string): AppError {
  const err = new AppError(code, message);
  err.retryAfterS = RETRY_AFTER_S;
  return err;
}
