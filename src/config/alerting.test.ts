import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { matchRoutes } from '../alerting/route.js';
import { ConfigError, parseConfig } from './load.js';

const site = (alerting: string) => `hosts:
  - name: web1
    addresses: [192.0.2.11]
services:
  - name: shop
    hosts: [web1]
    public: [tcp/80]
alerting:
${alerting}`;

const fail = (text: string): string => {
  try {
    parseConfig(text, 'c.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('alerting: in rampart.yaml', () => {
  it("reads an Alertmanager-style routing tree with Rampart's defaults filled in", () => {
    const c = parseConfig(
      site(`  external_url: https://rampart.example.com
  receivers:
    - {name: team, webhook_configs: [{url: 'http://127.0.0.1:9/team'}]}
    - {name: pager, webhook_configs: [{url: 'http://127.0.0.1:9/pager'}]}
    - {name: audit, webhook_configs: [{url: 'http://127.0.0.1:9/audit'}]}
  route:
    receiver: team
    group_by: [service]
    routes:
      - matchers: ['severity="critical"', 'service=~"shop|cart"']
        receiver: pager
        group_wait: 0s
        continue: true
      - matchers: [severity=critical]
        receiver: audit
        repeat_interval: 4h
`),
      'c.yaml',
    );
    const a = c.alerting;
    expect(a?.externalURL).toBe('https://rampart.example.com');
    const route = a?.route;
    if (!route) throw new Error('no route');
    expect(route.groupWaitMs).toBe(500);
    const hits = matchRoutes(route, { severity: 'critical', service: 'shop' });
    expect(hits.map((r) => [r.receiver, r.groupWaitMs, r.repeatIntervalMs, r.groupBy])).toEqual([
      ['pager', 0, 3_600_000, ['service']],
      ['audit', 500, 14_400_000, ['service']],
    ]);
    expect(hits[0]?.at).toBe('c.yaml:18:9');
    expect(a?.inhibitRules.length).toBe(1);
  });

  it('is optional: without it alerts are recorded and nobody is notified', () => {
    const c = parseConfig(site('').replace(/alerting:\n$/, ''), 'c.yaml');
    expect(c.alerting?.route).toBeNull();
  });

  it('points at a bad matcher, an unknown key, an unknown receiver and a root route without a receiver', () => {
    expect(fail(site(`  receivers: [{name: pager}]\n  route:\n    receiver: pagr\n`))).toMatch(
      /c\.yaml:11:15: alerting\.route\.receiver: .*unknown receiver 'pagr' \(did you mean 'pager'\?\)/,
    );
    expect(fail(site(`  route:\n    receiver: x\n    routes:\n      - matchers: ['severity~"x"']\n`))).toMatch(
      /c\.yaml:12:20: alerting\.route\.routes\[0\]\.matchers\[0\].*unknown operator '~'/s,
    );
    expect(fail(site(`  route:\n    receiver: x\n    group_wiat: 1s\n`))).toMatch(
      /unknown key 'group_wiat' \(did you mean 'group_wait'\?\)/,
    );
    expect(fail(site(`  route:\n    group_by: [service]\n`))).toMatch(/alerting\.route.*no 'receiver'/s);
    expect(fail(site(`  route:\n    receiver: x\n    group_wait: 30\n`))).toMatch(/the unit is missing/);
    expect(fail(site(`  inhibit_rules:\n    - source_matchers: []\n      target_matchers: [a=b]\n`))).toMatch(
      /at least one source matcher/,
    );
  });

  it('reads how many intervals an agent or probe may stay silent, and says where a bad count is', () => {
    expect(parseConfig(site('  silent_intervals: 5\n'), 'c.yaml').alerting?.silentIntervals).toBe(5);
    expect(parseConfig(site('  receivers: []\n'), 'c.yaml').alerting?.silentIntervals).toBeUndefined();
    const bad = fail(site('  silent_intervals: 0\n'));
    expect(bad).toMatch(/c\.yaml:\d+:\d+/);
    expect(bad).toMatch(/silent_intervals/);
    expect(bad).toMatch(/at least 1 interval/);
    expect(fail(site('  silent_intervals: 2.5\n'))).toMatch(/whole number/);
  });

  it('reads the days left at which a TLS certificate warns and pages, and refuses critical days not below warning', () => {
    expect(parseConfig(site('  tls_warning_days: 30\n'), 'c.yaml').alerting?.tlsExpiry).toEqual({
      warningDays: 30,
      criticalDays: 3,
    });
    expect(parseConfig(site('  receivers: []\n'), 'c.yaml').alerting?.tlsExpiry).toBeUndefined();
    const bad = fail(site('  tls_warning_days: 7\n  tls_critical_days: 7\n'));
    expect(bad).toMatch(/c\.yaml:\d+:\d+/);
    expect(bad).toMatch(/tls_critical_days \(7\) is not below tls_warning_days \(7\)/);
  });

  it('reads inhibition rules, replacing the default', () => {
    const c = parseConfig(
      site(`  inhibit_rules:
    - source_matchers: ['alertname="ServiceDown"']
      target_matchers: ['alertname=~"Monitor.*"']
      equal: [service]
`),
      'c.yaml',
    );
    expect(c.alerting?.inhibitRules).toEqual([
      {
        sourceMatchers: [{ name: 'alertname', op: '=', value: 'ServiceDown' }],
        targetMatchers: [{ name: 'alertname', op: '=~', value: 'Monitor.*' }],
        equal: ['service'],
      },
    ]);
  });

  it('reads the complete example of docs/alerting.md (its secret files made here)', () => {
    const doc = readFileSync(new URL('../../docs/alerting.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## A complete example: the shop'));
    const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    const dir = mkdtempSync(join(tmpdir(), 'rampart-alerting-doc-'));
    try {
      for (const f of ['smtp-password', 'webhook-secret', 'pagerduty-key']) writeFileSync(join(dir, f), `${f}-value\n`);
      const text = site('').replace(/alerting:\n$/, '') + block.replaceAll('/etc/rampart/', `${dir}/`);
      const c = parseConfig(text, 'c.yaml');
      const a = c.alerting;
      expect(a?.receivers.map((r) => [r.name, r.channels.map((ch) => ch.kind)])).toEqual([
        ['team', ['webhook', 'email']],
        ['pager', ['pagerduty']],
      ]);
      expect(a?.onCall.users.map((u) => u.name)).toEqual(['alice', 'bob', 'carol']);
      expect(a?.onCall.escalationPolicies.map((p) => [p.name, p.steps.length, p.repeat])).toEqual([['web', 2, 2]]);
      if (!a?.route) throw new Error('no route');
      expect(
        matchRoutes(a.route, { severity: 'critical', service: 'shop' }).map((r) => [r.receiver, r.escalation]),
      ).toEqual([['team', 'web']]);
      expect(a.inhibitRules).toHaveLength(1);
      expect(a.onCall.maintenanceWindows.map((w) => w.name)).toEqual(['backups']);
      // The secrets were read, and are never shown.
      expect(JSON.stringify(a)).not.toContain('pagerduty-key-value');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
