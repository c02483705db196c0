/**
 * The timeline writes itself (issue 16 §2): one pure function from what the store holds (monitoring events,
 * alerts, notifications, changes and drift, the incident's own entries) to the incident's timeline, each entry
 * with its UTC time and the site's local time, and starrable by a stable key. The server reads the sources; this
 * decides what belongs to the incident and says it in words:
 *
 * - the first failing probe per vantage point (not every failed probe), and the first recovery after the last;
 * - a traffic drop at the time it began, computed back from the rate series (`since`), not when it was detected;
 * - alerts fired, acknowledged and resolved; notifications sent, failed, and escalation steps;
 * - changes and drift on the affected hosts from the look-back window before the start (default 2 h);
 * - the incident's own entries: declaration, reopening, acknowledgement, assignment, status updates, notes.
 */
import type { Alert } from '../alerting/types.js';
import { formatLocal } from './timezone.js';
import type { Incident, StoredOwnEntry, TimelineEntry } from './types.js';

/** A stored event (docs/monitoring.md "Events"). */
export interface TimelineEvent {
  readonly id: number;
  readonly at: string;
  readonly kind: string;
  readonly subject: string;
  readonly data: unknown;
}

/** One notification on one channel, as the outbox keeps it. */
export interface TimelineNotification {
  readonly id: number;
  readonly receiver: string;
  readonly channel: string;
  readonly groupKey: string;
  readonly state: 'pending' | 'sent' | 'failed' | string;
  readonly createdAt: string;
  readonly doneAt: string | null;
  readonly attempts: number;
  readonly lastError: string | null;
  /** The fingerprints of the alerts it announced. */
  readonly alerts: readonly string[];
  readonly status: 'firing' | 'resolved' | string;
  readonly escalation?: { readonly policy: string; readonly step: number; readonly round: number } | undefined;
}

/** A change's step (proposed, approved, applied, rolled back, ...) or an agent's automatic rollback. */
export interface TimelineChange {
  readonly changeId: number;
  readonly at: string;
  readonly action: string;
  readonly by: string;
  readonly hosts: readonly string[];
  readonly reason: string;
}

/** A host's live ruleset seen to differ from its desired one (an out-of-band edit). */
export interface TimelineDrift {
  readonly host: string;
  readonly at: string;
  readonly text: string;
}

export interface TimelineSources {
  readonly events: readonly TimelineEvent[];
  readonly alerts: readonly Alert[];
  readonly notifications: readonly TimelineNotification[];
  readonly changes: readonly TimelineChange[];
  readonly drift: readonly TimelineDrift[];
  readonly own: readonly StoredOwnEntry[];
  /** Keys of assembled entries starred by a person (own entries carry their own flag). */
  readonly stars: ReadonlySet<string>;
}

export interface TimelineOptions {
  readonly timeZone: string;
  readonly lookBackMs: number;
  /** Monitors that watch the incident's services or hosts (from the config), besides those its alerts name. */
  readonly monitors?: readonly string[];
  /** The end of an open incident's window: now. */
  readonly nowMs: number;
}

type Draft = Omit<TimelineEntry, 'local' | 'starred'>;

const rec = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {};
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The incident's scope: what its events and alerts may name. */
interface Scope {
  readonly services: ReadonlySet<string>;
  readonly hosts: ReadonlySet<string>;
  readonly monitors: ReadonlySet<string>;
}

function labelsInScope(l: Readonly<Record<string, string | undefined>>, s: Scope): boolean {
  return (
    (l.service !== undefined && s.services.has(l.service)) ||
    (l.host !== undefined && s.hosts.has(l.host)) ||
    (l.monitor !== undefined && s.monitors.has(l.monitor))
  );
}

function eventInScope(e: TimelineEvent, s: Scope): boolean {
  const d = rec(e.data);
  const [type, name] = e.subject.split(':', 2) as [string, string | undefined];
  if (name !== undefined) {
    if (type === 'service' && s.services.has(name)) return true;
    if (type === 'host' && s.hosts.has(name)) return true;
    if (type === 'monitor' && s.monitors.has(name)) return true;
  }
  return labelsInScope({ service: str(d.service), host: str(d.host), monitor: str(d.monitor) }, s);
}

