/**
 * Incremental semantic diff: compare two versions of a ruleset only where their rules differ.
 *
 * The rules of the two versions are aligned chain by chain (a Myers diff over the rules' content, origins and texts
 * left out), and the packets any changed rule can match make the region: a packet that matches no inserted, deleted
 * or modified rule walks the same rules in both versions (each unchanged rule decides it the same way, the changed
 * ones never apply to it), so it gets the same verdict. Header rewrites on the path (nat, mark set) can change the
 * packet before a changed rule tests it, so the fields they write are quantified out of the changed rules' matches.
 * Both versions are then compiled with their entry cut to the region (compile.ts's `region`), which keeps every set
 * small, and diffCompiled compares them: its answer is the same as over the whole space, because no packet outside
 * the region changes verdict.
 *
 * Changes the alignment cannot bound (a base chain added, removed, reordered or with another policy or priority)
 * make the region the whole space. Identical rulesets give an empty region and are recognised without compiling.
 */

import { hookEntries } from '../firewall/hook-order.js';
import type { Chain, Field, Rule, Ruleset, Table } from '../firewall/model.js';
import type { TraceHook } from '../firewall/tracer.js';
import { hookPath } from '../firewall/tracer.js';
import { type ChainMemo, type CompiledBddRuleset, compileRuleset, createChainMemo } from './compile.js';
import { jumpTargets, ruleContentKey } from './content-key.js';
import { type DiffOptions, type DiffResult, diffCompiled } from './diff.js';
import type { BddPacketSet, BddPacketSpace } from './packet-space.js';
import { createPacketSpace } from './packet-space.js';
import type { CompiledRuleset } from './types.js';

export { ruleContentKey };

// ---------------------------------------------------------------------------------------------------------------
// Alignment

/** Above this many edits in one chain, the chain is taken as wholly changed (the Myers search is O(n * edits)). */
const MAX_EDITS = 3000;

/**
 * The indices of a and b not on a longest common subsequence (Myers' greedy O((n + m) d) algorithm), or undefined
 * when more than `maxEdits` edits separate them.
 */
export function unmatched(
  a: readonly string[],
  b: readonly string[],
  maxEdits = MAX_EDITS,
): { readonly a: number[]; readonly b: number[] } | undefined {
  // Common prefix and suffix first: most edits are a few lines in a long list.
  let lo = 0;
  while (lo < a.length && lo < b.length && a[lo] === b[lo]) lo++;
  let ea = a.length;
  let eb = b.length;
  while (ea > lo && eb > lo && a[ea - 1] === b[eb - 1]) {
    ea--;
    eb--;
  }
  const n = ea - lo;
  const m = eb - lo;
  const outA: number[] = [];
  const outB: number[] = [];
  if (n === 0 || m === 0) {
    for (let i = lo; i < ea; i++) outA.push(i);
    for (let j = lo; j < eb; j++) outB.push(j);
    return { a: outA, b: outB };
  }
  // Interned keys: integer comparisons in the inner loop.
  const ids = new Map<string, number>();
  const id = (s: string) => {
    let x = ids.get(s);
    if (x === undefined) {
      x = ids.size;
      ids.set(s, x);
    }
    return x;
  };
  const A = Int32Array.from({ length: n }, (_, i) => id(a[lo + i]!));
  const B = Int32Array.from({ length: m }, (_, j) => id(b[lo + j]!));
  const max = Math.min(n + m, maxEdits);
  const off = max + 1;
  const v = new Int32Array(2 * max + 3);
  // trace[d]: the furthest x on each diagonal -d..d before step d (memory O(d^2), not O(d * (n + m))).
  const trace: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= max && found < 0; d++) {
    trace.push(v.slice(off - d, off + d + 1));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1]! < v[off + k + 1]!) ? v[off + k + 1]! : v[off + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && A[x] === B[y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
  }
  if (found < 0) return undefined;
  // Walk back from (n, m): each step is one deletion (from a) or insertion (from b) after a common run.
  let x = n;
  let y = m;
  for (let d = found; d > 0; d--) {
    const prev = trace[d]!;
    const at = (k: number) => prev[k + d]!;
    const k = x - y;
    const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
    const pk = down ? k + 1 : k - 1;
    const px = at(pk);
    const py = px - pk;
    if (down) outB.push(lo + py);
    else outA.push(lo + px);
    x = px;
    y = py;
  }
  outA.reverse();
  outB.reverse();
  return { a: outA, b: outB };
}

