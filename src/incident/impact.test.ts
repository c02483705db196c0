import { describe, expect, it } from 'vitest';
import { estimateImpact, type ImpactPoint } from './impact.js';

const T0 = Date.parse('2023-05-10T11:00:00Z'); // 14:00 GMT+3, the founding outage's start
const H = 3_600_000;

/** One-minute buckets from `from` for `n` minutes: `observed(i)` and `expected(i)` req/s. */
function series(
  from: number,
  n: number,
  observed: (i: number) => number | null,
  expected: (i: number) => number | null,
): ImpactPoint[] {
  return Array.from({ length: n }, (_, i) => ({
    t: from + i * 60_000,
    ms: 60_000,
    observed: observed(i),
    expected: expected(i),
  }));
}

describe('estimateImpact', () => {
  it("gives the founding outage's 80%: a series that loses 80% of its expected requests for 2 h gives 0.80", () => {
    // Half an hour of normal traffic before and after: outside the interval, it does not count.
    const points = series(
      T0 - 30 * 60_000,
      180,
      (i) => (i < 30 || i >= 150 ? 10 : 2),
      () => 10,
    );
    const impact = estimateImpact({
      startMs: T0,
      endMs: T0 + 2 * H,
      resolved: true,
      series: [{ service: 'shop', points }],
      failures: [
        { vantage: 'server', monitor: 'shop-public', at: T0 + 30_000 },
        { vantage: 'agent:web1', monitor: 'shop-public', at: T0 + 20_000 },
        { vantage: 'server', monitor: 'shop-web1', at: T0 + 40_000 },
        { vantage: 'probe:eu', monitor: 'shop-public', at: T0 - H }, // before the incident: not part of it
      ],
    });
    expect(impact.services).toEqual([
      {
        service: 'shop',
        expectedRequests: 72_000,
        observedRequests: 14_400,
        lostRequests: 57_600,
        lostShare: 0.8,
        measuredMs: 2 * H,
      },
    ]);
    expect(impact.overall.lostShare).toBe(0.8);
    expect(impact.durationMs).toBe(2 * H);
    expect(impact.vantagePoints).toEqual([
      { vantage: 'agent:web1', monitors: ['shop-public'], firstAt: '2023-05-10T11:00:20.000Z' },
      { vantage: 'server', monitors: ['shop-public', 'shop-web1'], firstAt: '2023-05-10T11:00:30.000Z' },
    ]);
    expect(impact.text).toBe(
      'Over 2 hours, about 80% of the requests to shop were lost: 14,400 arrived of 72,000 expected from the traffic baseline; probes failed from agent:web1, server.',
    );
  });

  it('counts a bucket for its part inside the interval, and leaves out buckets nothing measured', () => {
    const impact = estimateImpact({
      startMs: T0 + 30_000, // half of the first bucket
      endMs: T0 + 3 * 60_000,
      resolved: true,
      series: [
        {
          service: 'shop',
          points: series(
            T0,
            3,
            (i) => (i === 1 ? null : 0),
            () => 10,
          ),
        },
      ],
      failures: [],
    });
    // 30 s of the first bucket and the whole third: 90 s at 10 req/s expected, nothing arrived.
    expect(impact.services[0]).toMatchObject({
      expectedRequests: 900,
      observedRequests: 0,
      lostShare: 1,
      measuredMs: 90_000,
    });
  });

  it('carries the last expected rate through buckets where the baseline ran out, from the fallback at first', () => {
    const points = series(
      T0,
      4,
      () => 5,
      (i) => (i === 2 ? 20 : null),
    );
    const impact = estimateImpact({
      startMs: T0,
      endMs: T0 + 4 * 60_000,
      resolved: true,
      series: [{ service: 'shop', points, fallbackExpected: 10 }],
      failures: [],
    });
    // Expected 10, 10, 20, 20 req/s for a minute each = 3600 requests; 5 req/s arrived = 1200.
    expect(impact.services[0]).toMatchObject({ expectedRequests: 3600, observedRequests: 1200, lostShare: 0.667 });
  });

  it('never counts more traffic than expected as a negative loss; per service and overall', () => {
    const impact = estimateImpact({
      startMs: T0,
      endMs: T0 + 10 * 60_000,
      resolved: false,
      series: [
        {
          service: 'shop',
          points: series(
            T0,
            10,
            () => 0,
            () => 30,
          ),
        },
        {
          service: 'api',
          points: series(
            T0,
            10,
            () => 15,
            () => 10,
          ),
        },
        {
          service: 'blog',
          points: series(
            T0,
            10,
            () => 1,
            () => null,
          ),
        },
      ],
      failures: [],
    });
    expect(impact.services.map((s) => [s.service, s.lostShare])).toEqual([
      ['shop', 1],
      ['api', 0],
      ['blog', null],
    ]);
    // 18000 expected for shop, 6000 for api (which got 9000): 9000 of 24000 arrived.
    expect(impact.overall).toMatchObject({ expectedRequests: 24_000, observedRequests: 9000, lostShare: 0.625 });
    expect(impact.ongoing).toBe(true);
    expect(impact.text).toBe(
      'Over 10 minutes so far, about 63% of the requests to shop, api were lost (shop 100%, api 0%): 9,000 arrived of 24,000 expected from the traffic baseline; no traffic baseline for blog, so its loss is unknown.',
    );
  });

  it('says plainly when nothing was measured', () => {
    const impact = estimateImpact({ startMs: T0, endMs: T0 + H, resolved: true, series: [], failures: [] });
    expect(impact.overall.lostShare).toBeNull();
    expect(impact.text).toBe('Over 1 hour, nothing was measured: no traffic series or failing probe for its services.');
  });
});
