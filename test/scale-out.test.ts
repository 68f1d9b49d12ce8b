// Scale-out, proven: THREE instances of the compiled build (`node dist/main.js`, production mode) against one database
// served over the Postgres wire protocol (bench/pg-server.ts: PGlite in its own process, many connections) and the
// real Redis, behind a round-robin HTTP + WebSocket proxy written here. What several instances must share works:
// accounts and tokens, the ingestion queue (exactly once), phone calls whose webhook and media land on different
// instances, a hang-up sent to an instance that does not hold the call's audio, the shared rate limit; and what a
// deployment does to instances: one SIGTERMed mid-call (its calls end as hung up, with records and recordings), one
// SIGKILLed (its ingestion is taken over after the lease, its calls are ended by another instance's sweeper).
// Prints each instance's CPU and calls. The file does not use the test app, so it runs once (not in the wire pass).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, utterance } from '../bench/call-bench-kit.js';
import type { ProviderFakesInfo } from '../bench/provider-fakes.js';
import { ENV_VARIABLES } from '../src/config.js';
import { SimulatedCall } from '../src/sim/simulated-call.js';
import { ensureDatabaseSnapshot } from './db-snapshot.js';
import { waitFor } from './helpers.js';
import { ensureBuild } from './compiled-build.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ACCOUNT = { accountSid: `AC${randomBytes(16).toString('hex')}`, authToken: randomBytes(16).toString('hex') };
const NUMBER = '+15550002222';
const GREETING = 'Hello, Sunrise clinic.';
const QUESTION = 'When does the clinic open on Saturday?';
const REPLY = 'The clinic opens at nine on Saturdays.';
const CALLS = 30;
/** Calls at once. */
const WAVE = 10;
/** Failed logins of one account allowed in 15 minutes (RATE_LIMIT_LOGIN_PER_EMAIL_PER_15_MINUTES). */
const LOGIN_FAILURES_ALLOWED = 4;

// ---- processes: every one started here is ended however the file ends ----

const children = new Set<ChildProcess>();
const killAll = () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
};
process.once('exit', killAll);

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** `node --import tsx <script>`: resolves with the first line it prints (its address). */
async function startScript(script: string, args: string[]): Promise<{ child: ChildProcess; line: string }> {
  const child = track(spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] }));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += String(d);
      if (out.includes('\n')) resolve(out.split('\n')[0]!.trim());
    });
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}) before it was ready`)));
  });
  return { child, line };
}

/** CPU time (user + system) of a process so far, ms; undefined once it is gone. */
const CLOCK_TICKS = 100;
function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

// ---- the build under test ----

// The build is test/compiled-build.ts's: built once under a lock, so two test files never build at the same time.

// ---- the load balancer: round robin over the instances in rotation, HTTP and WebSocket upgrades ----

interface Routed {
  backend: number;
  method: string;
  url: string;
  upgrade: boolean;
}

class RoundRobinProxy {
  readonly routed: Routed[] = [];
  /** Ports of the instances, by index; an index taken out of rotation gets nothing new (a health check failed). */
  readonly backends: number[] = [];
  private readonly out = new Set<number>();
  private next = 0;
  private server!: Server;
  private readonly sockets = new Set<Socket>();
  url = '';

  async start(port: number): Promise<void> {
    this.server = createServer((req, res) => {
      const backend = this.pick();
      this.routed.push({ backend, method: req.method!, url: req.url!, upgrade: false });
      const upstream = httpRequest(
        { host: '127.0.0.1', port: this.backends[backend], method: req.method, path: req.url, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode!, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', () => {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
      req.pipe(upstream);
    });
    // A WebSocket: the upgrade request is written to the instance as it came, then bytes are piped both ways.
    this.server.on('upgrade', (req, client: Socket, head: Buffer) => {
      const backend = this.pick();
      this.routed.push({ backend, method: req.method!, url: req.url!, upgrade: true });
      const upstream = connect(this.backends[backend]!, '127.0.0.1', () => {
        const lines = [`${req.method} ${req.url} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (head.length) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
      }
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.on('close', () => upstream.destroy());
    });
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${port}`;
  }

  private pick(): number {
    for (let i = 0; i < this.backends.length; i++) {
      const b = this.next++ % this.backends.length;
      if (!this.out.has(b)) return b;
    }
    throw new Error('no instance in rotation');
  }

  takeOut(backend: number): void {
    this.out.add(backend);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

// ---- Twilio's REST API, as far as a hang-up needs it: the service ends the call at Twilio too ----

const twilioHangups: string[] = [];
let twilioRest: Server;
async function startTwilioRest(): Promise<string> {
  twilioRest = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += String(d)));
    req.on('end', () => {
      const m = /^\/2010-04-01\/Accounts\/(AC[0-9a-f]{32})\/Calls\/(CA[0-9a-f]{32})\.json$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !m || new URLSearchParams(body).get('Status') !== 'completed') return void res.writeHead(404).end('{}');
      twilioHangups.push(m[2]!);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sid: m[2], account_sid: m[1], status: 'completed' }));
    });
  });
  await new Promise<void>((r) => twilioRest.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(twilioRest.address() as { port: number }).port}`;
}

