// The cost of usage as the API and the webhooks show it (services/usage.ts computes it): one schema for the
// call's view (GET /api/v1/calls/{id}, GET /api/v1/usage) and the call.ended event.
import { z } from 'zod';

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
