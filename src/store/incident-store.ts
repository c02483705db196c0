/**
 * What incidents keep (issue 16): incidents, their own timeline entries (declaration, acknowledgement, status
 * updates, notes, each starrable), the stars of entries assembled from events, and the postmortem's versions.
 * Like alerting, these are outside the store's write lock and the audit chain; the API writes an audit entry for
 * each person's action. Updates are optimistic (the incident's version), so two responders or two replicas never
 * overwrite each other silently; an incident and the entry that records its change are written in one transaction.
 */
import type { Kysely } from 'kysely';
import type { GroupNotification } from '../alerting/types.js';
import { UserError } from '../errors.js';
import type { TimelineAudit, TimelineEvent, TimelineNotification } from '../incident/timeline.js';
import type {
  Incident,
  IncidentDraft,
  IncidentSeverity,
  IncidentStatus,
  OwnEntry,
  OwnEntryKind,
  StoredOwnEntry,
} from '../incident/types.js';
import type { DB, Dialect } from './schema.js';

export interface IncidentFilter {
  /** `open` is every status but resolved. */
  readonly status?: IncidentStatus | 'open' | undefined;
  /** Incidents started at or after this ISO time. */
  readonly since?: string | undefined;
  /** The newest `limit` (default 100). */
  readonly limit?: number | undefined;
}

export interface PostmortemVersion {
  readonly incidentId: number;
  readonly version: number;
  readonly markdown: string;
  readonly json: unknown;
  readonly author: string;
  readonly createdAt: string;
}

export interface IncidentStore {
  /**
   * Stores a new incident with its first entry. With a group key, null when another incident of the same group
   * is open already (another replica declared it first): the caller reads that one.
   */
  insert(
    draft: IncidentDraft,
    entry: OwnEntry,
    nowMs: number,
  ): Promise<{ incident: Incident; entry: StoredOwnEntry } | null>;
  get(id: number): Promise<Incident | undefined>;
  list(filter?: IncidentFilter): Promise<Incident[]>;
  /** The newest incident declared from this alert group, open or not. */
  latestForGroup(groupKey: string): Promise<Incident | undefined>;
  /**
   * Writes `next` (whose version is the one read) and its entry in one transaction; throws RAMPART_ERR_CONFLICT
   * when someone else changed the incident since. Returns it with its version bumped.
   */
  update(
    next: Incident,
    entry: OwnEntry | null,
    nowMs: number,
  ): Promise<{ incident: Incident; entry: StoredOwnEntry | null }>;
  /** Adds an entry that changes nothing else (a note). */
  addEntry(incidentId: number, entry: OwnEntry): Promise<StoredOwnEntry>;
  /**
   * Adds an entry once per incident and `onceKey` (migration 0013's unique index): null when an entry with that key
   * is there already, also when another replica wrote it a moment ago. Nothing is written then.
   */
  addEntryOnce(incidentId: number, onceKey: string, entry: OwnEntry): Promise<StoredOwnEntry | null>;
  entries(incidentId: number): Promise<StoredOwnEntry[]>;
  /** Stars or unstars an entry by its timeline key (`entry:N` for own entries); false when there is no such entry. */
  star(incidentId: number, key: string, starred: boolean, by: string, at: string): Promise<boolean>;
  stars(incidentId: number): Promise<Set<string>>;
  /** Saves a new version of the postmortem; with `expected`, RAMPART_ERR_CONFLICT unless it is the latest version. */
  savePostmortem(p: Omit<PostmortemVersion, 'version'>, expected?: number): Promise<PostmortemVersion>;
  /** The newest version, or a given one. */
  postmortem(incidentId: number, version?: number): Promise<PostmortemVersion | undefined>;
  postmortemVersions(incidentId: number): Promise<Omit<PostmortemVersion, 'markdown' | 'json'>[]>;
  /**
   * What a timeline is assembled from, between two ISO times: monitoring events, outbox rows (notifications) and
   * the audit entries of changes, jobs, agents and drift. At most `limit` of each (default 5000), oldest first.
   */
  timelineSources(from: string, to: string, limit?: number): Promise<StoredTimelineSources>;
}

