// /api/v1/usage: the tenant's usage and cost over a time range, grouped by day, month, call or provider; and
// /api/v1/admin/tenants/{id}/billing: the platform admin's monthly caps and price overrides for a tenant.
import { z } from 'zod';
import { AppError } from '../../lib/errors.js';
import { PRICE_KEY } from '../../services/prices.js';
import type { Billing } from '../../services/usage.js';
import { principalOf } from '../auth.js';
import type { App, HttpDeps } from '../context.js';
import { costLineView, costSplitView, errorResponses, idParams } from '../schemas.js';

/** The longest range one request may cover: a year of days, or twelve months. */
const MAX_RANGE_DAYS = 366;

/** A date (midnight UTC) or a date-time with its offset. */
const instant = z.union([z.iso.date(), z.iso.datetime({ offset: true })]);
const usageQuery = z.strictObject({
  from: instant.optional().describe('Start (inclusive), a date (UTC) or date-time; default: the start of this month (UTC)'),
  to: instant.optional().describe('End (exclusive), a date (UTC) or date-time; default: now'),
  group_by: z.enum(['day', 'month', 'call', 'provider']).default('day'),
});

const usageView = z.object({
  from: z.string(),
  to: z.string(),
  group_by: z.enum(['day', 'month', 'call', 'provider']),
  totals: costSplitView.extend({ minutes: z.number() }),
  items: z.array(
    z.object({
      key: z.string().describe('The day (YYYY-MM-DD), month (YYYY-MM), call id ("ingestion" for documents) or component:provider'),
      minutes: z.number(),
      cost: costSplitView,
      usage: z.array(costLineView),
    }),
  ),
  /** group_by=call stops at 1000 calls. */
  truncated: z.boolean(),
});

const billingView = z.object({
  monthly_minutes_cap: z.number().describe('0: no cap'),
  monthly_spend_cap_usd: z.number().describe('0: no cap; what the platform bills (the tenant’s own keys not counted)'),
  custom: z.object({ monthly_minutes_cap: z.boolean(), monthly_spend_cap_usd: z.boolean() }),
  prices: z.record(z.string(), z.number()),
  month_to_date: z.object({ minutes: z.number(), spend_usd: z.number() }),
});
const billingPatch = z.strictObject({
  monthly_minutes_cap: z.number().int().min(0).max(100_000_000).nullable().optional().describe('null: the platform default'),
  monthly_spend_cap_usd: z.number().min(0).max(1e9).nullable().optional().describe('null: the platform default'),
  prices: z
    .record(z.string().regex(PRICE_KEY, 'must be component:provider[:model]:unit'), z.number().min(0).max(1000))
    .refine((p) => Object.keys(p).length <= 200, 'at most 200 prices')
    .optional()
    .describe('USD per unit, replacing the list price for this tenant (keys as in src/services/prices.ts)'),
});

const round = (n: number) => Math.round(n * 1e6) / 1e6;

export function usageRoutes(app: App, deps: HttpDeps): void {
  app.get(
    '/api/v1/usage',
    {
      config: { auth: 'tenant' },
      schema: {
        tags: ['usage'],
        security: [{ bearer: [] }],
        summary: 'Usage and cost over a range (at most 366 days), grouped by day, month, call or provider',
        querystring: usageQuery,
        response: { 200: usageView, ...errorResponses },
      },
    },
    async (request) => {
      const now = new Date();
      const from = request.query.from ? new Date(request.query.from) : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
      const to = request.query.to ? new Date(request.query.to) : now;
      if (to <= from) throw new AppError('bad_request', '`to` must be after `from`');
      if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * 86_400_000)
        throw new AppError('bad_request', `A range covers at most ${MAX_RANGE_DAYS} days`);
      const groupBy = request.query.group_by;
      const result = await deps.usage.summary(principalOf(request).tenantId, { from, to, groupBy });
      return { from: from.toISOString(), to: to.toISOString(), group_by: groupBy, ...result };
    },
  );

  const admin = { tags: ['admin'], security: [{ bearer: [] }] };
  const toView = async (tenantId: string, b: Billing) => {
    const used = await deps.usage.monthToDate(tenantId);
    return {
      monthly_minutes_cap: b.monthlyMinutesCap,
      monthly_spend_cap_usd: b.monthlySpendCapUsd,
      custom: { monthly_minutes_cap: b.custom.monthlyMinutesCap, monthly_spend_cap_usd: b.custom.monthlySpendCapUsd },
      prices: b.prices,
      month_to_date: { minutes: round(used.minutes), spend_usd: round(used.spendUsd) },
    };
  };

  app.get(
    '/api/v1/admin/tenants/:id/billing',
    {
      config: { auth: 'platform_admin' },
      schema: {
        ...admin,
        summary: 'A tenant’s monthly caps, price overrides and month-to-date use',
        params: idParams,
        response: { 200: billingView, ...errorResponses },
      },
    },
    async (request) => {
      await deps.tenantAdmin.get(request.params.id);
      return toView(request.params.id, await deps.usage.billing(request.params.id));
    },
  );

  app.patch(
    '/api/v1/admin/tenants/:id/billing',
    {
      config: { auth: 'platform_admin' },
      schema: {
        ...admin,
        summary: 'Set a tenant’s monthly caps (null: the platform default; 0: none) and price overrides',
        params: idParams,
        body: billingPatch,
        response: { 200: billingView, ...errorResponses },
      },
    },
    async (request) => {
      const b = request.body;
      const billing = await deps.usage.setBilling(request.params.id, {
        monthlyMinutesCap: b.monthly_minutes_cap,
        monthlySpendCapUsd: b.monthly_spend_cap_usd,
        prices: b.prices,
      });
      return toView(request.params.id, billing);
    },
  );
}
