// /api/v1/calls: calls and chat sessions with their transcript (citations, per-turn latencies) and events.
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { callEventView, LEGACY_CALL_EVENT_NAMES } from '../../lib/call-events.js';
import type { CallAnalysis } from '../../services/call-analyses.js';
import { CALL_STATUSES, type Call, type CallCursor, type CallEvent, channelOf, type Turn } from '../../services/calls.js';
import type { App } from '../context.js';
import { principalOf } from '../auth.js';
import { callCostView, errorEnvelope, errorResponses, idParams, iso, page, pageQuery } from '../schemas.js';
import { E164 } from '../../services/phone-numbers.js';
import { agentOverridesSchema } from '../../services/settings-schema.js';
import { callMetadataSchema, callVariablesSchema } from '../../lib/call-input.js';
import { BROWSER_STREAM_PATH } from '../../telephony/telephony.js';
import { webCallServerMessage } from '../../lib/live-messages.js';
import { publicBaseUrl } from '../public-url.js';
import { AppError, notFound } from '../../lib/errors.js';
import { citationSchema } from '../../lib/citation.js';

const direction = z.enum(['inbound', 'outbound', 'web', 'chat']);
const channel = z.enum(['phone', 'web', 'chat']);
export const callView = z.object({
  id: z.uuid(),
  direction,
  /** phone (inbound and outbound), web (browser audio) or chat (text). */
  channel,
  status: z.string(),
  from_number: z.string().nullable(),
  to_number: z.string().nullable(),
  /** The tenant's number the call came in on or went out from (null for web and chat, or once the number is deleted). */
  phone_number_id: z.uuid().nullable(),
  started_at: z.string().nullable(),
  answered_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  /** Why it ended (the `reason` of its call.ended event); null while live, and for calls ended before it was kept. */
  ended_reason: z.string().nullable(),
  duration_ms: z.number().int().nullable(),
  /** True once a recording is stored and downloadable (GET /api/v1/calls/{id}/recording). */
  recording_available: z.boolean(),
  recording_duration_ms: z.number().int().nullable(),
  /** The `metadata` given when the call was started ({} when none). */
  metadata: z.record(z.string(), z.unknown()),
  /** Per metric (ms): median and worst over the call's turns. */
  metrics: z.record(z.string(), z.object({ p50: z.number(), max: z.number(), n: z.number().int() })),
  created_at: z.string(),
});
const toCall = (c: Call): z.infer<typeof callView> => ({
  id: c.id,
  direction: c.direction,
  channel: channelOf(c.direction),
  status: c.status,
  from_number: c.fromNumber,
  to_number: c.toNumber,
  phone_number_id: c.phoneNumberId,
  started_at: iso(c.startedAt),
  answered_at: iso(c.answeredAt),
  ended_at: iso(c.endedAt),
  ended_reason: c.endedReason,
  duration_ms: c.durationMs,
  recording_available: c.recordingKey !== null,
  recording_duration_ms: c.recordingKey !== null ? c.recordingMs : null,
  metadata: c.extraData,
  metrics: c.metrics as z.infer<typeof callView>['metrics'],
  created_at: c.createdAt.toISOString(),
});

/** A date (midnight UTC) or a date-time with its offset. */
const instant = z.union([z.iso.date(), z.iso.datetime({ offset: true })]);
const listQuery = pageQuery.extend({
  direction: direction.optional(),
  channel: channel.optional(),
  status: z.enum(CALL_STATUSES).optional(),
  created_after: instant.optional().describe('Calls made at or after this date (UTC) or date-time'),
  created_before: instant.optional().describe('Calls made before this date (UTC) or date-time'),
  phone_number: z.string().regex(E164, 'must be an E.164 number such as +14155550100').optional().describe('Calls from or to this number'),
  phone_number_id: z.uuid().optional().describe('Calls on this one of the tenant’s numbers'),
  q: z
    .string()
    .trim()
    .min(1)
    .max(200)
    .optional()
    .describe('Words in the transcript (English full text: every word, stemmed, in any order)'),
  cursor: z.string().max(200).optional().describe('`next_cursor` of the previous page (then `offset` must be 0)'),
});

