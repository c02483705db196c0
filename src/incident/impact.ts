/**
 * Impact, estimated rather than typed (issue 16 §4): over the incident's interval, the share of requests lost,
 * 1 − observed ÷ expected from the traffic baseline, per service and overall; the vantage points whose probes
 * failed; the duration. For the founding outage this turns "approximately 80% of users were affected" from a guess
 * into a figure.
 *
 * Pure: the rate series (observed and the baseline's expected rate per bucket) and the probe failures come in, the
 * interval is given (its end is the resolution or `now`, an argument).
 *
 * - A bucket counts for the part of it inside the interval; a bucket without an observation is no evidence either
 *   way and is left out (and so is its expectation: the share is of the time that was measured).
 * - The baseline can run out during a long outage (the detector does not remember slots under a drop): a bucket
 *   without an expected rate takes the last one known before it in the interval, or the service's `fallbackExpected`
 *   (the expected rate the drop was declared against) when none is known yet.
 * - More requests than expected is no loss: the share is never below 0.
 */
import { formatDuration } from './timezone.js';

export interface ImpactPoint {
  /** Bucket start, epoch ms. */
  readonly t: number;
  /** Bucket length, ms. */
  readonly ms: number;
  /** Requests/s observed over the bucket; null when nothing was measured. */
  readonly observed: number | null;
  /** Requests/s the baseline expected; null when it had no expectation. */
  readonly expected: number | null;
}

export interface ServiceSeries {
  readonly service: string;
  readonly points: readonly ImpactPoint[];
  /** Requests/s to assume before the first bucket with an expected rate (the drop's own expectation). */
  readonly fallbackExpected?: number | undefined;
}

export interface ProbeFailure {
  readonly vantage: string;
  readonly monitor: string;
  /** Epoch ms of its first failure in the interval. */
  readonly at: number;
}

export interface ImpactInput {
  readonly startMs: number;
  /** The resolution, or now while it lasts. */
  readonly endMs: number;
  readonly resolved: boolean;
  readonly series: readonly ServiceSeries[];
  readonly failures: readonly ProbeFailure[];
}

export interface RequestsLost {
  /** Requests the baseline expected over the measured time (rounded). */
  readonly expectedRequests: number;
  readonly observedRequests: number;
  readonly lostRequests: number;
  /** 1 − observed ÷ expected, 0..1, rounded to 3 digits; null without a baseline. */
  readonly lostShare: number | null;
  /** How much of the interval had both an observation and an expectation. */
  readonly measuredMs: number;
}

export interface ServiceImpact extends RequestsLost {
  readonly service: string;
}

