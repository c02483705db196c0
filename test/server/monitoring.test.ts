/**
 * Monitoring in a real server (issue 14): the server probes real HTTP servers on loopback, a probe and an agent send
 * their results over the API with their own tokens, states follow quorum and redundancy, events and rollups land in
 * the store, /metrics speaks blackbox_exporter's names, and a host whose service answers inside but not from
 * outside is diagnosed from its live ruleset by the engine.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

function listen(host: string, port: number): Promise<http.Server> {
  const s = http.createServer((req, res) => {
    res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'text/plain' });
    res.end('ok\n');
  });
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, host, () => resolve(s));
  });
}

const close = (s: http.Server) =>
  new Promise<void>((r) => {
    s.closeAllConnections();
    s.close(() => r());
  });

// biome-ignore lint/suspicious/noExplicitAny: views are arbitrary JSON the tests pick apart
async function until(h: Harness, what: string, done: (body: any) => boolean, ms = 60_000): Promise<any> {
  const end = Date.now() + ms;
  for (;;) {
    const body = (await h.call('vic', 'GET', '/monitors')).body;
    if (done(body)) return body;
    if (Date.now() > end) throw new Error(`${what} did not happen in ${ms} ms: ${JSON.stringify(body, null, 1)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// biome-ignore lint/suspicious/noExplicitAny: views are arbitrary JSON
const monitor = (body: any, name: string) => body.monitors.find((m: { name: string }) => m.name === name);
// biome-ignore lint/suspicious/noExplicitAny: views are arbitrary JSON
const service = (body: any, name: string) => body.services.find((m: { name: string }) => m.name === name);

const LIVE_DROP = `table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    tcp dport 22 accept
  }
}
`;

describe('monitoring in the server', () => {
  let h: Harness;
  let dir: string;
  let port = 0;
  const servers: Record<string, http.Server> = {};

  beforeAll(async () => {
    servers.web1 = await listen('127.0.0.1', 0);
    port = (servers.web1.address() as AddressInfo).port;
    servers.web2 = await listen('127.0.0.2', port);
    servers.lb = await listen('127.0.0.3', port);
    dir = mkdtempSync(join(tmpdir(), 'rampart-monitoring-'));
    const config = join(dir, 'rampart.yaml');
    writeFileSync(
      config,
      `site: loop
hosts:
  - {name: web1, addresses: [127.0.0.1], group: web}
  - {name: web2, addresses: [127.0.0.2], group: web}
services:
  - name: shop
    group: web
    public: [tcp/${port}]
    address: [127.0.0.3]
    health:
      - http: {port: ${port}, path: /healthz}
    monitor: {interval: 1s, timeout: 500ms, failures: 2}
`,
    );
    h = await startHarness('sqlite', { config, authLimits: { failures: 1000, windowMs: 60_000 } });
  });
  afterAll(async () => {
    await h?.close();
    for (const s of Object.values(servers)) if (s.listening) await close(s);
    rmSync(dir, { recursive: true, force: true });
  });

  it('sees every monitor UP from the server, with blackbox_exporter metric names', async () => {
    const body = await until(
      h,
      'all UP',
      (b) => b.monitors.length === 3 && b.monitors.every((m: { state: string }) => m.state === 'UP'),
    );
    expect(body.monitors.map((m: { name: string }) => m.name).sort()).toEqual(['shop', 'shop@web1', 'shop@web2']);
    expect(monitor(body, 'shop@web1')).toMatchObject({
      service: 'shop',
      host: 'web1',
      target: 'direct',
      check: `http GET http://127.0.0.1:${port}/healthz`,
      vantages: { server: { state: 'up', ok: true } },
    });
    expect(service(body, 'shop')).toMatchObject({ state: 'UP', healthy: 2, backends: 2 });
    // filtered and paged on the server (the dashboard reads a page at a time); counts are over all monitors
    const page = (await h.call('vic', 'GET', '/monitors?state=UP&q=web&limit=1&offset=1')).body;
    expect(page).toMatchObject({ total: 2, counts: { UP: 3, DOWN: 0, DEGRADED: 0, UNKNOWN: 0 } });
    expect(page.monitors.map((m: { name: string }) => m.name)).toEqual(['shop@web2']);
    expect((await h.call('vic', 'GET', '/monitors?state=DOWN')).body).toMatchObject({ total: 0, monitors: [] });
    const bad = await h.call('vic', 'GET', '/monitors?limit=0');
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].field).toBe('query.limit');
    const metrics = (await h.call(undefined, 'GET', '/metrics')).body as string;
    expect(metrics).toMatch(/^probe_success\{monitor="shop@web1",vantage="server"\} 1$/m);
    expect(metrics).toMatch(/^probe_duration_seconds\{monitor="shop",vantage="server"\} [0-9.e-]+$/m);
    expect(metrics).toMatch(/^rampart_monitor_state\{monitor="shop",state="UP"\} 1$/m);
  });

  it('gives probes and agents their assignments, and takes their results under their own name', async () => {
    const p = await h.call('probe-eu', 'GET', '/probe/monitors');
    expect(p.status).toBe(200);
    expect(p.body.vantage).toBe('probe:probe-eu');
    expect(p.body.monitors.map((m: { monitor: string }) => m.monitor).sort()).toEqual([
      'shop',
      'shop@web1',
      'shop@web2',
    ]);
    const a = await h.call('web1', 'GET', '/agent/monitors');
    expect(a.body.vantage).toBe('agent:web1');
    // its own service on loopback (inside), its peer's through the peer's firewall
    expect(a.body.monitors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ monitor: 'shop@web1', inside: true, address: '127.0.0.1' }),
        expect.objectContaining({
          monitor: 'shop@web2',
          check: expect.objectContaining({ url: `http://127.0.0.2:${port}/healthz` }),
        }),
      ]),
    );
    expect(a.body.monitors.find((m: { monitor: string }) => m.monitor === 'shop')).toBeUndefined();
    // a probe cannot take an agent's route, nor a viewer's, nor post as someone else
    expect((await h.call('probe-eu', 'GET', '/agent/monitors')).status).toBe(403);
    expect((await h.call('probe-eu', 'GET', '/monitors')).status).toBe(403);
    const bad = await h.call('probe-eu', 'POST', '/probe/results', {
      results: [{ monitor: 'shop', at: -1, ok: true }],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: { field: string }) => e.field)).toEqual(
      expect.arrayContaining(['body.results.0.at', 'body.results.0.timings']),
    );
  });

  it('counts a probe that cannot reach a backend by quorum: DEGRADED, not DOWN, while the server still can', async () => {
    const now = Date.now();
    const r = await h.call('probe-eu', 'POST', '/probe/results', {
      results: [0, 1].map((i) => ({
        monitor: 'shop@web2',
        at: now + i,
        ok: false,
        timings: { totalMs: 500 },
        error: 'timeout after 500 ms',
        inside: true,
      })),
    });
    expect(r.body).toEqual({ accepted: 2, unknown: [] });
    const body = await until(h, 'shop@web2 DEGRADED', (b) => monitor(b, 'shop@web2')?.state === 'DEGRADED');
    const m = monitor(body, 'shop@web2');
    expect(m.vantages['probe:probe-eu']).toMatchObject({ state: 'down', error: 'timeout after 500 ms' });
    // a probe's word never counts as the inside of a host
    expect(m.vantages['probe:probe-eu'].inside).toBeUndefined();
    expect(m.reason).toMatch(/down from 1 of 2 \(quorum 2\): probe:probe-eu: timeout after 500 ms/);
    // the probe recovers: UP again
    await h.call('probe-eu', 'POST', '/probe/results', {
      results: [0, 1].map((i) => ({ monitor: 'shop@web2', at: Date.now() + i, ok: true, timings: { totalMs: 2 } })),
    });
    await until(h, 'shop@web2 UP', (b) => monitor(b, 'shop@web2')?.state === 'UP');
  });

  // after the quorum test: probe-eu already says shop@web2 is up, more of the same changes no state
  it('takes a batch sent again once: the probe resends what it got no answer for, the server skips what it took', async () => {
    const now = Date.now();
    const sender = `test-${now}`;
    const batch = (first: number, n: number) => ({
      sender,
      first,
      results: Array.from({ length: n }, (_, i) => ({
        monitor: 'shop@web2',
        at: now + first + i,
        ok: true,
        timings: { totalMs: 1 },
      })),
    });
    const post = async (b: unknown) => (await h.call('probe-eu', 'POST', '/probe/results', b)).body;
    expect(await post(batch(0, 3))).toEqual({ accepted: 3, unknown: [], duplicates: 0 });
    // its answer was lost: sent again with two newer results
    expect(await post(batch(0, 5))).toEqual({ accepted: 2, unknown: [], duplicates: 3 });
    // a copy of the first batch arrives late (a closed socket's retransmission after a cut): nothing of it is new
    expect(await post(batch(0, 3))).toEqual({ accepted: 0, unknown: [], duplicates: 3 });
    // the oldest went over the buffer limit: a gap is fine
    expect(await post(batch(9, 1))).toEqual({ accepted: 1, unknown: [], duplicates: 0 });
    // another run of the probe starts from 0 again
    expect(await post({ ...batch(0, 1), sender: `${sender}-2` })).toEqual({ accepted: 1, unknown: [], duplicates: 0 });
    const half = await h.call('probe-eu', 'POST', '/probe/results', { ...batch(0, 1), sender: undefined });
    expect(half.status).toBe(400);
    expect(JSON.stringify(half.body)).toContain('sender and first go together');
  });

  it('says DEGRADED with 1 of 2 backends when one stops, and keeps the events and the raw results around it', async () => {
    await close(servers.web2 as http.Server);
    const body = await until(h, 'web2 DOWN', (b) => monitor(b, 'shop@web2')?.state === 'DOWN');
    expect(service(body, 'shop')).toMatchObject({ state: 'DEGRADED', healthy: 1, backends: 2 });
    expect(service(body, 'shop').reason).toMatch(/1 of 2 backends healthy \(web2 down\)/);
    const shown = await h.call('vic', 'GET', `/monitors/${encodeURIComponent('shop@web2')}`);
    expect(shown.status).toBe(200);
    expect(shown.body.events.map((e: { kind: string }) => e.kind)).toContain('monitor.state');
    const down = shown.body.events.filter(
      (e: { kind: string; data: { to: string } }) => e.kind === 'monitor.state' && e.data.to === 'DOWN',
    );
    expect(down.length).toBeGreaterThan(0);
    expect(shown.body.results.some((r: { ok: boolean }) => !r.ok)).toBe(true);
    expect(shown.body.results.some((r: { ok: boolean }) => r.ok)).toBe(true);
    const services = await h.call('vic', 'GET', '/events?subject=service:shop');
    expect(services.body.events.at(-1)).toMatchObject({ kind: 'service.state', data: { to: 'DEGRADED', healthy: 1 } });
    // the minute rollup is written by the flush loop
    const deadline = Date.now() + 30_000;
    let minutes: { count: number }[] = [];
    while (Date.now() < deadline) {
      minutes = (await h.call('vic', 'GET', `/monitors/${encodeURIComponent('shop@web2')}`)).body.lastHour;
      if (minutes.length > 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(minutes.reduce((n, m) => n + m.count, 0)).toBeGreaterThan(0);
  });

  it("names the live rule that drops the probe when the service answers on the host's loopback", async () => {
    // web1's agent reports its live ruleset (an input policy drop without the shop's accept) ...
    const report = await h.call('web1', 'POST', '/agent/report', {
      at: new Date().toISOString(),
      firewall: 'nftables',
      live: { format: 'nft-text', text: LIVE_DROP },
      sockets: [],
      state: 'idle',
    });
    expect(report.status).toBe(200);
    // ... and says its service answers on loopback, while from outside it no longer does
    const inside = setInterval(() => {
      void h.call('web1', 'POST', '/agent/monitor-results', {
        results: [{ monitor: 'shop@web1', at: Date.now(), ok: true, timings: { totalMs: 1 }, inside: true }],
      });
    }, 300);
    try {
      await close(servers.web1 as http.Server);
      const body = await until(
        h,
        'web1 DOWN with a diagnosis',
        (b) => monitor(b, 'shop@web1')?.diagnosis !== undefined,
      );
      const m = monitor(body, 'shop@web1');
      expect(m.state).toBe('DOWN');
      expect(m.vantages['agent:web1']).toMatchObject({ state: 'up', inside: true });
      expect(m.diagnosis).toMatchObject({
        cause: 'firewall',
        firewall: { host: 'web1', verdict: 'drop', drifted: null },
      });
      expect(m.diagnosis.summary).toMatch(/^answers on web1's loopback, unreachable through its firewall from server;/);
      expect(m.diagnosis.firewall.decidedBy).toMatch(/^policy drop of filter\/input at web1:live:2/);
      // both backends down: the service and its public monitor are down too, and the public one says why
      const both = await until(h, 'service DOWN', (b) => service(b, 'shop')?.state === 'DOWN');
      expect(service(both, 'shop').reason).toMatch(/no backend answers/);
    } finally {
      clearInterval(inside);
    }
  });
});
