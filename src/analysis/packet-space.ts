/**
 * Packet sets as BDDs over the model's header fields.
 *
 * Each field is a block of BDD variables, most significant bit first. The order puts the small fields every rule
 * tests (family, protocol, interfaces, ct state, address types, mark) at the top and the wide address and port
 * fields below, destination before source: kube-proxy and hand-written rulesets both branch on destination first.
 * Opaque-match variables are allocated after all packet variables.
 *
 * The universe is the set of well-formed packets: a field the packet does not have (ports on ICMP, IPv6 addresses
 * on IPv4, ...) is fixed to 0, and unused codes of enumerated fields are excluded. So count() is exact and not()
 * stays inside the universe. A match on a field the packet lacks is false whatever its operator, as in the tracer.
 *
 * Interface names are an enumerated domain of atoms built from the names the rulesets mention: "no interface",
 * each exact name, for each wildcard prefix "another name whose longest listed prefix is this one", and "any other
 * name". Two names in one atom are treated identically by every rule, so the encoding is exact.
 */
import type { AddrType, Element, Field, L3, Match, Packet, Ruleset } from '../firewall/model.js';
import { CT_STATES, FIELDS, L4_PROTOCOLS, PORT_PROTOCOLS } from '../firewall/model.js';
import {
  ADDR_TYPES,
  CT_STATE_BITS,
  TRACE_ICMP_TYPES,
  TRACE_ICMPV6_TYPES,
  TRACE_TCP_FLAGS,
} from '../firewall/symbols.js';
import type { TraceHook } from '../firewall/tracer.js';
import { formatAddress, parseAddress } from '../firewall/values.js';
import { Bdd } from './bdd.js';
import type { Cube, PacketSet, PacketSpace } from './types.js';

// ---------------------------------------------------------------------------------------------------------------
// Layout

/**
 * Variable order, top first. Source addresses above destinations: hand-written firewalls dispatch on the source
 * (zones, jumps per source prefix), so the flow set of a dispatching chain splits by source first and a jump's
 * test walks one source path instead of every destination split of everything the other zones returned (compile of
 * the hand-written 30k shape 23.9 s -> 9.2 s, adversarial 10k about 2.5x faster, kube-proxy unchanged or better).
 * The destination port between the two addresses took the hand-written 10k shape from 5.8 s to 3.7 s more; the
 * port on top, or the IPv6 addresses next to the IPv4 ones, were slower (A/B in bench/RESULTS.md).
 */
const FIELD_ORDER: readonly Field[] = [
  'nfproto',
  'l4proto',
  'ct.state',
  'iifname',
  'oifname',
  'mark',
  'saddr.type',
  'ip.saddr',
  'dport',
  'daddr.type',
  'ip.daddr',
  'sport',
  'ip6.saddr',
  'ip6.daddr',
  'icmp.type',
  'icmp.code',
  'icmpv6.type',
  'icmpv6.code',
  'tcp.flags',
];

/**
 * Source addresses above the interface names (the fields of the default order otherwise kept): Docker's nat
 * POSTROUTING (a MASQUERADE per container, `-s X/32 -d X/32 -p tcp --dport P`, and per network) walks every
 * interface branch of the forwarded set per rule in the default order, quadratic in containers x networks; with the
 * source on top each such rule walks one source path (docker compile + unreachable, CPU: 8k 31 -> 8.5 s, 10k > 60
 * -> 9.3 s; firewall 1.41x and fail2ban 1.14x slower at 10k). Answers are the same sets,
 * but a described set's cubes follow the variable order, so reach, diff and plan texts split the same packets
 * differently: not the default (bench/RESULTS.md, issue 19, 2026-12-05 second section).
 */
export const SOURCE_FIRST_ORDER: readonly Field[] = [
  'nfproto',
  'l4proto',
  'ct.state',
  'mark',
  'saddr.type',
  'ip.saddr',
  'iifname',
  'oifname',
  'dport',
  'daddr.type',
  'ip.daddr',
  'sport',
  'ip6.saddr',
  'ip6.daddr',
  'icmp.type',
  'icmp.code',
  'icmpv6.type',
  'icmpv6.code',
  'tcp.flags',
];

/** The default variable order (see FIELD_ORDER). */
export const DEFAULT_FIELD_ORDER: readonly Field[] = FIELD_ORDER;

/** The order as given when it names every field once; otherwise an error saying what is wrong. */
function checkFieldOrder(order: readonly Field[]): readonly Field[] {
  const seen = new Set<Field>();
  for (const f of order) {
    if (!FIELD_ORDER.includes(f))
      throw new Error(`packet space: fieldOrder names '${f}', which is not a field (valid: ${FIELD_ORDER.join(', ')})`);
    if (seen.has(f)) throw new Error(`packet space: fieldOrder names '${f}' twice`);
    seen.add(f);
  }
  const missing = FIELD_ORDER.filter((f) => !seen.has(f));
  if (missing.length > 0)
    throw new Error(`packet space: fieldOrder lacks ${missing.join(', ')} (it must name every field once)`);
  return order;
}

const FIXED_WIDTH: Partial<Record<Field, number>> = {
  nfproto: 1,
  l4proto: 8,
  'ct.state': 3,
  'daddr.type': 4,
  'saddr.type': 4,
  mark: 32,
  'ip.daddr': 32,
  'ip.saddr': 32,
  dport: 16,
  sport: 16,
  'ip6.daddr': 128,
  'ip6.saddr': 128,
  'icmp.type': 8,
  'icmp.code': 8,
  'icmpv6.type': 8,
  'icmpv6.code': 8,
  'tcp.flags': 8,
};

const NFPROTOS: readonly L3[] = ['ipv4', 'ipv6'];

const NFPROTO_NUMBERS: Readonly<Record<L3, number>> = { ipv4: 2, ipv6: 10 };

export interface FieldLayout {
  readonly field: Field;
  /** First (most significant) variable. */
  readonly first: number;
  readonly width: number;
}

type AtomKind = 'none' | 'exact' | 'prefix' | 'other';
interface Atom {
  readonly kind: AtomKind;
  /** The exact name, or the prefix. */
  readonly name: string;
}

function stripWildcard(value: string): string {
  return value.endsWith('*') || value.endsWith('+') ? value.slice(0, -1) : value;
}

function symbolToNumber(field: Field, s: string): number | undefined {
  if (/^\d+$/.test(s)) return Number(s);
  if (/^0x[0-9a-f]+$/i.test(s)) return Number.parseInt(s.slice(2), 16);
  if (field === 'l4proto') return L4_PROTOCOLS[s];
  if (field === 'icmp.type') return TRACE_ICMP_TYPES[s];
  if (field === 'icmpv6.type') return TRACE_ICMPV6_TYPES[s];
  if (field === 'tcp.flags') return TRACE_TCP_FLAGS[s];
  return undefined;
}

function isNameField(f: Field): boolean {
  return f === 'iifname' || f === 'oifname';
}
function isSymField(f: Field): boolean {
  return f === 'nfproto' || f === 'ct.state' || f === 'saddr.type' || f === 'daddr.type';
}

/** Symbol values of an enumerated field, in code order. */
function symbols(f: Field): readonly string[] {
  if (f === 'nfproto') return NFPROTOS;
  if (f === 'ct.state') return CT_STATES;
  return ADDR_TYPES;
}