export interface Impact {
  readonly startedAt: string;
  readonly endedAt: string;
  readonly ongoing: boolean;
  readonly durationMs: number;
  readonly services: readonly ServiceImpact[];
  /** The services' requests together (null share when none has a baseline). */
  readonly overall: RequestsLost;
  /** Vantage points whose probes failed in the interval, first failure first. */
  readonly vantagePoints: readonly {
    readonly vantage: string;
    readonly monitors: readonly string[];
    readonly firstAt: string;
  }[];
  /** One sentence for the postmortem's Impact line. */
  readonly text: string;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

function lost(expected: number, observed: number, measuredMs: number): RequestsLost {
  const e = Math.round(expected);
  const o = Math.round(observed);
  return {
    expectedRequests: e,
    observedRequests: o,
    lostRequests: Math.max(0, e - o),
    lostShare: expected > 0 ? round3(Math.min(1, Math.max(0, 1 - observed / expected))) : null,
    measuredMs,
  };
}

function serviceImpact(s: ServiceSeries, startMs: number, endMs: number): ServiceImpact {
  let expected = 0;
  let observed = 0;
  let measuredMs = 0;
  let lastExpected = s.fallbackExpected ?? null;
  for (const p of [...s.points].sort((a, b) => a.t - b.t)) {
    if (p.expected !== null) lastExpected = p.expected;
    const from = Math.max(p.t, startMs);
    const to = Math.min(p.t + p.ms, endMs);
    if (to <= from || p.observed === null || lastExpected === null) continue;
    const sec = (to - from) / 1000;
    expected += lastExpected * sec;
    observed += p.observed * sec;
    measuredMs += to - from;
  }
  return { service: s.service, ...lost(expected, observed, measuredMs) };
}

const pct = (share: number) => `${Math.round(share * 100)}%`;
const count = (n: number) => n.toLocaleString('en-US');

/** The incident's impact from its rate series and probe failures. */
export function estimateImpact(input: ImpactInput): Impact {
  const { startMs } = input;
  const endMs = Math.max(startMs, input.endMs);
  const services = input.series.map((s) => serviceImpact(s, startMs, endMs));
  const measured = services.filter((s) => s.lostShare !== null);
  const sum = (f: (s: ServiceImpact) => number) => measured.reduce((a, s) => a + f(s), 0);
  const overall = lost(
    sum((s) => s.expectedRequests),
    sum((s) => s.observedRequests),
    Math.max(0, ...measured.map((s) => s.measuredMs)),
  );
  const byVantage = new Map<string, { monitors: Set<string>; first: number }>();
  for (const f of [...input.failures].sort((a, b) => a.at - b.at)) {
    if (f.at < startMs || f.at > endMs) continue;
    const v = byVantage.get(f.vantage) ?? { monitors: new Set<string>(), first: f.at };
    v.monitors.add(f.monitor);
    byVantage.set(f.vantage, v);
  }
  const vantagePoints = [...byVantage].map(([vantage, v]) => ({
    vantage,
    monitors: [...v.monitors].sort(),
    firstAt: new Date(v.first).toISOString(),
  }));
  const durationMs = endMs - startMs;

  const parts: string[] = [];
  if (measured.length > 0) {
    const per =
      measured.length > 1 ? ` (${measured.map((s) => `${s.service} ${pct(s.lostShare as number)}`).join(', ')})` : '';
    const names = measured.map((s) => s.service).join(', ');
    parts.push(
      `about ${pct(overall.lostShare as number)} of the requests to ${names} were lost${per}: ${count(overall.observedRequests)} arrived of ${count(overall.expectedRequests)} expected from the traffic baseline`,
    );
  }
  const unmeasured = services.filter((s) => s.lostShare === null).map((s) => s.service);
  if (unmeasured.length > 0) parts.push(`no traffic baseline for ${unmeasured.join(', ')}, so its loss is unknown`);
  if (vantagePoints.length > 0) parts.push(`probes failed from ${vantagePoints.map((v) => v.vantage).join(', ')}`);
  const over = `Over ${formatDuration(durationMs)}${input.resolved ? '' : ' so far'}`;
  const text =
    parts.length === 0
      ? `${over}, nothing was measured: no traffic series or failing probe for its services.`
      : `${over}, ${parts.join('; ')}.`;
  return {
    startedAt: new Date(startMs).toISOString(),
    endedAt: new Date(endMs).toISOString(),
    ongoing: !input.resolved,
    durationMs,
    services,
    overall,
    vantagePoints,
    text,
  };
}

/** What an incident's impact is estimated over: its interval and services. */
export interface ImpactScope {
  readonly startedAt: string;
  readonly resolvedAt: string | null;
  readonly services: readonly string[];
}

/**
 * An incident's impact from its stored events and its services' rate series (what the server does for
 * `GET /incidents/ID`, and the founding replay with its own events): the probe failures of its monitors (or of
 * monitors naming its services), and per service the expected rate its traffic drops were declared against (summed
 * over the hosts) for buckets where the baseline has run out. A service without points is left out.
 */
export function incidentImpact(
  inc: ImpactScope,
  events: readonly { readonly at: string; readonly kind: string; readonly data: unknown }[],
  monitors: readonly string[],
  series: readonly ServiceSeries[],
  nowMs: number,
): Impact {
  const startMs = Date.parse(inc.startedAt);
  const endMs = inc.resolvedAt ? Date.parse(inc.resolvedAt) : nowMs;
  const failures: ProbeFailure[] = [];
  const dropExpected = new Map<string, Map<string, number>>();
  for (const e of events) {
    const d = (e.data ?? {}) as Record<string, unknown>;
    const at = Date.parse(e.at);
    if (e.kind === 'monitor.vantage' && d.to === 'down' && typeof d.monitor === 'string') {
      const ours = monitors.includes(d.monitor) || (typeof d.service === 'string' && inc.services.includes(d.service));
      if (ours && typeof d.vantage === 'string') failures.push({ vantage: d.vantage, monitor: d.monitor, at });
    } else if (e.kind === 'traffic.drop' && typeof d.service === 'string' && typeof d.expected === 'number') {
      // The expected rate each host's drop was declared against: what the loss is measured by where the baseline
      // has run out under a long outage.
      const m = dropExpected.get(d.service) ?? new Map<string, number>();
      m.set(String(d.host), d.expected);
      dropExpected.set(d.service, m);
    }
  }
  const measured: ServiceSeries[] = [];
  for (const s of series) {
    if (!inc.services.includes(s.service) || s.points.length === 0) continue;
    const fallback = [...(dropExpected.get(s.service)?.values() ?? [])].reduce((a, b) => a + b, 0);
    measured.push(fallback > 0 ? { ...s, fallbackExpected: fallback } : s);
  }
  return estimateImpact({ startMs, endMs, resolved: inc.resolvedAt !== null, series: measured, failures });
}
