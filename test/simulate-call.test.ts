// `npm run simulate:call` end to end: the script as a child process against a listening app on the local engines,
// asking a question from an espeak-ng WAV; and its explanations (exit code and message) when the number is not
// registered, the auth token is wrong, the service is down or the WAV is unreadable. The tenant has a webhook endpoint
// and post-call analysis on: the simulated call's call.ended and call.analyzed reach the receiver, signed.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbfs, parseWav } from '../src/voice/audio.js';
import { WebhookReceiver } from './fakes/webhook-receiver.js';
import { buildTestApp, call, signup, type Session, type TestApp, waitFor, WIRE_PASS } from './helpers.js';

const ACCOUNT = { accountSid: `AC${'2'.repeat(32)}`, authToken: 'simulate-call-test-token' };
const NUMBER = '+15550001111';
const CLINIC =
  '# Opening hours\n\nThe Sunrise clinic opens at seven thirty on weekdays.\n\n' +
  '# Parking\n\nFree parking is in the garage on Elm Street, behind the clinic.';
const SCRIPT = fileURLToPath(new URL('../scripts/simulate-call.ts', import.meta.url));
const REPO = fileURLToPath(new URL('..', import.meta.url));
// By URL, so the script also runs from a folder without node_modules (the .env test).
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const RUN_TIMEOUT_MS = 45_000;

let t: TestApp;
let s: Session;
let base: string;
let apiKey: string;
let dir: string;
let question: string;
const receiver = new WebhookReceiver();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the script as `npm run simulate:call` would, without the TWILIO_* of this process's environment. */
function simulate(args: string[], cwd = REPO): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TWILIO_')));
  const child = spawn(process.execPath, ['--import', TSX, SCRIPT, ...args], { cwd, env, timeout: RUN_TIMEOUT_MS });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const credentials = (token = ACCOUNT.authToken) => ['--url', base, '--account-sid', ACCOUNT.accountSid, '--auth-token', token];

