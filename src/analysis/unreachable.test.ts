import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRuleset } from '../firewall/load.js';
import type { Ruleset } from '../firewall/model.js';
import { parseRuleset } from '../firewall/parse.js';
import { trace } from '../firewall/tracer.js';
import { generateNftRuleset } from '../lab/generate.js';
import { breathe } from '../testing/breathe.js';
import { compileRuleset, createPacketSpace } from './index.js';
import { findUnreachable, renderUnreachable } from './unreachable.js';

const root = join(import.meta.dirname, '..', '..');
const load = (rel: string) => loadRuleset([join(root, rel)]);
const compile = (rs: Ruleset) => compileRuleset(rs, { hook: 'input', space: createPacketSpace([rs]) });

describe('findUnreachable', () => {
  const rs = load('test/fixtures/queries/shadowed.nft');
  const rep = findUnreachable(compile(rs));
  const byLine = new Map(rep.unreachable.map((u) => [u.ref.rule.origin.line, u]));

  it('finds a rule shadowed by two earlier rules together and names both', () => {
    const u = byLine.get(8);
    expect(u?.class).toBe('shadowed');
    expect(u?.kind).toBe('accept');
    expect(u?.cover.map((c) => [c.role, c.decider.line, c.decider.verdict])).toEqual([
      ['decided', 6, 'drop'],
      ['decided', 7, 'drop'],
    ]);
  });

  it('finds a redundant rule, covered by an earlier rule with the same verdict', () => {
    const u = byLine.get(10);
    expect(u?.class).toBe('redundant');
    expect(u?.cover.map((c) => c.decider.line)).toEqual([9]);
  });

  it('finds a rule whose match is empty', () => {
    expect(byLine.get(11)?.class).toBe('empty');
  });

  it('reports only those, and the rules of a chain never entered separately', () => {
    expect([...byLine.keys()]).toEqual([8, 10, 11]);
    expect(rep.neverEntered.map((r) => [r.chain, r.rule.text])).toEqual([['orphan', 'tcp dport 9 drop']]);
    const text = renderUnreachable(rep);
    expect(text).toContain('shadowed (accept rule)');
    expect(text).toContain('chain never entered');
  });

  it('finds nothing unreachable in fixtures where every rule can apply', () => {
    for (const f of ['founding-outage.nft', 'debian-default.nft', 'multi-chain.nft']) {
      const r = findUnreachable(compile(load(`test/fixtures/nftables/${f}`)));
      expect(
        r.unreachable.map((u) => u.ref.rule.text),
        f,
      ).toEqual([]);
    }
  });

  it('every cover really covers: traced packets of the rule never reach it and are decided by a cover rule', () => {
    const c = compile(rs);
    for (const u of rep.unreachable) {
      if (u.class === 'empty') continue;
      const coverLines = new Set(u.cover.map((x) => x.decider.line));
      const sample = c.matchSet(u.ref);
      const examples = [sample.example(), u.conflicting?.example(), sample.example({ l4proto: 17 })];
      for (const p of examples) {
        if (!p) continue;
        const t = trace(rs, p, { hook: 'input' });
        const hit = t.path.some((s) => s.kind === 'rule' && s.line === u.ref.rule.origin.line);
        expect(hit).toBe(false);
        if (t.decidedBy?.kind === 'rule') expect(coverLines.has(t.decidedBy.line)).toBe(true);
      }
    }
  });

  it('runs on every nftables fixture without error', () => {
    const dir = join(root, 'test/fixtures/nftables');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.nft'))) {
      const r = findUnreachable(compile(load(`test/fixtures/nftables/${f}`)));
      expect(r.rulesChecked, f).toBeGreaterThanOrEqual(0);
    }
  });

  it('on random rulesets, every cover really covers: packets of the rule entering its chain never reach it and are decided by a cover entry', async () => {
    let checked = 0;
    for (let seed = 200; seed < 260; seed++) {
      await breathe();
      const g = parseRuleset(generateNftRuleset(seed).text, `gen-${seed}.nft`);
      const c = compile(g);
      const rules = c.rules();
      for (const u of findUnreachable(c).unreachable) {
        if (u.class === 'empty') continue;
        const first = rules.find(
          (r) => r.table === u.ref.table && r.family === u.ref.family && r.chain === u.ref.chain,
        );
        const entered = first ? c.arriving(first) : c.space.none();
        const m = c.matchSet(u.ref);
        const scope = m.and(entered);
        const prefs = [
          {},
          { l4proto: 6 },
          { l4proto: 17 },
          { family: 'ipv6' as const },
          { ctState: 'established' as const },
        ];
        const examples = [
          u.conflicting?.example(),
          ...prefs.map((p) => scope.example(p)),
          ...prefs.map((p) => m.example(p)),
        ];
        for (const p of examples) {
          if (!p) continue;
          const t = trace(g, p, { hook: 'input' });
          const hit = t.path.some(
            (s) =>
              s.kind === 'rule' && s.table === u.ref.table && s.chain === u.ref.chain && s.position === u.ref.position,
          );
          expect(hit, `seed ${seed} ${u.ref.rule.text}`).toBe(false);
          if (u.chainKeepsOut || !scope.contains(p) || t.uncertain) continue;
          checked++;
          const d = t.decidedBy;
          const covered = u.cover.some(
            (x) =>
              x.role === 'decided' &&
              (d?.kind === 'rule'
                ? x.decider.kind === 'rule' &&
                  x.decider.table === d.table &&
                  x.decider.chain === d.chain &&
                  x.decider.position === d.position
                : x.decider.kind !== 'rule'),
          );
          expect(covered, `seed ${seed}: ${u.ref.rule.text} decided by ${JSON.stringify(d)}`).toBe(true);
        }
      }
    }
    expect(checked).toBeGreaterThan(0);
  });
});

