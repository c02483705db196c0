/**
 * The durable outbox of alert notifications (issue 15, §4). A notification is written here in the transaction that
 * stores the alert-group change that caused it (`enqueueOutbox`, given that transaction), one row per (idempotency
 * key, channel), then sent by workers (src/server/outbox-worker.ts) that claim due rows with a lease, so several
 * server replicas on one PostgreSQL share the queue and a replica killed mid-send leaves its rows to the others once
 * the lease runs out.
 *
 * Order: a row is due only when no earlier row of the same receiver, channel and alert group is still pending, so a
 * group's `resolved` never overtakes its `firing` (PagerDuty would reopen the incident), also across retries.
 *
 * Like monitoring, these writes are outside the store's write lock and the audit chain.
 */
import { type Insertable, type Kysely, sql } from 'kysely';
import type { GroupNotification, NotifyTarget, OutboxDraft } from '../alerting/types.js';
import type { DB, Dialect } from './schema.js';

/** One channel a draft is sent on: `webhook/0` of receiver `ops`, or `email` of user `@alice`. */
export interface OutboxChannel {
  readonly channel: string;
  /** The receiver's name, or `@name` for a user target (how depth and age are reported). */
  readonly receiver: string;
}

/** Resolves a draft's target to its channels at enqueue time (the current config's receiver or user). */
export type OutboxExpand = (target: NotifyTarget) => readonly OutboxChannel[];

export type OutboxState = 'pending' | 'sent' | 'failed';

/** An event (the events table of docs/monitoring.md "Events") written with a given-up row. */
export interface OutboxEvent {
  readonly at: string;
  readonly kind: string;
  readonly subject: string;
  readonly data: unknown;
}

/** A claimed row: one notification to send on one channel. */
export interface OutboxItem {
  readonly id: number;
  readonly key: string;
  readonly channel: string;
  readonly receiver: string;
  readonly target: NotifyTarget;
  readonly notification: GroupNotification;
  readonly createdAt: string;
  readonly createdMs: number;
  /** Attempts before this one. */
  readonly attempts: number;
  readonly leaseUntil: number;
}

export interface OutboxRow extends Omit<OutboxItem, 'leaseUntil'> {
  readonly state: OutboxState;
  readonly nextAt: number;
  readonly leaseHolder: string | null;
  readonly leaseUntil: number | null;
  readonly lastError: string | null;
  readonly doneAt: string | null;
}

/** Queue figures of one receiver at one time. */
export interface OutboxReceiverStats {
  readonly receiver: string;
  readonly pending: number;
  /** Age of its oldest pending row (ms), 0 when none. */
  readonly oldestPendingMs: number;
  readonly failed: number;
  readonly sent: number;
}

export interface OutboxStore {
  /** Writes drafts outside any other transaction (tests, tools); the server uses `enqueueOutbox` inside its own. */
  enqueue(drafts: readonly OutboxDraft[], expand: OutboxExpand): Promise<number>;
  /**
   * Leases up to `limit` due rows to `holder` until `nowMs + leaseMs`: pending, `next_at <= nowMs`, not leased by a
   * live holder, and first of their (receiver, channel, group) among the pending. Oldest first.
   */
  claim(holder: string, nowMs: number, leaseMs: number, limit: number): Promise<OutboxItem[]>;
  /** Marks a row sent; false when `holder` no longer holds it (its lease ran out and another took it). */
  complete(id: number, holder: string, nowMs: number): Promise<boolean>;
  /** Marks several rows sent in one statement; returns the ids `holder` still held (the ones marked). */
  completeMany(ids: readonly number[], holder: string, nowMs: number): Promise<number[]>;
  /**
   * Records a failed attempt: retried at `nextAt` (epoch ms), or given up (`failed`) when `nextAt` is null, with
   * `event` written to the events table in the same transaction (`notification.failed`: the failure cannot be
   * recorded without its event). False when `holder` no longer holds it (nothing written).
   */
  fail(
    id: number,
    holder: string,
    error: string,
    nextAt: number | null,
    nowMs: number,
    event?: OutboxEvent | undefined,
  ): Promise<boolean>;
  /** Per receiver: pending depth, oldest pending age, failed and sent counts. */
  stats(nowMs: number): Promise<OutboxReceiverStats[]>;
  /** Every row of a key (tests, `rampart alerts` detail views). */
  rows(filter?: { readonly key?: string; readonly state?: OutboxState }): Promise<OutboxRow[]>;
  /** Deletes sent and failed rows finished before `beforeIso`; returns how many went. */
  prune(beforeIso: string): Promise<number>;
}

