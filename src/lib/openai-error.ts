// OpenAI SDK errors as our one provider error type: retryable for connection failures, 408, 409, 429 and 5xx
// (with the Retry-After the server gave), permanent otherwise. Aborts pass through untouched. A connection the
// outbound guard refused (a tenant's base URL on our own network) is permanent and says only that.
import OpenAI from 'openai';
import { refusedByGuard } from './outbound.js';
import { httpProviderError, ProviderError } from './provider-error.js';

export function toProviderError(err: unknown, provider = 'openai'): unknown {
  if (err instanceof ProviderError) return err;
  if (err instanceof OpenAI.APIUserAbortError) return err;
  if (err instanceof OpenAI.APIConnectionError) {
    const refused = refusedByGuard(err);
    if (refused) return new ProviderError(provider, refused.message, false, undefined, undefined, 'address_refused');
    return new ProviderError(
      provider,
      err.message,
      true,
      undefined,
      undefined,
      err instanceof OpenAI.APIConnectionTimeoutError ? 'timeout' : 'unreachable',
    );
  }
  if (err instanceof OpenAI.APIError) return httpProviderError(provider, err.status ?? 0, err.message, err.headers?.get?.('retry-after'));
  return err;
}
