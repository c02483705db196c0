/**
 * Incidents in the server (issue 16) against a real server and store: an Alertmanager alert at severity critical
 * declares an incident by the policy, and its group firing again after the resolution reopens it; a person
 * declares, acknowledges, notes, moves the status, stars, resolves; the timeline shows the alert, the notification
 * and the people's entries in the site's time zone; the postmortem is drafted in the founding structure, edited and
 * versioned; viewers may read but not act; every action is in the audit trail.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HttpReceiver, httpReceiver } from '../alerting/receivers.js';
import { type Harness, startHarness } from './harness.js';

let clock = Date.parse('2026-12-03T11:00:00.000Z');
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

const alert = (status: 'firing' | 'resolved', at: number) => ({
  version: '4',
  status,
  alerts: [
    {
      status,
      labels: { alertname: 'ShopDown', severity: 'critical', service: 'shop' },
      annotations: { summary: 'the shop answers 503' },
      startsAt: new Date(at).toISOString(),
      ...(status === 'resolved' ? { endsAt: new Date(at).toISOString() } : {}),
    },
  ],
});

function incidentConfig(receiverUrl: string): string {
  return `site:
  name: shop
  timezone: Europe/Istanbul
hosts:
  - {name: web1, addresses: [192.0.2.11], group: web}
  - {name: web2, addresses: [192.0.2.12], group: web}
services:
  - {name: shop, group: web, public: [tcp/80]}
alerting:
  receivers:
    - name: team
      webhook_configs: [{url: '${receiverUrl}/hook'}]
  route:
    receiver: team
    group_by: [service]
    group_wait: 0s
    group_interval: 1s
incidents:
  auto-declare: severity >= critical
  severity: SEV1
  reopen-window: 1h
`;
}

describe('incidents in the server', () => {
  let h: Harness;
  let team: HttpReceiver;
  let dir: string;

  beforeAll(async () => {
    team = await httpReceiver();
    dir = mkdtempSync(join(tmpdir(), 'rampart-incidents-'));
    const config = join(dir, 'rampart.yaml');
    writeFileSync(config, incidentConfig(team.url));
    h = await startHarness('sqlite', { config, now });
  });
  afterAll(async () => {
    await h?.close();
    await team?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('declares an incident from a critical alert, and reopens it when the group fires again within the window', async () => {
    expect((await h.call('prometheus', 'POST', '/alerts/alertmanager', alert('firing', clock))).status).toBe(200);
    const declared = await until('the declared incident', async () => {
      const r = await h.call('vic', 'GET', '/incidents');
      return r.body.incidents[0];
    });
    expect(declared).toMatchObject({
      title: 'ShopDown: shop',
      severity: 'SEV1',
      status: 'investigating',
      services: ['shop'],
      declaredBy: 'rampart',
      startedAt: new Date(clock).toISOString(),
    });
    // The notification goes out; the timeline shows the alert and its delivery in the site's time zone.
    await until('the notification', () => (team.requests.length > 0 ? true : undefined));
    const shown = await until('the delivered notification on the timeline', async () => {
      const r = await h.call('vic', 'GET', `/incidents/${declared.id}`);
      return r.body.timeline.some((e: { kind: string }) => e.kind === 'notification.sent') ? r.body : undefined;
    });
    expect(shown.timeZone).toBe('Europe/Istanbul');
    const fired = shown.timeline.find((e: { kind: string }) => e.kind === 'alert.fired');
    expect(fired).toMatchObject({
      at: new Date(clock).toISOString(),
      local: '2026-12-03 14:00 GMT+3',
      keyMoment: true,
    });
    expect(fired.text).toContain('ShopDown');

    clock += 10 * 60_000;
    expect(
      (await h.call('alice', 'POST', `/incidents/${declared.id}/resolve`, { text: 'restarted' })).body.status,
    ).toBe('resolved');
    await h.call('prometheus', 'POST', '/alerts/alertmanager', alert('resolved', clock));
    clock += 20 * 60_000;
    await h.call('prometheus', 'POST', '/alerts/alertmanager', alert('firing', clock));
    const reopened = await until('the reopened incident', async () => {
      const r = await h.call('vic', 'GET', `/incidents/${declared.id}`);
      return r.body.incident.status === 'investigating' ? r.body : undefined;
    });
    expect(reopened.incident).toMatchObject({ reopened: 1, resolvedAt: null });
    expect(reopened.timeline.map((e: { kind: string }) => e.kind)).toContain('incident.reopened');
    expect((await h.call('vic', 'GET', '/incidents')).body.incidents).toHaveLength(1);

    // an alert about web1 alone (no service label) joins the shop's incident: web1 runs the shop and nothing else
    const hostAlert = alert('firing', clock);
    (hostAlert.alerts[0] as { labels: Record<string, string> }).labels = {
      alertname: 'HostFirewallChanged',
      severity: 'critical',
      host: 'web1',
    };
    expect((await h.call('prometheus', 'POST', '/alerts/alertmanager', hostAlert)).status).toBe(200);
    const widened = await until('the shop incident widened to web1', async () => {
      const r = await h.call('vic', 'GET', `/incidents/${declared.id}`);
      return r.body.incident.hosts.includes('web1') ? r.body.incident : undefined;
    });
    expect(widened.services).toEqual(['shop']);
    expect((await h.call('vic', 'GET', '/incidents')).body.incidents).toHaveLength(1);
  });

  it('walks an incident declared by hand through its life, with a postmortem drafted, edited and versioned', async () => {
    const start = clock;
    const d = await h.call('alice', 'POST', '/incidents', { title: 'Checkout slow', severity: 2, services: ['shop'] });
    expect(d.status).toBe(201);
    const id = d.body.id as number;
    clock += 4 * 60_000;
    expect((await h.call('bob', 'POST', `/incidents/${id}/ack`)).body).toMatchObject({
      commander: 'bob',
      response: { mttaMs: 240_000 },
    });
    const again = await h.call('alice', 'POST', `/incidents/${id}/ack`);
    expect(again.status).toBe(409);
    expect(again.body.detail ?? again.body.title).toMatch(/acknowledged at/);
    const n = await h.call('alice', 'POST', `/incidents/${id}/notes`, { text: 'db pool exhausted' });
    expect(n.status).toBe(201);
    clock += 6 * 60_000;
    await h.call('alice', 'POST', `/incidents/${id}/status`, {
      status: 'identified',
      text: 'The database pool is too small.',
    });
    expect((await h.call('alice', 'POST', `/incidents/${id}/status`, { status: 'fixed' })).status).toBe(400);
    expect((await h.call('alice', 'POST', `/incidents/${id}/assign`, { commander: 'carol' })).body.commander).toBe(
      'carol',
    );
    expect((await h.call('alice', 'POST', `/incidents/${id}/star`, { key: `entry:${n.body.id}` })).status).toBe(200);
    expect((await h.call('alice', 'POST', `/incidents/${id}/star`, { key: 'entry:99999' })).status).toBe(404);
    clock += 50 * 60_000;
    await h.call('alice', 'POST', `/incidents/${id}/resolve`, { text: 'The pool was doubled.' });

    const md = await fetch(`${h.url}/api/v1/incidents/${id}/postmortem?format=markdown`, {
      headers: { authorization: `Bearer ${h.tokens.vic}` },
    });
    expect(md.headers.get('content-type')).toMatch(/^text\/markdown/);
    const text = await md.text();
    expect(text.split('\n').filter((l) => l.startsWith('#'))).toEqual([
      `# Postmortem: Checkout slow (incident ${id})`,
      '## Issue Summary',
      '## Timeline',
      '## Root Cause and Resolution',
      '## Corrective and Preventative Measures',
      '## TODO',
    ]);
    expect(text).toContain(`lasted for 1 hour, from ${new Date(start + 3 * 3_600_000).toISOString().slice(11, 16)} to`);
    expect(text).toContain('- **Root Cause:** The database pool is too small.');
    expect(text).toContain('GMT+3:** alice: db pool exhausted');
    const pm = await h.call('vic', 'GET', `/incidents/${id}/postmortem`);
    expect(pm.body).toMatchObject({ version: 1, author: 'rampart', versions: 1 });
    expect(pm.body.json.response).toEqual({ mttdMs: 0, mttaMs: 240_000, mttrMs: 3_600_000 });

    const edited = `${text}\nEdited by the team.\n`;
    expect((await h.call('vic', 'PUT', `/incidents/${id}/postmortem`, { markdown: edited, version: 1 })).status).toBe(
      403,
    );
    const v2 = await h.call('alice', 'PUT', `/incidents/${id}/postmortem`, { markdown: edited, version: 1 });
    expect(v2.body).toMatchObject({ version: 2, author: 'alice' });
    expect((await h.call('bob', 'PUT', `/incidents/${id}/postmortem`, { markdown: 'x', version: 1 })).status).toBe(409);
    expect((await h.call('vic', 'GET', `/incidents/${id}/postmortem?format=markdown&version=1`)).status).toBe(200);
    expect((await h.call('vic', 'GET', `/incidents/${id}/postmortem`)).body.markdown).toBe(edited);

    const audit = await h.store.auditEntries();
    const mine = audit.filter((e) => e.target === `incident:${id}`).map((e) => [e.action, e.actor]);
    expect(mine).toEqual([
      ['incident.declare', 'alice'],
      ['incident.ack', 'bob'],
      ['incident.note', 'alice'],
      ['incident.status', 'alice'],
      ['incident.assign', 'alice'],
      ['incident.star', 'alice'],
      ['incident.resolve', 'alice'],
      ['incident.postmortem', 'alice'],
    ]);
  });

  it('lets a viewer read but not act, and says what is wrong with bad input', async () => {
    expect((await h.call('vic', 'POST', '/incidents', { title: 'x', severity: 1 })).status).toBe(403);
    expect((await h.call('vic', 'POST', '/incidents/1/ack')).status).toBe(403);
    expect((await h.call('web1', 'GET', '/incidents')).status).toBe(403);
    const bad = await h.call('alice', 'POST', '/incidents', { title: 'x', severity: 'SEV9' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('SEV1, SEV2, SEV3 or SEV4');
    expect((await h.call('vic', 'GET', '/incidents/424242')).status).toBe(404);
  });
});
