// The API's error envelope ({error: {code, message, request_id, details}}) as an Error the pages can show, and the
// field-level details mapped onto form fields.

export interface FieldIssue {
  field: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly details: FieldIssue[] = [],
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface Envelope {
  error?: { code?: string; message?: string; request_id?: string; details?: FieldIssue[] };
}

/** Builds the error from a parsed body (openapi-fetch gives `error` already parsed). */
export function apiErrorOf(status: number, body: unknown): ApiError {
  const e = (body as Envelope | null)?.error;
  if (e && typeof e.message === 'string') {
    return new ApiError(e.message, status, e.code ?? 'error', Array.isArray(e.details) ? e.details : [], e.request_id);
  }
  return new ApiError(status === 0 ? 'The service cannot be reached' : `The service answered ${status}`, status, 'http_error');
}

export async function apiErrorFrom(res: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  return apiErrorOf(res.status, body);
}

/** Any thrown value as a sentence for a notification or an Alert. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * The details of a validation error keyed by field path without its location prefix ("body.call.endpointing_ms"
 * -> "call.endpointing_ms"), so a form puts each message under its own input.
 */
export function fieldErrors(err: unknown, prefix = 'body.'): Record<string, string> {
  const out: Record<string, string> = {};
  if (!(err instanceof ApiError)) return out;
  for (const d of err.details) {
    const key = d.field.startsWith(prefix) ? d.field.slice(prefix.length) : d.field;
    out[key] ??= d.message;
  }
  return out;
}
