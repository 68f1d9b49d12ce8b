// Vitest: the whole suite as projects in one run, sharing the workers: `embedded` (every file, PGlite in process),
// `wire` (the files whose database TEST_DB changes, over the Postgres wire protocol: test/wire-pass.ts) and `web`
// (the console's component tests, in jsdom).
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';
import { wirePassFiles } from './test/wire-pass.js';

export default defineConfig({
  test: {
    // Builds the migrated database every test app copies, once, before the workers start (test/db-snapshot.ts).
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    // A worker process runs file after file with its module cache kept (each file still gets its own test app and
    // database): importing the service, the SDKs and tsx's transforms once per worker instead of once per file cut
    // the suite's CPU time by a third. Tests therefore leave no global state behind (no module mocks, no env writes).
    isolate: false,
    // Most of the suite waits on real-time audio, not on the CPU, but the real-time tests need their share of CI's
    // 2 cores: three files at a time left them too little.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // One run for both projects, so neither waits for the other's slowest file.
    projects: [
      { extends: true, test: { name: 'embedded', include: ['src/**/*.test.ts', 'test/**/*.test.ts'] } },
      { extends: true, test: { name: 'wire', include: wirePassFiles(['src', 'test']), env: { TEST_DB: 'wire' } } },
      // The console's component tests: a browser-like DOM, no database (so not extending the global setup).
      {
        plugins: [react()],
        test: { name: 'web', environment: 'jsdom', include: ['web/src/**/*.test.{ts,tsx}'], setupFiles: ['web/src/test-setup.ts'] },
      },
    ],
  },
});
