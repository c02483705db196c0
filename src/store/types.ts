/**
 * The store contract: what the server keeps (tokens, the hash-chained audit log, changes with their plans and
 * reviews, each host's desired ruleset, the agents' apply queue) and the one interface both backends implement
 * (SQLite by default, PostgreSQL with `--db postgres://...`). Only src/store/ knows SQL; everything above it sees
 * these types.
 *
 * Every write happens inside `store.write(actor, fn)`: one transaction that first takes the store's single write
 * lock (so concurrent proposals and approvals are serialised, no lost update) and that appends the audit entries
 * the function records, chained to the previous entry's hash, in the same transaction (so a crash never leaves a
 * state change without its audit entry or the other way round).
 */
import type { InputFormat } from '../firewall/model.js';
import type { AlertStore } from './alert-store.js';
import type { IncidentStore } from './incident-store.js';
import type { MonitorStore } from './monitor-store.js';
import type { OutboxStore } from './outbox-store.js';
import type { SessionStore } from './session-store.js';
import type { TrafficStore } from './traffic-store.js';

/** The people's roles, in order: each may do what the roles before it may. */
export const ROLES = ['viewer', 'operator', 'approver', 'admin'] as const;
/**
 * Every token role: the people's, `agent` for a host's agent (it may only speak for its host), and `probe` for a
 * `rampart probe` vantage point (it may only take its monitors and send their results). The last two are outside the
 * order: they open their own routes and nothing else.
 */
export const TOKEN_ROLES = [...ROLES, 'agent', 'probe', 'alertmanager'] as const;
export type Role = (typeof TOKEN_ROLES)[number];

const isPersonRole = (r: Role): r is (typeof ROLES)[number] => (ROLES as readonly string[]).includes(r);

/**
 * viewer < operator < approver < admin; an agent (probe, alertmanager) token opens the agent (probe, alertmanager)
 * routes only, and nothing else does.
 */
