// /api/v1/admin: platform administrators list tenants with counts, suspend and reactivate them.
import { z } from 'zod';
import type { Deps } from '../../deps.js';
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
}
