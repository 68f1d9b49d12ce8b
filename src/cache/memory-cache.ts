// In-process Cache for a single instance (the embedded default).
import type { Cache, LeaseGrant, WindowCount } from './cache.js';

export class MemoryCache implements Cache {
  private readonly windows = new Map<string, { count: number; expiresAt: number }>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly channels = new Map<string, ((message: string) => void)[]>();
  /** key -> lease id -> expiry (ms, on the caller's clock). */
  private readonly leases = new Map<string, Map<string, number>>();

  constructor() {
    // Expired windows are dropped once a minute so memory does not grow with every client ever seen.
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [k, w] of this.windows) if (w.expiresAt <= now) this.windows.delete(k);
    }, 60_000);
    this.sweeper.unref();
  }

  async hitWindow(key: string, windowMs: number): Promise<WindowCount> {
    const now = Date.now();
    let w = this.windows.get(key);
    if (!w || w.expiresAt <= now) {
      w = { count: 0, expiresAt: now + windowMs };
      this.windows.set(key, w);
    }
    w.count += 1;
    return { count: w.count, resetMs: w.expiresAt - now };
  }

  async peekWindow(key: string): Promise<WindowCount> {
    const now = Date.now();
    const w = this.windows.get(key);
    return w && w.expiresAt > now ? { count: w.count, resetMs: w.expiresAt - now } : { count: 0, resetMs: 0 };
  }

  async publish(channel: string, message: string): Promise<void> {
    // Delivered on a later tick, as Redis would: a publisher never runs its subscribers inside its own call.
    for (const handler of this.channels.get(channel) ?? []) setImmediate(() => handler(message));
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<void> {
    this.channels.set(channel, [...(this.channels.get(channel) ?? []), handler]);
  }

  async acquireLease(key: string, leaseId: string, max: number, ttlMs: number, nowMs: number): Promise<LeaseGrant> {
    const live = this.liveLeases(key, nowMs);
    if (!live.has(leaseId) && live.size >= max) return { acquired: false, held: live.size };
    live.set(leaseId, nowMs + ttlMs);
    this.leases.set(key, live);
    return { acquired: true, held: live.size };
  }

  async renewLeases(key: string, leaseIds: string[], ttlMs: number, nowMs: number): Promise<void> {
    // Only leases still held: one that expired is not brought back (like the Redis implementation's ZADD XX).
    const live = this.leases.get(key);
    for (const id of leaseIds) {
      const until = live?.get(id);
      if (until !== undefined && until > nowMs) live!.set(id, nowMs + ttlMs);
    }
  }

  async releaseLease(key: string, leaseId: string): Promise<void> {
    const live = this.leases.get(key);
    live?.delete(leaseId);
    if (live?.size === 0) this.leases.delete(key);
  }

  async countLeases(key: string, nowMs: number): Promise<number> {
    return this.liveLeases(key, nowMs).size;
  }

  /** The key's leases with the expired ones dropped. */
  private liveLeases(key: string, nowMs: number): Map<string, number> {
    const live = this.leases.get(key) ?? new Map<string, number>();
    for (const [id, expiresAt] of live) if (expiresAt <= nowMs) live.delete(id);
    if (live.size === 0) this.leases.delete(key);
    return live;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.windows.clear();
    this.channels.clear();
    this.leases.clear();
  }
}
