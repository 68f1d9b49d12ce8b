// What the console's browser tests share: the service as a process on its embedded defaults (the console built as
// `npm start` builds it), Debian's Chromium through playwright-core (never a downloaded browser), sign-up through
// the page, the test's own API client, screenshots under test/artifacts/console/ (git-ignored), and axe-core.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { withBuildLock } from './compiled-build.js';
import { seedDataDir } from './db-snapshot.js';

export const REPO = fileURLToPath(new URL('..', import.meta.url));
export const ARTIFACTS = path.join(REPO, 'test/artifacts/console');
const CHROMIUM = '/usr/bin/chromium';

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

export interface ConsoleService {
  base: string;
  port: number;
  /** A temporary folder for the test's files (removed by stop). */
  dir: string;
  stop(): Promise<void>;
}

/** Builds the console if stale (scripts/ensure-console.mjs, as `npm start` does), taking turns with other builds. */
async function ensureConsole(): Promise<void> {
  await withBuildLock(() => {
    const built = spawnSync(process.execPath, ['scripts/ensure-console.mjs'], { cwd: REPO, stdio: 'inherit' });
    if (built.status !== 0 || !existsSync(path.join(REPO, 'web/dist/index.html'))) throw new Error('the console did not build');
  });
}

/** Builds the console if stale and starts the service on it. */
export async function startService(env: Record<string, string> = {}): Promise<ConsoleService> {
  await ensureConsole();
  const dir = mkdtempSync(path.join(tmpdir(), 'va-console-'));
  // The migrated database unpacked into its data folder: the service skips initdb and the migrations.
  await seedDataDir(path.join(dir, 'data'));
  mkdirSync(ARTIFACTS, { recursive: true });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const service: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', DATA_DIR: path.join(dir, 'data'), PORT: String(port), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const stop = async () => {
    if (service.exitCode === null) {
      const exited = new Promise((r) => service.once('exit', r));
      service.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // A minute at a load of 19 on 2 cores; stop waiting at once if it exits.
    await until('service ready', async () => service.exitCode !== null || (await fetch(`${base}/health/ready`)).ok, 240_000);
    if (service.exitCode !== null) throw new Error(`the service exited (${service.exitCode})`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { base, port, dir, stop };
}

/** Headless Chromium with the fake media devices (the microphone is `mic`, a WAV, when given). */
export function launchChromium(mic?: string): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      ...(mic ? [`--use-file-for-fake-audio-capture=${mic}%noloop`] : []),
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Signs up through the page; returns the tenant's access token from a JSON login (the test's own API client). */
export async function signUpInPage(page: Page, base: string, who: { business: string; email: string; password: string }): Promise<string> {
  await page.goto(`${base}/signup`);
  await page.getByLabel('Business name').fill(who.business);
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 30_000 });
  return login(base, who.email, who.password);
}

export async function login(base: string, email: string, password: string): Promise<string> {
  const res = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (!res.ok) throw new Error(`login ${email}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

/** The API as the test's own client (bearer token), to arrange data and check what the pages did. */
export async function api<T>(base: string, token: string, method: string, url: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

let axeSource: string | undefined;

/**
 * axe-core's violations on the page as it is now, every impact (its source injected as a script element:
 * a page's CSP refuses inline scripts, so the test's own injection bypasses it through the DevTools protocol).
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  axeSource ??= readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, opts: object) => Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => ({ target: n.target, failureSummary: n.failureSummary })),
    }));
  });
  return violations;
}

export const isSerious = (v: AxeViolation) => v.impact === 'serious' || v.impact === 'critical';
