/**
 * Runs in every test file: lets the event loop turn once after each test. vitest goes from one test to the next on
 * promise callbacks alone, so a file of synchronous tests never reads the runner's answers; a worker that leaves an
 * answer unread for 60 s fails the whole run with `Timeout calling "onTaskUpdate"` although every test passed (seen
 * on a busy 2-core machine: consecutive synchronous property tests of 30 s each). Long synchronous tests also yield
 * between their cases (`breathe()` in them).
 *
 * `RAMPART_REPORT_BLOCKING=MS` prints every test that kept its worker's event loop blocked longer than MS at a
 * stretch: the ones to give more `breathe()` points (on a loaded machine a stretch takes several times longer).
 */
import { afterEach, beforeEach, expect } from 'vitest';

afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));

const reportAbove = Number(process.env.RAMPART_REPORT_BLOCKING) || 0;
if (reportAbove > 0) {
  let last = Date.now();
  let longest = 0;
  const tick = setInterval(() => {
    const now = Date.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 100);
  tick.unref();
  beforeEach(() => {
    last = Date.now();
    longest = 0;
  });
  afterEach(() => {
    longest = Math.max(longest, Date.now() - last);
    if (longest > reportAbove) {
      const name = expect.getState().currentTestName ?? '?';
      process.stderr.write(`blocking: ${longest} ms at a stretch: ${expect.getState().testPath} > ${name}\n`);
    }
  });
}
