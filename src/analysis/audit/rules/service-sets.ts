/**
 * Packet sets the service/exposure audit rules share: "new inbound connections" on the input hook, the source
 * address domains ("possible" and "internet" sources), the families a ruleset speaks about, quantification over
 * fields (the BDD's exists/forall), and printable locations of deciders.
 *
 * Why the inbound set is narrower than "every packet": a hardened ruleset drops spoofed loopback sources, non-SYN
 * "new" TCP packets, broadcasts and bogon sources on purpose. A real client opening a connection to the host sends
 * a TCP SYN (or a UDP/SCTP packet) from a unicast address and an ephemeral port, to a local address, with no mark,
 * on an interface other than loopback. Only those packets are asked about, so these deliberate drops never read
 * as "the service is blocked".
 */
import type { PortDecl } from '../../../config/types.js';
import type { Element, Field, L3, Packet, Ruleset } from '../../../firewall/model.js';
import { FIELDS } from '../../../firewall/model.js';
import { type AddrRange, formatAddressRange, parseAddressRange } from '../../../firewall/values.js';
import { FIELD_MAX, rangeToPrefixes } from '../../describe.js';
import { BddPacketSet, type BddPacketSpace } from '../../packet-space.js';
import type { CompiledRuleset, Cube, Decider, Decision, PacketSet } from '../../types.js';
import type { AuditContext, FindingLocation, RelatedLocation } from '../types.js';

export const FAMILIES: readonly L3[] = ['ipv4', 'ipv6'];
export const PROTO_NUMBERS: Readonly<Record<PortDecl['proto'], number>> = { tcp: 6, udp: 17, sctp: 132 };
const PROTO_NAMES: Readonly<Record<number, PortDecl['proto']>> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };
const TCP_SYN = 2n;

const r = (lo: bigint | number, hi: bigint | number = lo): Element => ({
  kind: 'range',
  lo: BigInt(lo),
  hi: BigInt(hi),
});
const sym = (value: string): Element => ({ kind: 'symbol', value });
const name = (value: string): Element => ({ kind: 'name', value, wildcard: false });

export const saddrField = (fam: L3): Field => (fam === 'ipv4' ? 'ip.saddr' : 'ip6.saddr');
export const daddrField = (fam: L3): Field => (fam === 'ipv4' ? 'ip.daddr' : 'ip6.daddr');
export const familyName = (fam: L3): string => (fam === 'ipv4' ? 'IPv4' : 'IPv6');

function ranges(fam: L3, cidrs: readonly string[]): AddrRange[] {
  const out: AddrRange[] = [];
  for (const c of cidrs) {
    const a = parseAddressRange(c);
    if (a?.family === fam) out.push(a);
  }
  return out;
}

/** Sources that cannot open a connection from outside: unspecified, loopback, multicast, reserved (martians). */
const MARTIANS: Readonly<Record<L3, readonly string[]>> = {
  ipv4: ['0.0.0.0/8', '127.0.0.0/8', '224.0.0.0/4', '240.0.0.0/4'],
  ipv6: ['::/128', '::1/128', '::ffff:0:0/96', 'ff00::/8'],
};

/**
 * The internet, as a source: IPv4 without the special-purpose ranges a firewall may drop as bogons (RFC 1918,
 * shared address space, link-local, IETF protocol assignments, benchmarking) and without the martians; IPv6 global
 * unicast 2000::/3. The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) stay
 * in: examples, fixtures and the founding site use them as public addresses.
 */
const NOT_INTERNET_V4 = [
  '10.0.0.0/8',
  '100.64.0.0/10',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
];

/** Inclusive ranges of [0, max] minus the given ranges (any order). */
export function subtractRanges(base: readonly AddrRange[], minus: readonly AddrRange[]): AddrRange[] {
  let cur = [...base];
  for (const m of minus) {
    const next: AddrRange[] = [];
    for (const b of cur) {
      if (b.family !== m.family || m.hi < b.lo || m.lo > b.hi) {
        next.push(b);
        continue;
      }
      if (m.lo > b.lo) next.push({ family: b.family, lo: b.lo, hi: m.lo - 1n });
      if (m.hi < b.hi) next.push({ family: b.family, lo: m.hi + 1n, hi: b.hi });
    }
    cur = next;
  }
  return cur;
}

const FULL: Readonly<Record<L3, AddrRange>> = {
  ipv4: { family: 'ipv4', lo: 0n, hi: (1n << 32n) - 1n },
  ipv6: { family: 'ipv6', lo: 0n, hi: (1n << 128n) - 1n },
};

