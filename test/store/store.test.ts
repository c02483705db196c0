/**
 * One store suite, run against a real SQLite file and a real PostgreSQL database (created and dropped per run).
 * Tampering is done with raw SQL through a separate connection, as an attacker with database access would.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { entryHash, toJsonLines } from '../../src/store/audit-chain.js';
import { openStore, redactUrl } from '../../src/store/open.js';
import { type Actor, type ChangeRecord, DRIFT_LIVE_MAX_BYTES, type Store } from '../../src/store/types.js';
import { createTestDatabase, IN_CI, pgUnavailable, type TestDatabase } from './pg.js';

const BACKENDS = ['sqlite', 'postgres'] as const;
type Backend = (typeof BACKENDS)[number];

const alice: Actor = { name: 'alice', role: 'operator', from: '127.0.0.1' };
const bob: Actor = { name: 'bob', role: 'approver', from: '10.0.0.2' };
const T0 = '2026-01-01T00:00:00.000Z';

const pgProblem = await pgUnavailable();

/** A fresh empty database of one backend: how to open a store on it and how to tamper with it directly. */
interface Fresh {
  open(): Promise<Store>;
  raw(statement: string, params?: readonly unknown[]): Promise<Record<string, unknown>[]>;
}

function newChange(over: Partial<Omit<ChangeRecord, 'state'>> = {}) {
  return {
    target: { kind: 'host' as const, name: 'web1' },
    hosts: ['web1'],
    author: 'alice',
    reason: 'open 443',
    ticket: 'OPS-1' as string | null,
    format: 'nft-text' as const,
    ruleset: 'table inet filter {}\n',
    createdAt: T0,
    updatedAt: T0,
    ...over,
  };
}

