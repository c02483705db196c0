/** `--data-dir` / `--db` for the commands that open the store themselves (serve, init, audit-log). */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';

export interface StoreCliOptions {
  readonly dataDir?: string;
  readonly db?: string;
}

export function defaultDataDir(): string {
  if (process.env.RAMPART_DATA_DIR) return process.env.RAMPART_DATA_DIR;
  if (process.getuid?.() === 0) return '/var/lib/rampart';
  return join(process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'rampart');
}

export function addStoreOptions(cmd: Command): Command {
  return cmd
    .option(
      '--data-dir <dir>',
      'where the SQLite store lives (default $RAMPART_DATA_DIR, /var/lib/rampart as root, else ~/.local/share/rampart)',
    )
    .option('--db <url>', 'use PostgreSQL instead: postgres://user@host/db (default $RAMPART_DB)');
}

export function storeTarget(o: StoreCliOptions): { db?: string; dataDir: string; warn: (message: string) => void } {
  const db = o.db ?? process.env.RAMPART_DB;
  return {
    dataDir: o.dataDir ?? defaultDataDir(),
    ...(db ? { db } : {}),
    warn: (message) => process.stderr.write(`rampart: warning: ${message}\n`),
  };
}
