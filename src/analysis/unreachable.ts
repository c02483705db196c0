/**
 * Unreachable rules: every rule that can never apply to a packet on a hook path, classified and with its cover.
 *
 * - empty: the rule's own match is unsatisfiable (`tcp dport 22 udp dport 53`, `ip saddr 10.0.0.0/8 ip saddr
 *   192.168.0.0/16`).
 * - shadowed: the packets it was written for are decided before it, and at least one of them gets a different
 *   verdict than the rule would give: a conflict, usually a bug (an accept that never accepts).
 * - redundant: every packet it was written for already gets the outcome the rule would give.
 *
 * "The packets it was written for" are those of its match that enter its chain. The cover is computed exactly
 * from the engine's decisions restricted to that set, so a rule hidden by two earlier rules together (neither
 * alone) is found and both are named. When no packet of its match enters its chain at all, the cover names the
 * jumps whose condition keeps them out, and whatever decided the packets before they got that far (earlier base
 * chains' drops, for instance).
 *
 * Rules without a final verdict (counter, log, return, ...) cannot conflict and are redundant when unreachable;
 * unreachable jump/goto/vmap/nat/queue rules are reported as shadowed, since they would have changed the path.
 * Rules of chains that no base chain jumps to are listed separately: they are never entered on any hook.
 */
import type { FinalVerdict, Rule, Ruleset } from '../firewall/model.js';
import type { TraceHook } from '../firewall/tracer.js';
import { type DeciderInfo, decidersOf, formatDecider, share, sortedDeciders } from './describe.js';
import type { CompiledRuleset, Decision, PacketSet, PacketSpace, RuleRef } from './types.js';

export type UnreachableClass = 'empty' | 'shadowed' | 'redundant';

/** What the rule does when it applies. */
export type RuleKind =
  | 'accept'
  | 'drop'
  | 'reject'
  | 'queue'
  | 'continue'
  | 'return'
  | 'jump'
  | 'goto'
  | 'nat'
  | 'vmap'
  | 'no-verdict';

export interface CoverItem {
  /** `decided`: decided these packets before the rule; `entry`: a jump/goto into the rule's chain whose condition
   * keeps these packets out. */
  readonly role: 'decided' | 'entry';
  readonly decider: DeciderInfo;
}

export interface UnreachableRule {
  readonly ref: RuleRef;
  readonly class: UnreachableClass;
  readonly kind: RuleKind;
  /** Packets of its match the analysis is about (0 for empty rules). */
  readonly packets: bigint;
  /** Whether no packet of the rule's match enters its chain. */
  readonly chainKeepsOut: boolean;
  readonly cover: readonly CoverItem[];
  /** Packets of the scope whose outcome depends on opaque matches (not in the cover: nobody decides them surely). */
  readonly uncertain?: bigint;
  /** The packets of the scope that get a different verdict (shadowed rules only). */
  readonly conflicting?: PacketSet;
}

export interface NeverEnteredRule {
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  readonly position: number;
  readonly rule: Rule;
}

export interface UnreachableReport {
  readonly hook: TraceHook;
  readonly rulesChecked: number;
  readonly unreachable: readonly UnreachableRule[];
  readonly neverEntered: readonly NeverEnteredRule[];
}

export function ruleKind(rule: Rule): RuleKind {
  const v = rule.verdict;
  if (!v) return 'no-verdict';
  return v.kind;
}

/** The final verdict a rule gives, when it gives one. */
function ruleOutcome(rule: Rule): FinalVerdict | undefined {
  const k = ruleKind(rule);
  return k === 'accept' || k === 'drop' || k === 'reject' ? k : undefined;
}

const chainKey = (family: string, table: string, chain: string) => `${family}\u0000${table}\u0000${chain}`;

function targetsOf(rule: Rule): string[] {
  const v = rule.verdict;
  if (!v) return [];
  if (v.kind === 'jump' || v.kind === 'goto') return [v.target];
  if (v.kind === 'vmap') {
    return v.entries.flatMap((e) => (e.verdict.kind === 'jump' || e.verdict.kind === 'goto' ? [e.verdict.target] : []));
  }
  return [];
}

