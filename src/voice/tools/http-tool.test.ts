// HttpTool against a real local HTTP server: what is sent (signed body or query, headers), what the model gets
// back (capped), and every failure as a result rather than an exception: invalid arguments, redirects, errors,
// timeouts, barge-in, and private-network refusal.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verify } from '../../lib/signing.js';
import type { TenantTool } from '../../services/settings.js';
import { isPrivateAddress, OutboundGuard } from '../../lib/outbound.js';
import { HttpTool, type HttpToolRuntime, MAX_RESULT_CHARS } from './http-tool.js';

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

const SECRET = 'whsec_unit_test_secret_0123456789';
let server: Server;
let base = '';
let received: Received[] = [];
let logs: string[] = [];
const handlers: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  '/ok': (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"booked":true,"time":"19:30"}'),
  '/big': (_req, res) => res.writeHead(200).end('x'.repeat(100_000)),
  '/fail': (_req, res) => res.writeHead(500).end('stack trace with internals'),
  '/conflict': (_req, res) => res.writeHead(409).end('That time is taken.'),
  '/redirect': (_req, res) => res.writeHead(302, { location: '/ok' }).end(),
  '/empty': (_req, res) => res.writeHead(204).end(),
  '/hang': () => {},
};

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    received.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
    handlers[new URL(req.url!, 'http://x').pathname]!(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  received = [];
  logs = [];
});

const runtime = (over: Partial<HttpToolRuntime> = {}): HttpToolRuntime => ({
  outbound: new OutboundGuard({ allowPrivateNetworks: true, allowHosts: [] }),
  signingSecrets: async () => [SECRET],
  log: pino({ level: 'debug' }, new Writable({ write: (chunk, _e, cb) => (logs.push(String(chunk)), cb()) })),
  ...over,
});

const tool = (over: Partial<TenantTool> = {}, rt = runtime()) =>
  new HttpTool(
    'tenant-1',
    {
      name: 'book_table',
      description: 'Book a table',
      parameters: {
        type: 'object',
        properties: { party_size: { type: 'integer' }, time: { type: 'string' }, notes: { type: 'array', items: { type: 'string' } } },
        required: ['party_size'],
      },
      url: `${base}/ok`,
      method: 'POST',
      timeout_ms: 2000,
      headers: { Authorization: 'Bearer tenant-own-token' },
      ...over,
    },
    rt,
  );