/** Every source address a connection from outside the host can have. */
export function possibleSources(fam: L3): AddrRange[] {
  return subtractRanges([FULL[fam]], ranges(fam, MARTIANS[fam]));
}

/** Public internet sources (see NOT_INTERNET_V4). */
export function internetSources(fam: L3): AddrRange[] {
  if (fam === 'ipv6') return ranges('ipv6', ['2000::/3']);
  return subtractRanges(possibleSources('ipv4'), ranges('ipv4', NOT_INTERNET_V4));
}

/** Possible sources outside the given networks (admin networks, ...). */
export function sourcesOutside(fam: L3, cidrs: readonly string[]): AddrRange[] {
  return subtractRanges(possibleSources(fam), ranges(fam, cidrs));
}

/** The layer 3 families the ruleset's in-scope tables filter (an iptables-save alone says nothing about IPv6). */
export function rulesetFamilies(rs: Ruleset): L3[] {
  const fams = new Set<L3>();
  for (const t of rs.tables) {
    if (t.outOfScope) continue;
    if (t.family === 'inet') {
      fams.add('ipv4');
      fams.add('ipv6');
    } else if (t.family === 'ip') fams.add('ipv4');
    else if (t.family === 'ip6') fams.add('ipv6');
  }
  return FAMILIES.filter((f) => fams.has(f));
}

/** The host's declared addresses of a family. */
export function hostAddresses(ctx: AuditContext, fam: L3): AddrRange[] {
  return ranges(fam, ctx.addresses);
}

/**
 * The families to audit: those the ruleset filters, and of those the ones the host has addresses of (all of them
 * when no addresses are declared).
 */
export function auditFamilies(ctx: AuditContext): L3[] {
  const fams = rulesetFamilies(ctx.ruleset);
  if (ctx.addresses.length === 0) return fams;
  return fams.filter((f) => hostAddresses(ctx, f).length > 0);
}

export interface PortSpec {
  readonly proto: number;
  readonly from: number;
  readonly to: number;
}

export const portSpec = (p: PortDecl): PortSpec => ({ proto: PROTO_NUMBERS[p.proto], from: p.from, to: p.to });

export const portText = (p: PortSpec): string =>
  `${PROTO_NAMES[p.proto] ?? p.proto}/${p.from === p.to ? p.from : `${p.from}-${p.to}`}`;

export interface InboundQuery {
  readonly family: L3;
  /** Source ranges (default: every possible source). */
  readonly sources?: readonly AddrRange[];
  /** Destination ranges (default: any local address). */
  readonly daddrs?: readonly AddrRange[];
  /** Protocols and ports (default: tcp, udp and sctp, every port). */
  readonly ports?: readonly PortSpec[];
}

/** The interface atoms "lo" and "no interface" when the space tells them apart from other names. */
function loopbackIf(ctx: AuditContext): PacketSet {
  const space = bddSpace(ctx);
  const els: Element[] = [name('')];
  // A name no rule mentions shares the "other" atom with every other unmentioned name: excluding it would exclude
  // them all. When no rule mentions lo, no rule treats it differently from eth0 either.
  for (let i = 0; i < space.atomCount; i++) {
    const e = space.atomElement(i);
    if (e.kind === 'name' && e.value === 'lo' && !e.wildcard) els.push(e);
  }
  return space.fromCube({ iifname: els });
}

/**
 * New connections from outside to the host on the input hook: TCP SYN (no other flag), UDP or SCTP from a unicast
 * source and an ephemeral port (1024-65535) to a local address, mark 0, arriving on an interface other than lo.
 */
export function inbound(ctx: AuditContext, q: InboundQuery): PacketSet {
  const space = ctx.space;
  const fam = q.family;
  const common: Cube = {
    nfproto: [sym(fam)],
    'ct.state': [sym('new')],
    mark: [r(0)],
    'saddr.type': [sym('unicast')],
    'daddr.type': [sym('local')],
    sport: [r(1024, 65535)],
    [saddrField(fam)]: (q.sources ?? possibleSources(fam)).map((a) => r(a.lo, a.hi)),
    // Loopback and other martian destinations never arrive from outside (and hardened rulesets drop them).
    [daddrField(fam)]: (q.daddrs && q.daddrs.length > 0 ? q.daddrs : possibleSources(fam)).map((a) => r(a.lo, a.hi)),
  };
  const ports = q.ports ?? [
    { proto: 6, from: 0, to: 65535 },
    { proto: 17, from: 0, to: 65535 },
    { proto: 132, from: 0, to: 65535 },
  ];
  let set = space.none();
  for (const p of ports) {
    const cube: Cube = {
      ...common,
      l4proto: [r(p.proto)],
      dport: [r(p.from, p.to)],
      ...(p.proto === 6 ? { 'tcp.flags': [r(TCP_SYN)] } : {}),
    };
    set = set.or(space.fromCube(cube));
  }
  return set.minus(loopbackIf(ctx));
}