/** Symbols a numeric range denotes on a symbolic field (as the tracer reads them). */
function rangeToSymbols(field: Field, lo: bigint, hi: bigint): string[] {
  const inRange = (n: number) => BigInt(n) >= lo && BigInt(n) <= hi;
  if (field === 'ct.state') return CT_STATES.filter((s) => inRange(CT_STATE_BITS[s]));
  if (field === 'nfproto') return NFPROTOS.filter((s) => inRange(NFPROTO_NUMBERS[s]));
  return ADDR_TYPES.filter((_, i) => inRange(i));
}

function collectNames(
  rulesets: readonly Ruleset[],
  extra: readonly string[],
): { exact: Set<string>; prefixes: Set<string> } {
  const exact = new Set<string>();
  const prefixes = new Set<string>();
  const add = (el: Element | undefined): void => {
    if (!el || el.kind === 'range') return;
    if (el.kind === 'name' && el.wildcard) prefixes.add(stripWildcard(el.value));
    else if (el.value !== '') exact.add(el.value);
  };
  const addVerdict = (fields: readonly Field[], key: readonly Element[]): void => {
    fields.forEach((f, i) => {
      if (isNameField(f)) add(key[i]);
    });
  };
  for (const rs of rulesets) {
    for (const t of rs.tables) {
      for (const s of t.sets) {
        if (s.types.includes('ifname')) {
          for (const tuple of s.elements) {
            s.types.forEach((ty, i) => {
              if (ty === 'ifname') add(tuple[i]);
            });
          }
        }
      }
      for (const c of t.chains) {
        for (const r of c.rules) {
          for (const m of r.matches) {
            if (m.kind === 'field' && isNameField(m.field)) for (const v of m.values) add(v);
            else if (m.kind === 'concat') for (const tuple of m.tuples) addVerdict(m.fields, tuple);
          }
          const v = r.verdict;
          if (v?.kind === 'vmap') for (const e of v.entries) addVerdict(v.fields, e.key);
        }
      }
    }
  }
  for (const n of extra) if (n !== '') exact.add(n);
  return { exact, prefixes };
}

// ---------------------------------------------------------------------------------------------------------------
// The space

export interface PacketSpaceOptions {
  /** Extra interface names to distinguish (names a query will ask about that no rule mentions). */
  readonly interfaces?: readonly string[];
  /**
   * log2 of the operation cache's size, fixed (default: it starts at operationCacheBits(rule count), 16 to 21, and
   * doubles up to 2^21 entries while the nodes in use are more than half its entries).
   */
  readonly cacheBits?: number;
  /**
   * Free unused nodes at the safe points of compilation and analysis (bounded memory on large rulesets). Only for
   * users that keep node numbers nowhere but in packet sets, compiled rulesets and this space (the CLI's queries);
   * the audit keeps raw nodes in its own caches and leaves it off.
   */
  readonly collectGarbage?: boolean;
  /**
   * The BDD variable order of the fields, top first (default DEFAULT_FIELD_ORDER; SOURCE_FIRST_ORDER for the
   * benchmarks' A/B). Every field once. Answers are the same sets whatever the order; described sets may be split
   * into other cubes.
   */
  readonly fieldOrder?: readonly Field[];
}

/**
 * The node table's first size, from the rule count: compiling takes a few hundred nodes per rule, and growing the
 * table rehashes every node (four growths cost about 0.8 s on a 10k-rule ruleset). Small rulesets keep a small table.
 */
function initialNodes(rules: number): number {
  let n = 1 << 18;
  while (n < rules * 256 && n < 1 << 22) n <<= 1;
  return n;
}

/** The operation cache's largest size (2^21 entries of 16 bytes: 32 MiB). */
const MAX_CACHE_BITS = 21;

/**
 * log2 of the operation cache's first size, from the rule count: 128 entries per rule, 2^16 to 2^21 entries (16 bytes
 * each: 1 to 32 MiB); the Bdd doubles it while the nodes in use are more than half its entries (a whole-space query on a small
 * ruleset makes 200-300k nodes). A fixed 2^21 cost small rulesets more than it saved: allocating and clearing 32 MiB,
 * and lookups spread over a table far larger than the processor's caches (bench/RESULTS.md, 2026-12-06). From about 8k
 * rules on it is 2^21 from the start, as before.
 */
export function operationCacheBits(rules: number): number {
  let bits = 16;
  while (1 << bits < rules * 128 && bits < MAX_CACHE_BITS) bits++;
  return bits;
}

function ruleCount(rulesets: readonly Ruleset[]): number {
  let rules = 0;
  for (const rs of rulesets) for (const t of rs.tables) for (const c of t.chains) rules += c.rules.length;
  return rules;
}

/** Matches of fields the packet has no value for at this hook (iif on output, ...): they are false. */
export type AbsentFields = ReadonlySet<Field>;

export class BddPacketSpace implements PacketSpace {
  readonly bdd: Bdd;
  readonly layout: ReadonlyMap<Field, FieldLayout>;
  /** Number of packet variables; opaque variables come after. */
  readonly packetVars: number;
  private readonly atoms: Atom[];
  private readonly atomIndex = new Map<string, number>();
  private readonly prefixList: string[];
  private readonly exactNames: Set<string>;
  readonly universe: number;
  private readonly presentCache = new Map<Field, number>();
  private nextVar: number;
  private opaqueCube = 1;
  private opaqueCubeStale = false;
  private readonly opaqueVars: number[] = [];
  private readonly elemCache = new Map<string, number>();

  constructor(rulesets: readonly Ruleset[], opts: PacketSpaceOptions = {}) {
    const rules = ruleCount(rulesets);
    this.bdd =
      opts.cacheBits !== undefined
        ? new Bdd(initialNodes(rules), opts.cacheBits)
        : new Bdd(initialNodes(rules), operationCacheBits(rules), MAX_CACHE_BITS);
    const { exact, prefixes } = collectNames(rulesets, opts.interfaces ?? []);
    this.exactNames = exact;
    this.prefixList = [...prefixes].sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
    this.atoms = [{ kind: 'none', name: '' }];
    for (const n of [...exact].sort()) this.atoms.push({ kind: 'exact', name: n });
    for (const p of [...prefixes].sort()) this.atoms.push({ kind: 'prefix', name: p });
    if (!prefixes.has('')) this.atoms.push({ kind: 'other', name: '' });
    this.atoms.forEach((a, i) => {
      this.atomIndex.set(`${a.kind}:${a.name}`, i);
    });
    let ifBits = 1;
    while (1 << ifBits < this.atoms.length) ifBits++;
    const layout = new Map<Field, FieldLayout>();
    let v = 0;
    for (const f of opts.fieldOrder ? checkFieldOrder(opts.fieldOrder) : FIELD_ORDER) {
      const width = isNameField(f) ? ifBits : FIXED_WIDTH[f]!;
      layout.set(f, { field: f, first: v, width });
      v += width;
    }
    this.layout = layout;
    this.packetVars = v;
    this.nextVar = v;
    this.universe = this.buildUniverse();
    this.bdd.gcEnabled = opts.collectGarbage ?? false;
    this.bdd.addRoots((mark) => {
      mark(this.universe);
      mark(this.opaqueCube);
      for (const n of this.presentCache.values()) mark(n);
      for (const n of this.elemCache.values()) mark(n);
      for (const n of this.fieldSetCache.values()) mark(n);
      for (const n of this.widenCache.values()) if (n >= 0) mark(n);
      for (const set of this.kept) set.markNode(mark);
    });
  }

