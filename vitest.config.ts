// Vitest: test files run in parallel worker processes, each with its own throw-away database.
import { defineConfig } from 'vitest/config';
import { wirePassFiles } from './test/wire-pass.js';

export default defineConfig({
  test: {
    // The wire pass runs only the files whose database TEST_DB changes (test/wire-pass.ts).
    include: process.env.TEST_DB === 'wire' ? wirePassFiles(['src', 'test']) : ['src/**/*.test.ts', 'test/**/*.test.ts'],
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
