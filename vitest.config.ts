// Vitest: test files run in parallel worker processes, each with its own throw-away database.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    // Most of the suite waits on real-time audio, not on the CPU: three files at a time on CI's 2 cores keeps the
    // whole suite (both passes) near 10 minutes instead of 18 with vitest's default of cores - 1.
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
