// A local fake of OpenAI's HTTP API (embeddings for now) speaking the real wire protocol: Bearer auth, JSON
// bodies, the error envelope, x-request-id, Retry-After, and base64 float32 little-endian embeddings.
// It rejects what the real service rejects. Vectors come from LocalEmbedder, so similarity is meaningful.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { estimateTokens } from '../../src/rag/chunking.js';
import { LocalEmbedder } from '../../src/rag/embedders/local-embedder.js';

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

export class FakeOpenAI {
  readonly apiKey = `sk-test-${randomUUID()}`;
  /** Every embeddings request body received, in order. */
  readonly requests: Record<string, unknown>[] = [];
  private readonly failures: ScriptedFailure[] = [];
  private server?: Server;
  baseURL = '';
  /** Time taken by every successful embeddings request (a slow provider). */
  delayMs = 0;

  /** The next requests fail as given, in order (one failure per request). */
  failNext(...f: ScriptedFailure[]): void {
    this.failures.push(...f);
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.baseURL = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('x-request-id', `req_${randomUUID().replace(/-/g, '')}`);
    const fail = (status: number, message: string, type: string, code: string | null, param: string | null = null) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message, type, param, code } }));
    };
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);

    if (req.method !== 'POST' || req.url !== '/v1/embeddings') return fail(404, `Invalid URL (${req.method} ${req.url})`, 'invalid_request_error', null);
    if (req.headers.authorization !== `Bearer ${this.apiKey}`) {
      return fail(401, 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.', 'invalid_request_error', 'invalid_api_key');
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
    this.requests.push(body);
    const { model, input, dimensions, encoding_format: format = 'float' } = body as Record<string, unknown>;
    if (typeof model !== 'string') return fail(400, "you must provide a model parameter", 'invalid_request_error', null, 'model');
    const spec = MODELS[model];
    if (!spec) return fail(404, `The model \`${model}\` does not exist or you do not have access to it.`, 'invalid_request_error', 'model_not_found');
    const inputs = typeof input === 'string' ? [input] : input;
    if (!Array.isArray(inputs) || inputs.length === 0 || inputs.length > 2048 || inputs.some((s) => typeof s !== 'string' || s.length === 0)) {
      return fail(400, "'$.input' is invalid. Please check the API reference.", 'invalid_request_error', null, 'input');
    }
    if (format !== 'float' && format !== 'base64') {
      return fail(400, `'${String(format)}' is not one of ['float', 'base64'] - 'encoding_format'`, 'invalid_request_error', null, 'encoding_format');
    }
    let dims = spec.dims;
    if (dimensions !== undefined) {
      if (!spec.shortenable) return fail(400, 'This model does not support specifying dimensions.', 'invalid_request_error', null, 'dimensions');
      if (!Number.isInteger(dimensions) || (dimensions as number) < 1 || (dimensions as number) > spec.dims) {
        return fail(400, `Invalid 'dimensions': must be between 1 and ${spec.dims}.`, 'invalid_request_error', null, 'dimensions');
      }
      dims = dimensions as number;
    }
    const tooLong = (inputs as string[]).findIndex((s) => estimateTokens(s) > 8192);
    if (tooLong >= 0) {
      return fail(400, `This model's maximum context length is 8192 tokens, however you requested more in input ${tooLong}.`, 'invalid_request_error', null, 'input');
    }
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
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
}