/** Rules of chains that no base chain (of any hook) reaches through jumps, gotos and verdict maps. */
export function neverEnteredRules(ruleset: Ruleset): NeverEnteredRule[] {
  const out: NeverEnteredRule[] = [];
  for (const t of ruleset.tables) {
    if (t.outOfScope) continue;
    const byName = new Map(t.chains.map((c) => [c.name, c]));
    const seen = new Set<string>();
    const stack = t.chains.filter((c) => c.base).map((c) => c.name);
    while (stack.length > 0) {
      const name = stack.pop() as string;
      if (seen.has(name)) continue;
      seen.add(name);
      for (const r of byName.get(name)?.rules ?? []) for (const target of targetsOf(r)) stack.push(target);
    }
    for (const c of t.chains) {
      if (seen.has(c.name)) continue;
      c.rules.forEach((rule, i) => {
        out.push({ family: t.family, table: t.name, chain: c.name, position: i + 1, rule });
      });
    }
  }
  return out;
}

export interface FindUnreachableOptions {
  /** Rules not to analyse (e.g. known to be reachable on another hook path): left out of the report. */
  readonly skip?: (rule: Rule) => boolean;
  /** Called before each rule is examined: rules done so far and how many there are (progress lines). */
  readonly onProgress?: (done: number, total: number) => void;
}

