/** The hash chain on its own: canonical JSON, hashing, and naming the first bad entry for each kind of tampering. */
import { describe, expect, it } from 'vitest';
import { canonicalJson, entryHash, toJsonLines, verifyChain, ZERO_HASH } from '../../src/store/audit-chain.js';
import type { AuditEntry } from '../../src/store/types.js';

/** A valid chain of n entries. */
function chain(n: number): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const fields = {
      seq,
      at: `2026-01-01T00:00:${String(seq).padStart(2, '0')}.000Z`,
      actor: 'alice',
      role: 'operator',
      from: '127.0.0.1',
      action: 'change.propose',
      target: `change:${seq}`,
      before: null,
      after: { n: seq },
      prevHash: out[seq - 2]?.hash ?? ZERO_HASH,
    };
    out.push({ ...fields, hash: entryHash(fields) });
  }
  return out;
}

/** Recomputes the hash of an entry after editing it, as a careful forger would. */
function rehash(e: Omit<AuditEntry, 'hash'>): AuditEntry {
  return { ...e, hash: entryHash(e) };
}

const headOf = (entries: readonly AuditEntry[]) => ({
  lastSeq: entries.at(-1)?.seq ?? 0,
  lastHash: entries.at(-1)?.hash ?? ZERO_HASH,
});

describe('canonicalJson', () => {
  it('sorts keys at every level and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('drops undefined members like JSON and writes undefined as null', () => {
    expect(canonicalJson({ a: undefined, b: 1 })).toBe('{"b":1}');
    expect(canonicalJson(undefined)).toBe('null');
  });
});

describe('verifyChain', () => {
  it('accepts an intact chain and an empty one', () => {
    const c = chain(5);
    expect(verifyChain(c, headOf(c))).toEqual({ ok: true, count: 5, headHash: c[4]!.hash });
    expect(verifyChain([], { lastSeq: 0, lastHash: ZERO_HASH })).toEqual({ ok: true, count: 0, headHash: ZERO_HASH });
  });

  it('names an entry whose content no longer matches its hash as altered', () => {
    const c = chain(5);
    c[2] = { ...c[2]!, target: 'change:999' };
    expect(verifyChain(c, headOf(chain(5)))).toMatchObject({ ok: false, seq: 3, problem: 'altered' });
  });

  it('names a rewritten entry with a recomputed hash as altered (its successor still records the old hash)', () => {
    const c = chain(5);
    c[1] = rehash({ ...c[1]!, actor: 'mallory' });
    expect(verifyChain(c, headOf(chain(5)))).toMatchObject({ ok: false, seq: 2, problem: 'altered' });
  });

  it('names a rewritten last entry as altered by the head', () => {
    const original = chain(4);
    const c = [...original];
    c[3] = rehash({ ...c[3]!, actor: 'mallory' });
    expect(verifyChain(c, headOf(original))).toMatchObject({ ok: false, seq: 4, problem: 'altered' });
  });

  it('names the entry after a gap as following a removed one', () => {
    const c = chain(6);
    const v = verifyChain([...c.slice(0, 2), ...c.slice(3)], headOf(c));
    expect(v).toMatchObject({ ok: false, seq: 4, problem: 'removed' });
    expect((v as { message: string }).message).toMatch(/entry 3 was removed/);
  });

  it('detects removing the first entry', () => {
    const c = chain(3);
    expect(verifyChain(c.slice(1), headOf(c))).toMatchObject({ ok: false, seq: 2, problem: 'removed' });
  });

  it('detects truncation through the head', () => {
    const c = chain(6);
    const v = verifyChain(c.slice(0, 4), headOf(c));
    expect(v).toMatchObject({ ok: false, seq: 5, problem: 'removed' });
    expect((v as { message: string }).message).toMatch(/entries 5-6 are missing/);
    expect(verifyChain([], headOf(c))).toMatchObject({ ok: false, seq: 1, problem: 'removed' });
  });

  it('without a head, cannot see truncation (the chain itself is intact)', () => {
    expect(verifyChain(chain(6).slice(0, 4))).toMatchObject({ ok: true, count: 4 });
  });

  it('names a forged entry slipped in with renumbering as inserted', () => {
    const c = chain(5);
    const forged = rehash({ ...c[1]!, seq: 3, prevHash: c[1]!.hash, action: 'token.create' });
    const shifted = c.slice(2).map((e) => ({ ...e, seq: e.seq + 1 }));
    const tampered = [...c.slice(0, 2), forged, ...shifted];
    expect(verifyChain(tampered, { lastSeq: 6, lastHash: c[4]!.hash })).toMatchObject({
      ok: false,
      seq: 3,
      problem: 'inserted',
    });
  });

  it('names a forged entry with a bogus previous hash as inserted when its successor links past it', () => {
    const c = chain(4);
    const forged = rehash({ ...c[1]!, seq: 3, prevHash: 'f'.repeat(64) });
    const next = rehash({ ...c[2]!, seq: 4 });
    expect(verifyChain([c[0]!, c[1]!, forged, next], { lastSeq: 4, lastHash: next.hash })).toMatchObject({
      ok: false,
      seq: 3,
      problem: 'inserted',
    });
  });

  it('names an entry beyond the head or a repeated seq as inserted', () => {
    const c = chain(3);
    const extra = rehash({ ...c[2]!, seq: 4, prevHash: c[2]!.hash });
    expect(verifyChain([...c, extra], headOf(c))).toMatchObject({ ok: false, seq: 4, problem: 'inserted' });
    expect(verifyChain([...c, c[2]!])).toMatchObject({ ok: false, seq: 3, problem: 'inserted' });
  });

  it('names the first problem when there are several', () => {
    const c = chain(8);
    c[5] = { ...c[5]!, actor: 'x' };
    const tampered = [...c.slice(0, 2), ...c.slice(3)];
    expect(verifyChain(tampered, headOf(chain(8)))).toMatchObject({ ok: false, seq: 4, problem: 'removed' });
  });
});

describe('toJsonLines', () => {
  it('writes one entry per line that parses back to the entry', () => {
    const c = chain(3);
    const text = toJsonLines(c);
    expect(text.endsWith('\n')).toBe(true);
    expect(
      text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(c);
    expect(Object.keys(JSON.parse(text.split('\n')[0]!))).toEqual([
      'seq',
      'at',
      'actor',
      'role',
      'from',
      'action',
      'target',
      'before',
      'after',
      'prevHash',
      'hash',
    ]);
  });
});