export interface StoredTimelineSources {
  readonly events: TimelineEvent[];
  readonly notifications: TimelineNotification[];
  readonly audit: TimelineAudit[];
}

type Row = DB['incidents'];

function rowToIncident(r: { id: number } & Omit<Row, 'id'>): Incident {
  return {
    id: Number(r.id),
    title: r.title,
    severity: r.severity as IncidentSeverity,
    status: r.status as IncidentStatus,
    commander: r.commander,
    services: JSON.parse(r.services_json) as string[],
    hosts: JSON.parse(r.hosts_json) as string[],
    groupKey: r.group_key,
    declaredBy: r.declared_by,
    startedAt: r.started_at,
    detectedAt: r.detected_at,
    acknowledgedAt: r.acknowledged_at,
    mitigatedAt: r.mitigated_at,
    resolvedAt: r.resolved_at,
    reopened: Number(r.reopened),
    followUps: JSON.parse(r.follow_ups_json) as string[],
    version: Number(r.version),
  };
}

function incidentRow(i: IncidentDraft, version: number, now: string): Omit<Row, 'id'> {
  return {
    title: i.title,
    severity: i.severity,
    status: i.status,
    commander: i.commander,
    services_json: JSON.stringify(i.services),
    hosts_json: JSON.stringify(i.hosts),
    group_key: i.groupKey,
    declared_by: i.declaredBy,
    started_at: i.startedAt,
    detected_at: i.detectedAt,
    acknowledged_at: i.acknowledgedAt,
    mitigated_at: i.mitigatedAt,
    resolved_at: i.resolvedAt,
    reopened: i.reopened,
    follow_ups_json: JSON.stringify(i.followUps),
    version,
    updated_at: now,
  };
}

function rowToEntry(r: { id: number } & Omit<DB['incident_entries'], 'id'>): StoredOwnEntry {
  return {
    id: Number(r.id),
    incidentId: Number(r.incident_id),
    kind: r.kind as OwnEntryKind,
    at: r.at,
    by: r.actor,
    text: r.text,
    data: JSON.parse(r.data_json) as Record<string, unknown>,
    starred: Number(r.starred) === 1,
  };
}

function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return (
    err.code === '23505' ||
    err.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    /UNIQUE constraint failed/.test(err.message ?? '')
  );
}

function conflict(what: string, details: Record<string, unknown>): UserError {
  return new UserError(
    'RAMPART_ERR_CONFLICT',
    `${what} was changed by someone else meanwhile: read it again and retry`,
    details,
  );
}

export class SqlIncidentStore implements IncidentStore {
  constructor(
    private readonly kind: Dialect,
    private readonly db: Kysely<DB>,
  ) {}

  private async insertEntry(
    trx: Kysely<DB>,
    incidentId: number,
    e: OwnEntry,
    starred = false,
  ): Promise<StoredOwnEntry> {
    const row = await trx
      .insertInto('incident_entries')
      .values({
        incident_id: incidentId,
        kind: e.kind,
        at: e.at,
        actor: e.by,
        text: e.text,
        data_json: JSON.stringify(e.data),
        starred: starred ? 1 : 0,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { ...e, id: Number(row.id), incidentId, starred };
  }

  async insert(draft: IncidentDraft, entry: OwnEntry, nowMs: number) {
    try {
      return await this.db.transaction().execute(async (trx) => {
        const row = await trx
          .insertInto('incidents')
          .values(incidentRow(draft, 1, new Date(nowMs).toISOString()))
          .returning('id')
          .executeTakeFirstOrThrow();
        const id = Number(row.id);
        const stored = await this.insertEntry(trx, id, entry);
        return { incident: { ...draft, id, version: 1 }, entry: stored };
      });
    } catch (e) {
      if (draft.groupKey !== null && isUniqueViolation(e)) return null;
      throw e;
    }
  }

  async get(id: number): Promise<Incident | undefined> {
    const r = await this.db.selectFrom('incidents').selectAll().where('id', '=', id).executeTakeFirst();
    return r && rowToIncident(r);
  }

  async list(filter: IncidentFilter = {}): Promise<Incident[]> {
    let q = this.db.selectFrom('incidents').selectAll();
    if (filter.status === 'open') q = q.where('status', '!=', 'resolved');
    else if (filter.status) q = q.where('status', '=', filter.status);
    if (filter.since) q = q.where('started_at', '>=', filter.since);
    const rows = await q
      .orderBy('id', 'desc')
      .limit(filter.limit ?? 100)
      .execute();
    return rows.map(rowToIncident);
  }

  async latestForGroup(groupKey: string): Promise<Incident | undefined> {
    const r = await this.db
      .selectFrom('incidents')
      .selectAll()
      .where('group_key', '=', groupKey)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r && rowToIncident(r);
  }

  async update(next: Incident, entry: OwnEntry | null, nowMs: number) {
    try {
      return await this.db.transaction().execute(async (trx) => {
        const r = await trx
          .updateTable('incidents')
          .set(incidentRow(next, next.version + 1, new Date(nowMs).toISOString()))
          .where('id', '=', next.id)
          .where('version', '=', next.version)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) === 0) {
          throw conflict(`incident ${next.id}`, { incident: next.id, version: next.version });
        }
        const stored = entry ? await this.insertEntry(trx, next.id, entry) : null;
        return { incident: { ...next, version: next.version + 1 }, entry: stored };
      });
    } catch (e) {
      // Reopening while another incident of the group is open (declared meanwhile) breaks the one-open rule.
      if (isUniqueViolation(e)) throw conflict(`the alert group of incident ${next.id}`, { incident: next.id });
      throw e;
    }
  }

