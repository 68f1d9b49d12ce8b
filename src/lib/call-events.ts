// The catalog of call events (a call's audit trail, GET /api/v1/calls/{id}/events): every event type and the Zod
// schema of its data. CallService.event() takes only these names with these payloads, so tsc catches a wrong name
// or field; the calls route publishes the same schemas in /openapi.json. Names are `<subject>.<what happened>`;
// tenants read (and will subscribe to) them, so a name or field once published is not renamed: add, never change.
// Enums repeated from their owners (call statuses, tool statuses) are checked by tsc at each event(...) call: a
// value the owner adds that the catalog lacks does not compile.
import { z } from 'zod';
import { PROVIDER_FAILURES } from './provider-error.js';

const direction = z.enum(['inbound', 'outbound', 'web', 'chat']);
export const callStatus = z.enum(['queued', 'ringing', 'in_progress', 'completed', 'failed', 'busy', 'no_answer', 'canceled']);
const toolStatus = z.enum([
  'ok',
  'invalid_arguments',
  'unknown_tool',
  'http_error',
  'timeout',
  'unreachable',
  'refused',
  'cancelled',
  'error',
]);
const providerFailure = z.enum(PROVIDER_FAILURES);

/** A recording the service wrote itself (media streams, browser calls): its length and size. */
const localRecording = z.object({
  duration_ms: z.number().int(),
  bytes: z.number().int(),
  /** Where this part starts on the call's clock (a call picked up after a restart records after its earlier part). */
  offset_ms: z.number().int().optional(),
  /** True when this part was appended to a part stored earlier. */
  merged: z.literal(true).optional(),
});

/** A LiveKit room recorded by Egress. */
const egressRecording = z.object({
  egress_id: z.string(),
  location: z.string().optional(),
  filename: z.string().optional(),
  duration_ms: z.number().int().optional(),
  /** True when the file is in our recordings bucket, downloadable like any other recording. */
  downloadable: z.boolean(),
});

/** A LiveKit webhook event on the call's room, as LiveKit reported it (`livekit_event_id` is its delivery id). */
const liveKitWebhook = z.object({
  livekit_event_id: z.string(),
  room: z.string(),
  room_sid: z.string().optional(),
  participant_identity: z.string().optional(),
  participant_kind: z.string().optional(),
  egress_id: z.string().optional(),
  egress_status: z.string().optional(),
  egress_error: z.string().optional(),
  files: z.array(z.object({ filename: z.string(), location: z.string() })).optional(),
});

/** What a dropped reply had produced (turn.preemptive_discarded, turn.resumed): the session's `Waste` tally. */
const droppedReplyOutput = {
  llm_chars: z.number().int(),
  llm_tokens: z.number().int(),
  tts_chars: z.number().int(),
};

