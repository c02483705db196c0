import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { breathe } from '../testing/breathe.js';
import {
  activeWindows,
  cronPatternOf,
  type MaintenanceWindow,
  nextWindowChange,
  nextWindows,
  windowAt,
} from './maintenance.js';

const HOUR = 3_600_000;
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
const span = (s: { startMs: number; endMs: number } | null | undefined) => s && [iso(s.startMs), iso(s.endMs)];

const backups: MaintenanceWindow = {
  name: 'backups',
  matchers: [{ name: 'service', op: '=', value: 'shop' }],
  start: { kind: 'cron', pattern: '0 2 * * sun' },
  durationMs: 2 * HOUR,
  timeZone: 'Europe/Berlin',
};
const patching: MaintenanceWindow = {
  name: 'patching',
  matchers: [{ name: 'host', op: '=~', value: 'web.*' }],
  start: { kind: 'weekly', days: [2, 4], atMin: 22 * 60 + 30 },
  durationMs: 3 * HOUR,
  timeZone: 'America/New_York',
};

describe('maintenance windows', () => {
  it('by cron: Sundays 02:00-04:00 Berlin, in winter and summer time and on both change nights', () => {
    expect(span(windowAt(backups, at('2026-03-22T01:00:00Z')))).toEqual([
      '2026-03-22T01:00:00.000Z',
      '2026-03-22T03:00:00.000Z',
    ]);
    expect(windowAt(backups, at('2026-03-22T00:59:59Z'))).toBeNull();
    expect(windowAt(backups, at('2026-03-22T03:00:00Z'))).toBeNull();
    // 2026-03-29: 02:00 does not exist; croner starts the window at 03:00 CEST (01:00Z).
    expect(span(windowAt(backups, at('2026-03-29T02:00:00Z')))).toEqual([
      '2026-03-29T01:00:00.000Z',
      '2026-03-29T03:00:00.000Z',
    ]);
    // Summer: 02:00 CEST is 00:00Z.
    expect(span(windowAt(backups, at('2026-06-07T00:30:00Z')))).toEqual([
      '2026-06-07T00:00:00.000Z',
      '2026-06-07T02:00:00.000Z',
    ]);
    // 2026-10-25: 02:00 happens twice; the window starts once, at the first (00:00Z).
    const oct = nextWindows(backups, at('2026-10-24T00:00:00Z'), 2).map(span);
    expect(oct).toEqual([
      ['2026-10-25T00:00:00.000Z', '2026-10-25T02:00:00.000Z'],
      ['2026-11-01T01:00:00.000Z', '2026-11-01T03:00:00.000Z'],
    ]);
  });

  it('weekly: Tuesdays and Thursdays 22:30 New York for 3 h, past midnight, across the spring change', () => {
    expect(cronPatternOf(patching.start)).toBe('30 22 * * 2,4');
    // Tuesday 2026-03-03 22:30 EST is 03-04 03:30Z.
    expect(span(windowAt(patching, at('2026-03-04T05:00:00Z')))).toEqual([
      '2026-03-04T03:30:00.000Z',
      '2026-03-04T06:30:00.000Z',
    ]);
    // After the change (2026-03-08): 22:30 EDT is 02:30Z.
    expect(span(windowAt(patching, at('2026-03-11T02:30:00Z')))).toEqual([
      '2026-03-11T02:30:00.000Z',
      '2026-03-11T05:30:00.000Z',
    ]);
    expect(nextWindows(patching, at('2026-03-04T05:00:00Z'), 4).map((s) => iso(s.startMs))).toEqual([
      '2026-03-04T03:30:00.000Z',
      '2026-03-06T03:30:00.000Z',
      '2026-03-11T02:30:00.000Z',
      '2026-03-13T02:30:00.000Z',
    ]);
  });

  it('holds back only the alerts its matchers select', () => {
    const t = at('2026-03-22T01:30:00Z');
    expect(activeWindows([backups, patching], { service: 'shop', severity: 'critical' }, t).map((w) => w.name)).toEqual(
      ['backups'],
    );
    expect(activeWindows([backups, patching], { service: 'cart' }, t)).toEqual([]);
    expect(activeWindows([backups, patching], { service: 'shop' }, at('2026-03-22T03:30:00Z'))).toEqual([]);
  });

  it('says when to look again: the next start, or the end of the window in progress', () => {
    expect(iso(nextWindowChange([backups, patching], at('2026-03-21T00:00:00Z')) ?? 0)).toBe(
      '2026-03-22T01:00:00.000Z',
    );
    expect(iso(nextWindowChange([backups, patching], at('2026-03-22T01:00:00Z')) ?? 0)).toBe(
      '2026-03-22T03:00:00.000Z',
    );
    expect(iso(nextWindowChange([backups, patching], at('2026-03-23T00:00:00Z')) ?? 0)).toBe(
      '2026-03-25T02:30:00.000Z',
    );
    expect(nextWindowChange([], 0)).toBeNull();
  });

  it('chains occurrences closer together than the duration into one span', () => {
    const hourly: MaintenanceWindow = {
      name: 'h',
      matchers: [],
      start: { kind: 'cron', pattern: '0 * * * *' },
      durationMs: 90 * 60_000,
      timeZone: 'UTC',
    };
    const s = windowAt(hourly, at('2026-01-01T12:10:00Z'));
    expect(s && s.endMs - s.startMs).toBeGreaterThan(100 * HOUR); // one long span, bounded by the chain limit
    expect(activeWindows([hourly], {}, at('2026-01-01T12:10:00Z'))).toHaveLength(1);
    // Occurrences that only touch (Sunday 00:00 for 48 h, then Tuesday 00:00) are two spans.
    const touching: MaintenanceWindow = {
      ...hourly,
      start: { kind: 'weekly', days: [0, 2], atMin: 0 },
      durationMs: 48 * HOUR,
    };
    expect(span(windowAt(touching, at('2026-03-03T00:00:00Z')))).toEqual([
      '2026-03-03T00:00:00.000Z',
      '2026-03-05T00:00:00.000Z',
    ]);
    expect(span(windowAt(touching, at('2026-03-02T23:59:59Z')))).toEqual([
      '2026-03-01T00:00:00.000Z',
      '2026-03-03T00:00:00.000Z',
    ]);
  });
});

