/**
 * Traffic-drop detection (issue 14, §3): "the shop still answers probes, but nobody reaches it any more".
 *
 * Pure: fed points `{t, rate}` (epoch ms, requests/s) of one series, in time order, every 5-10 s, some missing; it
 * reads no clock (time comes with the points) and does no I/O. Its whole state is plain JSON (`toJSON`/`fromJSON`), so
 * the server persists it and resumes after a restart.
 *
 * How it decides (docs/traffic-drop.md has the long version):
 *
 * - **Expected rate.** Points are summed into fixed slots (default 5 min). The expected rate of a slot is the median
 *   (with its MAD as the spread) of the same slot in the past: the same slot of the week over the last weeks when at
 *   least `minWeeks` of them are known, else the same time of day over the last days when at least `minDays` are,
 *   else the last `recentSlots` slots (the last half hour: no seasonality yet, right after install). Slots that overlap a
 *   drop are not remembered, so an outage does not lower next week's expectation.
 * - **Level.** A whole day can be lower than usual (a holiday, a Sunday before the weekly history exists). The median
 *   ratio observed/expected of the last `levelSlots` completed slots scales the expectation down (never up: after a
 *   marketing spike ends, traffic going back to normal is not a drop). A drop lowers the level only if it goes
 *   undetected for hours (then it is arguably the new normal); slots under a drop or its suspicion are left out.
 * - **Drop.** A point is *low* when its rate is below `share` × expected and below expected − `kMad` × σ (σ = 1.4826 ×
 *   MAD; never lower than share / 2 × expected, so a noisy past cannot hide a total outage). A drop is declared when low points cover `forMs` in a row (default 20 s) — or two points in a row are ~0, the first perhaps only low (the point the fall happened in)
 *   (a fall to nothing) — and, over the run, the observed request count is improbably low for a Poisson process at
 *   the expected rate (a Chernoff bound, P ≤ `alpha`). The Poisson test is what keeps quiet hours quiet: at 1 req/s
 *   a 10 s point of 4 requests is nothing unusual, at 100 req/s a point of 400 is. Below `floor` req/s expected the
 *   detector does not judge at all (night).
 * - **Gaps.** A missing point is no evidence either way: it neither breaks nor extends a run. A gap longer than
 *   `maxGapMs` ends a run (we cannot say it stayed low through it).
 * - **Recovery.** During a drop, points at or above `recoverShare` × expected covering `forMs` in a row end it (the
 *   drop's own expected rate when the baseline has run out under a long drop).
 *
 * Events are small and stable (`TrafficEvent`); `describe` words them ("~82% below expected since 14:00:05").
 */

/** One observation: requests per second over the interval that ends at `t` (epoch ms). */
export interface TrafficPoint {
  readonly t: number;
  readonly rate: number;
}

/** The stable event shape (docs/traffic-drop.md). Rates are requests/s; times epoch ms. */
export interface TrafficEvent {
  readonly kind: 'traffic-drop' | 'traffic-recovered';
  readonly series: string;
  /** When the detector decided (the time of the point that decided it). */
  readonly at: number;
  /** Mean observed rate over the low run (drop) or the recovering run (recovered). */
  readonly observed: number;
  /** Mean expected rate over the same run. */
  readonly expected: number;
  /** 1 − observed/expected over the run that declared the drop: 0.82 reads "~82% below expected". */
  readonly dropShare: number;
  /** When the drop began: the start of the first low point's interval (the same value in both events). */
  readonly since: number;
}

