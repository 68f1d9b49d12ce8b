// Zod pieces shared by several routes: error envelope, pagination, ids, emails, passwords.
import { z } from 'zod';

export const errorEnvelope = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    request_id: z.string(),
    details: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  }),
});

/** The error responses every authenticated route may give, for the OpenAPI document. */
export const errorResponses = {
  400: errorEnvelope,
  401: errorEnvelope,
  403: errorEnvelope,
  404: errorEnvelope,
  409: errorEnvelope,
  422: errorEnvelope,
  429: errorEnvelope,
};

export const idParams = z.strictObject({ id: z.uuid() });
export const pageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});
export const page = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), total: z.number().int(), limit: z.number().int(), offset: z.number().int() });

export const email = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email('must be a valid email address'))
  .transform((e) => e.toLowerCase());
export const password = z.string().min(8, 'must be at least 8 characters').max(256, 'must be at most 256 characters');
export const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

// Usage and cost (services/usage.ts): GET /api/v1/calls/{id} and GET /api/v1/usage; the same schemas are in the
// call.ended webhook event.
export { callCostView, costLineView, costSplitView } from '../lib/cost-schema.js';
