// Cold start on the embedded default: spawn `npm start`-equivalent (tsx src/main.ts), or with --dist the compiled
// build as `npm run start:prod` runs it (node --enable-source-maps dist/main.js; `npm run build` first), and time
// until /health answers. Runs N times on a fresh data folder (first boot: initdb + migrations) and N times on an
// existing one.
// Usage: npx tsx bench/cold-start.ts [runs=5] [--dist]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';

const args = process.argv.slice(2);
const dist = args.includes('--dist');
const runs = Number(args.find((a) => /^\d+$/.test(a)) ?? 5);
const port = 18_000 + Math.floor(Math.random() * 1000);
if (dist && !existsSync('dist/main.js')) throw new Error('dist/main.js not found: run `npm run build` first');
const command = dist ? ['--enable-source-maps', 'dist/main.js'] : ['--import', 'tsx', 'src/main.ts'];

/**
 * CPU the process used (user + system, ms) from /proc: on a busy machine the wall time mostly measures the other
 * processes, the CPU time what starting costs. Linux only (NaN elsewhere); tsx's own CLI is not in the path (node
 * --import tsx), so both commands are one process.
 */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
  } catch {
    return NaN;
  }
}

async function bootOnce(dataDir: string): Promise<{ wallMs: number; cpuMs: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, command, {
    env: { ...process.env, DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'warn', DATABASE_URL: '', REDIS_URL: '' },
    stdio: 'ignore',
  });
  try {
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        if (res.ok) return { wallMs: performance.now() - t0, cpuMs: cpuMs(child.pid) };
      } catch {
        /* not listening yet */
      }
      if (performance.now() - t0 > 180_000) throw new Error('did not start within 180 s');
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const fresh: { wallMs: number; cpuMs: number }[] = [];
const warm: { wallMs: number; cpuMs: number }[] = [];
for (let i = 0; i < runs; i++) {
  const dir = mkdtempSync(path.join(tmpdir(), 'va-cold-'));
  fresh.push(await bootOnce(dir));
  warm.push(await bootOnce(dir));
  rmSync(dir, { recursive: true, force: true });
}
const row = (name: string, boots: { wallMs: number; cpuMs: number }[]) => {
  const xs = boots.map((b) => b.wallMs);
  const cpu = boots.map((b) => b.cpuMs);
  return (
    `${name.padEnd(28)} p50 ${pct(xs, 50).toFixed(0).padStart(6)} ms   p95 ${pct(xs, 95).toFixed(0).padStart(6)} ms   ` +
    `min ${Math.min(...xs)
      .toFixed(0)
      .padStart(6)} ms   CPU p50 ${pct(cpu, 50).toFixed(0).padStart(6)} ms`
  );
};
console.log(`cold start to first /health 200, ${dist ? 'node dist/main.js' : 'tsx src/main.ts'} (${runs} runs each)`);
console.log(row('fresh data folder', fresh));
console.log(row('existing data folder', warm));
const p50 = (boots: { wallMs: number }[]) =>
  pct(
    boots.map((b) => b.wallMs),
    50,
  );
console.log(
  `ratio existing/fresh p50: ${(p50(warm) / p50(fresh)).toFixed(2)}; load average at the end ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
