// OpenAI SDK errors as our one provider error type: retryable for connection failures, 408, 409, 429 and 5xx
// (with the Retry-After the server gave), permanent otherwise. Aborts pass through untouched.
import OpenAI from 'openai';
import { httpProviderError, ProviderError } from './provider-error.js';

export function toProviderError(err: unknown, provider = 'openai'): unknown {
  if (err instanceof ProviderError) return err;
  if (err instanceof OpenAI.APIUserAbortError) return err;
  if (err instanceof OpenAI.APIConnectionError) return new ProviderError(provider, err.message, true);
  if (err instanceof OpenAI.APIError) return httpProviderError(provider, err.status ?? 0, err.message, err.headers?.get?.('retry-after'));
  return err;
}
