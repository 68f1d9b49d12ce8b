// A local fake of OpenAI's HTTP API speaking the real wire protocol: Bearer auth, JSON bodies, the error
// envelope, x-request-id, Retry-After; embeddings (base64 float32 little-endian, vectors from LocalEmbedder so
// similarity is meaningful) and chat completions (streamed as server-sent events exactly like the API:
// role chunk, content deltas, tool-call fragments by index, finish_reason, the usage chunk, [DONE]); structured outputs
// (`response_format` json_schema, its strict-mode rules on the schema, the answer as JSON text in `content`).
// It rejects what the real service rejects.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { estimateTokens } from '../../src/rag/chunking.js';
import { LocalEmbedder } from '../../src/rag/embedders/local-embedder.js';
import { listenLocal, type LocalServer } from './local-server.js';

const MODELS: Record<string, { dims: number; shortenable: boolean }> = {
  'text-embedding-3-small': { dims: 1536, shortenable: true },
  'text-embedding-3-large': { dims: 3072, shortenable: true },
  'text-embedding-ada-002': { dims: 1536, shortenable: false },
};

export interface ScriptedFailure {
  status: number;
  retryAfterS?: number;
  /** Drop the connection instead of answering. */
  drop?: boolean;
}

export interface ChatScript {
  text?: string;
  toolCalls?: { name: string; arguments: Record<string, unknown> }[];
  /** A structured-output request's answer (sent as JSON text); by default a value of the requested schema. */
  json?: unknown;
}

