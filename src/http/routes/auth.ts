// /api/v1/auth: signup, login, refresh (rotating), logout, me. Browsers keep the refresh token in a cookie
// (`X-Auth-Mode: cookie`, http/session-cookie.ts); API clients send and receive it in JSON.
import { z } from 'zod';
import type { App, HttpDeps } from '../context.js';
import { userOf } from '../auth.js';
import { SessionCookie } from '../session-cookie.js';
import { AppError } from '../../lib/errors.js';
import { email, errorResponses, password } from '../schemas.js';
import { tenantView, toTenant, toUser, userView } from '../views.js';

const tokenPair = z.object({
  access_token: z.string(),
  refresh_token: z.string().optional().describe('Absent with `X-Auth-Mode: cookie`: it is in the HttpOnly cookie `va_refresh` instead'),
  token_type: z.literal('bearer'),
  expires_in: z.number().int(),
});
const session = tokenPair.extend({ user: userView, tenant: tenantView });
/** Loose: the other headers stay as they came (a strict or stripping schema would drop Cookie and the rest). */
const authModeHeaders = z.looseObject({
  'x-auth-mode': z
    .enum(['cookie'])
    .optional()
    .describe(
      'cookie: the refresh token is set as the HttpOnly cookie va_refresh (Path=/api/v1/auth, SameSite=Strict) and left out of ' +
        'the body; refresh and logout then read it from the cookie. The request must come from this service’s own origin.',
    ),
});
const refreshBody = z
  .strictObject({ refresh_token: z.string().min(1).max(512).optional().describe('Required unless X-Auth-Mode: cookie') })
  .nullish();
const missingRefreshToken = () =>
  new AppError('validation_error', 'body.refresh_token: required (or send X-Auth-Mode: cookie with the cookie)', [
    { field: 'body.refresh_token', message: 'required (or send X-Auth-Mode: cookie with the cookie)' },
  ]);

export function authRoutes(app: App, deps: HttpDeps): void {
  const tags = ['auth'];
  const cookie = new SessionCookie(deps.config);

  app.post(
    '/api/v1/auth/signup',
    {
      config: { auth: 'public', rateLimit: 'auth' },
      schema: {
        tags,
        summary: 'Create a tenant and its first user (an admin)',
        headers: authModeHeaders,
        body: z.strictObject({
          email,
          password,
          tenant_name: z.string().trim().min(1).max(200),
          full_name: z.string().trim().min(1).max(200).optional(),
        }),
        response: { 201: session, ...errorResponses },
      },
    },
    async (request, reply) => {
      const inCookie = cookie.requested(request);
      const b = request.body;
      const s = await deps.accounts.signup({ email: b.email, password: b.password, tenantName: b.tenant_name, fullName: b.full_name });
      const body = { ...s, user: toUser(s.user), tenant: toTenant(s.tenant) };
      return reply.status(201).send(inCookie ? cookie.give(request, reply, body) : body);
    },
  );

  app.post(
    '/api/v1/auth/login',
    {
      config: { auth: 'public', rateLimit: 'auth' },
      schema: {
        tags,
        summary: 'Exchange email and password for a token pair',
        headers: authModeHeaders,
        body: z.strictObject({ email, password: z.string().min(1).max(256) }),
        response: { 200: session, ...errorResponses },
      },
    },
    async (request, reply) => {
      // Per-account limit on failures, on top of the per-IP one, against password guessing spread over many
      // addresses; it does not lock the owner out from an address that has not been failing (RateLimiter.beforeLogin).
      const inCookie = cookie.requested(request);
      const { email, password } = request.body;
      await deps.rateLimiter.beforeLogin(reply, email, request.ip, deps.config.rateLimits.loginPerEmailPer15Minutes);
      try {
        const s = await deps.accounts.login(email, password);
        const body = { ...s, user: toUser(s.user), tenant: toTenant(s.tenant) };
        return inCookie ? cookie.give(request, reply, body) : body;
      } catch (err) {
        if (err instanceof AppError && err.code === 'invalid_credentials') await deps.rateLimiter.loginFailed(email, request.ip);
        throw err;
      }
    },
  );

  app.post(
    '/api/v1/auth/refresh',
    {
      config: { auth: 'public', rateLimit: 'refresh' },
      schema: {
        tags,
        summary: 'Rotate a refresh token: the old one stops working; reusing it revokes the whole login',
        headers: authModeHeaders,
        body: refreshBody,
        response: { 200: tokenPair, ...errorResponses },
      },
    },
    async (request, reply) => {
      const inCookie = cookie.requested(request);
      const token = request.body?.refresh_token ?? (inCookie ? cookie.read(request) : undefined);
      if (token === undefined && !inCookie) throw missingRefreshToken();
      try {
        if (token === undefined) throw new AppError('invalid_token', 'No refresh cookie: sign in again');
        const pair = await deps.tokens.rotate(token, (userId) => deps.accounts.assertUserMayAct(userId));
        return inCookie ? cookie.give(request, reply, pair) : pair;
      } catch (err) {
        // A cookie that no longer works (expired, revoked, reused) is dropped, so the page stops presenting it.
        if (inCookie) cookie.clear(request, reply);
        if (err instanceof AppError && err.code === 'invalid_token') await deps.rateLimiter.refreshRefused(request.ip);
        throw err;
      }
    },
  );

  app.post(
    '/api/v1/auth/logout',
    {
      config: { auth: 'public', rateLimit: 'auth' },
      schema: {
        tags,
        summary: 'Revoke a refresh token and every token rotated from the same login',
        headers: authModeHeaders,
        body: refreshBody,
        response: { 204: z.null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      const inCookie = cookie.requested(request);
      const token = request.body?.refresh_token ?? (inCookie ? cookie.read(request) : undefined);
      if (token === undefined && !inCookie) throw missingRefreshToken();
      if (token !== undefined) await deps.tokens.revoke(token);
      if (inCookie) cookie.clear(request, reply);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/v1/auth/me',
    {
      config: { auth: 'user' },
      schema: {
        tags,
        summary: 'The signed-in user and their tenant',
        security: [{ bearer: [] }],
        response: { 200: z.object({ user: userView, tenant: tenantView }), ...errorResponses },
      },
    },
    async (request) => {
      const p = userOf(request);
      const { user, tenant } = await deps.accounts.activeUser(p.userId, p.tenantId);
      return { user: toUser(user), tenant: toTenant(tenant) };
    },
  );
}
