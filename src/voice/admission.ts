// Admission of live calls: the one place every call that runs the voice agent (browser, inbound and outbound phone,
// LiveKit) is let in or refused. Two limits: this instance's capacity (MAX_LIVE_CALLS, counted here), and the
// tenant's concurrent calls across every instance (its cap set by the platform admin, else MAX_LIVE_CALLS_PER_TENANT),
// counted as expiring leases in the shared cache (Redis when configured): each admitted call holds a lease renewed by
// this instance's heartbeat while the call lives, so the calls of an instance that dies stop counting within leaseMs.
// A call holds its Lease from the moment it is admitted (the web-call token, the voice webhook, the outbound request)
// until its session ends; a lease whose media never connects on this instance is released after connectTimeoutMs.
import { randomUUID } from 'node:crypto';
import type { Cache } from '../cache/cache.js';
import { AppError } from '../lib/errors.js';

/** The kinds of call that run the voice agent (chat sessions do not: no audio engines). */
export type CallKind = 'inbound' | 'outbound' | 'web';

export interface AdmissionLimits {
  /** Live calls this instance carries at most (its CPU and engine processes). */
  maxLiveCalls: number;
  /** Concurrent calls one tenant may have across all instances, unless the platform admin set its own cap. */
  maxLiveCallsPerTenant: number;
  /** A call admitted before its media connects (token, webhook) keeps its place this long, then loses it. */
  connectTimeoutMs: number;
  /**
   * How long a tenant's place in the shared count lasts without renewal. The heartbeat renews every third of it, so
   * a live call never lapses; an instance that stops renewing (killed) frees its calls' places within this time.
   */
  leaseMs: number;
}

/** A place among the live calls; release() gives it back (once; later calls do nothing). */
export interface Lease {
  readonly tenantId: string;
  readonly kind: CallKind;
  release(): void;
}

/** What a refused client is told to wait before trying again. */
export const RETRY_AFTER_S = 5;

export type RefusalCode = 'calls_at_capacity' | 'concurrency_limit';

/**
 * The refusal's error: 503 `calls_at_capacity` (the instance) or 429 `concurrency_limit` (the tenant), with
 * Retry-After. (`too_many_calls`, the tenant's earlier per-instance refusal, is still recognised.)
 */
export function isRefusal(err: unknown): err is AppError {
  return err instanceof AppError && (err.code === 'calls_at_capacity' || err.code === 'concurrency_limit' || err.code === 'too_many_calls');
}

interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}
const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

type LeaseStore = Pick<Cache, 'acquireLease' | 'renewLeases' | 'releaseLease' | 'countLeases'>;

export interface AdmissionOptions {
  /** Where tenants' leases are counted: the shared cache (Redis across instances, in-process for one). */
  leases: LeaseStore;
  /** The tenant's own cap of concurrent calls (set by the platform admin), or null for maxLiveCallsPerTenant. */
  tenantCap?: (tenantId: string) => Promise<number | null>;
  /** Wall-clock ms (leases' expiry); injected so tests move time by hand. Instances must roughly agree on it. */
  now?: () => number;
  timers?: Timers;
  /** Told when the shared count cannot be reached: the call is admitted on this instance's count alone. */
  onStoreError?: (err: unknown) => void;
  /** Told of each refusal (metrics). */
  onRefusal?: (code: RefusalCode, kind: CallKind) => void;
}

const leaseKey = (tenantId: string) => `calls:${tenantId}`;

export class Admission {
  private live = 0;
  private readonly perTenant = new Map<string, number>();
  /** Leases this instance holds in the shared count (renewed by its heartbeat): lease id -> tenant. */
  private readonly held = new Map<string, string>();
  /** Leases waiting for their call's media to connect here, by call id. */
  private readonly waiting = new Map<string, { lease: Lease; timer: unknown }>();
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly timers: Timers;

  constructor(
    readonly limits: AdmissionLimits,
    private readonly opts: AdmissionOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.timers = opts.timers ?? realTimers;
  }

  /** Starts renewing this instance's leases every third of the lease time (until stop()). */
  start(): void {
    this.heartbeat ??= setInterval(() => void this.renew(), Math.max(1000, Math.floor(this.limits.leaseMs / 3))).unref();
  }

  stop(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** Renews every lease this instance holds (the heartbeat). Never throws. */
  async renew(): Promise<void> {
    const byTenant = new Map<string, string[]>();
    for (const [id, tenantId] of this.held) byTenant.set(tenantId, [...(byTenant.get(tenantId) ?? []), id]);
    const now = this.now();
    await Promise.all(
      [...byTenant].map(([tenantId, ids]) =>
        this.opts.leases
          .renewLeases(leaseKey(tenantId), ids, this.limits.leaseMs, now)
          .catch((err: unknown) => this.opts.onStoreError?.(err)),
      ),
    );
  }

  /** A place for a new call of the tenant, or the refusal (see isRefusal). */
  async admit(tenantId: string, kind: CallKind): Promise<Lease> {
    if (this.live >= this.limits.maxLiveCalls) {
      throw this.refusal(
        kind,
        'calls_at_capacity',
        `This service is carrying as many calls as it can (${this.limits.maxLiveCalls}); try again shortly`,
      );
    }
    // Taken before the shared count is asked, so calls admitted meanwhile cannot overfill this instance.
    this.live += 1;
    const leaseId = randomUUID();
    try {
      const cap = (await this.opts.tenantCap?.(tenantId)) ?? this.limits.maxLiveCallsPerTenant;
      const grant = await this.opts.leases
        .acquireLease(leaseKey(tenantId), leaseId, cap, this.limits.leaseMs, this.now())
        .catch((err: unknown) => {
          // The shared count is down: admitted on this instance's capacity alone (like the rate limits), and
          // the heartbeat puts the lease back in the count once it is reachable again.
          this.opts.onStoreError?.(err);
          return { acquired: true, held: 0 };
        });
      if (!grant.acquired) {
        throw this.refusal(
          kind,
          'concurrency_limit',
          `This account has ${grant.held} concurrent calls, its limit (${cap}); end one or try again shortly`,
        );
      }
    } catch (err) {
      this.live -= 1;
      throw err;
    }
    this.held.set(leaseId, tenantId);
    this.perTenant.set(tenantId, (this.perTenant.get(tenantId) ?? 0) + 1);
    let released = false;
    return {
      tenantId,
      kind,
      release: () => {
        if (released) return;
        released = true;
        this.live -= 1;
        this.held.delete(leaseId);
        const n = (this.perTenant.get(tenantId) ?? 1) - 1;
        if (n > 0) this.perTenant.set(tenantId, n);
        else this.perTenant.delete(tenantId);
        void this.opts.leases.releaseLease(leaseKey(tenantId), leaseId).catch((err: unknown) => this.opts.onStoreError?.(err));
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

  /** The tenant's live calls on this instance. */
  liveCallsOf(tenantId: string): number {
    return this.perTenant.get(tenantId) ?? 0;
  }

  /** The tenant's concurrent calls on every instance (leases not expired). */
  concurrentCallsOf(tenantId: string): Promise<number> {
    return this.opts.leases.countLeases(leaseKey(tenantId), this.now());
  }

  private refusal(kind: CallKind, code: RefusalCode, message: string): AppError {
    this.opts.onRefusal?.(code, kind);
    const err = new AppError(code, message);
    err.retryAfterS = RETRY_AFTER_S;
    return err;
  }
}
