// /api/v1/webhooks: the tenant's webhook endpoints (secret shown on create and rotate only), a test ping, the
// delivery log with each attempt, and replays of one delivery or of a time range.
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { SUBSCRIBABLE_EVENT_TYPES } from '../../lib/webhook-events.js';
import type { WebhookEndpoint } from '../../services/webhooks.js';
import { principalOf } from '../auth.js';
import type { App } from '../context.js';
import { errorResponses, idParams, iso, page } from '../schemas.js';

const MAX_URL_LENGTH = 2000;

const eventName = z.enum(['*', ...SUBSCRIBABLE_EVENT_TYPES]).describe('An event type, or `*` for all but the opt-in `transcript.turn`');
const endpointFields = {
  url: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    .max(MAX_URL_LENGTH)
    .refine((u) => !/^[a-z]+:\/\/[^/?#]*@/i.test(u), 'must not contain credentials'),
  events: z
    .array(eventName)
    .min(1)
    .max(SUBSCRIBABLE_EVENT_TYPES.length + 1)
    .transform((e) => [...new Set(e)]),
  description: z.string().trim().max(500).nullable(),
  enabled: z.boolean(),
};
const createBody = z.strictObject({
  url: endpointFields.url,
  events: endpointFields.events,
  description: endpointFields.description.optional(),
  enabled: endpointFields.enabled.default(true),
});
const patchBody = z
  .strictObject({
    url: endpointFields.url.optional(),
    events: endpointFields.events.optional(),
    description: endpointFields.description.optional(),
    enabled: endpointFields.enabled.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'name at least one field to change');

const endpointView = z.object({
  id: z.uuid(),
  url: z.string(),
  events: z.array(z.string()),
  description: z.string().nullable(),
  enabled: z.boolean(),
  /** Why the platform disabled it (3 days of failures); null when enabled or disabled by the tenant. */
  disabled_reason: z.string().nullable(),
  /** The first failure of the current run of failures; null after a success. */
  failing_since: z.string().nullable(),
  /** Until when deliveries also carry a signature by the previous secret. */
  previous_secret_expires_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
const withSecret = endpointView.extend({
  secret: z.string().describe('The signing secret (Standard Webhooks `whsec_...`): shown in this response only'),
});
const toView = (e: WebhookEndpoint): z.infer<typeof endpointView> => ({
  id: e.id,
  url: e.url,
  events: e.events,
  description: e.description,
  enabled: e.enabled,
  disabled_reason: e.disabledReason,
  failing_since: iso(e.failingSince),
  previous_secret_expires_at:
    e.previousSecretExpiresAt && e.previousSecretExpiresAt.getTime() > Date.now() ? e.previousSecretExpiresAt.toISOString() : null,
  created_at: e.createdAt.toISOString(),
  updated_at: e.updatedAt.toISOString(),
});

const attemptView = z.object({
  attempted_at: z.string(),
  status_code: z.number().int().nullable(),
  latency_ms: z.number().int(),
  response_body: z.string().nullable().describe('The first 1 KB of the answer'),
  error: z.string().nullable(),
});
const deliveryView = z.object({
  id: z.uuid(),
  event_id: z.string(),
  event_type: z.string(),
  call_id: z.string().nullable(),
  event_created_at: z.string(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int(),
  next_attempt_at: z.string().nullable(),
  delivered_at: z.string().nullable(),
  last_status_code: z.number().int().nullable(),
  attempt_log: z.array(attemptView).describe('The latest attempts, newest first (at most 20)'),
});
const deliveriesQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).max(100_000).default(0),
  status: z.enum(['pending', 'delivered', 'failed']).optional(),
});
const replayed = z.object({ replayed: z.number().int() });
const datetime = z.iso.datetime({ offset: true });

export function webhookRoutes(app: App, deps: Deps): void {
  const common = { tags: ['webhooks'], security: [{ bearer: [] }] };
  const tenantOf = (request: Parameters<typeof principalOf>[0]) => principalOf(request).tenantId;

  app.post(
    '/api/v1/webhooks',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Add a webhook endpoint; its signing secret is returned only in this response',
        description:
          'Deliveries are signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`); see the ' +
          'README. The URL must reach a public address (checked now, and again at every delivery after DNS).',
        body: createBody,
        response: { 201: withSecret, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { endpoint, secret } = await deps.webhooks.create(tenantOf(request), request.body);
      return reply.status(201).send({ ...toView(endpoint), secret });
    },
  );

  app.get(
    '/api/v1/webhooks',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'The tenant’s webhook endpoints',
        response: { 200: z.object({ items: z.array(endpointView) }), ...errorResponses },
      },
    },
    async (request) => ({ items: (await deps.webhooks.list(tenantOf(request))).map(toView) }),
  );

  app.get(
    '/api/v1/webhooks/:id',
    {
      config: { auth: 'tenant' },
      schema: { ...common, summary: 'One webhook endpoint', params: idParams, response: { 200: endpointView, ...errorResponses } },
    },
    async (request) => toView(await deps.webhooks.get(tenantOf(request), request.params.id)),
  );

  app.patch(
    '/api/v1/webhooks/:id',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Change a webhook endpoint',
        description: 'Enabling an endpoint the platform disabled clears the flag; its pending deliveries resume.',
        params: idParams,
        body: patchBody,
        response: { 200: endpointView, ...errorResponses },
      },
    },
    async (request) => toView(await deps.webhooks.update(tenantOf(request), request.params.id, request.body)),
  );

  app.delete(
    '/api/v1/webhooks/:id',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Delete a webhook endpoint, its pending deliveries and its log',
        params: idParams,
        response: { 204: z.null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      await deps.webhooks.remove(tenantOf(request), request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/api/v1/webhooks/:id/rotate-secret',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Make a new signing secret and return it, this once',
        description:
          'For 24 hours deliveries carry two signatures (new and previous, space-separated in `webhook-signature`), so ' +
          'the receiver can switch secrets without refusing a delivery.',
        params: idParams,
        response: { 201: withSecret, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { endpoint, secret } = await deps.webhooks.rotateSecret(tenantOf(request), request.params.id);
      request.log.info({ endpointId: endpoint.id }, 'webhook secret rotated');
      return reply.status(201).send({ ...toView(endpoint), secret });
    },
  );

  app.post(
    '/api/v1/webhooks/:id/test',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Send a `ping` event to this endpoint',
        params: idParams,
        response: { 202: z.object({ event_id: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const eventId = await deps.webhooks.ping(tenantOf(request), request.params.id);
      return reply.status(202).send({ event_id: eventId });
    },
  );

  app.get(
    '/api/v1/webhooks/:id/deliveries',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'The delivery log: each delivery to this endpoint with its attempts',
        params: idParams,
        querystring: deliveriesQuery,
        response: { 200: page(deliveryView), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const { items, total } = await deps.webhooks.deliveries(tenantOf(request), request.params.id, q);
      return { items, total, limit: q.limit, offset: q.offset };
    },
  );

  app.post(
    '/api/v1/webhooks/deliveries/:id/replay',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Send one delivery again (same event id, fresh 24 h of retries)',
        params: idParams,
        response: { 202: replayed, ...errorResponses },
      },
    },
    async (request, reply) => {
      await deps.webhooks.replayDelivery(tenantOf(request), request.params.id);
      return reply.status(202).send({ replayed: 1 });
    },
  );

  app.post(
    '/api/v1/webhooks/:id/replay',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Send again every delivery to this endpoint of events published in [from, to)',
        description: 'At most 31 days and 10,000 deliveries (the oldest) per request; events of one call keep their order.',
        params: idParams,
        body: z.strictObject({ from: datetime, to: datetime }),
        response: { 202: replayed, ...errorResponses },
      },
    },
    async (request, reply) => {
      const n = await deps.webhooks.replayRange(
        tenantOf(request),
        request.params.id,
        new Date(request.body.from),
        new Date(request.body.to),
      );
      return reply.status(202).send({ replayed: n });
    },
  );
}
