/**
 * The agent's durable state (issue 6): the pending apply (the dead-man's switch) and the last committed job.
 *
 * The pending state is on disk before a new ruleset goes in: an agent killed between apply and confirmation finds
 * it when it starts again and restores the snapshot. So it is written the crash-safe way: a temporary file in the
 * same directory, fsync, rename over the old name, fsync of the directory (the rename itself must survive a power
 * loss). Files are 0600 and the directory 0700: the snapshot is the host's firewall.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import type { FirewallTarget, Snapshot } from './firewall-exec.js';

export interface PendingApply {
  readonly jobId: number;
  readonly changeId: number;
  /** ISO 8601: when the apply started. */
  readonly startedAt: string;
  /** ISO 8601: when the snapshot comes back unless the server has confirmed. */
  readonly deadline: string;
  readonly target: FirewallTarget;
  readonly snapshot: Snapshot;
}

export const PENDING_FILE = 'pending.json';
export const LAST_APPLIED_FILE = 'last-applied.json';

async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode does not apply to a directory that already exists (or is filtered by the umask).
  const st = await stat(dir);
  if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
}

/** Writes `data` to dir/name atomically and durably (temp file, fsync, rename, fsync of the directory). */
export async function writeDurable(dir: string, name: string, data: string): Promise<void> {
  await ensureDir(dir);
  const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, join(dir, name));
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

async function removeDurable(dir: string, name: string): Promise<void> {
  await rm(join(dir, name), { force: true });
  try {
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** The file's text, or undefined when it does not exist. */
async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError('RAMPART_ERR_FILE', `${path}: cannot read the agent state: ${(e as Error).message}`, {
      file: path,
    });
  }
}

function corrupt(path: string, why: string): UserError {
  return new UserError(
    'RAMPART_ERR_FILE',
    `${path}: the agent state file is corrupt (${why}); if no apply is in progress, compare the live firewall with the last applied ruleset and remove the file`,
    { file: path },
  );
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkSnapshot(s: unknown, path: string): asserts s is Snapshot {
  if (!isObj(s)) throw corrupt(path, 'snapshot is not an object');
  if (s.firewall !== 'nftables' && s.firewall !== 'iptables') throw corrupt(path, 'snapshot.firewall is unknown');
  if (!Array.isArray(s.tables)) throw corrupt(path, 'snapshot.tables is not a list');
  for (const [i, t] of s.tables.entries()) {
    if (!isObj(t) || typeof t.table !== 'string') throw corrupt(path, `snapshot.tables[${i}] has no table name`);
    if (s.firewall === 'nftables') {
      const ok = t.state === 'absent' || (t.state === 'present' && typeof t.text === 'string');
      if (!ok) throw corrupt(path, `snapshot.tables[${i}] is neither present (with text) nor absent`);
    } else if (typeof t.ipv4 !== 'string' || typeof t.ipv6 !== 'string') {
      throw corrupt(path, `snapshot.tables[${i}] lacks its ipv4/ipv6 text`);
    }
  }
}

/** Persists the pending apply durably. Call before applying anything. */
export async function savePending(dir: string, p: PendingApply): Promise<void> {
  await writeDurable(dir, PENDING_FILE, `${JSON.stringify(p, null, 2)}\n`);
}

/** The parsed JSON of a state file, or undefined when there is none; unparseable JSON is a corrupt file. */
async function readJsonIfExists(path: string): Promise<unknown> {
  const text = await readIfExists(path);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw corrupt(path, `not JSON: ${(e as Error).message}`);
  }
}

/**
 * The pending apply left on disk, or undefined when there is none. A file that cannot be understood is a
 * UserError naming it (the agent must not guess what to restore).
 */
export async function loadPending(dir: string): Promise<PendingApply | undefined> {
  const path = join(dir, PENDING_FILE);
  const doc = await readJsonIfExists(path);
  if (doc === undefined) return undefined;
  if (!isObj(doc)) throw corrupt(path, 'not a JSON object');
  for (const k of ['jobId', 'changeId'] as const) {
    if (typeof doc[k] !== 'number' || !Number.isInteger(doc[k])) throw corrupt(path, `${k} is not an integer`);
  }
  for (const k of ['startedAt', 'deadline'] as const) {
    if (typeof doc[k] !== 'string' || Number.isNaN(Date.parse(doc[k] as string))) {
      throw corrupt(path, `${k} is not an ISO 8601 time`);
    }
  }
  const target = doc.target;
  if (
    !isObj(target) ||
    (target.firewall !== 'nftables' && target.firewall !== 'iptables') ||
    !Array.isArray(target.tables) ||
    !target.tables.every((t) => typeof t === 'string')
  ) {
    throw corrupt(path, 'target is not {firewall, tables}');
  }
  checkSnapshot(doc.snapshot, path);
  return doc as unknown as PendingApply;
}

/** Removes the pending apply (committed or rolled back). No error when there is none. */
export async function clearPending(dir: string): Promise<void> {
  await removeDurable(dir, PENDING_FILE);
}

/** Records the last committed job, so a job handed out again after a restart is not applied twice. */
export async function saveLastApplied(dir: string, jobId: number): Promise<void> {
  await writeDurable(dir, LAST_APPLIED_FILE, `${JSON.stringify({ jobId, at: new Date().toISOString() })}\n`);
}

/** The last committed job id, or undefined when none was committed yet. */
export async function loadLastApplied(dir: string): Promise<number | undefined> {
  const path = join(dir, LAST_APPLIED_FILE);
  const doc = await readJsonIfExists(path);
  if (doc === undefined) return undefined;
  if (!isObj(doc) || typeof doc.jobId !== 'number' || !Number.isInteger(doc.jobId)) {
    throw corrupt(path, 'jobId is not an integer');
  }
  return doc.jobId;
}
