/**
 * The kernel-facing half of the agent's safe apply (issue 6): snapshot the managed tables, apply a desired ruleset
 * to them in one atomic transaction, put the snapshot back, and read them for drift reports. Every command runs
 * through an Executor, so tests point these functions at a namespace they created and the agent at its host.
 *
 * What is touched, and nothing else:
 * - nftables: the managed tables (`family name`, default `inet filter`). One `nft -f` transaction starts with
 *   `table F N; delete table F N` per managed table (create-if-missing then delete: works whether or not it
 *   exists) and continues with the desired ruleset, `flush ruleset` statements removed. nft transactions are
 *   all-or-nothing, so a bad ruleset leaves the old one in force. A desired ruleset that names any other table is
 *   refused before a command runs.
 * - iptables: `iptables-restore` / `ip6tables-restore` without --noflush replace exactly the tables present in
 *   their input; the input holds only the managed tables' `*table ... COMMIT` blocks. Each tool's restore is atomic;
 *   IPv4 and IPv6 are two transactions (the caller restores the snapshot when the second fails).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import {
  checkTarget,
  type FirewallTarget,
  iptTableName,
  isObj,
  joinIptables,
  managedNft,
  type NftTableName,
  nftTableName,
  splitIptablesDump,
} from '../firewall/managed-tables.js';
import type { InputFormat } from '../firewall/model.js';
import { ExecError, type Executor } from '../lab/executor.js';

export {
  type DesiredRuleset,
  type FirewallTarget,
  type FirewallTool,
  prepareApply,
  splitIptablesDump,
} from '../firewall/managed-tables.js';

export type NftTableSnapshot =
  | { readonly table: string; readonly state: 'present'; readonly text: string }
  | { readonly table: string; readonly state: 'absent' };

/** One managed iptables table as `iptables-save -t T` / `ip6tables-save -t T` printed it. */
export interface IptablesTableSnapshot {
  readonly table: string;
  readonly ipv4: string;
  readonly ipv6: string;
}

/** What restore() puts back. Plain JSON: it is persisted in the pending state. */
export type Snapshot =
  | { readonly firewall: 'nftables'; readonly takenAt: string; readonly tables: readonly NftTableSnapshot[] }
  | { readonly firewall: 'iptables'; readonly takenAt: string; readonly tables: readonly IptablesTableSnapshot[] };

const TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------------------------------
// snapshot

/** The managed tables as they are now. */
export async function snapshot(exec: Executor, target: FirewallTarget): Promise<Snapshot> {
  checkTarget(target);
  const takenAt = new Date().toISOString();
  if (target.firewall === 'nftables') {
    const existing = await listNftTables(exec);
    const tables: NftTableSnapshot[] = [];
    for (const t of managedNft(target)) {
      const table = `${t.family} ${t.name}`;
      if (!existing.has(table)) {
        tables.push({ table, state: 'absent' });
        continue;
      }
      const r = await exec.run(['nft', 'list', 'table', t.family, t.name], { timeoutMs: TIMEOUT_MS });
      tables.push({ table, state: 'present', text: r.stdout });
    }
    return { firewall: 'nftables', takenAt, tables };
  }
  const tables: IptablesTableSnapshot[] = [];
  for (const spec of target.tables) {
    const table = iptTableName(spec);
    const v4 = await exec.run(['iptables-save', '-t', table], { timeoutMs: TIMEOUT_MS });
    const v6 = await exec.run(['ip6tables-save', '-t', table], { timeoutMs: TIMEOUT_MS });
    tables.push({ table, ipv4: v4.stdout, ipv6: v6.stdout });
  }
  return { firewall: 'iptables', takenAt, tables };
}

