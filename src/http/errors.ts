// The closed list of error codes, their HTTP statuses, and the one error type handlers throw.
import type { ZodError } from 'zod';

export const errorStatus = {
  bad_request: 400,
  invalid_json: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  invalid_token: 401,
  forbidden: 403,
  account_disabled: 403,
  tenant_suspended: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  email_taken: 409,
  last_admin: 409,
  payload_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  unsupported_format: 415,
  validation_error: 422,
  empty_document: 422,
  corrupt_document: 422,
  encrypted_document: 422,
  rate_limited: 429,
  internal_error: 500,
  /** An AI provider (embeddings, ...) refused or failed; the message says which and why. */
  provider_error: 502,
  service_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export interface FieldIssue {
  field: string;
  message: string;
}

export class AppError extends Error {
  readonly status: number;
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
