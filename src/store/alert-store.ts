/**
 * What alerting keeps (issue 15): alerts by fingerprint, alert groups with their timers and what they last
 * announced, group membership, silences, and the cursor over the monitoring events already turned into alerts.
 * Like monitoring, these are observations, outside the store's write lock and the audit chain (the API writes an
 * audit entry for each person's action: a silence, an acknowledgement). Flushing a group and writing the
 * notifications it decided to send happen in one transaction, so a notification is never lost nor decided twice;
 * on PostgreSQL a due group is locked with FOR UPDATE SKIP LOCKED, so two replicas never flush the same group.
 */
import type { Kysely } from 'kysely';
import { cleanLabels, fingerprint } from '../alerting/alert.js';
import type { FlushResult, GroupState, Placement } from '../alerting/group.js';
import type { Silence } from '../alerting/mute.js';
import type { AlertChange } from '../alerting/sources.js';
import type { Alert, Labels, OutboxDraft } from '../alerting/types.js';
import type { DB, Dialect } from './schema.js';

export interface AlertFilter {
  readonly state?: 'firing' | 'resolved' | undefined;
  readonly fingerprints?: readonly string[] | undefined;
  /** The newest `limit` (default 1000). */
  readonly limit?: number | undefined;
}

/** What a flush decides: the group's result and the notifications to write with it. */
export interface FlushDecision {
  readonly result: FlushResult;
  readonly drafts: readonly OutboxDraft[];
}

/** Writes notifications inside the caller's transaction (the outbox's enqueue). */
export type Enqueue = (trx: Kysely<DB>, drafts: readonly OutboxDraft[]) => Promise<void>;

export interface StoredGroup extends GroupState {
  /** Escalation state (src/alerting/escalation.ts), when the route names a policy. */
  readonly escalation: unknown;
}

export interface AlertStore {
  /**
   * Applies alert changes in one transaction: firing alerts are stored (a new firing starts a new alert, one still
   * firing keeps its start and takes the new annotations) and placed in their groups (a new group flushes after
   * its route's group_wait from `nowMs`); resolving sets endsAt. With `cursor`, the changes are those of the events
   * up to `cursor.lastId` and are skipped when another replica applied them already. Returns the alerts changed.
   */
  apply(
    changes: readonly AlertChange[],
    place: (labels: Labels) => Placement[],
    nowMs: number,
    cursor?: { readonly name: string; readonly lastId: number },
  ): Promise<Alert[]>;
  cursor(name: string): Promise<number>;
  list(filter?: AlertFilter): Promise<Alert[]>;
  /** Acknowledges a firing alert; null when there is no such firing alert. */
  ack(fp: string, by: string, atMs: number): Promise<Alert | null>;
  /** Groups whose next flush is due at `nowMs`, each flushed in its own transaction with its notifications. */
  flushDue(
    nowMs: number,
    decide: (g: StoredGroup, alerts: readonly Alert[]) => FlushDecision & { readonly escalation?: unknown },
    enqueue: Enqueue,
    limit?: number,
  ): Promise<number>;
  /** Updates groups' escalation states and writes their notifications, in one transaction. */
  escalate(
    decide: (
      g: StoredGroup,
      alerts: readonly Alert[],
    ) => { escalation: unknown; drafts: readonly OutboxDraft[] } | null,
    enqueue: Enqueue,
  ): Promise<number>;
  groups(): Promise<StoredGroup[]>;
  /** The earliest next flush (epoch ms), or null without groups. */
  nextFlushAt(): Promise<number | null>;
  addSilence(s: Silence): Promise<void>;
  silences(): Promise<Silence[]>;
  /** Expires a silence at `at` (ISO); false when it is unknown or over already. */
  expireSilence(id: string, at: string): Promise<boolean>;
  markSilencesMatched(ids: readonly string[], at: string): Promise<void>;
}

type AlertRow = DB['alerts'];

