// /api/v1/voice/livekit: web calls over LiveKit (a call row, its room, a join token, and the agent joining it),
// outbound phone calls through the tenant's LiveKit SIP trunk, the tenant's rooms, SIP numbers connected to LiveKit;
// and /api/v1/webhooks/livekit, where LiveKit reports what happened in the rooms (recordings included).
// Everything is tenant-scoped by room name; without LiveKit configured every route answers 503.
import { z } from 'zod';
import { E164 } from '../../services/phone-numbers.js';
import { CALLER_IDENTITY, type LiveKitRoom, type LiveKitService } from '../../telephony/livekit.js';
import { callInRoom } from '../../telephony/livekit-webhook.js';
import type { App, HttpDeps } from '../context.js';
import { principalOf } from '../auth.js';
import { AppError } from '../../lib/errors.js';
import { errorEnvelope, errorResponses } from '../schemas.js';

/** Long enough to open the page and join; LiveKit itself refreshes the token of a connected participant. */
const CALLER_TOKEN_TTL_MS = 15 * 60_000;

const roomView = z.object({
  name: z.string(),
  sid: z.string(),
  call_id: z.uuid().nullable(),
  num_participants: z.number().int(),
  created_at: z.string(),
});
const toRoomView = (r: LiveKitRoom): z.infer<typeof roomView> => ({
  name: r.name,
  sid: r.sid,
  call_id: r.callId ?? null,
  num_participants: r.numParticipants,
  created_at: r.createdAt.toISOString(),
});

const unavailable = { 502: errorEnvelope, 503: errorEnvelope };

function liveKitOf(deps: HttpDeps): LiveKitService {
  if (!deps.livekit)
    throw new AppError(
      'livekit_not_configured',
      'LiveKit is not configured on this server (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET)',
    );
  return deps.livekit;
}

