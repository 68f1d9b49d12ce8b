// The agent's turn, independent of audio: the caller's words -> knowledge retrieval -> LLM (streaming, tools) ->
// reply text as it is produced, with the citations and latencies of the turn. The voice session speaks it; the
// text channel returns it. Tools: end_call, transfer_call (when a number is set), search_knowledge, and the
// tenant's own HTTP tools (tools/http-tool.ts).
import { type Citation, citationOf } from '../lib/citation.js';
import type { ChatMessage, KnowledgePassage, LLM, ToolCall, ToolSpec } from './llm/llm.js';
import type { HttpTool, ToolOutcome, ToolStatus } from './tools/http-tool.js';

export type KnowledgeSearch = (query: string, signal?: AbortSignal) => Promise<KnowledgePassage[]>;

export interface AgentSettings {
  agentName: string;
  systemPrompt: string | null;
  /** Where transfer_call sends the caller; without one the tool is not offered. */
  transferNumber: string | null;
}

export type AgentAction = { type: 'end_call'; reason: string } | { type: 'transfer_call'; to: string; reason: string };

/** What a call or chat ended by the agent's `end_call` stores as its end reason: the model's words, marked as the agent's. */
export const AGENT_ENDED = 'agent ended the call';
export const agentEndReason = (action: { reason: string }): string =>
  action.reason === AGENT_ENDED ? AGENT_ENDED : `${AGENT_ENDED}: ${action.reason}`;

/** One tool call of a turn, for the audit trail (`tool.called` events). */
export interface ToolCallRecord {
  name: string;
  arguments: Record<string, unknown>;
  result: string;
  status: ToolStatus;
  durationMs: number;
  /** The tenant server's answer, for HTTP tools that got one. */
  httpStatus?: number;
}

/** The data of a `tool.called` event (JSON, snake_case like the API). */
export const toolCalledEvent = (t: ToolCallRecord) => ({
  name: t.name,
  arguments: t.arguments,
  status: t.status,
  duration_ms: t.durationMs,
  ...(t.httpStatus !== undefined && { http_status: t.httpStatus }),
});

/** What a turn knows about where it happens; tenant tools tell the tenant's server which call asked. */
export interface TurnContext {
  callId?: string;
  /** Told of the tokens each model request used, when the provider reports them (a reply prepared and dropped counts them). */
  onUsage?: (usage: { inputTokens: number; outputTokens: number }) => void;
}

export interface TurnResult {
  text: string;
  /** The passages the turn was given (retrieved for the caller's words, or found by search_knowledge), once each. */
  citations: Citation[];
  /** ms: retrieval, llm_ttft (first text or tool call), llm_total. */
  metrics: Record<string, number>;
  action?: AgentAction;
  /** Tool calls made and their results, for the audit trail. */
  toolCalls: ToolCallRecord[];
}

export type AgentEvent = { type: 'text'; text: string } | { type: 'done'; turn: TurnResult };

/** Rounds of tool use (a search, then an answer) before the agent must answer with what it has. */
const MAX_TOOL_ROUNDS = 3;

export const DEFAULT_SYSTEM_PROMPT =
  'You answer phone calls for this business. Your words are spoken aloud: answer in one to three short sentences, ' +
  'with no lists, markdown or URLs. Use only the knowledge passages for facts; when they do not contain the answer, ' +
  'say that you do not know and offer to connect the caller with a person.';

export class Agent {
  constructor(
    private readonly llm: LLM,
    private readonly search: KnowledgeSearch,
    private readonly settings: AgentSettings,
    private readonly httpTools: HttpTool[] = [],
  ) {}

  get tools(): ToolSpec[] {
    const tools: ToolSpec[] = [
      {
        name: 'end_call',
        description: 'End the call after saying goodbye, when the caller is done.',
        parameters: { type: 'object', properties: { reason: { type: 'string' } } },
      },
      {
        name: 'search_knowledge',
        description: 'Search the business’s knowledge base when the passages given do not answer the question.',
        parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
      },
    ];
    if (this.settings.transferNumber) {
      tools.push({
        name: 'transfer_call',
        description: 'Transfer the caller to a person when they ask for one or you cannot help.',
        parameters: { type: 'object', properties: { reason: { type: 'string' } } },
      });
    }
    return [...tools, ...this.httpTools.map((t) => t.spec)];
  }