  /** Packet sets the caller of the running safePoint() keeps. */
  private kept: readonly BddPacketSet[] = [];

  /**
   * A safe point for garbage collection (when enabled): nodes survive when compiled rulesets or this space hold
   * them, or when they belong to `keep`. Any other packet set made before a collection is void afterwards: using it
   * throws (never a silently wrong answer).
   */
  safePoint(keep: readonly PacketSet[] = []): void {
    if (!this.bdd.gcEnabled) return;
    this.kept = keep as readonly BddPacketSet[];
    try {
      if (this.bdd.maybeCollect()) for (const set of this.kept) set.renew();
    } finally {
      this.kept = [];
    }
  }

  // --- variables and raw constructions ------------------------------------------------------------------------

  fieldLayout(f: Field): FieldLayout {
    return this.layout.get(f)!;
  }

  /** A fresh variable for one opaque match occurrence. */
  newOpaqueVar(): number {
    const v = this.nextVar++;
    this.opaqueVars.push(v);
    this.opaqueCubeStale = true;
    return v;
  }

  /** The variable set of every opaque variable allocated so far. */
  opaqueVarSet(): number {
    if (this.opaqueCubeStale) {
      this.opaqueCube = this.bdd.varSet(this.opaqueVars);
      this.opaqueCubeStale = false;
    }
    return this.opaqueCube;
  }

  /** The variable set of some fields (for quantification). */
  /**
   * The values a numeric field takes in the set (every other field quantified away), as ranges (one per path of
   * the projection, in no particular order); undefined when they need more than `maxRanges` ranges.
   */
  fieldValues(set: PacketSet, f: Field, maxRanges = 4096): [bigint, bigint][] | undefined {
    const l = this.fieldLayout(f);
    return this.projectionValues(
      this.bdd.projectOnto((set as BddPacketSet).node, l.first, l.first + l.width),
      l,
      maxRanges,
    );
  }

  /**
   * The values of field f for which some packet of `a` is not in `b`: fieldValues(a.minus(b), f) without building
   * a - b (describe's widening asks this for each field of each cube, against a large set). [] when a is a subset
   * of b; undefined when the values take more than maxRanges ranges.
   */
  valuesOutside(a: PacketSet, b: PacketSet, f: Field, maxRanges = 4096): [bigint, bigint][] | undefined {
    const l = this.fieldLayout(f);
    const proj = this.bdd.diffProjectOnto(
      (a as BddPacketSet).node,
      (b as BddPacketSet).node,
      l.first,
      l.first + l.width,
    );
    return this.projectionValues(proj, l, maxRanges);
  }

  /** The values a BDD over one field's variables (a projection) holds, as ranges. */
  private projectionValues(proj: number, l: FieldLayout, maxRanges: number): [bigint, bigint][] | undefined {
    const b = this.bdd;
    // Each path gives one range at least: more paths than ranges allowed is the answer without walking them.
    if (b.pathCount(proj, maxRanges + 1) > maxRanges) return undefined;
    const out: [bigint, bigint][] = [];
    for (const path of b.paths(proj)) {
      const pat: Pattern = new Int8Array(l.width).fill(-1);
      for (const [v, val] of path) pat[v - l.first] = val ? 1 : 0;
      const ivs = patternValues(pat, maxRanges);
      if (!ivs) return undefined;
      out.push(...ivs);
      if (out.length > maxRanges) return undefined;
    }
    return out;
  }

  fieldVarSet(fields: readonly Field[]): number {
    const vars: number[] = [];
    for (const f of fields) {
      const l = this.fieldLayout(f);
      for (let i = 0; i < l.width; i++) vars.push(l.first + i);
    }
    return this.bdd.varSet(vars);
  }

  /** Literals fixing a field to a value. */
  fieldLiterals(f: Field, value: bigint): [number, boolean][] {
    const l = this.fieldLayout(f);
    const out: [number, boolean][] = [];
    for (let i = 0; i < l.width; i++) out.push([l.first + i, ((value >> BigInt(l.width - 1 - i)) & 1n) === 1n]);
    return out;
  }

  /** The field equals a value. */
  fieldEquals(f: Field, value: bigint | number): number {
    return this.bdd.cube(this.fieldLiterals(f, BigInt(value)));
  }

  /** The field lies in the union of inclusive intervals (clipped to the field's width). */
  fieldIntervals(f: Field, ivs: readonly (readonly [bigint, bigint])[]): number {
    const l = this.fieldLayout(f);
    const max = (1n << BigInt(l.width)) - 1n;
    const clipped: [bigint, bigint][] = [];
    for (const [lo, hi] of ivs) {
      const a = lo < 0n ? 0n : lo;
      const b = hi > max ? max : hi;
      if (a <= b) clipped.push([a, b]);
    }
    if (clipped.length === 0) return 0;
    clipped.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    const merged: [bigint, bigint][] = [];
    for (const iv of clipped) {
      const last = merged[merged.length - 1];
      if (last && iv[0] <= last[1] + 1n) {
        if (iv[1] > last[1]) last[1] = iv[1];
      } else merged.push([iv[0], iv[1]]);
    }
    if (l.width <= 48) {
      return buildIntervalsNum(
        this.bdd,
        l.first,
        l.width,
        merged.map((m) => Number(m[0])),
        merged.map((m) => Number(m[1])),
      );
    }
    return buildIntervalsBig(this.bdd, l.first, l.width, merged);
  }

  /** Whether the packet has the field (apart from hook-dependent interfaces). */
  present(f: Field): number {
    let p = this.presentCache.get(f);
    if (p !== undefined) return p;
    const proto = (ns: readonly number[]) =>
      this.fieldIntervals(
        'l4proto',
        ns.map((n) => [BigInt(n), BigInt(n)]),
      );
    switch (f) {
      case 'ip.saddr':
      case 'ip.daddr':
        p = this.fieldEquals('nfproto', 0);
        break;
      case 'ip6.saddr':
      case 'ip6.daddr':
        p = this.fieldEquals('nfproto', 1);
        break;
      case 'sport':
      case 'dport':
        p = proto([...PORT_PROTOCOLS]);
        break;
      case 'icmp.type':
      case 'icmp.code':
        p = proto([1]);
        break;
      case 'icmpv6.type':
      case 'icmpv6.code':
        p = proto([58]);
        break;
      case 'tcp.flags':
        p = proto([6]);
        break;
      case 'iifname':
      case 'oifname':
        p = this.bdd.not(this.fieldEquals(f, 0));
        break;
      default:
        p = 1;
    }
    this.presentCache.set(f, p);
    return p;
  }

  /** The universe's constraints on enumerated fields only (unused codes excluded), without the absent fields. */
  enumValidity(): number {
    const b = this.bdd;
    let u = 1;
    for (const f of FIELD_ORDER) {
      const l = this.fieldLayout(f);
      const size = isNameField(f) ? this.atoms.length : isSymField(f) ? symbols(f).length : undefined;
      if (size !== undefined && size < 1 << l.width) u = b.and(u, this.fieldIntervals(f, [[0n, BigInt(size - 1)]]));
    }
    return u;
  }

