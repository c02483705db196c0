import { describe, expect, it } from 'vitest';
import { alertsFromEvent } from './sources.js';

const at = '2026-12-03T14:00:03.512Z';
describe("Rampart's events as alerts", () => {
  it('a monitor DOWN fires MonitorDown (critical) with what, where from and why; UP resolves it', () => {
    const down = alertsFromEvent({
      at,
      kind: 'monitor.state',
      data: {
        monitor: 'shop@web1',
        service: 'shop',
        host: 'web1',
        from: 'UP',
        to: 'DOWN',
        reason: 'down from 2 of 2',
        down: ['server', 'probe:client'],
        diagnosis: { cause: 'firewall', summary: 'policy drop of filter/input at web1:live:2' },
      },
    });
    expect(down[0]).toMatchObject({
      op: 'fire',
      atMs: Date.parse(at),
      alert: {
        labels: { alertname: 'MonitorDown', severity: 'critical', monitor: 'shop@web1', service: 'shop', host: 'web1' },
        annotations: {
          summary: 'shop@web1 is DOWN from server, probe:client',
          diagnosis: 'policy drop of filter/input at web1:live:2',
        },
      },
    });
    expect(down[1]).toMatchObject({ op: 'resolve', alert: { labels: { alertname: 'MonitorDegraded' } } });
    const up = alertsFromEvent({ at, kind: 'monitor.state', data: { monitor: 'shop@web1', to: 'UP' } });
    expect(up.map((c) => [c.op, c.alert.labels.alertname])).toEqual([
      ['resolve', 'MonitorDown'],
      ['resolve', 'MonitorDegraded'],
    ]);
  });

  it('a redundancy group below its size fires RedundancyDegraded; a traffic drop fires TrafficDrop', () => {
    const deg = alertsFromEvent({
      at,
      kind: 'service.state',
      data: { service: 'shop', from: 'UP', to: 'DEGRADED', healthy: 1, backends: 2, reason: 'web2 down' },
    });
    expect(deg[0]?.alert.labels).toMatchObject({
      alertname: 'RedundancyDegraded',
      severity: 'warning',
      service: 'shop',
    });
    expect(deg[0]?.alert.annotations?.summary).toBe('shop runs with 1 of 2 backends');
    // DEGRADED with every backend healthy (the public address unreachable for some vantage points) is no loss of
    // redundancy: nothing fires.
    const publicOnly = alertsFromEvent({
      at,
      kind: 'service.state',
      data: { service: 'shop', from: 'UP', to: 'DEGRADED', healthy: 2, backends: 2 },
    });
    expect(publicOnly.map((c) => c.op)).toEqual(['resolve', 'resolve']);
    const drop = alertsFromEvent({
      at,
      kind: 'traffic.drop',
      data: { service: 'shop', host: 'web1', source: 'access-log', dropShare: 0.82, since: at },
    });
    expect(drop[0]?.alert.labels).toMatchObject({ alertname: 'TrafficDrop', host: 'web1', source: 'access-log' });
    expect(drop[0]?.alert.annotations?.summary).toBe('incoming traffic to shop on web1 fell 82%');
    const rec = alertsFromEvent({
      at,
      kind: 'traffic.recovered',
      data: { service: 'shop', host: 'web1', source: 'access-log' },
    });
    expect(rec[0]).toMatchObject({ op: 'resolve', alert: { labels: { alertname: 'TrafficDrop' } } });
  });

  it('drift fires FirewallDrift (critical) naming the host, the desired revision and the flows; back in sync resolves it', () => {
    const drift = alertsFromEvent({
      at,
      kind: 'host.drift',
      data: {
        host: 'web1',
        inSync: false,
        desiredRevision: 4,
        summary: '1 flow change against desired revision 4',
        changes: 1,
        flows: ['input: tcp dport 80 from any to 192.0.2.11: accept in desired, drop live'],
      },
    });
    expect(drift).toEqual([
      {
        op: 'fire',
        atMs: Date.parse(at),
        alert: {
          labels: { alertname: 'FirewallDrift', severity: 'critical', host: 'web1' },
          annotations: {
            summary: "web1's live ruleset differs from the desired one: 1 flow change against desired revision 4",
            description: 'input: tcp dport 80 from any to 192.0.2.11: accept in desired, drop live',
            desired_revision: '4',
          },
          source: 'host.drift',
        },
      },
    ]);
    const back = alertsFromEvent({
      at,
      kind: 'host.in-sync',
      data: { host: 'web1', inSync: true, desiredRevision: 4 },
    });
    expect(back).toMatchObject([{ op: 'resolve', alert: { labels: { alertname: 'FirewallDrift', host: 'web1' } } }]);
    // The same labels: the resolve ends the alert the drift fired.
    expect(back[0]?.alert.labels).toEqual({ alertname: 'FirewallDrift', severity: 'critical', host: 'web1' });
    expect(alertsFromEvent({ at, kind: 'host.drift', data: { inSync: false } })).toEqual([]);
  });

  it("an agent's rollback fires ChangeRolledBack (critical) once per change and host, resolved by hand only", () => {
    const rb = alertsFromEvent({
      at,
      kind: 'agent.rollback',
      data: { change: 12, host: 'web1', job: 30, outcome: 'rolled-back', detail: 'health check shop-http failed' },
    });
    expect(rb).toEqual([
      {
        op: 'fire',
        atMs: Date.parse(at),
        alert: {
          labels: { alertname: 'ChangeRolledBack', severity: 'critical', change: '12', host: 'web1' },
          annotations: {
            summary: 'change 12 was rolled back on web1 by its agent',
            description: 'health check shop-http failed',
          },
          source: 'agent.rollback',
        },
      },
    ]);
    const failed = alertsFromEvent({
      at,
      kind: 'agent.rollback',
      data: { change: 12, host: 'web1', outcome: 'rollback-failed', detail: 'nft: no such table' },
    });
    expect(failed[0]?.alert.annotations?.summary).toBe(
      "change 12: web1's agent could not roll back after a failed health check",
    );
    expect(alertsFromEvent({ at, kind: 'agent.rollback', data: { host: 'web1' } })).toEqual([]);
  });

  it('an emergency apply fires ChangeEmergency and an overridden block ChangeOverride (warning), with who and why', () => {
    const em = alertsFromEvent({
      at,
      kind: 'change.emergency',
      data: { change: 7, hosts: ['web1', 'web2'], by: 'alice', reason: 'block the attack', freeze: 'black-friday' },
    });
    expect(em[0]).toMatchObject({
      op: 'fire',
      alert: {
        labels: { alertname: 'ChangeEmergency', severity: 'warning', change: '7' },
        annotations: {
          summary: 'change 7 is applied as an emergency in freeze black-friday by alice',
          description: 'block the attack',
          hosts: 'web1, web2',
        },
      },
    });
    const ov = alertsFromEvent({
      at,
      kind: 'change.override',
      data: { change: 8, hosts: ['web1'], by: 'root', reason: 'known', blockers: 'closes shop tcp/443 on web1' },
    });
    expect(ov[0]).toMatchObject({
      op: 'fire',
      alert: {
        labels: { alertname: 'ChangeOverride', severity: 'warning', change: '8' },
        annotations: {
          summary: 'change 8 is applied with its blocked plan overridden by root',
          blockers: 'closes shop tcp/443 on web1',
        },
      },
    });
  });

  it('a silent agent fires AgentSilent by host and a silent probe ProbeSilent by probe (warning); back resolves', () => {
    const agent = alertsFromEvent({
      at,
      kind: 'vantage.silent',
      data: { vantage: 'agent:web1', lastSeen: '2026-12-03T13:56:00.000Z', intervalMs: 60_000, intervals: 3 },
    });
    expect(agent[0]).toMatchObject({
      op: 'fire',
      alert: {
        labels: { alertname: 'AgentSilent', severity: 'warning', host: 'web1' },
        annotations: {
          summary: 'the agent of web1 has been silent for more than 3 intervals of 60 s',
          description: 'last heard from at 2026-12-03T13:56:00.000Z',
        },
      },
    });
    const probe = alertsFromEvent({ at, kind: 'vantage.silent', data: { vantage: 'probe:eu-west' } });
    expect(probe[0]?.alert.labels).toEqual({ alertname: 'ProbeSilent', severity: 'warning', probe: 'eu-west' });
    const back = alertsFromEvent({ at, kind: 'vantage.back', data: { vantage: 'probe:eu-west' } });
    expect(back).toMatchObject([{ op: 'resolve', alert: { labels: { alertname: 'ProbeSilent', probe: 'eu-west' } } }]);
    expect(alertsFromEvent({ at, kind: 'vantage.silent', data: { vantage: 'server' } })).toEqual([]);
  });

  it('a certificate near its end fires TlsCertificateExpiring at the level it reached; renewed resolves both', () => {
    const warn = alertsFromEvent({
      at,
      kind: 'tls.expiring',
      data: { monitor: 'shop-cert', level: 'warning', daysLeft: 9, notAfter: '2026-12-12T10:00:00.000Z' },
    });
    expect(warn.map((c) => [c.op, c.alert.labels.severity])).toEqual([
      ['fire', 'warning'],
      ['resolve', 'critical'],
    ]);
    expect(warn[0]?.alert.labels).toEqual({
      alertname: 'TlsCertificateExpiring',
      severity: 'warning',
      monitor: 'shop-cert',
    });
    expect(warn[0]?.alert.annotations?.summary).toBe(
      'the TLS certificate of shop-cert expires in 9 days (2026-12-12T10:00:00.000Z)',
    );
    const crit = alertsFromEvent({
      at,
      kind: 'tls.expiring',
      data: { monitor: 'shop-cert', level: 'critical', daysLeft: -1 },
    });
    expect(crit.map((c) => [c.op, c.alert.labels.severity])).toEqual([
      ['fire', 'critical'],
      ['resolve', 'warning'],
    ]);
    expect(crit[0]?.alert.annotations?.summary).toBe('the TLS certificate of shop-cert has expired');
    const renewed = alertsFromEvent({ at, kind: 'tls.renewed', data: { monitor: 'shop-cert', level: 'ok' } });
    expect(renewed.map((c) => [c.op, c.alert.labels.severity])).toEqual([
      ['resolve', 'warning'],
      ['resolve', 'critical'],
    ]);
  });

  it('ignores events it does not know and events without a subject', () => {
    expect(alertsFromEvent({ at, kind: 'monitor.vantage', data: {} })).toEqual([]);
    expect(alertsFromEvent({ at, kind: 'monitor.state', data: { to: 'DOWN' } })).toEqual([]);
  });
});
