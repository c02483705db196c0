/**
 * Alerting's part of the store (src/store/alert-store.ts) on a real SQLite file and a real PostgreSQL database:
 * alerts keep their start while they fire, groups are born with their route's group_wait, a batch of events is
 * applied once however many replicas read it, a flush and its notifications commit together (or not at all), and
 * two replicas never flush one group twice.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { flush, notificationKey, placements } from '../../src/alerting/group.js';
import { buildRoute, matchRoutes } from '../../src/alerting/route.js';
import type { AlertChange } from '../../src/alerting/sources.js';
import type { OutboxDraft } from '../../src/alerting/types.js';
import type { StoredGroup } from '../../src/store/alert-store.js';
import { IN_CI, pgUnavailable, storePair } from './pg.js';

const pgProblem = await pgUnavailable();
const T = Date.parse('2026-12-03T10:00:00.000Z');
const route = buildRoute({ receiver: 'pager', groupBy: ['service'], groupWaitMs: 500, groupIntervalMs: 30_000 });
const place = (labels: Record<string, string>) => placements(matchRoutes(route, labels), labels);
const fire = (host: string, service: string, atMs: number): AlertChange => ({
  op: 'fire',
  atMs,
  alert: { labels: { alertname: 'MonitorDown', service, host }, annotations: { summary: `${host} down` }, source: 't' },
});
const resolve = (host: string, service: string, atMs: number): AlertChange => ({
  ...fire(host, service, atMs),
  op: 'resolve',
});
const decide = (nowMs: number) => (g: StoredGroup, alerts: readonly import('../../src/alerting/types.js').Alert[]) => {
  const result = flush(g, alerts, { nowMs, route, mute: () => null, externalURL: 'http://r.test' });
  const drafts: OutboxDraft[] = result.notification
    ? [
        {
          key: notificationKey(g.key, g.createdAtMs, g.receiver, g.seq + 1),
          target: { kind: 'receiver', receiver: g.receiver },
          notification: result.notification,
          createdAt: new Date(nowMs).toISOString(),
        },
      ]
    : [];
  return { result, drafts };
};

describe.each(['sqlite', 'postgres'] as const)('alert store on %s', (backend) => {
  const skip = backend === 'postgres' && pgProblem !== undefined && !IN_CI;
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  const pair = () => storePair(backend, cleanups, 'rampart-alertstore-');

  it.skipIf(skip)('keeps an alert’s start while it fires, groups it, and resolves it', async () => {
    const [s] = await pair();
    await s.alerting.apply([fire('web1', 'shop', T)], place, T);
    await s.alerting.apply(
      [
        {
          ...fire('web1', 'shop', T + 5000),
          alert: { ...fire('web1', 'shop', 0).alert, annotations: { diagnosis: 'firewall' } },
        },
      ],
      place,
      T + 5000,
    );
    const [a] = await s.alerting.list();
    expect(a).toMatchObject({ state: 'firing', startsAt: new Date(T).toISOString(), endsAt: null });
    expect(a?.annotations).toEqual({ summary: 'web1 down', diagnosis: 'firewall' });
    const [g] = await s.alerting.groups();
    expect(g).toMatchObject({ receiver: 'pager', groupLabels: { service: 'shop' }, nextFlushMs: T + 500, seq: 0 });
    expect(await s.alerting.nextFlushAt()).toBe(T + 500);
    await s.alerting.apply([resolve('web1', 'shop', T + 9000)], place, T + 9000);
    expect((await s.alerting.list())[0]).toMatchObject({ state: 'resolved', endsAt: new Date(T + 9000).toISOString() });
    // A resolve of an alert that never fired changes nothing.
    expect(await s.alerting.apply([resolve('web9', 'shop', T)], place, T)).toEqual([]);
  });

  // Replicas share a PostgreSQL database; SQLite is the single-node store (one server per file).
  it.skipIf(skip || backend === 'sqlite')(
    'applies a batch of events once, whichever replica reads it first',
    async () => {
      const [a, b] = await pair();
      const batch = [fire('web1', 'shop', T), fire('web2', 'shop', T)];
      const [ra, rb] = await Promise.all([
        a.alerting.apply(batch, place, T, { name: 'monitor-events', lastId: 7 }),
        b.alerting.apply(batch, place, T, { name: 'monitor-events', lastId: 7 }),
      ]);
      expect([ra.length, rb.length].sort()).toEqual([0, 2]);
      expect(await a.alerting.cursor('monitor-events')).toBe(7);
    },
  );

  it.skipIf(skip)('writes a flush and its notifications together, or neither', async () => {
    const [s] = await pair();
    await s.alerting.apply([fire('web1', 'shop', T), fire('web2', 'shop', T)], place, T);
    const failing = async () => {
      throw new Error('outbox unavailable');
    };
    await expect(s.alerting.flushDue(T + 500, decide(T + 500), failing)).rejects.toThrow(/outbox unavailable/);
    expect((await s.alerting.groups())[0]).toMatchObject({ seq: 0, nextFlushMs: T + 500 });
    const sent: OutboxDraft[] = [];
    expect(await s.alerting.flushDue(T + 500, decide(T + 500), async (_trx, d) => void sent.push(...d))).toBe(1);
    expect(sent.map((d) => [d.key, d.notification.alerts.length])).toEqual([
      [`pager|${(await s.alerting.groups())[0]?.key}|${T}|1`, 2],
    ]);
    expect((await s.alerting.groups())[0]).toMatchObject({ seq: 1, nextFlushMs: T + 30_500 });
    // Resolved and announced: the group is finished.
    await s.alerting.apply([resolve('web1', 'shop', T + 1000), resolve('web2', 'shop', T + 1000)], place, T + 1000);
    await s.alerting.flushDue(T + 30_500, decide(T + 30_500), async (_trx, d) => void sent.push(...d));
    expect(sent[1]?.notification.status).toBe('resolved');
    expect(await s.alerting.groups()).toEqual([]);
    expect(await s.alerting.nextFlushAt()).toBeNull();
  });

  // Replicas share a PostgreSQL database; SQLite is the single-node store (one server per file).
  it.skipIf(skip || backend === 'sqlite')('two replicas flushing at once flush every group exactly once', async () => {
    const [a, b] = await pair();
    const changes = Array.from({ length: 40 }, (_, i) => fire('web1', `svc${i}`, T));
    await a.alerting.apply(changes, place, T);
    const sent: string[] = [];
    const enqueue = async (_trx: unknown, d: readonly OutboxDraft[]) => void sent.push(...d.map((x) => x.key));
    const [na, nb] = await Promise.all([
      a.alerting.flushDue(T + 500, decide(T + 500), enqueue),
      b.alerting.flushDue(T + 500, decide(T + 500), enqueue),
    ]);
    expect(na + nb).toBe(40);
    expect(new Set(sent).size).toBe(40);
    expect(sent).toHaveLength(40);
  });

  it.skipIf(skip)('keeps silences, expires them once, and marks the first match', async () => {
    const [s] = await pair();
    const silence = {
      id: 'sil-1',
      matchers: [{ name: 'service', op: '=' as const, value: 'shop' }],
      startsAt: new Date(T).toISOString(),
      endsAt: new Date(T + 3_600_000).toISOString(),
      createdBy: 'alice',
      comment: 'deploy',
      untilResolved: true,
      matchedAt: null,
      expiredAt: null,
    };
    await s.alerting.addSilence(silence);
    await s.alerting.markSilencesMatched(['sil-1'], new Date(T + 10).toISOString());
    await s.alerting.markSilencesMatched(['sil-1'], new Date(T + 20).toISOString());
    expect(await s.alerting.silences()).toEqual([{ ...silence, matchedAt: new Date(T + 10).toISOString() }]);
    expect(await s.alerting.expireSilence('sil-1', new Date(T + 30).toISOString())).toBe(true);
    expect(await s.alerting.expireSilence('sil-1', new Date(T + 40).toISOString())).toBe(false);
    expect(await s.alerting.expireSilence('nope', new Date(T + 40).toISOString())).toBe(false);
  });

  it.skipIf(skip)('acknowledges firing alerts only', async () => {
    const [s] = await pair();
    const [a] = await s.alerting.apply([fire('web1', 'shop', T)], place, T);
    const acked = await s.alerting.ack(a?.fingerprint ?? '', 'bob', T + 60_000);
    expect(acked?.ack).toEqual({ by: 'bob', at: new Date(T + 60_000).toISOString() });
    await s.alerting.apply([resolve('web1', 'shop', T + 70_000)], place, T + 70_000);
    expect(await s.alerting.ack(a?.fingerprint ?? '', 'bob', T + 80_000)).toBeNull();
    // Firing again is a new alert: the old acknowledgement does not carry over.
    await s.alerting.apply([fire('web1', 'shop', T + 90_000)], place, T + 90_000);
    expect((await s.alerting.list())[0]?.ack).toBeUndefined();
  });
});
