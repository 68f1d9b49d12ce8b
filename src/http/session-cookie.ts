// Sign-in for browsers: the refresh token travels in an HttpOnly cookie scoped to the auth routes, never in a body
// page scripts can read, and a cookie-authenticated request must prove it comes from our own pages (CSRF).
//
// The contract (README, "Sign-in from a browser"):
// - A request opts in with the header `X-Auth-Mode: cookie` (signup, login, refresh, logout). Its response sets the
//   cookie `va_refresh` (HttpOnly; SameSite=Strict; Path=/api/v1/auth; Secure unless a development service is
//   reached over plain http) and its body carries no `refresh_token`; refresh and logout read the cookie.
// - Without that header nothing changes: the refresh token is in the JSON body both ways, and a cookie is ignored.
//
// Why this CSRF defence: SameSite=Strict already keeps other sites' requests from carrying the cookie; behind it,
// the custom header is the check. A page on another origin cannot send a non-safelisted header without a CORS
// preflight, and this service answers no preflight, so the browser never sends such a request; HTML forms cannot
// set headers at all. A double-submit token would add state and a round trip for no more than that. In case CORS is
// ever enabled for the API, the Origin header (sent by browsers on every POST) must name this service, and a
// browser's Sec-Fetch-Site must say same-origin: a foreign Origin is refused even with the header.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { AppError } from '../lib/errors.js';

export const AUTH_MODE_HEADER = 'x-auth-mode';
export const REFRESH_COOKIE = 'va_refresh';
export const REFRESH_COOKIE_PATH = '/api/v1/auth';

export class SessionCookie {
  /** The origin PUBLIC_BASE_URL names, accepted next to the request's own host (a proxy may rewrite Host). */
  private readonly publicOrigin: string | undefined;

  constructor(private readonly config: Pick<Config, 'env' | 'publicBaseUrl' | 'refreshTokenTtlMs'>) {
    this.publicOrigin = config.publicBaseUrl ? new URL(config.publicBaseUrl).origin : undefined;
  }

  /**
   * Whether the request asked for cookie mode; if it did, throws 403 unless it comes from one of our own pages.
   * Every route that reads or writes the cookie calls this first.
   */
  requested(request: FastifyRequest): boolean {
    if (request.headers[AUTH_MODE_HEADER] !== 'cookie') return false;
    const site = request.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin') throw crossSite(`Sec-Fetch-Site is ${String(site).slice(0, 20)}`);
    const origin = request.headers.origin;
    if (origin !== undefined && !this.isOwnOrigin(origin, request)) throw crossSite('the Origin is not this service');
    return true;
  }

  /** The refresh token the browser holds, if any. */
  read(request: FastifyRequest): string | undefined {
    const value = request.cookies[REFRESH_COOKIE];
    return value && value.length <= 512 ? value : undefined;
  }

  /** Puts the refresh token in the cookie and returns the body without it. */
  give<T extends { refresh_token: string }>(request: FastifyRequest, reply: FastifyReply, body: T): Omit<T, 'refresh_token'> {
    const { refresh_token, ...rest } = body;
    reply.setCookie(REFRESH_COOKIE, refresh_token, {
      ...this.attributes(request),
      maxAge: Math.floor(this.config.refreshTokenTtlMs / 1000),
    });
    return rest;
  }

  clear(request: FastifyRequest, reply: FastifyReply): void {
    reply.clearCookie(REFRESH_COOKIE, this.attributes(request));
  }

  private attributes(request: FastifyRequest) {
    // Secure everywhere but a development service reached over plain http (http://127.0.0.1:8000 after npm start),
    // where a Secure cookie would not be stored (only some browsers treat http://localhost as secure).
    const secure = this.config.env === 'production' || request.protocol === 'https';
    return { path: REFRESH_COOKIE_PATH, httpOnly: true, sameSite: 'strict' as const, secure };
  }

  private isOwnOrigin(origin: string, request: FastifyRequest): boolean {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false; // `null` (a sandboxed frame, a redirect chain) and anything malformed
    }
    if (url.origin === this.publicOrigin) return true;
    // The page and the API share an origin (the console is served by this service, or by Vite's dev server proxying
    // /api without changing Host), so the Origin's host is the Host the browser sent.
    // Read as a URL of the Origin's scheme, so a default port written in Host (`example.com:443`) still matches.
    try {
      return url.host === new URL(`${url.protocol}//${request.host}`).host;
    } catch {
      return false;
    }
  }
}

const crossSite = (why: string) => new AppError('forbidden', `Cross-site request refused (${why})`);
