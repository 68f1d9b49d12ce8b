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

// ---- usage and cost (services/usage.ts): GET /api/v1/calls/{id} and GET /api/v1/usage ----
const usd = z.number().describe('USD');
export const costSplitView = z.object({
  platform_usd: usd.describe('What the platform bills: components on the platform’s keys'),
  tenant_usd: usd.describe('What the tenant’s own provider keys cost it (billed by the vendor, not the platform)'),
  total_usd: usd,
});
export const costLineView = z.object({
  component: z.enum(['telephony', 'stt', 'llm', 'tts', 'embeddings']),
  provider: z.string(),
  model: z.string(),
  unit: z.enum(['seconds', 'input_tokens', 'output_tokens', 'characters', 'tokens']),
  quantity: z.number(),
  billed_to: z.enum(['platform', 'tenant']),
  cost_usd: usd,
});
export const callCostView = z.object({
  usage: z.array(costLineView).describe('What the call used, per component, provider, model and unit'),
  cost: costSplitView.extend({
    components: z.record(z.string(), costSplitView).describe('Per component: telephony, stt, llm, tts, embeddings'),
  }),
});