  async *reply(history: ChatMessage[], said: string, signal?: AbortSignal, context: TurnContext = {}): AsyncGenerator<AgentEvent> {
    const started = performance.now();
    const metrics: Record<string, number> = {};
    const knowledge = await this.search(said, signal);
    metrics.retrieval = round(performance.now() - started);
    const citations = new Map(knowledge.map((k) => [k.chunkId, citationOf(k)]));
    const messages: ChatMessage[] = [...history, { role: 'user', content: said }];
    const system = `${this.settings.systemPrompt ?? DEFAULT_SYSTEM_PROMPT}\nYour name is ${this.settings.agentName}.`;
    const toolCalls: TurnResult['toolCalls'] = [];
    let text = '';
    let action: AgentAction | undefined;
    const llmStarted = performance.now();

    for (let pass = 0; pass < MAX_TOOL_ROUNDS && !action; pass++) {
      const calls: ToolCall[] = [];
      let roundText = '';
      for await (const chunk of this.llm.chat({ system, messages, knowledge, tools: this.tools, signal })) {
        if (signal?.aborted) break;
        if (chunk.type === 'done') {
          if (chunk.usage) context.onUsage?.(chunk.usage);
          continue;
        }
        metrics.llm_ttft ??= round(performance.now() - llmStarted);
        if (chunk.type === 'text') {
          roundText += chunk.text;
          yield { type: 'text', text: chunk.text };
        } else {
          calls.push(chunk.call);
        }
      }
      text += roundText;
      if (signal?.aborted || calls.length === 0) break;
      messages.push({ role: 'assistant', content: roundText, toolCalls: calls });
      for (const call of calls) {
        const toolStarted = performance.now();
        const result = await this.runTool(call, signal, context);
        toolCalls.push({
          name: call.name,
          arguments: call.arguments,
          result: result.output,
          status: result.status,
          durationMs: round(performance.now() - toolStarted),
          ...(result.httpStatus !== undefined && { httpStatus: result.httpStatus }),
        });
        if (result.passages) {
          knowledge.push(...result.passages);
          for (const p of result.passages) if (!citations.has(p.chunkId)) citations.set(p.chunkId, citationOf(p));
        }
        action ??= result.action;
        messages.push({ role: 'tool', toolCallId: call.id, content: result.output });
      }
    }
    metrics.llm_total = round(performance.now() - llmStarted);
    yield { type: 'done', turn: { text: text.trim(), citations: [...citations.values()], metrics, action, toolCalls } };
  }

  private async runTool(
    call: ToolCall,
    signal: AbortSignal | undefined,
    context: TurnContext,
  ): Promise<ToolOutcome & { action?: AgentAction; passages?: KnowledgePassage[] }> {
    const reason = typeof call.arguments.reason === 'string' ? call.arguments.reason : '';
    switch (call.name) {
      case 'end_call':
        return {
          status: 'ok',
          output: 'The call will end after your goodbye.',
          action: { type: 'end_call', reason: reason || AGENT_ENDED },
        };
      case 'transfer_call':
        if (!this.settings.transferNumber) return { status: 'unknown_tool', output: 'Transfers are not available.' };
        return {
          status: 'ok',
          output: 'Transferring the caller.',
          action: { type: 'transfer_call', to: this.settings.transferNumber, reason },
        };
      case 'search_knowledge': {
        const query = typeof call.arguments.query === 'string' ? call.arguments.query : '';
        if (!query.trim()) return { status: 'invalid_arguments', output: 'The search needs a query.' };
        const passages = await this.search(query, signal);
        return {
          status: 'ok',
          output: passages.length ? passages.map((p, i) => `[${i + 1}] (${p.documentTitle}) ${p.text}`).join('\n\n') : 'Nothing found.',
          passages,
        };
      }
    }
    const tool = this.httpTools.find((t) => t.config.name === call.name);
    if (!tool) return { status: 'unknown_tool', output: `Unknown tool ${call.name}.` };
    return tool.call(call.arguments, { callId: context.callId, signal });
  }
}

const round = (ms: number) => Math.round(ms * 10) / 10;
