/**
 * The audit log's hash chain (pure: no I/O). Each entry's hash is the SHA-256 of the canonical JSON (keys sorted,
 * no whitespace) of its fields, including the previous entry's hash, so altering, inserting or removing an entry
 * breaks the chain at that point. The store also keeps the newest seq and hash in a separate head row, which is what
 * catches removing entries at the end (truncation) and entries appended behind the store's back.
 */
import { createHash } from 'node:crypto';
import type { AuditEntry, ChainVerdict } from './types.js';

export type { ChainVerdict };

export const ZERO_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level and no whitespace; `undefined` members dropped as JSON does. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value)) ?? 'null';
}

function sortKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return sortKeys((value as { toJSON: () => unknown }).toJSON());
  }
  if (Array.isArray(value)) return value.map(sortKeys);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
  return out;
}

/** The value as it reads back after a JSON round trip (what the store keeps and therefore what is hashed). */
export function jsonValue(value: unknown): unknown {
  return value === undefined ? null : (JSON.parse(canonicalJson(value)) as unknown);
}

/** The hashed fields of an entry, in their order (what the hash covers and what an export shows first). */
function entryFields(e: Omit<AuditEntry, 'hash'>) {
  return {
    seq: e.seq,
    at: e.at,
    actor: e.actor,
    role: e.role,
    from: e.from,
    action: e.action,
    target: e.target,
    before: e.before ?? null,
    after: e.after ?? null,
    prevHash: e.prevHash,
  };
}

/** SHA-256 hex over the canonical JSON of every field except the hash itself. */
export function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  return createHash('sha256')
    .update(canonicalJson(entryFields(e)))
    .digest('hex');
}

/** What the store's head row says the newest entry is. */
export interface ChainHead {
  readonly lastSeq: number;
  readonly lastHash: string;
}

type ChainProblem = Extract<ChainVerdict, { ok: false }>['problem'];

function bad(seq: number, problem: ChainProblem, message: string): ChainVerdict {
  return { ok: false, seq, problem, message };
}

/**
 * Checks a whole chain (all entries, ascending by seq) and names the FIRST bad entry:
 * - altered: an entry's hash does not match its content, or it was rewritten with a recomputed hash (the next
 *   entry, or the head for the last one, records a different hash for it);
 * - removed: a seq gap, an entry whose prevHash points to an entry that is no longer there, or a head that is ahead
 *   of the last entry (truncation); `seq` is the entry following the removed one(s) (for truncation, the first
 *   seq the head says should exist);
 * - inserted: an entry that does not fit between its neighbours (the next entry links past it, its seq repeats an
 *   earlier one, or it lies beyond the head).
 */
export function verifyChain(entries: readonly AuditEntry[], head?: ChainHead): ChainVerdict {
  let prevHash = ZERO_HASH;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const expectedSeq = i === 0 ? 1 : entries[i - 1]!.seq + 1;
    if (head !== undefined && e.seq > head.lastSeq) {
      return bad(
        e.seq,
        'inserted',
        `entry ${e.seq} lies beyond the head (${head.lastSeq}): it was not written by the store`,
      );
    }
    if (e.seq < expectedSeq) {
      return bad(e.seq, 'inserted', `entry ${e.seq} repeats or goes back in the sequence after ${expectedSeq - 1}`);
    }
    // The entry links to the one before the previous: the previous one was slipped in between them.
    if (i > 0 && e.prevHash !== prevHash) {
      const beforePrev = i >= 2 ? entries[i - 2]!.hash : ZERO_HASH;
      if (e.prevHash === beforePrev) {
        const p = entries[i - 1]!;
        return bad(p.seq, 'inserted', `entry ${p.seq} was inserted: entry ${e.seq} links past it to the entry before`);
      }
    }
    if (e.seq > expectedSeq) {
      const missing =
        expectedSeq === e.seq - 1 ? `entry ${expectedSeq} was` : `entries ${expectedSeq}-${e.seq - 1} were`;
      return bad(e.seq, 'removed', `${missing} removed before entry ${e.seq}`);
    }
    if (entryHash(e) !== e.hash) {
      return bad(e.seq, 'altered', `entry ${e.seq} was altered: its hash does not match its content`);
    }
    if (e.prevHash !== prevHash) {
      const next = entries[i + 1];
      if (next !== undefined && next.prevHash === prevHash) {
        return bad(e.seq, 'inserted', `entry ${e.seq} was inserted: entry ${next.seq} links past it`);
      }
      if (i === 0) return bad(e.seq, 'altered', `entry ${e.seq} was altered: it does not start the chain`);
      // Both neighbours are self-consistent but do not link: the previous entry was rewritten with a recomputed
      // hash (or replaced, or what stood between them was removed and the rest rewritten). The chain cannot tell
      // these apart; the first entry that no longer matches the record is the previous one.
      const p = entries[i - 1]!;
      return bad(
        p.seq,
        'altered',
        `entry ${p.seq} was altered or replaced (or an entry after it removed): entry ${e.seq} records a different hash for its predecessor`,
      );
    }
    prevHash = e.hash;
  }
  const last = entries[entries.length - 1];
  const lastSeq = last?.seq ?? 0;
  if (head !== undefined) {
    if (head.lastSeq > lastSeq) {
      const missing =
        head.lastSeq === lastSeq + 1 ? `entry ${head.lastSeq} is` : `entries ${lastSeq + 1}-${head.lastSeq} are`;
      return bad(lastSeq + 1, 'removed', `${missing} missing: the log was truncated (the head is at ${head.lastSeq})`);
    }
    if (head.lastHash !== prevHash) {
      return bad(
        lastSeq,
        'altered',
        `entry ${lastSeq} was altered: it no longer matches the hash recorded in the head`,
      );
    }
  }
  return { ok: true, count: entries.length, headHash: prevHash };
}

