/**
 * shadowed-rule, redundant-rule, empty-rule: rules that can never apply, from the engine's unreachable-rule
 * analysis (src/analysis/unreachable.ts), over every hook path the ruleset has chains on.
 *
 * A rule can sit on several paths (a prerouting rule is on input and forward, a postrouting rule on forward and
 * output). It is a finding only when it is unreachable on EVERY path that holds it: a postrouting rule that never
 * sees locally generated packets but does see forwarded ones is doing its job. Reported once, with the most telling
 * class (shadowed on any path > redundant > empty on every path) and the covers of all paths merged.
 *
 * Rules of chains no base chain jumps to are redundant-rule findings, one per chain (at the chain's line): dead
 * code, not a conflict.
 */
import type { Chain, Packet, Rule } from '../../../firewall/model.js';
import type { TraceHook } from '../../../firewall/tracer.js';
import type { DeciderInfo } from '../../describe.js';
import { share } from '../../describe.js';
import type { CompiledRuleset, PacketSet, RuleRef } from '../../types.js';
import {
  type CoverItem,
  findUnreachable,
  neverEnteredRules,
  type RuleKind,
  type UnreachableClass,
  type UnreachableRule,
} from '../../unreachable.js';
import type { AuditContext, AuditRule, FindingDraft, RelatedLocation } from '../types.js';
import {
  activePaths,
  deciderOf,
  deciderPhrase,
  exampleOf,
  memo,
  packetText,
  refName,
  relatedOfDecider,
  ruleLocation,
  sym,
} from './hygiene-common.js';
import { isFragment } from './service-sets.js';

interface Unreachable {
  readonly ref: RuleRef;
  readonly class: UnreachableClass;
  readonly kind: RuleKind;
  readonly paths: readonly TraceHook[];
  readonly cover: readonly CoverItem[];
  readonly chainKeepsOut: boolean;
  readonly uncertain: boolean;
  /** The path the example is taken on, and its conflicting packets (shadowed by a different verdict). */
  readonly compiled: CompiledRuleset;
  readonly conflicting?: PacketSet;
  readonly packets: bigint;
}

interface NeverEnteredChain {
  readonly family: string;
  readonly table: string;
  readonly chain: Chain;
  readonly rules: readonly Rule[];
}

interface Analysis {
  readonly unreachable: readonly Unreachable[];
  readonly neverEntered: readonly NeverEnteredChain[];
}

const CLASS_RANK: Record<UnreachableClass, number> = { shadowed: 2, redundant: 1, empty: 0 };

const coverKey = (c: CoverItem) => {
  const d = c.decider;
  return `${c.role}|${d.kind}|${d.verdict}|${d.family}|${d.table}|${d.chain}|${d.position ?? ''}`;
};

export const unreachableAnalysis = memo((ctx: AuditContext): Analysis => {
  const onPaths = new Map<Rule, number>();
  const found = new Map<Rule, { u: UnreachableRule; path: TraceHook; compiled: CompiledRuleset }[]>();
  // A rule reachable on some path is not a finding: find those first (cheap), so the covers are computed only for
  // rules unreachable everywhere.
  const paths = activePaths(ctx.ruleset);
  const reachable = new Set<Rule>();
  for (const path of paths) {
    const compiled = ctx.compiledAnyState(path);
    for (const r of compiled.rules()) {
      onPaths.set(r.rule, (onPaths.get(r.rule) ?? 0) + 1);
      if (!reachable.has(r.rule) && !compiled.hits(r).isEmpty()) reachable.add(r.rule);
    }
  }
  for (const path of paths) {
    const compiled = ctx.compiledAnyState(path);
    // A plan's rules whose findings are the same in both versions are left out on both sides.
    const skip = (rule: Rule) => reachable.has(rule) || ctx.settled?.(rule) === true;
    for (const u of findUnreachable(compiled, { skip }).unreachable) {
      const list = found.get(u.ref.rule);
      const item = { u, path, compiled };
      if (list) list.push(item);
      else found.set(u.ref.rule, [item]);
    }
  }
  const unreachable: Unreachable[] = [];
  for (const [rule, items] of found) {
    // Reachable on some other path that holds it: not a finding.
    if (items.length < (onPaths.get(rule) ?? 0)) continue;
    const nonEmpty = items.filter((i) => i.u.class !== 'empty');
    const pool = nonEmpty.length > 0 ? nonEmpty : items;
    const best = pool.reduce((a, b) => (CLASS_RANK[b.u.class] > CLASS_RANK[a.u.class] ? b : a));
    const cover = new Map<string, CoverItem>();
    for (const i of pool) {
      if (i.u.class !== best.u.class) continue;
      for (const c of i.u.cover) if (!cover.has(coverKey(c))) cover.set(coverKey(c), c);
    }
    unreachable.push({
      ref: best.u.ref,
      class: best.u.class,
      kind: best.u.kind,
      paths: items.map((i) => i.path),
      cover: [...cover.values()],
      chainKeepsOut: best.u.chainKeepsOut,
      uncertain: pool.some((i) => (i.u.uncertain ?? 0n) > 0n),
      compiled: best.compiled,
      packets: best.u.packets,
      ...(best.u.conflicting ? { conflicting: best.u.conflicting } : {}),
    });
  }
  const byChain = new Map<string, NeverEnteredChain & { rules: Rule[] }>();
  const chains = new Map<string, Chain>();
  for (const t of ctx.ruleset.tables) for (const c of t.chains) chains.set(`${t.family}|${t.name}|${c.name}`, c);
  for (const n of neverEnteredRules(ctx.ruleset)) {
    const key = `${n.family}|${n.table}|${n.chain}`;
    const chain = chains.get(key);
    if (!chain) continue;
    let e = byChain.get(key);
    if (!e) {
      e = { family: n.family, table: n.table, chain, rules: [] };
      byChain.set(key, e);
    }
    e.rules.push(n.rule);
  }
  return { unreachable, neverEntered: [...byChain.values()] };
});

