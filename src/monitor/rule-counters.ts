/**
 * The firewall's own counters as a traffic source (issue 14, §3). Pure: ruleset text in (what `nft -j list ruleset`
 * or `iptables-save -c` printed), the counters of the rules that accept a service's ports on the input path out.
 *
 * The rules are found with the ruleset parsers of src/firewall/ (not regexes): a rule counts when it sits in an
 * input-hook filter chain or a chain reachable from one (jump, goto, verdict maps), its verdict is accept, it
 * matches a destination port of the service (l4proto agreeing) and its conntrack state match, if any, admits new
 * connections. Behind the usual `ct state established,related accept` such a rule sees the first packet of each
 * connection only: its packet counter is the number of new connections accepted.
 *
 * Read-only: nothing here adds a counter. An nftables rule without a `counter` statement has no value to give; it
 * is returned with `packets: undefined` so the agent can say so.
 */
import type { Chain, Element, FieldMatch, Rule, Ruleset, Table } from '../firewall/model.js';
import { L4_PROTOCOLS } from '../firewall/model.js';
import { parseIptablesSave } from '../firewall/parsers/iptables-save.js';
import { parseNftJson } from '../firewall/parsers/nft-json.js';

export interface CounterPorts {
  readonly proto: 'tcp' | 'udp' | 'sctp';
  readonly from: number;
  readonly to: number;
}

export interface AcceptRuleCounter {
  /** Stable while the rule stays (nft: family, table, chain and handle; iptables: chain and text). */
  readonly key: string;
  /** Where and what: `inet filter input: tcp dport 80 accept`. */
  readonly rule: string;
  /** Packets the rule counted, or undefined when it has no counter. */
  readonly packets: number | undefined;
}

const inRange = (e: Element, lo: number, hi: number) => e.kind === 'range' && e.lo <= BigInt(hi) && e.hi >= BigInt(lo);
const covers = (values: readonly Element[], lo: number, hi: number) => {
  // Whether the values hold every port of lo..hi (the ranges of a parsed set may be split).
  const rs = values
    .filter((e): e is Extract<Element, { kind: 'range' }> => e.kind === 'range')
    .sort((a, b) => (a.lo < b.lo ? -1 : 1));
  let next = BigInt(lo);
  for (const r of rs) {
    if (r.lo > next) break;
    if (r.hi >= next) next = r.hi + 1n;
    if (next > BigInt(hi)) return true;
  }
  return next > BigInt(hi);
};

function portsMatch(m: FieldMatch, ports: readonly CounterPorts[]): boolean {
  return ports.some((p) =>
    m.op === 'eq' ? m.values.some((e) => inRange(e, p.from, p.to)) : !covers(m.values, p.from, p.to),
  );
}

function symbolHolds(m: FieldMatch, symbol: string): boolean {
  const has = m.values.some((e) => e.kind === 'symbol' && e.value === symbol);
  return m.op === 'eq' ? has : !has;
}

/** Whether this rule accepts new connections to one of the ports. */
export function acceptsPorts(rule: Rule, ports: readonly CounterPorts[]): boolean {
  if (rule.verdict?.kind !== 'accept') return false;
  let port = false;
  for (const m of rule.matches) {
    if (m.kind !== 'field') continue;
    if (m.field === 'dport') {
      if (!portsMatch(m, ports)) return false;
      port = true;
    } else if (m.field === 'l4proto') {
      const ok = ports.some((p) => {
        const n = L4_PROTOCOLS[p.proto] as number;
        const has = m.values.some((e) => inRange(e, n, n));
        return m.op === 'eq' ? has : !has;
      });
      if (!ok) return false;
    } else if (m.field === 'ct.state' && !symbolHolds(m, 'new')) return false;
  }
  return port;
}

/** The chains an input-hook filter chain reaches (itself included), per table. */
function inputChains(table: Table): Chain[] {
  const byName = new Map(table.chains.map((c) => [c.name, c]));
  const seen = new Set<string>();
  const todo = table.chains.filter((c) => c.base?.hook === 'input' && c.base.type === 'filter').map((c) => c.name);
  while (todo.length > 0) {
    const name = todo.pop() as string;
    if (seen.has(name) || !byName.has(name)) continue;
    seen.add(name);
    for (const r of byName.get(name)?.rules ?? []) {
      const v = r.verdict;
      if (v?.kind === 'jump' || v?.kind === 'goto') todo.push(v.target);
      else if (v?.kind === 'vmap') {
        for (const e of v.entries)
          if (e.verdict.kind === 'jump' || e.verdict.kind === 'goto') todo.push(e.verdict.target);
      }
    }
  }
  return table.chains.filter((c) => seen.has(c.name));
}

