// Errors as they may be logged or shown: a failed query keeps its SQL text and the driver's code and message, never
// the values bound to it (Drizzle puts every parameter in its message and a `params` field: password hashes, API key
// hashes, tokens, a caller's words). Used by the log's `err` serializer and by the development 500 body.
import { DrizzleQueryError } from 'drizzle-orm/errors';
import pino from 'pino';

const MAX_DEPTH = 5;

/** What a driver error may show: its class, code and message; `detail`, `where` and the like can quote row values. */
function driverError(cause: unknown): { type: string; code?: string; message: string } | undefined {
  if (!cause || typeof cause !== 'object') return undefined;
  const c = cause as { name?: string; code?: unknown; message?: unknown };
  return {
    type: c.name ?? 'Error',
    ...(typeof c.code === 'string' && { code: c.code }),
    message: typeof c.message === 'string' ? c.message : String(cause),
  };
}

/** `err` without bound parameter values anywhere in it or in its causes. */
export function withoutQueryParams(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error) || depth > MAX_DEPTH) return err;
  if (err instanceof DrizzleQueryError) {
    const cause = driverError(err.cause);
    const safe = new Error(
      `Failed query: ${err.query}${cause ? `: ${cause.code ? `${cause.code} ` : ''}${cause.message}` : ''}`,
    ) as Error & { query: string; code?: string };
    safe.name = 'DrizzleQueryError';
    safe.query = err.query;
    if (cause?.code) safe.code = cause.code;
    // The original stack starts with the message (parameters included): keep only its frames.
    safe.stack = `${safe.name}: ${safe.message}\n${(err.stack ?? '')
      .split('\n')
      .filter((l) => /^\s+at /.test(l))
      .join('\n')}`;
    if (cause) safe.cause = cause;
    return safe;
  }
  if (err.cause instanceof Error) {
    const cause = withoutQueryParams(err.cause, depth + 1);
    if (cause !== err.cause) {
      const copy = Object.assign(Object.create(Object.getPrototypeOf(err) as object) as Error, err, {
        message: err.message,
        stack: err.stack,
      });
      copy.cause = cause;
      return copy;
    }
  }
  return err;
}

/** pino's `err` serializer, with query parameters removed first. */
export const errSerializer = (err: unknown) => pino.stdSerializers.err(withoutQueryParams(err) as Error);
