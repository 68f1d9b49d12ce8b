// Usage and cost: the ledger's writes (a call's meter drained at its end, a chat turn's, a document's embeddings),
// priced from the price table (services/prices.ts) with the tenant's overrides; the reports (per call, per day,
// month or provider); the monthly minutes and spend caps the platform admin sets, checked before a new call starts,
// and `usage.limit_reached` published once per tenant, month and limit.
import { and, eq, gte, lt, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { tenantBilling, tenants, usageLimitNotices, usageRecords } from '../db/schema.js';
import { AppError, notFound } from '../lib/errors.js';
import { type Executor, publishEvent } from './outbox.js';
import { type UsageComponent, type UsageLine, type UsageUnit, unitPrice } from './prices.js';

export type UsageLimit = 'monthly_minutes' | 'monthly_spend';
export type UsageGroupBy = 'day' | 'month' | 'call' | 'provider';

/** The platform's caps for tenants without their own (config; 0: no cap). */
export interface UsageDefaults {
  monthlyMinutesCap: number;
  monthlySpendCapUsd: number;
}

export interface CostSplit {
  platform_usd: number;
  tenant_usd: number;
  total_usd: number;
}

export interface CostLine {
  component: UsageComponent;
  provider: string;
  model: string;
  unit: UsageUnit;
  quantity: number;
  billed_to: 'platform' | 'tenant';
  cost_usd: number;
}

/** A call's usage and cost: every line, and the cost per component split by who pays the vendor. */
export interface CallCost {
  usage: CostLine[];
  cost: CostSplit & { components: Partial<Record<UsageComponent, CostSplit>> };
}

export interface UsageGroup {
  key: string;
  /** Minutes of calls (telephony seconds / 60). */
  minutes: number;
  cost: CostSplit;
  usage: CostLine[];
}

export interface Billing {
  /** What applies now: the tenant's own cap, else the platform default; 0 means none. */
  monthlyMinutesCap: number;
  monthlySpendCapUsd: number;
  /** Whether each cap is the tenant's own (false: the platform default). */
  custom: { monthlyMinutesCap: boolean; monthlySpendCapUsd: boolean };
  prices: Record<string, number>;
}

/** Cents are not enough for tokens: costs are kept to a millionth of a dollar. */
const usd = (n: number) => Math.round(n * 1e6) / 1e6;
const split = (platform: number, tenant: number): CostSplit => ({
  platform_usd: usd(platform),
  tenant_usd: usd(tenant),
  total_usd: usd(platform + tenant),
});

const monthOf = (d: Date) => d.toISOString().slice(0, 7);
const monthStart = (d: Date) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));

/** Groups of `group_by=call` at most (the rest is cut off and `truncated` says so). */
export const MAX_CALL_GROUPS = 1000;

interface LineRow {
  key: string | null;
  component: string;
  provider: string;
  model: string;
  unit: string;
  billedTo: string;
  quantity: number;
  cost: number;
}

function toLines(rows: LineRow[]): { lines: CostLine[]; minutes: number; cost: CallCost['cost'] } {
  const components: CallCost['cost']['components'] = {};
  let platform = 0;
  let tenant = 0;
  let seconds = 0;
  const lines = rows.map((r): CostLine => {
    const component = r.component as UsageComponent;
    const cost = Number(r.cost);
    const c = (components[component] ??= { platform_usd: 0, tenant_usd: 0, total_usd: 0 });
    if (r.billedTo === 'tenant') {
      tenant += cost;
      c.tenant_usd += cost;
    } else {
      platform += cost;
      c.platform_usd += cost;
    }
    if (component === 'telephony') seconds += Number(r.quantity);
    return {
      component,
      provider: r.provider,
      model: r.model,
      unit: r.unit as UsageUnit,
      quantity: Math.round(Number(r.quantity) * 1000) / 1000,
      billed_to: r.billedTo as 'platform' | 'tenant',
      cost_usd: usd(cost),
    };
  });
  for (const [k, c] of Object.entries(components)) components[k as UsageComponent] = split(c.platform_usd, c.tenant_usd);
  return { lines, minutes: Math.round((seconds / 60) * 1000) / 1000, cost: { ...split(platform, tenant), components } };
}

const lineColumns = {
  component: usageRecords.component,
  provider: usageRecords.provider,
  model: usageRecords.model,
  unit: usageRecords.unit,
  billedTo: usageRecords.billedTo,
  quantity: sql<number>`sum(${usageRecords.quantity})::float8`,
  cost: sql<number>`sum(${usageRecords.costUsd})::float8`,
};
const lineGroup = [usageRecords.component, usageRecords.provider, usageRecords.model, usageRecords.unit, usageRecords.billedTo];

