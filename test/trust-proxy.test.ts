// TRUST_PROXY: a hop count or a list of trusted proxies decides the client IP; a client's own X-Forwarded-For entries
// never choose the IP its rate limits are counted under.
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { buildTestApp, type TestApp } from './helpers.js';

const open: TestApp[] = [];
afterAll(() => Promise.all(open.map((t) => t.close())));
async function app(env: Record<string, string>) {
  const t = await buildTestApp(env);
  open.push(t);
  return t;
}
const base = { DATA_DIR: 'memory://', SECRET_KEY: 's'.repeat(40) };
const health = (t: TestApp, remoteAddress: string, xff?: string) =>
  t.app.inject({ method: 'GET', url: '/health', remoteAddress, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } });

describe('TRUST_PROXY parsing', () => {
  it('false or unset trusts nobody; a number is a hop count; a comma list is proxy addresses and CIDRs', () => {
    expect(loadConfig(base).trustProxy).toBe(false);
    expect(loadConfig({ ...base, TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ ...base, TRUST_PROXY: '0' }).trustProxy).toBe(false);
    expect(loadConfig({ ...base, TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ ...base, TRUST_PROXY: '10.0.0.0/8, 192.168.1.7,loopback,fd00::/8' }).trustProxy).toEqual([
      '10.0.0.0/8',
      '192.168.1.7',
      'loopback',
      'fd00::/8',
    ]);
  });

  it('refuses true (trust anyone) naming the alternatives, and anything it cannot read', () => {
    expect(() => loadConfig({ ...base, TRUST_PROXY: 'true' })).toThrow(
      /TRUST_PROXY: true would believe any client.*number of proxies.*addresses\/CIDRs/,
    );
    expect(() => loadConfig({ ...base, TRUST_PROXY: 'proxy.internal' })).toThrow(/TRUST_PROXY: .*not understood: proxy.internal/);
    expect(() => loadConfig({ ...base, TRUST_PROXY: '10.0.0.0/33' })).toThrow(/TRUST_PROXY/);
    expect(() => loadConfig({ ...base, TRUST_PROXY: '99' })).toThrow(/TRUST_PROXY: a hop count/);
  });
});

describe('the client IP behind proxies', () => {
  it('TRUST_PROXY=1: the entry our proxy appended is the client; entries the client wrote do not change its limit', async () => {
    const t = await app({ TRUST_PROXY: '1', RATE_LIMIT_PER_IP_PER_MINUTE: '3' });
    const proxy = '10.0.0.2';
    const codes = [];
    // The client sends its own X-Forwarded-For, different each time; the proxy appends the real address.
    for (let i = 0; i < 5; i++) codes.push((await health(t, proxy, `198.51.100.${i}, 203.0.113.9`)).statusCode);
    expect(codes).toEqual([200, 200, 200, 429, 429]);
    // Another client behind the same proxy has its own budget.
    expect((await health(t, proxy, '203.0.113.10')).statusCode).toBe(200);
  });

  it('TRUST_PROXY as a CIDR list: X-Forwarded-For is honoured only from those addresses', async () => {
    const t = await app({ TRUST_PROXY: '10.0.0.0/8', RATE_LIMIT_PER_IP_PER_MINUTE: '2' });
    // Through the trusted proxy, each client has its own budget.
    for (let i = 0; i < 3; i++) expect((await health(t, '10.1.2.3', `203.0.113.${i}`)).statusCode).toBe(200);
    // A client outside the range cannot escape its limit by writing X-Forwarded-For itself.
    const direct = [];
    for (let i = 0; i < 4; i++) direct.push((await health(t, '192.0.2.50', `203.0.113.${100 + i}`)).statusCode);
    expect(direct).toEqual([200, 200, 429, 429]);
  });

  it('TRUST_PROXY unset: X-Forwarded-For is ignored', async () => {
    const t = await app({ RATE_LIMIT_PER_IP_PER_MINUTE: '2' });
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await health(t, '10.0.0.2', `203.0.113.${i}`)).statusCode);
    expect(codes).toEqual([200, 200, 429]);
  });
});
