import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Rule, Ruleset } from '../firewall/model.js';
import { parseRuleset } from '../firewall/parse.js';
import { TRACE_HOOKS, type TraceHook } from '../firewall/tracer.js';
import { generateIptablesRuleset, generateNftRuleset, type Rng, rng } from '../lab/generate.js';
import { breathe } from '../testing/breathe.js';
import { rewritingRuleset } from '../testing/rewriting-ruleset.js';
import type { CompiledBddRuleset } from './compile.js';
import { diffCompiled, diffJson } from './diff.js';
import { changedRegion, changedRules, diffRulesets, unmatched } from './incremental.js';
import { compileRuleset, createChainMemo, createPacketSpace } from './index.js';
import type { BddPacketSet } from './packet-space.js';
import type { PacketSet } from './types.js';
import { findUnreachable, unreachableJson } from './unreachable.js';

/**
 * Lets the event loop run between the cases of a long synchronous property test: a vitest worker that does not
 * answer its runner for 60 s (a busy machine makes these tests several times slower) fails the run with
 * `Timeout calling "onTaskUpdate"` although every test passed.
 */

const root = join(import.meta.dirname, '..', '..');

/** Length of a longest common subsequence (quadratic DP: the reference for small inputs). */
function lcs(a: readonly string[], b: readonly string[]): number {
  const dp = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      dp[i]![j] = a[i - 1] === b[j - 1] ? dp[i - 1]![j - 1]! + 1 : Math.max(dp[i - 1]![j]!, dp[i]![j - 1]!);
  return dp[a.length]![b.length]!;
}

describe('unmatched (Myers diff of rule keys)', () => {
  it('leaves out exactly a longest common subsequence', () => {
    const r = rng(17);
    for (let t = 0; t < 400; t++) {
      const alphabet = ['a', 'b', 'c', 'd', 'e'].slice(0, r.int(1, 5));
      const a = Array.from({ length: r.int(0, 14) }, () => r.pick(alphabet));
      const b = Array.from({ length: r.int(0, 14) }, () => r.pick(alphabet));
      const u = unmatched(a, b)!;
      const keepA = a.filter((_, i) => !u.a.includes(i));
      const keepB = b.filter((_, j) => !u.b.includes(j));
      expect(keepA, `${a.join('')} / ${b.join('')}`).toEqual(keepB);
      expect(keepA.length).toBe(lcs(a, b));
    }
  });

  it('gives up beyond the edit bound', () => {
    const a = Array.from({ length: 50 }, (_, i) => `a${i}`);
    const b = Array.from({ length: 50 }, (_, i) => `b${i}`);
    expect(unmatched(a, b, 10)).toBeUndefined();
    expect(unmatched(a, b)?.a.length).toBe(50);
  });
});

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A few rule-level edits: delete, move, change the verdict, insert a copy of another rule, flip a policy. */
function edit(rs: Ruleset, r: Rng, edits: number): Ruleset {
  const tables = rs.tables.map((t) => ({ ...t, chains: t.chains.map((c) => ({ ...c, rules: [...c.rules] })) }));
  const chains = tables.flatMap((t) => t.chains);
  for (let k = 0; k < edits; k++) {
    const withRules = chains.filter((c) => c.rules.length > 0);
    const roll = r.next();
    if (withRules.length === 0 || roll > 0.95) {
      const bases = chains.filter((c) => c.base);
      const b = bases.length > 0 ? r.pick(bases) : undefined;
      if (b?.base) (b as Mutable<typeof b>).base = { ...b.base, policy: b.base.policy === 'drop' ? 'accept' : 'drop' };
      continue;
    }
    const c = r.pick(withRules);
    const i = r.int(0, c.rules.length - 1);
    const rule = c.rules[i] as Rule;
    if (roll < 0.25) c.rules.splice(i, 1);
    else if (roll < 0.45) {
      c.rules.splice(i, 1);
      c.rules.splice(r.int(0, c.rules.length), 0, rule);
    } else if (roll < 0.7) {
      const v = rule.verdict?.kind === 'accept' ? { kind: 'drop' as const } : { kind: 'accept' as const };
      if (rule.verdict?.kind === 'jump' || rule.verdict?.kind === 'goto') continue;
      c.rules[i] = { ...rule, verdict: v };
    } else {
      // Another chain's rule, copied here (a jump only within its table: the target must exist).
      const from = r.pick(withRules);
      const copy = r.pick(from.rules);
      const sameTable = tables.some((t) => t.chains.includes(c) && t.chains.includes(from));
      if (!sameTable && (copy.verdict?.kind === 'jump' || copy.verdict?.kind === 'goto')) continue;
      c.rules.splice(r.int(0, c.rules.length), 0, copy);
    }
  }
  return { ...rs, tables };
}

