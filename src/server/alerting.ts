/**
 * Alerting in the server (issue 15): follows the monitoring events (docs/monitoring.md "Events") and Alertmanager's
 * webhook, keeps alerts and their groups in the store (src/store/alert-store.ts), flushes groups on their routes'
 * timers, escalates unacknowledged groups by their policies, and writes every notification to the durable outbox
 * in the transaction that decided it; the outbox worker (src/server/outbox-worker.ts) sends them. The decisions are
 * the pure functions of src/alerting/ with the clock passed in; this file owns the timers and the I/O.
 *
 * Several replicas on one PostgreSQL share the work through the database: an event batch is applied by the
 * replica that advances the cursor first, a due group is flushed by the replica that locks it, an outbox row is
 * sent by the worker holding its lease.
 */
import { readFileSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { type AlertInput, cleanLabels, labelProblem } from '../alerting/alert.js';
import {
  acknowledgeEscalation,
  advance,
  type EscalationPolicy,
  type EscalationState,
  resolveEscalation,
  startEscalation,
} from '../alerting/escalation.js';
import { commonLabels, flush, type MuteReason, notificationKey, placements } from '../alerting/group.js';
import { activeWindows } from '../alerting/maintenance.js';
import type { Matcher } from '../alerting/matchers.js';
import { muter, type Silence, silenceStatus, silenceUpdates } from '../alerting/mute.js';
import { expandTarget, type NotifyConfig } from '../alerting/notifiers/index.js';
import { allRoutes, matchRoutes, type Route } from '../alerting/route.js';
import type { Schedule } from '../alerting/schedule.js';
import { type AlertChange, alertsFromEvent } from '../alerting/sources.js';
import type { Alert, Labels, OutboxDraft } from '../alerting/types.js';
import { NO_ALERTING } from '../config/alerting.js';
import { userContactsOf } from '../config/alerting-oncall.js';
import { runbooksFor, runbookView } from '../config/runbooks.js';
import type { Runbook } from '../incident/runbook.js';
import type { Enqueue, StoredGroup } from '../store/alert-store.js';
import type { MonitorEvent } from '../store/monitor-store.js';
import { enqueueOutbox } from '../store/outbox-store.js';
import type { DB } from '../store/schema.js';
import type { Actor, Store } from '../store/types.js';
import { KickLoop } from './kick-loop.js';
import type { ServerMetrics } from './metrics.js';
import { type OutboxWorker, registerOutboxMetrics, startOutboxWorker } from './outbox-worker.js';
import type { ConfigHolder } from './route.js';

const EVENTS_CURSOR = 'monitor-events';
/** How often the events table and the group timers are looked at when nothing wakes the loop sooner. */
const DEFAULT_POLL_MS = 100;
const EVENT_BATCH = 500;

export interface AlertingServiceOptions {
  readonly store: Store;
  readonly config: ConfigHolder;
  readonly now: () => Date;
  readonly metrics: ServerMetrics;
  readonly log?: (level: 'info' | 'warn' | 'error', obj: Record<string, unknown>, msg: string) => void;
  /** The base of links in messages when alerting.external_url is not set. */
  readonly externalURL?: string;
  readonly pollMs?: number;
  /** Called after alerts fired or resolved (the incident service looks at them then; the dashboard's live stream). */
  readonly onAlerts?: ((changed: readonly Alert[]) => void) | undefined;
  /** Leave sending to another process (tests that read the outbox themselves). */
  readonly sendNotifications?: boolean;
  /** The file system and environment secrets are read from (tests pass their own). */
  readonly io?: { readFile(path: string): string; env: Readonly<Record<string, string | undefined>> };
}

/** An alert as the API shows it: with why it is not notified now, and the groups it is in. */
export interface AlertView extends Alert {
  readonly muted: MuteReason | null;
}

export class AlertingInputError extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
    readonly expected: string,
  ) {
    super(`${field}: ${problem}; expected ${expected}`);
  }
}

/** Alertmanager's webhook payload (version 4), the parts Rampart reads. */
export interface AlertmanagerPayload {
  readonly version?: string | undefined;
  readonly status?: string | undefined;
  readonly alerts: readonly {
    readonly status: string;
    readonly labels: Record<string, string>;
    readonly annotations?: Record<string, string> | undefined;
    readonly startsAt?: string | undefined;
    readonly endsAt?: string | undefined;
    readonly generatorURL?: string | undefined;
  }[];
}

