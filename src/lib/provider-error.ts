// The one error type for failures of external providers (embeddings, STT, LLM, TTS): callers decide between
// retrying later and giving up by `retryable` alone, whatever the vendor. What a tenant may read of it
// (`publicMessage`, `reason`) never carries the provider's own words: a tenant can point a provider URL at any
// server, and that server's error body must not come back to them (it may be one of our internal services).
export const PROVIDER_FAILURES = [
  'unauthorized',
  'forbidden',
  'not_found',
  'bad_request',
  'rate_limited',
  'timeout',
  'server_error',
  'redirect',
  'unreachable',
  'address_refused',
  'error',
] as const;
export type ProviderFailure = (typeof PROVIDER_FAILURES)[number];

export class ProviderError extends Error {
  /** A short classification of the failure, safe to show the tenant. */
  readonly reason: ProviderFailure;
  /** What the tenant reads (events, 502 bodies): the provider, the HTTP status and the reason; or our own message. */
  readonly publicMessage: string;

  constructor(
    readonly provider: string,
    /** For logs: may hold what the provider said. */
    message: string,
    readonly retryable: boolean,
    /** HTTP status from the provider, when there was one. */
    readonly status?: number,
    /** How long the provider asked us to wait, when it said. */
    readonly retryAfterMs?: number,
    /** Set when the message holds words from outside (the provider's, a connection's): the tenant then gets only this. */
    reason?: ProviderFailure,
  ) {
    super(`${provider}: ${message}`);
    this.reason = reason ?? (status !== undefined ? failureOfStatus(status) : 'error');
    this.publicMessage =
      status !== undefined
        ? `${provider}: HTTP ${status} (${this.reason.replaceAll('_', ' ')})`
        : reason
          ? `${provider}: ${this.reason.replaceAll('_', ' ')}`
          : this.message;
  }
}

export function failureOfStatus(status: number): ProviderFailure {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 408) return 'timeout';
  if (status === 429) return 'rate_limited';
  if (status >= 300 && status < 400) return 'redirect';
  if (status >= 500) return 'server_error';
  if (status >= 400) return 'bad_request';
  return 'error';
}

/**
 * A provider's HTTP failure: 408, 409, 429 and 5xx (529 = overloaded) are worth retrying, the rest are not;
 * Retry-After (seconds) is kept when the provider sent one.
 */
export function httpProviderError(provider: string, status: number, message: string, retryAfter: string | null | undefined): ProviderError {
  const seconds = retryAfter ? Number(retryAfter) : NaN;
  const retryable = status === 408 || status === 409 || status === 429 || status >= 500;
  return new ProviderError(provider, `${status} ${message}`, retryable, status, Number.isFinite(seconds) ? seconds * 1000 : undefined);
}

/** What a tenant-visible event says about a failure: the status and a short reason, never the provider's words. */
export function publicFailure(err: unknown): { status: number | null; reason: ProviderFailure; message: string } {
  if (err instanceof ProviderError) return { status: err.status ?? null, reason: err.reason, message: err.publicMessage };
  return { status: null, reason: 'error', message: 'failed' };
}
