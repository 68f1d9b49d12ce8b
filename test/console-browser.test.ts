// The console end to end in Debian's Chromium (playwright-core, never a downloaded browser), against the service as
// a process on its embedded defaults and local engines: sign up -> upload a document and see it ready -> edit the
// greeting -> Talk with an espeak-ng WAV as the microphone: the greeting and a reply grounded in the document are
// heard (the page played agent audio; the transcript shows the turns) -> the caller barges in and the agent stops
// -> hang up -> the call is in the list, its page shows the latency waterfall and its recording plays -> log out,
// reload, signed out. Screenshots of each page go to test/artifacts/console/.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WIRE_PASS } from './helpers.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const ARTIFACTS = path.join(REPO, 'test/artifacts/console');
const CHROMIUM = '/usr/bin/chromium';
const GREETING = 'Hello, Sunrise clinic.';
// The parking answer is long on purpose: the caller's second utterance must land while the agent is still speaking.
const CLINIC =
  '# Opening hours\n\nThe Sunrise clinic opens at seven thirty on weekdays and at nine on Saturdays.\n\n' +
  '# Parking\n\nFree parking is in the garage on Elm Street, behind the clinic. The garage has three levels and ' +
  'the first level is kept for patients with reduced mobility. Take a ticket at the gate and bring it to the front ' +
  'desk, where we stamp it so that you leave without paying. The garage closes at eight in the evening.';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** espeak-ng's 22.05 kHz mono WAV as samples. */
function speak(text: string): Int16Array {
  const wav = execFileSync('espeak-ng', ['-v', 'en-us+klatt', '-s', '150', '--stdout', text]);
  const data = wav.indexOf('data');
  const bytes = wav.subarray(data + 8);
  return new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + (bytes.length & ~1)));
}

const RATE = 22_050;
const silence = (seconds: number) => new Int16Array(Math.round(seconds * RATE));

function writeWav(file: string, parts: Int16Array[]): void {
  const samples = parts.reduce((n, p) => n + p.length, 0);
  const out = Buffer.alloc(44 + samples * 2);
  out.write('RIFF', 0);
  out.writeUInt32LE(36 + samples * 2, 4);
  out.write('WAVEfmt ', 8);
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(RATE, 24);
  out.writeUInt32LE(RATE * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36);
  out.writeUInt32LE(samples * 2, 40);
  let at = 44;
  for (const p of parts) {
    Buffer.from(p.buffer, p.byteOffset, p.byteLength).copy(out, at);
    at += p.byteLength;
  }
  writeFileSync(file, out);
}

async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

let service: ChildProcess | undefined;
let base = '';
let dir = '';
let browser: Browser | undefined;
let mic = '';

