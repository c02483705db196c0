/**
 * Maintenance windows (issue 15 §2; docs/alerting.md "Maintenance windows"): recurring spans of time, given by a
 * cron expression or weekly days and a time, with a duration and a time zone, in which the alerts their matchers
 * select are recorded but nobody is paged (the dispatcher applies that). Pure: the instant is an argument; croner
 * reads the expressions and does the time-zone arithmetic (a window at 02:30 on the night the clocks skip 02:00-03:00
 * starts at 03:00, and on the night 02:00-03:00 happens twice it starts once).
 */
import { Cron } from 'croner';
import { type Matcher, matchAll } from './matchers.js';
import type { Labels } from './types.js';

export type WindowStart =
  | { readonly kind: 'cron'; readonly pattern: string }
  /** days: 0 = Sunday ... 6 = Saturday; atMin: minutes after local midnight. */
  | { readonly kind: 'weekly'; readonly days: readonly number[]; readonly atMin: number };

export interface MaintenanceWindow {
  readonly name: string;
  /** Every matcher must hold for an alert to be in the window (none: every alert). */
  readonly matchers: readonly Matcher[];
  readonly start: WindowStart;
  readonly durationMs: number;
  /** An IANA time zone, like Europe/Berlin. */
  readonly timeZone: string;
}

/** One occurrence of a window: [startMs, endMs). */
export interface WindowSpan {
  readonly name: string;
  readonly startMs: number;
  readonly endMs: number;
}

/** How many overlapping occurrences are chained into one span at most (`* * * * *` for 2h never ends). */
const MAX_CHAIN = 1000;

/** The cron expression a window starts by: a weekly one is `MM HH * * D,D`. */
export function cronPatternOf(start: WindowStart): string {
  if (start.kind === 'cron') return start.pattern;
  return `${start.atMin % 60} ${Math.floor(start.atMin / 60)} * * ${[...start.days].sort().join(',')}`;
}

const crons = new Map<string, Cron>();
function cronOf(w: MaintenanceWindow): Cron {
  const pattern = cronPatternOf(w.start);
  const key = `${w.timeZone}\u0000${pattern}`;
  let c = crons.get(key);
  if (!c) {
    // Paused and without a function: croner only computes, it never sets a timer.
    c = new Cron(pattern, { timezone: w.timeZone, paused: true, mode: '5-part' });
    if (crons.size > 1000) crons.clear();
    crons.set(key, c);
  }
  return c;
}

/** The first start strictly after `ms`, or null. */
function startAfter(w: MaintenanceWindow, ms: number): number | null {
  return cronOf(w).nextRun(new Date(ms))?.getTime() ?? null;
}

/**
 * The span of `w` that covers `atMs`, or null: from the latest start at or before it, to the end of the last
 * occurrence that overlaps the one before (occurrences closer together than the duration make one span).
 */
export function windowAt(w: MaintenanceWindow, atMs: number): WindowSpan | null {
  let s = startAfter(w, atMs - w.durationMs);
  if (s === null || s > atMs) return null;
  const first = s;
  for (let i = 0; i < MAX_CHAIN; i++) {
    const n = startAfter(w, s);
    if (n === null || n > atMs) break;
    s = n;
  }
  let end = s + w.durationMs;
  for (let i = 0; i < MAX_CHAIN; i++) {
    const n = startAfter(w, s);
    if (n === null || n >= end) break;
    s = n;
    end = n + w.durationMs;
  }
  // The span began at the earliest start still chained to `first`: look back while occurrences overlap.
  let start = first;
  for (let i = 0; i < MAX_CHAIN; i++) {
    const prev = startAfter(w, start - w.durationMs - 1);
    if (prev === null || prev >= start) break;
    start = prev;
  }
  return { name: w.name, startMs: start, endMs: end };
}

/** The windows whose matchers select `labels` and that cover `atMs`: alerts with these labels page nobody. */
export function activeWindows(windows: readonly MaintenanceWindow[], labels: Labels, atMs: number): WindowSpan[] {
  const out: WindowSpan[] = [];
  for (const w of windows) {
    if (!matchAll(w.matchers, labels)) continue;
    const span = windowAt(w, atMs);
    if (span) out.push(span);
  }
  return out;
}

/** The next `n` spans of `w` that end after `fromMs` (the one in progress first), for listing. */
export function nextWindows(w: MaintenanceWindow, fromMs: number, n: number): WindowSpan[] {
  const out: WindowSpan[] = [];
  let span = windowAt(w, fromMs);
  let t = fromMs;
  while (out.length < n) {
    if (!span) {
      const s = startAfter(w, t);
      if (s === null) break;
      span = windowAt(w, s);
      if (!span) break;
    }
    out.push(span);
    // Overlapping occurrences are inside the span: the next one starts at or after its end.
    t = span.endMs - 1;
    span = null;
  }
  return out;
}

/**
 * The first instant after `fromMs` at which any window starts or ends: when the scheduler should look again at the
 * alerts a window held back (and page for those still firing once it ends). Null when none ever will.
 */
export function nextWindowChange(windows: readonly MaintenanceWindow[], fromMs: number): number | null {
  let best: number | null = null;
  const consider = (t: number | null) => {
    if (t !== null && t > fromMs && (best === null || t < best)) best = t;
  };
  for (const w of windows) {
    const span = windowAt(w, fromMs);
    if (span) consider(span.endMs);
    else consider(startAfter(w, fromMs));
  }
  return best;
}
