// Requests to URLs a tenant chose (tool URLs, an OpenAI-compatible base URL, webhooks): one guard so that none
// of them can reach our own network. Loopback, private, link-local, unique-local, multicast and reserved
// addresses are refused unless the operator allows private networks or names the host (or its range) on the
// allow-list. Names are checked as the connection is made, after DNS, so a name cannot pass a check and then
// resolve elsewhere (DNS rebinding). Redirects are answers, never followed: a public URL cannot bounce inward.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http, { type ClientRequest } from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Readable } from 'node:stream';

export interface OutboundPolicy {
  /** True lets tenant URLs reach private networks (development default; OUTBOUND_ALLOW_PRIVATE_NETWORKS). */
  allowPrivateNetworks: boolean;
  /** Hosts (`name`, `name:port`, `address`, `address:port`) and ranges (CIDR) allowed although private (OUTBOUND_ALLOW_HOSTS). */
  allowHosts: readonly string[];
}

/** A tenant URL that resolves (or points) to an address the policy refuses. Nothing was sent. */
export class OutboundRefusedError extends Error {
  readonly code = 'OUTBOUND_REFUSED';
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(`${host} resolves to a private network address; refused`);
  }
}

// Loopback, private, carrier-grade NAT, link-local (cloud metadata lives there), benchmarking, multicast and
// reserved ranges; IPv4-mapped IPv6 addresses are checked against the IPv4 ranges (BlockList maps them).
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv6');

const family = (address: string) => (isIP(address) === 6 ? 'ipv6' : 'ipv4');
export const isPrivateAddress = (address: string) => PRIVATE.check(address, family(address));

type AllowEntry = { kind: 'host'; host: string; port?: number } | { kind: 'range'; address: string; prefix: number };

/** One allow-list entry, or an error message saying what is wrong with it (config.ts reports it at start-up). */
export function parseAllowEntry(raw: string): AllowEntry | string {
  const entry = raw.trim().toLowerCase();
  const cidr = /^([0-9a-f.:]+)\/(\d{1,3})$/.exec(entry);
  if (cidr) {
    const v = isIP(cidr[1]!);
    const prefix = Number(cidr[2]);
    if (!v || prefix > (v === 4 ? 32 : 128)) return `${raw}: not a valid CIDR range`;
    return { kind: 'range', address: cidr[1]!, prefix };
  }
  if (isIP(entry)) return { kind: 'host', host: entry };
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/.exec(entry);
  const host = m?.[1]?.replace(/^\[|\]$/g, '');
  const port = m?.[2] === undefined ? undefined : Number(m[2]);
  if (!host || (port !== undefined && (port < 1 || port > 65535))) return `${raw}: must be host, host:port or a CIDR range`;
  return { kind: 'host', host, ...(port !== undefined && { port }) };
}

export class OutboundGuard {
  private readonly hosts: Extract<AllowEntry, { kind: 'host' }>[] = [];
  private readonly ranges = new BlockList();
  // Our own connection pools: a socket opened by code that does not check addresses is never reused here.
  private readonly agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

  constructor(readonly policy: OutboundPolicy) {
    for (const raw of policy.allowHosts) {
      const e = parseAllowEntry(raw);
      if (typeof e === 'string') throw new Error(`OUTBOUND_ALLOW_HOSTS: ${e}`);
      if (e.kind === 'host') this.hosts.push(e);
      else this.ranges.addSubnet(e.address, e.prefix, family(e.address));
    }
  }

  /**
   * Throws OutboundRefusedError when `url` names an address (not a name) the policy refuses; names are checked at
   * connect time by `lookupFor`. Returns that lookup, or undefined when no check is needed.
   */
  check(url: URL): LookupFunction | undefined {
    if (this.policy.allowPrivateNetworks || this.named(url)) return undefined;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) {
      if (!this.allowed(host)) throw new OutboundRefusedError(host, host);
      return undefined;
    }
    return this.lookup;
  }

  /**
   * `fetch` for URLs a tenant chose (the OpenAI SDK takes it as its `fetch`): node:http with the checked lookup,
   * redirects returned as they are. Enough of fetch for JSON APIs and streamed answers.
   */
  readonly fetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`unsupported protocol ${url.protocol}`);
    const lookup = this.check(url);
    const headers = new Headers(input instanceof Request ? input.headers : undefined);
    new Headers(init.headers).forEach((v, k) => headers.set(k, v));
    const body =
      init.body == null ? undefined : typeof init.body === 'string' ? init.body : Buffer.from(await new Response(init.body).arrayBuffer());
    if (body !== undefined) headers.set('content-length', String(Buffer.byteLength(body)));
    const signal = init.signal ?? undefined;
    const client = url.protocol === 'https:' ? https : http;
    // Sent once more on a new connection when the kept-alive one was closed under it (closedWhileReused).
    const send = (retried: boolean) =>
      new Promise<Response>((resolve, reject) => {
        let answered = false;
        const req = client.request(
          url,
          {
            method: init.method ?? 'GET',
            headers: Object.fromEntries(headers),
            signal,
            lookup,
            agent: this.agents[url.protocol as 'http:' | 'https:'],
          },
          (res) => {
            answered = true;
            const out = new Headers();
            for (let i = 0; i < res.rawHeaders.length; i += 2) out.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
            const status = res.statusCode ?? 502;
            const empty = status === 204 || status === 205 || status === 304 || init.method === 'HEAD';
            if (empty) res.resume();
            resolve(
              new Response(empty ? null : (Readable.toWeb(res) as ReadableStream), {
                status: status < 200 || status > 599 ? 502 : status,
                statusText: res.statusMessage,
                headers: out,
              }),
            );
          },
        );
        req.on('error', (err: NodeJS.ErrnoException) => {
          if (!answered && !retried && closedWhileReused(req, err) && !signal?.aborted) resolve(send(true));
          else reject(err);
        });
        req.end(body);
      });
    return send(false);
  };

  /** Named on the allow-list by host (and port, when the entry has one). */
  private named(url: URL): boolean {
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    return this.hosts.some((e) => e.host === host && (e.port === undefined || e.port === port));
  }

  private allowed(address: string): boolean {
    return !isPrivateAddress(address) || this.ranges.check(address, family(address));
  }

  /** DNS with every answer checked; any refused answer refuses them all (the connection may try each). */
  private readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const bad = addresses.find((a) => !this.allowed(a.address));
      if (bad) return callback(new OutboundRefusedError(hostname, bad.address), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

/**
 * Whether a request failed because the kept-alive connection it went out on was closed by the server just then
 * (ECONNRESET, "socket hang up", before any answer): the server closed it for being idle and never read the request,
 * which may then be sent once more on a new connection (the pattern Node documents for `request.reusedSocket`).
 */
export function closedWhileReused(req: ClientRequest, err: NodeJS.ErrnoException): boolean {
  return req.reusedSocket && err.code === 'ECONNRESET';
}

/** Whether `err` (or what it wraps, as SDKs do) is a refusal by the guard. */
export function refusedByGuard(err: unknown): OutboundRefusedError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++)
    if (e instanceof OutboundRefusedError) return e;
  return undefined;
}
