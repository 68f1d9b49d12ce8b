// Maps anything thrown to the error envelope's status, code and message (the codes themselves: lib/errors.ts).
import type { FastifyError } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, type ErrorCode, type FieldIssue } from '../lib/errors.js';
import { withoutQueryParams } from '../lib/error-log.js';
import { ProviderError } from '../lib/provider-error.js';

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
    return {
      status: 400,
      code: 'bad_request',
      message: `A value in the request cannot be stored (out of range, too long or not valid text; SQLSTATE ${sqlState})`,
    };
  }
  const status = err.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const code: ErrorCode =
      status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : status === 404 ? 'not_found' : 'bad_request';
    return { status: code === 'bad_request' ? 400 : status, code, message: err.message };
  }
  return {
    status: 500,
    code: 'internal_error',
    // Even in development, a failed query shows its SQL, not the values bound to it.
    message: showInternals ? `Internal error: ${(withoutQueryParams(err) as Error).message}` : 'Internal error',
  };
}
