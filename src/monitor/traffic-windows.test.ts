import { describe, expect, it } from 'vitest';
import { CounterDeltas, TrafficWindows } from './traffic-windows.js';

const T0 = 1_800_000_000_000; // a multiple of 5000

describe('TrafficWindows', () => {
  it('counts lines in the window of their own time and closes windows a grace after their end', () => {
    const w = new TrafficWindows(5000, T0 + 100);
    // the current window (T0) was only partly seen: skipped
    w.add(T0 + 200, T0 + 300);
    expect(w.skipped).toBe(1);
    w.add(T0 + 5000, T0 + 5001);
    w.add(T0 + 9999, T0 + 10_000, 1, 1);
    w.add(T0 + 10_000, T0 + 10_001);
    expect(w.close(T0 + 10_500)).toEqual([]); // within the grace
    expect(w.close(T0 + 11_000)).toEqual([{ start: T0 + 5000, requests: 2, errors: 1 }]);
    expect(w.close(T0 + 11_000)).toEqual([]);
  });

  it('emits empty windows as zeros, in order', () => {
    const w = new TrafficWindows(5000, T0);
    w.add(T0 + 16_000, T0 + 16_000);
    expect(w.close(T0 + 21_000).map((x) => [x.start - T0, x.requests])).toEqual([
      [5000, 0],
      [10_000, 0],
      [15_000, 1],
    ]);
  });

  it('counts a line for a closed window in the oldest open one (never lost, never twice)', () => {
    const w = new TrafficWindows(5000, T0);
    expect(w.close(T0 + 11_000)).toHaveLength(1);
    w.add(T0 + 6000, T0 + 12_000); // its window was closed
    w.add(T0 + 60_000, T0 + 12_000); // a clock ahead of ours: now
    expect(w.close(T0 + 16_000)).toEqual([{ start: T0 + 10_000, requests: 2, errors: 0 }]);
  });

  it('a backlog read at once lands in the windows it happened in (no spike)', () => {
    const w = new TrafficWindows(5000, T0);
    for (let t = T0 + 5000; t < T0 + 65_000; t += 500) w.add(t, T0 + 70_000);
    const out = w.close(T0 + 70_000);
    expect(out).toHaveLength(12);
    expect(new Set(out.map((x) => x.requests))).toEqual(new Set([10]));
  });

  it('resumes from its state exactly', () => {
    const a = new TrafficWindows(5000, T0);
    a.add(T0 + 5000, T0 + 5000);
    a.close(T0 + 11_000);
    a.add(T0 + 12_000, T0 + 12_000, 1, 1);
    const b = new TrafficWindows(5000, T0 + 99_000, {}, JSON.parse(JSON.stringify(a.state())));
    b.add(T0 + 13_000, T0 + 99_000);
    b.add(T0 + 1000, T0 + 99_000); // late: oldest open window, not skipped
    expect(b.close(T0 + 16_000)).toEqual([{ start: T0 + 10_000, requests: 3, errors: 1 }]);
    expect(b.skipped).toBe(0);
  });

  it('after a long absence emits at most maxBacklog windows and says how many lines it dropped', () => {
    const w = new TrafficWindows(5000, T0, { maxBacklog: 3 });
    w.add(T0 + 5000, T0 + 5000);
    w.add(T0 + 40_000, T0 + 40_000);
    const out = w.close(T0 + 51_000);
    expect(out.map((x) => x.start - T0)).toEqual([35_000, 40_000, 45_000]);
    expect(out.map((x) => x.requests)).toEqual([0, 1, 0]);
    expect(w.dropped).toBe(1);
  });
});

describe('CounterDeltas', () => {
  it('starts with a baseline, then gives increases; a reset counts from zero; a new key is its own baseline', () => {
    const d = new CounterDeltas();
    expect(d.update(new Map([['a', 100]]))).toBeUndefined();
    expect(d.update(new Map([['a', 130]]))).toBe(30);
    expect(d.update(new Map([['a', 4]]))).toBe(4); // ruleset replaced: reset
    expect(
      d.update(
        new Map([
          ['a', 10],
          ['b', 7],
        ]),
      ),
    ).toBe(6); // a: 4 -> 10; b (restored with 7 already on it): a baseline
    expect(d.update(new Map([['b', 9]]))).toBe(2);
    d.reset();
    expect(d.update(new Map([['b', 10]]))).toBeUndefined();
  });
});
