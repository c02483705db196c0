import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  acknowledgeEscalation,
  advance,
  type EscalationPolicy,
  type EscalationState,
  resolveEscalation,
  startEscalation,
} from './escalation.js';
import { firstHandoffWallMs, type Schedule } from './schedule.js';

const MIN = 60_000;
const DAY = 86_400_000;
const T0 = Date.parse('2026-03-29T00:40:00Z'); // 01:40 in Berlin, 20 minutes before the clocks skip an hour

const primary: Schedule = {
  name: 'primary',
  timeZone: 'Europe/Berlin',
  // Daily at 03:00 local: on 2026-03-29 that is the first hour after the change (01:00Z).
  layers: [
    {
      name: 'l',
      periodMs: DAY,
      firstHandoffWallMs: firstHandoffWallMs('2026-03-01', 3 * 60),
      participants: ['alice', 'bob'],
    },
  ],
  overrides: [],
};
const schedules = new Map([['primary', primary]]);

const policy: EscalationPolicy = {
  name: 'shop',
  steps: [
    { targets: [{ kind: 'schedule', schedule: 'primary' }], waitMs: 5 * MIN },
    {
      targets: [
        { kind: 'user', user: 'lead' },
        { kind: 'receiver', receiver: 'ops-slack' },
      ],
      waitMs: 10 * MIN,
    },
    { targets: [{ kind: 'user', user: 'cto' }], waitMs: 30 * MIN },
  ],
  repeat: 1,
};

/** Wakes the escalation every `stepMs` until it is over; returns what was sent, and when. */
function run(p: EscalationPolicy, start: number, stepMs: number, ackAt = Number.POSITIVE_INFINITY) {
  let state = startEscalation(p, start);
  const sent: [number, number, number, string[]][] = [];
  for (let now = start; state.nextAtMs !== null; now += stepMs) {
    if (now >= ackAt) state = acknowledgeEscalation(state);
    const r = advance(state, p, schedules, now);
    for (const f of r.fired)
      sent.push([f.round, f.step, now, f.notify.map((t) => ('user' in t ? t.user : t.receiver))]);
    state = r.state;
  }
  return sent;
}

