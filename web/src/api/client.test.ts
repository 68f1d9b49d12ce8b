import { afterEach, describe, expect, it, vi } from 'vitest';
import { logout } from './auth';
import { authedFetch } from './client';

afterEach(async () => {
  vi.stubGlobal(
    'fetch',
    vi.fn(async () => new Response(null, { status: 204 })),
  );
  await logout();
  vi.unstubAllGlobals();
});

const req = () =>
  new Request('http://console.test/api/v1/calls', { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });

describe('authedFetch', () => {
  it('on 401 refreshes once through the cookie and retries with the new token', async () => {
    const seen: { url: string; auth: string | null; body: string; headers: Record<string, string> }[] = [];
    const fetch = vi.fn(async (input: Request | string, init?: RequestInit) => {
      const r = input instanceof Request ? input : new Request(`http://console.test${input}`, init);
      seen.push({
        url: new URL(r.url).pathname,
        auth: r.headers.get('authorization'),
        body: await r.clone().text(),
        headers: Object.fromEntries(r.headers),
      });
      if (r.url.endsWith('/auth/refresh')) return Response.json({ access_token: 'fresh', expires_in: 900 });
      return r.headers.get('authorization') === 'Bearer fresh' ? Response.json({ ok: true }) : new Response('{}', { status: 401 });
    });
    vi.stubGlobal('fetch', fetch);
    const res = await authedFetch(req());
    expect(res.status).toBe(200);
    expect(seen.map((s) => [s.url, s.auth])).toEqual([
      ['/api/v1/calls', null],
      ['/api/v1/auth/refresh', null],
      ['/api/v1/calls', 'Bearer fresh'],
    ]);
    expect(seen[1]!.headers['x-csrf']).toBe('1');
    expect(seen[1]!.headers['x-auth-mode']).toBe('cookie');
    expect(seen[2]!.body).toBe('{"a":1}');
  });

  it('gives the 401 back when the refresh is refused, without retrying', async () => {
    const fetch = vi.fn(async () => new Response('{}', { status: 401 }));
    vi.stubGlobal('fetch', fetch);
    const res = await authedFetch(req());
    expect(res.status).toBe(401);
    expect(fetch).toHaveBeenCalledTimes(2);
  });
});