export class AlertingService {
  private readonly loop: KickLoop;
  private worker: OutboxWorker | undefined;
  private cursor = 0;

  constructor(private readonly o: AlertingServiceOptions) {
    this.loop = new KickLoop({
      pass: () => this.tick(),
      nextDelayMs: () => Math.max(0, Math.min(this.o.pollMs ?? DEFAULT_POLL_MS, this.nextWake - this.nowMs())),
      onError: (e) => this.o.log?.('error', { err: e }, 'alerting pass failed'),
    });
  }

  private get cfg() {
    return this.o.config.current().alerting ?? NO_ALERTING;
  }

  private nowMs(): number {
    return this.o.now().getTime();
  }

  /** Receivers, users and templates as the outbox worker resolves them at send time. */
  notifyConfig(): NotifyConfig {
    const a = this.cfg;
    const io = this.o.io ?? { readFile: (p: string) => readFileSync(p, 'utf8'), env: process.env };
    const users = a.onCall.users.map((u) => {
      try {
        return userContactsOf(u, io);
      } catch (e) {
        this.o.log?.('warn', { user: u.name }, (e as Error).message);
        const { pagerdutyKey: _k, at: _at, ...rest } = u;
        return rest;
      }
    });
    return { receivers: a.receivers, users, ...(a.userEmail ? { userEmail: a.userEmail } : {}) };
  }

  private enqueue: Enqueue = async (trx: Kysely<DB>, drafts: readonly OutboxDraft[]) => {
    const cfg = this.notifyConfig();
    await enqueueOutbox(this.o.store.kind, trx, drafts, (t) => expandTarget(cfg, t));
  };

  async start(): Promise<void> {
    this.cursor = await this.o.store.alerting.cursor(EVENTS_CURSOR);
    if (this.cursor === 0) {
      // A first start follows events from now on: old outages are history, not pages.
      const [last] = await this.o.store.monitoring.listEvents({ limit: 1 });
      this.cursor = last?.id ?? 0;
    }
    if (this.o.sendNotifications !== false) {
      this.worker = startOutboxWorker({
        outbox: this.o.store.outbox,
        config: () => this.notifyConfig(),
        now: () => this.nowMs(),
        metrics: registerOutboxMetrics(this.o.metrics.registry, this.o.store.outbox, () => this.nowMs()),
        log: (level, message, fields) => this.o.log?.(level, fields ?? {}, message),
      });
    }
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
    await this.worker?.stop();
  }

  /**
   * Writes events other parts of the server observed (drift, an agent's rollback, a bypassed safety net) to the
   * events table alerting follows, and runs a pass at once. They are written after the action they report was
   * committed; a failure is logged, never thrown at the caller whose action already happened.
   */
  async recordEvents(events: readonly Omit<MonitorEvent, 'id'>[]): Promise<void> {
    if (events.length === 0) return;
    try {
      await this.o.store.monitoring.insertEvents(events);
    } catch (e) {
      this.o.log?.('error', { err: e, events }, 'events could not be written: their alerts will not fire');
      return;
    }
    this.kick();
  }

  /** Runs a pass now (after an event or an API action) rather than at the next poll. */
  kick(): void {
    this.loop.kick();
  }

  private nextWake = Number.POSITIVE_INFINITY;

  /** One pass: new events into alerts, silences updated, due groups flushed, escalations advanced. */
  async tick(): Promise<void> {
    await this.followEvents();
    const now = this.nowMs();
    // Most passes find nothing due: the silences and firing alerts a flush needs are read only when one is.
    const due = await this.o.store.alerting.nextFlushAt();
    const flushed = due !== null && due <= now ? await this.flushDue(now) : 0;
    const escalated = await this.escalate(now);
    if (flushed + escalated > 0) this.worker?.kick();
    const next = await this.o.store.alerting.nextFlushAt();
    this.nextWake = next ?? Number.POSITIVE_INFINITY;
  }

  private async followEvents(): Promise<void> {
    for (;;) {
      const events = await this.o.store.monitoring.listEvents({ afterId: this.cursor, limit: EVENT_BATCH });
      if (events.length === 0) return;
      const lastId = (events[events.length - 1] as { id: number }).id;
      const changes = events.flatMap((e) => alertsFromEvent(e));
      await this.apply(changes, { name: EVENTS_CURSOR, lastId });
      this.cursor = lastId;
      if (events.length < EVENT_BATCH) return;
    }
  }

  private place = (labels: Labels) => {
    const route = this.cfg.route;
    return route ? placements(matchRoutes(route, labels), labels) : [];
  };

