/**
 * The on-call keys of rampart.yaml's `alerting:` section (issue 15 §2-§3; docs/alerting.md "On-call schedules",
 * "Escalation", "Maintenance windows"): `users`, `schedules`, `escalation_policies` and `maintenance_windows`.
 * Schemas with the same positioned errors as the rest of the file (src/config/alerting.ts composes them), and
 * converters to the values of src/alerting/schedule.ts, escalation.ts and maintenance.ts, which check the names
 * one entry gives another (a participant that is not a user, a step naming an unknown schedule or receiver).
 *
 *   alerting:
 *     users:
 *       - {name: alice, email: alice@example.com, slack: U0123ABC, slack_receiver: ops-slack}
 *     schedules:
 *       - name: shop-primary
 *         time_zone: Europe/Berlin
 *         layers:
 *           - {rotation: weekly, handoff: mon 09:00, start: 2026-01-05, participants: [alice, bob]}
 *         overrides:
 *           - {user: carol, from: 2026-03-28T18:00, to: 2026-03-30T09:00}
 *     escalation_policies:
 *       - name: shop
 *         steps:
 *           - {notify: [{schedule: shop-primary}], wait: 5m}
 *           - {notify: [{user: lead}, {receiver: ops-slack}], wait: 10m}
 *         repeat: 2
 *     maintenance_windows:
 *       - {name: backups, matchers: ['service="shop"'], cron: 0 2 * * sun, duration: 2h, time_zone: Europe/Berlin}
 */
import { Cron } from 'croner';
import { z } from 'zod';
import type { EscalationPolicy, EscalationTarget } from '../alerting/escalation.js';
import type { MaintenanceWindow } from '../alerting/maintenance.js';
import { MATCHER_EXPECTED, type Matcher, parseMatcher } from '../alerting/matchers.js';
import {
  firstHandoffWallMs,
  instantOf,
  type Schedule,
  type ScheduleLayer,
  type ScheduleOverride,
  timeZoneProblem,
  type WeeklyWindow,
} from '../alerting/schedule.js';
import type { UserContacts } from '../alerting/types.js';
import { didYouMean } from './did-you-mean.js';
import { checked, durationField, durationOf, expect, intField, nameField, object, valid } from './schema-kit.js';
import type { ConfigLocation } from './types.js';

type PathPart = string | number;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

// ---------------------------------------------------------------------------------------------------------------
// Fields.

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const DAYS_SHOWN = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const DAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

/** 0 = Sunday, or the problem in words. */
function dayOf(text: string): number | string {
  const d = text.trim().toLowerCase();
  const i = Math.max((DAYS as readonly string[]).indexOf(d), DAY_NAMES.indexOf(d));
  return i >= 0 ? i : `unknown day '${text}'${didYouMean(d, DAYS_SHOWN)}`;
}

/** Minutes after midnight from `HH:MM` (24:00 only when `endOfDay`), or the problem in words. */
function timeOfDay(text: string, endOfDay = false): number | string {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text.trim());
  if (!m) return 'not a time of day';
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (h === 24 && min === 0) return endOfDay ? 1440 : '24:00 is only valid as the end (to)';
  if (h > 23 || min > 59) return 'the time of day is out of range';
  return h * 60 + min;
}

const TIME_ZONE_EXPECTED = 'an IANA time zone, like Europe/Berlin, America/New_York or UTC';
const timeZoneField = valid(TIME_ZONE_EXPECTED, timeZoneProblem);

const DATE_EXPECTED = 'a date, like 2026-01-05';
function dateProblem(text: string): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return 'not a date (YYYY-MM-DD)';
  const ms = Date.parse(`${text}T00:00:00Z`);
  if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== text) return `${text} does not exist`;
  return undefined;
}
/** yaml reads an unquoted 2026-01-05 as a string in its default (core) schema; a Date would come from yaml 1.1. */
const dateField = z.preprocess(
  (v) => (v instanceof Date ? v.toISOString().slice(0, 10) : v),
  valid(DATE_EXPECTED, dateProblem),
);

