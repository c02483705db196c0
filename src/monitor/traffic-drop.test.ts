import { expect, describe as group, it } from 'vitest';
import { DAY_MS, DEFAULT_START, dailyShape, generateTraffic, HOUR_MS } from '../lab/traffic-generator.js';
import {
  describe,
  poissonLowTail,
  type TrafficDropConfig,
  TrafficDropDetector,
  type TrafficEvent,
  type TrafficPoint,
  trafficDropConfig,
} from './traffic-drop.js';

const SEEDS = [1, 2, 3];

function run(points: readonly TrafficPoint[], config: Partial<TrafficDropConfig> = {}): TrafficEvent[] {
  const d = new TrafficDropDetector('shop', config);
  const events: TrafficEvent[] = [];
  for (const p of points) events.push(...d.observe(p));
  return events;
}

/** The time ranges the detector spent in a drop (from `since` to the recovery, or to the end). */
function dropSpans(events: readonly TrafficEvent[]): [number, number][] {
  const spans: [number, number][] = [];
  for (const e of events) {
    if (e.kind === 'traffic-drop') spans.push([e.since, Number.POSITIVE_INFINITY]);
    else if (spans.length > 0) spans[spans.length - 1]![1] = e.at;
  }
  return spans;
}

/** Scores drop events against the injected drops: each event matches the drop it falls in, or is a false alert. */
function score(events: readonly TrafficEvent[], drops: readonly { at: number; durationMs: number; share: number }[]) {
  const found = new Map<number, number>(); // drop index -> delay ms
  let falseAlerts = 0;
  for (const e of events) {
    if (e.kind !== 'traffic-drop') continue;
    const i = drops.findIndex((d) => e.at >= d.at && e.at <= d.at + d.durationMs);
    if (i < 0) falseAlerts++;
    else if (!found.has(i)) found.set(i, e.at - drops[i]!.at);
  }
  return { found, falseAlerts };
}

