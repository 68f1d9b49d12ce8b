// Liveness and readiness probes.
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import type { App } from '../context.js';

const check = z.enum(['ok', 'down', 'not_configured']);

export function healthRoutes(app: App, deps: Deps): void {
  const startedAt = Date.now();
  app.get(
    '/health',
    {
      // Probes every few seconds: their request lines would bury everything else at info.
      logLevel: 'warn',
      config: { auth: 'public' },
      schema: { tags: ['health'], summary: 'Liveness', response: { 200: z.object({ status: z.literal('ok'), uptime_ms: z.number() }) } },
    },
    async () => ({ status: 'ok' as const, uptime_ms: Date.now() - startedAt }),
  );

  app.get(
    '/health/ready',
    {
      // Probes every few seconds: their request lines would bury everything else at info.
      logLevel: 'warn',
      config: { auth: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Readiness: the database and, when configured, Redis answer',
        response: {
          200: z.object({ status: z.enum(['ok', 'unavailable']), checks: z.object({ database: check, redis: check }) }),
          503: z.object({ status: z.enum(['ok', 'unavailable']), checks: z.object({ database: check, redis: check }) }),
        },
      },
    },
    async (_request, reply) => {
      const probe = (p: Promise<void>) =>
        Promise.race([
          p.then(() => 'ok' as const),
          new Promise<'down'>((resolve) => setTimeout(() => resolve('down'), 2_000).unref()),
        ]).catch(() => 'down' as const);
      const [database, redis] = await Promise.all([
        probe(deps.database.ping()),
        deps.config.redisUrl ? probe(deps.cache.ping()) : Promise.resolve('not_configured' as const),
      ]);
      const ok = database === 'ok' && redis !== 'down';
      return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', checks: { database, redis } });
    },
  );
}
