// Vitest: test files run in parallel worker processes, each with its own throw-away database.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'vitest/config';

const include = ['src/**/*.test.ts', 'test/**/*.test.ts'];

/**
 * The wire pass (TEST_DB=wire) only differs for a file whose test apps come from test/helpers.ts (`buildTestApp`,
 * the one place the switch is read, or `useTestApp`) or that reads TEST_DB itself: every other file (pure units,
 * processes given their own data folder) would run exactly as in the embedded pass, so it runs once.
 */
function databaseTestFiles(): string[] {
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const p = path.join(dir, e.name);
      return e.isDirectory() ? files(p) : e.name.endsWith('.test.ts') ? [p] : [];
    });
  return [...files('src'), ...files('test')].filter((f) => /\b(buildTestApp|useTestApp|TEST_DB)\b/.test(readFileSync(f, 'utf8'))).sort();
}

export default defineConfig({
  test: {
    include: process.env.TEST_DB === 'wire' ? databaseTestFiles() : include,
    // Builds the migrated database every test app copies, once, before the workers start (test/db-snapshot.ts).
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    // Most of the suite waits on real-time audio, not on the CPU: two files at a time on CI's 2 cores (vitest's
    // default is cores - 1) brings the whole suite, both passes, from 18 minutes to about 12. Three was faster still
    // but left the real-time tests too little CPU.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
