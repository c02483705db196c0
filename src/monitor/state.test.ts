import { describe, expect, it } from 'vitest';
import { applyResult, monitorVerdict, serviceVerdict, type VantageState } from './state.js';
import type { Monitor, ProbeResult } from './types.js';

const M: Monitor = {
  name: 'shop',
  check: { kind: 'tcp', host: '192.0.2.10', port: 80 },
  target: 'public',
  intervalMs: 10_000,
  timeoutMs: 5_000,
  failures: 2,
  quorum: 'majority',
  from: ['server', 'probes'],
};

const result = (at: number, ok: boolean, vantage = 'server', inside = false): ProbeResult => ({
  monitor: 'shop',
  vantage,
  at,
  ok,
  timings: { totalMs: 3 },
  ...(ok ? {} : { error: 'connect ECONNREFUSED' }),
  ...(inside ? { inside } : {}),
});

/** Feeds results in order; returns every step. */
function run(results: readonly ProbeResult[], failures = 2) {
  let s: VantageState | undefined;
  return results.map((r) => {
    const step = applyResult(s, r, failures);
    s = step.next;
    return step;
  });
}

describe('a vantage point (simulated time)', () => {
  it('believes the first success at once, and needs two failures in a row to call it down, re-checking after the first', () => {
    const steps = run([result(0, true), result(10_000, false), result(11_000, false)]);
    expect(steps.map((s) => [s.next.state, s.changed, s.recheck])).toEqual([
      ['up', true, false],
      ['up', false, true],
      ['down', true, false],
    ]);
    expect(steps[2]?.next.since).toBe(11_000);
  });

  it('damps flapping both ways: one success does not bring it up, one failure does not take it down', () => {
    const steps = run([
      result(0, true),
      result(10, false),
      result(20, true),
      result(30, false),
      result(40, false),
      result(50, true),
      result(60, false),
      result(70, true),
      result(80, true),
    ]);
    expect(steps.map((s) => s.next.state)).toEqual(['up', 'up', 'up', 'up', 'down', 'down', 'down', 'down', 'up']);
  });

  it('calls it down at the first failure when failures is 1, and never asks for a re-check then', () => {
    const steps = run([result(0, true), result(10, false)], 1);
    expect(steps[1]).toMatchObject({ changed: true, recheck: false, next: { state: 'down' } });
  });
});

describe('quorum over vantage points', () => {
  const v = (state: VantageState['state'], lastAt = 100_000, inside = false): VantageState => ({
    state,
    streak: 0,
    since: 0,
    lastAt,
    lastOk: state === 'up',
    inside,
  });
  const now = 100_000;

  it('is DOWN when a majority sees it down, DEGRADED when a minority does, UP when none does', () => {
    expect(monitorVerdict(M, { server: v('down'), 'probe:eu': v('down'), 'probe:us': v('up') }, now)).toMatchObject({
      state: 'DOWN',
      counted: 3,
      quorum: 2,
    });
    expect(monitorVerdict(M, { server: v('down'), 'probe:eu': v('up'), 'probe:us': v('up') }, now).state).toBe(
      'DEGRADED',
    );
    expect(monitorVerdict(M, { server: v('up'), 'probe:eu': v('up') }, now).state).toBe('UP');
    expect(monitorVerdict(M, {}, now).state).toBe('UNKNOWN');
  });

  it('forgets vantage points that went silent, and leaves the inside view out of the count', () => {
    const stale = 100_000 - 3 * 10_000 - 5_000 - 1;
    expect(monitorVerdict(M, { server: v('up'), 'probe:eu': v('down', stale) }, now).state).toBe('UP');
    expect(monitorVerdict(M, { server: v('down'), 'agent:web1': v('up', now, true) }, now)).toMatchObject({
      state: 'DOWN',
      counted: 1,
    });
  });

  it('takes a fixed quorum, capped at the vantage points there are', () => {
    const two: Monitor = { ...M, quorum: 2 };
    expect(monitorVerdict(two, { server: v('down'), a: v('up'), b: v('up') }, now).state).toBe('DEGRADED');
    expect(monitorVerdict(two, { server: v('down') }, now).state).toBe('DOWN');
  });
});

describe('a service: redundancy', () => {
  it('is DEGRADED with one of two backends down while its public address answers, DOWN when both are', () => {
    expect(
      serviceVerdict('UP', [
        { host: 'web1', state: 'UP' },
        { host: 'web2', state: 'DOWN' },
      ]),
    ).toEqual({ state: 'DEGRADED', reason: '1 of 2 backends healthy (web2 down)', healthy: 1, backends: 2 });
    expect(
      serviceVerdict('UP', [
        { host: 'web1', state: 'DOWN' },
        { host: 'web2', state: 'DOWN' },
      ]).state,
    ).toBe('DOWN');
  });

  it('is DOWN when its public address is, even with every backend up (the load balancer)', () => {
    expect(
      serviceVerdict('DOWN', [
        { host: 'web1', state: 'UP' },
        { host: 'web2', state: 'UP' },
      ]),
    ).toMatchObject({ state: 'DOWN', reason: 'unreachable through its public address; 2 of 2 backends healthy' });
  });

  it('is UP when all answer, UNKNOWN before any result', () => {
    expect(serviceVerdict(undefined, [{ host: 'web1', state: 'UP' }]).state).toBe('UP');
    expect(serviceVerdict(undefined, [{ host: 'web1', state: 'UNKNOWN' }]).state).toBe('UNKNOWN');
  });
});
