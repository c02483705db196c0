/**
 * Incoming traffic in a real server (issue 14, §3), on SQLite and PostgreSQL, with a simulated clock: an agent's
 * request counts are stored once (a resent batch counts nothing twice), a sample the host was not asked for is
 * refused whole with the field and what is valid, the traffic-drop detector declares the founding outage's fall
 * to zero and its recovery as events, and `GET /traffic` answers rate now vs expected.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { ServiceConfig } from '../../src/config/types.js';
import { ignoredPaths } from '../../src/server/traffic.js';
import { BACKENDS, type Harness, pgSkipReason, startHarness } from './harness.js';

const CONFIG = `site: traffic
hosts:
  - {name: web1, addresses: [192.0.2.11], group: web}
  - {name: web2, addresses: [192.0.2.12], group: web}
  - {name: lb, addresses: [192.0.2.10]}
services:
  - name: shop
    group: web
    public: [tcp/80, tcp/443]
    traffic:
      logs: [{path: "/var/log/nginx/{host}.log"}]
      haproxy: {host: lb, socket: /run/haproxy/admin.sock, backend: shop}
      drop: {slot: 10s}
  - name: api
    hosts: [web1]
    public: [tcp/8080]
    traffic: {}
`;

const pgWhy = await pgSkipReason();
/** A Monday noon, UTC: the simulated clock starts here. */
const T0 = Date.parse('2026-11-30T12:00:00Z');
const W = 5000;

