/**
 * The `alerting:` section of rampart.yaml (issue 15; docs/alerting.md): the routing tree and inhibition rules with
 * Alertmanager's keys and semantics (snake_case inside this section, so an Alertmanager `route:` pasted in works),
 * with positioned errors. Receivers, users, schedules, escalation policies and maintenance windows have their own
 * schema modules, composed here.
 *
 *   alerting:
 *     external_url: https://rampart.example.com
 *     route:
 *       receiver: oncall
 *       group_by: [service]
 *       routes:
 *         - matchers: ['severity="critical"']
 *           receiver: pager
 *     inhibit_rules:
 *       - source_matchers: ['alertname="ServiceDown"']
 *         target_matchers: ['alertname="MonitorDown"']
 *         equal: [service]
 */
import { z } from 'zod';
import { LABEL_NAME_RE } from '../alerting/alert.js';
import { MATCHER_EXPECTED, type Matcher, parseMatcher } from '../alerting/matchers.js';
import { DEFAULT_INHIBIT_RULES, type InhibitRule } from '../alerting/mute.js';
import { buildRoute, type Route, type RouteSpec } from '../alerting/route.js';
import { ONCALL_KEYS, type OnCallConfig, onCallOf } from './alerting-oncall.js';
import {
  AlertingGlobalSchema,
  type EmailChannel,
  type ReceiverConfig,
  type ReceiversContext,
  ReceiversSchema,
  receiversOf,
  userEmailOf,
} from './alerting-receivers.js';
import { didYouMean } from './did-you-mean.js';
import { runbookField } from './runbooks.js';
import { checked, durationField, expect, nameField, object } from './schema-kit.js';
import type { ConfigLocation } from './types.js';

const matcherField = checked<Matcher>(MATCHER_EXPECTED, (text) => parseMatcher(text));
const matchersField = z.array(matcherField, expect('a list of matchers, like [\'severity="critical"\']'));
const labelName = z
  .string(expect('a label name: [a-zA-Z_][a-zA-Z0-9_]*'))
  .regex(LABEL_NAME_RE, expect('a label name: [a-zA-Z_][a-zA-Z0-9_]*'));
const groupByField = z
  .array(z.union([z.literal('...'), labelName], expect("a label name, or '...' for every label")))
  .optional();

interface RouteEntry {
  receiver?: string | undefined;
  matchers?: Matcher[] | undefined;
  continue?: boolean | undefined;
  group_by?: string[] | undefined;
  group_wait?: number | undefined;
  group_interval?: number | undefined;
  repeat_interval?: number | undefined;
  escalation?: string | undefined;
  runbook?: string | undefined;
  routes?: RouteEntry[] | undefined;
}

const RouteSchema: z.ZodType<RouteEntry> = z.lazy(() =>
  object(
    {
      receiver: nameField('a receiver name').optional(),
      matchers: matchersField.optional(),
      continue: z.boolean(expect('true or false')).optional(),
      group_by: groupByField,
      group_wait: durationField(0, 3_600_000).optional(),
      group_interval: durationField(1000, 86_400_000).optional(),
      repeat_interval: durationField(60_000, 7 * 86_400_000).optional(),
      escalation: nameField('an escalation policy name').optional(),
      runbook: runbookField.optional(),
      routes: z.array(RouteSchema, expect('a list of routes')).optional(),
    },
    'a route: a map with receiver, matchers, continue, group_by, group_wait, group_interval, repeat_interval, escalation, runbook and routes',
  ),
);

const InhibitSchema = object(
  {
    source_matchers: matchersField.min(1, expect('at least one source matcher')),
    target_matchers: matchersField.min(1, expect('at least one target matcher')),
    equal: z.array(labelName, expect('a list of label names')).optional(),
  },
  'an inhibition rule: a map with source_matchers, target_matchers and equal',
);

export const AlertingSchema = object(
  {
    global: AlertingGlobalSchema.optional(),
    receivers: ReceiversSchema.optional(),
    ...ONCALL_KEYS,
    external_url: z
      .string(expect('an http:// or https:// URL, like https://rampart.example.com'))
      .refine((u) => /^https?:\/\/\S+$/.test(u) && URL.canParse(u), expect('an http:// or https:// URL'))
      .optional(),
    route: RouteSchema.optional(),
    inhibit_rules: z.array(InhibitSchema, expect('a list of inhibition rules')).optional(),
    silent_intervals: z
      .number(expect('a whole number of intervals from 1 to 100, like 3'))
      .int(expect('a whole number of intervals, like 3'))
      .min(1, expect('at least 1 interval'))
      .max(100, expect('at most 100 intervals'))
      .optional(),
    tls_warning_days: z
      .number(expect('a whole number of days from 1 to 365, like 14'))
      .int(expect('a whole number of days, like 14'))
      .min(1, expect('at least 1 day'))
      .max(365, expect('at most 365 days'))
      .optional(),
    tls_critical_days: z
      .number(expect('a whole number of days from 0 to 365, like 3'))
      .int(expect('a whole number of days, like 3'))
      .min(0, expect('0 days or more'))
      .max(365, expect('at most 365 days'))
      .optional(),
  },
  'an alerting map: global, receivers, users, schedules, escalation_policies, maintenance_windows, external_url, route, inhibit_rules, silent_intervals, tls_warning_days and tls_critical_days',
);
export type AlertingEntry = z.infer<typeof AlertingSchema>;