const CHAT_MODELS = new Set(['gpt-4o-mini', 'gpt-4o', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-4.1-nano', 'gpt-5-mini']);
const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

export class FakeOpenAI {
  readonly apiKey = `sk-test-${randomUUID()}`;
  /** Every embeddings request body received, in order. */
  readonly requests: Record<string, unknown>[] = [];
  private readonly failures: ScriptedFailure[] = [];
  private listening?: LocalServer;
  baseURL = '';
  /** Time taken by every successful request before its first byte (a slow provider). */
  delayMs = 0;
  /** Pause between streamed pieces of a reply (a model writing at a given speed). */
  chunkDelayMs = 0;
  /** Every chat completions request body received, in order. */
  readonly chatRequests: Record<string, unknown>[] = [];
  /** What the model answers; by default it repeats the last user message. */
  chatScript: (body: Record<string, unknown>) => ChatScript = (body) => {
    const messages = body.messages as { role: string; content: string }[];
    return { text: `You said: ${[...messages].reverse().find((m) => m.role === 'user')?.content ?? ''}` };
  };

  /** The next requests fail as given, in order (one failure per request). */
  failNext(...f: ScriptedFailure[]): void {
    this.failures.push(...f);
  }

  async start(): Promise<this> {
    this.listening = await listenLocal(createServer((req, res) => void this.handle(req, res)));
    this.baseURL = `${this.listening.origin}/v1`;
    return this;
  }

  async stop(): Promise<void> {
    await this.listening?.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('x-request-id', `req_${randomUUID().replace(/-/g, '')}`);
    const fail = (status: number, message: string, type: string, code: string | null, param: string | null = null) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message, type, param, code } }));
    };
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);

    const route = req.method === 'POST' && (req.url === '/v1/embeddings' || req.url === '/v1/chat/completions') ? req.url : undefined;
    if (!route) return fail(404, `Invalid URL (${req.method} ${req.url})`, 'invalid_request_error', null);
    if (req.headers.authorization !== `Bearer ${this.apiKey}`) {
      return fail(
        401,
        'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
        'invalid_request_error',
        'invalid_api_key',
      );
    }
    const scripted = this.failures.shift();
    if (scripted?.drop) return void req.socket.destroy();
    if (scripted) {
      if (scripted.retryAfterS !== undefined) res.setHeader('retry-after', String(scripted.retryAfterS));
      return scripted.status === 429
        ? fail(429, 'Rate limit reached for requests', 'requests', 'rate_limit_exceeded')
        : fail(scripted.status, 'The server had an error while processing your request.', 'server_error', null);
    }
    if (!String(req.headers['content-type']).startsWith('application/json')) {
      return fail(400, 'Invalid Content-Type header, expected application/json', 'invalid_request_error', null);
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return fail(400, 'We could not parse the JSON body of your request.', 'invalid_request_error', null);
    }
    if (route === '/v1/chat/completions') return this.chat(body, res, fail);
    this.requests.push(body);
    const { model, input, dimensions, encoding_format: format = 'float' } = body as Record<string, unknown>;
    if (typeof model !== 'string') return fail(400, 'you must provide a model parameter', 'invalid_request_error', null, 'model');
    const spec = MODELS[model];
    if (!spec)
      return fail(
        404,
        `The model \`${model}\` does not exist or you do not have access to it.`,
        'invalid_request_error',
        'model_not_found',
      );
    const inputs = typeof input === 'string' ? [input] : input;
    if (
      !Array.isArray(inputs) ||
      inputs.length === 0 ||
      inputs.length > 2048 ||
      inputs.some((s) => typeof s !== 'string' || s.length === 0)
    ) {
      return fail(400, "'$.input' is invalid. Please check the API reference.", 'invalid_request_error', null, 'input');
    }
    if (format !== 'float' && format !== 'base64') {
      return fail(
        400,
        `'${String(format)}' is not one of ['float', 'base64'] - 'encoding_format'`,
        'invalid_request_error',
        null,
        'encoding_format',
      );
    }
    let dims = spec.dims;
    if (dimensions !== undefined) {
      if (!spec.shortenable)
        return fail(400, 'This model does not support specifying dimensions.', 'invalid_request_error', null, 'dimensions');
      if (!Number.isInteger(dimensions) || (dimensions as number) < 1 || (dimensions as number) > spec.dims) {
        return fail(400, `Invalid 'dimensions': must be between 1 and ${spec.dims}.`, 'invalid_request_error', null, 'dimensions');
      }
      dims = dimensions as number;
    }
    const tooLong = (inputs as string[]).findIndex((s) => estimateTokens(s) > 8192);
    if (tooLong >= 0) {
      return fail(
        400,
        `This model's maximum context length is 8192 tokens, however you requested more in input ${tooLong}.`,
        'invalid_request_error',
        null,
        'input',
      );
    }
    if (this.delayMs) await sleep(this.delayMs);
    const embedder = new LocalEmbedder(dims);
    const data = (inputs as string[]).map((text, index) => {
      const v = embedder.embedOne(text);
      const embedding = format === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v);
      return { object: 'embedding', index, embedding };
    });
    const tokens = (inputs as string[]).reduce((n, s) => n + estimateTokens(s), 0);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } }));
  }

  private async chat(
    body: Record<string, unknown>,
    res: ServerResponse,
    fail: (status: number, message: string, type: string, code: string | null, param?: string | null) => void,
  ): Promise<void> {
    this.chatRequests.push(body);
    const invalid = (message: string, param: string | null) => fail(400, message, 'invalid_request_error', null, param);
    const { model, messages, tools, stream, stream_options: streamOptions } = body as Record<string, unknown>;
    if (typeof model !== 'string') return invalid('you must provide a model parameter', 'model');
    if (!CHAT_MODELS.has(model))
      return fail(
        404,
        `The model \`${model}\` does not exist or you do not have access to it.`,
        'invalid_request_error',
        'model_not_found',
      );
    if (!Array.isArray(messages) || messages.length === 0)
      return invalid(
        "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        'messages',
      );
    const open = new Set<string>();
    for (const [i, m] of (messages as Record<string, unknown>[]).entries()) {
      if (!m || typeof m !== 'object' || !ROLES.has(m.role as string))
        return invalid(`Invalid value for 'messages[${i}].role'.`, `messages.[${i}].role`);
      if (m.role === 'tool') {
        if (typeof m.tool_call_id !== 'string' || !open.delete(m.tool_call_id)) {
          return invalid(
            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
            `messages.[${i}].role`,
          );
        }
        continue;
      }
      if (open.size) {
        return invalid(
          "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: " +
            [...open].join(', '),
          `messages.[${i}].role`,
        );
      }
      if (m.role === 'assistant' && Array.isArray(m.tool_calls)) for (const c of m.tool_calls as { id: string }[]) open.add(c.id);
      else if (typeof m.content !== 'string' && !(m.role === 'assistant' && m.content === null))
        return invalid(`Invalid type for 'messages[${i}].content'.`, `messages.[${i}].content`);
    }
    if (tools !== undefined) {
      const ok =
        Array.isArray(tools) &&
        (tools as Record<string, unknown>[]).every((t) => {
          const f = t?.function as Record<string, unknown> | undefined;
          return (
            t?.type === 'function' &&
            typeof f?.name === 'string' &&
            /^[a-zA-Z0-9_-]{1,64}$/.test(f.name) &&
            (f.parameters === undefined || (typeof f.parameters === 'object' && f.parameters !== null))
          );
        });
      if (!ok) return invalid("Invalid 'tools': each tool needs type 'function' and a function with a valid name.", 'tools');
    }
    if (streamOptions !== undefined && stream !== true)
      return invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options');
    const format = checkResponseFormat(body.response_format, messages as { content?: unknown }[]);
    if (format.error) return fail(400, format.error.message, 'invalid_request_error', format.error.code, format.error.param);

    const script = this.chatScript(body);
    if (format.schema) script.text = JSON.stringify(script.json !== undefined ? script.json : valueOf(format.schema));
    const id = `chatcmpl-${randomUUID().replace(/-/g, '').slice(0, 24)}`;
    const created = Math.floor(Date.now() / 1000);
    const calls = (script.toolCalls ?? []).map((c) => ({ id: `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`, ...c }));
    const usage = {
      prompt_tokens: estimateTokens(JSON.stringify(messages)),
      completion_tokens: estimateTokens(script.text ?? '') + calls.length * 10,
      total_tokens: 0,
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const finishReason = calls.length ? 'tool_calls' : 'stop';
    if (this.delayMs) await sleep(this.delayMs);

    if (stream !== true) {
      res.writeHead(200, { 'content-type': 'application/json' });
      const message = {
        role: 'assistant',
        content: script.text ?? null,
        refusal: null,
        ...(calls.length && {
          tool_calls: calls.map((c) => ({
            id: c.id,
            type: 'function',
            function: { name: c.name, arguments: JSON.stringify(c.arguments) },
          })),
        }),
      };
      return void res.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [{ index: 0, message, finish_reason: finishReason, logprobs: null }],
          usage,
        }),
      );
    }
    const includeUsage = (streamOptions as { include_usage?: boolean } | undefined)?.include_usage === true;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      res.write(
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_fake', choices, ...(includeUsage && { usage: null }), ...extra })}\n\n`,
      );
    send([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]);
    for (const piece of (script.text ?? '').match(/\S+\s*/g) ?? []) {
      if (res.destroyed) return;
      send([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]);
      if (this.chunkDelayMs) await sleep(this.chunkDelayMs);
    }
    calls.forEach((c, index) => {
      const args = JSON.stringify(c.arguments);
      const half = Math.ceil(args.length / 2);
      send([
        {
          index: 0,
          delta: { tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] },
          logprobs: null,
          finish_reason: null,
        },
      ]);
      send([
        { index: 0, delta: { tool_calls: [{ index, function: { arguments: args.slice(0, half) } }] }, logprobs: null, finish_reason: null },
      ]);
      send([
        { index: 0, delta: { tool_calls: [{ index, function: { arguments: args.slice(half) } }] }, logprobs: null, finish_reason: null },
      ]);
    });
    send([{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason }]);
    if (includeUsage) send([], { usage });
    res.end('data: [DONE]\n\n');
  }
}

