/**
 * On-call schedules (issue 15 §3; docs/alerting.md "On-call schedules"): who is on call at an instant, and the
 * handoffs after it. Pure: the instant is an argument.
 *
 * Every rotation is counted in the schedule's wall-clock time, so a handoff written 09:00 is 09:00 local on both
 * sides of a daylight-saving change (a daily shift across the change lasts 23 or 25 hours). Wall-clock readings are
 * kept as "wall milliseconds": the reading's fields counted as if they were UTC. The time zone's offsets come from
 * Intl (the ICU database Node ships), never from a table of our own.
 *
 * A schedule has layers and overrides. A layer is a rotation (daily, weekly, or every N hours) over its
 * participants, counted from its first handoff, optionally restricted to weekly windows (the layer covers nobody
 * outside them). The highest layer (the last one listed) with someone on call wins, as in PagerDuty; an override
 * wins over every layer (the last one listed, when overrides overlap).
 */

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

/** A window of the week in the schedule's time zone; `toMin <= fromMin` runs past midnight into the next day. */
export interface WeeklyWindow {
  /** 0 = Sunday ... 6 = Saturday (Date.getUTCDay()), the days the window starts on. */
  readonly days: readonly number[];
  /** Minutes after local midnight. */
  readonly fromMin: number;
  /** Minutes after local midnight (1440 for 24:00); at or before fromMin: the next day. */
  readonly toMin: number;
}

export interface ScheduleLayer {
  readonly name: string;
  /** The length of a shift in wall-clock time: 1 day for daily, 7 for weekly, N hours for `every`. */
  readonly periodMs: number;
  /** The first handoff, in wall milliseconds: participants[0]'s shift starts here; nobody is on call before. */
  readonly firstHandoffWallMs: number;
  readonly participants: readonly string[];
  /** When set, the layer covers nobody outside these windows. */
  readonly restrict?: readonly WeeklyWindow[] | undefined;
}

export interface ScheduleOverride {
  readonly user: string;
  readonly fromMs: number;
  readonly toMs: number;
}

export interface Schedule {
  readonly name: string;
  /** An IANA time zone, like Europe/Berlin. */
  readonly timeZone: string;
  /** Lowest first: a later layer wins where it has someone on call. */
  readonly layers: readonly ScheduleLayer[];
  readonly overrides: readonly ScheduleOverride[];
}

/** Who is on call and why. */
export interface OnCall {
  readonly user: string;
  readonly source:
    | { readonly kind: 'layer'; readonly layer: string; readonly index: number; readonly shift: number }
    | { readonly kind: 'override'; readonly index: number };
}

/** The on-call person changes at `atMs` (from/to null: nobody). */
export interface Handoff {
  readonly atMs: number;
  readonly from: OnCall | null;
  readonly to: OnCall | null;
}

/** A stretch of time one person is on call without a break (the shifts of the iCal feed). */
export interface Shift {
  readonly user: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly onCall: OnCall;
}

// ---------------------------------------------------------------------------------------------------------------
// Wall-clock time in a zone, through Intl.

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The problem with a time zone name in words, or undefined when Intl knows it. */
export function timeZoneProblem(timeZone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return undefined;
  } catch {
    return `unknown time zone '${timeZone}'`;
  }
}

/** The wall-clock reading of a whole second, straight from Intl (slow: tens of microseconds). */
function wallOfSecond(timeZone: string, ms: number): number {
  const fields: Record<string, number> = {};
  let bc = false;
  for (const p of formatter(timeZone).formatToParts(ms)) {
    if (p.type === 'era') bc = p.value.startsWith('B');
    else if (p.type !== 'literal') fields[p.type] = Number(p.value);
  }
  const year = bc ? 1 - (fields.year ?? 0) : (fields.year ?? 0);
  const d = new Date(0);
  d.setUTCFullYear(year, (fields.month ?? 1) - 1, fields.day ?? 1);
  d.setUTCHours(fields.hour ?? 0, fields.minute ?? 0, fields.second ?? 0, 0);
  return d.getTime();
}

const HOUR_MS = 3_600_000;
/** Per zone, per UTC hour: the offset when it is the same all hour, NaN when the offset changes within it. */
const offsets = new Map<string, Map<number, number>>();

/** The zone's offset from UTC at `ms`, in ms. Intl is asked twice per hour of time, then the answer is kept. */
function offsetAt(timeZone: string, ms: number): number {
  let byHour = offsets.get(timeZone);
  if (!byHour) {
    byHour = new Map();
    offsets.set(timeZone, byHour);
  }
  const hour = Math.floor(ms / HOUR_MS);
  let o = byHour.get(hour);
  if (o === undefined) {
    const start = hour * HOUR_MS;
    const a = wallOfSecond(timeZone, start) - start;
    const b = wallOfSecond(timeZone, start + HOUR_MS - 1000) - (start + HOUR_MS - 1000);
    o = a === b ? a : Number.NaN;
    if (byHour.size > 200_000) byHour.clear();
    byHour.set(hour, o);
  }
  if (!Number.isNaN(o)) return o;
  const second = Math.floor(ms / 1000) * 1000;
  return wallOfSecond(timeZone, second) - second;
}

