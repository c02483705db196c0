/**
 * The values the alerting layer (issue 15) passes between its parts: alerts as Prometheus and Alertmanager define
 * them (labels, annotations, state, a fingerprint of the labels), the notification of one alert group that a
 * receiver is sent (the shape of Alertmanager's webhook `data`), and what is written to the durable outbox.
 * Pure data: no clock, store or network here.
 */

/** Label names and values, as Prometheus has them. */
export type Labels = Readonly<Record<string, string>>;

export type AlertState = 'firing' | 'resolved';

export interface Alert {
  /** 16 hex digits: FNV-1a 64 over the sorted labels, as Alertmanager computes it (src/alerting/alert.ts). */
  readonly fingerprint: string;
  readonly labels: Labels;
  readonly annotations: Labels;
  readonly state: AlertState;
  /** ISO 8601 UTC: when it began firing. */
  readonly startsAt: string;
  /** ISO 8601 UTC: when it resolved; null while firing. */
  readonly endsAt: string | null;
  /** Where it came from: a Rampart event kind (`monitor.state`, `traffic.drop`, ...) or `alertmanager`. */
  readonly source: string;
  /** A link to what raised it, when there is one. */
  readonly generatorURL?: string;
  /** Set when a person acknowledged it: escalation stops, the alert still resolves by itself. */
  readonly ack?: { readonly by: string; readonly at: string } | undefined;
}

/**
 * What one receiver is sent for one alert group at one flush: Alertmanager's webhook `data` (version 4) with
 * Rampart's additions. `status` is `firing` while any alert of the group fires.
 */
export interface GroupNotification {
  readonly receiver: string;
  /** Stable for the group's life: the route's path and the group's label values (PagerDuty's dedup_key). */
  readonly groupKey: string;
  readonly status: AlertState;
  readonly groupLabels: Labels;
  readonly commonLabels: Labels;
  readonly commonAnnotations: Labels;
  /** Firing alerts first, then the ones resolved since the last notification. */
  readonly alerts: readonly Alert[];
  /** Alerts left out to keep the message bounded (Alertmanager's truncatedAlerts). */
  readonly truncatedAlerts: number;
  /** The base URL links in messages point to (the dashboard), e.g. https://rampart.example.com. */
  readonly externalURL: string;
  /** Set when this notification is an escalation step rather than the route's own flush. */
  readonly escalation?: { readonly policy: string; readonly step: number; readonly round: number } | undefined;
}

/** Whom a notification goes to: a receiver declared under `alerting.receivers`, or a user by their contacts. */
export type NotifyTarget =
  | { readonly kind: 'receiver'; readonly receiver: string }
  | { readonly kind: 'user'; readonly user: string };

/**
 * A notification to write to the outbox, in the same transaction as the state change that caused it. The outbox
 * sends it at least once; `key` is its idempotency key (the webhook id header, the e-mail Message-ID): the same
 * key enqueued twice is stored once.
 */
export interface OutboxDraft {
  readonly key: string;
  readonly target: NotifyTarget;
  readonly notification: GroupNotification;
  /** ISO 8601 UTC. */
  readonly createdAt: string;
}

/** A user's contact methods (`alerting.users`): who a user target reaches, and how. */
export interface UserContacts {
  readonly name: string;
  readonly email?: string | undefined;
  /** A Slack member id (U0123ABC), mentioned in the message sent to the Slack receiver named `slack-receiver`. */
  readonly slack?: string | undefined;
  readonly slackReceiver?: string | undefined;
  /** A webhook URL of the person's own (a phone bridge, a chat bot). */
  readonly webhook?: string | undefined;
  /** A PagerDuty Events API v2 integration (routing) key, from a file or the environment, never the store. */
  readonly pagerduty?: string | undefined;
}
