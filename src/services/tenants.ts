// Platform administration: list tenants with their counts, suspend and reactivate, set their limits.
import { asc, count, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { apiKeys, calls, documents, phoneNumbers, tenantLimits, tenants, users } from '../db/schema.js';
import { notFound } from '../lib/errors.js';

// Columns are written qualified by hand: inside a correlated subquery Drizzle would print bare names, and
// a bare "id" would bind to the inner table.
const countOf = (table: typeof users | typeof calls | typeof documents | typeof phoneNumbers | typeof apiKeys, extra = '') =>
  sql<number>`(select count(*)::int from ${table} c where c.tenant_id = "tenants"."id"${sql.raw(extra)})`;

const withCounts = {
  tenant: tenants,
  users: countOf(users),
  calls: countOf(calls),
  documents: countOf(documents),
  phone_numbers: countOf(phoneNumbers),
  api_keys: countOf(apiKeys, ' and c.revoked_at is null'),
};

export class TenantAdminService {
  constructor(private readonly db: Db) {}

  async list(page: { limit: number; offset: number }) {
    const [items, [total]] = await Promise.all([
      this.db.select(withCounts).from(tenants).orderBy(asc(tenants.createdAt), asc(tenants.id)).limit(page.limit).offset(page.offset),
      this.db.select({ n: count() }).from(tenants),
    ]);
    return { items, total: total?.n ?? 0 };
  }

  async get(id: string) {
    const [row] = await this.db.select(withCounts).from(tenants).where(eq(tenants.id, id));
    if (!row) throw notFound('Tenant');
    return row;
  }

  async setStatus(id: string, status: 'active' | 'suspended', reason?: string) {
    const rows = await this.db
      .update(tenants)
      .set(
        status === 'suspended'
          ? { status, suspendedAt: new Date(), suspendedReason: reason ?? null }
          : { status, suspendedAt: null, suspendedReason: null },
      )
      .where(eq(tenants.id, id))
      .returning({ id: tenants.id });
    if (rows.length === 0) throw notFound('Tenant');
    return this.get(id);
  }

  /** The caps the platform admin set for the tenant (null: the platform default applies). */
  async limits(id: string): Promise<TenantLimits> {
    const [row] = await this.db.select().from(tenantLimits).where(eq(tenantLimits.tenantId, id));
    return { maxConcurrentCalls: row?.maxConcurrentCalls ?? null };
  }

  /** Sets the given caps (null: back to the platform default); the ones not given are kept. */
  async setLimits(id: string, patch: Partial<TenantLimits>): Promise<TenantLimits> {
    await this.get(id);
    await this.db
      .insert(tenantLimits)
      .values({ tenantId: id, ...patch })
      .onConflictDoUpdate({ target: tenantLimits.tenantId, set: { ...patch, updatedAt: new Date() } });
    return this.limits(id);
  }
}

export interface TenantLimits {
  /** Concurrent calls across every instance; null: MAX_LIVE_CALLS_PER_TENANT. */
  maxConcurrentCalls: number | null;
}
