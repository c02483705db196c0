/**
 * Kysely table types of the store. JSON values are kept as text (JSON.stringify) in both dialects so that what is
 * read back is exactly what was written (the audit chain hashes depend on it); timestamps are ISO 8601 text;
 * booleans are 0/1 integers. Column names are snake_case; src/store/sql-store.ts maps rows to the records of
 * src/store/types.ts.
 */
import type { Generated } from 'kysely';

export interface TokensTable {
  id: string;
  name: string;
  role: string;
  secret_hash: string;
  created_at: string;
  created_by: string;
  revoked_at: string | null;
  last_used_at: string | null;
  /** 0004: when the token stops working (null: never). */
  expires_at: string | null;
  /** 0004: the id of the token that minted this one (null: minted by `rampart init` or before 0004). */
  created_by_token: string | null;
}

export interface AuditLogTable {
  seq: number;
  at: string;
  actor: string;
  role: string;
  /** `from` is a reserved word in SQL. */
  origin: string;
  action: string;
  target: string;
  before_json: string;
  after_json: string;
  prev_hash: string;
  hash: string;
}

/** One row (id = 1): the newest entry's seq and hash. Every write transaction locks it first. */
export interface AuditHeadTable {
  id: number;
  last_seq: number;
  last_hash: string;
}

export interface ChangesTable {
  id: Generated<number>;
  target_kind: string;
  target_name: string;
  hosts_json: string;
  author: string;
  reason: string;
  ticket: string | null;
  format: string;
  ruleset: string;
  state: string;
  version: number;
  created_at: string;
  updated_at: string;
  override_json: string | null;
  emergency_json: string | null;
  rollback_of: number | null;
  /** 0004: everyone who proposed or edited the ruleset (JSON array; null on older rows: just `author`). */
  authors_json: string | null;
  /** 0004: hex SHA-256 of `ruleset` (null on older rows: computed when read). */
  ruleset_sha256: string | null;
  /** 0004: why the last plan could not be computed ({code, message, at}; null when it could). */
  plan_error_json: string | null;
}

export interface PlansTable {
  id: Generated<number>;
  change_id: number;
  created_at: string;
  change_version: number;
  base_revisions_json: string;
  blocked: number;
  risk: string;
  stale: number;
  plan_json: string;
}

export interface ReviewsTable {
  id: Generated<number>;
  change_id: number;
  plan_id: number;
  reviewer: string;
  verdict: string;
  comment: string;
  at: string;
  voided_at: string | null;
}

/** Every revision of every host's desired ruleset (the newest is the current one; older ones allow rollback). */
export interface DesiredTable {
  host: string;
  revision: number;
  format: string;
  ruleset: string;
  change_id: number | null;
  updated_at: string;
}

export interface JobsTable {
  id: Generated<number>;
  change_id: number;
  plan_id: number;
  host: string;
  step: number;
  state: string;
  created_at: string;
  updated_at: string;
}

export interface JobEventsTable {
  id: Generated<number>;
  job_id: number;
  change_id: number;
  host: string;
  at: string;
  source_at: string | null;
  source: string;
  kind: string;
  detail: string;
}

export interface HostReportsTable {
  host: string;
  at: string;
  report_json: string;
  live_sha256: string;
  drift_json: string | null;
  drift_at: string | null;
}

/** 0012: the live ruleset of each drift (issue 16 §3), for the suspected change. */
export interface HostDriftTable {
  id: Generated<number>;
  host: string;
  at: string;
  desired_revision: number;
  format: string;
  live: string | null;
  live_sha256: string;
  live_bytes: number;
  summary: string;
}

/** 0005: each monitor's current state (src/monitor/state.ts), to resume after a restart. */
export interface MonitorStateTable {
  monitor: string;
  state: string;
  since: string;
  updated_at: string;
  reason: string;
  vantages_json: string;
  /** 0006: the holder's diagnosis (JSON), for the other replicas' views. */
  diagnosis_json: string | null;
}

/** 0006: results waiting for the replica that holds their monitor's lease. */
export interface MonitorInboxTable {
  id: Generated<number>;
  monitor: string;
  at: number | string;
  /** The ProbeResult, vantage included. */
  result_json: string;
}