export interface TrafficDropConfig {
  /** Low means below this share of expected (default 0.5). */
  readonly share: number;
  /** How long low points must last (default 20 000 ms). */
  readonly forMs: number;
  /** Below this expected rate (req/s) nothing is judged (default 1). */
  readonly floor: number;
  /** A point counts as ~0 below this share of expected (default 0.05); two in a row declare a drop. */
  readonly zeroShare: number;
  /** Recovery: at or above this share of expected for `forMs` (default (1 + share) / 2). */
  readonly recoverShare: number;
  /** Largest false-alarm probability the Poisson test accepts for one run (default 1e-6). */
  readonly alpha: number;
  /** Low also means below expected − kMad × 1.4826 × MAD (default 3), but never below share / 2 × expected. */
  readonly kMad: number;
  /** Slot length for the seasonal history (default 300 000 ms; must divide a day). */
  readonly slotMs: number;
  /** Weeks of history kept and used (default 4); the weekly baseline needs `minWeeks` of them (default 3). */
  readonly weeks: number;
  readonly minWeeks: number;
  /** Days for the daily baseline (default 7), at least `minDays` known (default 3). */
  readonly days: number;
  readonly minDays: number;
  /**
   * Slots for the recent baseline before there is a day of history (default 6 = 30 min), at least `minRecentSlots`
   * known (default 3). Short on purpose: a longer window lags the daily curve (at night it expects too much).
   */
  readonly recentSlots: number;
  readonly minRecentSlots: number;
  /**
   * Slots for the level (default 6 = 30 min): short, so a holiday morning that ramps up less than usual is followed;
   * a drop is abrupt (one point), so it is judged before the level can follow it.
   */
  readonly levelSlots: number;
  /** The level never goes below this (default 0.2). */
  readonly minLevel: number;
  /** A point's interval is counted as at most this long (default 10 000 ms; points come every 5-10 s). */
  readonly maxStepMs: number;
  /** A gap longer than this ends a low or recovering run (default 60 000 ms). */
  readonly maxGapMs: number;
  /** Minutes east of UTC for the time-of-day slots (default 0: UTC). Fixed offset: no daylight-saving shifts. */
  readonly utcOffsetMin: number;
}

export const DEFAULT_TRAFFIC_DROP_CONFIG: TrafficDropConfig = {
  share: 0.5,
  forMs: 20_000,
  floor: 1,
  zeroShare: 0.05,
  recoverShare: 0.75,
  alpha: 1e-6,
  kMad: 3,
  slotMs: 300_000,
  weeks: 4,
  minWeeks: 3,
  days: 7,
  minDays: 3,
  recentSlots: 6,
  minRecentSlots: 3,
  levelSlots: 6,
  minLevel: 0.2,
  maxStepMs: 10_000,
  maxGapMs: 60_000,
  utcOffsetMin: 0,
};

/** Defaults filled in, checked: a bad value throws with the field, the value and what would be valid. */
export function trafficDropConfig(partial: Partial<TrafficDropConfig> = {}): TrafficDropConfig {
  const share = partial.share ?? DEFAULT_TRAFFIC_DROP_CONFIG.share;
  const c: TrafficDropConfig = {
    ...DEFAULT_TRAFFIC_DROP_CONFIG,
    recoverShare: (1 + share) / 2,
    ...partial,
  };
  const check = (field: keyof TrafficDropConfig, ok: boolean, valid: string): void => {
    if (!ok) throw new Error(`traffic-drop config: ${field} = ${String(c[field])} is invalid: ${valid}`);
  };
  const pos = (x: number) => Number.isFinite(x) && x > 0;
  const int = (x: number, min: number) => Number.isInteger(x) && x >= min;
  check('share', pos(c.share) && c.share < 1, 'a share between 0 and 1 (0.5 = half of expected)');
  check('recoverShare', c.recoverShare >= c.share && c.recoverShare <= 1, `a share from share (${c.share}) to 1`);
  check('zeroShare', c.zeroShare >= 0 && c.zeroShare < c.share, `a share from 0 to below share (${c.share})`);
  check('forMs', pos(c.forMs), 'a duration in milliseconds > 0');
  check('floor', Number.isFinite(c.floor) && c.floor >= 0, 'a rate in requests/s >= 0');
  check('alpha', pos(c.alpha) && c.alpha < 1, 'a probability between 0 and 1 (e.g. 1e-6)');
  check('kMad', Number.isFinite(c.kMad) && c.kMad >= 0, 'a number >= 0');
  check('slotMs', int(c.slotMs, 10_000) && 86_400_000 % c.slotMs === 0, 'milliseconds >= 10 000 that divide a day');
  check('weeks', int(c.weeks, 1), 'an integer >= 1');
  check('minWeeks', int(c.minWeeks, 1) && c.minWeeks <= c.weeks, `an integer from 1 to weeks (${c.weeks})`);
  check('days', int(c.days, 1), 'an integer >= 1');
  check('minDays', int(c.minDays, 1) && c.minDays <= c.days, `an integer from 1 to days (${c.days})`);
  check('recentSlots', int(c.recentSlots, 1), 'an integer >= 1');
  check('minRecentSlots', int(c.minRecentSlots, 1) && c.minRecentSlots <= c.recentSlots, 'from 1 to recentSlots');
  check('levelSlots', int(c.levelSlots, 1), 'an integer >= 1');
  check('minLevel', pos(c.minLevel) && c.minLevel <= 1, 'a share between 0 and 1');
  check('maxStepMs', pos(c.maxStepMs), 'a duration in milliseconds > 0');
  check('maxGapMs', c.maxGapMs >= c.maxStepMs, `a duration >= maxStepMs (${c.maxStepMs})`);
  check('utcOffsetMin', Number.isInteger(c.utcOffsetMin) && Math.abs(c.utcOffsetMin) <= 14 * 60, 'minutes in ±840');
  return c;
}

