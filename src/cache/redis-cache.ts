// Redis-backed Cache, shared by every instance pointed at the same REDIS_URL.
import { Redis } from 'ioredis';
import type { Cache, WindowCount } from './cache.js';

// INCR and the expiry are one atomic step, so a crash between them can never leave a counter without a TTL.
const HIT_WINDOW = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`;

export class RedisCache implements Cache {
  readonly redis: Redis;

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

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
