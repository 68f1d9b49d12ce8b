// Short-lived per-call media tokens: what lets a Twilio media stream or a browser websocket attach to one call.
// Twilio gets it as a <Parameter> of its <Stream> (it never sees our API credentials); a browser gets it from
// POST /api/v1/calls/web. A token names one call of one tenant and one channel, expires in minutes, and opens one
// media socket: the first to claim it (through the cache, so on any instance: Redis when REDIS_URL is set) wins.
import { randomUUID } from 'node:crypto';
import { errors as joseErrors, SignJWT } from 'jose';
import type { Cache } from '../cache/cache.js';
import { deriveKeys, type SecretKeys } from '../lib/derive-key.js';
import { verifyWithRing } from '../lib/jwt-ring.js';

const ISSUER = 'voice-agent';
const AUDIENCE = 'voice-agent-media';
export type MediaChannel = 'twilio' | 'browser';

export interface MediaGrant {
  tenantId: string;
  callId: string;
  channel: MediaChannel;
}

/** A verified token: its grant, and what claim() needs to make it single-use. */
export interface VerifiedMediaToken extends MediaGrant {
  tokenId: string;
  expiresAt: Date;
}

export class CallTokenService {
  private readonly keys: [Uint8Array, ...Uint8Array[]];

  constructor(
    secretKeys: SecretKeys,
    private readonly cache: Cache,
    /** Long enough for Twilio to answer and connect, short enough that a leaked TwiML is soon worthless. */
    readonly ttlMs = 5 * 60_000,
  ) {
    this.keys = deriveKeys(secretKeys, 'media-token-hs256');
  }

  async sign(grant: MediaGrant): Promise<{ token: string; expiresAt: Date }> {
    const expiresAt = new Date(Date.now() + this.ttlMs);
    const token = await new SignJWT({ tid: grant.tenantId, ch: grant.channel })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(grant.callId)
      .setJti(randomUUID())
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(expiresAt)
      .sign(this.keys[0]);
    return { token, expiresAt };
  }

  /** The grant, or null when the token is invalid, expired, or for another channel. Does not use the token up. */
  async verify(token: string, channel: MediaChannel): Promise<VerifiedMediaToken | null> {
    try {
      const { payload } = await verifyWithRing(token, this.keys, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'] });
      if (payload.ch !== channel || typeof payload.sub !== 'string' || typeof payload.tid !== 'string' || typeof payload.exp !== 'number')
        return null;
      // The id is in the signed payload (a token string has several valid spellings); one signed before ids were
      // given is named by its call and issue time.
      const tokenId = typeof payload.jti === 'string' ? payload.jti : `${payload.sub}:${payload.iat ?? 0}`;
      return { tenantId: payload.tid, callId: payload.sub, channel, tokenId, expiresAt: new Date(payload.exp * 1000) };
    } catch (err) {
      if (err instanceof joseErrors.JOSEError) return null;
      throw err;
    }
  }

  /**
   * Uses the token up: true for the first claim only, on any instance (one atomic counter in the cache, kept until
   * the token expires). A second socket presenting the same token (a leaked URL, a replay) is refused. Throws when
   * the cache is unreachable: the caller refuses the socket rather than let the token be used twice.
   */
  async claim(token: VerifiedMediaToken): Promise<boolean> {
    const { count } = await this.cache.hitWindow(
      `media-token:${token.tokenId}`,
      Math.max(1000, token.expiresAt.getTime() - Date.now() + 1000),
    );
    return count === 1;
  }
}