describe('HttpTool', () => {
  it('POSTs the signed JSON body with the tool, call and request ids, and returns the answer', async () => {
    const out = await tool().call({ party_size: 4, time: '19:30' }, { callId: 'call-1' });
    expect(out).toEqual({ status: 'ok', httpStatus: 200, output: '{"booked":true,"time":"19:30"}' });
    expect(received).toHaveLength(1);
    const [r] = received;
    const body = JSON.parse(r!.body);
    expect(body).toMatchObject({
      tool: 'book_table',
      arguments: { party_size: 4, time: '19:30' },
      call_id: 'call-1',
      tenant_id: 'tenant-1',
    });
    expect(body.request_id).toBe(r!.headers['x-voice-request-id']);
    expect(Math.abs(body.timestamp - Date.now() / 1000)).toBeLessThan(5);
    expect(r!.headers).toMatchObject({
      'x-voice-tool': 'book_table',
      'x-voice-call-id': 'call-1',
      authorization: 'Bearer tenant-own-token',
      'content-type': 'application/json',
    });
    expect(verify(SECRET, r!.headers['x-voice-signature'] as string, r!.body)).toBe(true);
    expect(r!.headers['x-voice-signature']).toMatch(new RegExp(`^t=${body.timestamp},v1=[0-9a-f]{64}$`));
  });

  it('GET sends the arguments as the query string, and signs the query string', async () => {
    const out = await tool({ method: 'GET', url: `${base}/ok?key=fixed` }).call({ party_size: 2, notes: ['window', 'quiet'] });
    expect(out.status).toBe('ok');
    const [r] = received;
    expect(r!.method).toBe('GET');
    const url = new URL(r!.url, base);
    expect(url.searchParams.get('key')).toBe('fixed');
    expect(url.searchParams.get('party_size')).toBe('2');
    expect(JSON.parse(url.searchParams.get('notes')!)).toEqual(['window', 'quiet']);
    expect(r!.body).toBe('');
    expect(verify(SECRET, r!.headers['x-voice-signature'] as string, r!.url.split('?')[1]!)).toBe(true);
  });

  it('refuses invalid arguments without sending anything, and says what to fix', async () => {
    for (const args of [{}, { party_size: 'four' }, { party_size: 2.5 }, { party_size: 2, surprise: 1 }, { party_size: 2, notes: [1] }]) {
      const out = await tool().call(args);
      expect(out.status, JSON.stringify(args)).toBe('invalid_arguments');
      expect(out.output).toMatch(/^The book_table tool was not called: /);
    }
    expect((await tool().call({ party_size: 'four' })).output).toContain('party_size must be an integer');
    expect(received).toEqual([]);
  });

  it('caps what the model reads, follows no redirect, and turns errors into short results', async () => {
    const big = await tool({ url: `${base}/big` }).call({ party_size: 1 });
    expect(big.status).toBe('ok');
    expect(big.output.length).toBeLessThanOrEqual(MAX_RESULT_CHARS + 20);
    expect(big.output).toMatch(/\[cut short\]$/);

    const redirect = await tool({ url: `${base}/redirect` }).call({ party_size: 1 });
    expect(redirect).toMatchObject({ status: 'http_error', httpStatus: 302 });
    expect(received.map((r) => new URL(r.url, base).pathname)).toEqual(['/big', '/redirect']);

    const fail = await tool({ url: `${base}/fail` }).call({ party_size: 1 });
    expect(fail).toMatchObject({ status: 'http_error', httpStatus: 500 });
    expect(fail.output).not.toContain('stack trace');
    const conflict = await tool({ url: `${base}/conflict` }).call({ party_size: 1 });
    expect(conflict).toMatchObject({
      status: 'http_error',
      httpStatus: 409,
      output: 'The book_table tool refused the request (HTTP 409): That time is taken.',
    });
    expect(await tool({ url: `${base}/empty` }).call({ party_size: 1 })).toMatchObject({
      status: 'ok',
      httpStatus: 204,
      output: 'The book_table tool succeeded.',
    });

    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expect(await tool({ url: `http://127.0.0.1:${port}/` }).call({ party_size: 1 })).toMatchObject({
      status: 'unreachable',
      output: 'The book_table tool could not be reached.',
    });

    const broken = await tool(
      {},
      runtime({
        signingSecrets: async () => {
          throw new Error('database down');
        },
      }),
    ).call({ party_size: 1 });
    expect(broken.status).toBe('error');
  });

  it('gives up at its timeout, and at once when the turn is aborted (barge-in)', async () => {
    // /hang never answers. The bound is taken from a 200 ms timer of our own started with the call, not from the
    // start: on a loaded machine every timer fires late (CI's runners are), and the tool's may not be later than ours.
    const timer = (ms: number) => new Promise<number>((r) => setTimeout(() => r(performance.now()), ms));
    let reference = timer(200);
    const slow = await tool({ url: `${base}/hang`, timeout_ms: 200 }).call({ party_size: 1 });
    expect(slow).toEqual({ status: 'timeout', output: 'The book_table tool did not answer in time.' });
    expect(performance.now() - (await reference)).toBeLessThan(1300);

    const turn = new AbortController();
    reference = timer(100);
    setTimeout(() => turn.abort(), 100);
    const cut = await tool({ url: `${base}/hang`, timeout_ms: 10_000 }).call({ party_size: 1 }, { signal: turn.signal });
    expect(cut.status).toBe('cancelled');
    expect(performance.now() - (await reference)).toBeLessThan(1400);
  });

  it('signs with every active secret during a rotation', async () => {
    await tool({}, runtime({ signingSecrets: async () => ['whsec_new_one', 'whsec_old_one'] })).call({ party_size: 3 });
    const [r] = received;
    for (const s of ['whsec_new_one', 'whsec_old_one']) expect(verify(s, r!.headers['x-voice-signature'] as string, r!.body)).toBe(true);
  });

  it('refuses loopback and private addresses when private networks are off, by address and by name', async () => {
    const strict = runtime({ outbound: new OutboundGuard({ allowPrivateNetworks: false, allowHosts: [] }) });
    const port = new URL(base).port;
    for (const url of [`${base}/ok`, `http://localhost:${port}/ok`, `http://[::ffff:127.0.0.1]:${port}/ok`]) {
      const out = await tool({ url }, strict).call({ party_size: 1 });
      expect(out, url).toEqual({ status: 'refused', output: 'The book_table tool could not be reached.' });
    }
    expect(received).toEqual([]);
    expect(logs.filter((l) => l.includes('private network; refused') && l.includes('"level":40'))).toHaveLength(3);
    // The same tool with private networks allowed goes through.
    expect((await tool({ url: `http://localhost:${port}/ok` }).call({ party_size: 1 })).status).toBe('ok');
  });

  it('knows which addresses are private', () => {
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fd00::1',
      'fe80::1',
      '::ffff:10.0.0.1',
    ]) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
    for (const a of ['8.8.8.8', '172.32.0.1', '93.184.216.34', '2606:4700::1111', '::ffff:8.8.8.8'])
      expect(isPrivateAddress(a), a).toBe(false);
  });
});