// ---------------------------------------------------------------------------------------------------------------
// The region

/** A rule with the chain it is in. */
export interface PlacedRule {
  readonly table: Table;
  readonly chain: Chain;
  readonly rule: Rule;
}

const chainId = (t: Table, c: Chain | string) =>
  `${t.family}\u0000${t.name}\u0000${typeof c === 'string' ? c : c.name}`;

/** The base chains on the hook path, in order, with their specs. */
function entriesKey(rs: Ruleset, hook: TraceHook): string {
  const out: string[] = [];
  for (const h of hookPath(hook)) {
    for (const l3 of ['ipv4', 'ipv6'] as const) {
      for (const e of hookEntries(rs, h, l3)) {
        const refs = e.kind === 'chain' ? [e.base] : e.members;
        for (const r of refs) {
          const b = r.chain.base!;
          out.push(
            `${h}|${l3}|${e.kind}|${r.table.family}|${r.table.name}|${r.chain.name}|${b.type}|${b.hook}|${b.priority}|${b.policy}|${b.device ?? ''}`,
          );
        }
      }
    }
  }
  return out.join('\n');
}

/** Whether the base chains on the hook path are the same in both versions (else no change can be bounded). */
const sameEntries = (prev: Ruleset, next: Ruleset, hook: TraceHook): boolean =>
  entriesKey(prev, hook) === entriesKey(next, hook);

/**
 * The rules of `next` and `prev` that differ (by content, chain by chain: `key` says what a rule is), or 'all' when a
 * base chain differs.
 */
export function changedRules(
  prev: Ruleset,
  next: Ruleset,
  hook: TraceHook,
  keyOf: (r: Rule) => string = ruleContentKey,
): { readonly prev: readonly PlacedRule[]; readonly next: readonly PlacedRule[] } | 'all' {
  // The base chains on the hook path must be the same, in the same order, with the same specs.
  if (!sameEntries(prev, next, hook)) return 'all';
  const chainsOf = (rs: Ruleset) => {
    const m = new Map<string, { table: Table; chain: Chain }>();
    for (const table of rs.tables) {
      if (table.outOfScope) continue;
      for (const chain of table.chains) m.set(chainId(table, chain), { table, chain });
    }
    return m;
  };
  const a = chainsOf(prev);
  const b = chainsOf(next);
  const outPrev: PlacedRule[] = [];
  const outNext: PlacedRule[] = [];
  const all = (out: PlacedRule[], x: { table: Table; chain: Chain }) => {
    for (const rule of x.chain.rules) out.push({ ...x, rule });
  };
  for (const [key, xa] of a) {
    const xb = b.get(key);
    if (!xb) {
      all(outPrev, xa);
      continue;
    }
    const u = unmatched(xa.chain.rules.map(keyOf), xb.chain.rules.map(keyOf));
    if (!u) {
      all(outPrev, xa);
      all(outNext, xb);
      continue;
    }
    for (const i of u.a) outPrev.push({ ...xa, rule: xa.chain.rules[i]! });
    for (const j of u.b) outNext.push({ ...xb, rule: xb.chain.rules[j]! });
  }
  for (const [key, xb] of b) if (!a.has(key)) all(outNext, xb);
  return { prev: outPrev, next: outNext };
}

const DNAT_FIELDS: readonly Field[] = ['ip.daddr', 'ip6.daddr', 'dport', 'daddr.type'];
const SNAT_FIELDS: readonly Field[] = ['ip.saddr', 'ip6.saddr', 'sport'];

/** The fields a rule's `set` statements write (mark). */
const setFields = (r: Rule): Field[] => r.statements.flatMap((st) => (st.kind === 'set' ? [st.field] : []));