export const callEventSchemas = {
  'call.started': z.object({ direction }).describe('The call record was made (inbound, outbound, web or chat).'),
  'call.ended': z
    .object({
      status: callStatus,
      reason: z.string(),
      detail: z.string().optional().describe('Set when the sweeper ended the call: why it was considered gone.'),
    })
    .describe('The call ended, with its final status and why.'),
  'call.refused': z
    .object({ reason: z.string() })
    .describe(
      'The call may not run: tenant suspended or user deactivated (it ends failed), or no line free (reason `concurrency_limit` or `calls_at_capacity`: the caller heard that all lines are busy, it ends busy).',
    ),
  'turn.barge_in': z.object({ speech_ms: z.number(), voiced_ms: z.number() }).describe('The caller spoke over the agent, which stopped.'),
  'turn.forced': z
    .object({ reason: z.string(), words_ms_ago: z.number() })
    .describe('The caller’s turn was ended although the speech detector still heard speech (words had stopped coming).'),
  'turn.preemptive_discarded': z
    .object({
      reason: z.enum(['caller_resumed', 'agent_speaking', 'text_changed', 'context_changed', 'call_ended']),
      ...droppedReplyOutput,
      ms_prepared: z.number(),
    })
    .describe(
      'A reply prepared before the caller’s turn ended was dropped (the caller went on, the words changed): what the model had produced (tokens as reported, else estimated) and the speech characters synthesized for it (none: speech starts only once a turn has ended). Nothing of it was played or stored.',
    ),
  'turn.resumed': z
    .object({
      after_ms: z.number(),
      resumes: z.number().int(),
      ...droppedReplyOutput,
      ms_replying: z.number(),
    })
    .describe(
      'The caller went on after their turn ended (`after_ms` later), before any of the reply was heard: the reply was dropped and the turn goes on, stored once as one caller turn with all the words. What the model had produced (tokens as reported, else estimated) and the characters given to speech synthesis; `resumes`: times in a row (at most 3).',
    ),
  'dtmf.received': z.object({ digit: z.string() }).describe('A keypad digit from the caller.'),
  'tool.called': z
    .object({
      name: z.string(),
      arguments: z.record(z.string(), z.unknown()),
      status: toolStatus,
      duration_ms: z.number(),
      http_status: z.number().int().optional(),
    })
    .describe('The agent used a tool (built-in or the tenant’s HTTP tool); `http_status` is the tenant server’s answer.'),
  'transfer.requested': z.object({ to: z.string(), reason: z.string() }).describe('The agent or the API asked to transfer the caller.'),
  'transfer.connected': z.object({ to: z.string() }).describe('Twilio is dialling the transfer number in place of the agent.'),
  'transfer.failed': z.object({ to: z.string(), error: z.string() }).describe('The transfer could not be handed to Twilio.'),
  'hangup.requested': z.object({ reason: z.string() }).describe('The agent or the API asked to hang up.'),
  'provider.fallback': z
    .object({ stage: z.enum(['stt', 'llm', 'tts']), provider: z.string(), status: z.number().int().nullable(), reason: providerFailure })
    .describe('A provider failed during the call and the next one took over: its HTTP status and a short reason, never its own words.'),
  'provider.failed': z
    .object({ stage: z.enum(['stt', 'llm', 'tts']), provider: z.string(), status: z.number().int().nullable(), reason: providerFailure })
    .describe(
      'A provider failed with no engine left to take over: the call ended (speech-to-text) or went on without that reply (language model, text-to-speech). Its HTTP status and a short reason, never its own words.',
    ),
  'recording.started': z.object({ egress_id: z.string() }).describe('LiveKit’s Egress started recording the room.'),
  'recording.saved': z
    .union([localRecording, egressRecording])
    .describe('The call’s recording was stored (ours, or LiveKit Egress’s file).'),
  'recording.recovered': localRecording.describe('A recording left behind by a stopped instance, stored at start-up.'),
  'recording.failed': z
    .object({ error: z.string().nullable(), egress_id: z.string().optional(), egress_status: z.string().optional() })
    .describe('The recording could not be written or stored (or Egress failed).'),
  'recording.deleted': z
    .object({ reason: z.enum(['retention']) })
    .describe('The recording was deleted (the tenant’s retention setting); the call stays.'),
  'media.token_reused': z
    .object({ channel: z.enum(['twilio', 'browser']) })
    .describe('A media token was presented again: the second socket was refused.'),
  'media.policy_violation': z
    .object({ reason: z.string() })
    .describe('The caller’s media broke the policy (too fast, too big, malformed): the call ended failed.'),
  'twilio.connected': z
    .object({ mode: z.enum(['media_stream', 'livekit']) })
    .describe('Twilio connected the call: to our media stream, or to LiveKit over SIP.'),
  'twilio.status': z
    .object({ status: z.string(), sequence: z.string().nullable(), applied: z.boolean() })
    .describe('A Twilio status callback; `applied` is false when it came out of order or after the end.'),
  // LiveKit's webhook events that are recorded (telephony/livekit-webhook.ts, LIVEKIT_WEBHOOK_EVENTS).
  'livekit.room_started': liveKitWebhook.describe('LiveKit webhook: the call’s room started.'),
  'livekit.room_finished': liveKitWebhook.describe('LiveKit webhook: the call’s room finished (the call ends).'),
  'livekit.participant_joined': liveKitWebhook.describe('LiveKit webhook: someone joined the call’s room.'),
  'livekit.participant_left': liveKitWebhook.describe('LiveKit webhook: someone left the call’s room.'),
  'livekit.egress_ended': liveKitWebhook.describe('LiveKit webhook: the room’s recording (Egress) ended.'),
  'livekit.sip_answered': z
    .object({ room: z.string(), sip_call_id: z.string().nullable(), handed_over: z.boolean() })
    .describe('A phone reached the tenant’s SIP room and the agent answers; `handed_over` when Twilio passed the call on.'),
  'livekit.dialed': z
    .object({ trunk_id: z.string(), sip_call_id: z.string(), participant_identity: z.string() })
    .describe('LiveKit is dialling the outbound call’s number.'),
  'livekit.dial_failed': z.object({ error: z.string() }).describe('LiveKit could not dial the outbound call’s number.'),
  'livekit.agent_failed': z
    .object({ stage: z.enum(['join', 'run']), error: z.string() })
    .describe('The agent could not join the room, or its conversation failed.'),
} as const;

export type CallEventType = keyof typeof callEventSchemas;
/** What event(type, data) takes for that type. */
export type CallEventData<T extends CallEventType> = z.input<(typeof callEventSchemas)[T]>;

export const CALL_EVENT_TYPES = Object.keys(callEventSchemas) as [CallEventType, ...CallEventType[]];

/** Names used before the catalog (stored rows keep them): read back under today's name. */
export const LEGACY_CALL_EVENT_NAMES: ReadonlyMap<string, CallEventType> = new Map([
  ['barge_in', 'turn.barge_in'],
  ['dtmf', 'dtmf.received'],
]);

export const isCallEventType = (type: string): type is CallEventType => Object.hasOwn(callEventSchemas, type);

/**
 * The schema of a stored event as the API shows it, one variant per type (a discriminated union on `type`): the
 * enum of types and each one's data, for /openapi.json and the response check. Data is read leniently (fields
 * added later stay visible): the catalog above is strict for writing.
 */
export function callEventView<Extra extends z.ZodRawShape>(extra: Extra) {
  const lenient = (schema: z.ZodType): z.ZodType =>
    schema instanceof z.ZodObject
      ? schema.loose()
      : schema instanceof z.ZodUnion
        ? z.union(schema.options.map((o) => lenient(o as z.ZodType)))
        : schema;
  const variants = CALL_EVENT_TYPES.map((type) =>
    z
      .object({ type: z.literal(type), ...extra, data: lenient(callEventSchemas[type]) })
      .describe(`\`${type}\`: ${callEventSchemas[type].description ?? ''}`),
  );
  return z.discriminatedUnion('type', variants as [(typeof variants)[number], ...(typeof variants)[number][]]);
}