  private buildUniverse(): number {
    const b = this.bdd;
    let u = 1;
    for (const f of FIELD_ORDER) {
      const l = this.fieldLayout(f);
      const size = isNameField(f) ? this.atoms.length : isSymField(f) ? symbols(f).length : undefined;
      if (size !== undefined && size < 1 << l.width) {
        u = b.and(u, this.fieldIntervals(f, [[0n, BigInt(size - 1)]]));
      }
      const p = isNameField(f) ? 1 : this.present(f);
      if (p !== 1) u = b.and(u, b.or(p, this.fieldEquals(f, 0)));
    }
    return u;
  }

  // --- interface atoms ----------------------------------------------------------------------------------------

  /** The atom code of an interface name (undefined = no interface). */
  atomOf(name: string | undefined): number {
    if (name === undefined || name === '') return 0;
    if (this.exactNames.has(name)) return this.atomIndex.get(`exact:${name}`)!;
    for (const p of this.prefixList) if (name.startsWith(p)) return this.atomIndex.get(`prefix:${p}`)!;
    return this.atomIndex.get('other:')!;
  }

  /** A concrete interface name of an atom (undefined for "no interface"). */
  atomName(code: number): string | undefined {
    const a = this.atoms[code];
    if (!a || a.kind === 'none') return undefined;
    if (a.kind === 'exact') return a.name;
    for (let i = 0; ; i++) {
      const cand = `${a.kind === 'prefix' ? a.name : 'other'}${i}`;
      if (this.atomOf(cand) === code) return cand;
      if (i > 10_000) return cand;
    }
  }

  /** The atom as an element, for cubes. */
  atomElement(code: number): Element {
    const a = this.atoms[code]!;
    if (a.kind === 'none') return { kind: 'name', value: '', wildcard: false };
    if (a.kind === 'exact') return { kind: 'name', value: a.name, wildcard: false };
    if (a.kind === 'prefix') return { kind: 'name', value: a.name, wildcard: true };
    return { kind: 'name', value: this.atomName(code)!, wildcard: false };
  }

  get atomCount(): number {
    return this.atoms.length;
  }

  private atomsOfElement(el: Element): number[] {
    if (el.kind === 'range') return [];
    if (el.kind === 'name' && el.wildcard) {
      const p = stripWildcard(el.value);
      const out: number[] = [];
      this.atoms.forEach((a, i) => {
        if ((a.kind === 'exact' || a.kind === 'prefix') && a.name.startsWith(p)) out.push(i);
        else if (p === '' && a.kind === 'other') out.push(i);
      });
      return out;
    }
    if (el.value === '') return [0];
    return [this.atomOf(el.value)];
  }

  // --- elements and matches -----------------------------------------------------------------------------------

  /** The packets whose field value is one of the elements (presence not included). */
  elementsSet(f: Field, els: readonly Element[]): number {
    if (els.length === 1) {
      const el = els[0]!;
      const key = `${f}|${el.kind === 'range' ? `${el.lo}-${el.hi}` : `${el.kind}:${el.value}:${el.kind === 'name' && el.wildcard}`}`;
      const c = this.elemCache.get(key);
      if (c !== undefined) return c;
      const r = this.elementsSetUncached(f, els);
      if (this.elemCache.size < 200_000) this.elemCache.set(key, r);
      return r;
    }
    return this.elementsSetUncached(f, els);
  }

  private elementsSetUncached(f: Field, els: readonly Element[]): number {
    const codes = (cs: readonly number[]) =>
      this.fieldIntervals(
        f,
        cs.map((c) => [BigInt(c), BigInt(c)]),
      );
    if (isNameField(f)) return codes(els.flatMap((e) => this.atomsOfElement(e)));
    if (isSymField(f)) {
      const syms = symbols(f);
      const out: number[] = [];
      for (const e of els) {
        const names = e.kind === 'range' ? rangeToSymbols(f, e.lo, e.hi) : [e.value];
        for (const n of names) {
          const i = syms.indexOf(n);
          if (i >= 0) out.push(i);
        }
      }
      return codes(out);
    }
    const ivs: [bigint, bigint][] = [];
    const big = f.startsWith('ip6.');
    for (const e of els) {
      if (e.kind === 'range') ivs.push([e.lo, e.hi]);
      else if (!big && e.kind === 'symbol') {
        const n = symbolToNumber(f, e.value);
        if (n !== undefined) ivs.push([BigInt(n), BigInt(n)]);
      }
    }
    return this.fieldIntervals(f, ivs);
  }

  /** Field value under a mask is one of the elements: (field & mask) in els. */
  maskedSet(f: Field, els: readonly Element[], mask: bigint): number {
    const l = this.fieldLayout(f);
    const lits: [number, boolean][] = [];
    for (let i = 0; i < l.width; i++) {
      if (((mask >> BigInt(l.width - 1 - i)) & 1n) === 0n) lits.push([l.first + i, false]);
    }
    return this.bdd.restrict(this.elementsSet(f, els), this.bdd.cube(lits));
  }

  /**
   * The packets a non-opaque match holds for. `absent`: fields with no value at this hook (their matches fail).
   * Opaque matches are not handled here (the compiler gives each its own variable).
   */
  matchNode(m: Match, absent?: AbsentFields): number {
    const b = this.bdd;
    if (m.kind === 'opaque') return 1;
    if (m.kind === 'field') {
      if (absent?.has(m.field)) return 0;
      const mem =
        m.mask !== undefined ? this.maskedSet(m.field, m.values, m.mask) : this.elementsSet(m.field, m.values);
      const p = this.present(m.field);
      return m.op === 'ne' ? b.diff(p, mem) : b.and(p, mem);
    }
    if (m.fields.some((f) => absent?.has(f))) return 0;
    const mem = this.tuplesSet(m.fields, m.tuples);
    const p = b.andAll(m.fields.map((f) => this.present(f)));
    return m.op === 'ne' ? b.diff(p, mem) : b.and(p, mem);
  }

  /** Union of tuples (one element per field; a short tuple matches nothing, as in the tracer). */
  tuplesSet(fields: readonly Field[], tuples: readonly (readonly Element[])[]): number {
    const b = this.bdd;
    const parts: number[] = [];
    for (const t of tuples) {
      if (t.length < fields.length) continue;
      let n = 1;
      for (let i = 0; i < fields.length && n !== 0; i++) n = b.and(n, this.elementsSet(fields[i]!, [t[i]!]));
      if (n !== 0) parts.push(n);
    }
    return b.orAll(parts);
  }

  /** Packets that have all of the key fields (a vmap with a key field missing misses). */
  presentAll(fields: readonly Field[], absent?: AbsentFields): number {
    if (fields.some((f) => absent?.has(f))) return 0;
    return this.bdd.andAll(fields.map((f) => this.present(f)));
  }

  // --- PacketSpace --------------------------------------------------------------------------------------------

  wrap(node: number): BddPacketSet {
    return new BddPacketSet(this, node);
  }

  all(): BddPacketSet {
    return this.wrap(this.universe);
  }

  none(): BddPacketSet {
    return this.wrap(0);
  }

  fromCube(cube: Cube): BddPacketSet {
    const b = this.bdd;
    let n = this.universe;
    for (const f of FIELDS) {
      const els = cube[f];
      if (!els) continue;
      n = b.and(n, this.fieldSet(f, els));
      if (n === 0) break;
    }
    return this.wrap(n);
  }

