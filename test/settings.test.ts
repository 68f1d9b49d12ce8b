import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantConfigs } from '../src/db/schema.js';
import { buildTestApp, call, type Session, type TestApp, twoTenants, uniqueEmail } from './helpers.js';

let t: TestApp;
let a: Session;
let b: Session;
beforeAll(async () => {
  t = await buildTestApp();
  ({ a, b } = await twoTenants(t.app));
});
afterAll(() => t.close());

const req = (method: Parameters<typeof call>[1], url: string, token: string, payload?: object) => call(t.app, method, url, token, payload);

describe('tenant settings', () => {
  it('starts with defaults that need no provider keys', async () => {
    const s = (await req('GET', '/api/v1/settings/tenant', b.access_token)).json();
    expect(s).toMatchObject({ agent_name: 'Assistant', language: 'en', rag: { enabled: true, top_k: 5, min_score: 0.2 } });
    expect(s.providers).toMatchObject({
      stt: { provider: 'local' },
      llm: { provider: 'local' },
      tts: { provider: 'local' },
      embeddings: { provider: 'local' },
    });
    expect(s.provider_keys.openai).toEqual({ configured: false, last4: null });
  });

  it('merges updates: omitted fields keep their values', async () => {
    await req('PUT', '/api/v1/settings/tenant', a.access_token, {
      agent_name: 'Nora',
      greeting: 'Hello, Sunrise Clinic.',
      rag: { top_k: 8 },
      providers: { llm: { provider: 'openai', model: 'gpt-4o-mini' }, tts: { provider: 'elevenlabs', voice: 'Rachel' } },
    });
    const s = (
      await req('PUT', '/api/v1/settings/tenant', a.access_token, { rag: { min_score: 0.5 }, providers: { llm: { temperature: 0.3 } } })
    ).json();
    expect(s).toMatchObject({ agent_name: 'Nora', greeting: 'Hello, Sunrise Clinic.', rag: { top_k: 8, min_score: 0.5 } });
    expect(s.providers.llm).toEqual({ provider: 'openai', model: 'gpt-4o-mini', temperature: 0.3 });
    expect(s.providers.tts).toEqual({ provider: 'elevenlabs', voice: 'Rachel' });
    const cleared = (await req('PUT', '/api/v1/settings/tenant', a.access_token, { greeting: null })).json();
    expect(cleared.greeting).toBeNull();
    expect(cleared.agent_name).toBe('Nora');
  });

  it('returns providers.stt.local_model (GET and PUT used to drop it) and clears a nullable field with null', async () => {
    expect((await req('GET', '/api/v1/settings/tenant', b.access_token)).json().providers.stt).toEqual({
      provider: 'local',
      local_model: 'domain',
    });
    const set = (
      await req('PUT', '/api/v1/settings/tenant', b.access_token, {
        providers: { stt: { local_model: 'general' } },
        call: { transfer_number: '+14155550100' },
      })
    ).json();
    expect(set.providers.stt).toEqual({ provider: 'local', local_model: 'general' });
    expect((await req('GET', '/api/v1/settings/tenant', b.access_token)).json().providers.stt.local_model).toBe('general');
    const cleared = (await req('PUT', '/api/v1/settings/tenant', b.access_token, { call: { transfer_number: null } })).json();
    expect(cleared.call).toMatchObject({ transfer_number: null, endpointing_ms: 700 });
    expect(cleared.providers.stt.local_model).toBe('general');
  });

  it('stores provider keys encrypted, never returns them, and removes them with null', async () => {
    const secret = 'sk-test-0123456789abcdefWXYZ';
    const s = (await req('PUT', '/api/v1/settings/tenant', a.access_token, { provider_keys: { openai: secret } })).json();
    expect(s.provider_keys.openai).toEqual({ configured: true, last4: 'WXYZ' });
    expect(JSON.stringify(s)).not.toContain(secret);
    const [row] = await t.deps.database.db.select().from(tenantConfigs).where(eq(tenantConfigs.tenantId, a.tenant.id));
    expect(JSON.stringify(row)).not.toContain(secret);
    expect(row!.providerKeys.openai).toMatch(/^v1\./);
    expect((await t.deps.settings.forProviders(a.tenant.id)).keys).toEqual({ openai: secret });
    // Another tenant's keys are separate.
    expect((await t.deps.settings.forProviders(b.tenant.id)).keys).toEqual({});
    // Untouched by an unrelated update; removed by null.
    await req('PUT', '/api/v1/settings/tenant', a.access_token, { agent_name: 'Nora' });
    expect((await t.deps.settings.forProviders(a.tenant.id)).keys).toEqual({ openai: secret });
    const removed = (await req('PUT', '/api/v1/settings/tenant', a.access_token, { provider_keys: { openai: null } })).json();
    expect(removed.provider_keys.openai.configured).toBe(false);
    expect((await t.deps.settings.forProviders(a.tenant.id)).keys).toEqual({});
  });

  it('the settings in clear are opened once per change of the stored row, shared frozen, and each tenant’s own', async () => {
    const settings = t.deps.settings;
    await req('PUT', '/api/v1/settings/tenant', a.access_token, { provider_keys: { openai: 'sk-test-first-0123456789' } });
    const first = await settings.forProviders(a.tenant.id);
    // Unchanged row: the same object (no parse, no decryption), which no caller can change for the others.
    expect(await settings.forProviders(a.tenant.id)).toBe(first);
    expect(Object.isFrozen(first.settings.call)).toBe(true);
    expect(() => {
      (first.keys as Record<string, string>).openai = 'changed';
    }).toThrow(TypeError);
    expect((await settings.forProviders(b.tenant.id)).keys).toEqual({});
    // Changed (here by a write to the row itself, as another instance would make it): read anew.
    await req('PUT', '/api/v1/settings/tenant', a.access_token, { provider_keys: { openai: 'sk-test-second-0123456789' } });
    const second = await settings.forProviders(a.tenant.id);
    expect(second).not.toBe(first);
    expect(second.keys).toEqual({ openai: 'sk-test-second-0123456789' });
    await t.deps.database.db.update(tenantConfigs).set({ agentName: 'Written elsewhere' }).where(eq(tenantConfigs.tenantId, a.tenant.id));
    expect((await settings.forProviders(a.tenant.id)).settings.agent_name).toBe('Written elsewhere');
  });

  it('validation errors name the field and change nothing', async () => {
    const before = (await req('GET', '/api/v1/settings/tenant', a.access_token)).json();
    const cases: [object, string][] = [
      [{ rag: { top_k: 500 } }, 'body.rag.top_k'],
      [{ rag: { min_score: -1 } }, 'body.rag.min_score'],
      [{ providers: { llm: { provider: 'skynet' } } }, 'body.providers.llm.provider'],
      [{ language: 'English!!' }, 'body.language'],
      [{ provider_keys: { acme: 'x'.repeat(20) } }, 'body.provider_keys.acme'],
      [{ agent_name: 42 }, 'body.agent_name'],
      [{ surprise: true }, 'body.surprise'],
    ];
    for (const [payload, field] of cases) {
      const res = await req('PUT', '/api/v1/settings/tenant', a.access_token, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(422);
      expect(res.json().error.details.map((d: { field: string }) => d.field)).toContain(field);
    }
    const after = (await req('GET', '/api/v1/settings/tenant', a.access_token)).json();
    expect(after).toEqual(before);
  });

  it('members can read but not change tenant settings', async () => {
    const email = uniqueEmail('member');
    await req('POST', '/api/v1/users', a.access_token, { email, password: 'member password 1' });
    const token = (
      await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: 'member password 1' } })
    ).json().access_token;
    expect((await req('GET', '/api/v1/settings/tenant', token)).statusCode).toBe(200);
    expect((await req('PUT', '/api/v1/settings/tenant', token, { agent_name: 'Hacked' })).statusCode).toBe(403);
  });
});