/**
 * Compares a head kept elsewhere (a ticket, a log shipper: `rampart audit-log head`) with the chain: the entry at
 * its seq must carry its hash. A chain and head rewritten together pass `verifyChain` but not this. `seq` may be
 * omitted (a bare hash): the hash must then be somewhere in the chain.
 */
export function checkExpectedHead(
  entries: readonly AuditEntry[],
  expected: { readonly seq?: number; readonly hash: string },
): ChainVerdict | undefined {
  const at = expected.seq !== undefined ? entries.find((e) => e.seq === expected.seq) : undefined;
  if (expected.seq !== undefined) {
    if (at === undefined) {
      return bad(expected.seq, 'removed', `entry ${expected.seq}, the head kept elsewhere, is not in the log`);
    }
    if (at.hash !== expected.hash) {
      return bad(
        at.seq,
        'altered',
        `entry ${at.seq} is not the one kept elsewhere (hash ${at.hash.slice(0, 16)}, expected ${expected.hash.slice(0, 16)}): the chain was rewritten from there on`,
      );
    }
    return undefined;
  }
  if (!entries.some((e) => e.hash === expected.hash)) {
    return bad(
      entries[entries.length - 1]?.seq ?? 0,
      'altered',
      `no entry has the hash kept elsewhere (${expected.hash.slice(0, 16)}): the chain was rewritten`,
    );
  }
  return undefined;
}

/**
 * Compares each change's ruleset with the SHA-256 the newest audit entry about it recorded: an edit of the changes
 * table behind the server's back (the chain itself intact) shows here. Changes whose entries record no hash (made
 * before issue 12) are not checked.
 */
export function checkRecordedRulesets(
  entries: readonly AuditEntry[],
  changes: readonly { readonly id: number; readonly sha256: string }[],
): ChainVerdict | undefined {
  const recorded = new Map<string, AuditEntry>();
  for (const e of entries) {
    const sha = (e.after as { rulesetSha256?: unknown } | null)?.rulesetSha256;
    if (typeof sha === 'string' && e.target.startsWith('change:')) recorded.set(e.target, e);
  }
  for (const c of changes) {
    const e = recorded.get(`change:${c.id}`);
    const sha = (e?.after as { rulesetSha256?: string } | undefined)?.rulesetSha256;
    if (e && sha !== c.sha256) {
      return bad(
        e.seq,
        'record-altered',
        `the ruleset of change ${c.id} (sha256 ${c.sha256.slice(0, 16)}) is not the one entry ${e.seq} recorded (${String(sha).slice(0, 16)}): the changes table was edited outside the server`,
      );
    }
  }
  return undefined;
}

/** One JSON object per line, fields in the entry's order, for export. */
export function toJsonLines(entries: readonly AuditEntry[]): string {
  return entries.map((e) => `${JSON.stringify({ ...entryFields(e), hash: e.hash })}\n`).join('');
}
