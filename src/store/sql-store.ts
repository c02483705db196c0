/**
 * The one Store implementation, over a Kysely<DB> of either dialect. Dialect differences are confined to `begin`
 * (how a write transaction starts) and the id column types in migrations.ts; everything else is portable SQL
 * (both SQLite >= 3.35 and PostgreSQL support RETURNING).
 *
 * Writes are serialised by the audit_head row: every write transaction's first statement updates it. In PostgreSQL
 * that is a row lock held until commit (with READ COMMITTED, the statements after it see everything the previous
 * holder committed); in SQLite the transaction is BEGIN IMMEDIATE, which takes the database's single write lock.
 * Either way two processes writing the same store queue up instead of losing updates, and the audit entries of a
 * write are chained and committed atomically with the state they describe.
 */
import { createHash } from 'node:crypto';
import { type Kysely, type Selectable, sql } from 'kysely';
import { UserError } from '../errors.js';
import { type AlertStore, SqlAlertStore } from './alert-store.js';
import { checkExpectedHead, checkRecordedRulesets, entryHash, jsonValue, verifyChain } from './audit-chain.js';
import { type IncidentStore, SqlIncidentStore } from './incident-store.js';
import { appliedVersion } from './migrations.js';
import { type MonitorStore, SqlMonitorStore } from './monitor-store.js';
import { type OutboxStore, SqlOutboxStore } from './outbox-store.js';
import type {
  AuditLogTable,
  ChangesTable,
  DB,
  DesiredTable,
  Dialect,
  HostDriftTable,
  JobEventsTable,
  JobsTable,
  PlansTable,
  ReviewsTable,
  TokensTable,
} from './schema.js';
import { type SessionStore, SqlSessionStore } from './session-store.js';
import { SqlTrafficStore, type TrafficStore } from './traffic-store.js';
import {
  type Actor,
  type ApplyJob,
  type AuditDraft,
  type AuditEntry,
  type ChainVerdict,
  type ChangeFilter,
  type ChangeRecord,
  type ChangeState,
  type DesiredState,
  DRIFT_LIVE_MAX_BYTES,
  type DriftSnapshot,
  type HostReport,
  type JobEvent,
  type JobState,
  type PlanRecord,
  type ReviewRecord,
  type Role,
  type RulesetFormat,
  type Store,
  type StoreReader,
  type StoreWriter,
  type TokenRecord,
} from './types.js';

/** How long a writer waits for another writer (any process) before giving up. */
const LOCK_WAIT_MS = 30_000;
const BUSY_TIMEOUT_MS = 5000;
/** last_used_at is noted at most this often per token, so authenticated reads stay reads. */
const LAST_USED_GRANULARITY_MS = 60_000;

function tokenRecord(r: Selectable<TokensTable>): TokenRecord {
  return {
    id: r.id,
    name: r.name,
    role: r.role as Role,
    secretHash: r.secret_hash,
    createdAt: r.created_at,
    createdBy: r.created_by,
    createdByToken: r.created_by_token ?? null,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
    expiresAt: r.expires_at ?? null,
  };
}

/** Hex SHA-256 of a ruleset's text (what approvals, overrides and the audit trail name it by). */
export function rulesetSha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function parseJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

function changeRecord(r: Selectable<ChangesTable>): ChangeRecord {
  return {
    id: r.id,
    target: { kind: r.target_kind as 'host' | 'group', name: r.target_name },
    hosts: JSON.parse(r.hosts_json) as string[],
    author: r.author,
    reason: r.reason,
    ticket: r.ticket,
    format: r.format as RulesetFormat,
    ruleset: r.ruleset,
    state: r.state as ChangeState,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    authors: r.authors_json ? (JSON.parse(r.authors_json) as string[]) : [r.author],
    rulesetSha256: r.ruleset_sha256 ?? rulesetSha256(r.ruleset),
    override: parseJson<ChangeRecord['override']>(r.override_json),
    emergency: parseJson<ChangeRecord['emergency']>(r.emergency_json),
    planError: parseJson<ChangeRecord['planError']>(r.plan_error_json ?? null),
    rollbackOf: r.rollback_of ?? null,
  };
}

