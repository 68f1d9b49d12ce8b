// Fixed-window rate limits on a shared Cache: per IP on every route and websocket message, per tenant (its users
// and API keys together) once authenticated, and much stricter limits on the routes that take passwords or refresh
// tokens.
import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import type { Cache } from '../cache/cache.js';
import { AppError } from './errors.js';

/** 429 rate_limited; `retryAfterS` is what the Retry-After header (or a websocket's in-band error) says. */
export class RateLimitedError extends AppError {
  constructor(readonly retryAfterS: number) {
    super('rate_limited', `Too many requests; retry in ${retryAfterS} s`);
  }
}

export class RateLimiter {
  private lastWarnAt = 0;
  constructor(
    private readonly cache: Cache,
    private readonly log: FastifyBaseLogger,
  ) {}

  /**
   * The per-IP limit: every request counts, except on provider-signed routes (rateLimit 'signed') where only a
   * request whose signature failed does (past the limit it gets 429 instead of 403). A websocket message counts
   * like a request (no reply then: the caller answers in-band).
   */
  async perIp(reply: FastifyReply | undefined, ip: string, perMinute: number): Promise<void> {
    await this.enforce(reply, `ip:${ip}`, perMinute, 60_000);
  }

  /**
   * The per-tenant limit, one bucket for all of a tenant's users and API keys: a tenant cannot multiply its quota
   * by creating keys.
   */
  async perTenant(reply: FastifyReply | undefined, tenantId: string, perMinute: number): Promise<void> {
    await this.enforce(reply, `tenant:${tenantId}`, perMinute, 60_000);
  }

  /** Counts a hit on `key`; past `limit` in the window, throws 429 (with Retry-After when there is a reply). */
  async enforce(reply: FastifyReply | undefined, key: string, limit: number, windowMs: number): Promise<void> {
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
    reply?.header('x-ratelimit-limit', limit);
    reply?.header('x-ratelimit-remaining', remaining);
    reply?.header('x-ratelimit-reset', resetS);
    if (hit.count > limit) {
      reply?.header('retry-after', resetS);
      throw new RateLimitedError(resetS);
    }
  }
}