/** A run of low (or, during a drop, of recovering) points. */
interface Run {
  /** Start of the first point's interval. */
  since: number;
  /** Time covered by the run's points (ms). */
  coveredMs: number;
  /** Observed and expected request counts over the run. */
  observed: number;
  expected: number;
  /** Trailing points at ~0. */
  zeros: number;
}

/** Everything the detector knows, as plain JSON. Version 1. */
export interface TrafficDropState {
  readonly v: 1;
  readonly series: string;
  /** Time of the last point, or null before the first. */
  lastT: number | null;
  /** The slot being filled: its number (floor((t + offset) / slotMs)), request count and covered ms. */
  slot: number | null;
  slotCount: number;
  slotCoveredMs: number;
  /** The slot saw a drop: it is not remembered. */
  slotTainted: boolean;
  /** Ring of completed slot means (req/s) indexed by slot number modulo its length; `ringSlot` says which slot. */
  ringSlot: number[];
  ringMean: number[];
  /** Ratios observed/expected of the last completed slots (for the level), and their slot numbers. */
  ratios: number[];
  ratioSlots: number[];
  /** The first slot ever seen (warm-up). */
  firstSlot: number | null;
  low: Run | null;
  /** The active drop, or null. */
  drop: { since: number; observed: number; expected: number; dropShare: number; at: number } | null;
  recovering: Run | null;
}

/** What the detector expects now and from what. */
export interface Expectation {
  /** Expected rate (req/s) after the level. */
  readonly rate: number;
  /** Robust spread (1.4826 × MAD, after the level). */
  readonly sigma: number;
  readonly basis: 'weekly' | 'daily' | 'recent' | 'none';
  /** How many past slots the median is of. */
  readonly samples: number;
  readonly level: number;
}

const MAD_SCALE = 1.4826;
const DAY_MS = 86_400_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return Number.NaN;
  const m = n >> 1;
  return n % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Upper bound of P(X ≤ observed) for X ~ Poisson(expected) (Chernoff): exp(−(E − O + O ln(O/E))) for O < E; exact
 * (exp(−E)) at O = 0. Counts, not rates.
 */
export function poissonLowTail(observed: number, expected: number): number {
  if (expected <= 0 || observed >= expected) return 1;
  if (observed <= 0) return Math.exp(-expected);
  return Math.exp(-(expected - observed + observed * Math.log(observed / expected)));
}

/**
 * The band a point is judged against (what the dashboard draws around the expected rate): below `lower` a point is
 * low, the bar `observe` uses (share × expected, lowered to expected − kMad × σ where the past disagrees, never below
 * share / 2 × expected); `upper` is as far above expected as the spread reaches (expected + kMad × σ). Below the
 * floor nothing is judged: `lower` is 0 there.
 */
export function expectedBand(e: Expectation, c: TrafficDropConfig): { readonly lower: number; readonly upper: number } {
  const lower =
    e.basis === 'none' || e.rate < c.floor
      ? 0
      : Math.min(c.share * e.rate, Math.max(e.rate - c.kMad * e.sigma, (c.share / 2) * e.rate));
  return { lower, upper: e.rate + c.kMad * e.sigma };
}

