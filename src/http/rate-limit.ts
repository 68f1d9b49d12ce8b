// Fixed-window rate limits on a shared Cache: per IP on every route, per tenant or API key once
// authenticated, and much stricter limits on the routes that take passwords or refresh tokens.
import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import type { Cache } from '../cache/cache.js';
import { AppError } from './errors.js';

export class RateLimiter {
  private lastWarnAt = 0;
  constructor(
    private readonly cache: Cache,
    private readonly log: FastifyBaseLogger,
  ) {}

  /**
   * The per-IP limit: every request counts, except on provider-signed routes (rateLimit 'signed') where only a
   * request whose signature failed does (past the limit it gets 429 instead of 403).
   */
  async perIp(reply: FastifyReply, ip: string, perMinute: number): Promise<void> {
    await this.enforce(reply, `ip:${ip}`, perMinute, 60_000);
  }

  /** Counts a hit on `key`; past `limit` in the window, answers 429 with Retry-After. */
  async enforce(reply: FastifyReply, key: string, limit: number, windowMs: number): Promise<void> {
    let hit;
    try {
      hit = await this.cache.hitWindow(`rl:${key}`, windowMs);
    } catch (err) {
      // A cache outage must not take the API down with it: fail open, warn at most once a minute,
      // and let /health/ready report the outage.
      if (Date.now() - this.lastWarnAt > 60_000) {
        this.lastWarnAt = Date.now();
        this.log.warn({ err }, 'rate limiter unavailable; requests are not being limited');
      }
      return;
    }
    const remaining = Math.max(0, limit - hit.count);
    const resetS = Math.max(1, Math.ceil(hit.resetMs / 1000));
    reply.header('x-ratelimit-limit', limit);
    reply.header('x-ratelimit-remaining', remaining);
    reply.header('x-ratelimit-reset', resetS);
    if (hit.count > limit) {
      reply.header('retry-after', resetS);
      throw new AppError('rate_limited', `Too many requests; retry in ${resetS} s`);
    }
  }
}
