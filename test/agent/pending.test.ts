/**
 * The agent's durable state: the pending apply (dead-man's switch) and the last committed job.
 */
import { chmod, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  clearPending,
  LAST_APPLIED_FILE,
  loadLastApplied,
  loadPending,
  PENDING_FILE,
  type PendingApply,
  saveLastApplied,
  savePending,
} from '../../src/agent/pending.js';
import { UserError } from '../../src/errors.js';

const PENDING: PendingApply = {
  jobId: 7,
  changeId: 3,
  startedAt: '2026-11-24T09:00:00.000Z',
  deadline: '2026-11-24T09:00:30.000Z',
  target: { firewall: 'nftables', tables: ['inet filter'] },
  snapshot: {
    firewall: 'nftables',
    takenAt: '2026-11-24T08:59:59.000Z',
    tables: [{ table: 'inet filter', state: 'present', text: 'table inet filter {\n}\n' }],
  },
};

describe('pending state', () => {
  let base: string;
  let dir: string;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'rampart-pending-'));
    dir = join(base, 'state');
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('is undefined when none was saved', async () => {
    expect(await loadPending(dir)).toBeUndefined();
    expect(await loadLastApplied(dir)).toBeUndefined();
  });

  it('saves, loads and clears a pending apply', async () => {
    await savePending(dir, PENDING);
    expect(await loadPending(dir)).toEqual(PENDING);
    await clearPending(dir);
    expect(await loadPending(dir)).toBeUndefined();
    await clearPending(dir); // no error when there is none
  });

  it('writes the file 0600 in a 0700 directory and leaves no temporary file', async () => {
    await savePending(dir, PENDING);
    await savePending(dir, { ...PENDING, jobId: 8 });
    expect((await stat(join(dir, PENDING_FILE))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect(await readdir(dir)).toEqual([PENDING_FILE]);
    expect((await loadPending(dir))?.jobId).toBe(8);
  });

  it('tightens an existing directory to 0700', async () => {
    await savePending(dir, PENDING);
    await chmod(dir, 0o755);
    await savePending(dir, PENDING);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it('reports a corrupt file by name instead of crashing', async () => {
    await savePending(dir, PENDING);
    const path = join(dir, PENDING_FILE);
    for (const [content, why] of [
      ['{"jobId": 7, "changeId"', /not JSON/],
      ['[]', /not a JSON object/],
      [JSON.stringify({ ...PENDING, jobId: 'seven' }), /jobId is not an integer/],
      [JSON.stringify({ ...PENDING, deadline: 'soon' }), /deadline is not an ISO 8601 time/],
      [JSON.stringify({ ...PENDING, target: { firewall: 'pf', tables: [] } }), /target/],
      [
        JSON.stringify({ ...PENDING, snapshot: { ...PENDING.snapshot, tables: [{ table: 'inet filter' }] } }),
        /present/,
      ],
    ] as const) {
      await writeFile(path, content);
      const err = await loadPending(dir).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, content).toBeInstanceOf(UserError);
      expect((err as Error).message).toContain(path);
      expect((err as Error).message).toMatch(why);
    }
  });

  it('records the last committed job', async () => {
    await saveLastApplied(dir, 41);
    await saveLastApplied(dir, 42);
    expect(await loadLastApplied(dir)).toBe(42);
    expect((await stat(join(dir, LAST_APPLIED_FILE))).mode & 0o777).toBe(0o600);
    await writeFile(join(dir, LAST_APPLIED_FILE), 'garbage');
    await expect(loadLastApplied(dir)).rejects.toThrow(join(dir, LAST_APPLIED_FILE));
  });
});