const MAX_ROWS_PER_INSERT = 200;

/**
 * Writes drafts into the outbox inside the caller's transaction `trx`: one row per (draft, channel) from `expand`,
 * the same (key, channel) stored once (a draft enqueued twice, e.g. by two replicas flushing the same group, is one
 * row). Returns the number of rows the drafts expanded to (including ones already stored).
 */
export async function enqueueOutbox(
  _kind: Dialect,
  trx: Kysely<DB>,
  drafts: readonly OutboxDraft[],
  expand: OutboxExpand,
): Promise<number> {
  const values: Insertable<DB['alert_outbox']>[] = [];
  for (const d of drafts) {
    const createdMs = Date.parse(d.createdAt);
    if (!Number.isFinite(createdMs))
      throw new TypeError(`outbox draft ${d.key}: createdAt '${d.createdAt}' is not ISO 8601`);
    const targetJson = JSON.stringify(d.target);
    const notificationJson = JSON.stringify(d.notification);
    for (const ch of expand(d.target)) {
      values.push({
        key: d.key,
        channel: ch.channel,
        receiver: ch.receiver,
        group_key: d.notification.groupKey,
        target_json: targetJson,
        notification_json: notificationJson,
        created_at: d.createdAt,
        created_ms: createdMs,
        state: 'pending',
        attempts: 0,
        next_at: createdMs,
        lease_holder: null,
        lease_until: null,
        last_error: null,
        done_at: null,
      });
    }
  }
  for (let i = 0; i < values.length; i += MAX_ROWS_PER_INSERT) {
    await trx
      .insertInto('alert_outbox')
      .values(values.slice(i, i + MAX_ROWS_PER_INSERT))
      .onConflict((oc) => oc.columns(['key', 'channel']).doNothing())
      .execute();
  }
  return values.length;
}

type Row = {
  id: number;
  key: string;
  channel: string;
  receiver: string;
  target_json: string;
  notification_json: string;
  created_at: string;
  created_ms: number | string;
  attempts: number;
  state: string;
  next_at: number | string;
  lease_holder: string | null;
  lease_until: number | string | null;
  last_error: string | null;
  done_at: string | null;
};

function toRow(r: Row): OutboxRow {
  return {
    id: Number(r.id),
    key: r.key,
    channel: r.channel,
    receiver: r.receiver,
    target: JSON.parse(r.target_json) as NotifyTarget,
    notification: JSON.parse(r.notification_json) as GroupNotification,
    createdAt: r.created_at,
    createdMs: Number(r.created_ms),
    attempts: Number(r.attempts),
    state: r.state as OutboxState,
    nextAt: Number(r.next_at),
    leaseHolder: r.lease_holder,
    leaseUntil: r.lease_until === null ? null : Number(r.lease_until),
    lastError: r.last_error,
    doneAt: r.done_at,
  };
}

export class SqlOutboxStore implements OutboxStore {
  constructor(
    private readonly kind: Dialect,
    private readonly db: Kysely<DB>,
  ) {}

  async enqueue(drafts: readonly OutboxDraft[], expand: OutboxExpand): Promise<number> {
    return this.db.transaction().execute((trx) => enqueueOutbox(this.kind, trx, drafts, expand));
  }

  async claim(holder: string, nowMs: number, leaseMs: number, limit: number): Promise<OutboxItem[]> {
    const until = nowMs + leaseMs;
    // One statement in both dialects: SQLite runs it under its single writer lock; PostgreSQL locks the chosen rows
    // and skips the ones another replica is claiming at the same moment (FOR UPDATE SKIP LOCKED).
    const lock = this.kind === 'postgres' ? sql`for update skip locked` : sql``;
    const result = await sql<Row>`
      update alert_outbox set lease_holder = ${holder}, lease_until = ${until}
      where id in (
        select o.id from alert_outbox o
        where o.state = 'pending' and o.next_at <= ${nowMs}
          and (o.lease_until is null or o.lease_until < ${nowMs})
          and not exists (
            select 1 from alert_outbox p
            where p.receiver = o.receiver and p.channel = o.channel and p.group_key = o.group_key
              and p.state = 'pending' and p.id < o.id)
        order by o.next_at, o.id
        limit ${limit}
        ${lock})
      returning *`.execute(this.db);
    return result.rows
      .map((r) => {
        const row = toRow(r);
        return {
          id: row.id,
          key: row.key,
          channel: row.channel,
          receiver: row.receiver,
          target: row.target,
          notification: row.notification,
          createdAt: row.createdAt,
          createdMs: row.createdMs,
          attempts: row.attempts,
          leaseUntil: until,
        };
      })
      .sort((a, b) => a.id - b.id);
  }

