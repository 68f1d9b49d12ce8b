// GET /metrics: the operator metrics in Prometheus text format, for the bearer of METRICS_TOKEN only.
import { timingSafeEqual } from 'node:crypto';
import type { Deps } from '../../deps.js';
import { AppError } from '../../lib/errors.js';
import { CONTENT_TYPE } from '../../lib/prometheus.js';
import type { App } from '../context.js';

/** Compared in constant time for a guess of the right length (the length itself is not a secret worth hiding). */
function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function metricsRoutes(app: App, deps: Deps): void {
  app.get(
    '/metrics',
    {
      // Probes every few seconds: their request lines would bury everything else at info.
      logLevel: 'warn',
      // Not a tenant's credential: the operator's own token, checked here.
      config: { auth: 'public' },
      schema: {
        tags: ['health'],
        security: [{ metrics_token: [] }],
        summary: 'Operator metrics (Prometheus text format)',
        description:
          '`Authorization: Bearer <METRICS_TOKEN>`. Without METRICS_TOKEN configured the route answers 404 (as if absent); a ' +
          'missing or wrong token is 401. Calls, per-stage turn latency histograms, provider errors and fallbacks, queue depths, ' +
          'event-loop lag and database pool use; no tenant labels unless METRICS_TENANT_LABELS is on.',
      },
    },
    async (request, reply) => {
      const expected = deps.config.metrics.token;
      if (!expected) throw new AppError('not_found', 'No route GET /metrics');
      const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
      if (!m || !sameToken(m[1]!, expected)) {
        reply.header('www-authenticate', 'Bearer realm="metrics"');
        throw new AppError('unauthorized', 'The metrics token is missing or wrong');
      }
      const body = await deps.metrics.expose((name, err) => request.log.warn({ err, metric: name }, 'metric left out of the scrape'));
      return reply.type(CONTENT_TYPE).header('cache-control', 'no-store').send(body);
    },
  );
}
