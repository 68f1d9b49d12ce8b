// Tenant API keys: created and shown once, stored hashed, revoked by id; resolved on each request.
import { and, desc, eq, isNull } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { apiKeys, tenants } from '../db/schema.js';
import { AppError, notFound } from '../lib/errors.js';
import { randomToken, sha256 } from './secret-box.js';

/** Tells API keys apart from JWTs (which start with `eyJ`) and refresh tokens (`vrt_`). */
export const API_KEY_PREFIX = 'vak_';
const LAST_USED_RESOLUTION_MS = 60_000;

export type ApiKey = typeof apiKeys.$inferSelect;

export class ApiKeyService {
  constructor(private readonly db: Db) {}

  async create(tenantId: string, input: { name: string; expiresAt?: Date; createdByUserId?: string }) {
    const key = randomToken(API_KEY_PREFIX);
    const [row] = await this.db
      .insert(apiKeys)
      .values({
        tenantId,
        name: input.name,
        prefix: key.slice(0, 12),
        keyHash: sha256(key),
        expiresAt: input.expiresAt,
        createdByUserId: input.createdByUserId,
      })
      .returning();
    return { row: row!, key };
  }

  list(tenantId: string) {
    return this.db
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.tenantId, tenantId), isNull(apiKeys.revokedAt)))
      .orderBy(desc(apiKeys.createdAt));
  }

  async revoke(tenantId: string, id: string): Promise<void> {
    const rows = await this.db
      .update(apiKeys)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
      .returning({ id: apiKeys.id });
    if (rows.length === 0) throw notFound('API key');
  }

  /** The live key and its tenant, or 401. */
  async resolve(key: string) {
    const row = await this.live(eq(apiKeys.keyHash, sha256(key)));
    // Written at most once a minute per key, so a busy integration does not turn every request into a write.
    const last = row.key.lastUsedAt?.getTime() ?? 0;
    if (Date.now() - last > LAST_USED_RESOLUTION_MS) {
      await this.db.update(apiKeys).set({ lastUsedAt: new Date() }).where(eq(apiKeys.id, row.key.id));
    }
    return row;
  }

  /** Throws unless the key is still live (not revoked or expired, its tenant not suspended): long-lived sockets re-check. */
  async assertActive(id: string): Promise<void> {
    await this.live(eq(apiKeys.id, id));
  }

  private async live(where: ReturnType<typeof eq>) {
    const [row] = await this.db
      .select({ key: apiKeys, tenant: tenants })
      .from(apiKeys)
      .innerJoin(tenants, eq(tenants.id, apiKeys.tenantId))
      .where(where);
    if (!row || row.key.revokedAt || (row.key.expiresAt && row.key.expiresAt.getTime() <= Date.now())) {
      throw new AppError('invalid_token', 'API key is invalid, revoked or expired');
    }
    if (row.tenant.status === 'suspended') {
      throw new AppError('tenant_suspended', 'This organisation is suspended; contact support');
    }
    return row;
  }
}