function planRecord(r: Selectable<PlansTable>): PlanRecord {
  return {
    id: r.id,
    changeId: r.change_id,
    createdAt: r.created_at,
    changeVersion: r.change_version,
    baseRevisions: JSON.parse(r.base_revisions_json) as Record<string, number>,
    blocked: r.blocked !== 0,
    risk: r.risk,
    stale: r.stale !== 0,
    plan: JSON.parse(r.plan_json) as unknown,
  };
}

function reviewRecord(r: Selectable<ReviewsTable>): ReviewRecord {
  return {
    id: r.id,
    changeId: r.change_id,
    planId: r.plan_id,
    reviewer: r.reviewer,
    verdict: r.verdict as 'approve' | 'reject',
    comment: r.comment,
    at: r.at,
    voidedAt: r.voided_at,
  };
}

function desiredRecord(r: Selectable<DesiredTable>): DesiredState {
  return {
    host: r.host,
    revision: r.revision,
    format: r.format as RulesetFormat,
    ruleset: r.ruleset,
    changeId: r.change_id,
    updatedAt: r.updated_at,
  };
}

function jobEventRecord(r: Selectable<JobEventsTable>): JobEvent {
  return {
    id: r.id,
    jobId: r.job_id,
    changeId: r.change_id,
    host: r.host,
    at: r.at,
    sourceAt: r.source_at,
    source: r.source,
    kind: r.kind,
    detail: r.detail,
  };
}

