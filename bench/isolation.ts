// Document isolation benchmark (not a test): ONE service instance as its own process (`node --import tsx
// src/main.ts`, production mode, embedded PGlite in a temp DATA_DIR, default limits), and hostile or heavy uploads
// one after the other: the 3-million-paragraph DOCX (135 MB of XML in <1 MB), a DOCX past the XML element limit, a
// DOCX whose ZIP directory lies, HTML nested 20,000 deep, a Markdown bracket bomb, a big plain text (4 MB quick,
// 19 MB with --full). During each, one simulated phone call is in progress (SimulatedCall: signed voice webhook,
// Twilio media stream at real time, espeak-ng speech): the greeting, two questions each answered in full, hang-up.
// The upload is made once the greeting has been heard and made again each time it is processed (until
// ready/failed, or refused; at most one a second) until the caller hangs up, so the whole conversation runs under it. The cloud providers
// are the wire-protocol fakes in their own process with fixed latencies (bench/provider-fakes.ts: STT final +250 ms,
// LLM first token 400 ms then 50 tokens/s, TTS first byte 200 ms), so voice-to-voice only moves when the service is
// late. The same call on the idle service is the baseline. Meanwhile this process asks /health every 50 ms over
// HTTP and reads the service's RSS (/proc/<pid>/status VmRSS). Per upload: the outcome, how many were processed
// during the call, /health latency p50/p99/max and the longest gap between answers, the call's frame pacing (the
// gaps between the service's media messages within an utterance, as received: TwilioCallerLeg.outboundGapsMs, and
// the longest hole heard at the phone), voice-to-voice and its ratio to the idle call's, peak RSS; written to
// bench/results/isolation.json. A single call is not a capacity measurement, so nothing is pinned unless asked:
// --pin 1 puts the service on core 1 and this process and the fakes on core 0 (taskset).
//
//   npm run bench:isolation              # quick: ~4 minutes
//   npm run bench:isolation -- --full 1  # the 19 MB text to ready (~15,000 chunks: many minutes on embedded PGlite)
//   options: --vad silero|energy (the tenant default silero)  --pin 1  --out bench/results/isolation.json
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV_VARIABLES } from '../src/config.js';
import { SimulatedCall } from '../src/sim/simulated-call.js';
import { bigText, bracketBombMarkdown, deepHtml, paragraphBombDocx } from '../test/fixtures/documents.js';
import { freePort, utterance } from './call-bench-kit.js';
import type { ProviderFakesInfo } from './provider-fakes.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const FULL = args.get('full') === '1';
const OUT = args.get('out') ?? 'bench/results/isolation.json';
const VAD = args.get('vad') ?? 'silero';
const PIN = args.get('pin') === '1';
if (VAD !== 'silero' && VAD !== 'energy') throw new Error('--vad is silero or energy');
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ACCOUNT = { accountSid: `AC${randomBytes(16).toString('hex')}`, authToken: randomBytes(16).toString('hex') };
const NUMBER = '+15550001111';
const GREETING = 'Hello, Sunrise clinic. How can I help?';
const CLINIC =
  '# Opening hours\n\nThe Sunrise clinic opens at nine on Saturdays and closes at noon.\n\n# Parking\n\nFree parking is in the garage on Elm Street.';
const QUESTIONS = ['When does the clinic open on Saturday?', 'Is there free parking near the clinic?'];
const REPLY = 'The clinic opens at nine on Saturdays. It closes at noon. Anything else?';
/** The agent has finished an utterance once it has been quiet this long (longer than the pause between sentences). */
const QUIET_MS = 1000;
/** A refused upload takes milliseconds: one a second is a hostile tenant; back to back it is a flood (rate limits' job). */
const MIN_UPLOAD_INTERVAL_MS = 1000;
/** Every process this one starts, killed however it ends. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts the provider fakes (bench/provider-fakes.ts) and reads the URLs and keys they print. */
async function startFakes(): Promise<{ child: ChildProcess; info: ProviderFakesInfo }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(HERE, 'provider-fakes.ts'), '--transcripts', JSON.stringify(QUESTIONS), '--reply', REPLY],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  children.add(child);
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += String(d);
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`provider-fakes.ts exited (${code}) before it was ready`)));
  });
  return { child, info: JSON.parse(line) as ProviderFakesInfo };
}

interface CallOutcome {
  ok: boolean;
  reason?: string;
  v2vMs: number[];
  pacing: ReturnType<SimulatedCall['leg']['pacing']>;
}