export function findUnreachable(compiled: CompiledRuleset, opts: FindUnreachableOptions = {}): UnreachableReport {
  const rules = compiled.rules();
  const firstOf = new Map<string, RuleRef>();
  const entriesOf = new Map<string, RuleRef[]>();
  for (const r of rules) {
    const key = chainKey(r.family, r.table, r.chain);
    const first = firstOf.get(key);
    if (!first || r.position < first.position) firstOf.set(key, r);
    for (const target of targetsOf(r.rule)) {
      const tk = chainKey(r.family, r.table, target);
      const list = entriesOf.get(tk);
      if (list) list.push(r);
      else entriesOf.set(tk, [r]);
    }
  }
  // The packets of a rule's match that enter its chain: arriving(first rule) and match, cut to the match before
  // the images are taken (a chain's whole entry set can be large and is never needed on its own).
  const enteredWithin = (key: string, match: PacketSet): PacketSet => {
    const first = firstOf.get(key);
    return first ? compiled.arrivingWithin(first, match) : compiled.space.none();
  };

  const out: UnreachableRule[] = [];
  const kept: PacketSet[] = [];
  const space = compiled.space as { safePoint?: (keep: readonly PacketSet[]) => void };

  // What a rule's report depends on is its chain and its match set: the packets of the match entering the chain
  // (its scope), who decides them and who keeps them out. Two memos share that work without changing an answer:
  // - the reports of rules already asked, per chain, by match (and the rule's outcome or kind): a rule written again
  //   gets the same report;
  // - the last rule's scope and cover, for the next rule of its chain with the same match but another verdict
  //   (ufw-user-limit's log and reject: every entry of the chain's arriving set built once instead of twice).
  interface Scope {
    readonly chainKeepsOut: boolean;
    readonly scope: PacketSet;
    readonly cover: readonly CoverItem[];
    /** The decisions of the scope when it enters the chain (what differs from an outcome is read from them). */
    readonly decisions?: readonly Decision[];
  }
  const asked = new Map<string, { match: PacketSet; found: Omit<UnreachableRule, 'ref'> }[]>();
  let last: { key: string; match: PacketSet; at: Scope } | undefined;
  const scopeOf = (key: string, match: PacketSet): Scope => {
    if (last && last.key === key && last.match.equals(match)) return last.at;
    const inChain = enteredWithin(key, match);
    let at: Scope;
    if (!inChain.isEmpty()) {
      const ds = compiled.decisions(inChain);
      const cover = sortedDeciders(ds).map((d): CoverItem => ({ role: 'decided', decider: d }));
      at = { chainKeepsOut: false, scope: inChain, cover, decisions: ds };
    } else {
      // No packet of the match enters the chain: name the entries that keep them out, and what decided the
      // packets that never got to an entry.
      const cover: CoverItem[] = [];
      let atEntries = compiled.space.none();
      for (const j of entriesOf.get(key) ?? []) {
        const at = compiled.arrivingWithin(j, match);
        if (at.isEmpty()) continue;
        atEntries = atEntries.or(at);
        cover.push({
          role: 'entry',
          decider: {
            kind: 'rule',
            verdict: 'accept',
            family: j.family,
            table: j.table,
            chain: j.chain,
            position: j.position,
            file: j.rule.origin.file,
            line: j.rule.origin.line,
            text: j.rule.text,
            packets: at.count(),
          },
        });
      }
      const before = match.minus(atEntries);
      for (const d of decidersOf(compiled, before)) cover.push({ role: 'decided', decider: d });
      at = { chainKeepsOut: true, scope: atEntries.isEmpty() ? match : atEntries, cover };
    }
    last = { key, match, at };
    return at;
  };

  let done = 0;
  for (const ref of rules) {
    opts.onProgress?.(done++, rules.length);
    if (opts.skip?.(ref.rule) || !compiled.hits(ref).isEmpty()) continue;
    // Nodes made for earlier rules may be reclaimed: of their sets only the conflicting packets, the memos' match
    // sets and the last scope are kept.
    const lastSets = last ? [last.match, last.at.scope, ...(last.at.decisions ?? []).map((d) => d.packets)] : [];
    kept.push(...lastSets);
    space.safePoint?.(kept);
    kept.length -= lastSets.length;
    const kind = ruleKind(ref.rule);
    // An ip table's chain sees IPv4 packets only: its rule's match means the IPv4 part (IPv6 packets never get
    // there, and must not count as "kept out" or "decided elsewhere").
    const fam = ref.family === 'ip' ? 'ipv4' : ref.family === 'ip6' ? 'ipv6' : undefined;
    const raw = compiled.matchSet(ref);
    const match = fam ? raw.and(compiled.space.fromCube({ nfproto: [{ kind: 'symbol', value: fam }] })) : raw;
    if (match.isEmpty()) {
      out.push({ ref, class: 'empty', kind, packets: 0n, chainKeepsOut: false, cover: [] });
      continue;
    }
    const key = chainKey(ref.family, ref.table, ref.chain);
    const outcome = ruleOutcome(ref.rule);
    const memoKey = `${key}\u0000${outcome ?? kind}\u0000${match.count()}`;
    const earlier = asked.get(memoKey)?.find((e) => e.match.equals(match));
    if (earlier) {
      out.push({ ref, ...earlier.found });
      continue;
    }
    const { chainKeepsOut, scope, cover, decisions } = scopeOf(key, match);
    let cls: UnreachableClass;
    let conflicting: PacketSet | undefined;
    if (outcome) {
      // Only certain verdicts count as a conflict: packets whose fate hangs on an opaque match prove nothing. When
      // the scope is what the decisions were asked for, each certain packet has one decider, whose verdict is the
      // packet's.
      const differ = decisions
        ? unionOf(
            compiled.space,
            decisions.filter((d) => d.verdict !== outcome).map((d) => d.packets),
          )
        : scope.minus(compiled.verdict(outcome)).minus(compiled.uncertain());
      cls = differ.isEmpty() ? 'redundant' : 'shadowed';
      if (cls === 'shadowed') {
        conflicting = differ;
        kept.push(differ);
      }
    } else {
      cls =
        kind === 'jump' || kind === 'goto' || kind === 'vmap' || kind === 'nat' || kind === 'queue'
          ? 'shadowed'
          : 'redundant';
    }
    const uncertain = compiled.uncertainWithin(scope).count();
    const found: Omit<UnreachableRule, 'ref'> = {
      class: cls,
      uncertain,
      kind,
      packets: scope.count(),
      chainKeepsOut,
      cover,
      ...(conflicting ? { conflicting } : {}),
    };
    const list = asked.get(memoKey);
    if (list) list.push({ match, found });
    else asked.set(memoKey, [{ match, found }]);
    kept.push(match);
    out.push({ ref, ...found });
  }
  return {
    hook: compiled.hook,
    rulesChecked: rules.length,
    unreachable: out,
    neverEntered: neverEnteredRules(compiled.ruleset),
  };
}