/** 0005: monitoring's events (state changes, diagnoses, traffic drops). */
export interface MonitorEventsTable {
  id: Generated<number>;
  at: string;
  kind: string;
  subject: string;
  data_json: string;
}

/** 0005: raw probe results, kept around state changes. `at` is epoch milliseconds. */
export interface ProbeResultsTable {
  id: Generated<number>;
  monitor: string;
  vantage: string;
  at: number | string;
  ok: number;
  total_ms: number;
  error: string | null;
  detail_json: string | null;
}

/** 0005: per-monitor rollups of probe results; `bucket` is the bucket's start in epoch seconds. */
export interface ProbeRollupsTable {
  monitor: string;
  resolution: number;
  bucket: number | string;
  count: number;
  failures: number;
  sum_ms: number;
  max_ms: number;
  /** Counts per latency bucket (src/monitor/rollup.ts LATENCY_BOUNDS_MS, and one above the last bound). */
  h0: number;
  h1: number;
  h2: number;
  h3: number;
  h4: number;
  h5: number;
  h6: number;
  h7: number;
  h8: number;
  h9: number;
  h10: number;
  h11: number;
  h12: number;
  h13: number;
  h14: number;
}

/** 0005: a monitor's minute rollups of one hour (`hour`: its start, epoch seconds), packed (monitor-store.ts packHour). */
export interface ProbeMinutesPackedTable {
  monitor: string;
  hour: number | string;
  data: Buffer;
}

/** 0005: which replica probes a monitor until `expires` (epoch ms). */
export interface MonitorLeasesTable {
  monitor: string;
  holder: string;
  expires: number | string;
}

/** 0005: the server replicas alive (last heartbeat, epoch ms), to share the monitors between them. */
export interface MonitorReplicasTable {
  holder: string;
  seen: number | string;
}

/** 0007: request counts of one bucket (`bucket`: its start, epoch seconds; `resolution`: 10, 60 or 3600 s). */
export interface TrafficPointsTable {
  service: string;
  host: string;
  source: string;
  resolution: number;
  bucket: number | string;
  requests: number | string;
  errors: number | string;
  /** How much of the bucket the agent's windows covered (ms): a rate is requests / covered time. */
  covered_ms: number | string;
}

/** 0007: the start (epoch ms) of the last window stored per agent source: older or equal windows are duplicates. */
export interface TrafficMarksTable {
  host: string;
  service: string;
  source: string;
  last_start: number | string;
}

/** 0007: a traffic-drop detector's state (src/monitor/traffic-drop.ts toJSON), per series. */
export interface TrafficDetectorsTable {
  series: string;
  updated_at: string;
  state_json: string;
}

/**
 * 0008 (issue 15): one notification to one channel of its target, waiting, sent or given up. Times in epoch ms
 * (`created_ms`, `next_at`, `lease_until`); `created_at` is the draft's ISO time.
 */
export interface AlertOutboxTable {
  id: Generated<number>;
  key: string;
  /** `webhook/0`, `email/1`, ... (a receiver's config list and index) or `email`, `slack`, ... (a user's contact). */
  channel: string;
  /** The receiver's name, or `@user` for a user target: what queue depth and age are reported by. */
  receiver: string;
  group_key: string;
  target_json: string;
  notification_json: string;
  created_at: string;
  created_ms: number | string;
  /** pending, sent, failed. */
  state: string;
  attempts: number;
  next_at: number | string;
  lease_holder: string | null;
  lease_until: number | string | null;
  last_error: string | null;
  done_at: string | null;
}

/** 0009 (issue 15): an alert by fingerprint (labels and annotations as JSON objects). */
export interface AlertsTable {
  fingerprint: string;
  labels_json: string;
  annotations_json: string;
  state: string;
  starts_at: string;
  ends_at: string | null;
  updated_at: string;
  source: string;
  generator_url: string | null;
  ack_by: string | null;
  ack_at: string | null;
}

/** 0009: an alert group: its timers and what it last announced (src/alerting/group.ts GroupState) and escalation. */
export interface AlertGroupsTable {
  key: string;
  route_key: string;
  receiver: string;
  group_labels_json: string;
  /** Epoch ms of the next flush. */
  next_flush: number | string;
  state_json: string;
  escalation_json: string | null;
}

