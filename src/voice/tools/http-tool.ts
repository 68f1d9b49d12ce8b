// A tenant's HTTP tool: the agent calls the tenant's own server during a call or chat (book a table, look up an
// order). The arguments are checked against the tool's schema before anything is sent; the request is signed
// (lib/signing.ts), time-limited and cancelled with the turn (barge-in), follows no redirect and is read up to
// 16 KB. Every failure becomes a short result the model can speak around: nothing here throws into the turn.
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { checkArguments } from '../../lib/json-schema.js';
import { type OutboundGuard, refusedByGuard } from '../../lib/outbound.js';
import { SIGNATURE_HEADER, sign } from '../../lib/signing.js';
import type { TenantTool } from '../../services/settings.js';
import type { ToolSpec } from '../llm/llm.js';

/** Read at most this much of the tenant's answer... */
export const MAX_RESPONSE_BYTES = 16 * 1024;
/** ...and give the model at most this much of it: a result is context for a spoken sentence, and tokens cost. */
export const MAX_RESULT_CHARS = 4 * 1024;

export type ToolStatus =
  'ok' | 'invalid_arguments' | 'unknown_tool' | 'http_error' | 'timeout' | 'unreachable' | 'refused' | 'cancelled' | 'error';

export interface ToolOutcome {
  /** What the model reads as the tool's result. */
  output: string;
  status: ToolStatus;
  httpStatus?: number;
}

/** What every tenant tool shares: built once per process (deps), handed to the registry. */
export interface HttpToolRuntime {
  /** Refuses URLs that resolve to our own networks unless the operator allows them (lib/outbound.ts). */
  outbound: OutboundGuard;
  /** The tenant's signing secrets, current first (services/signing-secrets.ts). */
  signingSecrets(tenantId: string): Promise<string[]>;
  log: FastifyBaseLogger;
}

export class HttpTool {
  constructor(
    private readonly tenantId: string,
    readonly config: TenantTool,
    private readonly runtime: HttpToolRuntime,
  ) {}

  get spec(): ToolSpec {
    return {
      name: this.config.name,
      description: this.config.description,
      parameters: this.config.parameters as unknown as Record<string, unknown>,
    };
  }

  async call(args: Record<string, unknown>, context: { callId?: string; signal?: AbortSignal } = {}): Promise<ToolOutcome> {
    const { name } = this.config;
    const problems = checkArguments(this.config.parameters, args);
    // Nothing is sent: the model reads what to fix and may call again or ask the caller.
    if (problems.length) return { status: 'invalid_arguments', output: `The ${name} tool was not called: ${problems.join('; ')}.` };
    const log = this.runtime.log.child({ tenantId: this.tenantId, callId: context.callId, tool: name });
    try {
      const outcome = await this.send(args, context, log);
      if (outcome.status === 'ok') log.debug({ httpStatus: outcome.httpStatus }, 'tool called');
      else if (outcome.status !== 'cancelled' && outcome.status !== 'refused')
        log.warn({ status: outcome.status, httpStatus: outcome.httpStatus }, 'tool call failed');
      return outcome;
    } catch (err) {
      log.error({ err }, 'tool call failed');
      return { status: 'error', output: `The ${name} tool is not working right now.` };
    }
  }

  private async send(
    args: Record<string, unknown>,
    context: { callId?: string; signal?: AbortSignal },
    log: FastifyBaseLogger,
  ): Promise<ToolOutcome> {
    const { name, method } = this.config;
    const secrets = await this.runtime.signingSecrets(this.tenantId);
    if (secrets.length === 0) throw new Error('the signing secret cannot be opened (SECRET_KEY changed?); rotate it');
    const url = new URL(this.config.url);
    const requestId = randomUUID();
    const timestamp = Math.floor(Date.now() / 1000);
    // POST signs the JSON body; GET has none, so it signs the query string exactly as sent (without the '?').
    let body: string | undefined;
    if (method === 'GET') {
      for (const [k, v] of Object.entries(args)) url.searchParams.append(k, typeof v === 'string' ? v : JSON.stringify(v));
    } else {
      body = JSON.stringify({
        tool: name,
        arguments: args,
        call_id: context.callId ?? null,
        tenant_id: this.tenantId,
        request_id: requestId,
        timestamp,
      });
    }
    const headers: Record<string, string> = {
      ...this.config.headers,
      'user-agent': 'voice-agent-platform-tools/1',
      accept: 'application/json, text/plain;q=0.9, */*;q=0.5',
      [SIGNATURE_HEADER]: sign(secrets, body ?? url.search.slice(1), timestamp),
      'X-Voice-Tool': name,
      'X-Voice-Request-Id': requestId,
      ...(context.callId && { 'X-Voice-Call-Id': context.callId }),
      ...(body !== undefined && { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
    };

    const timeout = AbortSignal.timeout(this.config.timeout_ms);
    const signal = context.signal ? AbortSignal.any([timeout, context.signal]) : timeout;
    let res: { status: number; body: Buffer; truncated: boolean };
    try {
      res = await request(this.runtime.outbound, url, { method, headers, signal }, body);
    } catch (err) {
      const refused = refusedByGuard(err);
      if (refused) {
        log.warn(
          { host: url.hostname, address: refused.address },
          'tool URL is on a private network; refused (OUTBOUND_ALLOW_PRIVATE_NETWORKS is off)',
        );
        return { status: 'refused', output: `The ${name} tool could not be reached.` };
      }
      if (context.signal?.aborted) return { status: 'cancelled', output: `The ${name} tool call was cancelled.` };
      if (timeout.aborted) return { status: 'timeout', output: `The ${name} tool did not answer in time.` };
      log.info({ code: (err as NodeJS.ErrnoException).code }, 'tool unreachable');
      return { status: 'unreachable', output: `The ${name} tool could not be reached.` };
    }

    const text = res.body.toString('utf8').trim();
    const clipped = text.length > MAX_RESULT_CHARS || res.truncated ? `${text.slice(0, MAX_RESULT_CHARS)} [cut short]` : text;
    const httpStatus = res.status;
    if (httpStatus >= 200 && httpStatus < 300) return { status: 'ok', httpStatus, output: clipped || `The ${name} tool succeeded.` };
    if (httpStatus >= 300 && httpStatus < 400)
      return { status: 'http_error', httpStatus, output: `The ${name} tool did not answer properly.` };
    // A refusal usually says why ("that time is taken"); a server error's text is for its developers, not the caller.
    if (httpStatus < 500)
      return {
        status: 'http_error',
        httpStatus,
        output: `The ${name} tool refused the request (HTTP ${httpStatus})${clipped ? `: ${clipped}` : '.'}`,
      };
    return { status: 'http_error', httpStatus, output: `The ${name} tool failed and could not help just now.` };
  }
}

/** One request through the outbound guard, its answer read up to MAX_RESPONSE_BYTES; redirects are answers. */
async function request(
  outbound: OutboundGuard,
  url: URL,
  opts: { method: string; headers: Record<string, string>; signal: AbortSignal },
  body: string | undefined,
): Promise<{ status: number; body: Buffer; truncated: boolean }> {
  const res = await outbound.fetch(url, { ...opts, body });
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  if (res.body) {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      chunks.push(Buffer.from(chunk));
      size += chunk.length;
      if (size >= MAX_RESPONSE_BYTES) {
        truncated = size > MAX_RESPONSE_BYTES;
        break; // leaving the loop cancels the rest of the answer
      }
    }
  }
  return { status: res.status, body: Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES), truncated };
}