  /** A firing alert carries its runbooks (issue 16 §4) as the `runbook` annotation, unless its source set one. */
  private withRunbooks(changes: readonly AlertChange[]): readonly AlertChange[] {
    const config = this.o.config.current();
    if (!config.runbooks?.length) return changes;
    return changes.map((c) => {
      if (c.op !== 'fire' || c.alert.annotations?.runbook) return c;
      const paths = runbooksFor(config, { labels: [cleanLabels(c.alert.labels)] }).map((r) => r.path);
      return paths.length === 0
        ? c
        : { ...c, alert: { ...c.alert, annotations: { ...c.alert.annotations, runbook: paths.join(', ') } } };
    });
  }

  private async apply(changes: readonly AlertChange[], cursor?: { name: string; lastId: number }): Promise<Alert[]> {
    const now = this.nowMs();
    const changed = await this.o.store.alerting.apply(this.withRunbooks(changes), this.place, now, cursor);
    if (changed.length > 0) {
      for (const a of changed) {
        this.o.log?.('info', { alert: a.labels, state: a.state, fingerprint: a.fingerprint }, `alert ${a.state}`);
      }
      await this.updateSilences(now);
      this.o.onAlerts?.(changed);
    }
    return changed;
  }

  private async updateSilences(now: number): Promise<void> {
    const silences = await this.o.store.alerting.silences();
    if (!silences.some((s) => s.untilResolved)) return;
    const firing = await this.o.store.alerting.list({ state: 'firing' });
    const u = silenceUpdates(silences, firing, now);
    const at = new Date(now).toISOString();
    await this.o.store.alerting.markSilencesMatched(u.matched, at);
    for (const id of u.expire) {
      if (await this.o.store.alerting.expireSilence(id, at)) {
        this.o.log?.('info', { silence: id }, 'silence ended: what it matched has resolved');
      }
    }
  }

  /** Why each alert is not notified now, as a function (silences, inhibition, maintenance windows). */
  private async muteFn(now: number): Promise<(a: Alert) => MuteReason | null> {
    const cfg = this.cfg;
    const [silences, firing] = await Promise.all([
      this.o.store.alerting.silences(),
      this.o.store.alerting.list({ state: 'firing' }),
    ]);
    const windows = cfg.onCall.maintenanceWindows;
    return muter({
      silences,
      inhibitRules: cfg.inhibitRules,
      firing,
      nowMs: now,
      ...(windows.length > 0
        ? { maintenance: (labels: Labels) => activeWindows(windows, labels, now)[0]?.name ?? null }
        : {}),
    });
  }

  private externalURL(): string {
    return this.cfg.externalURL ?? this.o.externalURL ?? 'http://localhost:8400';
  }

  private async flushDue(now: number): Promise<number> {
    const route = this.cfg.route;
    const routes = new Map<string, Route>(route ? allRoutes(route).map((r) => [r.key, r]) : []);
    const mute = await this.muteFn(now);
    const policies = new Map(this.cfg.onCall.escalationPolicies.map((p) => [p.name, p]));
    const externalURL = this.externalURL();
    return this.o.store.alerting.flushDue(
      now,
      (g, alerts) => {
        const r = routes.get(g.routeKey);
        if (!r) {
          // Its route left the config: the group ends without a word (its alerts are in other groups now).
          return { result: { notification: null, group: null, drop: alerts.map((a) => a.fingerprint) }, drafts: [] };
        }
        // A receiver's own delivery failure is news for the others only.
        const muteHere = (a: Alert): MuteReason | null =>
          a.labels.alertname === 'NotificationFailed' && a.labels.receiver === r.receiver
            ? { kind: 'inhibited', by: a.fingerprint, rule: -1 }
            : mute(a);
        const result = flush({ ...g, receiver: r.receiver }, alerts, {
          nowMs: now,
          route: r,
          mute: muteHere,
          externalURL,
        });
        const drafts: OutboxDraft[] = [];
        if (result.notification) {
          drafts.push({
            key: notificationKey(g.key, g.createdAtMs, r.receiver, g.seq + 1),
            target: { kind: 'receiver', receiver: r.receiver },
            notification: result.notification,
            createdAt: new Date(now).toISOString(),
          });
        }
        // Escalation starts with the group's first page while something fires, and ends when nothing does.
        let escalation: unknown = g.escalation;
        const firing = alerts.some((a) => a.state === 'firing' && mute(a) === null);
        const policy = r.escalation ? policies.get(r.escalation) : undefined;
        if (policy && g.escalation === null && result.notification?.status === 'firing') {
          escalation = startEscalation(policy, now);
        } else if (g.escalation !== null && !firing) {
          escalation = resolveEscalation(g.escalation as EscalationState);
        }
        return { result, drafts, escalation };
      },
      this.enqueue,
    );
  }

