/**
 * The values the incident layer (issue 16) passes between its parts: incidents and their own entries (declared,
 * acknowledged, status updates, notes), the timeline entries assembled from the store's events, and the postmortem
 * drawn from both. Pure data: no clock, store or network here.
 */

export const SEVERITIES = ['SEV1', 'SEV2', 'SEV3', 'SEV4'] as const;
export type IncidentSeverity = (typeof SEVERITIES)[number];

export const STATUSES = ['investigating', 'identified', 'monitoring', 'resolved'] as const;
export type IncidentStatus = (typeof STATUSES)[number];

export interface Incident {
  readonly id: number;
  readonly title: string;
  readonly severity: IncidentSeverity;
  readonly status: IncidentStatus;
  /** The incident commander (a user name), null until someone is assigned or acknowledges. */
  readonly commander: string | null;
  readonly services: readonly string[];
  readonly hosts: readonly string[];
  /** The alert group that declared it (null when declared by hand): what a new firing is matched against. */
  readonly groupKey: string | null;
  /** Who declared it: a user, or `rampart` for the policy. */
  readonly declaredBy: string;
  /** ISO 8601 UTC. When the outage began (the earliest alert or the time given when declaring). */
  readonly startedAt: string;
  /** When Rampart (or a person) knew: the first alert fired, or the declaration. */
  readonly detectedAt: string;
  readonly acknowledgedAt: string | null;
  /** When it stopped hurting (status `monitoring`, or resolved without it). */
  readonly mitigatedAt: string | null;
  readonly resolvedAt: string | null;
  /** How many times a new firing of its alert group reopened it. */
  readonly reopened: number;
  /** Follow-up items (the postmortem's TODO). */
  readonly followUps: readonly string[];
  /** Bumped by every write (optimistic check). */
  readonly version: number;
}

/** An incident not yet stored. */
export type IncidentDraft = Omit<Incident, 'id' | 'version'>;

/** The kinds of the incident's own entries (written by the lifecycle; the rest of the timeline is assembled). */
export type OwnEntryKind =
  | 'incident.declared'
  | 'incident.reopened'
  | 'incident.ack'
  | 'incident.assign'
  | 'incident.status'
  | 'incident.resolved'
  | 'incident.note'
  /** The suspected cause, put on the timeline once by the server (issue 16 §3). */
  | 'incident.suspect'
  /** A remediation proposed through the change path (`incident remediate`). */
  | 'incident.remediate'
  /** A status-page update: the only text of an incident the public sees (issue 16 §6, GET /status.json). */
  | 'incident.public';

/** An entry the incident itself records: a person's action or note, or the policy's declaration. */
export interface OwnEntry {
  readonly kind: OwnEntryKind;
  /** ISO 8601 UTC. */
  readonly at: string;
  readonly by: string;
  readonly text: string;
  readonly data: Readonly<Record<string, unknown>>;
}

export interface StoredOwnEntry extends OwnEntry {
  readonly id: number;
  readonly incidentId: number;
  readonly starred: boolean;
}

/** One line of the timeline, whatever its source. */
export interface TimelineEntry {
  /** Stable across assemblies (what a star refers to): `entry:12`, `event:345`, `alert:<fp>:fired`, ... */
  readonly key: string;
  readonly kind: string;
  /** ISO 8601 UTC. */
  readonly at: string;
  /** The same instant in the site's time zone: `2023-05-10 14:00 GMT+3`. */
  readonly local: string;
  readonly text: string;
  /** A moment every postmortem shows (first failure, detection, acknowledgement, fix, resolution). */
  readonly keyMoment: boolean;
  readonly starred: boolean;
  readonly by?: string | undefined;
  /** For a status update: the status it moved to. */
  readonly statusTo?: string | undefined;
}
