/**
 * Dashboard sessions in the store (src/store/session-store.ts) on a real SQLite file and a real PostgreSQL database:
 * a session is found by the hash of its id from another replica, ends once, and old sessions are pruned.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { IN_CI, pgUnavailable, storePair } from './pg.js';

const pgProblem = await pgUnavailable();

describe.each(['sqlite', 'postgres'] as const)('session store on %s', (backend) => {
  const skip = backend === 'postgres' && pgProblem !== undefined && !IN_CI;
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const session = (n: number, expiresAt: string) => ({
    idHash: n.toString(16).padStart(64, '0'),
    tokenId: 'deadbeef',
    createdAt: '2026-12-04T10:00:00.000Z',
    expiresAt,
    csrfSecret: `secret-${n}`,
  });

  it.skipIf(skip)('keeps a session another replica reads, ends it once, prunes old ones', async () => {
    const [a, b] = await storePair(backend, cleanups, 'rampart-sessions-');
    const s = await a.sessions.create(session(1, '2026-12-04T22:00:00.000Z'));
    expect(s.endedAt).toBeNull();
    expect(await b.sessions.get(s.idHash)).toEqual(s);
    expect(await b.sessions.get('f'.repeat(64))).toBeUndefined();
    const ended = await b.sessions.end(s.idHash, '2026-12-04T11:00:00.000Z');
    expect(ended?.endedAt).toBe('2026-12-04T11:00:00.000Z');
    // a second sign-out changes nothing: the first end time stays
    expect(await a.sessions.end(s.idHash, '2026-12-04T12:00:00.000Z')).toBeUndefined();
    expect((await a.sessions.get(s.idHash))?.endedAt).toBe('2026-12-04T11:00:00.000Z');
    await a.sessions.create(session(2, '2026-12-04T13:00:00.000Z'));
    const live = await a.sessions.create(session(3, '2026-12-05T13:00:00.000Z'));
    // ended at 11:00 and expired at 13:00 are older than 14:00; the one expiring tomorrow stays
    expect(await a.sessions.prune('2026-12-04T14:00:00.000Z')).toBe(2);
    expect(await b.sessions.get(live.idHash)).toEqual(live);
    expect(await b.sessions.get(s.idHash)).toBeUndefined();
  });
});