/** The wall-clock reading of instant `ms` in `timeZone`, in wall milliseconds. */
export function wallOf(timeZone: string, ms: number): number {
  return ms + offsetAt(timeZone, ms);
}

/**
 * The instant a wall-clock reading stands for in `timeZone`. A reading the clocks skip (02:30 on the spring change)
 * is read with the offset before the change, landing the same distance after it (03:30); a reading that happens
 * twice (02:30 on the autumn change) is the earlier one. These are Temporal's "compatible" rules, and RFC 5545's.
 */
export function instantOf(timeZone: string, wallMs: number): number {
  const before = wallOf(timeZone, wallMs - DAY_MS) - (wallMs - DAY_MS);
  const after = wallOf(timeZone, wallMs + DAY_MS) - (wallMs + DAY_MS);
  const candidates = [wallMs - before, wallMs - after].filter((c) => wallOf(timeZone, c) === wallMs);
  if (candidates.length > 0) return Math.min(...candidates);
  return wallMs - before;
}

// ---------------------------------------------------------------------------------------------------------------
// Layers.

function boundary(s: Schedule, layer: ScheduleLayer, k: number): number {
  return instantOf(s.timeZone, layer.firstHandoffWallMs + k * layer.periodMs);
}

/** The index of the shift `atMs` falls in (-1 before the first handoff). */
function shiftIndex(s: Schedule, layer: ScheduleLayer, atMs: number): number {
  let k = Math.floor((wallOf(s.timeZone, atMs) - layer.firstHandoffWallMs) / layer.periodMs);
  while (k >= 0 && boundary(s, layer, k) > atMs) k--;
  while (boundary(s, layer, k + 1) <= atMs) k++;
  return Math.max(k, -1);
}

/** The local midnight (in wall ms) of the day `atMs` falls on. */
function wallMidnight(timeZone: string, atMs: number): number {
  const wall = wallOf(timeZone, atMs);
  return wall - (((wall % DAY_MS) + DAY_MS) % DAY_MS);
}

/** The occurrence of window `w` that starts on the local day `day0` (wall ms of its midnight), as instants. */
function occurrence(s: Schedule, w: WeeklyWindow, day0: number): [number, number] {
  const to = w.toMin <= w.fromMin ? w.toMin + 1440 : w.toMin;
  return [instantOf(s.timeZone, day0 + w.fromMin * MINUTE_MS), instantOf(s.timeZone, day0 + to * MINUTE_MS)];
}

/**
 * Whether an occurrence of the windows covers `atMs`. Occurrences are read as instants, with the same conversion
 * as their edges (a window from 02:30 on the spring night opens at 03:30), so activity and edges always agree.
 */
function inWindows(s: Schedule, windows: readonly WeeklyWindow[], atMs: number): boolean {
  const midnight = wallMidnight(s.timeZone, atMs);
  for (const d of [0, -1]) {
    const day0 = midnight + d * DAY_MS;
    const dow = new Date(day0).getUTCDay();
    for (const w of windows) {
      if (!w.days.includes(dow)) continue;
      const [from, to] = occurrence(s, w, day0);
      if (from <= atMs && atMs < to) return true;
    }
  }
  return false;
}

/** The first window edge after `atMs` (next) or the last at or before it (previous), or null. */
function windowEdge(s: Schedule, windows: readonly WeeklyWindow[], atMs: number, next: boolean): number | null {
  const midnight = wallMidnight(s.timeZone, atMs);
  let best: number | null = null;
  for (let i = 0; i <= 9; i++) {
    const d = next ? i - 1 : 1 - i;
    const day0 = midnight + d * DAY_MS;
    // Occurrences starting on later (earlier) days cannot beat what was found.
    if (best !== null && (next ? instantOf(s.timeZone, day0) > best : instantOf(s.timeZone, day0 + 2 * DAY_MS) < best))
      break;
    const dow = new Date(day0).getUTCDay();
    for (const w of windows) {
      if (!w.days.includes(dow)) continue;
      for (const e of occurrence(s, w, day0)) {
        if (next ? e > atMs && (best === null || e < best) : e <= atMs && (best === null || e > best)) best = e;
      }
    }
  }
  return best;
}

function layerOnCall(s: Schedule, layer: ScheduleLayer, index: number, atMs: number): OnCall | null {
  if (layer.participants.length === 0) return null;
  const k = shiftIndex(s, layer, atMs);
  if (k < 0) return null;
  if (layer.restrict && !inWindows(s, layer.restrict, atMs)) return null;
  const user = layer.participants[k % layer.participants.length] as string;
  return { user, source: { kind: 'layer', layer: layer.name, index, shift: k } };
}