function rowToAlert(r: AlertRow): Alert {
  return {
    fingerprint: r.fingerprint,
    labels: JSON.parse(r.labels_json) as Labels,
    annotations: JSON.parse(r.annotations_json) as Labels,
    state: r.state === 'resolved' ? 'resolved' : 'firing',
    startsAt: r.starts_at,
    endsAt: r.ends_at,
    source: r.source,
    ...(r.generator_url ? { generatorURL: r.generator_url } : {}),
    ...(r.ack_by && r.ack_at ? { ack: { by: r.ack_by, at: r.ack_at } } : {}),
  };
}

function rowToGroup(r: DB['alert_groups']): StoredGroup {
  const s = JSON.parse(r.state_json) as Omit<
    GroupState,
    'key' | 'routeKey' | 'receiver' | 'groupLabels' | 'nextFlushMs'
  >;
  return {
    ...s,
    key: r.key,
    routeKey: r.route_key,
    receiver: r.receiver,
    groupLabels: JSON.parse(r.group_labels_json) as Labels,
    nextFlushMs: Number(r.next_flush),
    escalation: r.escalation_json ? JSON.parse(r.escalation_json) : null,
  };
}

function groupRow(g: GroupState): Omit<DB['alert_groups'], 'escalation_json'> {
  const { key, routeKey, receiver, groupLabels, nextFlushMs, ...rest } = g;
  return {
    key,
    route_key: routeKey,
    receiver,
    group_labels_json: JSON.stringify(groupLabels),
    next_flush: nextFlushMs,
    state_json: JSON.stringify(rest),
  };
}

function rowToSilence(r: DB['silences']): Silence {
  return {
    id: r.id,
    matchers: JSON.parse(r.matchers_json) as Silence['matchers'],
    startsAt: r.starts_at,
    endsAt: r.ends_at,
    createdBy: r.created_by,
    comment: r.comment,
    untilResolved: Number(r.until_resolved) === 1,
    matchedAt: r.matched_at,
    expiredAt: r.expired_at,
  };
}

export class SqlAlertStore implements AlertStore {
  constructor(
    private readonly kind: Dialect,
    private readonly db: Kysely<DB>,
  ) {}

  async apply(
    changes: readonly AlertChange[],
    place: (labels: Labels) => Placement[],
    nowMs: number,
    cursor?: { readonly name: string; readonly lastId: number },
  ): Promise<Alert[]> {
    return this.db.transaction().execute(async (trx) => {
      if (cursor) {
        await trx
          .insertInto('alerting_cursors')
          .values({ name: cursor.name, last_id: 0 })
          .onConflict((oc) => oc.column('name').doNothing())
          .execute();
        let q = trx.selectFrom('alerting_cursors').select('last_id').where('name', '=', cursor.name);
        if (this.kind === 'postgres') q = q.forUpdate();
        const row = await q.executeTakeFirst();
        if (Number(row?.last_id ?? 0) >= cursor.lastId) return [];
        await trx
          .updateTable('alerting_cursors')
          .set({ last_id: cursor.lastId })
          .where('name', '=', cursor.name)
          .execute();
      }
      const changed = new Map<string, Alert>();
      const now = new Date(nowMs).toISOString();
      for (const c of changes) {
        const labels = cleanLabels(c.alert.labels);
        const fp = fingerprint(labels);
        const at = new Date(c.atMs).toISOString();
        let q = trx.selectFrom('alerts').selectAll().where('fingerprint', '=', fp);
        if (this.kind === 'postgres') q = q.forUpdate();
        const old = changed.has(fp) ? undefined : await q.executeTakeFirst();
        const before = changed.get(fp) ?? (old ? rowToAlert(old) : undefined);
        const annotations = cleanLabels(c.alert.annotations ?? {});
        if (c.op === 'fire') {
          const still = before?.state === 'firing';
          const next: Alert = {
            fingerprint: fp,
            labels,
            annotations: still ? cleanLabels({ ...before.annotations, ...annotations }) : annotations,
            state: 'firing',
            startsAt: still ? before.startsAt : at,
            endsAt: null,
            source: c.alert.source,
            ...(c.alert.generatorURL ? { generatorURL: c.alert.generatorURL } : {}),
            ...(still && before.ack ? { ack: before.ack } : {}),
          };
          await this.upsertAlert(trx, next, now, before !== undefined);
          changed.set(fp, next);
          for (const p of place(labels)) {
            await trx
              .insertInto('alert_groups')
              .values({
                ...groupRow({
                  key: p.key,
                  routeKey: p.route.key,
                  receiver: p.route.receiver,
                  groupLabels: p.groupLabels,
                  createdAtMs: nowMs,
                  nextFlushMs: nowMs + p.route.groupWaitMs,
                  lastSentMs: null,
                  sentFiring: [],
                  seq: 0,
                }),
                escalation_json: null,
              })
              .onConflict((oc) => oc.column('key').doNothing())
              .execute();
            await trx
              .insertInto('alert_group_members')
              .values({ group_key: p.key, fingerprint: fp })
              .onConflict((oc) => oc.columns(['group_key', 'fingerprint']).doNothing())
              .execute();
          }
        } else if (before?.state === 'firing') {
          const next: Alert = { ...before, state: 'resolved', endsAt: at };
          await this.upsertAlert(trx, next, now, true);
          changed.set(fp, next);
        }
      }
      return [...changed.values()];
    });
  }