/**
 * A call's usage and cost, from the ledger (what `GET /api/v1/calls/{id}` shows and `call.ended` carries). Pass
 * the transaction the event is written in, or the database. A call of another tenant has no usage here.
 */
export async function callCost(executor: Executor, tenantId: string, callId: string): Promise<CallCost> {
  const rows = await executor
    .select({ key: sql<null>`null`, ...lineColumns })
    .from(usageRecords)
    .where(and(eq(usageRecords.tenantId, tenantId), eq(usageRecords.callId, callId)))
    .groupBy(...lineGroup)
    .orderBy(...lineGroup);
  const { lines, cost } = toLines(rows);
  return { usage: lines, cost };
}

export class UsageService {
  constructor(
    private readonly db: Db,
    private readonly defaults: UsageDefaults,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Writes usage lines to the ledger, priced now, then checks the tenant's caps (a cap just reached is announced
   * once). A call in progress is never stopped by this: caps refuse new calls only.
   */
  async record(tenantId: string, lines: UsageLine[], ref: { callId?: string; documentId?: string } = {}): Promise<void> {
    const used = lines.filter((l) => l.quantity > 0);
    if (used.length === 0) return;
    const billing = await this.billing(tenantId);
    const { prices } = billing;
    const occurredAt = this.now();
    await this.db.insert(usageRecords).values(
      used.map((l) => {
        // The tenant's own key: the vendor bills the tenant, still priced so both sides are visible.
        const price = unitPrice(l, prices);
        return {
          tenantId,
          callId: ref.callId ?? null,
          documentId: ref.documentId ?? null,
          component: l.component,
          provider: l.provider,
          model: l.model,
          unit: l.unit,
          quantity: l.quantity,
          unitPriceUsd: price,
          costUsd: price * l.quantity,
          billedTo: l.billedTo,
          occurredAt,
        };
      }),
    );
    await this.exceeded(tenantId, billing);
  }

  /** A call's usage and cost (see callCost). */
  callCost(tenantId: string, callId: string): Promise<CallCost> {
    return callCost(this.db, tenantId, callId);
  }

  /** Throws 402 `budget_exceeded` when a monthly cap is reached: new calls, web calls and chat sessions are refused. */
  async assertWithinBudget(tenantId: string): Promise<void> {
    const over = await this.exceeded(tenantId);
    if (over === 'monthly_minutes')
      throw new AppError('budget_exceeded', 'The monthly minutes of this account are used up; new calls are refused until next month');
    if (over === 'monthly_spend')
      throw new AppError('budget_exceeded', 'The monthly spending cap of this account is reached; new calls are refused until next month');
  }

  /** The first cap reached this month (and its event, once), or null. */
  private async exceeded(tenantId: string, known?: Billing): Promise<UsageLimit | null> {
    const billing = known ?? (await this.billing(tenantId));
    if (!billing.monthlyMinutesCap && !billing.monthlySpendCapUsd) return null;
    const now = this.now();
    const used = await this.monthToDate(tenantId, now);
    const over: [UsageLimit, number, number][] = [];
    if (billing.monthlyMinutesCap && used.minutes >= billing.monthlyMinutesCap)
      over.push(['monthly_minutes', billing.monthlyMinutesCap, used.minutes]);
    if (billing.monthlySpendCapUsd && used.spendUsd >= billing.monthlySpendCapUsd)
      over.push(['monthly_spend', billing.monthlySpendCapUsd, used.spendUsd]);
    for (const [limit, cap, value] of over) await this.announce(tenantId, monthOf(now), limit, cap, value);
    return over[0]?.[0] ?? null;
  }

