/**
 * The agent's incoming-traffic measurement (issue 14, §3): per service and source, how many requests arrived in
 * each aligned window (5 s by default), sent to the server in order.
 *
 * - access-log: the lines of the service's logs, counted in the window of their own timestamp (traffic-windows.ts
 *   says why), 5xx as errors. The tailers' positions, the open windows' counts and the samples not yet acknowledged
 *   are persisted together in one file (`traffic.json` in the state dir, written atomically), so an agent restart
 *   neither loses a line nor counts one twice: what was read after the last write is read again and was not counted.
 * - counters: the packet counters of the firewall rules that accept the service's ports on the input path (new
 *   connections accepted), read once per window; the increase since the last reading is the window that just ended.
 * - haproxy: `show stat` of the backend: `req_tot` (HTTP mode, else `stot`, sessions) and `hrsp_5xx`.
 *
 * Samples go out oldest first in batches; while the server is away they are kept (bounded: the oldest go first, and
 * how many is said) and persisted. The server drops a window it already stored, so a resend after a lost answer is
 * harmless.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Executor } from '../lab/executor.js';
import { haproxyCommand, parseShowStat } from '../lab/haproxy.js';
import { isIgnoredPath, isLoopbackClient, isServerError, parseAccessLine } from '../monitor/access-log.js';
import { type AcceptRuleCounter, RuleCounterCache } from '../monitor/rule-counters.js';
import { CounterDeltas, TrafficWindows, type TrafficWindowsState } from '../monitor/traffic-windows.js';
import { LogTailer, type TailerState } from './log-tailer.js';
import { writeDurable } from './pending.js';
import type { TrafficAck, TrafficAssignment, TrafficSample, TrafficSources } from './protocol.js';

export const TRAFFIC_STATE_FILE = 'traffic.json';

export interface TrafficMeterOptions {
  readonly stateDir: string;
  readonly exec: Executor;
  /** The host's firewall (from the server's hello), for the counters. */
  readonly firewall: () => 'nftables' | 'iptables';
  /** Calls the server (`/agent/traffic-sources`, `/agent/traffic`). */
  readonly call: <T>(method: string, path: string, body?: unknown) => Promise<T>;
  readonly log: (line: string) => void;
  /** Samples kept while the server is away (default 20,000: a day of one source's 5 s windows). */
  readonly bufferLimit?: number;
  /** How often to ask for the sources again (default 30 s; at once after a failed call). */
  readonly refreshMs?: number;
  /** How long after its end an access-log window waits for late lines (default 1000 ms). */
  readonly graceMs?: number;
  /** How long a rotated log must stay quiet before it is closed (default 5000 ms). */
  readonly drainMs?: number;
}

interface PersistedState {
  readonly version: 1;
  readonly logs: Record<string, TailerState>;
  readonly windows: Record<string, TrafficWindowsState>;
  readonly outbox: TrafficSample[];
}

const BATCH = 500;
const logKey = (service: string, path: string) => `${service}\u0000${path}`;

interface ServiceMeter {
  readonly a: TrafficAssignment;
  readonly tailers: { readonly path: string; readonly format: 'combined' | 'haproxy'; readonly tailer: LogTailer }[];
  windows: TrafficWindows | undefined;
  readonly counters: CounterDeltas;
  readonly haproxyRequests: CounterDeltas;
  readonly haproxyErrors: CounterDeltas;
  /** Paths whose requests are not counted (the assignment's `ignorePaths`). */
  readonly ignore: ReadonlySet<string>;
  malformed: number;
}

export class TrafficMeter {
  private windowMs = 5000;
  private services = new Map<string, ServiceMeter>();
  private sourcesJson = '';
  private outbox: TrafficSample[] = [];
  private dropped = 0;
  private saved: PersistedState | undefined;
  private dirty = false;
  private lastBoundary = 0;
  private lastRefresh = 0;
  private refreshFailed = false;
  private reachable: boolean | undefined;
  private readonly said = new Set<string>();
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private sent = 0;
  /** The last ruleset parsed for the counters (parsed again only when its rules changed). */
  private readonly ruleCache = new RuleCounterCache();
  /** Samples made since start (a tick that made one persists). */
  private pushed = 0;

  constructor(private readonly o: TrafficMeterOptions) {}

