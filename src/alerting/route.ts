/**
 * The routing tree (issue 15 §2), with Alertmanager's semantics: every alert enters at the root; the children are
 * tried in order and the alert descends into the first whose matchers hold, and into later ones too while the
 * matched child says `continue`; a node none of whose children match takes the alert itself. A child inherits
 * receiver, group_by and the three intervals from its parent unless it sets them. Pure.
 */
import { formatMatcher, type Matcher, matchAll } from './matchers.js';
import type { Labels } from './types.js';

/**
 * Rampart's defaults, chosen for an outage like the founding one (Alertmanager's are group_wait 30s,
 * group_interval 5m, repeat_interval 4h): Rampart's own alerts come from state machines that already wait for
 * consecutive failures and a quorum of vantage points, so a further half second of grouping is enough to gather
 * the hosts of a service that fail together, and an unacknowledged page is repeated within the hour.
 */
export const ROUTE_DEFAULTS = {
  groupBy: ['alertname', 'service'] as readonly string[],
  groupWaitMs: 500,
  groupIntervalMs: 30_000,
  repeatIntervalMs: 3_600_000,
} as const;

export interface Route {
  /** Alertmanager's route key: the matchers from the root down, like `{}/{severity="critical"}`. */
  readonly key: string;
  readonly receiver: string;
  readonly matchers: readonly Matcher[];
  readonly continue: boolean;
  /** Label names the alerts are grouped by; `all` (Alertmanager's `...`) groups by every label. */
  readonly groupBy: readonly string[] | 'all';
  readonly groupWaitMs: number;
  readonly groupIntervalMs: number;
  readonly repeatIntervalMs: number;
  /** An escalation policy (`alerting.escalation_policies`) started when the group first notifies while firing. */
  readonly escalation?: string | undefined;
  /** A runbook (its path as written in rampart.yaml), inherited by child routes: shown with the route's alerts. */
  readonly runbook?: string | undefined;
  readonly routes: readonly Route[];
  /** Where it is written (rampart.yaml:line:col), for `rampart alerts route`. */
  readonly at?: string | undefined;
}

/** A route as written: every field optional but the root's receiver (checked by the config). */
export interface RouteSpec {
  readonly receiver?: string | undefined;
  readonly matchers?: readonly Matcher[] | undefined;
  readonly continue?: boolean | undefined;
  readonly groupBy?: readonly string[] | 'all' | undefined;
  readonly groupWaitMs?: number | undefined;
  readonly groupIntervalMs?: number | undefined;
  readonly repeatIntervalMs?: number | undefined;
  readonly escalation?: string | undefined;
  readonly runbook?: string | undefined;
  readonly routes?: readonly RouteSpec[] | undefined;
  readonly at?: string | undefined;
}

/** The tree with inherited values filled in and keys given (a sibling with the same matchers gets `[index]`). */
export function buildRoute(spec: RouteSpec, parent?: Route, index?: number, siblings?: readonly RouteSpec[]): Route {
  const own = `{${(spec.matchers ?? []).map(formatMatcher).join(',')}}`;
  let key = parent ? `${parent.key}/${own}` : own;
  if (parent && siblings && index !== undefined) {
    const same = siblings.filter((s) => `{${(s.matchers ?? []).map(formatMatcher).join(',')}}` === own).length;
    if (same > 1) key += `[${index}]`;
  }
  const base = {
    receiver: spec.receiver ?? parent?.receiver ?? '',
    groupBy: spec.groupBy ?? parent?.groupBy ?? ROUTE_DEFAULTS.groupBy,
    groupWaitMs: spec.groupWaitMs ?? parent?.groupWaitMs ?? ROUTE_DEFAULTS.groupWaitMs,
    groupIntervalMs: spec.groupIntervalMs ?? parent?.groupIntervalMs ?? ROUTE_DEFAULTS.groupIntervalMs,
    repeatIntervalMs: spec.repeatIntervalMs ?? parent?.repeatIntervalMs ?? ROUTE_DEFAULTS.repeatIntervalMs,
    escalation: spec.escalation ?? parent?.escalation,
    runbook: spec.runbook ?? parent?.runbook,
  };
  const node: { -readonly [K in keyof Route]: Route[K] } = {
    key,
    ...base,
    matchers: spec.matchers ?? [],
    continue: spec.continue ?? false,
    routes: [],
    at: spec.at,
  };
  const kids = spec.routes ?? [];
  node.routes = kids.map((k, i) => buildRoute(k, node, i, kids));
  return node;
}

/** The routes an alert with these labels is handled by, in tree order (never empty: the root at least). */
export function matchRoutes(root: Route, labels: Labels): Route[] {
  return matchNode(root, labels) ?? [root];
}

function matchNode(node: Route, labels: Labels): Route[] | null {
  if (!matchAll(node.matchers, labels)) return null;
  const out: Route[] = [];
  for (const child of node.routes) {
    const got = matchNode(child, labels);
    if (got === null) continue;
    out.push(...got);
    if (!child.continue) break;
  }
  return out.length > 0 ? out : [node];
}

/** The labels an alert is grouped by on a route. */
export function groupLabelsOf(route: Route, labels: Labels): Labels {
  if (route.groupBy === 'all') return labels;
  const out: Record<string, string> = {};
  for (const name of route.groupBy) {
    const v = labels[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/** Alertmanager's group key: the route key and the group labels, like `{}/{severity="critical"}:{service="shop"}`. */
export function groupKeyOf(route: Route, groupLabels: Labels): string {
  return `${route.key}:{${Object.keys(groupLabels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(groupLabels[k])}`)
    .join(',')}}`;
}

/** Every route of the tree, depth first (for lookups by key). */
export function allRoutes(root: Route): Route[] {
  const out: Route[] = [root];
  for (const c of root.routes) out.push(...allRoutes(c));
  return out;
}
