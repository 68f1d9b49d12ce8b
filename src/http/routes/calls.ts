// /api/v1/calls: calls and chat sessions with their transcript (citations, per-turn latencies) and events.
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import type { Call, CallEvent, Turn } from '../../services/calls.js';
import type { App } from '../app.js';
import { principalOf } from '../auth.js';
import { errorResponses, idParams, iso, page, pageQuery } from '../schemas.js';

const direction = z.enum(['inbound', 'outbound', 'web', 'chat']);
export const callView = z.object({
  id: z.uuid(),
  direction,
  status: z.string(),
  from_number: z.string().nullable(),
  to_number: z.string().nullable(),
  started_at: z.string().nullable(),
  answered_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  duration_ms: z.number().int().nullable(),
  /** Per metric (ms): median and worst over the call's turns. */
  metrics: z.record(z.string(), z.object({ p50: z.number(), max: z.number(), n: z.number().int() })),
  created_at: z.string(),
});
const toCall = (c: Call): z.infer<typeof callView> => ({
  id: c.id,
  direction: c.direction,
  status: c.status,
  from_number: c.fromNumber,
  to_number: c.toNumber,
  started_at: iso(c.startedAt),
  answered_at: iso(c.answeredAt),
  ended_at: iso(c.endedAt),
  duration_ms: c.durationMs,
  metrics: c.metrics as z.infer<typeof callView>['metrics'],
  created_at: c.createdAt.toISOString(),
});

const turnView = z.object({
  seq: z.number().int(),
  speaker: z.enum(['caller', 'agent', 'system']),
  text: z.string(),
  start_ms: z.number().int().nullable(),
  end_ms: z.number().int().nullable(),
  interrupted: z.boolean(),
  citations: z.array(z.string()),
  metrics: z.record(z.string(), z.number()),
  created_at: z.string(),
});
const toTurn = (t: Turn): z.infer<typeof turnView> => ({
  seq: t.seq,
  speaker: t.speaker,
  text: t.text,
  start_ms: t.startMs,
  end_ms: t.endMs,
  interrupted: t.interrupted,
  citations: t.citations,
  metrics: t.metrics,
  created_at: t.createdAt.toISOString(),
});

const eventView = z.object({ type: z.string(), occurred_at: z.string(), data: z.record(z.string(), z.unknown()) });
const toEvent = (e: CallEvent): z.infer<typeof eventView> => ({ type: e.type, occurred_at: e.occurredAt.toISOString(), data: e.extraData });

export function callRoutes(app: App, deps: Deps): void {
  const common = { tags: ['calls'], security: [{ bearer: [] }] };

  app.get(
    '/api/v1/calls',
    {
      config: { auth: 'tenant' },
      schema: { ...common, summary: 'Calls and chat sessions, newest first', querystring: pageQuery.extend({ direction: direction.optional() }), response: { 200: page(callView), ...errorResponses } },
    },
    async (request) => {
      const { direction: d, ...p } = request.query;
      const { items, total } = await deps.calls.list(principalOf(request).tenantId, p, { direction: d });
      return { items: items.map(toCall), total, ...p };
    },
  );

  app.get(
    '/api/v1/calls/:id',
    { config: { auth: 'tenant' }, schema: { ...common, summary: 'One call: status, timing, metrics summary', params: idParams, response: { 200: callView, ...errorResponses } } },
    async (request) => toCall(await deps.calls.get(principalOf(request).tenantId, request.params.id)),
  );

  app.get(
    '/api/v1/calls/:id/transcript',
    { config: { auth: 'tenant' }, schema: { ...common, summary: 'Transcript turns in order', params: idParams, response: { 200: z.object({ items: z.array(turnView) }), ...errorResponses } } },
    async (request) => ({ items: (await deps.calls.transcript(principalOf(request).tenantId, request.params.id)).map(toTurn) }),
  );

  app.get(
    '/api/v1/calls/:id/events',
    { config: { auth: 'tenant' }, schema: { ...common, summary: 'The call’s audit trail', params: idParams, response: { 200: z.object({ items: z.array(eventView) }), ...errorResponses } } },
    async (request) => ({ items: (await deps.calls.events(principalOf(request).tenantId, request.params.id)).map(toEvent) }),
  );
}