export class TrafficDropDetector {
  readonly config: TrafficDropConfig;
  private readonly s: TrafficDropState;
  private readonly slotsPerDay: number;
  private readonly slotsPerWeek: number;
  private readonly offsetMs: number;
  /** The expectation of the current slot, cached until the slot or the level changes. */
  private cache: { slot: number; e: Expectation } | null = null;

  constructor(series: string, config: Partial<TrafficDropConfig> = {}, state?: TrafficDropState) {
    this.config = trafficDropConfig(config);
    this.slotsPerDay = DAY_MS / this.config.slotMs;
    this.slotsPerWeek = 7 * this.slotsPerDay;
    this.offsetMs = this.config.utcOffsetMin * 60_000;
    const ringLen = this.config.weeks * this.slotsPerWeek + 1;
    if (state !== undefined) {
      if (state.v !== 1) throw new Error(`traffic-drop state of ${series}: version ${String(state.v)}, expected 1`);
      if (state.ringSlot.length !== ringLen || state.ringMean.length !== ringLen) {
        // Another slot length or number of weeks: the history does not fit; start it afresh, keep the rest.
        state = {
          ...state,
          ringSlot: new Array(ringLen).fill(-1),
          ringMean: new Array(ringLen).fill(0),
          ratios: [],
          ratioSlots: [],
        };
      }
      this.s = structuredClone(state);
    } else {
      this.s = {
        v: 1,
        series,
        lastT: null,
        slot: null,
        slotCount: 0,
        slotCoveredMs: 0,
        slotTainted: false,
        ringSlot: new Array(ringLen).fill(-1),
        ringMean: new Array(ringLen).fill(0),
        ratios: [],
        ratioSlots: [],
        firstSlot: null,
        low: null,
        drop: null,
        recovering: null,
      };
    }
  }

  /** Resume from a persisted state (the config may differ from the one that wrote it). */
  static fromJSON(state: TrafficDropState, config: Partial<TrafficDropConfig> = {}): TrafficDropDetector {
    return new TrafficDropDetector(state.series, config, state);
  }

  /** A deep copy of the state: JSON.stringify it to persist. */
  toJSON(): TrafficDropState {
    return structuredClone(this.s);
  }

  get series(): string {
    return this.s.series;
  }

  /** The active drop, if any. */
  get activeDrop(): { since: number; dropShare: number; expected: number } | null {
    return this.s.drop === null
      ? null
      : { since: this.s.drop.since, dropShare: this.s.drop.dropShare, expected: this.s.drop.expected };
  }

  private slotOf(t: number): number {
    return Math.floor((t + this.offsetMs) / this.config.slotMs);
  }

  private remembered(slot: number): number | undefined {
    if (slot < 0) return undefined;
    const i = slot % this.s.ringSlot.length;
    return this.s.ringSlot[i] === slot ? this.s.ringMean[i] : undefined;
  }

  /** Median and MAD of the slot's seasonal history, before the level. */
  private seasonal(slot: number): { median: number; sigma: number; basis: Expectation['basis']; samples: number } {
    const c = this.config;
    const collect = (step: number, count: number): number[] => {
      const xs: number[] = [];
      for (let k = 1; k <= count; k++) {
        const m = this.remembered(slot - k * step);
        if (m !== undefined) xs.push(m);
      }
      return xs;
    };
    const pick = (): [number[], Expectation['basis']] => {
      const age = this.s.firstSlot === null ? 0 : slot - this.s.firstSlot;
      const weekly = collect(this.slotsPerWeek, c.weeks);
      if (weekly.length >= c.minWeeks) return [weekly, 'weekly'];
      // Old enough for a weekly baseline but this slot was lost in some weeks: what is left still knows the weekday
      // (and the level was measured against it; mixing in other weekdays would expect a Sunday night to be a Monday's).
      if (weekly.length > 0 && age >= c.minWeeks * this.slotsPerWeek) return [weekly, 'weekly'];
      const daily = collect(this.slotsPerDay, c.days);
      if (daily.length >= c.minDays) return [daily, 'daily'];
      // Old enough for a daily baseline, but this slot was lost on most days (outages, agent gaps): what is left of
      // it still knows the time of day, which the last minutes do not (at 03:30 the last hour is twice 03:30's rate).
      if (daily.length > 0 && age >= c.minDays * this.slotsPerDay) return [daily, 'daily'];
      const recent = collect(1, c.recentSlots);
      if (recent.length >= c.minRecentSlots) return [recent, 'recent'];
      return [[], 'none'];
    };
    const [xs, basis] = pick();
    if (xs.length === 0) return { median: 0, sigma: 0, basis, samples: 0 };
    const med = median(xs);
    const mad = median(xs.map((x) => Math.abs(x - med)));
    return { median: med, sigma: MAD_SCALE * mad, basis, samples: xs.length };
  }

