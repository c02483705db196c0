/**
 * Incoming traffic as kept (issue 14, §3): request counts per service, host, source and bucket at three
 * resolutions (10 s points for 48 h, 1 min for 35 days, 1 h for 400 days), the last window stored per agent source
 * (a resent batch counts nothing twice), and the traffic-drop detectors' states. Like monitoring, these are
 * observations: outside the store's write lock and the audit chain. Buckets are added to, never rewritten, so any
 * server replica may take any agent's batch.
 */
import { type Kysely, sql } from 'kysely';
import type { TrafficSample } from '../agent/protocol.js';
import type { DB, Dialect } from './schema.js';

/** The three resolutions in seconds and how long each is kept (ms). */
export const TRAFFIC_RESOLUTIONS = [10, 60, 3600] as const;
export type TrafficResolution = (typeof TRAFFIC_RESOLUTIONS)[number];
export const TRAFFIC_RETENTION_MS: Record<TrafficResolution, number> = {
  10: 48 * 3_600_000,
  60: 35 * 86_400_000,
  3600: 400 * 86_400_000,
};

export interface TrafficRow {
  readonly service: string;
  readonly host: string;
  readonly source: string;
  /** The bucket's start, epoch seconds. */
  readonly bucket: number;
  readonly requests: number;
  readonly errors: number;
  /** Milliseconds of the bucket the agent's windows covered. */
  readonly coveredMs: number;
}

export interface TrafficQuery {
  readonly service: string;
  readonly resolution: TrafficResolution;
  /** Bucket starts in [from, to], epoch seconds. */
  readonly from: number;
  readonly to: number;
  readonly host?: string | undefined;
}

export interface TrafficStore {
  /**
   * Stores one agent's samples in one transaction: windows at or before the last stored one for the same (host,
   * service, source) are duplicates (counted, not added). Returns the samples that were new, in time order.
   */
  ingest(host: string, samples: readonly TrafficSample[]): Promise<{ accepted: TrafficSample[]; duplicates: number }>;
  points(q: TrafficQuery): Promise<TrafficRow[]>;
  loadDetectors(): Promise<{ series: string; state: unknown }[]>;
  saveDetectors(rows: readonly { series: string; state: unknown }[], nowMs: number): Promise<void>;
  /** Drops buckets past their retention; returns how many rows went. */
  prune(nowMs: number): Promise<number>;
}

const key = (s: { service: string; source: string }) => `${s.service}\u0000${s.source}`;

export class SqlTrafficStore implements TrafficStore {
  constructor(
    private readonly kind: Dialect,
    private readonly db: Kysely<DB>,
  ) {}

