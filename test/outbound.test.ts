// Server-side requests to URLs a tenant chose (issue 16, finding 6): an OpenAI-compatible base URL cannot reach our
// own network (no request arrives) unless the operator allows the host, redirects are not followed, a base URL with
// a query, fragment or credentials is refused when saved, and a provider's error body never reaches the tenant
// (call events, 502 messages).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyError } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify } from '../src/http/errors.js';
import { httpProviderError } from '../src/lib/provider-error.js';
import { MemoryTransport } from '../src/voice/transports/memory.js';
import { type FakeDeepgram, startFakeDeepgram } from './fakes/deepgram.js';
import { FakeElevenLabs } from './fakes/elevenlabs.js';
import { FakeOpenAI } from './fakes/openai.js';
import { buildTestApp, call, signup, type TestApp, useTestApp } from './helpers.js';

const SECRET = 'internal-secret-d41d8cd98f00b204';
let openai: FakeOpenAI;
/** An internal service: answers every request with an error page that holds a secret, counting what it gets. */
let internal: Server;
let internalHits: string[] = [];
let internalUrl = '';

beforeAll(async () => {
  openai = await new FakeOpenAI().start();
  internal = createServer((req, res) => {
    internalHits.push(`${req.method} ${req.url}`);
    if (req.url?.startsWith('/redirect')) return res.writeHead(307, { location: `${openai.baseURL}/chat/completions` }).end();
    res
      .writeHead(500, { 'content-type': 'application/json' })
      .end(JSON.stringify({ error: { message: `database password is ${SECRET}` } }));
  });
  await new Promise<void>((r) => internal.listen(0, '127.0.0.1', r));
  internalUrl = `http://127.0.0.1:${(internal.address() as AddressInfo).port}`;
});
afterAll(async () => {
  internal.closeAllConnections();
  await new Promise((r) => internal.close(r));
  await openai.stop();
});

async function chatWith(t: TestApp, baseUrl: string) {
  const s = await signup(t.app);
  const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, {
    providers: { llm: { provider: 'openai_compatible', model: 'gpt-4o-mini', base_url: baseUrl } },
    provider_keys: { openai_compatible: openai.apiKey },
  });
  expect(put.statusCode, put.body).toBe(200);
  const res = await call(t.app, 'POST', '/api/v1/chat', s.access_token, { message: 'What are your opening hours?' });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { reply: string };
}

describe('providers.llm.base_url (openai_compatible) goes through the outbound guard', () => {
  it('refuses a loopback base URL in production settings: nothing reaches the server, the local responder answers', async () => {
    const t = await buildTestApp({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'false' });
    try {
      internalHits = [];
      const before = openai.chatRequests.length;
      const reply = await chatWith(t, openai.baseURL);
      expect(reply.reply).not.toContain('You said');
      expect(openai.chatRequests.length).toBe(before);
      await chatWith(t, `http://localhost:${new URL(internalUrl).port}/v1`);
      expect(internalHits).toEqual([]);
      expect(t.logs.join('\n')).toContain('resolves to a private network address; refused');
    } finally {
      await t.close();
    }
  }, 90_000);

  it('lets a host on OUTBOUND_ALLOW_HOSTS through (an in-cluster Ollama)', async () => {
    const port = new URL(openai.baseURL).port;
    const t = await buildTestApp({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'false', OUTBOUND_ALLOW_HOSTS: `localhost:${port}` });
    try {
      const reply = await chatWith(t, `http://localhost:${port}/v1`);
      expect(reply.reply).toBe('You said: What are your opening hours?');
    } finally {
      await t.close();
    }
  }, 90_000);

  describe('with the default settings', () => {
    // One app for both: each test signs up a tenant of its own.
    const t = useTestApp();

    it('does not follow a redirect from the base URL', async () => {
      internalHits = [];
      const before = openai.chatRequests.length;
      const reply = await chatWith(t, `${internalUrl}/redirect`);
      expect(internalHits.length).toBeGreaterThan(0);
      expect(openai.chatRequests.length).toBe(before);
      expect(reply.reply).not.toContain('You said');
    }, 90_000);

    it('refuses a base URL with a query string, a fragment or credentials when saved (422, the field named)', async () => {
      const s = await signup(t.app);
      for (const base_url of [
        'http://ollama.example/v1?x=1',
        'http://ollama.example/v1?',
        'http://ollama.example/v1#frag',
        'http://user:pw@ollama.example/v1',
      ]) {
        const res = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, {
          providers: { llm: { provider: 'openai_compatible', base_url } },
        });
        expect(res.statusCode, base_url).toBe(422);
        expect(res.json().error.code).toBe('validation_error');
        expect(res.json().error.details.map((d: { field: string }) => d.field)).toContain('body.providers.llm.base_url');
      }
      const ok = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, {
        providers: { llm: { provider: 'openai_compatible', base_url: 'https://ollama.example:11434/v1' } },
      });
      expect(ok.statusCode).toBe(200);
    }, 90_000);
  });
});

