/**
 * Runs of terminal rules walked as one block (walkBlock in compile.ts) must answer every question exactly as the
 * rule-by-rule walk: CompileOptions.blocks 'always' (a block wherever one may be walked) against 'never', in one
 * packet space, so equal sets are equal node numbers. Checked on random nft and iptables rulesets, rulesets with
 * rewrites, the real fixtures, the engine's ufw and firewall shapes, and through a chain memo's replay.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Ruleset } from '../firewall/model.js';
import { parseRuleset } from '../firewall/parse.js';
import type { TraceHook } from '../firewall/tracer.js';
import { TRACE_HOOKS } from '../firewall/tracer.js';
import { generateEngineRuleset, mutate } from '../lab/engine-generator.js';
import { generateIptablesRuleset, generateNftRuleset, rng } from '../lab/generate.js';
import { breathe } from '../testing/breathe.js';
import { rewritingRuleset } from '../testing/rewriting-ruleset.js';
import { BLOCK_MAX_RULES, type CompiledBddRuleset, compileRuleset, createChainMemo } from './compile.js';
import { changedRegion } from './incremental.js';
import { createPacketSpace } from './packet-space.js';
import type { Decider, PacketSet } from './types.js';
import { findUnreachable, unreachableJson } from './unreachable.js';

const root = join(import.meta.dirname, '..', '..');
const bigints = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

const keyOf = (d: Decider) =>
  d.kind === 'rule'
    ? `${d.family}/${d.table}/${d.chain}#${d.position}`
    : d.kind === 'policy'
      ? `p ${d.family}/${d.table}/${d.chain}`
      : 'end';

/** The blocks a compilation walked (the compiler's own record; 0 means the case tested nothing). */
const usesOf = (c: CompiledBddRuleset) =>
  (
    c as unknown as {
      c: { blockUses: readonly { block: { nat?: unknown }; members: readonly { ref: { chain: string } }[] }[] };
    }
  ).c.blockUses;
const blocksOf = (c: CompiledBddRuleset): number => usesOf(c).length;
/** Blocks whose members rewrite (nat), walked in the compilations compare() made. */
let natBlocks = 0;

const decisionsOf = (c: CompiledBddRuleset, q?: PacketSet) =>
  c.decisions(q).map((d) => `${keyOf(d.decider)} ${d.verdict} ${(d.packets as unknown as { node: number }).node}`);

/** Every answer of `got` (blocks) equals that of `want` (rule by rule), named by `where`. */
function same(want: CompiledBddRuleset, got: CompiledBddRuleset, where: string): void {
  const space = want.space;
  const node = (s: PacketSet) => (s as unknown as { node: number }).node;
  for (const v of ['accept', 'drop', 'reject'] as const) {
    expect(node(got.verdict(v)), `${where} verdict ${v}`).toBe(node(want.verdict(v)));
  }
  expect(node(got.uncertain()), `${where} uncertain`).toBe(node(want.uncertain()));
  expect(node(got.pathEnd()), `${where} pathEnd`).toBe(node(want.pathEnd()));
  expect(decisionsOf(got), `${where} decisions()`).toEqual(decisionsOf(want));
  const r = rng(where.length * 131 + 7);
  for (const ref of want.rules()) {
    const at = `${where} ${ref.chain}#${ref.position}`;
    expect(got.isHit(ref), `${at} isHit`).toBe(want.isHit(ref));
    expect(node(got.hits(ref)), `${at} hits`).toBe(node(want.hits(ref)));
    expect(node(got.matchSet(ref)), `${at} matchSet`).toBe(node(want.matchSet(ref)));
    const m = want.matchSet(ref);
    // arriving() in full for some rules, within the rule's match for all (the unreachable analysis's question,
    // which replays from the packets within it where it may): both against the whole set.
    {
      const full = want.arriving(ref);
      expect(node(got.arriving(ref)), `${at} arriving`).toBe(node(full));
      expect(node(want.arrivingWithin(ref, m)), `${at} arrivingWithin, walked`).toBe(node(full.and(m)));
    }
    expect(node(got.arrivingWithin(ref, m)), `${at} arrivingWithin`).toBe(node(want.arrivingWithin(ref, m)));
    if (r.chance(0.25)) expect(decisionsOf(got, m), `${at} decisions(match)`).toEqual(decisionsOf(want, m));
  }
  // decidedBy: the drops and rejects, and a random half of the deciders.
  const all = want.decisions();
  const picks = [
    new Set(all.filter((d) => d.verdict !== 'accept').map((d) => keyOf(d.decider))),
    new Set(all.filter(() => r.chance(0.5)).map((d) => keyOf(d.decider))),
  ];
  for (const keys of picks) {
    expect(node(got.decidedBy((d) => keys.has(keyOf(d)))), `${where} decidedBy`).toBe(
      node(want.decidedBy((d) => keys.has(keyOf(d)))),
    );
  }
  const json = (c: CompiledBddRuleset) => JSON.stringify(unreachableJson(findUnreachable(c)), bigints);
  expect(json(got), `${where} unreachable`).toBe(json(want));
  void space;
}