export function roleAtLeast(have: Role, need: Role): boolean {
  if (!isPersonRole(have) || !isPersonRole(need)) return have === need;
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

export interface TokenRecord {
  readonly id: string;
  /** Who the token speaks for: the actor name in the audit log and on changes (`alice`, `ci-pipeline`). */
  readonly name: string;
  readonly role: Role;
  /** Hex SHA-256 of the secret part; the secret itself is never stored. */
  readonly secretHash: string;
  readonly createdAt: string;
  readonly createdBy: string;
  /** The token that minted this one (null: minted locally, e.g. by `rampart init`): its lineage, for four eyes. */
  readonly createdByToken: string | null;
  readonly revokedAt: string | null;
  readonly lastUsedAt: string | null;
  /** When the token stops working (null: never). */
  readonly expiresAt: string | null;
}

/** Who did something, from where (the audit log's who and from-where). */
export interface Actor {
  readonly name: string;
  readonly role: Role | 'system';
  /** Remote address for API calls, `local` for CLI commands on the store itself. */
  readonly from: string;
}

export interface AuditEntry {
  /** 1, 2, 3, ... without gaps. */
  readonly seq: number;
  /** ISO 8601 UTC with milliseconds. */
  readonly at: string;
  readonly actor: string;
  readonly role: string;
  readonly from: string;
  /** Dotted verb: `token.create`, `change.propose`, `change.approve`, `config.reload`, ... */
  readonly action: string;
  /** What it acted on: `token:3f2a`, `change:12`, `host:web1`, `config`. */
  readonly target: string;
  readonly before: unknown;
  readonly after: unknown;
  /** Hash of the previous entry ('' x 64 zeros for the first). */
  readonly prevHash: string;
  /** sha256 over the canonical JSON of every field above (src/store/audit-chain.ts). */
  readonly hash: string;
}

/** What `write` callers hand in; the store adds seq, at, actor fields and the hashes. */
export interface AuditDraft {
  readonly action: string;
  readonly target: string;
  readonly before?: unknown;
  readonly after?: unknown;
}

/** The formats a desired ruleset may be submitted in (the parsers' formats). */
export type RulesetFormat = InputFormat;

export const CHANGE_STATES = [
  'proposed',
  'planning',
  'plan-failed',
  'planned',
  'approved',
  'rejected',
  'applying',
  'applied',
  'rolled-back',
  'failed',
] as const;
export type ChangeState = (typeof CHANGE_STATES)[number];

export interface ChangeTarget {
  readonly kind: 'host' | 'group';
  readonly name: string;
}

export interface ChangeRecord {
  readonly id: number;
  readonly target: ChangeTarget;
  /** The hosts the target resolved to when proposed, in rollout order. */
  readonly hosts: readonly string[];
  readonly author: string;
  readonly reason: string;
  readonly ticket: string | null;
  readonly format: RulesetFormat;
  /** The desired ruleset as submitted. */
  readonly ruleset: string;
  readonly state: ChangeState;
  /** Bumped on every update of the change (optimistic check on top of the write lock). */
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  /**
   * Everyone who shaped the ruleset: the proposer first, then each person who edited it. None of them may approve
   * the change (src/change/policy.ts).
   */
  readonly authors: readonly string[];
  /** Hex SHA-256 of `ruleset`: what approvals and overrides are bound to, and what the audit entries record. */
  readonly rulesetSha256: string;
  /** Set when an admin let a blocked plan through: flagged everywhere afterwards, while it still covers the plan. */
  readonly override: Override | null;
  /** Why the last plan could not be computed (state plan-failed): the budget ran out, or the ruleset was refused. */
  readonly planError: PlanError | null;
  /** Set when applied inside a freeze window as an emergency change. */
  readonly emergency: { readonly by: string; readonly reason: string; readonly at: string } | null;
  /** The applied change this one rolls back (its hosts' previous desired rulesets), if it is a rollback. */
  readonly rollbackOf: number | null;
}

export interface PlanError {
  /** RAMPART_ERR_PLAN_TIMEOUT, RAMPART_ERR_PLAN_MEMORY, RAMPART_ERR_PARSE, ... */
  readonly code: string;
  readonly message: string;
  readonly at: string;
}

/**
 * An admin's override of a blocked plan. It covers one ruleset (its SHA-256) and the blockers the admin read on
 * one plan; an edit of the ruleset, or a re-plan that finds a blocker it does not list, makes it lapse.
 */
export interface Override {
  readonly by: string;
  readonly reason: string;
  readonly at: string;
  /** The plan the admin read (absent on overrides recorded before issue 12: those cover nothing). */
  readonly planId?: number;
  readonly rulesetSha256?: string;
  /** The blockers it covers, by `blockerKey` (src/change/policy.ts). */
  readonly blockers?: readonly string[];
}

export interface PlanRecord {
  readonly id: number;
  readonly changeId: number;
  readonly createdAt: string;
  /** The change version and each host's desired revision the plan was computed against. */
  readonly changeVersion: number;
  readonly baseRevisions: Readonly<Record<string, number>>;
  readonly blocked: boolean;
  readonly risk: string;
  /** Set when the change or a host's desired state moved on after the plan: a stale plan cannot be applied. */
  readonly stale: boolean;
  /** The plan itself (src/change/plan.ts `Plan`), stored as data. */
  readonly plan: unknown;
}

export interface ReviewRecord {
  readonly id: number;
  readonly changeId: number;
  readonly planId: number;
  readonly reviewer: string;
  readonly verdict: 'approve' | 'reject';
  readonly comment: string;
  readonly at: string;
  /** Set when the change or a host's state changed after the review: it no longer counts. */
  readonly voidedAt: string | null;
}

export interface DesiredState {
  readonly host: string;
  /** 1, 2, 3, ... per host; 0 means no desired ruleset yet. */
  readonly revision: number;
  readonly format: RulesetFormat;
  readonly ruleset: string;
  readonly changeId: number | null;
  readonly updatedAt: string;
}

export type JobState = 'queued' | 'taken' | 'done' | 'failed' | 'cancelled';

/** The agents' queue: one job per host of an approved change, in rollout order. */
export interface ApplyJob {
  readonly id: number;
  readonly changeId: number;
  readonly planId: number;
  readonly host: string;
  /** Position in the rollout (0 = canary). */
  readonly step: number;
  readonly state: JobState;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** The result of recomputing the audit chain (src/store/audit-chain.ts verifyChain). */
export type ChainVerdict =
  | { readonly ok: true; readonly count: number; readonly headHash: string }
  | {
      readonly ok: false;
      /** The first entry that was altered, inserted, or that follows a removed one. */
      readonly seq: number;
      /** record-altered: a change's ruleset no longer matches the hash the chain recorded; head-missing: no head row. */
      readonly problem: 'altered' | 'inserted' | 'removed' | 'record-altered' | 'head-missing';
      readonly message: string;
    };

/** One step of a job's safe apply, as the agent (or the server) reported it: the change's timeline. */
export interface JobEvent {
  readonly id: number;
  readonly jobId: number;
  readonly changeId: number;
  readonly host: string;
  /** When the server recorded it. */
  readonly at: string;
  /** When it happened where it happened (the agent's clock), if different. */
  readonly sourceAt: string | null;
  /** `agent` or `server`. */
  readonly source: string;
  readonly kind: string;
  readonly detail: string;
}

/** The latest live state an agent reported for its host, and the drift computed from it. */
export interface HostReport {
  readonly host: string;
  readonly at: string;
  /** The agent's report (src/agent/protocol.ts AgentReport). */
  readonly report: unknown;
  /** Hex SHA-256 of the live ruleset text, to compute drift only when it changed. */
  readonly liveSha256: string;
  /** The drift against the desired ruleset (null while not computed or when there is no desired ruleset). */
  readonly drift: unknown;
  readonly driftAt: string | null;
}

/** Live rulesets longer than this (UTF-8 bytes) are kept as their size and hash only. */
export const DRIFT_LIVE_MAX_BYTES = 1024 * 1024;

/**
 * A host's drift as it was reported: the live ruleset (bounded) against the desired revision it was compared with,
 * kept for the suspected change (issue 16 §3) after the host report moved on.
 */
export interface DriftSnapshot {
  readonly id: number;
  readonly host: string;
  /** When the server computed the drift (ISO 8601 UTC). */
  readonly at: string;
  readonly desiredRevision: number;
  /** The live ruleset's format: nft-text, nft-json or iptables-save. */
  readonly format: string;
  /** The live ruleset text; null when it was longer than DRIFT_LIVE_MAX_BYTES. */
  readonly live: string | null;
  readonly liveSha256: string;
  readonly liveBytes: number;
  readonly summary: string;
}

export interface ChangeFilter {
  readonly state?: ChangeState | undefined;
  readonly host?: string | undefined;
  readonly limit?: number | undefined;
}

/** The reads and writes available inside a write transaction (and, for reads, outside one). */
export interface StoreReader {
  getToken(id: string): Promise<TokenRecord | undefined>;
  listTokens(): Promise<TokenRecord[]>;
  getChange(id: number): Promise<ChangeRecord | undefined>;
  listChanges(filter?: ChangeFilter): Promise<ChangeRecord[]>;
  /** How many changes are in each state (states without changes are left out). */
  countChangesByState(): Promise<Partial<Record<ChangeState, number>>>;
  /** The newest plan of a change. */
  latestPlan(changeId: number): Promise<PlanRecord | undefined>;
  getPlan(id: number): Promise<PlanRecord | undefined>;
  listReviews(changeId: number): Promise<ReviewRecord[]>;
  getDesired(host: string): Promise<DesiredState | undefined>;
  /** One revision of a host's desired ruleset (every revision is kept). */
  getDesiredRevision(host: string, revision: number): Promise<DesiredState | undefined>;
  listJobs(filter?: {
    readonly changeId?: number | undefined;
    readonly host?: string | undefined;
    readonly state?: JobState | undefined;
  }): Promise<ApplyJob[]>;
  getJob(id: number): Promise<ApplyJob | undefined>;
  listJobEvents(filter: {
    readonly changeId?: number | undefined;
    readonly jobId?: number | undefined;
  }): Promise<JobEvent[]>;
  getHostReport(host: string): Promise<HostReport | undefined>;
  /** Drift snapshots with `at` in [from, to] (ISO 8601), on `hosts` (default all), oldest first. */
  driftSnapshots(filter: {
    readonly from: string;
    readonly to: string;
    readonly hosts?: readonly string[] | undefined;
  }): Promise<DriftSnapshot[]>;
  /**
   * Audit entries with seq in [from, to] (defaults: all), ascending; `newestFirst` descending, `limit` at most that
   * many (the dashboard's pages: `to` = the cursor - 1).
   */
  auditEntries(range?: {
    readonly from?: number;
    readonly to?: number;
    readonly newestFirst?: boolean;
    readonly limit?: number;
  }): Promise<AuditEntry[]>;
}

export interface StoreWriter extends StoreReader {
  insertToken(
    t: Omit<TokenRecord, 'revokedAt' | 'lastUsedAt' | 'expiresAt' | 'createdByToken'> & {
      readonly expiresAt?: string | null;
      readonly createdByToken?: string | null;
    },
  ): Promise<TokenRecord>;
  revokeToken(id: string, at: string): Promise<TokenRecord | undefined>;
  /** `authors` defaults to `[author]`; the ruleset's SHA-256 is computed here. */
  insertChange(
    c: Omit<
      ChangeRecord,
      'id' | 'version' | 'state' | 'override' | 'emergency' | 'rollbackOf' | 'authors' | 'rulesetSha256' | 'planError'
    > & {
      readonly rollbackOf?: number | null;
      readonly authors?: readonly string[];
      /** Default `proposed`; `planning` when the plan goes on after the answer. */
      readonly state?: 'proposed' | 'planning';
      /** The ruleset's SHA-256 when the caller computed it already (off the event loop); else computed here. */
      readonly rulesetSha256?: string;
    },
  ): Promise<ChangeRecord>;
  /**
   * Fails with a conflict error when the change's version is no longer `expectedVersion`. Bumps the version; a new
   * ruleset gets its SHA-256 recomputed.
   */
  updateChange(
    id: number,
    expectedVersion: number,
    patch: Partial<
      Pick<ChangeRecord, 'state' | 'override' | 'emergency' | 'ruleset' | 'format' | 'reason' | 'authors' | 'planError'>
    > & {
      readonly updatedAt: string;
      /** The new ruleset's SHA-256 when the caller computed it already; else computed here. */
      readonly rulesetSha256?: string;
    },
  ): Promise<ChangeRecord>;
  insertPlan(p: Omit<PlanRecord, 'id' | 'stale'>): Promise<PlanRecord>;
  markPlansStale(changeId: number): Promise<number>;
  insertReview(r: Omit<ReviewRecord, 'id' | 'voidedAt'>): Promise<ReviewRecord>;
  voidReviews(changeId: number, at: string): Promise<number>;
  /** Writes revision `previous revision + 1` and returns it. */
  setDesired(d: Omit<DesiredState, 'revision'>): Promise<DesiredState>;
  insertJob(j: Omit<ApplyJob, 'id' | 'state' | 'updatedAt'>): Promise<ApplyJob>;
  updateJob(id: number, state: JobState, at: string): Promise<ApplyJob | undefined>;
  insertJobEvent(e: Omit<JobEvent, 'id'>): Promise<JobEvent>;
  /** Inserts or replaces the host's report. */
  setHostReport(r: HostReport): Promise<HostReport>;
  /** Keeps a drift's live ruleset (the text is dropped, its size and hash kept, beyond DRIFT_LIVE_MAX_BYTES). */
  addDriftSnapshot(
    d: Omit<DriftSnapshot, 'id' | 'live' | 'liveBytes'> & { readonly live: string },
  ): Promise<DriftSnapshot>;
  /** Appends to the hash chain, inside this transaction. */
  audit(entry: AuditDraft): Promise<AuditEntry>;
}

export interface Store extends StoreReader {
  readonly kind: 'sqlite' | 'postgres';
  /** Monitoring's states, events, results, rollups and leases: outside the write lock and the audit chain. */
  readonly monitoring: MonitorStore;
  /** Incoming request counts and the traffic-drop detectors' states (issue 14, §3): also outside the chain. */
  readonly traffic: TrafficStore;
  /** The durable outbox of alert notifications (issue 15, §4): outside the chain too. */
  readonly outbox: OutboxStore;
  /** Alerts, alert groups, silences (issue 15): also outside the chain; people's actions are audited by the API. */
  readonly alerting: AlertStore;
  /** Incidents, their own entries, stars and postmortems (issue 16): outside the chain; the API audits actions. */
  readonly incidents: IncidentStore;
  /** Dashboard sessions (issue 17): outside the chain; sign-in and sign-out are audited by the API. */
  readonly sessions: SessionStore;
  /** Runs `fn` in one transaction holding the store's write lock; audit entries are attributed to `actor`. */
  write<T>(actor: Actor, fn: (w: StoreWriter) => Promise<T>): Promise<T>;
  /**
   * Notes that a token was used at `at` (not an audited action). Written at most once a minute per token: a
   * newer use within a minute of the recorded one changes nothing.
   */
  touchToken(id: string, at: string): Promise<void>;
  /**
   * Recomputes the whole audit chain against the stored head (verifyChain over auditEntries), checks each change's
   * ruleset against the SHA-256 the chain recorded, and, when given, the head kept elsewhere.
   */
  verifyAuditLog(expected?: { readonly seq?: number; readonly hash: string }): Promise<ChainVerdict>;
  /** The audit chain's head as recorded by the store (newest seq and hash): what catches truncation. */
  auditHead(): Promise<{ readonly lastSeq: number; readonly lastHash: string } | undefined>;
  /** The schema version after migrations (the number of the newest migration applied). */
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
}
