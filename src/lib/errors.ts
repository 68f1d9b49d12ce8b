// Domain errors: the closed list of error codes (each with the HTTP status it answers as) and the one error type
// services and handlers throw. Below every layer: http/errors.ts maps these (and anything else thrown) to responses.
import type { ZodError } from 'zod';
import type { InputIssue } from './safe-input.js';

export const errorStatus = {
  bad_request: 400,
  invalid_json: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  invalid_token: 401,
  /** A monthly cap of the account (minutes or spend, set by the platform admin) is reached: new calls are refused. */
  budget_exceeded: 402,
  forbidden: 403,
  account_disabled: 403,
  tenant_suspended: 403,
  /** A webhook whose signature does not verify: nothing from it is acted on. */
  invalid_signature: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  email_taken: 409,
  last_admin: 409,
  /** A platform admin suspending the tenant they belong to (their own sign-in would stop working). */
  own_tenant: 409,
  /** Hang-up or transfer of a call that has already ended. */
  call_not_active: 409,
  /** Deleting a call that is still live (hang it up first; a chat session ends after its idle timeout). */
  call_active: 409,
  /** Hang-up or transfer of a chat session (it ends by itself: goodbye, or its idle timeout). */
  not_a_phone_call: 409,
  /** Transfer of a call that is not a phone call. */
  transfer_not_supported: 409,
  /** An outbound call from a tenant with no (active) number to call from. */
  no_phone_number: 409,
  phone_number_inactive: 409,
  /** The tenant has as many webhook endpoints as it may. */
  webhook_limit_reached: 409,
  /** A test ping to a disabled webhook endpoint. */
  webhook_disabled: 409,
  /** Twilio refused to place the call (an invalid or unreachable destination, for example); the message says why. */
  call_rejected: 422,
  /** A number that is not one of the Twilio account's, or is registered already: one answer, so it tells nothing. */
  phone_number_unavailable: 422,
  payload_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  unsupported_format: 415,
  /** A Range outside the file (a recording download); Content-Range says its size. */
  range_not_satisfiable: 416,
  validation_error: 422,
  /** A tenant URL (a webhook endpoint) that names or resolves to a private, loopback or link-local address. */
  url_not_allowed: 422,
  empty_document: 422,
  corrupt_document: 422,
  encrypted_document: 422,
  /** A document past an extraction limit (ZIP entries or declared size, XML elements, PDF pages, HTML nodes). */
  document_too_complex: 422,
  rate_limited: 429,
  /**
   * The tenant has as many concurrent calls as it may, counted across every instance (its own cap set by the
   * platform admin, else MAX_LIVE_CALLS_PER_TENANT); Retry-After says when to try again.
   */
  concurrency_limit: 429,
  /** The earlier name of concurrency_limit (per instance then). No longer sent; kept so the code stays known. */
  too_many_calls: 429,
  internal_error: 500,
  /** An AI provider (embeddings, ...) refused or failed; the message names it, the HTTP status and a short reason. */
  provider_error: 502,
  /** Twilio could not be reached (or did not answer) while placing an outbound call; the message says which. */
  twilio_unreachable: 502,
  /** Twilio refused this deployment's credentials (401): TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN are wrong. */
  twilio_auth_failed: 502,
  service_unavailable: 503,
  /** This instance carries as many live calls as it can (MAX_LIVE_CALLS); Retry-After says when to try again. */
  calls_at_capacity: 503,
  /** LIVEKIT_URL, LIVEKIT_API_KEY or LIVEKIT_API_SECRET is not set on this deployment. */
  livekit_not_configured: 503,
  /** TWILIO_ACCOUNT_SID or TWILIO_AUTH_TOKEN is not set on this deployment. */
  twilio_not_configured: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export interface FieldIssue {
  field: string;
  message: string;
}

export class AppError extends Error {
  readonly status: number;
  /** Seconds the client should wait before trying again: sent as Retry-After. */
  retryAfterS?: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: FieldIssue[],
  ) {
    super(message);
    this.status = errorStatus[code];
  }
}

export const notFound = (what: string) => new AppError('not_found', `${what} not found`);

/** A Zod failure from validation done inside a handler, as the same 422 the route schemas give. */
export function validationError(err: ZodError, where = 'body'): AppError {
  const details = err.issues.map((i) => ({ field: [where, ...i.path.map(String)].join('.'), message: i.message }));
  return new AppError('validation_error', details.map((d) => `${d.field}: ${d.message}`).join('; '), details);
}

/** Text or nesting refused by lib/safe-input.ts, as the same 422 the route schemas give (`where`: body, querystring...). */
export function unsafeInputError(where: string, issue: InputIssue): AppError {
  const field = [where, ...issue.path.map(String)].join('.');
  return new AppError('validation_error', `${field}: ${issue.message}`, [{ field, message: issue.message }]);
}