  /**
   * The packets that have the field with one of the values (interfaces: one of the names), memoised: describing a
   * set builds the same fields' value lists over and over (each cube, each widening step).
   */
  private fieldSet(f: Field, els: readonly Element[]): number {
    let key = f as string;
    for (const e of els) key += `|${elKey(e)}`;
    const c = this.fieldSetCache.get(key);
    if (c !== undefined) return c;
    const s = isNameField(f) ? this.elementsSet(f, els) : this.bdd.and(this.present(f), this.elementsSet(f, els));
    if (this.fieldSetCache.size >= 100_000) this.fieldSetCache.clear();
    this.fieldSetCache.set(key, s);
    return s;
  }

  private readonly fieldSetCache = new Map<string, number>();

  /** The packet as a minterm. `hook` supplies the tracer's default address type (local on input). */
  packetNode(p: Packet, hook?: TraceHook): number {
    return this.bdd.cube(this.packetLiterals(p, hook));
  }

  packetLiterals(p: Packet, hook?: TraceHook): [number, boolean][] {
    const vals = packetFieldValues(p, hook);
    const lits: [number, boolean][] = [];
    for (const f of FIELD_ORDER) {
      let v: bigint;
      if (isNameField(f)) v = BigInt(this.atomOf(f === 'iifname' ? p.iif : p.oif));
      else v = vals.get(f) ?? 0n;
      lits.push(...this.fieldLiterals(f, v));
    }
    return lits;
  }

  fromPacket(packet: Packet, hook?: TraceHook): BddPacketSet {
    return this.wrap(this.packetNode(packet, hook));
  }

  anyValueOf(set: PacketSet, fields: readonly Field[]): BddPacketSet {
    const b = this.bdd;
    return this.wrap(b.and(b.exists((set as BddPacketSet).node, this.cachedVarSet(fields)), this.universe));
  }

  stats(): {
    readonly nodes: number;
    readonly nodesMade: number;
    readonly collections: number;
    readonly cacheHits: number;
    readonly cacheMisses: number;
  } {
    const b = this.bdd;
    return {
      nodes: b.nodeCount,
      nodesMade: b.nodesMade,
      collections: b.gcStats.collections,
      cacheHits: b.hits,
      cacheMisses: b.misses,
    };
  }

  /**
   * The set with the points outside the universe that no packet can have (unused enum codes, values of absent
   * fields) added back wherever the field is otherwise free: fewer, larger BDD paths for cubes().
   */
  widenDontCares(node: number): number {
    const b = this.bdd;
    // A field the set does not test gains nothing (and each quantification walks the whole set).
    const tested = new Set<Field>();
    const support = b.support(node);
    for (const f of FIELD_ORDER) {
      const l = this.fieldLayout(f);
      if (support.some((v) => v >= l.first && v < l.first + l.width)) tested.add(f);
    }
    // Field by field, the set grows by (don't-care condition of f) and (the set with f quantified). The conditions
    // of absent fields depend on the family and the protocol only, which are never widened, and an unused code's on
    // its own field: the steps commute, so on each region of one family and one protocol class the absent fields
    // are quantified all at once (one walk instead of one per field) and the unused codes widened after.
    const enums = FIELD_ORDER.filter((f) => tested.has(f) && this.invalidCodes(f) !== undefined);
    const parts: number[] = [];
    for (const fam of [0, 1] as const) {
      for (const cls of PROTO_CLASSES) {
        let piece = b.and(node, this.widenRegion(fam, cls));
        if (piece === 0) continue;
        const absent = OPTIONAL_FIELDS.filter((f) => tested.has(f) && !hasField(f, fam, cls));
        if (absent.length > 0) piece = b.exists(piece, this.cachedVarSet(absent));
        for (const f of enums)
          piece = b.or(piece, b.and(this.invalidCodes(f)!, b.exists(piece, this.cachedVarSet([f]))));
        parts.push(piece);
      }
    }
    return b.orAll(parts);
  }

  /** The codes of an enumerated field no packet has (undefined: none). */
  private invalidCodes(f: Field): number | undefined {
    const key = `invalid:${f}`;
    if (this.widenCache.has(key)) {
      const n = this.widenCache.get(key)!;
      return n < 0 ? undefined : n;
    }
    const l = this.fieldLayout(f);
    const size = isNameField(f) ? this.atoms.length : isSymField(f) ? symbols(f).length : undefined;
    const n =
      size !== undefined && size < 1 << l.width
        ? this.fieldIntervals(f, [[BigInt(size), (1n << BigInt(l.width)) - 1n]])
        : -1;
    this.widenCache.set(key, n);
    return n < 0 ? undefined : n;
  }

  /** Packets of one family (0 ipv4, 1 ipv6) and one protocol class. */
  private widenRegion(fam: 0 | 1, cls: ProtoClass): number {
    const key = `region:${fam}:${cls}`;
    let n = this.widenCache.get(key);
    if (n === undefined) {
      const protos = cls === 'other' ? OTHER_PROTOS : PROTO_CLASS_VALUES[cls];
      n = this.bdd.and(
        this.fieldEquals('nfproto', fam),
        this.fieldIntervals(
          'l4proto',
          protos.map((p) => [BigInt(p), BigInt(p)]),
        ),
      );
      this.widenCache.set(key, n);
    }
    return n;
  }

  private cachedVarSet(fields: readonly Field[]): number {
    const key = `vars:${fields.join(',')}`;
    let n = this.widenCache.get(key);
    if (n === undefined) {
      n = this.fieldVarSet(fields);
      this.widenCache.set(key, n);
    }
    return n;
  }

  private readonly widenCache = new Map<string, number>();

  /** Removes the opaque variables (may-match). */
  dropOpaque(node: number): number {
    return this.opaqueVars.length === 0 ? node : this.bdd.exists(node, this.opaqueVarSet());
  }

  /** Decodes a full assignment into a packet. */
  decode(bits: (v: number) => boolean): Packet {
    const val = (f: Field): bigint => {
      const l = this.fieldLayout(f);
      let x = 0n;
      for (let i = 0; i < l.width; i++) x = (x << 1n) | (bits(l.first + i) ? 1n : 0n);
      return x;
    };
    const family = NFPROTOS[Number(val('nfproto'))] ?? 'ipv4';
    const v4 = family === 'ipv4';
    const l4proto = Number(val('l4proto'));
    const hasPorts = PORT_PROTOCOLS.has(l4proto);
    const iif = this.atomName(Number(val('iifname')));
    const oif = this.atomName(Number(val('oifname')));
    const icmpPrefix = l4proto === 1 ? 'icmp' : l4proto === 58 ? 'icmpv6' : undefined;
    return {
      family,
      ...(iif !== undefined ? { iif } : {}),
      ...(oif !== undefined ? { oif } : {}),
      saddr: formatAddress(family, val(v4 ? 'ip.saddr' : 'ip6.saddr')),
      daddr: formatAddress(family, val(v4 ? 'ip.daddr' : 'ip6.daddr')),
      l4proto,
      ...(hasPorts ? { sport: Number(val('sport')), dport: Number(val('dport')) } : {}),
      ...(icmpPrefix
        ? {
            icmpType: Number(val(`${icmpPrefix}.type` as Field)),
            icmpCode: Number(val(`${icmpPrefix}.code` as Field)),
          }
        : {}),
      ctState: CT_STATES[Number(val('ct.state'))] ?? 'new',
      mark: Number(val('mark')),
      ...(l4proto === 6 ? { tcpFlags: Number(val('tcp.flags')) } : {}),
      saddrType: ADDR_TYPES[Number(val('saddr.type'))] ?? 'unicast',
      daddrType: ADDR_TYPES[Number(val('daddr.type'))] ?? 'unicast',
    };
  }