describe.each(BACKENDS)('store on %s', (backend: Backend) => {
  const skip = backend === 'postgres' && pgProblem !== undefined && !IN_CI;
  if (skip) console.warn(`store suite on postgres skipped: ${pgProblem}`);

  const cleanups: (() => Promise<void> | void)[] = [];
  const stores: Store[] = [];

  beforeAll(() => {
    if (backend === 'postgres' && pgProblem !== undefined && IN_CI) {
      throw new Error(`CI=true and the PostgreSQL half of the store suite cannot run: ${pgProblem}`);
    }
  });

  // Each test's stores are closed and its databases dropped right after it, also when it failed.
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close().catch(() => {});
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function fresh(): Promise<Fresh> {
    if (backend === 'sqlite') {
      const dir = mkdtempSync(join(tmpdir(), 'rampart-store-'));
      const dataDir = join(dir, 'data');
      const file = join(dataDir, 'rampart.db');
      let raw: Database.Database | undefined;
      cleanups.push(() => {
        raw?.close();
        rmSync(dir, { recursive: true, force: true });
      });
      return {
        async open() {
          const s = await openStore({ dataDir });
          stores.push(s);
          return s;
        },
        async raw(statement, params = []) {
          raw ??= new Database(file);
          const stmt = raw.prepare(statement.replace(/\$\d+/g, '?'));
          if (stmt.reader) return stmt.all(...params) as Record<string, unknown>[];
          stmt.run(...params);
          return [];
        },
      };
    }
    const db: TestDatabase = await createTestDatabase();
    let client: pg.Client | undefined;
    cleanups.push(async () => {
      await client?.end();
      await db.drop();
    });
    return {
      async open() {
        const s = await openStore({ db: db.url });
        stores.push(s);
        return s;
      },
      async raw(statement, params = []) {
        if (client === undefined) {
          client = new pg.Client({ connectionString: db.url });
          await client.connect();
        }
        return (await client.query(statement, params as unknown[])).rows as Record<string, unknown>[];
      },
    };
  }

  /** A store with `n` audited writes (each proposes a change). */
  async function withEntries(n: number): Promise<{ env: Fresh; store: Store }> {
    const env = await fresh();
    const store = await env.open();
    for (let i = 1; i <= n; i++) {
      await store.write(alice, async (w) => {
        const c = await w.insertChange(newChange({ reason: `change ${i}` }));
        await w.audit({ action: 'change.propose', target: `change:${c.id}`, after: { reason: c.reason, n: i } });
      });
    }
    return { env, store };
  }

  describe.skipIf(skip)('schema', () => {
    it('migrates a new database and re-opening it runs nothing new', async () => {
      const env = await fresh();
      const first = await env.open();
      expect(first.kind).toBe(backend);
      expect(await first.schemaVersion()).toBe(13);
      await first.write(alice, async (w) => {
        await w.audit({ action: 'config.reload', target: 'config' });
      });
      await first.close();
      const again = await env.open();
      expect(await again.schemaVersion()).toBe(13);
      const applied = await env.raw('select name from kysely_migration order by name');
      expect(applied.map((r) => r.name)).toEqual([
        '0001-initial',
        '0002-agent-timeline',
        '0003-rollback-link',
        '0004-four-eyes',
        '0005-monitoring',
        '0006-replicas',
        '0007-traffic',
        '0008-alert-outbox',
        '0009-alerts',
        '0010-incidents',
        '0011-web-sessions',
        '0012-host-drift',
        '0013-incident-entry-once',
      ]);
      expect((await again.auditEntries()).length).toBe(1);
      const head = await env.raw('select last_seq from audit_head');
      expect(head.map((r) => Number(r.last_seq))).toEqual([1]);
    });
  });

  describe.skipIf(skip)('drift snapshots', () => {
    it('keeps each drifted live ruleset by host and time, the text only up to its bound', async () => {
      const store = await (await fresh()).open();
      const snap = (host: string, at: string, live: string) => ({
        host,
        at,
        desiredRevision: 3,
        format: 'nft-text',
        live,
        liveSha256: 'ab'.repeat(32),
        summary: '1 flow change against desired revision 3',
      });
      const big = 'x'.repeat(DRIFT_LIVE_MAX_BYTES + 1);
      await store.write(alice, async (w) => {
        await w.addDriftSnapshot(snap('web1', '2026-01-01T00:02:00.000Z', 'table inet filter {}\n'));
        await w.addDriftSnapshot(snap('web2', '2026-01-01T00:01:00.000Z', 'table inet f2 {}\n'));
        await w.addDriftSnapshot(snap('web1', '2026-01-01T00:09:00.000Z', big));
      });
      const all = await store.driftSnapshots({ from: T0, to: '2026-01-01T01:00:00.000Z' });
      expect(all.map((d) => [d.host, d.at])).toEqual([
        ['web2', '2026-01-01T00:01:00.000Z'],
        ['web1', '2026-01-01T00:02:00.000Z'],
        ['web1', '2026-01-01T00:09:00.000Z'],
      ]);
      expect(all[1]).toMatchObject({ desiredRevision: 3, format: 'nft-text', live: 'table inet filter {}\n' });
      // Too long: its size and hash are kept, not the text.
      expect(all[2]).toMatchObject({ live: null, liveBytes: DRIFT_LIVE_MAX_BYTES + 1 });
      const web1 = await store.driftSnapshots({ from: T0, to: '2026-01-01T00:05:00.000Z', hosts: ['web1'] });
      expect(web1.map((d) => d.at)).toEqual(['2026-01-01T00:02:00.000Z']);
      expect(await store.driftSnapshots({ from: T0, to: '2026-01-01T01:00:00.000Z', hosts: [] })).toEqual([]);
    });
  });

  describe.skipIf(skip)('tokens', () => {
    it('inserts, finds by secret hash, notes the last use and revokes', async () => {
      const store = await (await fresh()).open();
      const token = await store.write(alice, async (w) => {
        const t = await w.insertToken({
          id: 'a1b2c3d4',
          name: 'ci-pipeline',
          role: 'operator',
          secretHash: 'f'.repeat(64),
          createdAt: T0,
          createdBy: 'alice',
        });
        await w.audit({ action: 'token.create', target: `token:${t.id}`, after: { name: t.name, role: t.role } });
        return t;
      });
      expect(token).toEqual({
        id: 'a1b2c3d4',
        name: 'ci-pipeline',
        role: 'operator',
        secretHash: 'f'.repeat(64),
        createdAt: T0,
        createdBy: 'alice',
        createdByToken: null,
        revokedAt: null,
        lastUsedAt: null,
        expiresAt: null,
      });
      expect(await store.getToken('a1b2c3d4')).toEqual(token);
      // Last use is noted, and then at most once a minute.
      await store.touchToken('a1b2c3d4', '2026-01-01T00:00:00.000Z');
      expect((await store.getToken('a1b2c3d4'))?.lastUsedAt).toBe('2026-01-01T00:00:00.000Z');
      await store.touchToken('a1b2c3d4', '2026-01-01T00:00:30.000Z');
      expect((await store.getToken('a1b2c3d4'))?.lastUsedAt).toBe('2026-01-01T00:00:00.000Z');
      await store.touchToken('a1b2c3d4', '2026-01-01T00:01:00.000Z');
      expect((await store.getToken('a1b2c3d4'))?.lastUsedAt).toBe('2026-01-01T00:01:00.000Z');

      const at = '2026-02-01T00:00:00.000Z';
      const revoked = await store.write(alice, (w) => w.revokeToken('a1b2c3d4', at));
      expect(revoked?.revokedAt).toBe(at);
      const twice = await store.write(alice, (w) => w.revokeToken('a1b2c3d4', '2026-03-01T00:00:00.000Z'));
      expect(twice?.revokedAt).toBe(at);
      expect(await store.write(alice, (w) => w.revokeToken('nope', at))).toBeUndefined();
      expect((await store.getToken('a1b2c3d4'))?.revokedAt).toBe(at);
      expect((await store.listTokens()).map((t) => t.id)).toEqual(['a1b2c3d4']);
    });

    it('refuses a second token with the same secret hash and keeps nothing of that write', async () => {
      const store = await (await fresh()).open();
      const base = { name: 'x', role: 'viewer' as const, secretHash: 'a'.repeat(64), createdAt: T0, createdBy: 'root' };
      await store.write(alice, (w) => w.insertToken({ ...base, id: 'aaaa0001' }));
      await expect(
        store.write(alice, async (w) => {
          await w.audit({ action: 'token.create', target: 'token:aaaa0002' });
          return w.insertToken({ ...base, id: 'aaaa0002' });
        }),
      ).rejects.toThrow();
      expect((await store.listTokens()).map((t) => t.id)).toEqual(['aaaa0001']);
      expect(await store.auditEntries()).toEqual([]);
    });
  });

  describe.skipIf(skip)('changes', () => {
    it('inserts with increasing ids, updates with a version bump and refuses a stale version', async () => {
      const store = await (await fresh()).open();
      const a = await store.write(alice, (w) => w.insertChange(newChange()));
      const b = await store.write(alice, (w) =>
        w.insertChange(newChange({ target: { kind: 'group', name: 'web' }, hosts: ['web1', 'web2'], ticket: null })),
      );
      expect(a).toMatchObject({ state: 'proposed', version: 1, override: null, emergency: null, ticket: 'OPS-1' });
      expect(b.id).toBeGreaterThan(a.id);
      expect(b.hosts).toEqual(['web1', 'web2']);
      expect(b.ticket).toBeNull();

      const override = { by: 'root', reason: 'maintenance page', at: T0 };
      const updated = await store.write(bob, (w) =>
        w.updateChange(a.id, 1, { state: 'planned', override, updatedAt: '2026-01-02T00:00:00.000Z' }),
      );
      expect(updated).toMatchObject({ state: 'planned', version: 2, override, reason: 'open 443' });
      expect(updated.updatedAt).toBe('2026-01-02T00:00:00.000Z');
      expect(await store.getChange(a.id)).toEqual(updated);

      const stale = store.write(bob, (w) => w.updateChange(a.id, 1, { state: 'approved', updatedAt: T0 }));
      await expect(stale).rejects.toBeInstanceOf(UserError);
      await expect(stale).rejects.toMatchObject({ code: 'RAMPART_ERR_CONFLICT' });
      await expect(
        store.write(bob, (w) => w.updateChange(9999, 1, { state: 'approved', updatedAt: T0 })),
      ).rejects.toMatchObject({ code: 'RAMPART_ERR_NOT_FOUND' });
      expect((await store.getChange(a.id))?.state).toBe('planned');
      expect(await store.getChange(9999)).toBeUndefined();
    });

    it('lists newest first, by state, by host and with a limit', async () => {
      const store = await (await fresh()).open();
      const ids: number[] = [];
      for (const hosts of [['web1'], ['web2'], ['web1', 'web10'], ['web10']]) {
        ids.push((await store.write(alice, (w) => w.insertChange(newChange({ hosts })))).id);
      }
      await store.write(alice, (w) => w.updateChange(ids[1]!, 1, { state: 'rejected', updatedAt: T0 }));
      expect((await store.listChanges()).map((c) => c.id)).toEqual([...ids].reverse());
      expect((await store.listChanges({ state: 'rejected' })).map((c) => c.id)).toEqual([ids[1]]);
      expect((await store.listChanges({ host: 'web1' })).map((c) => c.id)).toEqual([ids[2], ids[0]]);
      expect((await store.listChanges({ host: 'web1', limit: 1 })).map((c) => c.id)).toEqual([ids[2]]);
      expect((await store.listChanges({ host: 'web_' })).map((c) => c.id)).toEqual([]);
      expect((await store.listChanges({ limit: 2 })).map((c) => c.id)).toEqual([ids[3], ids[2]]);
    });
  });

  describe.skipIf(skip)('plans, reviews, desired state and jobs', () => {
    it('stores plans as data and marks them stale', async () => {
      const store = await (await fresh()).open();
      const c = await store.write(alice, (w) => w.insertChange(newChange()));
      const plan = { hosts: [{ host: 'web1', diff: ['+ tcp dport 443 accept'], findings: [] }], note: 'ünïcödé' };
      const p1 = await store.write(alice, (w) =>
        w.insertPlan({
          changeId: c.id,
          createdAt: T0,
          changeVersion: 1,
          baseRevisions: { web1: 0 },
          blocked: false,
          risk: 'low',
          plan,
        }),
      );
      const p2 = await store.write(alice, (w) =>
        w.insertPlan({
          changeId: c.id,
          createdAt: T0,
          changeVersion: 1,
          baseRevisions: { web1: 3 },
          blocked: true,
          risk: 'high',
          plan: null,
        }),
      );
      expect(p1).toMatchObject({ changeId: c.id, blocked: false, stale: false, plan, baseRevisions: { web1: 0 } });
      expect(await store.getPlan(p1.id)).toEqual(p1);
      expect(await store.latestPlan(c.id)).toEqual(p2);
      expect(await store.latestPlan(c.id + 1)).toBeUndefined();
      expect(await store.write(alice, (w) => w.markPlansStale(c.id))).toBe(2);
      expect(await store.write(alice, (w) => w.markPlansStale(c.id))).toBe(0);
      expect((await store.getPlan(p1.id))?.stale).toBe(true);
    });

    it('records reviews and voids them', async () => {
      const store = await (await fresh()).open();
      const c = await store.write(alice, (w) => w.insertChange(newChange()));
      const p = await store.write(alice, (w) =>
        w.insertPlan({
          changeId: c.id,
          createdAt: T0,
          changeVersion: 1,
          baseRevisions: {},
          blocked: false,
          risk: 'low',
          plan: {},
        }),
      );
      const r1 = await store.write(bob, (w) =>
        w.insertReview({ changeId: c.id, planId: p.id, reviewer: 'bob', verdict: 'approve', comment: 'ok', at: T0 }),
      );
      await store.write(bob, (w) =>
        w.insertReview({ changeId: c.id, planId: p.id, reviewer: 'carol', verdict: 'reject', comment: '', at: T0 }),
      );
      expect(r1).toEqual({
        id: r1.id,
        changeId: c.id,
        planId: p.id,
        reviewer: 'bob',
        verdict: 'approve',
        comment: 'ok',
        at: T0,
        voidedAt: null,
      });
      const at = '2026-01-05T00:00:00.000Z';
      expect(await store.write(alice, (w) => w.voidReviews(c.id, at))).toBe(2);
      expect(await store.write(alice, (w) => w.voidReviews(c.id, T0))).toBe(0);
      const reviews = await store.listReviews(c.id);
      expect(reviews.map((r) => [r.reviewer, r.voidedAt])).toEqual([
        ['bob', at],
        ['carol', at],
      ]);
    });

    it('numbers desired revisions per host', async () => {
      const store = await (await fresh()).open();
      expect(await store.getDesired('web1')).toBeUndefined();
      const d = { format: 'nft-text' as const, ruleset: 'table inet f {}', changeId: null, updatedAt: T0 };
      const r1 = await store.write(alice, (w) => w.setDesired({ ...d, host: 'web1' }));
      const r2 = await store.write(alice, (w) => w.setDesired({ ...d, host: 'web1', ruleset: 'v2' }));
      const other = await store.write(alice, (w) => w.setDesired({ ...d, host: 'web2' }));
      expect([r1.revision, r2.revision, other.revision]).toEqual([1, 2, 1]);
      expect(await store.getDesired('web1')).toEqual({ ...d, host: 'web1', ruleset: 'v2', revision: 2 });
    });

    it('queues jobs and moves them through their states', async () => {
      const store = await (await fresh()).open();
      const c = await store.write(alice, (w) => w.insertChange(newChange({ hosts: ['web1', 'web2'] })));
      const p = await store.write(alice, (w) =>
        w.insertPlan({
          changeId: c.id,
          createdAt: T0,
          changeVersion: 1,
          baseRevisions: {},
          blocked: false,
          risk: 'low',
          plan: {},
        }),
      );
      const [j1, j2] = await store.write(alice, async (w) => [
        await w.insertJob({ changeId: c.id, planId: p.id, host: 'web1', step: 0, createdAt: T0 }),
        await w.insertJob({ changeId: c.id, planId: p.id, host: 'web2', step: 1, createdAt: T0 }),
      ]);
      expect(j1).toMatchObject({ host: 'web1', step: 0, state: 'queued', updatedAt: T0 });
      const taken = await store.write(alice, (w) => w.updateJob(j1!.id, 'taken', '2026-01-01T00:01:00.000Z'));
      expect(taken).toMatchObject({ state: 'taken', updatedAt: '2026-01-01T00:01:00.000Z' });
      expect(await store.write(alice, (w) => w.updateJob(9999, 'done', T0))).toBeUndefined();
      expect((await store.listJobs({ changeId: c.id })).map((j) => j.host)).toEqual(['web1', 'web2']);
      expect((await store.listJobs({ state: 'queued' })).map((j) => j.id)).toEqual([j2!.id]);
      expect((await store.listJobs({ host: 'web1' })).map((j) => j.state)).toEqual(['taken']);
    });
  });

  describe.skipIf(skip)('audit chain', () => {
    it('appends one chained entry per audited action and verifies', async () => {
      const { store } = await withEntries(5);
      const before = { nested: { z: 1, a: [1, 'two', null, { y: true }] }, unicode: 'żółw', big: 2 ** 40 };
      await store.write(bob, async (w) => {
        await w.audit({ action: 'change.approve', target: 'change:1', before, after: undefined });
      });
      const entries = await store.auditEntries();
      expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(entries[0]!.prevHash).toBe('0'.repeat(64));
      for (let i = 1; i < entries.length; i++) expect(entries[i]!.prevHash).toBe(entries[i - 1]!.hash);
      for (const e of entries) expect(entryHash(e)).toBe(e.hash);
      const last = entries[5]!;
      expect(last).toMatchObject({ actor: 'bob', role: 'approver', from: '10.0.0.2', action: 'change.approve' });
      expect(last.before).toEqual(before);
      expect(last.after).toBeNull();
      expect(await store.auditEntries({ from: 2, to: 3 })).toEqual(entries.slice(1, 3));
      expect(await store.auditHead()).toEqual({ lastSeq: 6, lastHash: last.hash });
      expect(await store.verifyAuditLog()).toEqual({ ok: true, count: 6, headHash: last.hash });
      const lines = toJsonLines(entries).trimEnd().split('\n');
      expect(lines.map((l) => JSON.parse(l))).toEqual(entries);
    });

    it('detects an altered field', async () => {
      const { env, store } = await withEntries(6);
      await env.raw(`update audit_log set actor = 'mallory' where seq = 3`);
      expect(await store.verifyAuditLog()).toMatchObject({ ok: false, seq: 3, problem: 'altered' });
    });

    it('detects an altered entry whose hash was recomputed (its successor no longer links to it)', async () => {
      const { env, store } = await withEntries(6);
      const [e3] = await store.auditEntries({ from: 3, to: 3 });
      const forged = { ...e3!, after: { reason: 'harmless' } };
      await env.raw(`update audit_log set after_json = $1, hash = $2 where seq = 3`, [
        JSON.stringify(forged.after),
        entryHash(forged),
      ]);
      // Entry 4 still records the original entry 3's hash.
      expect(await store.verifyAuditLog()).toMatchObject({ ok: false, seq: 3, problem: 'altered' });
    });

    it('reports a deleted head row as tampering, not as an internal error', async () => {
      const { env, store } = await withEntries(3);
      await env.raw('delete from audit_head');
      expect(await store.auditHead()).toBeUndefined();
      expect(await store.verifyAuditLog()).toMatchObject({ ok: false, seq: 4, problem: 'head-missing' });
    });

    it('compares the chain with a head kept elsewhere: a rewritten chain and head are caught', async () => {
      const { env, store } = await withEntries(5);
      const kept = await store.auditHead();
      expect(await store.verifyAuditLog({ seq: kept!.lastSeq, hash: kept!.lastHash })).toMatchObject({ ok: true });
      expect(await store.verifyAuditLog({ hash: kept!.lastHash })).toMatchObject({ ok: true });
      const [e4] = await store.auditEntries({ from: 4, to: 4 });
      await env.raw('delete from audit_log where seq = 5');
      await env.raw('update audit_head set last_seq = 4, last_hash = $1', [e4!.hash]);
      expect(await store.verifyAuditLog()).toMatchObject({ ok: true, count: 4 });
      expect(await store.verifyAuditLog({ seq: 5, hash: kept!.lastHash })).toMatchObject({
        ok: false,
        problem: 'removed',
      });
      expect(await store.verifyAuditLog({ hash: kept!.lastHash })).toMatchObject({ ok: false, problem: 'altered' });
    });

    it("catches a change's ruleset edited behind the server's back, by the hash the chain recorded", async () => {
      const env = await fresh();
      const store = await env.open();
      const c = await store.write(alice, async (w) => {
        const x = await w.insertChange(newChange());
        await w.audit({
          action: 'change.propose',
          target: `change:${x.id}`,
          after: { rulesetSha256: x.rulesetSha256 },
        });
        return x;
      });
      expect(c.rulesetSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(await store.verifyAuditLog()).toMatchObject({ ok: true });
      await env.raw(
        `update changes set ruleset = 'table inet filter { chain input { type filter hook input priority 0; policy accept; } }'`,
      );
      expect(await store.verifyAuditLog()).toMatchObject({ ok: false, seq: 1, problem: 'record-altered' });
    });

    it('detects a deleted middle entry', async () => {
      const { env, store } = await withEntries(6);
      await env.raw('delete from audit_log where seq = 4');
      expect(await store.verifyAuditLog()).toMatchObject({ ok: false, seq: 5, problem: 'removed' });
    });

    it('detects a forged entry inserted in the middle with a valid hash', async () => {
      const { env, store } = await withEntries(6);
      const [e2] = await store.auditEntries({ from: 2, to: 2 });
      // Make room at seq 3 (two steps so a unique index never sees a duplicate), then slip the forgery in.
      await env.raw('update audit_log set seq = seq + 1000 where seq >= 3');
      await env.raw('update audit_log set seq = seq - 999 where seq >= 1000');
      await env.raw('update audit_head set last_seq = last_seq + 1');
      const fields = {
        seq: 3,
        at: T0,
        actor: 'alice',
        role: 'admin',
        from: 'local',
        action: 'token.create',
        target: 'token:evil',
        before: null,
        after: { role: 'admin' },
        prevHash: e2!.hash,
      };
      await env.raw(
        `insert into audit_log (seq, at, actor, role, origin, action, target, before_json, after_json, prev_hash, hash)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [
          3,
          T0,
          'alice',
          'admin',
          'local',
          'token.create',
          'token:evil',
          'null',
          '{"role":"admin"}',
          e2!.hash,
          entryHash(fields),
        ],
      );
      expect(await store.verifyAuditLog()).toMatchObject({ ok: false, seq: 3, problem: 'inserted' });
    });

    it('detects a forged entry appended behind the store', async () => {
      const { env, store } = await withEntries(4);
      const [e4] = await store.auditEntries({ from: 4, to: 4 });
      const fields = {
        seq: 5,
        at: T0,
        actor: 'x',
        role: 'admin',
        from: 'local',
        action: 'a',
        target: 't',
        before: null,
        after: null,
        prevHash: e4!.hash,
      };
      await env.raw(
        `insert into audit_log (seq, at, actor, role, origin, action, target, before_json, after_json, prev_hash, hash)
         values (5, $1, 'x', 'admin', 'local', 'a', 't', 'null', 'null', $2, $3)`,
        [T0, e4!.hash, entryHash(fields)],
      );
      expect(await store.verifyAuditLog()).toMatchObject({ ok: false, seq: 5, problem: 'inserted' });
    });

    it('detects a truncated last entry', async () => {
      const { env, store } = await withEntries(5);
      await env.raw('delete from audit_log where seq = 5');
      expect(await store.verifyAuditLog()).toMatchObject({ ok: false, seq: 5, problem: 'removed' });
    });

    it('leaves nothing behind when the write function throws', async () => {
      const { env, store } = await withEntries(2);
      const head = await store.auditHead();
      await expect(
        store.write(alice, async (w) => {
          const c = await w.insertChange(newChange({ reason: 'doomed' }));
          await w.audit({ action: 'change.propose', target: `change:${c.id}` });
          await w.setDesired({ host: 'web9', format: 'nft-text', ruleset: '', changeId: c.id, updatedAt: T0 });
          throw new Error('refused half-way');
        }),
      ).rejects.toThrow('refused half-way');
      expect((await store.listChanges()).map((c) => c.reason)).toEqual(['change 2', 'change 1']);
      expect(await store.getDesired('web9')).toBeUndefined();
      expect(await store.auditHead()).toEqual(head);
      expect((await store.auditEntries()).length).toBe(2);
      const rows = await env.raw('select count(*) as n from changes');
      expect(Number(rows[0]!.n)).toBe(2);
      // The next write continues the chain where it was.
      const e = await store.write(alice, (w) => w.audit({ action: 'config.reload', target: 'config' }));
      expect(e.seq).toBe(3);
      expect(await store.verifyAuditLog()).toMatchObject({ ok: true, count: 3 });
    });
  });

  describe.skipIf(skip)('concurrency', () => {
    it('serialises read-modify-write updates from two store instances without losing any', async () => {
      const env = await fresh();
      const one = await env.open();
      const two = await env.open();
      const c = await one.write(alice, (w) => w.insertChange(newChange({ reason: '0' })));
      const bump = (store: Store, who: Actor) =>
        store.write(who, async (w) => {
          const now = await w.getChange(c.id);
          const next = String(Number(now!.reason) + 1);
          // Yield between the read and the write: a lost update would show here if writers were not serialised.
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
          const updated = await w.updateChange(c.id, now!.version, {
            reason: next,
            updatedAt: new Date().toISOString(),
          });
          await w.audit({ action: 'change.update', target: `change:${c.id}`, before: now!.reason, after: next });
          return updated;
        });
      const runs = [
        ...Array.from({ length: 25 }, () => bump(one, alice)),
        ...Array.from({ length: 25 }, () => bump(two, bob)),
      ];
      await Promise.all(runs);
      const final = await two.getChange(c.id);
      expect(final).toMatchObject({ reason: '50', version: 51 });
      const entries = await one.auditEntries();
      expect(entries.length).toBe(50);
      expect(entries.map((e) => e.after)).toEqual(Array.from({ length: 50 }, (_, i) => String(i + 1)));
      expect(await one.verifyAuditLog()).toMatchObject({ ok: true, count: 50 });
    });
  });
});

describe('openStore', () => {
  it('creates the data directory 0700 and the database file 0600', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-open-'));
    try {
      const dataDir = join(dir, 'nested', 'data');
      const store = await openStore({ dataDir });
      await store.close();
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      expect(statSync(join(dataDir, 'rampart.db')).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a --db that is neither a PostgreSQL URL nor sqlite:<file>, saying what is valid', async () => {
    await expect(openStore({ db: 'mysql://root:hunter2@db/x' })).rejects.toMatchObject({
      code: 'RAMPART_ERR_USAGE',
      message: expect.stringMatching(/mysql:\/\/root:\*\*\*@db\/x.*expected postgres:\/\//),
    });
    await expect(openStore({})).rejects.toMatchObject({ code: 'RAMPART_ERR_USAGE' });
  });

  it('names the PostgreSQL target without its password when it cannot connect', async () => {
    const err = await openStore({ db: 'postgres://rampart:s3cret@127.0.0.1:1/rampart' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain('postgres://rampart:***@127.0.0.1:1/rampart');
    expect((err as UserError).message).not.toContain('s3cret');
  });

  it('refuses a file that is not a SQLite database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-open-'));
    try {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(join(dir, 'rampart.db'), 'this is not a database, just some text that is long enough '.repeat(20));
      await expect(openStore({ dataDir: dir })).rejects.toMatchObject({
        code: 'RAMPART_ERR_FILE',
        message: expect.stringContaining(join(dir, 'rampart.db')),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('redacts only the password of a URL', () => {
    expect(redactUrl('postgres://u:p@h:5432/db?sslmode=require')).toBe('postgres://u:***@h:5432/db?sslmode=require');
    expect(redactUrl('postgres://root@/postgres?host=/var/run/postgresql')).toBe(
      'postgres://root@/postgres?host=/var/run/postgresql',
    );
  });
});
