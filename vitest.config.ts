import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

const workers = Number(process.env.RAMPART_TEST_WORKERS) || Math.max(2, availableParallelism() - 1);
const forks = Number(process.env.RAMPART_TEST_FORKS) || workers + 1;

export default defineConfig({
  test: {
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
    // The pure cores' tests run in worker threads that keep their module cache from file to file (below). vitest
    // runs the two pools side by side, each with its own workers: the threads' files (CPU) end within 3 minutes, the
    // forks' files (labs, servers, CLI processes) are the critical path and mostly wait, so the forks get one worker
    // more (idle 2-core machine in CI: 380 s with 3 forks against 633 s with 2; bench/RESULTS.md). RAMPART_TEST_FORKS
    // overrides.
    poolOptions: { threads: { isolate: false }, forks: { maxForks: forks } },
    maxWorkers: workers,
    projects: [
      {
        // The pure cores' tests (src/**) share their workers' module cache: a fresh process per file spent more CPU
        // loading the engine and the store again than many of these files spend testing (the suite is CPU-bound on
        // two cores; issue 13). They keep no global state between files: clocks are arguments, stores are per test.
        // vitest 3 decides isolation per pool, not per project: hence threads here, forks for the rest.
        extends: true,
        test: { name: 'unit', include: ['src/**/*.test.ts'], pool: 'threads' },
      },
      {
        // Labs, servers and CLI processes (test/**): one fresh process per file, as they start and stop real parts.
        extends: true,
        test: { name: 'integration', include: ['test/**/*.test.ts'] },
      },
    ],
  },
});
