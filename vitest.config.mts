import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native tests share one addon and the machine's 2 cores; files run in parallel forks.
    pool: 'forks',
  },
});
