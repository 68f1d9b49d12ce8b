// The session, and everything the browser's sign-in depends on in one place: the access token lives in this module's
// memory only (never in storage a script could read later); the refresh token is the service's HttpOnly cookie on
// /api/v1/auth, asked for with AUTH_MODE_HEADER and spent with CSRF_HEADER. Align these names with the server here.
import { apiErrorFrom } from './errors';

/** Asks the auth routes to set/read the refresh token as an HttpOnly cookie instead of putting it in the body. */
export const AUTH_MODE_HEADER = { 'X-Auth-Mode': 'cookie' } as const;
/** A header a cross-site form cannot send: required by the cookie-based refresh and logout. */
export const CSRF_HEADER = { 'X-CSRF': '1' } as const;
export const AUTH_BASE = '/api/v1/auth';

interface TokenAnswer {
  access_token: string;
  expires_in: number;
}

let accessToken: string | null = null;
const listeners = new Set<(signedIn: boolean) => void>();

export function getAccessToken(): string | null {
  return accessToken;
}

/** Called when the session starts or ends (a failed refresh signs out everywhere in the app). */
export function onSessionChange(listener: (signedIn: boolean) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function setAccessToken(token: string | null): void {
  const changed = (token === null) !== (accessToken === null);
  accessToken = token;
  if (changed) for (const l of listeners) l(token !== null);
}

async function post(path: string, body: unknown, extraHeaders: Record<string, string> = {}): Promise<Response> {
  return fetch(`${AUTH_BASE}/${path}`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', ...AUTH_MODE_HEADER, ...extraHeaders },
    body: JSON.stringify(body ?? {}),
  });
}

async function take(res: Response): Promise<void> {
  if (!res.ok) throw await apiErrorFrom(res);
  const answer = (await res.json()) as TokenAnswer;
  setAccessToken(answer.access_token);
}

export async function login(email: string, password: string): Promise<void> {
  await take(await post('login', { email, password }));
}

export async function signup(input: { email: string; password: string; tenant_name: string; full_name?: string }): Promise<void> {
  await take(await post('signup', input));
}

let refreshing: Promise<boolean> | null = null;

/**
 * Trades the refresh cookie for a new access token (the cookie rotates). Concurrent callers share one request:
 * a rotated refresh token presented twice would revoke the whole login. Resolves false when signed out.
 */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const res = await post('refresh', {}, CSRF_HEADER);
      if (!res.ok) {
        setAccessToken(null);
        return false;
      }
      await take(res);
      return true;
    } catch {
      setAccessToken(null);
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export async function logout(): Promise<void> {
  try {
    await post('logout', {}, CSRF_HEADER);
  } finally {
    setAccessToken(null);
  }
}
