/**
 * Incoming traffic in the shop lab, end to end with real parts (issue 14, §3): steady customers through HAProxy, the
 * shop apps writing their combined access logs, an agent per web server following its own host's log and sending
 * 5 s windows to the Rampart server, which stores them in 10 s points. Every point the agents fully covered holds
 * exactly the lines of that host's log stamped in it: nothing lost, nothing counted twice.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASELINE_RULESET, type RampartLab, startRampart } from '../../src/lab/rampart-lab.js';
import {
  createShopLab,
  distScript,
  SHOP_URL,
  type ShopLab,
  shopLabUnavailable,
  startShop,
} from '../../src/lab/shop-lab.js';
import { isIgnoredPath, isLoopbackClient, parseAccessLine } from '../../src/monitor/access-log.js';
import { openStore } from '../../src/store/open.js';
import type { TrafficRow } from '../../src/store/traffic-store.js';
import { ensureBuilt, main } from '../cli/cli.js';

const skip = shopLabUnavailable(['ip', 'haproxy', 'nft']);
if (skip && process.env.CI === 'true') throw new Error(`CI needs the traffic lab scenario: ${skip}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skip !== undefined)('incoming traffic in the shop lab (agents reading access logs)', () => {
  let lab: ShopLab;
  let r: RampartLab;

  beforeAll(async () => {
    ensureBuilt();
    lab = await createShopLab();
    const baseline = join(lab.paths.dir, 'baseline.nft');
    (await import('node:fs')).writeFileSync(baseline, `flush ruleset\n${BASELINE_RULESET}`);
    for (const h of ['web1', 'web2'] as const) await lab.exec[h].run(['nft', '-f', baseline]);
    await startShop(lab);
    r = await startRampart(lab, main, {
      pollMs: 300,
      traffic: { logDir: lab.paths.dir },
      desired: { web1: BASELINE_RULESET, web2: BASELINE_RULESET },
    });
  }, 180_000);
  afterAll(async () => {
    await lab?.destroy();
  });

  it('each agent sends its own log per window; each full 10 s point holds exactly the lines stamped in it', async () => {
    lab.spawnIn(
      'client',
      [
        process.execPath,
        distScript('steady-client.js'),
        '--url',
        SHOP_URL,
        '--rate',
        '20',
        '--duration',
        '40',
        '--out',
        join(lab.paths.dir, 'steady-traffic.json'),
      ],
      { label: 'steady-traffic' },
    );
    const store = await openStore({ dataDir: r.dataDir });
    try {
      const full = async (host: string): Promise<TrafficRow[]> =>
        (
          await store.traffic.points({
            service: 'shop',
            resolution: 10,
            from: Math.floor(Date.now() / 1000) - 600,
            to: Math.floor(Date.now() / 1000) + 10,
            host,
          })
        ).filter((p) => p.coveredMs === 10_000 && p.source === 'access-log');
      const end = Date.now() + 90_000;
      while ((await full('web1')).length < 3 || (await full('web2')).length < 3) {
        if (Date.now() > end) throw new Error('the agents did not send three full 10 s points each in 90 s');
        await sleep(1000);
      }
      for (const host of ['web1', 'web2'] as const) {
        const stamps = readFileSync(lab.paths.accessLog[host], 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => parseAccessLine(l, 'combined'));
        expect(stamps.filter((e) => e === undefined)).toEqual([]);
        // the customers' lines (the host's own probes on loopback are not incoming traffic)
        // nor the health checks (HAProxy's and the monitors' GET /healthz, the service's health path)
        const customers = stamps
          .filter((e) => e && !isLoopbackClient(e.client) && !isIgnoredPath(e, new Set(['/healthz'])))
          .map((e) => e?.time);
        // the customers did shop (a test that counted only health checks would pass on zeros)
        expect(customers.length).toBeGreaterThan(100);
        const points = await full(host);
        for (const p of points) {
          const inBucket = customers.filter(
            (t) => (t as number) >= p.bucket * 1000 && (t as number) < p.bucket * 1000 + 10_000,
          );
          expect({ host, bucket: p.bucket, requests: p.requests }).toEqual({
            host,
            bucket: p.bucket,
            requests: inBucket.length,
          });
          expect(p.errors).toBe(0);
        }
        expect(points.reduce((a, p) => a + p.requests, 0)).toBeGreaterThan(0);
      }
    } finally {
      await store.close();
    }
  }, 180_000);
});