/** diffRulesets and the diff of full compilations, as JSON (undefined when a side cannot compile). */
function both(a: Ruleset, b: Ruleset, hook: TraceHook): [unknown, unknown] | undefined {
  const space = createPacketSpace([a, b], { interfaces: ['eth0'], cacheBits: 16 });
  let full: unknown;
  try {
    full = diffJson(diffCompiled(compileRuleset(a, { hook, space }), compileRuleset(b, { hook, space })));
  } catch {
    return undefined; // a loop or a missing chain: both ways throw, nothing to compare
  }
  const inc = diffJson(diffRulesets(a, b, { hook, space }));
  return [inc, full];
}

const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));

describe('diffRulesets: the same answer as the diff of full compilations', () => {
  it('on random nft rulesets with random edits, every hook', async () => {
    let changes = 0;
    for (let seed = 1; seed <= 20; seed++) {
      await breathe();
      const a = parseRuleset(generateNftRuleset(seed).text, `gen-${seed}.nft`);
      const b = edit(a, rng(seed * 31), 1 + (seed % 4));
      for (const hook of TRACE_HOOKS) {
        const got = both(a, b, hook);
        if (!got) continue;
        expect(json(got[0]), `seed ${seed} hook ${hook}`).toBe(json(got[1]));
        changes += (got[1] as { changes: unknown[] }).changes.length;
      }
    }
    expect(changes).toBeGreaterThan(20);
  });

  it('on random iptables rulesets with random edits', async () => {
    for (let seed = 1; seed <= 15; seed++) {
      await breathe();
      const a = parseRuleset(generateIptablesRuleset(seed).v4, `gen-${seed}.rules`, { format: 'iptables-save' });
      const b = edit(a, rng(seed * 37), 2);
      for (const hook of ['input', 'forward', 'output'] as const) {
        const got = both(a, b, hook);
        if (got) expect(json(got[0]), `seed ${seed} hook ${hook}`).toBe(json(got[1]));
      }
    }
  });

  it('on random rulesets that rewrite what later rules test (dnat, snat, mark set)', async () => {
    let changes = 0;
    for (let seed = 1; seed <= 40; seed++) {
      await breathe();
      const a = parseRuleset(rewritingRuleset(seed), `rw-${seed}.nft`);
      const b = edit(a, rng(seed * 41), 1 + (seed % 3));
      for (const hook of TRACE_HOOKS) {
        const got = both(a, b, hook);
        if (!got) continue;
        expect(json(got[0]), `seed ${seed} hook ${hook}`).toBe(json(got[1]));
        changes += (got[1] as { changes: unknown[] }).changes.length;
      }
    }
    expect(changes).toBeGreaterThan(20);
  });

  it('on real-world fixtures with nat (kube-proxy, docker) and edits', async () => {
    for (const [file, format] of [
      ['test/fixtures/iptables/kube-proxy.rules', 'iptables-save'],
      ['test/fixtures/iptables/docker-host.rules', 'iptables-save'],
      ['test/fixtures/nftables/docker-nft.nft', 'nft-text'],
      ['test/fixtures/nftables/firewalld-style.nft', 'nft-text'],
    ] as const) {
      const a = parseRuleset(readFileSync(join(root, file), 'utf8'), file, { format });
      for (let seed = 1; seed <= 2; seed++) {
        await breathe();
        const b = edit(a, rng(seed * 43 + file.length), 2);
        for (const hook of ['input', 'forward', 'output'] as const) {
          await breathe();
          const got = both(a, b, hook);
          if (got) expect(json(got[0]), `${file} seed ${seed} hook ${hook}`).toBe(json(got[1]));
        }
      }
    }
  });

  it('recognises identical rulesets, reprinted ones included, without a region', () => {
    const text = readFileSync(join(root, 'test/fixtures/iptables/kube-proxy.rules'), 'utf8');
    const a = parseRuleset(text, 'a.rules', { format: 'iptables-save' });
    const b = parseRuleset(`# another header\n${text}`, 'b.rules', { format: 'iptables-save' });
    const c = changedRules(a, b, 'input');
    expect(c).toEqual({ prev: [], next: [] });
    const space = createPacketSpace([a, b], { cacheBits: 16 });
    expect(changedRegion(a, b, 'input', space).isEmpty()).toBe(true);
    expect(diffRulesets(a, b, { hook: 'input', space }).groups).toEqual([]);
  });

  it('bounds the region by the chain a changed rule is in', () => {
    const a = parseRuleset(
      [
        'table ip t {',
        '  chain input { type filter hook input priority 0; policy drop; ip saddr 10.0.1.0/24 jump one; }',
        '  chain one { tcp dport 22 accept; }',
        '}',
      ].join('\n'),
      'a.nft',
    );
    const b = edit(a, rng(1), 0);
    (b.tables[0]!.chains[1] as Mutable<(typeof b.tables)[0]['chains'][1]>).rules = [
      ...b.tables[0]!.chains[1]!.rules,
      { ...a.tables[0]!.chains[1]!.rules[0]!, matches: [], verdict: { kind: 'drop' } },
    ];
    const space = createPacketSpace([a, b], { cacheBits: 16 });
    const region = changedRegion(a, b, 'input', space);
    expect(
      region.equals(
        space.fromCube({
          nfproto: [{ kind: 'symbol', value: 'ipv4' }],
          'ip.saddr': [{ kind: 'range', lo: 0x0a000100n, hi: 0x0a0001ffn }],
        }),
      ),
    ).toBe(true);
  });
});

