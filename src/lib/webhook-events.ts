// The catalog of webhook events: what a tenant's systems receive (POST to their endpoints) and how each event's
// `data` looks. One Zod schema per type; the outbox (services/outbox.ts) takes only these names with these payloads,
// and /openapi.json and the README publish the same schemas. Like call events, a name or field once published is
// never renamed or removed: add, never change. Every event on the wire is `{ id, type, created_at, tenant_id, data }`;
// `id` is the idempotency key (a redelivery carries the same id).
import { z } from 'zod';
import { citationSchema } from './citation.js';
import { callCostView } from './cost-schema.js';

const callRef = {
  call_id: z.string().uuid(),
};

export const webhookEventSchemas = {
  ping: z.object({ endpoint_id: z.string().uuid() }).describe('Sent by POST /api/v1/webhooks/{id}/test: nothing happened.'),
  'call.started': z
    .object({
      ...callRef,
      direction: z.enum(['inbound', 'outbound', 'web', 'chat']),
      status: z.string().describe('`queued` for an outbound call being placed; `in_progress` for the others.'),
      from: z.string().nullable(),
      to: z.string().nullable(),
      metadata: z
        .record(z.string(), z.unknown())
        .optional()
        .describe('The `metadata` given when the call was started (POST /api/v1/calls, /api/v1/calls/web); {} when none.'),
    })
    .describe('A call (or chat session) began: its record was made.'),
  'call.ended': z
    .object({
      ...callRef,
      direction: z.enum(['inbound', 'outbound', 'web', 'chat']),
      status: z.string(),
      reason: z.string(),
      from: z.string().nullable(),
      to: z.string().nullable(),
      started_at: z.string().nullable(),
      answered_at: z.string().nullable(),
      ended_at: z.string(),
      duration_ms: z.number().int().nullable(),
      turn_count: z.number().int(),
      metrics: z.record(z.string(), z.unknown()),
      recording_available: z
        .boolean()
        .describe('The recording is stored already; when it is stored after the end, `recording.ready` follows.'),
      detail: z.string().optional().describe('Set when the service ended a call nobody carried any more: why.'),
      metadata: z
        .record(z.string(), z.unknown())
        .optional()
        .describe('The `metadata` given when the call was started (POST /api/v1/calls, /api/v1/calls/web); {} when none.'),

      cost: callCostView.shape.cost
        .optional()
        .describe('What the call cost, per component and by who pays (its last usage is written before its end)'),
    })
    .loose()
    .describe('A call ended (once per call): its status, why, timing, turns and latency summary.'),
  'call.analyzed': z
    .object({
      ...callRef,
      summary: z.string(),
      /** One of the tenant's outcomes (default: resolved, transferred, voicemail, abandoned, failed); null when unknown. */
      outcome: z.string().nullable(),
      /** Judged against the tenant's rubric; passed is null when the engine does not judge (the local engine). */
      success: z.object({ passed: z.boolean().nullable(), reason: z.string() }),
      /** The fields of the tenant's extraction schema found in the conversation. */
      extracted: z.record(z.string(), z.unknown()),
      /** openai, anthropic, openai_compatible or local. */
      engine: z.string(),
      /** True when the engine did only part of it (the local engine: no rubric, only the fields its rules find). */
      partial: z.boolean(),
    })
    .loose()
    .describe('The post-call analysis of a call is ready (summary, outcome, evaluation, extracted fields).'),
  'transcript.turn': z
    .object({
      ...callRef,
      seq: z.number().int(),
      speaker: z.enum(['caller', 'agent', 'system']),
      text: z.string(),
      interrupted: z.boolean().describe('The caller spoke over the agent: `text` is what the caller heard.'),
      truncated: z
        .boolean()
        .describe('`text` ends with part of a sentence: the words the caller heard of it, estimated from the audio played.'),
      start_ms: z.number().int().nullable().describe('On the call’s clock.'),
      end_ms: z.number().int().nullable(),
      citations: z.array(z.string()).describe('Ids of the knowledge chunks the agent’s answer used.'),
      citation_details: z
        .array(citationSchema)
        .describe('The same citations whole: document, title, heading path, page and a short snippet.'),
    })
    .describe('One stored turn of a conversation (opt-in: subscribe to it by name).'),
  'transfer.started': z
    .object({ ...callRef, to: z.string(), reason: z.string() })
    .describe('The agent or the API asked to transfer the caller (a chat session records the request only).'),
  'transfer.completed': z.object({ ...callRef, to: z.string() }).describe('The caller was handed to the transfer number.'),
  'transfer.failed': z.object({ ...callRef, to: z.string(), error: z.string() }).describe('The transfer failed.'),
  'recording.ready': z
    .object({ ...callRef, duration_ms: z.number().int().nullable() })
    .describe(
      'The call’s recording is stored and can be downloaded (GET /api/v1/calls/{id}/recording); sent again when a call ' +
        'resumed after a restart adds to it.',
    ),
  'document.ready': z
    .object({
      document_id: z.string().uuid(),
      name: z.string(),
      chunks: z.number().int(),
      version: z.number().int().describe('Each upload or replacement of the document is a new version.'),
      filename: z.string().nullable(),
      embedding_model: z.string(),
    })
    .describe('A knowledge document (this version of it) was ingested and is searchable.'),
  'document.failed': z
    .object({
      document_id: z.string().uuid(),
      name: z.string(),
      error: z.string(),
      version: z.number().int(),
      filename: z.string().nullable(),
      attempts: z.number().int().describe('Ingestion attempts made; a transient failure is retried before it fails.'),
    })
    .describe('A knowledge document could not be ingested (a replacement that failed leaves the previous version serving).'),
  'usage.limit_reached': z
    .object({
      limit: z.string().describe('monthly_minutes or monthly_spend'),
      month: z.string().optional().describe('YYYY-MM (UTC)'),
      cap: z.number().optional().describe('The cap: minutes, or USD the platform bills'),
      used: z.number().optional().describe('What was used this month when the cap was reached'),
    })
    .loose()
    .describe('A usage limit of the account was reached (monthly minutes or spend): new calls are refused.'),
  'endpoint.disabled': z
    .object({ endpoint_id: z.string().uuid(), url: z.string() })
    .describe('A webhook endpoint failed for 3 days and was disabled (sent to the tenant’s other endpoints).'),
} as const;

export type WebhookEventType = keyof typeof webhookEventSchemas;
export type WebhookEventData<T extends WebhookEventType> = z.input<(typeof webhookEventSchemas)[T]>;
export const WEBHOOK_EVENT_TYPES = Object.keys(webhookEventSchemas) as [WebhookEventType, ...WebhookEventType[]];
export const isWebhookEventType = (type: string): type is WebhookEventType => Object.hasOwn(webhookEventSchemas, type);

/** Sent only to endpoints that name them: `*` does not include them (one event per stored turn is a lot). */
export const OPT_IN_EVENT_TYPES: readonly WebhookEventType[] = ['transcript.turn'];
/**
 * What an endpoint may subscribe to: every type but `ping` (sent by the test route to the one endpoint) and
 * `endpoint.disabled` (sent to every other enabled endpoint of the tenant, subscribed or not: the tenant must hear).
 */
export const SUBSCRIBABLE_EVENT_TYPES = WEBHOOK_EVENT_TYPES.filter((t) => t !== 'ping' && t !== 'endpoint.disabled');
