import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sign, verify } from './signing.js';

const secret = 'whsec_test_0123456789abcdef';
const body = JSON.stringify({ tool: 'book_table', arguments: { party_size: 4 } });
const t = 1_760_000_000;

describe('request signing', () => {
  it('signs "<t>.<body>" with HMAC-SHA256 in the documented header format', () => {
    const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
    expect(sign(secret, body, t)).toBe(`t=${t},v1=${expected}`);
    expect(sign(secret, Buffer.from(body), t)).toBe(`t=${t},v1=${expected}`);
  });

  it('verifies within the tolerance, in either direction', () => {
    const header = sign(secret, body, t);
    expect(verify(secret, header, body, { now: t })).toBe(true);
    expect(verify(secret, header, Buffer.from(body), { now: t + 300 })).toBe(true);
    expect(verify(secret, header, body, { now: t - 300 })).toBe(true);
    expect(verify(secret, header, body, { now: t + 301 })).toBe(false);
    expect(verify(secret, header, body, { now: t - 301 })).toBe(false);
    expect(verify(secret, header, body, { now: t + 3600, toleranceS: 3600 })).toBe(true);
    // The default clock: a signature made now passes, one from ten minutes ago does not.
    const nowS = Math.floor(Date.now() / 1000);
    expect(verify(secret, sign(secret, body, nowS), body)).toBe(true);
    expect(verify(secret, sign(secret, body, nowS - 600), body)).toBe(false);
  });

  it('refuses a changed body, timestamp or secret, and malformed headers', () => {
    const header = sign(secret, body, t);
    expect(verify(secret, header, body.replace('4', '5'), { now: t })).toBe(false);
    expect(verify(secret, header.replace(`t=${t}`, `t=${t + 1}`), body, { now: t })).toBe(false);
    expect(verify('whsec_other', header, body, { now: t })).toBe(false);
    for (const bad of [
      undefined,
      '',
      'nonsense',
      `t=${t}`,
      `v1=${header.split('v1=')[1]}`,
      `t=${t},v1=zz`,
      `t=abc,v1=${header.split('v1=')[1]}`,
    ]) {
      expect(verify(secret, bad, body, { now: t }), String(bad)).toBe(false);
    }
  });

  it('carries one v1 per secret during a rotation; each secret verifies on its own', () => {
    const header = sign(['whsec_new', 'whsec_old'], body, t);
    expect(header.match(/v1=/g)).toHaveLength(2);
    expect(verify('whsec_new', header, body, { now: t })).toBe(true);
    expect(verify('whsec_old', header, body, { now: t })).toBe(true);
    expect(verify('whsec_neither', header, body, { now: t })).toBe(false);
    // A verifier that knows several candidates accepts the header if any one matches (order does not matter).
    expect(verify('whsec_old', `t=${t},v1=${'0'.repeat(64)},${header.split(',')[2]}`, body, { now: t })).toBe(true);
    expect(() => sign([], body, t)).toThrow();
  });
});
