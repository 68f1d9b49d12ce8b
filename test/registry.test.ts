// The provider registry turns a tenant's settings and knowledge into engines, from the engine table
// (providers/engines.ts): the table and what is derived from it, whose key an engine gets, the rate each engine
// runs at, and the local STT's language model.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OutboundGuard } from '../src/lib/outbound.js';
import { ProviderError } from '../src/lib/provider-error.js';
import {
  type Engine,
  ENGINE_NAMES,
  ENGINES,
  type EngineKind,
  localEngineOf,
  PROVIDER_KEY_NAMES,
  rateFor,
} from '../src/providers/engines.js';
import { credentialFor, PLATFORM_VENDORS, type PlatformCredentials, VENDORS } from '../src/providers/vendors.js';
import { EmbedderRegistry } from '../src/rag/embedders/registry.js';
import { LocalEmbedder } from '../src/rag/embedders/local-embedder.js';
import { OpenAIEmbedder } from '../src/rag/embedders/openai-embedder.js';
import { providersSchema } from '../src/services/settings.js';
import type { TurnResult } from '../src/voice/agent.js';
import { ProviderRegistry } from '../src/voice/registry.js';
import { FallbackStt } from '../src/voice/stt/fallback-stt.js';
import { PocketsphinxStt } from '../src/voice/stt/pocketsphinx-stt.js';
import { EspeakTts } from '../src/voice/tts/espeak-tts.js';
import { FallbackTts } from '../src/voice/tts/fallback-tts.js';
import { buildTestApp, call, signup, type TestApp, waitFor } from './helpers.js';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ INGEST_CONCURRENCY: '1' });
});
afterAll(async () => t.close());

async function localStt(tenantId: string): Promise<PocketsphinxStt> {
  const { stt } = await t.deps.providers.voiceFor(tenantId, { sampleRate: 8000 });
  expect(stt).toBeInstanceOf(PocketsphinxStt);
  return stt as PocketsphinxStt;
}

async function upload(token: string, title: string, content: string): Promise<string> {
  const doc = await call(t.app, 'POST', '/api/v1/documents', token, { title, content });
  expect(doc.statusCode, doc.body).toBe(202);
  const id: string = doc.json().id;
  await waitFor('document ready', async () =>
    (await call(t.app, 'GET', `/api/v1/documents/${id}`, token)).json().status === 'ready' ? true : undefined,
  );
  return id;
}

describe('local speech-to-text language model', () => {
  it('is built from the tenant’s live documents, follows their changes, and is the general model without any', async () => {
    const s = await signup(t.app);
    expect((await localStt(s.tenant.id)).mode).toBe('general');

    await upload(s.access_token, 'Parking', 'Free parking is behind the clinic on Elm Street. Therapy sessions last forty minutes.');
    const first = await localStt(s.tenant.id);
    expect(first.mode).toBe('domain');
    // Every word of this document is in the dictionary; a made-up word added next is reported as unknown: proof the model is built from the corpus.
    expect(first.outOfVocabulary).toEqual([]);
    const id = await upload(s.access_token, 'Names', 'Ask for Doctor Zyxwarble at reception.');
    expect((await localStt(s.tenant.id)).outOfVocabulary).toContain('zyxwarble');

    // Another tenant's knowledge never reaches this tenant's model.
    const other = await signup(t.app);
    await upload(other.access_token, 'Secret', 'The vault code word is Quuxtrombone.');
    expect((await localStt(s.tenant.id)).outOfVocabulary).not.toContain('quuxtrombone');

    // A deleted document leaves the model at the next call.
    expect((await call(t.app, 'DELETE', `/api/v1/documents/${id}`, s.access_token)).statusCode).toBe(204);
    expect((await localStt(s.tenant.id)).outOfVocabulary).not.toContain('zyxwarble');

    // The tenant can ask for the general model.
    const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, { providers: { stt: { local_model: 'general' } } });
    expect(put.statusCode, put.body).toBe(200);
    expect((await localStt(s.tenant.id)).mode).toBe('general');
  });
});

describe("a call's agent", () => {
  it('searches the knowledge with the embedder of the settings read as the call started: a turn reads no settings', async () => {
    const s = await signup(t.app);
    await upload(s.access_token, 'Parking', 'Free parking is behind the clinic on Elm Street. Therapy sessions last forty minutes.');
    const reads = vi.spyOn(t.deps.settings, 'forProviders');
    try {
      const { agent } = await t.deps.providers.agentFor(s.tenant.id);
      expect(reads).toHaveBeenCalledTimes(1);
      for (const said of ['Where can I park?', 'How long is a therapy session?']) {
        let turn: TurnResult | undefined;
        for await (const event of agent.reply([], said)) if (event.type === 'done') turn = event.turn;
        // The passage was found: the search ran, with the tenant's embedder.
        expect(turn?.citations.map((c) => c.title)).toEqual(['Parking']);
      }
      // The first search used to look the embedder up in the tenant's settings: a round trip before the first answer.
      expect(reads).toHaveBeenCalledTimes(1);
    } finally {
      reads.mockRestore();
    }
  });
});