  private async escalate(now: number): Promise<number> {
    const policies = new Map<string, EscalationPolicy>(this.cfg.onCall.escalationPolicies.map((p) => [p.name, p]));
    const schedules = new Map<string, Schedule>(this.cfg.onCall.schedules.map((s) => [s.name, s]));
    const externalURL = this.externalURL();
    return this.o.store.alerting.escalate((g: StoredGroup, alerts) => {
      const state = g.escalation as EscalationState | null;
      if (!state || state.nextAtMs === null || state.nextAtMs > now) return null;
      const policy = policies.get(state.policy);
      if (!policy) return { escalation: null, drafts: [] };
      const firing = alerts.filter((a) => a.state === 'firing');
      if (firing.length === 0) return { escalation: resolveEscalation(state), drafts: [] };
      // An acknowledgement of every firing alert stops the escalation; the alerts still resolve by themselves.
      if (firing.every((a) => a.ack)) return { escalation: acknowledgeEscalation(state), drafts: [] };
      const step = advance(state, policy, schedules, now);
      const drafts: OutboxDraft[] = [];
      for (const f of step.fired) {
        if (f.nobodyOnCall.length > 0) {
          this.o.log?.('warn', { group: g.key, schedules: f.nobodyOnCall }, 'escalation step: nobody on call');
        }
        for (const t of f.notify) {
          const receiver = t.kind === 'receiver' ? t.receiver : `@${t.user}`;
          drafts.push({
            key: `esc|${g.key}|${g.createdAtMs}|${f.round}.${f.step}|${t.kind === 'user' ? t.user : t.receiver}`,
            target: t,
            notification: {
              receiver,
              groupKey: g.key,
              status: 'firing',
              groupLabels: g.groupLabels,
              commonLabels: commonLabels(firing.map((a) => a.labels)),
              commonAnnotations: commonLabels(firing.map((a) => a.annotations)),
              alerts: firing,
              truncatedAlerts: 0,
              externalURL,
              escalation: { policy: policy.name, step: f.step, round: f.round },
            },
            createdAt: new Date(now).toISOString(),
          });
        }
      }
      return { escalation: step.state, drafts };
    }, this.enqueue);
  }

  // -------------------------------------------------------------------------------------------------------------
  // What the API and the CLI ask.

  async alerts(filter: { state?: 'firing' | 'resolved' } = {}): Promise<AlertView[]> {
    const [alerts, mute] = await Promise.all([this.o.store.alerting.list(filter), this.muteFn(this.nowMs())]);
    return alerts.map((a) => ({ ...a, muted: a.state === 'firing' ? mute(a) : null }));
  }

  /** One alert with why it is not notified now and its runbooks (`rampart alerts show`); null when unknown. */
  async alert(fp: string): Promise<(AlertView & { runbooks: Runbook[] }) | null> {
    const [a] = await this.o.store.alerting.list({ fingerprints: [fp] });
    if (!a) return null;
    const mute = await this.muteFn(this.nowMs());
    const runbooks = runbooksFor(this.o.config.current(), { labels: [a.labels] }).map(runbookView);
    return { ...a, muted: a.state === 'firing' ? mute(a) : null, runbooks };
  }

  /** The routes and receivers a label set takes (`rampart alerts route`, like `amtool config routes test`). */
  route(labels: Labels): {
    routes: {
      key: string;
      receiver: string;
      at?: string;
      groupBy: string[] | 'all';
      groupWaitMs: number;
      groupIntervalMs: number;
      repeatIntervalMs: number;
      escalation?: string;
    }[];
  } {
    const root = this.cfg.route;
    if (!root) return { routes: [] };
    return {
      routes: matchRoutes(root, labels).map((r) => ({
        key: r.key,
        receiver: r.receiver,
        ...(r.at ? { at: r.at } : {}),
        groupBy: r.groupBy === 'all' ? 'all' : [...r.groupBy],
        groupWaitMs: r.groupWaitMs,
        groupIntervalMs: r.groupIntervalMs,
        repeatIntervalMs: r.repeatIntervalMs,
        ...(r.escalation ? { escalation: r.escalation } : {}),
      })),
    };
  }

