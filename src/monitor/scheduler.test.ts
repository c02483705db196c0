import { describe, expect, it } from 'vitest';
import { DueQueue, jitter, Scheduler, type Task } from './scheduler.js';

const task = (key: string, intervalMs = 10_000): Task<null> => ({ key, intervalMs, payload: null });

describe('DueQueue (simulated time)', () => {
  it('spreads new tasks inside their interval by key, the same way every time', () => {
    const q = new DueQueue<null>();
    q.set([task('a'), task('b'), task('c')], 1_000_000);
    const first = q.take(1_000_000 + 10_000).map((t) => t.key);
    expect(first.sort()).toEqual(['a', 'b', 'c']);
    expect(jitter('a', 10_000)).toBe(jitter('a', 10_000));
    expect(new Set([jitter('a', 10_000), jitter('b', 10_000), jitter('c', 10_000)]).size).toBe(3);
  });

  it('runs each task every interval, in due order, and a day of simulated time in milliseconds', () => {
    const q = new DueQueue<null>();
    q.set([task('fast', 1000), task('slow', 5000)], 0);
    const runs: Record<string, number> = { fast: 0, slow: 0 };
    for (let now = 0; now < 86_400_000; now += 1000) for (const t of q.take(now)) runs[t.key] = (runs[t.key] ?? 0) + 1;
    expect(runs.fast).toBeGreaterThanOrEqual(86_399);
    expect(runs.slow).toBeGreaterThanOrEqual(17_279);
    expect(runs.slow).toBeLessThanOrEqual(17_280);
  });

  it('re-checks once soon without moving the rhythm, and skips runs missed while busy', () => {
    const q = new DueQueue<null>();
    q.set([task('a', 10_000)], 0);
    const first = q.nextDue() as number;
    q.take(first);
    q.recheck('a', first + 1000);
    expect(q.take(first + 1000).map((t) => t.key)).toEqual(['a']);
    expect(q.nextDue()).toBe(first + 10_000);
    // Asleep for 35 s: one run now, then back on the rhythm.
    expect(q.take(first + 45_000)).toHaveLength(1);
    expect(q.nextDue()).toBe(first + 50_000);
  });

  it('keeps existing tasks rhythm across a reload and drops removed ones', () => {
    const q = new DueQueue<null>();
    q.set([task('a'), task('b')], 0);
    const due = q.nextDue();
    q.set([task('a'), task('c')], 5000);
    expect(q.has('b')).toBe(false);
    expect(q.size).toBe(2);
    expect(q.nextDue()).toBeLessThanOrEqual(Math.max(due ?? 0, 5000 + 10_000));
  });

  it('holds 10,000 tasks and takes them in order', () => {
    const q = new DueQueue<null>();
    q.set(
      Array.from({ length: 10_000 }, (_, i) => task(`m${i}`, 30_000)),
      0,
    );
    let n = 0;
    for (let now = 0; now <= 30_000; now += 100) {
      n += q.take(now).length;
      expect(q.nextDue()).toBeGreaterThan(now);
    }
    // Each task once in its first interval (its jittered slot), none twice.
    expect(n).toBe(10_000);
  });
});

describe('Scheduler', () => {
  it('runs due tasks with bounded concurrency', async () => {
    let inFlight = 0;
    let peak = 0;
    const done: string[] = [];
    const s = new Scheduler<null>({
      concurrency: 3,
      run: async (t) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 20));
        inFlight--;
        done.push(t.key);
      },
    });
    s.set(Array.from({ length: 10 }, (_, i) => task(`t${i}`, 50)));
    s.start();
    await new Promise((r) => setTimeout(r, 400));
    s.stop();
    expect(peak).toBeLessThanOrEqual(3);
    expect(new Set(done).size).toBe(10);
  });
});
