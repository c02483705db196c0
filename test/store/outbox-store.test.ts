/**
 * The alert outbox (src/store/outbox-store.ts) on a real SQLite file and a real PostgreSQL database: one row per
 * (key, channel) stored once, leases that never give a row to two replicas, retries and giving up, per-group order,
 * and the queue figures /metrics shows.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GroupNotification, NotifyTarget, OutboxDraft } from '../../src/alerting/types.js';
import { enqueueOutbox, type OutboxExpand } from '../../src/store/outbox-store.js';
import { IN_CI, pgUnavailable, storePair } from './pg.js';

const pgProblem = await pgUnavailable();
const T = Date.parse('2026-12-03T10:00:00.000Z');

function notification(groupKey: string, status: 'firing' | 'resolved' = 'firing'): GroupNotification {
  return {
    receiver: 'ops',
    groupKey,
    status,
    groupLabels: { alertname: 'MonitorDown' },
    commonLabels: { alertname: 'MonitorDown', service: 'shop' },
    commonAnnotations: {},
    alerts: [],
    truncatedAlerts: 0,
    externalURL: 'https://rampart.example.com',
  };
}

function draft(key: string, groupKey = 'g1', at = T, target: NotifyTarget = { kind: 'receiver', receiver: 'ops' }) {
  return { key, target, notification: notification(groupKey), createdAt: new Date(at).toISOString() } as OutboxDraft;
}

/** `ops` has a webhook and an e-mail; a user has an e-mail. */
const expand: OutboxExpand = (t) =>
  t.kind === 'receiver'
    ? [
        { channel: 'webhook/0', receiver: t.receiver },
        { channel: 'email/0', receiver: t.receiver },
      ]
    : [{ channel: 'email', receiver: `@${t.user}` }];