  async addEntry(incidentId: number, entry: OwnEntry): Promise<StoredOwnEntry> {
    return this.insertEntry(this.db, incidentId, entry);
  }

  async addEntryOnce(incidentId: number, onceKey: string, entry: OwnEntry): Promise<StoredOwnEntry | null> {
    // One statement: the unique index decides between two replicas, no read-then-write window.
    const row = await this.db
      .insertInto('incident_entries')
      .values({
        incident_id: incidentId,
        kind: entry.kind,
        at: entry.at,
        actor: entry.by,
        text: entry.text,
        data_json: JSON.stringify(entry.data),
        starred: 0,
        once_key: onceKey,
      })
      .onConflict((oc) => oc.columns(['incident_id', 'once_key']).doNothing())
      .returning('id')
      .executeTakeFirst();
    return row ? { ...entry, id: Number(row.id), incidentId, starred: false } : null;
  }

  async entries(incidentId: number): Promise<StoredOwnEntry[]> {
    const rows = await this.db
      .selectFrom('incident_entries')
      .selectAll()
      .where('incident_id', '=', incidentId)
      .orderBy('at')
      .orderBy('id')
      .execute();
    return rows.map(rowToEntry);
  }

  async star(incidentId: number, key: string, starred: boolean, by: string, at: string): Promise<boolean> {
    const own = /^entry:(\d+)$/.exec(key);
    if (own) {
      const r = await this.db
        .updateTable('incident_entries')
        .set({ starred: starred ? 1 : 0 })
        .where('id', '=', Number(own[1]))
        .where('incident_id', '=', incidentId)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    }
    if (starred) {
      await this.db
        .insertInto('incident_stars')
        .values({ incident_id: incidentId, entry_key: key, starred_by: by, at })
        .onConflict((oc) => oc.columns(['incident_id', 'entry_key']).doNothing())
        .execute();
    } else {
      await this.db
        .deleteFrom('incident_stars')
        .where('incident_id', '=', incidentId)
        .where('entry_key', '=', key)
        .execute();
    }
    return true;
  }

  async stars(incidentId: number): Promise<Set<string>> {
    const rows = await this.db
      .selectFrom('incident_stars')
      .select('entry_key')
      .where('incident_id', '=', incidentId)
      .execute();
    return new Set(rows.map((r) => r.entry_key));
  }