// ---------------------------------------------------------------------------------------------------------------
// Quantification (the PacketSet interface has none; the BDD has)

function bddSpace(ctx: AuditContext): BddPacketSpace {
  return bddOf(ctx.space.none()).space;
}

function bddOf(set: PacketSet): BddPacketSet {
  if (!(set instanceof BddPacketSet)) throw new Error('the service audit rules need BDD-backed packet sets');
  return set;
}

/** The packets that agree with some packet of `set` on every field except `fields` (fields projected out). */
export function exists(set: PacketSet, fields: readonly Field[]): PacketSet {
  const s = bddOf(set);
  const sp = s.space;
  return sp.wrap(sp.bdd.and(sp.bdd.exists(s.node, sp.fieldVarSet(fields)), sp.universe));
}

/**
 * The packets of `domain` such that every packet of `domain` that differs from them only in `fields` is in `set`:
 * "whatever the values of these fields (within the domain), the packet is in the set".
 */
export function forallWithin(set: PacketSet, domain: PacketSet, fields: readonly Field[]): PacketSet {
  const s = bddOf(set);
  const d = bddOf(domain);
  const b = s.space.bdd;
  // Outside the domain (ill-formed packets included) counts as "in": forall (set or not domain), then back in.
  const n = b.forall(b.or(s.node, b.not(d.node)), s.space.fieldVarSet(fields));
  return s.space.wrap(b.and(n, d.node));
}

/**
 * The packets of `domain ∩ set` whose whole aligned block of addresses (the `bits` low bits of `field` free) is in
 * `set`, counting packets outside the domain as in: "the source's /N block is accepted, same other fields".
 */
export function wholeBlocks(set: PacketSet, domain: PacketSet, field: Field, bits: number): PacketSet {
  const s = bddOf(set);
  const d = bddOf(domain);
  const sp = s.space;
  const b = sp.bdd;
  const l = sp.fieldLayout(field);
  const n = Math.min(bits, l.width);
  const vars: number[] = [];
  for (let i = l.width - n; i < l.width; i++) vars.push(l.first + i);
  const all = b.forall(b.or(s.node, b.not(d.node)), b.varSet(vars));
  return sp.wrap(b.and(all, b.and(s.node, d.node)));
}

/** Every packet field except these. */
export function fieldsExcept(keep: readonly Field[]): Field[] {
  return FIELDS.filter((f) => !keep.includes(f));
}

/** The values one numeric or address field takes in a set, as sorted disjoint ranges. */
export function fieldRanges(set: PacketSet, field: Field, limit = 4096): { lo: bigint; hi: bigint }[] {
  const projected = exists(set, fieldsExcept([field, 'nfproto', 'l4proto']));
  const { cubes } = projected.cubes(limit);
  const out: { lo: bigint; hi: bigint }[] = [];
  for (const c of cubes) {
    const els = c[field];
    // A cube that does not restrict the field allows every value of it.
    if (!els) out.push({ lo: 0n, hi: FIELD_MAX[field] ?? 0n });
    else for (const e of els) if (e.kind === 'range') out.push({ lo: e.lo, hi: e.hi });
  }
  out.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const merged: { lo: bigint; hi: bigint }[] = [];
  for (const x of out) {
    const last = merged[merged.length - 1];
    if (last && x.lo <= last.hi + 1n) {
      if (x.hi > last.hi) last.hi = x.hi;
    } else merged.push({ ...x });
  }
  return merged;
}

/** The source addresses of a set, for one family. */
export function sourceRanges(set: PacketSet, fam: L3): AddrRange[] {
  const famSet = set.and(set.space.fromCube({ nfproto: [sym(fam)] }));
  return fieldRanges(famSet, saddrField(fam)).map((x) => ({ family: fam, ...x }));
}

