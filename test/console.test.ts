// The web console served at /: files with their cache rules, the SPA fallback for page paths, security headers, and
// the API, docs, health and metrics untouched. A tiny fake build in a temp folder stands in for web/dist.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTestApp } from './helpers.js';

const INDEX =
  '<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script></head><body><div id="root"></div></body></html>';

function fakeBuild(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'va-console-'));
  mkdirSync(path.join(dir, 'assets'));
  writeFileSync(path.join(dir, 'index.html'), INDEX);
  writeFileSync(path.join(dir, 'assets', 'index-abc123.js'), 'console.log("console");');
  writeFileSync(path.join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  writeFileSync(path.join(dir, '.env'), 'SECRET=1');
  return dir;
}

const HTML = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };

describe('with a console build', () => {
  const t = useTestApp(() => ({ CONSOLE_DIR: fakeBuild() }));
  const get = (url: string, headers: Record<string, string> = {}) => t.app.inject({ method: 'GET', url, headers });

  it('serves index.html at / with no-cache and a strict CSP and the usual headers', async () => {
    const res = await get('/', HTML);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toBe(INDEX);
    expect(res.headers['cache-control']).toBe('no-cache');
    const csp = String(res.headers['content-security-policy']);
    const directive = (name: string) => csp.split('; ').find((d) => d.startsWith(`${name} `));
    expect(directive('script-src')).toBe("script-src 'self'");
    expect(directive('frame-ancestors')).toBe("frame-ancestors 'none'");
    // Our origin's sockets, and the web-call socket's origin as stream_url names it (the address listened on here).
    expect(directive('connect-src')).toMatch(/^connect-src 'self' ws:\/\/localhost:80 wss:\/\/localhost:80 ws:\/\/127\.0\.0\.1:\d+$/);
    expect(directive('media-src')).toBe("media-src 'self' blob:");
    expect(directive('worker-src')).toBe("worker-src 'self' blob:");
    expect(directive('object-src')).toBe("object-src 'none'");
    expect(res.headers).toMatchObject({
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'cross-origin-opener-policy': 'same-origin',
    });
    expect(res.headers['permissions-policy']).toContain('microphone=(self)');
    expect((await t.app.inject({ method: 'HEAD', url: '/' })).statusCode).toBe(200);
  });

  it('answers page paths of the app with index.html, but only to a browser asking for HTML', async () => {
    const page = await get('/calls/3f1c0d1e-0000-4000-8000-000000000000', HTML);
    expect(page.statusCode).toBe(200);
    expect(page.body).toBe(INDEX);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    const script = await get('/assets/missing.js', { accept: '*/*' });
    expect(script.statusCode).toBe(404);
    expect(script.json().error.code).toBe('not_found');
  });

  it('keeps hashed assets a year and revalidates the other files', async () => {
    const js = await get('/assets/index-abc123.js');
    expect(js.statusCode).toBe(200);
    expect(js.body).toBe('console.log("console");');
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.headers['x-content-type-options']).toBe('nosniff');
    const icon = await get('/favicon.svg');
    expect(icon.statusCode).toBe(200);
    expect(icon.headers['cache-control']).toBe('no-cache');
    const again = await get('/favicon.svg', { 'if-none-match': String(icon.headers.etag) });
    expect(again.statusCode).toBe(304);
  });

  it('serves nothing outside the build, nor dotfiles', async () => {
    for (const url of ['/.env', '/..%2f..%2fetc%2fpasswd', '/assets/..%2f..%2f..%2fetc%2fpasswd', '/%2e%2e/%2e%2e/etc/passwd']) {
      const res = await get(url);
      expect(res.body, url).not.toContain('SECRET');
      expect(res.body, url).not.toContain('root:');
      expect(res.statusCode, url).toBeGreaterThanOrEqual(400);
    }
  });

  it('leaves the API, docs, OpenAPI, health and metrics as they were', async () => {
    const api = await get('/api/v1/no-such-thing', HTML);
    expect(api.statusCode).toBe(404);
    expect(api.json().error.code).toBe('not_found');
    expect(api.headers['content-security-policy']).toBeUndefined();
    expect((await get('/api/v1/auth/me', HTML)).statusCode).toBe(401);
    const docs = await get('/docs/', HTML);
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain('swagger');
    expect((await get('/docs/no-such-file.js', HTML)).body).not.toBe(INDEX);
    const spec = await get('/openapi.json', HTML);
    expect(spec.statusCode).toBe(200);
    expect(Object.keys(spec.json().paths).filter((p) => !p.startsWith('/api/') && !p.startsWith('/health'))).toEqual(['/metrics']);
    expect((await get('/health', HTML)).statusCode).toBe(200);
    expect((await get('/health/nope', HTML)).json().error.code).toBe('not_found');
    expect((await get('/metrics', HTML)).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'POST', url: '/', headers: HTML })).statusCode).toBe(404);
  });
});

describe('without a console build', () => {
  const t = useTestApp(() => ({ CONSOLE_DIR: path.join(tmpdir(), 'va-console-missing-build') }));

  it('/ leads to the API docs, and page paths are plain 404s', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/', headers: HTML });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/docs');
    const page = await t.app.inject({ method: 'GET', url: '/calls', headers: HTML });
    expect(page.statusCode).toBe(404);
    expect(page.json().error.code).toBe('not_found');
  });
});