/** Who is on call at `atMs`: the last override covering it, else the highest layer with someone on call. */
export function onCallAt(s: Schedule, atMs: number): OnCall | null {
  for (let i = s.overrides.length - 1; i >= 0; i--) {
    const o = s.overrides[i] as ScheduleOverride;
    if (o.fromMs <= atMs && atMs < o.toMs) return { user: o.user, source: { kind: 'override', index: i } };
  }
  for (let i = s.layers.length - 1; i >= 0; i--) {
    const r = layerOnCall(s, s.layers[i] as ScheduleLayer, i, atMs);
    if (r) return r;
  }
  return null;
}

/** The first instant after `atMs` (next) or the last at or before it where who is on call may change, or null. */
function boundaryNear(s: Schedule, atMs: number, next: boolean): number | null {
  let best: number | null = null;
  const consider = (c: number | null) => {
    if (c === null || (next ? c <= atMs : c > atMs)) return;
    if (best === null || (next ? c < best : c > best)) best = c;
  };
  for (const layer of s.layers) {
    const k = shiftIndex(s, layer, atMs);
    consider(next ? boundary(s, layer, k + 1) : k >= 0 ? boundary(s, layer, k) : null);
    if (layer.restrict) consider(windowEdge(s, layer.restrict, atMs, next));
  }
  for (const o of s.overrides) {
    consider(o.fromMs);
    consider(o.toMs);
  }
  return best;
}

/** The first instant after `atMs` where who is on call may change, or null when nothing ever changes. */
export function nextBoundary(s: Schedule, atMs: number): number | null {
  return boundaryNear(s, atMs, true);
}

/** The last instant at or before `atMs` where who is on call may have changed, or null. */
export function previousBoundary(s: Schedule, atMs: number): number | null {
  return boundaryNear(s, atMs, false);
}

const sameUser = (a: OnCall | null, b: OnCall | null) => (a?.user ?? null) === (b?.user ?? null);

/** One year: how far ahead nextHandoffs looks when nobody ever changes. */
export const HANDOFF_HORIZON_MS = 366 * DAY_MS;

/** The next `n` changes of the on-call person after `fromMs` (within `horizonMs`). */
export function nextHandoffs(s: Schedule, fromMs: number, n: number, horizonMs = HANDOFF_HORIZON_MS): Handoff[] {
  const out: Handoff[] = [];
  let current = onCallAt(s, fromMs);
  let t = fromMs;
  while (out.length < n) {
    const b = nextBoundary(s, t);
    if (b === null || b > fromMs + horizonMs) break;
    const next = onCallAt(s, b);
    if (!sameUser(current, next)) out.push({ atMs: b, from: current, to: next });
    current = next;
    t = b;
  }
  return out;
}

/** Who is on call now, and the next handoff (what `rampart oncall` prints). */
export function onCallNowAndNext(s: Schedule, nowMs: number): { now: OnCall | null; next: Handoff | null } {
  return { now: onCallAt(s, nowMs), next: nextHandoffs(s, nowMs, 1)[0] ?? null };
}

/** The start of the unbroken stretch of `user` that contains `atMs`, looking back at most `limitMs`. */
function stretchStart(s: Schedule, user: string, atMs: number, limitMs: number): number {
  let t = atMs;
  for (;;) {
    const b = previousBoundary(s, t);
    if (b === null || b <= atMs - limitMs) return atMs - limitMs;
    if (onCallAt(s, b - 1)?.user !== user) return b;
    t = b - 1;
  }
}

/**
 * The shifts of a schedule that overlap [fromMs, toMs): each an unbroken stretch of one person, with its true start
 * and end even outside the range (so a shift reads the same whatever range asked for it), looking at most
 * `limitMs` beyond the range each way.
 */
export function shiftsBetween(s: Schedule, fromMs: number, toMs: number, limitMs = 90 * DAY_MS): Shift[] {
  const out: Shift[] = [];
  let current = onCallAt(s, fromMs);
  let start = current ? stretchStart(s, current.user, fromMs, limitMs) : fromMs;
  let t = fromMs;
  for (;;) {
    const b = nextBoundary(s, t);
    const end = b === null || b > toMs + limitMs ? null : b;
    const next = end === null ? null : onCallAt(s, end);
    if (end === null || !sameUser(current, next)) {
      if (current) out.push({ user: current.user, startMs: start, endMs: end ?? toMs + limitMs, onCall: current });
      if (end === null || end >= toMs) break;
      current = next;
      start = end;
    }
    t = end;
  }
  return out;
}

/**
 * The first handoff of a layer in wall milliseconds: `handoffMin` minutes after midnight on the start date
 * (`YYYY-MM-DD` in the schedule's time zone), or on the first `day` (0 = Sunday) on or after it for a weekly one.
 */
export function firstHandoffWallMs(startDate: string, handoffMin: number, day?: number): number {
  const midnight = Date.parse(`${startDate}T00:00:00Z`);
  const skip = day === undefined ? 0 : (day - new Date(midnight).getUTCDay() + 7) % 7;
  return midnight + skip * DAY_MS + handoffMin * MINUTE_MS;
}
