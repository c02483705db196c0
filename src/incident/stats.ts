/**
 * Incident figures (issue 16 §6): `rampart incidents stats --since 90d`, `GET /api/v1/incidents/stats`, and the same
 * in /metrics. Pure: the incidents and the clock come in.
 *
 * - The incidents counted are those that started at or after `since` (open ones too).
 * - Counts by severity (every severity listed, 0 included) and by service (an incident about two services counts
 *   for each; one about none under `-`).
 * - MTTD (start → detected), MTTA (detected → acknowledged), MTTR (start → resolved), as in the postmortem: the
 *   median and the 90th percentile over the incidents that have the figure (an unacknowledged incident has no MTTA
 *   yet, an open one no MTTR), with linear interpolation between ranks (numpy's default, Prometheus' summaries
 *   report the same kind of quantile).
 */
import { responseTimes } from './lifecycle.js';
import { type Incident, type IncidentSeverity, SEVERITIES } from './types.js';

export interface Quantiles {
  /** How many incidents have the figure. */
  readonly count: number;
  /** Seconds; null without any incident that has the figure. */
  readonly median: number | null;
  readonly p90: number | null;
}

export interface IncidentStats {
  readonly since: string;
  readonly until: string;
  readonly total: number;
  readonly open: number;
  readonly bySeverity: Readonly<Record<IncidentSeverity, number>>;
  /** Service name (or `-`) to count, most incidents first. */
  readonly byService: Readonly<Record<string, number>>;
  readonly mttd: Quantiles;
  readonly mtta: Quantiles;
  readonly mttr: Quantiles;
}

/** The q-quantile (0..1) of sorted values, interpolating linearly between ranks. */
export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

function quantiles(ms: readonly (number | null)[]): Quantiles {
  const xs = ms.filter((x): x is number => x !== null && x >= 0).sort((a, b) => a - b);
  const s = (x: number | null) => (x === null ? null : Math.round(x) / 1000);
  return { count: xs.length, median: s(quantile(xs, 0.5)), p90: s(quantile(xs, 0.9)) };
}

export function incidentStats(incidents: readonly Incident[], sinceMs: number, nowMs: number): IncidentStats {
  const counted = incidents.filter((i) => {
    const t = Date.parse(i.startedAt);
    return t >= sinceMs && t <= nowMs;
  });
  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<IncidentSeverity, number>;
  const services = new Map<string, number>();
  for (const i of counted) {
    bySeverity[i.severity]++;
    for (const s of i.services.length > 0 ? i.services : ['-']) services.set(s, (services.get(s) ?? 0) + 1);
  }
  const r = counted.map(responseTimes);
  return {
    since: new Date(sinceMs).toISOString(),
    until: new Date(nowMs).toISOString(),
    total: counted.length,
    open: counted.filter((i) => i.status !== 'resolved').length,
    bySeverity,
    byService: Object.fromEntries([...services].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))),
    mttd: quantiles(r.map((x) => x.mttdMs)),
    mtta: quantiles(r.map((x) => x.mttaMs)),
    mttr: quantiles(r.map((x) => x.mttrMs)),
  };
}

export const SINCE_EXPECTED =
  'a duration back from now (like 90d, 2w, 12h or 30m, at most 3650d) or an ISO 8601 instant (like 2026-09-01T00:00:00Z)';
const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `90d` (a duration back from now) or an ISO instant, as the start in epoch ms, or the problem in words. */
export function parseSince(text: string, nowMs: number): number | string {
  const t = text.trim();
  const m = /^(\d{1,7})\s*([mhdw])$/.exec(t);
  if (m) {
    const ms = Number(m[1]) * (UNITS[m[2] as string] as number);
    if (ms <= 0) return 'the duration is zero';
    if (ms > 3650 * 86_400_000) return 'more than 3650 days';
    return nowMs - ms;
  }
  if (/^\d+(\.\d+)?$/.test(t)) return 'the unit is missing';
  const unit = /^\d+\s*([A-Za-z]+)$/.exec(t)?.[1];
  if (unit !== undefined) return `unknown unit '${unit}'`;
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(t)) {
    const at = Date.parse(t);
    if (Number.isNaN(at)) return 'not a valid instant';
    if (at > nowMs) return 'in the future';
    return at;
  }
  return 'not a duration or an instant';
}
