/**
 * Incoming traffic in the server (issue 14, §3): agents send per-window request counts (src/agent/protocol.ts
 * TrafficSample); this keeps them (src/store/traffic-store.ts: 10 s, 1 min and 1 h buckets, duplicates dropped), feeds
 * one traffic-drop detector (src/monitor/traffic-drop.ts, pure) per service and host, writes `traffic.drop` and
 * `traffic.recovered` events next to the monitors' (docs/monitoring.md), exports Prometheus series, and answers
 * "how much traffic now, and how much is expected" for `rampart traffic` and the API.
 *
 * Which source a host's detector reads: its access log when the service names one, else HAProxy's stats on the
 * load balancer's host, else the firewall's rule counters — the most direct measure of requests the host has.
 * Time comes from `now` (tests pass a clock); the only timer saves the detectors' states.
 */
import type { TrafficAssignment, TrafficSample, TrafficSourceKind, TrafficSources } from '../agent/protocol.js';
import type { ServiceConfig } from '../config/types.js';
import type { ImpactPoint, ServiceSeries } from '../incident/impact.js';
import {
  describe,
  expectedBand,
  type TrafficDropConfig,
  TrafficDropDetector,
  type TrafficDropState,
  type TrafficEvent,
} from '../monitor/traffic-drop.js';
import type { Monitor } from '../monitor/types.js';
import type { TrafficResolution, TrafficRow } from '../store/traffic-store.js';
import type { Store } from '../store/types.js';
import type { ServerMetrics } from './metrics.js';
import type { ConfigHolder } from './route.js';

/** The agents' window (ms): every 5 s, as the issue asks. */
export const TRAFFIC_WINDOW_MS = 5000;
/** A series without a saved detector learns this much of the stored history at start (the weekly baseline's 4 weeks). */
const WARM_MS = 28 * 86_400_000;
/** Detector states are written this often (and on stop). */
const SAVE_EVERY_MS = 60_000;
const PREFERENCE: readonly TrafficSourceKind[] = ['access-log', 'haproxy', 'counters'];

export interface TrafficServiceOptions {
  readonly store: Store;
  readonly config: ConfigHolder;
  readonly now: () => Date;
  readonly metrics: ServerMetrics;
  readonly log?: (obj: Record<string, unknown>, msg: string) => void;
  /** Called after events are written (alerting follows them at once rather than at its next poll). */
  readonly onEvents?: (() => void) | undefined;
}

/** What `GET /traffic` says of one service and host (or of the service, summed over its hosts). */
export interface TrafficNow {
  readonly service: string;
  /** Undefined: the service as a whole (the sum of its hosts' series). */
  readonly host?: string;
  readonly source?: TrafficSourceKind;
  /** Requests/s over the last minute of points (null: no point in that minute). */
  readonly rate: number | null;
  /** The detector's expected rate now (null: not enough history yet, or below its floor). */
  readonly expected: number | null;
  readonly basis: string;
  /** `drop` while a drop lasts, `normal` otherwise, `no-data` before the first point. */
  readonly state: 'normal' | 'drop' | 'no-data';
  readonly drop?: { readonly since: string; readonly dropShare: number; readonly description: string };
  /** Time of the last point (ISO 8601). */
  readonly lastPoint?: string;
}

export interface TrafficSeriesPoint {
  /** Bucket start, ISO 8601. */
  readonly t: string;
  /** Requests/s over the time the agents covered in the bucket (null: nothing covered). */
  readonly rate: number | null;
  readonly requests: number;
  readonly errors: number;
}

interface Detector {
  readonly series: string;
  readonly service: string;
  readonly host: string;
  readonly source: TrafficSourceKind;
  readonly d: TrafficDropDetector;
  lastT: number | null;
  dirty: boolean;
}

/** The sources the config gives a host for a service, best first. */
export function sourcesFor(s: ServiceConfig, host: string): TrafficSourceKind[] {
  const t = s.traffic;
  if (!t) return [];
  const out: TrafficSourceKind[] = [];
  const runsIt = s.hosts.includes(host);
  if (runsIt && t.logs.length > 0) out.push('access-log');
  if (t.haproxy?.host === host) out.push('haproxy');
  if (runsIt && t.counters) out.push('counters');
  return out.sort((a, b) => PREFERENCE.indexOf(a) - PREFERENCE.indexOf(b));
}