function pct(share: number | undefined): string {
  return share === undefined ? '' : ` ${Math.round(share * 100)}%`;
}

function eventEntries(events: readonly TimelineEvent[]): Draft[] {
  const out: Draft[] = [];
  const firstDown = new Set<string>();
  const lastUp = new Map<string, Draft>();
  let firstFailure = true;
  for (const e of [...events].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.id - b.id))) {
    const d = rec(e.data);
    const key = `event:${e.id}`;
    switch (e.kind) {
      case 'monitor.vantage': {
        const v = `${str(d.monitor) ?? e.subject}|${str(d.vantage) ?? '?'}`;
        if (d.to === 'down') {
          lastUp.delete(v);
          if (firstDown.has(v)) break;
          firstDown.add(v);
          const err = str(d.error);
          out.push({
            key,
            kind: e.kind,
            at: e.at,
            text: `First failing probe of ${str(d.monitor) ?? e.subject} from ${str(d.vantage) ?? 'a vantage point'}${err ? `: ${err}` : ''}`,
            keyMoment: firstFailure,
          });
          firstFailure = false;
        } else if (d.to === 'up' && firstDown.has(v)) {
          lastUp.set(v, {
            key,
            kind: e.kind,
            at: e.at,
            text: `${str(d.monitor) ?? e.subject} answers again from ${str(d.vantage) ?? 'a vantage point'}`,
            keyMoment: false,
          });
        }
        break;
      }
      case 'monitor.state':
      case 'service.state': {
        const what = str(d.monitor) ?? str(d.service) ?? e.subject;
        const to = str(d.to) ?? '?';
        const reason = str(d.reason);
        out.push({
          key,
          kind: e.kind,
          at: e.at,
          text: `${e.kind === 'service.state' ? 'Service' : 'Monitor'} ${what} is ${to} (was ${str(d.from) ?? '?'})${reason ? `: ${reason}` : ''}`,
          keyMoment: false,
        });
        break;
      }
      case 'traffic.drop': {
        const since = str(d.since) ?? e.at;
        const where = `${str(d.service) ?? e.subject}${str(d.host) ? ` on ${str(d.host)}` : ''}`;
        out.push({
          key,
          kind: e.kind,
          at: since,
          text:
            str(d.description) ??
            `Incoming traffic to ${where} fell${pct(num(d.dropShare))} below its expected band (${num(d.observed)?.toFixed(1) ?? '?'} req/s observed, ${num(d.expected)?.toFixed(1) ?? '?'} expected)`,
          keyMoment: true,
        });
        break;
      }
      case 'traffic.recovered': {
        const where = `${str(d.service) ?? e.subject}${str(d.host) ? ` on ${str(d.host)}` : ''}`;
        out.push({
          key,
          kind: e.kind,
          at: e.at,
          text: `Incoming traffic to ${where} is back in its expected band`,
          keyMoment: true,
        });
        break;
      }
      case 'monitor.diagnosis': {
        const diag = rec(d.diagnosis);
        const summary = str(diag.summary) ?? str(diag.text) ?? str(diag.kind);
        out.push({
          key,
          kind: e.kind,
          at: e.at,
          text: `Diagnosis of ${str(d.monitor) ?? e.subject}${summary ? `: ${summary}` : ''}`,
          keyMoment: false,
        });
        break;
      }
      default:
        out.push({ key, kind: e.kind, at: e.at, text: `${e.kind} ${e.subject}`, keyMoment: false });
    }
  }
  out.push(...lastUp.values());
  return out;
}

function alertName(a: Alert): string {
  const l = a.labels;
  const subject = [l.service, l.host, l.monitor].filter((x) => x !== undefined).join(', ');
  return `${l.alertname ?? 'alert'}${subject ? ` (${subject})` : ''}`;
}