describe('escalation', () => {
  it('notifies each step in order, waits, then runs the list again `repeat` times, then stops', () => {
    const sent = run(policy, T0, MIN);
    expect(sent).toEqual([
      [0, 0, T0, ['bob']], // 01:40 CET: the shift that began 2026-03-28 03:00
      [0, 1, T0 + 5 * MIN, ['lead', 'ops-slack']],
      [0, 2, T0 + 15 * MIN, ['cto']],
      [1, 0, T0 + 45 * MIN, ['alice']], // 03:25 CEST: the handoff at 03:00 local has happened
      [1, 1, T0 + 50 * MIN, ['lead', 'ops-slack']],
      [1, 2, T0 + 60 * MIN, ['cto']],
    ]);
  });

  it.each([0, 1, 2, 3, 4, 5])('an acknowledgement after %i steps stops it there', (n) => {
    const dues = [0, 5, 15, 45, 50, 60].map((m) => T0 + m * MIN);
    const sent = run(policy, T0, MIN, (dues[n] ?? 0) - 1);
    expect(sent.map((s) => [s[0], s[1]])).toEqual(
      [
        [0, 0],
        [0, 1],
        [0, 2],
        [1, 0],
        [1, 1],
        [1, 2],
      ].slice(0, n),
    );
  });

  it('a late wake fires every step due, once; a second call at the same instant fires nothing', () => {
    const s0 = startEscalation(policy, T0);
    const late = advance(s0, policy, schedules, T0 + 20 * MIN);
    expect(late.fired.map((f) => [f.round, f.step, f.dueMs - T0])).toEqual([
      [0, 0, 0],
      [0, 1, 5 * MIN],
      [0, 2, 15 * MIN],
    ]);
    // Targets are resolved when the step fires: at 01:00Z (03:00 CEST) alice took over from bob.
    expect(late.notify).toEqual([
      { kind: 'user', user: 'alice' },
      { kind: 'user', user: 'lead' },
      { kind: 'receiver', receiver: 'ops-slack' },
      { kind: 'user', user: 'cto' },
    ]);
    // The next round is due 30 min after the last step was due, not after the late wake.
    expect(late.nextWakeMs).toBe(T0 + 45 * MIN);
    const again = advance(late.state, policy, schedules, T0 + 20 * MIN);
    expect(again.fired).toEqual([]);
    expect(again.state).toEqual(late.state);
    // An early wake fires nothing either.
    expect(advance(late.state, policy, schedules, T0 + 44 * MIN).fired).toEqual([]);
  });

  it('a group that resolves stops escalating; an acknowledged one fires nothing even when overdue', () => {
    const first = advance(startEscalation(policy, T0), policy, schedules, T0);
    expect(first.nextWakeMs).toBe(T0 + 5 * MIN);
    const resolved = advance(resolveEscalation(first.state), policy, schedules, T0 + DAY);
    expect([resolved.fired, resolved.nextWakeMs, resolved.state.resolved]).toEqual([[], null, true]);
    const acked = advance(acknowledgeEscalation(first.state), policy, schedules, T0 + DAY);
    expect([acked.fired, acked.nextWakeMs, acked.state.acked]).toEqual([[], null, true]);
  });

  it('says which schedule had nobody on call, and a policy shortened meanwhile ends the round', () => {
    const empty = new Map<string, Schedule>([['primary', { ...primary, layers: [] }]]);
    const r = advance(startEscalation(policy, T0), policy, empty, T0);
    expect(r.fired[0]).toMatchObject({ notify: [], nobodyOnCall: ['primary'] });
    const at2: EscalationState = { ...r.state, step: 2, nextAtMs: T0 };
    const shorter: EscalationPolicy = { ...policy, steps: policy.steps.slice(0, 1), repeat: 0 };
    expect(advance(at2, shorter, schedules, T0)).toMatchObject({ fired: [], nextWakeMs: null });
  });

  it('never notifies a step twice and never after the acknowledgement, whatever the wakes (property)', () => {
    const stepArb = fc.record({
      waitMs: fc.integer({ min: 0, max: 60 }).map((m) => m * MIN),
      targets: fc.constant([{ kind: 'user' as const, user: 'u' }]),
    });
    fc.assert(
      fc.property(
        fc.array(stepArb, { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.integer({ min: 0, max: 90 * MIN }), { minLength: 1, maxLength: 40 }),
        fc.option(fc.integer({ min: 0, max: 400 * MIN }), { nil: undefined }),
        (steps, repeat, gaps, ackAfter) => {
          const p: EscalationPolicy = { name: 'p', steps, repeat };
          let state = startEscalation(p, T0);
          let now = T0;
          const seen = new Set<string>();
          let acked = false;
          // Wakes at irregular times, sometimes twice at one instant (gap 0), sometimes very late.
          for (const gap of gaps) {
            now += gap;
            if (ackAfter !== undefined && now >= T0 + ackAfter && !acked) {
              state = acknowledgeEscalation(state);
              acked = true;
            }
            const r = advance(state, p, schedules, now);
            if (acked) expect(r.fired).toEqual([]);
            for (const f of r.fired) {
              const key = `${f.round}/${f.step}`;
              expect(seen.has(key)).toBe(false);
              seen.add(key);
              expect(f.dueMs).toBeLessThanOrEqual(now);
            }
            if (r.nextWakeMs !== null) expect(r.nextWakeMs).toBeGreaterThan(now);
            state = r.state;
          }
          // Run to the end without an ack: every step of every round fires exactly once.
          if (!acked) {
            const r = advance(state, p, schedules, Number.MAX_SAFE_INTEGER);
            for (const f of r.fired) seen.add(`${f.round}/${f.step}`);
            expect(seen.size).toBe(steps.length * (repeat + 1));
            expect(r.nextWakeMs).toBeNull();
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
