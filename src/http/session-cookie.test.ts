import fastifyCookie from '@fastify/cookie';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { AppError } from '../lib/errors.js';
import { REFRESH_COOKIE, SessionCookie } from './session-cookie.js';

/** A bare app with one route that gives a cookie the way the auth routes do. */
async function appWith(env: 'production' | 'development', publicBaseUrl?: string) {
  const app = Fastify({ trustProxy: true });
  await app.register(fastifyCookie);
  const cookie = new SessionCookie({ env, publicBaseUrl, refreshTokenTtlMs: 86_400_000 });
  app.setErrorHandler((err, _req, reply) =>
    reply.status(err instanceof AppError ? err.status : 500).send({ code: (err as AppError).code }),
  );
  app.post('/give', async (request, reply) => {
    if (!cookie.requested(request)) return { mode: 'json' };
    return cookie.give(request, reply, { refresh_token: 'vrt_x', other: 1 });
  });
  return app;
}

describe('SessionCookie', () => {
  it('is Secure in production, and over https in development', async () => {
    const prod = await appWith('production');
    const res = await prod.inject({ method: 'POST', url: '/give', headers: { 'x-auth-mode': 'cookie' } });
    expect(res.json()).toEqual({ other: 1 });
    expect(res.cookies.find((c) => c.name === REFRESH_COOKIE)).toMatchObject({
      value: 'vrt_x',
      secure: true,
      httpOnly: true,
      maxAge: 86_400,
    });
    const dev = await appWith('development');
    const https = await dev.inject({ method: 'POST', url: '/give', headers: { 'x-auth-mode': 'cookie', 'x-forwarded-proto': 'https' } });
    expect(https.cookies[0]).toMatchObject({ secure: true });
    const http = await dev.inject({ method: 'POST', url: '/give', headers: { 'x-auth-mode': 'cookie' } });
    expect(http.cookies[0]!.secure).toBeFalsy();
  });

  it("accepts PUBLIC_BASE_URL's origin and the request's own host; refuses others", async () => {
    const app = await appWith('production', 'https://voice.example.com/');
    const status = async (headers: Record<string, string>) =>
      (await app.inject({ method: 'POST', url: '/give', headers: { 'x-auth-mode': 'cookie', ...headers } })).statusCode;
    expect(await status({ origin: 'https://voice.example.com' })).toBe(200);
    expect(await status({ origin: 'https://app.internal:8443', host: 'app.internal:8443' })).toBe(200);
    expect(await status({ origin: 'https://example.com', host: 'example.com:443' })).toBe(200);
    expect(await status({ origin: 'https://voice.example.com.evil.test' })).toBe(403);
    expect(await status({ origin: 'not a url' })).toBe(403);
    expect(await status({ 'sec-fetch-site': 'none' })).toBe(403);
    expect(await status({})).toBe(200); // no Origin, no Sec-Fetch-Site: not a browser's cross-site request
  });
});
