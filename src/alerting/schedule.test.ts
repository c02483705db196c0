import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { breathe } from '../testing/breathe.js';
import {
  firstHandoffWallMs,
  instantOf,
  nextHandoffs,
  onCallAt,
  onCallNowAndNext,
  type Schedule,
  type ScheduleLayer,
  shiftsBetween,
  timeZoneProblem,
  wallOf,
} from './schedule.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

function layer(p: Partial<ScheduleLayer> & { start: string; handoff?: number; day?: number }): ScheduleLayer {
  return {
    name: p.name ?? 'primary',
    periodMs: p.periodMs ?? DAY,
    firstHandoffWallMs: firstHandoffWallMs(p.start, p.handoff ?? 9 * 60, p.day),
    participants: p.participants ?? ['alice', 'bob', 'carol'],
    ...(p.restrict ? { restrict: p.restrict } : {}),
  };
}
const schedule = (timeZone: string, layers: ScheduleLayer[], overrides: Schedule['overrides'] = []): Schedule => ({
  name: 'ops',
  timeZone,
  layers,
  overrides,
});

describe('wall-clock time through Intl', () => {
  it('reads the skipped hour of the spring change with the offset before it, the repeated one as the earlier', () => {
    const tz = 'Europe/Berlin';
    expect(iso(instantOf(tz, at('2026-03-29T01:30:00Z')))).toBe('2026-03-29T00:30:00.000Z');
    expect(iso(instantOf(tz, at('2026-03-29T02:30:00Z')))).toBe('2026-03-29T01:30:00.000Z'); // 03:30 CEST
    expect(iso(instantOf(tz, at('2026-03-29T03:30:00Z')))).toBe('2026-03-29T01:30:00.000Z');
    expect(iso(instantOf(tz, at('2026-10-25T02:30:00Z')))).toBe('2026-10-25T00:30:00.000Z'); // the first 02:30
    expect(iso(instantOf(tz, at('2026-10-25T03:30:00Z')))).toBe('2026-10-25T02:30:00.000Z');
    expect(iso(wallOf('America/New_York', at('2026-07-01T12:00:00.250Z')))).toBe('2026-07-01T08:00:00.250Z');
  });
  it('names an unknown time zone', () => {
    expect(timeZoneProblem('Europe/Berlin')).toBeUndefined();
    expect(timeZoneProblem('Europe/Berln')).toBe("unknown time zone 'Europe/Berln'");
  });
});

describe.each([
  // zone, spring change day, autumn change day, UTC offset in winter and in summer (hours)
  ['Europe/Berlin', '2026-03-29', '2026-10-25', 1, 2],
  ['America/New_York', '2026-03-08', '2026-11-01', -5, -4],
])('a daily rotation at 09:00 in %s', (tz, spring, autumn, winter, summer) => {
  const s = schedule(tz, [layer({ start: '2026-01-01' })]);
  const local9 = (date: string, offset: number) => at(`${date}T09:00:00Z`) - offset * HOUR;

  it('hands off at 09:00 local every day for a year, across both changes', () => {
    const hs = nextHandoffs(s, at('2026-01-01T00:00:00Z'), 365);
    expect(hs).toHaveLength(365);
    for (const h of hs) {
      const w = new Date(wallOf(tz, h.atMs));
      expect([w.getUTCHours(), w.getUTCMinutes()]).toEqual([9, 0]);
    }
    // Consecutive handoffs are a day apart, except across the changes: 23 h in spring, 25 h in autumn.
    const lengths = hs.slice(1).map((h, i) => (h.atMs - (hs[i] as { atMs: number }).atMs) / HOUR);
    expect(lengths.filter((l) => l === 23)).toHaveLength(1);
    expect(lengths.filter((l) => l === 25)).toHaveLength(1);
    expect(lengths.filter((l) => l !== 24)).toHaveLength(2);
  });

  it('is the same person on both sides of each change, until 09:00 local', () => {
    for (const [date, before, after] of [
      [spring, winter, summer],
      [autumn, summer, winter],
    ] as const) {
      const handoff = local9(date, after);
      const prev = onCallAt(s, handoff - 1);
      const next = onCallAt(s, handoff);
      expect(prev?.user).not.toBe(next?.user);
      // The day before at 09:00 local (the previous handoff) began the shift that ends now.
      const dayBefore = new Date(at(`${date}T00:00:00Z`) - DAY).toISOString().slice(0, 10);
      expect(onCallAt(s, local9(dayBefore, before))?.user).toBe(prev?.user);
      expect(onCallAt(s, local9(dayBefore, before) - 1)?.user).not.toBe(prev?.user);
      // The rotation goes alice, bob, carol from 2026-01-01: the index is the day count.
      const days = Math.round((at(`${date}T00:00:00Z`) - at('2026-01-01T00:00:00Z')) / DAY);
      expect(next?.user).toBe(['alice', 'bob', 'carol'][days % 3]);
    }
  });

  it('has nobody on call before the first handoff', () => {
    expect(onCallAt(s, local9('2026-01-01', winter) - 1)).toBeNull();
    expect(onCallAt(s, local9('2026-01-01', winter))?.user).toBe('alice');
  });
});

