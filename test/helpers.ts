// Test harness: the real app on a fresh database (embedded PGlite, or PGlite served over the Postgres wire
// protocol when TEST_DB=wire, so the `pg` driver path runs), driven with app.inject. Both start from a copy of one
// migrated database (db-snapshot.ts).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import pino from 'pino';
import { afterAll, beforeAll, expect } from 'vitest';
import { loadConfig } from '../src/config.js';
import { PGLITE_EXTENSIONS } from '../src/db/client.js';
import { buildDeps, closeDeps, type Deps } from '../src/deps.js';
import { type App, buildApp, LOG_SERIALIZERS, REDACT_PATHS } from '../src/http/app.js';
import { databaseSnapshot } from './db-snapshot.js';
import { runsInWirePass } from './wire-pass.js';

export const TEST_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * True in the wire pass (TEST_DB=wire). A real-time audio test whose subject is not the database (the simulator's
 * command line, engine failover, the local engines, the main thread under a hostile upload) runs in the embedded pass
 * only (`it.skipIf(WIRE_PASS)`): the rows it writes are the ones the other files check over the wire.
 */
export const WIRE_PASS = process.env.TEST_DB === 'wire';

export interface TestApp {
  app: App;
  deps: Deps;
  /** Every log line the app wrote, as raw JSON text. */
  logs: string[];
  close(): Promise<void>;
}

/** A throw-away database: a URL for the wire path, or undefined for the in-process PGlite. */
async function testDatabase(): Promise<{ url?: string; stop(): Promise<void> }> {
  if (process.env.TEST_DB !== 'wire') return { stop: async () => {} };
  const pglite = await PGlite.create({ loadDataDir: await databaseSnapshot(), extensions: PGLITE_EXTENSIONS });
  const server = new PGLiteSocketServer({ db: pglite, port: 0, host: '127.0.0.1' });
  await server.start();
  const url = `postgres://postgres:postgres@${server.getServerConn()}/postgres`;
  return {
    url,
    stop: async () => {
      await server.stop();
      await pglite.close();
    },
  };
}

/** In the embedded pass, the test file building an app must be one the wire pass runs too (test/wire-pass.ts). */
function checkWirePassSelection(): void {
  if (!process.env.VITEST || process.env.TEST_DB === 'wire') return;
  const file = expect.getState().testPath;
  if (file && !runsInWirePass(readFileSync(file, 'utf8'))) {
    throw new Error(`${file} builds a test app but the wire pass would skip it: see test/wire-pass.ts`);
  }
}

/** `cachePrefix`: Redis key namespace; two apps given the same one behave as two instances of one deployment. */
export async function buildTestApp(env: Record<string, string> = {}, opts: { cachePrefix?: string } = {}): Promise<TestApp> {
  checkWirePassSelection();
  const database = await testDatabase();
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: 'memory://',
    SECRET_KEY: 'test-secret-key-that-is-long-enough-0123456789',
    // Generous by default so tests that are not about rate limits never hit them.
    RATE_LIMIT_PER_IP_PER_MINUTE: '100000',
    RATE_LIMIT_PER_TENANT_PER_MINUTE: '100000',
    RATE_LIMIT_AUTH_PER_IP_PER_MINUTE: '100000',
    RATE_LIMIT_LOGIN_PER_EMAIL_PER_15_MINUTES: '100000',
    // PGlite is one connection: the socket server serves one client at a time.
    DATABASE_POOL_MAX: '1',
    // PGlite in-process, started from the migrated snapshot (the service's default thread is tested by the tests that
    // start the real process, and by embedded-db-thread.test.ts).
    EMBEDDED_DB_THREAD: 'false',
    // The app's own workers run in its thread, where tests stop, wake and drain them.
    BACKGROUND_THREAD: 'false',
    // Twilio media streams in the service's process, where tests can reach them (the media process is tested by the
    // phone-call tests, which turn it on).
    MEDIA_PROCESS: 'false',
    // No console unless a test gives one: the repository's web/dist comes and goes as other test files build it.
    CONSOLE_DIR: 'test/no-console-build',
    ...(database.url && { DATABASE_URL: database.url }),
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const log = pino({ level: 'debug', redact: { paths: REDACT_PATHS, censor: '[redacted]' }, serializers: LOG_SERIALIZERS }, sink);
  const deps = await buildDeps(config, log, {
    cachePrefix: opts.cachePrefix ?? `test:${randomUUID()}:`,
    // Only a throw-away embedded database starts from the snapshot; a data folder keeps its own.
    ...(!config.databaseUrl && config.dataDir === 'memory://' && { databaseSnapshot: await databaseSnapshot() }),
  });
  const app = await buildApp(deps);
  return {
    app,
    deps,
    logs,
    close: async () => {
      await app.close();
      await closeDeps(deps);
      await database.stop();
    },
  };
}

/**
 * The test app of a file or `describe` block: built before its tests (after the hooks registered earlier, so `env`
 * may read what they started), closed after them. Its fields are filled in when it is built.
 */
export function useTestApp(
  env: Record<string, string> | (() => Record<string, string>) = {},
  opts: { cachePrefix?: string } = {},
): TestApp {
  const t = {} as TestApp;
  beforeAll(async () => {
    Object.assign(t, await buildTestApp(typeof env === 'function' ? env() : env, opts));
  });
  afterAll(async () => {
    await t.close?.();
  });
  return t;
}

let counter = 0;
export const uniqueEmail = (tag = 'user') => `${tag}-${Date.now()}-${++counter}@example.com`;

export interface Session {
  access_token: string;
  refresh_token: string;
  user: { id: string; tenant_id: string; email: string; role: string };
  tenant: { id: string; name: string };
}

export async function signup(app: App, overrides: Partial<{ email: string; password: string; tenant_name: string }> = {}) {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/signup',
    payload: { email: uniqueEmail(), password: 'correct horse battery', tenant_name: 'Acme Clinic', ...overrides },
  });
  if (res.statusCode !== 201) throw new Error(`signup failed: ${res.statusCode} ${res.body}`);
  return res.json() as Session;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Tenant A and tenant B, each with its admin: the fixture of every cross-tenant test. */
export async function twoTenants(app: App): Promise<{ a: Session; b: Session }> {
  return { a: await signup(app, { tenant_name: 'Tenant A' }), b: await signup(app, { tenant_name: 'Tenant B' }) };
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
/** An authenticated JSON request. */
export const call = (app: App, method: Method, url: string, token: string, payload?: object) =>
  app.inject({ method, url, headers: bearer(token), ...(payload && { payload }) });

export interface FormPart {
  name: string;
  value: string | Buffer;
  /** Makes the part a file. */
  filename?: string;
  contentType?: string;
}

/** A multipart/form-data body as a browser or curl would send it, for app.inject. */
export function multipart(parts: FormPart[]): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----test${randomUUID().replace(/-/g, '')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    const type = p.filename !== undefined ? `\r\nContent-Type: ${p.contentType ?? 'application/octet-stream'}` : '';
    chunks.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}${type}\r\n\r\n`),
      Buffer.from(p.value),
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** Polls (every `intervalMs`) until `check` returns a value other than undefined; fails with `what` after the timeout. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}