/** The fields a rule's nat verdict rewrites (none without one). */
function natFields(r: Rule): readonly Field[] {
  const v = r.verdict;
  if (v?.kind !== 'nat') return [];
  return v.type === 'dnat' || v.type === 'redirect' ? DNAT_FIELDS : SNAT_FIELDS;
}

/** The chains of `table` a base chain reaches by jumps, gotos and verdict maps, itself included. */
function chainsReached(table: Table, base: Chain): Chain[] {
  const byName = new Map(table.chains.map((c) => [c.name, c]));
  const seen = new Set<string>();
  const out: Chain[] = [];
  const stack = [base];
  while (stack.length > 0) {
    const c = stack.pop()!;
    if (seen.has(c.name)) continue;
    seen.add(c.name);
    out.push(c);
    for (const r of c.rules)
      for (const t of jumpTargets(r)) {
        const x = byName.get(t);
        if (x) stack.push(x);
      }
  }
  return out;
}

/**
 * Where the rules of one ruleset can apply on a hook path, as packet sets (supersets, from the rules' own text):
 * a chain is entered only by packets its jumps let in, and a rule sees packets rewritten only by the rewrites that
 * can run before it (nat and mark set in earlier base chains, mark set in its own), whose fields are quantified out.
 */
class Reach {
  private readonly callers = new Map<string, { table: Table; chain: Chain; rule: Rule }[]>();
  private readonly rewritten = new Map<string, Set<Field>>();
  private readonly reachMemo = new Map<string, number>();
  private readonly varSets = new Map<string, number>();

  constructor(
    readonly rs: Ruleset,
    readonly hook: TraceHook,
    readonly space: BddPacketSpace,
  ) {
    for (const table of rs.tables) {
      if (table.outOfScope) continue;
      for (const chain of table.chains) {
        for (const rule of chain.rules) {
          for (const t of jumpTargets(rule)) {
            const id = chainId(table, t);
            const list = this.callers.get(id);
            if (list) list.push({ table, chain, rule });
            else this.callers.set(id, [{ table, chain, rule }]);
          }
        }
      }
    }
    // The base chains of the path in order; each with the chains it reaches. A rule may see the rewrites of every
    // earlier entry, and the mark changes of its own (a nat verdict ends its entry's traversal).
    const before = new Set<Field>();
    for (const h of hookPath(hook)) {
      for (const l3 of ['ipv4', 'ipv6'] as const) {
        for (const e of hookEntries(rs, h, l3)) {
          const refs = e.kind === 'chain' ? [e.base] : e.members;
          const chains = refs.flatMap((r) =>
            chainsReached(r.table, r.chain).map((chain) => ({ table: r.table, chain })),
          );
          const own = new Set<Field>();
          const all = new Set<Field>();
          for (const { chain } of chains) {
            for (const r of chain.rules) {
              for (const f of setFields(r)) {
                own.add(f);
                all.add(f);
              }
              for (const f of natFields(r)) all.add(f);
            }
          }
          for (const { table, chain } of chains) {
            const id = chainId(table, chain);
            let fs = this.rewritten.get(id);
            if (!fs) {
              fs = new Set();
              this.rewritten.set(id, fs);
            }
            for (const f of before) fs.add(f);
            for (const f of own) fs.add(f);
          }
          for (const f of all) before.add(f);
        }
      }
    }
  }

  /** The variables of the fields a rule of this chain may see rewritten (1: none). */
  private quantifier(id: string): number {
    const fs = this.rewritten.get(id);
    if (!fs || fs.size === 0) return 1;
    const key = [...fs].sort().join(',');
    let v = this.varSets.get(key);
    if (v === undefined) {
      v = this.space.fieldVarSet([...fs].sort());
      this.varSets.set(key, v);
    }
    return v;
  }

  /** The rule's own match, opaque matches left out (they may match) and rewritten fields quantified. */
  private match(rule: Rule, id: string): number {
    const b = this.space.bdd;
    let m = 1;
    for (const x of rule.matches) {
      if (x.kind === 'opaque') continue;
      m = b.and(m, this.space.matchNode(x));
      if (m === 0) return 0;
    }
    const q = this.quantifier(id);
    return q === 1 ? m : b.exists(m, q);
  }