beforeAll(async () => {
  t = await buildTestApp({ TWILIO_ACCOUNT_SID: ACCOUNT.accountSid, TWILIO_AUTH_TOKEN: ACCOUNT.authToken, INGEST_CONCURRENCY: '1' });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const addr = t.app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  s = await signup(t.app);
  const doc = await call(t.app, 'POST', '/api/v1/documents', s.access_token, { title: 'Clinic', content: CLINIC });
  expect(doc.statusCode).toBe(202);
  await waitFor('document ready', async () =>
    (await call(t.app, 'GET', `/api/v1/documents/${doc.json().id}`, s.access_token)).json().status === 'ready' ? true : undefined,
  );
  const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, {
    greeting: 'Hello, Sunrise clinic.',
    analysis: { enabled: true, extraction_schema: { type: 'object', properties: { topic: { type: 'string' } } } },
  });
  expect(put.statusCode, put.body).toBe(200);
  await receiver.start();
  const hook = await call(t.app, 'POST', '/api/v1/webhooks', s.access_token, { url: receiver.url('/hooks'), events: ['*'] });
  expect(hook.statusCode, hook.body).toBe(201);
  receiver.secrets.set('/hooks', [hook.json().secret]);
  expect((await call(t.app, 'POST', '/api/v1/phone-numbers', s.access_token, { number: NUMBER })).statusCode).toBe(201);
  const key = await call(t.app, 'POST', '/api/v1/api-keys', s.access_token, { name: 'simulator' });
  expect(key.statusCode).toBe(201);
  apiKey = key.json().key;
  dir = mkdtempSync(join(tmpdir(), 'simulate-call-'));
  // As the README says to make one: espeak-ng writes a 22.05 kHz WAV, which the script resamples to 8 kHz.
  question = join(dir, 'question.wav');
  execFileSync('espeak-ng', ['-v', 'en-us+klatt', '-s', '150', '-w', question, 'Where is the free parking?']);
});
afterAll(async () => {
  await t?.close();
  await receiver.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm run simulate:call', () => {
  it.skipIf(WIRE_PASS)(
    'calls the number, asks the WAV, barges in, presses a key; prints the call id, voice-to-voice, pacing and the transcript; saves the agent as an 8 kHz WAV',
    async () => {
      const out = join(dir, 'agent.wav');
      const run = await simulate([
        '--to',
        NUMBER,
        '--wav',
        question,
        ...credentials(),
        '--api-key',
        apiKey,
        '--out',
        out,
        '--interrupt',
        '--digits',
        '5',
      ]);
      expect(run.code, run.stdout + run.stderr).toBe(0);

      const calls = (await call(t.app, 'GET', '/api/v1/calls', s.access_token)).json().items as {
        id: string;
        status: string;
        direction: string;
      }[];
      expect(calls).toHaveLength(1);
      expect(calls[0]).toMatchObject({ direction: 'inbound', status: 'completed' });
      expect(run.stdout).toContain(`call ${calls[0]!.id}`);
      const v2v = /caller turn 1 \(.*\): voice-to-voice (\d+) ms/.exec(run.stdout);
      expect(v2v, run.stdout).not.toBeNull();
      expect(Number(v2v![1])).toBeGreaterThan(0);
      expect(run.stdout).toMatch(/barge-in: the agent stopped \d+ ms after the caller started speaking/);
      expect(run.stdout).toMatch(/caller turn 3 \(keys 5\): voice-to-voice \d+ ms/);
      expect(run.stdout).toMatch(/pacing: gap p50 \d+\.\d ms, p99 \d+\.\d ms/);
      // The transcript comes from the API: the greeting, the question and the grounded answer with its latencies.
      const transcript = run.stdout.slice(run.stdout.indexOf('transcript (from the API):'));
      expect(transcript).toContain('agent: Hello, Sunrise clinic.');
      expect(transcript).toMatch(/caller: .*parking/i);
      expect(transcript).toMatch(/agent: .*Elm Street/);
      expect(transcript).toContain('[interrupted]');
      expect(transcript).toContain('caller: (pressed on the keypad: 5)');
      expect(transcript).toMatch(/voice_to_voice \d+ ms/);
      expect(transcript).toMatch(/llm_ttft [\d.]+ ms/);

      const wav = readFileSync(out);
      expect(wav.readUInt16LE(22)).toBe(1);
      expect(wav.readUInt16LE(34)).toBe(16);
      const heard = parseWav(wav);
      expect(heard.sampleRate).toBe(8000);
      expect(heard.pcm.length).toBeGreaterThan(3 * 8000);
      expect(dbfs(heard.pcm)).toBeGreaterThan(-40);

      // The tenant's systems heard of it: call.ended, then call.analyzed (the local engine), each signed.
      const got = await waitFor('call.ended and call.analyzed delivered', async () => {
        const mine = receiver.delivered('/hooks').filter((r) => r.event.data.call_id === calls[0]!.id);
        return mine.some((r) => r.event.type === 'call.analyzed') ? mine : undefined;
      });
      // The recording is stored before the end, even though Twilio's status callback comes as the stream stops.
      const types = got.map((r) => r.event.type);
      expect(types).toEqual(['call.started', 'recording.ready', 'call.ended', 'call.analyzed']);
      expect(got.every((r) => r.verifiedBy.length === 1)).toBe(true);
      const byType = (type: string) => got.find((r) => r.event.type === type)!.event.data;
      expect(byType('call.ended')).toMatchObject({ direction: 'inbound', status: 'completed' });
      expect(byType('call.analyzed')).toMatchObject({ engine: 'local', partial: true, outcome: 'resolved' });
    },
    50_000,
  );

  it('an unregistered number: says to register it (exit 5); the account is read from ./.env', async () => {
    const cwd = mkdtempSync(join(dir, 'envdir-'));
    writeFileSync(join(cwd, '.env'), `TWILIO_ACCOUNT_SID=${ACCOUNT.accountSid}\nTWILIO_AUTH_TOKEN="${ACCOUNT.authToken}"\n`);
    const run = await simulate(['--to', '+15550009999', '--wav', question, '--url', base], cwd);
    expect(run.code, run.stdout + run.stderr).toBe(5);
    expect(run.stderr).toContain('register the number with POST /api/v1/phone-numbers');
  });

  it('a wrong auth token: the 403 is explained (exit 4)', async () => {
    const run = await simulate(['--to', NUMBER, '--wav', question, ...credentials('not-the-token')]);
    expect(run.code, run.stdout + run.stderr).toBe(4);
    expect(run.stderr).toMatch(
      /signature \(403\).*auth token is not the service's TWILIO_AUTH_TOKEN.*PUBLIC_BASE_URL, when set, must match --url/s,
    );
  });

  it('a service that is not there (exit 3) and a file that is not a WAV (exit 2)', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const addr = closed.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    await new Promise((r) => closed.close(r));
    const down = await simulate(['--to', NUMBER, '--wav', question, ...credentials(), '--url', `http://127.0.0.1:${port}`]);
    expect(down.code, down.stdout + down.stderr).toBe(3);
    expect(down.stderr).toContain('cannot reach the service');

    const notWav = join(dir, 'notes.wav');
    writeFileSync(notWav, 'not audio at all');
    const bad = await simulate(['--to', NUMBER, '--wav', notWav, ...credentials()]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('not a WAV file');
  });
});
