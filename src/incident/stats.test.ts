import { describe, expect, it } from 'vitest';
import { incidentStats, parseSince, quantile } from './stats.js';
import type { Incident } from './types.js';

const NOW = Date.parse('2026-12-01T00:00:00Z');
const DAY = 86_400_000;
const MIN = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

let nextId = 1;
/** An incident `daysAgo` days before NOW, detected after `d` minutes, acknowledged `a` later, resolved `r` after its start. */
function incident(
  daysAgo: number,
  o: { sev?: Incident['severity']; services?: string[]; d?: number; a?: number | null; r?: number | null } = {},
): Incident {
  const start = NOW - daysAgo * DAY;
  const detected = start + (o.d ?? 1) * MIN;
  const a = o.a === undefined ? 5 : o.a;
  const r = o.r === undefined ? 60 : o.r;
  return {
    id: nextId++,
    title: 't',
    severity: o.sev ?? 'SEV2',
    status: r === null ? 'investigating' : 'resolved',
    commander: null,
    services: o.services ?? ['shop'],
    hosts: [],
    groupKey: null,
    declaredBy: 'rampart',
    startedAt: iso(start),
    detectedAt: iso(detected),
    acknowledgedAt: a === null ? null : iso(detected + a * MIN),
    mitigatedAt: null,
    resolvedAt: r === null ? null : iso(start + r * MIN),
    reopened: 0,
    followUps: [],
    version: 1,
  };
}

describe('incidentStats', () => {
  it('counts by severity and service, and gives MTTD, MTTA and MTTR as median and p90, over the window only', () => {
    const incidents = [
      // The founding outage: detected after 30 s, acknowledged 5 min later, resolved after 2 h.
      { ...incident(10, { sev: 'SEV1', d: 0.5, a: 5, r: 120 }) },
      incident(20, { d: 1, a: 2, r: 30 }),
      incident(30, { d: 2, a: 10, r: 60, services: ['shop', 'api'] }),
      incident(40, { sev: 'SEV3', d: 4, a: null, r: 15, services: [] }),
      incident(1, { sev: 'SEV1', d: 3, a: 1, r: null, services: ['api'] }), // open: no MTTR
      incident(120, { sev: 'SEV4' }), // before the window
    ];
    const s = incidentStats(incidents, NOW - 90 * DAY, NOW);
    expect(s).toMatchObject({
      since: '2026-09-02T00:00:00.000Z',
      until: '2026-12-01T00:00:00.000Z',
      total: 5,
      open: 1,
      bySeverity: { SEV1: 2, SEV2: 2, SEV3: 1, SEV4: 0 },
      byService: { api: 2, shop: 3, '-': 1 },
    });
    expect(Object.keys(s.byService)).toEqual(['shop', 'api', '-']);
    // MTTD of 0.5, 1, 2, 3, 4 min: median 2 min, p90 between 3 and 4 min (0.6 of the way): 3.6 min.
    expect(s.mttd).toEqual({ count: 5, median: 120, p90: 216 });
    // MTTA of 5, 2, 10, 1 min (one unacknowledged): median 3.5 min, p90 8.5 min.
    expect(s.mtta).toEqual({ count: 4, median: 210, p90: 510 });
    // MTTR of 120, 30, 60, 15 min (one open): median 45 min, p90 102 min.
    expect(s.mttr).toEqual({ count: 4, median: 2700, p90: 6120 });
  });

  it('has every severity at 0 and no figures without incidents', () => {
    const s = incidentStats([], NOW - DAY, NOW);
    expect(s.total).toBe(0);
    expect(s.bySeverity).toEqual({ SEV1: 0, SEV2: 0, SEV3: 0, SEV4: 0 });
    expect(s.byService).toEqual({});
    expect(s.mttr).toEqual({ count: 0, median: null, p90: null });
  });

  it('interpolates quantiles between ranks', () => {
    expect(quantile([10], 0.9)).toBe(10);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9)).toBeCloseTo(9.1);
    expect(quantile([], 0.5)).toBeNull();
  });
});

describe('parseSince', () => {
  it('takes a duration back from now or an instant', () => {
    expect(parseSince('90d', NOW)).toBe(NOW - 90 * DAY);
    expect(parseSince('2w', NOW)).toBe(NOW - 14 * DAY);
    expect(parseSince('12h', NOW)).toBe(NOW - 12 * 3_600_000);
    expect(parseSince('30m', NOW)).toBe(NOW - 30 * MIN);
    expect(parseSince('2026-09-01T00:00:00Z', NOW)).toBe(Date.parse('2026-09-01T00:00:00Z'));
    expect(parseSince('2026-09-01T03:00:00+03:00', NOW)).toBe(Date.parse('2026-09-01T00:00:00Z'));
  });

  it('says what is wrong otherwise', () => {
    expect(parseSince('90', NOW)).toBe('the unit is missing');
    expect(parseSince('90days', NOW)).toBe("unknown unit 'days'");
    expect(parseSince('0d', NOW)).toBe('the duration is zero');
    expect(parseSince('4000d', NOW)).toBe('more than 3650 days');
    expect(parseSince('2027-01-01T00:00:00Z', NOW)).toBe('in the future');
    expect(parseSince('yesterday', NOW)).toBe('not a duration or an instant');
  });
});