  /** Preferred bit values from a partial packet (and nice defaults). */
  preference(prefer: Partial<Packet> | undefined): (v: number) => boolean {
    const want = new Map<number, boolean>();
    const set = (f: Field, value: bigint | undefined) => {
      if (value === undefined) return;
      for (const [v, b] of this.fieldLiterals(f, value)) want.set(v, b);
    };
    // Defaults: tcp, ct state new, unicast addresses, a client port.
    set('l4proto', 6n);
    set('ct.state', BigInt(CT_STATES.indexOf('new')));
    set('saddr.type', BigInt(ADDR_TYPES.indexOf('unicast')));
    set('daddr.type', BigInt(ADDR_TYPES.indexOf('unicast')));
    set('sport', 40000n);
    set('tcp.flags', 2n);
    if (prefer) {
      const vals = packetFieldValues(prefer as Packet, undefined, true);
      for (const [f, v] of vals) set(f, v);
      if (prefer.iif !== undefined) set('iifname', BigInt(this.atomOf(prefer.iif)));
      if (prefer.oif !== undefined) set('oifname', BigInt(this.atomOf(prefer.oif)));
    }
    return (v) => want.get(v) ?? false;
  }
}

/** Field values of a concrete packet (absent fields omitted); `partial` tolerates missing addresses. */
function packetFieldValues(p: Packet, hook: TraceHook | undefined, partial = false): Map<Field, bigint> {
  const out = new Map<Field, bigint>();
  const family = p.family ?? (partial ? undefined : 'ipv4');
  if (family) out.set('nfproto', BigInt(NFPROTOS.indexOf(family)));
  const l4 = p.l4proto;
  if (l4 !== undefined) out.set('l4proto', BigInt(l4));
  const addr = (text: string | undefined, f4: Field, f6: Field) => {
    if (text === undefined) return;
    const a = parseAddress(text);
    if (!a) {
      if (partial) return;
      throw new Error(`not an address: ${text}`);
    }
    out.set(a.family === 'ipv4' ? f4 : f6, a.value);
  };
  addr(p.saddr, 'ip.saddr', 'ip6.saddr');
  addr(p.daddr, 'ip.daddr', 'ip6.daddr');
  const ports = l4 !== undefined && PORT_PROTOCOLS.has(l4);
  if ((ports || partial) && p.sport !== undefined) out.set('sport', BigInt(p.sport));
  if ((ports || partial) && p.dport !== undefined) out.set('dport', BigInt(p.dport));
  if (l4 === 1 || (partial && l4 === undefined)) {
    if (p.icmpType !== undefined) out.set('icmp.type', BigInt(p.icmpType));
    if (p.icmpCode !== undefined) out.set('icmp.code', BigInt(p.icmpCode));
  }
  if (l4 === 58 || (partial && l4 === undefined)) {
    if (p.icmpType !== undefined) out.set('icmpv6.type', BigInt(p.icmpType));
    if (p.icmpCode !== undefined) out.set('icmpv6.code', BigInt(p.icmpCode));
  }
  const ct = p.ctState ?? (partial ? undefined : 'new');
  if (ct) out.set('ct.state', BigInt(CT_STATES.indexOf(ct)));
  if (p.mark !== undefined || !partial) out.set('mark', BigInt((p.mark ?? 0) >>> 0));
  if (l4 === 6) {
    const flags = p.tcpFlags ?? (partial ? undefined : ct === 'established' || ct === 'related' ? 16 : 2);
    if (flags !== undefined) out.set('tcp.flags', BigInt(flags));
  }
  const st: AddrType | undefined = p.saddrType ?? (partial ? undefined : 'unicast');
  if (st) out.set('saddr.type', BigInt(ADDR_TYPES.indexOf(st)));
  const dt: AddrType | undefined = p.daddrType ?? (partial ? undefined : hook === 'input' ? 'local' : 'unicast');
  if (dt) out.set('daddr.type', BigInt(ADDR_TYPES.indexOf(dt)));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Interval construction

/** Union of sorted, disjoint, non-adjacent intervals over `width` bits starting at variable `first`. */
function buildIntervalsNum(b: Bdd, first: number, width: number, los: number[], his: number[]): number {
  const rec = (depth: number, base: number, a: number, z: number): number => {
    if (a >= z) return 0;
    const size = 2 ** (width - depth);
    const end = base + size - 1;
    if (los[a]! <= base && his[a]! >= end) return 1;
    const mid = base + size / 2;
    let k = a;
    while (k < z && his[k]! < mid) k++;
    const lowEnd = k < z && los[k]! < mid ? k + 1 : k;
    const low = rec(depth + 1, base, a, lowEnd);
    const high = rec(depth + 1, mid, k, z);
    return b.mk(first + depth, low, high);
  };
  return rec(0, 0, 0, los.length);
}

function buildIntervalsBig(b: Bdd, first: number, width: number, ivs: readonly [bigint, bigint][]): number {
  const rec = (depth: number, base: bigint, a: number, z: number): number => {
    if (a >= z) return 0;
    const size = 1n << BigInt(width - depth);
    const end = base + size - 1n;
    if (ivs[a]![0] <= base && ivs[a]![1] >= end) return 1;
    const mid = base + size / 2n;
    let k = a;
    while (k < z && ivs[k]![1] < mid) k++;
    const lowEnd = k < z && ivs[k]![0] < mid ? k + 1 : k;
    const low = rec(depth + 1, base, a, lowEnd);
    const high = rec(depth + 1, mid, k, z);
    return b.mk(first + depth, low, high);
  };
  return rec(0, 0n, 0, ivs.length);
}

// ---------------------------------------------------------------------------------------------------------------
// Sets

/** Protocol classes with the same present fields: tcp (ports, flags), other port protocols, icmp, icmpv6, the rest. */
type ProtoClass = 'tcp' | 'ports' | 'icmp' | 'icmpv6' | 'other';
const PROTO_CLASSES: readonly ProtoClass[] = ['tcp', 'ports', 'icmp', 'icmpv6', 'other'];
const PROTO_CLASS_VALUES: Readonly<Record<Exclude<ProtoClass, 'other'>, readonly number[]>> = {
  tcp: [6],
  ports: [...PORT_PROTOCOLS].filter((p) => p !== 6),
  icmp: [1],
  icmpv6: [58],
};
const OTHER_PROTOS: readonly number[] = Array.from({ length: 256 }, (_, p) => p).filter(
  (p) => !PORT_PROTOCOLS.has(p) && p !== 1 && p !== 58,
);

/** Whether packets of the family and protocol class have the field (for the optional fields). */
function hasField(f: Field, fam: 0 | 1, cls: ProtoClass): boolean {
  if (f === 'ip.saddr' || f === 'ip.daddr') return fam === 0;
  if (f === 'ip6.saddr' || f === 'ip6.daddr') return fam === 1;
  if (f === 'sport' || f === 'dport') return cls === 'tcp' || cls === 'ports';
  if (f === 'icmp.type' || f === 'icmp.code') return cls === 'icmp';
  if (f === 'icmpv6.type' || f === 'icmpv6.code') return cls === 'icmpv6';
  if (f === 'tcp.flags') return cls === 'tcp';
  return true;
}

const OPTIONAL_FIELDS: readonly Field[] = [
  'ip.saddr',
  'ip.daddr',
  'ip6.saddr',
  'ip6.daddr',
  'sport',
  'dport',
  'icmp.type',
  'icmp.code',
  'icmpv6.type',
  'icmpv6.code',
  'tcp.flags',
];

export class BddPacketSet implements PacketSet {
  private n: number | undefined;
  private thunk: (() => number) | undefined;

  /**
   * `node` may be a function computing it on first use; `nonEmpty` then lets isEmpty() answer without building the
   * set (the unreachable-rule analysis asks that of every rule).
   */
  constructor(
    readonly space: BddPacketSpace,
    node: number | (() => number),
    private readonly nonEmpty = false,
  ) {
    this.epoch = space.bdd.gcEpoch;
    if (typeof node === 'number') this.n = node;
    else this.thunk = node;
  }

  /** The manager's collection count when the node was made. */
  private epoch: number;

  /** The BDD node (over packet variables only). */
  get node(): number {
    if (this.n === undefined) {
      this.n = this.thunk!();
      this.thunk = undefined;
      this.epoch = this.space.bdd.gcEpoch;
    } else if (this.epoch !== this.space.bdd.gcEpoch && this.n >= 2 && this.n !== this.space.universe) {
      throw new Error('internal error: a packet set was used after a garbage collection that did not keep it');
    }
    return this.n;
  }

  /** Passes this set's node to a collection's mark (nothing if not built yet). */
  markNode(mark: (n: number) => void): void {
    if (this.n !== undefined) mark(this.n);
  }

  /** Kept through a collection: valid again. */
  renew(): void {
    this.epoch = this.space.bdd.gcEpoch;
  }

  private other(o: PacketSet): number {
    if (o.space !== this.space || !(o instanceof BddPacketSet)) {
      throw new Error('packet sets from different packet spaces cannot be combined');
    }
    return o.node;
  }

  and(o: PacketSet): BddPacketSet {
    return this.space.wrap(this.space.bdd.and(this.node, this.other(o)));
  }
  or(o: PacketSet): BddPacketSet {
    return this.space.wrap(this.space.bdd.or(this.node, this.other(o)));
  }
  minus(o: PacketSet): BddPacketSet {
    return this.space.wrap(this.space.bdd.diff(this.node, this.other(o)));
  }
  not(): BddPacketSet {
    return this.space.wrap(this.space.bdd.diff(this.space.universe, this.node));
  }
  isEmpty(): boolean {
    if (this.n === undefined && this.nonEmpty) return false;
    return this.node === 0;
  }
  equals(o: PacketSet): boolean {
    return this.node === this.other(o);
  }
  covers(o: PacketSet): boolean {
    return this.space.bdd.implies(this.other(o), this.node);
  }
  count(): bigint {
    return this.space.bdd.satCount(this.node, 0, this.space.packetVars);
  }
  contains(packet: Packet, hook?: TraceHook): boolean {
    const lits = new Map(this.space.packetLiterals(packet, hook));
    return this.space.bdd.evaluate(this.node, (v) => lits.get(v) ?? false);
  }
  example(prefer?: Partial<Packet>): Packet | undefined {
    if (this.node === 0) return undefined;
    const pref = this.space.preference(prefer);
    const sat = this.space.bdd.anySat(this.node, pref)!;
    return this.space.decode((v) => sat.get(v) ?? pref(v));
  }
  cubes(limit = 1000): { readonly cubes: readonly Cube[]; readonly truncated: boolean } {
    return cubesOf(this.space, this.node, limit);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Cubes

type Pattern = Int8Array; // per bit: -1 free, 0, 1

function patternValues(p: Pattern, maxRanges: number): [bigint, bigint][] | undefined {
  // Free bits after the last fixed bit form a contiguous range; free bits before it are enumerated.
  const w = p.length;
  let lastFixed = -1;
  for (let i = 0; i < w; i++) if (p[i] !== -1) lastFixed = i;
  const freeHead: number[] = [];
  for (let i = 0; i <= lastFixed; i++) if (p[i] === -1) freeHead.push(i);
  if (freeHead.length > 30 || 2 ** freeHead.length > maxRanges) return undefined;
  const count = 2 ** freeHead.length;
  if (w <= 48) {
    // Numbers are exact below 2^53: the same ranges without a BigInt per bit. The values come out ascending
    // (the enumerated bits are taken most significant first), so merging needs no sort.
    const tailBits = w - 1 - lastFixed;
    const size = 2 ** tailBits;
    const merged: [bigint, bigint][] = [];
    let curLo = -1;
    let curHi = -1;
    for (let m = 0; m < count; m++) {
      let x = 0;
      let fh = 0;
      for (let i = 0; i <= lastFixed; i++) {
        let bit: number;
        if (p[i] === -1) {
          bit = (m >> (freeHead.length - 1 - fh)) & 1;
          fh++;
        } else bit = p[i]!;
        x = x * 2 + bit;
      }
      const lo = x * size;
      if (curLo >= 0 && lo === curHi + 1) curHi = lo + size - 1;
      else {
        if (curLo >= 0) merged.push([BigInt(curLo), BigInt(curHi)]);
        curLo = lo;
        curHi = lo + size - 1;
      }
    }
    if (curLo >= 0) merged.push([BigInt(curLo), BigInt(curHi)]);
    return merged;
  }
  const tail = BigInt(w - 1 - lastFixed);
  const out: [bigint, bigint][] = [];
  for (let m = 0; m < count; m++) {
    let x = 0n;
    let fh = 0;
    for (let i = 0; i <= lastFixed; i++) {
      let bit: number;
      if (p[i] === -1) {
        bit = (m >> (freeHead.length - 1 - fh)) & 1;
        fh++;
      } else bit = p[i]!;
      x = (x << 1n) | BigInt(bit);
    }
    const lo = x << tail;
    out.push([lo, lo + (1n << tail) - 1n]);
  }
  out.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const merged: [bigint, bigint][] = [];
  for (const iv of out) {
    const last = merged[merged.length - 1];
    if (last && iv[0] === last[1] + 1n) last[1] = iv[1];
    else merged.push([iv[0], iv[1]]);
  }
  return merged;
}

function cubesOf(space: BddPacketSpace, node: number, limit: number): { cubes: Cube[]; truncated: boolean } {
  const b = space.bdd;
  node = space.widenDontCares(node);
  const out: { cube: Cube; size: bigint }[] = [];
  let truncated = false;
  for (const path of b.paths(node)) {
    if (out.length >= limit) {
      truncated = true;
      break;
    }
    // One pattern over every packet variable (opaque ones never occur in sets handed out), viewed per field.
    const all = new Int8Array(space.packetVars).fill(-1);
    for (const [v, val] of path) if (v < space.packetVars) all[v] = val ? 1 : 0;
    const pats = new Map<Field, Pattern>();
    for (const f of FIELD_ORDER) {
      const l = space.fieldLayout(f);
      pats.set(f, all.subarray(l.first, l.first + l.width));
    }
    // Split by protocol class so that each cube's optional fields are either all present or all absent.
    const l4 = patternValues(pats.get('l4proto')!, 256)!.flatMap(([lo, hi]) => {
      const r: number[] = [];
      for (let x = Number(lo); x <= Number(hi); x++) r.push(x);
      return r;
    });
    const fams = patternValues(pats.get('nfproto')!, 2)!.flatMap(([lo, hi]) => (lo === hi ? [Number(lo)] : [0, 1]));
    const classOf = (x: number) => (x === 6 ? 't' : PORT_PROTOCOLS.has(x) ? 'p' : x === 1 ? 'i' : x === 58 ? 'j' : 'o');
    const groups = new Map<string, number[]>();
    for (const x of l4) {
      const k = classOf(x);
      const g = groups.get(k);
      if (g) g.push(x);
      else groups.set(k, [x]);
    }
    for (const fam of fams) {
      for (const [cls, protos] of groups) {
        const cube: Record<string, Element[]> = {};
        let size = 1n;
        let bad = false;
        const addField = (f: Field) => {
          const pat = pats.get(f)!;
          const free = pat.every((x) => x === -1);
          if (free && !isNameField(f) && !isSymField(f)) {
            size *= 1n << BigInt(pat.length);
            return;
          }
          if (isNameField(f) || isSymField(f)) {
            const valid = isNameField(f) ? space.atomCount : symbols(f).length;
            // A path that leaves the field free allows every valid code: known without listing them all.
            if (free && valid <= 2 ** pat.length) {
              size *= BigInt(valid);
              return;
            }
            const codes = (patternValues(pat, 1 << 16) ?? []).flatMap(([lo, hi]) => {
              const r: number[] = [];
              for (let x = Number(lo); x <= Number(hi); x++) r.push(x);
              return r;
            });
            const ok = codes.filter((c) => c < valid);
            size *= BigInt(ok.length);
            if (ok.length === valid) return;
            cube[f] = ok.map((c) =>
              isNameField(f) ? space.atomElement(c) : { kind: 'symbol', value: symbols(f)[c]! },
            );
            return;
          }
          const ivs = patternValues(pat, 4096);
          if (!ivs) {
            bad = true;
            return;
          }
          let n = 0n;
          for (const [lo, hi] of ivs) n += hi - lo + 1n;
          size *= n;
          cube[f] = ivs.map(([lo, hi]) => ({ kind: 'range', lo, hi }));
        };
        if (fams.length < 2) addField('nfproto');
        else cube.nfproto = [{ kind: 'symbol', value: NFPROTOS[fam]! }];
        if (protos.length !== l4.length || l4.length < 256) {
          cube.l4proto = mergeNums(protos);
          size *= BigInt(protos.length);
        }
        for (const f of FIELD_ORDER) {
          if (f === 'nfproto' || f === 'l4proto') continue;
          if (OPTIONAL_FIELDS.includes(f)) {
            const v4 = f.startsWith('ip.');
            const v6 = f.startsWith('ip6.');
            const has =
              (v4 && fam === 0) ||
              (v6 && fam === 1) ||
              ((f === 'sport' || f === 'dport') && (cls === 't' || cls === 'p')) ||
              (f.startsWith('icmp.') && cls === 'i') ||
              (f.startsWith('icmpv6.') && cls === 'j') ||
              (f === 'tcp.flags' && cls === 't');
            if (!has) continue;
          }
          addField(f);
        }
        if (bad) truncated = true;
        out.push({ cube: cube as Cube, size });
      }
    }
  }
  const merged = mergeCubes(out).map((c) => {
    if ((c.cube.nfproto?.length ?? 0) < 2) return c;
    const { nfproto: _all, ...rest } = c.cube;
    return { cube: rest, size: c.size };
  });
  merged.sort((a, b) => (a.size > b.size ? -1 : a.size < b.size ? 1 : 0));
  return { cubes: merged.map((c) => c.cube), truncated };
}

function mergeNums(xs: readonly number[]): Element[] {
  const s = [...xs].sort((a, b) => a - b);
  const out: Element[] = [];
  for (const x of s) {
    const last = out[out.length - 1];
    if (last && last.kind === 'range' && BigInt(x) === last.hi + 1n) out[out.length - 1] = { ...last, hi: BigInt(x) };
    else out.push({ kind: 'range', lo: BigInt(x), hi: BigInt(x) });
  }
  return out;
}

function elKey(e: Element): string {
  return e.kind === 'range' ? `${e.lo}-${e.hi}` : `${e.kind}:${e.value}:${e.kind === 'name' && e.wildcard}`;
}

/** Merges cubes that differ in exactly one field (their union is again a cube). */
function mergeCubes(cubes: { cube: Cube; size: bigint }[]): { cube: Cube; size: bigint }[] {
  // Each cube's per-field keys are made once (a merged cube differs from its parts in one field).
  const fieldKeys = new WeakMap<Cube, string[]>();
  const keysOf = (c: Cube): string[] => {
    let k = fieldKeys.get(c);
    if (!k) {
      k = FIELDS.map((f) => `${f}=${c[f] ? c[f]!.map(elKey).join(',') : '*'}`);
      fieldKeys.set(c, k);
    }
    return k;
  };
  const keyOf = (c: Cube, skip: Field) => {
    const ks = keysOf(c);
    let out = '';
    for (let i = 0; i < FIELDS.length; i++) {
      if (FIELDS[i] === skip) continue;
      out += out === '' ? ks[i]! : `;${ks[i]}`;
    }
    return out;
  };
  let changed = true;
  let list = cubes;
  let unique = 0;
  while (changed && list.length > 1 && list.length < 2000) {
    changed = false;
    for (const f of FIELDS) {
      const groups = new Map<string, { cube: Cube; size: bigint }[]>();
      for (const c of list) {
        if (!c.cube[f]) {
          groups.set(`#${unique++}`, [c]);
          continue;
        }
        const k = keyOf(c.cube, f);
        const g = groups.get(k);
        if (g) g.push(c);
        else groups.set(k, [c]);
      }
      const next: { cube: Cube; size: bigint }[] = [];
      for (const g of groups.values()) {
        if (g.length === 1) {
          next.push(g[0]!);
          continue;
        }
        changed = true;
        const els = mergeElements(g.flatMap((c) => c.cube[f]!));
        next.push({ cube: { ...g[0]!.cube, [f]: els }, size: g.reduce((s, c) => s + c.size, 0n) });
      }
      list = next;
    }
  }
  return list;
}

function mergeElements(els: readonly Element[]): Element[] {
  const ranges = els.filter((e) => e.kind === 'range') as { kind: 'range'; lo: bigint; hi: bigint }[];
  const rest = els.filter((e) => e.kind !== 'range');
  ranges.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: Element[] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last && last.kind === 'range' && r.lo <= last.hi + 1n) {
      if (r.hi > last.hi) out[out.length - 1] = { kind: 'range', lo: last.lo, hi: r.hi };
    } else out.push(r);
  }
  const seen = new Set<string>();
  for (const e of rest) {
    const k = elKey(e);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(e);
    }
  }
  return out;
}

/** Builds the packet space for a set of rulesets (every set used together must come from one space). */
export function createPacketSpace(rulesets: readonly Ruleset[], opts: PacketSpaceOptions = {}): BddPacketSpace {
  return new BddPacketSpace(rulesets, opts);
}
