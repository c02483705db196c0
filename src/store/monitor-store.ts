/**
 * What monitoring keeps (issue 14), beside the audit-chained store: current states, events, raw results around
 * state changes, rollups, and the leases that share monitors between server replicas. None of these writes takes
 * the store's write lock or appends to the audit chain: they are observations, many per second, not actions.
 * Rollups are added to (never read and rewritten), so any number of replicas can write the same bucket.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { type Kysely, type Selectable, sql } from 'kysely';
import { BUCKETS, emptyRollup, mergeInto, type Resolution, type Rollup, type RollupRow } from '../monitor/rollup.js';
import type { ProbeResult } from '../monitor/types.js';
import type { DB, Dialect, ProbeRollupsTable } from './schema.js';

/** One monitor's state as kept between restarts (src/server/monitoring.ts owns its meaning). */
export interface StoredMonitorState {
  readonly monitor: string;
  readonly state: string;
  readonly since: string;
  readonly updatedAt: string;
  readonly reason: string;
  /** Per-vantage states (src/monitor/state.ts VantageState), by vantage. */
  readonly vantages: unknown;
  /** Why it fails (src/server/monitoring.ts Diagnosis), when it does. */
  readonly diagnosis?: unknown;
}

/** A result waiting in the inbox for the replica that holds its monitor's lease. */
export interface InboxEntry {
  readonly id: number;
  readonly result: ProbeResult;
}

export interface StateFilter {
  /** Only these monitors. */
  readonly monitors?: readonly string[];
  /** Only states written at or after this ISO 8601 time. */
  readonly updatedSince?: string;
}

/** An observation worth keeping: the shape docs/monitoring.md documents; `data` depends on `kind`. */
export interface MonitorEvent {
  readonly id: number;
  /** ISO 8601 UTC. */
  readonly at: string;
  /** `monitor.state`, `monitor.vantage`, `service.state`, `traffic.drop`, `traffic.recovered`. */
  readonly kind: string;
  /** `monitor:shop-public`, `service:shop`, `host:web1`. */
  readonly subject: string;
  readonly data: unknown;
}

export interface EventFilter {
  readonly subject?: string | undefined;
  readonly kind?: string | undefined;
  /** Only events with a larger id (to follow the stream). */
  readonly afterId?: number | undefined;
  /** The newest `limit` (default 100), returned oldest first. */
  readonly limit?: number | undefined;
}

export interface StoredRollup extends Rollup {
  readonly bucket: number;
}

export interface MonitorStore {
  loadStates(filter?: StateFilter): Promise<StoredMonitorState[]>;
  /** Writes states; `inboxDone` are inbox entries whose effect they hold, deleted in the same transaction. */
  saveStates(rows: readonly StoredMonitorState[], inboxDone?: readonly number[]): Promise<void>;
  /** Hands results to the replica holding their monitors' leases (durable once this resolves). */
  enqueue(results: readonly ProbeResult[]): Promise<void>;
  /** The inbox entries of monitors `holder` holds a live lease on at `nowMs`, oldest first. */
  takeInbox(holder: string, nowMs: number, limit?: number): Promise<InboxEntry[]>;
  /** Forgets monitors no longer declared. */
  deleteStates(monitors: readonly string[]): Promise<void>;
  insertEvents(events: readonly Omit<MonitorEvent, 'id'>[]): Promise<MonitorEvent[]>;
  listEvents(filter?: EventFilter): Promise<MonitorEvent[]>;
  insertResults(results: readonly ProbeResult[]): Promise<void>;
  /** A monitor's raw results, newest first. */
  listResults(monitor: string, limit?: number): Promise<ProbeResult[]>;
  addRollups(rows: readonly RollupRow[]): Promise<void>;
  /** A monitor's rollups of one resolution with bucket in [from, to] (epoch seconds), oldest first. */
  rollups(monitor: string, resolution: Resolution, from: number, to: number): Promise<StoredRollup[]>;
  /** Drops what is past its retention; returns how many rows went. */
  prune(nowMs: number): Promise<number>;
  /**
   * Packs the minute rollups of whole hours that ended more than `keepHours` ago into one deflated row per monitor
   * and hour (what keeps 10,000 monitors' minutes for 35 days small); `rollups()` reads both. Returns the minute rows
   * packed.
   */
  packMinutes(nowMs: number, keepHours?: number): Promise<number>;
  /**
   * Renews this replica's heartbeat, then renews its leases and takes free or expired ones, up to its share of
   * `monitors` (all of them divided by the replicas seen alive within `ttlMs`, rounded up). Returns the monitors
   * it holds until `nowMs + ttlMs`.
   */
  acquireLeases(holder: string, monitors: readonly string[], ttlMs: number, nowMs: number): Promise<Set<string>>;
  /** Gives up every lease and the heartbeat (a clean stop: the others take over at once). */
  releaseLeases(holder: string): Promise<void>;
}

