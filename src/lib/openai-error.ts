// OpenAI SDK errors as our one provider error type: retryable for connection failures, 408, 409, 429 and 5xx
// (with the Retry-After the server gave), permanent otherwise. Aborts pass through untouched.
import OpenAI from 'openai';
import { ProviderError } from './provider-error.js';

export function toProviderError(err: unknown, provider = 'openai'): unknown {
  if (err instanceof ProviderError) return err;
  if (err instanceof OpenAI.APIUserAbortError) return err;
  if (err instanceof OpenAI.APIConnectionError) return new ProviderError(provider, err.message, true);
  if (err instanceof OpenAI.APIError) {
    const status = err.status ?? 0;
    const header = err.headers?.get?.('retry-after');
    const retryAfter = header ? Number(header) : NaN;
    return new ProviderError(
      provider,
      `${status} ${err.message}`,
      status === 408 || status === 409 || status === 429 || status >= 500,
      status,
      Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined,
    );
  }
  return err;
}