describe('maintenance windows agree with themselves (property)', () => {
  it('windowAt holds between a start and its end, and nextWindowChange lands on those edges', async () => {
    const t0 = at('2026-03-01T00:00:00Z');
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('Europe/Berlin', 'America/New_York', 'UTC'),
        fc.uniqueArray(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 0, max: 1439 }),
        fc.integer({ min: 1, max: 48 * 60 }),
        fc.array(fc.integer({ min: 0, max: 40 * 24 * 60 }), { minLength: 10, maxLength: 10 }),
        async (timeZone, days, atMin, durationMin, probes) => {
          await breathe();
          const w: MaintenanceWindow = {
            name: 'w',
            matchers: [],
            start: { kind: 'weekly', days, atMin },
            durationMs: durationMin * 60_000,
            timeZone,
          };
          const spans = nextWindows(w, t0, 20);
          for (const [i, s] of spans.entries()) {
            expect(s.endMs).toBeGreaterThan(s.startMs);
            if (i > 0) expect(s.startMs).toBeGreaterThanOrEqual((spans[i - 1] as { endMs: number }).endMs);
            expect(span(windowAt(w, s.startMs))).toEqual(span(s));
            expect(span(windowAt(w, s.endMs - 1))).toEqual(span(s));
            expect(windowAt(w, s.endMs)?.startMs ?? s.endMs).toBeGreaterThanOrEqual(s.endMs);
          }
          const last = spans.at(-1)?.endMs ?? t0;
          for (const m of probes) {
            const t = t0 + m * 60_000;
            if (t >= last) continue;
            const inside = spans.find((s) => s.startMs <= t && t < s.endMs);
            expect(span(windowAt(w, t))).toEqual(span(inside ?? null));
            const change = nextWindowChange([w], t);
            const edges = spans.flatMap((s) => [s.startMs, s.endMs]).filter((e) => e > t);
            expect(change).toBe(Math.min(...edges));
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
