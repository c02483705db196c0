/**
 * Incidents in the server (issue 16): declares them from alert groups per the `incidents:` policy (and reopens a
 * resolved one when its group fires again within the window), runs people's actions through the pure lifecycle
 * (src/incident/lifecycle.ts) and stores what it returns, assembles timelines from the store's events, outbox and
 * audit trail (src/incident/timeline.ts), and keeps the postmortem's versions. Every person's action is audited;
 * the policy's declarations and reopenings are audited as the server's.
 *
 * Several replicas may run this: a group's declaration is stored once (one open incident per alert group, a unique
 * index), and updates are optimistic, so a replica that lost the race reads the incident again next pass.
 */
import { placements } from '../alerting/group.js';
import { matchRoutes } from '../alerting/route.js';
import type { Alert, Labels } from '../alerting/types.js';
import { NO_ALERTING } from '../config/alerting.js';
import { runbooksFor, runbookView } from '../config/runbooks.js';
import { RampartError, UserError } from '../errors.js';
import { type Impact, incidentImpact, type ServiceSeries } from '../incident/impact.js';
import {
  acknowledge,
  assign,
  DEFAULT_INCIDENT_POLICY,
  type DeclareInput,
  decideForGroup,
  declare,
  type IncidentPolicy,
  note,
  publicUpdate,
  resolve,
  responseTimes,
  setStatus,
  type Transition,
  withHostService,
} from '../incident/lifecycle.js';
import { buildPostmortem, type Postmortem, renderMarkdown } from '../incident/postmortem.js';
import type { Runbook } from '../incident/runbook.js';
import { type IncidentStats, incidentStats } from '../incident/stats.js';
import { assembleTimeline, fromAudit, outageStart } from '../incident/timeline.js';
import type { Incident, IncidentStatus, OwnEntry, TimelineEntry } from '../incident/types.js';
import type { IncidentFilter, PostmortemVersion } from '../store/incident-store.js';
import type { Actor, Store } from '../store/types.js';
import { KickLoop } from './kick-loop.js';
import type { ServerMetrics } from './metrics.js';
import type { ConfigHolder } from './route.js';
import { SuspectFinder, type SuspectsView, suspectCause, suspectSentence } from './suspects.js';

/** More incidents than this in one window is not a site, it is a test of the store. */
const STATS_LIMIT = 100_000;
const METRICS_WINDOW_MS = 90 * 86_400_000;
const SYSTEM: Actor = { name: 'rampart', role: 'system', from: 'local' };
const DEFAULT_POLL_MS = 1000;

export interface IncidentServiceOptions {
  readonly store: Store;
  readonly config: ConfigHolder;
  readonly now: () => Date;
  readonly log?: (level: 'info' | 'warn' | 'error', obj: Record<string, unknown>, msg: string) => void;
  readonly pollMs?: number;
  /** Told after the policy declared, reopened or widened an incident (the dashboard's live stream). */
  readonly onChange?: () => void;
  /** The rate series of a service with its baseline's expectation (the traffic service): the impact's source. */
  readonly traffic?: { impactSeries(service: string, fromMs: number, toMs: number): Promise<ServiceSeries> };
}

export interface IncidentView extends Incident {
  readonly response: ReturnType<typeof responseTimes>;
}

export interface IncidentDetail {
  readonly incident: IncidentView;
  readonly timeZone: string;
  readonly timeline: readonly TimelineEntry[];
  /** The runbooks of its services and of the routes its alerts take (issue 16 §4). */
  readonly runbooks: readonly Runbook[];
  /** Requests lost from the traffic baseline, failed vantage points, duration (issue 16 §4). */
  readonly impact: Impact;
}

const view = (i: Incident): IncidentView => ({ ...i, response: responseTimes(i) });

export class IncidentService {
  private readonly loop: KickLoop;
  private readonly finder: SuspectFinder;

  constructor(private readonly o: IncidentServiceOptions) {
    this.finder = new SuspectFinder(o.store);
    this.loop = new KickLoop({
      pass: () => this.tick(),
      nextDelayMs: () => this.o.pollMs ?? DEFAULT_POLL_MS,
      onError: (e) => this.o.log?.('error', { err: e }, 'incident pass failed'),
    });
  }

