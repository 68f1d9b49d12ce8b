// The typed API client: paths and bodies come from schema.d.ts (generated from the service's /openapi.json), so the
// console cannot drift from the API. Every request carries the in-memory access token; a 401 refreshes once
// through the auth module and retries.
import createClient from 'openapi-fetch';
import { getAccessToken, refresh } from './auth';
import { ApiError, apiErrorOf } from './errors';
import type { paths } from './schema';

function withToken(request: Request): Request {
  const token = getAccessToken();
  if (token) request.headers.set('authorization', `Bearer ${token}`);
  return request;
}

async function send(request: Request): Promise<Response> {
  try {
    return await fetch(request);
  } catch {
    throw new ApiError('The service cannot be reached: check your connection and try again', 0, 'network_error');
  }
}

/** fetch with the bearer token; on 401 one refresh (shared by concurrent requests) and one retry. */
export async function authedFetch(request: Request): Promise<Response> {
  const spare = request.clone();
  const res = await send(withToken(request));
  if (res.status !== 401) return res;
  if (!(await refresh())) return res;
  return send(withToken(spare));
}

export const api = createClient<paths>({ baseUrl: '', fetch: authedFetch });

interface Result<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The answer's data, or the API's error thrown as an ApiError (its message is the one the pages show). */
export async function must<T>(pending: Promise<Result<T>>): Promise<T> {
  const { data, error, response } = await pending;
  if (!response.ok || error !== undefined) throw apiErrorOf(response.status, error);
  return data as T;
}
