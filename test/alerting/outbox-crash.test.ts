/**
 * The outbox survives SIGKILL (issue 15, §4-§5): worker processes running the built outbox worker against a real
 * store and a real HTTP receiver that counts deliveries by idempotency key (X-Rampart-Id).
 * - SQLite: one worker killed mid-run at a random moment and restarted: every key delivered, none lost (at least
 *   once; a row in flight at the kill may arrive twice, at most `concurrency` of them).
 * - PostgreSQL: 1,000 notifications, two workers, one SIGKILLed half-way while its request is at the receiver
 *   (unanswered, so not accepted): 0 lost, 0 sent twice per key.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { OutboxDraft } from '../../src/alerting/types.js';
import { openStore } from '../../src/store/open.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import { ensureBuilt, root } from '../cli/cli.js';
import { createTestDatabase, IN_CI, pgUnavailable } from '../store/pg.js';
import { httpReceiver, shopDown } from './receivers.js';

const pgProblem = await pgUnavailable();

interface Worker {
  readonly proc: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  stderr(): string;
}

const children: Worker[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await c.exited;
  }
  for (const c of cleanups.splice(0).reverse()) await c();
});

function startWorker(db: string, url: string, holder: string, concurrency: number, leaseMs: number): Worker {
  const proc = spawn(
    process.execPath,
    [
      join(import.meta.dirname, 'outbox-child.mjs'),
      join(root, 'dist'),
      db,
      url,
      holder,
      String(concurrency),
      String(leaseMs),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const ready = new Promise<void>((resolve, reject) => {
    proc.stdout?.setEncoding('utf8').on('data', (c: string) => {
      if (c.includes('ready')) resolve();
    });
    proc.on('exit', (code, signal) => reject(new Error(`outbox worker exited (${code ?? signal}): ${stderr}`)));
  });
  ready.catch(() => {});
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
  const w = { proc, ready, exited, stderr: () => stderr };
  children.push(w);
  return w;
}

function drafts(n: number): OutboxDraft[] {
  const createdAt = new Date().toISOString();
  return Array.from({ length: n }, (_, i) => ({
    key: `n-${String(i).padStart(4, '0')}`,
    target: { kind: 'receiver', receiver: 'ops' } as const,
    // one group per notification: nothing waits behind another row's order
    notification: shopDown({ groupKey: `g-${i}` }),
    createdAt,
  }));
}
const ONE_WEBHOOK = () => [{ channel: 'webhook/0', receiver: 'ops' }];

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(() => ensureBuilt());

describe('outbox under SIGKILL', () => {
  it('SQLite: a worker killed mid-run and restarted delivers every key, none lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-outbox-kill-'));
    const store: SqlStore = await openStore({ dataDir: dir });
    cleanups.push(async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const seen = new Map<string, number>();
    // a slow receiver: 15 ms per request, so the kill lands while requests are in flight
    const r = await httpReceiver(async (req, _m, res) => {
      await new Promise((done) => setTimeout(done, 15));
      const key = String(req.headers['x-rampart-id']);
      seen.set(key, (seen.get(key) ?? 0) + 1);
      res.writeHead(200);
      res.end('ok');
      return true;
    });
    cleanups.push(() => r.close());
    const N = 200;
    await store.outbox.enqueue(drafts(N), ONE_WEBHOOK);
    const db = `sqlite:${join(dir, 'rampart.db')}`;
    const concurrency = 4;

    const first = startWorker(db, `${r.url}/hook`, 'first', concurrency, 1000);
    await first.ready;
    const killAt = 40 + Math.floor(Math.random() * 60);
    await until(`${killAt} deliveries`, () => seen.size >= killAt);
    first.proc.kill('SIGKILL');
    await first.exited;
    const before = seen.size;
    expect(before).toBeLessThan(N);

    const second = startWorker(db, `${r.url}/hook`, 'second', concurrency, 1000);
    await second.ready;
    await until('every row sent', async () => (await store.outbox.stats(Date.now()))[0]?.pending === 0);
    const rows = await store.outbox.rows();
    expect(rows.filter((x) => x.state !== 'sent')).toEqual([]);
    const keys = drafts(N).map((d) => d.key);
    expect(keys.filter((k) => !seen.has(k))).toEqual([]); // none lost
    const twice = [...seen].filter(([, n]) => n > 1).map(([k]) => k);
    // at least once: only rows in flight at the kill can arrive twice
    expect(twice.length).toBeLessThanOrEqual(concurrency);
    console.log(
      `outbox kill -9 (SQLite): killed after ${before} of ${N} delivered; all ${N} delivered after the restart; ${twice.length} delivered twice (rows in flight at the kill)`,
    );
  }, 180_000);

  it.skipIf(pgProblem !== undefined && !IN_CI)(
    'PostgreSQL: two workers, 1,000 notifications, one SIGKILLed half-way: 0 lost, 0 sent twice',
    async () => {
      const pgdb = await createTestDatabase();
      const store: SqlStore = await openStore({ db: pgdb.url });
      cleanups.push(async () => {
        await store.close();
        await pgdb.drop();
      });
      const N = 1000;
      const seen = new Map<string, number>();
      const by = { a: 0, b: 0 };
      let victim: Worker | undefined;
      let killed: Promise<void> | undefined;
      const r = await httpReceiver(async (req, _m, res) => {
        const key = String(req.headers['x-rampart-id']);
        const who = req.path === '/a' ? 'a' : 'b';
        if (who === 'a' && killed === undefined && seen.size >= N / 2 && victim) {
          // A's request is here and not answered: A dies with it in flight, so it was never accepted. Everything
          // A sent before was answered and recorded before A claimed this row (one row at a time).
          const v = victim;
          killed = (async () => {
            v.proc.kill('SIGKILL');
            await v.exited;
            res.destroy();
          })();
          return true;
        }
        seen.set(key, (seen.get(key) ?? 0) + 1);
        by[who]++;
        res.writeHead(200);
        res.end('ok');
        return true;
      });
      cleanups.push(() => r.close());
      await store.outbox.enqueue(drafts(N), ONE_WEBHOOK);
      const a = startWorker(pgdb.url, `${r.url}/a`, 'replica-a', 1, 2000);
      const b = startWorker(pgdb.url, `${r.url}/b`, 'replica-b', 1, 2000);
      victim = a;
      await Promise.all([a.ready, b.ready]);
      await until('the kill', () => killed !== undefined);
      await killed;
      const atKill = seen.size;
      await until('every row sent', async () => (await store.outbox.stats(Date.now()))[0]?.pending === 0);
      const rows = await store.outbox.rows();
      expect(rows.filter((x) => x.state !== 'sent')).toEqual([]);
      const keys = drafts(N).map((d) => d.key);
      expect(keys.filter((k) => !seen.has(k))).toEqual([]); // 0 lost
      expect([...seen].filter(([, n]) => n > 1)).toEqual([]); // 0 sent twice
      expect(by.a).toBeGreaterThan(0);
      expect(by.b).toBeGreaterThan(0);
      console.log(
        `outbox two replicas (PostgreSQL): ${N} notifications, replica A killed at ${atKill} delivered (A ${by.a}, B ${by.b}); 0 lost, 0 twice`,
      );
    },
    240_000,
  );
});
