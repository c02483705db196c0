/**
 * Monitoring in the server (issue 14): the server's own vantage point (a scheduler running the probers on the
 * monitors this replica holds a lease on), the results agents and probes send in, the pure state machines of
 * src/monitor/state.ts over all of them, and what comes out: states kept in the store, events on every change,
 * rollups, Prometheus gauges, and a diagnosis that asks the engine why a host's firewall drops the probe.
 *
 * Time comes from `now` (tests pass a clock); the only timers are the scheduler's and the flush/lease loop.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DEFAULT_SILENT_INTERVALS, type Reporter, silentReporters } from '../alerting/silent.js';
import { DEFAULT_TLS_EXPIRY, type TlsExpiryLevel, tlsExpiryLevel } from '../alerting/tls-expiry.js';
import type { HostConfig, RampartConfig } from '../config/types.js';
import type { InputFormat, Packet } from '../firewall/model.js';
import { parseRuleset } from '../firewall/parse.js';
import { describeDecider } from '../firewall/render-trace.js';
import { trace } from '../firewall/tracer.js';
import { probe } from '../monitor/probers.js';
import { RollupBuffer } from '../monitor/rollup.js';
import { jitter, Scheduler, type Task } from '../monitor/scheduler.js';
import { applyResult, monitorVerdict, serviceVerdict, type VantageState } from '../monitor/state.js';
import type { Assignment, Check, Monitor, MonitorState, ProbeResult, Vantage } from '../monitor/types.js';

export type { Assignment };

import type { MonitorEvent, StoredMonitorState } from '../store/monitor-store.js';
import type { Store } from '../store/types.js';
import type { ServerMetrics } from './metrics.js';
import type { ConfigHolder } from './route.js';

/** Results kept in memory per monitor, written to the store when its state changes (the raw "around a change"). */
const RING = 12;
/** Results written after a change as well (the other side of "around"). */
const AFTER = 6;
/** A re-check after a first failure runs this soon (or a quarter of the interval, if shorter). */
const RECHECK_MS = 1000;
/** The server's own probes' rollups are written this often (one upsert per monitor and bucket, not per result). */
const ROLLUP_EVERY_MS = 10_000;
/** Events are written this soon after they happen, together with the others of the moment. */
const EVENT_DELAY_MS = 50;
/** Every state is written this often (last results, latencies), changed ones at every flush. */
const FULL_SAVE_MS = 60_000;
/** The inbox (results handed over by other replicas) is read this often, and leases renewed when due. */
const INBOX_MS = 500;
/** States other replicas wrote are read again this far back (a write may commit a while after its time). */
const MIRROR_OVERLAP_MS = 10_000;
/** Silent agents and probes are looked for this often. */
const SILENT_CHECK_MS = 5000;
/** A token's last use is recorded at most once a minute (Store.touchToken): an agent's interval, seen from here. */
const TOKEN_TOUCH_MS = 60_000;
/**
 * A probe's interval for silence is at least this: it sends its results every second, a probe may take its timeout,
 * and a request may be retried; monitors probed every second must not make a busy probe look silent after 3 s.
 */
const PROBE_INTERVAL_FLOOR_MS = 10_000;

export interface MonitorServiceOptions {
  readonly store: Store;
  readonly config: ConfigHolder;
  readonly now: () => Date;
  readonly metrics: ServerMetrics;
  /** Called after events are written (alerting follows them at once rather than at its next poll), with their kinds. */
  readonly onEvents?: ((kinds: readonly string[]) => void) | undefined;
  /**
   * Called when what a monitor or service shows changed, events or not: a vantage point's first result or verdict,
   * a monitor's state (UNKNOWN -> UP too) or reason, a state another replica wrote (the dashboard re-reads them).
   */
  readonly onView?: (() => void) | undefined;
  /** Probe from the server itself (default true). */
  readonly probeFromServer?: boolean;
  /** This replica's name in the leases (default host-pid-random). */
  readonly replica?: string;
  /**
   * Lease time to live (renewed every third of it). Default on PostgreSQL: three quarters of the shortest monitor
   * interval, within 2-15 s, so a dead replica's monitors are taken over within two intervals; on SQLite 15 s.
   */
  readonly leaseTtlMs?: number;
  /** How often rollups, states and raw results are written (default 2 s). */
  readonly flushMs?: number;
  readonly log?: (obj: Record<string, unknown>, msg: string) => void;
}

export interface Diagnosis {
  /** One line: `answers on web1's loopback, unreachable through its firewall from server, probe:eu`. */
  readonly summary: string;
  /** Where it fails: the host's firewall, the service itself, the load balancer, or not known. */
  readonly cause: 'firewall' | 'service' | 'load-balancer' | 'unknown';
  /** For a firewall: what the engine says about the host's live ruleset. */
  readonly firewall?: {
    readonly host: string;
    readonly verdict: string;
    readonly decidedBy: string;
    /** The live ruleset differs from the desired one (an out-of-band edit, or a change not yet applied). */
    readonly drifted: boolean | null;
    readonly driftSummary?: string;
    readonly reportedAt: string;
  };
}

interface Runtime {
  monitor: Monitor;
  vantages: Record<Vantage, VantageState>;
  state: MonitorState;
  since: number;
  reason: string;
  diagnosis?: Diagnosis;
  ring: ProbeResult[];
  /** Results still to write after the last change. */
  after: number;
  dirty: boolean;
}

export interface MonitorView {
  readonly name: string;
  readonly service?: string;
  readonly host?: string;
  readonly target: Monitor['target'];
  readonly check: string;
  readonly state: MonitorState;
  readonly since: string;
  readonly reason: string;
  readonly vantages: Readonly<
    Record<
      Vantage,
      {
        readonly state: VantageState['state'];
        readonly lastAt: string;
        readonly ok: boolean;
        readonly ms?: number;
        readonly error?: string;
        readonly inside?: boolean;
      }
    >
  >;
  readonly diagnosis?: Diagnosis;
}

export interface ServiceView {
  readonly name: string;
  readonly state: MonitorState;
  readonly reason: string;
  readonly healthy: number;
  readonly backends: number;
}

/** A check in a few words: `http GET http://192.0.2.11:80/healthz`, `tcp 192.0.2.11:443`. */
export function describeCheck(c: Check): string {
  switch (c.kind) {
    case 'http':
      return `http ${c.method} ${c.url}`;
    case 'tcp':
      return `tcp ${c.host.includes(':') ? `[${c.host}]` : c.host}:${c.port}`;
    case 'tls':
      return `tls ${c.host}:${c.port}`;
    case 'dns':
      return `dns ${c.type} ${c.name}`;
  }
}