  private level(): number {
    const r = this.s.ratios;
    if (r.length < Math.min(3, this.config.levelSlots)) return 1;
    return Math.min(1, Math.max(this.config.minLevel, median(r)));
  }

  /** What the detector expects at time t (from the history it has now). */
  expectation(t: number): Expectation {
    const slot = this.slotOf(t);
    if (this.cache !== null && this.cache.slot === slot) return this.cache.e;
    const s = this.seasonal(slot);
    // The recent-hours baseline already is the level: do not apply it twice.
    const level = s.basis === 'weekly' || s.basis === 'daily' ? this.level() : 1;
    const e: Expectation = {
      rate: s.median * level,
      sigma: s.sigma * level,
      basis: s.basis,
      samples: s.samples,
      level,
    };
    this.cache = { slot, e };
    return e;
  }

  /** Closes the slot being filled (remembers its mean unless tainted or mostly missing) and moves to `slot`. */
  private advanceTo(slot: number): void {
    const s = this.s;
    const c = this.config;
    if (s.slot !== null && slot > s.slot) {
      const enough = s.slotCoveredMs >= c.slotMs / 2;
      if (enough && !s.slotTainted) {
        const mean = s.slotCount / (s.slotCoveredMs / 1000);
        const seasonal = this.seasonal(s.slot);
        if (seasonal.basis === 'weekly' || seasonal.basis === 'daily') {
          // Only slots with enough expected requests say something about the level (a ratio of 2 over 3 is noise).
          const expectedCount = (seasonal.median * c.slotMs) / 1000;
          if (expectedCount >= 100) {
            s.ratios.push(mean / seasonal.median);
            s.ratioSlots.push(s.slot);
            if (s.ratios.length > c.levelSlots) {
              s.ratios.shift();
              s.ratioSlots.shift();
            }
          }
        }
        const i = s.slot % s.ringSlot.length;
        s.ringSlot[i] = s.slot;
        s.ringMean[i] = mean;
      }
      this.cache = null;
    }
    if (s.slot === null || slot > s.slot) {
      if (s.firstSlot === null) s.firstSlot = slot;
      s.slot = slot;
      s.slotCount = 0;
      s.slotCoveredMs = 0;
      s.slotTainted = s.drop !== null;
    }
  }

  /** A drop was declared that began at `since`: the slots it touched are not history, nor evidence of the level. */
  private forgetSince(since: number): void {
    const s = this.s;
    const from = this.slotOf(since);
    s.slotTainted = true;
    for (let slot = from; s.slot !== null && slot < s.slot; slot++) {
      const i = slot % s.ringSlot.length;
      if (s.ringSlot[i] === slot) s.ringSlot[i] = -1;
    }
    while (s.ratioSlots.length > 0 && s.ratioSlots[s.ratioSlots.length - 1]! >= from) {
      s.ratioSlots.pop();
      s.ratios.pop();
    }
    this.cache = null;
  }