/** The union of sets, pairwise (a left fold grows one large set step by step). */
function unionOf(space: PacketSpace, sets: readonly PacketSet[]): PacketSet {
  if (sets.length === 0) return space.none();
  let layer = sets;
  while (layer.length > 1) {
    const next: PacketSet[] = [];
    for (let i = 0; i < layer.length; i += 2) next.push(i + 1 < layer.length ? layer[i]!.or(layer[i + 1]!) : layer[i]!);
    layer = next;
  }
  return layer[0]!;
}

const where = (r: Rule) => `${r.origin.file}:${r.origin.line}`;

export function renderUnreachable(rep: UnreachableReport): string {
  const lines: string[] = [];
  const n = rep.unreachable.length;
  lines.push(
    `hook ${rep.hook}: ${rep.rulesChecked} rules checked, ${n === 0 ? 'no unreachable rules' : `${n} unreachable`}`,
  );
  for (const u of rep.unreachable) {
    lines.push('');
    lines.push(`${where(u.ref.rule)}: ${u.ref.rule.text}  [${u.ref.table}/${u.ref.chain} #${u.ref.position}]`);
    const kind = u.kind === 'no-verdict' ? 'rule without verdict' : `${u.kind} rule`;
    if (u.class === 'empty') {
      lines.push(`  empty (${kind}): its match can never be true`);
      continue;
    }
    const why =
      u.class === 'shadowed'
        ? u.conflicting
          ? `${u.conflicting.count() === u.packets ? 'all' : share(u.conflicting.count(), u.packets)} of its packets get a different verdict`
          : 'it never gets to act on its packets'
        : 'its packets already get the same outcome';
    lines.push(`  ${u.class} (${kind}): ${why}`);
    if (u.chainKeepsOut) lines.push('  none of its packets enter its chain');
    if (u.uncertain !== undefined && u.uncertain > 0n) {
      lines.push(
        `    uncertain for ${share(u.uncertain, u.packets)}: opaque matches (limits, unknown sets, ...) decide them`,
      );
    }
    for (const c of u.cover) {
      const d = c.decider;
      if (c.role === 'entry') lines.push(`    kept out by the condition of ${formatDecider(d)}`);
      else lines.push(`    covered by (${d.verdict}, ${share(d.packets, u.packets)}) ${formatDecider(d)}`);
    }
  }
  if (rep.neverEntered.length > 0) {
    lines.push('');
    lines.push(`chain never entered (no base chain jumps to it): ${rep.neverEntered.length} rules`);
    for (const r of rep.neverEntered) {
      lines.push(`  ${where(r.rule)}: ${r.rule.text}  [${r.table}/${r.chain} #${r.position}]`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export function unreachableJson(rep: UnreachableReport): unknown {
  return {
    hook: rep.hook,
    rulesChecked: rep.rulesChecked,
    unreachable: rep.unreachable.map((u) => ({
      file: u.ref.rule.origin.file,
      line: u.ref.rule.origin.line,
      family: u.ref.family,
      table: u.ref.table,
      chain: u.ref.chain,
      position: u.ref.position,
      text: u.ref.rule.text,
      class: u.class,
      kind: u.kind,
      packets: u.packets,
      chainKeepsOut: u.chainKeepsOut,
      ...(u.conflicting ? { conflictingPackets: u.conflicting.count() } : {}),
      ...(u.uncertain ? { uncertainPackets: u.uncertain } : {}),
      cover: u.cover.map((c) => ({ role: c.role, ...c.decider })),
    })),
    neverEntered: rep.neverEntered.map((r) => ({
      file: r.rule.origin.file,
      line: r.rule.origin.line,
      family: r.family,
      table: r.table,
      chain: r.chain,
      position: r.position,
      text: r.rule.text,
    })),
  };
}