/** `family name` of every nftables table in the kernel (the namespace the executor runs in). */
async function listNftTables(exec: Executor): Promise<Set<string>> {
  const r = await exec.run(['nft', 'list', 'tables'], { timeoutMs: TIMEOUT_MS });
  const out = new Set<string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^table\s+(\S+)\s+(\S+)\s*$/.exec(line.trim());
    if (m) out.add(`${m[1]} ${m[2]}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// applyAtomic, restore, readManaged

function failure(what: string, exec: Executor, e: unknown): never {
  if (e instanceof ExecError) {
    const msg = e.result.stderr.trim() || e.message;
    throw new ExecError(`${what} (${exec.where}) failed, nothing changed: ${msg}`, e.result);
  }
  throw e;
}

async function nftTransaction(exec: Executor, input: string, what: string): Promise<void> {
  if (!input.trimStart().startsWith('{')) {
    try {
      await exec.run(['nft', '-f', '-'], { input, timeoutMs: TIMEOUT_MS });
    } catch (e) {
      failure(what, exec, e);
    }
    return;
  }
  // nft reads JSON input by opening /dev/stdin, which fails (ENXIO) on the socket node gives a child as stdin, and
  // a command-line argument is limited to 128 KiB: so the JSON goes through a private temporary file. Executors
  // run on this machine (locally or via `ip netns exec`), which shares the file system.
  const dir = await mkdtemp(join(tmpdir(), 'rampart-nft-'));
  try {
    const file = join(dir, 'transaction.json');
    await writeFile(file, input, { mode: 0o600 });
    try {
      await exec.run(['nft', '-j', '-f', file], { timeoutMs: TIMEOUT_MS });
    } catch (e) {
      failure(what, exec, e);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function iptablesRestore(exec: Executor, dump: string, what: string): Promise<void> {
  const { ipv4, ipv6 } = splitIptablesDump(dump);
  for (const [tool, input] of [
    ['iptables-restore', ipv4],
    ['ip6tables-restore', ipv6],
  ] as const) {
    if (input === '') continue;
    try {
      await exec.run([tool], { input, timeoutMs: TIMEOUT_MS });
    } catch (e) {
      if (e instanceof ExecError) {
        const msg = e.result.stderr.trim() || e.message;
        const partial = tool === 'ip6tables-restore' && ipv4 !== '' ? ' (the IPv4 tables were already replaced)' : '';
        throw new ExecError(`${what}: ${tool} (${exec.where}) failed${partial}: ${msg}`, e.result);
      }
      throw e;
    }
  }
}

/**
 * Applies a prepareApply() result in one transaction: `nft -f -` (or `nft -j -f -`), or `iptables-restore` then
 * `ip6tables-restore`. Throws ExecError with the tool's message; an nft failure changed nothing.
 */
export async function applyAtomic(exec: Executor, target: FirewallTarget, prepared: string): Promise<void> {
  checkTarget(target);
  if (target.firewall === 'nftables') await nftTransaction(exec, prepared, 'applying the desired ruleset');
  else await iptablesRestore(exec, prepared, 'applying the desired ruleset');
}

/** The transaction that puts a snapshot back (exported for tests and for showing what a rollback will do). */
export function restoreInput(target: FirewallTarget, snap: Snapshot): string {
  checkTarget(target);
  if (snap.firewall !== target.firewall) {
    throw new UserError(
      'RAMPART_ERR_USAGE',
      `cannot restore an ${snap.firewall} snapshot on an ${target.firewall} host`,
    );
  }
  if (snap.firewall === 'nftables') {
    // Every table the snapshot or the target names is deleted (create-if-missing first), then recreated as it was.
    const names = new Map<string, NftTableName>();
    for (const t of [...target.tables, ...snap.tables.map((s) => s.table)]) {
      const n = nftTableName(t);
      names.set(`${n.family} ${n.name}`, n);
    }
    let out = '';
    for (const n of names.values()) out += `table ${n.family} ${n.name}\ndelete table ${n.family} ${n.name}\n`;
    for (const s of snap.tables) if (s.state === 'present') out += `${s.text}${s.text.endsWith('\n') ? '' : '\n'}`;
    return out;
  }
  return joinIptables(
    snap.tables.map((t) => stripComments(t.ipv4)).filter((s) => s !== ''),
    snap.tables.map((t) => stripComments(t.ipv6)).filter((s) => s !== ''),
  );
}

function stripComments(save: string): string {
  return save
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))
    .join('\n');
}

/** Puts the snapshot back atomically (per tool). Idempotent: restoring twice gives the same tables. */
export async function restore(exec: Executor, target: FirewallTarget, snap: Snapshot): Promise<void> {
  const input = restoreInput(target, snap);
  if (target.firewall === 'nftables') await nftTransaction(exec, input, 'restoring the snapshot');
  else await iptablesRestore(exec, input, 'restoring the snapshot');
}

/**
 * The live managed tables, for drift reports: one `nft -j` document holding every managed table that exists
 * (nft-json; an empty `nftables` list when none does), or the iptables-save text of the managed tables with the
 * IPv6 half after an ip6tables-save header.
 */
export async function readManaged(
  exec: Executor,
  target: FirewallTarget,
): Promise<{ readonly format: InputFormat; readonly text: string }> {
  checkTarget(target);
  if (target.firewall === 'nftables') {
    const existing = await listNftTables(exec);
    const items: unknown[] = [];
    let meta: unknown;
    for (const t of managedNft(target)) {
      if (!existing.has(`${t.family} ${t.name}`)) continue;
      const r = await exec.run(['nft', '-j', 'list', 'table', t.family, t.name], { timeoutMs: TIMEOUT_MS });
      const doc = JSON.parse(r.stdout) as { nftables?: unknown[] };
      for (const o of doc.nftables ?? []) {
        if (isObj(o) && 'metainfo' in o) meta ??= o;
        else items.push(o);
      }
    }
    return { format: 'nft-json', text: JSON.stringify({ nftables: meta === undefined ? items : [meta, ...items] }) };
  }
  const snap = await snapshot(exec, target);
  if (snap.firewall !== 'iptables') throw new Error('unreachable');
  return {
    format: 'iptables-save',
    text: joinIptables(
      snap.tables.map((t) => stripComments(t.ipv4)).filter((s) => s !== ''),
      snap.tables.map((t) => stripComments(t.ipv6)).filter((s) => s !== ''),
    ),
  };
}