describe('weekly rotations', () => {
  it('hand off on the named day at the local time, across both changes of New York', () => {
    const tz = 'America/New_York';
    const s = schedule(tz, [layer({ start: '2026-01-01', day: 1, handoff: 10 * 60, periodMs: 7 * DAY })]);
    const hs = nextHandoffs(s, at('2026-01-01T00:00:00Z'), 60); // 52 within the one-year horizon
    expect(hs).toHaveLength(52);
    for (const h of hs) {
      const w = new Date(wallOf(tz, h.atMs));
      expect([w.getUTCDay(), w.getUTCHours(), w.getUTCMinutes()]).toEqual([1, 10, 0]);
    }
    // 2026-01-05 is the first Monday on or after the start: alice from then, bob a week later.
    expect(iso(hs[0]?.atMs ?? 0)).toBe('2026-01-05T15:00:00.000Z');
    expect(hs[0]?.to?.user).toBe('alice');
    expect(hs[1]?.to?.user).toBe('bob');
    expect(onCallAt(s, at('2026-03-09T13:59:59Z'))?.user).toBe(onCallAt(s, at('2026-03-02T15:00:00Z'))?.user);
    expect(iso(nextHandoffs(s, at('2026-03-08T00:00:00Z'), 1)[0]?.atMs ?? 0)).toBe('2026-03-09T14:00:00.000Z');
  });

  it('every 12h counts in wall-clock time: 09:00 and 21:00 local in Berlin all year', () => {
    const tz = 'Europe/Berlin';
    const s = schedule(tz, [layer({ start: '2026-03-01', periodMs: 12 * HOUR, participants: ['day', 'night'] })]);
    const hs = nextHandoffs(s, at('2026-03-01T00:00:00Z'), 2 * 300);
    for (const [i, h] of hs.entries()) {
      const w = new Date(wallOf(tz, h.atMs));
      expect(w.getUTCHours()).toBe(i % 2 === 0 ? 9 : 21);
      expect(h.to?.user).toBe(i % 2 === 0 ? 'day' : 'night');
    }
  });
});

describe('layers and overrides', () => {
  const tz = 'Europe/Berlin';
  const weekdays = [1, 2, 3, 4, 5];
  const s = schedule(
    tz,
    [
      layer({ name: 'nights and weekends', start: '2026-01-01', participants: ['alice', 'bob'] }),
      layer({
        name: 'business hours',
        start: '2026-01-05',
        day: 1,
        periodMs: 7 * DAY,
        participants: ['dora'],
        restrict: [{ days: weekdays, fromMin: 9 * 60, toMin: 17 * 60 }],
      }),
    ],
    [
      { user: 'erin', fromMs: at('2026-03-28T12:00:00Z'), toMs: at('2026-03-30T12:00:00Z') },
      { user: 'frank', fromMs: at('2026-03-29T00:00:00Z'), toMs: at('2026-03-29T06:00:00Z') },
    ],
  );

  it('the higher layer wins inside its restriction, the lower one outside it', () => {
    // Tuesday 2026-03-10: 09:00-17:00 Berlin is 08:00-16:00Z (winter).
    expect(onCallAt(s, at('2026-03-10T08:00:00Z'))).toEqual({
      user: 'dora',
      source: { kind: 'layer', layer: 'business hours', index: 1, shift: 9 },
    });
    expect(onCallAt(s, at('2026-03-10T07:59:59Z'))?.source).toMatchObject({ kind: 'layer', index: 0 });
    expect(onCallAt(s, at('2026-03-10T16:00:00Z'))?.source).toMatchObject({ kind: 'layer', index: 0 });
    // Saturday: the restriction has no window, so the daily layer.
    expect(onCallAt(s, at('2026-03-14T10:00:00Z'))?.source).toMatchObject({ kind: 'layer', index: 0 });
    // In summer the window follows local time: 09:00 CEST is 07:00Z.
    expect(onCallAt(s, at('2026-06-09T07:00:00Z'))?.user).toBe('dora');
    expect(onCallAt(s, at('2026-06-09T06:59:59Z'))?.user).not.toBe('dora');
  });

  it('an override spans handoffs and the DST change; the last listed override wins where they overlap', () => {
    expect(onCallAt(s, at('2026-03-28T11:59:59Z'))?.user).not.toBe('erin');
    expect(onCallAt(s, at('2026-03-28T12:00:00Z'))?.user).toBe('erin');
    expect(onCallAt(s, at('2026-03-29T03:00:00Z'))).toEqual({ user: 'frank', source: { kind: 'override', index: 1 } });
    expect(onCallAt(s, at('2026-03-29T08:00:00Z'))?.user).toBe('erin'); // after 09:00 CEST, the handoff
    // Monday 09:00 CEST (07:00Z) would be dora's: the override still wins.
    expect(onCallAt(s, at('2026-03-30T07:30:00Z'))?.user).toBe('erin');
    expect(onCallAt(s, at('2026-03-30T12:00:00Z'))?.user).toBe('dora');
    const hs = nextHandoffs(s, at('2026-03-28T00:00:00Z'), 5).map((h) => [iso(h.atMs), h.to?.user]);
    expect(hs).toEqual([
      ['2026-03-28T08:00:00.000Z', onCallAt(s, at('2026-03-28T08:00:00Z'))?.user],
      ['2026-03-28T12:00:00.000Z', 'erin'],
      ['2026-03-29T00:00:00.000Z', 'frank'],
      ['2026-03-29T06:00:00.000Z', 'erin'],
      ['2026-03-30T12:00:00.000Z', 'dora'],
    ]);
  });

  it('now and next for `rampart oncall`', () => {
    const r = onCallNowAndNext(s, at('2026-03-10T12:00:00Z'));
    expect(r.now?.user).toBe('dora');
    expect(r.next && [iso(r.next.atMs), r.next.from?.user]).toEqual(['2026-03-10T16:00:00.000Z', 'dora']);
  });

  it('shifts are the unbroken stretches of one person, whole even when the range cuts them', () => {
    const a = shiftsBetween(s, at('2026-03-10T12:00:00Z'), at('2026-03-11T12:00:00Z'));
    expect(a.map((x) => [x.user, iso(x.startMs), iso(x.endMs)])).toEqual([
      ['dora', '2026-03-10T08:00:00.000Z', '2026-03-10T16:00:00.000Z'],
      [a[1]?.user, '2026-03-10T16:00:00.000Z', '2026-03-11T08:00:00.000Z'],
      ['dora', '2026-03-11T08:00:00.000Z', '2026-03-11T16:00:00.000Z'],
    ]);
    const b = shiftsBetween(s, at('2026-03-10T15:00:00Z'), at('2026-03-10T17:00:00Z'));
    expect(b).toEqual(a.slice(0, 2));
  });
});