type FormatCheck = { error?: { message: string; param: string; code: string | null }; schema?: Record<string, unknown> };

/**
 * `response_format` as the API checks it: text, json_object (the messages must mention JSON) or json_schema (a name
 * of letters, digits, _ and -; a schema object; with `strict`, an object at the root, and on every object
 * `additionalProperties: false` and every property in `required`).
 */
function checkResponseFormat(format: unknown, messages: { content?: unknown }[]): FormatCheck {
  if (format === undefined) return {};
  const f = format as Record<string, unknown>;
  const err = (message: string, param: string, code: string | null = 'invalid_value') => ({ error: { message, param, code } });
  if (!f || typeof f !== 'object' || !['text', 'json_object', 'json_schema'].includes(f.type as string))
    return err(
      `Invalid value: '${String(f?.type)}'. Supported values are: 'json_object', 'json_schema', and 'text'.`,
      'response_format.type',
    );
  if (f.type === 'text') return {};
  if (f.type === 'json_object') {
    const mentions = messages.some((m) => typeof m.content === 'string' && /json/i.test(m.content));
    return mentions
      ? { schema: { type: 'object', properties: {} } }
      : err("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", 'messages', null);
  }
  const js = f.json_schema as Record<string, unknown> | undefined;
  if (!js || typeof js !== 'object')
    return err("Missing required parameter: 'response_format.json_schema'.", 'response_format.json_schema', 'missing_required_parameter');
  if (typeof js.name !== 'string')
    return err(
      "Missing required parameter: 'response_format.json_schema.name'.",
      'response_format.json_schema.name',
      'missing_required_parameter',
    );
  if (!/^[a-zA-Z0-9_-]{1,64}$/.test(js.name))
    return err(
      "Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
      'response_format.json_schema.name',
    );
  const schema = js.schema as Record<string, unknown> | undefined;
  if (schema !== undefined && (typeof schema !== 'object' || schema === null || Array.isArray(schema)))
    return err(
      "Invalid type for 'response_format.json_schema.schema': expected an object.",
      'response_format.json_schema.schema',
      'invalid_type',
    );
  if (js.strict === true) {
    const bad = (why: string) => err(`Invalid schema for response_format '${js.name}': ${why}`, 'response_format', null);
    if (!schema || schema.type !== 'object')
      return bad(`schema must be a JSON Schema of 'type: "object"', got 'type: "${String(schema?.type)}"'.`);
    const problem = strictProblem(schema, []);
    if (problem) return bad(problem);
  }
  return { schema: schema ?? { type: 'object', properties: {} } };
}

