/**
 * Two server replicas on one real PostgreSQL (issue 14 §4), in one process: each monitor has one evaluator, the
 * holder of its lease. An agent that talks to the other replica (its results, its live ruleset) still gets its
 * monitor diagnosed by the holder, both replicas show the same states and diagnosis, and a service's state change
 * is one event, not one per replica. (The failover with real processes and SIGKILL is test/e2e/replica-failover.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../store/pg.js';
import { type Harness, pgSkipReason, startHarness } from './harness.js';

const skip = await pgSkipReason();

const LIVE_DROP = `table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    tcp dport 22 accept
  }
}
`;

// biome-ignore lint/suspicious/noExplicitAny: views are arbitrary JSON the tests pick apart
type Body = any;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skip !== undefined)('two replicas on one PostgreSQL', () => {
  let db: TestDatabase;
  let dir: string;
  const h: Record<'A' | 'B', Harness> = {} as never;
  const servers: Record<string, http.Server> = {};
  /** Who probed each backend: the replica named in the User-Agent. */
  const probedBy: Record<string, string[]> = { web1: [], web2: [], lb: [] };

  const listen = (name: string, host: string, port: number) =>
    new Promise<http.Server>((resolve, reject) => {
      const s = http.createServer((req, res) => {
        const who = /replica (\w+)\)/.exec(req.headers['user-agent'] ?? '')?.[1];
        if (who) probedBy[name]?.push(who);
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok\n');
      });
      s.once('error', reject);
      s.listen(port, host, () => resolve(s));
    });
  const views = async () =>
    Promise.all((['A', 'B'] as const).map(async (r) => (await h[r].call('vic', 'GET', '/monitors')).body as Body));
  const until = async (what: string, ok: (vs: Body[]) => boolean, ms = 60_000): Promise<Body[]> => {
    const end = Date.now() + ms;
    for (;;) {
      const vs = await views();
      if (ok(vs)) return vs;
      if (Date.now() > end) throw new Error(`${what} did not happen in ${ms} ms: ${JSON.stringify(vs, null, 1)}`);
      await sleep(200);
    }
  };
  const monitor = (v: Body, name: string) => v.monitors.find((m: { name: string }) => m.name === name);

  beforeAll(async () => {
    servers.web1 = await listen('web1', '127.0.0.1', 0);
    const port = (servers.web1.address() as AddressInfo).port;
    servers.web2 = await listen('web2', '127.0.0.2', port);
    servers.lb = await listen('lb', '127.0.0.3', port);
    dir = mkdtempSync(join(tmpdir(), 'rampart-replicas-'));
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
    monitor: {interval: 1s, timeout: 500ms, failures: 2, from: [server, agents]}
`,
    );
    db = await createTestDatabase();
    const limits = { failures: 1000, windowMs: 60_000 };
    h.A = await startHarness('postgres', { config, db: db.url, authLimits: limits, monitoring: { replica: 'A' } });
    h.B = await startHarness('postgres', { config, db: db.url, authLimits: limits, monitoring: { replica: 'B' } });
  }, 60_000);
  afterAll(async () => {
    await h.A?.close();
    await h.B?.close();
    for (const s of Object.values(servers)) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('diagnoses a monitor on its holder from an agent that reports to the other replica; both say the same', async () => {
    // shared: both replicas probe, each backend by one of them
    await until('every monitor UP on both', (vs) =>
      vs.every((v) => v.monitors.length === 3 && v.monitors.every((m: { state: string }) => m.state === 'UP')),
    );
    const since = { web1: probedBy.web1?.length ?? 0 };
    await sleep(3000);
    const recent = new Set(probedBy.web1?.slice(since.web1));
    expect(recent.size).toBe(1);
    const holder = [...recent][0] as 'A' | 'B';
    const other = holder === 'A' ? 'B' : 'A';
    const held = [probedBy.web1, probedBy.web2, probedBy.lb].map((xs) => new Set(xs?.slice(-2)));
    expect(held.some((s) => s.has('A')) && held.some((s) => s.has('B'))).toBe(true);

    // web1's agent talks to the replica that does not hold shop@web1: its live ruleset, its inside view
    const report = await h[other].call('web1', 'POST', '/agent/report', {
      at: new Date().toISOString(),
      firewall: 'nftables',
      live: { format: 'nft-text', text: LIVE_DROP },
      sockets: [],
      state: 'idle',
    });
    expect(report.status).toBe(200);
    const inside = setInterval(() => {
      void h[other].call('web1', 'POST', '/agent/monitor-results', {
        results: [{ monitor: 'shop@web1', at: Date.now(), ok: true, timings: { totalMs: 1 }, inside: true }],
      });
    }, 300);
    try {
      await until('the inside view on both', (vs) =>
        vs.every((v) => monitor(v, 'shop@web1')?.vantages['agent:web1']?.inside === true),
      );
      // from outside web1 no longer answers
      await new Promise<void>((r) => {
        servers.web1?.closeAllConnections();
        servers.web1?.close(() => r());
      });
      // Settled: the holder first diagnoses from the inside view alone (web1's report reached the other replica),
      // then its next loop reads the report from the store and adds the engine's word; on a busy machine the first
      // can be what both show for a while, so wait for the engine's part on both.
      const vs = await until('shop@web1 diagnosed on both, with the engine', (xs) =>
        xs.every((v) => {
          const d = monitor(v, 'shop@web1')?.diagnosis;
          return d?.cause === 'firewall' && d.firewall?.decidedBy !== undefined;
        }),
      );
      const [a, b] = vs.map((v) => monitor(v, 'shop@web1'));
      expect(a.state).toBe('DOWN');
      // the other replica shows what the holder wrote (its last results may be a loop behind, the verdict is not)
      for (const k of ['state', 'since', 'reason', 'diagnosis']) expect(b[k], k).toEqual(a[k]);
      expect(a.diagnosis.summary).toMatch(/^answers on web1's loopback, unreachable through its firewall from server;/);
      expect(a.diagnosis.firewall.decidedBy).toMatch(/^policy drop of filter\/input at web1:live:2/);
      const svc = vs.map((v) => v.services.find((s: { name: string }) => s.name === 'shop'));
      expect(svc.map((s) => s.state)).toEqual(['DEGRADED', 'DEGRADED']);
    } finally {
      clearInterval(inside);
    }
    // one event per change, whichever replica is asked
    await sleep(1000);
    for (const r of ['A', 'B'] as const) {
      const events = (await h[r].call('vic', 'GET', '/events?subject=service:shop')).body.events;
      expect(events.filter((e: { data: { to: string } }) => e.data.to === 'DEGRADED')).toHaveLength(1);
      const down = (await h[r].call('vic', 'GET', `/events?subject=${encodeURIComponent('monitor:shop@web1')}`)).body
        .events;
      expect(down.filter((e: { kind: string; data: { to: string } }) => e.kind === 'monitor.state')).toHaveLength(1);
    }
  }, 120_000);
});
