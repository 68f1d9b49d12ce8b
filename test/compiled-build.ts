// The compiled build (`npm run build` -> dist/) for tests that run it as production does: built once, and reused
// while it is newer than every source it is made of. A lock (a directory, created atomically) keeps two test files
// from building at the same time; the second then finds the first one's build fresh.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DIST_MAIN = path.join(ROOT, 'dist', 'main.js');

const newest = (p: string): number =>
  statSync(p).isDirectory() ? Math.max(0, ...readdirSync(p).map((name) => newest(path.join(p, name)))) : statSync(p).mtimeMs;

/** True when dist/main.js is newer than src/ and the build's own configuration. */
export function buildIsFresh(): boolean {
  let built: number;
  try {
    built = statSync(DIST_MAIN).mtimeMs;
  } catch {
    return false;
  }
  const inputs = ['src', 'tsconfig.json', 'tsconfig.build.json', 'scripts/copy-build-assets.mjs', 'package-lock.json'];
  return inputs.every((p) => newest(path.join(ROOT, p)) <= built);
}

/**
 * Runs `build` holding the repo's build lock (a directory, created atomically): test files starting together take
 * turns (two Vite or tsc builds at once would clash), and each then finds the one before it fresh.
 */
export async function withBuildLock<T>(build: () => T): Promise<T> {
  const lock = path.join(ROOT, '.build-lock');
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another file is building (or a crashed run left the lock: it goes after 10 minutes).
      const held = statSync(lock, { throwIfNoEntry: false });
      if (held && Date.now() - held.mtimeMs > 600_000) rmSync(lock, { recursive: true, force: true });
      await sleep(500);
    }
  }
  try {
    return build();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Runs `npm run build` unless dist/ is fresh; returns how long the build took (0 when reused). */
export function ensureBuild(): Promise<number> {
  return withBuildLock(() => {
    if (buildIsFresh()) return 0;
    const t0 = performance.now();
    const run = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`npm run build failed:\n${run.stdout}\n${run.stderr}`);
    return performance.now() - t0;
  });
}
