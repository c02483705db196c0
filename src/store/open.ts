/**
 * Opens the store the command line asks for: `--db postgres://...` (or postgresql://) is PostgreSQL through a pg
 * Pool; otherwise a SQLite file `<dataDir>/rampart.db` (directory 0700, file 0600, WAL, synchronous=FULL so a
 * committed write survives power loss). Migrations run on open. Both backends are the same SqlStore.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { RampartError, UserError } from '../errors.js';
import { migrate } from './migrations.js';
import type { DB } from './schema.js';
import { SqlStore } from './sql-store.js';

export interface OpenStoreOptions {
  /** `postgres://user:pass@host/db`, `postgresql://...`, `sqlite:<file>`, or absent for `<dataDir>/rampart.db`. */
  readonly db?: string | undefined;
  readonly dataDir?: string | undefined;
  /** Told what was tightened (a data directory or store file others could read). */
  readonly warn?: ((message: string) => void) | undefined;
}

/** Removes group and other access from `path` (the store holds token hashes and the audit trail), saying so. */
function tighten(path: string, mode: number, warn: ((message: string) => void) | undefined): void {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    return;
  }
  if ((st.mode & 0o077) === 0) return;
  try {
    chmodSync(path, mode);
    warn?.(
      `${path} was readable or writable by others (mode ${(st.mode & 0o777).toString(8)}); tightened to ${mode.toString(8)}`,
    );
  } catch (e) {
    warn?.(
      `${path} is readable or writable by others (mode ${(st.mode & 0o777).toString(8)}) and could not be tightened: ${reason(e)}`,
    );
  }
}

export const SQLITE_FILE = 'rampart.db';

/** The URL with its password replaced by `***`, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?#]*):[^@/?#]*@/i, '$1:***@');
}

export function isPostgresUrl(db: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(db);
}

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export async function openStore(options: OpenStoreOptions): Promise<SqlStore> {
  const db = options.db;
  if (db !== undefined && db !== '') {
    if (isPostgresUrl(db)) return openPostgres(db);
    if (db.startsWith('sqlite:')) {
      const file = db.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
      if (file !== '') return openSqlite(resolve(file));
    }
    throw new UserError(
      'RAMPART_ERR_USAGE',
      `--db '${redactUrl(db)}' is not a store location; expected postgres://user:password@host:port/database (or postgresql://...), sqlite:<file>, or no --db for a SQLite file in the data directory`,
      { db: redactUrl(db) },
    );
  }
  if (options.dataDir === undefined || options.dataDir === '') {
    throw new UserError('RAMPART_ERR_USAGE', 'no store given: expected --data-dir <dir> or --db postgres://...', {});
  }
  const dir = resolve(options.dataDir);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new UserError('RAMPART_ERR_FILE', `cannot create the data directory ${dir}: ${reason(e)}`, { file: dir });
  }
  tighten(dir, 0o700, options.warn);
  const file = join(dir, SQLITE_FILE);
  for (const f of [file, `${file}-wal`, `${file}-shm`]) tighten(f, 0o600, options.warn);
  return openSqlite(file);
}

async function openSqlite(file: string): Promise<SqlStore> {
  let database: Database.Database;
  try {
    // Create it 0600 first: SQLite would use the umask, and the WAL and shared-memory files copy the main file's mode.
    if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
    database = new Database(file);
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = FULL');
    database.pragma('busy_timeout = 5000');
    database.pragma('foreign_keys = ON');
  } catch (e) {
    throw new UserError('RAMPART_ERR_FILE', `cannot open the SQLite store ${file}: ${reason(e)}`, { file });
  }
  const kysely = new Kysely<DB>({ dialect: new SqliteDialect({ database }) });
  try {
    await migrate(kysely, 'sqlite');
  } catch (e) {
    await kysely.destroy().catch(() => {});
    if (e instanceof RampartError) throw e;
    throw new UserError('RAMPART_ERR_FILE', `cannot open the SQLite store ${file}: ${reason(e)}`, { file });
  }
  return new SqlStore('sqlite', kysely);
}

async function openPostgres(url: string): Promise<SqlStore> {
  const shown = redactUrl(url);
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 10_000 });
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on('error', () => {});
  try {
    const client = await pool.connect();
    client.release();
  } catch (e) {
    await pool.end().catch(() => {});
    throw new UserError('RAMPART_ERR_SERVER', `cannot connect to the PostgreSQL store ${shown}: ${reason(e)}`, {
      db: shown,
    });
  }
  const kysely = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrate(kysely, 'postgres');
  } catch (e) {
    await kysely.destroy().catch(() => {});
    throw e;
  }
  return new SqlStore('postgres', kysely);
}