/** Compiles every hook both ways and compares; returns the blocks walked. */
function compare(rs: Ruleset, hooks: readonly TraceHook[], where: string): number {
  const space = createPacketSpace([rs], { cacheBits: 16 });
  let blocks = 0;
  for (const hook of hooks) {
    // Stateful matches with the outcome they have for a fresh source (the default), or opaque.
    for (const assume of ['main', 'all'] as const) {
      let want: CompiledBddRuleset;
      try {
        want = compileRuleset(rs, { hook, space, assume, blocks: 'never' });
      } catch {
        continue; // a loop or a missing chain
      }
      const got = compileRuleset(rs, { hook, space, assume, blocks: 'always' });
      blocks += blocksOf(got);
      natBlocks += usesOf(got).filter((u) => u.block.nat).length;
      expect(blocksOf(want), `${where} ${hook}: 'never' walked a block`).toBe(0);
      same(want, got, `${where} ${hook} ${assume}`);
    }
  }
  return blocks;
}

describe('blocks of terminal rules', () => {
  it('answer as the rule-by-rule walk on random nft rulesets (every hook) and rulesets with rewrites', async () => {
    let blocks = 0;
    for (let seed = 1; seed <= 30; seed++) {
      await breathe();
      const g = generateNftRuleset(seed);
      blocks += compare(parseRuleset(g.text, `gen-${seed}.nft`, { format: 'nft-text' }), TRACE_HOOKS, `nft ${seed}`);
      const rw = parseRuleset(rewritingRuleset(seed), `rw-${seed}.nft`, { format: 'nft-text' });
      blocks += compare(rw, ['input', 'forward', 'output'], `rewriting ${seed}`);
    }
    expect(blocks).toBeGreaterThan(60);
  });

  it('answer as the rule-by-rule walk on random iptables rulesets', async () => {
    let blocks = 0;
    for (let seed = 1; seed <= 30; seed++) {
      await breathe();
      const g = generateIptablesRuleset(seed);
      for (const [text, fam] of [
        [g.v4, 'v4'],
        [g.v6, 'v6'],
      ] as const) {
        const rs = parseRuleset(text, `gen-${seed}-${fam}.rules`, { format: 'iptables-save' });
        blocks += compare(rs, ['input', 'forward', 'output'], `iptables ${seed} ${fam}`);
      }
    }
    expect(blocks).toBeGreaterThan(60);
  });

  it('answer as the rule-by-rule walk on real rulesets (ufw, Docker, kube-proxy, nft), nat rules in blocks too', async () => {
    let blocks = 0;
    natBlocks = 0;
    for (const f of [
      'iptables/ufw-host.rules',
      'iptables/ufw-user.rules',
      'iptables/docker-host.rules',
      'iptables/kube-proxy.rules',
      'iptables/hardened-web.rules',
      'nftables/firewalld-style.nft',
      'nftables/docker-nft.nft',
    ]) {
      await breathe();
      const text = readFileSync(join(root, 'test/fixtures', f), 'utf8');
      blocks += compare(parseRuleset(text, f), ['input', 'forward', 'output'], f);
    }
    expect(blocks).toBeGreaterThan(3);
    // Docker's and kube-proxy's nat chains: masquerades in postrouting (a later stage), dnat to endpoints.
    expect(natBlocks).toBeGreaterThan(3);
  });

  it("answer as the rule-by-rule walk on the engine's ufw, fail2ban, firewall and Docker shapes, 'auto' too", async () => {
    let blocks = 0;
    for (const shape of ['ufw', 'fail2ban', 'firewall', 'docker'] as const) {
      await breathe();
      const text = generateEngineRuleset(shape, 400, 42);
      const rs = parseRuleset(text, shape === 'firewall' ? `${shape}.nft` : `${shape}.rules`);
      blocks += compare(rs, [shape === 'docker' ? 'forward' : 'input'], shape);
    }
    expect(blocks).toBeGreaterThan(10);
    // 'auto' walks blocks where rules grow costly: ufw's port rules after its blocklist, from about 1,000 rules.
    const text = generateEngineRuleset('ufw', 1200, 42);
    const rs = parseRuleset(text, 'ufw.rules');
    const space = createPacketSpace([rs], {});
    const auto = compileRuleset(rs, { hook: 'input', space });
    expect(blocksOf(auto)).toBeGreaterThan(0);
    const never = compileRuleset(rs, { hook: 'input', space, blocks: 'never' });
    const json = (c: CompiledBddRuleset) => JSON.stringify(unreachableJson(findUnreachable(c)), bigints);
    expect(json(auto)).toBe(json(never));
  });

  it("answer as the rule-by-rule walk inside an incremental diff's region, where 'auto' walks blocks in a chain entered once per Docker bridge", () => {
    const text = generateEngineRuleset('docker', 2000, 42);
    const a = parseRuleset(text, 'a.rules');
    const b = parseRuleset(mutate(text, 0.01, 43), 'b.rules');
    const space = createPacketSpace([a, b], { cacheBits: 16 });
    const region = changedRegion(a, b, 'forward', space);
    const auto = compileRuleset(a, { hook: 'forward', space, region });
    // DOCKER-ISOLATION-STAGE-2 holds a DROP per bridge and is walked once per bridge: its rules make ~20 nodes each
    // in a full compilation, more inside the region (whose interface structure the flows carry).
    const stage2 = usesOf(auto).filter((u) => u.members[0]?.ref.chain === 'DOCKER-ISOLATION-STAGE-2').length;
    expect(stage2).toBeGreaterThan(0);
    const full = compileRuleset(a, { hook: 'forward', space });
    expect(usesOf(full).filter((u) => u.members[0]?.ref.chain === 'DOCKER-ISOLATION-STAGE-2')).toEqual([]);
    same(compileRuleset(a, { hook: 'forward', space, region, blocks: 'never' }), auto, 'docker region');
  });

  it("replay a rule's arriving packets within a set only where no rewrite comes before (a mark set on the way)", () => {
    // The arriving flows of a rule are replayed from the checkpoint rule before it (every 16th). Starting from the
    // packets within the asked set is exact only while no rule rewrites them: here a mark set before the checkpoint
    // (input), one between the checkpoint and the rule (forward), and one in a chain jumped to on the way (output),
    // which the asked match then tests: the packets that get there were marked otherwise when they came in.
    const ports = (from: number) => Array.from({ length: 15 }, (_, i) => `    tcp dport ${from + i} accept`).join('\n');
    const text = `table inet t {
  chain input {
    type filter hook input priority 0; policy drop;
    meta mark 0x1 drop
    meta mark set 0x1
${ports(1)}
    tcp dport 100 accept
    meta mark 0x1 tcp dport 22 accept
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
    meta mark 0x2 drop
${ports(1)}
    tcp dport 100 accept
    meta mark set 0x2
    meta mark 0x2 tcp dport 22 accept
  }
  chain output {
    type filter hook output priority 0; policy drop;
    meta mark 0x3 drop
${ports(1)}
    tcp dport 100 accept
    jump setmark
    meta mark 0x3 tcp dport 22 accept
  }
  chain setmark {
    meta mark set 0x3
  }
}
`;
    const rs = parseRuleset(text, 'marks.nft');
    const space = createPacketSpace([rs], {});
    let asked = 0;
    for (const hook of ['input', 'forward', 'output'] as const) {
      const c = compileRuleset(rs, { hook, space });
      for (const ref of c.rules()) {
        if (!/mark 0x. tcp dport 22/.test(ref.rule.text)) continue;
        const m = c.matchSet(ref);
        const within = c.arrivingWithin(ref, m);
        expect(within.isEmpty(), `${hook} ${ref.rule.text}`).toBe(false);
        expect(within.equals(c.arriving(ref).and(m)), `${hook} ${ref.rule.text}`).toBe(true);
        asked++;
      }
    }
    expect(asked).toBe(3);
  });

  it("answer as the rule-by-rule walk where nat and final verdicts share a block (a family's first stage)", () => {
    const rules = Array.from({ length: 12 }, (_, i) =>
      i % 3 === 0
        ? `    tcp dport ${100 + i} dnat to 10.0.0.${i + 1}`
        : i % 3 === 1
          ? `    ip saddr 192.0.2.${i}/32 drop`
          : `    tcp dport ${200 + i} accept`,
    ).join('\n');
    const text = `table ip t {
  chain pre {
    type nat hook prerouting priority -100; policy accept;
${rules}
  }
  chain fwd {
    type filter hook forward priority 0; policy drop;
    ip daddr 10.0.0.0/24 accept
  }
}
`;
    // No input chain: on the input path, what the nat chain rewrites and nobody decides reaches the path's end.
    natBlocks = 0;
    const blocks = compare(parseRuleset(text, 'nat-mixed.nft'), ['input', 'forward'], 'nat-mixed');
    expect(blocks).toBeGreaterThan(0);
    expect(natBlocks).toBeGreaterThan(0);
  });

  it('answer as the rule-by-rule walk where a run longer than a block is walked as several', () => {
    // 2,600 terminal rules in one run: blocks of at most BLOCK_MAX_RULES, each taking what the one before let pass.
    const verdicts = ['drop', 'accept', 'reject'];
    const rules = Array.from(
      { length: 2600 },
      (_, i) => `    ip saddr 10.${i % 7}.${i % 250}.0/24 tcp dport ${1000 + (i % 97)} ${verdicts[i % 3]}`,
    ).join('\n');
    const text = `table ip t {\n  chain in {\n    type filter hook input priority 0; policy accept;\n${rules}\n  }\n}\n`;
    const rs = parseRuleset(text, 'long-run.nft');
    expect(compare(rs, ['input'], 'long run')).toBeGreaterThanOrEqual(6);
    const space = createPacketSpace([rs], { cacheBits: 16 });
    const uses = usesOf(compileRuleset(rs, { hook: 'input', space, blocks: 'always' }));
    expect(Math.max(...uses.map((u) => u.members.length))).toBe(BLOCK_MAX_RULES);
  });

  it('replay from a chain memo as walked (two versions of a ruleset sharing the memo)', async () => {
    let blocks = 0;
    let replays = 0;
    for (let seed = 1; seed <= 12; seed++) {
      await breathe();
      const text = generateIptablesRuleset(seed).v4;
      const a = parseRuleset(text, `a-${seed}.rules`, { format: 'iptables-save' });
      // The second version differs in one chain only: the others' runs are replayed.
      const lines = text.split('\n');
      const i = lines.findIndex((l) => l.startsWith('-A INPUT'));
      if (i >= 0) lines.splice(i, 1);
      const b = parseRuleset(lines.join('\n'), `b-${seed}.rules`, { format: 'iptables-save' });
      const space = createPacketSpace([a, b], { cacheBits: 16 });
      for (const hook of ['input', 'forward', 'output'] as const) {
        const memo = createChainMemo(space);
        let ca: CompiledBddRuleset;
        try {
          ca = compileRuleset(a, { hook, space, memo, blocks: 'always' });
        } catch {
          continue;
        }
        const cb = compileRuleset(b, { hook, space, memo, blocks: 'always' });
        replays += memo.replays;
        blocks += blocksOf(cb);
        same(compileRuleset(a, { hook, space, blocks: 'never' }), ca, `memo a ${seed} ${hook}`);
        same(compileRuleset(b, { hook, space, blocks: 'never' }), cb, `memo b ${seed} ${hook}`);
      }
    }
    expect(blocks).toBeGreaterThan(10);
    expect(replays).toBeGreaterThan(10);
  });
});
