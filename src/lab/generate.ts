/**
 * A seeded generator of realistic random rulesets and of probes aimed at them (pure: same seed, same output).
 *
 * Rules and probes draw from the same small pools of addresses and ports, so most rules are hit and verdicts
 * vary. CIDRs of every length (0..32, 0..128) are cut around pool addresses, so prefixes overlap the probe space
 * from /0 down to single hosts. Output is nft text (several tables and families, base chains at different
 * priorities and policies, regular chains with jump/goto/return, anonymous and named sets, negations, ct state,
 * iifname, counter/log, accept/drop/reject) or iptables-save text for iptables-restore/ip6tables-restore.
 *
 * Probe destinations are inside the lab's AnyIP ranges (src/lab/netns.ts); sources are outside them.
 */
import type { L3 } from '../firewall/model.js';
import { formatAddress, parseAddress, prefixRange } from '../firewall/values.js';

export type ProbeProto = 1 | 6 | 17 | 58;

/** One probe. `key` is unique within a run and is carried in the IPv4 id / IPv6 flow label. */
export interface Probe {
  readonly key: number;
  /** fw interface the probe arrives on. */
  readonly link: 'eth0' | 'eth1';
  readonly family: L3;
  readonly saddr: string;
  readonly daddr: string;
  readonly proto: ProbeProto;
  /** Source port, or the ICMP echo identifier. */
  readonly sport: number;
  /** Destination port (tcp/udp only). */
  readonly dport?: number;
}

