// Redis-backed Cache, shared by every instance pointed at the same REDIS_URL.
import { Redis } from 'ioredis';
import type { Cache, LeaseGrant, WindowCount } from './cache.js';

// INCR and the expiry are one atomic step, so a crash between them can never leave a counter without a TTL.
const HIT_WINDOW = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`;

// A sorted set per key: lease id scored by its expiry. Dropping the expired, counting and adding are one atomic step
// (a script runs alone), so two instances admitting at once cannot both take the last place. Expiry is on the
// callers' clocks (passed in, so tests control time); instances' clocks must agree to well within a lease.
const ACQUIRE_LEASE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local held = redis.call('ZCARD', KEYS[1])
local mine = redis.call('ZSCORE', KEYS[1], ARGV[3])
if not mine and held >= tonumber(ARGV[4]) then return {0, held} end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if mine then return {1, held} end
return {1, held + 1}`;

/** How long subscribe() waits for Redis to confirm before going on (it keeps trying in the background). */
const SUBSCRIBE_WAIT_MS = 2000;

export class RedisCache implements Cache {
  readonly redis: Redis;
  /** A connection in subscriber mode can run no other command: its own, made at the first subscribe. */
  private subscriber: Redis | undefined;
  private readonly handlers = new Map<string, ((message: string) => void)[]>();

  constructor(
    url: string,
    private readonly prefix = 'va:',
  ) {
    // No offline queue: when Redis is down, commands fail at once instead of piling up behind requests.
    this.redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    this.redis.on('error', () => {});
  }

  async connect(): Promise<void> {
    await this.redis.connect();
  }

  async hitWindow(key: string, windowMs: number): Promise<WindowCount> {
    const [count, ttl] = (await this.redis.eval(HIT_WINDOW, 1, this.prefix + key, windowMs)) as [number, number];
    return { count, resetMs: ttl };
  }

  async peekWindow(key: string): Promise<WindowCount> {
    const [[, count], [, ttl]] = (await this.redis
      .multi()
      .get(this.prefix + key)
      .pttl(this.prefix + key)
      .exec()) as [[unknown, string | null], [unknown, number]];
    return count === null || ttl <= 0 ? { count: 0, resetMs: 0 } : { count: Number(count), resetMs: ttl };
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.redis.publish(this.prefix + channel, message);
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<void> {
    if (!this.subscriber) {
      // Unlike the command connection this one queues while offline and resubscribes after a reconnect, so a
      // Redis restart does not silently stop call control.
      this.subscriber = this.redis.duplicate({ lazyConnect: false, enableOfflineQueue: true, maxRetriesPerRequest: null });
      this.subscriber.on('error', () => {});
      this.subscriber.on('message', (ch: string, message: string) => {
        for (const h of this.handlers.get(ch) ?? []) h(message);
      });
    }
    const key = this.prefix + channel;
    const first = !this.handlers.has(key);
    this.handlers.set(key, [...(this.handlers.get(key) ?? []), handler]);
    if (!first) return;
    const subscribed = this.subscriber.subscribe(key).then(() => undefined);
    subscribed.catch(() => {});
    // Redis down: the subscription waits in the offline queue and happens on connect; start-up must not hang on it.
    await Promise.race([subscribed, new Promise((r) => setTimeout(r, SUBSCRIBE_WAIT_MS).unref())]);
  }

  async acquireLease(key: string, leaseId: string, max: number, ttlMs: number, nowMs: number): Promise<LeaseGrant> {
    const [acquired, held] = (await this.redis.eval(ACQUIRE_LEASE, 1, this.prefix + key, nowMs, nowMs + ttlMs, leaseId, max, ttlMs)) as [
      number,
      number,
    ];
    return { acquired: acquired === 1, held };
  }

  async renewLeases(key: string, leaseIds: string[], ttlMs: number, nowMs: number): Promise<void> {
    if (!leaseIds.length) return;
    const k = this.prefix + key;
    // The set itself outlives its last lease by one lease time, so a tenant nobody calls leaves no key behind. XX:
    // only leases still held are renewed; one that expired (its place may be someone else's now) is not brought back.
    await this.redis
      .multi()
      .zadd(k, 'XX', ...leaseIds.flatMap((id) => [nowMs + ttlMs, id]))
      .pexpire(k, ttlMs)
      .exec();
  }

  async releaseLease(key: string, leaseId: string): Promise<void> {
    await this.redis.zrem(this.prefix + key, leaseId);
  }

  async countLeases(key: string, nowMs: number): Promise<number> {
    return this.redis.zcount(this.prefix + key, `(${nowMs}`, '+inf');
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    this.subscriber?.disconnect();
  }
}