describe.each(BACKENDS)('incoming traffic over the API (%s)', (backend) => {
  const skip = backend === 'postgres' && pgWhy !== undefined;
  let h: Harness;
  let dir: string;
  let clock = T0;
  beforeAll(async () => {
    if (skip) return;
    dir = mkdtempSync(join(tmpdir(), 'rampart-traffic-'));
    writeFileSync(join(dir, 'rampart.yaml'), CONFIG);
    h = await startHarness(backend, { config: join(dir, 'rampart.yaml'), now: () => new Date(clock) });
  });
  afterAll(async () => {
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Windows of `rate` req/s from `from` (epoch ms) for `n` windows, as web1's access log counts them. */
  const windows = (from: number, n: number, rate: (i: number) => number, service = 'shop', source = 'access-log') =>
    Array.from({ length: n }, (_, i) => ({ service, source, start: from + i * W, ms: W, requests: rate(i) * 5 }));

  it.skipIf(skip)('tells each agent what to measure on its host', async () => {
    const a = await h.call('web1', 'GET', '/agent/traffic-sources');
    expect(a.status).toBe(200);
    expect(a.body).toEqual({
      windowMs: 5000,
      services: [
        { service: 'shop', logs: [{ path: '/var/log/nginx/web1.log', format: 'combined' }], counters: [] },
        { service: 'api', logs: [], counters: [{ proto: 'tcp', from: 8080, to: 8080 }] },
      ],
    });
  });

  it.skipIf(skip)('stores a window once, and refuses a batch with a sample the host was not asked for', async () => {
    const batch = windows(T0, 4, () => 10);
    clock = T0 + 4 * W;
    const first = await h.call('web1', 'POST', '/agent/traffic', { samples: batch });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toEqual({ accepted: 4, duplicates: 0 });
    // the answer was lost: the agent sends the batch again, with one new window
    const again = await h.call('web1', 'POST', '/agent/traffic', {
      samples: [...batch, ...windows(T0 + 4 * W, 1, () => 10)],
    });
    expect(again.body).toEqual({ accepted: 1, duplicates: 4 });
    const rows = await h.store.traffic.points({ service: 'shop', resolution: 60, from: T0 / 1000, to: T0 / 1000 });
    expect(rows).toEqual([
      {
        service: 'shop',
        host: 'web1',
        source: 'access-log',
        bucket: T0 / 1000,
        requests: 250,
        errors: 0,
        coveredMs: 25_000,
      },
    ]);

    const wrong = await h.call('web1', 'POST', '/agent/traffic', {
      samples: [
        ...windows(T0 + 5 * W, 1, () => 10),
        { service: 'shop', source: 'haproxy', start: T0 + 5 * W, ms: W, requests: 3 },
      ],
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body.errors).toEqual([
      {
        field: 'body.samples[1].source',
        message: "host 'web1' does not measure 'haproxy' for service 'shop'; expected one of access-log",
      },
    ]);
    const unknown = await h.call('web1', 'POST', '/agent/traffic', {
      samples: [{ service: 'shpo', source: 'access-log', start: T0 + 5 * W, ms: W, requests: 3 }],
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors[0].field).toBe('body.samples[0].service');
    // nothing of the refused batches was stored: the next window is still new
    const next = await h.call('web1', 'POST', '/agent/traffic', { samples: windows(T0 + 5 * W, 1, () => 10) });
    expect(next.body).toEqual({ accepted: 1, duplicates: 0 });
    const probe = await h.call('probe-eu', 'POST', '/agent/traffic', { samples: [] });
    expect(probe.status).toBe(403);
  });

  it.skipIf(skip)('declares a fall to zero as a drop within seconds, and its recovery, as events', async () => {
    // 10 minutes of steady traffic (60 req/s, +-10%) after the first windows, then the firewall drops everything.
    const start = T0 + 6 * W;
    const steady = windows(start, 120, (i) => 60 + ((i * 7) % 13) - 6);
    for (let i = 0; i < steady.length; i += 12) {
      clock = (steady[Math.min(i + 11, steady.length - 1)]?.start ?? 0) + W;
      const r = await h.call('web1', 'POST', '/agent/traffic', { samples: steady.slice(i, i + 12) });
      expect(r.body.accepted).toBe(Math.min(12, steady.length - i));
    }
    const outage = start + 120 * W;
    let dropAt: number | undefined;
    for (let i = 0; i < 12 && dropAt === undefined; i++) {
      clock = outage + (i + 1) * W;
      await h.call('web1', 'POST', '/agent/traffic', { samples: windows(outage + i * W, 1, () => 0) });
      const ev = await h.call('vic', 'GET', '/events?kind=traffic.drop');
      if (ev.body.events.length > 0) dropAt = clock;
    }
    expect(dropAt, 'a drop was declared').toBeDefined();
    console.log(`traffic drop declared ${((dropAt as number) - outage) / 1000} s after the fall (simulated clock)`);
    const drop = (await h.call('vic', 'GET', '/events?kind=traffic.drop')).body.events[0];
    expect(drop).toMatchObject({
      kind: 'traffic.drop',
      subject: 'service:shop',
      data: { service: 'shop', host: 'web1', source: 'access-log', observed: 0, since: new Date(outage).toISOString() },
    });
    expect(drop.data.dropShare).toBe(1);
    expect(drop.data.description).toMatch(/^shop@web1: traffic ~100% below expected since/);

    const now = await h.call('vic', 'GET', '/traffic');
    const web1 = now.body.traffic.find((t: { host?: string }) => t.host === 'web1');
    expect(web1).toMatchObject({ service: 'shop', host: 'web1', source: 'access-log', state: 'drop' });
    expect(web1.expected).toBeGreaterThan(40);
    expect(
      now.body.traffic.find((t: { service: string; host?: string }) => t.service === 'shop' && !t.host),
    ).toMatchObject({
      state: 'drop',
    });
    const text = await h.call(undefined, 'GET', '/metrics');
    expect(text.body).toMatch(/rampart_traffic_drop\{service="shop",host="web1"\} 1/);
    expect(text.body).toMatch(/rampart_incoming_requests_total\{service="shop",host="web1",source="access-log"\} \d+/);

    // the fix: traffic comes back
    const back = clock;
    for (let i = 0; i < 12; i++) {
      clock = back + (i + 1) * W;
      await h.call('web1', 'POST', '/agent/traffic', { samples: windows(back + i * W, 1, () => 60) });
    }
    const rec = (await h.call('vic', 'GET', '/events?kind=traffic.recovered')).body.events;
    expect(rec).toHaveLength(1);
    expect(rec[0].data.since).toBe(drop.data.since);
    // the detector's state is kept for a restart
    const saved = await h.store.traffic.loadDetectors();
    expect(saved.map((s) => s.series)).toContain('shop@web1');

    const series = await h.call('vic', 'GET', '/traffic/shop?resolution=10s&since=120');
    expect(series.status).toBe(200);
    const rates = series.body.points.map((p: { rate: number | null }) => p.rate);
    expect(rates).toContain(0);
    expect(rates.filter((r: number | null) => r !== null && r > 40).length).toBeGreaterThan(3);
    // Each point with its expected band (the dashboard draws it): the outage's points below it, the steady ones not.
    // The service as a whole has none: web2 never sent a count, so the sum has no baseline (as /traffic says).
    expect(series.body.points.every((p: { lower: number | null }) => p.lower === null)).toBe(true);
    type Banded = { rate: number | null; expected: number; lower: number; upper: number };
    const web1Series = await h.call('vic', 'GET', '/traffic/shop?resolution=10s&since=120&host=web1');
    const banded = (web1Series.body.points as (Banded | { lower: null })[]).filter(
      (p): p is Banded => p.lower !== null,
    );
    expect(banded.length).toBeGreaterThan(3);
    for (const p of banded) {
      expect(p.lower).toBeLessThanOrEqual(p.expected);
      expect(p.upper).toBeGreaterThanOrEqual(p.expected);
      expect(p.expected).toBeGreaterThan(40);
    }
    expect(banded.filter((p) => p.rate === 0).length).toBeGreaterThan(0);
    for (const p of banded) {
      if (p.rate === 0) expect(p.rate).toBeLessThan(p.lower);
      if (p.rate !== null && p.rate > 40) expect(p.rate).toBeGreaterThanOrEqual(p.lower);
    }
    // retention: 10 s points go after 48 h, minutes stay 35 days
    const at = (res: 10 | 60) => h.store.traffic.points({ service: 'shop', resolution: res, from: 0, to: 2e9 });
    const tens = (await at(10)).length;
    const minutes = (await at(60)).length;
    expect(await h.store.traffic.prune(T0 + 48 * 3_600_000 + 30_000)).toBeGreaterThan(0);
    expect((await at(10)).length).toBeLessThan(tens);
    expect((await at(60)).length).toBe(minutes);
    const none = await h.call('vic', 'GET', '/traffic/nothing');
    expect(none.status).toBe(404);
    expect(none.body.detail).toMatch(/measured services: shop, api/);
  });
});

describe('ignoredPaths: the requests that are not customers', () => {
  it("leaves out the health checks' paths, the service's HTTP monitors' and ignore-paths, and nothing else", () => {
    const c = parseConfig(
      `hosts:
  - {name: web1, addresses: [192.0.2.11], group: web}
services:
  - name: shop
    group: web
    public: [tcp/80]
    health:
      - http: {port: 80, path: /healthz}
      - tcp: {port: 80}
    traffic: {logs: [{path: /var/log/a.log}], ignore-paths: [/metrics]}
  - name: other
    group: web
    public: [tcp/81]
    traffic: {logs: [{path: /var/log/b.log}]}
monitors:
  - {name: deep, service: shop, http: {url: "http://192.0.2.11/status/deep?x=1"}}
  - {name: elsewhere, http: {url: "http://192.0.2.11/not-shop"}}
`,
      'c.yaml',
    );
    const [shop, other] = c.services;
    expect(ignoredPaths(shop as ServiceConfig, c.monitors ?? [])).toEqual(['/healthz', '/metrics', '/status/deep']);
    expect(ignoredPaths(other as ServiceConfig, c.monitors ?? [])).toEqual([]);
  });
});
