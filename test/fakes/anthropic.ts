// A local fake of Anthropic's Messages API speaking the real wire protocol: the key (x-api-key or Bearer) and
// anthropic-version headers, the error envelope with request-id, and streaming as server-sent events where every event has both an
// `event:` line and a `data:` line (message_start, content blocks with text and input_json deltas, ping,
// message_delta, message_stop). `tool_choice` as the API takes it (auto, any, none, or one named tool, which then is
// all the answer holds). It rejects what the real service rejects.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenLocal, type LocalServer } from './local-server.js';
import { valueOf } from './openai.js';
import { estimateTokens } from '../../src/rag/chunking.js';

export interface AnthropicScript {
  text?: string;
  toolCalls?: { name: string; arguments: Record<string, unknown> }[];
}

export class FakeAnthropic {
  readonly apiKey = `sk-ant-test-${randomUUID()}`;
  readonly requests: Record<string, unknown>[] = [];
  baseURL = '';
  script: (body: Record<string, unknown>) => AnthropicScript = () => ({ text: 'Hello from Claude.' });
  private failures: { status: number; retryAfterS?: number }[] = [];
  private listening?: LocalServer;

  failNext(...f: { status: number; retryAfterS?: number }[]): void {
    this.failures.push(...f);
  }

  async start(): Promise<this> {
    this.listening = await listenLocal(createServer((req, res) => void this.handle(req, res)));
    // The base URL has no /v1: the SDK adds it.
    this.baseURL = this.listening.origin;
    return this;
  }