/** One phone call: greeting, each question answered in full, hang-up. `greeted` runs once the greeting is heard. */
async function phoneCall(baseUrl: string, speech: Int16Array[], greeted: () => void = () => {}): Promise<CallOutcome> {
  const c = await SimulatedCall.inbound({ ...ACCOUNT, baseUrl, from: '+15557654321', to: NUMBER });
  let hangingUp = false;
  const dropped = c.leg.closed.then(({ code }) => {
    if (!hangingUp) throw new Error(`the media stream closed early (${code})`);
  });
  dropped.catch(() => {});
  const step = <T>(p: Promise<T>) => Promise.race([p, dropped.then(() => p)]);
  const v2vMs: number[] = [];
  try {
    await step(c.agentDone({ quietMs: QUIET_MS, timeoutMs: 20_000 }));
    greeted();
    for (const pcm of speech) {
      const turn = await step(c.say(pcm));
      v2vMs.push(await step(c.answer(turn, 20_000)));
      await step(c.agentDone({ sinceMs: turn.saidEndMs, quietMs: QUIET_MS, timeoutMs: 20_000 }));
      await sleep(300);
    }
    hangingUp = true;
    await c.hangup();
    return { ok: true, v2vMs, pacing: c.leg.pacing() };
  } catch (err) {
    hangingUp = true;
    await c.hangup().catch(() => {});
    return { ok: false, reason: (err as Error).message, v2vMs, pacing: c.leg.pacing() };
  }
}

