// Cold start on the embedded default: spawn `npm start`-equivalent (tsx src/main.ts), time until /health answers.
// Runs N times on a fresh data folder (first boot: initdb + migrations) and N times on an existing one.
// Usage: npx tsx bench/cold-start.ts [runs=5]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const runs = Number(process.argv[2] ?? 5);
const port = 18_000 + Math.floor(Math.random() * 1000);

async function bootOnce(dataDir: string): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'warn', DATABASE_URL: '', REDIS_URL: '' },
    stdio: 'ignore',
  });
  try {
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        if (res.ok) return performance.now() - t0;
      } catch {
        /* not listening yet */
      }
      if (performance.now() - t0 > 60_000) throw new Error('did not start within 60 s');
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const fresh: number[] = [];
const warm: number[] = [];
for (let i = 0; i < runs; i++) {
  const dir = mkdtempSync(path.join(tmpdir(), 'va-cold-'));
  fresh.push(await bootOnce(dir));
  warm.push(await bootOnce(dir));
  rmSync(dir, { recursive: true, force: true });
}
const row = (name: string, xs: number[]) =>
  `${name.padEnd(28)} p50 ${pct(xs, 50).toFixed(0).padStart(6)} ms   p95 ${pct(xs, 95).toFixed(0).padStart(6)} ms   min ${Math.min(...xs)
    .toFixed(0)
    .padStart(6)} ms`;
console.log(`cold start to first /health 200 (${runs} runs each)`);
console.log(row('fresh data folder', fresh));
console.log(row('existing data folder', warm));
console.log(`ratio existing/fresh p50: ${(pct(warm, 50) / pct(fresh, 50)).toFixed(2)}`);
