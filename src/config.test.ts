import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, ENV_VARIABLES, loadConfig, productionWarnings } from './config.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'va-config-'));

describe('config', () => {
  it('starts with nothing set: documented defaults', () => {
    const c = loadConfig({ DATA_DIR: tmp() });
    expect(c).toMatchObject({
      env: 'development',
      host: '127.0.0.1',
      port: 8000,
      databaseUrl: undefined,
      redisUrl: undefined,
      accessTokenTtlMs: 30 * 60_000,
    });
    expect(loadConfig({}).dataDir).toBe(path.resolve('./data'));
  });

  it("the pool's default depends on the database: 100 sockets to the embedded thread, 10 PostgreSQL connections", () => {
    expect(loadConfig({ DATA_DIR: tmp() }).databasePoolMax).toBe(100);
    expect(loadConfig({ DATA_DIR: tmp(), DATABASE_URL: 'postgres://db/va' }).databasePoolMax).toBe(10);
    expect(loadConfig({ DATA_DIR: tmp(), DATABASE_URL: 'postgres://db/va', DATABASE_POOL_MAX: '25' }).databasePoolMax).toBe(25);
    expect(() => loadConfig({ DATA_DIR: tmp(), DATABASE_POOL_MAX: '0' })).toThrow(/DATABASE_POOL_MAX/);
  });

  it('accepts every variable of the original design', () => {
    const c = loadConfig({
      DATA_DIR: tmp(),
      DATABASE_URL: 'postgresql://u:p@db:5432/app',
      REDIS_URL: 'redis://cache:6379',
      SECRET_KEY: 's'.repeat(40),
      JWT_ACCESS_TOKEN_EXPIRE_MINUTES: '15',
      LIVEKIT_URL: 'wss://lk.example.com',
      LIVEKIT_API_KEY: 'k',
      LIVEKIT_API_SECRET: 's',
      LIVEKIT_SIP_URI: 'sip.example.com',
      TWILIO_ACCOUNT_SID: `AC${'a'.repeat(32)}`,
      TWILIO_AUTH_TOKEN: 't',
      OPENAI_API_KEY: 'o',
      DEEPGRAM_API_KEY: 'd',
      ELEVENLABS_API_KEY: 'e',
      ANTHROPIC_API_KEY: 'a',
    });
    expect(c.accessTokenTtlMs).toBe(15 * 60_000);
    expect(c.credentials).toMatchObject({
      openai: { apiKey: 'o', baseUrl: undefined },
      anthropic: { apiKey: 'a', baseUrl: undefined },
      deepgram: { apiKey: 'd', baseUrl: undefined },
      elevenlabs: { apiKey: 'e', baseUrl: undefined },
    });
    expect(c.livekit.sipUri).toBe('sip.example.com');
  });

  it("groups each vendor's key and base URL, and checks the URL's scheme per vendor", () => {
    const c = loadConfig({
      DATA_DIR: tmp(),
      OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
      ANTHROPIC_BASE_URL: 'https://proxy.example.com',
      DEEPGRAM_BASE_URL: 'ws://127.0.0.1:9',
      ELEVENLABS_BASE_URL: 'http://127.0.0.1:10',
      DEEPGRAM_API_KEY: 'd',
    });
    expect(c.credentials.openai).toEqual({ apiKey: undefined, baseUrl: 'http://127.0.0.1:9/v1' });
    expect(c.credentials.anthropic?.baseUrl).toBe('https://proxy.example.com');
    expect(c.credentials.deepgram).toEqual({ apiKey: 'd', baseUrl: 'ws://127.0.0.1:9' });
    expect(c.credentials.elevenlabs?.baseUrl).toBe('http://127.0.0.1:10');
    // Deepgram streams over a websocket; the others speak HTTP. An empty value is unset.
    expect(() => loadConfig({ DATA_DIR: tmp(), DEEPGRAM_BASE_URL: 'https://api.deepgram.com' })).toThrow(
      /DEEPGRAM_BASE_URL: must be a URL starting with ws:\/\/ or wss:\/\//,
    );
    expect(() => loadConfig({ DATA_DIR: tmp(), OPENAI_BASE_URL: 'ftp://x', PORT: 'x' })).toThrow(/PORT[\s\S]*OPENAI_BASE_URL/);
    expect(loadConfig({ DATA_DIR: tmp(), OPENAI_API_KEY: ' ' }).credentials.openai?.apiKey).toBeUndefined();
  });

  it('names every bad variable', () => {
    const bad = () =>
      loadConfig({
        DATA_DIR: tmp(),
        PORT: 'eighty',
        DATABASE_URL: 'mysql://x',
        JWT_ACCESS_TOKEN_EXPIRE_MINUTES: '-5',
        TWILIO_ACCOUNT_SID: 'nope',
      });
    expect(bad).toThrow(ConfigError);
    try {
      bad();
    } catch (err) {
      const msg = (err as Error).message;
      for (const name of ['PORT', 'DATABASE_URL', 'JWT_ACCESS_TOKEN_EXPIRE_MINUTES', 'TWILIO_ACCOUNT_SID']) expect(msg).toContain(name);
    }
  });

  it('production warns, one line each, about HOST left at 127.0.0.1 and the embedded database; not otherwise', () => {
    const key = { SECRET_KEY: 'k'.repeat(32), DATA_DIR: mkdtempSync(path.join(tmpdir(), 'cfg-')) };
    const warnings = productionWarnings(loadConfig({ ...key, NODE_ENV: 'production' }));
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^HOST is 127\.0\.0\.1: .*set HOST=0\.0\.0\.0/);
    expect(warnings[1]).toMatch(/^the embedded database .* in production: .*set DATABASE_URL/);
    for (const w of warnings) expect(w).not.toContain('\n');
    const served = { ...key, NODE_ENV: 'production', HOST: '0.0.0.0', DATABASE_URL: 'postgres://db.internal/voice' };
    expect(productionWarnings(loadConfig(served))).toEqual([]);
    expect(productionWarnings(loadConfig({ ...key, NODE_ENV: 'development' }))).toEqual([]);
  });

  it('production refuses to start without SECRET_KEY and says why', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', DATA_DIR: tmp() })).toThrow(/SECRET_KEY: required when NODE_ENV=production/);
    expect(() => loadConfig({ NODE_ENV: 'production', SECRET_KEY: 'short' })).toThrow(/SECRET_KEY/);
  });

  it('development generates a key once and keeps it in the data folder', () => {
    const dir = tmp();
    const first = loadConfig({ DATA_DIR: dir }).secretKey;
    expect(first.length).toBeGreaterThanOrEqual(32);
    expect(loadConfig({ DATA_DIR: dir }).secretKey).toBe(first);
    const file = path.join(dir, 'secret_key');
    expect(readFileSync(file, 'utf8').trim()).toBe(first);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadConfig({ DATA_DIR: tmp() }).secretKey).not.toBe(first);
  });

  it('tenant URLs may reach private networks outside production only, unless set; the allow-list is checked', () => {
    const secret = { SECRET_KEY: 's'.repeat(40) };
    const allow = (env: Record<string, string>) => loadConfig(env).outbound.allowPrivateNetworks;
    expect(allow({ DATA_DIR: tmp() })).toBe(true);
    expect(allow({ NODE_ENV: 'production', ...secret })).toBe(false);
    expect(allow({ NODE_ENV: 'production', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', ...secret })).toBe(true);
    // The older name still works, and the new one wins when both are set.
    expect(allow({ NODE_ENV: 'production', TOOLS_ALLOW_PRIVATE_NETWORKS: 'true', ...secret })).toBe(true);
    expect(allow({ DATA_DIR: tmp(), TOOLS_ALLOW_PRIVATE_NETWORKS: 'true', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'false' })).toBe(false);
    expect(() => loadConfig({ DATA_DIR: tmp(), TOOLS_ALLOW_PRIVATE_NETWORKS: 'maybe' })).toThrow(/TOOLS_ALLOW_PRIVATE_NETWORKS/);
    expect(loadConfig({ DATA_DIR: tmp(), OUTBOUND_ALLOW_HOSTS: 'ollama.internal:11434, 10.0.5.0/24 ,vllm' }).outbound.allowHosts).toEqual([
      'ollama.internal:11434',
      '10.0.5.0/24',
      'vllm',
    ]);
    expect(() => loadConfig({ DATA_DIR: tmp(), OUTBOUND_ALLOW_HOSTS: 'http://ollama:11434' })).toThrow(/OUTBOUND_ALLOW_HOSTS/);
    expect(() => loadConfig({ DATA_DIR: tmp(), OUTBOUND_ALLOW_HOSTS: '10.0.0.0/40' })).toThrow(/OUTBOUND_ALLOW_HOSTS/);
  });

  it('phone numbers are checked against the Twilio account in production only, unless set', () => {
    const secret = { SECRET_KEY: 's'.repeat(40) };
    expect(loadConfig({ DATA_DIR: tmp() }).phoneNumbersSkipVerification).toBe(true);
    expect(loadConfig({ NODE_ENV: 'production', ...secret }).phoneNumbersSkipVerification).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', PHONE_NUMBERS_SKIP_VERIFICATION: 'true', ...secret }).phoneNumbersSkipVerification).toBe(
      true,
    );
    expect(loadConfig({ DATA_DIR: tmp(), PHONE_NUMBERS_SKIP_VERIFICATION: 'false' }).phoneNumbersSkipVerification).toBe(false);
  });

  it('webhook delivery: defaults, retention in days, a lease that outlasts the request timeout', () => {
    expect(loadConfig({ DATA_DIR: tmp() }).webhooks).toEqual({
      concurrency: 8,
      leaseMs: 60_000,
      retentionMs: 7 * 86_400_000,
      maxEndpointsPerTenant: 20,
    });
    const c = loadConfig({ DATA_DIR: tmp(), WEBHOOK_DELIVERY_CONCURRENCY: '0', WEBHOOK_RETENTION_DAYS: '30' });
    expect(c.webhooks).toMatchObject({ concurrency: 0, retentionMs: 30 * 86_400_000 });
    expect(() => loadConfig({ DATA_DIR: tmp(), WEBHOOK_LEASE_SECONDS: '5' })).toThrow(/WEBHOOK_LEASE_SECONDS/);
    expect(() => loadConfig({ DATA_DIR: tmp(), WEBHOOK_RETENTION_DAYS: '0' })).toThrow(/WEBHOOK_RETENTION_DAYS/);
  });

  it('.env.example documents every variable, and nothing else', () => {
    const documented = readFileSync(path.join(import.meta.dirname, '..', '.env.example'), 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z0-9_]+=/.test(l))
      .map((l) => l.split('=')[0]);
    expect([...documented].sort()).toEqual([...ENV_VARIABLES].sort());
  });
});
