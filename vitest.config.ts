import { defineConfig } from 'vitest/config';

// Tests run against lib/ sources; one fork at a time keeps the 2-core machine responsive and the wasm
// backend's memory bounded.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { singleFork: false, maxForks: 2, minForks: 1 } },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ['test/setup.ts'],
  },
});