/** `10.0.0.0/8, 192.0.2.0/24` (fewest prefixes; a long range as lo-hi), at most `cap` items. */
export function formatRanges(rs: readonly AddrRange[], cap = 4): string {
  const parts: string[] = [];
  for (const a of rs) {
    const ps = rangeToPrefixes(a.lo, a.hi, a.family === 'ipv4' ? 32 : 128);
    if (ps.length <= 2) parts.push(...ps.map((p) => formatAddressRange(a.family, p.lo, p.hi)));
    else parts.push(formatAddressRange(a.family, a.lo, a.hi));
  }
  if (parts.length <= cap) return parts.join(', ');
  return `${parts.slice(0, cap).join(', ')} and ${parts.length - cap} more`;
}

/**
 * Sources `got` within a domain of sources: `every IPv4 source`, `every IPv4 source except 192.0.2.0/24` when the
 * exceptions are the shorter list, else the ranges themselves.
 */
export function describeSources(got: readonly AddrRange[], domain: readonly AddrRange[], fam: L3): string {
  const missing = subtractRanges(domain, got);
  if (missing.length === 0) return `every ${familyName(fam)} source`;
  if (missing.length < got.length) return `every ${familyName(fam)} source except ${formatRanges(missing)}`;
  return formatRanges(got);
}

/** `22, 80-90` */
export function formatPortRanges(rs: readonly { lo: bigint; hi: bigint }[], cap = 8): string {
  const parts = rs.map((x) => (x.lo === x.hi ? `${x.lo}` : `${x.lo}-${x.hi}`));
  if (parts.length <= cap) return parts.join(',');
  return `${parts.slice(0, cap).join(',')},... (${parts.length - cap} more ranges)`;
}

