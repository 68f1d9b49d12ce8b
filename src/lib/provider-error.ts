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
