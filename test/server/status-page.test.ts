/**
 * The public status page (issue 16 §6, issue 17) against a real server on SQLite: `GET /status.json` and `GET
 * /status` answer without a token and show only what `status-page:` lists, by its display names: each public
 * service's state, 90 days of daily availability from the probe rollups, and an open incident's public updates
 * (posted through the API, audited). Internal host names, addresses, rule text, monitor names, other services and an
 * incident's title, severity and notes never appear. The pure core's day bucketing is tested with a fixed clock.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { emptyRollup } from '../../src/monitor/rollup.js';
import { publicStatus, STATUS_DAYS } from '../../src/server/status-page.js';
import { type Harness, startHarness } from './harness.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-04T15:30:00.000Z');

const CONFIG = `site: internal-site-name
hosts:
  - {name: web1-internal, addresses: [127.0.0.1], group: web}
  - {name: admin-box, addresses: [127.0.0.3]}
services:
  - {name: shop, group: web, public: [tcp/1]}
  - {name: backoffice, hosts: [admin-box], public: [tcp/2]}
monitors:
  - {name: shop-checkout-probe, service: shop, tcp: {host: 127.0.0.1, port: 1}, interval: 1h, failures: 1}
  - {name: backoffice-probe, service: backoffice, tcp: {host: 127.0.0.3, port: 2}, interval: 1h, failures: 1}
status-page:
  title: Example Store status
  services:
    - {service: shop, name: Online store}
`;

describe('publicStatus (the pure core)', () => {
  const config = { title: 'T', services: [{ service: 'shop', name: 'Store' }] };
  it('buckets probe counts by UTC day over 90 days, and days without probes have no availability', () => {
    const today = Date.parse('2026-12-04T00:00:00.000Z');
    const s = publicStatus({
      config,
      states: new Map([['shop', 'DEGRADED']]),
      incidents: [],
      days: new Map([
        [
          'shop',
          [
            { day: today + 3 * 3_600_000, count: 60, failures: 0 },
            { day: today + 5 * 3_600_000, count: 40, failures: 10 },
            { day: today - DAY, count: 100, failures: 100 },
            // outside the window: ignored
            { day: today - STATUS_DAYS * DAY, count: 100, failures: 100 },
          ],
        ],
      ]),
      nowMs: NOW,
    });
    const days = s.services[0]?.days ?? [];
    expect(days).toHaveLength(STATUS_DAYS);
    expect(days.at(-1)).toEqual({ date: '2026-12-04', availability: 0.9 });
    expect(days.at(-2)).toEqual({ date: '2026-12-03', availability: 0 });
    expect(days[0]).toEqual({ date: '2026-09-06', availability: null });
    expect(s.services[0]).toMatchObject({ name: 'Store', state: 'degraded', availability: 0.45 });
    expect(s.state).toBe('degraded');
  });
});

describe('the public status page', () => {
  let h: Harness;
  let dir: string;
  let incident = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-status-'));
    const config = join(dir, 'rampart.yaml');
    writeFileSync(config, CONFIG);
    h = await startHarness('sqlite', {
      config,
      now: () => new Date(NOW),
      before: async (store) => {
        // Yesterday the shop failed a quarter of its probes; the back office failed all of them (not public).
        const yesterday = Math.floor((NOW - DAY) / 1000 / 3600) * 3600;
        const r = (count: number, failures: number) => ({ ...emptyRollup(), count, failures });
        await store.monitoring.addRollups([
          { monitor: 'shop-checkout-probe', resolution: 3600, bucket: yesterday, rollup: r(400, 100) },
          { monitor: 'backoffice-probe', resolution: 3600, bucket: yesterday, rollup: r(400, 400) },
        ]);
      },
    });
    const declared = await h.call('alice', 'POST', '/incidents', {
      title: 'SECRET-TITLE firewall drop on web1-internal 127.0.0.1',
      severity: 'SEV1',
      services: ['shop'],
      hosts: ['web1-internal'],
    });
    expect(declared.status).toBe(201);
    incident = declared.body.id;
    await h.call('alice', 'POST', `/incidents/${incident}/notes`, { text: 'nft add rule inet filter input drop' });
    // An incident of a service that is not public is not shown at all.
    await h.call('alice', 'POST', '/incidents', {
      title: 'backoffice down',
      severity: 'SEV3',
      services: ['backoffice'],
    });
  });
  afterAll(async () => {
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('posts a public update as an operator (not a viewer), audited and on the timeline', async () => {
    const refused = await h.call('vic', 'POST', `/incidents/${incident}/public-updates`, { text: 'hello' });
    expect(refused.status).toBe(403);
    const empty = await h.call('alice', 'POST', `/incidents/${incident}/public-updates`, { text: '   ' });
    expect(empty.status).toBe(400);
    const posted = await h.call('alice', 'POST', `/incidents/${incident}/public-updates`, {
      text: 'Checkout is failing for some customers; we are on it.',
    });
    expect(posted.status, JSON.stringify(posted.body)).toBe(201);
    const shown = await h.call('vic', 'GET', `/incidents/${incident}`);
    expect(shown.body.timeline.map((e: { kind: string }) => e.kind)).toContain('incident.public');
    const audit = await h.call('admin', 'GET', '/audit-log');
    expect(audit.body.entries.map((e: { action: string }) => e.action)).toContain('incident.public-update');
  });

  it('answers /status.json without a token with only what status-page: lists', async () => {
    const res = await fetch(`${h.url}/status.json`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const s = JSON.parse(text);
    expect(s.title).toBe('Example Store status');
    expect(s.services).toHaveLength(1);
    expect(s.services[0].name).toBe('Online store');
    expect(s.services[0].days).toHaveLength(STATUS_DAYS);
    expect(s.services[0].days.at(-2)).toEqual({ date: '2026-12-03', availability: 0.75 });
    expect(s.incidents).toHaveLength(1);
    expect(s.incidents[0]).toMatchObject({
      status: 'investigating',
      services: ['Online store'],
      updates: [{ text: 'Checkout is failing for some customers; we are on it.' }],
    });
    for (const secret of [
      'web1',
      'admin-box',
      '127.0.0',
      'SECRET',
      'SEV',
      'nft ',
      'drop',
      'probe',
      'backoffice',
      'internal-site-name',
      '"shop"',
      'alice',
    ]) {
      expect(text, secret).not.toContain(secret);
    }
  });

  it('renders /status as HTML without a token, under the CSP, with the same nothing-internal rule', async () => {
    const res = await fetch(`${h.url}/status`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await res.text();
    expect(html).toContain('Online store');
    expect(html).toContain('Checkout is failing for some customers');
    expect(html).not.toContain('<script');
    for (const secret of ['web1', 'admin-box', '127.0.0', 'SECRET', 'SEV', 'nft ', 'backoffice', 'alice']) {
      expect(html, secret).not.toContain(secret);
    }
    expect((await fetch(`${h.url}/status.css`)).status).toBe(200);
  });

  it('says where a status-page: entry names an unknown service', () => {
    const bad = CONFIG.replace('{service: shop, name: Online store}', '{service: shpo, name: Online store}');
    expect(() => parseConfig(bad, 'rampart.yaml')).toThrow(
      /rampart\.yaml:\d+:\d+: status-page\.services\[0\]\.service: unknown service 'shpo' \(did you mean 'shop'\?\)/,
    );
  });
});
