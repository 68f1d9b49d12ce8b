// `npm start` builds the console first when its build is missing or stale (scripts/ensure-console.mjs, prestart), and
// never fails the start. Run on a tiny Vite app in a temp folder, with the repository's Vite.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SCRIPT = path.resolve('scripts/ensure-console.mjs');

/** Runs the script in `cwd`; it must always exit 0. Returns what it printed. */
const ensure = (cwd: string, env: Record<string, string> = {}) =>
  execFileSync(process.execPath, [SCRIPT], { cwd, encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });

describe('scripts/ensure-console.mjs', () => {
  it('builds a missing or stale console, stays quiet when it is fresh or absent, and survives a failed build', { timeout: 120_000 }, () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'va-ensure-'));
    // No console in this checkout: nothing to do, nothing said.
    expect(ensure(dir)).toBe('');

    mkdirSync(path.join(dir, 'web', 'src'), { recursive: true });
    writeFileSync(
      path.join(dir, 'web', 'index.html'),
      '<!doctype html><div id="root"></div><script type="module" src="/src/main.js"></script>',
    );
    const main = path.join(dir, 'web', 'src', 'main.js');
    writeFileSync(main, 'document.getElementById("root").textContent = "one";');
    expect(ensure(dir)).toMatch(/^console: no build yet, building web\/dist \.\.\. done in/);
    const index = path.join(dir, 'web', 'dist', 'index.html');
    expect(readFileSync(index, 'utf8')).toMatch(/assets\/index-[\w-]+\.js/);

    // Fresh: nothing to do. Another console directory configured: not ours to build.
    expect(ensure(dir)).toBe('');
    const later = new Date(Date.now() + 60_000);
    utimesSync(main, later, later);
    expect(ensure(dir, { CONSOLE_DIR: '/srv/prebuilt-console' })).toBe('');

    // A source newer than the build: rebuilt.
    expect(ensure(dir)).toMatch(/^console: sources changed, building web\/dist \.\.\. done in/);

    // A build that fails: one line naming the reason, exit 0, the previous build kept.
    writeFileSync(main, 'import missing from "./missing.js"; missing();');
    utimesSync(main, new Date(Date.now() + 120_000), new Date(Date.now() + 120_000));
    const out = ensure(dir);
    expect(out.trim().split('\n')).toHaveLength(1);
    expect(out).toMatch(/failed \(.*missing\.js.*\); serving the previous build/);
    expect(readFileSync(index, 'utf8')).toMatch(/assets\/index-/);
  });
});