/**
 * The access-log paths that are not customers' requests: the service's HTTP health checks (HAProxy's `option httpchk`
 * and the monitors derived from them), the paths of the HTTP monitors that watch the service, and its
 * `traffic.ignore-paths`. Their rate is constant whatever the customers do, so counting it would hide part of a
 * drop (a cut of 80% of the customers measured as 44% in the lab under load).
 */
export function ignoredPaths(s: ServiceConfig, monitors: readonly Monitor[]): string[] {
  const out = new Set<string>(s.traffic?.ignorePaths ?? []);
  for (const h of s.health ?? []) if (h.kind === 'http') out.add(h.path);
  for (const m of monitors) {
    if (m.service !== s.name || m.check.kind !== 'http') continue;
    try {
      out.add(new URL(m.check.url).pathname);
    } catch {
      // a URL the loader accepted always parses; nothing to add otherwise
    }
  }
  return [...out].sort();
}

export class TrafficService {
  private readonly detectors = new Map<string, Detector>();
  private restored: Map<string, { config: Partial<TrafficDropConfig>; state: TrafficDropState }> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastSave = 0;
  private lastPrune = 0;
  private readonly log: (obj: Record<string, unknown>, msg: string) => void;

  constructor(private readonly o: TrafficServiceOptions) {
    this.log = o.log ?? (() => {});
  }

  private nowMs(): number {
    return this.o.now().getTime();
  }

  /** Reads the detectors' saved states; then saves them every minute. */
  async start(): Promise<void> {
    try {
      const rows = await this.o.store.traffic.loadDetectors();
      this.restored = new Map(
        rows.map((r) => [r.series, r.state as { config: Partial<TrafficDropConfig>; state: TrafficDropState }]),
      );
    } catch (e) {
      this.log({ err: (e as Error).message }, 'traffic detectors could not be read: starting without history');
      this.restored = new Map();
    }
    await this.warm().catch((e: Error) => this.log({ err: e.message }, 'traffic history could not be learned'));
    this.timer = setInterval(() => void this.housekeeping().catch(() => {}), SAVE_EVERY_MS);
    this.timer.unref();
  }

  /**
   * Every measured series has its detector from the start, not from its host's next sample: the saved state when
   * there is one, else one that learned the history the store keeps (its 1-min buckets of the last WARM_MS). Without
   * this, reads (the expected band of GET /traffic, the overview's "expected") knew no baseline after a restart until
   * each agent sent again, and none at all for history the detector never saw (a store filled by an import, as the
   * demo's 30 days are, or a detector state lost). Events of the past are not written again: they were when they
   * happened.
   */
  private async warm(): Promise<void> {
    const now = this.nowMs();
    for (const svc of this.o.config.current().services) {
      if (!svc.traffic) continue;
      const hosts = [...new Set([...svc.hosts, ...(svc.traffic.haproxy ? [svc.traffic.haproxy.host] : [])])];
      for (const host of hosts) {
        const source = sourcesFor(svc, host)[0];
        if (!source || this.detectors.has(`${svc.name}@${host}`)) continue;
        const det = this.detector(svc, host, source);
        if (det.lastT !== null) continue;
        const rows = await this.o.store.traffic.points({
          service: svc.name,
          resolution: 60,
          from: Math.floor((now - WARM_MS) / 60_000) * 60,
          to: Math.floor(now / 1000),
          host,
        });
        for (const r of rows) {
          if (r.source !== source || r.coveredMs <= 0) continue;
          const rate = r.requests / (r.coveredMs / 1000);
          // Points every 10 s (the detector counts at most 10 s per point) over what the bucket covered: a minute,
          // or longer when coarser windows were stored in it (an hour's count says its mean rate).
          const span = Math.max(60_000, Math.ceil(r.coveredMs / 10_000) * 10_000);
          for (let t = r.bucket * 1000 + 10_000; t <= r.bucket * 1000 + span && t <= now; t += 10_000) {
            if (det.lastT !== null && t <= det.lastT) continue;
            det.d.observe({ t, rate });
            det.lastT = t;
          }
        }
        det.dirty = true;
        if (det.lastT !== null) this.log({ series: det.series, points: rows.length }, 'traffic history learned');
      }
    }
  }

