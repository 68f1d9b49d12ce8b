// What a call tells its caller's screen as it happens (the web-call websocket's JSON text messages from the server,
// next to `mark`, `clear`, `end` and `error`): the caller's words as recognised, the agent's sentences as spoken, the
// agent's state, and each answered turn's latencies. One Zod schema per message; the README's web-call protocol
// lists them. Not stored: the transcript, its latencies and the call events (lib/call-events.ts) are the record, and
// `caller.final` and `turn.latency` carry exactly what is written there (CallSession emits both from the same turn).
import { z } from 'zod';

const ms = z.number().int().nonnegative();
/** A stage's duration as stored with the turn (ms, to a tenth). */
const stage = z.number().nonnegative();

export const liveMessageSchemas = {
  'caller.interim': z
    .object({ type: z.literal('caller.interim'), text: z.string() })
    .describe('The caller’s words so far in this turn, as recognised; revised by the next one, replaced by caller.final.'),
  'caller.final': z
    .object({ type: z.literal('caller.final'), text: z.string(), start_ms: ms, end_ms: ms })
    .describe(
      'The caller’s turn ended and is stored: its text as in the transcript, and when it was spoken (ms since the call started). Sent as the answer’s first audio goes out (or the answer ends without any): until then the caller may go on, and the turn grows.',
    ),
  'agent.sentence': z
    .object({ type: z.literal('agent.sentence'), text: z.string() })
    .describe('The agent starts saying this sentence (its first audio is being sent). A `clear` cuts it short.'),
  'agent.state': z
    .object({ type: z.literal('agent.state'), state: z.enum(['listening', 'thinking', 'speaking']) })
    .describe(
      'listening: waiting for the caller; thinking: the caller’s turn ended, the answer is being prepared (back to listening if the caller goes on before it is heard); speaking: agent audio is being sent.',
    ),
  'turn.latency': z
    .object({
      type: z.literal('turn.latency'),
      endpointing: stage.optional().describe('From the end of the caller’s speech to the decision that the turn ended'),
      stt_final: stage.optional().describe('From the end of speech to the recogniser’s final text'),
      retrieval: stage.optional().describe('The knowledge search'),
      llm_ttft: stage.optional().describe('From asking the model to its first token'),
      tts_ttfb: stage.optional().describe('From asking for the first sentence’s audio to its first byte'),
      voice_to_voice: stage.optional().describe('From the end of the caller’s speech to the agent’s first audio'),
    })
    .describe('An answered turn’s latencies in ms (those measured), as stored with the agent’s turn in the transcript.'),
} as const;

export type LiveMessageType = keyof typeof liveMessageSchemas;
export type LiveMessage = { [T in LiveMessageType]: z.infer<(typeof liveMessageSchemas)[T]> }[LiveMessageType];
export type AgentState = z.infer<(typeof liveMessageSchemas)['agent.state']>['state'];

/** The stages of `turn.latency`, as named in a stored turn's metrics. */
export const LATENCY_STAGES = ['endpointing', 'stt_final', 'retrieval', 'llm_ttft', 'tts_ttfb', 'voice_to_voice'] as const;

/** A stored agent turn's metrics as the `turn.latency` message (undefined when none of its stages was measured). */
export function latencyMessage(metrics: Record<string, number> | undefined): LiveMessage | undefined {
  if (!metrics) return undefined;
  const stages = LATENCY_STAGES.filter((s) => Number.isFinite(metrics[s])).map((s) => [s, Math.max(0, metrics[s]!)]);
  return stages.length ? { type: 'turn.latency', ...Object.fromEntries(stages) } : undefined;
}

/**
 * Every JSON text message a browser call's websocket sends (the live messages above, and the transport's own:
 * voice/transports/browser-ws.ts), as one named schema: /openapi.json publishes it as `WebCallServerMessage` (the
 * web-call stream's 101 response), so the console's generated types cover the protocol.
 */
export const webCallServerMessage = z
  .discriminatedUnion('type', [
    liveMessageSchemas['caller.interim'],
    liveMessageSchemas['caller.final'],
    liveMessageSchemas['agent.sentence'],
    liveMessageSchemas['agent.state'],
    liveMessageSchemas['turn.latency'],
    z.object({ type: z.literal('mark'), name: z.string() }).describe('The audio queued before this mark has been played.'),
    z.object({ type: z.literal('clear') }).describe('The caller interrupted: drop the agent audio not yet played, at once.'),
    z.object({ type: z.literal('end'), reason: z.string() }).describe('The call ended (the socket closes next).'),
    z
      .object({ type: z.literal('error'), error: z.object({ code: z.enum(['bad_message', 'media_policy']), message: z.string() }) })
      .describe(
        'bad_message: a message was refused, the call goes on; media_policy: the caller broke the media rules, the socket closes with 1008.',
      ),
  ])
  .meta({ id: 'WebCallServerMessage' });