const TIME_EXPECTED = 'a time of day, like 09:00';
const timeField = valid(TIME_EXPECTED, (t) => {
  const r = timeOfDay(t);
  return typeof r === 'string' ? r : undefined;
});

const DAYS_EXPECTED = `a list of days: ${DAYS_SHOWN.join(', ')}`;
const dayField = valid(`a day: ${DAYS_SHOWN.join(', ')}`, (t) => {
  const r = dayOf(t);
  return typeof r === 'string' ? r : undefined;
});
const daysField = z.array(dayField, expect(DAYS_EXPECTED)).min(1, expect(DAYS_EXPECTED));

// ---------------------------------------------------------------------------------------------------------------
// users

const EMAIL_EXPECTED = 'an e-mail address, like alice@example.com';
const SLACK_EXPECTED = 'a Slack member id, like U0123ABCD';
const URL_EXPECTED = 'an http:// or https:// URL';
const ENV_EXPECTED = 'an environment variable name, like PAGERDUTY_KEY_ALICE';
const KEY_FILE_EXPECTED = 'an absolute file path, like /etc/rampart/pagerduty-alice.key';

export const UserSchema = object(
  {
    name: nameField('a user name'),
    email: z.email(expect(EMAIL_EXPECTED)).optional(),
    slack: z
      .string(expect(SLACK_EXPECTED))
      .regex(/^[UW][A-Z0-9]{2,20}$/, expect(SLACK_EXPECTED))
      .optional(),
    slack_receiver: nameField('a receiver name').optional(),
    webhook: z
      .string(expect(URL_EXPECTED))
      .regex(/^https?:\/\/[^\s/]+/, expect(URL_EXPECTED))
      .optional(),
    pagerduty_key_file: z
      .string(expect(KEY_FILE_EXPECTED))
      .regex(/^\/[^\0]*$/, expect(KEY_FILE_EXPECTED))
      .optional(),
    pagerduty_key_env: z
      .string(expect(ENV_EXPECTED))
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, expect(ENV_EXPECTED))
      .optional(),
  },
  'a user: a map with name, and optionally email, slack, slack_receiver, webhook, pagerduty_key_file or _env',
).superRefine((u, ctx) => {
  if (u.pagerduty_key_file !== undefined && u.pagerduty_key_env !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['pagerduty_key_env'],
      message: 'pagerduty_key_file or pagerduty_key_env, not both',
      params: { problem: 'the key is already read from pagerduty_key_file' },
    });
});
export const UsersSchema = z.array(UserSchema, expect('a list of users: [{name, email, slack, ...}]'));
export type UserEntry = z.infer<typeof UserSchema>;

/** A user as the config declares it: the PagerDuty key is named (file or environment), read at the edge. */
export interface UserConfig extends Omit<UserContacts, 'pagerduty'> {
  readonly pagerdutyKey?: { readonly file: string } | { readonly env: string } | undefined;
  readonly at: ConfigLocation;
}

// ---------------------------------------------------------------------------------------------------------------
// schedules

const ROTATION_EXPECTED = 'daily, weekly, or {every: DURATION} with a whole number of hours, like {every: 12h}';
const EVERY_EXPECTED = 'a whole number of hours or days from 1h to 28d, like 8h, 12h or 2d';
/** `12h`, `2d` in milliseconds, whole hours from 1h to 28 days. */
const everyField = z.string(expect(EVERY_EXPECTED)).transform((text, ctx) => {
  const d = /^(\d{1,4})\s*d$/.exec(text.trim());
  const r = d ? { ms: Number(d[1]) * DAY_MS } : durationOf(text, HOUR_MS, 28 * DAY_MS);
  const problem =
    typeof r === 'string'
      ? r
      : r.ms % HOUR_MS !== 0
        ? 'not a whole number of hours'
        : r.ms < HOUR_MS || r.ms > 28 * DAY_MS
          ? 'outside 1h-28d'
          : undefined;
  if (problem === undefined && typeof r !== 'string') return r.ms;
  ctx.addIssue({ code: 'custom', message: EVERY_EXPECTED, params: { problem } });
  return z.NEVER;
});
const EveryObject = object({ every: everyField }, 'a map with every, like {every: 12h}');
/** daily, weekly or {every: 12h}: a union by hand, so a bad `every` is reported at `every` with its problem. */
const rotationField = z.unknown().transform((v, ctx): 'daily' | 'weekly' | number => {
  if (v === 'daily' || v === 'weekly') return v;
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const r = EveryObject.safeParse(v);
    if (r.success) return r.data.every;
    for (const issue of r.error.issues) ctx.addIssue(issue as never);
    return z.NEVER;
  }
  const problem = typeof v === 'string' ? `unknown rotation '${v}'${didYouMean(v, ['daily', 'weekly'])}` : undefined;
  ctx.addIssue({ code: 'custom', message: ROTATION_EXPECTED, ...(problem ? { params: { problem } } : {}) });
  return z.NEVER;
});

