/**
 * The incident lifecycle (issue 16 §1) as pure functions over an incident and the clock passed in: declaring (by
 * hand, or by the policy from an alert group), acknowledging, assigning, status updates, notes, resolving, and
 * reopening when the same alert group fires again within the reopen window. Each action returns the incident
 * afterwards and the entry it adds to the timeline; a transition that is not allowed throws a user error saying
 * what the incident's state is and what would be valid. The server stores what is returned.
 */
import type { Alert } from '../alerting/types.js';
import { UserError } from '../errors.js';
import {
  type Incident,
  type IncidentDraft,
  type IncidentSeverity,
  type IncidentStatus,
  type OwnEntry,
  SEVERITIES,
  STATUSES,
} from './types.js';

/** Alert severities from least to most urgent (Prometheus conventions); a threshold names one of them. */
export const ALERT_SEVERITIES = ['none', 'info', 'warning', 'error', 'critical'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

export interface IncidentPolicy {
  /** Declare an incident when an alert group has a firing alert at least this severe; null: only by hand. */
  readonly autoDeclare: { readonly minSeverity: AlertSeverity; readonly severity: IncidentSeverity } | null;
  /** A resolved incident whose alert group fires again within this long is reopened, not declared anew. */
  readonly reopenWindowMs: number;
  /** How far before the start changes and drift are looked for (the timeline and the suspects). */
  readonly lookBackMs: number;
  /** IANA time zone the timeline and the postmortem print local times in (`site.timezone`). */
  readonly timeZone: string;
}

export const DEFAULT_INCIDENT_POLICY: IncidentPolicy = {
  autoDeclare: { minSeverity: 'critical', severity: 'SEV2' },
  reopenWindowMs: 3_600_000,
  lookBackMs: 2 * 3_600_000,
  timeZone: 'UTC',
};

export interface Transition {
  readonly incident: Incident;
  readonly entry: OwnEntry;
}

const iso = (ms: number) => new Date(ms).toISOString();

function stateError(inc: Incident, action: string, expected: string): UserError {
  return new UserError('RAMPART_ERR_STATE', `incident ${inc.id} is ${inc.status}: cannot ${action}; ${expected}`, {
    incident: inc.id,
    // Not `status`: a problem's details join its body, where `status` is the HTTP status.
    incidentStatus: inc.status,
  });
}

function usage(field: string, value: unknown, expected: string): UserError {
  return new UserError(
    'RAMPART_ERR_VALIDATION',
    `${field}: ${JSON.stringify(value)} is not valid; expected ${expected}`,
    {
      field,
      value,
      expected,
    },
  );
}

export function isSeverity(s: string): s is IncidentSeverity {
  return (SEVERITIES as readonly string[]).includes(s);
}

export function isStatus(s: string): s is IncidentStatus {
  return (STATUSES as readonly string[]).includes(s);
}

/** `1`, `sev1`, `SEV1` → `SEV1`; undefined for anything else. */
export function parseSeverity(s: string | number): IncidentSeverity | undefined {
  const t = String(s).trim().toUpperCase();
  const full = /^\d$/.test(t) ? `SEV${t}` : t;
  return isSeverity(full) ? full : undefined;
}

export interface DeclareInput {
  readonly title: string;
  readonly severity: IncidentSeverity;
  readonly services?: readonly string[];
  readonly hosts?: readonly string[];
  readonly commander?: string | null;
  /** ISO 8601: when it began, if before the declaration (not after `now`). */
  readonly startedAt?: string;
}

/** An incident declared by hand by `by` at `nowMs`. */
export function declare(input: DeclareInput, by: string, nowMs: number): { draft: IncidentDraft; entry: OwnEntry } {
  const title = input.title.trim();
  if (title === '') throw usage('title', input.title, 'a non-empty title');
  if (!isSeverity(input.severity)) throw usage('severity', input.severity, SEVERITIES.join(', '));
  const now = iso(nowMs);
  let startedAt = now;
  if (input.startedAt !== undefined) {
    const t = Date.parse(input.startedAt);
    if (!Number.isFinite(t)) throw usage('startedAt', input.startedAt, 'an ISO 8601 time');
    if (t > nowMs) throw usage('startedAt', input.startedAt, `a time not after now (${now})`);
    startedAt = iso(t);
  }
  const draft: IncidentDraft = {
    title,
    severity: input.severity,
    status: 'investigating',
    commander: input.commander ?? null,
    services: uniq(input.services ?? []),
    hosts: uniq(input.hosts ?? []),
    groupKey: null,
    declaredBy: by,
    startedAt,
    detectedAt: now,
    acknowledgedAt: null,
    mitigatedAt: null,
    resolvedAt: null,
    reopened: 0,
    followUps: [],
  };
  return {
    draft,
    entry: {
      kind: 'incident.declared',
      at: now,
      by,
      text: `${by} declared ${draft.severity} incident "${title}"`,
      data: { severity: draft.severity },
    },
  };
}

function uniq(xs: readonly string[]): string[] {
  return [...new Set(xs.filter((x) => x !== ''))].sort();
}

function rank(severity: string | undefined): number {
  return ALERT_SEVERITIES.indexOf((severity ?? 'none') as AlertSeverity);
}

/** What the policy does for an alert group's alerts at `nowMs`. */
export type AutoDecision =
  | { readonly kind: 'none' }
  | { readonly kind: 'declare'; readonly draft: IncidentDraft; readonly entry: OwnEntry }
  | { readonly kind: 'reopen'; readonly incident: Incident; readonly entry: OwnEntry }
  /** The open incident takes new services or hosts from the group's new alerts. */
  | { readonly kind: 'widen'; readonly incident: Incident };

/**
 * An alert about one host and no service (FirewallDrift, AgentSilent, a host's own exporter) belongs with the service
 * that host runs: when the site's services name exactly one service on the host, the alert is grouped for incidents
 * as if it carried `service` (the founding edit on web1 is part of the shop's outage, not an incident of its own).
 * A host that runs several services, or none, keeps the alert as it is. The alert's stored labels do not change.
 */
export function withHostService(
  a: Alert,
  services: readonly { readonly name: string; readonly hosts: readonly string[] }[],
): Alert {
  const host = a.labels.host;
  if (!host || a.labels.service) return a;
  const on = services.filter((s) => s.hosts.includes(host));
  if (on.length !== 1) return a;
  return { ...a, labels: { ...a.labels, service: (on[0] as { name: string }).name } };
}

/**
 * Decides for one alert group: `latest` is the newest incident declared from the same group key (open or not).
 * Only firing alerts at least as severe as the policy's threshold count.
 */
export function decideForGroup(
  groupKey: string,
  alerts: readonly Alert[],
  latest: Incident | undefined,
  policy: IncidentPolicy,
  nowMs: number,
): AutoDecision {
  const auto = policy.autoDeclare;
  if (!auto) return { kind: 'none' };
  const min = rank(auto.minSeverity);
  const hot = alerts.filter(
    (a) => a.state === 'firing' && rank(a.labels.severity) >= min && rank(a.labels.severity) > 0,
  );
  if (hot.length === 0) return { kind: 'none' };
  const services = uniq(hot.flatMap((a) => (a.labels.service ? [a.labels.service] : [])));
  const hosts = uniq(hot.flatMap((a) => (a.labels.host ? [a.labels.host] : [])));
  const now = iso(nowMs);
  if (latest && latest.status !== 'resolved') {
    const s = uniq([...latest.services, ...services]);
    const h = uniq([...latest.hosts, ...hosts]);
    if (s.length === latest.services.length && h.length === latest.hosts.length) return { kind: 'none' };
    return { kind: 'widen', incident: { ...latest, services: s, hosts: h } };
  }
  if (latest?.resolvedAt && nowMs - Date.parse(latest.resolvedAt) <= policy.reopenWindowMs) {
    const names = uniq(hot.map((a) => a.labels.alertname ?? 'alert'));
    return {
      kind: 'reopen',
      incident: {
        ...latest,
        status: 'investigating',
        resolvedAt: null,
        mitigatedAt: null,
        services: uniq([...latest.services, ...services]),
        hosts: uniq([...latest.hosts, ...hosts]),
        reopened: latest.reopened + 1,
      },
      entry: {
        kind: 'incident.reopened',
        at: now,
        by: 'rampart',
        text: `Reopened: ${names.join(', ')} fired again ${Math.round((nowMs - Date.parse(latest.resolvedAt)) / 60_000)} min after it was resolved`,
        data: { groupKey, alerts: hot.map((a) => a.fingerprint) },
      },
    };
  }
  const first = hot.reduce((a, b) => (b.startsAt < a.startsAt ? b : a));
  const startedAt = iso(Math.min(Date.parse(first.startsAt), nowMs));
  const subject = first.labels.service ?? first.labels.host ?? first.labels.monitor ?? first.labels.instance;
  const title = `${first.labels.alertname ?? 'Alert'}${subject ? `: ${subject}` : ''}`;
  const draft: IncidentDraft = {
    title,
    severity: auto.severity,
    status: 'investigating',
    commander: null,
    services,
    hosts,
    groupKey,
    declaredBy: 'rampart',
    startedAt,
    detectedAt: startedAt,
    acknowledgedAt: null,
    mitigatedAt: null,
    resolvedAt: null,
    reopened: 0,
    followUps: [],
  };
  return {
    kind: 'declare',
    draft,
    entry: {
      kind: 'incident.declared',
      at: now,
      by: 'rampart',
      text: `Incident declared (${auto.severity}) from alert ${title} (severity ${first.labels.severity})`,
      data: { groupKey, alerts: hot.map((a) => a.fingerprint), severity: auto.severity },
    },
  };
}

function open(inc: Incident, action: string): void {
  if (inc.status === 'resolved')
    throw stateError(inc, action, 'it is resolved (a new firing of its alerts reopens it)');
}

/** The first acknowledgement: stops the clock of MTTA; the one who acknowledges commands unless someone does. */
export function acknowledge(inc: Incident, by: string, nowMs: number): Transition {
  open(inc, 'acknowledge');
  if (inc.acknowledgedAt !== null) {
    throw stateError(inc, 'acknowledge', `it was acknowledged at ${inc.acknowledgedAt} already`);
  }
  const at = iso(nowMs);
  return {
    incident: { ...inc, acknowledgedAt: at, commander: inc.commander ?? by },
    entry: { kind: 'incident.ack', at, by, text: `${by} acknowledged the incident`, data: {} },
  };
}

export function assign(inc: Incident, commander: string, by: string, nowMs: number): Transition {
  open(inc, 'assign a commander');
  const name = commander.trim();
  if (name === '') throw usage('commander', commander, 'a user name');
  const at = iso(nowMs);
  return {
    incident: { ...inc, commander: name },
    entry: {
      kind: 'incident.assign',
      at,
      by,
      text: `${by} made ${name} the incident commander`,
      data: { from: inc.commander, to: name },
    },
  };
}

/** A status update (`investigating`, `identified`, `monitoring`); `resolved` goes through resolve(). */
export function setStatus(inc: Incident, status: string, by: string, nowMs: number, text = ''): Transition {
  if (status === 'resolved') return resolve(inc, by, nowMs, text);
  if (!isStatus(status)) throw usage('status', status, STATUSES.join(', '));
  open(inc, `move to ${status}`);
  if (status === inc.status) throw stateError(inc, `move to ${status}`, `it is ${status} already`);
  const at = iso(nowMs);
  const mitigatedAt = status === 'monitoring' ? (inc.mitigatedAt ?? at) : inc.mitigatedAt;
  return {
    incident: { ...inc, status, mitigatedAt },
    entry: {
      kind: 'incident.status',
      at,
      by,
      text: text.trim() !== '' ? text.trim() : `${by} set the status to ${status}`,
      data: { from: inc.status, to: status },
    },
  };
}

export function resolve(inc: Incident, by: string, nowMs: number, text = ''): Transition {
  open(inc, 'resolve');
  const at = iso(nowMs);
  return {
    incident: { ...inc, status: 'resolved', resolvedAt: at, mitigatedAt: inc.mitigatedAt ?? at },
    entry: {
      kind: 'incident.resolved',
      at,
      by,
      text: text.trim() !== '' ? text.trim() : `${by} resolved the incident`,
      data: { from: inc.status },
    },
  };
}

/** A responder's note; allowed after the resolution too (what was learnt). */
export function note(inc: Incident, text: string, by: string, nowMs: number): OwnEntry {
  const t = text.trim();
  if (t === '') throw usage('text', text, 'a non-empty note');
  return { kind: 'incident.note', at: iso(nowMs), by, text: t, data: { incident: inc.id } };
}

/** An update for the public status page: said to customers as written, so it must not be empty. */
export function publicUpdate(inc: Incident, text: string, by: string, nowMs: number): OwnEntry {
  const t = text.trim();
  if (t === '') throw usage('text', text, 'a non-empty public update');
  return { kind: 'incident.public', at: iso(nowMs), by, text: t, data: { incident: inc.id, public: true } };
}

/** MTTD (start → detected), MTTA (detected → acknowledged), MTTR (start → resolved), in ms; null when not yet. */
export function responseTimes(inc: Incident): { mttdMs: number; mttaMs: number | null; mttrMs: number | null } {
  const start = Date.parse(inc.startedAt);
  const detected = Date.parse(inc.detectedAt);
  return {
    mttdMs: Math.max(0, detected - start),
    mttaMs: inc.acknowledgedAt === null ? null : Math.max(0, Date.parse(inc.acknowledgedAt) - detected),
    mttrMs: inc.resolvedAt === null ? null : Math.max(0, Date.parse(inc.resolvedAt) - start),
  };
}
