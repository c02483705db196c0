/**
 * Realistic incoming-traffic series for evaluating the traffic-drop detector (issue 14, §3): deterministic (seeded),
 * pure, no I/O.
 *
 * Four weeks (by default) of one point every 10 s, each the request rate (req/s) of a shop over those 10 s:
 *
 * - daily seasonality: quiet at night (~4% of the peak at 04:00), a morning ramp, a lunch bump, an evening peak;
 * - weekly seasonality: Saturday ~75%, Sunday ~65% of a weekday;
 * - day-to-day variation (each day's level ±~6%, log-normal);
 * - Poisson noise: each point is a Poisson count over 10 s, divided by 10;
 * - a marketing spike (×3 for two hours, ramping in over 10 minutes and out over 30);
 * - a holiday (a weekday at ~45% from the morning on; its night is a normal night);
 * - deploy restarts (a few a day: one point of ~0-40% of normal, the next one ~80%);
 * - missing points: ~0.5% of points at random and a few gaps of 1-5 minutes (the agent restarting);
 * - injected drops: from `at` for `durationMs`, the rate is multiplied by 1 − `share` (1 = nothing arrives).
 *
 * The truth (what was injected, when) comes with the points, so a test can score a detector against it.
 */

import { rng } from './generate.js';

export interface InjectedDrop {
  /** Epoch ms. */
  readonly at: number;
  readonly durationMs: number;
  /** Share of traffic lost: 1 (all), 0.8 (the founding outage), 0.3. */
  readonly share: number;
}

export interface TrafficGenOptions {
  readonly seed: number;
  /** Epoch ms of the first point's day, 00:00 UTC (default Monday 2026-11-02). */
  readonly start?: number;
  readonly days?: number;
  /** Weekday peak rate, req/s (default 60). */
  readonly peak?: number;
  readonly stepMs?: number;
  /** Default: `defaultDrops(start)`. */
  readonly drops?: readonly InjectedDrop[];
  /** Day index of the marketing spike (default 10) and of the holiday (default 17); -1 for none. */
  readonly spikeDay?: number;
  readonly holidayDay?: number;
  /** Deploy restarts per day (default 3). */
  readonly deploysPerDay?: number;
  /** Share of points missing at random (default 0.005). */
  readonly missingShare?: number;
}

export interface GeneratedTraffic {
  readonly points: { t: number; rate: number }[];
  readonly drops: readonly InjectedDrop[];
  readonly spike: { readonly from: number; readonly to: number } | null;
  readonly holiday: { readonly from: number; readonly to: number } | null;
  /** Times of the deploy restarts (the dipped point). */
  readonly deploys: readonly number[];
  /** Gaps of the agent (ms ranges with no points). */
  readonly gaps: readonly { readonly from: number; readonly to: number }[];
}

export const DAY_MS = 86_400_000;
export const HOUR_MS = 3_600_000;
export const DEFAULT_START = Date.UTC(2026, 10, 2); // a Monday

/**
 * The default injected drops: the founding outage (80%) at 14:00:05 on days 9 and 23, total drops (100%) on days 8,
 * 16 and 24 — one of them in the evening, one during the marketing spike's day —, and 30% drops on days 12 and 25.
 */
export function defaultDrops(start = DEFAULT_START): InjectedDrop[] {
  const at = (day: number, h: number, m: number, s = 0) => start + day * DAY_MS + h * HOUR_MS + m * 60_000 + s * 1000;
  return [
    { at: at(8, 11, 20), durationMs: 15 * 60_000, share: 1 },
    { at: at(9, 14, 0, 5), durationMs: 45 * 60_000, share: 0.8 },
    { at: at(10, 16, 0), durationMs: 10 * 60_000, share: 1 },
    { at: at(12, 15, 30), durationMs: 60 * 60_000, share: 0.3 },
    { at: at(16, 20, 45, 30), durationMs: 8 * 60_000, share: 1 },
    { at: at(23, 14, 0, 5), durationMs: 30 * 60_000, share: 0.8 },
    { at: at(24, 9, 10), durationMs: 5 * 60_000, share: 1 },
    { at: at(25, 17, 0), durationMs: 60 * 60_000, share: 0.3 },
    { at: at(26, 8, 0, 40), durationMs: 20 * 60_000, share: 0.8 },
  ];
}