  /**
   * Feeds one point; returns the events it caused (none, a drop, or a recovery). Points must come in time order; a
   * point not after the last one is ignored (a retransmission), as is a rate that is not a finite number >= 0.
   */
  observe(p: TrafficPoint): TrafficEvent[] {
    const s = this.s;
    const c = this.config;
    if (!Number.isFinite(p.t) || !Number.isFinite(p.rate) || p.rate < 0) return [];
    if (s.lastT !== null && p.t <= s.lastT) return [];
    const gap = s.lastT === null ? c.maxStepMs : p.t - s.lastT;
    const stepMs = Math.min(gap, c.maxStepMs);
    s.lastT = p.t;
    if (gap > c.maxGapMs) {
      s.low = null;
      s.recovering = null;
    }
    this.advanceTo(this.slotOf(p.t));
    const count = (p.rate * stepMs) / 1000;
    s.slotCount += count;
    s.slotCoveredMs += stepMs;

    const e = this.expectation(p.t);
    const expectedCount = (e.rate * stepMs) / 1000;
    const events: TrafficEvent[] = [];

    if (s.drop !== null) {
      s.slotTainted = true;
      // A long drop outlasts the recent baseline (slots under a drop are not remembered): then the rate the drop was
      // declared against is what recovery is measured by, or a drop would never end before a day of history.
      const ref = e.basis !== 'none' ? e.rate : s.drop.expected;
      const up = p.rate >= c.recoverShare * ref;
      if (!up) {
        s.recovering = null;
        return events;
      }
      const r = extend(s.recovering, p.t, stepMs, count, (ref * stepMs) / 1000, false);
      s.recovering = r;
      if (r.coveredMs >= c.forMs) {
        const observed = r.observed / (r.coveredMs / 1000);
        const expected = r.expected / (r.coveredMs / 1000);
        events.push({
          kind: 'traffic-recovered',
          series: s.series,
          at: p.t,
          observed,
          expected,
          dropShare: s.drop.dropShare,
          since: s.drop.since,
        });
        s.drop = null;
        s.recovering = null;
        s.low = null;
      }
      return events;
    }

    const judged = e.basis !== 'none' && e.rate >= c.floor;
    // The spread makes the detector more cautious where the past disagrees, but never blind: three weeks of which one
    // was a holiday have a huge MAD, and a total outage must still be seen. So it lowers the bar to half the share.
    const bar = expectedBand(e, c).lower;
    const low = judged && p.rate < bar;
    if (!low) {
      s.low = null;
      return events;
    }
    const zero = p.rate <= c.zeroShare * e.rate;
    const r = extend(s.low, p.t, stepMs, count, expectedCount, zero);
    s.low = r;
    const significant = poissonLowTail(r.observed, r.expected) <= c.alpha;
    // A fall to ~0: two points in a row, the first of which may be the one the fall happened in (partly full, low).
    const fall = r.zeros >= 2 || (r.zeros >= 1 && r.coveredMs > stepMs);
    if (significant && (r.coveredMs >= c.forMs || fall)) {
      const observed = r.observed / (r.coveredMs / 1000);
      const expected = r.expected / (r.coveredMs / 1000);
      const dropShare = expected > 0 ? 1 - observed / expected : 1;
      s.drop = { since: r.since, observed, expected, dropShare, at: p.t };
      s.low = null;
      this.forgetSince(r.since);
      events.push({ kind: 'traffic-drop', series: s.series, at: p.t, observed, expected, dropShare, since: r.since });
    }
    return events;
  }
}

function extend(r: Run | null, t: number, stepMs: number, count: number, expected: number, zero: boolean): Run {
  if (r === null) return { since: t - stepMs, coveredMs: stepMs, observed: count, expected, zeros: zero ? 1 : 0 };
  return {
    since: r.since,
    coveredMs: r.coveredMs + stepMs,
    observed: r.observed + count,
    expected: r.expected + expected,
    zeros: zero ? r.zeros + 1 : 0,
  };
}

/** HH:MM:SS of an epoch-ms time at a fixed offset (minutes east of UTC). */
function clock(t: number, utcOffsetMin: number): string {
  return new Date(t + utcOffsetMin * 60_000).toISOString().slice(11, 19);
}

/** One line for a person: "shop: traffic ~82% below expected since 14:00:05 (9.1/s, expected 50.3/s)". */
export function describe(ev: TrafficEvent, utcOffsetMin = 0): string {
  const pct = Math.round(ev.dropShare * 100);
  const rates = `${ev.observed.toFixed(1)}/s, expected ${ev.expected.toFixed(1)}/s`;
  if (ev.kind === 'traffic-drop') {
    return `${ev.series}: traffic ~${pct}% below expected since ${clock(ev.since, utcOffsetMin)} (${rates})`;
  }
  const mins = Math.round((ev.at - ev.since) / 60_000);
  return (
    `${ev.series}: traffic back to normal at ${clock(ev.at, utcOffsetMin)} (${rates}); ` +
    `it was ~${pct}% below expected from ${clock(ev.since, utcOffsetMin)}, about ${mins} min`
  );
}