/** The opaque cursor: the last call's position (created_at to the microsecond, and id), base64url JSON. */
const encodeCursor = (c: CallCursor) => Buffer.from(JSON.stringify([c.at, c.id])).toString('base64url');
const cursorShape = z.tuple([z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/), z.uuid()]);
function decodeCursor(cursor: string): CallCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const ok = cursorShape.safeParse(parsed);
  if (!ok.success)
    throw new AppError('validation_error', 'querystring.cursor: not a cursor this API gave', [
      { field: 'querystring.cursor', message: 'not a cursor this API gave' },
    ]);
  return { at: ok.data[0], id: ok.data[1] };
}

/** The post-call analysis (analysis/): its job's state and, once done, the result. */
const analysisView = z
  .object({
    status: z.enum(['queued', 'running', 'done', 'failed']),
    /** openai, anthropic, openai_compatible or local (once done). */
    engine: z.string().nullable(),
    model: z.string().nullable(),
    /** Why the last attempt failed (a provider's status, the model's answer not matching the schema). */
    error: z.string().nullable(),
    attempts: z.number().int(),
    result: z
      .object({
        summary: z.string(),
        outcome: z.string().nullable(),
        success: z.object({ passed: z.boolean().nullable(), reason: z.string() }),
        extracted: z.record(z.string(), z.unknown()),
        /** True when the engine did only part of it (the local engine: no rubric, only the fields its rules find). */
        partial: z.boolean(),
        /** The extracted fields found. */
        filled: z.array(z.string()),
        notes: z.string().optional(),
      })
      .nullable(),
    queued_at: z.string(),
    completed_at: z.string().nullable(),
  })
  .meta({ id: 'CallAnalysis' });
const toAnalysis = (a: CallAnalysis): z.infer<typeof analysisView> => ({
  status: a.status,
  engine: a.engine,
  model: a.model,
  error: a.error,
  attempts: a.attempts,
  result: a.status === 'done' ? (a.result as z.infer<typeof analysisView>['result']) : null,
  queued_at: a.createdAt.toISOString(),
  completed_at: iso(a.completedAt),
});
const callDetailView = callView.extend({
  /** Null until the call has ended and its analysis was queued (tenants with analysis enabled, or a POST .../analysis). */
  analysis: analysisView.nullable(),
  /** What the call used and cost (services/usage.ts), written as it goes and complete once it has ended. */
  ...callCostView.shape,
});

const turnView = z.object({
  seq: z.number().int(),
  speaker: z.enum(['caller', 'agent', 'system']),
  text: z.string(),
  start_ms: z.number().int().nullable(),
  end_ms: z.number().int().nullable(),
  interrupted: z.boolean(),
  /** `text` ends with the words heard of a sentence cut by a barge-in (estimated from the audio played). */
  truncated: z.boolean(),
  citations: z.array(citationSchema),
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
  truncated: t.truncated,
  citations: t.citations,
  metrics: t.metrics,
  created_at: t.createdAt.toISOString(),
});

/** An event of the catalog (lib/call-events.ts): its type, when, and its data (each type's in /openapi.json). */
const eventView = callEventView({ occurred_at: z.string() }).meta({ id: 'CallEvent' });
/** Rows written before the catalog carry a few older names: shown under today's. */
const toEvent = (e: CallEvent) =>
  ({ type: LEGACY_CALL_EVENT_NAMES.get(e.type) ?? e.type, occurred_at: e.occurredAt.toISOString(), data: e.extraData }) as z.infer<
    typeof eventView
  >;

