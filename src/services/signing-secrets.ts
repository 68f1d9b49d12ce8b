// Each tenant's signing secret (lib/signing.ts): made on first need, sealed at rest, shown in clear only once,
// when rotated. A rotation keeps the previous secret signing next to the new one for a day, so the tenant can
// deploy the new secret without refusing our requests meanwhile.
import { eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { signingSecrets } from '../db/schema.js';
import { randomToken, type SecretBox } from './secret-box.js';

export const SIGNING_SECRET_PREFIX = 'whsec_';
/** How long the previous secret keeps signing after a rotation. */
export const ROTATION_OVERLAP_MS = 24 * 3600_000;

export interface SigningSecretStatus {
  configured: boolean;
  created_at: string | null;
  last4: string | null;
  /** Until when requests also carry a signature by the previous secret; null when none. */
  previous_expires_at: string | null;
}

export class SigningSecretService {
  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
  ) {}

  async status(tenantId: string): Promise<SigningSecretStatus> {
    return this.view(await this.row(tenantId));
  }

  /** A new secret, returned in clear this once; the one it replaces keeps signing for ROTATION_OVERLAP_MS. */
  async rotate(tenantId: string): Promise<SigningSecretStatus & { secret: string }> {
    const secret = randomToken(SIGNING_SECRET_PREFIX);
    const [row] = await this.db
      .insert(signingSecrets)
      .values({ tenantId, secret: this.box.seal(secret) })
      .onConflictDoUpdate({
        target: signingSecrets.tenantId,
        set: {
          secret: sql`excluded.secret`,
          previousSecret: sql`${signingSecrets.secret}`,
          previousExpiresAt: sql`now() + ${`${ROTATION_OVERLAP_MS} milliseconds`}::interval`,
          createdAt: sql`now()`,
        },
      })
      .returning();
    return { ...this.view(row), secret };
  }

  /**
   * The secrets to sign with now, current first: for the code that sends requests, never for an HTTP response.
   * The first request that needs one makes it (concurrent first requests agree on the same one).
   */
  async forSigning(tenantId: string): Promise<string[]> {
    let row = await this.row(tenantId);
    if (!row) {
      await this.db
        .insert(signingSecrets)
        .values({ tenantId, secret: this.box.seal(randomToken(SIGNING_SECRET_PREFIX)) })
        .onConflictDoNothing({ target: signingSecrets.tenantId });
      row = await this.row(tenantId);
    }
    const previousValid = row?.previousSecret && row.previousExpiresAt && row.previousExpiresAt.getTime() > Date.now();
    const sealed = [row?.secret, previousValid ? row?.previousSecret : undefined];
    return sealed.flatMap((s) => (s ? (this.box.open(s) ?? []) : []));
  }

  private async row(tenantId: string) {
    const [row] = await this.db.select().from(signingSecrets).where(eq(signingSecrets.tenantId, tenantId));
    return row;
  }

  private view(row: typeof signingSecrets.$inferSelect | undefined): SigningSecretStatus {
    const plain = row ? this.box.open(row.secret) : undefined;
    const previousValid = row?.previousExpiresAt && row.previousExpiresAt.getTime() > Date.now();
    return {
      configured: plain !== undefined,
      created_at: plain !== undefined ? row!.createdAt.toISOString() : null,
      last4: plain?.slice(-4) ?? null,
      previous_expires_at: previousValid ? row!.previousExpiresAt!.toISOString() : null,
    };
  }
}