describe("a provider's error body never reaches the tenant", () => {
  let deepgram: FakeDeepgram;
  let elevenlabs: FakeElevenLabs;
  let t: TestApp;
  beforeAll(async () => {
    deepgram = await startFakeDeepgram({});
    elevenlabs = await new FakeElevenLabs().start();
    t = await buildTestApp({ DEEPGRAM_BASE_URL: deepgram.url, ELEVENLABS_BASE_URL: elevenlabs.baseUrl });
  });
  afterAll(async () => {
    await t.close();
    await Promise.all([deepgram.close(), elevenlabs.stop()]);
  });

  it('provider.fallback events carry the status and a short reason only', async () => {
    const s = await signup(t.app);
    const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, {
      greeting: null,
      call: { vad: 'energy' },
      providers: {
        stt: { provider: 'deepgram' },
        llm: { provider: 'openai_compatible', model: 'gpt-4o-mini', base_url: `${internalUrl}/v1` },
        tts: { provider: 'elevenlabs', voice: elevenlabs.voiceId },
      },
      provider_keys: { deepgram: deepgram.apiKey, elevenlabs: elevenlabs.apiKey },
    });
    expect(put.statusCode, put.body).toBe(200);
    deepgram.transcripts = ['What are your opening hours?'];
    const transport = new MemoryTransport(16000);
    const row = await t.deps.calls.start(s.tenant.id, { direction: 'web' });
    const outcome = t.deps.voice.run(s.tenant.id, row.id, transport);
    // The caller speaks (a loud tone is speech to the energy VAD and to the fake Deepgram, which answers its script).
    await transport.say(Int16Array.from({ length: 16000 * 1.5 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 220 * i) / 16000))));
    const deadline = Date.now() + 30_000;
    let events: { type: string; extraData: unknown }[] = [];
    while (!events.some((e) => e.type === 'provider.fallback') && Date.now() < deadline) {
      await sleep(100);
      events = await t.deps.calls.events(s.tenant.id, row.id);
    }
    transport.hangup();
    await outcome;
    const fallback = events.find((e) => e.type === 'provider.fallback');
    expect(fallback?.extraData).toEqual({ stage: 'llm', provider: 'openai_compatible', status: 500, reason: 'server_error' });
    const api = await call(t.app, 'GET', `/api/v1/calls/${row.id}/events`, s.access_token);
    expect(api.statusCode).toBe(200);
    expect(api.body).toContain('provider.fallback');
    expect(api.body).not.toContain(SECRET);
  }, 60_000);

  it('a 502 provider_error names the provider, the status and a reason, not what the provider said', () => {
    const err = httpProviderError('openai_compatible', 500, `database password is ${SECRET}`, null);
    const out = classify(err as unknown as FastifyError, true);
    expect(out).toEqual({ status: 502, code: 'provider_error', message: 'openai_compatible: HTTP 500 (server error)' });
  });
});
