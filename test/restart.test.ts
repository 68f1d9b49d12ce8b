// A restart on the same data folder keeps every tenant, user and setting, and old access tokens stay valid.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { buildDeps, closeDeps } from '../src/deps.js';
import { buildApp } from '../src/http/app.js';
import { FakeOpenAI } from './fakes/openai.js';
import { bearer, signup } from './helpers.js';
import { seedDataDir } from './db-snapshot.js';

async function start(dataDir: string, env: Record<string, string> = {}) {
  // No SECRET_KEY: the development key generated into the data folder must be reused.
  const config = loadConfig({ NODE_ENV: 'development', DATA_DIR: dataDir, ...env });
  const deps = await buildDeps(config, pino({ level: 'silent' }));
  const app = await buildApp(deps);
  return { app, stop: async () => (await app.close(), await closeDeps(deps)) };
}

describe('restart on the embedded database', () => {
  it('keeps tenants, users, settings and API keys; old access and refresh tokens still work', async () => {
    const dir = await seedDataDir(mkdtempSync(path.join(tmpdir(), 'va-restart-')));
    const first = await start(dir);
    const s = await signup(first.app);
    await first.app.inject({
      method: 'PUT',
      url: '/api/v1/settings/tenant',
      headers: bearer(s.access_token),
      payload: { agent_name: 'Persisted', provider_keys: { deepgram: 'dg-key-0123456789' } },
    });
    const key = (
      await first.app.inject({ method: 'POST', url: '/api/v1/api-keys', headers: bearer(s.access_token), payload: { name: 'k' } })
    ).json().key;
    await first.stop();

    const second = await start(dir);
    try {
      const me = await second.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(s.access_token) });
      expect(me.statusCode).toBe(200);
      expect(me.json().tenant.id).toBe(s.tenant.id);
      const settings = (await second.app.inject({ method: 'GET', url: '/api/v1/settings/tenant', headers: bearer(key) })).json();
      expect(settings.agent_name).toBe('Persisted');
      expect(settings.provider_keys.deepgram).toEqual({ configured: true, last4: '6789' });
      const refreshed = await second.app.inject({
        method: 'POST',
        url: '/api/v1/auth/refresh',
        payload: { refresh_token: s.refresh_token },
      });
      expect(refreshed.statusCode).toBe(200);
      const login = await second.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email: s.user.email, password: 'correct horse battery' },
      });
      expect(login.statusCode).toBe(200);
    } finally {
      await second.stop();
    }
  });

  it('a conversation continues after a restart: the model sees every earlier turn, read from the database', async () => {
    const fake = await new FakeOpenAI().start();
    const dir = await seedDataDir(mkdtempSync(path.join(tmpdir(), 'va-restart-chat-')));
    const env = { OPENAI_BASE_URL: fake.baseURL };
    try {
      const first = await start(dir, env);
      const s = await signup(first.app);
      await first.app.inject({
        method: 'PUT',
        url: '/api/v1/settings/tenant',
        headers: bearer(s.access_token),
        payload: { providers: { llm: { provider: 'openai' } }, provider_keys: { openai: fake.apiKey } },
      });
      fake.chatScript = () => ({ text: 'Noted, your booking number is 4471.' });
      const opened = (
        await first.app.inject({
          method: 'POST',
          url: '/api/v1/chat',
          headers: bearer(s.access_token),
          payload: { message: 'I want to book a table for two.' },
        })
      ).json();
      await first.stop();

      const second = await start(dir, env);
      try {
        fake.chatScript = () => ({ text: 'Yes, booking 4471 is for two.' });
        const res = await second.app.inject({
          method: 'POST',
          url: '/api/v1/chat',
          headers: bearer(s.access_token),
          payload: { session_id: opened.session_id, message: 'Is my booking still there?' },
        });
        expect(res.statusCode, res.body).toBe(200);
        const messages = fake.chatRequests.at(-1)!.messages as { role: string; content: string }[];
        expect(messages.slice(1)).toEqual([
          { role: 'user', content: 'I want to book a table for two.' },
          { role: 'assistant', content: 'Noted, your booking number is 4471.' },
          { role: 'user', content: 'Is my booking still there?' },
        ]);
      } finally {
        await second.stop();
      }
    } finally {
      await fake.stop();
    }
  });
});
