import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // Pure code, no processes or sockets: files share the cores, and a slow one is a bug.
          testTimeout: 5_000,
          // One thread for all files, modules shared: these pieces keep no state between tests
          // (timers are faked per test and restored), and a fresh module graph per file was
          // three quarters of the tier's time.
          pool: 'threads',
          isolate: false,
          // Group 0 finishes before group 1 starts: a broken header rule fails in seconds,
          // not after minutes of end-to-end runs.
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/unit/**'],
          // Files run one at a time: each starts real processes and load on a 2-core machine, and
          // the zero-failure assertions should be judged without other suites competing for CPU.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 60_000,
          pool: 'forks',
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