const WINDOW_EXPECTED =
  'a weekly window: a map with days, from and to, like {days: [mon, fri], from: 09:00, to: 17:00}';
const WindowSchema = object(
  {
    days: daysField,
    from: timeField,
    to: valid('a time of day, like 17:00 or 24:00 (before from: the next day)', (t) => {
      const r = timeOfDay(t, true);
      return typeof r === 'string' ? r : undefined;
    }),
  },
  WINDOW_EXPECTED,
);

const HANDOFF_EXPECTED = {
  daily: 'a time of day, like 09:00',
  weekly: 'a day and a time of day, like mon 09:00',
};
const LayerSchema = object(
  {
    name: nameField('a layer name').optional(),
    rotation: rotationField,
    handoff: z.string(expect('a time of day, like 09:00 (mon 09:00 for a weekly rotation)')),
    start: dateField,
    participants: z
      .array(nameField('a user name'), expect('a list of user names'))
      .min(1, expect('at least one user name')),
    restrict: z.array(WindowSchema, expect(`a list of weekly windows; ${WINDOW_EXPECTED}`)).optional(),
  },
  'a layer: a map with rotation, handoff, start, participants, and optionally name and restrict',
).transform((l, ctx) => {
  // The handoff's form depends on the rotation: a weekly one names its day.
  const weekly = l.rotation === 'weekly';
  const m = /^\s*(?:([A-Za-z]+)\s+)?(\S+)\s*$/.exec(l.handoff);
  const dayText = m?.[1];
  const time = timeOfDay(m?.[2] ?? '');
  const day = dayText === undefined ? undefined : dayOf(dayText);
  const expected = weekly ? HANDOFF_EXPECTED.weekly : HANDOFF_EXPECTED.daily;
  const problem =
    !m || typeof time === 'string'
      ? typeof time === 'string' && m
        ? time
        : 'not a handoff time'
      : typeof day === 'string'
        ? day
        : weekly && day === undefined
          ? 'a weekly rotation hands off on a day: name it'
          : !weekly && day !== undefined
            ? `only a weekly rotation hands off on a day (this one is ${typeof l.rotation === 'string' ? l.rotation : 'every N hours'})`
            : undefined;
  if (problem !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['handoff'], message: expected, params: { problem } });
    return z.NEVER;
  }
  return { ...l, handoffMin: time as number, handoffDay: day as number | undefined };
});

const INSTANT_EXPECTED =
  'a date and time in the schedule time zone, like 2026-03-28T18:00, or an instant with an offset, like 2026-03-28T17:00:00Z';
