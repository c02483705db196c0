/**
 * Runbooks, impact and incident figures in the server (issue 16 §4 and §6), against a real server and store: a
 * firing alert carries its service's and route's runbooks as an annotation into the webhook a real receiver gets,
 * `GET /alerts/:fp` and `GET /incidents/:id` show them parsed, with the incident's impact; `GET /incidents/stats`
 * gives counts and MTTx to a viewer and refuses a bad `since` with the field, the value and what is valid; /metrics,
 * scraped, has the same figures.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HttpReceiver, httpReceiver } from '../alerting/receivers.js';
import { type Harness, startHarness } from './harness.js';

let clock = Date.parse('2026-12-03T11:00:00.000Z');
const now = () => new Date(clock);
const MIN = 60_000;

async function until<T>(what: string, get: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const config = (receiverUrl: string) => `site: {name: shop, timezone: Europe/Istanbul}
hosts:
  - {name: web1, addresses: [192.0.2.11], group: web}
services:
  - {name: shop, group: web, public: [tcp/80], runbook: runbooks/shop.md}
  - {name: api, group: web, public: [tcp/8080]}
alerting:
  receivers:
    - name: team
      webhook_configs: [{url: '${receiverUrl}/hook'}]
  route:
    receiver: team
    group_by: [service]
    group_wait: 0s
    routes:
      - matchers: ['severity="critical"']
        runbook: runbooks/paging.md
incidents:
  auto-declare: 'off'
`;

describe('runbooks, impact and incident figures in the server', () => {
  let h: Harness;
  let team: HttpReceiver;
  let dir: string;

  beforeAll(async () => {
    team = await httpReceiver();
    dir = mkdtempSync(join(tmpdir(), 'rampart-figures-'));
    mkdirSync(join(dir, 'runbooks'));
    writeFileSync(
      join(dir, 'runbooks', 'shop.md'),
      '# Shop down\n\n1. Acknowledge: `rampart incident ack ID`\n2. Look at the drift.\n',
    );
    writeFileSync(join(dir, 'runbooks', 'paging.md'), '# Paged\n\n1. `rampart alerts`\n');
    const file = join(dir, 'rampart.yaml');
    writeFileSync(file, config(team.url));
    h = await startHarness('sqlite', { config: file, now });
  });
  afterAll(async () => {
    await h?.close();
    await team?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("shows a firing alert's runbooks in its notification, in GET /alerts/:fp and with the incident", async () => {
    const fire = {
      version: '4',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'ShopDown', severity: 'critical', service: 'shop' },
          annotations: { summary: 'the shop answers 503' },
          startsAt: new Date(clock).toISOString(),
        },
      ],
    };
    expect((await h.call('prometheus', 'POST', '/alerts/alertmanager', fire)).status).toBe(200);
    const hook = await until('the webhook', () => team.requests[0]);
    const sent = JSON.parse(hook.body);
    expect(sent.alerts[0].annotations.runbook).toBe('runbooks/shop.md, runbooks/paging.md');
    const fp = sent.alerts[0].fingerprint as string;
    const a = await h.call('vic', 'GET', `/alerts/${fp}`);
    expect(a.status).toBe(200);
    expect(a.body.runbooks.map((r: { path: string; title: string }) => [r.path, r.title])).toEqual([
      ['runbooks/shop.md', 'Shop down'],
      ['runbooks/paging.md', 'Paged'],
    ]);
    expect(a.body.runbooks[0].steps[0]).toEqual({
      n: 1,
      text: 'Acknowledge: `rampart incident ack ID`',
      commands: ['rampart incident ack ID'],
      line: 3,
    });
    expect(a.body.runbooks[0]).not.toHaveProperty('file');
    expect((await h.call('vic', 'GET', '/alerts/0123456789abcdef')).status).toBe(404);

    const d = await h.call('alice', 'POST', '/incidents', { title: 'Shop down', severity: 1, services: ['shop'] });
    const shown = await h.call('vic', 'GET', `/incidents/${d.body.id}`);
    expect(shown.body.runbooks.map((r: { path: string }) => r.path)).toEqual([
      'runbooks/shop.md',
      'runbooks/paging.md',
    ]);
    // No traffic series for the shop in this store: the impact says so rather than guess.
    expect(shown.body.impact).toMatchObject({ ongoing: true, overall: { lostShare: null }, vantagePoints: [] });
    expect(shown.body.impact.text).toContain('nothing was measured');
    clock += 10 * MIN;
    await h.call('alice', 'POST', `/incidents/${d.body.id}/resolve`, { text: 'fixed' });
  });

  it('gives counts and MTTD/MTTA/MTTR to a viewer, refuses a bad since clearly, and exports them in /metrics', async () => {
    // Two more incidents with known response times: declared with their start, acknowledged and resolved later.
    for (const [sev, service, detectAfter, ackAfter, resolveAfter] of [
      [2, 'api', 2, 3, 30],
      [3, 'shop', 1, 1, 60],
    ] as const) {
      const start = clock;
      clock += detectAfter * MIN;
      const d = await h.call('alice', 'POST', '/incidents', {
        title: `${service} trouble`,
        severity: sev,
        services: [service],
        startedAt: new Date(start).toISOString(),
      });
      expect(d.status).toBe(201);
      clock += ackAfter * MIN;
      await h.call('bob', 'POST', `/incidents/${d.body.id}/ack`);
      clock = start + resolveAfter * MIN;
      expect((await h.call('alice', 'POST', `/incidents/${d.body.id}/resolve`)).status).toBe(200);
    }
    const s = await h.call('vic', 'GET', '/incidents/stats?since=30d');
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({
      total: 3,
      open: 0,
      bySeverity: { SEV1: 1, SEV2: 1, SEV3: 1, SEV4: 0 },
      byService: { shop: 2, api: 1 },
      // MTTD 0, 2 and 1 min; MTTR 10, 30 and 60 min; MTTA 3 and 1 min (the first was never acknowledged).
      mttd: { count: 3, median: 60, p90: 108 },
      mtta: { count: 2, median: 120, p90: 168 },
      mttr: { count: 3, median: 1800, p90: 3240 },
    });
    expect((await h.call('vic', 'GET', '/incidents/stats')).body.total).toBe(3);
    expect((await h.call(undefined, 'GET', '/incidents/stats')).status).toBe(401);

    const bad = await h.call('vic', 'GET', '/incidents/stats?since=90days');
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual([
      {
        field: 'query.since',
        message:
          "'90days': unknown unit 'days'; expected a duration back from now (like 90d, 2w, 12h or 30m, at most 3650d) or an ISO 8601 instant (like 2026-09-01T00:00:00Z)",
      },
    ]);

    const m = await fetch(`${h.url}/metrics`);
    const text = await m.text();
    expect(text).toContain('rampart_incidents_total{severity="SEV1"} 1');
    expect(text).toContain('rampart_incidents_total{severity="SEV4"} 0');
    expect(text).toContain('rampart_incidents_by_service{service="shop"} 2');
    expect(text).toContain('rampart_incidents_open 0');
    expect(text).toContain('rampart_incident_mttr_seconds{quantile="0.5"} 1800');
    expect(text).toContain('rampart_incident_mttr_seconds{quantile="0.9"} 3240');
    expect(text).toContain('rampart_incident_mtta_seconds{quantile="0.5"} 120');
    expect(text).toContain('rampart_incident_mttd_seconds{quantile="0.9"} 108');
  });
});
