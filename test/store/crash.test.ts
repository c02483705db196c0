/**
 * SIGKILL in the middle of writes: a child process writes in a loop through the built store and is killed at a
 * random moment, several rounds; after each the store reopens with an intact chain, every change has exactly its
 * audit entry, no row is partial, and nothing that was committed is lost.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { ensureBuilt, root } from '../cli/cli.js';
import { createTestDatabase, IN_CI, pgUnavailable, type TestDatabase } from './pg.js';

const ROUNDS = 5;
const pgProblem = await pgUnavailable();

interface Child {
  readonly proc: ChildProcess;
  /** The highest change id the child saw committed. */
  committed(): number;
  ready: Promise<void>;
  exited: Promise<void>;
}

function startChild(db: string): Child {
  const proc = spawn(
    process.execPath,
    [join(import.meta.dirname, 'crash-child.mjs'), join(root, 'dist', 'store', 'open.js'), db],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let last = 0;
  let buffer = '';
  let stderr = '';
  let onReady: () => void = () => {};
  let onFail: (e: Error) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line === 'ready') onReady();
      const m = /^committed (\d+)$/.exec(line);
      if (m) last = Math.max(last, Number(m[1]));
      nl = buffer.indexOf('\n');
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<void>((resolve) => {
    proc.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') onFail(new Error(`crash child exited early (${code ?? signal}): ${stderr}`));
      resolve();
    });
  });
  return { proc, committed: () => last, ready, exited };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function crashRounds(db: string): Promise<void> {
  let previousChanges = 0;
  let previousEntries = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const child = startChild(db);
    try {
      await child.ready;
      await sleep(100 + Math.random() * 300);
    } finally {
      child.proc.kill('SIGKILL');
      await child.exited;
    }

    const store = await openStore({ db });
    try {
      expect(await store.verifyAuditLog()).toMatchObject({ ok: true });
      const changes = await store.listChanges();
      const entries = await store.auditEntries();
      // Every change has exactly its audit entry, and every entry its change.
      expect(entries.map((e) => e.target).sort()).toEqual(changes.map((c) => `change:${c.id}`).sort());
      // No partial row: each ruleset is as long as the size recorded with it, in the row and in the audit entry.
      const sizes = new Map(entries.map((e) => [e.target, (e.after as { size: number }).size]));
      for (const c of changes) {
        expect(c.ruleset.length).toBe(Number(c.reason));
        expect(sizes.get(`change:${c.id}`)).toBe(Number(c.reason));
      }
      // Nothing committed is lost, and counts only grow.
      expect(changes.length).toBeGreaterThanOrEqual(previousChanges);
      expect(entries.length).toBeGreaterThanOrEqual(previousEntries);
      expect(Math.max(0, ...changes.map((c) => c.id))).toBeGreaterThanOrEqual(child.committed());
      previousChanges = changes.length;
      previousEntries = entries.length;
    } finally {
      await store.close();
    }
  }
  // The loop really wrote something across the rounds.
  expect(previousChanges).toBeGreaterThan(0);
}

describe('SIGKILL in the middle of writes', () => {
  beforeAll(() => {
    ensureBuilt();
  });

  it('leaves the SQLite store intact and nothing half-recorded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-crash-'));
    try {
      await crashRounds(`sqlite:${join(dir, 'rampart.db')}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('on PostgreSQL', () => {
    const skip = pgProblem !== undefined && !IN_CI;
    if (skip) console.warn(`crash test on postgres skipped: ${pgProblem}`);
    let database: TestDatabase | undefined;

    beforeAll(async () => {
      if (pgProblem !== undefined && IN_CI) {
        throw new Error(`CI=true and the PostgreSQL crash test cannot run: ${pgProblem}`);
      }
      if (!skip) database = await createTestDatabase();
    });

    afterAll(async () => {
      await database?.drop();
    });

    it.skipIf(skip)(
      'leaves the PostgreSQL store intact and nothing half-recorded',
      async () => {
        await crashRounds(database!.url);
      },
      120_000,
    );
  });
});