  async savePostmortem(p: Omit<PostmortemVersion, 'version'>, expected?: number): Promise<PostmortemVersion> {
    try {
      return await this.db.transaction().execute(async (trx) => {
        const last = await trx
          .selectFrom('incident_postmortems')
          .select((eb) => eb.fn.max('version').as('v'))
          .where('incident_id', '=', p.incidentId)
          .executeTakeFirst();
        const current = Number(last?.v ?? 0);
        if (expected !== undefined && expected !== current) {
          throw conflict(`the postmortem of incident ${p.incidentId}`, {
            incident: p.incidentId,
            version: current,
            expected,
          });
        }
        const version = current + 1;
        await trx
          .insertInto('incident_postmortems')
          .values({
            incident_id: p.incidentId,
            version,
            markdown: p.markdown,
            json: JSON.stringify(p.json),
            author: p.author,
            created_at: p.createdAt,
          })
          .execute();
        return { ...p, version };
      });
    } catch (e) {
      // Two saves of the same version at once: the unique constraint lets one through.
      if (isUniqueViolation(e))
        throw conflict(`the postmortem of incident ${p.incidentId}`, { incident: p.incidentId });
      throw e;
    }
  }

  async postmortem(incidentId: number, version?: number): Promise<PostmortemVersion | undefined> {
    let q = this.db.selectFrom('incident_postmortems').selectAll().where('incident_id', '=', incidentId);
    if (version !== undefined) q = q.where('version', '=', version);
    const r = await q.orderBy('version', 'desc').limit(1).executeTakeFirst();
    return (
      r && {
        incidentId: Number(r.incident_id),
        version: Number(r.version),
        markdown: r.markdown,
        json: JSON.parse(r.json) as unknown,
        author: r.author,
        createdAt: r.created_at,
      }
    );
  }

  async postmortemVersions(incidentId: number): Promise<Omit<PostmortemVersion, 'markdown' | 'json'>[]> {
    const rows = await this.db
      .selectFrom('incident_postmortems')
      .select(['incident_id', 'version', 'author', 'created_at'])
      .where('incident_id', '=', incidentId)
      .orderBy('version')
      .execute();
    return rows.map((r) => ({
      incidentId: Number(r.incident_id),
      version: Number(r.version),
      author: r.author,
      createdAt: r.created_at,
    }));
  }

  async timelineSources(from: string, to: string, limit = 5000): Promise<StoredTimelineSources> {
    const [events, outbox, audit] = await Promise.all([
      this.db
        .selectFrom('monitor_events')
        .selectAll()
        .where('at', '>=', from)
        .where('at', '<=', to)
        .orderBy('id')
        .limit(limit)
        .execute(),
      this.db
        .selectFrom('alert_outbox')
        .select([
          'id',
          'receiver',
          'channel',
          'group_key',
          'state',
          'created_at',
          'done_at',
          'attempts',
          'last_error',
          'notification_json',
        ])
        .where('created_ms', '>=', Date.parse(from))
        .where('created_ms', '<=', Date.parse(to))
        .orderBy('id')
        .limit(limit)
        .execute(),
      this.db
        .selectFrom('audit_log')
        .select(['at', 'actor', 'action', 'target', 'after_json'])
        .where('at', '>=', from)
        .where('at', '<=', to)
        .where((eb) =>
          eb.or([
            eb('action', 'like', 'change.%'),
            eb('action', 'like', 'job.%'),
            eb('action', 'like', 'agent.%'),
            eb('action', '=', 'host.drift'),
          ]),
        )
        .orderBy('seq')
        .limit(limit)
        .execute(),
    ]);
    return {
      events: events.map((r) => ({
        id: Number(r.id),
        at: r.at,
        kind: r.kind,
        subject: r.subject,
        data: JSON.parse(r.data_json) as unknown,
      })),
      notifications: outbox.map((r) => {
        const n = JSON.parse(r.notification_json) as GroupNotification;
        return {
          id: Number(r.id),
          receiver: r.receiver,
          channel: r.channel,
          groupKey: r.group_key,
          state: r.state,
          createdAt: r.created_at,
          doneAt: r.done_at,
          attempts: Number(r.attempts),
          lastError: r.last_error,
          alerts: n.alerts.map((a) => a.fingerprint),
          status: n.status,
          ...(n.escalation ? { escalation: n.escalation } : {}),
        };
      }),
      audit: audit.map((r) => ({
        at: r.at,
        actor: r.actor,
        action: r.action,
        target: r.target,
        after: JSON.parse(r.after_json) as unknown,
      })),
    };
  }
}