const KIND_TEXT: Record<RuleKind, string> = {
  accept: 'accept rule',
  drop: 'drop rule',
  reject: 'reject rule',
  queue: 'queue rule',
  continue: 'continue rule',
  return: 'return rule',
  jump: 'jump',
  goto: 'goto',
  nat: 'nat rule',
  vmap: 'verdict map',
  'no-verdict': 'rule (no verdict)',
};

const VERB: Partial<Record<RuleKind, string>> = {
  accept: 'accepted',
  drop: 'dropped',
  reject: 'rejected',
};

/** The rule's match as the analysis sees it (an ip/ip6 table's chain sees one family only). */
function matchOf(u: Unreachable): PacketSet {
  const c = u.compiled;
  const m = c.matchSet(u.ref);
  const fam = u.ref.family === 'ip' ? 'ipv4' : u.ref.family === 'ip6' ? 'ipv6' : undefined;
  return fam ? m.and(c.space.fromCube({ nfproto: [sym(fam)] })) : m;
}

function coverRelated(u: Unreachable): RelatedLocation[] {
  return u.cover.slice(0, 10).map((c) => {
    const d: DeciderInfo = c.decider;
    if (c.role === 'entry') {
      return {
        message: `kept out by the condition of ${d.kind === 'rule' ? `${d.family} ${d.table}/${d.chain} #${d.position}` : 'an entry'}`,
        ...(d.file !== undefined && d.line !== undefined ? { location: { file: d.file, line: d.line } } : {}),
        ...(d.text !== undefined ? { text: d.text } : {}),
      };
    }
    return relatedOfDecider(d, `covers ${share(d.packets, u.packets)} of its packets`);
  });
}

function coverSummary(u: Unreachable): string {
  const decided = u.cover.filter((c) => c.role === 'decided').map((c) => c.decider);
  const rules = decided.filter((d) => d.kind === 'rule');
  const names = rules.slice(0, 3).map((d) => `line ${d.line}`);
  if (rules.length > 3) names.push(`${rules.length - 3} more`);
  const others = decided.filter((d) => d.kind !== 'rule').map((d) => deciderPhrase(d));
  const all = [...names, ...others];
  return all.length > 0 ? all.join(', ') : 'earlier rules';
}

function exampleSentence(u: Unreachable, p: Packet | undefined): string {
  if (!p) return '';
  // One rule decided all of the scope: it decided the example too (saves a decisions() query per finding).
  const decided = u.cover.filter((c) => c.role === 'decided');
  const d = decided.length === 1 && !u.chainKeepsOut ? decided[0]?.decider : deciderOf(u.compiled, p);
  if (!d) return ` For example ${packetText(p)}: its verdict depends on an opaque match.`;
  return ` For example ${packetText(p)} is ${VERB[d.verdict] ?? d.verdict} by ${deciderPhrase(d)}.`;
}