  async ingest(
    host: string,
    samples: readonly TrafficSample[],
  ): Promise<{ accepted: TrafficSample[]; duplicates: number }> {
    if (samples.length === 0) return { accepted: [], duplicates: 0 };
    const groups = new Map<string, TrafficSample[]>();
    for (const s of samples) {
      const g = groups.get(key(s));
      if (g) g.push(s);
      else groups.set(key(s), [s]);
    }
    return this.db.transaction().execute(async (trx) => {
      const accepted: TrafficSample[] = [];
      let duplicates = 0;
      for (const g of groups.values()) {
        g.sort((a, b) => a.start - b.start);
        const first = g[0] as TrafficSample;
        // The mark row exists before it is read (locked on PostgreSQL: two replicas taking the same agent's resend
        // at once see one another's mark).
        await trx
          .insertInto('traffic_marks')
          .values({ host, service: first.service, source: first.source, last_start: -1 })
          .onConflict((oc) => oc.columns(['host', 'service', 'source']).doNothing())
          .execute();
        let q = trx
          .selectFrom('traffic_marks')
          .select('last_start')
          .where('host', '=', host)
          .where('service', '=', first.service)
          .where('source', '=', first.source);
        if (this.kind === 'postgres') q = q.forUpdate();
        const mark = Number((await q.executeTakeFirstOrThrow()).last_start);
        let last = mark;
        for (const s of g) {
          if (s.start <= last) duplicates++;
          else {
            accepted.push(s);
            last = s.start;
          }
        }
        if (last !== mark) {
          await trx
            .updateTable('traffic_marks')
            .set({ last_start: last })
            .where('host', '=', host)
            .where('service', '=', first.service)
            .where('source', '=', first.source)
            .execute();
        }
      }
      // Added into every resolution's bucket, summed here first (a batch of 5 s windows is a few rows per bucket).
      const sums = new Map<
        string,
        { service: string; source: string; resolution: number; bucket: number; r: number; e: number; c: number }
      >();
      for (const s of accepted) {
        for (const res of TRAFFIC_RESOLUTIONS) {
          const bucket = Math.floor(s.start / 1000 / res) * res;
          const k = `${key(s)}\u0000${res}\u0000${bucket}`;
          const row = sums.get(k) ?? {
            service: s.service,
            source: s.source,
            resolution: res,
            bucket,
            r: 0,
            e: 0,
            c: 0,
          };
          row.r += s.requests;
          row.e += s.errors ?? 0;
          row.c += s.ms;
          sums.set(k, row);
        }
      }
      const rows = [...sums.values()];
      for (let i = 0; i < rows.length; i += 200) {
        await trx
          .insertInto('traffic_points')
          .values(
            rows.slice(i, i + 200).map((r) => ({
              service: r.service,
              host,
              source: r.source,
              resolution: r.resolution,
              bucket: r.bucket,
              requests: r.r,
              errors: r.e,
              covered_ms: r.c,
            })),
          )
          .onConflict((oc) =>
            oc.columns(['service', 'resolution', 'bucket', 'host', 'source']).doUpdateSet({
              requests: sql`traffic_points.requests + excluded.requests`,
              errors: sql`traffic_points.errors + excluded.errors`,
              covered_ms: sql`traffic_points.covered_ms + excluded.covered_ms`,
            }),
          )
          .execute();
      }
      return { accepted, duplicates };
    });
  }

  async points(q: TrafficQuery): Promise<TrafficRow[]> {
    let query = this.db
      .selectFrom('traffic_points')
      .selectAll()
      .where('service', '=', q.service)
      .where('resolution', '=', q.resolution)
      .where('bucket', '>=', q.from)
      .where('bucket', '<=', q.to);
    if (q.host !== undefined) query = query.where('host', '=', q.host);
    const rows = await query.orderBy('bucket').orderBy('host').orderBy('source').execute();
    return rows.map((r) => ({
      service: r.service,
      host: r.host,
      source: r.source,
      bucket: Number(r.bucket),
      requests: Number(r.requests),
      errors: Number(r.errors),
      coveredMs: Number(r.covered_ms),
    }));
  }

  async loadDetectors(): Promise<{ series: string; state: unknown }[]> {
    const rows = await this.db.selectFrom('traffic_detectors').selectAll().execute();
    return rows.map((r) => ({ series: r.series, state: JSON.parse(r.state_json) as unknown }));
  }

  async saveDetectors(rows: readonly { series: string; state: unknown }[], nowMs: number): Promise<void> {
    if (rows.length === 0) return;
    const at = new Date(nowMs).toISOString();
    await this.db.transaction().execute(async (trx) => {
      for (const r of rows) {
        await trx
          .insertInto('traffic_detectors')
          .values({ series: r.series, updated_at: at, state_json: JSON.stringify(r.state) })
          .onConflict((oc) => oc.column('series').doUpdateSet({ updated_at: at, state_json: JSON.stringify(r.state) }))
          .execute();
      }
    });
  }

  async prune(nowMs: number): Promise<number> {
    let n = 0;
    for (const res of TRAFFIC_RESOLUTIONS) {
      const r = await this.db
        .deleteFrom('traffic_points')
        .where('resolution', '=', res)
        .where('bucket', '<', Math.floor((nowMs - TRAFFIC_RETENTION_MS[res]) / 1000))
        .executeTakeFirst();
      n += Number(r.numDeletedRows);
    }
    return n;
  }
}
