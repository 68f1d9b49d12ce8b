// /api/v1/auth: signup, login, refresh (rotating), logout, me.
import { z } from 'zod';
import type { App, HttpDeps } from '../context.js';
import { userOf } from '../auth.js';
import { AppError } from '../../lib/errors.js';
import { email, errorResponses, password } from '../schemas.js';
import { tenantView, toTenant, toUser, userView } from '../views.js';

const tokenPair = z.object({
  access_token: z.string(),
  refresh_token: z.string(),
  token_type: z.literal('bearer'),
  expires_in: z.number().int(),
});
const session = tokenPair.extend({ user: userView, tenant: tenantView });

export function authRoutes(app: App, deps: HttpDeps): void {
  const tags = ['auth'];

  app.post(
    '/api/v1/auth/signup',
    {
      config: { auth: 'public', rateLimit: 'auth' },
      schema: {
        tags,
        summary: 'Create a tenant and its first user (an admin)',
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
      const b = request.body;
      const s = await deps.accounts.signup({ email: b.email, password: b.password, tenantName: b.tenant_name, fullName: b.full_name });
      return reply.status(201).send({ ...s, user: toUser(s.user), tenant: toTenant(s.tenant) });
    },
  );

  app.post(
    '/api/v1/auth/login',
    {
      config: { auth: 'public', rateLimit: 'auth' },
      schema: {
        tags,
        summary: 'Exchange email and password for a token pair',
        body: z.strictObject({ email, password: z.string().min(1).max(256) }),
        response: { 200: session, ...errorResponses },
      },
    },
    async (request, reply) => {
      // Per-account limit on failures, on top of the per-IP one, against password guessing spread over many
      // addresses; it does not lock the owner out from an address that has not been failing (RateLimiter.beforeLogin).
      const { email, password } = request.body;
      await deps.rateLimiter.beforeLogin(reply, email, request.ip, deps.config.rateLimits.loginPerEmailPer15Minutes);
      try {
        const s = await deps.accounts.login(email, password);
        return { ...s, user: toUser(s.user), tenant: toTenant(s.tenant) };
      } catch (err) {
        if (err instanceof AppError && err.code === 'invalid_credentials') await deps.rateLimiter.loginFailed(email, request.ip);
        throw err;
      }
    },
  );

  app.post(
    '/api/v1/auth/refresh',
    {
      config: { auth: 'public', rateLimit: 'auth' },
      schema: {
        tags,
        summary: 'Rotate a refresh token: the old one stops working; reusing it revokes the whole login',
        body: z.strictObject({ refresh_token: z.string().min(1).max(512) }),
        response: { 200: tokenPair, ...errorResponses },
      },
    },
    async (request) => deps.tokens.rotate(request.body.refresh_token, (userId) => deps.accounts.assertUserMayAct(userId)),
  );

  app.post(
    '/api/v1/auth/logout',
    {
      config: { auth: 'public', rateLimit: 'auth' },
      schema: {
        tags,
        summary: 'Revoke a refresh token and every token rotated from the same login',
        body: z.strictObject({ refresh_token: z.string().min(1).max(512) }),
        response: { 204: z.null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      await deps.tokens.revoke(request.body.refresh_token);
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