/** The smallest prefix length (widest aligned block) inside some range. */
export function widestPrefix(rs: readonly AddrRange[]): number | undefined {
  let best: number | undefined;
  for (const a of rs) {
    const bits = a.family === 'ipv4' ? 32 : 128;
    for (const p of rangeToPrefixes(a.lo, a.hi, bits)) {
      let len = bits;
      let size = p.hi - p.lo + 1n;
      while (size > 1n) {
        size >>= 1n;
        len--;
      }
      if (best === undefined || len < best) best = len;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------------------
// Deciders as locations

export interface Located {
  readonly location?: FindingLocation;
  readonly text?: string;
  /** `rule tcp dport 22 accept (inet filter/input #3)` / `policy drop of inet filter/input`. */
  readonly label: string;
}

export function locate(ctx: AuditContext, d: Decider): Located {
  if (d.kind === 'rule') {
    const o = d.rule.origin;
    return {
      location: { file: o.file, line: o.line, ...(o.column !== undefined ? { column: o.column } : {}) },
      text: d.rule.text,
      label: `${d.rule.text} (${d.family} ${d.table}/${d.chain} #${d.position})`,
    };
  }
  if (d.kind === 'policy') {
    // The engine credits an accept to the last base chain that let the packet through, which may be a nat chain
    // nobody filters in: the policy to change is that of the input filter chain.
    if (d.policy === 'accept') {
      const table = ctx.ruleset.tables.find((t) => t.family === d.family && t.name === d.table);
      const own = table?.chains.find((c) => c.name === d.chain);
      if (own?.base?.type !== 'filter') {
        for (const t of ctx.ruleset.tables) {
          if (t.outOfScope || (t.family !== d.family && t.family !== 'inet')) continue;
          const c = t.chains.find(
            (x) => x.base?.type === 'filter' && x.base.hook === 'input' && x.base.policy === 'accept',
          );
          if (c)
            return locate(ctx, { kind: 'policy', family: t.family, table: t.name, chain: c.name, policy: 'accept' });
        }
      }
    }
    const chain = ctx.ruleset.tables
      .find((t) => t.family === d.family && t.name === d.table)
      ?.chains.find((c) => c.name === d.chain);
    const o = chain?.origin;
    return {
      ...(o
        ? { location: { file: o.file, line: o.line, ...(o.column !== undefined ? { column: o.column } : {}) } }
        : {}),
      text: `policy ${d.policy} (${d.family} ${d.table}/${d.chain})`,
      label: `policy ${d.policy} of ${d.family} ${d.table}/${d.chain}`,
    };
  }
  return { label: 'the end of the hook path (no base chain filters these packets: accept)' };
}

/**
 * Decisions over `set`, non-empty: rules first, then policies of filter chains, then the rest (a nat chain's
 * policy, the path end), each group by largest share. A finding points at the rule to change when there is one.
 */
export function decisionsBySize(
  compiled: CompiledRuleset,
  set: PacketSet,
  ruleset?: Ruleset,
): { d: Decision; n: bigint }[] {
  const rank = (d: Decider): number => {
    if (d.kind === 'rule') return 0;
    if (d.kind === 'policy') {
      const chain = ruleset?.tables
        .find((t) => t.family === d.family && t.name === d.table)
        ?.chains.find((c) => c.name === d.chain);
      return chain?.base?.type === 'filter' ? 0 : 1;
    }
    return 2;
  };
  return compiled
    .decisions(set)
    .map((d) => ({ d, n: d.packets.count(), k: rank(d.decider) }))
    .filter((x) => x.n > 0n)
    .sort((a, b) => a.k - b.k || (a.n > b.n ? -1 : a.n < b.n ? 1 : 0));
}

/** Location of the largest decider and related entries for every decider (at most `cap`). */
export function decidersAsLocations(
  ctx: AuditContext,
  compiled: CompiledRuleset,
  set: PacketSet,
  cap = 5,
): { main?: Located; related: RelatedLocation[] } {
  const ds = decisionsBySize(compiled, set, ctx.ruleset);
  const total = set.count();
  const related: RelatedLocation[] = [];
  for (const { d, n } of ds.slice(0, cap)) {
    const l = locate(ctx, d.decider);
    related.push({
      message: `${d.verdict}s ${n === total ? 'all' : share(n, total)} of these packets: ${l.label}`,
      ...(l.location ? { location: l.location } : {}),
      ...(l.text ? { text: l.text } : {}),
    });
  }
  const first = ds[0];
  return { ...(first ? { main: locate(ctx, first.d.decider) } : {}), related };
}

function share(part: bigint, total: bigint): string {
  const pct = Number((part * 10000n) / (total === 0n ? 1n : total)) / 100;
  return pct < 0.01 ? '<0.01%' : `${pct}%`;
}

/**
 * An example packet of a set, with a readable interface: the engine names an interface no rule mentions `other0`;
 * eth0 is the same atom when no rule mentions eth0 either.
 */
export function exampleOf(set: PacketSet, prefer: Partial<Packet>): Packet | undefined {
  const p = set.example(prefer);
  if (!p?.iif || !/^other\d+$/.test(p.iif)) return p;
  const space = bddOf(set).space;
  return space.atomOf(p.iif) === space.atomOf('eth0') ? { ...p, iif: 'eth0' } : p;
}

/** Example preferences: documentation addresses, a client port, eth0. */
export function preferFor(fam: L3, extra: Partial<Packet> = {}): Partial<Packet> {
  return {
    family: fam,
    saddr: fam === 'ipv4' ? '203.0.113.7' : '2001:db8:77::7',
    sport: 40000,
    iif: 'eth0',
    ctState: 'new',
    l4proto: 6,
    ...extra,
  };
}

/** Per-context memo for sets several rules need (compiled once, asked many times). */
const memo = new WeakMap<AuditContext, Map<string, unknown>>();
export function cached<T>(ctx: AuditContext, key: string, make: () => T): T {
  let m = memo.get(ctx);
  if (!m) {
    m = new Map();
    memo.set(ctx, m);
  }
  if (m.has(key)) return m.get(key) as T;
  const v = make();
  m.set(key, v);
  return v;
}

/** A stable key for a decider: the same rule or policy seen from two findings. */
export function deciderKey(d: Decider): string {
  if (d.kind === 'rule') return `rule ${d.family} ${d.table}/${d.chain}#${d.position}`;
  if (d.kind === 'policy') return `policy ${d.family} ${d.table}/${d.chain}`;
  return 'path-end';
}

/**
 * Packets of the input hook that no base chain decides (the end of the hook path accepts them): the ruleset does not
 * filter them at all. One finding (unfiltered-input) reports them; the exposure rules leave them out, so a file
 * without base chains does not read as ten exposed ports.
 */
export function unfilteredInput(ctx: AuditContext): PacketSet {
  return cached(ctx, 'unfilteredInput', () => ctx.compiled('input').pathEnd());
}

/** `a, b and c`. */
export function joinAnd(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/**
 * A file with user chains but no base chain at all (ufw user.rules, a fail2ban chain file, kube-proxy restore input):
 * no hook runs it. unfiltered-input says so once; the other rules do not repeat it chain by chain.
 */
export function isFragment(rs: Ruleset): boolean {
  const chains = rs.tables.filter((t) => !t.outOfScope).flatMap((t) => t.chains);
  return chains.length > 0 && !chains.some((c) => c.base) && chains.some((c) => c.rules.length > 0);
}