export async function liveKitRoutes(app: App, deps: HttpDeps): Promise<void> {
  const common = { tags: ['livekit'], security: [{ bearer: [] }] };
  // Built and stopped by the composition root (deps.ts), like every long-lived object.
  const agent = deps.livekitAgent;

  /** A web call: the call row, then its room; a room that cannot be made leaves the call failed, not dangling. */
  const startWebCall = async (tenantId: string, userId: string | undefined) => {
    const lk = liveKitOf(deps);
    // At a monthly cap: 402 budget_exceeded, before anything is created.
    await deps.usage.assertWithinBudget(tenantId);
    const lease = await deps.admission.admit(tenantId, 'web');
    const call = await deps.calls.start(tenantId, { direction: 'web', userId }).catch((err: unknown) => {
      lease.release();
      throw err;
    });
    // Kept until the agent runs the call (or the caller does not come, or the connect timeout).
    deps.admission.reserve(call.id, lease);
    try {
      return { lk, call, room: await lk.createRoom(tenantId, call.id) };
    } catch (err) {
      deps.admission.cancel(call.id);
      await deps.calls.end(tenantId, call.id, 'failed', 'livekit room could not be created');
      throw err;
    }
  };

  app.post(
    '/api/v1/voice/livekit/token',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'Start a web call: a call record, its LiveKit room, and a token for the browser to join it',
        description:
          'The token joins this one room only, publishing a microphone and subscribing to the agent; connect to `url` with it. ' +
          'The agent joins the room in the background and greets the caller once the caller is in; a call whose agent cannot ' +
          'join ends `failed` with a `livekit.agent_failed` event. With `call.recording` on, LiveKit records the room (Egress).',
        // A POST without a body arrives as null.
        body: z.strictObject({ name: z.string().trim().min(1).max(100).optional().describe('Display name in the room') }).nullish(),
        response: {
          201: z.object({ call_id: z.uuid(), room: z.string(), token: z.string(), url: z.string(), expires_at: z.string() }),
          ...unavailable,
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const { lk, call, room } = await startWebCall(p.tenantId, p.kind === 'user' ? p.userId : undefined);
      const t = await lk.callerToken(p.tenantId, call.id, CALLER_IDENTITY, CALLER_TOKEN_TTL_MS, request.body?.name);
      // The browser joins at its own pace: the response does not wait for the agent.
      agent.joinWebCall(lk, p.tenantId, call.id);
      return reply
        .status(201)
        .send({ call_id: call.id, room: room.name, token: t.token, url: lk.clientUrl, expires_at: t.expiresAt.toISOString() });
    },
  );

  app.post(
    '/api/v1/voice/livekit/calls',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Place an outbound phone call through one of the tenant’s LiveKit SIP trunks; the agent speaks first',
        description:
          'The trunk must be an outbound trunk the operator gave to this tenant (metadata `{"tenant_id": "<tenant id>"}`); any ' +
          'other is 404. The call gets its room, the agent joins it, then LiveKit dials `to` from the trunk’s first number. ' +
          'The response comes once the number is being dialled; the call is `ringing`, then `in_progress` once answered, or ' +
          'ends `no_answer`. A number LiveKit refuses is 422 `call_rejected`.',
        body: z.strictObject({
          to: z.string().regex(E164, 'must be an E.164 number such as +14155550100'),
          trunk_id: z.string().trim().min(1).max(100).describe('LiveKit outbound trunk id (ST_...)'),
        }),
        response: {
          201: z.object({ call_id: z.uuid(), room: z.string(), sip_call_id: z.string(), status: z.literal('ringing') }),
          ...unavailable,
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const lk = liveKitOf(deps);
      const p = principalOf(request);
      // Before anything is created: another tenant's trunk leaves no trace, not even a failed call.
      const trunk = await lk.outboundTrunk(p.tenantId, request.body.trunk_id);
      // The trunk's numbers are the caller ids its provider lets us present; wildcards and SIP users are not numbers.
      const fromNumber = trunk.numbers.find((n) => E164.test(n));
      await deps.usage.assertWithinBudget(p.tenantId);
      const lease = await deps.admission.admit(p.tenantId, 'outbound');
      const call = await deps.calls
        .open(p.tenantId, {
          direction: 'outbound',
          status: 'queued',
          fromNumber: fromNumber ?? '',
          toNumber: request.body.to,
          userId: p.kind === 'user' ? p.userId : undefined,
        })
        .catch((err: unknown) => {
          lease.release();
          throw err;
        });
      deps.admission.reserve(call.id, lease);
      const placed = await agent.placeCall(lk, p.tenantId, call.id, { to: request.body.to, trunkId: trunk.trunkId, fromNumber });
      return reply.status(201).send({ call_id: call.id, room: placed.room, sip_call_id: placed.sipCallId, status: 'ringing' as const });
    },
  );

  app.get(
    '/api/v1/voice/livekit/rooms',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'The tenant’s active LiveKit rooms',
        response: { 200: z.object({ items: z.array(roomView) }), ...unavailable, ...errorResponses },
      },
    },
    async (request) => {
      const { tenantId } = principalOf(request);
      const rooms = await liveKitOf(deps).listRooms(tenantId);
      // A room of the SIP dispatch rule is not named after its call: its call is found by the room.
      return {
        items: await Promise.all(rooms.map(async (r) => toRoomView({ ...r, callId: await callInRoom(deps.calls, tenantId, r.name) }))),
      };
    },
  );

  app.post(
    '/api/v1/voice/livekit/rooms',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'Create a room for a new web call (without a join token)',
        response: { 201: z.object({ call_id: z.uuid(), room: roomView }), ...unavailable, ...errorResponses },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const { call, room } = await startWebCall(p.tenantId, p.kind === 'user' ? p.userId : undefined);
      return reply.status(201).send({ call_id: call.id, room: toRoomView(room) });
    },
  );

  app.delete(
    '/api/v1/voice/livekit/rooms/:name',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Close a room: everyone in it is disconnected and its call ends',
        params: z.strictObject({ name: z.string().min(1).max(256) }),
        response: { 204: z.null(), ...unavailable, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      await liveKitOf(deps).deleteRoom(tenantId, request.params.name);
      // LiveKit's room_finished webhook would end the call too; not every deployment has webhooks set up.
      const callId = await callInRoom(deps.calls, tenantId, request.params.name);
      if (callId) {
        deps.admission.cancel(callId);
        await deps.calls.end(tenantId, callId, 'completed', 'livekit room deleted');
      }
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/api/v1/voice/livekit/sip',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Connect the tenant’s phone numbers to LiveKit: an inbound SIP trunk and a dispatch rule (a room per call)',
        description: 'Each number must be one of the tenant’s active phone numbers. Point the carrier’s SIP trunk at `sip_uri`.',
        body: z.strictObject({ numbers: z.array(z.string().regex(E164, 'must be an E.164 number such as +14155550100')).min(1).max(50) }),
        response: {
          201: z.object({
            trunk_id: z.string(),
            dispatch_rule_id: z.string(),
            numbers: z.array(z.string()),
            room_prefix: z.string(),
            sip_uri: z.string().nullable(),
          }),
          ...unavailable,
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const lk = liveKitOf(deps);
      const { tenantId } = principalOf(request);
      const numbers = [...new Set(request.body.numbers)];
      // Only numbers this tenant holds: connecting another tenant's number would send its callers here. Another
      // tenant's number and an unknown one get the same answer.
      const details = [];
      for (const [i, n] of numbers.entries()) {
        const owner = await deps.phoneNumbers.findForInbound(n);
        if (owner?.tenantId !== tenantId)
          details.push({ field: `body.numbers.${i}`, message: 'is not an active phone number of this tenant' });
      }
      if (details.length) throw new AppError('validation_error', details.map((d) => `${d.field}: ${d.message}`).join('; '), details);
      const s = await lk.provisionSip(tenantId, numbers);
      return reply.status(201).send({
        trunk_id: s.trunkId,
        dispatch_rule_id: s.dispatchRuleId,
        numbers: s.numbers,
        room_prefix: s.roomPrefix,
        sip_uri: s.sipUri ?? null,
      });
    },
  );

  // The webhook needs the exact bytes LiveKit signed, so in its own scope JSON bodies stay raw.
  await app.register(async (scope) => {
    scope.removeContentTypeParser(['application/json']);
    scope.addContentTypeParser(['application/json', 'application/webhook+json'], { parseAs: 'buffer' }, (_request, body, done) =>
      done(null, body),
    );
    (scope as App).post(
      '/api/v1/webhooks/livekit',
      {
        config: { auth: 'public', rateLimit: 'signed' },
        schema: {
          tags: ['livekit', 'webhooks'],
          summary: 'LiveKit webhook receiver (signed by LiveKit with the API secret)',
          description:
            'Verified like LiveKit’s WebhookReceiver: `Authorization` is a JWT from our API key whose `sha256` claim is the ' +
            'hash of the body. Room, participant and egress events of a call’s room are recorded on that call; ' +
            '`room_finished` ends it; `egress_ended` also records `recording.saved` (with the file’s location) or ' +
            '`recording.failed`. A phone (participant kind SIP) joining a room of a tenant’s SIP dispatch rule is answered: ' +
            'its call is made (or, handed over by Twilio, found) and the agent joins. Events for rooms that are not a call ' +
            'of ours are acknowledged and ignored.',
          response: {
            200: z.object({ received: z.literal(true), recorded: z.boolean() }),
            400: errorEnvelope,
            403: errorEnvelope,
            429: errorEnvelope,
            503: errorEnvelope,
          },
        },
      },
      async (request, reply) => {
        const lk = liveKitOf(deps);
        const raw = Buffer.isBuffer(request.body) ? request.body.toString('utf8') : '';
        const event = await lk.verifyWebhook(raw, request.headers.authorization).catch(async (err: unknown) => {
          if (err instanceof AppError && err.code === 'invalid_signature')
            await deps.rateLimiter.perIp(reply, request.ip, deps.config.rateLimits.perIpPerMinute);
          throw err;
        });
        const recorded = await deps.livekitWebhook.handle(lk, event);
        request.log.info({ event: event.event, eventId: event.id, recorded }, 'livekit webhook');
        return { received: true as const, recorded };
      },
    );
  });
}