  async complete(id: number, holder: string, nowMs: number): Promise<boolean> {
    const r = await this.db
      .updateTable('alert_outbox')
      .set((eb) => ({
        state: 'sent',
        attempts: eb('attempts', '+', 1),
        lease_holder: null,
        lease_until: null,
        last_error: null,
        done_at: new Date(nowMs).toISOString(),
      }))
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .where('lease_holder', '=', holder)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async completeMany(ids: readonly number[], holder: string, nowMs: number): Promise<number[]> {
    if (ids.length === 0) return [];
    const rows = await this.db
      .updateTable('alert_outbox')
      .set((eb) => ({
        state: 'sent',
        attempts: eb('attempts', '+', 1),
        lease_holder: null,
        lease_until: null,
        last_error: null,
        done_at: new Date(nowMs).toISOString(),
      }))
      .where('id', 'in', [...ids])
      .where('state', '=', 'pending')
      .where('lease_holder', '=', holder)
      .returning('id')
      .execute();
    return rows.map((r) => Number(r.id));
  }

  async fail(
    id: number,
    holder: string,
    error: string,
    nextAt: number | null,
    nowMs: number,
    event?: OutboxEvent,
  ): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('alert_outbox')
        .set((eb) => ({
          state: nextAt === null ? 'failed' : 'pending',
          attempts: eb('attempts', '+', 1),
          next_at: nextAt ?? nowMs,
          lease_holder: null,
          lease_until: null,
          last_error: error.slice(0, 2000),
          done_at: nextAt === null ? new Date(nowMs).toISOString() : null,
        }))
        .where('id', '=', id)
        .where('state', '=', 'pending')
        .where('lease_holder', '=', holder)
        .executeTakeFirst();
      const mine = Number(r.numUpdatedRows) === 1;
      if (mine && nextAt === null && event) {
        await trx
          .insertInto('monitor_events')
          .values({ at: event.at, kind: event.kind, subject: event.subject, data_json: JSON.stringify(event.data) })
          .execute();
      }
      return mine;
    });
  }

  async stats(nowMs: number): Promise<OutboxReceiverStats[]> {
    const rows = await this.db
      .selectFrom('alert_outbox')
      .select((eb) => [
        'receiver',
        'state',
        eb.fn.countAll<number | string>().as('n'),
        eb.fn.min('created_ms').as('oldest'),
      ])
      .groupBy(['receiver', 'state'])
      .execute();
    const by = new Map<string, { pending: number; oldestPendingMs: number; failed: number; sent: number }>();
    for (const r of rows) {
      let s = by.get(r.receiver);
      if (!s) {
        s = { pending: 0, oldestPendingMs: 0, failed: 0, sent: 0 };
        by.set(r.receiver, s);
      }
      const n = Number(r.n);
      if (r.state === 'pending') {
        s.pending = n;
        s.oldestPendingMs = Math.max(0, nowMs - Number(r.oldest));
      } else if (r.state === 'failed') s.failed = n;
      else if (r.state === 'sent') s.sent = n;
    }
    return [...by].map(([receiver, s]) => ({ receiver, ...s })).sort((a, b) => a.receiver.localeCompare(b.receiver));
  }

  async rows(filter: { readonly key?: string; readonly state?: OutboxState } = {}): Promise<OutboxRow[]> {
    let q = this.db.selectFrom('alert_outbox').selectAll();
    if (filter.key !== undefined) q = q.where('key', '=', filter.key);
    if (filter.state !== undefined) q = q.where('state', '=', filter.state);
    return (await q.orderBy('id').execute()).map((r) => toRow(r as unknown as Row));
  }

  async prune(beforeIso: string): Promise<number> {
    const r = await this.db
      .deleteFrom('alert_outbox')
      .where('state', 'in', ['sent', 'failed'])
      .where('done_at', '<', beforeIso)
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