// ---- the instances ----

interface Instance {
  index: number;
  child: ChildProcess;
  pid: number;
  port: number;
  url: string;
  logFile: string;
  /** The latest CPU reading (kept when the process is gone). */
  cpuMs: number;
  fate: 'running' | 'SIGTERM' | 'SIGKILL';
}

let dir: string;
let proxy: RoundRobinProxy;
let db: pg.Client;
let fakes: ProviderFakesInfo;
const instances: Instance[] = [];
let sampler: NodeJS.Timeout | undefined;
let speech: Int16Array;

function instanceEnv(port: number, databaseUrl: string, secretKey: string, redisPrefix: string, twilioApi: string): NodeJS.ProcessEnv {
  // Only what is set here configures an instance: none of the service's variables leak in from this shell.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !ENV_VARIABLES.includes(k)));
  return Object.assign(env, {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    // Twilio signs and the TwiML names the address it reaches: the load balancer's.
    PUBLIC_BASE_URL: proxy.url,
    // One data folder for all three: the local recording store is a shared volume, as S3 would be.
    DATA_DIR: path.join(dir, 'data'),
    LOG_LEVEL: process.env.SCALE_OUT_LOG_LEVEL ?? 'info',
    SECRET_KEY: secretKey,
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_MAX: '4',
    REDIS_URL: 'redis://127.0.0.1:6379',
    REDIS_KEY_PREFIX: redisPrefix,
    TWILIO_ACCOUNT_SID: ACCOUNT.accountSid,
    TWILIO_AUTH_TOKEN: ACCOUNT.authToken,
    TWILIO_API_BASE_URL: twilioApi,
    PHONE_NUMBERS_SKIP_VERIFICATION: 'true',
    RATE_LIMIT_PER_IP_PER_MINUTE: '1000000',
    RATE_LIMIT_PER_TENANT_PER_MINUTE: '1000000',
    RATE_LIMIT_AUTH_PER_IP_PER_MINUTE: '100000',
    RATE_LIMIT_LOGIN_PER_EMAIL_PER_15_MINUTES: String(LOGIN_FAILURES_ALLOWED),
    MAX_LIVE_CALLS_PER_TENANT: '100',
    // Short leases and beats, so a killed instance's work is taken over within the test.
    INGEST_LEASE_SECONDS: '3',
    CALL_HEARTBEAT_SECONDS: '1',
    CALL_LEASE_SECONDS: '3',
    OPENAI_BASE_URL: fakes.openai.baseURL,
    DEEPGRAM_BASE_URL: fakes.deepgram.url,
    ELEVENLABS_BASE_URL: fakes.elevenlabs.baseUrl,
  });
}

async function startInstance(index: number, port: number, env: NodeJS.ProcessEnv): Promise<Instance> {
  const logFile = path.join(dir, `instance-${index}.log`);
  const fd = openSync(logFile, 'a');
  const child = track(spawn(process.execPath, ['--enable-source-maps', 'dist/main.js'], { cwd: ROOT, env, stdio: ['ignore', fd, fd] }));
  closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    `instance ${index} ready (log: ${logFile})`,
    async () => {
      if (child.exitCode !== null) throw new Error(`instance ${index} exited (${child.exitCode}); log: ${logFile}`);
      return (
        (await fetch(`${url}/health/ready`).then(
          (r) => r.ok || undefined,
          () => undefined,
        )) ?? undefined
      );
    },
    60_000,
  );
  return { index, child, pid: child.pid!, port, url, logFile, cpuMs: 0, fate: 'running' };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies of many shapes, checked by the assertions