describe('rules asked about alike', () => {
  // Each chain of a random ruleset gets, at its end, a copy of each of its final-verdict rules, the same rule with
  // another verdict, and a copy of the next chain's rules: rules with the same match in one chain (the reports the
  // analysis shares) and in another chain (which it must not share).
  const SWAP: Record<string, string> = { accept: 'drop', drop: 'reject', reject: 'accept' };
  const withCopies = (text: string): string => {
    const chains: { start: number; end: number; rules: string[] }[] = [];
    const lines = text.split('\n');
    let cur: { start: number; end: number; rules: string[] } | undefined;
    lines.forEach((l, i) => {
      if (/^\s+chain \S+ \{$/.test(l)) cur = { start: i, end: -1, rules: [] };
      else if (cur && /^\s+\}$/.test(l)) {
        cur.end = i;
        chains.push(cur);
        cur = undefined;
      } else if (cur && /^\s+\S.* (accept|drop|reject)$/.test(l) && !/\b(type|policy)\b/.test(l)) cur.rules.push(l);
    });
    const added = new Map<number, string[]>();
    chains.forEach((c, k) => {
      const next = chains[k + 1];
      added.set(c.end, [
        ...c.rules.flatMap((l) => [l, l.replace(/(accept|drop|reject)$/, (v) => SWAP[v]!)]),
        ...(next ? next.rules : []),
      ]);
    });
    return lines.flatMap((l, i) => [...(added.get(i) ?? []), l]).join('\n');
  };
  const summary = (u: ReturnType<typeof findUnreachable>['unreachable'][number]) => ({
    class: u.class,
    kind: u.kind,
    packets: u.packets,
    chainKeepsOut: u.chainKeepsOut,
    uncertain: u.uncertain,
    cover: u.cover,
    conflicting: u.conflicting?.count(),
  });

  it('a rule written again, or with the same match and another verdict, gets the report it gets asked about alone (random rulesets, collections on)', async () => {
    let shared = 0;
    for (let seed = 400; seed < 416; seed++) {
      await breathe();
      const g = parseRuleset(withCopies(generateNftRuleset(seed).text), `gen-${seed}.nft`);
      const space = createPacketSpace([g], { collectGarbage: true });
      space.bdd.gcMinNodes = 1;
      const all = findUnreachable(compileRuleset(g, { hook: 'input', space })).unreachable;
      const alone = compile(g);
      const seen = new Set<string>();
      for (const u of all) {
        const key = `${u.ref.chain} ${u.ref.rule.text.replace(/(accept|drop|reject)$/, '')}`;
        if (seen.has(key)) shared++;
        seen.add(key);
        const [one, ...more] = findUnreachable(alone, { skip: (r) => r !== u.ref.rule }).unreachable;
        expect(more).toEqual([]);
        expect(summary(u), `seed ${seed}: ${u.ref.chain}#${u.ref.position} ${u.ref.rule.text}`).toEqual(summary(one!));
      }
    }
    expect(shared).toBeGreaterThan(50);
  });
});

describe('garbage collection', () => {
  const report = (g: Ruleset, collect: boolean) => {
    const space = createPacketSpace([g], { collectGarbage: collect });
    // Collect whenever as many nodes were made as survived the last collection: many collections per ruleset.
    space.bdd.gcMinNodes = 1;
    const c = compileRuleset(g, { hook: 'input', space });
    const rep = findUnreachable(c);
    const text = renderUnreachable(rep);
    const verdicts = (['accept', 'drop', 'reject'] as const).map((v) => c.verdict(v).count());
    // Every rule's arriving set, kept (checkpoints) or replayed, is the same either way.
    const arriving = c.rules().map((r) => c.arriving(r).count());
    return { text, verdicts, arriving, collections: space.bdd.gcStats.collections };
  };

  it('frees nodes during compilation and analysis without changing any answer (random rulesets)', async () => {
    let collections = 0;
    for (let seed = 300; seed < 330; seed++) {
      await breathe();
      const g = parseRuleset(generateNftRuleset(seed).text, `gen-${seed}.nft`);
      const off = report(g, false);
      const on = report(g, true);
      expect(off.collections).toBe(0);
      collections += on.collections;
      expect(on.text, `seed ${seed}`).toBe(off.text);
      expect(on.verdicts, `seed ${seed}`).toEqual(off.verdicts);
      expect(on.arriving, `seed ${seed}`).toEqual(off.arriving);
    }
    expect(collections).toBeGreaterThan(30);
  });

  it('refuses a packet set that a collection did not keep instead of answering from freed nodes', () => {
    const g = parseRuleset(generateNftRuleset(301).text, 'gen-301.nft');
    const space = createPacketSpace([g], { collectGarbage: true });
    space.bdd.gcMinNodes = 1;
    const c = compileRuleset(g, { hook: 'input', space });
    const held = c.verdict('drop').or(c.verdict('reject'));
    const kept = c.verdict('accept').or(c.uncertain());
    const keptCount = kept.count();
    expect(held.node).toBeGreaterThan(1);
    // Make garbage until a safe point that keeps only `kept` collects.
    const before = space.bdd.gcStats.collections;
    for (let i = 0; i < 200 && space.bdd.gcStats.collections === before; i++) {
      c.decisions(
        c.verdict('accept').minus(c.space.fromCube({ dport: [{ kind: 'range', lo: BigInt(i), hi: 65535n }] })),
      );
      space.safePoint([kept]);
    }
    expect(space.bdd.gcStats.collections).toBeGreaterThan(before);
    expect(kept.count()).toBe(keptCount);
    expect(() => held.count()).toThrow(/garbage collection/);
  });
});
