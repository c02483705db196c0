import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRuleset } from '../firewall/load.js';
import type { Packet, Rule, Ruleset } from '../firewall/model.js';
import { parseRuleset } from '../firewall/parse.js';
import { trace } from '../firewall/tracer.js';
import { generateNftRuleset, generateProbes, type Rng, rng } from '../lab/generate.js';
import { breathe } from '../testing/breathe.js';
import { diffCompiled, diffJson, renderDiff } from './diff.js';
import { compileRuleset, createPacketSpace } from './index.js';
import { findUnreachable } from './unreachable.js';

/**
 * Lets the event loop run between the cases of a long synchronous property test: a vitest worker that does not
 * answer its runner for 60 s (a busy machine makes these tests several times slower) fails the run with
 * `Timeout calling "onTaskUpdate"` although every test passed.
 */

const root = join(import.meta.dirname, '..', '..');
const load = (rel: string) => loadRuleset([join(root, rel)]);

function diff(a: Ruleset, b: Ruleset, limit = 20) {
  const space = createPacketSpace([a, b]);
  return diffCompiled(compileRuleset(a, { hook: 'input', space }), compileRuleset(b, { hook: 'input', space }), {
    limit,
  });
}

describe('diff', () => {
  it('says "no change in behaviour" for a reordered, split and renamed equivalent', () => {
    const r = diff(load('test/fixtures/queries/web.nft'), load('test/fixtures/queries/web-restructured.nft'));
    expect(r.groups).toEqual([]);
    expect(renderDiff(r)).toBe('hook input: no change in behaviour\n');
    expect(diffJson(r)).toMatchObject({ changes: [] });
  });

  it('shows the founding outage fix as tcp 80/443 drop -> accept, with the deciders on each side', () => {
    const oldRs = load('test/fixtures/nftables/founding-outage.nft');
    const newRs = load('test/fixtures/queries/founding-fixed.nft');
    const r = diff(oldRs, newRs);
    expect(r.groups.map((g) => `${g.from} -> ${g.to}`)).toEqual(['drop -> accept']);
    const flows = r.groups[0]?.flows ?? [];
    expect(flows.some((f) => f.flow.text.startsWith('tcp dport 80,443 from any to any'))).toBe(true);
    for (const f of flows) {
      expect(f.old.map((d) => d.kind)).toEqual(['policy']);
      expect(f.new.map((d) => d.text)).toEqual(['tcp dport { 80, 443 } accept']);
      const ex = f.flow.example as Packet;
      expect(trace(oldRs, ex, { hook: 'input' }).verdict).toBe('drop');
      expect(trace(newRs, ex, { hook: 'input' }).verdict).toBe('accept');
    }
    const json = diffJson(r) as { changes: { from: string; to: string; example: unknown }[] };
    expect(json.changes[0]).toMatchObject({ from: 'drop', to: 'accept' });
    expect(json.changes[0]?.example).toBeDefined();
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Properties against the tracer, on random rulesets and random mutations

type Mutable = { -readonly [K in keyof Ruleset]: Ruleset[K] };

/** One random behaviour-relevant edit: delete, swap, flip a verdict, or flip a base chain policy. */
function mutate(rs: Ruleset, r: Rng): Ruleset {
  const tables = rs.tables.map((t) => ({ ...t, chains: t.chains.map((c) => ({ ...c, rules: [...c.rules] })) }));
  const chains = tables.flatMap((t) => t.chains);
  const withRules = chains.filter((c) => c.rules.length > 0);
  const roll = r.next();
  if (withRules.length > 0 && roll < 0.6) {
    const c = r.pick(withRules);
    const i = r.int(0, c.rules.length - 1);
    const rule = c.rules[i] as Rule;
    if (roll < 0.2) c.rules.splice(i, 1);
    else if (roll < 0.4 && c.rules.length > 1) {
      const j = i === 0 ? 1 : i - 1;
      c.rules[i] = c.rules[j] as Rule;
      c.rules[j] = rule;
    } else {
      const v = rule.verdict?.kind === 'accept' ? { kind: 'drop' as const } : { kind: 'accept' as const };
      c.rules[i] = { ...rule, verdict: v };
    }
  } else {
    const bases = chains.filter((c) => c.base);
    const b = bases.length > 0 ? r.pick(bases) : undefined;
    if (b?.base)
      (b as { base: typeof b.base }).base = { ...b.base, policy: b.base.policy === 'drop' ? 'accept' : 'drop' };
  }
  const out: Mutable = { ...rs, tables };
  return out;
}

function probes(rs: { pools: Parameters<typeof generateProbes>[1] }, seed: number, n: number): Packet[] {
  let sport = 20000;
  return generateProbes(rng(seed), rs.pools, n, { nextSport: () => sport++ }).map((p) => ({
    family: p.family,
    iif: p.link,
    saddr: p.saddr,
    daddr: p.daddr,
    l4proto: p.proto,
    sport: p.sport,
    ...(p.dport !== undefined ? { dport: p.dport } : {}),
    ...(p.proto === 1 || p.proto === 58 ? { icmpType: 8, icmpCode: 0 } : {}),
    ctState: 'new' as const,
  }));
}

describe('diff properties (random rulesets, random mutations, tracer as the oracle)', () => {
  it('a reported diff is non-empty exactly where sampled tracer verdicts differ', async () => {
    let compared = 0;
    let differing = 0;
    for (let seed = 1; seed <= 40; seed++) {
      await breathe();
      const gen = generateNftRuleset(seed);
      const a = parseRuleset(gen.text, `gen-${seed}.nft`);
      const b = mutate(a, rng(seed * 7919));
      const r = diff(a, b, 5);
      const sample = probes(gen, seed, 60);
      for (const g of r.groups) for (const f of g.flows) if (f.flow.example) sample.push(f.flow.example);
      for (const p of sample) {
        const ta = trace(a, p, { hook: 'input' });
        const tb = trace(b, p, { hook: 'input' });
        if (ta.uncertain || tb.uncertain) continue;
        compared++;
        const changed = r.changed.contains(p);
        if (ta.verdict !== tb.verdict) differing++;
        expect(changed, `seed ${seed}: ${JSON.stringify(p)} ${ta.verdict} -> ${tb.verdict}`).toBe(
          ta.verdict !== tb.verdict,
        );
      }
      // Every described change is what the tracer sees for its example.
      for (const g of r.groups) {
        if (g.from === 'uncertain' || g.to === 'uncertain') continue;
        for (const f of g.flows) {
          const ex = f.flow.example as Packet;
          expect(trace(a, ex, { hook: 'input' }).verdict, `seed ${seed} old`).toBe(g.from);
          expect(trace(b, ex, { hook: 'input' }).verdict, `seed ${seed} new`).toBe(g.to);
        }
      }
    }
    expect(compared).toBeGreaterThan(1000);
    expect(differing).toBeGreaterThan(0);
  });

  it('deleting every rule reported unreachable (redundant or otherwise) leaves the diff empty', async () => {
    let deleted = 0;
    for (let seed = 100; seed < 140; seed++) {
      await breathe();
      const a = parseRuleset(generateNftRuleset(seed).text, `gen-${seed}.nft`);
      const rep = findUnreachable(compileRuleset(a, { hook: 'input', space: createPacketSpace([a]) }));
      const dead = new Set(rep.unreachable.map((u) => u.ref.rule));
      if (dead.size === 0) continue;
      deleted += dead.size;
      const redundantOnly = new Set(rep.unreachable.filter((u) => u.class === 'redundant').map((u) => u.ref.rule));
      for (const drop of [redundantOnly, dead]) {
        const b: Ruleset = {
          ...a,
          tables: a.tables.map((t) => ({
            ...t,
            chains: t.chains.map((c) => ({ ...c, rules: c.rules.filter((x) => !drop.has(x)) })),
          })),
        };
        expect(diff(a, b).groups, `seed ${seed}`).toEqual([]);
      }
    }
    expect(deleted).toBeGreaterThan(0);
  });
});