function alertEntries(alerts: readonly Alert[]): Draft[] {
  const out: Draft[] = [];
  const sorted = [...alerts].sort((a, b) => (a.startsAt < b.startsAt ? -1 : a.startsAt > b.startsAt ? 1 : 0));
  sorted.forEach((a, i) => {
    const summary = a.annotations.summary;
    out.push({
      key: `alert:${a.fingerprint}:${a.startsAt}:fired`,
      kind: 'alert.fired',
      at: a.startsAt,
      text: `Alert ${alertName(a)} fired${a.labels.severity ? ` [${a.labels.severity}]` : ''}${summary ? `: ${summary}` : ''}`,
      keyMoment: i === 0,
    });
    if (a.ack) {
      out.push({
        key: `alert:${a.fingerprint}:${a.startsAt}:ack`,
        kind: 'alert.ack',
        at: a.ack.at,
        text: `${a.ack.by} acknowledged alert ${alertName(a)}`,
        keyMoment: false,
        by: a.ack.by,
      });
    }
    if (a.endsAt) {
      out.push({
        key: `alert:${a.fingerprint}:${a.startsAt}:resolved`,
        kind: 'alert.resolved',
        at: a.endsAt,
        text: `Alert ${alertName(a)} resolved`,
        keyMoment: false,
      });
    }
  });
  return out;
}

function notificationEntries(ns: readonly TimelineNotification[]): Draft[] {
  const out: Draft[] = [];
  let firstSent = true;
  for (const n of [...ns].sort((a, b) =>
    a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id - b.id,
  )) {
    const to = `${n.receiver} (${n.channel})`;
    if (n.escalation) {
      out.push({
        key: `notification:${n.id}:escalation`,
        kind: 'escalation',
        at: n.createdAt,
        text: `Escalation ${n.escalation.policy} step ${n.escalation.step + 1}${n.escalation.round > 0 ? ` (round ${n.escalation.round + 1})` : ''}: paged ${to}`,
        keyMoment: true,
      });
    }
    if (n.state === 'sent' && n.doneAt) {
      const retried = n.attempts > 1 ? ` after ${n.attempts} attempts` : '';
      out.push({
        key: `notification:${n.id}:sent`,
        kind: 'notification.sent',
        at: n.doneAt,
        text: `Notification (${n.status}) delivered to ${to}${retried}`,
        keyMoment: firstSent && n.status === 'firing',
      });
      if (n.status === 'firing') firstSent = false;
    } else if (n.state === 'failed' && n.doneAt) {
      out.push({
        key: `notification:${n.id}:failed`,
        kind: 'notification.failed',
        at: n.doneAt,
        text: `Notification to ${to} failed after ${n.attempts} attempts${n.lastError ? `: ${n.lastError}` : ''}`,
        keyMoment: true,
      });
    }
  }
  return out;
}

const KEY_CHANGE_ACTIONS = new Set(['applied', 'rolled-back', 'rollback', 'agent-rollback', 'failed']);

function changeEntries(cs: readonly TimelineChange[]): Draft[] {
  return cs.map((c, i) => ({
    key: `change:${c.changeId}:${c.action}:${c.at}:${i}`,
    kind: `change.${c.action}`,
    at: c.at,
    text: `Change #${c.changeId} ${c.action.replace(/-/g, ' ')}${c.hosts.length > 0 ? ` on ${c.hosts.join(', ')}` : ''} by ${c.by}${c.reason ? `: ${c.reason}` : ''}`,
    keyMoment: KEY_CHANGE_ACTIONS.has(c.action),
    by: c.by,
  }));
}

function driftEntries(ds: readonly TimelineDrift[]): Draft[] {
  return ds.map((d) => ({
    key: `drift:${d.host}:${d.at}`,
    kind: 'host.drift',
    at: d.at,
    text: `Drift on ${d.host}: ${d.text}`,
    keyMoment: true,
  }));
}

const OWN_KEY: Readonly<Record<string, boolean>> = {
  'incident.declared': true,
  'incident.reopened': true,
  'incident.ack': true,
  'incident.assign': false,
  'incident.status': true,
  'incident.resolved': true,
  'incident.note': true,
  'incident.suspect': true,
  'incident.remediate': true,
  'incident.public': true,
};

/** What monitoring says about the outage: before the last all-clear, it was about an earlier one. */
const MONITOR_KINDS = new Set(['monitor.vantage', 'monitor.state', 'service.state', 'monitor.diagnosis']);

/**
 * The last moment before `beforeMs` when every vantage point in scope that had failed answered again (an earlier
 * outage that ended), or -Infinity: monitoring's entries up to it belong to that earlier outage, not this one.
 */
