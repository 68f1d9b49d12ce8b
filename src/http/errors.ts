// The closed list of error codes, their HTTP statuses, and the one error type handlers throw.
import type { FastifyError } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import type { ZodError } from 'zod';
import { withoutQueryParams } from '../lib/error-log.js';
import { ProviderError } from '../lib/provider-error.js';
import type { InputIssue } from '../lib/safe-input.js';

export const errorStatus = {
  bad_request: 400,
  invalid_json: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  invalid_token: 401,
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
  /** Hang-up or transfer of a call that has already ended. */
  call_not_active: 409,
  /** Transfer of a call that is not a phone call. */
  transfer_not_supported: 409,
  /** An outbound call from a tenant with no (active) number to call from. */
  no_phone_number: 409,
  phone_number_inactive: 409,
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
  empty_document: 422,
  corrupt_document: 422,
  encrypted_document: 422,
  /** A document past an extraction limit (ZIP entries or declared size, XML elements, PDF pages, HTML nodes). */
  document_too_complex: 422,
  rate_limited: 429,
  /** The tenant has as many live calls as it may (MAX_LIVE_CALLS_PER_TENANT); Retry-After says when to try again. */
  too_many_calls: 429,
  internal_error: 500,
  /** An AI provider (embeddings, ...) refused or failed; the message names it, the HTTP status and a short reason. */
  provider_error: 502,
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

/**
 * PostgreSQL errors a client's value causes (SQLSTATE class 22, data exceptions: a number out of range, text too
 * long or not valid in the encoding, a malformed literal; 54000: a value past a program limit, such as an index
 * row). Caught at the door by schemas and lib/safe-input.ts; this is the net for any field they miss.
 */
const INPUT_SQLSTATES = new Set(['22001', '22003', '22007', '22008', '22021', '22P02', '22P05', '22026', '2202E', '54000']);

function inputSqlState(err: unknown): string | undefined {
  // Drizzle wraps the driver's error in `cause`; either driver's error carries the SQLSTATE as `code`.
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && INPUT_SQLSTATES.has(code)) return code;
  }
  return undefined;
}

const isStackOverflow = (err: unknown) => err instanceof RangeError && /call stack size/i.test(err.message);

export interface Classified {
  status: number;
  code: ErrorCode;
  message: string;
  details?: FieldIssue[];
}

/** Maps anything thrown into the closed list of codes; 5xx text is only shown in development. */
export function classify(err: FastifyError, showInternals: boolean): Classified {
  if (err instanceof AppError) return { status: err.status, code: err.code, message: err.message, details: err.details };
  // The status and a short reason only: the provider's own words may come from any server a tenant pointed us at.
  if (err instanceof ProviderError) return { status: 502, code: 'provider_error', message: err.publicMessage };
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = err.validationContext ?? 'body';
    const details = err.validation.map((v) => {
      const path = [where, ...v.instancePath.split('/').filter(Boolean)];
      const keys = (v.params as { keys?: string[] }).keys;
      // Unknown keys are named one by one so the message says which field to remove.
      if (v.keyword === 'unrecognized_keys' && keys?.length) {
        return { field: [...path, keys[0]!].join('.'), message: 'unknown field' };
      }
      return { field: path.join('.'), message: v.message ?? 'is invalid' };
    });
    return {
      status: 422,
      code: 'validation_error',
      message: details.map((d) => `${d.field}: ${d.message}`).join('; '),
      details,
    };
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, code: 'invalid_json', message: 'Request body is not valid JSON' };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'payload_too_large', message: 'Request body is too large' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'unsupported_media_type', message: 'Unsupported Content-Type; send application/json' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, code: 'bad_request', message: 'Content-Length does not match the body' };
  }
  // Input that got past every check and still broke something: the client's value, so a 4xx, never a 500.
  if (isStackOverflow(err)) return { status: 400, code: 'bad_request', message: 'The request is nested too deeply' };
  const sqlState = inputSqlState(err);
  if (sqlState) {
    return { status: 400, code: 'bad_request', message: `A value in the request cannot be stored (out of range, too long or not valid text; SQLSTATE ${sqlState})` };
  }
  const status = err.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const code: ErrorCode = status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : status === 404 ? 'not_found' : 'bad_request';
    return { status: code === 'bad_request' ? 400 : status, code, message: err.message };
  }
  return {
    status: 500,
    code: 'internal_error',
    // Even in development, a failed query shows its SQL, not the values bound to it.
    message: showInternals ? `Internal error: ${(withoutQueryParams(err) as Error).message}` : 'Internal error',
  };
}
