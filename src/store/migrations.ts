/**
 * Versioned schema migrations, run with Kysely's Migrator from a static in-code provider when a store is opened.
 * Names are `NNNN-what`; Kysely applies them in name order and records each in `kysely_migration`, so re-opening an
 * existing database runs nothing new. Never edit a released migration: add the next number.
 */
import { type CreateTableBuilder, type Kysely, type Migration, Migrator, sql } from 'kysely';
import { InternalError } from '../errors.js';
import { LATENCY_BOUNDS_MS } from '../monitor/rollup.js';
import { ZERO_HASH } from './audit-chain.js';
import type { DB, Dialect } from './schema.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations run against whatever schema the database has at the time.
type AnyDb = Kysely<any>;

/** An integer primary key the database numbers itself. */
function withId<T extends string>(kind: Dialect, t: CreateTableBuilder<T, never>): CreateTableBuilder<T, 'id'> {
  return kind === 'sqlite'
    ? t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    : t.addColumn('id', 'serial', (c) => c.primaryKey());
}

function initial(kind: Dialect): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('last_used_at', 'text')
        .execute();

      await db.schema
        .createTable('audit_log')
        .addColumn('seq', 'integer', (c) => c.primaryKey())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('origin', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('before_json', 'text', (c) => c.notNull())
        .addColumn('after_json', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_log_target').on('audit_log').column('target').execute();

      await db.schema
        .createTable('audit_head')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('last_seq', 'integer', (c) => c.notNull())
        .addColumn('last_hash', 'text', (c) => c.notNull())
        .execute();
      await db.insertInto('audit_head').values({ id: 1, last_seq: 0, last_hash: ZERO_HASH }).execute();

      await withId(kind, db.schema.createTable('changes'))
        .addColumn('target_kind', 'text', (c) => c.notNull())
        .addColumn('target_name', 'text', (c) => c.notNull())
        .addColumn('hosts_json', 'text', (c) => c.notNull())
        .addColumn('author', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('ticket', 'text')
        .addColumn('format', 'text', (c) => c.notNull())
        .addColumn('ruleset', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('override_json', 'text')
        .addColumn('emergency_json', 'text')
        .execute();
      await db.schema.createIndex('changes_state').on('changes').column('state').execute();

      await withId(kind, db.schema.createTable('plans'))
        .addColumn('change_id', 'integer', (c) => c.notNull().references('changes.id'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('change_version', 'integer', (c) => c.notNull())
        .addColumn('base_revisions_json', 'text', (c) => c.notNull())
        .addColumn('blocked', 'integer', (c) => c.notNull())
        .addColumn('risk', 'text', (c) => c.notNull())
        .addColumn('stale', 'integer', (c) => c.notNull())
        .addColumn('plan_json', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('plans_change').on('plans').column('change_id').execute();

      await withId(kind, db.schema.createTable('reviews'))
        .addColumn('change_id', 'integer', (c) => c.notNull().references('changes.id'))
        .addColumn('plan_id', 'integer', (c) => c.notNull().references('plans.id'))
        .addColumn('reviewer', 'text', (c) => c.notNull())
        .addColumn('verdict', 'text', (c) => c.notNull())
        .addColumn('comment', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('voided_at', 'text')
        .execute();
      await db.schema.createIndex('reviews_change').on('reviews').column('change_id').execute();

      await db.schema
        .createTable('desired')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .addColumn('format', 'text', (c) => c.notNull())
        .addColumn('ruleset', 'text', (c) => c.notNull())
        .addColumn('change_id', 'integer', (c) => c.references('changes.id'))
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('desired_pk', ['host', 'revision'])
        .execute();

      await withId(kind, db.schema.createTable('jobs'))
        .addColumn('change_id', 'integer', (c) => c.notNull().references('changes.id'))
        .addColumn('plan_id', 'integer', (c) => c.notNull().references('plans.id'))
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('step', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('jobs_change').on('jobs').column('change_id').execute();
      await db.schema.createIndex('jobs_host_state').on('jobs').columns(['host', 'state']).execute();
    },
  };
}

/** Issue 6: the timeline of each job (agent steps) and each host's latest live report with its drift. */
function agentTimeline(kind: Dialect): Migration {
  return {
    async up(db: AnyDb) {
      await withId(kind, db.schema.createTable('job_events'))
        .addColumn('job_id', 'integer', (c) => c.notNull().references('jobs.id'))
        .addColumn('change_id', 'integer', (c) => c.notNull().references('changes.id'))
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('source_at', 'text')
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('detail', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('job_events_change').on('job_events').column('change_id').execute();
      await db.schema
        .createTable('host_reports')
        .addColumn('host', 'text', (c) => c.primaryKey())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('report_json', 'text', (c) => c.notNull())
        .addColumn('live_sha256', 'text', (c) => c.notNull())
        .addColumn('drift_json', 'text')
        .addColumn('drift_at', 'text')
        .execute();
    },
  };
}

/** Issue 6: a rollback is a change that names the applied change it rolls back. */
function rollbackLink(): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema.alterTable('changes').addColumn('rollback_of', 'integer').execute();
    },
  };
}

/**
 * Issue 12: four eyes bound to the exact ruleset. Every author of a change (proposer and editors), the SHA-256 of
 * its ruleset (also written into the audit entries that concern it), why its plan failed (timeout, memory), and an
 * expiry on tokens.
 */
function fourEyes(): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema.alterTable('changes').addColumn('authors_json', 'text').execute();
      await db.schema.alterTable('changes').addColumn('ruleset_sha256', 'text').execute();
      await db.schema.alterTable('changes').addColumn('plan_error_json', 'text').execute();
      await db.schema.alterTable('tokens').addColumn('expires_at', 'text').execute();
      await db.schema.alterTable('tokens').addColumn('created_by_token', 'text').execute();
    },
  };
}

/**
 * Issue 14: what monitoring keeps. Kept apart from the audit chain: probe results and state changes are
 * observations, not actions, and arrive far too often to queue behind the write lock.
 * - monitor_state: each monitor's current state and per-vantage states, so a restarted server resumes them;
 * - monitor_events: state changes, diagnoses, traffic drops (the shape docs/monitoring.md documents);
 * - probe_results: raw results, kept only around state changes;
 * - probe_rollups: per monitor and minute (resolution 60) or hour (3600): count, failures, latency sum, max and a
 *   latency histogram (h0..h14, one column per bucket of src/monitor/rollup.ts, so replicas add to it in SQL);
 * - monitor_leases: which server replica probes a monitor, until when (several replicas on one PostgreSQL).
 */
function monitoring(kind: Dialect): Migration {
  const epoch = kind === 'sqlite' ? 'integer' : 'bigint';
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('monitor_state')
        .addColumn('monitor', 'text', (c) => c.primaryKey())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('since', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('vantages_json', 'text', (c) => c.notNull())
        .execute();
      await withId(kind, db.schema.createTable('monitor_events'))
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('data_json', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('monitor_events_subject').on('monitor_events').columns(['subject', 'id']).execute();
      await withId(kind, db.schema.createTable('probe_results'))
        .addColumn('monitor', 'text', (c) => c.notNull())
        .addColumn('vantage', 'text', (c) => c.notNull())
        .addColumn('at', epoch, (c) => c.notNull())
        .addColumn('ok', 'integer', (c) => c.notNull())
        .addColumn('total_ms', 'real', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('detail_json', 'text')
        .execute();
      await db.schema.createIndex('probe_results_monitor').on('probe_results').columns(['monitor', 'at']).execute();
      await db.schema
        .createTable('probe_rollups')
        .addColumn('monitor', 'text', (c) => c.notNull())
        .addColumn('resolution', 'integer', (c) => c.notNull())
        .addColumn('bucket', epoch, (c) => c.notNull())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('failures', 'integer', (c) => c.notNull())
        .addColumn('sum_ms', 'real', (c) => c.notNull())
        .addColumn('max_ms', 'real', (c) => c.notNull())
        .$call((t) => {
          let b = t;
          for (let i = 0; i < LATENCY_BOUNDS_MS.length + 1; i++) {
            b = b.addColumn(`h${i}`, 'integer', (c) => c.notNull().defaultTo(0));
          }
          return b;
        })
        .addPrimaryKeyConstraint('probe_rollups_pk', ['monitor', 'resolution', 'bucket'])
        // SQLite: the primary key is the table (no rowid plus a second copy of the key in an index)
        .$call((t) => (kind === 'sqlite' ? t.modifyEnd(sql`without rowid`) : t))
        .execute();
      // Minute rollups older than a few hours, one row per monitor and hour: the minutes deflated together (a
      // steady monitor's hour is a few hundred bytes instead of sixty rows).
      await db.schema
        .createTable('probe_minutes_packed')
        .addColumn('monitor', 'text', (c) => c.notNull())
        .addColumn('hour', epoch, (c) => c.notNull())
        .addColumn('data', kind === 'sqlite' ? 'blob' : 'bytea', (c) => c.notNull())
        .addPrimaryKeyConstraint('probe_minutes_packed_pk', ['monitor', 'hour'])
        .$call((t) => (kind === 'sqlite' ? t.modifyEnd(sql`without rowid`) : t))
        .execute();
      await db.schema
        .createTable('monitor_leases')
        .addColumn('monitor', 'text', (c) => c.primaryKey())
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('expires', epoch, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('monitor_replicas')
        .addColumn('holder', 'text', (c) => c.primaryKey())
        .addColumn('seen', epoch, (c) => c.notNull())
        .execute();
    },
  };
}

/**
 * 0006 (issue 14, §4): several server replicas on one PostgreSQL, one evaluator per monitor.
 * - monitor_inbox: results that reached a replica not holding the monitor's lease, waiting for the holder to
 *   evaluate them (written before the sender is acknowledged; deleted by the holder in the transaction that saves
 *   the states they changed, so a replica killed in between leaves them for the next holder);
 * - monitor_state.diagnosis_json: the holder's diagnosis, so the other replicas show it too.
 */
function replicas(kind: Dialect): Migration {
  const epoch = kind === 'sqlite' ? 'integer' : 'bigint';
  return {
    async up(db: AnyDb) {
      await withId(kind, db.schema.createTable('monitor_inbox'))
        .addColumn('monitor', 'text', (c) => c.notNull())
        .addColumn('at', epoch, (c) => c.notNull())
        .addColumn('result_json', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('monitor_inbox_monitor').on('monitor_inbox').columns(['monitor', 'id']).execute();
      await db.schema.alterTable('monitor_state').addColumn('diagnosis_json', 'text').execute();
      await db.schema.createIndex('monitor_state_updated').on('monitor_state').column('updated_at').execute();
    },
  };
}

/**
 * 0007 (issue 14, §3): incoming request counts per service, host, source and bucket (10 s for 48 h, 1 min for 35
 * days, 1 h for 400 days: one table, `resolution` in seconds), the last window stored per agent source (so a resent
 * batch counts nothing twice), and the traffic-drop detectors' states (JSON, to resume after a restart).
 */
function traffic(kind: Dialect): Migration {
  const epoch = kind === 'sqlite' ? 'integer' : 'bigint';
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('traffic_points')
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('resolution', 'integer', (c) => c.notNull())
        .addColumn('bucket', epoch, (c) => c.notNull())
        .addColumn('requests', epoch, (c) => c.notNull())
        .addColumn('errors', epoch, (c) => c.notNull())
        .addColumn('covered_ms', epoch, (c) => c.notNull())
        .addPrimaryKeyConstraint('traffic_points_pk', ['service', 'resolution', 'bucket', 'host', 'source'])
        .$call((t) => (kind === 'sqlite' ? t.modifyEnd(sql`without rowid`) : t))
        .execute();
      await db.schema
        .createTable('traffic_marks')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('last_start', epoch, (c) => c.notNull())
        .addPrimaryKeyConstraint('traffic_marks_pk', ['host', 'service', 'source'])
        .execute();
      await db.schema
        .createTable('traffic_detectors')
        .addColumn('series', 'text', (c) => c.primaryKey())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('state_json', 'text', (c) => c.notNull())
        .execute();
    },
  };
}

/**
 * 0008 (issue 15, §4): the durable outbox of alert notifications. One row per (idempotency key, channel): a
 * notification to a receiver with a webhook and an e-mail is two rows, so a failing webhook is retried without
 * resending the delivered e-mail. Written in the transaction that stores the alert-group change that caused it;
 * claimed by workers with a lease (`lease_holder`, `lease_until`, epoch ms), sent at least once, marked `sent` or,
 * past the receiver's deadline, `failed`.
 */
function alertOutbox(kind: Dialect): Migration {
  const epoch = kind === 'sqlite' ? 'integer' : 'bigint';
  return {
    async up(db: AnyDb) {
      await withId(kind, db.schema.createTable('alert_outbox'))
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('receiver', 'text', (c) => c.notNull())
        .addColumn('group_key', 'text', (c) => c.notNull())
        .addColumn('target_json', 'text', (c) => c.notNull())
        .addColumn('notification_json', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_ms', epoch, (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('next_at', epoch, (c) => c.notNull())
        .addColumn('lease_holder', 'text')
        .addColumn('lease_until', epoch)
        .addColumn('last_error', 'text')
        .addColumn('done_at', 'text')
        .addUniqueConstraint('alert_outbox_key_channel', ['key', 'channel'])
        .execute();
      await db.schema.createIndex('alert_outbox_due').on('alert_outbox').columns(['state', 'next_at']).execute();
      await db.schema
        .createIndex('alert_outbox_order')
        .on('alert_outbox')
        .columns(['receiver', 'channel', 'group_key', 'state', 'id'])
        .execute();
    },
  };
}

/**
 * 0009 (issue 15): alerts by fingerprint, alert groups (timers, what they last announced, escalation), group
 * membership, silences, and the cursor over monitoring events already turned into alerts.
 */
function alerts(kind: Dialect): Migration {
  const epoch = kind === 'sqlite' ? 'integer' : 'bigint';
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('alerts')
        .addColumn('fingerprint', 'text', (c) => c.primaryKey())
        .addColumn('labels_json', 'text', (c) => c.notNull())
        .addColumn('annotations_json', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('starts_at', 'text', (c) => c.notNull())
        .addColumn('ends_at', 'text')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('generator_url', 'text')
        .addColumn('ack_by', 'text')
        .addColumn('ack_at', 'text')
        .execute();
      await db.schema.createIndex('alerts_state_updated').on('alerts').columns(['state', 'updated_at']).execute();
      await db.schema
        .createTable('alert_groups')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('route_key', 'text', (c) => c.notNull())
        .addColumn('receiver', 'text', (c) => c.notNull())
        .addColumn('group_labels_json', 'text', (c) => c.notNull())
        .addColumn('next_flush', epoch, (c) => c.notNull())
        .addColumn('state_json', 'text', (c) => c.notNull())
        .addColumn('escalation_json', 'text')
        .execute();
      await db.schema.createIndex('alert_groups_next_flush').on('alert_groups').column('next_flush').execute();
      await db.schema
        .createTable('alert_group_members')
        .addColumn('group_key', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('alert_group_members_pk', ['group_key', 'fingerprint'])
        .execute();
      await db.schema.createIndex('alert_group_members_fp').on('alert_group_members').column('fingerprint').execute();
      await db.schema
        .createTable('silences')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('matchers_json', 'text', (c) => c.notNull())
        .addColumn('starts_at', 'text', (c) => c.notNull())
        .addColumn('ends_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('comment', 'text', (c) => c.notNull())
        .addColumn('until_resolved', 'integer', (c) => c.notNull())
        .addColumn('matched_at', 'text')
        .addColumn('expired_at', 'text')
        .execute();
      await db.schema
        .createTable('alerting_cursors')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('last_id', epoch, (c) => c.notNull())
        .execute();
    },
  };
}

/**
 * 0010 (issue 16): incidents, their own timeline entries (declaration, acknowledgement, status updates, notes; each
 * starrable), the stars of entries assembled from events (their stable keys), and the postmortem's versions (every
 * save is a new row: the draft stays editable and its history kept). One open incident per alert group: a partial
 * unique index, so two replicas declaring from the same group at once store one.
 */
function incidents(kind: Dialect): Migration {
  return {
    async up(db: AnyDb) {
      await withId(kind, db.schema.createTable('incidents'))
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('severity', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('commander', 'text')
        .addColumn('services_json', 'text', (c) => c.notNull())
        .addColumn('hosts_json', 'text', (c) => c.notNull())
        .addColumn('group_key', 'text')
        .addColumn('declared_by', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('detected_at', 'text', (c) => c.notNull())
        .addColumn('acknowledged_at', 'text')
        .addColumn('mitigated_at', 'text')
        .addColumn('resolved_at', 'text')
        .addColumn('reopened', 'integer', (c) => c.notNull())
        .addColumn('follow_ups_json', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('incidents_started').on('incidents').column('started_at').execute();
      await db.schema.createIndex('incidents_group').on('incidents').columns(['group_key', 'id']).execute();
      await db.schema
        .createIndex('incidents_open_group')
        .on('incidents')
        .column('group_key')
        .unique()
        .where(sql.ref('resolved_at'), 'is', null)
        .execute();
      await withId(kind, db.schema.createTable('incident_entries'))
        .addColumn('incident_id', 'integer', (c) => c.notNull().references('incidents.id').onDelete('cascade'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('text', 'text', (c) => c.notNull())
        .addColumn('data_json', 'text', (c) => c.notNull())
        .addColumn('starred', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('incident_entries_incident')
        .on('incident_entries')
        .columns(['incident_id', 'at'])
        .execute();
      await db.schema
        .createTable('incident_stars')
        .addColumn('incident_id', 'integer', (c) => c.notNull().references('incidents.id').onDelete('cascade'))
        .addColumn('entry_key', 'text', (c) => c.notNull())
        .addColumn('starred_by', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('incident_stars_pk', ['incident_id', 'entry_key'])
        .execute();
      await withId(kind, db.schema.createTable('incident_postmortems'))
        .addColumn('incident_id', 'integer', (c) => c.notNull().references('incidents.id').onDelete('cascade'))
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('markdown', 'text', (c) => c.notNull())
        .addColumn('json', 'text', (c) => c.notNull())
        .addColumn('author', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('incident_postmortems_version', ['incident_id', 'version'])
        .execute();
    },
  };
}

/**
 * 0011: dashboard sessions (issue 17). A session is an API token exchanged for a cookie: only the SHA-256 of the
 * session id is kept, with the token it speaks for (its role is read from the token on every request, so a revoked
 * or demoted token takes its sessions with it) and the secret its CSRF header is derived from.
 */
function webSessions(): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('web_sessions')
        .addColumn('id_hash', 'text', (c) => c.primaryKey())
        .addColumn('token_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('ended_at', 'text')
        .addColumn('csrf_secret', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('web_sessions_expires').on('web_sessions').column('expires_at').execute();
    },
  };
}

/**
 * 0012 (issue 16 §3): the live ruleset an agent reported when its host drifted, kept so the suspected change can
 * diff the desired ruleset against it after the host was fixed (host_reports keeps only the latest report). One row
 * per distinct drifted live ruleset; the text is bounded (DRIFT_LIVE_MAX_BYTES): a larger one is kept as its size
 * and hash only.
 */
function hostDrift(kind: Dialect): Migration {
  return {
    async up(db: AnyDb) {
      await withId(kind, db.schema.createTable('host_drift'))
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('desired_revision', 'integer', (c) => c.notNull())
        .addColumn('format', 'text', (c) => c.notNull())
        .addColumn('live', 'text')
        .addColumn('live_sha256', 'text', (c) => c.notNull())
        .addColumn('live_bytes', 'integer', (c) => c.notNull())
        .addColumn('summary', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('host_drift_at').on('host_drift').columns(['at', 'host']).execute();
    },
  };
}

/**
 * 0013 (issue 16 §3): an entry written once per incident and key (`once_key`; null for every other entry), so the
 * suspected cause is put on the timeline once even when two replicas find it at the same moment: the second insert
 * meets the unique index and is dropped (NULLs are distinct in a unique index in SQLite and PostgreSQL alike).
 */
function incidentEntryOnce(): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema.alterTable('incident_entries').addColumn('once_key', 'text').execute();
      await db.schema
        .createIndex('incident_entries_once')
        .on('incident_entries')
        .columns(['incident_id', 'once_key'])
        .unique()
        .execute();
    },
  };
}

/** All migrations, by name. */
export function migrations(kind: Dialect): Record<string, Migration> {
  return {
    '0001-initial': initial(kind),
    '0002-agent-timeline': agentTimeline(kind),
    '0003-rollback-link': rollbackLink(),
    '0004-four-eyes': fourEyes(),
    '0005-monitoring': monitoring(kind),
    '0006-replicas': replicas(kind),
    '0007-traffic': traffic(kind),
    '0008-alert-outbox': alertOutbox(kind),
    '0009-alerts': alerts(kind),
    '0010-incidents': incidents(kind),
    '0011-web-sessions': webSessions(),
    '0012-host-drift': hostDrift(kind),
    '0013-incident-entry-once': incidentEntryOnce(),
  };
}

/** Applies every migration not yet applied; throws when one fails (the database is left at the last good one). */
export async function migrate(db: Kysely<DB>, kind: Dialect): Promise<void> {
  const migrator = new Migrator({
    db: db as AnyDb,
    provider: { getMigrations: async () => migrations(kind) },
    // 0007 (traffic) reached main before 0006 (replicas); they touch different tables, so a store migrated to 0007
    // first takes 0006 afterwards instead of refusing to start.
    allowUnorderedMigrations: true,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'setup';
    throw new InternalError(
      `store migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`,
      {
        migration: failed,
      },
    );
  }
}

/** The number of the newest applied migration (0 for an empty database). */
export async function appliedVersion(db: Kysely<DB>): Promise<number> {
  const rows = await db.selectFrom('kysely_migration').select('name').execute();
  let max = 0;
  for (const r of rows) {
    const n = Number.parseInt(r.name, 10);
    if (Number.isFinite(n) && n > max) max = n;
  }
  return max;
}