export interface AlertingConfig {
  /** The base of the links in messages (the dashboard); defaults to the server's own address. */
  readonly externalURL?: string | undefined;
  /** Null: no route written, alerts are recorded and shown but nobody is notified. */
  readonly route: Route | null;
  readonly inhibitRules: readonly InhibitRule[];
  readonly receivers: readonly ReceiverConfig[];
  /** The SMTP settings (global smtp_*) a user's own e-mail goes through. */
  readonly userEmail?: EmailChannel | undefined;
  readonly onCall: OnCallConfig;
  /** How many of its intervals an agent or probe may stay silent before AgentSilent / ProbeSilent (default 3). */
  readonly silentIntervals?: number | undefined;
  /** Days left on a TLS certificate below which TlsCertificateExpiring fires as a warning / critical (14, 3). */
  readonly tlsExpiry?: { readonly warningDays: number; readonly criticalDays: number } | undefined;
}

export const NO_ALERTING: AlertingConfig = {
  route: null,
  inhibitRules: DEFAULT_INHIBIT_RULES,
  receivers: [],
  onCall: { users: [], schedules: [], escalationPolicies: [], maintenanceWindows: [] },
};

type Report = (path: readonly (string | number)[], problem: string, expected: string) => void;

/** The section with defaults and its cross-references checked (receivers and escalation policies by name). */
export function alertingOf(
  e: AlertingEntry | undefined,
  report: Report,
  locOf: (path: readonly (string | number)[]) => ConfigLocation,
  io: Pick<ReceiversContext, 'readFile' | 'env'> = {},
): AlertingConfig {
  if (e === undefined) return NO_ALERTING;
  const loc = (path: readonly (string | number)[]) => {
    const l = locOf(path);
    return `${l.file}:${l.line}:${l.column}`;
  };
  const ctx = { loc: locOf, problem: report, ...io };
  const receivers = receiversOf(e.receivers ?? [], e.global, ctx);
  const receiverNames = receivers.map((r) => r.name);
  const onCall = onCallOf(e, receiverNames, ctx);
  const userEmail = userEmailOf(e.global, ctx);
  const names = { receivers: receiverNames, escalations: onCall.escalationPolicies.map((p) => p.name) };
  const toSpec = (r: RouteEntry, path: (string | number)[]): RouteSpec => {
    if (r.receiver !== undefined && !names.receivers.includes(r.receiver)) {
      report(
        [...path, 'receiver'],
        `unknown receiver '${r.receiver}'${didYouMean(r.receiver, names.receivers)}`,
        names.receivers.length
          ? `one of the receivers: ${names.receivers.join(', ')}`
          : 'a receiver declared under alerting.receivers',
      );
    }
    if (r.escalation !== undefined && !names.escalations.includes(r.escalation)) {
      report(
        [...path, 'escalation'],
        `unknown escalation policy '${r.escalation}'${didYouMean(r.escalation, names.escalations)}`,
        names.escalations.length
          ? `one of the escalation policies: ${names.escalations.join(', ')}`
          : 'a policy declared under alerting.escalation_policies',
      );
    }
    const groupBy = r.group_by === undefined ? undefined : r.group_by.includes('...') ? ('all' as const) : r.group_by;
    return {
      receiver: r.receiver,
      matchers: r.matchers,
      continue: r.continue,
      groupBy,
      groupWaitMs: r.group_wait,
      groupIntervalMs: r.group_interval,
      repeatIntervalMs: r.repeat_interval,
      escalation: r.escalation,
      runbook: r.runbook,
      routes: r.routes?.map((c, i) => toSpec(c, [...path, 'routes', i])),
      at: loc(path),
    };
  };
  let route: Route | null = null;
  if (e.route) {
    const path = ['alerting', 'route'];
    if (e.route.receiver === undefined)
      report(path, "the root route has no 'receiver'", 'a receiver on the root route');
    if (e.route.matchers?.length) {
      report(
        [...path, 'matchers'],
        'the root route has matchers',
        'no matchers on the root route (it takes every alert)',
      );
    }
    route = buildRoute(toSpec(e.route, path));
  }
  const inhibitRules =
    e.inhibit_rules === undefined
      ? DEFAULT_INHIBIT_RULES
      : e.inhibit_rules.map((r) => ({
          sourceMatchers: r.source_matchers,
          targetMatchers: r.target_matchers,
          equal: r.equal ?? [],
        }));
  let tlsExpiry: AlertingConfig['tlsExpiry'];
  if (e.tls_warning_days !== undefined || e.tls_critical_days !== undefined) {
    tlsExpiry = { warningDays: e.tls_warning_days ?? 14, criticalDays: e.tls_critical_days ?? 3 };
    if (tlsExpiry.criticalDays >= tlsExpiry.warningDays) {
      report(
        ['alerting', e.tls_critical_days !== undefined ? 'tls_critical_days' : 'tls_warning_days'],
        `tls_critical_days (${tlsExpiry.criticalDays}) is not below tls_warning_days (${tlsExpiry.warningDays})`,
        'fewer critical days than warning days, like 3 and 14',
      );
    }
  }
  return {
    ...(e.external_url ? { externalURL: e.external_url } : {}),
    route,
    inhibitRules,
    receivers,
    ...(userEmail ? { userEmail } : {}),
    onCall,
    ...(e.silent_intervals !== undefined ? { silentIntervals: e.silent_intervals } : {}),
    ...(tlsExpiry ? { tlsExpiry } : {}),
  };
}
