/**
 * Escalation policies (issue 15 §3; docs/alerting.md "Escalation"): the ordered steps an alert group's pages go
 * through until someone acknowledges. Pure: the scheduler at the edge passes `now` and stores the state returned.
 *
 * A step notifies its targets (a user, whoever is on call on a schedule at that moment, or a receiver), then waits;
 * after the last step the whole list starts again, `repeat` more times (PagerDuty's "repeat N times"). An
 * acknowledgement or the group resolving stops it. The due time of each step counts from the previous step's due
 * time, not from when the scheduler happened to wake: a late wake fires every step that fell due, each once, and
 * advancing twice at the same instant fires nothing the second time.
 */
import { onCallAt, type Schedule } from './schedule.js';
import type { NotifyTarget } from './types.js';

export type EscalationTarget =
  | { readonly kind: 'user'; readonly user: string }
  | { readonly kind: 'schedule'; readonly schedule: string }
  | { readonly kind: 'receiver'; readonly receiver: string };

export interface EscalationStep {
  readonly targets: readonly EscalationTarget[];
  /** How long after this step the next one (or the next round) is due. */
  readonly waitMs: number;
}

export interface EscalationPolicy {
  readonly name: string;
  readonly steps: readonly EscalationStep[];
  /** How many times the whole list runs again after the first round (0: once). */
  readonly repeat: number;
}

/** Where one alert group is in its policy. Plain data: the scheduler stores it as it is. */
export interface EscalationState {
  readonly policy: string;
  /** The next step to fire (index into the policy's steps). */
  readonly step: number;
  /** The round that step belongs to (0 is the first pass). */
  readonly round: number;
  /** When that step is due; null once it is over (every round done, acknowledged or resolved). */
  readonly nextAtMs: number | null;
  readonly acked: boolean;
  readonly resolved: boolean;
}

/** One step fired: its targets resolved at the moment it fired. */
export interface FiredStep {
  readonly step: number;
  readonly round: number;
  /** When the step was due (earlier than now after a late wake). */
  readonly dueMs: number;
  readonly notify: readonly NotifyTarget[];
  /** Schedules of the step with nobody on call: their page goes nowhere, and the caller should say so. */
  readonly nobodyOnCall: readonly string[];
}

export interface EscalationAdvance {
  /** Every target of every step fired by this call, each target once. */
  readonly notify: readonly NotifyTarget[];
  readonly fired: readonly FiredStep[];
  readonly state: EscalationState;
  /** When to call advance again; null when the escalation is over. */
  readonly nextWakeMs: number | null;
}

/** The state of a group whose escalation starts at `nowMs`: its first step is due at once. */
export function startEscalation(policy: EscalationPolicy, nowMs: number): EscalationState {
  return {
    policy: policy.name,
    step: 0,
    round: 0,
    nextAtMs: policy.steps.length === 0 ? null : nowMs,
    acked: false,
    resolved: false,
  };
}

/** Someone acknowledged the group: nothing more is sent. */
export function acknowledgeEscalation(state: EscalationState): EscalationState {
  return { ...state, acked: true, nextAtMs: null };
}

/** The group resolved: nothing more is sent. */
export function resolveEscalation(state: EscalationState): EscalationState {
  return { ...state, resolved: true, nextAtMs: null };
}

const targetKey = (t: NotifyTarget) => (t.kind === 'user' ? `user:${t.user}` : `receiver:${t.receiver}`);

/** The targets of a step at `atMs`: schedules resolved to whoever is on call, each target once. */
export function resolveTargets(
  targets: readonly EscalationTarget[],
  schedules: ReadonlyMap<string, Schedule>,
  atMs: number,
): { notify: NotifyTarget[]; nobodyOnCall: string[] } {
  const notify: NotifyTarget[] = [];
  const nobodyOnCall: string[] = [];
  const seen = new Set<string>();
  const add = (t: NotifyTarget) => {
    if (seen.has(targetKey(t))) return;
    seen.add(targetKey(t));
    notify.push(t);
  };
  for (const t of targets) {
    if (t.kind === 'user') add({ kind: 'user', user: t.user });
    else if (t.kind === 'receiver') add({ kind: 'receiver', receiver: t.receiver });
    else {
      const s = schedules.get(t.schedule);
      const who = s ? onCallAt(s, atMs) : null;
      if (who) add({ kind: 'user', user: who.user });
      else nobodyOnCall.push(t.schedule);
    }
  }
  return { notify, nobodyOnCall };
}

/**
 * Fires every step due at `nowMs` (targets resolved at `nowMs`) and returns the new state and when to wake next.
 * A policy edited while a group escalates is read as it is now: a step index past its end finishes the round.
 */
export function advance(
  state: EscalationState,
  policy: EscalationPolicy,
  schedules: ReadonlyMap<string, Schedule>,
  nowMs: number,
): EscalationAdvance {
  const fired: FiredStep[] = [];
  let { step, round, nextAtMs } = state;
  if (state.acked || state.resolved) nextAtMs = null;
  while (nextAtMs !== null && nextAtMs <= nowMs) {
    if (step >= policy.steps.length) {
      // The policy lost steps since: this round is over.
      step = 0;
      round++;
      if (round > policy.repeat || policy.steps.length === 0) nextAtMs = null;
      continue;
    }
    const s = policy.steps[step] as EscalationStep;
    fired.push({ step, round, dueMs: nextAtMs, ...resolveTargets(s.targets, schedules, nowMs) });
    nextAtMs += s.waitMs;
    step++;
    if (step >= policy.steps.length) {
      step = 0;
      round++;
      if (round > policy.repeat) nextAtMs = null;
    }
  }
  const notify: NotifyTarget[] = [];
  const seen = new Set<string>();
  for (const f of fired) {
    for (const t of f.notify) {
      if (seen.has(targetKey(t))) continue;
      seen.add(targetKey(t));
      notify.push(t);
    }
  }
  const next = { ...state, step, round, nextAtMs };
  return { notify, fired, state: next, nextWakeMs: nextAtMs };
}
