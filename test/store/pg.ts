/**
 * A throwaway PostgreSQL database per test file: created from RAMPART_TEST_PG_URL (default: the local server over
 * its unix socket, peer auth as root) and dropped afterwards. In CI (CI=true) an unreachable server is a failure;
 * elsewhere the PostgreSQL half of the suite is skipped with the reason printed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore } from '../../src/store/open.js';
import type { SqlStore } from '../../src/store/sql-store.js';

export const PG_ADMIN_URL = process.env.RAMPART_TEST_PG_URL ?? 'postgres://root@/postgres?host=/var/run/postgresql';
export const IN_CI = process.env.CI === 'true';

/** The same URL pointing at another database. */
export function withDatabase(url: string, database: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^/?#]*)(\/[^?#]*)?/i, `$1/${database}`);
}

export interface TestDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** Why PostgreSQL cannot be used, or undefined when it can. */
export async function pgUnavailable(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (e) {
    return `PostgreSQL at ${PG_ADMIN_URL.replace(/:[^:@/]*@/, ':***@')} is unreachable: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `rampart_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(PG_ADMIN_URL, name),
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * Two stores on one fresh database (two server replicas): a SQLite file in a temporary directory, or a throwaway
 * PostgreSQL database. Their closing and removal are pushed onto `cleanups` (run them after each test).
 */
export async function storePair(
  backend: 'sqlite' | 'postgres',
  cleanups: (() => Promise<void> | void)[],
  prefix = 'rampart-store-',
): Promise<[SqlStore, SqlStore]> {
  if (backend === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    const a = await openStore({ dataDir: dir });
    const b = await openStore({ dataDir: dir });
    cleanups.push(async () => {
      await a.close();
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return [a, b];
  }
  const db = await createTestDatabase();
  const a = await openStore({ db: db.url });
  const b = await openStore({ db: db.url });
  cleanups.push(async () => {
    await a.close();
    await b.close();
    await db.drop();
  });
  return [a, b];
}
