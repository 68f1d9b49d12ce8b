// The real entry point as a process: refuses bad configuration with a named variable, serves, and shuts down
// gracefully on SIGTERM (exit 0).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';

const main = ['--import', 'tsx', 'src/main.ts'];
const baseEnv = () => ({ PATH: process.env.PATH ?? '', DATA_DIR: mkdtempSync(path.join(tmpdir(), 'va-main-')), LOG_LEVEL: 'warn' });

describe('main', () => {
  it('refuses to start in production without SECRET_KEY, and on a bad variable, naming it', () => {
    const prod = spawnSync(process.execPath, main, { env: { ...baseEnv(), NODE_ENV: 'production' }, encoding: 'utf8' });
    expect(prod.status).toBe(78);
    expect(prod.stderr).toContain('SECRET_KEY: required when NODE_ENV=production');
    const bad = spawnSync(process.execPath, main, { env: { ...baseEnv(), PORT: 'abc' }, encoding: 'utf8' });
    expect(bad.status).toBe(78);
    expect(bad.stderr).toContain('PORT');
  });

  it('refuses to start in production with Twilio configured and no PUBLIC_BASE_URL (exit 78)', () => {
    const twilio = {
      TWILIO_ACCOUNT_SID: `AC${'1'.repeat(32)}`,
      TWILIO_AUTH_TOKEN: 'token',
      SECRET_KEY: 'main-test-secret-key-that-is-long-enough-0123',
    };
    const res = spawnSync(process.execPath, main, { env: { ...baseEnv(), NODE_ENV: 'production', ...twilio }, encoding: 'utf8' });
    expect(res.status).toBe(78);
    expect(res.stderr).toContain('PUBLIC_BASE_URL: required when NODE_ENV=production and Twilio is configured');
  });

  it('serves and exits 0 on SIGTERM after finishing; given its SECRET_KEY it creates a data folder that does not exist yet', async () => {
    const port = 19_000 + Math.floor(Math.random() * 1000);
    // A production-like start: the key is given, so nothing else would have created the folder.
    const env = { ...baseEnv(), PORT: String(port), SECRET_KEY: 'main-test-secret-key-that-is-long-enough-0123' };
    env.DATA_DIR = path.join(env.DATA_DIR, 'not', 'there', 'yet');
    const child = spawn(process.execPath, main, { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