/** 0009: which alerts a group holds (an alert is in one group per route it takes). */
export interface AlertGroupMembersTable {
  group_key: string;
  fingerprint: string;
}

/** 0009: silences (src/alerting/mute.ts Silence). */
export interface SilencesTable {
  id: string;
  matchers_json: string;
  starts_at: string;
  ends_at: string;
  created_by: string;
  comment: string;
  until_resolved: number;
  matched_at: string | null;
  expired_at: string | null;
}

/** 0009: the id of the last monitoring event turned into alerts, per consumer. */
export interface AlertingCursorsTable {
  name: string;
  last_id: number | string;
}

/** 0010: incidents (src/incident/types.ts Incident). */
export interface IncidentsTable {
  id: Generated<number>;
  title: string;
  severity: string;
  status: string;
  commander: string | null;
  services_json: string;
  hosts_json: string;
  group_key: string | null;
  declared_by: string;
  started_at: string;
  detected_at: string;
  acknowledged_at: string | null;
  mitigated_at: string | null;
  resolved_at: string | null;
  reopened: number;
  follow_ups_json: string;
  version: number;
  updated_at: string;
}

/** 0010: an incident's own timeline entries (declared, ack, status updates, notes); `starred` is 0/1. */
export interface IncidentEntriesTable {
  id: Generated<number>;
  incident_id: number;
  kind: string;
  at: string;
  actor: string;
  text: string;
  data_json: string;
  starred: number;
  /** 0013: set on entries written once per incident (the suspected cause); null otherwise. */
  once_key: string | null;
}

/** 0010: stars on timeline entries assembled from events (by their stable key). */
export interface IncidentStarsTable {
  incident_id: number;
  entry_key: string;
  starred_by: string;
  at: string;
}

/** 0010: every saved version of an incident's postmortem. */
export interface IncidentPostmortemsTable {
  id: Generated<number>;
  incident_id: number;
  version: number;
  markdown: string;
  json: string;
  author: string;
  created_at: string;
}

/** 0011: dashboard sessions; the id itself is never stored, only its SHA-256. */
export interface WebSessionsTable {
  id_hash: string;
  token_id: string;
  created_at: string;
  expires_at: string;
  ended_at: string | null;
  csrf_secret: string;
}

/** Kysely's Migrator bookkeeping (default table names). */
export interface KyselyMigrationTable {
  name: string;
  timestamp: string;
}

export interface KyselyMigrationLockTable {
  id: string;
  is_locked: number;
}

export interface DB {
  tokens: TokensTable;
  audit_log: AuditLogTable;
  audit_head: AuditHeadTable;
  changes: ChangesTable;
  plans: PlansTable;
  reviews: ReviewsTable;
  desired: DesiredTable;
  jobs: JobsTable;
  job_events: JobEventsTable;
  host_reports: HostReportsTable;
  host_drift: HostDriftTable;
  monitor_state: MonitorStateTable;
  monitor_events: MonitorEventsTable;
  probe_results: ProbeResultsTable;
  probe_rollups: ProbeRollupsTable;
  probe_minutes_packed: ProbeMinutesPackedTable;
  monitor_leases: MonitorLeasesTable;
  monitor_replicas: MonitorReplicasTable;
  monitor_inbox: MonitorInboxTable;
  traffic_points: TrafficPointsTable;
  traffic_marks: TrafficMarksTable;
  traffic_detectors: TrafficDetectorsTable;
  alert_outbox: AlertOutboxTable;
  alerts: AlertsTable;
  alert_groups: AlertGroupsTable;
  alert_group_members: AlertGroupMembersTable;
  silences: SilencesTable;
  alerting_cursors: AlertingCursorsTable;
  incidents: IncidentsTable;
  incident_entries: IncidentEntriesTable;
  incident_stars: IncidentStarsTable;
  incident_postmortems: IncidentPostmortemsTable;
  web_sessions: WebSessionsTable;
  kysely_migration: KyselyMigrationTable;
  kysely_migration_lock: KyselyMigrationLockTable;
}

export type Dialect = 'sqlite' | 'postgres';