describe('user settings', () => {
  it('each user has their own preferences', async () => {
    const empty = (await req('GET', '/api/v1/settings/user', a.access_token)).json();
    expect(empty).toMatchObject({ preferred_voice: null, preferred_model: null });
    await req('PUT', '/api/v1/settings/user', a.access_token, { preferred_voice: 'en-us+f3' });
    const s = (await req('PUT', '/api/v1/settings/user', a.access_token, { preferred_model: 'gpt-4o' })).json();
    expect(s).toMatchObject({ preferred_voice: 'en-us+f3', preferred_model: 'gpt-4o' });
    expect((await req('GET', '/api/v1/settings/user', b.access_token)).json().preferred_voice).toBeNull();
    expect((await req('PUT', '/api/v1/settings/user', a.access_token, { voice: 'x' })).statusCode).toBe(422);
  });
});

describe('settings: tenant isolation', () => {
  it('tenant B never sees or changes tenant A’s settings', async () => {
    await req('PUT', '/api/v1/settings/tenant', a.access_token, { system_prompt: 'A-only prompt' });
    await req('PUT', '/api/v1/settings/tenant', b.access_token, { system_prompt: 'B prompt' });
    expect((await req('GET', '/api/v1/settings/tenant', a.access_token)).json().system_prompt).toBe('A-only prompt');
    expect((await req('GET', '/api/v1/settings/tenant', b.access_token)).json().system_prompt).toBe('B prompt');
  });
});