  async stop(): Promise<void> {
    await this.listening?.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('request-id', `req_${randomUUID().replace(/-/g, '')}`);
    const fail = (status: number, type: string, message: string) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type, message } }));
    };
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method !== 'POST' || req.url !== '/v1/messages') return fail(404, 'not_found_error', 'Not found');
    // SDK 0.x sends the key as x-api-key; SDK 1.x as a Bearer token. The API takes either.
    const key = req.headers['x-api-key'] ?? req.headers.authorization?.replace(/^Bearer\s+/i, '');
    if (key !== this.apiKey) return fail(401, 'authentication_error', 'invalid x-api-key');
    if (!req.headers['anthropic-version']) return fail(400, 'invalid_request_error', 'anthropic-version: header is required');
    const scripted = this.failures.shift();
    if (scripted) {
      if (scripted.retryAfterS !== undefined) res.setHeader('retry-after', String(scripted.retryAfterS));
      return scripted.status === 429
        ? fail(429, 'rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit')
        : scripted.status === 529
          ? fail(529, 'overloaded_error', 'Overloaded')
          : fail(scripted.status, 'api_error', 'Internal server error');
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return fail(400, 'invalid_request_error', 'Request body is not valid JSON');
    }
    this.requests.push(body);
    const invalid = (message: string) => fail(400, 'invalid_request_error', message);
    if (typeof body.model !== 'string') return invalid('model: Field required');
    if (!Number.isInteger(body.max_tokens) || (body.max_tokens as number) < 1) return invalid('max_tokens: Field required');
    const messages = body.messages as { role: string; content: unknown }[];
    if (!Array.isArray(messages) || messages.length === 0) return invalid('messages: at least one message is required');
    if (messages[0]!.role !== 'user') return invalid('messages: first message must use the "user" role');
    let pendingToolUses = new Set<string>();
    for (const [i, m] of messages.entries()) {
      if (m.role !== 'user' && m.role !== 'assistant') return invalid(`messages.${i}.role: Input should be 'user' or 'assistant'`);
      const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : (m.content as Record<string, unknown>[]);
      if (!Array.isArray(blocks) || blocks.length === 0) return invalid(`messages.${i}: content must be non-empty`);
      if (m.role === 'user') {
        for (const b of blocks) {
          if (b.type === 'tool_result' && !pendingToolUses.delete(b.tool_use_id as string)) {
            return invalid(
              `messages.${i}.content: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(b.tool_use_id)}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`,
            );
          }
        }
        if (pendingToolUses.size)
          return invalid(
            `messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${[...pendingToolUses].join(', ')}`,
          );
      } else {
        pendingToolUses = new Set(blocks.filter((b) => b.type === 'tool_use').map((b) => b.id as string));
      }
    }
    for (const t of (body.tools as Record<string, unknown>[] | undefined) ?? []) {
      const schema = t.input_schema as Record<string, unknown> | undefined;
      if (typeof t.name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(t.name) || schema?.type !== 'object')
        return invalid('tools: each tool needs a valid name and an object input_schema');
    }

    const toolChoice = body.tool_choice as Record<string, unknown> | undefined;
    let forced: string | undefined;
    if (toolChoice !== undefined) {
      const tools = (body.tools as { name: string }[] | undefined) ?? [];
      if (!toolChoice || typeof toolChoice !== 'object' || !['auto', 'any', 'tool', 'none'].includes(toolChoice.type as string))
        return invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'");
      if (toolChoice.type !== 'none' && tools.length === 0) return invalid('tool_choice may only be specified while providing tools.');
      if (toolChoice.type === 'tool') {
        if (typeof toolChoice.name !== 'string') return invalid('tool_choice.tool.name: Field required');
        if (!tools.some((t) => t.name === toolChoice.name))
          return invalid(`tool_choice.name: Tool '${toolChoice.name}' not found in tools`);
        forced = toolChoice.name;
      }
    }

    const script = this.script(body);
    if (forced) {
      // A forced tool: the answer is that one tool call (no text before it), its input from the script or a
      // value of the tool's input_schema.
      const tool = (body.tools as { name: string; input_schema: Record<string, unknown> }[]).find((t) => t.name === forced)!;
      const scripted = script.toolCalls?.find((c) => c.name === forced);
      script.text = undefined;
      script.toolCalls = [{ name: forced, arguments: scripted?.arguments ?? (valueOf(tool.input_schema) as Record<string, unknown>) }];
    }
    const id = `msg_${randomUUID().replace(/-/g, '').slice(0, 24)}`;
    const calls = (script.toolCalls ?? []).map((c) => ({ id: `toolu_${randomUUID().replace(/-/g, '').slice(0, 24)}`, ...c }));
    const stop = calls.length ? 'tool_use' : 'end_turn';
    // Counted from what was sent and what is answered (the API's own tokenizer is not ours to copy): a bigger prompt
    // or a longer answer costs more, as it does at Anthropic.
    const usage = anthropicUsage(body, script.text, calls.length);
    if (body.stream !== true) {
      res.writeHead(200, { 'content-type': 'application/json' });
      const content = [
        ...(script.text ? [{ type: 'text', text: script.text }] : []),
        ...calls.map((c) => ({ type: 'tool_use', id: c.id, name: c.name, input: c.arguments })),
      ];
      return void res.end(
        JSON.stringify({
          id,
          type: 'message',
          role: 'assistant',
          model: body.model,
          content,
          stop_reason: stop,
          stop_sequence: null,
          usage,
        }),
      );
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (event: string, data: Record<string, unknown>) =>
      res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
    send('message_start', {
      message: {
        id,
        type: 'message',
        role: 'assistant',
        content: [],
        model: body.model,
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: usage.input_tokens, output_tokens: 1 },
      },
    });
    let index = 0;
    if (script.text) {
      send('content_block_start', { index, content_block: { type: 'text', text: '' } });
      send('ping', {});
      for (const piece of script.text.match(/\S+\s*/g) ?? [])
        send('content_block_delta', { index, delta: { type: 'text_delta', text: piece } });
      send('content_block_stop', { index });
      index++;
    }
    for (const c of calls) {
      const json = JSON.stringify(c.arguments);
      send('content_block_start', { index, content_block: { type: 'tool_use', id: c.id, name: c.name, input: {} } });
      send('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } });
      send('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: json.slice(0, Math.ceil(json.length / 2)) } });
      send('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: json.slice(Math.ceil(json.length / 2)) } });
      send('content_block_stop', { index });
      index++;
    }
    send('message_delta', { delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } });
    send('message_stop', {});
    res.end();
  }
}

/** The fake's token counts for a request and its answer (the OpenAI fake counts the same way). */
export function anthropicUsage(
  body: Record<string, unknown>,
  text: string | undefined,
  toolCalls: number,
): { input_tokens: number; output_tokens: number } {
  return {
    input_tokens: estimateTokens(JSON.stringify({ system: body.system, messages: body.messages, tools: body.tools })),
    output_tokens: estimateTokens(text ?? '') + toolCalls * 10,
  };
}