function jobRecord(r: Selectable<JobsTable>): ApplyJob {
  return {
    id: r.id,
    changeId: r.change_id,
    planId: r.plan_id,
    host: r.host,
    step: r.step,
    state: r.state as JobState,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function auditRecord(r: Selectable<AuditLogTable>): AuditEntry {
  return {
    seq: r.seq,
    at: r.at,
    actor: r.actor,
    role: r.role,
    from: r.origin,
    action: r.action,
    target: r.target,
    before: JSON.parse(r.before_json) as unknown,
    after: JSON.parse(r.after_json) as unknown,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/** LIKE pattern matching `text` literally (escape character `\`). */
function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** Reads, against either the pool (outside a write) or the connection holding the write lock. */
function driftRecord(r: Selectable<HostDriftTable>): DriftSnapshot {
  return {
    id: Number(r.id),
    host: r.host,
    at: r.at,
    desiredRevision: Number(r.desired_revision),
    format: r.format,
    live: r.live,
    liveSha256: r.live_sha256,
    liveBytes: Number(r.live_bytes),
    summary: r.summary,
  };
}

class SqlReader implements StoreReader {
  constructor(protected readonly db: Kysely<DB>) {}

  async getToken(id: string): Promise<TokenRecord | undefined> {
    const r = await this.db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return r && tokenRecord(r);
  }

  async listTokens(): Promise<TokenRecord[]> {
    const rows = await this.db.selectFrom('tokens').selectAll().orderBy('created_at').orderBy('id').execute();
    return rows.map(tokenRecord);
  }

  async getChange(id: number): Promise<ChangeRecord | undefined> {
    const r = await this.db.selectFrom('changes').selectAll().where('id', '=', id).executeTakeFirst();
    return r && changeRecord(r);
  }

  /** Newest first. */
  async listChanges(filter: ChangeFilter = {}): Promise<ChangeRecord[]> {
    let q = this.db.selectFrom('changes').selectAll().orderBy('id', 'desc');
    if (filter.state !== undefined) q = q.where('state', '=', filter.state);
    if (filter.host !== undefined) {
      // A cheap pre-filter on the JSON text; the exact membership test follows.
      q = q.where(sql<boolean>`hosts_json like ${`%${likeLiteral(JSON.stringify(filter.host))}%`} escape '\\'`);
    } else if (filter.limit !== undefined) {
      q = q.limit(filter.limit);
    }
    let out = (await q.execute()).map(changeRecord);
    if (filter.host !== undefined) {
      const host = filter.host;
      out = out.filter((c) => c.hosts.includes(host));
      if (filter.limit !== undefined) out = out.slice(0, filter.limit);
    }
    return out;
  }

  async countChangesByState(): Promise<Partial<Record<ChangeState, number>>> {
    const rows = await this.db
      .selectFrom('changes')
      .select(['state', (eb) => eb.fn.countAll().as('n')])
      .groupBy('state')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
  }

  async latestPlan(changeId: number): Promise<PlanRecord | undefined> {
    const r = await this.db
      .selectFrom('plans')
      .selectAll()
      .where('change_id', '=', changeId)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r && planRecord(r);
  }

  async getPlan(id: number): Promise<PlanRecord | undefined> {
    const r = await this.db.selectFrom('plans').selectAll().where('id', '=', id).executeTakeFirst();
    return r && planRecord(r);
  }

  async listReviews(changeId: number): Promise<ReviewRecord[]> {
    const rows = await this.db
      .selectFrom('reviews')
      .selectAll()
      .where('change_id', '=', changeId)
      .orderBy('id')
      .execute();
    return rows.map(reviewRecord);
  }

  async getDesired(host: string): Promise<DesiredState | undefined> {
    const r = await this.db
      .selectFrom('desired')
      .selectAll()
      .where('host', '=', host)
      .orderBy('revision', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r && desiredRecord(r);
  }

  async getDesiredRevision(host: string, revision: number): Promise<DesiredState | undefined> {
    const r = await this.db
      .selectFrom('desired')
      .selectAll()
      .where('host', '=', host)
      .where('revision', '=', revision)
      .executeTakeFirst();
    return r && desiredRecord(r);
  }

  /** In queue order: by change, then rollout step. */
  async listJobs(
    filter: { readonly changeId?: number; readonly host?: string; readonly state?: JobState } = {},
  ): Promise<ApplyJob[]> {
    let q = this.db.selectFrom('jobs').selectAll();
    if (filter.changeId !== undefined) q = q.where('change_id', '=', filter.changeId);
    if (filter.host !== undefined) q = q.where('host', '=', filter.host);
    if (filter.state !== undefined) q = q.where('state', '=', filter.state);
    const rows = await q.orderBy('change_id').orderBy('step').orderBy('id').execute();
    return rows.map(jobRecord);
  }

  async getJob(id: number): Promise<ApplyJob | undefined> {
    const r = await this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return r && jobRecord(r);
  }

  async listJobEvents(filter: {
    readonly changeId?: number | undefined;
    readonly jobId?: number | undefined;
  }): Promise<JobEvent[]> {
    let q = this.db.selectFrom('job_events').selectAll();
    if (filter.changeId !== undefined) q = q.where('change_id', '=', filter.changeId);
    if (filter.jobId !== undefined) q = q.where('job_id', '=', filter.jobId);
    const rows = await q.orderBy('id').execute();
    return rows.map(jobEventRecord);
  }

  async getHostReport(host: string): Promise<HostReport | undefined> {
    const r = await this.db.selectFrom('host_reports').selectAll().where('host', '=', host).executeTakeFirst();
    return (
      r && {
        host: r.host,
        at: r.at,
        report: JSON.parse(r.report_json) as unknown,
        liveSha256: r.live_sha256,
        drift: parseJson<unknown>(r.drift_json),
        driftAt: r.drift_at,
      }
    );
  }

  async driftSnapshots(filter: {
    readonly from: string;
    readonly to: string;
    readonly hosts?: readonly string[] | undefined;
  }): Promise<DriftSnapshot[]> {
    let q = this.db.selectFrom('host_drift').selectAll().where('at', '>=', filter.from).where('at', '<=', filter.to);
    if (filter.hosts !== undefined) {
      if (filter.hosts.length === 0) return [];
      q = q.where('host', 'in', [...filter.hosts]);
    }
    const rows = await q.orderBy('at').orderBy('id').execute();
    return rows.map(driftRecord);
  }

  async auditEntries(
    range: {
      readonly from?: number;
      readonly to?: number;
      readonly newestFirst?: boolean;
      readonly limit?: number;
    } = {},
  ): Promise<AuditEntry[]> {
    let q = this.db.selectFrom('audit_log').selectAll();
    if (range.from !== undefined) q = q.where('seq', '>=', range.from);
    if (range.to !== undefined) q = q.where('seq', '<=', range.to);
    q = q.orderBy('seq', range.newestFirst ? 'desc' : 'asc');
    if (range.limit !== undefined) q = q.limit(range.limit);
    const rows = await q.execute();
    return rows.map(auditRecord);
  }
}

class SqlWriter extends SqlReader implements StoreWriter {
  constructor(
    db: Kysely<DB>,
    private readonly actor: Actor,
    private head: { seq: number; hash: string },
  ) {
    super(db);
  }

  async insertToken(
    t: Omit<TokenRecord, 'revokedAt' | 'lastUsedAt' | 'expiresAt' | 'createdByToken'> & {
      readonly expiresAt?: string | null;
      readonly createdByToken?: string | null;
    },
  ): Promise<TokenRecord> {
    const r = await this.db
      .insertInto('tokens')
      .values({
        id: t.id,
        name: t.name,
        role: t.role,
        secret_hash: t.secretHash,
        created_at: t.createdAt,
        created_by: t.createdBy,
        revoked_at: null,
        last_used_at: null,
        expires_at: t.expiresAt ?? null,
        created_by_token: t.createdByToken ?? null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return tokenRecord(r);
  }

  async revokeToken(id: string, at: string): Promise<TokenRecord | undefined> {
    const r = await this.db
      .updateTable('tokens')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .returningAll()
      .executeTakeFirst();
    // Revoking twice keeps the first revocation time.
    return r ? tokenRecord(r) : this.getToken(id);
  }

  async insertChange(
    c: Omit<
      ChangeRecord,
      'id' | 'version' | 'state' | 'override' | 'emergency' | 'rollbackOf' | 'authors' | 'rulesetSha256' | 'planError'
    > & {
      readonly rollbackOf?: number | null;
      readonly authors?: readonly string[];
      readonly state?: 'proposed' | 'planning';
      readonly rulesetSha256?: string;
    },
  ): Promise<ChangeRecord> {
    const r = await this.db
      .insertInto('changes')
      .values({
        target_kind: c.target.kind,
        target_name: c.target.name,
        hosts_json: JSON.stringify(c.hosts),
        author: c.author,
        reason: c.reason,
        ticket: c.ticket,
        format: c.format,
        ruleset: c.ruleset,
        state: c.state ?? 'proposed',
        version: 1,
        created_at: c.createdAt,
        updated_at: c.updatedAt,
        override_json: null,
        emergency_json: null,
        rollback_of: c.rollbackOf ?? null,
        authors_json: JSON.stringify(c.authors ?? [c.author]),
        ruleset_sha256: c.rulesetSha256 ?? rulesetSha256(c.ruleset),
        plan_error_json: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return changeRecord(r);
  }

  async updateChange(
    id: number,
    expectedVersion: number,
    patch: Partial<
      Pick<ChangeRecord, 'state' | 'override' | 'emergency' | 'ruleset' | 'format' | 'reason' | 'authors' | 'planError'>
    > & {
      readonly updatedAt: string;
      readonly rulesetSha256?: string;
    },
  ): Promise<ChangeRecord> {
    const set: Partial<Record<keyof ChangesTable, unknown>> = { updated_at: patch.updatedAt };
    if (patch.state !== undefined) set.state = patch.state;
    if (patch.ruleset !== undefined) {
      set.ruleset = patch.ruleset;
      set.ruleset_sha256 = patch.rulesetSha256 ?? rulesetSha256(patch.ruleset);
    }
    if (patch.authors !== undefined) set.authors_json = JSON.stringify(patch.authors);
    if (patch.planError !== undefined) {
      set.plan_error_json = patch.planError === null ? null : JSON.stringify(patch.planError);
    }
    if (patch.format !== undefined) set.format = patch.format;
    if (patch.reason !== undefined) set.reason = patch.reason;
    if (patch.override !== undefined)
      set.override_json = patch.override === null ? null : JSON.stringify(patch.override);
    if (patch.emergency !== undefined) {
      set.emergency_json = patch.emergency === null ? null : JSON.stringify(patch.emergency);
    }
    const r = await this.db
      .updateTable('changes')
      .set({ ...(set as object), version: sql<number>`version + 1` })
      .where('id', '=', id)
      .where('version', '=', expectedVersion)
      .returningAll()
      .executeTakeFirst();
    if (r) return changeRecord(r);
    const now = await this.getChange(id);
    if (now === undefined) throw new UserError('RAMPART_ERR_NOT_FOUND', `change ${id} does not exist`, { id });
    throw new UserError(
      'RAMPART_ERR_CONFLICT',
      `change ${id} was modified concurrently: expected version ${expectedVersion}, it is now at version ${now.version}`,
      { id, expectedVersion, version: now.version },
    );
  }

  async insertPlan(p: Omit<PlanRecord, 'id' | 'stale'>): Promise<PlanRecord> {
    const r = await this.db
      .insertInto('plans')
      .values({
        change_id: p.changeId,
        created_at: p.createdAt,
        change_version: p.changeVersion,
        base_revisions_json: JSON.stringify(p.baseRevisions),
        blocked: p.blocked ? 1 : 0,
        risk: p.risk,
        stale: 0,
        plan_json: JSON.stringify(p.plan ?? null),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return planRecord(r);
  }

  async markPlansStale(changeId: number): Promise<number> {
    const r = await this.db
      .updateTable('plans')
      .set({ stale: 1 })
      .where('change_id', '=', changeId)
      .where('stale', '=', 0)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  async insertReview(rv: Omit<ReviewRecord, 'id' | 'voidedAt'>): Promise<ReviewRecord> {
    const r = await this.db
      .insertInto('reviews')
      .values({
        change_id: rv.changeId,
        plan_id: rv.planId,
        reviewer: rv.reviewer,
        verdict: rv.verdict,
        comment: rv.comment,
        at: rv.at,
        voided_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return reviewRecord(r);
  }

  async voidReviews(changeId: number, at: string): Promise<number> {
    const r = await this.db
      .updateTable('reviews')
      .set({ voided_at: at })
      .where('change_id', '=', changeId)
      .where('voided_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  async setDesired(d: Omit<DesiredState, 'revision'>): Promise<DesiredState> {
    const prev = await this.getDesired(d.host);
    const revision = (prev?.revision ?? 0) + 1;
    await this.db
      .insertInto('desired')
      .values({
        host: d.host,
        revision,
        format: d.format,
        ruleset: d.ruleset,
        change_id: d.changeId,
        updated_at: d.updatedAt,
      })
      .execute();
    return {
      host: d.host,
      revision,
      format: d.format,
      ruleset: d.ruleset,
      changeId: d.changeId,
      updatedAt: d.updatedAt,
    };
  }

  async insertJob(j: Omit<ApplyJob, 'id' | 'state' | 'updatedAt'>): Promise<ApplyJob> {
    const r = await this.db
      .insertInto('jobs')
      .values({
        change_id: j.changeId,
        plan_id: j.planId,
        host: j.host,
        step: j.step,
        state: 'queued',
        created_at: j.createdAt,
        updated_at: j.createdAt,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return jobRecord(r);
  }

  async updateJob(id: number, state: JobState, at: string): Promise<ApplyJob | undefined> {
    const r = await this.db
      .updateTable('jobs')
      .set({ state, updated_at: at })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    return r && jobRecord(r);
  }

  async insertJobEvent(e: Omit<JobEvent, 'id'>): Promise<JobEvent> {
    const r = await this.db
      .insertInto('job_events')
      .values({
        job_id: e.jobId,
        change_id: e.changeId,
        host: e.host,
        at: e.at,
        source_at: e.sourceAt,
        source: e.source,
        kind: e.kind,
        detail: e.detail,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return jobEventRecord(r);
  }

  async setHostReport(r: HostReport): Promise<HostReport> {
    const row = {
      host: r.host,
      at: r.at,
      report_json: JSON.stringify(r.report),
      live_sha256: r.liveSha256,
      drift_json: r.drift === null || r.drift === undefined ? null : JSON.stringify(r.drift),
      drift_at: r.driftAt,
    };
    await this.db
      .insertInto('host_reports')
      .values(row)
      .onConflict((oc) => oc.column('host').doUpdateSet({ ...row }))
      .execute();
    return r;
  }

  async addDriftSnapshot(
    d: Omit<DriftSnapshot, 'id' | 'live' | 'liveBytes'> & { readonly live: string },
  ): Promise<DriftSnapshot> {
    const bytes = Buffer.byteLength(d.live, 'utf8');
    const r = await this.db
      .insertInto('host_drift')
      .values({
        host: d.host,
        at: d.at,
        desired_revision: d.desiredRevision,
        format: d.format,
        live: bytes <= DRIFT_LIVE_MAX_BYTES ? d.live : null,
        live_sha256: d.liveSha256,
        live_bytes: bytes,
        summary: d.summary,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return driftRecord(r);
  }

  async audit(draft: AuditDraft): Promise<AuditEntry> {
    const fields = {
      seq: this.head.seq + 1,
      at: new Date().toISOString(),
      actor: this.actor.name,
      role: this.actor.role,
      from: this.actor.from,
      action: draft.action,
      target: draft.target,
      // Hash what will read back from the text column, so verification recomputes the same bytes.
      before: jsonValue(draft.before),
      after: jsonValue(draft.after),
      prevHash: this.head.hash,
    };
    const entry: AuditEntry = { ...fields, hash: entryHash(fields) };
    await this.db
      .insertInto('audit_log')
      .values({
        seq: entry.seq,
        at: entry.at,
        actor: entry.actor,
        role: entry.role,
        origin: entry.from,
        action: entry.action,
        target: entry.target,
        before_json: JSON.stringify(entry.before),
        after_json: JSON.stringify(entry.after),
        prev_hash: entry.prevHash,
        hash: entry.hash,
      })
      .execute();
    await this.db
      .updateTable('audit_head')
      .set({ last_seq: entry.seq, last_hash: entry.hash })
      .where('id', '=', 1)
      .execute();
    this.head = { seq: entry.seq, hash: entry.hash };
    return entry;
  }
}

function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts a write transaction holding the store's write lock. */
async function begin(kind: Dialect, conn: Kysely<DB>): Promise<void> {
  if (kind === 'postgres') {
    await sql`begin`.execute(conn);
    return;
  }
  // better-sqlite3 waits for a busy database synchronously, which would freeze this process's event loop (and with
  // it any other connection in this process that holds the lock and needs the loop to commit). So the lock is
  // taken without the busy handler and retried asynchronously with jittered backoff.
  await sql`pragma busy_timeout = 0`.execute(conn);
  try {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        await sql`begin immediate`.execute(conn);
        return;
      } catch (e) {
        if (!isBusy(e) || Date.now() > deadline) throw e;
        await sleep(Math.min(50, 1 + attempt) * (0.5 + Math.random()));
      }
    }
  } finally {
    await sql.raw(`pragma busy_timeout = ${BUSY_TIMEOUT_MS}`).execute(conn);
  }
}

export class SqlStore extends SqlReader implements Store {
  readonly monitoring: MonitorStore;
  readonly traffic: TrafficStore;
  readonly outbox: OutboxStore;
  readonly alerting: AlertStore;
  readonly incidents: IncidentStore;
  readonly sessions: SessionStore;

  constructor(
    readonly kind: Dialect,
    db: Kysely<DB>,
  ) {
    super(db);
    this.monitoring = new SqlMonitorStore(kind, db);
    this.traffic = new SqlTrafficStore(kind, db);
    this.outbox = new SqlOutboxStore(kind, db);
    this.alerting = new SqlAlertStore(kind, db);
    this.incidents = new SqlIncidentStore(kind, db);
    this.sessions = new SqlSessionStore(db);
  }

  write<T>(actor: Actor, fn: (w: StoreWriter) => Promise<T>): Promise<T> {
    return this.db.connection().execute(async (conn) => {
      await begin(this.kind, conn);
      try {
        // The first statement: takes the write lock (row lock in PostgreSQL; already held in SQLite) and reads the
        // chain head under it.
        const head = await conn
          .updateTable('audit_head')
          .set({ last_seq: sql<number>`last_seq` })
          .where('id', '=', 1)
          .returning(['last_seq', 'last_hash'])
          .executeTakeFirstOrThrow();
        const result = await fn(new SqlWriter(conn, actor, { seq: head.last_seq, hash: head.last_hash }));
        await sql`commit`.execute(conn);
        return result;
      } catch (e) {
        try {
          await sql`rollback`.execute(conn);
        } catch {
          // The transaction is already gone (connection lost); the original error is what matters.
        }
        throw e;
      }
    });
  }

  async touchToken(id: string, at: string): Promise<void> {
    const earlier = new Date(Date.parse(at) - LAST_USED_GRANULARITY_MS).toISOString();
    try {
      await this.db
        .updateTable('tokens')
        .set({ last_used_at: at })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', earlier)]))
        .execute();
    } catch {
      // Noting the use is best effort: a busy store must not fail the request that used the token.
    }
  }

  /** Head row as stored (for verification against truncation). */
  async auditHead(): Promise<{ lastSeq: number; lastHash: string } | undefined> {
    const r = await this.db
      .selectFrom('audit_head')
      .select(['last_seq', 'last_hash'])
      .where('id', '=', 1)
      .executeTakeFirst();
    return r && { lastSeq: r.last_seq, lastHash: r.last_hash };
  }

  async verifyAuditLog(expected?: { readonly seq?: number; readonly hash: string }): Promise<ChainVerdict> {
    const head = await this.auditHead();
    const entries = await this.auditEntries();
    if (head === undefined) {
      return {
        ok: false,
        seq: (entries[entries.length - 1]?.seq ?? 0) + 1,
        problem: 'head-missing',
        message: 'the audit head row is missing: it was deleted, so truncation can no longer be ruled out',
      };
    }
    const chain = verifyChain(entries, head);
    if (!chain.ok) return chain;
    const rows = await this.db.selectFrom('changes').select(['id', 'ruleset']).orderBy('id').execute();
    const records = checkRecordedRulesets(
      entries,
      rows.map((r) => ({ id: r.id, sha256: rulesetSha256(r.ruleset) })),
    );
    if (records) return records;
    return (expected && checkExpectedHead(entries, expected)) ?? chain;
  }

  schemaVersion(): Promise<number> {
    return appliedVersion(this.db);
  }

  close(): Promise<void> {
    return this.db.destroy();
  }
}