  /** Packets that may enter the chain (a superset). */
  reach(table: Table, chain: Chain, visiting = new Set<string>()): number {
    const id = chainId(table, chain);
    const known = this.reachMemo.get(id);
    if (known !== undefined) return known;
    const b = this.space.bdd;
    const sp = this.space;
    let r: number;
    if (chain.base || visiting.has(id)) {
      r =
        table.family === 'ip'
          ? sp.fieldEquals('nfproto', 0)
          : table.family === 'ip6'
            ? sp.fieldEquals('nfproto', 1)
            : 1;
    } else {
      visiting.add(id);
      const parts: number[] = [];
      for (const j of this.callers.get(id) ?? []) {
        let cond = this.match(j.rule, chainId(j.table, j.chain));
        const v = j.rule.verdict;
        if (cond !== 0 && v?.kind === 'vmap') {
          // Only the entries that go to this chain.
          const keys = v.entries.filter(
            (e) => (e.verdict.kind === 'jump' || e.verdict.kind === 'goto') && e.verdict.target === chain.name,
          );
          let k = b.and(
            sp.presentAll(v.fields),
            sp.tuplesSet(
              v.fields,
              keys.map((e) => e.key),
            ),
          );
          const q = this.quantifier(chainId(j.table, j.chain));
          if (q !== 1) k = b.exists(k, q);
          cond = b.and(cond, k);
        }
        if (cond !== 0) parts.push(b.and(cond, this.reach(j.table, j.chain, visiting)));
      }
      visiting.delete(id);
      r = b.orAll(parts);
    }
    this.reachMemo.set(id, r);
    return r;
  }

  /** Packets the rule may apply to (a superset). */
  where(x: PlacedRule): number {
    const m = this.match(x.rule, chainId(x.table, x.chain));
    return m === 0 ? 0 : this.space.bdd.and(m, this.reach(x.table, x.chain));
  }
}

/**
 * A set of packets that holds every packet whose verdict on the hook path may differ between `prev` and `next`
 * (the union of what the changed rules can apply to), in `space` (which must cover both rulesets).
 */
export function changedRegion(prev: Ruleset, next: Ruleset, hook: TraceHook, space: BddPacketSpace): BddPacketSet {
  return regionParts(prev, next, hook, space).region;
}

/** The region and the parts it is the union of (one per changed rule). */
function regionParts(
  prev: Ruleset,
  next: Ruleset,
  hook: TraceHook,
  space: BddPacketSpace,
  key: (r: Rule) => string = ruleContentKey,
): { readonly region: BddPacketSet; readonly parts: readonly number[] } {
  const changed = changedRules(prev, next, hook, key);
  if (changed === 'all') return { region: space.all(), parts: [space.universe] };
  const b = space.bdd;
  const parts: number[] = [];
  for (const [rs, list] of [
    [prev, changed.prev],
    [next, changed.next],
  ] as const) {
    if (list.length === 0) continue;
    const reach = new Reach(rs, hook, space);
    for (const x of list) {
      const w = reach.where(x);
      if (w !== 0) parts.push(w);
    }
  }
  return { region: space.wrap(b.and(b.orAll(parts), space.universe)), parts };
}

// ---------------------------------------------------------------------------------------------------------------
// Rules whose findings a change leaves alone

/** A rule as a finding sees it: what it does and how it is written (a finding quotes its rule and its deciders). */
const writtenKeys = new WeakMap<Rule, string>();
const writtenKey = (r: Rule): string => {
  // Asked several times per rule by one plan (alignment per hook path, entries, counterparts): built once.
  let k = writtenKeys.get(r);
  if (k === undefined) {
    k = `${ruleContentKey(r)}\u0000${r.text}`;
    writtenKeys.set(r, k);
  }
  return k;
};

/** The fields some rule of the rulesets may rewrite on some path (nat, mark set). */
function rewrittenFields(rulesets: readonly Ruleset[]): Field[] {
  const out = new Set<Field>();
  for (const rs of rulesets) {
    for (const t of rs.tables) {
      if (t.outOfScope) continue;
      for (const c of t.chains) {
        for (const r of c.rules) for (const f of [...setFields(r), ...natFields(r)]) out.add(f);
      }
    }
  }
  return [...out].sort();
}