  policy(): IncidentPolicy {
    return this.o.config.current().incidents ?? DEFAULT_INCIDENT_POLICY;
  }

  private nowMs(): number {
    return this.o.now().getTime();
  }

  async start(): Promise<void> {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /** Looks at the firing alerts now (alerting calls it when alerts changed). */
  kick(): void {
    this.loop.kick();
  }

  /** The group an alert's incident is keyed by: its first route's alert group (or its service/host without routing). */
  private groupKeyOf(labels: Labels): string {
    const route = (this.o.config.current().alerting ?? NO_ALERTING).route;
    const p = route ? placements(matchRoutes(route, labels), labels)[0] : undefined;
    if (p) return p.key;
    const by = labels.service
      ? `service=${labels.service}`
      : labels.host
        ? `host=${labels.host}`
        : `alertname=${labels.alertname}`;
    return `incident:{${by}}`;
  }

  /** One pass: the policy's decision for every alert group with firing alerts. */
  async tick(): Promise<void> {
    const policy = this.policy();
    if (!policy.autoDeclare) return;
    const services = this.o.config.current().services;
    const firing = (await this.o.store.alerting.list({ state: 'firing' })).map((a) => withHostService(a, services));
    const groups = new Map<string, Alert[]>();
    for (const a of firing) {
      const key = this.groupKeyOf(a.labels);
      groups.set(key, [...(groups.get(key) ?? []), a]);
    }
    for (const [key, alerts] of groups) {
      try {
        await this.decide(key, alerts, policy);
      } catch (e) {
        // Another replica changed the incident first: the next pass reads it again.
        if (e instanceof RampartError && e.code === 'RAMPART_ERR_CONFLICT') continue;
        throw e;
      }
    }
  }

  private async decide(key: string, alerts: readonly Alert[], policy: IncidentPolicy): Promise<void> {
    const now = this.nowMs();
    const latest = await this.o.store.incidents.latestForGroup(key);
    const d = decideForGroup(key, alerts, latest, policy, now);
    if (d.kind === 'declare') {
      const stored = await this.o.store.incidents.insert(d.draft, d.entry, now);
      if (!stored) return;
      this.o.log?.('info', { incident: stored.incident.id, group: key }, `incident declared: ${stored.incident.title}`);
      await this.audit(SYSTEM, 'incident.declare', stored.incident, { by: 'policy', groupKey: key });
      this.suspectLater(stored.incident.id);
    } else if (d.kind === 'reopen') {
      const r = await this.o.store.incidents.update(d.incident, d.entry, now);
      this.o.log?.('info', { incident: r.incident.id, group: key }, 'incident reopened');
      await this.audit(SYSTEM, 'incident.reopen', r.incident, { groupKey: key });
    } else if (d.kind === 'widen') {
      await this.o.store.incidents.update(d.incident, null, now);
    }
    if (d.kind === 'declare' || d.kind === 'reopen' || d.kind === 'widen') this.o.onChange?.();
  }

  private async audit(actor: Actor, action: string, inc: Incident, extra: Record<string, unknown> = {}): Promise<void> {
    await this.o.store.write(actor, (w) =>
      w.audit({
        action,
        target: `incident:${inc.id}`,
        after: {
          title: inc.title,
          severity: inc.severity,
          status: inc.status,
          commander: inc.commander,
          version: inc.version,
          ...extra,
        },
      }),
    );
  }

  private async get(id: number): Promise<Incident> {
    const inc = await this.o.store.incidents.get(id);
    if (!inc) throw new UserError('RAMPART_ERR_NOT_FOUND', `no incident ${id}`, { incident: id });
    return inc;
  }

  // -------------------------------------------------------------------------------------------------------------
  // What the API and the CLI ask.

  async list(filter: IncidentFilter = {}): Promise<IncidentView[]> {
    return (await this.o.store.incidents.list(filter)).map(view);
  }

  async declare(input: DeclareInput, actor: Actor): Promise<IncidentView> {
    const now = this.nowMs();
    const { draft, entry } = declare(input, actor.name, now);
    const stored = await this.o.store.incidents.insert(draft, entry, now);
    if (!stored) throw new UserError('RAMPART_ERR_CONFLICT', 'an incident of this alert group is open already');
    await this.audit(actor, 'incident.declare', stored.incident, { services: draft.services, hosts: draft.hosts });
    return view(stored.incident);
  }

  private async transition(
    id: number,
    actor: Actor,
    action: string,
    step: (inc: Incident, now: number) => Transition,
  ): Promise<IncidentView> {
    const inc = await this.get(id);
    const t = step(inc, this.nowMs());
    const r = await this.o.store.incidents.update(t.incident, t.entry, this.nowMs());
    await this.audit(actor, action, r.incident, { from: { status: inc.status, commander: inc.commander } });
    return view(r.incident);
  }

  ack(id: number, actor: Actor): Promise<IncidentView> {
    return this.transition(id, actor, 'incident.ack', (inc, now) => acknowledge(inc, actor.name, now));
  }

  assign(id: number, commander: string, actor: Actor): Promise<IncidentView> {
    return this.transition(id, actor, 'incident.assign', (inc, now) => assign(inc, commander, actor.name, now));
  }

  status(id: number, status: IncidentStatus, text: string, actor: Actor): Promise<IncidentView> {
    return this.transition(id, actor, 'incident.status', (inc, now) => setStatus(inc, status, actor.name, now, text));
  }

  resolve(id: number, text: string, actor: Actor): Promise<IncidentView> {
    return this.transition(id, actor, 'incident.resolve', (inc, now) => resolve(inc, actor.name, now, text));
  }

  async note(id: number, text: string, actor: Actor): Promise<OwnEntry & { id: number }> {
    const inc = await this.get(id);
    const e = await this.o.store.incidents.addEntry(id, note(inc, text, actor.name, this.nowMs()));
    await this.o.store.write(actor, (w) =>
      w.audit({ action: 'incident.note', target: `incident:${id}`, after: { entry: e.id, text: e.text } }),
    );
    return e;
  }

  /** An update for the public status page (audited: it is what customers read). */
  async publicUpdate(id: number, text: string, actor: Actor): Promise<OwnEntry & { id: number }> {
    const inc = await this.get(id);
    const e = await this.o.store.incidents.addEntry(id, publicUpdate(inc, text, actor.name, this.nowMs()));
    await this.o.store.write(actor, (w) =>
      w.audit({ action: 'incident.public-update', target: `incident:${id}`, after: { entry: e.id, text: e.text } }),
    );
    return e;
  }

  async star(id: number, key: string, starred: boolean, actor: Actor): Promise<void> {
    await this.get(id);
    const ok = await this.o.store.incidents.star(id, key, starred, actor.name, this.o.now().toISOString());
    if (!ok) throw new UserError('RAMPART_ERR_NOT_FOUND', `incident ${id} has no timeline entry ${key}`, { key });
    await this.o.store.write(actor, (w) =>
      w.audit({ action: starred ? 'incident.star' : 'incident.unstar', target: `incident:${id}`, after: { key } }),
    );
  }

  /** The incident with its timeline, assembled now from the store. */
  async show(id: number): Promise<IncidentDetail> {
    let inc = await this.get(id);
    const policy = this.policy();
    const nowMs = this.nowMs();
    const from = new Date(Date.parse(inc.startedAt) - policy.lookBackMs).toISOString();
    const to = inc.resolvedAt ?? new Date(nowMs).toISOString();
    const [src, alerts, own, stars] = await Promise.all([
      this.o.store.incidents.timelineSources(from, to),
      this.o.store.alerting.list({ limit: 1000 }),
      this.o.store.incidents.entries(id),
      this.o.store.incidents.stars(id),
    ]);
    const { changes, drift } = fromAudit(src.audit);
    const monitors = (this.o.config.current().monitors ?? [])
      .filter(
        (m) =>
          (m.service !== undefined && inc.services.includes(m.service)) ||
          (m.host !== undefined && inc.hosts.includes(m.host)),
      )
      .map((m) => m.name);
    const sources = { events: src.events, alerts, notifications: src.notifications, changes, drift, own, stars };
    const opts = { timeZone: policy.timeZone, lookBackMs: policy.lookBackMs, monitors, nowMs };
    let timeline = assembleTimeline(inc, sources, opts);
    // The outage began before the alert that declared it: the first failing probe or the traffic drop says when.
    const start = outageStart(inc, timeline);
    if (start !== inc.startedAt) {
      try {
        inc = (await this.o.store.incidents.update({ ...inc, startedAt: start }, null, nowMs)).incident;
        timeline = assembleTimeline(inc, sources, opts);
      } catch (e) {
        if (!(e instanceof RampartError && e.code === 'RAMPART_ERR_CONFLICT')) throw e;
      }
    }
    const inScope = alerts.filter(
      (a) =>
        (a.labels.service !== undefined && inc.services.includes(a.labels.service)) ||
        (a.labels.host !== undefined && inc.hosts.includes(a.labels.host)),
    );
    const runbooks = runbooksFor(this.o.config.current(), {
      services: inc.services,
      labels: inScope.map((a) => a.labels),
    }).map(runbookView);
    const impact = await this.impact(inc, src.events, monitors, nowMs);
    return { incident: view(inc), timeZone: policy.timeZone, timeline, runbooks, impact };
  }

  /** The impact over the incident's interval, from its services' rate series and the probes that failed. */
  private async impact(
    inc: Incident,
    events: readonly { at: string; kind: string; data: unknown }[],
    monitors: readonly string[],
    nowMs: number,
  ): Promise<Impact> {
    const startMs = Date.parse(inc.startedAt);
    const endMs = inc.resolvedAt ? Date.parse(inc.resolvedAt) : nowMs;
    const series: ServiceSeries[] = [];
    for (const service of inc.services) {
      const s = await this.o.traffic?.impactSeries(service, startMs, endMs);
      if (s) series.push(s);
    }
    return incidentImpact(inc, events, monitors, series, nowMs);
  }

  /** Counts and response times of the incidents started since `sinceMs` (issue 16 §6). */
  async stats(sinceMs: number): Promise<IncidentStats> {
    const since = new Date(sinceMs).toISOString();
    const incidents = await this.o.store.incidents.list({ since, limit: STATS_LIMIT });
    return incidentStats(incidents, sinceMs, this.nowMs());
  }

  /** Puts the last 90 days' figures in the /metrics gauges (called on scrape). */
  async exportMetrics(m: ServerMetrics): Promise<void> {
    const s = await this.stats(this.nowMs() - METRICS_WINDOW_MS);
    m.incidents.reset();
    for (const [severity, n] of Object.entries(s.bySeverity)) m.incidents.set({ severity }, n);
    m.incidentsByService.reset();
    for (const [service, n] of Object.entries(s.byService)) m.incidentsByService.set({ service }, n);
    m.incidentsOpen.set(s.open);
    for (const [g, q] of [
      [m.incidentMttd, s.mttd],
      [m.incidentMtta, s.mtta],
      [m.incidentMttr, s.mttr],
    ] as const) {
      g.reset();
      if (q.median !== null) g.set({ quantile: '0.5' }, q.median);
      if (q.p90 !== null) g.set({ quantile: '0.9' }, q.p90);
    }
  }

  /**
   * The incident's suspected cause (issue 16 §3): the changes and drifts in the look-back window ranked by the
   * engine (src/server/suspects.ts; cached per incident and candidate set). The top suspect is put on the timeline
   * once (`incident.suspect`).
   */
  async suspects(id: number): Promise<SuspectsView> {
    const { incident } = await this.show(id);
    const policy = this.policy();
    const v = await this.finder.find({
      incident,
      config: this.o.config.current(),
      lookBackMs: policy.lookBackMs,
      nowIso: this.o.now().toISOString(),
    });
    const sentence = suspectSentence(v);
    if (sentence !== undefined) await this.noteSuspect(incident, v, sentence);
    return v;
  }

  /** A remediation proposed through the change path (src/server/remediate.ts): on the timeline and audited. */
  async recordRemediation(id: number, text: string, data: Record<string, unknown>, actor: Actor): Promise<void> {
    await this.get(id);
    const e = await this.o.store.incidents.addEntry(id, {
      kind: 'incident.remediate',
      at: this.o.now().toISOString(),
      by: actor.name,
      text,
      data,
    });
    await this.o.store.write(actor, (w) =>
      w.audit({ action: 'incident.remediate', target: `incident:${id}`, after: { entry: e.id, ...data } }),
    );
  }

  /** Looks for the suspect of a new incident without holding up the pass that declared it. */
  private suspectLater(id: number): void {
    this.suspects(id).catch((e) => this.o.log?.('warn', { err: e, incident: id }, 'suspected change not found'));
  }

  private async noteSuspect(inc: Incident, v: SuspectsView, sentence: string): Promise<void> {
    const top = v.candidates[0];
    if (!top) return;
    const mine = await this.o.store.incidents.entries(inc.id);
    // Once per cause: a later GET finds it there; a replica finding it at the same moment meets the store's unique
    // key (addEntryOnce). The same cause found on one more host (web2's agent read the edit a second after web1's)
    // is not a new entry; a different cause later is.
    const cause = suspectCause(top);
    if (mine.some((e) => e.kind === 'incident.suspect' && (e.data.cause ?? e.data.candidate) === cause)) return;
    if (mine.some((e) => e.kind === 'incident.suspect' && e.data.candidate === top.id)) return;
    if (mine.some((e) => e.kind === 'incident.suspect' && e.text === `Suspected cause: ${sentence}`)) return;
    const entry = {
      kind: 'incident.suspect' as const,
      at: this.o.now().toISOString(),
      by: SYSTEM.name,
      text: `Suspected cause: ${sentence}`,
      data: { candidate: top.id, cause, kind: top.kind, host: top.host, ...(top.rule ? { rule: top.rule } : {}) },
    };
    const e = await this.o.store.incidents.addEntryOnce(inc.id, `suspect:${cause}`, entry);
    if (!e) return;
    await this.o.store.write(SYSTEM, (w) =>
      w.audit({ action: 'incident.suspect', target: `incident:${inc.id}`, after: { entry: e.id, candidate: top.id } }),
    );
  }

  /** The stored postmortem (the newest version, or `version`); the first request drafts version 1. */
  async postmortem(id: number, version?: number): Promise<PostmortemVersion & { versions: number }> {
    let pm = await this.o.store.incidents.postmortem(id, version);
    if (!pm && version !== undefined) {
      throw new UserError('RAMPART_ERR_NOT_FOUND', `incident ${id} has no postmortem version ${version}`);
    }
    if (!pm) {
      const draft = await this.draft(id);
      try {
        pm = await this.o.store.incidents.savePostmortem(
          {
            incidentId: id,
            markdown: renderMarkdown(draft),
            json: draft,
            author: SYSTEM.name,
            createdAt: this.o.now().toISOString(),
          },
          0,
        );
      } catch (e) {
        // Another request drafted it first.
        if (!(e instanceof RampartError && e.code === 'RAMPART_ERR_CONFLICT')) throw e;
        pm = await this.o.store.incidents.postmortem(id);
      }
    }
    const versions = (await this.o.store.incidents.postmortemVersions(id)).length;
    return { ...(pm as PostmortemVersion), versions };
  }

  /** A fresh draft from the incident and its timeline now (not stored). */
  async draft(id: number): Promise<Postmortem> {
    // The root cause is prefilled from the suspected change (its rule, author, approvers); what the responders
    // said when they identified it follows.
    let sentence: string | undefined;
    try {
      sentence = suspectSentence(await this.suspects(id));
    } catch (e) {
      this.o.log?.('warn', { err: e, incident: id }, 'suspected change not found for the postmortem');
    }
    const { incident, timeline, timeZone, impact } = await this.show(id);
    return buildPostmortem(incident, timeline, { timeZone, nowMs: this.nowMs(), suspect: sentence, estimate: impact });
  }

  /** Saves an edited postmortem as the next version; `expected` is the version the editor started from. */
  async savePostmortem(id: number, markdown: string, expected: number, actor: Actor): Promise<PostmortemVersion> {
    await this.get(id);
    const current = await this.o.store.incidents.postmortem(id);
    const pm = await this.o.store.incidents.savePostmortem(
      {
        incidentId: id,
        markdown,
        // The structured draft stays the generated one; the edit is the Markdown.
        json: { ...((current?.json as object | undefined) ?? {}), edited: true },
        author: actor.name,
        createdAt: this.o.now().toISOString(),
      },
      expected,
    );
    await this.o.store.write(actor, (w) =>
      w.audit({
        action: 'incident.postmortem',
        target: `incident:${id}`,
        after: { version: pm.version, bytes: Buffer.byteLength(markdown, 'utf8') },
      }),
    );
    return pm;
  }
}
