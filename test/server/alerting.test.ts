/**
 * Alerting through a real server (issue 15): monitoring events and Alertmanager's webhook become alerts, routed and
 * grouped into notifications that real HTTP receivers on loopback accept; escalation pages people step by step and
 * stops at an acknowledgement; silences mute; the route a label set takes and who is on call are answered. The
 * server's clock is the test's (escalation waits pass without sleeping); its timers and the outbox are real.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HttpReceiver, httpReceiver } from '../alerting/receivers.js';
import { ensureBuilt, rampartAsync } from '../cli/cli.js';
import { type Harness, startHarness } from './harness.js';

let clock = Date.parse('2026-12-03T10:00:00.000Z');
const now = () => new Date(clock);

async function until<T>(what: string, get: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('alerting in the server', () => {
  let h: Harness;
  let team: HttpReceiver;
  let alice: HttpReceiver;
  let bob: HttpReceiver;
  let dir: string;
  const bodies = (r: HttpReceiver) => r.requests.map((q) => JSON.parse(q.body));

  beforeAll(async () => {
    [team, alice, bob] = await Promise.all([httpReceiver(), httpReceiver(), httpReceiver()]);
    dir = mkdtempSync(join(tmpdir(), 'rampart-alerting-'));
    const config = join(dir, 'rampart.yaml');
    writeFileSync(
      config,
      `site: shop
hosts:
  - {name: web1, addresses: [192.0.2.11], group: web}
  - {name: web2, addresses: [192.0.2.12], group: web}
services:
  - {name: shop, group: web, public: [tcp/80]}
alerting:
  external_url: https://rampart.test
  receivers:
    - name: team
      webhook_configs: [{url: '${team.url}/hook'}]
  users:
    - {name: alice, webhook: '${alice.url}/page'}
    - {name: bob, webhook: '${bob.url}/page'}
  schedules:
    - name: primary
      time_zone: Europe/Berlin
      layers:
        - {rotation: weekly, handoff: "mon 09:00", start: 2026-11-30, participants: [alice, bob]}
  escalation_policies:
    - name: shop
      steps:
        - {notify: [{schedule: primary}], wait: 5m}
        - {notify: [{user: bob}], wait: 10m}
      repeat: 1
  route:
    receiver: team
    group_by: [service]
    group_wait: 0s
    group_interval: 1s
    routes:
      - matchers: ['severity="critical"']
        escalation: shop
`,
    );
    h = await startHarness('sqlite', { config, now });
    ensureBuilt();
  });
  afterAll(async () => {
    await h?.close();
    await Promise.all([team?.close(), alice?.close(), bob?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('pages the route’s receiver when a monitor goes DOWN, and on-call by escalation until acknowledged', async () => {
    await h.store.monitoring.insertEvents([
      {
        at: now().toISOString(),
        kind: 'monitor.state',
        subject: 'monitor:shop@web1',
        data: { monitor: 'shop@web1', service: 'shop', host: 'web1', from: 'UP', to: 'DOWN', down: ['server'] },
      },
    ]);
    const [first] = await until('the team page', () => (team.requests.length > 0 ? bodies(team) : undefined));
    expect(first).toMatchObject({
      status: 'firing',
      groupLabels: { service: 'shop' },
      alerts: [{ labels: { alertname: 'MonitorDown', host: 'web1', severity: 'critical' } }],
    });
    expect(team.requests[0]?.headers['x-rampart-id']).toMatch(/^team\|/);
    // The first step pages whoever is on call now (alice this week), at once.
    const [page] = await until('alice’s page', () => (alice.requests.length > 0 ? bodies(alice) : undefined));
    expect(page.escalation).toMatchObject({ policy: 'shop', step: 0, round: 0 });
    expect(bob.requests).toHaveLength(0);
    // Five minutes later nobody has acknowledged: bob.
    clock += 5 * 60_000 + 1000;
    await until('bob’s page', () => (bob.requests.length > 0 ? true : undefined));
    // alice acknowledges: the escalation stops (without it, the second round would page alice again 10 minutes
    // later), and the alert stays firing.
    const list = await h.call('vic', 'GET', '/alerts?state=firing');
    const fp = list.body.alerts[0].fingerprint;
    expect((await h.call('vic', 'POST', `/alerts/${fp}/ack`)).status).toBe(403);
    const acked = await h.call('alice', 'POST', `/alerts/${fp}/ack`);
    expect(acked.status).toBe(200);
    expect(acked.body.ack.by).toBe('alice');
    const pagesBefore = alice.requests.length + bob.requests.length;
    clock += 30 * 60_000;
    await new Promise((r) => setTimeout(r, 1500));
    expect(alice.requests.length + bob.requests.length).toBe(pagesBefore);
    // ... and it resolves by itself: the team hears of it once.
    await h.store.monitoring.insertEvents([
      {
        at: now().toISOString(),
        kind: 'monitor.state',
        subject: 'monitor:shop@web1',
        data: { monitor: 'shop@web1', service: 'shop', host: 'web1', from: 'DOWN', to: 'UP' },
      },
    ]);
    clock += 2000;
    const resolved = await until('the resolution', () => bodies(team).find((b) => b.status === 'resolved'));
    expect(resolved.alerts[0].labels.host).toBe('web1');
    const audit = await h.call('admin', 'GET', '/audit-log');
    expect(JSON.stringify(audit.body)).toContain('alert.ack');
  });

  it('pages again when the same alert fires again after its group resolved (a new group, not a copy)', async () => {
    // The group above is finished (resolved and announced); the same monitor fails again. The new group counts its
    // notifications from 1 again: they must not be taken for the first outage's, still kept in the outbox (found in
    // the alerting lab, where the second outage paged nobody on the team and its resolution was never sent).
    const seenTeam = team.requests.length;
    const seenAlice = alice.requests.length;
    const event = (to: 'DOWN' | 'UP') => ({
      at: now().toISOString(),
      kind: 'monitor.state',
      subject: 'monitor:shop@web1',
      data: { monitor: 'shop@web1', service: 'shop', host: 'web1', from: to === 'DOWN' ? 'UP' : 'DOWN', to },
    });
    clock += 60_000;
    await h.store.monitoring.insertEvents([event('DOWN')]);
    const again = await until('the team page of the second outage', () => {
      const b = bodies(team).slice(seenTeam);
      return b.find((x) => x.status === 'firing');
    });
    expect(again.alerts[0].labels.host).toBe('web1');
    const ids = team.requests.map((q) => q.headers['x-rampart-id']);
    expect(new Set(ids).size).toBe(ids.length);
    // ... a new escalation, and a resolution of its own
    await until('alice’s second page', () => (alice.requests.length > seenAlice ? true : undefined));
    await h.store.monitoring.insertEvents([event('UP')]);
    clock += 2000;
    await until('the second resolution', () =>
      bodies(team)
        .slice(seenTeam)
        .find((b) => b.status === 'resolved'),
    );
  });

  it('takes Alertmanager’s webhook with an alertmanager token only, and silences mute what they match', async () => {
    const payload = {
      version: '4',
      status: 'firing',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'HighLatency', service: 'cart', severity: 'warning' },
          annotations: { summary: 'p99 above 2s' },
          startsAt: now().toISOString(),
        },
      ],
    };
    expect((await h.call('alice', 'POST', '/alerts/alertmanager', payload)).status).toBe(403);
    const bad = await h.call('prometheus', 'POST', '/alerts/alertmanager', {
      ...payload,
      alerts: [{ ...payload.alerts[0], labels: { service: 'cart' } }],
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/alertname/);
    // A silence first: the alert is recorded and shown as silenced, nobody is paged.
    const s = await h.call('alice', 'POST', '/silences', { matchers: ['service="cart"'], comment: 'load test' });
    expect(s.status).toBe(201);
    const seen = team.requests.length;
    expect((await h.call('prometheus', 'POST', '/alerts/alertmanager', payload)).body).toEqual({ accepted: 1 });
    const shown = await until('the alert', async () => {
      const a = (await h.call('vic', 'GET', '/alerts?state=firing')).body.alerts.find(
        (x: { labels: { alertname: string } }) => x.labels.alertname === 'HighLatency',
      );
      return a;
    });
    expect(shown.muted).toEqual({ kind: 'silenced', silence: s.body.id });
    expect(shown.source).toBe('alertmanager');
    clock += 2000;
    await new Promise((r) => setTimeout(r, 1000));
    expect(team.requests.length).toBe(seen);
    // Expired: the next group interval pages it.
    expect((await h.call('alice', 'DELETE', `/silences/${s.body.id}`)).status).toBe(200);
    clock += 2000;
    const page = await until('the unsilenced page', () =>
      bodies(team).find((b) =>
        b.alerts.some((a: { labels: { alertname: string } }) => a.labels.alertname === 'HighLatency'),
      ),
    );
    expect(page.alerts[0].annotations.summary).toBe('p99 above 2s');
  });

  it('says which routes a label set takes, who is on call, and serves the schedule as iCalendar', async () => {
    const r = await h.call('vic', 'GET', '/alerts/route?labels=severity=critical,service=shop');
    expect(r.body.routes.map((x: { receiver: string; escalation?: string }) => [x.receiver, x.escalation])).toEqual([
      ['team', 'shop'],
    ]);
    const bad = await h.call('vic', 'GET', '/alerts/route?labels=severity');
    expect(bad.status).toBe(400);
    const oc = await h.call('vic', 'GET', '/oncall');
    expect(oc.body.schedules[0]).toMatchObject({
      name: 'primary',
      timeZone: 'Europe/Berlin',
      now: { user: 'alice' },
      next: { user: 'bob', at: '2026-12-07T08:00:00.000Z' },
    });
    const ics = await h.call('vic', 'GET', '/oncall/primary.ics');
    expect(ics.type).toMatch(/text\/calendar/);
    expect(ics.body).toMatch(/^BEGIN:VCALENDAR\r\n/);
    expect(ics.body).toContain('SUMMARY:');
    expect((await h.call('vic', 'GET', '/oncall/nope.ics')).status).toBe(404);
  });

  it('answers the same from the command line: alerts, ack, route, silence, oncall', async () => {
    const as = (user: 'vic' | 'alice') => ({ RAMPART_SERVER: h.url, RAMPART_TOKEN: h.tokens[user] });
    const list = await rampartAsync(as('vic'), 'alerts');
    expect(list.stderr).toBe('');
    // HighLatency fires unmuted since its silence expired: exit 1, like `rampart monitors` with something DOWN.
    expect(list.code).toBe(1);
    expect(list.stdout).toMatch(/^ID +ALERT +STATE +SINCE/);
    expect(list.stdout).toMatch(/HighLatency +firing .* service=cart severity=warning +yes/);
    const fp = /^([0-9a-f]{16}) +HighLatency/m.exec(list.stdout)?.[1] ?? '';
    const denied = await rampartAsync(as('vic'), 'alerts', 'ack', fp);
    expect(denied.code).toBe(3);
    const ack = await rampartAsync(as('alice'), 'alerts', 'ack', fp);
    expect(ack.stdout).toBe(`acknowledged ${fp} HighLatency {service=cart severity=warning}\n`);
    const route = await rampartAsync(as('vic'), 'alerts', 'route', '--labels', 'severity=critical,service=shop');
    expect(route.stdout).toMatch(/^RECEIVER +ROUTE/);
    expect(route.stdout).toMatch(/team +\{\}\/\{severity="critical"\} +service +0ms +shop +.*rampart\.yaml:\d+:\d+/);
    const add = await rampartAsync(
      as('alice'),
      'silence',
      'add',
      'host=~"web.*"',
      '--comment',
      'patching',
      '--for',
      '2h',
    );
    expect(add.stdout).toMatch(/^silence [0-9a-f-]{36}: host=~"web\.\*" until /);
    const silences = await rampartAsync(as('vic'), 'silence', 'list', '--json');
    expect(JSON.parse(silences.stdout).silences[0]).toMatchObject({
      status: 'active',
      comment: 'patching',
      createdBy: 'alice',
    });
    const bad = await rampartAsync(as('alice'), 'silence', 'add', 'host~web', '--comment', 'x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/matchers\[0\].*unknown operator '~'/);
    const oncall = await rampartAsync(as('vic'), 'oncall');
    expect(oncall.stdout).toMatch(/^SCHEDULE +NOW +NEXT/);
    expect(oncall.stdout).toMatch(/primary +alice +bob +2026-12-07 08:00:00 +Europe\/Berlin/);
  });
});
