// Keys derived from SECRET_KEY, one per purpose (JWTs, media tokens, recording URLs, the secret box), so that no
// two uses share a key. A key ring (SECRET_KEY, then SECRET_KEY_PREVIOUS) derives one key per purpose from each of
// its secrets: the first signs and seals, any of them verifies and opens, so SECRET_KEY can be rotated.
import { hkdfSync } from 'node:crypto';

/** SECRET_KEY alone, or the ring: newest first. */
export type SecretKeys = string | readonly string[];

export function deriveKey(secretKey: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secretKey, 'voice-agent', purpose, 32));
}

/** The purpose's key from each secret of the ring, newest (the one that signs) first. */
export function deriveKeys(secretKeys: SecretKeys, purpose: string): [Buffer, ...Buffer[]] {
  const ring = typeof secretKeys === 'string' ? [secretKeys] : secretKeys;
  if (!ring.length) throw new Error('a key ring needs at least one secret');
  return ring.map((k) => deriveKey(k, purpose)) as [Buffer, ...Buffer[]];
}