/** Per chain: the hook paths whose base chains reach it by jumps, gotos and verdict maps (the paths holding its rules). */
function pathsHolding(rs: Ruleset, hooks: readonly TraceHook[]): Map<string, string> {
  const on = new Map<string, Set<TraceHook>>();
  for (const hook of hooks) {
    for (const h of hookPath(hook)) {
      for (const l3 of ['ipv4', 'ipv6'] as const) {
        for (const e of hookEntries(rs, h, l3)) {
          for (const r of e.kind === 'chain' ? [e.base] : e.members) {
            for (const c of chainsReached(r.table, r.chain)) {
              const id = chainId(r.table, c);
              const set = on.get(id) ?? new Set<TraceHook>();
              set.add(hook);
              on.set(id, set);
            }
          }
        }
      }
    }
  }
  return new Map([...on].map(([id, set]) => [id, [...set].sort().join(',')]));
}

/**
 * Per chain: the rules that jump or go to it (their chain and how they are written), sorted. A rule kept out of its
 * chain is reported with the jumps its packets pass: equal entries give equal reports.
 */
function entriesOf(rs: Ruleset): Map<string, string> {
  const on = new Map<string, string[]>();
  for (const t of rs.tables) {
    if (t.outOfScope) continue;
    for (const c of t.chains) {
      for (const r of c.rules) {
        for (const target of jumpTargets(r)) {
          const id = chainId(t, target);
          const list = on.get(id) ?? [];
          list.push(`${c.name}\u0000${writtenKey(r)}`);
          on.set(id, list);
        }
      }
    }
  }
  return new Map([...on].map(([id, list]) => [id, list.sort().join('\n')]));
}

/**
 * The rules of each version whose per-rule findings (unreachable, shadowed, redundant) are the same in the other
 * version, so that a plan, which reports only the findings a change introduces or fixes, can leave them out on both
 * sides. A rule is settled when:
 * - the alignment pairs it with a rule of the other version written the same way (content and text: a finding
 *   quotes its rule and its deciders), and its text is unique in both versions (a finding's identity is its rule's
 *   text and message, so two copies of a line could trade findings);
 * - its chain is on the same hook paths in both versions, entered by the same jumps (a jump added into a chain puts
 *   its rules on a path, where they are analysed for the first time; the report of a rule whose packets never enter
 *   its chain names what decided them before they reached a jump);
 * - no packet its own match can apply to (opaque matches left out, every field a rule of either version rewrites
 *   quantified, and the interfaces a path may lack) is in the changed region of a hook path that holds it (of
 *   `hooks`).
 * Every such packet walks the same rules in both versions, so on each path the rule's hits, the packets of its match
 * that enter its chain, who decides them and each one's share are the same sets in the shared space, and its
 * findings differ at most in positions and line numbers (which a plan's finding identity leaves out). No rule is
 * settled when a hook's change can't be bounded (a base chain changed). Returns a test per version; nothing is
 * computed before the first question, and each region on the first question about its hook path.
 *
 * With `compiled` (both versions compiled on each hook, in `space`, as the findings are computed), the region is
 * the packets that hit a changed rule in either version, not every packet a changed rule's match allows: a packet
 * that hits no changed rule in either version meets the same unchanged rules in the same order in both (an inserted
 * rule it reaches does not match it, a deleted one it reached did not), so it walks the same way. Hits are "may"
 * sets (opaque matches may match), so this holds whatever the opaque matches do. On a 1% change of the adversarial
 * 10k shape, most changed rules are never hit and the others are hit by a small part of their match.
 */
export function settledRules(
  prev: Ruleset,
  next: Ruleset,
  hooks: readonly TraceHook[],
  space: BddPacketSpace,
  compiled?: (version: 'prev' | 'next', hook: TraceHook) => CompiledRuleset,
): { readonly prev: (rule: Rule) => boolean; readonly next: (rule: Rule) => boolean } {
  // Nothing is computed before the first question: an audit that finds no unreachable rule asks none.
  let tests: { readonly prev: (rule: Rule) => boolean; readonly next: (rule: Rule) => boolean } | undefined;
  const get = () => {
    tests ??= settledTests(prev, next, hooks, space, compiled);
    return tests;
  };
  return { prev: (rule) => get().prev(rule), next: (rule) => get().next(rule) };
}