  private async upsertAlert(trx: Kysely<DB>, a: Alert, now: string, exists: boolean): Promise<void> {
    const row = {
      labels_json: JSON.stringify(a.labels),
      annotations_json: JSON.stringify(a.annotations),
      state: a.state,
      starts_at: a.startsAt,
      ends_at: a.endsAt,
      updated_at: now,
      source: a.source,
      generator_url: a.generatorURL ?? null,
      ack_by: a.ack?.by ?? null,
      ack_at: a.ack?.at ?? null,
    };
    if (exists) await trx.updateTable('alerts').set(row).where('fingerprint', '=', a.fingerprint).execute();
    else
      await trx
        .insertInto('alerts')
        .values({ fingerprint: a.fingerprint, ...row })
        .execute();
  }

  async cursor(name: string): Promise<number> {
    const r = await this.db
      .selectFrom('alerting_cursors')
      .select('last_id')
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(r?.last_id ?? 0);
  }

  async list(filter: AlertFilter = {}): Promise<Alert[]> {
    let q = this.db.selectFrom('alerts').selectAll();
    if (filter.state) q = q.where('state', '=', filter.state);
    if (filter.fingerprints) {
      if (filter.fingerprints.length === 0) return [];
      q = q.where('fingerprint', 'in', [...filter.fingerprints]);
    }
    const rows = await q
      .orderBy('updated_at', 'desc')
      .limit(filter.limit ?? 1000)
      .execute();
    return rows.map(rowToAlert);
  }

