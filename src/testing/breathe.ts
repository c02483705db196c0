/**
 * For long synchronous tests: `await breathe()` between their cases lets the worker's event loop turn, so it reads
 * the test runner's answers in time. vitest fails the whole run with `Timeout calling "onTaskUpdate"` when a worker
 * leaves an answer unread for 60 s, and on a busy 2-core machine a stretch that takes 10 s idle takes 40 s or more.
 * `RAMPART_REPORT_BLOCKING=MS npx vitest run` (vitest.breathe.ts) lists the tests that still block longer than MS.
 */
export const breathe = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