function settledTests(
  prev: Ruleset,
  next: Ruleset,
  hooks: readonly TraceHook[],
  space: BddPacketSpace,
  compiled: ((version: 'prev' | 'next', hook: TraceHook) => CompiledRuleset) | undefined,
): { readonly prev: (rule: Rule) => boolean; readonly next: (rule: Rule) => boolean } {
  const never = () => false;
  // The alignment does not depend on the hook path; whether a change can be bounded does.
  if (hooks.length === 0 || !hooks.every((hook) => sameEntries(prev, next, hook))) return { prev: never, next: never };
  const changed = changedRules(prev, next, hooks[0]!, writtenKey);
  if (changed === 'all') return { prev: never, next: never };
  const b = space.bdd;
  // The regions (one per hook path: a rule's report on a path depends on that path's walks only) and the rules'
  // tests are computed when first asked: an audit asks only about the rules it finds unreachable. A region is kept
  // from collection for as long as the answers are asked for (the plan's).
  const regions = new Map<TraceHook, number>();
  // The fields quantified out of a rule's match: those a rewrite may change, and the interfaces a path's chains may
  // not have (the engine matches an absent interface as absent, whatever the set's variables say: oifname before
  // routing, iifname on locally generated packets).
  const rewritten = rewrittenFields([prev, next]);
  const quantifiers = new Map<string, number>();
  const quantifier = (on: readonly TraceHook[]): number => {
    const key = on.join(',');
    let q = quantifiers.get(key);
    if (q === undefined) {
      const fields = new Set<Field>(rewritten);
      for (const hook of on) fields.add(hook === 'output' ? 'iifname' : 'oifname');
      const v = fields.size > 0 ? space.fieldVarSet([...fields].sort()) : 1;
      if (v !== 1) b.addRoots((mark) => mark(v));
      quantifiers.set(key, v);
      q = v;
    }
    return q;
  };
  const regionOf = (hook: TraceHook): number => {
    let r = regions.get(hook);
    if (r === undefined) {
      const node = compiled
        ? hitRegion(changed, hook, compiled, b)
        : regionParts(prev, next, hook, space, writtenKey).region.node;
      b.addRoots((mark) => mark(node));
      regions.set(hook, node);
      r = node;
    }
    return r;
  };
  // Aligned rules have the same content and paths: one test per content and paths.
  const clear = new Map<string, boolean>();
  const isClear = (rule: Rule, on: readonly TraceHook[]): boolean => {
    const k = `${writtenKey(rule)}\u0000${on.join(',')}`;
    let v = clear.get(k);
    if (v === undefined) {
      let m = 1;
      for (const x of rule.matches) {
        if (x.kind === 'opaque') continue;
        m = b.and(m, space.matchNode(x));
        if (m === 0) break;
      }
      const qv = quantifier(on);
      if (m !== 0 && qv !== 1) m = b.exists(m, qv);
      v = on.every((hook) => b.disjoint(m, regionOf(hook)));
      clear.set(k, v);
    }
    return v;
  };
  const pathsPrev = pathsHolding(prev, hooks);
  const pathsNext = pathsHolding(next, hooks);
  const entriesPrev = entriesOf(prev);
  const entriesNext = entriesOf(next);
  // A finding's identity is its rule's text and message: two rules written alike (a copied line) can trade
  // findings when a plan pairs them up, so which one is reported depends on which is left out. Only rules whose
  // text is unique in both versions are settled: each identity then belongs to one rule per version.
  const texts = new Map<string, number>();
  for (const rs of [prev, next]) {
    const seen = new Map<string, number>();
    for (const t of rs.tables) {
      if (t.outOfScope) continue;
      for (const c of t.chains) for (const r of c.rules) seen.set(r.text, (seen.get(r.text) ?? 0) + 1);
    }
    for (const [text, n] of seen) texts.set(text, Math.max(texts.get(text) ?? 0, n));
  }
  const settled = (rs: Ruleset, moved: readonly PlacedRule[]): ((rule: Rule) => boolean) => {
    const changedHere = new Set(moved.map((x) => x.rule));
    // The rules whose chain is on the same hook paths in both versions (and whose content is unchanged).
    const candidates = new Map<Rule, readonly TraceHook[]>();
    for (const t of rs.tables) {
      if (t.outOfScope) continue;
      for (const c of t.chains) {
        const id = chainId(t, c);
        const on = pathsPrev.get(id) ?? '';
        if (on !== (pathsNext.get(id) ?? '')) continue;
        if ((entriesPrev.get(id) ?? '') !== (entriesNext.get(id) ?? '')) continue;
        const list = on === '' ? [] : (on.split(',') as TraceHook[]);
        for (const r of c.rules) if (!changedHere.has(r) && texts.get(r.text) === 1) candidates.set(r, list);
      }
    }
    return (rule) => {
      const on = candidates.get(rule);
      return on !== undefined && isClear(rule, on);
    };
  };
  return { prev: settled(prev, changed.prev), next: settled(next, changed.next) };
}