/** The destination address and port a check connects to (for the engine's trace). */
function destinationOf(c: Check): { address: string; port: number } | undefined {
  if (c.kind === 'tcp' || c.kind === 'tls') return { address: c.host, port: c.port };
  if (c.kind === 'http') {
    try {
      const u = new URL(c.url);
      const port = u.port !== '' ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
      return { address: u.hostname.replace(/^\[|\]$/g, ''), port };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The same check against another address (the inside view: the host's own loopback). */
function withAddress(c: Check, address: string): Check {
  if (c.kind === 'tcp' || c.kind === 'tls') return { ...c, host: address };
  if (c.kind === 'http') {
    const u = new URL(c.url);
    u.hostname = address.includes(':') ? `[${address}]` : address;
    return { ...c, url: u.toString() };
  }
  return c;
}

export class MonitorService {
  private readonly runtimes = new Map<string, Runtime>();
  /** Rollups of the server's own probes: written every ROLLUP_EVERY_MS (a crash loses at most that much of them). */
  private readonly rollups = new RollupBuffer();
  /** Rollups of results agents and probes sent: written before their batch is acknowledged. */
  private readonly ingested = new RollupBuffer();
  private lastRollupWrite = 0;
  private lastFullSave = 0;
  private forceRollups = false;
  private readonly rawOut: ProbeResult[] = [];
  private readonly eventsOut: Omit<MonitorEvent, 'id'>[] = [];
  private readonly serviceStates = new Map<string, MonitorState>();
  private readonly scheduler: Scheduler<Monitor>;
  private readonly replica: string;
  private ttl: number;
  /** The monitors this replica holds the lease of: it alone evaluates them (and probes them from the server). */
  private held = new Set<string>();
  /** Leases were taken once: monitors held later are take-overs, probed soon rather than at their slot. */
  private leasedOnce = false;
  /** Inbox entries applied, deleted with the next save of the states they changed. */
  private readonly inboxDone = new Set<number>();
  /**
   * Per vantage point and sender (one run of a probe or agent): the sequence number after the last result taken. A
   * batch whose answer was lost (a timeout while the server was slow, a request a closed socket delivered late after
   * a cut) is sent again; what was taken already is skipped, so nothing counts twice.
   */
  private readonly taken = new Map<string, { next: number; seenAt: number }>();
  private inboxTimer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private lastMirror = 0;
  private configSeen: RampartConfig | undefined;
  private loop: NodeJS.Timeout | undefined;
  private lastLease = 0;
  private lastPrune = 0;
  private flushing: Promise<void> | undefined;
  private started = false;
  private readonly log: (obj: Record<string, unknown>, msg: string) => void;

  constructor(private readonly o: MonitorServiceOptions) {
    this.replica = o.replica ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.ttl = o.leaseTtlMs ?? 15_000;
    this.log = o.log ?? (() => {});
    this.scheduler = new Scheduler<Monitor>({
      now: () => this.o.now().getTime(),
      concurrency: 256,
      run: (task) => this.runServerProbe(task),
    });
  }

  private now(): number {
    return this.o.now().getTime();
  }

  /** Loads the kept states, then starts the server's probes and the flush loop. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.sync();
    this.lastMirror = this.now();
    for (const s of await this.o.store.monitoring.loadStates()) this.adopt(s);
    for (const rt of this.runtimes.values()) this.updateGauges(rt);
    // The diagnosis reads each host's live ruleset: start from the last reports a previous process kept.
    for (const h of this.o.config.current().hosts) {
      const r = await this.o.store.getHostReport(h.name).catch(() => undefined);
      const report = r?.report as { at?: string; live?: { format: InputFormat; text: string } } | undefined;
      if (r && report?.live) {
        this.noteReport(
          h.name,
          report.at ?? r.at,
          report.live,
          r.drift as { inSync: boolean; summary?: string } | null,
        );
      }
    }
    // Leases decide who evaluates a monitor (and who probes it from the server, when the server probes at all).
    await this.renewLeases();
    if (this.o.probeFromServer !== false) this.scheduler.start();
    const inbox = () => {
      this.inboxTimer = setTimeout(() => {
        void this.fastTick().finally(() => {
          if (this.started) inbox();
        });
      }, INBOX_MS);
      this.inboxTimer.unref?.();
    };
    inbox();
    const every = this.o.flushMs ?? 2000;
    const tick = () => {
      this.loop = setTimeout(() => {
        void this.tick().finally(() => {
          if (this.started) tick();
        });
      }, every);
      this.loop.unref?.();
    };
    tick();
  }

  /** Stops probing, writes what is pending, gives the leases back. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    if (this.loop) clearTimeout(this.loop);
    if (this.inboxTimer) clearTimeout(this.inboxTimer);
    if (this.eventTimer) clearTimeout(this.eventTimer);
    await this.draining;
    this.scheduler.stop();
    await this.flush(true).catch(() => {});
    await this.o.store.monitoring.releaseLeases(this.replica).catch(() => {});
  }

  /** One pass of the loop: config changes, staleness, leases, other replicas' states, writes, retention. */
  async tick(): Promise<void> {
    this.sync();
    const now = this.now();
    for (const rt of this.runtimes.values()) if (this.held.has(rt.monitor.name)) this.evaluate(rt, now);
    if (now - this.lastLease >= this.ttl / 3) await this.renewLeases();
    await this.mirror().catch((e: Error) => this.log({ err: e.message }, "other replicas' states could not be read"));
    await this.refreshReports().catch((e: Error) => this.log({ err: e.message }, 'host reports could not be read'));
    if (now - this.lastSilentCheck >= SILENT_CHECK_MS) {
      this.lastSilentCheck = now;
      await this.checkSilent(now).catch((e: Error) => this.log({ err: e.message }, 'silent reporters not checked'));
      await this.checkTls(now).catch((e: Error) => this.log({ err: e.message }, 'certificates not checked'));
    }
    await this.flush();
    if (now - this.lastPrune >= 3_600_000) {
      this.lastPrune = now;
      await this.o.store.monitoring.prune(now).catch((e: Error) => this.log({ err: e.message }, 'prune failed'));
      await this.o.store.monitoring
        .packMinutes(now)
        .catch((e: Error) => this.log({ err: e.message }, 'packing minute rollups failed'));
    }
  }

  private lastSilentCheck = 0;
  /** Vantage points silent now (undefined until read back from the firing alerts at the first check). */
  private silent: Set<string> | undefined;

  /**
   * Agents and probes silent for more than `alerting.silent_intervals` of their intervals (default 3), as
   * `vantage.silent` / `vantage.back` events (alerting's AgentSilent / ProbeSilent). The reporters are the live agent
   * and probe tokens; last seen is the newer of the token's last use (recorded at most once a minute: an agent's
   * interval counts as that minute) and the newest result the vantage point sent (a probe's interval is its
   * monitors' shortest, at least PROBE_INTERVAL_FLOOR_MS).
   */
  private async checkSilent(now: number): Promise<void> {
    if (!this.silent) {
      const firing = await this.o.store.alerting.list({ state: 'firing' });
      this.silent = new Set(
        firing.flatMap((a) =>
          a.labels.alertname === 'AgentSilent' && a.labels.host
            ? [`agent:${a.labels.host}`]
            : a.labels.alertname === 'ProbeSilent' && a.labels.probe
              ? [`probe:${a.labels.probe}`]
              : [],
        ),
      );
    }
    const seen = new Map<string, { lastAt: number; intervalMs: number }>();
    for (const rt of this.runtimes.values()) {
      for (const [vantage, v] of Object.entries(rt.vantages)) {
        if (v.lastAt === undefined) continue;
        const was = seen.get(vantage);
        seen.set(vantage, {
          lastAt: Math.max(was?.lastAt ?? 0, v.lastAt),
          intervalMs: Math.min(was?.intervalMs ?? Number.POSITIVE_INFINITY, rt.monitor.intervalMs),
        });
      }
    }
    const hosts = new Set(this.o.config.current().hosts.map((h) => h.name));
    const reporters: Reporter[] = [];
    for (const t of await this.o.store.listTokens()) {
      if (t.revokedAt !== null || (t.expiresAt && Date.parse(t.expiresAt) <= now)) continue;
      if (t.role !== 'agent' && t.role !== 'probe') continue;
      if (t.role === 'agent' && !hosts.has(t.name)) continue;
      const vantage = `${t.role}:${t.name}`;
      const results = seen.get(vantage);
      const used = t.lastUsedAt ? Date.parse(t.lastUsedAt) : undefined;
      const last = Math.max(used ?? 0, results?.lastAt ?? 0);
      reporters.push({
        vantage,
        lastSeenMs: last > 0 ? last : undefined,
        intervalMs:
          t.role === 'agent'
            ? TOKEN_TOUCH_MS
            : Math.max(PROBE_INTERVAL_FLOOR_MS, results?.intervalMs ?? TOKEN_TOUCH_MS),
      });
    }
    // One reporter per vantage point (several tokens may share a name): the one heard from last.
    const byVantage = new Map<string, Reporter>();
    for (const r of reporters) {
      const was = byVantage.get(r.vantage);
      if (!was || (r.lastSeenMs ?? 0) > (was.lastSeenMs ?? 0)) byVantage.set(r.vantage, r);
    }
    const intervals = this.o.config.current().alerting?.silentIntervals ?? DEFAULT_SILENT_INTERVALS;
    const step = silentReporters([...byVantage.values()], this.silent, now, intervals);
    this.silent = step.silent;
    for (const c of step.changes) {
      this.eventsOut.push({
        at: new Date(now).toISOString(),
        kind: c.to === 'silent' ? 'vantage.silent' : 'vantage.back',
        subject: `vantage:${c.vantage}`,
        data: {
          vantage: c.vantage,
          lastSeen: new Date(c.lastSeenMs).toISOString(),
          intervalMs: c.intervalMs,
          intervals,
          forMs: c.forMs,
        },
      });
    }
  }

  /** The level of each TLS monitor's certificate (undefined until read back from the firing alerts). */
  private tlsLevels: Map<string, TlsExpiryLevel> | undefined;

  /**
   * Certificates near their end (alerting's TlsCertificateExpiring): the newest result of each TLS monitor this
   * replica holds says the certificate's notAfter; a change of level is a `tls.expiring` or `tls.renewed` event.
   */
  private async checkTls(now: number): Promise<void> {
    if (!this.tlsLevels) {
      const firing = await this.o.store.alerting.list({ state: 'firing' });
      this.tlsLevels = new Map();
      for (const a of firing) {
        const m = a.labels.monitor;
        const sev = a.labels.severity;
        if (a.labels.alertname === 'TlsCertificateExpiring' && m && (sev === 'warning' || sev === 'critical'))
          this.tlsLevels.set(m, sev);
      }
    }
    const thresholds = this.o.config.current().alerting?.tlsExpiry ?? DEFAULT_TLS_EXPIRY;
    for (const rt of this.runtimes.values()) {
      if (rt.monitor.check.kind !== 'tls' || !this.held.has(rt.monitor.name)) continue;
      const last = [...rt.ring].reverse().find((r) => typeof r.detail?.validTo === 'string');
      const notAfter = last ? Date.parse(last.detail?.validTo as string) : Number.NaN;
      if (!last || !Number.isFinite(notAfter)) continue;
      const { level, daysLeft } = tlsExpiryLevel(notAfter, now, thresholds);
      const before = this.tlsLevels.get(rt.monitor.name) ?? 'ok';
      if (level === before) continue;
      this.tlsLevels.set(rt.monitor.name, level);
      const m = rt.monitor;
      this.eventsOut.push({
        at: new Date(now).toISOString(),
        kind: level === 'ok' ? 'tls.renewed' : 'tls.expiring',
        subject: `monitor:${m.name}`,
        data: {
          monitor: m.name,
          ...(m.service ? { service: m.service } : {}),
          ...(m.host ? { host: m.host } : {}),
          level,
          from: before,
          daysLeft,
          notAfter: new Date(notAfter).toISOString(),
          ...(typeof last.detail?.subject === 'string' ? { subject: last.detail.subject } : {}),
          ...(typeof last.detail?.issuer === 'string' ? { issuer: last.detail.issuer } : {}),
        },
      });
    }
  }

  /** Follows the config in force: new monitors start UNKNOWN, removed ones are forgotten. */
  private sync(): void {
    const config = this.o.config.current();
    if (config === this.configSeen) return;
    this.configSeen = config;
    const declared = new Map((config.monitors ?? []).map((m) => [m.name, m]));
    const removed: string[] = [];
    for (const name of this.runtimes.keys()) {
      if (!declared.has(name)) {
        this.runtimes.delete(name);
        removed.push(name);
        this.o.metrics.probeSuccess.remove({ monitor: name });
      }
    }
    if (removed.length > 0) void this.o.store.monitoring.deleteStates(removed).catch(() => {});
    for (const m of declared.values()) {
      const rt = this.runtimes.get(m.name);
      if (rt) rt.monitor = m;
      else {
        this.runtimes.set(m.name, {
          monitor: m,
          vantages: {},
          state: 'UNKNOWN',
          since: this.now(),
          reason: 'no results yet',
          ring: [],
          after: 0,
          dirty: true,
        });
      }
    }
    // SQLite has one replica: nobody to hand monitors over to, so the leases need not be short (each renewal of
    // 10,000 leases is some 90 ms of SQLite on this machine's cores).
    if (this.o.leaseTtlMs === undefined && this.o.store.kind === 'postgres') {
      const shortest = Math.min(...[...this.runtimes.values()].map((r) => r.monitor.intervalMs));
      this.ttl = Number.isFinite(shortest) ? Math.min(15_000, Math.max(2000, Math.round(shortest * 0.75))) : 15_000;
    }
    this.scheduleServer();
  }

  private scheduleServer(taken: ReadonlySet<string> = new Set()): void {
    const tasks: Task<Monitor>[] = [];
    const now = this.now();
    for (const rt of this.runtimes.values()) {
      const m = rt.monitor;
      if (m.from.includes('server') && this.held.has(m.name)) {
        // A monitor taken over from a replica that died runs soon (within half an interval, at most 2 s), not at
        // its slot an interval away: the take-over is what counts against "within two intervals".
        const soon = taken.has(m.name) ? { startAt: now + jitter(m.name, Math.min(m.intervalMs / 2, 2000)) } : {};
        tasks.push({ key: m.name, intervalMs: m.intervalMs, payload: m, ...soon });
      }
    }
    this.scheduler.set(tasks);
  }

  private async renewLeases(): Promise<void> {
    const now = this.now();
    this.lastLease = now;
    // Every monitor has one holder, its only evaluator; those probed `from: server` are probed by it as well.
    const names = [...this.runtimes.keys()];
    try {
      const held = await this.o.store.monitoring.acquireLeases(this.replica, names, this.ttl, now);
      const gained = new Set([...held].filter((m) => !this.held.has(m)));
      const changed = gained.size > 0 || held.size !== this.held.size;
      if (gained.size > 0 && this.leasedOnce) {
        // Taken over (or rebalanced): start from what the last holder wrote, not from this replica's mirror of it.
        try {
          for (const s of await this.o.store.monitoring.loadStates({ monitors: [...gained] })) this.adopt(s);
        } catch (e) {
          this.log({ err: (e as Error).message }, 'states of monitors taken over could not be read');
        }
        this.log({ replica: this.replica, monitors: gained.size, held: held.size }, 'monitors taken over');
      }
      this.held = held;
      if (changed) this.scheduleServer(this.leasedOnce ? gained : new Set());
      this.leasedOnce = true;
    } catch (e) {
      // Without the store this replica cannot know it still holds its leases: it stops probing until it can.
      this.log({ err: (e as Error).message }, 'monitor leases could not be renewed');
      if (this.held.size > 0) {
        this.held = new Set();
        this.scheduleServer();
      }
    }
  }

  /** Every INBOX_MS: leases when due, then the results other replicas handed over. */
  private async fastTick(): Promise<void> {
    if (this.now() - this.lastLease >= this.ttl / 3) await this.renewLeases();
    this.draining = this.drainInbox().catch((e: Error) =>
      this.log({ err: e.message }, 'the inbox of handed-over results could not be read'),
    );
    await this.draining;
  }

  /** Evaluates the results that reached other replicas for monitors this one holds. */
  private async drainInbox(): Promise<void> {
    if (this.held.size === 0) return;
    const entries = (await this.o.store.monitoring.takeInbox(this.replica, this.now())).filter(
      (e) => !this.inboxDone.has(e.id),
    );
    if (entries.length === 0) return;
    entries.sort((a, b) => a.result.at - b.result.at || a.id - b.id);
    for (const e of entries) {
      this.inboxDone.add(e.id);
      const r = e.result;
      const prev = this.runtimes.get(r.monitor)?.vantages[r.vantage];
      // Already in the state (applied by a holder that died before deleting it): not again.
      if (prev && r.at <= prev.lastAt) continue;
      this.accept(r, true);
    }
    await this.flush();
  }

  /** A state as stored (at start, by another replica, or by the last holder of a monitor taken over). */
  private adopt(s: StoredMonitorState): boolean {
    const rt = this.runtimes.get(s.monitor);
    if (!rt) return false;
    const changed = rt.state !== s.state;
    rt.state = s.state as MonitorState;
    rt.since = Date.parse(s.since);
    rt.reason = s.reason;
    rt.vantages = (s.vantages ?? {}) as Record<Vantage, VantageState>;
    if (s.diagnosis) rt.diagnosis = s.diagnosis as Diagnosis;
    else delete rt.diagnosis;
    for (const [vantage, v] of Object.entries(rt.vantages)) {
      if (v.lastAt === undefined) continue;
      this.o.metrics.probeSuccess.set({ monitor: s.monitor, vantage }, v.lastOk ? 1 : 0);
      if (v.lastMs !== undefined) this.o.metrics.probeDuration.set({ monitor: s.monitor, vantage }, v.lastMs / 1000);
    }
    return changed;
  }

  /** Follows the states the holders of the other monitors write (reads here answer from them). */
  private async mirror(): Promise<void> {
    if (this.held.size >= this.runtimes.size) return;
    const started = this.now();
    const rows = await this.o.store.monitoring.loadStates({
      updatedSince: new Date(this.lastMirror - MIRROR_OVERLAP_MS).toISOString(),
    });
    this.lastMirror = started;
    const services = new Set<string>();
    for (const s of rows) {
      if (this.held.has(s.monitor)) continue;
      const rt = this.runtimes.get(s.monitor);
      if (this.adopt(s) && rt) {
        this.o.onView?.();
        this.updateGauges(rt);
        if (rt.monitor.service) services.add(rt.monitor.service);
      }
    }
    for (const service of services) this.evaluateService(service, started);
  }

  /**
   * The live rulesets of hosts whose monitors this replica holds and that fail: an agent's report may have reached
   * another replica (the diagnosis reads it from the store then).
   */
  private async refreshReports(): Promise<void> {
    // One replica on SQLite: every report reaches this process (noteReport), nothing to read back.
    if (this.o.store.kind === 'sqlite') return;
    const hosts = new Set<string>();
    for (const rt of this.runtimes.values()) {
      if (!this.held.has(rt.monitor.name) || !(rt.state === 'DOWN' || rt.state === 'DEGRADED')) continue;
      if (rt.monitor.host) hosts.add(rt.monitor.host);
      else if (rt.monitor.service) {
        for (const s of this.o.config.current().services)
          if (s.name === rt.monitor.service) for (const h of s.hosts) hosts.add(h);
      }
    }
    for (const host of hosts) {
      const r = await this.o.store.getHostReport(host);
      const report = r?.report as { at?: string; live?: { format: InputFormat; text: string } } | undefined;
      if (!r || !report?.live) continue;
      const at = report.at ?? r.at;
      if (this.reports.get(host)?.at === at) continue;
      this.noteReport(host, at, report.live, r.drift as { inSync: boolean; summary?: string } | null);
    }
  }

  private async runServerProbe(task: Task<Monitor>): Promise<void> {
    const m = task.payload;
    const r = await probe(m.check, {
      monitor: m.name,
      vantage: 'server',
      timeoutMs: m.timeoutMs,
      now: () => this.now(),
      userAgent: `rampart-probe (server; replica ${this.replica})`,
    });
    const step = this.accept(r);
    if (step?.recheck) this.scheduler.recheck(m.name, Math.min(RECHECK_MS, m.intervalMs / 4));
  }

  /**
   * Results from an agent or a probe (their vantage is set by who sent them, never by the body). Those of monitors
   * another replica holds go to it through the store's inbox, written first: when this throws, nothing was counted
   * and the sender keeps the batch. The caller flushes before acknowledging (the rollups of the rest).
   */
  async ingest(
    vantage: Vantage,
    all: readonly ProbeResult[],
    from?: { readonly sender: string; readonly first: number },
  ): Promise<{ accepted: number; unknown: string[]; duplicates?: number }> {
    let results = all;
    let duplicates = 0;
    if (from) {
      const key = `${vantage}\u0000${from.sender}`;
      const now = this.now();
      const seen = this.taken.get(key);
      const skip = Math.max(0, Math.min(all.length, (seen?.next ?? 0) - from.first));
      duplicates = skip;
      results = all.slice(skip);
      this.taken.set(key, { next: Math.max(seen?.next ?? 0, from.first + all.length), seenAt: now });
      // Senders gone for a day are forgotten (a restarted probe is a new sender).
      if (this.taken.size > 1000) {
        for (const [k, v] of this.taken) if (now - v.seenAt > 86_400_000) this.taken.delete(k);
      }
    }
    const unknown = new Set<string>();
    const mine: ProbeResult[] = [];
    const theirs: ProbeResult[] = [];
    for (const r of results) {
      if (!this.runtimes.has(r.monitor)) unknown.add(r.monitor);
      else (this.held.has(r.monitor) ? mine : theirs).push({ ...r, vantage });
    }
    await this.o.store.monitoring.enqueue(theirs);
    for (const r of theirs) this.count(r);
    // In time order, so damping counts them as they happened (a probe's buffer may arrive late and in bulk).
    for (const r of mine.sort((a, b) => a.at - b.at)) this.accept(r);
    return { accepted: mine.length + theirs.length, unknown: [...unknown], ...(from ? { duplicates } : {}) };
  }

  /** A result counted in the rollups and the probe counter, once, by the replica that received it. */
  private count(r: ProbeResult): void {
    (r.vantage === 'server' ? this.rollups : this.ingested).add(r);
    // By vantage point (`server`, `agent:web1`, `probe:eu-west`): a few dozen series, and a probe's results
    // received can be checked against what it says it sent.
    this.o.metrics.probes.inc({ vantage: r.vantage, result: r.ok ? 'success' : 'failure' });
  }

  /** Applies a result to its monitor's state (this replica holds it); `counted` when another replica counted it. */
  private accept(r: ProbeResult, counted = false): { recheck: boolean } | undefined {
    const rt = this.runtimes.get(r.monitor);
    if (!rt) return undefined;
    if (!counted) this.count(r);
    rt.ring.push(r);
    if (rt.ring.length > RING) rt.ring.shift();
    if (rt.after > 0) {
      this.rawOut.push(r);
      rt.after--;
    }
    const prev = rt.vantages[r.vantage];
    // A result older than what this vantage point already said (a late batch) counts for rollups only.
    if (prev && r.at < prev.lastAt) return { recheck: false };
    const step = applyResult(prev, r, rt.monitor.failures);
    rt.vantages[r.vantage] = step.next;
    // Kept when what it means changes (a verdict, a streak); the rest (last latency) with the minutely save.
    if (step.changed || step.next.streak !== prev?.streak) rt.dirty = true;
    this.o.metrics.probeSuccess.set({ monitor: r.monitor, vantage: r.vantage }, r.ok ? 1 : 0);
    this.o.metrics.probeDuration.set({ monitor: r.monitor, vantage: r.vantage }, r.timings.totalMs / 1000);
    // A vantage point's first word that all is well is not news (10,000 monitors starting would be 10,000 events).
    const firstUp = (prev === undefined || prev.state === 'unknown') && step.next.state === 'up';
    // ... but open pages show it (the monitor's vantage points, UNKNOWN -> UP).
    if (step.changed) this.o.onView?.();
    if (step.changed && !firstUp) {
      this.emit({
        at: new Date(r.at).toISOString(),
        kind: 'monitor.vantage',
        subject: `monitor:${r.monitor}`,
        data: {
          monitor: r.monitor,
          vantage: r.vantage,
          from: prev?.state ?? 'unknown',
          to: step.next.state,
          ...(r.error ? { error: r.error } : {}),
          ...(r.inside ? { inside: true } : {}),
        },
      });
      this.keepAround(rt);
    }
    const stateBefore = rt.state;
    this.evaluate(rt, Math.max(this.now(), r.at));
    // A vantage point of a failing monitor changed its mind (the inside view turned down after the outside did):
    // the cause may read differently now, for this monitor and the public one of its service.
    if (step.changed && rt.state === stateBefore && (rt.state === 'DOWN' || rt.state === 'DEGRADED')) {
      this.rediagnose(rt);
      if (rt.monitor.target === 'direct' && rt.monitor.service) {
        for (const other of this.runtimes.values()) {
          if (
            other.monitor.service === rt.monitor.service &&
            other.monitor.target === 'public' &&
            (other.state === 'DOWN' || other.state === 'DEGRADED')
          ) {
            this.rediagnose(other);
          }
        }
      }
    }
    return { recheck: step.recheck };
  }

  /**
   * Queues an event and writes it within EVENT_DELAY_MS (with whatever else is pending): alerting reads events as
   * they come, and events that come together (a whole site going down) are written together.
   */
  private emit(e: Omit<MonitorEvent, 'id'>): void {
    this.eventsOut.push(e);
    if (!this.started || this.eventTimer) return;
    this.eventTimer = setTimeout(() => {
      this.eventTimer = undefined;
      void this.flush();
    }, EVENT_DELAY_MS);
    this.eventTimer.unref?.();
  }

  private eventTimer: NodeJS.Timeout | undefined;

  /** Writes the results around a change: the ring now, the next few as they come. */
  private keepAround(rt: Runtime): void {
    this.rawOut.push(...rt.ring);
    rt.ring = [];
    rt.after = AFTER;
  }

  /** Quorum over the vantage points; an event, a diagnosis and the service's state on a change. */
  private evaluate(rt: Runtime, now: number): void {
    const v = monitorVerdict(rt.monitor, rt.vantages, now);
    const reason = this.reasonOf(rt, v);
    if (v.state === rt.state) {
      if (reason !== rt.reason) {
        rt.reason = reason;
        rt.dirty = true;
        this.o.onView?.();
      }
      return;
    }
    const from = rt.state;
    rt.state = v.state;
    rt.since = now;
    rt.reason = reason;
    rt.dirty = true;
    this.o.onView?.();
    const diagnosis = v.state === 'DOWN' || v.state === 'DEGRADED' ? this.diagnose(rt) : undefined;
    if (diagnosis) rt.diagnosis = diagnosis;
    else delete rt.diagnosis;
    this.updateGauges(rt);
    if (rt.monitor.service) this.evaluateService(rt.monitor.service, now);
    // Monitoring starting (UNKNOWN -> UP) is not news; everything else is.
    if (from === 'UNKNOWN' && v.state === 'UP') return;
    this.emit({
      at: new Date(now).toISOString(),
      kind: 'monitor.state',
      subject: `monitor:${rt.monitor.name}`,
      data: {
        monitor: rt.monitor.name,
        ...(rt.monitor.service ? { service: rt.monitor.service } : {}),
        ...(rt.monitor.host ? { host: rt.monitor.host } : {}),
        from,
        to: v.state,
        reason,
        down: v.down,
        counted: v.counted,
        quorum: v.quorum,
        ...(diagnosis ? { diagnosis } : {}),
      },
    });
    this.log({ monitor: rt.monitor.name, from, to: v.state, reason }, 'monitor state changed');
  }

  private reasonOf(rt: Runtime, v: ReturnType<typeof monitorVerdict>): string {
    if (v.state === 'UNKNOWN') return 'no recent results';
    if (v.down.length === 0) return `up from ${v.counted} vantage point${v.counted === 1 ? '' : 's'}`;
    const errors = v.down.map((d) => `${d}: ${rt.vantages[d]?.lastError ?? 'failing'}`);
    return `down from ${v.down.length} of ${v.counted} (quorum ${v.quorum}): ${errors.join('; ')}`;
  }

  private evaluateService(service: string, now: number): void {
    const mine = [...this.runtimes.values()].filter((r) => r.monitor.service === service);
    const pub = mine.find((r) => r.monitor.target === 'public');
    const backends = mine
      .filter((r) => r.monitor.target === 'direct' && r.monitor.host)
      .map((r) => ({ host: r.monitor.host as string, state: r.state }));
    const sv = serviceVerdict(pub?.state, backends);
    const before = this.serviceStates.get(service) ?? 'UNKNOWN';
    if (sv.state === before) return;
    this.serviceStates.set(service, sv.state);
    if (before === 'UNKNOWN' && sv.state === 'UP') return;
    // One replica speaks for the service: the holder of its public monitor, else of its first backend's.
    const lead = pub ?? [...mine].sort((a, b) => a.monitor.name.localeCompare(b.monitor.name))[0];
    if (lead && !this.held.has(lead.monitor.name)) return;
    this.emit({
      at: new Date(now).toISOString(),
      kind: 'service.state',
      subject: `service:${service}`,
      data: { service, from: before, to: sv.state, reason: sv.reason, healthy: sv.healthy, backends: sv.backends },
    });
  }

  /**
   * Why a monitor fails, from what the vantage points say and the host's live ruleset: inside up and outside down
   * is the firewall (the engine names the rule or policy that drops the probe, and whether the host drifted);
   * inside down too is the service itself; a public address down while every backend answers is the load balancer.
   */
  private diagnose(rt: Runtime): Diagnosis | undefined {
    const m = rt.monitor;
    const config = this.o.config.current();
    const outsideDown = Object.entries(rt.vantages)
      .filter(([, s]) => !s.inside && s.state === 'down')
      .map(([n]) => n);
    if (m.target === 'public' && m.service) {
      const direct = [...this.runtimes.values()].filter(
        (r) => r.monitor.service === m.service && r.monitor.target === 'direct',
      );
      if (direct.length > 0 && direct.every((r) => r.state === 'UP')) {
        return {
          cause: 'load-balancer',
          summary: `every backend of ${m.service} answers directly; its public address does not (the load balancer or the path to it)`,
        };
      }
      const failing = direct.filter((r) => r.state === 'DOWN' || r.state === 'DEGRADED');
      const inner = failing.map((r) => r.diagnosis?.summary ?? `${r.monitor.name} ${r.state}`);
      return {
        cause: failing.every((r) => r.diagnosis?.cause === 'firewall') && failing.length > 0 ? 'firewall' : 'unknown',
        summary:
          failing.length > 0
            ? `${failing.length} of ${direct.length} backends fail: ${inner.join('; ')}`
            : `unreachable through its public address from ${outsideDown.join(', ')}`,
        ...(failing[0]?.diagnosis?.firewall ? { firewall: failing[0].diagnosis.firewall } : {}),
      };
    }
    if (m.target !== 'direct' || !m.host) return undefined;
    const host = m.host;
    const inside = Object.entries(rt.vantages).find(([, s]) => s.inside);
    if (inside && inside[1].state === 'down') {
      return {
        cause: 'service',
        summary: `fails on ${host}'s own loopback too (${inside[1].lastError ?? 'failing'}): the service itself is down`,
      };
    }
    const where = inside
      ? `answers on ${host}'s loopback, unreachable through its firewall from ${outsideDown.join(', ')}`
      : `unreachable from ${outsideDown.join(', ')} (no inside view: ${host}'s agent has not reported a loopback check)`;
    const firewall = this.engineSays(config, rt, host, outsideDown[0]);
    // The engine's word decides when there is a live ruleset; else an inside view that answers points at the
    // firewall (the one thing between loopback and the outside), and nothing at all points nowhere.
    const cause: Diagnosis['cause'] = firewall
      ? firewall.verdict === 'accept'
        ? 'unknown'
        : 'firewall'
      : inside
        ? 'firewall'
        : 'unknown';
    return {
      cause,
      summary: firewall ? `${where}; ${firewall.line}` : where,
      ...(firewall ? { firewall: firewall.detail } : {}),
    };
  }

  /** Traces the failing probe through the host's live ruleset (its agent's last report). */
  private engineSays(
    config: RampartConfig,
    rt: Runtime,
    host: string,
    vantage: string | undefined,
  ): { line: string; verdict: string; detail: NonNullable<Diagnosis['firewall']> } | undefined {
    const cached = this.reports.get(host);
    if (!cached) return undefined;
    const dest = destinationOf(rt.monitor.check);
    if (!dest) return undefined;
    const daddr = dest.address;
    const v6 = daddr.includes(':');
    const source = this.sourceOf(config, rt, vantage, v6);
    const packet: Packet = {
      family: v6 ? 'ipv6' : 'ipv4',
      saddr: source,
      daddr,
      l4proto: 6,
      sport: 40000,
      dport: dest.port,
    };
    try {
      const ruleset = parseRuleset(cached.text, `${host}:live`, { format: cached.format });
      const t = trace(ruleset, packet, { hook: 'input' });
      const decidedBy = describeDecider(t.decidedBy);
      const drifted = cached.drift === null ? null : !cached.drift.inSync;
      const driftText =
        drifted === true
          ? `; ${host}'s live ruleset has drifted from the desired one${cached.drift?.summary ? ` (${cached.drift.summary})` : ''}`
          : drifted === false
            ? `; ${host}'s live ruleset is the desired one`
            : '';
      return {
        verdict: t.verdict,
        line:
          t.verdict === 'accept'
            ? `the engine says ${host}'s live ruleset accepts tcp/${dest.port} from ${source}${driftText}`
            : `the engine says ${host}'s live ruleset ${t.verdict === 'reject' ? 'rejects' : 'drops'} it: ${decidedBy}${driftText}`,
        detail: {
          host,
          verdict: t.verdict,
          decidedBy,
          drifted,
          ...(cached.drift?.summary ? { driftSummary: cached.drift.summary } : {}),
          reportedAt: cached.at,
        },
      };
    } catch (e) {
      this.log({ host, err: (e as Error).message }, 'diagnosis could not read the live ruleset');
      return undefined;
    }
  }

  private sourceOf(config: RampartConfig, rt: Runtime, vantage: string | undefined, v6: boolean): string {
    const last = [...rt.ring].reverse().find((r) => r.vantage === vantage && typeof r.detail?.source === 'string');
    if (last) return last.detail?.source as string;
    if (vantage?.startsWith('agent:')) {
      const peer: HostConfig | undefined = config.hosts.find((x) => x.name === vantage.slice('agent:'.length));
      const a = peer?.addresses.find((x) => x.includes(':') === v6);
      if (a) return a;
    }
    return v6 ? '2001:db8:ffff::1' : '203.0.113.1';
  }

  /** The live rulesets agents reported (kept by the report route), for the diagnosis. */
  private readonly reports = new Map<
    string,
    {
      at: string;
      format: InputFormat;
      text: string;
      drift: { inSync: boolean; summary?: string } | null;
    }
  >();

  /** Called with every agent report the server stores. */
  noteReport(
    host: string,
    at: string,
    live: { readonly format: InputFormat; readonly text: string },
    drift: { readonly inSync: boolean; readonly summary?: string } | null,
  ): void {
    const before = this.reports.get(host);
    this.reports.set(host, {
      at,
      format: live.format,
      text: live.text,
      drift: drift ? { inSync: drift.inSync, ...(drift.summary ? { summary: drift.summary } : {}) } : null,
    });
    if (before && before.text === live.text && before.drift?.inSync === drift?.inSync) return;
    // The live ruleset changed (often just after the probes saw the outage): what failing monitors of the host's
    // services say about the cause is asked again, backends first (the public monitors' diagnosis quotes them).
    const services = new Set(
      this.o.config
        .current()
        .services.filter((s) => s.hosts.includes(host))
        .map((s) => s.name),
    );
    const failing = [...this.runtimes.values()]
      .filter(
        (r) =>
          this.held.has(r.monitor.name) &&
          (r.state === 'DOWN' || r.state === 'DEGRADED') &&
          r.monitor.service &&
          services.has(r.monitor.service),
      )
      .sort((a, b) => (a.monitor.target === 'direct' ? 0 : 1) - (b.monitor.target === 'direct' ? 0 : 1));
    for (const rt of failing) this.rediagnose(rt);
  }

  /** A new diagnosis for a failing monitor; an event when it says something new. */
  private rediagnose(rt: Runtime): void {
    const d = this.diagnose(rt);
    if (!d || d.summary === rt.diagnosis?.summary) return;
    rt.diagnosis = d;
    rt.dirty = true;
    this.emit({
      at: new Date(this.now()).toISOString(),
      kind: 'monitor.diagnosis',
      subject: `monitor:${rt.monitor.name}`,
      data: {
        monitor: rt.monitor.name,
        ...(rt.monitor.service ? { service: rt.monitor.service } : {}),
        ...(rt.monitor.host ? { host: rt.monitor.host } : {}),
        state: rt.state,
        diagnosis: d,
      },
    });
  }

  private updateGauges(rt: Runtime): void {
    for (const s of ['UP', 'DEGRADED', 'DOWN', 'UNKNOWN'] as const) {
      this.o.metrics.monitorState.set({ monitor: rt.monitor.name, state: s }, rt.state === s ? 1 : 0);
    }
  }

  /** Writes rollups, raw results, events and changed states; what fails stays queued for the next pass. */
  flush(all = false): Promise<void> {
    if (all) this.forceRollups = true;
    if (this.flushing) {
      // One write at a time; what arrived meanwhile goes in one more write right after it.
      this.again ??= this.flushing.then(() => {
        this.again = undefined;
        return this.flush();
      });
      return this.again;
    }
    this.flushing = this.write().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private again: Promise<void> | undefined;

  private async write(): Promise<void> {
    const store = this.o.store.monitoring;
    const events = this.eventsOut.splice(0);
    if (events.length > 0) {
      try {
        await store.insertEvents(events);
        this.o.onEvents?.([...new Set(events.map((e) => e.kind))]);
      } catch (e) {
        this.eventsOut.unshift(...events);
        this.log({ err: (e as Error).message }, 'monitor events could not be written; kept for the next try');
      }
    }
    const rows = this.ingested.drain();
    const now = this.now();
    if (this.forceRollups || now - this.lastRollupWrite >= ROLLUP_EVERY_MS) {
      this.forceRollups = false;
      this.lastRollupWrite = now;
      rows.push(...this.rollups.drain());
    }
    try {
      await store.addRollups(rows);
    } catch (e) {
      // back into the buffer that is written first: nothing is counted twice, nothing lost
      this.ingested.restore(rows);
      this.log({ err: (e as Error).message }, 'probe rollups could not be written; kept for the next try');
    }
    const raw = this.rawOut.splice(0);
    try {
      await store.insertResults(raw);
    } catch {
      if (this.rawOut.length < 10_000) this.rawOut.unshift(...raw);
    }
    const all = now - this.lastFullSave >= FULL_SAVE_MS;
    if (all) this.lastFullSave = now;
    // Only the holder writes a monitor's state (the others show what it wrote).
    const dirty = [...this.runtimes.values()].filter((r) => (r.dirty || all) && this.held.has(r.monitor.name));
    const states: StoredMonitorState[] = dirty.map((r) => ({
      monitor: r.monitor.name,
      state: r.state,
      since: new Date(r.since).toISOString(),
      updatedAt: new Date(this.now()).toISOString(),
      reason: r.reason,
      vantages: r.vantages,
      ...(r.diagnosis ? { diagnosis: r.diagnosis } : {}),
    }));
    const done = [...this.inboxDone];
    try {
      await store.saveStates(states, done);
      for (const r of dirty) r.dirty = false;
      for (const id of done) this.inboxDone.delete(id);
    } catch (e) {
      this.log({ err: (e as Error).message }, 'monitor states could not be written; kept for the next try');
    }
  }

  /** What an agent or a probe is asked to probe. */
  assignments(who: { readonly kind: 'agent'; readonly host: string } | { readonly kind: 'probe' }): Assignment[] {
    this.sync();
    const config = this.o.config.current();
    const out: Assignment[] = [];
    for (const rt of this.runtimes.values()) {
      const m = rt.monitor;
      const base = { monitor: m.name, intervalMs: m.intervalMs, timeoutMs: m.timeoutMs, failures: m.failures };
      if (who.kind === 'probe') {
        if (m.from.includes('probes')) out.push({ ...base, check: m.check });
        continue;
      }
      if (!m.from.includes('agents') || m.target !== 'direct' || !m.host) continue;
      if (m.host === who.host) {
        // The inside view: the host probes its own service on loopback, past its own firewall's input hook.
        const dest = destinationOf(m.check);
        const loop = dest?.address.includes(':') ? '::1' : '127.0.0.1';
        out.push({ ...base, check: withAddress(m.check, loop), address: loop, inside: true });
        continue;
      }
      // A peer in the same service probes it through its firewall (the load balancer's network sees it so).
      const service = config.services.find((s) => s.name === m.service);
      if (service?.hosts.includes(who.host)) out.push({ ...base, check: m.check });
    }
    return out;
  }

  list(): MonitorView[] {
    this.sync();
    return [...this.runtimes.values()].map((rt) => this.view(rt));
  }

  get(name: string): MonitorView | undefined {
    this.sync();
    const rt = this.runtimes.get(name);
    return rt && this.view(rt);
  }

  services(): ServiceView[] {
    const names = new Set([...this.runtimes.values()].flatMap((r) => (r.monitor.service ? [r.monitor.service] : [])));
    return [...names].map((service) => {
      const mine = [...this.runtimes.values()].filter((r) => r.monitor.service === service);
      const pub = mine.find((r) => r.monitor.target === 'public');
      const sv = serviceVerdict(
        pub?.state,
        mine
          .filter((r) => r.monitor.target === 'direct' && r.monitor.host)
          .map((r) => ({ host: r.monitor.host as string, state: r.state })),
      );
      return { name: service, state: sv.state, reason: sv.reason, healthy: sv.healthy, backends: sv.backends };
    });
  }

  private view(rt: Runtime): MonitorView {
    const m = rt.monitor;
    const vantages: Record<string, MonitorView['vantages'][string]> = {};
    for (const [name, s] of Object.entries(rt.vantages)) {
      vantages[name] = {
        state: s.state,
        lastAt: new Date(s.lastAt).toISOString(),
        ok: s.lastOk,
        ...(s.lastMs !== undefined ? { ms: Math.round(s.lastMs * 10) / 10 } : {}),
        ...(s.lastError !== undefined ? { error: s.lastError } : {}),
        ...(s.inside ? { inside: true } : {}),
      };
    }
    return {
      name: m.name,
      ...(m.service ? { service: m.service } : {}),
      ...(m.host ? { host: m.host } : {}),
      target: m.target,
      check: describeCheck(m.check),
      state: rt.state,
      since: new Date(rt.since).toISOString(),
      reason: rt.reason,
      vantages,
      ...(rt.diagnosis ? { diagnosis: rt.diagnosis } : {}),
    };
  }

  /** For tests and the lab: the replica name and the monitors it probes. */
  lease(): { readonly replica: string; readonly held: readonly string[] } {
    return { replica: this.replica, held: [...this.held].sort() };
  }
}
