/**
 * Counting incoming requests into aligned windows (issue 14, §3). Pure: every time is an argument.
 *
 * Access-log lines count in the window of their own timestamp, not of the moment they were read: a backlog read
 * after an agent restart (or a slow read of a big burst) then lands in the windows it happened in instead of making
 * a spike in the window it was read. A window closes `graceMs` after its end (a web server writes a line when the
 * request ends, Apache stamps it with its start); a line that arrives for a window already closed (and perhaps sent)
 * counts in the oldest open one, so it is neither lost nor counted twice. Empty windows are emitted as zeros: "no
 * requests" is the very thing a traffic-drop detector must see.
 *
 * Rule counters and HAProxy's totals are cumulative: CounterDeltas turns successive readings into what arrived in
 * between, and a total that went down (a ruleset replaced, HAProxy reloaded) is a reset: the new value is what
 * arrived since, never a negative rate.
 */

export interface WindowCount {
  readonly start: number;
  readonly requests: number;
  readonly errors: number;
}

/** What TrafficWindows persists (plain JSON). */
export interface TrafficWindowsState {
  readonly windowMs: number;
  /** The start of the last window emitted; the first window emitted starts at closedThrough + windowMs. */
  readonly closedThrough: number;
  /** Open windows: [start, requests, errors]. */
  readonly open: readonly (readonly [number, number, number])[];
}

export interface TrafficWindowsOptions {
  /** How long after its end a window stays open for late lines (default 1000 ms). */
  readonly graceMs?: number;
  /** At most this many windows are emitted at once after a long absence (default 17,280: a day of 5 s windows). */
  readonly maxBacklog?: number;
}

export class TrafficWindows {
  readonly windowMs: number;
  private closedThrough: number;
  private readonly open = new Map<number, [number, number]>();
  private readonly graceMs: number;
  private readonly maxBacklog: number;
  /** Not closed yet since a fresh start (no state). */
  private fresh = true;
  /** Lines stamped before the first full window of a fresh start (the agent began following the log then). */
  skipped = 0;
  /** Lines of windows too old to emit after a long absence (`maxBacklog`). */
  dropped = 0;

  /** A fresh counter starts with the window after `now`'s: the current one was only partly seen. */
  constructor(windowMs: number, now: number, opts: TrafficWindowsOptions = {}, state?: TrafficWindowsState) {
    if (!Number.isInteger(windowMs) || windowMs <= 0) throw new Error(`window length must be a positive integer`);
    this.windowMs = windowMs;
    this.graceMs = opts.graceMs ?? 1000;
    this.maxBacklog = opts.maxBacklog ?? 17_280;
    if (state && state.windowMs === windowMs) {
      this.closedThrough = state.closedThrough;
      for (const [s, r, e] of state.open) this.open.set(s, [r, e]);
      this.fresh = false;
    } else {
      this.closedThrough = this.startOf(now);
    }
  }

  startOf(t: number): number {
    return Math.floor(t / this.windowMs) * this.windowMs;
  }

  /**
   * Counts `requests` (of which `errors` were 5xx) stamped `time`, read at `now`. Before a fresh counter first
   * closed, lines stamped before its first window are skipped (they happened before it started following).
   */
  add(time: number, now: number, requests = 1, errors = 0): void {
    let start = this.startOf(time);
    if (this.fresh && start <= this.closedThrough) {
      this.skipped += requests;
      return;
    }
    const current = this.startOf(now);
    if (start > current) start = current; // a clock ahead of ours: it happened now
    if (start <= this.closedThrough) start = this.closedThrough + this.windowMs; // late: the oldest open window
    const w = this.open.get(start);
    if (w) {
      w[0] += requests;
      w[1] += errors;
    } else this.open.set(start, [requests, errors]);
  }

  /** Windows that ended at least `graceMs` before `now`, in time order, empty ones as zeros. */
  close(now: number): WindowCount[] {
    const last = this.startOf(now - this.graceMs) - this.windowMs;
    if (last <= this.closedThrough) return [];
    this.fresh = false;
    let first = this.closedThrough + this.windowMs;
    const backlogStart = last - (this.maxBacklog - 1) * this.windowMs;
    if (first < backlogStart) {
      for (const [s, [r]] of this.open) {
        if (s < backlogStart) {
          this.dropped += r;
          this.open.delete(s);
        }
      }
      first = backlogStart;
    }
    const out: WindowCount[] = [];
    for (let s = first; s <= last; s += this.windowMs) {
      const w = this.open.get(s);
      this.open.delete(s);
      out.push({ start: s, requests: w?.[0] ?? 0, errors: w?.[1] ?? 0 });
    }
    this.closedThrough = last;
    return out;
  }

  state(): TrafficWindowsState {
    return {
      windowMs: this.windowMs,
      closedThrough: this.closedThrough,
      open: [...this.open].sort((a, b) => a[0] - b[0]).map(([s, [r, e]]) => [s, r, e] as const),
    };
  }
}

/**
 * Successive readings of cumulative totals (one per rule or per backend, by key) to what arrived in between. The
 * first reading is a baseline (undefined: nothing known yet). A total below its previous reading was reset (the
 * ruleset replaced, HAProxy reloaded) and counts from zero. A key that appears later is a baseline of its own: a
 * rule restored with its old counter values (a rollback puts `counter packets N` back) would otherwise count its
 * whole history as one window's; what a new rule counted before its first reading is not counted.
 */
export class CounterDeltas {
  private last: Map<string, number> | undefined;

  update(values: ReadonlyMap<string, number>): number | undefined {
    const prev = this.last;
    this.last = new Map(values);
    if (!prev) return undefined;
    let sum = 0;
    for (const [k, v] of values) {
      const p = prev.get(k);
      if (p !== undefined) sum += v < p ? v : v - p;
    }
    return sum;
  }

  /** Forget the baseline (the next reading is a baseline again): after a reading failed or the sources changed. */
  reset(): void {
    this.last = undefined;
  }
}