type Json = any;
async function api(base: string, method: string, url: string, token?: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { ...(token && { authorization: `Bearer ${token}` }), ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}
const lb = (method: string, url: string, token?: string, body?: unknown) => api(proxy.url, method, url, token, body);

/** Which instance a call's media went to: its upgrade is the last routed when `SimulatedCall.inbound` resolves. */
async function placeCall(): Promise<{ sim: SimulatedCall; backend: number }> {
  const sim = await SimulatedCall.inbound({
    ...ACCOUNT,
    baseUrl: proxy.url,
    from: `+1555${1_000_000 + Math.floor(Math.random() * 8_999_999)}`,
    to: NUMBER,
  });
  const upgrade = proxy.routed.findLast((r) => r.upgrade);
  return { sim, backend: upgrade!.backend };
}

async function callRecord(token: string, id: string): Promise<Json> {
  return (await lb('GET', `/api/v1/calls/${id}`, token)).json;
}

async function callEnded(token: string, id: string, timeoutMs = 30_000): Promise<Json> {
  return waitFor(
    `call ${id} ended`,
    async () => {
      const c = await callRecord(token, id);
      return c.ended_at ? c : undefined;
    },
    timeoutMs,
  );
}

async function endedEvent(token: string, id: string): Promise<Json> {
  const evs = (await lb('GET', `/api/v1/calls/${id}/events`, token)).json;
  return (evs.items ?? evs).find((e: Json) => e.type === 'call.ended');
}

/** The instances' log lines about a document's ingestion finishing: `[instance index, the line]`. */
function readyLines(documentId: string): [number, Json][] {
  return instances.flatMap((s) =>
    readFileSync(s.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes(documentId) && l.includes('"document ready"'))
      .map((l) => [s.index, JSON.parse(l)] as [number, Json]),
  );
}

/** Prints how long the steps of a test took (the figures for the closing note). */
function stopwatch(test: string): (step: string) => void {
  const start = performance.now();
  return (step) => console.log(`[scale-out] ${test}: ${step} at ${Math.round(performance.now() - start)} ms`);
}

describe('three instances of the build behind a load balancer', () => {
  let token: string;

  beforeAll(async () => {
    await ensureBuild();
    dir = mkdtempSync(path.join(os.tmpdir(), 'scale-out-'));
    const [snapshot, fakesStarted, spoken] = await Promise.all([
      ensureDatabaseSnapshot(),
      startScript('bench/provider-fakes.ts', [
        '--stt-final-ms',
        '100',
        '--llm-first-token-ms',
        '100',
        '--tts-first-byte-ms',
        '50',
        '--transcripts',
        JSON.stringify([QUESTION]),
        '--reply',
        REPLY,
      ]),
      utterance(QUESTION),
    ]);
    fakes = JSON.parse(fakesStarted.line) as ProviderFakesInfo;
    speech = spoken;
    // The migrated test database, served over the wire: the instances find their migrations applied.
    const database = await startScript('bench/pg-server.ts', ['--load', snapshot]);
    db = new pg.Client({ connectionString: database.line });
    await db.connect();
    proxy = new RoundRobinProxy();
    await proxy.start(await freePort());
    const secretKey = randomBytes(32).toString('base64url');
    const redisPrefix = `scale-out:${randomUUID()}:`;
    const twilioApi = await startTwilioRest();
    const ports = [await freePort(), await freePort(), await freePort()];
    proxy.backends.push(...ports);
    instances.push(
      ...(await Promise.all(
        ports.map((port, i) => startInstance(i, port, instanceEnv(port, database.line, secretKey, redisPrefix, twilioApi))),
      )),
    );
    sampler = setInterval(() => {
      for (const s of instances) s.cpuMs = cpuMs(s.pid) ?? s.cpuMs;
    }, 250);
  }, 300_000);

  afterAll(async () => {
    clearInterval(sampler);
    for (const s of instances) s.cpuMs = cpuMs(s.pid) ?? s.cpuMs;
    const carried = (i: number) => proxy?.routed.filter((r) => r.upgrade && r.backend === i).length ?? 0;
    const requests = (i: number) => proxy?.routed.filter((r) => !r.upgrade && r.backend === i).length ?? 0;
    if (instances.length) {
      console.log('[scale-out] per instance (CPU from /proc/<pid>/stat; calls = media streams routed to it):');
      console.table(
        instances.map((s) => ({
          instance: s.index,
          pid: s.pid,
          fate: s.fate,
          cpu_ms: Math.round(s.cpuMs),
          calls: carried(s.index),
          http_requests: requests(s.index),
        })),
      );
    }
    await Promise.allSettled(instances.filter((s) => s.fate === 'running').map((s) => stop(s.child, 'SIGTERM', 15_000)));
    await proxy?.close();
    await new Promise((r) => (twilioRest ? twilioRest.close(r) : r(undefined)));
    await db?.end().catch(() => {});
    for (const c of [...children]) await stop(c, null, 5_000);
    killAll();
    // SCALE_OUT_KEEP=1 keeps the instances' logs (the folder is printed).
    if (process.env.SCALE_OUT_KEEP === '1') console.log(`[scale-out] logs kept in ${dir}`);
    else if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('sign-up and logins spread over the instances; a token from one is good on all', async () => {
    const before = proxy.routed.length;
    const email = `owner-${Date.now()}@example.com`;
    const s = await lb('POST', '/api/v1/auth/signup', undefined, {
      email,
      password: 'correct horse battery',
      tenant_name: 'Sunrise Clinic',
    });
    expect(s.status).toBe(201);
    token = s.json.access_token;
    for (let i = 0; i < 5; i++) {
      const other = await lb('POST', '/api/v1/auth/signup', undefined, {
        email: `other-${i}-${Date.now()}@example.com`,
        password: 'correct horse battery',
        tenant_name: `Other ${i}`,
      });
      expect(other.status).toBe(201);
      const login = await lb('POST', '/api/v1/auth/login', undefined, { email, password: 'correct horse battery' });
      expect(login.status).toBe(200);
    }
    const auth = proxy.routed.slice(before).filter((r) => r.url.startsWith('/api/v1/auth/'));
    expect(new Set(auth.map((r) => r.backend))).toEqual(new Set([0, 1, 2]));
    for (const s of instances) expect((await api(s.url, 'GET', '/api/v1/auth/me', token)).status).toBe(200);
  });

  it('the login rate limit holds across instances', async () => {
    const email = `limited-${Date.now()}@example.com`;
    expect(
      (await lb('POST', '/api/v1/auth/signup', undefined, { email, password: 'correct horse battery', tenant_name: 'Limited' })).status,
    ).toBe(201);
    const before = proxy.routed.length;
    const statuses: number[] = [];
    for (let i = 0; i < LOGIN_FAILURES_ALLOWED + 3; i++) {
      statuses.push((await lb('POST', '/api/v1/auth/login', undefined, { email, password: 'not the password' })).status);
    }
    // Each instance saw at most 3 of them (fewer than the limit): only a count they share refuses the later ones.
    const perInstance = [0, 1, 2].map((b) => proxy.routed.slice(before).filter((r) => r.backend === b).length);
    expect(Math.max(...perInstance)).toBeLessThan(LOGIN_FAILURES_ALLOWED);
    expect(statuses).toEqual([...Array(LOGIN_FAILURES_ALLOWED).fill(401), 429, 429, 429]);
  });

  it('a document uploaded through one instance is ingested exactly once', async () => {
    const doc = await lb('POST', '/api/v1/documents', token, {
      title: 'Clinic',
      content: '# Opening hours\n\nThe Sunrise clinic opens at nine on Saturdays.\n\n# Parking\n\nFree parking is on Elm Street.',
    });
    expect(doc.status).toBe(202);
    const ready = await waitFor('document ready', async () => {
      const d = (await lb('GET', `/api/v1/documents/${doc.json.id}`, token)).json;
      return d.status === 'ready' ? d : undefined;
    });
    expect(ready.version).toBe(1);
    const row = (await db.query('select attempts, chunks_total, chunks_done from documents where id = $1', [doc.json.id])).rows[0];
    expect(row).toMatchObject({ attempts: 0, chunks_done: row.chunks_total });
    const chunks = await db.query('select chunk_index, count(*)::int as n from document_chunks where document_id = $1 group by 1', [
      doc.json.id,
    ]);
    expect(chunks.rows.length).toBe(row.chunks_total);
    expect(chunks.rows.every((r) => r.n === 1)).toBe(true);
    const events = await db.query(
      `select count(*)::int as n from webhook_events where type = 'document.ready' and data->>'document_id' = $1`,
      [doc.json.id],
    );
    expect(events.rows[0].n).toBeLessThanOrEqual(1);
    expect(readyLines(doc.json.id)).toHaveLength(1);

    // The tenant's phone agent, for the calls: the cloud engines (their fakes), the energy VAD, a number.
    const put = await lb('PUT', '/api/v1/settings/tenant', token, {
      greeting: GREETING,
      providers: {
        stt: { provider: 'deepgram', model: 'nova-2-phonecall' },
        llm: { provider: 'openai', model: 'gpt-4o-mini' },
        tts: { provider: 'elevenlabs', voice: fakes.elevenlabs.voiceId, model: 'eleven_flash_v2_5' },
      },
      provider_keys: { deepgram: fakes.deepgram.apiKey, openai: fakes.openai.apiKey, elevenlabs: fakes.elevenlabs.apiKey },
      // No silence prompt within the test: a call waiting on a busy machine must not end by itself.
      call: { vad: 'energy', endpointing_ms: 300, silence_prompt_s: 600 },
    });
    expect(put.status, JSON.stringify(put.json)).toBe(200);
    expect((await lb('POST', '/api/v1/phone-numbers', token, { number: NUMBER })).status).toBe(201);
  });

  it(`${CALLS} phone calls spread over the instances all complete`, async () => {
    const mark = stopwatch(`${CALLS} calls`);
    // In waves of WAVE at once: the 2 shared cores also run the callers, the fakes and the database.
    const placed: { sim: SimulatedCall; backend: number }[] = [];
    const outcomes: PromiseSettledResult<void>[] = [];
    for (let wave = 0; wave < CALLS / WAVE; wave++) {
      const calls: { sim: SimulatedCall; backend: number }[] = [];
      for (let i = 0; i < WAVE; i++) {
        calls.push(await placeCall());
        await sleep(50);
      }
      placed.push(...calls);
      outcomes.push(
        ...(await Promise.allSettled(
          calls.map(async ({ sim }) => {
            await sim.agentDone({ quietMs: 600, timeoutMs: 20_000 });
            const turn = await sim.say(speech);
            await sim.answer(turn, 20_000);
            await sim.agentDone({ sinceMs: turn.saidEndMs, quietMs: 600, timeoutMs: 20_000 });
            await sim.hangup();
          }),
        )),
      );
      mark(`wave ${wave + 1} of ${CALLS / WAVE} done`);
    }
    mark('all hung up');
    // A failed call says why: where its media was, and what the service recorded of it.
    const failures: string[] = [];
    for (const [i, o] of outcomes.entries()) {
      if (o.status === 'fulfilled') continue;
      const { sim, backend } = placed[i]!;
      await sim.hangup().catch(() => {});
      const turns = (await lb('GET', `/api/v1/calls/${sim.callId}/transcript`, token)).json;
      const events = (await lb('GET', `/api/v1/calls/${sim.callId}/events`, token)).json;
      failures.push(
        `call ${sim.callId} on instance ${backend}: ${(o.reason as Error).message}; heard ${sim.leg.heard.length} frames; ` +
          `turns ${JSON.stringify(turns)}; events ${JSON.stringify(events?.items?.map((e: Json) => e.type))}`,
      );
    }
    expect(failures).toEqual([]);
    const perInstance = [0, 1, 2].map((b) => placed.filter((p) => p.backend === b).length);
    expect(Math.min(...perInstance)).toBeGreaterThanOrEqual(5);
    for (const { sim } of placed) expect(await callEnded(token, sim.callId!)).toMatchObject({ status: 'completed' });
  }, 240_000);

  it('a hang-up sent to an instance that does not hold the media ends the call', async () => {
    const { sim, backend } = await placeCall();
    await sim.agentDone({ quietMs: 600, timeoutMs: 30_000 });
    const other = instances[(backend + 1) % 3]!;
    expect((await api(other.url, 'POST', `/api/v1/calls/${sim.callId}/hangup`, token)).status).toBe(202);
    await Promise.race([sim.leg.closed, sleep(10_000).then(() => Promise.reject(new Error('the media stream was not closed')))]);
    expect(await callEnded(token, sim.callId!)).toMatchObject({ status: 'completed' });
    expect(twilioHangups).toContain(sim.callSid);
  });

  it('SIGTERM ends an instance’s calls as hung up; SIGKILL leaves its calls to the sweeper and its ingestion to the lease', async () => {
    const mark = stopwatch('kill');
    const placed: { sim: SimulatedCall; backend: number }[] = [];
    for (let i = 0; i < 6; i++) placed.push(await placeCall());
    await Promise.all(placed.map(({ sim }) => sim.agentDone({ quietMs: 600, timeoutMs: 30_000 })));

    // A document large enough to be in flight when its instance dies.
    const words = ['clinic', 'parking', 'saturday', 'opening', 'garage', 'doctor', 'appointment', 'weekday', 'street', 'nurse'];
    const paragraphs: string[] = [];
    for (let i = 0; paragraphs.join('\n\n').length < 250_000; i++) {
      paragraphs.push(`## Section ${i}\n\n` + Array.from({ length: 80 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' ') + '.');
    }
    const doc = await lb('POST', '/api/v1/documents', token, { title: 'Handbook', content: paragraphs.join('\n\n') });
    expect(doc.status, JSON.stringify(doc.json)).toBe(202);
    const holder = await waitFor(
      'the large document in flight',
      async () => {
        const r = (await db.query('select status, locked_by, chunks_done from documents where id = $1', [doc.json.id])).rows[0];
        if (r.status === 'ready') throw new Error('the document was ingested before an instance could be killed under it');
        if (r.status !== 'processing' || !(r.chunks_done > 0)) return undefined;
        const pid = Number(/^worker-.*-(\d+)-[0-9a-f-]{36}$/.exec(r.locked_by)?.[1]);
        return instances.find((s) => s.pid === pid);
      },
      30_000,
    );
    mark('document in flight');
    const killed = holder;
    const termed = instances.find((s) => s !== killed && placed.some((p) => p.backend === s.index))!;
    const survivor = instances.find((s) => s !== killed && s !== termed)!;
    const onTermed = placed.filter((p) => p.backend === termed.index);
    const onKilled = placed.filter((p) => p.backend === killed.index);
    expect(onTermed.length).toBeGreaterThan(0);
    expect(onKilled.length).toBeGreaterThan(0);

    // The load balancer's health check takes both out of rotation; then the deployment stops one and the other dies.
    proxy.takeOut(termed.index);
    proxy.takeOut(killed.index);
    termed.fate = 'SIGTERM';
    killed.fate = 'SIGKILL';
    termed.cpuMs = cpuMs(termed.pid) ?? termed.cpuMs;
    killed.cpuMs = cpuMs(killed.pid) ?? killed.cpuMs;
    killed.child.kill('SIGKILL');
    const termExit = new Promise<number | null>((r) => termed.child.once('exit', (code) => r(code)));
    termed.child.kill('SIGTERM');
    expect(await termExit).toBe(0);
    mark('SIGTERMed instance exited');

    // The stopped instance's calls ended as hung up, their records and recordings written.
    for (const { sim } of onTermed) {
      await sim.leg.closed;
      const c = await callEnded(token, sim.callId!);
      expect(c.status).toBe('completed');
      const rec = await lb('GET', `/api/v1/calls/${sim.callId}/recording`, token);
      expect(rec.status, JSON.stringify(rec.json)).toBe(200);
    }
    mark('its calls checked');
    // The killed instance's calls: ended by a survivor's sweeper once their heartbeat is 6 beats old.
    for (const { sim } of onKilled) {
      await sim.leg.closed;
      const c = await callEnded(token, sim.callId!, 30_000);
      expect(c.status).toBe('failed');
      expect((await endedEvent(token, sim.callId!))?.data).toMatchObject({ reason: 'instance_lost' });
    }
    mark('the killed instance’s calls ended by the sweeper');
    // Its document: taken over after the lease by the survivor, finished once.
    const done = await waitFor(
      'the document taken over and ready',
      async () => {
        const r = (await db.query('select status, attempts, chunks_total, chunks_done, error from documents where id = $1', [doc.json.id]))
          .rows[0];
        if (r.status === 'failed') throw new Error(`ingestion failed: ${r.error}`);
        return r.status === 'ready' ? r : undefined;
      },
      45_000,
    );
    mark(`document taken over and ready (${done.chunks_total} chunks)`);
    // Finished once, by the survivor, on the claim after the killed one's.
    const finished = readyLines(doc.json.id);
    expect(finished).toHaveLength(1);
    expect(finished[0]![0]).toBe(survivor.index);
    expect(finished[0]![1].attempt).toBe(2);
    expect(done.chunks_done).toBe(done.chunks_total);
    const dupes = await db.query(
      'select count(*)::int as n from (select chunk_index from document_chunks where document_id = $1 group by chunk_index, version having count(*) > 1) d',
      [doc.json.id],
    );
    expect(dupes.rows[0].n).toBe(0);
    // The other calls go on: the survivor still answers.
    expect((await api(survivor.url, 'GET', '/health/ready')).status).toBe(200);
    for (const { sim } of placed.filter((p) => p.backend === survivor.index)) await sim.hangup();
  }, 180_000);
});

/** Asks a child to end (stdin closes, then `signal`), and kills it if it has not within `graceMs`. */
async function stop(child: ChildProcess, signal: NodeJS.Signals | null, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.stdin?.end();
  if (signal) child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