function lastAllClear(events: readonly TimelineEvent[], beforeMs: number): number {
  const down = new Set<string>();
  let clear = Number.NEGATIVE_INFINITY;
  for (const e of [...events].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.id - b.id))) {
    const t = Date.parse(e.at);
    if (t >= beforeMs) break;
    if (e.kind !== 'monitor.vantage') continue;
    const d = rec(e.data);
    const v = `${str(d.monitor) ?? e.subject}|${str(d.vantage) ?? '?'}`;
    if (d.to === 'down') down.add(v);
    else if (d.to === 'up' && down.delete(v) && down.size === 0) clear = t;
  }
  return clear;
}

/** The incident's timeline, oldest first. */
export function assembleTimeline(inc: Incident, src: TimelineSources, opts: TimelineOptions): TimelineEntry[] {
  const base: Scope = { services: new Set(inc.services), hosts: new Set(inc.hosts), monitors: new Set(opts.monitors) };
  // The monitors the incident's own alerts name belong to it too (a monitor.vantage event names only its monitor).
  const alertMonitors = src.alerts.flatMap((a) =>
    labelsInScope(a.labels, base) && a.labels.monitor ? [a.labels.monitor] : [],
  );
  const scope: Scope = { ...base, monitors: new Set([...base.monitors, ...alertMonitors]) };
  const startMs = Date.parse(inc.startedAt);
  const endMs = inc.resolvedAt ? Date.parse(inc.resolvedAt) : opts.nowMs;
  const lookFrom = startMs - opts.lookBackMs;
  const within = (iso: string, from: number) => {
    const t = Date.parse(iso);
    return t >= from && t <= endMs;
  };
  // Monitoring shows the failure from a little before the start (a probe may fail before the alert fires).
  const inScope = src.events.filter((e) => eventInScope(e, scope) && within(e.at, lookFrom));
  // A failure that ended before this outage began is another outage's (the look-back is for changes and drift).
  const clear = lastAllClear(inScope, startMs);
  // Likewise a traffic drop that recovered before this outage began, and that recovery: they do not move the start.
  const recoveredBefore = (e: TimelineEvent) => {
    const d = rec(e.data);
    const same = (x: TimelineEvent) =>
      x.kind === 'traffic.recovered' &&
      str(rec(x.data).service) === str(d.service) &&
      str(rec(x.data).host) === str(d.host);
    return inScope.some((x) => same(x) && x.at >= e.at && Date.parse(x.at) < startMs);
  };
  const events = inScope.filter(
    (e) =>
      (!MONITOR_KINDS.has(e.kind) || Date.parse(e.at) > clear) &&
      !(e.kind === 'traffic.recovered' && Date.parse(e.at) < startMs) &&
      !(e.kind === 'traffic.drop' && recoveredBefore(e)),
  );
  const alerts = src.alerts.filter((a) => labelsInScope(a.labels, scope) && Date.parse(a.startsAt) <= endMs);
  const fps = new Set(alerts.map((a) => a.fingerprint));
  const notifications = src.notifications.filter(
    (n) => (n.groupKey === inc.groupKey || n.alerts.some((fp) => fps.has(fp))) && within(n.createdAt, lookFrom),
  );
  const onHosts = (hosts: readonly string[]) => scope.hosts.size === 0 || hosts.some((h) => scope.hosts.has(h));
  const changes = src.changes.filter((c) => onHosts(c.hosts) && within(c.at, lookFrom));
  const drift = src.drift.filter((d) => onHosts([d.host]) && within(d.at, lookFrom));
  const drafts: Draft[] = [
    ...eventEntries(events),
    ...alertEntries(alerts),
    ...notificationEntries(notifications),
    ...changeEntries(changes),
    ...driftEntries(drift),
  ];
  const entries: TimelineEntry[] = drafts.map((d) => ({
    ...d,
    local: formatLocal(d.at, opts.timeZone),
    starred: src.stars.has(d.key),
  }));
  for (const o of src.own) {
    entries.push({
      key: `entry:${o.id}`,
      kind: o.kind,
      at: o.at,
      local: formatLocal(o.at, opts.timeZone),
      text:
        o.kind === 'incident.note'
          ? `${o.by}: ${o.text}`
          : o.kind === 'incident.public'
            ? `public update by ${o.by}: ${o.text}`
            : o.text,
      keyMoment: OWN_KEY[o.kind] ?? false,
      starred: o.starred,
      by: o.by,
      ...(o.kind === 'incident.status' && typeof o.data.to === 'string' ? { statusTo: o.data.to } : {}),
    });
  }
  // Oldest first; at the same instant, what happened in the world before what people said about it.
  const order = (e: TimelineEntry) => (e.kind.startsWith('incident.') ? 1 : 0);
  return entries.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : order(a) - order(b)));
}

