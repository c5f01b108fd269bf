import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Files run one at a time: each starts real processes and load on a 2-core machine, and
    // the zero-failure assertions should be judged without other suites competing for CPU.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
