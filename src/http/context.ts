// What every route module receives: the app's type and the dependencies, with the HTTP-only ones (rate limiter,
// authenticator) that app.ts builds. Its own module so routes need not import app.ts, which imports them.
import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Deps } from '../deps.js';
import type { Authenticator } from './auth.js';
import type { RateLimiter } from './rate-limit.js';

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

export interface HttpDeps extends Deps {
  rateLimiter: RateLimiter;
  authenticator: Authenticator;
}