  /** Alertmanager's webhook (version 4): its alerts join Rampart's routing with source `alertmanager`. */
  async ingestAlertmanager(p: AlertmanagerPayload): Promise<{ accepted: number }> {
    const now = this.nowMs();
    const changes: AlertChange[] = p.alerts.map((a, i) => {
      const problem = labelProblem(a.labels);
      if (problem)
        throw new AlertingInputError(`body.alerts[${i}].labels`, problem, 'Prometheus labels with an alertname');
      const status = a.status === 'resolved' ? 'resolve' : 'fire';
      const at = status === 'resolve' ? (a.endsAt ?? '') : (a.startsAt ?? '');
      const atMs = Date.parse(at);
      const input: AlertInput = {
        labels: a.labels,
        annotations: a.annotations ?? {},
        source: 'alertmanager',
        ...(a.generatorURL ? { generatorURL: a.generatorURL } : {}),
      };
      return { op: status, alert: input, atMs: Number.isFinite(atMs) && atMs > 0 ? Math.min(atMs, now) : now };
    });
    await this.apply(changes);
    this.kick();
    return { accepted: changes.length };
  }

  async ack(fp: string, actor: Actor): Promise<Alert | null> {
    const now = this.nowMs();
    const a = await this.o.store.alerting.ack(fp, actor.name, now);
    if (!a) return null;
    await this.o.store.write(actor, (w) =>
      w.audit({ action: 'alert.ack', target: `alert:${fp}`, after: { labels: a.labels, ack: a.ack } }),
    );
    this.kick();
    return a;
  }

  /** Resolves a firing alert by hand (an alert whose source will never say it is over, or a test page). */
  async resolve(fp: string, actor: Actor): Promise<Alert | null> {
    const [a] = await this.o.store.alerting.list({ fingerprints: [fp] });
    if (a?.state !== 'firing') return null;
    const [done] = await this.apply([
      { op: 'resolve', atMs: this.nowMs(), alert: { labels: a.labels, source: a.source } },
    ]);
    if (!done) return null;
    await this.o.store.write(actor, (w) =>
      w.audit({ action: 'alert.resolve', target: `alert:${fp}`, after: { labels: a.labels, endsAt: done.endsAt } }),
    );
    this.kick();
    return done;
  }

  async silences(): Promise<(Silence & { status: string })[]> {
    const now = this.nowMs();
    return (await this.o.store.alerting.silences()).map((s) => ({ ...s, status: silenceStatus(s, now) }));
  }

  async addSilence(
    s: {
      matchers: readonly Matcher[];
      startsAt?: string;
      endsAt?: string;
      comment: string;
      untilResolved?: boolean;
    },
    actor: Actor,
  ): Promise<Silence> {
    const now = this.nowMs();
    const startsAt = s.startsAt ?? new Date(now).toISOString();
    const endsAt =
      s.endsAt ?? new Date(Date.parse(startsAt) + (s.untilResolved ? 7 * 86_400_000 : 3_600_000)).toISOString();
    if (Date.parse(endsAt) <= Date.parse(startsAt)) {
      throw new AlertingInputError('body.endsAt', `${endsAt} is not after ${startsAt}`, 'an end after the start');
    }
    if (s.matchers.length === 0) {
      throw new AlertingInputError(
        'body.matchers',
        'no matchers',
        'at least one matcher (a silence of everything is an outage of the pager)',
      );
    }
    const silence: Silence = {
      id: crypto.randomUUID(),
      matchers: s.matchers,
      startsAt,
      endsAt,
      createdBy: actor.name,
      comment: s.comment,
      untilResolved: s.untilResolved ?? false,
      matchedAt: null,
      expiredAt: null,
    };
    // Alerting's tables are outside the audit chain's transaction (as monitoring's are): the silence, then its entry.
    await this.o.store.alerting.addSilence(silence);
    await this.o.store.write(actor, (w) =>
      w.audit({ action: 'silence.create', target: `silence:${silence.id}`, after: silence }),
    );
    await this.updateSilences(now);
    return silence;
  }

  async expireSilence(id: string, actor: Actor): Promise<boolean> {
    const at = this.o.now().toISOString();
    const done = await this.o.store.alerting.expireSilence(id, at);
    if (!done) return false;
    await this.o.store.write(actor, (w) =>
      w.audit({ action: 'silence.expire', target: `silence:${id}`, after: { expiredAt: at } }),
    );
    this.kick();
    return true;
  }
}