  async ack(fp: string, by: string, atMs: number): Promise<Alert | null> {
    const at = new Date(atMs).toISOString();
    const r = await this.db
      .updateTable('alerts')
      .set({ ack_by: by, ack_at: at, updated_at: at })
      .where('fingerprint', '=', fp)
      .where('state', '=', 'firing')
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) return null;
    const [a] = await this.list({ fingerprints: [fp] });
    return a ?? null;
  }

  private async membersOf(trx: Kysely<DB>, key: string): Promise<Alert[]> {
    const rows = await trx
      .selectFrom('alert_group_members as m')
      .innerJoin('alerts as a', 'a.fingerprint', 'm.fingerprint')
      .selectAll('a')
      .where('m.group_key', '=', key)
      .execute();
    return rows.map(rowToAlert);
  }

  async flushDue(
    nowMs: number,
    decide: (g: StoredGroup, alerts: readonly Alert[]) => FlushDecision & { readonly escalation?: unknown },
    enqueue: Enqueue,
    limit = 200,
  ): Promise<number> {
    const due = await this.db
      .selectFrom('alert_groups')
      .select('key')
      .where('next_flush', '<=', nowMs)
      .orderBy('next_flush')
      .limit(limit)
      .execute();
    let flushed = 0;
    for (const { key } of due) {
      const done = await this.db.transaction().execute(async (trx) => {
        let q = trx.selectFrom('alert_groups').selectAll().where('key', '=', key).where('next_flush', '<=', nowMs);
        if (this.kind === 'postgres') q = q.forUpdate().skipLocked();
        const row = await q.executeTakeFirst();
        if (!row) return false; // another replica has it, or flushed it already
        const g = rowToGroup(row);
        const alerts = await this.membersOf(trx, key);
        const d = decide(g, alerts);
        if (d.drafts.length > 0) await enqueue(trx, d.drafts);
        if (d.result.drop.length > 0) {
          await trx
            .deleteFrom('alert_group_members')
            .where('group_key', '=', key)
            .where('fingerprint', 'in', [...d.result.drop])
            .execute();
        }
        const next = d.result.group;
        if (next === null) {
          await trx.deleteFrom('alert_group_members').where('group_key', '=', key).execute();
          await trx.deleteFrom('alert_groups').where('key', '=', key).execute();
        } else {
          const esc = d.escalation === undefined ? g.escalation : d.escalation;
          await trx
            .updateTable('alert_groups')
            .set({ ...groupRow(next), escalation_json: esc === null ? null : JSON.stringify(esc) })
            .where('key', '=', key)
            .execute();
        }
        return true;
      });
      if (done) flushed++;
    }
    return flushed;
  }

  async escalate(
    decide: (
      g: StoredGroup,
      alerts: readonly Alert[],
    ) => { escalation: unknown; drafts: readonly OutboxDraft[] } | null,
    enqueue: Enqueue,
  ): Promise<number> {
    const keys = await this.db
      .selectFrom('alert_groups')
      .select('key')
      .where('escalation_json', 'is not', null)
      .execute();
    let n = 0;
    for (const { key } of keys) {
      const did = await this.db.transaction().execute(async (trx) => {
        let q = trx.selectFrom('alert_groups').selectAll().where('key', '=', key);
        if (this.kind === 'postgres') q = q.forUpdate().skipLocked();
        const row = await q.executeTakeFirst();
        if (!row) return false;
        const g = rowToGroup(row);
        const d = decide(g, await this.membersOf(trx, key));
        if (!d) return false;
        if (d.drafts.length > 0) await enqueue(trx, d.drafts);
        await trx
          .updateTable('alert_groups')
          .set({ escalation_json: d.escalation === null ? null : JSON.stringify(d.escalation) })
          .where('key', '=', key)
          .execute();
        return true;
      });
      if (did) n++;
    }
    return n;
  }

  async groups(): Promise<StoredGroup[]> {
    const rows = await this.db.selectFrom('alert_groups').selectAll().orderBy('key').execute();
    return rows.map(rowToGroup);
  }

  async nextFlushAt(): Promise<number | null> {
    const r = await this.db
      .selectFrom('alert_groups')
      .select((eb) => eb.fn.min('next_flush').as('next'))
      .executeTakeFirst();
    return r?.next === null || r?.next === undefined ? null : Number(r.next);
  }

  async addSilence(s: Silence): Promise<void> {
    await this.db
      .insertInto('silences')
      .values({
        id: s.id,
        matchers_json: JSON.stringify(s.matchers),
        starts_at: s.startsAt,
        ends_at: s.endsAt,
        created_by: s.createdBy,
        comment: s.comment,
        until_resolved: s.untilResolved ? 1 : 0,
        matched_at: s.matchedAt,
        expired_at: s.expiredAt,
      })
      .execute();
  }

  async silences(): Promise<Silence[]> {
    const rows = await this.db.selectFrom('silences').selectAll().orderBy('starts_at', 'desc').execute();
    return rows.map(rowToSilence);
  }

  async expireSilence(id: string, at: string): Promise<boolean> {
    const r = await this.db
      .updateTable('silences')
      .set({ expired_at: at })
      .where('id', '=', id)
      .where('expired_at', 'is', null)
      .where('ends_at', '>', at)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async markSilencesMatched(ids: readonly string[], at: string): Promise<void> {
    if (ids.length === 0) return;
    await this.db
      .updateTable('silences')
      .set({ matched_at: at })
      .where('id', 'in', [...ids])
      .where('matched_at', 'is', null)
      .execute();
  }
}
