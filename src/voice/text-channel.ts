// The agent over text: each message is one turn of a chat session stored exactly like a call (direction
// `chat`), so tenants can try their agent without audio and read it back through the calls API. The history
// is read from the database on every message: a restart or another instance continues the same session.
import type { Citation } from '../lib/citation.js';
import { AppError } from '../lib/errors.js';
import type { CallService, Turn } from '../services/calls.js';
import { type AgentAction, agentEndReason, toolCalledEvent } from './agent.js';
import type { ChatMessage } from './llm/llm.js';
import type { ProviderRegistry, TenantAgent } from './registry.js';
import { type UsageLine, UsageTally } from './usage-meter.js';

export interface ChatReply {
  sessionId: string;
  /** The greeting, when this message opened the session and a greeting is configured. */
  greeting: string | null;
  reply: string;
  citations: Citation[];
  action: AgentAction | null;
  ended: boolean;
}

/** What a message produces, as it happens: the session, then the reply's text in pieces, then the whole reply. */
export type ChatEvent =
  { type: 'session'; sessionId: string; greeting: string | null } | { type: 'delta'; text: string } | { type: 'reply'; reply: ChatReply };

export class TextChannel {
  constructor(
    private readonly calls: CallService,
    private readonly registry: ProviderRegistry,
    /** The ledger (services/usage.ts): each turn's usage is written, and a new session is refused at a monthly cap. */
    private readonly usage?: {
      record(tenantId: string, lines: UsageLine[], ref: { callId: string }): Promise<void>;
      assertWithinBudget(tenantId: string): Promise<void>;
    },
  ) {}

  /** One message and its whole reply (POST /api/v1/chat). */
  async send(tenantId: string, input: { sessionId?: string; message: string; userId?: string }, signal?: AbortSignal): Promise<ChatReply> {
    for await (const event of this.stream(tenantId, input, signal)) if (event.type === 'reply') return event.reply;
    throw new Error('the agent produced no reply');
  }

  /**
   * One message, its reply streamed as the LLM writes it (the chat websocket). When the message that opened a
   * session fails, the session is deleted again: a failed request leaves no session behind.
   */
  async *stream(
    tenantId: string,
    input: { sessionId?: string; message: string; userId?: string },
    signal?: AbortSignal,
  ): AsyncGenerator<ChatEvent> {
    // A session in progress goes on at a cap (like a call in progress); a new one is refused (402 budget_exceeded).
    if (!input.sessionId) await this.usage?.assertWithinBudget(tenantId);
    const meter = new UsageTally();
    const { agent, settings } = await this.registry.agentFor(tenantId, undefined, meter);
    let greeting: string | null = null;
    let callId: string;
    let history: ChatMessage[];
    if (input.sessionId) {
      const call = await this.calls.get(tenantId, input.sessionId);
      if (call.direction !== 'chat') throw new AppError('conflict', 'This id is a call, not a chat session');
      if (call.endedAt) throw new AppError('conflict', 'This chat session has ended; start a new one without session_id');
      callId = call.id;
      history = toHistory(await this.calls.turns(tenantId, callId));
      yield* this.turn(tenantId, callId, greeting, history, input.message, agent, meter, signal);
      return;
    }
    callId = (await this.calls.start(tenantId, { direction: 'chat', userId: input.userId })).id;
    try {
      history = [];
      if (settings.greeting) {
        greeting = settings.greeting;
        await this.calls.addTurn(tenantId, callId, { speaker: 'agent', text: greeting });
        history.push({ role: 'assistant', content: greeting });
      }
      yield* this.turn(tenantId, callId, greeting, history, input.message, agent, meter, signal);
    } catch (err) {
      await this.calls.discard(tenantId, callId).catch(() => undefined);
      throw err;
    }
  }

  private async *turn(
    tenantId: string,
    callId: string,
    greeting: string | null,
    history: ChatMessage[],
    message: string,
    agent: TenantAgent['agent'],
    meter: UsageTally,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<ChatEvent> {
    yield { type: 'session', sessionId: callId, greeting };
    await this.calls.addTurn(tenantId, callId, { speaker: 'caller', text: message });
    // A message keeps the session from being ended as idle (CHAT_IDLE_TIMEOUT_MINUTES, the call sweeper).
    await this.calls.touch([callId]);
    let turn;
    for await (const event of agent.reply(history, message, signal, { callId })) {
      if (event.type === 'text') yield { type: 'delta', text: event.text };
      else turn = event.turn;
    }
    // The turn's tokens are in the ledger before anything can end the session (its cost is then complete).
    await this.usage?.record(tenantId, meter.drain(), { callId });
    if (!turn) throw new Error('agent produced no turn');
    // A reply cut short (the client cancelled or left) keeps what was written, marked as interrupted.
    const interrupted = signal?.aborted ?? false;
    await this.calls.addTurn(tenantId, callId, {
      speaker: 'agent',
      text: turn.text,
      citations: turn.citations,
      metrics: turn.metrics,
      interrupted,
    });
    for (const t of turn.toolCalls) await this.calls.event(tenantId, callId, 'tool.called', toolCalledEvent(t));
    let ended = false;
    if (turn.action?.type === 'end_call' && !interrupted) {
      ended = true;
      await this.calls.end(tenantId, callId, 'completed', agentEndReason(turn.action));
    } else if (turn.action?.type === 'transfer_call' && !interrupted) {
      // Text cannot be transferred: the request is recorded for a person to follow up.
      await this.calls.event(tenantId, callId, 'transfer.requested', { to: turn.action.to, reason: turn.action.reason });
    }
    yield {
      type: 'reply',
      reply: { sessionId: callId, greeting, reply: turn.text, citations: turn.citations, action: turn.action ?? null, ended },
    };
  }
}

/** Transcript turns as the LLM's history: the caller is the user, the agent the assistant. */
export function toHistory(turns: Turn[]): ChatMessage[] {
  return turns.flatMap((t): ChatMessage[] => {
    if (t.speaker === 'caller') return [{ role: 'user', content: t.text }];
    if (t.speaker === 'agent' && t.text) return [{ role: 'assistant', content: t.text }];
    return [];
  });
}