/** Entries that mark the outage itself (not its detection): first failing probes and traffic drops. */
const FAILURE_KINDS = new Set(['monitor.vantage', 'traffic.drop']);

/**
 * When the outage began, by the timeline: the earliest first-failing probe or traffic drop (whose time is computed
 * back from the rate series), if before the incident's recorded start. The alert that declared the incident fires
 * after its `for`/quorum, so this is what makes MTTD honest.
 */
export function outageStart(inc: Incident, timeline: readonly TimelineEntry[]): string {
  let start = inc.startedAt;
  for (const e of timeline)
    if (FAILURE_KINDS.has(e.kind) && e.at < start && !e.text.includes('answers again')) start = e.at;
  return start;
}

/** An audit entry, the parts the timeline reads (src/store/types.ts AuditEntry). */
export interface TimelineAudit {
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly after: unknown;
}

/** The audit actions the timeline shows, with the words it uses. */
const CHANGE_ACTIONS: Readonly<Record<string, string>> = {
  'change.propose': 'proposed',
  'change.approve': 'approved',
  'change.reject': 'rejected',
  'change.override': 'overridden',
  'change.apply': 'apply-started',
  'change.rolled-back': 'rolled-back',
  'job.rolled-back': 'rolled-back',
  'job.failed': 'failed',
};

/**
 * Changes and drift from the audit trail: every change step and every host's drift is audited there already
 * (src/server/changes.ts, job-outcome.ts, rollout.ts), so the timeline reads it rather than keeping a copy.
 */
export function fromAudit(entries: readonly TimelineAudit[]): { changes: TimelineChange[]; drift: TimelineDrift[] } {
  const changes: TimelineChange[] = [];
  const drift: TimelineDrift[] = [];
  for (const e of entries) {
    const after = rec(e.after);
    if (e.action === 'host.drift') {
      const host = e.target.replace(/^host:/, '');
      // Dated by when the agent read the drifted ruleset (a minute's grace for clocks), not when it was diffed.
      const seen = str(after.seenAt);
      const seenMs = seen ? Date.parse(seen) : Number.NaN;
      const at =
        seen && seenMs <= Date.parse(e.at) && seenMs >= Date.parse(e.at) - 60_000
          ? new Date(seenMs).toISOString()
          : e.at;
      drift.push({ host, at, text: str(after.summary) ?? 'the live ruleset differs from the desired one' });
      continue;
    }
    const m = /^change:(\d+)$/.exec(e.target);
    if (!m) continue;
    const changeId = Number(m[1]);
    const host = str(after.host);
    const hosts = host
      ? [host]
      : Array.isArray(after.hosts)
        ? after.hosts.filter((h): h is string => typeof h === 'string')
        : [];
    let action = CHANGE_ACTIONS[e.action];
    if (e.action === 'job.done' && after.change === 'applied') action = 'applied';
    else if (e.action.startsWith('agent.') && /rollback|restore/.test(e.action)) action = 'agent-rollback';
    if (!action) continue;
    changes.push({
      changeId,
      at: e.at,
      action,
      by: e.actor,
      hosts,
      reason: str(after.reason) ?? str(after.detail) ?? '',
    });
  }
  // A review names no host: it is about the hosts its change's other steps name (the proposal lists them all).
  const hostsOf = new Map<number, Set<string>>();
  for (const c of changes)
    for (const h of c.hosts) hostsOf.set(c.changeId, (hostsOf.get(c.changeId) ?? new Set()).add(h));
  const filled = changes.map((c) =>
    c.hosts.length === 0 && hostsOf.has(c.changeId) ? { ...c, hosts: [...(hostsOf.get(c.changeId) ?? [])] } : c,
  );
  return { changes: filled, drift };
}
