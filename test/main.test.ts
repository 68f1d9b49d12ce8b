// The real entry point as a process: refuses bad configuration with a named variable, explains each start-up failure
// in one line with its own exit code, serves, and shuts down gracefully on SIGTERM (exit 0).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { THREAD_NICE } from '../src/lib/thread-priority.js';
import { threads, threadsNamed, threadStat } from './threads.js';

// Absolute paths, run from a folder of their own: a developer's ./.env (which the service reads) stays out of it.
const root = path.resolve(import.meta.dirname, '..');
const main = ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href, path.join(root, 'src/main.ts')];
const cwd = mkdtempSync(path.join(tmpdir(), 'va-main-cwd-'));
const baseEnv = () => ({ PATH: process.env.PATH ?? '', DATA_DIR: mkdtempSync(path.join(tmpdir(), 'va-main-')), LOG_LEVEL: 'warn' });

describe('main', () => {
  it('refuses to start in production without SECRET_KEY, and on a bad variable, naming it', () => {
    const prod = spawnSync(process.execPath, main, { cwd, env: { ...baseEnv(), NODE_ENV: 'production' }, encoding: 'utf8' });
    expect(prod.status).toBe(78);
    expect(prod.stderr).toContain('SECRET_KEY: required when NODE_ENV=production');
    const bad = spawnSync(process.execPath, main, { cwd, env: { ...baseEnv(), PORT: 'abc' }, encoding: 'utf8' });
    expect(bad.status).toBe(78);
    expect(bad.stderr).toContain('PORT');
  });

  it('reads ./.env, and what the environment sets wins', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'va-main-dotenv-'));
    writeFileSync(path.join(dir, '.env'), '# as people keep it\nPORT=not-a-port\nLOG_LEVEL=loud\n');
    const env: Record<string, string> = { ...baseEnv(), PORT: '0' };
    delete env.LOG_LEVEL;
    const res = spawnSync(process.execPath, main, { cwd: dir, env, encoding: 'utf8' });
    expect(res.status).toBe(78);
    expect(res.stderr).toContain('LOG_LEVEL');
    expect(res.stderr).not.toContain('PORT');
  });

  it('refuses to start in production with Twilio configured and no PUBLIC_BASE_URL (exit 78)', () => {
    const twilio = {
      TWILIO_ACCOUNT_SID: `AC${'1'.repeat(32)}`,
      TWILIO_AUTH_TOKEN: 'token',
      SECRET_KEY: 'main-test-secret-key-that-is-long-enough-0123',
    };
    const res = spawnSync(process.execPath, main, { cwd, env: { ...baseEnv(), NODE_ENV: 'production', ...twilio }, encoding: 'utf8' });
    expect(res.status).toBe(78);
    expect(res.stderr).toContain('PUBLIC_BASE_URL: required when NODE_ENV=production and Twilio is configured');
  });

  it('serves and exits 0 on SIGTERM after finishing; given its SECRET_KEY it creates a data folder that does not exist yet', async () => {
    const port = 19_000 + Math.floor(Math.random() * 1000);
    // A production-like start: the key is given, so nothing else would have created the folder.
    const env = { ...baseEnv(), PORT: String(port), SECRET_KEY: 'main-test-secret-key-that-is-long-enough-0123' };
    env.DATA_DIR = path.join(env.DATA_DIR, 'not', 'there', 'yet');
    const child = spawn(process.execPath, main, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // A first boot (initdb + migrations) takes a few seconds alone, several times that beside other test files.
    let ok = false;
    for (const deadline = Date.now() + 60_000; !ok && Date.now() < deadline;) {
      ok = await fetch(`http://127.0.0.1:${port}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (!ok) await sleep(50);
    }
    if (!ok) child.kill('SIGKILL'); // not left running after the test
    expect(ok).toBe(true);
    if (process.platform === 'linux') {
      // The embedded database's thread and the background thread (started after /health answers) run below the
      // event loop, each at its own distance (src/lib/thread-priority.ts); so do Node's own threads.
      const main = threadStat(child.pid!, child.pid!).nice;
      const nices = () => ({
        pglite: threadsNamed('pglite', child.pid!).map((t) => t.nice - main),
        background: threadsNamed('background', child.pid!).map((t) => t.nice - main),
      });
      for (const deadline = Date.now() + 30_000; nices().background.length === 0 && Date.now() < deadline;) await sleep(50);
      expect(nices()).toEqual({ pglite: [THREAD_NICE.pglite], background: [THREAD_NICE.background] });
      // Node's own threads, lowered by main.ts before anything else: at least V8's 4 platform workers.
      const node = threads(child.pid!).filter((t) => t.comm !== 'background' && t.nice - main === THREAD_NICE.node);
      expect(node.length).toBeGreaterThanOrEqual(4);
    }
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** stderr as lines, without the blank ones: each failure must be exactly one. */
const lines = (stderr: string) => stderr.split('\n').filter((l) => l.trim() !== '');

// A PostgreSQL server without pgvector (this machine's, at 5432 with trust authentication; TEST_POSTGRES_URL to
// point elsewhere). The tests below skip when there is none.
const SERVER_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
async function serverWithoutPgvector(): Promise<boolean> {
  const client = new pg.Client({ connectionString: SERVER_URL, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    const { rows } = await client.query("select count(*)::int as n from pg_available_extensions where name = 'vector'");
    return rows[0].n === 0;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}
const hasServer = await serverWithoutPgvector();

// Each test starts the process through tsx: seconds alone, many more beside other test files.
describe('main: start-up failures explain themselves', { timeout: 120_000 }, () => {
  it('an unreachable database: one line naming host and port, exit 69', async () => {
    const port = await closedPort();
    const res = spawnSync(process.execPath, main, {
      cwd,
      env: { ...baseEnv(), DATABASE_URL: `postgres://postgres:secret-pw@127.0.0.1:${port}/voice` },
      encoding: 'utf8',
    });
    expect(res.status).toBe(69);
    expect(lines(res.stderr)).toEqual([
      `cannot reach the database at 127.0.0.1:${port} (ECONNREFUSED): start PostgreSQL there or fix DATABASE_URL`,
    ]);
    expect(res.stderr).not.toContain('secret-pw');
  });

  it.skipIf(!hasServer)('a login the server refuses: one line naming the user, exit 77', () => {
    // The server trusts local connections whatever the password, so the refused login is a user it does not know.
    const url = new URL(SERVER_URL);
    url.username = 'h22_no_such_user';
    url.password = 'bad-password';
    const res = spawnSync(process.execPath, main, { cwd, env: { ...baseEnv(), DATABASE_URL: url.toString() }, encoding: 'utf8' });
    expect(res.status).toBe(77);
    expect(lines(res.stderr)).toHaveLength(1);
    expect(res.stderr).toContain(`refused the login of user "h22_no_such_user"`);
    expect(res.stderr).toContain('fix the user and password in DATABASE_URL');
    expect(res.stderr).not.toContain('bad-password');
  });

  it.skipIf(!hasServer)('PostgreSQL without pgvector: one line saying so and what to do, exit 72, nothing migrated', async () => {
    const res = spawnSync(process.execPath, main, { cwd, env: { ...baseEnv(), DATABASE_URL: SERVER_URL }, encoding: 'utf8' });
    expect(res.status).toBe(72);
    expect(lines(res.stderr)).toHaveLength(1);
    expect(res.stderr).toMatch(
      /^pgvector is not installed in this database .*: install the extension .* or unset DATABASE_URL to use the embedded default/,
    );
    // Checked before the migrations: the server was left as it was.
    const client = new pg.Client(SERVER_URL);
    await client.connect();
    const { rows } = await client.query("select count(*)::int as n from pg_namespace where nspname = 'drizzle'");
    await client.end();
    expect(rows[0].n).toBe(0);
  });

  it('in production, warns once each about HOST at 127.0.0.1 and the embedded database, before it starts', async () => {
    const env = {
      ...baseEnv(),
      NODE_ENV: 'production',
      SECRET_KEY: 'main-test-secret-key-that-is-long-enough-0123',
      PORT: String(await closedPort()),
    };
    const child = spawn(process.execPath, main, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    // Said before the database starts: no need to wait for it to be ready.
    for (const deadline = Date.now() + 90_000; Date.now() < deadline && !/embedded database/.test(out);) await sleep(50);
    child.kill('SIGKILL');
    await exited;
    const warnings = out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .filter((l) => l.level === 40);
    expect(warnings.map((w) => w.msg)).toEqual([
      expect.stringMatching(/^HOST is 127\.0\.0\.1: only this machine can reach the service/),
      expect.stringMatching(/^the embedded database .* is running in production/),
    ]);
  });

  describe('a port in use', () => {
    let holder: Server;
    let port: number;
    beforeAll(async () => {
      holder = createServer();
      await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
      port = (holder.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((r) => holder.close(() => r())));

    it('one line naming the port and PORT, exit 75, before the embedded database is created', () => {
      const env = { ...baseEnv(), PORT: String(port) };
      const res = spawnSync(process.execPath, main, { cwd, env, encoding: 'utf8' });
      expect(res.status).toBe(75);
      expect(lines(res.stderr)).toEqual([`port ${port} is in use on 127.0.0.1: stop what holds it or set PORT`]);
      expect(existsSync(path.join(env.DATA_DIR, 'pglite'))).toBe(false);
    });
  });
});
