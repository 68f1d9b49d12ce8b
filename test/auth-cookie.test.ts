// Sign-in from a browser: the refresh token in an HttpOnly cookie (X-Auth-Mode: cookie), rotated through it, refused
// cross-site, cleared at logout; the JSON flow of API clients unchanged.
import { describe, expect, it } from 'vitest';
import { REFRESH_COOKIE } from '../src/http/session-cookie.js';
import { bearer, uniqueEmail, useTestApp } from './helpers.js';

const t = useTestApp();

const COOKIE_MODE = { 'x-auth-mode': 'cookie' };
type Cookie = { name: string; value: string; path?: string; httpOnly?: boolean; sameSite?: string; secure?: boolean; maxAge?: number };

const post = (url: string, opts: { payload?: object; headers?: Record<string, string>; cookie?: string } = {}) =>
  t.app.inject({
    method: 'POST',
    url,
    headers: { ...opts.headers, ...(opts.cookie !== undefined && { cookie: `${REFRESH_COOKIE}=${opts.cookie}` }) },
    ...(opts.payload && { payload: opts.payload }),
  });
const refreshCookie = (res: { cookies: Cookie[] }) => res.cookies.find((c) => c.name === REFRESH_COOKIE);

async function cookieSignup() {
  const email = uniqueEmail('browser');
  const res = await post('/api/v1/auth/signup', {
    headers: COOKIE_MODE,
    payload: { email, password: 'correct horse battery', tenant_name: 'Browser Clinic' },
  });
  expect(res.statusCode).toBe(201);
  return { email, res, cookie: refreshCookie(res)! };
}