export interface Rng {
  next(): number;
  int(lo: number, hi: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

/** mulberry32: tiny, fast and good enough for test generation. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (items) => {
      const item = items[Math.floor(next() * items.length)];
      if (item === undefined) throw new Error('pick from empty list');
      return item;
    },
    chance: (p) => next() < p,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Pools

export interface Pools {
  readonly src4: readonly string[];
  readonly dst4: readonly string[];
  readonly src6: readonly string[];
  readonly dst6: readonly string[];
  readonly ports: readonly number[];
}

const SRC4_NETS = ['10.1.0.0/16', '10.2.3.0/24', '172.16.0.0/12', '100.64.0.0/10', '192.168.0.0/16', '45.0.0.0/8'];
const DST4_NETS = ['192.0.2.0/24', '198.51.100.0/24', '10.99.0.0/16'];
const SRC6_NETS = ['2001:db8:1::/48', '2001:db8:2:3::/64', 'fd00:1::/32'];
const DST6_NETS = ['2001:db8:ff::/48', '2001:db8:ff:1::/64'];
const COMMON_PORTS = [22, 25, 53, 80, 443, 993, 3306, 5432, 8080, 8443];

function randomIn(r: Rng, cidr: string): string {
  const [addr, len] = cidr.split('/') as [string, string];
  const a = parseAddress(addr);
  if (!a) throw new Error(`bad pool ${cidr}`);
  const bits = a.family === 'ipv4' ? 32 : 128;
  const host = bits - Number(len);
  let v = prefixRange(a.family, a.value, Number(len)).lo;
  let offset = 0n;
  for (let i = 0; i < host; i += 16) offset = (offset << 16n) | BigInt(r.int(0, 0xffff));
  offset &= (1n << BigInt(host)) - 1n;
  // Avoid the all-zero and all-ones hosts of small IPv4 nets: legal here, but they read like mistakes.
  if (a.family === 'ipv4' && host >= 2 && (offset === 0n || offset === (1n << BigInt(host)) - 1n)) offset = 1n;
  v |= offset;
  return formatAddress(a.family, v);
}

export function makePools(r: Rng): Pools {
  const n = (k: number, nets: readonly string[]): string[] =>
    Array.from({ length: k }, () => randomIn(r, r.pick(nets)));
  const ports = new Set<number>();
  while (ports.size < 6) ports.add(r.chance(0.7) ? r.pick(COMMON_PORTS) : r.int(1, 65535));
  return {
    src4: n(8, SRC4_NETS),
    dst4: n(6, DST4_NETS),
    src6: n(6, SRC6_NETS),
    dst6: n(5, DST6_NETS),
    ports: [...ports],
  };
}

/** A prefix of random length (0..bits, biased towards realistic lengths) around a pool address. */
function cidrAround(r: Rng, addr: string): string {
  const a = parseAddress(addr);
  if (!a) throw new Error(`bad address ${addr}`);
  const bits = a.family === 'ipv4' ? 32 : 128;
  const len = r.chance(0.25)
    ? r.int(0, bits)
    : r.chance(0.5)
      ? bits
      : r.pick(a.family === 'ipv4' ? [8, 16, 24, 28] : [32, 48, 64, 120]);
  const range = prefixRange(a.family, a.value, len);
  return len === bits ? formatAddress(a.family, range.lo) : `${formatAddress(a.family, range.lo)}/${len}`;
}

function addrRange(text: string): [bigint, bigint] {
  const [addr, len] = text.split('/') as [string, string | undefined];
  const a = parseAddress(addr)!;
  const r = prefixRange(a.family, a.value, len === undefined ? (a.family === 'ipv4' ? 32 : 128) : Number(len));
  return [r.lo, r.hi];
}

function portRange(text: string): [bigint, bigint] {
  const [lo, hi] = text.split('-');
  return [BigInt(lo!), BigInt(hi ?? lo!)];
}

/** Keeps elements that do not overlap an earlier one (nft refuses overlapping intervals in named sets). */
function disjoint(items: readonly string[], range: (t: string) => [bigint, bigint]): string[] {
  const kept: [bigint, bigint][] = [];
  const out: string[] = [];
  for (const t of items) {
    const [lo, hi] = range(t);
    if (kept.some(([a, b]) => lo <= b && a <= hi)) continue;
    kept.push([lo, hi]);
    out.push(t);
  }
  return out;
}

function portExpr(r: Rng, pools: Pools): string {
  const p = r.pick(pools.ports);
  const roll = r.next();
  if (roll < 0.55) return String(p);
  if (roll < 0.75) {
    const lo = Math.max(1, p - r.int(0, 50));
    return `${lo}-${Math.min(65535, p + r.int(0, 50))}`;
  }
  return `${r.int(1, 1000)}-${r.int(1001, 65535)}`;
}

function portList(r: Rng, pools: Pools, n: number): string[] {
  return Array.from({ length: n }, () => portExpr(r, pools));
}

// ---------------------------------------------------------------------------------------------------------------
// Probes

/**
 * Draws probes from the pools. Keys start at `firstKey`; source ports/ICMP ids come from `nextSport` so that every
 * 5-tuple in a whole run is new to conntrack.
 */
export function generateProbes(
  r: Rng,
  pools: Pools,
  count: number,
  opts: { readonly firstKey?: number; readonly nextSport: () => number; readonly families?: readonly L3[] },
): Probe[] {
  const families = opts.families ?? ['ipv4', 'ipv6'];
  const out: Probe[] = [];
  for (let i = 0; i < count; i++) {
    const family = r.pick(families);
    const v4 = family === 'ipv4';
    const roll = r.next();
    const proto: ProbeProto = roll < 0.5 ? 6 : roll < 0.8 ? 17 : v4 ? 1 : 58;
    const base = {
      key: (opts.firstKey ?? 1) + i,
      link: r.chance(0.6) ? ('eth0' as const) : ('eth1' as const),
      family,
      saddr: r.pick(v4 ? pools.src4 : pools.src6),
      daddr: r.pick(v4 ? pools.dst4 : pools.dst6),
      proto,
      sport: opts.nextSport(),
    };
    out.push(
      proto === 6 || proto === 17 ? { ...base, dport: r.chance(0.85) ? r.pick(pools.ports) : r.int(1, 65535) } : base,
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// nftables

type TableFamily = 'ip' | 'ip6' | 'inet';

interface NftCtx {
  readonly r: Rng;
  readonly pools: Pools;
  readonly family: TableFamily;
  /** Named sets declared in this table, by element type. */
  readonly sets: { name: string; type: 'ipv4_addr' | 'ipv6_addr' | 'inet_service' }[];
}

function nftAddrMatch(c: NftCtx, v6: boolean): string {
  const { r, pools } = c;
  const dir = r.chance(0.5) ? 'saddr' : 'daddr';
  const pool = v6 ? (dir === 'saddr' ? pools.src6 : pools.dst6) : dir === 'saddr' ? pools.src4 : pools.dst4;
  const neg = r.chance(0.15) ? '!= ' : '';
  const proto = v6 ? 'ip6' : 'ip';
  const named = c.sets.filter((s) => s.type === (v6 ? 'ipv6_addr' : 'ipv4_addr'));
  if (named.length > 0 && r.chance(0.25)) return `${proto} ${dir} ${neg}@${r.pick(named).name}`;
  if (r.chance(0.25)) {
    const elems = Array.from({ length: r.int(2, 4) }, () => cidrAround(r, r.pick(pool)));
    return `${proto} ${dir} ${neg}{ ${elems.join(', ')} }`;
  }
  return `${proto} ${dir} ${neg}${cidrAround(r, r.pick(pool))}`;
}

function nftPortMatch(c: NftCtx, proto: 'tcp' | 'udp'): string {
  const { r, pools } = c;
  const neg = r.chance(0.12) ? '!= ' : '';
  const named = c.sets.filter((s) => s.type === 'inet_service');
  if (named.length > 0 && r.chance(0.25)) return `${proto} dport ${neg}@${r.pick(named).name}`;
  if (r.chance(0.3)) return `${proto} dport ${neg}{ ${portList(r, pools, r.int(2, 4)).join(', ')} }`;
  if (r.chance(0.05)) return `${proto} sport ${neg}1024-65535`;
  return `${proto} dport ${neg}${portExpr(r, pools)}`;
}

interface NftRuleOpts {
  readonly jumpTargets: readonly string[];
  readonly regular: boolean;
}

function nftRule(c: NftCtx, o: NftRuleOpts): string {
  const { r, family } = c;
  const parts: string[] = [];
  // Which layer 3 the rule is about: fixed by the table family, a choice in inet tables.
  const l3: 'v4' | 'v6' | 'any' =
    family === 'ip' ? 'v4' : family === 'ip6' ? 'v6' : r.chance(0.35) ? 'any' : r.chance(0.5) ? 'v4' : 'v6';
  if (family === 'inet' && l3 !== 'any' && r.chance(0.3)) parts.push(`meta nfproto ${l3 === 'v4' ? 'ipv4' : 'ipv6'}`);
  if (r.chance(0.2))
    parts.push(`iifname ${r.chance(0.15) ? '!= ' : ''}${r.pick(['"eth0"', '"eth1"', '"eth*"', '{ "eth0", "lo" }'])}`);
  if (l3 !== 'any') {
    const n = r.chance(0.55) ? 1 : r.chance(0.3) ? 2 : 0;
    for (let i = 0; i < n; i++) parts.push(nftAddrMatch(c, l3 === 'v6'));
  }
  let proto: 'tcp' | 'udp' | 'icmp' | undefined;
  const roll = r.next();
  if (roll < 0.35) proto = 'tcp';
  else if (roll < 0.55) proto = 'udp';
  else if (roll < 0.63 && l3 !== 'any') proto = 'icmp';
  if (proto === 'tcp' || proto === 'udp') {
    if (r.chance(0.8)) parts.push(nftPortMatch(c, proto));
    else parts.push(`meta l4proto ${proto}`);
  } else if (proto === 'icmp') {
    if (l3 === 'v4') parts.push(r.chance(0.5) ? 'icmp type echo-request' : 'ip protocol icmp');
    else parts.push(r.chance(0.5) ? 'icmpv6 type echo-request' : 'meta l4proto ipv6-icmp');
  } else if (r.chance(0.08)) {
    parts.push('meta l4proto { tcp, udp }');
  }
  if (r.chance(0.18)) {
    parts.push(
      r.pick([
        'ct state new',
        'ct state established,related',
        'ct state != established',
        'ct state invalid',
        'ct state { new, untracked }',
      ]),
    );
  }
  if (r.chance(0.15)) parts.push('counter');
  if (r.chance(0.05)) parts.push(`log prefix "rk-${r.int(0, 999)} "`);

  const vroll = r.next();
  let verdict: string;
  if (o.jumpTargets.length > 0 && vroll < 0.18) verdict = `${r.chance(0.8) ? 'jump' : 'goto'} ${r.pick(o.jumpTargets)}`;
  else if (vroll < 0.5) verdict = 'accept';
  else if (vroll < 0.7) verdict = 'drop';
  else if (vroll < 0.85) {
    if (proto === 'tcp' && r.chance(0.5)) verdict = 'reject with tcp reset';
    else if (family === 'inet' && r.chance(0.3)) verdict = 'reject with icmpx type admin-prohibited';
    else if (family === 'ip' && r.chance(0.3)) verdict = 'reject with icmp type host-prohibited';
    else if (family === 'ip6' && r.chance(0.3)) verdict = 'reject with icmpv6 type admin-prohibited';
    else verdict = 'reject';
  } else if (o.regular && vroll < 0.93) verdict = 'return';
  else verdict = r.chance(0.5) ? 'continue' : '';
  if (verdict === 'continue' || verdict === '') {
    // A rule with no verdict still needs a statement to be valid nft.
    if (!parts.includes('counter')) parts.push('counter');
    verdict = '';
  }
  if (parts.length === 0 && (verdict === 'accept' || verdict === 'drop' || verdict.startsWith('reject'))) {
    // An unconditional verdict mid-chain is legal but hides the rest: keep it rare.
    if (r.chance(0.7)) parts.push(nftAddrMatch(c, family === 'ip6' || (family === 'inet' && r.chance(0.5))));
  }
  return [...parts, verdict].filter((s) => s !== '').join(' ');
}

export interface GeneratedRuleset {
  readonly seed: number;
  readonly text: string;
  readonly pools: Pools;
  /** True when some chain hooks output (a reject's reply could then be dropped, so reject vs drop is not compared). */
  readonly hasOutput: boolean;
}

/** A random nft ruleset (text for `nft -f`). */
export function generateNftRuleset(seed: number): GeneratedRuleset {
  const r = rng(seed);
  const pools = makePools(r);
  const tableCount = r.int(1, 3);
  const out: string[] = [];
  let hasOutput = false;
  for (let t = 0; t < tableCount; t++) {
    const family = r.pick<TableFamily>(['inet', 'inet', 'ip', 'ip6']);
    const c: NftCtx = { r, pools, family, sets: [] };
    const lines: string[] = [`table ${family} t${t} {`];
    const setCount = r.int(0, 2);
    for (let s = 0; s < setCount; s++) {
      const kind = r.pick(
        family === 'ip'
          ? (['ipv4_addr', 'inet_service'] as const)
          : family === 'ip6'
            ? (['ipv6_addr', 'inet_service'] as const)
            : (['ipv4_addr', 'ipv6_addr', 'inet_service'] as const),
      );
      const name = `s${s}`;
      let elems: string[];
      if (kind === 'inet_service') {
        elems = disjoint(portList(r, pools, r.int(1, 5)), portRange);
      } else {
        const pool = kind === 'ipv4_addr' ? [...pools.src4, ...pools.dst4] : [...pools.src6, ...pools.dst6];
        elems = disjoint(
          Array.from({ length: r.int(1, 5) }, () => cidrAround(r, r.pick(pool))),
          addrRange,
        );
      }
      c.sets.push({ name, type: kind });
      lines.push(
        `  set ${name} {`,
        `    type ${kind}`,
        '    flags interval',
        `    elements = { ${elems.join(', ')} }`,
        '  }',
      );
    }
    // Regular chains first; chain i may only jump to chains with a higher index, so there are no loops.
    const regularCount = r.int(0, 3);
    const regular = Array.from({ length: regularCount }, (_, i) => `c${i}`);
    for (let i = 0; i < regularCount; i++) {
      lines.push(`  chain c${i} {`);
      const targets = regular.slice(i + 1);
      for (let k = r.int(1, 5); k > 0; k--) lines.push(`    ${nftRule(c, { jumpTargets: targets, regular: true })}`);
      lines.push('  }');
    }
    const baseCount = r.int(1, 2);
    for (let b = 0; b < baseCount; b++) {
      const hook = r.chance(0.25) ? 'prerouting' : 'input';
      const priority =
        // Not below -200: before conntrack every packet is `ct state invalid`, a case kept out of the random mix.
        hook === 'prerouting' ? r.pick([-150, -100, -1, 0, 50]) : r.pick([-200, -150, -10, 0, 0, 10, 100, 'filter']);
      const policy = r.chance(0.35) ? 'drop' : 'accept';
      lines.push(`  chain b${b} {`, `    type filter hook ${hook} priority ${priority}; policy ${policy};`);
      for (let k = r.int(2, 9); k > 0; k--) lines.push(`    ${nftRule(c, { jumpTargets: regular, regular: false })}`);
      lines.push('  }');
    }
    if (r.chance(0.1)) {
      // An output chain that drops nothing we send but makes reject-vs-drop unobservable; exercised for realism.
      hasOutput = true;
      lines.push('  chain out {', '    type filter hook output priority 0; policy accept;', '    counter', '  }');
    }
    lines.push('}');
    out.push(lines.join('\n'));
  }
  return { seed, text: `${out.join('\n')}\n`, pools, hasOutput };
}

// ---------------------------------------------------------------------------------------------------------------
// iptables

function iptRule(
  r: Rng,
  pools: Pools,
  v6: boolean,
  chain: string,
  targets: readonly string[],
  regular: boolean,
): string {
  const parts = ['-A', chain];
  const src = v6 ? pools.src6 : pools.src4;
  const dst = v6 ? pools.dst6 : pools.dst4;
  if (r.chance(0.45)) parts.push(...(r.chance(0.15) ? ['!'] : []), '-s', cidrAround(r, r.pick(src)));
  if (r.chance(0.3)) parts.push(...(r.chance(0.15) ? ['!'] : []), '-d', cidrAround(r, r.pick(dst)));
  if (r.chance(0.2)) parts.push(...(r.chance(0.15) ? ['!'] : []), '-i', r.pick(['eth0', 'eth1', 'eth+']));
  const roll = r.next();
  let proto: string | undefined;
  if (roll < 0.4) proto = 'tcp';
  else if (roll < 0.6) proto = 'udp';
  else if (roll < 0.68) proto = v6 ? 'ipv6-icmp' : 'icmp';
  if (proto) parts.push('-p', proto);
  if (proto === 'tcp' || proto === 'udp') {
    const x = r.next();
    if (x < 0.5)
      parts.push('-m', proto, ...(r.chance(0.12) ? ['!'] : []), '--dport', portExpr(r, pools).replace('-', ':'));
    else if (x < 0.75) {
      parts.push('-m', 'multiport', ...(r.chance(0.1) ? ['!'] : []), '--dports');
      parts.push(
        portList(r, pools, r.int(2, 4))
          .map((p) => p.replace('-', ':'))
          .join(','),
      );
    } else if (x < 0.8) parts.push('-m', proto, '--sport', '1024:65535');
  } else if (proto && r.chance(0.6)) {
    parts.push('-m', v6 ? 'icmp6' : 'icmp', v6 ? '--icmpv6-type' : '--icmp-type', v6 ? '128' : '8');
  }
  if (r.chance(0.15)) {
    parts.push('-m', 'conntrack', '--ctstate', r.pick(['NEW', 'RELATED,ESTABLISHED', 'INVALID', 'NEW,UNTRACKED']));
  }
  if (r.chance(0.08)) parts.push('-m', 'comment', '--comment', `"rk ${r.int(0, 999)}"`);
  const vroll = r.next();
  if (targets.length > 0 && vroll < 0.18) parts.push(r.chance(0.8) ? '-j' : '-g', r.pick(targets));
  else if (vroll < 0.5) parts.push('-j', 'ACCEPT');
  else if (vroll < 0.7) parts.push('-j', 'DROP');
  else if (vroll < 0.85) {
    parts.push('-j', 'REJECT');
    if (proto === 'tcp' && r.chance(0.5)) parts.push('--reject-with', 'tcp-reset');
    else if (r.chance(0.5)) parts.push('--reject-with', v6 ? 'icmp6-adm-prohibited' : 'icmp-host-prohibited');
  } else if (regular && vroll < 0.93) parts.push('-j', 'RETURN');
  else if (r.chance(0.5)) parts.push('-j', 'LOG', '--log-prefix', `"rk-${r.int(0, 999)} "`);
  return parts.join(' ');
}

export interface GeneratedIptables {
  readonly seed: number;
  /** For iptables-restore. */
  readonly v4: string;
  /** For ip6tables-restore. */
  readonly v6: string;
  readonly pools: Pools;
}

/** A random iptables ruleset (iptables-save and ip6tables-save form) in filter (and sometimes raw/mangle). */
export function generateIptablesRuleset(seed: number): GeneratedIptables {
  const r = rng(seed);
  const pools = makePools(r);
  const make = (v6: boolean): string => {
    const out: string[] = [];
    if (r.chance(0.2)) {
      const table = r.pick(['raw', 'mangle']);
      out.push(`*${table}`, ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]');
      for (let k = r.int(1, 3); k > 0; k--) {
        // raw/mangle cannot REJECT; keep to ACCEPT/DROP/LOG there.
        // raw runs before conntrack (every packet is INVALID there): keep --ctstate out of it.
        let rule = iptRule(r, pools, v6, 'PREROUTING', [], false).replace(/ -j REJECT.*$/, ' -j DROP');
        if (table === 'raw') rule = rule.replace(/ -m conntrack --ctstate \S+/, '');
        out.push(rule);
      }
      out.push('COMMIT');
    }
    out.push('*filter');
    const policy = r.chance(0.4) ? 'DROP' : 'ACCEPT';
    out.push(`:INPUT ${policy} [0:0]`, ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]');
    const regular = Array.from({ length: r.int(0, 3) }, (_, i) => `chain-${i}`);
    for (const c of regular) out.push(`:${c} - [0:0]`);
    for (let k = r.int(2, 10); k > 0; k--) out.push(iptRule(r, pools, v6, 'INPUT', regular, false));
    regular.forEach((c, i) => {
      for (let k = r.int(1, 5); k > 0; k--) out.push(iptRule(r, pools, v6, c, regular.slice(i + 1), true));
    });
    out.push('COMMIT');
    return `${out.join('\n')}\n`;
  };
  return { seed, v4: make(false), v6: make(true), pools };
}