/** The first rule of strict mode `s` breaks, in the API's words (context = the path to the offending schema). */
function strictProblem(s: Record<string, unknown>, path: string[]): string | undefined {
  const context = `In context=(${path.map((p) => `'${p}'`).join(', ')}${path.length === 1 ? ',' : ''})`;
  const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
  if (types.includes('object')) {
    if (s.additionalProperties !== false) return `${context}, 'additionalProperties' is required to be supplied and to be false.`;
    const props = (s.properties ?? {}) as Record<string, Record<string, unknown>>;
    const required = Array.isArray(s.required) ? (s.required as string[]) : undefined;
    const missing = Object.keys(props).find((k) => !required?.includes(k));
    if (missing !== undefined)
      return `${context}, 'required' is required to be supplied and to be an array including every key in properties. Missing '${missing}'.`;
    for (const [k, v] of Object.entries(props)) {
      const p = strictProblem(v, [...path, 'properties', k]);
      if (p) return p;
    }
  }
  if (types.includes('array') && s.items && typeof s.items === 'object')
    return strictProblem(s.items as Record<string, unknown>, [...path, 'items']);
  return undefined;
}

/** A value of schema `s`: what the model answers when a test does not script one (nullable fields null). */
export function valueOf(s: Record<string, unknown>): unknown {
  const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
  if (types.includes('null')) return null;
  if (Array.isArray(s.enum)) return s.enum[0];
  switch (types[0]) {
    case 'object':
      return Object.fromEntries(
        Object.entries((s.properties ?? {}) as Record<string, Record<string, unknown>>)
          .filter(([k]) => !Array.isArray(s.required) || (s.required as string[]).includes(k))
          .map(([k, v]) => [k, valueOf(v)]),
      );
    case 'array':
      return [];
    case 'string':
      return '';
    case 'number':
    case 'integer':
      return 0;
    case 'boolean':
      return false;
    default:
      return null;
  }
}
