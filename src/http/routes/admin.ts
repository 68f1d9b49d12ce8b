// /api/v1/admin: platform administrators list tenants with counts, suspend and reactivate them, set their limits.
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { AppError } from '../../lib/errors.js';
import { userOf } from '../auth.js';
import type { App } from '../context.js';
import { errorResponses, idParams, page, pageQuery } from '../schemas.js';
import { tenantView, toTenant } from '../views.js';

const counts = z.object({ users: z.number(), calls: z.number(), documents: z.number(), phone_numbers: z.number(), api_keys: z.number() });
const tenantWithCounts = tenantView.extend({ counts });
type Row = Awaited<ReturnType<Deps['tenantAdmin']['get']>>;
const toView = ({ tenant, ...c }: Row) => ({ ...toTenant(tenant), counts: c });

export function adminRoutes(app: App, deps: Deps): void {
  const common = { tags: ['admin'], security: [{ bearer: [] }] };

  app.get(
    '/api/v1/admin/tenants',
    {
      config: { auth: 'platform_admin' },
      schema: {
        ...common,
        summary: 'All tenants with counts',
        querystring: pageQuery,
        response: { 200: page(tenantWithCounts), ...errorResponses },
      },
    },
    async (request) => {
      const { items, total } = await deps.tenantAdmin.list(request.query);
      return { items: items.map(toView), total, ...request.query };
    },
  );

  app.get(
    '/api/v1/admin/tenants/:id',
    {
      config: { auth: 'platform_admin' },
      schema: { ...common, summary: 'One tenant with counts', params: idParams, response: { 200: tenantWithCounts, ...errorResponses } },
    },
    async (request) => toView(await deps.tenantAdmin.get(request.params.id)),
  );

  app.post(
    '/api/v1/admin/tenants/:id/suspend',
    {
      config: { auth: 'platform_admin' },
      schema: {
        ...common,
        summary: 'Suspend a tenant: its users and API keys get 403 until reactivated',
        params: idParams,
        // Optional: a POST without a body arrives as null.
        body: z.strictObject({ reason: z.string().trim().max(500).optional() }).nullish(),
        response: { 200: tenantWithCounts, ...errorResponses },
      },
    },
    async (request) => {
      // Suspending it would sign the platform admin out for good: nobody would be left to reactivate it.
      if (request.params.id === userOf(request).tenantId)
        throw new AppError('own_tenant', 'The platform administrators’ own tenant cannot be suspended');
      const tenant = await deps.tenantAdmin.setStatus(request.params.id, 'suspended', request.body?.reason);
      // Its live calls end too, wherever they run: their tokens were issued before the suspension.
      await deps.telephony.endLiveCalls({ tenantId: request.params.id }, 'tenant suspended');
      return toView(tenant);
    },
  );

  app.post(
    '/api/v1/admin/tenants/:id/reactivate',
    {
      config: { auth: 'platform_admin' },
      schema: {
        ...common,
        summary: 'Reactivate a suspended tenant',
        params: idParams,
        response: { 200: tenantWithCounts, ...errorResponses },
      },
    },
    async (request) => toView(await deps.tenantAdmin.setStatus(request.params.id, 'active')),
  );

  const limitsView = z.object({
    max_concurrent_calls: z
      .number()
      .int()
      .nullable()
      .describe('Concurrent calls across every instance; null: the platform default (MAX_LIVE_CALLS_PER_TENANT).'),
    effective: z.object({ max_concurrent_calls: z.number().int() }).describe('What applies now, defaults included.'),
  });
  const toLimits = (l: { maxConcurrentCalls: number | null }) => ({
    max_concurrent_calls: l.maxConcurrentCalls,
    effective: { max_concurrent_calls: l.maxConcurrentCalls ?? deps.config.calls.maxLivePerTenant },
  });

  app.get(
    '/api/v1/admin/tenants/:id/limits',
    {
      config: { auth: 'platform_admin' },
      schema: { ...common, summary: 'A tenant’s limits', params: idParams, response: { 200: limitsView, ...errorResponses } },
    },
    async (request) => {
      await deps.tenantAdmin.get(request.params.id);
      return toLimits(await deps.tenantAdmin.limits(request.params.id));
    },
  );

  app.patch(
    '/api/v1/admin/tenants/:id/limits',
    {
      config: { auth: 'platform_admin' },
      schema: {
        ...common,
        summary: 'Set a tenant’s limits (null: back to the platform default); new calls past them are refused at once',
        params: idParams,
        body: z.strictObject({ max_concurrent_calls: z.number().int().min(0).max(100_000).nullable().optional() }),
        response: { 200: limitsView, ...errorResponses },
      },
    },
    async (request) => {
      const { max_concurrent_calls } = request.body;
      return toLimits(
        await deps.tenantAdmin.setLimits(request.params.id, {
          ...(max_concurrent_calls !== undefined && { maxConcurrentCalls: max_concurrent_calls }),
        }),
      );
    },
  );
}
