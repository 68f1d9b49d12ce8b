// Password hashing: argon2id with OWASP's parameters; the old system's PBKDF2 hashes verify and get upgraded.
import { pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';

// OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
const ARGON2 = { algorithm: 2 /* Argon2id */, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2);
}

export interface PasswordCheck {
  ok: boolean;
  /** True when the stored hash is in an old format and should be replaced by a fresh argon2id hash. */
  needsRehash: boolean;
}

export async function verifyPassword(password: string, stored: string): Promise<PasswordCheck> {
  if (stored.startsWith('$argon2')) {
    const ok = await verify(stored, password).catch(() => false);
    return { ok, needsRehash: false };
  }
  const ok = verifyLegacyPbkdf2(password, stored);
  return { ok, needsRehash: ok };
}

/** A hash of a random password, verified when the email is unknown so both paths take the same time. */
let dummyHash: Promise<string> | undefined;
export async function burnVerifyTime(password: string): Promise<void> {
  dummyHash ??= hashPassword('dummy-password-for-timing');
  await verify(await dummyHash, password).catch(() => false);
}

/**
 * The old Python service stored PBKDF2-SHA256 (100k iterations). Its exact encoder is unknown, so the three
 * formats Python libraries write are accepted:
 *   passlib   $pbkdf2-sha256$100000$<salt ab64>$<hash ab64>
 *   Django    pbkdf2_sha256$100000$<salt>$<hash base64>
 *   Werkzeug  pbkdf2:sha256:100000$<salt>$<hash hex>
 */
export function verifyLegacyPbkdf2(password: string, stored: string): boolean {
  let iterations: number;
  let salt: Buffer;
  let expected: Buffer;
  let m: RegExpMatchArray | null;
  if ((m = stored.match(/^\$pbkdf2-sha256\$(\d+)\$([A-Za-z0-9./]*)\$([A-Za-z0-9./]+)$/))) {
    const ab64 = (s: string) => Buffer.from(s.replace(/\./g, '+'), 'base64');
    iterations = Number(m[1]);
    salt = ab64(m[2]!);
    expected = ab64(m[3]!);
  } else if ((m = stored.match(/^pbkdf2_sha256\$(\d+)\$([^$]+)\$([A-Za-z0-9+/=]+)$/))) {
    iterations = Number(m[1]);
    salt = Buffer.from(m[2]!, 'utf8');
    expected = Buffer.from(m[3]!, 'base64');
  } else if ((m = stored.match(/^pbkdf2:sha256:(\d+)\$([^$]+)\$([0-9a-f]+)$/))) {
    iterations = Number(m[1]);
    salt = Buffer.from(m[2]!, 'utf8');
    expected = Buffer.from(m[3]!, 'hex');
  } else {
    return false;
  }
  // Refuse absurd parameters from a tampered row instead of burning CPU on them.
  if (iterations < 1_000 || iterations > 10_000_000 || expected.length < 16 || expected.length > 64) return false;
  const actual = pbkdf2Sync(password, salt, iterations, expected.length, 'sha256');
  return timingSafeEqual(actual, expected);
}
