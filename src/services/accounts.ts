// Tenants and users: signup, login, the admin's user management, and who a bearer credential belongs to.
import { and, asc, count, eq, ne, sql } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../db/client.js';
import { tenants, users } from '../db/schema.js';
import { AppError, notFound } from '../lib/errors.js';
import { burnVerifyTime, hashPassword, verifyPassword } from './passwords.js';
import type { TokenPair, TokenService } from './tokens.js';

export type User = typeof users.$inferSelect;
export type Tenant = typeof tenants.$inferSelect;
export type Role = User['role'];

/** Unique-violation from either driver (pg error code 23505). */
function isUniqueViolation(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    if ((e as { code?: string }).code === '23505') return true;
  }
  return false;
}

export class AccountService {
  constructor(
    private readonly db: Db,
    private readonly tokens: TokenService,
  ) {}

  async signup(input: { email: string; password: string; tenantName: string; fullName?: string }) {
    const passwordHash = await hashPassword(input.password);
    try {
      return await this.db.transaction(async (tx) => {
        const [tenant] = await tx.insert(tenants).values({ name: input.tenantName }).returning();
        const [user] = await tx
          .insert(users)
          .values({ tenantId: tenant!.id, email: input.email, passwordHash, fullName: input.fullName, role: 'admin' })
          .returning();
        const pair = await this.tokens.issuePair(user!.id, tenant!.id, undefined, tx as unknown as Db);
        return { ...pair, user: user!, tenant: tenant! };
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('email_taken', 'An account with this email already exists');
      throw err;
    }
  }

  async login(email: string, password: string): Promise<TokenPair & { user: User; tenant: Tenant }> {
    const row = await this.findUserWithTenant(eq(users.email, email));
    if (!row) {
      await burnVerifyTime(password);
      throw new AppError('invalid_credentials', 'Email or password is incorrect');
    }
    const check = await verifyPassword(password, row.user.passwordHash);
    if (!check.ok) throw new AppError('invalid_credentials', 'Email or password is incorrect');
    assertMayAct(row.user, row.tenant);
    const update: Partial<User> = { lastLoginAt: new Date() };
    if (check.needsRehash) update.passwordHash = await hashPassword(password);
    await this.db.update(users).set(update).where(eq(users.id, row.user.id));
    const pair = await this.tokens.issuePair(row.user.id, row.tenant.id);
    return { ...pair, user: row.user, tenant: row.tenant };
  }

  /** The user behind an access token, re-checked on every request so deactivation takes effect at once. */
  async activeUser(userId: string, tenantId: string): Promise<{ user: User; tenant: Tenant }> {
    const row = await this.findUserWithTenant(and(eq(users.id, userId), eq(users.tenantId, tenantId))!);
    if (!row) throw new AppError('invalid_token', 'The account behind this token no longer exists');
    assertMayAct(row.user, row.tenant);
    return row;
  }

  /** Refresh must fail for a deactivated user or a suspended tenant, like every other request. */
  async assertUserMayAct(userId: string): Promise<void> {
    const row = await this.findUserWithTenant(eq(users.id, userId));
    if (!row) throw new AppError('invalid_token', 'The account behind this token no longer exists');
    assertMayAct(row.user, row.tenant);
  }

  private async findUserWithTenant(where: ReturnType<typeof eq>) {
    const [row] = await this.db
      .select({ user: users, tenant: tenants })
      .from(users)
      .innerJoin(tenants, eq(tenants.id, users.tenantId))
      .where(where);
    return row;
  }

  // --- a tenant admin's user management; every query is filtered by tenantId ---

  async listUsers(tenantId: string, page: { limit: number; offset: number }) {
    const [items, [total]] = await Promise.all([
      this.db
        .select()
        .from(users)
        .where(eq(users.tenantId, tenantId))
        .orderBy(asc(users.createdAt), asc(users.id))
        .limit(page.limit)
        .offset(page.offset),
      this.db.select({ n: count() }).from(users).where(eq(users.tenantId, tenantId)),
    ]);
    return { items, total: total?.n ?? 0 };
  }

  async getUser(tenantId: string, userId: string): Promise<User> {
    const [user] = await this.db
      .select()
      .from(users)
      .where(and(eq(users.tenantId, tenantId), eq(users.id, userId)));
    if (!user) throw notFound('User');
    return user;
  }

  async createUser(tenantId: string, input: { email: string; password: string; fullName?: string; role: Role }) {
    const passwordHash = await hashPassword(input.password);
    try {
      const [user] = await this.db
        .insert(users)
        .values({ tenantId, email: input.email, passwordHash, fullName: input.fullName, role: input.role })
        .returning();
      return user!;
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('email_taken', 'An account with this email already exists');
      throw err;
    }
  }

  /**
   * Changes role, active flag or name. A tenant always keeps at least one active admin, so the last one
   * cannot demote or deactivate themself. Deactivation also revokes every refresh token of the user.
   */
  async updateUser(tenantId: string, userId: string, patch: { role?: Role; isActive?: boolean; fullName?: string | null }): Promise<User> {
    return this.db.transaction(async (tx) => {
      // Lock the tenant's row so two admins demoting each other at once cannot leave no admin.
      await tx.execute(sql`select id from ${tenants} where ${tenants.id} = ${tenantId} for update`);
      const [current] = await tx
        .select()
        .from(users)
        .where(and(eq(users.tenantId, tenantId), eq(users.id, userId)));
      if (!current) throw notFound('User');
      const losesAdmin = current.role === 'admin' && current.isActive && (patch.role === 'member' || patch.isActive === false);
      if (losesAdmin) {
        const [others] = await tx
          .select({ n: count() })
          .from(users)
          .where(and(eq(users.tenantId, tenantId), eq(users.role, 'admin'), eq(users.isActive, true), ne(users.id, userId)));
        if ((others?.n ?? 0) === 0) {
          throw new AppError('last_admin', 'A tenant must keep at least one active admin');
        }
      }
      const [updated] = await tx
        .update(users)
        .set(patch)
        .where(and(eq(users.tenantId, tenantId), eq(users.id, userId)))
        .returning();
      if (patch.isActive === false) await this.tokens.revokeAllForUser(userId, tx as unknown as Db);
      return updated!;
    });
  }

  /**
   * Makes the configured platform administrator exist (start-up bootstrap). Bootstrap only ever creates its own
   * account: an address that already belongs to a tenant user who is not a platform admin is refused, never
   * promoted, since whoever signed up first with it (perhaps before the operator chose it) would get the whole
   * platform. Every grant is logged.
   */
  async ensurePlatformAdmin(
    admin: { email: string; password: string | undefined },
    log: FastifyBaseLogger,
  ): Promise<'created' | 'exists' | 'refused' | 'missing'> {
    const [existing] = await this.db.select().from(users).where(eq(users.email, admin.email));
    if (existing?.isPlatformAdmin) {
      log.info({ email: admin.email, user_id: existing.id }, 'platform admin: the configured account exists');
      return 'exists';
    }
    if (existing) {
      log.error(
        { email: admin.email, user_id: existing.id, tenant_id: existing.tenantId },
        'platform admin NOT granted: PLATFORM_ADMIN_EMAIL belongs to an existing tenant user, who is not promoted; ' +
          'choose an address no account uses',
      );
      return 'refused';
    }
    if (!admin.password) {
      log.warn({ email: admin.email }, 'PLATFORM_ADMIN_EMAIL has no account yet; set PLATFORM_ADMIN_PASSWORD to create it');
      return 'missing';
    }
    const passwordHash = await hashPassword(admin.password);
    let user: User;
    try {
      user = await this.db.transaction(async (tx) => {
        const [tenant] = await tx.insert(tenants).values({ name: 'Platform' }).returning();
        const [row] = await tx
          .insert(users)
          .values({ tenantId: tenant!.id, email: admin.email, passwordHash, role: 'admin', isPlatformAdmin: true })
          .returning();
        return row!;
      });
    } catch (err) {
      // Another instance starting at the same time, or a signup in between: decide again on what is there now.
      if (isUniqueViolation(err)) return this.ensurePlatformAdmin({ ...admin, password: undefined }, log);
      throw err;
    }
    log.warn(
      { email: admin.email, user_id: user.id, tenant_id: user.tenantId },
      'platform admin granted: account created from PLATFORM_ADMIN_EMAIL',
    );
    return 'created';
  }
}

/** A disabled user or a suspended tenant may not act (platform admins are never locked out by suspension). */
export function assertMayAct(user: User, tenant: Tenant): void {
  if (!user.isActive) throw new AppError('account_disabled', 'This account has been deactivated');
  if (tenant.status === 'suspended' && !user.isPlatformAdmin) {
    throw new AppError('tenant_suspended', 'This organisation is suspended; contact support');
  }
}
