// LLM: chat messages (+ the knowledge passages retrieved for this turn, + tools) in, a stream of text deltas and
// tool calls out. One interface for OpenAI, OpenAI-compatible servers, Anthropic and the local responder.

export interface ToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

export type ChatMessage =
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: ToolCall[] }
  | { role: 'tool'; toolCallId: string; content: string };

export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
}

/** A passage found in the tenant's knowledge base for the caller's last words; what it cites (lib/citation.ts). */
export interface KnowledgePassage {
  chunkId: string;
  documentId: string;
  documentTitle: string;
  headingPath: string[];
  page: number | null;
  text: string;
  score: number;
}

export interface ChatRequest {
  system: string;
  messages: ChatMessage[];
  knowledge: KnowledgePassage[];
  tools: ToolSpec[];
  temperature?: number;
  signal?: AbortSignal;
}

export type LlmChunk =
  | { type: 'text'; text: string }
  | { type: 'tool_call'; call: ToolCall }
  | { type: 'done'; finishReason: 'stop' | 'tool_calls' | 'length' | 'other'; usage?: { inputTokens: number; outputTokens: number } };

export interface LLM {
  readonly provider: string;
  readonly model: string;
  chat(request: ChatRequest): AsyncIterable<LlmChunk>;
}

/** How cloud models see the passages: appended to the system prompt, numbered, with their titles. */
export function systemWithKnowledge(system: string, knowledge: KnowledgePassage[]): string {
  if (knowledge.length === 0) return `${system}\n\nNo passage of the knowledge base matches the caller's last words.`;
  const passages = knowledge.map((k, i) => `[${i + 1}] (${k.documentTitle}) ${k.text}`).join('\n\n');
  return `${system}\n\nPassages from the knowledge base that may answer the caller (use only what they say):\n\n${passages}`;
}
