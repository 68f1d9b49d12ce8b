// The outbound guard against real local servers: our own network refused by address and by name (after DNS),
// IPv4-mapped IPv6 too, redirects returned and never followed, the operator's allow-list by name, port and range,
// and fetch good enough for JSON and streamed answers.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isPrivateAddress, OutboundGuard, OutboundRefusedError, parseAllowEntry, refusedByGuard } from './outbound.js';

let server: Server;
let port = 0;
let hits: string[] = [];
/** Requests to read and then answer by closing the connection (a kept-alive one the server let go of). */
let hangUps = 0;

beforeAll(async () => {
  server = createServer(async (req, res) => {
    hits.push(`${req.method} ${req.url}`);
    let body = '';
    for await (const c of req) body += String(c);
    if (req.url === '/hang-up' && hangUps > 0) {
      hangUps--;
      return req.socket.destroy();
    }
    if (req.url === '/redirect') return res.writeHead(302, { location: `http://127.0.0.1:${port}/inner` }).end();
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const piece of ['a', 'b', 'c']) res.write(`data: ${piece}\n\n`);
      return res.end();
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-echo': req.headers['x-test'] ?? '' }).end(JSON.stringify({ got: body }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  hits = [];
  hangUps = 0;
});

const strict = (allowHosts: string[] = []) => new OutboundGuard({ allowPrivateNetworks: false, allowHosts });

describe('OutboundGuard', () => {
  it('refuses loopback by address, by name (after DNS) and as IPv4-mapped IPv6; nothing is sent', async () => {
    for (const url of [
      `http://127.0.0.1:${port}/x`,
      `http://localhost:${port}/x`,
      `http://[::ffff:127.0.0.1]:${port}/x`,
      `http://[::1]:${port}/x`,
      `http://0.0.0.0:${port}/x`,
    ]) {
      const err = await strict()
        .fetch(url, { method: 'POST', body: '{"secret":"conversation"}' })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(refusedByGuard(err), url).toBeInstanceOf(OutboundRefusedError);
    }
    expect(hits).toEqual([]);
  });

  it('does not follow a redirect, even when private networks are allowed', async () => {
    const res = await new OutboundGuard({ allowPrivateNetworks: true, allowHosts: [] }).fetch(`http://127.0.0.1:${port}/redirect`);
    expect(res.status).toBe(302);
    expect(hits).toEqual(['GET /redirect']);
  });

  it('lets through what the operator allowed: a named host (with its port), an address range', async () => {
    const post = (guard: OutboundGuard, url: string) => guard.fetch(url, { method: 'POST', body: 'hello', headers: { 'x-test': 'yes' } });
    const res = await post(strict([`localhost:${port}`]), `http://localhost:${port}/named`);
    expect([res.status, res.headers.get('x-echo'), await res.json()]).toEqual([200, 'yes', { got: 'hello' }]);
    // The name on another port, or another name resolving to the same address, is not allowed.
    expect(
      refusedByGuard(await post(strict([`localhost:${port + 1}`]), `http://localhost:${port}/x`).catch((e: unknown) => e)),
    ).toBeDefined();
    expect(refusedByGuard(await post(strict(['localhost']), `http://127.0.0.1:${port}/x`).catch((e: unknown) => e))).toBeDefined();
    // A range lets any name resolving into it through.
    expect((await post(strict(['127.0.0.0/8']), `http://localhost:${port}/range`)).status).toBe(200);
    expect(hits).toEqual(['POST /named', 'POST /range']);
  });

  it('sends a request once more when the kept-alive connection it went out on was closed, and only once', async () => {
    const guard = new OutboundGuard({ allowPrivateNetworks: true, allowHosts: [] });
    const post = () => guard.fetch(`http://127.0.0.1:${port}/hang-up`, { method: 'POST', body: 'event' });
    // The first request leaves a connection open for the next (once its answer is read).
    expect(await (await post()).json()).toEqual({ got: 'event' });
    hangUps = 1;
    const res = await post();
    expect([res.status, await res.json()]).toEqual([200, { got: 'event' }]);
    expect(hits).toEqual(['POST /hang-up', 'POST /hang-up', 'POST /hang-up']);
    // Closed again on the new connection: that is the server's answer, and the error says so.
    hangUps = 2;
    await expect(post()).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(hits).toHaveLength(5);
    // A connection that is not a kept-alive one is not tried again.
    hangUps = 1;
    const fresh = new OutboundGuard({ allowPrivateNetworks: true, allowHosts: [] });
    await expect(fresh.fetch(`http://127.0.0.1:${port}/hang-up`, { method: 'POST', body: 'x' })).rejects.toMatchObject({
      code: 'ECONNRESET',
    });
    expect(hits).toHaveLength(6);
  });

  it('streams an answer as it comes', async () => {
    const res = await new OutboundGuard({ allowPrivateNetworks: true, allowHosts: [] }).fetch(`http://127.0.0.1:${port}/stream`);
    expect(await res.text()).toBe('data: a\n\ndata: b\n\ndata: c\n\n');
  });

  it('knows which addresses are private, and parses allow-list entries', () => {
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '::1',
      '::',
      'fd00::1',
      'fe80::1',
      'ff02::1',
      '::ffff:10.0.0.1',
    ]) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
    for (const a of ['8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8']) expect(isPrivateAddress(a), a).toBe(false);
    expect(parseAllowEntry('Ollama.svc:11434')).toEqual({ kind: 'host', host: 'ollama.svc', port: 11434 });
    expect(parseAllowEntry('[fd00::1]:80')).toEqual({ kind: 'host', host: 'fd00::1', port: 80 });
    expect(parseAllowEntry('10.0.0.0/8')).toEqual({ kind: 'range', address: '10.0.0.0', prefix: 8 });
    for (const bad of ['http://x', 'x:99999', '10.0.0.0/33', 'a b']) expect(typeof parseAllowEntry(bad), bad).toBe('string');
  });
});