function finding(u: Unreachable): FindingDraft {
  const what = KIND_TEXT[u.kind];
  const where = refName(u.ref);
  const base = {
    location: ruleLocation(u.ref.rule),
    text: u.ref.rule.text,
    ...(u.uncertain ? { uncertain: true } : {}),
  };
  if (u.class === 'empty') {
    return {
      ...base,
      message: `${what} ${where} can never match: its conditions contradict each other, so no packet satisfies them all`,
    };
  }
  const keptOut = u.chainKeepsOut ? ` none of its packets enter chain ${u.ref.chain};` : '';
  if (u.class === 'shadowed') {
    const p = exampleOf(u.conflicting ?? matchOf(u));
    // A drop/reject most of whose packets are dropped anyway, with a few accepted earlier (firewalld's final
    // reject after its zone chains): a dead backstop rather than a rule whose intent is defeated.
    const backstop =
      u.conflicting !== undefined &&
      (u.kind === 'drop' || u.kind === 'reject') &&
      u.conflicting.count() * 2n < u.packets;
    const what2 = u.conflicting
      ? `${share(u.conflicting.count(), u.packets)} of the packets it matches get a different verdict`
      : 'it never gets to act on the packets it matches';
    return {
      ...base,
      message: `${what} ${where} is shadowed:${keptOut} ${what2}, decided before it by ${coverSummary(u)}.${backstop ? ' Most of its packets are blocked anyway: a backstop made dead by the rules before it.' : ''}${exampleSentence(u, p)}`,
      ...(backstop ? { severity: 'low' as const } : {}),
      ...(p ? { example: p } : {}),
      related: coverRelated(u),
    };
  }
  const p = exampleOf(matchOf(u));
  return {
    ...base,
    message: `${what} ${where} is redundant:${keptOut} every packet it matches already gets the same outcome from ${coverSummary(u)}.${exampleSentence(u, p)}`,
    ...(p ? { example: p } : {}),
    related: coverRelated(u),
  };
}

function neverEnteredFinding(n: NeverEnteredChain): FindingDraft {
  const count = n.rules.length;
  return {
    location: ruleLocation(n.chain),
    text: `chain ${n.chain.name}`,
    message: `chain ${n.family} ${n.table}/${n.chain.name} is never entered: no base chain jumps or goes to it, so its ${count} rule${count === 1 ? '' : 's'} never appl${count === 1 ? 'ies' : 'y'}`,
    related: n.rules.slice(0, 5).map((r, i) => ({
      message: `never applies: ${n.family} ${n.table}/${n.chain.name} #${i + 1}`,
      location: ruleLocation(r),
      text: r.text,
    })),
  };
}

export const shadowedRule: AuditRule = {
  id: 'shadowed-rule',
  defaultSeverity: 'high',
  title: 'A rule never applies because earlier rules decide its packets differently',
  rationale:
    'The rule was written to accept (or drop) some traffic, but earlier rules give every one of those packets another verdict first. What the author meant does not happen: an accept that never accepts, a drop that never drops.',
  fix: 'Move the rule before the rules that cover it, narrow those rules, or delete the rule if its intent is obsolete.',
  needs: 'none',
  check: (ctx) =>
    unreachableAnalysis(ctx)
      .unreachable.filter((u) => u.class === 'shadowed')
      .map(finding),
};

export const redundantRule: AuditRule = {
  id: 'redundant-rule',
  defaultSeverity: 'low',
  title: 'A rule never applies because earlier rules already give its packets the same outcome',
  rationale:
    'The rule changes nothing: earlier rules (or the policy) already decide its packets the same way, or its chain is never entered. Dead rules make the ruleset longer to read and review and hide what really decides traffic.',
  fix: 'Delete the rule (or the never-entered chain), or move it before the rules that cover it if it is the one that should decide.',
  needs: 'none',
  check: (ctx) => {
    const a = unreachableAnalysis(ctx);
    return [
      ...a.unreachable.filter((u) => u.class === 'redundant').map(finding),
      // In a fragment no chain is entered: unfiltered-input reports that once, for the whole file.
      ...(isFragment(ctx.ruleset) ? [] : a.neverEntered.map(neverEnteredFinding)),
    ];
  },
};

export const emptyRule: AuditRule = {
  id: 'empty-rule',
  defaultSeverity: 'medium',
  title: 'A rule whose conditions contradict each other can never match',
  rationale:
    "No packet satisfies all of the rule's conditions (`tcp dport 22 udp dport 53`, two different source networks): it is almost always a typo or a bad merge, and the traffic it was meant for is handled by something else.",
  fix: 'Correct the conditions (usually one of them was meant to be a set: `ip saddr { a, b }`) or delete the rule.',
  needs: 'none',
  // A lookup in a named set that is empty as loaded (`set crowdsec { type ipv4_addr; flags timeout; }`, filled at run
  // time by CrowdSec, fail2ban or a script) matches nothing yet, by design: not a contradiction.
  check: (ctx) =>
    unreachableAnalysis(ctx)
      .unreachable.filter((u) => u.class === 'empty' && !looksUpEmptySet(ctx, u))
      .map(finding),
};

function looksUpEmptySet(ctx: AuditContext, u: Unreachable): boolean {
  const table = ctx.ruleset.tables.find((t) => t.family === u.ref.family && t.name === u.ref.table);
  return u.ref.rule.matches.some(
    (m) =>
      (m.kind === 'field' || m.kind === 'concat') &&
      m.set !== undefined &&
      table?.sets.find((s) => s.name === m.set)?.elements.length === 0,
  );
}

export const UNREACHABLE_RULES: readonly AuditRule[] = [shadowedRule, redundantRule, emptyRule];
