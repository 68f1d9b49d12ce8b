// Access tokens (HS256 JWTs, jose) and rotating refresh tokens with reuse detection.
import { randomUUID } from 'node:crypto';
import { and, eq, isNull } from 'drizzle-orm';
import { errors as joseErrors, SignJWT } from 'jose';
import type { Db } from '../db/client.js';
import { refreshTokens } from '../db/schema.js';
import { AppError } from '../lib/errors.js';
import { deriveKeys, type SecretKeys } from '../lib/derive-key.js';
import { verifyWithRing } from '../lib/jwt-ring.js';
import { randomToken, sha256 } from './secret-box.js';

const ISSUER = 'voice-agent';
const AUDIENCE = 'voice-agent-api';
export const REFRESH_TOKEN_PREFIX = 'vrt_';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isUuid = (v: unknown): v is string => typeof v === 'string' && UUID.test(v);

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'bearer';
  expires_in: number;
}

export class TokenService {
  private readonly keys: [Uint8Array, ...Uint8Array[]];
  constructor(
    private readonly db: Db,
    secretKeys: SecretKeys,
    private readonly accessTtlMs: number,
    private readonly refreshTtlMs: number,
  ) {
    this.keys = deriveKeys(secretKeys, 'jwt-hs256');
  }

  async signAccess(userId: string, tenantId: string): Promise<string> {
    return new SignJWT({ tid: tenantId, typ: 'access' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setJti(randomUUID())
      .setExpirationTime(new Date(Date.now() + this.accessTtlMs))
      .sign(this.keys[0]);
  }

  /** Returns the user and tenant ids, or throws 401 invalid_token. */
  async verifyAccess(token: string): Promise<{ userId: string; tenantId: string }> {
    try {
      // Every token we sign expires; one without `exp` (or with ids we never issue) is not ours to honour, and an id
      // that is not a UUID must not reach the database (it would fail there, as a 500).
      const { payload } = await verifyWithRing(token, this.keys, {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ['HS256'],
        requiredClaims: ['exp', 'sub'],
      });
      if (payload.typ !== 'access' || !isUuid(payload.sub) || !isUuid(payload.tid)) {
        throw new AppError('invalid_token', 'Token is not an access token');
      }
      return { userId: payload.sub, tenantId: payload.tid };
    } catch (err) {
      if (err instanceof AppError) throw err;
      const expired = err instanceof joseErrors.JWTExpired;
      throw new AppError('invalid_token', expired ? 'Access token has expired' : 'Access token is invalid');
    }
  }

  /** A new login: a fresh refresh-token family. */
  async issuePair(userId: string, tenantId: string, familyId: string = randomUUID(), db: Db = this.db): Promise<TokenPair> {
    const refresh = randomToken(REFRESH_TOKEN_PREFIX);
    await db.insert(refreshTokens).values({
      userId,
      tenantId,
      familyId,
      tokenHash: sha256(refresh),
      expiresAt: new Date(Date.now() + this.refreshTtlMs),
    });
    return {
      access_token: await this.signAccess(userId, tenantId),
      refresh_token: refresh,
      token_type: 'bearer',
      expires_in: Math.round(this.accessTtlMs / 1000),
    };
  }

  /**
   * Exchanges a refresh token for a new pair. The old token is marked used in the same statement that checks
   * it, so two concurrent refreshes cannot both succeed. A used token presented again means it was stolen
   * (or replayed): its whole family is revoked and the caller must log in again.
   */
  async rotate(refresh: string, isUserAllowed: (userId: string) => Promise<void>): Promise<TokenPair> {
    const tokenHash = sha256(refresh);
    const [row] = await this.db.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, tokenHash));
    if (!row || row.revokedAt || row.expiresAt.getTime() <= Date.now()) {
      throw new AppError('invalid_token', 'Refresh token is invalid or expired');
    }
    const claimed = await this.db
      .update(refreshTokens)
      .set({ usedAt: new Date() })
      .where(and(eq(refreshTokens.id, row.id), isNull(refreshTokens.usedAt), isNull(refreshTokens.revokedAt)))
      .returning({ id: refreshTokens.id });
    if (claimed.length === 0) {
      await this.revokeFamily(row.familyId);
      throw new AppError('invalid_token', 'Refresh token was already used; all sessions of this login are revoked');
    }
    await isUserAllowed(row.userId);
    return this.issuePair(row.userId, row.tenantId, row.familyId);
  }

  /** Logout: the token's whole family stops working. Unknown tokens are ignored (logout is idempotent). */
  async revoke(refresh: string): Promise<void> {
    const [row] = await this.db
      .select({ familyId: refreshTokens.familyId })
      .from(refreshTokens)
      .where(eq(refreshTokens.tokenHash, sha256(refresh)));
    if (row) await this.revokeFamily(row.familyId);
  }

  async revokeFamily(familyId: string): Promise<void> {
    await this.db
      .update(refreshTokens)
      .set({ revokedAt: new Date() })
      .where(and(eq(refreshTokens.familyId, familyId), isNull(refreshTokens.revokedAt)));
  }

  async revokeAllForUser(userId: string, db: Db = this.db): Promise<void> {
    await db
      .update(refreshTokens)
      .set({ revokedAt: new Date() })
      .where(and(eq(refreshTokens.userId, userId), isNull(refreshTokens.revokedAt)));
  }
}
