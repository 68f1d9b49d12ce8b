// Keys derived from SECRET_KEY, one per purpose (JWTs, media tokens, recording URLs, the secret box), so that no
// two uses share a key.
import { hkdfSync } from 'node:crypto';

export function deriveKey(secretKey: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secretKey, 'voice-agent', purpose, 32));
}