beforeAll(async () => {
  if (WIRE_PASS) return;
  // The console as `npm start` builds it (skipped when web/dist is newer than its sources).
  const built = spawnSync(process.execPath, ['scripts/ensure-console.mjs'], { cwd: REPO, stdio: 'inherit' });
  expect(built.status).toBe(0);
  expect(existsSync(path.join(REPO, 'web/dist/index.html'))).toBe(true);
  dir = mkdtempSync(path.join(tmpdir(), 'va-console-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  // The microphone: quiet while the greeting plays, the question, then the caller keeps interrupting, then quiet.
  mic = path.join(dir, 'mic.wav');
  const interrupt = speak('Sorry, wait a moment, I have another question.');
  writeWav(mic, [
    // The greeting is about 2 s of speech; a loaded machine may start it late, and words over it are not a question.
    silence(9),
    speak('Where is the free parking?'),
    // Then the caller keeps talking over the agent: an interruption every 3 s of quiet. Whatever the machine's speed,
    // some land while an answer is playing (one that comes while the agent is quiet is a new question, and the next
    // one talks over its answer). On a fast machine the parking answer is over before the first one.
    silence(5),
    ...Array.from({ length: 8 }, () => [interrupt, silence(3)]).flat(),
    silence(30),
  ]);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  service = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', DATA_DIR: path.join(dir, 'data'), PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await until('service ready', async () => (await fetch(`${base}/health/ready`)).ok, 120_000);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${mic}%noloop`,
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  service?.kill('SIGTERM');
  if (service && service.exitCode === null) await new Promise((r) => service!.once('exit', r));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** The API as the test's own client (JSON refresh flow), to check what the pages did. */
async function api<T>(token: string, method: string, url: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

describe.skipIf(WIRE_PASS)('the console in Chromium', () => {
  it('sign up, upload, edit the greeting, talk by microphone with a barge-in, read the call, log out', async () => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const email = `owner-${Date.now()}@example.com`;
    const password = 'correct horse battery';

    // Sign up.
    await page.goto(`${base}/signup`);
    await shot(page, '01-signup');
    await page.getByLabel('Business name').fill('Sunrise Clinic');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign up' }).click();
    await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 30_000 });
    const login = await (
      await fetch(`${base}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password }),
      })
    ).json();
    const token: string = login.access_token;
    expect(token).toBeTruthy();

    // Knowledge: upload, and watch it become ready.
    await page.goto(`${base}/knowledge`);
    await page
      .locator('input[type=file][multiple]')
      .setInputFiles({ name: 'clinic.md', mimeType: 'text/markdown', buffer: Buffer.from(CLINIC) });
    await until(
      'the document ready',
      async () => {
        const docs = await api<{ items: { status: string }[] }>(token, 'GET', '/api/v1/documents');
        return docs.items.length === 1 && docs.items[0]!.status === 'ready';
      },
      120_000,
    );
    await page.getByText('ready', { exact: false }).first().waitFor({ timeout: 30_000 });
    await shot(page, '02-knowledge');

    // Agent: the greeting.
    await page.goto(`${base}/agent`);
    const greeting = page.getByLabel('Greeting');
    await greeting.waitFor();
    await greeting.fill(GREETING);
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await until(
      'the greeting saved',
      async () => (await api<{ greeting: string }>(token, 'GET', '/api/v1/settings/tenant')).greeting === GREETING,
    );
    await shot(page, '03-agent');

    // Talk: the microphone is the WAV.
    await page.goto(`${base}/talk`);
    await page.getByRole('button', { name: 'Talk to your agent' }).click();
    await page.getByRole('button', { name: 'Hang up' }).waitFor({ timeout: 30_000 });
    // The page played agent audio (its player reports playing) ...
    await page.getByText('agent speaking').first().waitFor({ timeout: 60_000 });
    // ... the greeting, the question and the grounded answer, then the barge-in.
    const conversation = page.locator('[aria-live=polite]').last();
    try {
      await until(
        'the greeting and a grounded reply in the transcript',
        async () => {
          const text = await conversation.innerText();
          return text.includes('Sunrise clinic') && /Elm Street|garage|free parking is/i.test(text);
        },
        120_000,
      );
      await page.getByText('interrupted', { exact: true }).first().waitFor({ timeout: 90_000 });
    } catch (err) {
      await shot(page, '04-talk-failed');
      const calls = await api<{ items: { id: string }[] }>(token, 'GET', '/api/v1/calls');
      for (const c of calls.items)
        console.log(
          JSON.stringify(await api(token, 'GET', `/api/v1/calls/${c.id}/transcript`)),
          JSON.stringify(await api(token, 'GET', `/api/v1/calls/${c.id}/events`).catch(String)),
        );
      throw err;
    }
    await shot(page, '04-talk');
    await page.getByRole('button', { name: 'Hang up' }).click();
    await page.getByRole('button', { name: 'Talk again' }).waitFor({ timeout: 30_000 });

    const calls = await api<{ items: { id: string; status: string }[] }>(token, 'GET', '/api/v1/calls');
    expect(calls.items).toHaveLength(1);
    const callId = calls.items[0]!.id;
    const turns = await api<{ items: { speaker: string; text: string; interrupted: boolean; metrics: Record<string, number> }[] }>(
      token,
      'GET',
      `/api/v1/calls/${callId}/transcript`,
    );
    expect(turns.items[0]).toMatchObject({ speaker: 'agent', text: GREETING });
    expect(turns.items.some((t) => t.speaker === 'agent' && /Elm Street|garage|free parking is/i.test(t.text))).toBe(true);
    expect(turns.items.some((t) => t.speaker === 'agent' && t.interrupted)).toBe(true);
    const v2v = turns.items.map((t) => t.metrics?.voice_to_voice).filter((v): v is number => typeof v === 'number');
    console.log(`[console-browser] voice-to-voice per reply (ms, the service's measure): ${v2v.map(Math.round).join(', ')}`);

    // Calls: the call is listed; its page has the waterfall and a recording that plays.
    await page.goto(`${base}/calls`);
    await page.locator(`a[href="/calls/${callId}"]`).first().waitFor({ timeout: 30_000 });
    await shot(page, '05-calls');
    await page.locator(`a[href="/calls/${callId}"]`).first().click();
    await page.getByLabel('Latency waterfall').first().waitFor({ timeout: 60_000 });
    // The recording is stored before the call's end is (recording.saved, then call.ended).
    await page.locator('audio').waitFor({ state: 'attached', timeout: 60_000 });
    const played = await page.evaluate(async () => {
      const audio = document.querySelector('audio')!;
      audio.muted = true;
      await audio.play();
      await new Promise((r) => setTimeout(r, 1500));
      return audio.currentTime;
    });
    expect(played).toBeGreaterThan(0);
    await shot(page, '06-call');

    // Log out; a reload stays signed out (no token survives in page storage).
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.reload();
    await page.getByRole('button', { name: 'Log in' }).waitFor({ timeout: 30_000 });
    expect(await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }))).not.toContain('ey');
    await shot(page, '07-signed-out');
    expect(dialogs).toEqual([]);
    await context.close();
  }, 600_000);
});