describe('the engine table', () => {
  const rows = ENGINES as readonly Engine[];
  const kinds: EngineKind[] = ['stt', 'tts', 'llm', 'embeddings'];

  it("derives the settings' engine names and the provider key names", () => {
    // Today's names stay (a new row adds to them); the local engine is the default.
    const today = {
      stt: ['local', 'deepgram'],
      tts: ['local', 'elevenlabs'],
      llm: ['local', 'openai', 'anthropic', 'openai_compatible'],
      embeddings: ['local', 'openai'],
    };
    for (const kind of kinds) {
      expect(ENGINE_NAMES[kind]).toEqual(expect.arrayContaining(today[kind]));
      expect(ENGINE_NAMES[kind][0]).toBe('local');
      expect(ENGINE_NAMES[kind]).toEqual(rows.filter((e) => e.kind === kind).map((e) => e.name));
    }
    expect(PROVIDER_KEY_NAMES).toEqual(expect.arrayContaining(['openai', 'anthropic', 'deepgram', 'elevenlabs', 'openai_compatible']));
    expect(PROVIDER_KEY_NAMES).toEqual(
      [...new Set(rows.flatMap((e) => (e.vendor ? [e.vendor] : [])))].sort(
        (a, b) => Object.keys(VENDORS).indexOf(a) - Object.keys(VENDORS).indexOf(b),
      ),
    );
    // The settings accept exactly the table's names.
    for (const kind of kinds) {
      for (const name of ENGINE_NAMES[kind]) expect(providersSchema.parse({ [kind]: { provider: name } })[kind].provider).toBe(name);
      expect(() => providersSchema.parse({ [kind]: { provider: 'nope' } })).toThrow();
    }
  });

  it('has one row per name, one local engine per kind (first: the default), known vendors, ascending rates', () => {
    for (const kind of kinds) {
      const ofKind = rows.filter((e) => e.kind === kind);
      expect(new Set(ofKind.map((e) => e.name)).size).toBe(ofKind.length);
      expect(ofKind.filter((e) => e.vendor === undefined)).toEqual([ofKind[0]]);
      expect(localEngineOf(kind).name).toBe('local');
    }
    for (const e of rows) {
      if (e.vendor) expect(Object.keys(VENDORS)).toContain(e.vendor);
      if (e.kind === 'stt' || e.kind === 'tts') {
        expect(e.sampleRates?.length).toBeGreaterThan(0);
        expect([...e.sampleRates!].sort((a, b) => a - b)).toEqual(e.sampleRates);
      } else expect(e.sampleRates).toBeUndefined();
    }
    // Every vendor with a platform credential names both its variables.
    for (const v of PLATFORM_VENDORS) expect(Object.keys(VENDORS[v].env)).toEqual(['apiKey', 'baseUrl', 'baseUrlProtocols']);
  });

  it('runs the default engines at the rates they always had, and each engine at its own', () => {
    const at = (kind: 'stt' | 'tts', name: string, line: number) =>
      rateFor(rows.find((e) => e.kind === kind && e.name === name) as Engine<'stt'>, line);
    const lines = [8000, 16000, 24000, 48000];
    expect(lines.map((l) => at('stt', 'local', l))).toEqual([8000, 16000, 16000, 16000]);
    expect(lines.map((l) => at('tts', 'local', l))).toEqual([8000, 16000, 24000, 24000]);
    expect(lines.map((l) => at('stt', 'deepgram', l))).toEqual([8000, 16000, 16000, 16000]);
    expect(lines.map((l) => at('tts', 'elevenlabs', l))).toEqual([8000, 16000, 24000, 24000]);
    expect(at('tts', 'elevenlabs', 22050)).toBe(22050);
  });
});

