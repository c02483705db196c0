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

  it('ignores events it does not know and events without a subject', () => {
    expect(alertsFromEvent({ at, kind: 'monitor.vantage', data: {} })).toEqual([]);
    expect(alertsFromEvent({ at, kind: 'monitor.state', data: { to: 'DOWN' } })).toEqual([]);
  });
});
