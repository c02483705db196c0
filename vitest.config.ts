import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['./vitest.setup.ts'],
    // Generous on purpose: a busy 2-core machine runs CLI and lab tests several times slower than an idle one, and a
    // timeout is a failure that says nothing about the code. Speed is measured in bench/, not asserted here.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // The kernel suite shares one network-namespace lab per file; files run in parallel, tests inside a file do not.
    pool: 'forks',
  },
});