describe("keys: the tenant's, else the platform's", () => {
  const platform: PlatformCredentials = {
    openai: { apiKey: 'platform-openai', baseUrl: 'http://127.0.0.1:1/v1' },
    deepgram: { apiKey: 'platform-deepgram' },
  };

  it('is one rule for every vendor', () => {
    expect(credentialFor('openai', { openai: 'tenant-openai' }, platform)).toEqual({
      apiKey: 'tenant-openai',
      baseUrl: 'http://127.0.0.1:1/v1',
    });
    expect(credentialFor('openai', {}, platform)).toEqual({ apiKey: 'platform-openai', baseUrl: 'http://127.0.0.1:1/v1' });
    expect(credentialFor('elevenlabs', {}, platform)).toBeUndefined();
    expect(credentialFor('elevenlabs', { elevenlabs: 'tenant-el' }, platform)).toEqual({ apiKey: 'tenant-el', baseUrl: undefined });
    // A tenant's own server needs no key, and the platform holds none for it.
    expect(credentialFor('openai_compatible', {}, platform)).toEqual({ apiKey: '', baseUrl: undefined });
    expect(credentialFor(undefined, { openai: 'x' }, platform)).toEqual({ apiKey: '', baseUrl: undefined });
  });

  /** A registry over the test app's database, with these platform credentials, logging into `logs`. */
  function registry(credentials: PlatformCredentials, logs: string[]): ProviderRegistry {
    const log = pino({ level: 'warn' }, { write: (line: string) => void logs.push(line) });
    const outbound = new OutboundGuard({ allowPrivateNetworks: true, allowHosts: [] });
    return new ProviderRegistry(t.deps.settings, t.deps.retriever, t.deps.embedders, { credentials }, log, {
      outbound,
      signingSecrets: async () => [],
      log,
    });
  }

  it("voice: a cloud engine without any key is replaced by the local one; with the tenant's or the platform's key it leads a chain at its own rate", async () => {
    const s = await signup(t.app);
    const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, {
      providers: {
        stt: { provider: 'deepgram', local_model: 'general' },
        tts: { provider: 'elevenlabs', voice: 'some-voice-id' },
        llm: { provider: 'anthropic' },
      },
    });
    expect(put.statusCode, put.body).toBe(200);

    const logs: string[] = [];
    const bare = await registry({}, logs).voiceFor(s.tenant.id, { sampleRate: 8000 });
    expect(bare.stt).toBeInstanceOf(PocketsphinxStt);
    expect(bare.tts).toBeInstanceOf(EspeakTts);
    expect(logs.join('')).toContain('Deepgram chosen but no key configured; falling back to the local speech-to-text');
    expect(logs.join('')).toContain('ElevenLabs chosen but no key configured; falling back to the local text-to-speech');
    expect(logs.join('')).toContain('Anthropic chosen but no key configured; falling back to the local responder');

    const keyed = registry({ deepgram: { apiKey: 'dg' }, elevenlabs: { apiKey: 'el' }, anthropic: { apiKey: 'an' } }, []);
    const phone = await keyed.voiceFor(s.tenant.id, { sampleRate: 8000 });
    expect(phone.stt).toBeInstanceOf(FallbackStt);
    expect([phone.stt.provider, phone.stt.sampleRate]).toEqual(['deepgram', 8000]);
    expect(phone.tts).toBeInstanceOf(FallbackTts);
    expect([phone.tts.provider, phone.tts.sampleRate]).toEqual(['elevenlabs', 8000]);
    const wideband = await keyed.voiceFor(s.tenant.id, { sampleRate: 48000 });
    expect([wideband.stt.sampleRate, wideband.tts.sampleRate]).toEqual([16000, 24000]);

    // The tenant's own key, the platform holding none.
    expect(
      (await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, { provider_keys: { elevenlabs: 'tenant-elevenlabs-key' } }))
        .statusCode,
    ).toBe(200);
    expect((await registry({}, []).voiceFor(s.tenant.id, { sampleRate: 8000 })).tts).toBeInstanceOf(FallbackTts);
  });

  it('voice: an engine the settings cannot make (an OpenAI-compatible server without its URL) leaves the local one, and says why', async () => {
    const s = await signup(t.app);
    expect(
      (await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, { providers: { llm: { provider: 'openai_compatible' } } }))
        .statusCode,
    ).toBe(200);
    const logs: string[] = [];
    await registry({}, logs).agentFor(s.tenant.id);
    expect(logs.join('')).toContain('OpenAI-compatible server not usable with these settings; falling back to the local responder');
  });

  it('embeddings: the same rule, and a missing key is a configuration error naming both places', async () => {
    const s = await signup(t.app);
    const embedders = new EmbedderRegistry(t.deps.settings, {});
    expect(await embedders.forTenant(s.tenant.id)).toBeInstanceOf(LocalEmbedder);
    expect(
      (await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, { providers: { embeddings: { provider: 'openai' } } }))
        .statusCode,
    ).toBe(200);
    const missing = embedders.forTenant(s.tenant.id);
    await expect(missing).rejects.toThrow(ProviderError);
    await expect(missing).rejects.toThrow(
      'Embeddings provider is openai but no OpenAI API key is configured (settings provider_keys.openai or OPENAI_API_KEY)',
    );
    expect(await new EmbedderRegistry(t.deps.settings, platform).forTenant(s.tenant.id)).toBeInstanceOf(OpenAIEmbedder);
    expect(
      (await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, { provider_keys: { openai: 'tenant-openai-key' } })).statusCode,
    ).toBe(200);
    expect(await embedders.forTenant(s.tenant.id)).toBeInstanceOf(OpenAIEmbedder);
  });
});
