/**
 * Monitoring's part of the store (src/store/monitor-store.ts) on a real SQLite file and a real PostgreSQL database:
 * rollups that add up across writers, events in order, raw results, retention, and leases that never give one
 * monitor to two replicas.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { quantile, RollupBuffer } from '../../src/monitor/rollup.js';
import { IN_CI, pgUnavailable, storePair } from './pg.js';

const pgProblem = await pgUnavailable();
const T = Date.parse('2026-12-03T10:00:00.000Z');

describe.each(['sqlite', 'postgres'] as const)('monitoring store on %s', (backend) => {
  const skip = backend === 'postgres' && pgProblem !== undefined && !IN_CI;
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  const pair = () => storePair(backend, cleanups, 'rampart-monstore-');

  it.skipIf(skip)('adds rollups from two writers into the same buckets and reads quantiles back', async () => {
    const [a, b] = await pair();
    const ba = new RollupBuffer();
    const bb = new RollupBuffer();
    for (let i = 0; i < 100; i++) {
      const r = { monitor: 'shop', at: T + i * 100, ok: i % 10 !== 0, timings: { totalMs: i < 60 ? 3 : 40 } };
      (i % 2 === 0 ? ba : bb).add(r);
    }
    await a.monitoring.addRollups(ba.drain());
    await b.monitoring.addRollups(bb.drain());
    // a second flush into the same bucket adds too
    const again = new RollupBuffer();
    again.add({ monitor: 'shop', at: T + 5, ok: true, timings: { totalMs: 900 } });
    await a.monitoring.addRollups(again.drain());
    const s = Math.floor(T / 1000);
    const minute = await b.monitoring.rollups('shop', 60, s - 60, s + 60);
    expect(minute).toHaveLength(1);
    const m = minute[0];
    expect(m).toMatchObject({ bucket: s - (s % 60), count: 101, failures: 10, maxMs: 900 });
    expect(m?.sumMs).toBeCloseTo(60 * 3 + 40 * 40 + 900);
    expect(quantile(m as never, 0.5)).toBeLessThanOrEqual(5);
    expect(quantile(m as never, 0.95)).toBeGreaterThan(25);
    expect(quantile(m as never, 0.95)).toBeLessThanOrEqual(50);
    const hour = await a.monitoring.rollups('shop', 3600, s - 3600, s + 3600);
    expect(hour.map((h) => h.count)).toEqual([101]);
  });

  it.skipIf(skip)(
    'packs old hours of minute rollups into one row per monitor and hour, and reads them back',
    async () => {
      const [a, b] = await pair();
      const buf = new RollupBuffer();
      const h0 = T - 10 * 3_600_000;
      for (let min = 0; min < 120; min++) {
        for (const s of [0, 30]) {
          buf.add({
            monitor: 'shop',
            at: h0 + min * 60_000 + s * 1000,
            ok: min !== 7,
            timings: { totalMs: 2 + (min % 3) },
          });
        }
      }
      await a.monitoring.addRollups(buf.drain());
      const from = Math.floor(h0 / 1000);
      const before = await b.monitoring.rollups('shop', 60, from, from + 7200);
      expect(before).toHaveLength(120);
      expect(await a.monitoring.packMinutes(T)).toBe(120);
      const after = await b.monitoring.rollups('shop', 60, from, from + 7200);
      expect(after).toEqual(before);
      // a late result for a packed minute adds to it
      const late = new RollupBuffer();
      late.add({ monitor: 'shop', at: h0 + 7 * 60_000 + 5000, ok: false, timings: { totalMs: 900 } });
      await a.monitoring.addRollups(late.drain());
      const m7 = (await b.monitoring.rollups('shop', 60, from + 420, from + 420))[0];
      expect(m7).toMatchObject({ count: 3, failures: 3, maxMs: 900 });
      expect(await a.monitoring.packMinutes(T)).toBe(1);
      expect((await b.monitoring.rollups('shop', 60, from + 420, from + 420))[0]).toMatchObject({
        count: 3,
        failures: 3,
      });
      // the hour rollups are untouched
      expect(
        (await b.monitoring.rollups('shop', 3600, from - 3600, from + 7200)).reduce((n, r) => n + r.count, 0),
      ).toBe(241);
    },
  );

  it.skipIf(skip)('keeps events in order, filters them, and follows the stream from an id', async () => {
    const [a] = await pair();
    const made = await a.monitoring.insertEvents([
      { at: '2026-12-03T10:00:00.000Z', kind: 'monitor.state', subject: 'monitor:shop', data: { state: 'DOWN' } },
      { at: '2026-12-03T10:00:01.000Z', kind: 'service.state', subject: 'service:shop', data: { state: 'DOWN' } },
      { at: '2026-12-03T10:01:00.000Z', kind: 'monitor.state', subject: 'monitor:shop', data: { state: 'UP' } },
    ]);
    expect(made.map((e) => e.id)).toEqual([...made.map((e) => e.id)].sort((x, y) => x - y));
    expect((await a.monitoring.listEvents({ subject: 'monitor:shop' })).map((e) => e.data)).toEqual([
      { state: 'DOWN' },
      { state: 'UP' },
    ]);
    expect((await a.monitoring.listEvents({ afterId: made[0]?.id })).map((e) => e.kind)).toEqual([
      'service.state',
      'monitor.state',
    ]);
    expect(await a.monitoring.listEvents({ limit: 1 })).toMatchObject([{ data: { state: 'UP' } }]);
  });

  it.skipIf(skip)('keeps raw results and states, and prunes what is past retention', async () => {
    const [a] = await pair();
    await a.monitoring.insertResults([
      { monitor: 'shop', vantage: 'server', at: T, ok: false, timings: { totalMs: 5000 }, error: 'timeout' },
      { monitor: 'shop', vantage: 'agent:web1', at: T + 1, ok: true, timings: { totalMs: 2 }, inside: true },
      { monitor: 'shop', vantage: 'server', at: T - 40 * 86_400_000, ok: true, timings: { totalMs: 1 } },
    ]);
    const rs = await a.monitoring.listResults('shop');
    expect(rs.map((r) => r.vantage)).toEqual(['agent:web1', 'server', 'server']);
    expect(rs[0]).toMatchObject({ inside: true, ok: true });
    expect(rs[1]).toMatchObject({ ok: false, error: 'timeout' });
    await a.monitoring.saveStates([
      {
        monitor: 'shop',
        state: 'DOWN',
        since: 'x',
        updatedAt: 'y',
        reason: 'r',
        vantages: { server: { state: 'down' } },
      },
    ]);
    await a.monitoring.saveStates([
      { monitor: 'shop', state: 'UP', since: 'x2', updatedAt: 'y2', reason: 'r2', vantages: {} },
    ]);
    expect(await a.monitoring.loadStates()).toEqual([
      { monitor: 'shop', state: 'UP', since: 'x2', updatedAt: 'y2', reason: 'r2', vantages: {} },
    ]);
    expect(await a.monitoring.prune(T)).toBe(1);
    expect(await a.monitoring.listResults('shop')).toHaveLength(2);
  });

  it.skipIf(skip)('gives each monitor to one replica, shares them, and hands them over when one stops', async () => {
    const [a, b] = await pair();
    const monitors = Array.from({ length: 10 }, (_, i) => `m${i}`);
    const ttl = 15_000;
    const a1 = await a.monitoring.acquireLeases('a', monitors, ttl, T);
    expect(a1.size).toBe(10);
    // b joins: nothing is free yet, so it holds nothing; a gives back its surplus on its next renewal
    const b1 = await b.monitoring.acquireLeases('b', monitors, ttl, T + 1000);
    expect(b1.size).toBe(0);
    const a2 = await a.monitoring.acquireLeases('a', monitors, ttl, T + 5000);
    expect(a2.size).toBe(5);
    const b2 = await b.monitoring.acquireLeases('b', monitors, ttl, T + 6000);
    expect(b2.size).toBe(5);
    expect([...a2].filter((m) => b2.has(m))).toEqual([]);
    // a dies (no renewal): once its leases expire and its heartbeat is old, b takes everything
    const b3 = await b.monitoring.acquireLeases('b', monitors, ttl, T + 5000 + ttl + 1);
    expect(b3.size).toBe(10);
    // a comes back and cannot take b's live leases
    const a3 = await a.monitoring.acquireLeases('a', monitors, ttl, T + 5000 + ttl + 2);
    expect(a3.size).toBe(0);
    await b.monitoring.releaseLeases('b');
    const a4 = await a.monitoring.acquireLeases('a', monitors, ttl, T + 5000 + ttl + 3);
    expect(a4.size).toBe(10);
  });

  it.skipIf(skip)('hands results to the holder through the inbox, deleted with the states they changed', async () => {
    const [a, b] = await pair();
    expect((await a.monitoring.acquireLeases('a', ['m1', 'm2'], 15_000, T)).size).toBe(2);
    // b received results for a's monitors: durable once enqueue resolves
    await b.monitoring.enqueue([
      { monitor: 'm2', vantage: 'probe:eu', at: T + 2, ok: false, timings: { totalMs: 500 }, error: 'timeout' },
      { monitor: 'm1', vantage: 'probe:eu', at: T + 1, ok: true, timings: { totalMs: 3 } },
      { monitor: 'gone', vantage: 'probe:eu', at: T + 3, ok: true, timings: { totalMs: 3 } },
    ]);
    // only the holder of a live lease sees them, oldest first; nobody holds 'gone'
    expect(await b.monitoring.takeInbox('b', T + 10)).toEqual([]);
    const got = await a.monitoring.takeInbox('a', T + 10);
    expect(got.map((e) => [e.result.monitor, e.result.vantage, e.result.error])).toEqual([
      ['m2', 'probe:eu', 'timeout'],
      ['m1', 'probe:eu', undefined],
    ]);
    // an expired lease hands nothing out (the next holder will)
    expect(await a.monitoring.takeInbox('a', T + 15_001)).toEqual([]);
    // the holder saves the states and deletes what it applied in one transaction
    const state = {
      monitor: 'm2',
      state: 'DOWN',
      since: '2026-12-03T10:00:00.002Z',
      updatedAt: '2026-12-03T10:00:01.000Z',
      reason: 'down',
      vantages: { 'probe:eu': { state: 'down' } },
      diagnosis: { cause: 'firewall', summary: 'dropped' },
    };
    await a.monitoring.saveStates([state], [got[0]?.id as number]);
    expect((await a.monitoring.takeInbox('a', T + 10)).map((e) => e.result.monitor)).toEqual(['m1']);
    // what the other replicas read: only states written since a time, or of given monitors
    await a.monitoring.saveStates([{ ...state, monitor: 'm1', updatedAt: '2026-12-03T09:00:00.000Z' }]);
    expect(await b.monitoring.loadStates({ updatedSince: '2026-12-03T10:00:00.000Z' })).toEqual([state]);
    expect((await b.monitoring.loadStates({ monitors: ['m1'] })).map((s) => s.monitor)).toEqual(['m1']);
    await a.monitoring.deleteStates(['m1']);
    expect(await a.monitoring.takeInbox('a', T + 10)).toEqual([]);
  });
});