export function callRoutes(app: App, deps: Deps): void {
  const common = { tags: ['calls'], security: [{ bearer: [] }] };

  app.get(
    '/api/v1/calls',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'Calls and chat sessions, newest first',
        description:
          'Filters combine (all must hold); `total` counts every call that matches. Page with `limit` and `offset`, or ' +
          'with `cursor`: pass the `next_cursor` of a page to get the next one (null on the last page); calls made ' +
          'meanwhile do not shift it.',
        querystring: listQuery,
        response: { 200: page(callView).extend({ next_cursor: z.string().nullable() }), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      if (q.cursor && q.offset)
        throw new AppError('validation_error', 'querystring.offset: must be 0 with a cursor', [
          { field: 'querystring.offset', message: 'must be 0 with a cursor' },
        ]);
      const { items, total, nextAfter } = await deps.calls.list(
        principalOf(request).tenantId,
        { limit: q.limit, offset: q.offset, after: q.cursor ? decodeCursor(q.cursor) : undefined },
        {
          direction: q.direction,
          channel: q.channel,
          status: q.status,
          createdAfter: q.created_after ? new Date(q.created_after) : undefined,
          createdBefore: q.created_before ? new Date(q.created_before) : undefined,
          phoneNumber: q.phone_number,
          phoneNumberId: q.phone_number_id,
          text: q.q,
        },
      );
      return {
        items: items.map(toCall),
        total,
        limit: q.limit,
        offset: q.offset,
        next_cursor: nextAfter ? encodeCursor(nextAfter) : null,
      };
    },
  );

  app.get(
    '/api/v1/calls/:id',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'One call: status, timing, metrics summary, post-call analysis, usage and cost',
        params: idParams,
        response: { 200: callDetailView, ...errorResponses },
      },
    },
    async (request) => {
      const { tenantId } = principalOf(request);
      const call = await deps.calls.get(tenantId, request.params.id);
      const [analysis, cost] = await Promise.all([deps.analyses.get(tenantId, call.id), deps.usage.callCost(tenantId, call.id)]);
      return { ...toCall(call), analysis: analysis && toAnalysis(analysis), ...cost };
    },
  );

  app.delete(
    '/api/v1/calls/:id',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Delete an ended call with its transcript, events, analysis, webhook events and recording',
        description:
          'The recording is deleted from storage first; then the call, its transcript turns, audit events, analysis and ' +
          'its webhook events (with their deliveries and attempts: a pending delivery is not sent) in one transaction. ' +
          'The usage ledger keeps its rows (the usage happened). 409 call_active while the call is live: hang it up first.',
        params: idParams,
        response: { 204: z.null().describe('Deleted'), ...errorResponses },
      },
    },
    async (request, reply) => {
      await deps.callDeletion.delete(principalOf(request).tenantId, request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/v1/calls/:id/analysis',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'The call’s post-call analysis: summary, outcome, success against the rubric, extracted fields',
        description:
          '404 when the call is not the tenant’s or has no analysis (yet): analysis runs after a call ends, for tenants with `analysis.enabled`.',
        params: idParams,
        response: { 200: analysisView, ...errorResponses },
      },
    },
    async (request) => {
      const analysis = await deps.analyses.get(principalOf(request).tenantId, request.params.id);
      if (!analysis) throw notFound('Analysis');
      return toAnalysis(analysis);
    },
  );

  app.post(
    '/api/v1/calls/:id/analysis',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Run the call’s analysis again (after changing the rubric, outcomes or extraction schema)',
        description:
          'Queues the analysis with the current settings (even when `analysis.enabled` is off); `call.analyzed` is sent again when it is done. 409 conflict while the call is live.',
        params: idParams,
        response: { 202: analysisView, ...errorResponses },
      },
    },
    async (request, reply) =>
      reply.status(202).send(toAnalysis(await deps.analyses.rerun(principalOf(request).tenantId, request.params.id))),
  );

  app.get(
    '/api/v1/calls/:id/transcript',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'Transcript turns in order',
        params: idParams,
        response: { 200: z.object({ items: z.array(turnView) }), ...errorResponses },
      },
    },
    async (request) => ({ items: (await deps.calls.transcript(principalOf(request).tenantId, request.params.id)).map(toTurn) }),
  );

  app.get(
    '/api/v1/calls/:id/events',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'The call’s audit trail',
        params: idParams,
        response: { 200: z.object({ items: z.array(eventView) }), ...errorResponses },
      },
    },
    async (request) => ({ items: (await deps.calls.events(principalOf(request).tenantId, request.params.id)).map(toEvent) }),
  );

  // ---- live calls: outbound phone calls, browser calls, hang-up and transfer ----

  app.post(
    '/api/v1/calls',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Place an outbound phone call (Twilio); the agent speaks first when it is answered',
        description:
          'From `from_number_id` (one of the tenant’s numbers) or the tenant’s oldest active number. `overrides` change the agent for this call only. ' +
          'The call starts `queued`; Twilio’s status callbacks move it on. 422 call_rejected when Twilio refuses the call (its code and message), 502 twilio_auth_failed when it refuses the platform’s credentials, 502 twilio_unreachable when it cannot be reached, 503 twilio_not_configured without Twilio. ' +
          'Like every new call it needs a place: 429 concurrency_limit past the tenant’s concurrent calls across all instances (its cap set by the platform admin, else MAX_LIVE_CALLS_PER_TENANT), 503 calls_at_capacity past the instance’s (MAX_LIVE_CALLS), both with Retry-After.',
        body: z.strictObject({
          to: z.string().regex(E164, 'must be an E.164 number such as +14155550100'),
          from_number_id: z.uuid().optional(),
          overrides: agentOverridesSchema.optional(),
          metadata: callMetadataSchema.optional(),
          variables: callVariablesSchema.optional(),
        }),
        response: { 201: callView, ...errorResponses, 503: errorEnvelope },
      },
    },
    async (request, reply) => {
      const { to, from_number_id: fromNumberId, overrides, metadata, variables } = request.body;
      const call = await deps.telephony.placeCall(
        principalOf(request).tenantId,
        { to, fromNumberId, overrides, metadata, variables },
        publicBaseUrl(deps, request),
      );
      return reply.status(201).send(toCall(call));
    },
  );

  app.post(
    '/api/v1/calls/web',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'Start a browser call: a call id and a short-lived token for its audio websocket',
        description:
          'Open `stream_url` (a websocket) within `expires_at`. Both ways: binary messages of 16 kHz 16-bit little-endian mono PCM. ' +
          'Text messages from the browser: `{"type":"dtmf","digit"}`, `{"type":"end"}`; from us: `{"type":"mark","name"}` after each sentence, ' +
          '`{"type":"clear"}` when the caller interrupts (drop what is buffered), `{"type":"end","reason"}` when the call ends. ' +
          'The token opens one websocket. Audio is taken in real time: up to 1.5 s ahead of the wall clock, the excess dropped; a client ' +
          'sending much faster, or flooding messages, gets `{"type":"error","error":{"code":"media_policy"}}` and close code 1008.' +
          ' ' +
          '429 concurrency_limit past the tenant’s concurrent calls, 503 calls_at_capacity past the instance’s, both with Retry-After; a call whose websocket does not open in time ends `failed` (no media).',
        body: z
          .strictObject({
            overrides: agentOverridesSchema.optional(),
            metadata: callMetadataSchema.optional(),
            variables: callVariablesSchema.optional(),
          })
          .nullish(),
        response: {
          201: z.object({
            call_id: z.uuid(),
            token: z.string(),
            stream_url: z.string(),
            sample_rate: z.literal(16000),
            expires_at: z.string(),
          }),
          ...errorResponses,
          503: errorEnvelope,
        },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const { call, token, expiresAt } = await deps.telephony.startWebCall(p.tenantId, p.kind === 'user' ? p.userId : undefined, {
        overrides: request.body?.overrides,
        metadata: request.body?.metadata,
        variables: request.body?.variables,
      });
      const streamUrl = `${publicBaseUrl(deps, request).replace(/^http/, 'ws')}${BROWSER_STREAM_PATH}?token=${encodeURIComponent(token)}`;
      return reply
        .status(201)
        .send({ call_id: call.id, token, stream_url: streamUrl, sample_rate: 16000 as const, expires_at: expiresAt.toISOString() });
    },
  );

  app.get(
    BROWSER_STREAM_PATH,
    {
      websocket: true,
      config: { auth: 'public' },
      schema: {
        ...common,
        summary: 'A browser call’s audio websocket (see POST /api/v1/calls/web); the token in the query names the call',
        description:
          'Binary messages: 16 kHz 16-bit mono PCM both ways. Text messages from the browser: {"type":"dtmf","digit"} and ' +
          '{"type":"end"}; from the service: WebCallServerMessage (the 101 response below describes them).',
        querystring: z.object({ token: z.string().max(2000) }),
        response: { 101: webCallServerMessage },
      },
    },
    (socket, request) => {
      void deps.telephony.acceptBrowser(socket, request.query.token).catch((err: unknown) => app.log.error({ err }, 'browser call failed'));
    },
  );

  app.post(
    '/api/v1/calls/:id/hangup',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'Hang up a live call (wherever its audio is handled)',
        params: idParams,
        response: { 202: z.object({ status: z.literal('ending') }), ...errorResponses },
      },
    },
    async (request, reply) => {
      await deps.telephony.hangup(principalOf(request).tenantId, request.params.id);
      return reply.status(202).send({ status: 'ending' as const });
    },
  );

  app.post(
    '/api/v1/calls/:id/transfer',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Transfer a live phone call to a person',
        params: idParams,
        body: z.strictObject({ to: z.string().regex(E164, 'must be an E.164 number such as +14155550100') }),
        response: { 202: z.object({ status: z.literal('transferring') }), ...errorResponses },
      },
    },
    async (request, reply) => {
      await deps.telephony.transfer(principalOf(request).tenantId, request.params.id, request.body.to);
      return reply.status(202).send({ status: 'transferring' as const });
    },
  );
}
