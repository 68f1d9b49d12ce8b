// Cache: what several instances must share. In-process by default, Redis when REDIS_URL is set.
export interface WindowCount {
  /** Hits in the current window, this one included. */
  count: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

/** The answer to acquireLease: whether the lease is held now, and how many live leases the key has (it included). */
export interface LeaseGrant {
  acquired: boolean;
  held: number;
}

export interface Cache {
  /** Adds one hit to a counter that lives windowMs from its first hit (a fixed-window rate counter). */
  hitWindow(key: string, windowMs: number): Promise<WindowCount>;
  /** The counter's current window without adding a hit (count 0 when there is none). */
  peekWindow(key: string): Promise<WindowCount>;
  /** Delivers a message to every subscriber of the channel, on every instance (fire and forget). */
  publish(channel: string, message: string): Promise<void>;
  /** Calls `handler` for each message published on the channel from now on, by any instance. */
  subscribe(channel: string, handler: (message: string) => void): Promise<void>;
  /**
   * Expiring leases under one key (a tenant's live calls across instances): drops the key's leases that expired by
   * `nowMs`, then takes `leaseId` until `nowMs + ttlMs` if fewer than `max` are live, in one atomic step. A lease
   * must be renewed before it expires or it stops counting: an instance that dies stops holding its leases.
   */
  acquireLease(key: string, leaseId: string, max: number, ttlMs: number, nowMs: number): Promise<LeaseGrant>;
  /** Extends the leases (held by this instance) to `nowMs + ttlMs`; one that had expired counts again. */
  renewLeases(key: string, leaseIds: string[], ttlMs: number, nowMs: number): Promise<void>;
  releaseLease(key: string, leaseId: string): Promise<void>;
  /** Live leases under the key at `nowMs`. */
  countLeases(key: string, nowMs: number): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