const LOCAL_RE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:\d{2})?$/;
/** Reads an override's time: with an offset as it is, without one in the time zone (in wall ms then). */
function instantText(text: string): { ms: number; local: boolean } | string {
  const m = LOCAL_RE.exec(text.trim());
  if (!m)
    return /^\d{4}-\d{2}-\d{2}$/.test(text.trim()) ? 'a date alone: add the time, like T09:00' : 'not a date and time';
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as number[];
  const wall = Date.UTC(y as number, (mo as number) - 1, d, h, mi, s);
  const back = new Date(wall);
  if (back.getUTCMonth() + 1 !== mo || back.getUTCDate() !== d || (h as number) > 23 || (mi as number) > 59)
    return 'that date or time does not exist';
  if (m[7] === undefined) return { ms: wall, local: true };
  const ms = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? '00'}${m[7]}`);
  return Number.isNaN(ms) ? 'the offset is out of range' : { ms, local: false };
}
const instantField = z
  .preprocess((v) => (v instanceof Date ? v.toISOString() : v), z.string(expect(INSTANT_EXPECTED)))
  .transform((text, ctx) => {
    const r = instantText(text);
    if (typeof r !== 'string') return r;
    ctx.addIssue({ code: 'custom', message: INSTANT_EXPECTED, params: { problem: r } });
    return z.NEVER;
  });

const OverrideSchema = object(
  { user: nameField('a user name'), from: instantField, to: instantField },
  'an override: a map with user, from and to',
);

export const ScheduleSchema = object(
  {
    name: nameField('a schedule name'),
    time_zone: timeZoneField,
    layers: z
      .array(LayerSchema, expect('a list of layers: [{rotation, handoff, start, participants}]'))
      .min(1, expect('at least one layer')),
    overrides: z.array(OverrideSchema, expect('a list of overrides: [{user, from, to}]')).optional(),
  },
  'a schedule: a map with name, time_zone, layers, and optionally overrides',
);
export const SchedulesSchema = z.array(ScheduleSchema, expect('a list of schedules: [{name, time_zone, layers}]'));
export type ScheduleEntry = z.infer<typeof ScheduleSchema>;

// ---------------------------------------------------------------------------------------------------------------
// escalation_policies

const TARGET_EXPECTED = 'a map with one of user, schedule or receiver, like {schedule: shop-primary}';
const TargetSchema = object(
  {
    user: nameField('a user name').optional(),
    schedule: nameField('a schedule name').optional(),
    receiver: nameField('a receiver name').optional(),
  },
  TARGET_EXPECTED,
).transform((t, ctx): EscalationTarget => {
  const given = (['user', 'schedule', 'receiver'] as const).filter((k) => t[k] !== undefined);
  if (given.length === 1) {
    const k = given[0] as 'user' | 'schedule' | 'receiver';
    const name = t[k] as string;
    return k === 'user'
      ? { kind: 'user', user: name }
      : k === 'schedule'
        ? { kind: 'schedule', schedule: name }
        : { kind: 'receiver', receiver: name };
  }
  ctx.addIssue({
    code: 'custom',
    message: TARGET_EXPECTED,
    params: { problem: given.length === 0 ? 'names nobody' : `names ${given.join(' and ')}` },
  });
  return z.NEVER;
});

const StepSchema = object(
  {
    notify: z
      .array(TargetSchema, expect(`a list of targets; each ${TARGET_EXPECTED}`))
      .min(1, expect('at least one target')),
    wait: durationField(0, 24 * HOUR_MS),
  },
  'a step: a map with notify and wait, like {notify: [{schedule: shop-primary}], wait: 5m}',
);

export const EscalationPolicySchema = object(
  {
    name: nameField('a policy name'),
    steps: z.array(StepSchema, expect('a list of steps: [{notify, wait}]')).min(1, expect('at least one step')),
    repeat: intField(0, 20, 'how many times the steps run again').optional(),
  },
  'an escalation policy: a map with name, steps, and optionally repeat',
);
export const EscalationPoliciesSchema = z.array(
  EscalationPolicySchema,
  expect('a list of escalation policies: [{name, steps, repeat}]'),
);
export type EscalationPolicyEntry = z.infer<typeof EscalationPolicySchema>;

// ---------------------------------------------------------------------------------------------------------------
// maintenance_windows

const CRON_EXPECTED = 'a cron expression of 5 fields (minute hour day-of-month month day-of-week), like 0 2 * * sun';
/** croner's own parser says what is wrong; its "CronPattern: " prefix is noise in a config message. */
export function cronProblem(pattern: string): string | undefined {
  const fields = pattern.trim().split(/\s+/);
  if (fields.length !== 5) return `${fields.length} field${fields.length === 1 ? '' : 's'}, not 5`;
  try {
    new Cron(pattern, { paused: true, mode: '5-part' });
    return undefined;
  } catch (e) {
    return (e instanceof Error ? e.message : String(e)).replace(/^CronPattern:\s*/, '');
  }
}

export const MaintenanceWindowSchema = object(
  {
    name: nameField('a maintenance window name'),
    matchers: z
      .array(
        checked(MATCHER_EXPECTED, (t): Matcher | string => parseMatcher(t)),
        expect(`a list of matchers; each ${MATCHER_EXPECTED}`),
      )
      .optional(),
    cron: valid(CRON_EXPECTED, cronProblem).optional(),
    weekly: object(
      { days: daysField, at: timeField },
      'a map with days and at, like {days: [sat, sun], at: 02:00}',
    ).optional(),
    duration: durationField(60_000, 31 * 24 * HOUR_MS),
    time_zone: timeZoneField,
  },
  'a maintenance window: a map with name, matchers, cron or weekly, duration and time_zone',
).superRefine((w, ctx) => {
  if ((w.cron === undefined) === (w.weekly === undefined))
    ctx.addIssue({
      code: 'custom',
      path: w.cron === undefined ? [] : ['weekly'],
      message: 'cron or weekly (one of them)',
      params: { problem: w.cron === undefined ? 'neither cron nor weekly' : 'both cron and weekly' },
    });
});
export const MaintenanceWindowsSchema = z.array(
  MaintenanceWindowSchema,
  expect('a list of maintenance windows: [{name, matchers, cron or weekly, duration, time_zone}]'),
);
export type MaintenanceWindowEntry = z.infer<typeof MaintenanceWindowSchema>;

// ---------------------------------------------------------------------------------------------------------------
// Converters: from the checked entries to the values of src/alerting, with the names they give each other checked.

/** Where the converters report: paths are from the root of the file, like ['alerting', 'schedules', 0, 'name']. */
export interface OnCallConfigContext {
  loc(path: readonly PathPart[]): ConfigLocation;
  problem(path: readonly PathPart[], problem: string, expected: string): void;
}

/** The names given twice in `entries` reported at their second use; returns the first index of each name. */
function uniqueNames(
  entries: readonly { name: string }[],
  what: string,
  base: readonly PathPart[],
  ctx: OnCallConfigContext,
): Map<string, number> {
  const at = new Map<string, number>();
  entries.forEach((e, i) => {
    const first = at.get(e.name);
    if (first === undefined) at.set(e.name, i);
    else
      ctx.problem(
        [...base, i, 'name'],
        `duplicate ${what} name '${e.name}' (first declared at line ${ctx.loc([...base, first]).line})`,
        `a unique ${what} name`,
      );
  });
  return at;
}

function unknownName(
  ctx: OnCallConfigContext,
  path: readonly PathPart[],
  what: string,
  name: string,
  names: readonly string[],
) {
  const known = [...new Set(names)];
  const expected =
    known.length === 0
      ? `the name of a ${what} (none is declared)`
      : `one of the ${what}s declared: ${known.slice(0, 10).join(', ')}${known.length > 10 ? ', ...' : ''}`;
  ctx.problem(path, `unknown ${what} '${name}'${didYouMean(name, known)}`, expected);
}

export function usersOf(
  entries: readonly UserEntry[],
  receivers: readonly string[],
  ctx: OnCallConfigContext,
  base: readonly PathPart[] = ['alerting', 'users'],
): UserConfig[] {
  uniqueNames(entries, 'user', base, ctx);
  return entries.map((u, i) => {
    if (u.slack_receiver !== undefined && !receivers.includes(u.slack_receiver))
      unknownName(ctx, [...base, i, 'slack_receiver'], 'receiver', u.slack_receiver, receivers);
    const key =
      u.pagerduty_key_file !== undefined
        ? { file: u.pagerduty_key_file }
        : u.pagerduty_key_env !== undefined
          ? { env: u.pagerduty_key_env }
          : undefined;
    return {
      name: u.name,
      ...(u.email !== undefined ? { email: u.email } : {}),
      ...(u.slack !== undefined ? { slack: u.slack } : {}),
      ...(u.slack_receiver !== undefined ? { slackReceiver: u.slack_receiver } : {}),
      ...(u.webhook !== undefined ? { webhook: u.webhook } : {}),
      ...(key ? { pagerdutyKey: key } : {}),
      at: ctx.loc([...base, i]),
    };
  });
}

/**
 * A user's contacts with the PagerDuty key read: `readFile` and `env` are the edge's (the server's), so this module
 * touches no file itself. A missing key is an error that names the user's place in the file.
 */
export function userContactsOf(
  u: UserConfig,
  io: { readFile(path: string): string; env: Readonly<Record<string, string | undefined>> },
): UserContacts {
  const { pagerdutyKey, at, ...contacts } = u;
  if (!pagerdutyKey) return contacts;
  const where = `${at.file}:${at.line}:${at.column}: user '${u.name}'`;
  let key: string | undefined;
  if ('file' in pagerdutyKey) {
    try {
      key = io.readFile(pagerdutyKey.file).trim();
    } catch (e) {
      throw new Error(`${where}: cannot read pagerduty_key_file ${pagerdutyKey.file}: ${(e as Error).message}`);
    }
  } else key = io.env[pagerdutyKey.env]?.trim();
  if (!key) {
    const from = 'file' in pagerdutyKey ? `the file ${pagerdutyKey.file}` : `$${pagerdutyKey.env}`;
    throw new Error(`${where}: ${from} holds no PagerDuty integration key`);
  }
  return { ...contacts, pagerduty: key };
}

function windowOf(w: z.infer<typeof WindowSchema>): WeeklyWindow {
  return {
    days: w.days.map((d) => dayOf(d) as number),
    fromMin: timeOfDay(w.from) as number,
    toMin: timeOfDay(w.to, true) as number,
  };
}

export function schedulesOf(
  entries: readonly ScheduleEntry[],
  users: readonly string[],
  ctx: OnCallConfigContext,
  base: readonly PathPart[] = ['alerting', 'schedules'],
): Schedule[] {
  uniqueNames(entries, 'schedule', base, ctx);
  return entries.map((e, i) => {
    const path = [...base, i];
    const checkUser = (p: readonly PathPart[], name: string) => {
      if (!users.includes(name)) unknownName(ctx, p, 'user', name, users);
    };
    const layerNames = new Map<string, number>();
    const layers = e.layers.map((l, j): ScheduleLayer => {
      const name = l.name ?? `layer-${j + 1}`;
      const first = layerNames.get(name);
      if (first !== undefined)
        ctx.problem([...path, 'layers', j, 'name'], `duplicate layer name '${name}'`, 'a unique layer name');
      layerNames.set(name, j);
      l.participants.forEach((p, k) => {
        checkUser([...path, 'layers', j, 'participants', k], p);
      });
      return {
        name,
        periodMs: l.rotation === 'daily' ? DAY_MS : l.rotation === 'weekly' ? 7 * DAY_MS : l.rotation,
        firstHandoffWallMs: firstHandoffWallMs(l.start, l.handoffMin, l.handoffDay),
        participants: l.participants,
        ...(l.restrict ? { restrict: l.restrict.map(windowOf) } : {}),
      };
    });
    const overrides = (e.overrides ?? []).flatMap((o, j): ScheduleOverride[] => {
      const p = [...path, 'overrides', j];
      checkUser([...p, 'user'], o.user);
      const fromMs = o.from.local ? instantOf(e.time_zone, o.from.ms) : o.from.ms;
      const toMs = o.to.local ? instantOf(e.time_zone, o.to.ms) : o.to.ms;
      if (toMs <= fromMs) {
        ctx.problem([...p, 'to'], 'the override ends before it starts', 'a time after from');
        return [];
      }
      return [{ user: o.user, fromMs, toMs }];
    });
    return { name: e.name, timeZone: e.time_zone, layers, overrides };
  });
}

export function escalationPoliciesOf(
  entries: readonly EscalationPolicyEntry[],
  names: { users: readonly string[]; schedules: readonly string[]; receivers: readonly string[] },
  ctx: OnCallConfigContext,
  base: readonly PathPart[] = ['alerting', 'escalation_policies'],
): EscalationPolicy[] {
  uniqueNames(entries, 'escalation policy', base, ctx);
  return entries.map((e, i) => {
    const steps = e.steps.map((s, j) => {
      s.notify.forEach((t, k) => {
        const p = [...base, i, 'steps', j, 'notify', k];
        if (t.kind === 'user' && !names.users.includes(t.user))
          unknownName(ctx, [...p, 'user'], 'user', t.user, names.users);
        if (t.kind === 'schedule' && !names.schedules.includes(t.schedule))
          unknownName(ctx, [...p, 'schedule'], 'schedule', t.schedule, names.schedules);
        if (t.kind === 'receiver' && !names.receivers.includes(t.receiver))
          unknownName(ctx, [...p, 'receiver'], 'receiver', t.receiver, names.receivers);
      });
      return { targets: s.notify, waitMs: s.wait };
    });
    return { name: e.name, steps, repeat: e.repeat ?? 0 };
  });
}

export function maintenanceWindowsOf(
  entries: readonly MaintenanceWindowEntry[],
  ctx: OnCallConfigContext,
  base: readonly PathPart[] = ['alerting', 'maintenance_windows'],
): MaintenanceWindow[] {
  uniqueNames(entries, 'maintenance window', base, ctx);
  return entries.map((e) => ({
    name: e.name,
    matchers: e.matchers ?? [],
    start:
      e.cron !== undefined
        ? { kind: 'cron', pattern: e.cron.trim() }
        : {
            kind: 'weekly',
            days: (e.weekly?.days ?? []).map((d) => dayOf(d) as number),
            atMin: timeOfDay(e.weekly?.at ?? '') as number,
          },
    durationMs: e.duration,
    timeZone: e.time_zone,
  }));
}

/** The on-call keys, to spread into the `alerting:` map's schema. */
export const ONCALL_KEYS = {
  users: UsersSchema.optional(),
  schedules: SchedulesSchema.optional(),
  escalation_policies: EscalationPoliciesSchema.optional(),
  maintenance_windows: MaintenanceWindowsSchema.optional(),
};

export interface OnCallEntries {
  readonly users?: readonly UserEntry[] | undefined;
  readonly schedules?: readonly ScheduleEntry[] | undefined;
  readonly escalation_policies?: readonly EscalationPolicyEntry[] | undefined;
  readonly maintenance_windows?: readonly MaintenanceWindowEntry[] | undefined;
}

export interface OnCallConfig {
  readonly users: readonly UserConfig[];
  readonly schedules: readonly Schedule[];
  readonly escalationPolicies: readonly EscalationPolicy[];
  readonly maintenanceWindows: readonly MaintenanceWindow[];
}

/** All four keys converted, each checked against the names the others declare (receivers come from the caller). */
export function onCallOf(e: OnCallEntries, receivers: readonly string[], ctx: OnCallConfigContext): OnCallConfig {
  const users = usersOf(e.users ?? [], receivers, ctx);
  const schedules = schedulesOf(
    e.schedules ?? [],
    users.map((u) => u.name),
    ctx,
  );
  const escalationPolicies = escalationPoliciesOf(
    e.escalation_policies ?? [],
    { users: users.map((u) => u.name), schedules: schedules.map((s) => s.name), receivers },
    ctx,
  );
  return {
    users,
    schedules,
    escalationPolicies,
    maintenanceWindows: maintenanceWindowsOf(e.maintenance_windows ?? [], ctx),
  };
}