  /** `usage.limit_reached`, once per tenant, month and limit: the notice row and the event commit together. */
  private async announce(tenantId: string, month: string, limit: UsageLimit, cap: number, value: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      const inserted = await tx
        .insert(usageLimitNotices)
        .values({ tenantId, month, limit })
        .onConflictDoNothing()
        .returning({ month: usageLimitNotices.month });
      if (inserted.length === 0) return;
      await publishEvent(tx, tenantId, 'usage.limit_reached', { limit, month, cap, used: Math.round(value * 1e6) / 1e6 });
    });
  }

  /** This month's minutes of calls and what the platform bills (components on the tenant's own keys are not counted). */
  async monthToDate(tenantId: string, now = this.now()): Promise<{ minutes: number; spendUsd: number }> {
    const [row] = await this.db
      .select({
        seconds: sql<number>`coalesce(sum(${usageRecords.quantity}) filter (where ${usageRecords.component} = 'telephony'), 0)::float8`,
        spend: sql<number>`coalesce(sum(${usageRecords.costUsd}) filter (where ${usageRecords.billedTo} = 'platform'), 0)::float8`,
      })
      .from(usageRecords)
      .where(and(eq(usageRecords.tenantId, tenantId), gte(usageRecords.occurredAt, monthStart(now))));
    return { minutes: Number(row?.seconds ?? 0) / 60, spendUsd: Number(row?.spend ?? 0) };
  }

  /** The tenant's usage in [from, to), grouped; `group_by=call` is cut at MAX_CALL_GROUPS calls. */
  async summary(
    tenantId: string,
    range: { from: Date; to: Date; groupBy: UsageGroupBy },
  ): Promise<{ totals: CostSplit & { minutes: number }; items: UsageGroup[]; truncated: boolean }> {
    const key =
      range.groupBy === 'day'
        ? sql<string>`to_char(${usageRecords.occurredAt} at time zone 'UTC', 'YYYY-MM-DD')`
        : range.groupBy === 'month'
          ? sql<string>`to_char(${usageRecords.occurredAt} at time zone 'UTC', 'YYYY-MM')`
          : range.groupBy === 'call'
            ? sql<string>`coalesce(${usageRecords.callId}::text, 'ingestion')`
            : sql<string>`${usageRecords.component} || ':' || ${usageRecords.provider}`;
    const where = and(eq(usageRecords.tenantId, tenantId), gte(usageRecords.occurredAt, range.from), lt(usageRecords.occurredAt, range.to));
    const rows = await this.db
      .select({ key, ...lineColumns })
      .from(usageRecords)
      .where(where)
      .groupBy(key, ...lineGroup)
      .orderBy(key, ...lineGroup);
    const byKey = new Map<string, LineRow[]>();
    for (const r of rows) {
      const k = r.key ?? '';
      const list = byKey.get(k) ?? [];
      if (!byKey.has(k)) byKey.set(k, list);
      list.push(r);
    }
    const all = toLines(rows);
    const keys = [...byKey.keys()];
    const truncated = range.groupBy === 'call' && keys.length > MAX_CALL_GROUPS;
    const items = keys.slice(0, range.groupBy === 'call' ? MAX_CALL_GROUPS : undefined).map((k): UsageGroup => {
      const g = toLines(byKey.get(k)!);
      return {
        key: k,
        minutes: g.minutes,
        cost: { platform_usd: g.cost.platform_usd, tenant_usd: g.cost.tenant_usd, total_usd: g.cost.total_usd },
        usage: g.lines,
      };
    });
    const { platform_usd, tenant_usd, total_usd } = all.cost;
    return { totals: { platform_usd, tenant_usd, total_usd, minutes: all.minutes }, items, truncated };
  }

  /** The caps and price overrides in force for the tenant. */
  async billing(tenantId: string): Promise<Billing> {
    const [row] = await this.db.select().from(tenantBilling).where(eq(tenantBilling.tenantId, tenantId));
    return {
      monthlyMinutesCap: row?.monthlyMinutesCap ?? this.defaults.monthlyMinutesCap,
      monthlySpendCapUsd: row?.monthlySpendCapUsd ?? this.defaults.monthlySpendCapUsd,
      custom: { monthlyMinutesCap: row?.monthlyMinutesCap != null, monthlySpendCapUsd: row?.monthlySpendCapUsd != null },
      prices: row?.prices ?? {},
    };
  }

  /**
   * The platform admin sets a tenant's caps (null: back to the platform default; 0: no cap) and price overrides
   * (replacing the previous ones). An unknown tenant is 404.
   */
  async setBilling(
    tenantId: string,
    patch: { monthlyMinutesCap?: number | null; monthlySpendCapUsd?: number | null; prices?: Record<string, number> },
  ): Promise<Billing> {
    const [tenant] = await this.db.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId));
    if (!tenant) throw notFound('Tenant');
    const set = {
      ...(patch.monthlyMinutesCap !== undefined && { monthlyMinutesCap: patch.monthlyMinutesCap }),
      ...(patch.monthlySpendCapUsd !== undefined && { monthlySpendCapUsd: patch.monthlySpendCapUsd }),
      ...(patch.prices !== undefined && { prices: patch.prices }),
    };
    await this.db
      .insert(tenantBilling)
      .values({ tenantId, ...set })
      .onConflictDoUpdate({ target: tenantBilling.tenantId, set: { ...set, updatedAt: new Date() } });
    return this.billing(tenantId);
  }
}
