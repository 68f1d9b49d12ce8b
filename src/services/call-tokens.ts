// Short-lived per-call media tokens: what lets a Twilio media stream or a browser websocket attach to one call.
// Twilio gets it as a <Parameter> of its <Stream> (it never sees our API credentials); a browser gets it from
// POST /api/v1/calls/web. A token names one call of one tenant and one channel, and expires in minutes.
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { deriveKey } from './secret-box.js';

const ISSUER = 'voice-agent';
const AUDIENCE = 'voice-agent-media';
export type MediaChannel = 'twilio' | 'browser';

export interface MediaGrant {
  tenantId: string;
  callId: string;
  channel: MediaChannel;
}

export class CallTokenService {
  private readonly key: Uint8Array;

  constructor(
    secretKey: string,
    /** Long enough for Twilio to answer and connect, short enough that a leaked TwiML is soon worthless. */
    readonly ttlMs = 5 * 60_000,
  ) {
    this.key = deriveKey(secretKey, 'media-token-hs256');
  }

  async sign(grant: MediaGrant): Promise<{ token: string; expiresAt: Date }> {
    const expiresAt = new Date(Date.now() + this.ttlMs);
    const token = await new SignJWT({ tid: grant.tenantId, ch: grant.channel })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(grant.callId)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(expiresAt)
      .sign(this.key);
    return { token, expiresAt };
  }

  /** The grant, or null when the token is invalid, expired, or for another channel. */
  async verify(token: string, channel: MediaChannel): Promise<MediaGrant | null> {
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'] });
      if (payload.ch !== channel || typeof payload.sub !== 'string' || typeof payload.tid !== 'string') return null;
      return { tenantId: payload.tid, callId: payload.sub, channel };
    } catch (err) {
      if (err instanceof joseErrors.JOSEError) return null;
      throw err;
    }
  }
}