function* acceptRules(rs: Ruleset, ports: readonly CounterPorts[]): Generator<[Table, Chain, Rule, number]> {
  for (const t of rs.tables) {
    if (t.outOfScope) continue;
    for (const c of inputChains(t)) {
      for (const [i, r] of c.rules.entries()) if (acceptsPorts(r, ports)) yield [t, c, r, i];
    }
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Counters of the accept rules in `nft -j list ruleset` output. */
export function nftAcceptCounters(json: string, ports: readonly CounterPorts[]): AcceptRuleCounter[] {
  return nftCounterReader(json)(ports);
}

/**
 * Readers of successive counter readings that parse a ruleset only when its structure changed: the text with the
 * counter values taken out is the cache key, so a host with 100k rules pays the parse once, not every window.
 */
export class RuleCounterCache {
  private nftKey = '';
  private nftRs: Ruleset | undefined;
  private iptKey = '';
  private iptParsed: ParsedIptables | undefined;

  nft(json: string): (ports: readonly CounterPorts[]) => AcceptRuleCounter[] {
    const key = json.replace(/"packets":\s*\d+,\s*"bytes":\s*\d+/g, '');
    if (key !== this.nftKey || !this.nftRs) {
      this.nftRs = parseNftJson(json, 'nft -j list ruleset');
      this.nftKey = key;
    }
    return nftCounterReader(json, this.nftRs);
  }

  iptables(v4: string, v6: string): (ports: readonly CounterPorts[]) => AcceptRuleCounter[] {
    // Without the counters and the "# Generated ... on <date>" lines.
    const key = `${v4}\n${v6}`.replace(/^\[\d+:\d+\] |^#.*$/gm, '');
    if (key !== this.iptKey || !this.iptParsed) {
      this.iptParsed = parseIptables(v4, v6);
      this.iptKey = key;
    }
    return iptablesCounterReader(v4, v6, this.iptParsed);
  }
}

/**
 * Parses `nft -j list ruleset` output (unless `parsed`, the same ruleset with other counter values, is given); the
 * function gives the accept rules' counters for some ports.
 */
export function nftCounterReader(
  json: string,
  parsed?: Ruleset,
): (ports: readonly CounterPorts[]) => AcceptRuleCounter[] {
  const rs = parsed ?? parseNftJson(json, 'nft -j list ruleset');
  // Counter values by rule handle (anonymous `counter`), and named counters by name (read once even when shared).
  const anon = new Map<string, number | undefined>();
  const named = new Map<string, number>();
  const ruleNamed = new Map<string, string>();
  const doc = JSON.parse(json) as { nftables?: unknown[] };
  for (const o of doc.nftables ?? []) {
    if (!isObj(o)) continue;
    if (isObj(o.counter) && typeof o.counter.name === 'string') {
      named.set(`${o.counter.family} ${o.counter.table} ${o.counter.name}`, Number(o.counter.packets ?? 0));
    }
    if (!isObj(o.rule)) continue;
    const r = o.rule;
    const key = `${r.family} ${r.table} ${r.chain} #${r.handle}`;
    let packets: number | undefined;
    for (const x of Array.isArray(r.expr) ? r.expr : []) {
      if (!isObj(x) || !('counter' in x)) continue;
      if (isObj(x.counter)) {
        packets = Number(x.counter.packets ?? 0);
        break;
      }
      if (typeof x.counter === 'string') {
        ruleNamed.set(key, `${r.family} ${r.table} ${x.counter}`);
        break;
      }
    }
    anon.set(key, packets);
  }
  return (ports) => {
    const out: AcceptRuleCounter[] = [];
    const namedSeen = new Set<string>();
    for (const [t, c, r] of acceptRules(rs, ports)) {
      const key = `${t.family} ${t.name} ${c.name} #${r.origin.handle}`;
      const rule = `${t.family} ${t.name} ${c.name}: ${r.text}`;
      const n = ruleNamed.get(key);
      if (n !== undefined) {
        if (namedSeen.has(n)) continue;
        namedSeen.add(n);
        out.push({ key: `counter ${n}`, rule, packets: named.get(n) });
      } else out.push({ key, rule, packets: anon.get(key) });
    }
    return out;
  };
}

/** Counters of the accept rules in `iptables-save -c` and `ip6tables-save -c` output (either may be empty). */
export function iptablesAcceptCounters(v4: string, v6: string, ports: readonly CounterPorts[]): AcceptRuleCounter[] {
  return iptablesCounterReader(v4, v6)(ports);
}

type ParsedIptables = readonly { readonly family: 'ipv4' | 'ipv6'; readonly rs: Ruleset }[];

function parseIptables(v4: string, v6: string): ParsedIptables {
  const parsed: { family: 'ipv4' | 'ipv6'; rs: Ruleset }[] = [];
  for (const [text, family] of [
    [v4, 'ipv4'],
    [v6, 'ipv6'],
  ] as const) {
    if (text.trim() === '') continue;
    parsed.push({
      family,
      rs: parseIptablesSave(text, `${family === 'ipv4' ? 'iptables' : 'ip6tables'}-save -c`, { family }),
    });
  }
  return parsed;
}

/**
 * Parses `iptables-save -c` and `ip6tables-save -c` output (unless `parsed`, the same rules with other counter values,
 * is given); the function gives the counters for some ports.
 */
export function iptablesCounterReader(
  v4: string,
  v6: string,
  parsed: ParsedIptables = parseIptables(v4, v6),
): (ports: readonly CounterPorts[]) => AcceptRuleCounter[] {
  const text = { ipv4: v4.split('\n'), ipv6: v6.split('\n') };
  return (ports) => {
    const out: AcceptRuleCounter[] = [];
    // The key is the rule's text (and which of identical ones), not its position: a rule inserted above it by hand
    // must not make it a new rule.
    const seen = new Map<string, number>();
    for (const { family, rs } of parsed) {
      const lines = text[family];
      for (const [t, c, r] of acceptRules(rs, ports)) {
        const line = lines[r.origin.line - 1] ?? '';
        const m = /^\s*\[(\d+):\d+\]\s*(.*)$/.exec(line);
        const base = `${t.family} ${t.name} ${c.name}: ${m ? m[2] : line.trim()}`;
        const n = (seen.get(base) ?? 0) + 1;
        seen.set(base, n);
        out.push({
          key: n === 1 ? base : `${base} #${n}`,
          rule: `${t.family} ${t.name} ${c.name}: ${m ? m[2] : line.trim()}`,
          packets: m ? Number(m[1]) : undefined,
        });
      }
    }
    return out;
  };
}
