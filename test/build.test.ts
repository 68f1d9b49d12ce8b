// The compiled build serves the same API: `npm run build` (or a fresh dist/), then `node dist/main.js` as production
// runs it (NODE_ENV=production, PostgreSQL over the wire, migrations by `npm run migrate` and MIGRATE_ON_START=false)
// through a short part of the README's walkthrough: sign up, upload a document, wait until it is ingested (by the
// compiled document worker), search, chat, and a graceful SIGTERM; with any import of tsx made to fail.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGLITE_EXTENSIONS } from '../src/db/client.js';
import { DIST_MAIN, ensureBuild, ROOT } from './compiled-build.js';
import { databaseSnapshot } from './db-snapshot.js';

let pglite: PGlite;
let server: PGLiteSocketServer;
let child: ChildProcess | undefined;
let env: Record<string, string>;

beforeAll(async () => {
  await ensureBuild();
  // The migrated test database, served over the Postgres wire protocol: the `pg` path production uses.
  pglite = await PGlite.create({ loadDataDir: await databaseSnapshot(), extensions: PGLITE_EXTENSIONS });
  server = new PGLiteSocketServer({ db: pglite, port: 0, host: '127.0.0.1' });
  await server.start();
  env = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'production',
    SECRET_KEY: 'build-test-secret-key-that-is-long-enough-0123',
    DATABASE_URL: `postgres://postgres:postgres@${server.getServerConn()}/postgres`,
    // PGlite is one connection: the socket server serves one client at a time.
    DATABASE_POOL_MAX: '1',
    DATA_DIR: mkdtempSync(path.join(tmpdir(), 'va-build-')),
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    MIGRATE_ON_START: 'false',
  };
}, 300_000);

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await server?.stop();
  await pglite?.close();
});

/** Starts dist/main.js; resolves with its base URL once it listens (the port is the system's choice). */
function startCompiled(): Promise<string> {
  // no-tsx.mjs makes any import of tsx fail, here and in the worker threads: production needs no TypeScript toolchain.
  const noTsx = path.join(ROOT, 'test', 'fixtures', 'no-tsx.mjs');
  child = spawn(process.execPath, ['--enable-source-maps', '--import', noTsx, DIST_MAIN], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    child!.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child!.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child!.once('exit', (code) => reject(new Error(`dist/main.js exited ${code}:\n${out}`)));
  });
}

describe('the compiled build', () => {
  it('npm run migrate runs the compiled migrator in production', async () => {
    // Not spawnSync: the database it talks to is served from this process's event loop.
    const run = spawn(process.execPath, ['scripts/migrate.mjs'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    run.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    run.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const status = await new Promise<number | null>((r) => run.once('exit', (code) => r(code)));
    expect(stderr).toBe('');
    expect(stdout).toContain('PostgreSQL (DATABASE_URL) is current');
    expect(status).toBe(0);
  }, 120_000);

  it('starts the compiled media process without tsx, and it exits when the service goes away', async () => {
    // What MediaProcess forks (telephony/media-process.ts), with tsx made to fail as in startCompiled.
    const noTsx = path.join(ROOT, 'test', 'fixtures', 'no-tsx.mjs');
    const media = fork(path.join(ROOT, 'dist', 'telephony', 'media-child.mjs'), [], {
      execArgv: ['--import', noTsx],
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    let stderr = '';
    media.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => media.once('exit', (code) => r(code)));
    const ready = await Promise.race([new Promise((r) => media.once('message', r)), exited.then(() => stderr)]);
    expect(ready).toEqual({ k: 'ready' });
    media.disconnect();
    expect(await exited).toBe(0);
  }, 60_000);

  it('serves the README walkthrough: signup, a document ingested, search, chat; exits 0 on SIGTERM', async () => {
    const base = await startCompiled();
    const call = async (method: string, url: string, token?: string, body?: unknown) => {
      const res = await fetch(`${base}${url}`, {
        method,
        headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };

    expect((await call('GET', '/health/ready')).status).toBe(200);
    const signup = await call('POST', '/api/v1/auth/signup', undefined, {
      email: 'me@example.com',
      password: 'correct horse battery',
      tenant_name: 'Sunrise',
    });
    expect(signup.status).toBe(201);
    const token = signup.body.access_token as string;

    const doc = await call('POST', '/api/v1/documents', token, { title: 'Parking', content: 'Free parking is on Elm Street.' });
    expect(doc.status).toBe(202);
    let status = '';
    for (const deadline = Date.now() + 90_000; Date.now() < deadline; await sleep(250)) {
      status = (await call('GET', `/api/v1/documents/${String(doc.body.id)}`, token)).body.status as string;
      if (status === 'ready' || status === 'failed') break;
    }
    expect(status).toBe('ready');

    const search = await call('POST', '/api/v1/knowledge/search', token, { query: 'where is the free parking' });
    expect(search.status).toBe(200);
    expect(JSON.stringify(search.body)).toContain('Elm Street');

    const chat = await call('POST', '/api/v1/chat', token, { message: 'Where is the free parking?' });
    expect(chat.status).toBe(200);
    expect(chat.body.reply).toMatch(/Elm Street/);

    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child!.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 180_000);
});
