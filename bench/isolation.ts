// Document isolation benchmark (not a test): ONE service instance as its own process (`node --import tsx
// src/main.ts`, production mode, embedded PGlite in a temp DATA_DIR, default limits), and hostile or heavy uploads
// one after the other: the 3-million-paragraph DOCX (135 MB of XML in <1 MB), a DOCX past the XML element limit, a
// DOCX whose ZIP directory lies, HTML nested 20,000 deep, a Markdown bracket bomb, a big plain text (4 MB quick,
// 19 MB with --full). While each is uploaded and processed (until ready/failed, or refused), this process asks
// /health every 50 ms over HTTP and reads the service's RSS (/proc/<pid>/status VmRSS); it reports per upload the
// outcome, /health latency p50/p99/max, the longest gap between /health answers, and peak RSS, and writes
// bench/results/isolation.json. (A simulated phone call's pacing during the uploads is not measured here yet.)
//
//   npm run bench:isolation              # quick: a few minutes
//   npm run bench:isolation -- --full 1  # the 19 MB text to ready (~15,000 chunks: many minutes on embedded PGlite)
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV_VARIABLES } from '../src/config.js';
import { bigText, bracketBombMarkdown, deepHtml, paragraphBombDocx } from '../test/fixtures/documents.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const FULL = args.get('full') === '1';
const OUT = args.get('out') ?? 'bench/results/isolation.json';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise((r) => server.close(r));
  if (!address || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

async function startService(dir: string): Promise<{ child: ChildProcess; baseUrl: string; logFile: string }> {
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
  });
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  const logFile = path.join(dir, 'service.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', path.join(HERE, 'exit-with-parent.ts'), 'src/main.ts'], { cwd: ROOT, env, stdio: ['pipe', fd, fd] });
  closeSync(fd);
  const deadline = Date.now() + 90_000;
  while (!(await fetch(`${baseUrl}/health/ready`).then((r) => r.ok, () => false))) {
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

interface Result {
  name: string;
  bytes: number;
  outcome: string;
  seconds: number;
  health: { samples: number; p50Ms: number; p99Ms: number; maxMs: number; longestGapMs: number };
  rssPeakMb: number;
}

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-isolation-'));
  const service = await startService(dir);
  const pid = service.child.pid!;
  try {
    const signup = await fetch(`${service.baseUrl}/api/v1/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `bench-${Date.now()}@example.com`, password: 'correct horse battery staple', tenant_name: 'Bench' }),
    });
    const token = ((await signup.json()) as { access_token: string }).access_token;
    const auth = { authorization: `Bearer ${token}` };
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
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(file)]), filename);
      const res = await fetch(`${service.baseUrl}/api/v1/documents`, { method: 'POST', headers: auth, body: form });
      const body = (await res.json()) as { id?: string; error?: { code: string } };
      let outcome = `${res.status} ${body.error?.code ?? ''}`.trim();
      if (res.status === 202) {
        for (;;) {
          const d = (await (await fetch(`${service.baseUrl}/api/v1/documents/${body.id}`, { headers: auth })).json()) as { status: string; error: string | null; chunk_count: number };
          if (d.status === 'ready') outcome = `ready (${d.chunk_count} chunks)`;
          else if (d.status === 'failed') outcome = `failed: ${d.error}`;
          else {
            await sleep(250);
            continue;
          }
          break;
        }
      }
      done = true;
      await probe;
      const r: Result = {
        name,
        bytes: file.length,
        outcome: outcome.slice(0, 160),
        seconds: round((performance.now() - started) / 1000),
        health: { samples: latencies.length, p50Ms: round(pct(latencies, 50)), p99Ms: round(pct(latencies, 99)), maxMs: round(Math.max(...latencies)), longestGapMs: round(longestGapMs) },
        rssPeakMb: round(rssPeak),
      };
      results.push(r);
      console.log(`${name}: ${r.outcome} in ${r.seconds} s; /health p50 ${r.health.p50Ms} p99 ${r.health.p99Ms} max ${r.health.maxMs} ms; RSS peak ${r.rssPeakMb} MB`);
    }
    const alive = await fetch(`${service.baseUrl}/health`).then((r) => r.ok, () => false);
    const report = { date: new Date().toISOString(), mode: FULL ? 'full' : 'quick', machine: { cpus: os.cpus().length, node: process.version }, idleRssMb: round(idleRssMb), serviceAliveAtEnd: alive, results };
    mkdirSync(path.dirname(OUT), { recursive: true });
    writeFileSync(OUT, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\n| upload | outcome | s | /health p50 | p99 | max (ms) | RSS peak (MB) |\n|---|---|---|---|---|---|---|`);
    for (const r of results) console.log(`| ${r.name} | ${r.outcome.slice(0, 60)} | ${r.seconds} | ${r.health.p50Ms} | ${r.health.p99Ms} | ${r.health.maxMs} | ${r.rssPeakMb} |`);
    console.log(`\nservice alive at the end: ${alive}; written to ${OUT}`);
  } finally {
    service.child.kill('SIGTERM');
    await new Promise((r) => service.child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
