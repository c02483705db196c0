/**
 * From probe results to states (issue 14), pure: time comes in with each result and as `now`.
 *
 * - Per vantage point: `failures` consecutive failures make it call the monitor down, as many successes up again
 *   (flapping is damped both ways); the first failure of a run asks for an immediate re-check, so a down is
 *   confirmed in about one interval rather than `failures` intervals.
 * - Per monitor: quorum over the vantage points that reported recently (the host's own inside view is left out: it
 *   says whether the service runs, not whether users reach it). DOWN when at least `quorum` of them see it down,
 *   DEGRADED when some do, UP when none do, UNKNOWN when none reported.
 * - Per service: its public monitor and its backends' direct monitors. DOWN when the public address is down or every
 *   backend is; DEGRADED when some backend is down (the redundancy group runs with fewer than it declares); UP.
 */
import type { Monitor, MonitorState, ProbeResult, Vantage } from './types.js';

export interface VantageState {
  readonly state: 'up' | 'down' | 'unknown';
  /** Consecutive results that disagree with `state` (failures while up, successes while down). */
  readonly streak: number;
  readonly since: number;
  readonly lastAt: number;
  readonly lastOk: boolean;
  readonly lastError?: string;
  readonly lastMs?: number;
  /** The last result came from inside the host (its own agent, on loopback). */
  readonly inside: boolean;
}

export interface ResultStep {
  readonly next: VantageState;
  /** The vantage point changed its mind (up <-> down, or its first verdict). */
  readonly changed: boolean;
  /** Probe again now: the first failure of a run. */
  readonly recheck: boolean;
}

/** One result applied to one vantage point's state. */
export function applyResult(prev: VantageState | undefined, r: ProbeResult, failures: number): ResultStep {
  const base = {
    lastAt: r.at,
    lastOk: r.ok,
    lastMs: r.timings.totalMs,
    inside: r.inside === true,
    ...(r.error !== undefined ? { lastError: r.error } : {}),
  };
  const cur = prev?.state ?? 'unknown';
  const agrees = (cur === 'up' && r.ok) || (cur === 'down' && !r.ok);
  if (agrees)
    return { next: { ...base, state: cur, streak: 0, since: prev?.since ?? r.at }, changed: false, recheck: false };
  // A first success is believed at once (nothing was wrong yet); everything else needs `failures` in a row.
  const streak = (prev?.streak ?? 0) + 1;
  if ((cur === 'unknown' && r.ok) || streak >= failures) {
    return { next: { ...base, state: r.ok ? 'up' : 'down', streak: 0, since: r.at }, changed: true, recheck: false };
  }
  return {
    next: { ...base, state: cur, streak, since: prev?.since ?? r.at },
    changed: false,
    recheck: !r.ok && streak === 1,
  };
}

export interface Verdict {
  readonly state: MonitorState;
  /** Vantage points counted (fresh, not inside) and how many see it down. */
  readonly counted: number;
  readonly down: readonly Vantage[];
  readonly quorum: number;
}

/** A vantage point's word counts while its last result is at most three intervals (plus a timeout) old. */
export function isFresh(m: Monitor, v: VantageState, now: number): boolean {
  return now - v.lastAt <= 3 * m.intervalMs + m.timeoutMs;
}

/** The monitor's state by quorum over the vantage points that reported recently. */
export function monitorVerdict(m: Monitor, vantages: Readonly<Record<Vantage, VantageState>>, now: number): Verdict {
  const counted = Object.entries(vantages).filter(([, v]) => !v.inside && v.state !== 'unknown' && isFresh(m, v, now));
  const down = counted.filter(([, v]) => v.state === 'down').map(([name]) => name);
  const n = counted.length;
  // A quorum larger than the vantage points there are could never be met: it is then all of them.
  const quorum = Math.max(1, Math.min(m.quorum === 'majority' ? Math.floor(n / 2) + 1 : m.quorum, n));
  const state: MonitorState =
    n === 0 ? 'UNKNOWN' : down.length >= quorum ? 'DOWN' : down.length > 0 ? 'DEGRADED' : 'UP';
  return { state, counted: n, down, quorum };
}

export interface ServiceVerdict {
  readonly state: MonitorState;
  /** In words: `1 of 2 backends healthy (web2 down)`, `unreachable through its public address`. */
  readonly reason: string;
  readonly healthy: number;
  readonly backends: number;
}

/** A service's state from its public monitor (if any) and the direct monitors of its backends. */
export function serviceVerdict(
  publicState: MonitorState | undefined,
  backends: readonly { readonly host: string; readonly state: MonitorState }[],
): ServiceVerdict {
  const known = backends.filter((b) => b.state !== 'UNKNOWN');
  const healthy = backends.filter((b) => b.state === 'UP').length;
  const bad = known.filter((b) => b.state !== 'UP');
  const total = backends.length;
  const counts = `${healthy} of ${total} backend${total === 1 ? '' : 's'} healthy`;
  const badText = bad.map((b) => `${b.host} ${b.state === 'DOWN' ? 'down' : 'degraded'}`).join(', ');
  const base = { healthy, backends: total };
  if (publicState === 'DOWN') {
    return {
      ...base,
      state: 'DOWN',
      reason: `unreachable through its public address; ${counts}${badText ? ` (${badText})` : ''}`,
    };
  }
  if (total > 0 && known.length === total && known.every((b) => b.state === 'DOWN')) {
    return { ...base, state: 'DOWN', reason: `no backend answers (${badText})` };
  }
  if (bad.length > 0) return { ...base, state: 'DEGRADED', reason: `${counts} (${badText})` };
  if (publicState === 'DEGRADED') {
    return { ...base, state: 'DEGRADED', reason: 'some vantage points cannot reach its public address' };
  }
  if (publicState === undefined && known.length === 0) return { ...base, state: 'UNKNOWN', reason: 'no results yet' };
  if (publicState === 'UNKNOWN' && known.length === 0) return { ...base, state: 'UNKNOWN', reason: 'no results yet' };
  return { ...base, state: 'UP', reason: total > 0 ? counts : 'its public address answers' };
}
