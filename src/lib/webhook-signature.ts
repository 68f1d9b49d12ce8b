// Standard Webhooks signatures (https://www.standardwebhooks.com): the headers on every webhook we send, the secret
// format (`whsec_` + base64 of random bytes; the key is those bytes), and the check a receiver makes, so the format
// matches what the standard's verifier libraries accept.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const WEBHOOK_SECRET_PREFIX = 'whsec_';
/** How far a receiver lets a timestamp be from its own clock (the standard's libraries use 5 minutes). */
export const WEBHOOK_TOLERANCE_S = 5 * 60;

/** A new secret: 32 random bytes, standard base64 (the standard's libraries decode it strictly). */
export const newWebhookSecret = () => `${WEBHOOK_SECRET_PREFIX}${randomBytes(32).toString('base64')}`;

const keyOf = (secret: string) =>
  Buffer.from(secret.startsWith(WEBHOOK_SECRET_PREFIX) ? secret.slice(WEBHOOK_SECRET_PREFIX.length) : secret, 'base64');

/** `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with one secret. */
export function webhookSignature(secret: string, id: string, timestampS: number, body: string): string {
  return `v1,${createHmac('sha256', keyOf(secret)).update(`${id}.${timestampS}.${body}`).digest('base64')}`;
}

/** The three headers, signed with every secret given (current first; the previous one during a rotation). */
export function webhookHeaders(secrets: readonly string[], id: string, timestampS: number, body: string): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampS),
    'webhook-signature': secrets.map((s) => webhookSignature(s, id, timestampS, body)).join(' '),
  };
}

/** A receiver's check: some v1 signature matches and the timestamp is recent. */
export function verifyWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string,
  nowS = Math.floor(Date.now() / 1000),
): boolean {
  const one = (h: string | string[] | undefined) => (Array.isArray(h) ? h[0] : h);
  const id = one(headers['webhook-id']);
  const ts = Number(one(headers['webhook-timestamp']));
  const sigs = one(headers['webhook-signature']);
  if (!id || !Number.isInteger(ts) || !sigs || Math.abs(nowS - ts) > WEBHOOK_TOLERANCE_S) return false;
  const expected = Buffer.from(webhookSignature(secret, id, ts, body).slice(3), 'base64');
  return sigs.split(' ').some((s) => {
    const [v, sig] = s.split(',', 2);
    const got = Buffer.from(sig ?? '', 'base64');
    return v === 'v1' && got.length === expected.length && timingSafeEqual(got, expected);
  });
}
