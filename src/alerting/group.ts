/**
 * Alert groups (issue 15 §2): what Alertmanager's dispatcher and notification log do, as pure functions over a
 * group's state and the clock passed in. A group is born when its first alert arrives and flushes after the
 * route's group_wait; then every group_interval it notifies when the set of firing alerts grew or changed, when an
 * alert it announced resolved, or when repeat_interval passed since the last notification with alerts still
 * firing. Muted alerts (silenced, inhibited, in a maintenance window) are left out of notifications but stay in the
 * group. A group whose alerts have all resolved and been announced is deleted.
 */
import { groupKeyOf, groupLabelsOf, type Route } from './route.js';
import type { Alert, GroupNotification, Labels } from './types.js';

export interface GroupState {
  readonly key: string;
  readonly routeKey: string;
  readonly receiver: string;
  readonly groupLabels: Labels;
  readonly createdAtMs: number;
  /** When it flushes next. */
  readonly nextFlushMs: number;
  /** When a notification was last sent (null: never). */
  readonly lastSentMs: number | null;
  /** The fingerprints announced as firing by the last notification, sorted. */
  readonly sentFiring: readonly string[];
  /** Notifications sent so far: the idempotency key's counter. */
  readonly seq: number;
}

/** Where an alert goes on one route: the group (new or not) and when a new group first flushes. */
export interface Placement {
  readonly route: Route;
  readonly key: string;
  readonly groupLabels: Labels;
}

export function placements(routes: readonly Route[], labels: Labels): Placement[] {
  return routes.map((route) => {
    const groupLabels = groupLabelsOf(route, labels);
    return { route, key: groupKeyOf(route, groupLabels), groupLabels };
  });
}

export function newGroup(p: Placement, nowMs: number): GroupState {
  return {
    key: p.key,
    routeKey: p.route.key,
    receiver: p.route.receiver,
    groupLabels: p.groupLabels,
    createdAtMs: nowMs,
    nextFlushMs: nowMs + p.route.groupWaitMs,
    lastSentMs: null,
    sentFiring: [],
    seq: 0,
  };
}

/** Why an alert is not notified now; null when it is. */
export type MuteReason =
  | { readonly kind: 'silenced'; readonly silence: string }
  | { readonly kind: 'inhibited'; readonly by: string; readonly rule: number }
  | { readonly kind: 'maintenance'; readonly window: string };

export interface FlushContext {
  readonly nowMs: number;
  readonly route: Pick<Route, 'groupIntervalMs' | 'repeatIntervalMs'>;
  readonly mute: (a: Alert) => MuteReason | null;
  readonly externalURL: string;
  /** Bound on the alerts listed in one notification (the rest are counted in truncatedAlerts). */
  readonly maxAlerts?: number;
}

export interface FlushResult {
  /** Null when there is nothing new to say. */
  readonly notification: GroupNotification | null;
  /** The group afterwards; null when it is finished (every alert resolved and announced). */
  readonly group: GroupState | null;
  /** Fingerprints that leave the group (resolved: announced, or never announced). */
  readonly drop: readonly string[];
}

/** The labels every map has with the same value (Alertmanager's commonLabels). */
export function commonLabels(maps: readonly Labels[]): Labels {
  if (maps.length === 0) return {};
  const first = maps[0] as Labels;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(first)) if (maps.every((m) => m[k] === v)) out[k] = v;
  return out;
}

/** One flush of a group holding `alerts` (its members, firing or resolved) at ctx.nowMs. */
export function flush(g: GroupState, alerts: readonly Alert[], ctx: FlushContext): FlushResult {
  const sent = new Set(g.sentFiring);
  const firing = alerts.filter((a) => a.state === 'firing' && ctx.mute(a) === null);
  const resolved = alerts.filter((a) => a.state === 'resolved');
  const resolvedToSay = resolved.filter((a) => sent.has(a.fingerprint));
  const firingFps = firing.map((a) => a.fingerprint).sort();
  const grew = firingFps.some((fp) => !sent.has(fp));
  const repeatDue =
    firing.length > 0 && g.lastSentMs !== null && ctx.nowMs - g.lastSentMs >= ctx.route.repeatIntervalMs;
  const send = grew || resolvedToSay.length > 0 || repeatDue;
  const remaining = alerts.filter((a) => a.state !== 'resolved');
  const drop = resolved.map((a) => a.fingerprint);
  let notification: GroupNotification | null = null;
  if (send) {
    const listed = [...firing.sort(byStart), ...resolvedToSay.sort(byStart)];
    const max = ctx.maxAlerts ?? 0;
    const shown = max > 0 ? listed.slice(0, max) : listed;
    notification = {
      receiver: g.receiver,
      groupKey: g.key,
      status: firing.length > 0 ? 'firing' : 'resolved',
      groupLabels: g.groupLabels,
      commonLabels: commonLabels(listed.map((a) => a.labels)),
      commonAnnotations: commonLabels(listed.map((a) => a.annotations)),
      alerts: shown,
      truncatedAlerts: listed.length - shown.length,
      externalURL: ctx.externalURL,
    };
  }
  // What was announced and is still firing (silenced now, say) stays announced: its resolution is still news.
  const keptSent = send ? firingFps : g.sentFiring.filter((fp) => !drop.includes(fp));
  const next: GroupState = {
    ...g,
    nextFlushMs: ctx.nowMs + ctx.route.groupIntervalMs,
    lastSentMs: send ? ctx.nowMs : g.lastSentMs,
    sentFiring: keptSent,
    seq: send ? g.seq + 1 : g.seq,
  };
  return { notification, group: remaining.length > 0 ? next : null, drop };
}

function byStart(a: Alert, b: Alert): number {
  return a.startsAt < b.startsAt ? -1 : a.startsAt > b.startsAt ? 1 : a.fingerprint < b.fingerprint ? -1 : 1;
}

/**
 * The idempotency key of a group's notification number `seq` to one receiver. The group's birth is part of it: a
 * group that finished (every alert resolved and announced) and is born again when the same alerts fire again counts
 * from 1 once more, and its notifications are new ones, not copies of the last outage's (which the outbox keeps for
 * days and would take them for).
 */
export function notificationKey(groupKey: string, createdAtMs: number, receiver: string, seq: number): string {
  return `${receiver}|${groupKey}|${createdAtMs}|${seq}`;
}