/** The packets that hit a changed rule on the hook path, as that rule sees them, in the version it belongs to. */
function hitRegion(
  changed: { readonly prev: readonly PlacedRule[]; readonly next: readonly PlacedRule[] },
  hook: TraceHook,
  compiled: (version: 'prev' | 'next', hook: TraceHook) => CompiledRuleset,
  b: BddPacketSpace['bdd'],
): number {
  const parts: number[] = [];
  for (const version of ['prev', 'next'] as const) {
    const list = changed[version];
    if (list.length === 0) continue;
    const c = compiled(version, hook);
    const mine = new Set(list.map((x) => x.rule));
    for (const ref of c.rules()) {
      if (!mine.has(ref.rule)) continue;
      const h = c.hits(ref) as BddPacketSet;
      if (!h.isEmpty()) parts.push(h.node);
    }
  }
  return b.orAll(parts);
}

export interface DiffRulesetsOptions extends DiffOptions {
  readonly hook: TraceHook;
  /** A space over both rulesets (default: one made here). */
  readonly space?: BddPacketSpace;
  /** Chain runs to reuse (of `space`; default: one memo for the two compilations of this diff). */
  readonly memo?: ChainMemo;
  /** Progress of each version's compilation (progress lines): rules walked for the first time, of all rules. */
  readonly onProgress?: (version: 'old' | 'new', walked: number, total: number) => void;
}

/**
 * The semantic diff of two rulesets on a hook path (as diffCompiled over full compilations, the same answer),
 * computed over the region their changed rules can match only.
 */
export function diffRulesets(prev: Ruleset, next: Ruleset, opts: DiffRulesetsOptions): DiffResult {
  const space = opts.space ?? createPacketSpace([prev, next]);
  const r = regionParts(prev, next, opts.hook, space);
  const region = r.region.node;
  const parts = r.parts;
  // The region must survive the first compilation's collections until the second one holds it.
  const unroot = space.bdd.addRoots((mark) => {
    mark(region);
    for (const p of parts) mark(p);
  });
  try {
    const progress = opts.onProgress;
    // The new version replays the old one's runs of every chain whose content and entry are unchanged.
    const memo = opts.memo ?? createChainMemo(space);
    const compile = (rs: Ruleset, version: 'old' | 'new'): CompiledBddRuleset =>
      compileRuleset(rs, {
        hook: opts.hook,
        space,
        memo,
        region: space.wrap(region),
        regionParts: parts.map((p) => space.wrap(p)),
        ...(progress ? { onProgress: (w: number, t: number) => progress(version, w, t) } : {}),
      });
    const { hook: _h, space: _s, onProgress: _p, ...diffOpts } = opts;
    const a = compile(prev, 'old');
    const b = compile(next, 'new');
    return diffCompiled(a, b, diffOpts);
  } finally {
    unroot();
  }
}