group('traffic-drop detector on four generated weeks', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: every drop of 50% or more found, the 30% ones not (share 0.5), no false alert`, () => {
      const g = generateTraffic({ seed });
      const events = run(g.points);
      const { found, falseAlerts } = score(events, g.drops);
      const lines = g.drops.map((d, i) => {
        const delay = found.get(i);
        return `  ${Math.round(d.share * 100)}% drop at ${new Date(d.at).toISOString()}: ${
          delay === undefined ? 'not reported' : `found after ${delay / 1000} s`
        }`;
      });
      console.log(
        `seed ${seed}, share 0.5, ${g.points.length} points, ${falseAlerts} false alerts\n${lines.join('\n')}`,
      );
      g.drops.forEach((d, i) => {
        if (d.share >= 0.5) expect(found.has(i), `${d.share} drop at ${new Date(d.at).toISOString()}`).toBe(true);
        else expect(found.has(i), `${d.share} drop at ${new Date(d.at).toISOString()}`).toBe(false);
      });
      expect(falseAlerts).toBe(0);
      // Detection is quick: within a minute for every big drop (20-25 s expected at 10 s points).
      for (const delay of found.values()) expect(delay).toBeLessThanOrEqual(60_000);
      // Every drop recovers, and says when it started.
      const drops = events.filter((e) => e.kind === 'traffic-drop');
      const recoveries = events.filter((e) => e.kind === 'traffic-recovered');
      expect(recoveries.length).toBe(drops.length);
      expect(recoveries.map((r) => r.since)).toEqual(drops.map((d) => d.since));
    });
  }

  it('reports the 30% drops when configured to (share 0.8, kMad 1)', () => {
    // Sensitive on purpose: at share 0.8 the default caution from the spread (kMad 3) still hides a 30% drop on
    // days whose past disagrees (a Saturday judged by a week of mostly weekdays, seed 2).
    for (const seed of SEEDS) {
      const g = generateTraffic({ seed });
      const events = run(g.points, { share: 0.8, kMad: 1 });
      const { found, falseAlerts } = score(events, g.drops);
      const weeks = g.points.length / (7 * 8640);
      console.log(
        `seed ${seed}, share 0.8, kMad 1: 30% drops reported: ${g.drops
          .map((d, i) => (d.share < 0.5 ? (found.has(i) ? `${found.get(i)! / 1000} s` : 'already in a drop') : ''))
          .filter(Boolean)
          .join(', ')}; ${falseAlerts} other alerts (${(falseAlerts / weeks).toFixed(1)}/week: ` +
          'a share this close to normal also catches deploy restarts and quiet hours)',
      );
      // Reported: declared during the drop, or already in a drop then (an earlier alert had not recovered yet).
      const spans = dropSpans(events);
      for (const d of g.drops.filter((x) => x.share < 0.5)) {
        const covered = spans.some(([from, to]) => from <= d.at + d.durationMs && to >= d.at);
        expect(covered, `30% drop at ${new Date(d.at).toISOString()}, seed ${seed}`).toBe(true);
      }
    }
  });
});

/** A smooth, noiseless day curve at `peak` req/s (weekday shape only), every `stepMs`, from DEFAULT_START. */
function smooth(days: number, peak: number, stepMs = 10_000, from = DEFAULT_START): TrafficPoint[] {
  const out: TrafficPoint[] = [];
  for (let t = from + stepMs; t <= from + days * DAY_MS; t += stepMs) {
    const hour = ((t - stepMs / 2 - DEFAULT_START) % DAY_MS) / HOUR_MS;
    out.push({ t, rate: Math.round(peak * dailyShape(hour) * 10) / 10 });
  }
  return out;
}

/** Replaces the rate of the points in [from, to) (a drop, a dip) or removes them (rate undefined: missing). */
function edit(points: TrafficPoint[], from: number, to: number, rate?: (p: TrafficPoint) => number): TrafficPoint[] {
  const out: TrafficPoint[] = [];
  for (const p of points) {
    if (p.t < from || p.t >= to) out.push(p);
    else if (rate !== undefined) out.push({ t: p.t, rate: rate(p) });
  }
  return out;
}

const at = (day: number, h: number, m = 0, s = 0) => DEFAULT_START + day * DAY_MS + h * HOUR_MS + m * 60_000 + s * 1000;

group('traffic-drop detector: edge cases', () => {
  it('declares an 80% drop after 20 s and says how big and since when, then its recovery', () => {
    const pts = edit(smooth(8, 60), at(7, 14, 0, 10), at(7, 14, 30, 10), (p) => p.rate * 0.18);
    const ev = run(pts);
    expect(ev.map((e) => e.kind)).toEqual(['traffic-drop', 'traffic-recovered']);
    const [drop, rec] = ev as [TrafficEvent, TrafficEvent];
    expect(drop.since).toBe(at(7, 14));
    expect(drop.at).toBe(at(7, 14, 0, 20));
    expect(drop.dropShare).toBeCloseTo(0.82, 2);
    expect(describe(drop)).toMatch(
      /^shop: traffic ~82% below expected since 14:00:00 \(8\.\d\/s, expected 4\d\.\d\/s\)$/,
    );
    expect(rec.at).toBe(at(7, 14, 30, 20));
    expect(describe(rec)).toContain('back to normal at 14:30:20');
  });

  it('declares a fall to ~0 after two points, even when they are 5 s apart (before the 20 s)', () => {
    const pts = edit(smooth(8, 60, 5000), at(7, 11), at(7, 11, 10), () => 0);
    const ev = run(pts);
    expect(ev[0]?.kind).toBe('traffic-drop');
    expect(ev[0]?.at).toBe(at(7, 11, 0, 5));
    expect(ev[0]?.dropShare).toBe(1);
  });

  it('declares a fall to ~0 at the first empty point when the point before it was the partly full one of the fall', () => {
    // the fall happens 2 s into a 5 s window: that window is at 40%, the next is empty
    let pts = smooth(8, 60, 5000);
    pts = edit(pts, at(7, 11, 0, 5), at(7, 11, 0, 10), (p) => p.rate * 0.4);
    pts = edit(pts, at(7, 11, 0, 10), at(7, 11, 1), () => 0);
    const ev = run(pts);
    expect(ev[0]?.kind).toBe('traffic-drop');
    expect(ev[0]?.at).toBe(at(7, 11, 0, 10));
    expect(ev[0]?.since).toBe(at(7, 11, 0, 0));
  });

  it('does not fire on a restart of up to 5 s with 5 s points, whatever its phase against the windows', () => {
    for (let phase = 0; phase < 5; phase++) {
      // a 5 s outage starting `phase` s into a window: two partly full points (or one empty one at phase 0)
      let pts = smooth(8, 60, 5000);
      const from = at(7, 14, 0, 5);
      pts = edit(pts, from, from + 5000, (p) => p.rate * (phase / 5));
      pts = edit(pts, from + 5000, from + 10_000, (p) => p.rate * ((5 - phase) / 5));
      if (phase === 0) pts = edit(pts, from + 5000, from + 10_000, (p) => p.rate);
      expect(run(pts), `phase ${phase} s`).toEqual([]);
    }
  });

  it('does not fire at night on low traffic, even when it stops altogether', () => {
    // Peak 15 req/s: from 03:00 to 05:00 it expects under 1 req/s (the floor).
    const pts = edit(smooth(8, 15), at(7, 3), at(7, 5), () => 0);
    expect(run(pts)).toEqual([]);
    // The same outage in the afternoon is seen.
    expect(run(edit(smooth(8, 15), at(7, 15), at(7, 15, 30), () => 0))[0]?.kind).toBe('traffic-drop');
  });

  it('does not fire on a few missing points, nor after a long gap', () => {
    let pts = edit(smooth(8, 60), at(7, 12), at(7, 12, 1)); // a minute of nothing
    pts = edit(pts, at(7, 16), at(7, 16, 30)); // half an hour of nothing (the agent was away)
    const drop = new Set(pts.filter((_, i) => i % 97 === 0).map((p) => p.t)); // ~1% missing at random
    pts = pts.filter((p) => !drop.has(p.t));
    expect(run(pts)).toEqual([]);
  });

  it('does not fire after a deploy restart (one point at ~0, then a point at 60%)', () => {
    let pts = smooth(8, 60);
    for (const h of [9, 11, 13, 15, 17]) {
      pts = edit(pts, at(7, h, 0), at(7, h, 0, 10), () => 0);
      pts = edit(pts, at(7, h, 0, 10), at(7, h, 0, 20), (p) => p.rate * 0.6);
    }
    expect(run(pts)).toEqual([]);
    // With 5 s points a restart of one point is 5 s: still nothing.
    let fine = smooth(8, 60, 5000);
    fine = edit(fine, at(7, 9, 0), at(7, 9, 0, 5), () => 0);
    expect(run(fine)).toEqual([]);
  });

  it('does not fire when a day is lower from the morning on (a holiday), nor when a spike ends', () => {
    let pts = edit(smooth(9, 60), at(7, 0), at(8, 0), (p) => {
      const hour = ((p.t - DEFAULT_START) % DAY_MS) / HOUR_MS;
      return p.rate * (1 - 0.55 * Math.min(1, dailyShape(hour) / 0.45));
    });
    pts = edit(pts, at(8, 10), at(8, 12), (p) => p.rate * 3);
    expect(run(pts)).toEqual([]);
  });

  it('uses the weekly baseline once there are three weeks, the daily one before, the last half hour at first', () => {
    const d = new TrafficDropDetector('shop');
    const pts = smooth(22, 60);
    const bases = new Map<number, string>();
    for (const p of pts) {
      d.observe(p);
      if (p.t % DAY_MS === 12 * HOUR_MS)
        bases.set(Math.floor((p.t - DEFAULT_START) / DAY_MS), d.expectation(p.t).basis);
    }
    expect(bases.get(0)).toBe('recent');
    expect(bases.get(3)).toBe('daily');
    expect(bases.get(21)).toBe('weekly');
    expect(d.expectation(at(21, 12)).rate).toBeCloseTo(60 * dailyShape(12), 0);
  });

  it('serialises to JSON and resumes exactly where it was (in the middle of a drop too)', () => {
    const g = generateTraffic({ seed: 7, days: 15 });
    const whole = run(g.points);
    expect(whole.length).toBeGreaterThan(0);
    // Cut inside the first injected drop, after it was declared.
    const cut = g.points.findIndex((p) => p.t > g.drops[0]!.at + 60_000);
    const first = new TrafficDropDetector('shop');
    const events: TrafficEvent[] = [];
    for (const p of g.points.slice(0, cut)) events.push(...first.observe(p));
    expect(first.activeDrop).not.toBeNull();
    const json = JSON.stringify(first.toJSON());
    expect(json.length).toBeLessThan(400_000); // bounded: slot means for four weeks, not points
    const resumed = TrafficDropDetector.fromJSON(JSON.parse(json));
    for (const p of g.points.slice(cut)) events.push(...resumed.observe(p));
    expect(events).toEqual(whole);
  });

  it('keeps its state bounded however long it runs', () => {
    const d = new TrafficDropDetector('shop', { weeks: 1, minWeeks: 1 });
    for (const p of smooth(20, 30, 10_000)) d.observe(p);
    const s = d.toJSON();
    expect(s.ringSlot.length).toBe(2017);
    expect(s.ratios.length).toBeLessThanOrEqual(6);
  });

  it('ignores points out of order and rates that are not numbers >= 0', () => {
    const d = new TrafficDropDetector('shop');
    expect(d.observe({ t: 2000, rate: 5 })).toEqual([]);
    expect(d.observe({ t: 1000, rate: 0 })).toEqual([]);
    expect(d.observe({ t: 3000, rate: Number.NaN })).toEqual([]);
    expect(d.observe({ t: 3000, rate: -1 })).toEqual([]);
    expect(d.toJSON().lastT).toBe(2000);
  });

  it('rejects a bad config with the field, the value and what is valid', () => {
    expect(() => trafficDropConfig({ share: 1.5 })).toThrow(/share = 1\.5 is invalid: a share between 0 and 1/);
    expect(() => trafficDropConfig({ slotMs: 7000 })).toThrow(/slotMs = 7000 is invalid/);
    expect(() => trafficDropConfig({ minWeeks: 5 })).toThrow(
      /minWeeks = 5 is invalid: an integer from 1 to weeks \(4\)/,
    );
  });

  it('the Poisson bound is exact at zero and falls with the evidence', () => {
    expect(poissonLowTail(0, 10)).toBeCloseTo(Math.exp(-10), 12);
    expect(poissonLowTail(10, 10)).toBe(1);
    expect(poissonLowTail(5, 10)).toBeGreaterThan(poissonLowTail(50, 100));
  });

  it('the generator is deterministic per seed', () => {
    const a = generateTraffic({ seed: 5, days: 2 });
    const b = generateTraffic({ seed: 5, days: 2 });
    const c = generateTraffic({ seed: 6, days: 2 });
    expect(a.points).toEqual(b.points);
    expect(a.points).not.toEqual(c.points);
    // Pinned: a change to the generator changes the evaluation, and should say so here.
    expect(a.points.length).toBe(17178);
    expect(a.points.slice(0, 100).reduce((x, p) => x + p.rate, 0)).toBeCloseTo(1214.8, 6);
  });
});