  /** Logs a line once per key (a rule without a counter, a missing log): it stays true until it changes. */
  private once(key: string, line: string): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    this.o.log(line);
  }

  /** Reads the persisted state (tailer positions, open windows, unsent samples); start() does it first. */
  async load(): Promise<void> {
    try {
      const doc = JSON.parse(await readFile(join(this.o.stateDir, TRAFFIC_STATE_FILE), 'utf8')) as PersistedState;
      if (doc.version !== 1) throw new Error(`version ${String(doc.version)}`);
      this.saved = doc;
      this.outbox = [...doc.outbox];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.o.log(
          `traffic: ignoring ${TRAFFIC_STATE_FILE} (${(e as Error).message}): logs are followed from their end`,
        );
      }
    }
  }

  private async persist(): Promise<void> {
    if (!this.dirty) return;
    const logs: Record<string, TailerState> = {};
    const windows: Record<string, TrafficWindowsState> = {};
    for (const [name, s] of this.services) {
      for (const t of s.tailers) logs[logKey(name, t.path)] = t.tailer.state();
      if (s.windows) windows[name] = s.windows.state();
    }
    const doc: PersistedState = { version: 1, logs, windows, outbox: this.outbox };
    await writeDurable(this.o.stateDir, TRAFFIC_STATE_FILE, JSON.stringify(doc));
    this.dirty = false;
  }

  /** Takes a new set of sources; what did not change keeps its tailers, windows and counter baselines. */
  async configure(src: TrafficSources, now: number): Promise<void> {
    const json = JSON.stringify(src);
    if (json === this.sourcesJson) return;
    this.sourcesJson = json;
    const windowChanged = src.windowMs !== this.windowMs;
    this.windowMs = src.windowMs;
    const next = new Map<string, ServiceMeter>();
    for (const a of src.services) {
      const old = this.services.get(a.service);
      if (old && !windowChanged && JSON.stringify(old.a) === JSON.stringify(a)) {
        next.set(a.service, old);
        continue;
      }
      const keep = new Map(old?.tailers.map((t) => [`${t.path}\u0000${t.format}`, t]));
      const tailers = a.logs.map((l) => {
        const k = `${l.path}\u0000${l.format}`;
        const t = keep.get(k);
        if (t) {
          keep.delete(k);
          return t;
        }
        const state = this.saved?.logs[logKey(a.service, l.path)];
        return {
          path: l.path,
          format: l.format,
          tailer: new LogTailer(l.path, state, {
            drainMs: this.o.drainMs ?? 5000,
            log: (line) => this.o.log(`traffic ${a.service}: ${line}`),
          }),
        };
      });
      for (const t of keep.values()) await t.tailer.close();
      const savedWindows = this.saved?.windows[a.service];
      const windows =
        a.logs.length === 0
          ? undefined
          : !windowChanged && old?.windows
            ? old.windows
            : new TrafficWindows(this.windowMs, now, { graceMs: this.o.graceMs ?? 1000 }, savedWindows);
      next.set(a.service, {
        a,
        tailers,
        windows,
        counters: old?.counters ?? new CounterDeltas(),
        haproxyRequests: old?.haproxyRequests ?? new CounterDeltas(),
        haproxyErrors: old?.haproxyErrors ?? new CounterDeltas(),
        ignore: new Set(a.ignorePaths ?? []),
        malformed: old?.malformed ?? 0,
      });
      const what = [
        a.logs.length ? `${a.logs.length} access log${a.logs.length > 1 ? 's' : ''}` : '',
        a.counters.length ? 'rule counters' : '',
        a.haproxy ? `HAProxy backend ${a.haproxy.backend}` : '',
      ].filter(Boolean);
      const ignored = a.logs.length && a.ignorePaths?.length ? ` (not counting ${a.ignorePaths.join(', ')})` : '';
      this.o.log(
        `traffic ${a.service}: measuring ${what.join(', ') || 'nothing'} in ${this.windowMs} ms windows${ignored}`,
      );
    }
    for (const [name, s] of this.services) {
      if (next.get(name) !== s)
        for (const t of s.tailers) if (!next.get(name)?.tailers.includes(t)) await t.tailer.close();
    }
    this.services = next;
    this.saved = undefined; // used once: later tailers of a new source start fresh
    this.dirty = true;
  }

  private push(s: TrafficSample): void {
    this.pushed++;
    this.outbox.push(s);
    this.dirty = true;
    const limit = this.o.bufferLimit ?? 20_000;
    if (this.outbox.length > limit) {
      const over = this.outbox.length - limit;
      this.outbox.splice(0, over);
      this.dropped += over;
    }
  }

  /**
   * Reads the logs; once per window also the counters and HAProxy; closes windows; persists when a window closed
   * (positions and counts are written together, so how often does not matter for exactness: what was read after the
   * last write is read again after a restart and was not counted).
   */
  async tick(now: number): Promise<void> {
    const before = this.pushed;
    for (const [name, s] of this.services) {
      for (const t of s.tailers) {
        let lines: string[];
        try {
          lines = await t.tailer.poll(now);
        } catch (e) {
          this.once(`read ${t.path}`, `traffic ${name}: cannot read ${t.path}: ${(e as Error).message}`);
          continue;
        }
        if (lines.length > 0) this.dirty = true;
        for (const line of lines) {
          const e = parseAccessLine(line, t.format);
          if (!e) {
            if (line.trim() === '') continue;
            s.malformed++;
            // Said for the first one, then at every power of ten: a wrong format is loud, a stray line is not.
            if (Number.isInteger(Math.log10(s.malformed))) {
              this.o.log(
                `traffic ${name}: ${s.malformed} line${s.malformed > 1 ? 's' : ''} of ${t.path} not in the ${t.format} format (not counted), like: ${line.slice(0, 200)}`,
              );
            }
            continue;
          }
          if (isLoopbackClient(e.client)) continue; // the host's own probes, not customers
          if (isIgnoredPath(e, s.ignore)) continue; // health checks (HAProxy's, the monitors'), not customers
          s.windows?.add(e.time, now, 1, isServerError(e.status) ? 1 : 0);
        }
      }
      if (s.windows && !s.tailers.some((t) => t.tailer.following())) {
        // No log to read is "no data", not "no requests": its windows pass without a sample.
        s.windows.close(now);
        this.once(
          `no log ${name}`,
          `traffic ${name}: ${s.tailers.map((t) => t.path).join(', ')} does not exist (yet): no access-log samples until it does`,
        );
        continue;
      }
      this.said.delete(`no log ${name}`);
      for (const w of s.windows?.close(now) ?? []) {
        this.push({ service: name, source: 'access-log', ms: this.windowMs, ...w });
      }
    }
    const boundary = Math.floor(now / this.windowMs) * this.windowMs;
    if (boundary > this.lastBoundary) {
      // The window that just ended; a first reading (or one after a gap of windows) is only a baseline.
      const ended = boundary - this.windowMs;
      const fresh = ended !== this.lastBoundary;
      this.lastBoundary = boundary;
      await this.readCumulative(ended, fresh);
    }
    if (this.pushed !== before) await this.persist();
  }

  private async readCumulative(ended: number, gap: boolean): Promise<void> {
    const withCounters = [...this.services.values()].filter((s) => s.a.counters.length > 0);
    if (withCounters.length > 0) {
      let read: ((s: ServiceMeter) => AcceptRuleCounter[]) | undefined;
      try {
        read = await this.readRuleCounters();
      } catch (e) {
        this.once('counters', `traffic: cannot read the rule counters: ${(e as Error).message}`);
        for (const s of withCounters) s.counters.reset();
      }
      if (read) {
        this.said.delete('counters');
        for (const s of withCounters) {
          const rules = read(s);
          const name = s.a.service;
          if (rules.length === 0) {
            this.once(`no rule ${name}`, `traffic ${name}: no rule accepts its ports on the input path: no counters`);
          } else this.said.delete(`no rule ${name}`);
          for (const r of rules) {
            if (r.packets === undefined) {
              this.once(
                `no counter ${r.key}`,
                `traffic ${name}: the rule '${r.rule}' has no counter statement: it is not counted (the agent never adds one; add 'counter' to it)`,
              );
            }
          }
          const values = new Map(rules.filter((r) => r.packets !== undefined).map((r) => [r.key, r.packets as number]));
          if (gap) s.counters.reset();
          if (values.size === 0) s.counters.reset();
          const d = values.size > 0 ? s.counters.update(values) : undefined;
          if (d !== undefined)
            this.push({ service: name, source: 'counters', start: ended, ms: this.windowMs, requests: d });
        }
      }
    }
    for (const s of this.services.values()) {
      const h = s.a.haproxy;
      if (!h) continue;
      const name = s.a.service;
      try {
        const rows = parseShowStat(await haproxyCommand(h.socket, 'show stat', 2000));
        const row = rows.find((r) => r.pxname === h.backend && r.svname === 'BACKEND');
        if (!row) throw new Error(`no backend '${h.backend}' in 'show stat'`);
        this.said.delete(`haproxy ${name}`);
        const req = Number(row.req_tot !== undefined && row.req_tot !== '' ? row.req_tot : row.stot);
        const err = Number(row.hrsp_5xx || 0);
        if (gap) {
          s.haproxyRequests.reset();
          s.haproxyErrors.reset();
        }
        const dr = s.haproxyRequests.update(new Map([['r', req]]));
        const de = s.haproxyErrors.update(new Map([['e', err]]));
        if (dr !== undefined) {
          this.push({
            service: name,
            source: 'haproxy',
            start: ended,
            ms: this.windowMs,
            requests: dr,
            errors: de ?? 0,
          });
        }
      } catch (e) {
        this.once(`haproxy ${name}`, `traffic ${name}: cannot read HAProxy's stats: ${(e as Error).message}`);
        s.haproxyRequests.reset();
        s.haproxyErrors.reset();
      }
    }
  }

  /** One read of the firewall for every service (`nft -j list ruleset`, or `iptables-save -c` and ip6tables). */
  private async readRuleCounters(): Promise<(s: ServiceMeter) => AcceptRuleCounter[]> {
    if (this.o.firewall() === 'nftables') {
      const r = await this.o.exec.run(['nft', '-j', 'list', 'ruleset'], { timeoutMs: 10_000 });
      const read = this.ruleCache.nft(r.stdout);
      return (s) => read(s.a.counters);
    }
    const v4 = await this.o.exec.run(['iptables-save', '-c'], { timeoutMs: 10_000 });
    const v6 = await this.o.exec.run(['ip6tables-save', '-c'], { timeoutMs: 10_000, allowFailure: true });
    const read = this.ruleCache.iptables(v4.stdout, v6.code === 0 ? v6.stdout : '');
    return (s) => read(s.a.counters);
  }

  /** Sends the outbox oldest first; what the server did not acknowledge stays for the next try. */
  send(): Promise<void> {
    this.sending ??= this.deliver().finally(() => {
      this.sending = undefined;
    });
    return this.sending;
  }

  private async deliver(): Promise<void> {
    while (this.outbox.length > 0) {
      const batch = this.outbox.slice(0, BATCH);
      try {
        await this.o.call<TrafficAck>('POST', '/agent/traffic', { samples: batch });
      } catch (e) {
        // A sample the server will never take (its config no longer has that service or source on this host): the
        // whole batch is refused naming it; drop it rather than block everything behind it.
        const status = (e as { details?: { status?: number } }).details?.status;
        const at = /samples\[(\d+)\]/.exec((e as Error).message);
        if (status === 400 && at) {
          const bad = batch[Number(at[1])];
          const i = bad ? this.outbox.indexOf(bad) : -1;
          if (i >= 0) {
            this.outbox.splice(i, 1);
            this.dirty = true;
            this.o.log(`traffic: the server refused a sample, dropped: ${(e as Error).message}`);
            continue;
          }
        }
        if (this.reachable !== false) {
          this.o.log(`traffic: cannot send samples (${this.outbox.length} kept): ${(e as Error).message}`);
        }
        this.reachable = false;
        this.refreshFailed = true;
        return;
      }
      // The outbox may have lost its oldest over the limit meanwhile: remove exactly what was sent.
      const i = this.outbox.indexOf(batch[0] as TrafficSample);
      if (i >= 0) this.outbox.splice(i, batch.length);
      this.sent += batch.length;
      this.dirty = true;
      if (this.reachable === false) {
        this.o.log(
          `traffic: the server is back: sent the samples kept while it was away${this.dropped > 0 ? ` (${this.dropped} oldest were dropped over the limit)` : ''}`,
        );
        this.dropped = 0;
      }
      this.reachable = true;
    }
    await this.persist();
  }

  private async refresh(now: number): Promise<void> {
    try {
      const src = await this.o.call<TrafficSources>('GET', '/agent/traffic-sources');
      this.lastRefresh = now;
      if (this.refreshFailed) this.said.delete('sources');
      this.refreshFailed = false;
      await this.configure(src, now);
    } catch (e) {
      this.lastRefresh = now;
      this.refreshFailed = true;
      this.once('sources', `traffic: cannot get the traffic sources: ${(e as Error).message}`);
    }
  }

  /** Loads the persisted state, takes the sources, then ticks every second (just after each second starts). */
  async start(): Promise<void> {
    await this.load();
    const loop = async () => {
      if (this.stopped) return;
      const now = Date.now();
      try {
        if (this.refreshFailed || now - this.lastRefresh >= (this.o.refreshMs ?? 30_000)) await this.refresh(now);
        const before = this.outbox.length;
        await this.tick(now);
        if (this.outbox.length > 0 && (this.outbox.length !== before || this.reachable === false)) await this.send();
      } catch (e) {
        this.o.log(`traffic: ${(e as Error).message}`);
      }
      if (!this.stopped) this.timer = setTimeout(() => void loop(), 1000 - (Date.now() % 1000) + 50);
    };
    await loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.sending?.catch(() => {});
    await this.persist().catch((e: Error) => this.o.log(`traffic: cannot save the traffic state: ${e.message}`));
    for (const s of this.services.values()) for (const t of s.tailers) await t.tailer.close();
    this.o.log(
      `traffic: stopped: ${this.sent} samples sent${this.outbox.length ? `, ${this.outbox.length} kept` : ''}`,
    );
  }

  /** Samples waiting to be sent, and sent since start. */
  counts(): { readonly pending: number; readonly sent: number; readonly malformed: number } {
    let malformed = 0;
    for (const s of this.services.values()) malformed += s.malformed;
    return { pending: this.outbox.length, sent: this.sent, malformed };
  }

  /** Samples waiting to be sent (for tests and the agent's own checks). */
  pendingSamples(): readonly TrafficSample[] {
    return this.outbox;
  }
}