/** Everything a compilation answers, as JSON; set answers compared by node with `like`'s (one space). */
function answersLike(c: CompiledBddRuleset, like: CompiledBddRuleset): string {
  const same = (x: PacketSet, y: PacketSet) => (x as BddPacketSet).node === (y as BddPacketSet).node;
  const rules = c.rules();
  expect(rules.map((r) => `${r.chain}#${r.position}`)).toEqual(like.rules().map((r) => `${r.chain}#${r.position}`));
  for (const v of ['accept', 'drop', 'reject'] as const) expect(same(c.verdict(v), like.verdict(v)), v).toBe(true);
  expect(same(c.uncertain(), like.uncertain())).toBe(true);
  rules.forEach((r, i) => {
    const o = like.rules()[i]!;
    expect(same(c.arriving(r), like.arriving(o)), `arriving ${r.chain}#${r.position}`).toBe(true);
    expect(same(c.hits(r), like.hits(o)), `hits ${r.chain}#${r.position}`).toBe(true);
    expect(same(c.matchSet(r), like.matchSet(o)), `match ${r.chain}#${r.position}`).toBe(true);
  });
  const decisions = (x: CompiledBddRuleset) =>
    x.decisions().map((d) => ({ d: d.decider, v: d.verdict, n: (d.packets as BddPacketSet).node }));
  expect(json(decisions(c))).toBe(json(decisions(like)));
  return json(unreachableJson(findUnreachable(c)));
}

describe('chain memo: replayed chain runs answer as walked ones', () => {
  it('on random rulesets with edits and rewrites, the edited version and later hooks replaying earlier runs', async () => {
    let replays = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const text = seed % 2 === 0 ? generateNftRuleset(seed).text : rewritingRuleset(seed);
      const a = parseRuleset(text, `memo-${seed}.nft`);
      const b = edit(a, rng(seed * 53), 1 + (seed % 3));
      const space = createPacketSpace([a, b], { interfaces: ['eth0'], cacheBits: 16 });
      const memo = createChainMemo(space);
      for (const hook of TRACE_HOOKS) {
        await breathe();
        for (const rs of [a, b]) {
          let walked: CompiledBddRuleset;
          try {
            walked = compileRuleset(rs, { hook, space });
          } catch {
            continue; // a loop or a missing chain: nothing to compare
          }
          const replayed = compileRuleset(rs, { hook, space, memo });
          const got = answersLike(replayed, walked);
          expect(got, `seed ${seed} hook ${hook}`).toBe(json(unreachableJson(findUnreachable(walked))));
        }
      }
      replays += memo.replays;
    }
    // The memo was used: unchanged chains of the edited versions, prerouting chains on later hook paths.
    expect(replays).toBeGreaterThan(100);
  });

  it('replays the unchanged chains of a real kube-proxy ruleset after an edit, with the same diff', async () => {
    const file = 'test/fixtures/iptables/kube-proxy.rules';
    const a = parseRuleset(readFileSync(join(root, file), 'utf8'), file, { format: 'iptables-save' });
    const b = edit(a, rng(7), 2);
    for (const hook of ['input', 'forward', 'output'] as const) {
      await breathe();
      const space = createPacketSpace([a, b], { interfaces: ['eth0'], cacheBits: 16 });
      const memo = createChainMemo(space);
      const oldC = compileRuleset(a, { hook, space, memo });
      const before = memo.replays;
      const newC = compileRuleset(b, { hook, space, memo });
      expect(memo.replays).toBeGreaterThan(before);
      await breathe();
      const oldFull = compileRuleset(a, { hook, space });
      const newFull = compileRuleset(b, { hook, space });
      await breathe();
      const full = diffCompiled(oldFull, newFull);
      expect(json(diffJson(diffCompiled(oldC, newC)))).toBe(json(diffJson(full)));
      answersLike(newC, newFull);
    }
  });
});