describe('handoffs agree with who is on call (property)', () => {
  it('between two handoffs nextHandoffs reports, onCallAt names the same person; at each one, the new one', async () => {
    const zones = ['Europe/Berlin', 'America/New_York', 'UTC', 'Australia/Lord_Howe'];
    const t0 = at('2026-03-01T00:00:00Z');
    const layerArb = fc.record({
      periodH: fc.constantFrom(24, 168, 12, 8, 1),
      handoff: fc.integer({ min: 0, max: 1439 }),
      startDay: fc.integer({ min: 0, max: 40 }),
      participants: fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { minLength: 1, maxLength: 4 }),
      restrict: fc.option(
        fc.array(
          fc.record({
            days: fc.uniqueArray(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 7 }),
            fromMin: fc.integer({ min: 0, max: 1439 }),
            toMin: fc.integer({ min: 0, max: 1440 }),
          }),
          { minLength: 1, maxLength: 2 },
        ),
        { nil: undefined },
      ),
    });
    const overrideArb = fc.record({
      user: fc.constantFrom('x', 'a'),
      fromH: fc.integer({ min: 0, max: 1500 }),
      lenH: fc.integer({ min: 1, max: 100 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...zones),
        fc.array(layerArb, { minLength: 1, maxLength: 3 }),
        fc.array(overrideArb, { maxLength: 3 }),
        fc.array(fc.integer({ min: 0, max: 60 * 24 * 60 }), { minLength: 20, maxLength: 20 }),
        async (tz, layers, overrides, probesMin) => {
          await breathe();
          const s = schedule(
            tz,
            layers.map((l, i) => ({
              name: `l${i}`,
              periodMs: l.periodH * HOUR,
              firstHandoffWallMs: firstHandoffWallMs(iso(t0 + l.startDay * DAY).slice(0, 10), l.handoff),
              participants: l.participants,
              ...(l.restrict ? { restrict: l.restrict } : {}),
            })),
            overrides.map((o) => ({ user: o.user, fromMs: t0 + o.fromH * HOUR, toMs: t0 + (o.fromH + o.lenH) * HOUR })),
          );
          const end = t0 + 60 * DAY;
          const hs = nextHandoffs(s, t0, 100_000, 60 * DAY);
          for (const [i, h] of hs.entries()) {
            expect(h.atMs).toBeGreaterThan(i === 0 ? t0 : (hs[i - 1] as { atMs: number }).atMs);
            expect(h.from?.user ?? null).not.toBe(h.to?.user ?? null);
            expect(onCallAt(s, h.atMs)?.user ?? null).toBe(h.to?.user ?? null);
            expect(onCallAt(s, h.atMs - 1)?.user ?? null).toBe(h.from?.user ?? null);
          }
          for (const m of probesMin) {
            const t = t0 + m * 60_000;
            if (t >= end) continue;
            const last = hs.filter((h) => h.atMs <= t).at(-1);
            const expected = last ? (last.to?.user ?? null) : (onCallAt(s, t0)?.user ?? null);
            expect(onCallAt(s, t)?.user ?? null).toBe(expected);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
