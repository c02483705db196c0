import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isScalar, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { onCallAt } from '../alerting/schedule.js';
import {
  EscalationPoliciesSchema,
  MaintenanceWindowsSchema,
  onCallOf,
  SchedulesSchema,
  UsersSchema,
  userContactsOf,
} from './alerting-oncall.js';

type Path = (string | number)[];

/**
 * The `alerting:` keys of a YAML text through the schemas and converters, problems as `line:column path: message`
 * (what src/config/alerting.ts does with them inside the whole file, minus the file name).
 */
function load(text: string, receivers = ['ops-slack', 'ops-mail']) {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  const js = doc.toJS() as { alerting: Record<string, unknown> };
  const problems: string[] = [];
  const nodeAt = (path: Path): Node | undefined => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as Node | undefined;
      if (node?.range) return node;
    }
    return undefined;
  };
  const loc = (path: Path) => {
    const p = lineCounter.linePos(nodeAt(path)?.range?.[0] ?? 0);
    return { file: 'rampart.yaml', line: p.line, column: p.col };
  };
  const problem = (path: readonly (string | number)[], what: string, expected: string) => {
    const l = loc([...path]);
    problems.push(`${l.line}:${l.column} ${path.join('.')}: ${what}; expected ${expected}`);
  };
  const ctx = { loc, problem };
  function parse<T extends z.ZodType>(key: string, schema: T): z.output<T> | [] {
    if (js.alerting[key] === undefined) return [];
    const r = schema.safeParse(js.alerting[key]);
    if (r.success) return r.data;
    for (const i of r.error.issues) {
      const path = ['alerting', key, ...(i.path as Path)];
      const node = nodeAt(path);
      const shown = isScalar(node) ? `'${String(node.value)}'` : 'value';
      const p = (i as { params?: { problem?: string } }).params?.problem;
      problem(
        path,
        p ? `${shown}: ${p}` : i.code === 'unrecognized_keys' ? `unknown key ${i.keys}` : `unexpected ${shown}`,
        i.message,
      );
    }
    return [];
  }
  const r = onCallOf(
    {
      users: parse('users', UsersSchema),
      schedules: parse('schedules', SchedulesSchema),
      escalation_policies: parse('escalation_policies', EscalationPoliciesSchema),
      maintenance_windows: parse('maintenance_windows', MaintenanceWindowsSchema),
    },
    receivers,
    ctx,
  );
  const { users, schedules, escalationPolicies: policies, maintenanceWindows: windows } = r;
  const key = (p: string) => p.split(' ')[0]?.split(':').map(Number) ?? [];
  problems.sort((a, b) => (key(a)[0] ?? 0) - (key(b)[0] ?? 0) || (key(a)[1] ?? 0) - (key(b)[1] ?? 0));
  return { users, schedules, policies, windows, problems };
}

const SHOP = `
alerting:
  users:
    - {name: alice, email: alice@example.com, slack: U0123ABC, slack_receiver: ops-slack}
    - {name: bob, email: bob@example.com, pagerduty_key_env: PD_BOB}
    - {name: carol, webhook: "https://phone.example.com/hook", pagerduty_key_file: /etc/rampart/pd-carol.key}
  schedules:
    - name: shop-primary
      time_zone: Europe/Berlin
      layers:
        - {name: rota, rotation: weekly, handoff: mon 09:00, start: 2026-01-01, participants: [alice, bob]}
        - name: days
          rotation: {every: 12h}
          handoff: "08:00"
          start: 2026-01-01
          participants: [carol]
          restrict: [{days: [sat, sun], from: "10:00", to: "18:00"}]
      overrides:
        - {user: carol, from: 2026-03-28T18:00, to: "2026-03-30T09:00:00+02:00"}
  escalation_policies:
    - name: shop
      steps:
        - notify: [{schedule: shop-primary}]
          wait: 5m
        - notify: [{user: alice}, {receiver: ops-slack}]
          wait: 10m
      repeat: 2
`;