describe.each(['sqlite', 'postgres'] as const)('alert outbox on %s', (backend) => {
  const skip = backend === 'postgres' && pgProblem !== undefined && !IN_CI;
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  const pair = () => storePair(backend, cleanups, 'rampart-outbox-');

  it.skipIf(skip)('stores one row per channel, the same key once, inside the caller’s transaction', async () => {
    const [a, b] = await pair();
    expect(await a.outbox.enqueue([draft('k1'), draft('k2', 'g2', T, { kind: 'user', user: 'alice' })], expand)).toBe(
      3,
    );
    // enqueued again (another replica flushing the same group): nothing new
    await b.outbox.enqueue([draft('k1')], expand);
    const rows = await b.outbox.rows();
    expect(rows.map((r) => `${r.key} ${r.channel} ${r.receiver} ${r.state}`)).toEqual([
      'k1 webhook/0 ops pending',
      'k1 email/0 ops pending',
      'k2 email @alice pending',
    ]);
    expect(rows[0]?.notification.groupKey).toBe('g1');
    expect(rows[2]?.target).toEqual({ kind: 'user', user: 'alice' });

    // a transaction that rolls back leaves nothing
    const kysely = (a as unknown as { db: import('kysely').Kysely<import('../../src/store/schema.js').DB> }).db;
    await expect(
      kysely.transaction().execute(async (trx) => {
        await enqueueOutbox(a.kind, trx, [draft('k3')], expand);
        throw new Error('the alert state change failed');
      }),
    ).rejects.toThrow(/state change failed/);
    expect((await a.outbox.rows({ key: 'k3' })).length).toBe(0);
  });

  it.skipIf(skip)('leases each due row to one replica, in group order, and retries or gives up', async () => {
    const [a, b] = await pair();
    await a.outbox.enqueue([draft('f1', 'g1', T), draft('r1', 'g1', T + 1), draft('x1', 'g2', T + 2)], expand);
    const [ca, cb] = await Promise.all([
      a.outbox.claim('A', T + 10, 60_000, 10),
      b.outbox.claim('B', T + 10, 60_000, 10),
    ]);
    const claimed = [...ca, ...cb].map((r) => `${r.key} ${r.channel}`).sort();
    // r1 waits for f1 (same receiver, channel and group): firing is never overtaken by its resolution
    expect(claimed).toEqual(['f1 email/0', 'f1 webhook/0', 'x1 email/0', 'x1 webhook/0']);
    expect(new Set(claimed).size).toBe(claimed.length);
    // leased rows are not claimed again while the lease lives
    expect(await a.outbox.claim('A', T + 20, 60_000, 10)).toEqual([]);

    const mine = (k: string, ch: string) => {
      const r = [...ca, ...cb].find((x) => x.key === k && x.channel === ch);
      if (!r) throw new Error(`${k} ${ch} not claimed`);
      return { r, holder: ca.includes(r) ? 'A' : 'B' };
    };
    const w = mine('f1', 'webhook/0');
    const e = mine('f1', 'email/0');
    // only the holder completes
    expect(await a.outbox.complete(w.r.id, w.holder === 'A' ? 'B' : 'A', T + 30)).toBe(false);
    expect(await a.outbox.complete(e.r.id, e.holder, T + 30)).toBe(true);
    expect(await a.outbox.fail(w.r.id, w.holder, 'HTTP 503', T + 5_000, T + 30)).toBe(true);
    // the e-mail of r1 may go now; its webhook waits behind f1's retry
    const next = await b.outbox.claim('B', T + 40, 60_000, 10);
    expect(next.map((r) => `${r.key} ${r.channel}`)).toEqual(['r1 email/0']);
    expect(await b.outbox.complete((next[0] as { id: number }).id, 'B', T + 50)).toBe(true);
    // at the retry time f1's webhook is due again, attempt count kept
    const retry = await a.outbox.claim('A', T + 5_000, 60_000, 10);
    expect(retry.map((r) => `${r.key} ${r.channel} ${r.attempts}`)).toEqual(['f1 webhook/0 1']);
    expect(await a.outbox.fail((retry[0] as { id: number }).id, 'A', 'HTTP 503 again', null, T + 5_010)).toBe(true);
    const failed = await a.outbox.rows({ state: 'failed' });
    expect(failed.map((r) => `${r.key} ${r.channel} ${r.attempts} ${r.lastError}`)).toEqual([
      'f1 webhook/0 2 HTTP 503 again',
    ]);
    // a given-up row no longer holds the group back
    expect((await b.outbox.claim('B', T + 5_020, 60_000, 10)).map((r) => `${r.key} ${r.channel}`)).toEqual([
      'r1 webhook/0',
    ]);
  });

  it.skipIf(skip)('gives an expired lease to another replica (the holder was killed mid-send)', async () => {
    const [a, b] = await pair();
    await a.outbox.enqueue([draft('k1')], () => [{ channel: 'webhook/0', receiver: 'ops' }]);
    const [row] = await a.outbox.claim('A', T, 1_000, 10);
    expect(row).toBeDefined();
    expect(await b.outbox.claim('B', T + 999, 1_000, 10)).toEqual([]);
    const taken = await b.outbox.claim('B', T + 1_001, 1_000, 10);
    expect(taken.map((r) => r.key)).toEqual(['k1']);
    // the old holder's late completion is refused: B owns it now
    expect(await a.outbox.complete((row as { id: number }).id, 'A', T + 1_002)).toBe(false);
    expect(await a.outbox.completeMany([(row as { id: number }).id], 'A', T + 1_002)).toEqual([]);
    expect(await b.outbox.completeMany([(taken[0] as { id: number }).id], 'B', T + 1_003)).toEqual([
      (taken[0] as { id: number }).id,
    ]);
    expect((await b.outbox.rows()).map((r) => `${r.state} ${r.attempts}`)).toEqual(['sent 1']);
  });

  it.skipIf(skip)('reports depth and oldest pending age per receiver, and prunes finished rows', async () => {
    const [a] = await pair();
    await a.outbox.enqueue(
      [draft('k1', 'g1', T), draft('k2', 'g2', T + 1000), draft('u1', 'g3', T + 500, { kind: 'user', user: 'al' })],
      expand,
    );
    const [first] = await a.outbox.claim('A', T + 2000, 60_000, 1);
    await a.outbox.complete((first as { id: number }).id, 'A', T + 2000);
    expect(await a.outbox.stats(T + 10_000)).toEqual([
      { receiver: '@al', pending: 1, oldestPendingMs: 9_500, failed: 0, sent: 0 },
      { receiver: 'ops', pending: 3, oldestPendingMs: 10_000, failed: 0, sent: 1 },
    ]);
    expect(await a.outbox.prune(new Date(T + 3000).toISOString())).toBe(1);
    expect(await a.outbox.prune(new Date(T + 3000).toISOString())).toBe(0);
  });
});
