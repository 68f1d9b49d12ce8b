// AES-256-GCM sealing of secrets stored at rest (its key derived from SECRET_KEY), hashes and random tokens.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { deriveKey } from '../lib/derive-key.js';

export const sha256 = (s: string | Uint8Array) => createHash('sha256').update(s).digest('hex');

/** Random opaque token with a readable prefix, e.g. `vak_...` for API keys. */
export const randomToken = (prefix: string) => `${prefix}${randomBytes(32).toString('base64url')}`;

export class SecretBox {
  private readonly key: Buffer;
  constructor(secretKey: string) {
    this.key = deriveKey(secretKey, 'secret-box');
  }

  /** Returns `v1.<iv>.<tag>.<ciphertext>` in base64url. */
  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return ['v1', iv, cipher.getAuthTag(), body].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  /** Undefined when the value was sealed with another SECRET_KEY or was tampered with. */
  open(sealed: string): string | undefined {
    const [v, iv, tag, body] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || body === undefined) return undefined;
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      d.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}