describe('the on-call keys of alerting:', () => {
  it('turn into users, schedules and policies', () => {
    const r = load(SHOP);
    expect(r.problems).toEqual([]);
    expect(r.users.map(({ at, ...u }) => u)).toEqual([
      { name: 'alice', email: 'alice@example.com', slack: 'U0123ABC', slackReceiver: 'ops-slack' },
      { name: 'bob', email: 'bob@example.com', pagerdutyKey: { env: 'PD_BOB' } },
      { name: 'carol', webhook: 'https://phone.example.com/hook', pagerdutyKey: { file: '/etc/rampart/pd-carol.key' } },
    ]);
    expect(r.users[1]?.at).toEqual({ file: 'rampart.yaml', line: 5, column: 7 });
    const [s] = r.schedules;
    if (!s) throw new Error('no schedule');
    // The first Monday on or after 2026-01-01 is 01-05: alice from 09:00 CET (08:00Z).
    expect(onCallAt(s, Date.parse('2026-01-05T07:59:59Z'))).toBeNull();
    expect(onCallAt(s, Date.parse('2026-01-05T08:00:00Z'))?.user).toBe('alice');
    expect(onCallAt(s, Date.parse('2026-01-12T08:00:00Z'))?.user).toBe('bob');
    // The weekend layer is restricted to 10:00-18:00 local.
    expect(onCallAt(s, Date.parse('2026-01-10T09:00:00Z'))?.user).toBe('carol');
    expect(onCallAt(s, Date.parse('2026-01-10T17:00:00Z'))?.user).not.toBe('carol');
    // The override's from is local (18:00 CET = 17:00Z), its to has an offset.
    expect(s.overrides).toEqual([
      { user: 'carol', fromMs: Date.parse('2026-03-28T17:00:00Z'), toMs: Date.parse('2026-03-30T07:00:00Z') },
    ]);
    expect(r.policies).toEqual([
      {
        name: 'shop',
        steps: [
          { targets: [{ kind: 'schedule', schedule: 'shop-primary' }], waitMs: 300_000 },
          {
            targets: [
              { kind: 'user', user: 'alice' },
              { kind: 'receiver', receiver: 'ops-slack' },
            ],
            waitMs: 600_000,
          },
        ],
        repeat: 2,
      },
    ]);
  });

  it('read the PagerDuty key at the edge, and say whose is missing and where', () => {
    const r = load(SHOP);
    const io = {
      readFile: (p: string) => (p === '/etc/rampart/pd-carol.key' ? 'KEY-C\n' : ''),
      env: { PD_BOB: 'KEY-B' },
    };
    expect(userContactsOf(r.users[1] as never, io).pagerduty).toBe('KEY-B');
    expect(userContactsOf(r.users[2] as never, io).pagerduty).toBe('KEY-C');
    expect(() => userContactsOf(r.users[1] as never, { ...io, env: {} })).toThrow(
      "rampart.yaml:5:7: user 'bob': $PD_BOB holds no PagerDuty integration key",
    );
  });

  it('report bad values where they are, with what would be valid', () => {
    const r = load(`
alerting:
  users:
    - {name: alice, slack: alice, pagerduty_key_file: /k, pagerduty_key_env: K}
  schedules:
    - name: s
      time_zone: Europe/Berln
      layers:
        - {rotation: weekly, handoff: "09:00", start: 2026-02-30, participants: [alice]}
        - {rotation: daily, handoff: tue 09:00, start: 2026-02-01, participants: [alice]}
        - {rotation: {every: 90m}, handoff: "25:00", start: 2026-02-01, participants: [alice], restrict: [{days: [sundy], from: "09:00", to: "17:00"}]}
        - {rotaton: daily, handoff: "09:00", start: 2026-02-01, participants: [alice]}
      overrides:
        - {user: alice, from: 2026-03-01, to: 2026-03-02T09:00}
  escalation_policies:
    - name: p
      steps:
        - {notify: [{user: alice, schedule: s}], wait: 5}
        - {notify: [{}], wait: 2d}
      repeat: 50
`);
    // Layer 0's handoff lacks its day too: it is reported once its start is fixed (a layer's fields first).
    // The unknown key's expected text carries the known keys for load.ts's "did you mean".
    expect(r.problems).toEqual([
      "4:28 alerting.users.0.slack: unexpected 'alice'; expected a Slack member id, like U0123ABCD",
      "4:78 alerting.users.0.pagerduty_key_env: 'K': the key is already read from pagerduty_key_file; expected pagerduty_key_file or pagerduty_key_env, not both",
      "7:18 alerting.schedules.0.time_zone: 'Europe/Berln': unknown time zone 'Europe/Berln'; expected an IANA time zone, like Europe/Berlin, America/New_York or UTC",
      "9:55 alerting.schedules.0.layers.0.start: '2026-02-30': 2026-02-30 does not exist; expected a date, like 2026-01-05",
      "10:38 alerting.schedules.0.layers.1.handoff: 'tue 09:00': only a weekly rotation hands off on a day (this one is daily); expected a time of day, like 09:00",
      "11:30 alerting.schedules.0.layers.2.rotation.every: '90m': not a whole number of hours; expected a whole number of hours or days from 1h to 28d, like 8h, 12h or 2d",
      "11:115 alerting.schedules.0.layers.2.restrict.0.days.0: 'sundy': unknown day 'sundy' (did you mean 'sun'?); expected a day: mon, tue, wed, thu, fri, sat, sun",
      '12:11 alerting.schedules.0.layers.3.rotation: unexpected value; expected daily, weekly, or {every: DURATION} with a whole number of hours, like {every: 12h}',
      '12:11 alerting.schedules.0.layers.3: unknown key rotaton; expected \u0000known:name rotation handoff start participants restrict',
      "14:31 alerting.schedules.0.overrides.0.from: '2026-03-01': a date alone: add the time, like T09:00; expected a date and time in the schedule time zone, like 2026-03-28T18:00, or an instant with an offset, like 2026-03-28T17:00:00Z",
      '18:21 alerting.escalation_policies.0.steps.0.notify.0: value: names user and schedule; expected a map with one of user, schedule or receiver, like {schedule: shop-primary}',
      "18:56 alerting.escalation_policies.0.steps.0.wait: '5': the unit is missing; expected a duration from 0ms to 24h, like 500ms, 2s or 1m",
      '19:21 alerting.escalation_policies.0.steps.1.notify.0: value: names nobody; expected a map with one of user, schedule or receiver, like {schedule: shop-primary}',
      "19:32 alerting.escalation_policies.0.steps.1.wait: '2d': unknown unit 'd'; expected a duration from 0ms to 24h, like 500ms, 2s or 1m",
      "20:15 alerting.escalation_policies.0.repeat: unexpected '50'; expected how many times the steps run again: a whole number 0-20",
    ]);
  });

  it('check the names entries give each other, at the name', () => {
    const r = load(`
alerting:
  users:
    - {name: alice, slack_receiver: ops-slak}
    - {name: alice}
  schedules:
    - name: s
      time_zone: UTC
      layers:
        - {rotation: daily, handoff: "09:00", start: 2026-02-01, participants: [alice, alic]}
      overrides:
        - {user: bob, from: 2026-03-02T09:00, to: 2026-03-01T09:00}
  escalation_policies:
    - name: p
      steps:
        - {notify: [{schedule: primary}, {user: alice}, {receiver: ops-mial}], wait: 5m}
`);
    expect(r.problems).toEqual([
      "4:37 alerting.users.0.slack_receiver: unknown receiver 'ops-slak' (did you mean 'ops-slack'?); expected one of the receivers declared: ops-slack, ops-mail",
      "5:14 alerting.users.1.name: duplicate user name 'alice' (first declared at line 4); expected a unique user name",
      "10:88 alerting.schedules.0.layers.0.participants.1: unknown user 'alic' (did you mean 'alice'?); expected one of the users declared: alice",
      "12:18 alerting.schedules.0.overrides.0.user: unknown user 'bob'; expected one of the users declared: alice",
      '12:51 alerting.schedules.0.overrides.0.to: the override ends before it starts; expected a time after from',
      "16:32 alerting.escalation_policies.0.steps.0.notify.0.schedule: unknown schedule 'primary'; expected one of the schedules declared: s",
      "16:68 alerting.escalation_policies.0.steps.0.notify.2.receiver: unknown receiver 'ops-mial' (did you mean 'ops-mail'?); expected one of the receivers declared: ops-slack, ops-mail",
    ]);
  });

  it('turn maintenance windows into cron or weekly starts with parsed matchers, and say what is wrong where', () => {
    const ok = load(`
alerting:
  maintenance_windows:
    - {name: backups, matchers: ['service="shop"', 'severity!~"info|debug"'], cron: 0 2 * * sun, duration: 2h, time_zone: Europe/Berlin}
    - name: patching
      weekly: {days: [tue, thursday], at: "22:30"}
      duration: 3h
      time_zone: America/New_York
`);
    expect(ok.problems).toEqual([]);
    expect(ok.windows).toEqual([
      {
        name: 'backups',
        matchers: [
          { name: 'service', op: '=', value: 'shop' },
          { name: 'severity', op: '!~', value: 'info|debug' },
        ],
        start: { kind: 'cron', pattern: '0 2 * * sun' },
        durationMs: 7_200_000,
        timeZone: 'Europe/Berlin',
      },
      {
        name: 'patching',
        matchers: [],
        start: { kind: 'weekly', days: [2, 4], atMin: 1350 },
        durationMs: 10_800_000,
        timeZone: 'America/New_York',
      },
    ]);
    const bad = load(`
alerting:
  maintenance_windows:
    - {name: a, matchers: ['service'], cron: 0 25 * * sun, duration: 2h, time_zone: UTC}
    - {name: b, cron: 0 2 * * * *, duration: 30s, time_zone: UTC}
    - {name: c, cron: 0 2 * * sunn, weekly: {days: [sun], at: "02:00"}, duration: 1h, time_zone: UTC}
    - {name: d, duration: 1h, time_zone: UTC}
    - {name: d, weekly: {days: [], at: "2am"}, duration: 1h, time_zone: UTC}
`);
    expect(bad.problems).toEqual([
      '4:28 alerting.maintenance_windows.0.matchers.0: \'service\': \'service\' has no operator (=, !=, =~ or !~); expected a matcher: a label name, one of = != =~ !~, and a value, like severity="critical" or service=~"shop|cart"',
      "4:46 alerting.maintenance_windows.0.cron: '0 25 * * sun': Invalid value for hour: 25; expected a cron expression of 5 fields (minute hour day-of-month month day-of-week), like 0 2 * * sun",
      "5:23 alerting.maintenance_windows.1.cron: '0 2 * * * *': 6 fields, not 5; expected a cron expression of 5 fields (minute hour day-of-month month day-of-week), like 0 2 * * sun",
      "5:46 alerting.maintenance_windows.1.duration: '30s': less than 1m; expected a duration from 1m to 744h, like 500ms, 2s or 1m",
      "6:23 alerting.maintenance_windows.2.cron: '0 2 * * sunn': Syntax error, a month or day name has to stand alone ('sunn').; expected a cron expression of 5 fields (minute hour day-of-month month day-of-week), like 0 2 * * sun",
      '6:45 alerting.maintenance_windows.2.weekly: value: both cron and weekly; expected cron or weekly (one of them)',
      '7:7 alerting.maintenance_windows.3: value: neither cron nor weekly; expected cron or weekly (one of them)',
      '8:32 alerting.maintenance_windows.4.weekly.days: unexpected value; expected a list of days: mon, tue, wed, thu, fri, sat, sun',
      "8:40 alerting.maintenance_windows.4.weekly.at: '2am': not a time of day; expected a time of day, like 09:00",
    ]);
  });

  it('read the examples of docs/alerting.md without a problem', () => {
    const doc = readFileSync(new URL('../../docs/alerting.md', import.meta.url), 'utf8');
    const ours = doc.slice(doc.indexOf('## On-call schedules'));
    const blocks = [...ours.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
    expect(blocks).toHaveLength(3);
    const text = `alerting:\n${blocks.map((b) => b.replace(/^alerting:\n/, '')).join('')}`;
    const r = load(text);
    expect(r.problems).toEqual([]);
    expect([r.users.length, r.schedules.length, r.policies.length, r.windows.length]).toEqual([4, 1, 1, 2]);
  });
});
