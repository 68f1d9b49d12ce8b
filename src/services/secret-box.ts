// AES-256-GCM sealing of secrets stored at rest (its key derived from SECRET_KEY; with a key ring, sealed with the
// newest and opened with any), hashes and random tokens.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { deriveKeys, type SecretKeys } from '../lib/derive-key.js';

export const sha256 = (s: string | Uint8Array) => createHash('sha256').update(s).digest('hex');

/** Random opaque token with a readable prefix, e.g. `vak_...` for API keys. */
export const randomToken = (prefix: string) => `${prefix}${randomBytes(32).toString('base64url')}`;

export class SecretBox {
  private readonly keys: [Buffer, ...Buffer[]];
  constructor(secretKeys: SecretKeys) {
    this.keys = deriveKeys(secretKeys, 'secret-box');
  }

  /** Returns `v1.<iv>.<tag>.<ciphertext>` in base64url. */
  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys[0], iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return ['v1', iv, cipher.getAuthTag(), body].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  /** Undefined when the value was sealed with a SECRET_KEY not in the ring, or was tampered with. */
  open(sealed: string): string | undefined {
    return this.openWith(sealed)?.plain;
  }

  /**
   * The value in clear and which key of the ring opened it (0: the newest); undefined as for open(). What
   * `npm run secrets:rotate` re-seals: the values a previous key opens.
   */
  openWith(sealed: string): { plain: string; keyIndex: number } | undefined {
    const [v, iv, tag, body] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || body === undefined) return undefined;
    for (const [keyIndex, key] of this.keys.entries()) {
      try {
        const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        d.setAuthTag(Buffer.from(tag, 'base64url'));
        return { plain: Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8'), keyIndex };
      } catch {
        // Another key of the ring, or not ours.
      }
    }
    return undefined;
  }
}
