// A tenant's HTTP tool: the agent calls the tenant's own server during a call or chat (book a table, look up an
// order). The arguments are checked against the tool's schema before anything is sent; the request is signed
// (lib/signing.ts), time-limited and cancelled with the turn (barge-in), follows no redirect and is read up to
// 16 KB. Every failure becomes a short result the model can speak around: nothing here throws into the turn.
import { randomUUID } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { checkArguments } from '../../lib/json-schema.js';
import { SIGNATURE_HEADER, sign } from '../../lib/signing.js';
import type { TenantTool } from '../../services/settings.js';
import type { ToolSpec } from '../llm/llm.js';

/** Read at most this much of the tenant's answer... */
export const MAX_RESPONSE_BYTES = 16 * 1024;
/** ...and give the model at most this much of it: a result is context for a spoken sentence, and tokens cost. */
export const MAX_RESULT_CHARS = 4 * 1024;

export type ToolStatus = 'ok' | 'invalid_arguments' | 'unknown_tool' | 'http_error' | 'timeout' | 'unreachable' | 'refused' | 'cancelled' | 'error';

export interface ToolOutcome {
  /** What the model reads as the tool's result. */
  output: string;
  status: ToolStatus;
  httpStatus?: number;
}

/** What every tenant tool shares: built once per process (deps), handed to the registry. */
export interface HttpToolRuntime {
  /** False refuses URLs that resolve to loopback, private or link-local addresses (TOOLS_ALLOW_PRIVATE_NETWORKS). */
  allowPrivateNetworks: boolean;
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
    return { name: this.config.name, description: this.config.description, parameters: this.config.parameters as unknown as Record<string, unknown> };
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
      else if (outcome.status !== 'cancelled' && outcome.status !== 'refused') log.warn({ status: outcome.status, httpStatus: outcome.httpStatus }, 'tool call failed');
      return outcome;
    } catch (err) {
      log.error({ err }, 'tool call failed');
      return { status: 'error', output: `The ${name} tool is not working right now.` };
    }
  }

  private async send(args: Record<string, unknown>, context: { callId?: string; signal?: AbortSignal }, log: FastifyBaseLogger): Promise<ToolOutcome> {
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
      body = JSON.stringify({ tool: name, arguments: args, call_id: context.callId ?? null, tenant_id: this.tenantId, request_id: requestId, timestamp });
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

    const refused = (address: string): ToolOutcome => {
      log.warn({ host: url.hostname, address }, 'tool URL is on a private network; refused (TOOLS_ALLOW_PRIVATE_NETWORKS is off)');
      return { status: 'refused', output: `The ${name} tool could not be reached.` };
    };
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // An address in the URL is checked here; a name is checked once resolved, for the address actually connected to.
    if (!this.runtime.allowPrivateNetworks && isIP(host) && isPrivateAddress(host)) return refused(host);

    const timeout = AbortSignal.timeout(this.config.timeout_ms);
    const signal = context.signal ? AbortSignal.any([timeout, context.signal]) : timeout;
    let res: { status: number; body: Buffer; truncated: boolean };
    try {
      res = await request(url, { method, headers, signal, lookup: this.runtime.allowPrivateNetworks ? undefined : publicOnlyLookup }, body);
    } catch (err) {
      if (err instanceof PrivateAddressError) return refused(err.address);
      if (context.signal?.aborted) return { status: 'cancelled', output: `The ${name} tool call was cancelled.` };
      if (timeout.aborted) return { status: 'timeout', output: `The ${name} tool did not answer in time.` };
      log.info({ code: (err as NodeJS.ErrnoException).code }, 'tool unreachable');
      return { status: 'unreachable', output: `The ${name} tool could not be reached.` };
    }

    const text = res.body.toString('utf8').trim();
    const clipped = text.length > MAX_RESULT_CHARS || res.truncated ? `${text.slice(0, MAX_RESULT_CHARS)} [cut short]` : text;
    const httpStatus = res.status;
    if (httpStatus >= 200 && httpStatus < 300) return { status: 'ok', httpStatus, output: clipped || `The ${name} tool succeeded.` };
    if (httpStatus >= 300 && httpStatus < 400) return { status: 'http_error', httpStatus, output: `The ${name} tool did not answer properly.` };
    // A refusal usually says why ("that time is taken"); a server error's text is for its developers, not the caller.
    if (httpStatus < 500) return { status: 'http_error', httpStatus, output: `The ${name} tool refused the request (HTTP ${httpStatus})${clipped ? `: ${clipped}` : '.'}` };
    return { status: 'http_error', httpStatus, output: `The ${name} tool failed and could not help just now.` };
  }
}

/** One HTTP(S) request with the response read up to MAX_RESPONSE_BYTES; redirects are answers, not followed. */
function request(
  url: URL,
  opts: { method: string; headers: Record<string, string>; signal: AbortSignal; lookup?: LookupFunction },
  body: string | undefined,
): Promise<{ status: number; body: Buffer; truncated: boolean }> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method: opts.method, headers: opts.headers, signal: opts.signal, lookup: opts.lookup }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = (truncated: boolean) => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES), truncated });
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= MAX_RESPONSE_BYTES) {
          done(size > MAX_RESPONSE_BYTES);
          res.destroy();
        }
      });
      res.on('end', () => done(false));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

class PrivateAddressError extends Error {
  constructor(readonly address: string) {
    super(`${address} is on a private network`);
  }
}

// Loopback, private, carrier-grade NAT, link-local (cloud metadata lives there), benchmarking, multicast and
// reserved ranges; IPv4-mapped IPv6 addresses are checked against the IPv4 ranges.
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) PRIVATE.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) PRIVATE.addSubnet(net, prefix, 'ipv6');

export const isPrivateAddress = (address: string) => PRIVATE.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');

/**
 * DNS for tool requests when private networks are off: the addresses are checked when the connection is made,
 * so a name cannot pass a check and then resolve elsewhere (DNS rebinding). Any private answer refuses them all.
 */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err, '', 0);
    const bad = addresses.find((a) => isPrivateAddress(a.address));
    if (bad) return callback(new PrivateAddressError(bad.address), '', 0);
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
};
