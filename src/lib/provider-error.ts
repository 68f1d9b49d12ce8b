// The one error type for failures of external providers (embeddings, STT, LLM, TTS): callers decide between
// retrying later and giving up by `retryable` alone, whatever the vendor.
export class ProviderError extends Error {
  constructor(
    readonly provider: string,
    message: string,
    readonly retryable: boolean,
    /** HTTP status from the provider, when there was one. */
    readonly status?: number,
    /** How long the provider asked us to wait, when it said. */
    readonly retryAfterMs?: number,
  ) {
    super(`${provider}: ${message}`);
  }
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