async function startService(dir: string, fakes: ProviderFakesInfo): Promise<{ child: ChildProcess; baseUrl: string; logFile: string }> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  // Only what is set here configures it: none of the service's variables leak in from this shell.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !ENV_VARIABLES.includes(k)));
  Object.assign(env, {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    PUBLIC_BASE_URL: baseUrl,
    DATA_DIR: path.join(dir, 'data'),
    LOG_LEVEL: 'warn',
    SECRET_KEY: randomBytes(32).toString('base64url'),
    RATE_LIMIT_PER_IP_PER_MINUTE: '1000000',
    RATE_LIMIT_PER_TENANT_PER_MINUTE: '1000000',
    RATE_LIMIT_AUTH_PER_IP_PER_MINUTE: '100000',
    TWILIO_ACCOUNT_SID: ACCOUNT.accountSid,
    TWILIO_AUTH_TOKEN: ACCOUNT.authToken,
    // The simulated account has no REST API behind it to check the number against.
    PHONE_NUMBERS_SKIP_VERIFICATION: 'true',
    OPENAI_BASE_URL: fakes.openai.baseURL,
    DEEPGRAM_BASE_URL: fakes.deepgram.url,
    ELEVENLABS_BASE_URL: fakes.elevenlabs.baseUrl,
  });
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  const logFile = path.join(dir, 'service.log');
  const fd = openSync(logFile, 'a');
  const node = [process.execPath, '--import', 'tsx', '--import', path.join(HERE, 'exit-with-parent.mjs'), 'src/main.ts'];
  const [cmd, ...argv] = PIN ? ['taskset', '-c', '1', ...node] : node;
  const child = spawn(cmd!, argv, { cwd: ROOT, env, stdio: ['pipe', fd, fd] });
  children.add(child);
  closeSync(fd);
  const deadline = Date.now() + 90_000;
  while (
    !(await fetch(`${baseUrl}/health/ready`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (child.exitCode !== null) throw new Error(`the service exited while starting; its log: ${logFile}`);
    if (Date.now() > deadline) throw new Error(`the service was not ready within 90 s; its log: ${logFile}`);
    await sleep(200);
  }
  return { child, baseUrl, logFile };
}

const rssMb = (pid: number) => {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};
const round = (x: number) => Math.round(x * 10) / 10;

interface CallReport {
  ok: boolean;
  reason?: string;
  v2vMs: number[];
  v2vMeanMs: number;
  gap: { frames: number; p50Ms: number; p99Ms: number; maxMs: number; heardMaxMs: number };
}

interface Result {
  name: string;
  bytes: number;
  outcome: string;
  /** Uploads of this file processed (or refused) while the call was in progress. */
  uploads: number;
  seconds: number;
  health: { samples: number; p50Ms: number; p99Ms: number; maxMs: number; longestGapMs: number };
  call: CallReport & { v2vVsIdle: number };
  rssPeakMb: number;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const callReport = (c: CallOutcome): CallReport => ({
  ok: c.ok,
  ...(c.reason && { reason: c.reason }),
  v2vMs: c.v2vMs.map(Math.round),
  v2vMeanMs: Math.round(mean(c.v2vMs)),
  gap: {
    frames: c.pacing.count,
    p50Ms: round(c.pacing.p50Ms),
    p99Ms: round(c.pacing.p99Ms),
    maxMs: round(c.pacing.maxMs),
    heardMaxMs: round(c.pacing.heardMaxMs),
  },
});

async function api<T>(baseUrl: string, method: string, url: string, token?: string, body?: unknown): Promise<T> {
  const res = await fetch(`${baseUrl}${url}`, {
    method,
    headers: { ...(token && { authorization: `Bearer ${token}` }), ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url} answered ${res.status}: ${text.slice(0, 300)}`);
  return (text ? JSON.parse(text) : null) as T;
}

/** Uploads a file and waits until it is ready or failed (or refused at upload): the outcome. */
async function uploadOnce(baseUrl: string, token: string, file: Buffer, filename: string): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(file)]), filename);
  const res = await fetch(`${baseUrl}/api/v1/documents`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  const body = (await res.json()) as { id?: string; error?: { code: string } };
  if (res.status !== 202) return `${res.status} ${body.error?.code ?? ''}`.trim();
  for (;;) {
    const d = await api<{ status: string; error: string | null; chunk_count: number }>(
      baseUrl,
      'GET',
      `/api/v1/documents/${body.id}`,
      token,
    );
    if (d.status === 'ready') return `ready (${d.chunk_count} chunks)`;
    if (d.status === 'failed') return `failed: ${d.error}`;
    await sleep(250);
  }
}

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-isolation-'));
  if (PIN) execFileSync('taskset', ['-a', '-pc', '0', String(process.pid)]);
  console.error("[bench:isolation] making the caller's speech, starting the provider fakes and the service...");
  const speech = await Promise.all(QUESTIONS.map(utterance));
  const fakes = await startFakes();
  if (PIN) execFileSync('taskset', ['-a', '-pc', '0', String(fakes.child.pid)]);
  const service = await startService(dir, fakes.info);
  const pid = service.child.pid!;
  try {
    const { access_token: token } = await api<{ access_token: string }>(service.baseUrl, 'POST', '/api/v1/auth/signup', undefined, {
      email: `bench-${Date.now()}@example.com`,
      password: 'correct horse battery staple',
      tenant_name: 'Bench',
    });
    const doc = await api<{ id: string }>(service.baseUrl, 'POST', '/api/v1/documents', token, { title: 'Clinic', content: CLINIC });
    while ((await api<{ status: string }>(service.baseUrl, 'GET', `/api/v1/documents/${doc.id}`, token)).status !== 'ready')
      await sleep(200);
    await api(service.baseUrl, 'PUT', '/api/v1/settings/tenant', token, {
      greeting: GREETING,
      providers: {
        stt: { provider: 'deepgram', model: 'nova-2-phonecall' },
        llm: { provider: 'openai', model: 'gpt-4o-mini' },
        tts: { provider: 'elevenlabs', voice: fakes.info.elevenlabs.voiceId, model: 'eleven_flash_v2_5' },
      },
      provider_keys: { deepgram: fakes.info.deepgram.apiKey, openai: fakes.info.openai.apiKey, elevenlabs: fakes.info.elevenlabs.apiKey },
      call: { vad: VAD, endpointing_ms: 700 },
    });
    await api(service.baseUrl, 'POST', '/api/v1/phone-numbers', token, { number: NUMBER });
    // A first call loads what calls load (modules, the VAD model, JIT); then the baseline on the idle service.
    console.error('[bench:isolation] warm-up call, then the idle baseline call...');
    const warm = await phoneCall(service.baseUrl, speech.slice(0, 1));
    if (!warm.ok) throw new Error(`the warm-up call failed: ${warm.reason}; the service's log: ${service.logFile}`);
    const idle = callReport(await phoneCall(service.baseUrl, speech));
    if (!idle.ok) throw new Error(`the idle call failed: ${idle.reason}; the service's log: ${service.logFile}`);
    console.error(`[bench:isolation] idle call: gap p99 ${idle.gap.p99Ms} ms, max ${idle.gap.maxMs} ms; v2v ${idle.v2vMs.join(', ')} ms`);
    const idleRssMb = rssMb(pid);
    const cases: [string, () => Promise<Buffer> | Buffer, string][] = [
      ['docx: 3 million paragraphs (135 MB of XML)', () => paragraphBombDocx(3_000_000), 'bomb.docx'],
      ['docx: 2.2 million paragraphs (XML element limit)', () => paragraphBombDocx(2_200_000), 'bomb2.docx'],
      ['docx: ZIP directory lies about sizes', () => paragraphBombDocx(200_000, 1_000), 'liar.docx'],
      ['html: nested 20,000 deep', () => deepHtml(20_000), 'deep.html'],
      ['markdown: 150k unclosed [ and ![', () => bracketBombMarkdown(150_000), 'bomb.md'],
      [`text: ${FULL ? 19 : 4} MB`, () => bigText((FULL ? 19 : 4) * 1024 * 1024), 'big.txt'],
    ];
    const results: Result[] = [];
    for (const [name, make, filename] of cases) {
      const file = await make();
      const latencies: number[] = [];
      let lastAnswer = performance.now();
      let longestGapMs = 0;
      let rssPeak = rssMb(pid);
      let done = false;
      const probe = (async () => {
        while (!done) {
          const started = performance.now();
          await fetch(`${service.baseUrl}/health`).then((r) => r.text());
          const now = performance.now();
          latencies.push(now - started);
          longestGapMs = Math.max(longestGapMs, now - lastAnswer);
          lastAnswer = now;
          rssPeak = Math.max(rssPeak, rssMb(pid));
          await sleep(50);
        }
      })();
      const started = performance.now();
      // The upload starts once the greeting has been heard and is made again each time it is done, until the
      // caller hangs up; the last one is waited for.
      let callOver = false;
      const outcomes: string[] = [];
      let uploads: Promise<void> = Promise.resolve();
      const call = await phoneCall(service.baseUrl, speech, () => {
        uploads = (async () => {
          do {
            const next = sleep(MIN_UPLOAD_INTERVAL_MS);
            outcomes.push(await uploadOnce(service.baseUrl, token, file, filename));
            await next;
          } while (!callOver);
        })();
      });
      callOver = true;
      await uploads;
      done = true;
      await probe;
      const c = callReport(call);
      const r: Result = {
        name,
        bytes: file.length,
        outcome: (outcomes[0] ?? 'not uploaded').slice(0, 160),
        uploads: outcomes.length,
        seconds: round((performance.now() - started) / 1000),
        health: {
          samples: latencies.length,
          p50Ms: round(pct(latencies, 50)),
          p99Ms: round(pct(latencies, 99)),
          maxMs: round(Math.max(...latencies)),
          longestGapMs: round(longestGapMs),
        },
        call: { ...c, v2vVsIdle: Math.round((c.v2vMeanMs / idle.v2vMeanMs) * 100) / 100 },
        rssPeakMb: round(rssPeak),
      };
      results.push(r);
      console.error(
        `[bench:isolation] ${name}: ${r.outcome} (x${r.uploads}) in ${r.seconds} s; /health p50 ${r.health.p50Ms} p99 ${r.health.p99Ms} max ${r.health.maxMs} ms; ` +
          `call ${c.ok ? 'completed' : `FAILED (${c.reason})`}, gap p99 ${c.gap.p99Ms} max ${c.gap.maxMs} ms, v2v ${c.v2vMs.join(', ')} ms (x${r.call.v2vVsIdle} idle); RSS peak ${r.rssPeakMb} MB`,
      );
    }
    const alive = await fetch(`${service.baseUrl}/health`).then(
      (r) => r.ok,
      () => false,
    );
    const report = {
      date: new Date().toISOString(),
      mode: FULL ? 'full' : 'quick',
      machine: { cpus: os.cpus().length, node: process.version, load_average_at_end: os.loadavg().map(round) },
      pinned: PIN ? 'service on core 1; this process and the provider fakes on core 0' : 'no',
      vad: VAD,
      providers: { stt_final_ms: 250, llm_first_token_ms: 400, llm_tokens_per_s: 50, tts_first_byte_ms: 200 },
      idleRssMb: round(idleRssMb),
      idleCall: idle,
      serviceAliveAtEnd: alive,
      results,
    };
    mkdirSync(path.dirname(OUT), { recursive: true });
    writeFileSync(OUT, `${JSON.stringify(report, null, 2)}\n`);
    console.log(
      `\nOne phone call during each hostile upload (made again until the caller hangs up); ${VAD} VAD; fakes: STT +250 ms, LLM 400 ms + 50 tokens/s, TTS 200 ms; ` +
        `${os.cpus().length} cores, ${PIN ? 'service pinned to core 1, load generator to core 0' : 'not pinned'}; idle call: gap p99 ${idle.gap.p99Ms} ms, max ${idle.gap.maxMs} ms, v2v ${idle.v2vMeanMs} ms; idle RSS ${round(idleRssMb)} MB\n`,
    );
    console.log(
      `| upload | outcome | uploads | /health p50 / p99 / max ms | call | gap p50 / p99 / max ms | heard hole max ms | v2v ms | v2v vs idle | RSS peak MB |\n|---|---|---|---|---|---|---|---|---|---|`,
    );
    for (const r of results) {
      const c = r.call;
      console.log(
        `| ${r.name} | ${r.outcome.slice(0, 60)} | ${r.uploads} | ${r.health.p50Ms} / ${r.health.p99Ms} / ${r.health.maxMs} | ${c.ok ? 'ok' : 'FAILED'} | ${c.gap.p50Ms} / ${c.gap.p99Ms} / ${c.gap.maxMs} | ${c.gap.heardMaxMs} | ${c.v2vMs.join(', ')} | ${c.v2vVsIdle} | ${r.rssPeakMb} |`,
      );
    }
    console.log(`\nservice alive at the end: ${alive}; written to ${OUT}`);
  } finally {
    service.child.kill('SIGTERM');
    await new Promise((r) => service.child.once('exit', r));
    fakes.child.stdin?.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
