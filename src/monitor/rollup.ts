/**
 * Rollups of probe results (issue 14), pure: per monitor and bucket (a minute, an hour), the count, the failures,
 * the latency sum and maximum, and a histogram over fixed latency bounds from which p50 and p95 are read. Every
 * field adds up, so rollups from several vantage points or server replicas merge by addition (in SQL too).
 */
import type { ProbeResult } from './types.js';

/** Upper bounds of the latency buckets, in ms; one more bucket holds everything slower. */
export const LATENCY_BOUNDS_MS = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000] as const;
export const BUCKETS = LATENCY_BOUNDS_MS.length + 1;

/** Minute and hour rollups; 10 s points are kept only for traffic rates. */
export const RESOLUTIONS = [60, 3600] as const;
export type Resolution = (typeof RESOLUTIONS)[number];

export interface Rollup {
  count: number;
  failures: number;
  sumMs: number;
  maxMs: number;
  /** BUCKETS counts. */
  hist: number[];
}

export function emptyRollup(): Rollup {
  return { count: 0, failures: 0, sumMs: 0, maxMs: 0, hist: new Array<number>(BUCKETS).fill(0) };
}

export function bucketOf(ms: number): number {
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) if (ms <= (LATENCY_BOUNDS_MS[i] as number)) return i;
  return LATENCY_BOUNDS_MS.length;
}

export function addResult(r: Rollup, ok: boolean, ms: number): void {
  r.count++;
  if (!ok) r.failures++;
  r.sumMs += ms;
  if (ms > r.maxMs) r.maxMs = ms;
  const b = bucketOf(ms);
  r.hist[b] = (r.hist[b] ?? 0) + 1;
}

export function mergeInto(into: Rollup, from: Rollup): void {
  into.count += from.count;
  into.failures += from.failures;
  into.sumMs += from.sumMs;
  if (from.maxMs > into.maxMs) into.maxMs = from.maxMs;
  for (let i = 0; i < BUCKETS; i++) into.hist[i] = (into.hist[i] ?? 0) + (from.hist[i] ?? 0);
}

/**
 * The q-quantile (0..1) of the latencies, interpolated inside its bucket and never above the maximum seen; 0 for
 * an empty rollup.
 */
export function quantile(r: Rollup, q: number): number {
  if (r.count === 0) return 0;
  const rank = q * r.count;
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    const n = r.hist[i] ?? 0;
    if (n > 0 && seen + n >= rank) {
      const lo = i === 0 ? 0 : (LATENCY_BOUNDS_MS[i - 1] as number);
      const hi = i < LATENCY_BOUNDS_MS.length ? (LATENCY_BOUNDS_MS[i] as number) : r.maxMs;
      const v = lo + ((hi - lo) * (rank - seen)) / n;
      return Math.min(v, r.maxMs);
    }
    seen += n;
  }
  return r.maxMs;
}

export interface RollupRow {
  readonly monitor: string;
  readonly resolution: Resolution;
  /** The bucket's start, epoch seconds. */
  readonly bucket: number;
  readonly rollup: Rollup;
}

/**
 * What arrived since the last flush, per monitor and bucket of each resolution. `drain` hands the deltas over and
 * starts again from zero: the store adds them to what it has.
 */
export class RollupBuffer {
  private readonly pending = new Map<string, RollupRow>();

  add(r: Pick<ProbeResult, 'monitor' | 'at' | 'ok' | 'timings'>): void {
    const s = Math.floor(r.at / 1000);
    for (const resolution of RESOLUTIONS) {
      const bucket = s - (s % resolution);
      const key = `${resolution}\u0000${bucket}\u0000${r.monitor}`;
      let row = this.pending.get(key);
      if (!row) {
        row = { monitor: r.monitor, resolution, bucket, rollup: emptyRollup() };
        this.pending.set(key, row);
      }
      addResult(row.rollup, r.ok, r.timings.totalMs);
    }
  }

  get size(): number {
    return this.pending.size;
  }

  drain(): RollupRow[] {
    const rows = [...this.pending.values()];
    this.pending.clear();
    return rows;
  }

  /** Puts rows back (the store refused them for now); they are added to whatever arrived meanwhile. */
  restore(rows: readonly RollupRow[]): void {
    for (const row of rows) {
      const key = `${row.resolution}\u0000${row.bucket}\u0000${row.monitor}`;
      const have = this.pending.get(key);
      if (have) mergeInto(have.rollup, row.rollup);
      else this.pending.set(key, row);
    }
  }
}
