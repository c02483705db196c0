/**
 * Runs in every test file: lets the event loop turn once after each test. vitest goes from one test to the next on
 * promise callbacks alone, so a file of synchronous tests never reads the runner's answers; a worker that leaves an
 * answer unread for 60 s fails the whole run with `Timeout calling "onTaskUpdate"` although every test passed (seen
 * on a busy 2-core machine: consecutive synchronous property tests of 30 s each). Long synchronous tests also yield
 * between their cases (`breathe()` in them).
 */
import { afterEach } from 'vitest';

afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
