/**
 * Incidents' part of the store (src/store/incident-store.ts) on a real SQLite file and a real PostgreSQL database:
 * an incident and its first entry are stored together, one open incident per alert group however many replicas
 * declare it, updates are optimistic, stars reach own and assembled entries, and postmortems keep every version.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { acknowledge, declare, resolve } from '../../src/incident/lifecycle.js';
import type { IncidentDraft } from '../../src/incident/types.js';
import { IN_CI, pgUnavailable, storePair } from './pg.js';

const pgProblem = await pgUnavailable();
const T = Date.parse('2026-12-04T10:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

describe.each(['sqlite', 'postgres'] as const)('incident store on %s', (backend) => {
  const skip = backend === 'postgres' && pgProblem !== undefined && !IN_CI;
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const pair = () => storePair(backend, cleanups, 'rampart-incidentstore-');
  const byHand = declare({ title: 'Shop down', severity: 'SEV1', services: ['shop'], hosts: ['web1'] }, 'alice', T);

  it.skipIf(skip)('stores an incident with its first entry and reads it back as it was', async () => {
    const [s] = await pair();
    const stored = await s.incidents.insert(byHand.draft, byHand.entry, T);
    expect(stored?.incident).toMatchObject({
      id: 1,
      version: 1,
      title: 'Shop down',
      services: ['shop'],
      hosts: ['web1'],
    });
    expect(await s.incidents.get(1)).toEqual(stored?.incident);
    expect(await s.incidents.entries(1)).toEqual([{ ...byHand.entry, id: 1, incidentId: 1, starred: false }]);
    expect(await s.incidents.list({ status: 'open' })).toHaveLength(1);
    expect(await s.incidents.list({ status: 'resolved' })).toHaveLength(0);
    expect(await s.incidents.get(2)).toBeUndefined();
  });

  it.skipIf(skip)('keeps one open incident per alert group when two replicas declare it at once', async () => {
    const [a, b] = await pair();
    const draft: IncidentDraft = { ...byHand.draft, groupKey: 'root:{service="shop"}', declaredBy: 'rampart' };
    // Two replicas run on PostgreSQL; one process's two SQLite connections would wait on each other's lock
    // synchronously, so there the second declaration comes after the first (the unique index decides either way).
    const results =
      backend === 'postgres'
        ? await Promise.all([a.incidents.insert(draft, byHand.entry, T), b.incidents.insert(draft, byHand.entry, T)])
        : [await a.incidents.insert(draft, byHand.entry, T), await b.incidents.insert(draft, byHand.entry, T)];
    expect(results.filter((r) => r !== null)).toHaveLength(1);
    expect(await a.incidents.list()).toHaveLength(1);
    const open = await b.incidents.latestForGroup('root:{service="shop"}');
    // Once resolved, the group may open another.
    await b.incidents.update(resolve(open!, 'bob', T + 60_000).incident, null, T + 60_000);
    const second = await a.incidents.insert(draft, byHand.entry, T + 120_000);
    expect(second).not.toBeNull();
    const latest = await a.incidents.latestForGroup('root:{service="shop"}');
    expect(latest?.id).toBe(second?.incident.id);
    expect(latest?.id).not.toBe(open?.id);
  });

  it.skipIf(skip)('refuses an update from a stale read with a conflict', async () => {
    const [a, b] = await pair();
    const stored = await a.incidents.insert(byHand.draft, byHand.entry, T);
    const inc = stored!.incident;
    const acked = acknowledge(inc, 'bob', T + 1000);
    const done = await a.incidents.update(acked.incident, acked.entry, T + 1000);
    expect(done.incident).toMatchObject({ version: 2, acknowledgedAt: iso(T + 1000), commander: 'bob' });
    await expect(b.incidents.update(resolve(inc, 'carol', T + 2000).incident, null, T + 2000)).rejects.toMatchObject({
      code: 'RAMPART_ERR_CONFLICT',
    });
    expect((await b.incidents.get(inc.id))?.status).toBe('investigating');
    expect((await b.incidents.entries(inc.id)).map((e) => e.kind)).toEqual(['incident.declared', 'incident.ack']);
  });

  it.skipIf(skip)('stars own entries by id and assembled entries by key', async () => {
    const [s] = await pair();
    const { incident } = (await s.incidents.insert(byHand.draft, byHand.entry, T))!;
    const n = await s.incidents.addEntry(incident.id, {
      kind: 'incident.note',
      at: iso(T),
      by: 'bob',
      text: 'hm',
      data: {},
    });
    expect(await s.incidents.star(incident.id, `entry:${n.id}`, true, 'bob', iso(T))).toBe(true);
    expect(await s.incidents.star(incident.id, 'entry:999', true, 'bob', iso(T))).toBe(false);
    expect(await s.incidents.star(incident.id, 'event:17', true, 'bob', iso(T))).toBe(true);
    expect(await s.incidents.star(incident.id, 'event:17', true, 'bob', iso(T))).toBe(true);
    expect(await s.incidents.star(incident.id, 'event:18', true, 'bob', iso(T))).toBe(true);
    await s.incidents.star(incident.id, 'event:18', false, 'bob', iso(T));
    expect([...(await s.incidents.stars(incident.id))]).toEqual(['event:17']);
    expect((await s.incidents.entries(incident.id)).find((e) => e.id === n.id)?.starred).toBe(true);
  });

  it.skipIf(skip)('writes a keyed entry once when two replicas race to write it (the suspected cause)', async () => {
    const [a, b] = await pair();
    const { incident } = (await a.incidents.insert(byHand.draft, byHand.entry, T))!;
    const suspect = (by: string) => ({
      kind: 'incident.suspect' as const,
      at: iso(T + 5000),
      by,
      text: 'Suspected cause: an out-of-band edit of the firewall (drift) on web1',
      data: { candidate: 'drift:7', by },
    });
    // Both replicas have read the entries (no suspect yet) and write at once, three times each: one write lands.
    const tries = [a, b, a, b, a, b].map((s, i) =>
      s.incidents.addEntryOnce(incident.id, 'suspect:drift:7', suspect(`replica-${i % 2}`)),
    );
    const written = (await Promise.all(tries)).filter((e) => e !== null);
    expect(written).toHaveLength(1);
    const suspects = (await b.incidents.entries(incident.id)).filter((e) => e.kind === 'incident.suspect');
    expect(suspects).toEqual([
      { ...suspect(written[0]!.by), id: written[0]!.id, incidentId: incident.id, starred: false },
    ]);
    // Another key (a different top suspect) is a new entry; unkeyed entries are not limited.
    expect(await b.incidents.addEntryOnce(incident.id, 'suspect:change:3', suspect('replica-1'))).not.toBeNull();
    for (const s of [a, b]) await s.incidents.addEntry(incident.id, { ...suspect('bob'), kind: 'incident.note' });
    const kinds = (await a.incidents.entries(incident.id)).map((e) => e.kind);
    expect(kinds.filter((k) => k === 'incident.suspect')).toHaveLength(2);
    expect(kinds.filter((k) => k === 'incident.note')).toHaveLength(2);
    // The key is per incident: the same key on another incident is written.
    const other = (await b.incidents.insert(byHand.draft, byHand.entry, T))!;
    expect(await a.incidents.addEntryOnce(other.incident.id, 'suspect:drift:7', suspect('replica-0'))).not.toBeNull();
  });

  it.skipIf(skip)('keeps every version of a postmortem and refuses an edit of an old one', async () => {
    const [s] = await pair();
    const { incident } = (await s.incidents.insert(byHand.draft, byHand.entry, T))!;
    const v1 = await s.incidents.savePostmortem({
      incidentId: incident.id,
      markdown: '# a\n',
      json: { a: 1 },
      author: 'rampart',
      createdAt: iso(T),
    });
    const v2 = await s.incidents.savePostmortem(
      { incidentId: incident.id, markdown: '# b\n', json: { b: 2 }, author: 'alice', createdAt: iso(T + 1) },
      1,
    );
    expect([v1.version, v2.version]).toEqual([1, 2]);
    await expect(
      s.incidents.savePostmortem(
        { incidentId: incident.id, markdown: '# c\n', json: {}, author: 'bob', createdAt: iso(T + 2) },
        1,
      ),
    ).rejects.toMatchObject({ code: 'RAMPART_ERR_CONFLICT' });
    expect(await s.incidents.postmortem(incident.id)).toMatchObject({
      version: 2,
      markdown: '# b\n',
      json: { b: 2 },
      author: 'alice',
    });
    expect((await s.incidents.postmortem(incident.id, 1))?.markdown).toBe('# a\n');
    expect((await s.incidents.postmortemVersions(incident.id)).map((v) => [v.version, v.author])).toEqual([
      [1, 'rampart'],
      [2, 'alice'],
    ]);
  });

  it.skipIf(skip)(
    'reads a timeline’s sources between two times: events, notifications, change and drift audit',
    async () => {
      const [s] = await pair();
      await s.monitoring.insertEvents([
        { at: iso(T - 3_600_000), kind: 'monitor.state', subject: 'monitor:m', data: { to: 'down' } },
        { at: iso(T + 1000), kind: 'monitor.state', subject: 'monitor:m', data: { to: 'down' } },
        { at: iso(T + 30 * 86_400_000), kind: 'monitor.state', subject: 'monitor:m', data: { to: 'up' } },
      ]);
      const notification = {
        receiver: 'ops',
        groupKey: 'g1',
        status: 'firing' as const,
        groupLabels: {},
        commonLabels: {},
        commonAnnotations: {},
        alerts: [],
        truncatedAlerts: 0,
        externalURL: 'http://r.test',
        escalation: { policy: 'web', step: 0, round: 0 },
      };
      await s.outbox.enqueue(
        [{ key: 'k1', target: { kind: 'receiver', receiver: 'ops' }, notification, createdAt: iso(T + 2000) }],
        (t) => [{ channel: 'webhook/0', receiver: t.kind === 'receiver' ? t.receiver : t.user }],
      );
      const actor = { name: 'alice', role: 'operator' as const, from: 'test' };
      await s.write(actor, async (w) => {
        await w.audit({ action: 'host.drift', target: 'host:web1', after: { inSync: false, summary: 'policy drop' } });
        await w.audit({ action: 'token.create', target: 'token:x' });
      });
      const now = new Date().toISOString();
      const src = await s.incidents.timelineSources(iso(T), now);
      expect(src.events.map((e) => e.data)).toEqual([{ to: 'down' }]);
      expect(src.notifications).toMatchObject([
        { receiver: 'ops', channel: 'webhook/0', groupKey: 'g1', state: 'pending', escalation: { policy: 'web' } },
      ]);
      // The audit entries are written at the wall clock's time (after T): the drift, not the token.
      expect(src.audit.map((a) => [a.action, a.target, a.actor])).toEqual([['host.drift', 'host:web1', 'alice']]);
    },
  );
});
