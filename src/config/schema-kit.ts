/**
 * The building blocks of rampart.yaml's schemas (src/config/load.ts and the sections in their own modules, such as
 * monitors.ts): every zod message is the "expected" text, refinements carry the problem in params.problem, and
 * unknown keys are reported with the known ones (for "did you mean").
 */
import { z } from 'zod';
import { didYouMean } from './did-you-mean.js';

export const NAME_EXPECTED = 'letters, digits, ., _ or - (starting with a letter or digit)';
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `500ms`, `2s`, `1m`, `1h` in milliseconds, as written to a reader of the file. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** Milliseconds from `500ms`, `2s`, `1m`, `1h` within [min, max], or the problem in words. */
export function durationOf(text: string, min: number, max: number): { ms: number } | string {
  const m = /^(\d{1,12})\s*(ms|s|m|h)$/.exec(text.trim());
  if (!m) {
    if (/^\d+(\.\d+)?$/.test(text.trim())) return 'the unit is missing';
    if (/^\d+\.\d+\s*[a-z]+$/.test(text.trim()))
      return 'a duration is a whole number of a unit (write 1500ms, not 1.5s)';
    const unit = /^\d+\s*([A-Za-z]+)$/.exec(text.trim())?.[1];
    if (unit !== undefined) return `unknown unit '${unit}'${didYouMean(unit, Object.keys(DURATION_UNITS))}`;
    return 'not a duration';
  }
  const ms = Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? 1);
  if (ms < min) return `less than ${formatDuration(min)}`;
  if (ms > max) return `more than ${formatDuration(max)}`;
  return { ms };
}

export const KNOWN = '\u0000known:';
export const expect = (expected: string) => ({ error: expected });

export function object<T extends z.core.$ZodLooseShape>(shape: T, expected: string) {
  const known = Object.keys(shape).join(' ');
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? `${KNOWN}${known}` : expected),
  });
}

/** A string turned into a value by `parse`, which returns the problem in words when the text is not valid. */
export function checked<T extends object | number>(expected: string, parse: (text: string) => T | string) {
  return z.string(expect(expected)).transform((text, ctx) => {
    const v = parse(text);
    if (typeof v !== 'string') return v;
    ctx.addIssue({ code: 'custom', message: expected, params: { problem: v } });
    return z.NEVER;
  });
}

/** A string kept as written, when `problem` finds nothing wrong with it. */
export function valid(expected: string, problem: (text: string) => string | undefined) {
  return z.string(expect(expected)).superRefine((text, ctx) => {
    const p = problem(text);
    if (p !== undefined) ctx.addIssue({ code: 'custom', message: expected, params: { problem: p } });
  });
}

export const nameField = (what: string) =>
  z
    .string(expect(`${what}: ${NAME_EXPECTED}`))
    .regex(NAME_RE, expect(`${what}: ${NAME_EXPECTED}`))
    .max(253, expect(`${what} of at most 253 characters`));
export const intField = (min: number, max: number, what: string) => {
  const e = expect(`${what}: a whole number ${min}-${max}`);
  return z.number(e).int(e).min(min, e).max(max, e);
};

/** A duration written `500ms`, `2s`, `1m` or `1h`, within [min, max], in milliseconds. */
export const durationField = (min: number, max: number) => {
  const expected = `a duration from ${formatDuration(min)} to ${formatDuration(max)}, like 500ms, 2s or 1m`;
  return z.unknown().transform((v, ctx) => {
    // A bare number is the most likely slip (timeout: 2): say the unit is missing rather than "unexpected '2'".
    const r = typeof v === 'string' ? durationOf(v, min, max) : typeof v === 'number' ? 'the unit is missing' : null;
    if (r !== null && typeof r !== 'string') return r.ms;
    ctx.addIssue({ code: 'custom', message: expected, ...(r === null ? {} : { params: { problem: r } }) });
    return z.NEVER;
  });
};

/** Minutes after midnight from `HH:MM` (`24:00` only when `endOfDay`), or the problem in words. */
export function timeOfDay(text: string, endOfDay = false): number | string {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text.trim());
  if (!m) return 'not a time of day';
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (h === 24 && min === 0) return endOfDay ? 1440 : '24:00 is only valid as the end (to)';
  if (h > 23 || min > 59) return 'the time of day is out of range';
  return h * 60 + min;
}

/** Index = Date.getUTCDay(). */
export const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export const DAYS_SHOWN = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const DAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

/** 0 = Sunday from `mon` or `monday` (any case), or the problem in words. */
export function dayOf(text: string): number | string {
  const d = text.trim().toLowerCase();
  const i = Math.max((DAYS as readonly string[]).indexOf(d), DAY_NAMES.indexOf(d));
  return i >= 0 ? i : `unknown day${didYouMean(d, DAYS_SHOWN)}`;
}
