// Run by `npm start` (prestart): builds the web console (web/ -> web/dist, Vite) when its build is missing or older
// than its sources, so a fresh clone's `npm start` serves it. Quiet when there is nothing to do; never fails the
// start: without a build the service still runs, with the API docs at /docs.
/* global process, console */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const WEB = 'web';
const DIST = path.join(WEB, 'dist');
/** What the build is made from: a change to any of these makes web/dist stale. */
const SOURCES = [
  'src',
  'public',
  'index.html',
  'vite.config.ts',
  'vite.config.js',
  'vite.config.mjs',
  'tsconfig.json',
  'postcss.config.cjs',
  'postcss.config.mjs',
];

/** The newest modification time under `p` (a file, or a folder walked recursively); 0 when it does not exist. */
function newest(p) {
  let st;
  try {
    st = statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs; // a deleted file changes its folder
  for (const e of readdirSync(p)) max = Math.max(max, newest(path.join(p, e)));
  return max;
}

function main() {
  // No console in this checkout yet (or another build is served): nothing to do.
  if (!existsSync(path.join(WEB, 'index.html'))) return;
  const consoleDir = process.env.CONSOLE_DIR;
  if (consoleDir && path.resolve(consoleDir) !== path.resolve(DIST)) return;

  const built = newest(path.join(DIST, 'index.html'));
  const changed = Math.max(...SOURCES.map((s) => newest(path.join(WEB, s))));
  if (built && built >= changed) return;

  let vite;
  try {
    vite = path.join(path.dirname(createRequire(import.meta.url).resolve('vite/package.json')), 'bin', 'vite.js');
  } catch {
    console.log('console: not built (Vite is not installed: npm ci); serving the API, docs at /docs');
    return;
  }
  const started = Date.now();
  process.stdout.write(`console: ${built ? 'sources changed' : 'no build yet'}, building ${DIST} ... `);
  const res = spawnSync(process.execPath, [vite, 'build', WEB], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (res.status === 0) {
    console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return;
  }
  // Vite prints "error during build:", maybe "Build failed with N errors:", then the first reason.
  const lines = `${res.stderr ?? ''}\n${res.stdout ?? ''}`.split('\n').map((l) => l.trim());
  const at = lines.findIndex((l) => /error/i.test(l));
  const why =
    (/error during build:?$/i.test(lines[at] ?? '') ? lines.slice(at + 1).find((l) => l && !/^build failed/i.test(l)) : lines[at]) ?? '';
  const serving = built ? 'serving the previous build' : 'serving the API, docs at /docs';
  console.log(`failed${why ? ` (${why.slice(0, 200)})` : ''}; ${serving} (npm run web:build shows why)`);
}

try {
  main();
} catch (err) {
  console.log(`console: not built (${err instanceof Error ? err.message : String(err)}); serving the API, docs at /docs`);
}