describe('refresh token in a cookie (X-Auth-Mode: cookie)', () => {
  it('signup and login set an HttpOnly, SameSite=Strict cookie scoped to the auth routes, and leave the token out of the body', async () => {
    const { email, res, cookie } = await cookieSignup();
    expect(res.json()).not.toHaveProperty('refresh_token');
    expect(res.json().access_token.split('.')).toHaveLength(3);
    expect(cookie.value).toMatch(/^vrt_/);
    expect(cookie).toMatchObject({ path: '/api/v1/auth', httpOnly: true, sameSite: 'Strict', maxAge: 30 * 86_400 });
    // Plain http outside production (the test app): not Secure, or the browser would not keep it.
    expect(cookie.secure).toBeFalsy();

    const login = await post('/api/v1/auth/login', { headers: COOKIE_MODE, payload: { email, password: 'correct horse battery' } });
    expect(login.statusCode).toBe(200);
    expect(login.json()).not.toHaveProperty('refresh_token');
    expect(login.json().user.email).toBe(email);
    expect(refreshCookie(login)).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/api/v1/auth' });
    expect(refreshCookie(login)!.value).not.toBe(cookie.value);
  });

  it('refresh rotates the cookie; presenting a used one revokes the login and clears the cookie', async () => {
    const { cookie } = await cookieSignup();
    // An empty JSON object is the same as no body (what a typed client sends).
    const r1 = await post('/api/v1/auth/refresh', { headers: COOKIE_MODE, cookie: cookie.value, payload: {} });
    expect(r1.statusCode).toBe(200);
    expect(r1.json()).not.toHaveProperty('refresh_token');
    const me = await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(r1.json().access_token) });
    expect(me.statusCode).toBe(200);
    const rotated = refreshCookie(r1)!;
    expect(rotated.value).toMatch(/^vrt_/);
    expect(rotated.value).not.toBe(cookie.value);

    // The first cookie again (stolen, replayed): refused, the whole family revoked, the cookie told to go.
    const reuse = await post('/api/v1/auth/refresh', { headers: COOKIE_MODE, cookie: cookie.value });
    expect(reuse.statusCode).toBe(401);
    expect(reuse.json().error.code).toBe('invalid_token');
    expect(refreshCookie(reuse)).toMatchObject({ value: '', path: '/api/v1/auth' });
    const victim = await post('/api/v1/auth/refresh', { headers: COOKIE_MODE, cookie: rotated.value });
    expect(victim.statusCode).toBe(401);
  });

  it('refresh without a cookie is 401 (signed out), not a validation error', async () => {
    const res = await post('/api/v1/auth/refresh', { headers: COOKIE_MODE });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('invalid_token');
  });

  it('a cookie is not a credential without the header (CSRF): the JSON flow still wants a body token', async () => {
    const { cookie } = await cookieSignup();
    const res = await post('/api/v1/auth/refresh', { cookie: cookie.value });
    expect(res.statusCode).toBe(422);
    expect(res.json().error.details[0].field).toBe('body.refresh_token');
    const logout = await post('/api/v1/auth/logout', { cookie: cookie.value });
    expect(logout.statusCode).toBe(422);
    // Neither touched the token.
    expect((await post('/api/v1/auth/refresh', { headers: COOKIE_MODE, cookie: cookie.value })).statusCode).toBe(200);
  });

  it('refuses a foreign Origin or a cross-site fetch even with the header, and leaves the token alone', async () => {
    const { cookie } = await cookieSignup();
    for (const headers of [
      { ...COOKIE_MODE, origin: 'https://evil.example' },
      { ...COOKIE_MODE, origin: 'null' },
      { ...COOKIE_MODE, origin: 'http://localhost:81' },
      { ...COOKIE_MODE, 'sec-fetch-site': 'cross-site' },
      { ...COOKIE_MODE, 'sec-fetch-site': 'same-site' },
    ]) {
      for (const url of ['/api/v1/auth/refresh', '/api/v1/auth/logout']) {
        const res = await post(url, { headers, cookie: cookie.value });
        expect(res.statusCode, `${url} ${JSON.stringify(headers)}`).toBe(403);
        expect(res.json().error.code).toBe('forbidden');
        expect(refreshCookie(res)).toBeUndefined();
      }
    }
    // Login in cookie mode from another site (login CSRF) is refused the same way.
    const login = await post('/api/v1/auth/login', {
      headers: { ...COOKIE_MODE, origin: 'https://evil.example' },
      payload: { email: uniqueEmail(), password: 'whatever it is' },
    });
    expect(login.statusCode).toBe(403);
    // Our own page (inject's Host is localhost:80): accepted.
    const own = await post('/api/v1/auth/refresh', {
      headers: { ...COOKIE_MODE, origin: 'http://localhost', 'sec-fetch-site': 'same-origin' },
      cookie: cookie.value,
    });
    expect(own.statusCode).toBe(200);
  });

  it('logout revokes the login and clears the cookie; again is harmless', async () => {
    const { cookie } = await cookieSignup();
    const out = await post('/api/v1/auth/logout', { headers: COOKIE_MODE, cookie: cookie.value });
    expect(out.statusCode).toBe(204);
    const cleared = refreshCookie(out)!;
    expect(cleared).toMatchObject({ value: '', path: '/api/v1/auth', httpOnly: true, sameSite: 'Strict' });
    expect((await post('/api/v1/auth/refresh', { headers: COOKIE_MODE, cookie: cookie.value })).statusCode).toBe(401);
    expect((await post('/api/v1/auth/logout', { headers: COOKIE_MODE })).statusCode).toBe(204);
  });

  it('without the header, the JSON flow is as before and sets no cookie', async () => {
    const email = uniqueEmail();
    const res = await post('/api/v1/auth/signup', { payload: { email, password: 'correct horse battery', tenant_name: 'API' } });
    expect(res.json().refresh_token).toMatch(/^vrt_/);
    expect(refreshCookie(res)).toBeUndefined();
    const r = await post('/api/v1/auth/refresh', { payload: { refresh_token: res.json().refresh_token } });
    expect(r.statusCode).toBe(200);
    expect(r.json().refresh_token).toMatch(/^vrt_/);
    expect(refreshCookie(r)).toBeUndefined();
    expect((await post('/api/v1/auth/refresh', { headers: { 'x-auth-mode': 'jar' } })).statusCode).toBe(422);
  });
});