function normal(rand: () => number): number {
  const u = 1 - rand();
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** A Poisson draw: exact (Knuth) for small means, normal approximation (rounded, >= 0) above 50. */
export function poisson(rand: () => number, mean: number): number {
  if (mean <= 0) return 0;
  if (mean > 50) return Math.max(0, Math.round(mean + Math.sqrt(mean) * normal(rand)));
  const limit = Math.exp(-mean);
  let k = 0;
  let p = rand();
  while (p > limit) {
    k++;
    p *= rand();
  }
  return k;
}

/** Share of the weekday peak at an hour of the day (0-24, fractional): a smooth curve through hand-set anchors. */
export function dailyShape(hour: number): number {
  // [hour, share]: night trough at 4, morning ramp, lunch bump, afternoon, evening peak, late fall.
  const anchors: [number, number][] = [
    [0, 0.2],
    [2, 0.08],
    [4, 0.04],
    [6, 0.08],
    [8, 0.45],
    [10, 0.75],
    [12, 0.9],
    [13, 0.85],
    [15, 0.8],
    [18, 0.9],
    [20.5, 1],
    [22, 0.6],
    [24, 0.2],
  ];
  for (let i = 1; i < anchors.length; i++) {
    const [h1, s1] = anchors[i]!;
    const [h0, s0] = anchors[i - 1]!;
    if (hour <= h1) {
      const x = (hour - h0) / (h1 - h0);
      const smooth = x * x * (3 - 2 * x); // smoothstep: no corners at the anchors
      return s0 + (s1 - s0) * smooth;
    }
  }
  return anchors[anchors.length - 1]![1];
}

const WEEKDAY_FACTOR = [0.65, 1, 1, 1, 1, 1.02, 0.75]; // Sunday .. Saturday (getUTCDay)

export function generateTraffic(o: TrafficGenOptions): GeneratedTraffic {
  const start = o.start ?? DEFAULT_START;
  const days = o.days ?? 28;
  const peak = o.peak ?? 60;
  const stepMs = o.stepMs ?? 10_000;
  const drops = o.drops ?? defaultDrops(start);
  const spikeDay = o.spikeDay ?? 10;
  const holidayDay = o.holidayDay ?? 17;
  const deploysPerDay = o.deploysPerDay ?? 3;
  const missingShare = o.missingShare ?? 0.005;
  const rand = rng(o.seed).next; // mulberry32: the same series from a seed everywhere

  const dayLevel = Array.from({ length: days }, () => Math.exp(0.06 * normal(rand)));
  const spike =
    spikeDay >= 0 && spikeDay < days
      ? { from: start + spikeDay * DAY_MS + 10 * HOUR_MS, to: start + spikeDay * DAY_MS + 12 * HOUR_MS }
      : null;
  const holiday =
    holidayDay >= 0 && holidayDay < days
      ? { from: start + holidayDay * DAY_MS, to: start + (holidayDay + 1) * DAY_MS }
      : null;
  // Deploys in working hours (09:00-18:00), at a point boundary.
  const deploys: number[] = [];
  for (let d = 0; d < days; d++) {
    for (let k = 0; k < deploysPerDay; k++) {
      const ms = 9 * HOUR_MS + Math.floor(rand() * 9 * HOUR_MS);
      deploys.push(start + d * DAY_MS + Math.floor(ms / stepMs) * stepMs);
    }
  }
  deploys.sort((a, b) => a - b);
  const deploySet = new Set(deploys);
  // Agent gaps: one every ~3 days, 1-5 minutes.
  const gaps: { from: number; to: number }[] = [];
  for (let d = 1; d < days; d += 3) {
    const from = start + d * DAY_MS + Math.floor(rand() * DAY_MS);
    gaps.push({ from, to: from + 60_000 + Math.floor(rand() * 4 * 60_000) });
  }

  const spikeFactor = (t: number): number => {
    if (spike === null || t < spike.from - 10 * 60_000 || t > spike.to + 30 * 60_000) return 1;
    if (t < spike.from) return 1 + (2 * (t - (spike.from - 10 * 60_000))) / (10 * 60_000);
    if (t <= spike.to) return 3;
    return 3 - (2 * (t - spike.to)) / (30 * 60_000);
  };

  const points: { t: number; rate: number }[] = [];
  const n = Math.floor((days * DAY_MS) / stepMs);
  let afterDeploy = false;
  for (let i = 1; i <= n; i++) {
    const t = start + i * stepMs;
    // The point covers (t - stepMs, t]: its expectation is taken at the interval's middle.
    const mid = t - stepMs / 2;
    const day = Math.floor((mid - start) / DAY_MS);
    const hour = ((mid - start) % DAY_MS) / HOUR_MS;
    let mean = peak * dailyShape(hour) * WEEKDAY_FACTOR[new Date(mid).getUTCDay()]! * dayLevel[day]!;
    mean *= spikeFactor(mid);
    // A holiday is a normal night, then a day at 45%: the difference grows as the morning would ramp up.
    if (holiday !== null && mid >= holiday.from && mid < holiday.to)
      mean *= 1 - 0.55 * Math.min(1, dailyShape(hour) / 0.45);
    for (const d of drops) {
      // The share of the interval under the drop, so a drop starting mid-interval shows as a partial dip.
      const overlap = Math.max(0, Math.min(t, d.at + d.durationMs) - Math.max(t - stepMs, d.at));
      if (overlap > 0) mean *= 1 - (d.share * overlap) / stepMs;
    }
    if (deploySet.has(t)) {
      mean *= 0.4 * rand();
      afterDeploy = true;
    } else if (afterDeploy) {
      mean *= 0.8;
      afterDeploy = false;
    }
    const rate = poisson(rand, (mean * stepMs) / 1000) / (stepMs / 1000);
    const missing = rand() < missingShare || gaps.some((g) => t >= g.from && t < g.to);
    if (!missing) points.push({ t, rate });
  }
  return { points, drops, spike, holiday, deploys, gaps };
}
