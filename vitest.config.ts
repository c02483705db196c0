import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['./vitest.setup.ts'],
    testTimeout: 30_000,
    // The kernel suite shares one network-namespace lab per file; files run in parallel, tests inside a file do not.
    pool: 'forks',
  },
});