/** Retention (issue 14): minute rollups 35 days, hour rollups 400 days, raw results and events as long as hours. */
export const RETENTION_MS = {
  minute: 35 * 86_400_000,
  hour: 400 * 86_400_000,
  raw: 35 * 86_400_000,
  events: 400 * 86_400_000,
} as const;

const CHUNK = 200;

function chunks<T>(items: readonly T[], n = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}

function rollupOfRow(r: Selectable<ProbeRollupsTable>): StoredRollup {
  const row = r as unknown as Record<string, number | string>;
  return {
    bucket: Number(r.bucket),
    count: Number(r.count),
    failures: Number(r.failures),
    sumMs: Number(r.sum_ms),
    maxMs: Number(r.max_ms),
    hist: emptyRollup().hist.map((_, i) => Number(row[`h${i}`] ?? 0)),
  };
}

/**
 * An hour of minute rollups, packed: a version byte, then columns of unsigned LEB128 varints (the minutes present,
 * counts, failures, latency sums and maxima in tenths of a ms, and one column per histogram bucket that is used),
 * deflated. Columns of near-equal numbers compress far better than rows: about 220 bytes for a monitor probed twice
 * a minute, against some 400 for deflated JSON rows.
 */
export function packHour(hour: number, minutes: readonly StoredRollup[]): Buffer {
  const ms = [...minutes].sort((a, b) => a.bucket - b.bucket);
  const used = [...Array(BUCKETS).keys()].filter((b) => ms.some((m) => (m.hist[b] ?? 0) > 0));
  const out: number[] = [1, ms.length, used.length, ...used];
  const varint = (v: number) => {
    let n = Math.max(0, Math.round(v));
    while (n >= 0x80) {
      out.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    out.push(n);
  };
  for (const m of ms) varint((m.bucket - hour) / 60);
  for (const m of ms) varint(m.count);
  for (const m of ms) varint(m.failures);
  for (const m of ms) varint(m.sumMs * 10);
  for (const m of ms) varint(m.maxMs * 10);
  for (const b of used) for (const m of ms) varint(m.hist[b] ?? 0);
  return deflateRawSync(Buffer.from(out), { level: 9 });
}

export function unpackHour(hour: number, data: Buffer | Uint8Array): StoredRollup[] {
  const buf = inflateRawSync(data);
  let at = 0;
  const byte = () => buf[at++] ?? 0;
  const varint = () => {
    let n = 0;
    let scale = 1;
    for (;;) {
      const b = byte();
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 0x80;
    }
  };
  const version = byte();
  if (version !== 1) throw new Error(`packed minute rollups: unknown format version ${version}`);
  const n = byte();
  const usedCount = byte();
  const used = Array.from({ length: usedCount }, byte);
  const column = () => Array.from({ length: n }, varint);
  const minute = column();
  const count = column();
  const failures = column();
  const sum = column();
  const max = column();
  const hists = used.map(() => column());
  return minute.map((mi, i) => {
    const hist = emptyRollup().hist;
    used.forEach((b, k) => {
      hist[b] = hists[k]?.[i] ?? 0;
    });
    return {
      bucket: hour + mi * 60,
      count: count[i] ?? 0,
      failures: failures[i] ?? 0,
      sumMs: (sum[i] ?? 0) / 10,
      maxMs: (max[i] ?? 0) / 10,
      hist,
    };
  });
}

const HIST_COLUMNS = Array.from({ length: BUCKETS }, (_, i) => `h${i}`) as `h${number}`[];

export class SqlMonitorStore implements MonitorStore {
  constructor(
    private readonly kind: Dialect,
    private readonly db: Kysely<DB>,
  ) {}

  async loadStates(filter: StateFilter = {}): Promise<StoredMonitorState[]> {
    const read = async (monitors?: readonly string[]) => {
      let q = this.db.selectFrom('monitor_state').selectAll();
      if (monitors) q = q.where('monitor', 'in', monitors);
      if (filter.updatedSince !== undefined) q = q.where('updated_at', '>=', filter.updatedSince);
      return q.execute();
    };
    const rows = filter.monitors
      ? (await Promise.all(chunks(filter.monitors).map((part) => read(part)))).flat()
      : await read();
    return rows.map((r) => ({
      monitor: r.monitor,
      state: r.state,
      since: r.since,
      updatedAt: r.updated_at,
      reason: r.reason,
      vantages: JSON.parse(r.vantages_json) as unknown,
      ...(r.diagnosis_json ? { diagnosis: JSON.parse(r.diagnosis_json) as unknown } : {}),
    }));
  }

  async saveStates(rows: readonly StoredMonitorState[], inboxDone: readonly number[] = []): Promise<void> {
    if (rows.length === 0 && inboxDone.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (const part of chunks(inboxDone, 1000)) {
        await trx.deleteFrom('monitor_inbox').where('id', 'in', part).execute();
      }
      for (const part of chunks(rows)) {
        await trx
          .insertInto('monitor_state')
          .values(
            part.map((r) => ({
              monitor: r.monitor,
              state: r.state,
              since: r.since,
              updated_at: r.updatedAt,
              reason: r.reason,
              vantages_json: JSON.stringify(r.vantages),
              diagnosis_json: r.diagnosis === undefined ? null : JSON.stringify(r.diagnosis),
            })),
          )
          .onConflict((oc) =>
            oc.column('monitor').doUpdateSet((eb) => ({
              state: eb.ref('excluded.state'),
              since: eb.ref('excluded.since'),
              updated_at: eb.ref('excluded.updated_at'),
              reason: eb.ref('excluded.reason'),
              vantages_json: eb.ref('excluded.vantages_json'),
              diagnosis_json: eb.ref('excluded.diagnosis_json'),
            })),
          )
          .execute();
      }
    });
  }

  async enqueue(results: readonly ProbeResult[]): Promise<void> {
    if (results.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (const part of chunks(results)) {
        await trx
          .insertInto('monitor_inbox')
          .values(part.map((r) => ({ monitor: r.monitor, at: r.at, result_json: JSON.stringify(r) })))
          .execute();
      }
    });
  }

  async takeInbox(holder: string, nowMs: number, limit = 5000): Promise<InboxEntry[]> {
    const rows = await this.db
      .selectFrom('monitor_inbox as i')
      .innerJoin('monitor_leases as l', 'l.monitor', 'i.monitor')
      .select(['i.id', 'i.result_json'])
      .where('l.holder', '=', holder)
      .where('l.expires', '>=', nowMs)
      .orderBy('i.id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ id: Number(r.id), result: JSON.parse(r.result_json) as ProbeResult }));
  }

  async deleteStates(monitors: readonly string[]): Promise<void> {
    for (const part of chunks(monitors)) {
      await this.db.deleteFrom('monitor_state').where('monitor', 'in', part).execute();
      await this.db.deleteFrom('monitor_inbox').where('monitor', 'in', part).execute();
    }
  }

  async insertEvents(events: readonly Omit<MonitorEvent, 'id'>[]): Promise<MonitorEvent[]> {
    if (events.length === 0) return [];
    const out: MonitorEvent[] = [];
    await this.db.transaction().execute(async (trx) => {
      for (const part of chunks(events)) {
        const rows = await trx
          .insertInto('monitor_events')
          .values(part.map((e) => ({ at: e.at, kind: e.kind, subject: e.subject, data_json: JSON.stringify(e.data) })))
          .returning('id')
          .execute();
        part.forEach((e, i) => {
          out.push({ ...e, id: Number(rows[i]?.id) });
        });
      }
    });
    return out;
  }

  async listEvents(filter: EventFilter = {}): Promise<MonitorEvent[]> {
    let q = this.db.selectFrom('monitor_events').selectAll();
    if (filter.subject !== undefined) q = q.where('subject', '=', filter.subject);
    if (filter.kind !== undefined) q = q.where('kind', '=', filter.kind);
    if (filter.afterId !== undefined) q = q.where('id', '>', filter.afterId);
    const rows = await q
      .orderBy('id', 'desc')
      .limit(filter.limit ?? 100)
      .execute();
    return rows.reverse().map((r) => ({
      id: Number(r.id),
      at: r.at,
      kind: r.kind,
      subject: r.subject,
      data: JSON.parse(r.data_json) as unknown,
    }));
  }

  async insertResults(results: readonly ProbeResult[]): Promise<void> {
    if (results.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (const part of chunks(results)) {
        await trx
          .insertInto('probe_results')
          .values(
            part.map((r) => ({
              monitor: r.monitor,
              vantage: r.vantage,
              at: r.at,
              ok: r.ok ? 1 : 0,
              total_ms: r.timings.totalMs,
              error: r.error ?? null,
              detail_json: JSON.stringify({
                timings: r.timings,
                ...(r.detail ? { detail: r.detail } : {}),
                ...(r.inside ? { inside: true } : {}),
              }),
            })),
          )
          .execute();
      }
    });
  }

  async listResults(monitor: string, limit = 50): Promise<ProbeResult[]> {
    const rows = await this.db
      .selectFrom('probe_results')
      .selectAll()
      .where('monitor', '=', monitor)
      .orderBy('at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => {
      const extra = (r.detail_json ? JSON.parse(r.detail_json) : {}) as {
        timings?: ProbeResult['timings'];
        detail?: Record<string, unknown>;
        inside?: boolean;
      };
      return {
        monitor: r.monitor,
        vantage: r.vantage,
        at: Number(r.at),
        ok: r.ok === 1,
        timings: extra.timings ?? { totalMs: r.total_ms },
        ...(r.error !== null ? { error: r.error } : {}),
        ...(extra.detail ? { detail: extra.detail } : {}),
        ...(extra.inside ? { inside: true } : {}),
      };
    });
  }

  async addRollups(rows: readonly RollupRow[]): Promise<void> {
    if (rows.length === 0) return;
    const greatest = this.kind === 'sqlite' ? 'max' : 'greatest';
    await this.db.transaction().execute(async (trx) => {
      for (const part of chunks(rows)) {
        await trx
          .insertInto('probe_rollups')
          .values(
            part.map((r) => {
              const row: Record<string, string | number> = {
                monitor: r.monitor,
                resolution: r.resolution,
                bucket: r.bucket,
                count: r.rollup.count,
                failures: r.rollup.failures,
                sum_ms: r.rollup.sumMs,
                max_ms: r.rollup.maxMs,
              };
              HIST_COLUMNS.forEach((c, i) => {
                row[c] = r.rollup.hist[i] ?? 0;
              });
              return row as never;
            }),
          )
          .onConflict((oc) =>
            oc.columns(['monitor', 'resolution', 'bucket']).doUpdateSet(() => {
              const set: Record<string, unknown> = {
                count: sql`probe_rollups.count + excluded.count`,
                failures: sql`probe_rollups.failures + excluded.failures`,
                sum_ms: sql`probe_rollups.sum_ms + excluded.sum_ms`,
                max_ms: sql`${sql.raw(greatest)}(probe_rollups.max_ms, excluded.max_ms)`,
              };
              for (const c of HIST_COLUMNS)
                set[c] = sql`${sql.ref(`probe_rollups.${c}`)} + ${sql.ref(`excluded.${c}`)}`;
              return set as never;
            }),
          )
          .execute();
      }
    });
  }

  async rollups(monitor: string, resolution: Resolution, from: number, to: number): Promise<StoredRollup[]> {
    const packed: StoredRollup[] = [];
    if (resolution === 60) {
      const hours = await this.db
        .selectFrom('probe_minutes_packed')
        .selectAll()
        .where('monitor', '=', monitor)
        .where('hour', '>=', from - (from % 3600))
        .where('hour', '<=', to)
        .orderBy('hour')
        .execute();
      for (const h of hours) {
        for (const m of unpackHour(Number(h.hour), h.data)) if (m.bucket >= from && m.bucket <= to) packed.push(m);
      }
    }
    const rows = await this.db
      .selectFrom('probe_rollups')
      .selectAll()
      .where('monitor', '=', monitor)
      .where('resolution', '=', resolution)
      .where('bucket', '>=', from)
      .where('bucket', '<=', to)
      .orderBy('bucket')
      .execute();
    // A minute written after its hour was packed (a late batch) is added to the packed one.
    const out = new Map(packed.map((m) => [m.bucket, m]));
    for (const r of rows.map(rollupOfRow)) {
      const have = out.get(r.bucket);
      if (have) mergeInto(have, r);
      else out.set(r.bucket, r);
    }
    return [...out.values()].sort((a, b) => a.bucket - b.bucket);
  }

  async packMinutes(nowMs: number, keepHours = 3): Promise<number> {
    const now = Math.floor(nowMs / 1000);
    const before = now - (now % 3600) - keepHours * 3600;
    let packed = 0;
    // One monitor at a time within a transaction per batch: bounded memory, and a crash leaves either the minutes
    // or their packed hour, never both or neither.
    const monitors = await this.db
      .selectFrom('probe_rollups')
      .select('monitor')
      .distinct()
      .where('resolution', '=', 60)
      .where('bucket', '<', before)
      .execute();
    for (const part of chunks(
      monitors.map((m) => m.monitor),
      100,
    )) {
      await this.db.transaction().execute(async (trx) => {
        const rows = await trx
          .selectFrom('probe_rollups')
          .selectAll()
          .where('resolution', '=', 60)
          .where('bucket', '<', before)
          .where('monitor', 'in', part)
          .execute();
        const groups = new Map<string, { monitor: string; hour: number; minutes: StoredRollup[] }>();
        for (const r of rows) {
          const bucket = Number(r.bucket);
          const hour = bucket - (bucket % 3600);
          const key = `${r.monitor}\u0000${hour}`;
          let g = groups.get(key);
          if (!g) {
            g = { monitor: r.monitor, hour, minutes: [] };
            groups.set(key, g);
          }
          g.minutes.push(rollupOfRow(r));
        }
        for (const g of groups.values()) {
          const existing = await trx
            .selectFrom('probe_minutes_packed')
            .select('data')
            .where('monitor', '=', g.monitor)
            .where('hour', '=', g.hour)
            .executeTakeFirst();
          const merged = new Map<number, StoredRollup>();
          for (const m of existing ? unpackHour(g.hour, existing.data) : []) merged.set(m.bucket, m);
          for (const m of g.minutes) {
            const have = merged.get(m.bucket);
            if (have) mergeInto(have, m);
            else merged.set(m.bucket, m);
          }
          const data = packHour(g.hour, [...merged.values()]);
          await trx
            .insertInto('probe_minutes_packed')
            .values({ monitor: g.monitor, hour: g.hour, data })
            .onConflict((oc) => oc.columns(['monitor', 'hour']).doUpdateSet({ data }))
            .execute();
        }
        const gone = await trx
          .deleteFrom('probe_rollups')
          .where('resolution', '=', 60)
          .where('bucket', '<', before)
          .where('monitor', 'in', part)
          .executeTakeFirst();
        packed += Number(gone.numDeletedRows);
      });
    }
    return packed;
  }

  async prune(nowMs: number): Promise<number> {
    let n = 0;
    const sec = (ms: number) => Math.floor((nowMs - ms) / 1000);
    const r1 = await this.db
      .deleteFrom('probe_rollups')
      .where('resolution', '=', 60)
      .where('bucket', '<', sec(RETENTION_MS.minute))
      .executeTakeFirst();
    const r1p = await this.db
      .deleteFrom('probe_minutes_packed')
      .where('hour', '<', sec(RETENTION_MS.minute) - 3600)
      .executeTakeFirst();
    n += Number(r1p.numDeletedRows);
    const r2 = await this.db
      .deleteFrom('probe_rollups')
      .where('resolution', '=', 3600)
      .where('bucket', '<', sec(RETENTION_MS.hour))
      .executeTakeFirst();
    const r3 = await this.db
      .deleteFrom('probe_results')
      .where('at', '<', nowMs - RETENTION_MS.raw)
      .executeTakeFirst();
    const r4 = await this.db
      .deleteFrom('monitor_events')
      .where('at', '<', new Date(nowMs - RETENTION_MS.events).toISOString())
      .executeTakeFirst();
    for (const r of [r1, r2, r3, r4]) n += Number(r.numDeletedRows);
    return n;
  }

  async acquireLeases(holder: string, monitors: readonly string[], ttlMs: number, nowMs: number): Promise<Set<string>> {
    const expires = nowMs + ttlMs;
    // One transaction: on SQLite every statement outside one is its own synced commit, and this runs every few
    // seconds over every monitor.
    return this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('monitor_replicas')
        .values({ holder, seen: nowMs })
        .onConflict((oc) => oc.column('holder').doUpdateSet({ seen: nowMs }))
        .execute();
      await trx
        .deleteFrom('monitor_replicas')
        .where('seen', '<', nowMs - 3 * ttlMs)
        .execute();
      const alive = await trx
        .selectFrom('monitor_replicas')
        .select('holder')
        .where('seen', '>=', nowMs - ttlMs)
        .execute();
      const share = Math.ceil(monitors.length / Math.max(1, alive.length));
      // Keep what this replica holds while alive; drop leases of monitors no longer declared, and, over its share
      // (a replica joined), give back the surplus so the newcomer can take it.
      const declared = new Set(monitors);
      const mine = (
        await trx.selectFrom('monitor_leases').select('monitor').where('holder', '=', holder).execute()
      ).map((r) => r.monitor);
      const keep = mine.filter((m) => declared.has(m));
      const release = [...mine.filter((m) => !declared.has(m)), ...keep.splice(share)];
      for (const part of chunks(release)) {
        await trx.deleteFrom('monitor_leases').where('holder', '=', holder).where('monitor', 'in', part).execute();
      }
      await trx.updateTable('monitor_leases').set({ expires }).where('holder', '=', holder).execute();
      const held = new Set(keep);
      const room = share - held.size;
      if (room <= 0) return held;
      // Take free or expired leases, in the monitors' order: a lease held by a live replica is never taken (the
      // WHERE of the conflict update), so two replicas never hold one monitor.
      const busy = new Set(
        (
          await trx
            .selectFrom('monitor_leases')
            .select('monitor')
            .where('holder', '!=', holder)
            .where('expires', '>=', nowMs)
            .execute()
        ).map((r) => r.monitor),
      );
      const candidates = monitors.filter((m) => !held.has(m) && !busy.has(m)).slice(0, room);
      for (const part of chunks(candidates)) {
        await trx
          .insertInto('monitor_leases')
          .values(part.map((monitor) => ({ monitor, holder, expires })))
          .onConflict((oc) =>
            oc.column('monitor').doUpdateSet({ holder, expires }).where('monitor_leases.expires', '<', nowMs),
          )
          .execute();
      }
      const now = await trx
        .selectFrom('monitor_leases')
        .select('monitor')
        .where('holder', '=', holder)
        .where('expires', '>=', nowMs)
        .execute();
      return new Set(now.map((r) => r.monitor));
    });
  }

  async releaseLeases(holder: string): Promise<void> {
    await this.db.deleteFrom('monitor_leases').where('holder', '=', holder).execute();
    await this.db.deleteFrom('monitor_replicas').where('holder', '=', holder).execute();
  }
}
