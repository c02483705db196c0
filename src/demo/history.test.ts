import { describe, expect, it } from 'vitest';
import { alertsFromEvent } from '../alerting/sources.js';
import { monitorRollups, outageEvents, outageResults, replayDay, trafficSamples } from './history.js';

// 2026-12-05 08:30 UTC: the outage is replayed on 2026-12-04, 11:00 to 12:00 UTC.
const NOW = Date.parse('2026-12-05T08:30:12.345Z');

describe("the demo's history (pure, clock passed in)", () => {
  it('replays the outage yesterday at the founding times', () => {
    const r = replayDay(NOW);
    expect(r.day).toBe('2026-12-04');
    expect(new Date(r.outage[0]).toISOString()).toBe('2026-12-04T11:00:00.000Z');
    expect(new Date(r.outage[1]).toISOString()).toBe('2026-12-04T12:00:00.000Z');
  });

  it('writes whole past buckets only: minutes for 48 h, hours for 90 days, failing during the outage only', () => {
    const rows = monitorRollups(NOW);
    for (const row of rows) expect(row.bucket * 1000 + row.resolution * 1000).toBeLessThanOrEqual(NOW);
    const web1 = rows.filter((x) => x.monitor === 'shop@web1');
    const hours = web1.filter((x) => x.resolution === 3600);
    expect(hours).toHaveLength(90 * 24);
    expect(new Set(hours.map((h) => h.bucket)).size).toBe(hours.length);
    const failing = web1.filter((x) => x.rollup.failures > 0);
    // the 60 minutes of the outage and the one hour they fall in
    expect(failing.filter((x) => x.resolution === 60)).toHaveLength(60);
    expect(failing.filter((x) => x.resolution === 3600).map((x) => new Date(x.bucket * 1000).toISOString())).toEqual([
      '2026-12-04T11:00:00.000Z',
    ]);
    const hour = failing.find((x) => x.resolution === 3600);
    expect(hour?.rollup).toMatchObject({ count: 360, failures: 360 });
  });

  it('keeps raw results around the two state changes, failures in between', () => {
    const results = outageResults(NOW);
    const r = replayDay(NOW);
    for (const p of results) expect(p.ok).toBe(!(p.at >= r.outage[0] && p.at < r.outage[1]));
    expect(results.filter((p) => p.ok).length).toBeGreaterThan(20);
    expect(results.filter((p) => !p.ok).length).toBeGreaterThan(20);
  });

  it('has events whose alerts fire at the outage and all resolve after it', () => {
    const events = outageEvents(NOW);
    expect(events.map((e) => e.at)).toEqual([...events.map((e) => e.at)].sort());
    const changes = events.flatMap((e) => alertsFromEvent(e));
    const fired = new Set(changes.filter((c) => c.op === 'fire').map((c) => JSON.stringify(c.alert.labels)));
    expect([...fired].map((l) => JSON.parse(l).alertname).sort()).toEqual([
      'MonitorDown',
      'MonitorDown',
      'ServiceDown',
      'TrafficDrop',
      'TrafficDrop',
    ]);
    for (const l of fired) {
      expect(
        changes.some((c) => c.op === 'resolve' && JSON.stringify(c.alert.labels) === l),
        l,
      ).toBe(true);
    }
  });

  it('counts no request during the outage and some every hour outside it', () => {
    const r = replayDay(NOW);
    for (const [, samples] of trafficSamples(NOW)) {
      const starts = samples.map((s) => s.start);
      expect(starts).toEqual([...starts].sort((a, b) => a - b));
      expect(new Set(starts).size).toBe(starts.length);
      const during = samples.filter((s) => s.start >= r.outage[0] && s.start < r.outage[1]);
      expect(during.length).toBe(360);
      expect(during.every((s) => s.requests === 0)).toBe(true);
      expect(samples.filter((s) => s.ms === 3_600_000).every((s) => s.requests > 0)).toBe(true);
      expect(Math.max(...samples.map((s) => s.start + s.ms))).toBeLessThanOrEqual(NOW);
    }
  });
});
