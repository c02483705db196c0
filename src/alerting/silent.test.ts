import { describe, expect, it } from 'vitest';
import { silentReporters } from './silent.js';

const t0 = Date.parse('2026-12-04T10:00:00.000Z');

describe('silent agents and probes', () => {
  it('says a reporter is silent after more than 3 of its intervals without a word, once, and back when heard again', () => {
    const probe = (lastSeenMs: number) => ({ vantage: 'probe:eu', lastSeenMs, intervalMs: 10_000 });
    let silent = new Set<string>();
    // Exactly three intervals: not yet.
    let step = silentReporters([probe(t0)], silent, t0 + 30_000);
    expect(step.changes).toEqual([]);
    step = silentReporters([probe(t0)], silent, t0 + 30_001);
    expect(step.changes).toEqual([
      { vantage: 'probe:eu', to: 'silent', lastSeenMs: t0, forMs: 30_001, intervalMs: 10_000 },
    ]);
    silent = step.silent;
    // Still silent an hour later: nothing new.
    step = silentReporters([probe(t0)], silent, t0 + 3_600_000);
    expect(step.changes).toEqual([]);
    expect([...step.silent]).toEqual(['probe:eu']);
    // It reports again.
    step = silentReporters([probe(t0 + 3_600_500)], step.silent, t0 + 3_601_000);
    expect(step.changes).toMatchObject([{ vantage: 'probe:eu', to: 'back', lastSeenMs: t0 + 3_600_500 }]);
    expect(step.silent.size).toBe(0);
  });

  it('takes the number of intervals as an argument, and each reporter at its own interval', () => {
    const reporters = [
      { vantage: 'agent:web1', lastSeenMs: t0, intervalMs: 60_000 },
      { vantage: 'probe:eu', lastSeenMs: t0, intervalMs: 5000 },
    ];
    const step = silentReporters(reporters, new Set(), t0 + 100_000, 5);
    expect(step.changes.map((c) => c.vantage)).toEqual(['probe:eu']);
  });

  it('does not call a reporter never seen silent, and forgets one no longer expected', () => {
    const step = silentReporters(
      [{ vantage: 'agent:web3', lastSeenMs: undefined, intervalMs: 60_000 }],
      new Set(['probe:gone']),
      t0,
    );
    expect(step.changes).toEqual([]);
    expect(step.silent.size).toBe(0);
  });
});
