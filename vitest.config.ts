import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['./vitest.setup.ts'],
    setupFiles: ['./vitest.breathe.ts'],
    // Generous on purpose: a busy 2-core machine runs CLI and lab tests several times slower than an idle one, and a
    // timeout is a failure that says nothing about the code. Speed is measured in bench/, not asserted here. Tests
    // keep to this one timeout (no shorter per-test ones) and long synchronous tests yield now and then: a worker that
    // does not answer vitest for 60 s fails the run ("Timeout calling onTaskUpdate") although every test passed.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // Files run in parallel, tests inside a file do not. At least two workers even on two CPUs (vitest's default
    // is CPUs - 1): most files wait on processes, namespaces and servers as much as they compute. Every file that
    // creates namespaces, servers, databases or directories names them uniquely (PID or random), so files never meet.
    // RAMPART_TEST_WORKERS overrides.
    pool: 'forks',
    maxWorkers: Number(process.env.RAMPART_TEST_WORKERS) || Math.max(2, availableParallelism() - 1),
  },
});
