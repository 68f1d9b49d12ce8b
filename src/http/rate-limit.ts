// Fixed-window rate limits on a shared Cache: per IP on every route and websocket message, per tenant (its users
// and API keys together) once authenticated, and much stricter limits on the routes that take passwords or refresh
// tokens.
import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import type { Cache } from '../cache/cache.js';
import { AppError } from '../lib/errors.js';

/** 429 rate_limited; `retryAfterS` is what the Retry-After header (or a websocket's in-band error) says. */
/** The window of the per-account login limit (RATE_LIMIT_LOGIN_PER_EMAIL_PER_15_MINUTES). */
const LOGIN_WINDOW_MS = 15 * 60_000;
/** Past this many times the per-account limit, failed logins from anywhere lock the account until the window ends. */
const LOGIN_HARD_LIMIT_FACTOR = 10;

export class RateLimitedError extends AppError {
  constructor(retryAfterS: number) {
    super('rate_limited', `Too many requests; retry in ${retryAfterS} s`);
    this.retryAfterS = retryAfterS;
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

  /**
   * Password guessing on one account. Only failed logins count, per account and per (account, address). Under
   * `perEmail` failures in the window anyone may try. Past it, an address that has failed on this account in the
   * window is refused without its password being checked (429), while an address that has not (the owner at home,
   * while someone else guesses) still gets its password checked: the owner is not locked out by a stranger. Each
   * further address gets one guess before it is refused too, so past 10 times the limit (a guessing campaign spread
   * over many addresses) every address is refused until the window ends.
   */
  async beforeLogin(reply: FastifyReply, email: string, ip: string, perEmail: number): Promise<void> {
    let account, here;
    try {
      [account, here] = await Promise.all([
        this.cache.peekWindow(`rl:login-fail:${email}`),
        this.cache.peekWindow(`rl:login-fail:${email}:${ip}`),
      ]);
    } catch (err) {
      this.cacheDown(err);
      return;
    }
    const refusedBy =
      account.count >= LOGIN_HARD_LIMIT_FACTOR * perEmail ? account : account.count >= perEmail && here.count > 0 ? here : undefined;
    if (!refusedBy) return;
    const resetS = Math.max(1, Math.ceil(refusedBy.resetMs / 1000));
    reply.header('retry-after', resetS);
    throw new RateLimitedError(resetS);
  }

  /** Counts a failed login against the account and against the address it came from. */
  async loginFailed(email: string, ip: string): Promise<void> {
    try {
      await Promise.all([
        this.cache.hitWindow(`rl:login-fail:${email}`, LOGIN_WINDOW_MS),
        this.cache.hitWindow(`rl:login-fail:${email}:${ip}`, LOGIN_WINDOW_MS),
      ]);
    } catch (err) {
      this.cacheDown(err);
    }
  }

  /**
   * Refresh tokens cannot be guessed, but a refusal costs a lookup: refused refreshes count in the strict per-IP
   * bucket, and past its limit this refuses the next ones. A working refresh does not count, so a browser page that
   * refreshes on every load (the console keeps its access token only in memory) is not signed out for reloading.
   */
  async beforeRefresh(reply: FastifyReply, ip: string, limit: number): Promise<void> {
    let fails;
    try {
      fails = await this.cache.peekWindow(`rl:auth:${ip}`);
    } catch (err) {
      this.cacheDown(err);
      return;
    }
    if (fails.count < limit) return;
    const resetS = Math.max(1, Math.ceil(fails.resetMs / 1000));
    reply.header('retry-after', resetS);
    throw new RateLimitedError(resetS);
  }

  /** Counts a refused refresh (or logout) token against its address (beforeRefresh). */
  async refreshRefused(ip: string): Promise<void> {
    try {
      await this.cache.hitWindow(`rl:auth:${ip}`, 60_000);
    } catch (err) {
      this.cacheDown(err);
    }
  }

  /** Counts a hit on `key`; past `limit` in the window, throws 429 (with Retry-After when there is a reply). */
  async enforce(reply: FastifyReply | undefined, key: string, limit: number, windowMs: number): Promise<void> {
    let hit;
    try {
      hit = await this.cache.hitWindow(`rl:${key}`, windowMs);
    } catch (err) {
      this.cacheDown(err);
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

  /**
   * A cache outage must not take the API down with it: fail open, warn at most once a minute, and let
   * /health/ready report the outage.
   */
  private cacheDown(err: unknown): void {
    if (Date.now() - this.lastWarnAt > 60_000) {
      this.lastWarnAt = Date.now();
      this.log.warn({ err }, 'rate limiter unavailable; requests are not being limited');
    }
  }
}
