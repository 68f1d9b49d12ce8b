// X-Twilio-Signature, computed exactly as Twilio does (twilio-node's webhooks.ts): HMAC-SHA1 with the account's
// auth token over the full URL followed by the sorted form parameters, base64. JSON webhooks sign the URL only,
// and carry the body's SHA-256 in the URL's `bodySHA256` query parameter.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export type TwilioParams = Record<string, string | string[]>;

export function twilioSignature(authToken: string, url: string, params: TwilioParams = {}): string {
  let data = url;
  for (const name of Object.keys(params).sort()) {
    const value = params[name]!;
    // Repeated parameters: de-duplicated and sorted, each appended with its name.
    for (const v of Array.isArray(value) ? [...new Set(value)].sort() : [value]) data += name + v;
  }
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

const safeEqual = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/**
 * The URL forms Twilio's own validator accepts for one configured URL: with and without the default port.
 * (A proxy may show us the URL without the port Twilio signed, or the other way round.)
 */
function urlVariants(url: string): string[] {
  // Parsed by hand: WHATWG URL drops a default port, and the port is exactly what differs between variants.
  const m = /^(https?):\/\/([^/?#]*?)(?::(\d+))?([/?#].*)?$/i.exec(url);
  if (!m) return [url];
  const [, scheme, host, port, rest = ''] = m;
  const defaultPort = scheme!.toLowerCase() === 'https' ? '443' : '80';
  if (port && port !== defaultPort) return [url];
  return [`${scheme}://${host}${rest}`, `${scheme}://${host}:${defaultPort}${rest}`];
}

/** Form-encoded webhook: the signature over `url` and its POST parameters. */
export function verifyTwilioSignature(authToken: string, signature: string | undefined, url: string, params: TwilioParams): boolean {
  if (!signature) return false;
  return urlVariants(url).some((u) => safeEqual(twilioSignature(authToken, u, params), signature));
}

/** JSON-body webhook: the URL (with its bodySHA256 parameter) is signed, and the body must hash to that value. */
export function verifyTwilioBodySignature(
  authToken: string,
  signature: string | undefined,
  url: string,
  rawBody: string | Buffer,
): boolean {
  const expected = new URL(url).searchParams.get('bodySHA256');
  if (!signature || !expected) return false;
  const actual = createHash('sha256').update(rawBody).digest('hex');
  return safeEqual(actual, expected.toLowerCase()) && verifyTwilioSignature(authToken, signature, url, {});
}
