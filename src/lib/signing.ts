// Signatures on the requests we send to tenants' servers (tool calls now, webhooks later), so they can tell a
// request came from us and is fresh: `X-Voice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
// Several v1 values may appear (one per secret while a rotation overlaps); any one matching is enough.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-Voice-Signature';
export const DEFAULT_TOLERANCE_S = 300;

const hmac = (secret: string, timestampS: number, body: string | Uint8Array) =>
  createHmac('sha256', secret).update(`${timestampS}.`).update(body).digest();

/** The header value for `body` sent at `timestampS`, with one v1 per secret given (current first). */
export function sign(secret: string | readonly string[], body: string | Uint8Array, timestampS: number): string {
  const secrets = typeof secret === 'string' ? [secret] : secret;
  if (secrets.length === 0) throw new Error('sign needs at least one secret');
  return [`t=${timestampS}`, ...secrets.map((s) => `v1=${hmac(s, timestampS, body).toString('hex')}`)].join(',');
}

/**
 * True when `header` carries a v1 signature of `body` by `secret` made within `toleranceS` of `now` (Unix
 * seconds, default the clock), in either direction: an old request replayed later is refused.
 */
export function verify(
  secret: string,
  header: string | undefined,
  body: string | Uint8Array,
  opts: { toleranceS?: number; now?: number } = {},
): boolean {
  if (!header) return false;
  let timestampS: number | undefined;
  const candidates: Buffer[] = [];
  for (const part of header.split(',')) {
    const [key, value = ''] = part.trim().split('=', 2);
    if (key === 't' && /^\d{1,12}$/.test(value)) timestampS = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) candidates.push(Buffer.from(value, 'hex'));
  }
  if (timestampS === undefined || candidates.length === 0) return false;
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - timestampS) > (opts.toleranceS ?? DEFAULT_TOLERANCE_S)) return false;
  const expected = hmac(secret, timestampS, body);
  // Every candidate is compared, so the time taken does not say which one matched.
  return candidates.reduce((ok, c) => timingSafeEqual(c, expected) || ok, false);
}