  /** Every minute: the detectors' states; every hour: buckets past their retention. */
  private async housekeeping(): Promise<void> {
    await this.save();
    const now = this.nowMs();
    if (now - this.lastPrune >= 3_600_000) {
      this.lastPrune = now;
      await this.o.store.traffic.prune(now).catch((e: Error) => this.log({ err: e.message }, 'traffic prune failed'));
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.save(true).catch((e: Error) => this.log({ err: e.message }, 'traffic detectors could not be saved'));
  }

  /** What the calling agent's host measures. */
  sources(host: string): TrafficSources {
    const services: TrafficAssignment[] = [];
    for (const s of this.o.config.current().services) {
      const kinds = sourcesFor(s, host);
      if (kinds.length === 0 || !s.traffic) continue;
      services.push({
        service: s.name,
        // `{host}` in a path is the host's name: one entry for hosts that keep their logs under different names.
        logs: kinds.includes('access-log')
          ? s.traffic.logs.map((l) => ({ path: l.path.replaceAll('{host}', host), format: l.format }))
          : [],
        counters: kinds.includes('counters') ? s.public.map((p) => ({ proto: p.proto, from: p.from, to: p.to })) : [],
        ...(kinds.includes('haproxy') && s.traffic.haproxy
          ? { haproxy: { socket: s.traffic.haproxy.socket, backend: s.traffic.haproxy.backend } }
          : {}),
      });
      const ignore = kinds.includes('access-log') ? ignoredPaths(s, this.o.config.current().monitors ?? []) : [];
      if (ignore.length > 0)
        services[services.length - 1] = { ...(services.at(-1) as TrafficAssignment), ignorePaths: ignore };
    }
    return { windowMs: TRAFFIC_WINDOW_MS, services };
  }

  /**
   * One agent's samples: checked against what the host was asked to measure (a sample for another service or
   * source is refused as a whole batch, nothing stored), stored, and fed to the detectors. Returns the events.
   */
  async ingest(
    host: string,
    samples: readonly TrafficSample[],
  ): Promise<{ accepted: number; duplicates: number; events: TrafficEvent[] }> {
    const config = this.o.config.current();
    const now = this.nowMs();
    const byName = new Map(config.services.map((x) => [x.name, x]));
    samples.forEach((s, i) => {
      const svc = byName.get(s.service);
      const kinds = svc ? sourcesFor(svc, host) : [];
      const where = `samples[${i}]`;
      if (!svc)
        throw new TrafficInputError(
          `${where}.service`,
          `unknown service '${s.service}'`,
          'a service declared in rampart.yaml',
        );
      if (!kinds.includes(s.source)) {
        throw new TrafficInputError(
          `${where}.source`,
          `host '${host}' does not measure '${s.source}' for service '${s.service}'`,
          kinds.length
            ? `one of ${kinds.join(', ')}`
            : `nothing: service '${s.service}' has no traffic source on '${host}'`,
        );
      }
      if (s.start > now + 60_000) {
        throw new TrafficInputError(
          `${where}.start`,
          `${new Date(s.start).toISOString()} is in the future`,
          'a window that has ended (check the host clock)',
        );
      }
      if (s.start % s.ms !== 0)
        throw new TrafficInputError(
          `${where}.start`,
          `${s.start} is not a multiple of ms (${s.ms})`,
          'an aligned window start',
        );
    });
    const { accepted, duplicates } = await this.o.store.traffic.ingest(host, samples);
    const events: TrafficEvent[] = [];
    for (const s of accepted) {
      this.o.metrics.incomingRequests.inc({ service: s.service, host, source: s.source }, s.requests);
      const svc = byName.get(s.service) as ServiceConfig;
      if (sourcesFor(svc, host)[0] !== s.source) continue;
      const det = this.detector(svc, host, s.source);
      const t = s.start + s.ms;
      if (det.lastT !== null && t <= det.lastT) continue;
      det.lastT = t;
      det.dirty = true;
      const rate = s.requests / (s.ms / 1000);
      for (const ev of det.d.observe({ t, rate })) events.push(ev);
      const drop = det.d.activeDrop;
      this.o.metrics.trafficDrop.set({ service: svc.name, host }, drop ? 1 : 0);
      const e = det.d.expectation(t);
      if (e.basis !== 'none') this.o.metrics.trafficExpected.set({ service: svc.name, host }, e.rate);
    }
    if (events.length > 0) {
      await this.o.store.monitoring.insertEvents(
        events.map((ev) => {
          const d = this.detectors.get(ev.series) as Detector;
          return {
            at: new Date(ev.at).toISOString(),
            kind: ev.kind === 'traffic-drop' ? 'traffic.drop' : 'traffic.recovered',
            subject: `service:${d.service}`,
            data: {
              service: d.service,
              host: d.host,
              source: d.source,
              observed: round(ev.observed),
              expected: round(ev.expected),
              dropShare: round(ev.dropShare),
              since: new Date(ev.since).toISOString(),
              description: describe(ev),
            },
          };
        }),
      );
      this.o.onEvents?.();
      for (const ev of events) this.log({ series: ev.series, kind: ev.kind }, describe(ev));
      await this.save(true).catch(() => {});
    }
    return { accepted: accepted.length, duplicates, events };
  }

  private detector(svc: ServiceConfig, host: string, source: TrafficSourceKind): Detector {
    const series = `${svc.name}@${host}`;
    const drop = svc.traffic?.drop;
    const config: Partial<TrafficDropConfig> = drop
      ? { share: drop.share, forMs: drop.forMs, floor: drop.floor, slotMs: drop.slotMs }
      : {};
    const have = this.detectors.get(series);
    if (have && have.source === source && sameConfig(have.d.config, config)) return have;
    const saved = this.restored?.get(series);
    this.restored?.delete(series);
    let d: TrafficDropDetector | undefined;
    if (!have && saved && saved.config?.slotMs === config.slotMs && (saved as { source?: string }).source === source) {
      try {
        d = TrafficDropDetector.fromJSON(saved.state, config);
      } catch (e) {
        this.log({ series, err: (e as Error).message }, 'a saved traffic detector could not be read: starting anew');
      }
    }
    // A changed source or slot length starts the history anew (its slots would not compare); other settings keep it.
    if (!d && have && have.source === source && have.d.config.slotMs === config.slotMs) {
      d = TrafficDropDetector.fromJSON(have.d.toJSON(), config);
    }
    const det: Detector = {
      series,
      service: svc.name,
      host,
      source,
      d: d ?? new TrafficDropDetector(series, config),
      lastT: d?.toJSON().lastT ?? null,
      dirty: true,
    };
    this.detectors.set(series, det);
    return det;
  }

  private async save(all = false): Promise<void> {
    const now = this.nowMs();
    if (!all && now - this.lastSave < SAVE_EVERY_MS / 2) return;
    this.lastSave = now;
    const rows = [...this.detectors.values()]
      .filter((d) => d.dirty)
      .map((d) => {
        d.dirty = false;
        return { series: d.series, state: { source: d.source, config: configOf(d.d.config), state: d.d.toJSON() } };
      });
    await this.o.store.traffic.saveDetectors(rows, now);
  }

  /** Rate now vs expected, per service and host, and per service (summed). */
  async now(service?: string): Promise<TrafficNow[]> {
    const config = this.o.config.current();
    const nowMs = this.nowMs();
    const out: TrafficNow[] = [];
    for (const svc of config.services) {
      if (!svc.traffic || (service !== undefined && svc.name !== service)) continue;
      const rows = await this.o.store.traffic.points({
        service: svc.name,
        resolution: 10,
        from: Math.ceil((nowMs - 60_000) / 1000 / 10) * 10,
        to: Math.floor(nowMs / 1000),
      });
      const hosts = [...new Set([...svc.hosts, ...(svc.traffic.haproxy ? [svc.traffic.haproxy.host] : [])])];
      const perHost: TrafficNow[] = [];
      for (const host of hosts) {
        const source = sourcesFor(svc, host)[0];
        if (!source) continue;
        const mine = rows.filter((r) => r.host === host && r.source === source);
        const det = this.detectors.get(`${svc.name}@${host}`);
        const e = det && det.lastT !== null ? det.d.expectation(det.lastT) : undefined;
        const drop = det?.d.activeDrop ?? null;
        // No point in the last minute: the agent is silent or the source gives nothing (not a drop by itself).
        const state = drop ? 'drop' : mine.length > 0 ? 'normal' : 'no-data';
        perHost.push({
          service: svc.name,
          host,
          source,
          rate: rateOf(mine),
          // During a long drop the recent baseline runs out (slots under a drop are not remembered): the drop's
          // own expectation stands in.
          expected: e && e.basis !== 'none' ? round(e.rate) : drop ? round(det?.d.toJSON().drop?.expected ?? 0) : null,
          basis: e?.basis ?? 'none',
          state,
          ...(drop
            ? {
                drop: {
                  since: new Date(drop.since).toISOString(),
                  dropShare: round(drop.dropShare),
                  description: `~${Math.round(drop.dropShare * 100)}% below expected since ${new Date(drop.since).toISOString()}`,
                },
              }
            : {}),
          ...(det?.lastT != null ? { lastPoint: new Date(det.lastT).toISOString() } : {}),
        });
      }
      // The service: the hosts' requests added (the load balancer's haproxy series counts the same requests again,
      // so it is left out of the sum when the backends measure their own).
      const backends = perHost.filter((p) => svc.hosts.includes(p.host as string));
      const summed = backends.length > 0 ? backends : perHost;
      const rates = summed.map((p) => p.rate).filter((r): r is number => r !== null);
      const expected = summed.map((p) => p.expected).filter((r): r is number => r !== null);
      const dropping = summed.filter((p) => p.state === 'drop');
      out.push({
        service: svc.name,
        rate: rates.length ? round(rates.reduce((a, b) => a + b, 0)) : null,
        expected:
          expected.length === summed.length && expected.length > 0 ? round(expected.reduce((a, b) => a + b, 0)) : null,
        basis: summed[0]?.basis ?? 'none',
        state: dropping.length > 0 ? 'drop' : rates.length > 0 ? 'normal' : 'no-data',
        ...(dropping[0]?.drop ? { drop: dropping[0].drop } : {}),
      });
      out.push(...perHost);
    }
    return out;
  }

  /**
   * A service's observed and expected rates over [from, to] (epoch ms) for an incident's impact (issue 16 §4): the
   * rate series summed over its backends, and what their detectors expect of each bucket now (the same baseline the
   * drop was declared against; null where it has none).
   */
  async impactSeries(service: string, fromMs: number, toMs: number): Promise<ServiceSeries> {
    const svc = this.o.config.current().services.find((s) => s.name === service);
    if (!svc?.traffic) return { service, points: [] };
    const res = impactResolution(fromMs, this.nowMs());
    const observed = await this.series(service, res, fromMs, toMs);
    const backends = svc.hosts.filter((h) => sourcesFor(svc, h).length > 0);
    const dets = backends.map((h) => this.detectors.get(`${svc.name}@${h}`));
    const points: ImpactPoint[] = observed.map((p) => {
      const t = Date.parse(p.t);
      let expected: number | null = 0;
      for (const d of dets) {
        const e = d?.d.expectation(t + (res * 1000) / 2);
        if (!e || e.basis === 'none' || expected === null) expected = null;
        else expected += e.rate;
      }
      return { t, ms: res * 1000, observed: p.rate, expected: dets.length > 0 ? expected : null };
    });
    return { service, points };
  }

  /** A service's rate series at one resolution over [from, to] (epoch ms), summed over its hosts' best sources. */
  async series(
    service: string,
    resolution: TrafficResolution,
    fromMs: number,
    toMs: number,
    host?: string,
  ): Promise<TrafficSeriesPoint[]> {
    const svc = this.o.config.current().services.find((s) => s.name === service);
    if (!svc) return [];
    const from = Math.floor(fromMs / 1000 / resolution) * resolution;
    const to = Math.floor(toMs / 1000);
    const rows = await this.o.store.traffic.points({ service, resolution, from, to, host });
    const backends = svc.hosts.filter((h) => sourcesFor(svc, h).length > 0);
    const wanted = (r: TrafficRow) =>
      sourcesFor(svc, r.host)[0] === r.source &&
      (host !== undefined || backends.length === 0 || backends.includes(r.host));
    const byBucket = new Map<number, TrafficRow[]>();
    for (const r of rows) {
      if (!wanted(r)) continue;
      const b = byBucket.get(r.bucket);
      if (b) b.push(r);
      else byBucket.set(r.bucket, [r]);
    }
    const out: TrafficSeriesPoint[] = [];
    for (let b = from; b <= to; b += resolution) {
      const rs = byBucket.get(b) ?? [];
      out.push({
        t: new Date(b * 1000).toISOString(),
        rate: rs.length
          ? round(rs.reduce((a, r) => a + (r.coveredMs > 0 ? r.requests / (r.coveredMs / 1000) : 0), 0))
          : null,
        requests: rs.reduce((a, r) => a + r.requests, 0),
        errors: rs.reduce((a, r) => a + r.errors, 0),
      });
    }
    return out;
  }

  /**
   * The expected band of each point of a series (GET /traffic/{service}, the dashboard's chart): what the detectors
   * of the series' hosts expect of the point's time (its bucket's middle), summed over the hosts, with the band they
   * judge a point against (src/monitor/traffic-drop.ts expectedBand: below `lower` a point is low). Null where a host
   * has no baseline for that time (not enough history, or older than the history it keeps). It is the detectors'
   * baseline as it is now, read for past times: the recent level and forgotten slots (those under a drop) are
   * today's, which is what the detector would judge those times against now.
   */
  band(
    service: string,
    points: readonly TrafficSeriesPoint[],
    resolution: TrafficResolution,
    host?: string,
  ): ({ expected: number; lower: number; upper: number } | null)[] {
    const svc = this.o.config.current().services.find((s) => s.name === service);
    if (!svc?.traffic) return points.map(() => null);
    const backends = svc.hosts.filter((h) => sourcesFor(svc, h).length > 0);
    const hosts =
      host !== undefined
        ? [host]
        : backends.length > 0
          ? backends
          : svc.traffic.haproxy
            ? [svc.traffic.haproxy.host]
            : [];
    const dets = hosts.map((h) => this.detectors.get(`${svc.name}@${h}`));
    if (dets.length === 0) return points.map(() => null);
    return points.map((p) => {
      const t = Date.parse(p.t) + (resolution * 1000) / 2;
      let expected = 0;
      let lower = 0;
      let upper = 0;
      for (const det of dets) {
        if (!det) return null;
        let e = det.d.expectation(t);
        // During a long drop the recent baseline runs out (slots under a drop are not remembered): the rate the drop
        // was declared against stands in, without a spread, as in now().
        const drop = det.d.activeDrop;
        if (e.basis === 'none' && drop && t >= drop.since) {
          e = { rate: drop.expected, sigma: 0, basis: 'recent', samples: 0, level: 1 };
        }
        if (e.basis === 'none') return null;
        const b = expectedBand(e, det.d.config);
        expected += e.rate;
        lower += b.lower;
        upper += b.upper;
      }
      return { expected: round(expected), lower: round(lower), upper: round(upper) };
    });
  }
}

/** Which resolution covers a past interval: 10 s points while they are kept (48 h), else 1 min ones. */
const impactResolution = (fromMs: number, nowMs: number): TrafficResolution =>
  nowMs - fromMs < 47 * 3_600_000 ? 10 : 60;

/** A sample the agent should not have sent: the field, the problem and what would be valid. */
export class TrafficInputError extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
    readonly expected: string,
  ) {
    super(`${field}: ${problem}; expected ${expected}`);
  }
}

function rateOf(rows: readonly TrafficRow[]): number | null {
  const covered = rows.reduce((a, r) => a + r.coveredMs, 0);
  if (covered === 0) return null;
  return round(rows.reduce((a, r) => a + r.requests, 0) / (covered / 1000));
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function configOf(c: TrafficDropConfig): Partial<TrafficDropConfig> {
  return { share: c.share, forMs: c.forMs, floor: c.floor, slotMs: c.slotMs };
}

function sameConfig(a: TrafficDropConfig, b: Partial<TrafficDropConfig>): boolean {
  return (
    a.share === (b.share ?? a.share) &&
    a.forMs === (b.forMs ?? a.forMs) &&
    a.floor === (b.floor ?? a.floor) &&
    a.slotMs === (b.slotMs ?? a.slotMs)
  );
}
