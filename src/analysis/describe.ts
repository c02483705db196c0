/**
 * Packet sets as a few readable flow descriptions: `tcp dport 443 from any to 192.0.2.10`.
 *
 * The engine hands out disjoint cubes; people want few lines. So cubes are normalised (ranges coalesced), cubes that
 * differ in one field only are merged (repeatedly), addresses are printed as the fewest prefixes (or a range when
 * that is shorter), ports as ranges. Each description keeps its exact packet set, so the example packet and the
 * deciding rules are those of that piece and nothing else.
 */
import type { Element, Field, FinalVerdict, Packet } from '../firewall/model.js';
import { CT_STATES, FIELDS, L4_PROTOCOLS, PORT_PROTOCOLS } from '../firewall/model.js';
import { ADDR_TYPES, PROTOCOLS, SERVICES } from '../firewall/symbols.js';
import { formatAddress, formatAddressRange, formatElement } from '../firewall/values.js';
import { protoName } from './flow-spec.js';
import type { CompiledRuleset, Cube, Decider, Decision, PacketSet, PacketSpace } from './types.js';

/** A decider in printable form (JSON output and the `by` lines of human output). */
export interface DeciderInfo {
  readonly kind: 'rule' | 'policy' | 'path-end';
  readonly verdict: FinalVerdict;
  readonly family?: string;
  readonly table?: string;
  readonly chain?: string;
  readonly position?: number;
  readonly file?: string;
  readonly line?: number;
  readonly text?: string;
  /** Number of packets of the piece it decided. */
  readonly packets: bigint;
}

export interface FlowDescription {
  readonly text: string;
  /** The merged cube the text describes (exactly, within the described set). */
  readonly cube: Cube;
  readonly set: PacketSet;
  readonly packets: bigint;
  readonly example?: Packet;
  readonly deciders?: readonly DeciderInfo[];
}

export interface Description {
  readonly flows: readonly FlowDescription[];
  /** Packets of the set not covered by the flows shown (list capped). */
  readonly morePackets: bigint;
  /** Lower bound of the number of further flows (0 when none). */
  readonly moreFlows: number;
  readonly packets: bigint;
}

export interface DescribeOptions {
  /** At most this many flows (default 20). */
  readonly limit?: number;
  /** Attach the deciding rules of each flow from this compiled ruleset. */
  readonly compiled?: CompiledRuleset;
  /** Preferred example packet field values. */
  readonly prefer?: Partial<Packet>;
  /** How many engine cubes to read before merging (default 50 * limit). */
  readonly cubeLimit?: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Normalising and merging cubes

const FIELD_ORDER = new Map<Field, number>(FIELDS.map((f, i) => [f, i]));
const CT_ORDER = new Map<string, number>(CT_STATES.map((s, i) => [s, i]));

function elementKey(e: Element): string {
  if (e.kind === 'range') return `r${e.lo}-${e.hi}`;
  if (e.kind === 'name') return `n${e.wildcard ? '*' : ''}${e.value}`;
  return `s${e.value}`;
}

/** Sorted, coalesced, de-duplicated elements: the canonical form of one field's values. */
export function normalizeElements(els: readonly Element[]): Element[] {
  const ranges = els.filter((e): e is Extract<Element, { kind: 'range' }> => e.kind === 'range');
  const others = els.filter((e) => e.kind !== 'range');
  ranges.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const merged: Element[] = [];
  let cur: { lo: bigint; hi: bigint } | undefined;
  for (const r of ranges) {
    if (cur && r.lo <= cur.hi + 1n) {
      if (r.hi > cur.hi) cur.hi = r.hi;
    } else {
      if (cur) merged.push({ kind: 'range', lo: cur.lo, hi: cur.hi });
      cur = { lo: r.lo, hi: r.hi };
    }
  }
  if (cur) merged.push({ kind: 'range', lo: cur.lo, hi: cur.hi });
  const seen = new Map<string, Element>();
  for (const e of others) seen.set(elementKey(e), e);
  const rest = [...seen.values()].sort((a, b) => {
    const ka = a.kind === 'symbol' ? (CT_ORDER.get(a.value) ?? 99) : 0;
    const kb = b.kind === 'symbol' ? (CT_ORDER.get(b.value) ?? 99) : 0;
    return ka - kb || elementKey(a).localeCompare(elementKey(b));
  });
  return [...merged, ...rest];
}

function sortedFields(cube: Cube): Field[] {
  return (Object.keys(cube) as Field[]).sort((a, b) => (FIELD_ORDER.get(a) ?? 99) - (FIELD_ORDER.get(b) ?? 99));
}

const SYMBOL_DOMAINS: Partial<Record<Field, number>> = {
  nfproto: 2,
  'ct.state': CT_STATES.length,
  'saddr.type': ADDR_TYPES.length,
  'daddr.type': ADDR_TYPES.length,
};

/**
 * Canonical form of a cube: values sorted and coalesced; restrictions that restrict nothing (every ct state, every
 * address type, every mark, every interface atom of the space) left out so they neither print nor block merges.
 */
export function normalizeCube(cube: Cube, space?: PacketSpace): Cube {
  const out: Partial<Record<Field, readonly Element[]>> = {};
  for (const f of sortedFields(cube)) {
    const v = cube[f];
    if (!v) continue;
    const els = normalizeElements(v);
    const dom = SYMBOL_DOMAINS[f];
    if (dom !== undefined && els.length >= dom && f !== 'nfproto') continue;
    if (f === 'mark' && isFullRange(f, els)) continue;
    if (space && (f === 'iifname' || f === 'oifname') && isAllAtoms(space, f, els)) continue;
    out[f] = els;
  }
  return out;
}

const allAtomsCache = new WeakMap<PacketSpace, Map<string, boolean>>();
function isAllAtoms(space: PacketSpace, f: Field, els: readonly Element[]): boolean {
  let m = allAtomsCache.get(space);
  if (!m) {
    m = new Map();
    allAtomsCache.set(space, m);
  }
  const key = `${f}=${els.map(elementKey).join(',')}`;
  let r = m.get(key);
  if (r === undefined) {
    r = space
      .all()
      .minus(space.fromCube({ [f]: els }))
      .isEmpty();
    m.set(key, r);
  }
  return r;
}

/** Per cube, its fields in order and each one's `field=values` key (made once: mergeCubes asks per field and pass). */
const cubeKeys = new WeakMap<Cube, { readonly fields: readonly Field[]; readonly parts: readonly string[] }>();

function cubeKeyWithout(cube: Cube, skip: Field | undefined): string {
  let k = cubeKeys.get(cube);
  if (!k) {
    const fields = sortedFields(cube);
    k = { fields, parts: fields.map((f) => `${f}=${cube[f] ? cube[f]!.map(elementKey).join(',') : '*'}`) };
    cubeKeys.set(cube, k);
  }
  let out = '';
  for (let i = 0; i < k.fields.length; i++) {
    if (k.fields[i] === skip) continue;
    out = out === '' ? k.parts[i]! : `${out};${k.parts[i]}`;
  }
  return out;
}

/**
 * Merges cubes that are equal except in one field into one cube (union of that field's values), until no two
 * can be merged that way. The union of the result equals the union of the input.
 */
export function mergeCubes(cubes: readonly Cube[], space?: PacketSpace): Cube[] {
  let current = cubes.map((c) => normalizeCube(c, space));
  for (let pass = 0; pass < 8; pass++) {
    let changed = false;
    const fields = new Set<Field>();
    for (const c of current) for (const f of Object.keys(c) as Field[]) fields.add(f);
    for (const f of [...fields].sort((a, b) => (FIELD_ORDER.get(a) ?? 99) - (FIELD_ORDER.get(b) ?? 99))) {
      const groups = new Map<string, Cube[]>();
      for (const c of current) {
        // A cube without f (unrestricted in f) merges with cubes restricted in f: the union is unrestricted.
        const key = cubeKeyWithout(c, f);
        const g = groups.get(key);
        if (g) g.push(c);
        else groups.set(key, [c]);
      }
      const next: Cube[] = [];
      for (const g of groups.values()) {
        if (g.length === 1) {
          next.push(g[0] as Cube);
          continue;
        }
        changed = true;
        const unrestricted = g.some((c) => c[f] === undefined);
        const merged: Partial<Record<Field, readonly Element[]>> = { ...(g[0] as Cube) };
        if (unrestricted) delete merged[f];
        else merged[f] = normalizeElements(g.flatMap((c) => c[f] ?? []));
        next.push(normalizeCube(merged, space));
      }
      current = next;
    }
    if (!changed) break;
  }
  return current;
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering

/** The fewest CIDR prefixes covering exactly [lo, hi]; with `most`, undefined when more than that many are needed. */
export function rangeToPrefixes(lo: bigint, hi: bigint, bits: number): { lo: bigint; hi: bigint }[];
export function rangeToPrefixes(
  lo: bigint,
  hi: bigint,
  bits: number,
  most: number,
): { lo: bigint; hi: bigint }[] | undefined;
export function rangeToPrefixes(
  lo: bigint,
  hi: bigint,
  bits: number,
  most = Number.POSITIVE_INFINITY,
): { lo: bigint; hi: bigint }[] | undefined {
  const out: { lo: bigint; hi: bigint }[] = [];
  let cur = lo;
  while (cur <= hi) {
    if (out.length >= most) return undefined;
    let size = 1n;
    // Grow the block while it stays aligned and inside the range.
    while (size < 1n << BigInt(bits) && (cur & (size * 2n - 1n)) === 0n && cur + size * 2n - 1n <= hi) size *= 2n;
    out.push({ lo: cur, hi: cur + size - 1n });
    cur += size;
  }
  return out;
}

const ADDR_BITS: Partial<Record<Field, 32 | 128>> = {
  'ip.saddr': 32,
  'ip.daddr': 32,
  'ip6.saddr': 128,
  'ip6.daddr': 128,
};

/** The largest value of each numeric or address field (its full range is 0..max). */
export const FIELD_MAX: Partial<Record<Field, bigint>> = {
  'ip.saddr': (1n << 32n) - 1n,
  'ip.daddr': (1n << 32n) - 1n,
  'ip6.saddr': (1n << 128n) - 1n,
  'ip6.daddr': (1n << 128n) - 1n,
  sport: 65535n,
  dport: 65535n,
  l4proto: 255n,
  'icmp.type': 255n,
  'icmp.code': 255n,
  'icmpv6.type': 255n,
  'icmpv6.code': 255n,
  mark: (1n << 32n) - 1n,
  'tcp.flags': 255n,
};

function isFullRange(f: Field, els: readonly Element[]): boolean {
  const max = FIELD_MAX[f];
  const e = els[0];
  return max !== undefined && els.length === 1 && e?.kind === 'range' && e.lo === 0n && e.hi === max;
}

/** Addresses as the fewest prefixes; a range stays a range when that is shorter. At most `cap` items shown. */
function renderAddresses(f: Field, els: readonly Element[], cap = 6): string {
  if (isFullRange(f, els)) return 'any';
  const max = FIELD_MAX[f] ?? 0n;
  const rest = complementRanges(els, max);
  // `!= 127.0.0.0/8` reads better than the four ranges around it.
  if (rest.length > 0 && rest.length < els.length) return `!= ${renderAddressList(f, rest, cap)}`;
  return renderAddressList(f, els, cap);
}

function renderAddressList(f: Field, els: readonly Element[], cap: number): string {
  const bits = ADDR_BITS[f] ?? 32;
  const fam = bits === 32 ? 'ipv4' : 'ipv6';
  // Only the first `cap` items are written; the others are counted (a range is one item, or its one or two
  // prefixes).
  const parts: string[] = [];
  let items = 0;
  for (const e of els) {
    if (e.kind !== 'range') {
      if (items++ < cap) parts.push(formatElement(f, e));
      continue;
    }
    const prefixes = rangeToPrefixes(e.lo, e.hi, bits, 2);
    if (prefixes) {
      for (const p of prefixes) if (items++ < cap) parts.push(formatAddressRange(fam, p.lo, p.hi));
    } else if (items++ < cap) parts.push(`${formatAddress(fam, e.lo)}-${formatAddress(fam, e.hi)}`);
  }
  return capList(parts, cap, items);
}

/** At most `cap` of the parts, and how many more of `total` there are. */
function capList(parts: readonly string[], cap: number, total = parts.length): string {
  if (total <= cap) return parts.join(',');
  return `${parts.slice(0, cap).join(',')},...(+${total - cap})`;
}

function renderPorts(els: readonly Element[]): string {
  const rest = complementRanges(els, 65535n);
  if (rest.length > 0 && rest.length < els.length) return `!= ${renderNumbers('dport', rest)}`;
  return renderNumbers('dport', els);
}

function renderNumbers(f: Field, els: readonly Element[], cap = 12): string {
  return capList(
    els.map((e) => formatElement(f, e)),
    cap,
  );
}

const NAMED_PROTOS = new Set(Object.values(L4_PROTOCOLS));

function protoList(els: readonly Element[]): string {
  const parts: string[] = [];
  for (const e of els) {
    if (e.kind !== 'range') continue;
    if (e.hi - e.lo > 3n) {
      parts.push(`${e.lo}-${e.hi}`);
      continue;
    }
    for (let p = e.lo; p <= e.hi; p++) parts.push(NAMED_PROTOS.has(Number(p)) ? protoName(Number(p)) : String(p));
  }
  return capList(parts, 8);
}

/** `tcp`, `tcp,udp`, or for wide sets `l4proto != tcp,udp` / `l4proto 0-5,7-16`. */
function renderProtos(els: readonly Element[]): string {
  let n = 0n;
  for (const e of els) if (e.kind === 'range') n += e.hi - e.lo + 1n;
  const allNamed = els.every((e) => e.kind === 'range' && e.hi - e.lo < 8n && rangeAllNamed(e.lo, e.hi));
  if (allNamed && n <= 6n) return protoList(els);
  if (n > 128n) {
    const rest: Element[] = [];
    let next = 0n;
    for (const e of els) {
      if (e.kind !== 'range') continue;
      if (e.lo > next) rest.push({ kind: 'range', lo: next, hi: e.lo - 1n });
      next = e.hi + 1n;
    }
    if (next <= 255n) rest.push({ kind: 'range', lo: next, hi: 255n });
    return `l4proto != ${protoList(rest)}`;
  }
  return `l4proto ${protoList(els)}`;
}

function rangeAllNamed(lo: bigint, hi: bigint): boolean {
  for (let p = lo; p <= hi; p++) if (!NAMED_PROTOS.has(Number(p))) return false;
  return true;
}

const SHORT: Partial<Record<Field, string>> = {
  iifname: 'iif',
  oifname: 'oif',
  'ct.state': 'ct',
  'icmp.type': 'icmp type',
  'icmp.code': 'icmp code',
  'icmpv6.type': 'icmpv6 type',
  'icmpv6.code': 'icmpv6 code',
  'saddr.type': 'saddr type',
  'daddr.type': 'daddr type',
  'tcp.flags': 'tcp flags',
};

function nameText(e: Element): string {
  if (e.kind !== 'name') return formatElement('iifname', e);
  if (e.value === '' && !e.wildcard) return '(none)';
  if (e.wildcard) return `${e.value}*`;
  // The engine names its "any other interface" atom other0, other1, ...: a name no rule mentions.
  return /^other\d+$/.test(e.value) ? '(other)' : e.value;
}

/**
 * Interface values. The engine lists the interface atoms a cube allows; when the atoms it leaves out are fewer
 * (`iifname != "lo"` allows every atom but lo), printing those reads better: `iif != lo`.
 */
/** All interface atoms of the space, when the implementation exposes them (BddPacketSpace does). */
function allAtoms(space: PacketSpace): Element[] | undefined {
  const s = space as unknown as { atomCount?: number; atomElement?: (code: number) => Element };
  if (typeof s.atomCount !== 'number' || typeof s.atomElement !== 'function') return undefined;
  return Array.from({ length: s.atomCount }, (_, i) => (s.atomElement as (code: number) => Element)(i));
}

function renderNames(els: readonly Element[], space?: PacketSpace): string {
  const atoms = space ? allAtoms(space) : undefined;
  if (atoms) {
    const have = new Set(els.map(elementKey));
    const excluded = atoms.filter((a) => !have.has(elementKey(a)));
    if (excluded.length > 0 && excluded.length < els.length) return `!= ${capList(excluded.map(nameText), 6)}`;
  }
  return capList(els.map(nameText), 6);
}

/** One cube as text: `[ip6] tcp [sport S] dport 443 from any to 192.0.2.10 [iif eth0] [ct new] ...`. */
export function renderCube(cube: Cube, space?: PacketSpace): string {
  const parts: string[] = [];
  const fam = cube.nfproto;
  const famValues = fam?.filter((e) => e.kind === 'symbol').map((e) => (e as { value: string }).value) ?? [];
  const has4 = cube['ip.saddr'] !== undefined || cube['ip.daddr'] !== undefined;
  const has6 = cube['ip6.saddr'] !== undefined || cube['ip6.daddr'] !== undefined;
  const only = famValues.length === 1 ? famValues[0] : has4 && !has6 ? 'ipv4' : has6 && !has4 ? 'ipv6' : undefined;
  const l4 = cube.l4proto;
  if (only && !has4 && !has6) parts.push(only === 'ipv4' ? 'ip' : 'ip6');
  if (l4 && !isFullRange('l4proto', l4)) parts.push(renderProtos(l4));
  const sp = cube.sport;
  if (sp && !isFullRange('sport', sp)) parts.push(`sport ${renderPorts(sp)}`);
  const dp = cube.dport;
  if (dp && !isFullRange('dport', dp)) parts.push(`dport ${renderPorts(dp)}`);
  for (const f of ['icmp.type', 'icmp.code', 'icmpv6.type', 'icmpv6.code'] as const) {
    const v = cube[f];
    if (v && !isFullRange(f, v)) parts.push(`${SHORT[f]} ${renderNumbers(f, v)}`);
  }
  const v6 = only === 'ipv6';
  const src = cube[v6 ? 'ip6.saddr' : 'ip.saddr'];
  const dst = cube[v6 ? 'ip6.daddr' : 'ip.daddr'];
  parts.push(`from ${src ? renderAddresses(v6 ? 'ip6.saddr' : 'ip.saddr', src) : 'any'}`);
  parts.push(`to ${dst ? renderAddresses(v6 ? 'ip6.daddr' : 'ip.daddr', dst) : 'any'}`);
  if (!only) {
    // Both families and addresses of both (rare in one cube): show the other family's addresses too.
    for (const f of ['ip6.saddr', 'ip6.daddr'] as const) {
      const v = cube[f];
      if (v) parts.push(`${f} ${renderAddresses(f, v)}`);
    }
  }
  for (const f of ['iifname', 'oifname'] as const) {
    const v = cube[f];
    if (v) parts.push(`${SHORT[f]} ${renderNames(v, space)}`);
  }
  const ct = cube['ct.state'];
  if (ct && ct.length < CT_STATES.length) parts.push(`ct ${ct.map((e) => formatElement('ct.state', e)).join(',')}`);
  for (const f of ['mark', 'saddr.type', 'daddr.type', 'tcp.flags'] as const) {
    const v = cube[f];
    if (v && !isFullRange(f, v)) parts.push(`${SHORT[f] ?? f} ${renderNumbers(f, v, 8)}`);
  }
  return parts.join(' ');
}

// ---------------------------------------------------------------------------------------------------------------
// Deciders

export function deciderInfo(d: Decider, verdict: FinalVerdict, packets: bigint): DeciderInfo {
  if (d.kind === 'rule') {
    return {
      kind: 'rule',
      verdict,
      family: d.family,
      table: d.table,
      chain: d.chain,
      position: d.position,
      file: d.rule.origin.file,
      line: d.rule.origin.line,
      text: d.rule.text,
      packets,
    };
  }
  if (d.kind === 'policy') {
    return { kind: 'policy', verdict, family: d.family, table: d.table, chain: d.chain, packets };
  }
  return { kind: 'path-end', verdict, packets };
}

/** `file:line: rule text` / `policy drop of inet filter/input` / `end of the hook path (accept)`. */
export function formatDecider(d: DeciderInfo): string {
  if (d.kind === 'rule') return `${d.file}:${d.line}: ${d.text}  [${d.table}/${d.chain} #${d.position}]`;
  if (d.kind === 'policy') return `policy ${d.verdict} of ${d.family} ${d.table}/${d.chain}`;
  return 'end of the hook path: no base chain dropped it (accept)';
}

/** The deciders of `packets`, largest share first, then in source order. */
export function decidersOf(compiled: CompiledRuleset, packets: PacketSet): DeciderInfo[] {
  return sortedDeciders(compiled.decisions(packets));
}

/** Decisions as deciders with their packet counts, largest share first, then in source order. */
export function sortedDeciders(decisions: readonly Decision[]): DeciderInfo[] {
  return decisions
    .map((d) => deciderInfo(d.decider, d.verdict, d.packets.count()))
    .filter((d) => d.packets > 0n)
    .sort(
      (a, b) =>
        (a.packets > b.packets ? -1 : a.packets < b.packets ? 1 : 0) ||
        (a.file ?? '').localeCompare(b.file ?? '') ||
        (a.line ?? 0) - (b.line ?? 0),
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Describing sets

/** Documentation addresses and a client port for examples, where the flow allows them (reads better than 0.0.0.0). */
function examplePreference(cube: Cube): Partial<Packet> {
  const v6 =
    cube.nfproto?.some((e) => e.kind === 'symbol' && e.value === 'ipv6') &&
    !cube.nfproto.some((e) => e.kind === 'symbol' && e.value === 'ipv4');
  return v6
    ? { saddr: '2001:db8::7', daddr: '2001:db8::10', sport: 40000, iif: 'eth0' }
    : { saddr: '203.0.113.7', daddr: '198.51.100.10', sport: 40000, iif: 'eth0' };
}

/** Fields tried for widening, noisiest first (fields few rules test go first, addresses and protocol last). */
const WIDEN_ORDER: readonly Field[] = [
  'mark',
  'tcp.flags',
  'saddr.type',
  'daddr.type',
  'oifname',
  'iifname',
  'icmp.code',
  'icmpv6.code',
  'ct.state',
  'sport',
  'icmp.type',
  'icmpv6.type',
  'dport',
  'ip.saddr',
  'ip6.saddr',
  'ip.daddr',
  'ip6.daddr',
  'l4proto',
  'nfproto',
];

/**
 * Drops restrictions from a cube while it stays inside `set`: the engine's cubes follow BDD paths, which split on
 * bits no rule cares about (address types, marks, half the ct states); a widened cube says the same thing shorter.
 * The protocol stays while ports or ICMP fields need it, the family while addresses do.
 */
function widen(cube: Cube, set: PacketSet): Cube {
  const space = set.space;
  let c: Partial<Record<Field, readonly Element[]>> = { ...cube };
  for (const f of WIDEN_ORDER) {
    if (c[f] === undefined) continue;
    if (
      f === 'l4proto' &&
      (c.sport || c.dport || c['icmp.type'] || c['icmpv6.type'] || c['icmp.code'] || c['icmpv6.code'] || c['tcp.flags'])
    )
      continue;
    if (f === 'nfproto' && (c['ip.saddr'] || c['ip.daddr'] || c['ip6.saddr'] || c['ip6.daddr'])) continue;
    const { [f]: _dropped, ...rest } = c;
    const wider = space.fromCube(rest);
    const max = FIELD_MAX[f];
    if (max === undefined) {
      if (set.covers(wider)) c = rest;
      continue;
    }
    // The field's values in (wider cube - set), in one walk that builds neither (wider - set) nor its cubes: none
    // means the set covers the wider cube and the field is dropped. Otherwise grow the field's values to every
    // value the rest of the cube allows inside the set: the complement of these.
    const values = space.valuesOutside(wider, set, f);
    if (!values) continue;
    if (values.length === 0) {
      c = rest;
      continue;
    }
    const disallowed: Element[] = values.map(([lo, hi]) => ({ kind: 'range', lo, hi }));
    const allowed = complementRanges(normalizeElements(disallowed), max);
    if (allowed.length > 0) c = { ...rest, [f]: allowed };
  }
  return c;
}

/** The ranges of [0, max] not covered by the sorted, coalesced `els`. */
function complementRanges(els: readonly Element[], max: bigint): Element[] {
  const out: Element[] = [];
  let next = 0n;
  for (const e of els) {
    if (e.kind !== 'range') continue;
    if (e.lo > next) out.push({ kind: 'range', lo: next, hi: e.lo - 1n });
    if (e.hi + 1n > next) next = e.hi + 1n;
  }
  if (next <= max) out.push({ kind: 'range', lo: next, hi: max });
  return out;
}

/** A candidate flow of describeSet: its text is rendered when first read (ties and shown flows only). */
interface Candidate {
  readonly cube: Cube;
  readonly cs: PacketSet;
  readonly packets: bigint;
  readonly text: string;
}

function cubeOrder(a: Candidate, b: Candidate): number {
  return a.packets > b.packets ? -1 : a.packets < b.packets ? 1 : a.text.localeCompare(b.text);
}

/**
 * Describes a packet set as at most `limit` flows. Each flow's text describes packets that are all in the set; the
 * flows' pieces (the packets each one adds) are disjoint and carry the example and the deciders.
 */
export function describeSet(set: PacketSet, opts: DescribeOptions = {}): Description {
  const limit = opts.limit ?? 20;
  const total = set.count();
  if (set.isEmpty()) return { flows: [], morePackets: 0n, moreFlows: 0, packets: 0n };
  const space = set.space;
  const cubeLimit = opts.cubeLimit ?? Math.max(200, limit * 10);
  const widened: Cube[] = [];
  let seen = space.none();
  let truncated = false;
  // Cubes come largest first and capped: small flows (one accepted port) can be past the cap, so go round again
  // on what is not described yet.
  for (let round = 0; round < 6 && widened.length < limit * 4; round++) {
    const rest = round === 0 ? set : set.minus(seen);
    if (rest.isEmpty()) break;
    const got = rest.cubes(cubeLimit);
    truncated = got.truncated;
    for (const raw of got.cubes) {
      const c = normalizeCube(raw, space);
      if (seen.covers(space.fromCube(c))) continue;
      const w = widen(c, set);
      widened.push(w);
      seen = seen.or(space.fromCube(w));
    }
  }
  // Most candidates are past the limit and differ in size: a text is rendered only when the order or a shown flow
  // reads it (rendering every candidate's address lists was a tenth of a flow query on the 10k firewall).
  const candidates = mergeCubes(widened, space).map((cube): Candidate => {
    const cs = space.fromCube(cube).and(set);
    let text: string | undefined;
    return {
      cube,
      cs,
      packets: cs.count(),
      get text() {
        text ??= renderCube(cube, space);
        return text;
      },
    };
  });
  candidates.sort(cubeOrder);
  const flows: FlowDescription[] = [];
  let covered = space.none();
  let remaining = 0;
  for (const cand of candidates) {
    const piece = cand.cs.minus(covered);
    if (piece.isEmpty()) continue;
    if (flows.length >= limit) {
      remaining++;
      continue;
    }
    covered = covered.or(piece);
    const example = piece.example({ ...examplePreference(cand.cube), ...opts.prefer });
    flows.push({
      text: cand.text,
      cube: cand.cube,
      set: piece,
      packets: piece.count(),
      ...(example ? { example } : {}),
      ...(opts.compiled ? { deciders: decidersOf(opts.compiled, piece) } : {}),
    });
  }
  const morePackets = set.minus(covered).count();
  const moreFlows = morePackets === 0n ? 0 : Math.max(1, remaining);
  return { flows, morePackets, moreFlows: truncated && moreFlows === 0 ? 1 : moreFlows, packets: total };
}

/** Human text: one line per flow, with `example:` and `by:` lines indented under it. */
export function renderDescription(
  d: Description,
  indent = '  ',
  suffix: (f: FlowDescription) => string = () => '',
): string {
  const lines: string[] = [];
  for (const f of d.flows) {
    lines.push(`${indent}${f.text}${suffix(f)}`);
    if (f.example) lines.push(`${indent}    example: ${formatPacket(f.example)}`);
    for (const by of f.deciders ?? []) lines.push(`${indent}    by ${by.verdict}: ${formatDecider(by)}`);
  }
  if (d.morePackets > 0n) {
    lines.push(
      `${indent}... and ${d.moreFlows > 1 ? `${d.moreFlows}+ more flows` : 'more'} (${share(d.morePackets, d.packets)} of these packets not shown)`,
    );
  }
  return lines.map((l) => `${l}\n`).join('');
}

/** The service name of a port, the first one /etc/services gives it (smtp rather than mail). */
const SERVICE_OF = (() => {
  const m = new Map<number, string>();
  for (const [name, port] of Object.entries(SERVICES)) if (!m.has(port)) m.set(port, name);
  m.set(25, 'smtp');
  return m;
})();

/** A protocol in words: its name (tcp, gre, vrrp), or `protocol 7` for a number without one. */
export function protocolWords(n: number): string {
  const own = protoName(n);
  if (own !== String(n)) return own;
  const named = Object.entries(PROTOCOLS).find(([name, v]) => v === n && name !== 'ip');
  return named ? named[0] : `protocol ${n}`;
}

/**
 * A packet on one line: `tcp 203.0.113.7:40000 -> 192.0.2.10:443 (https) iif eth0 ct new`. Ports only for the
 * protocols that have them (`gre 203.0.113.7 -> 192.0.2.10`), the destination port's service name when it has one.
 */
export function formatPacket(p: Packet): string {
  const ports = PORT_PROTOCOLS.has(p.l4proto);
  const host = (a: string, port: number | undefined) =>
    !ports || port === undefined ? a : p.family === 'ipv6' ? `[${a}]:${port}` : `${a}:${port}`;
  const service = ports && p.dport !== undefined ? SERVICE_OF.get(p.dport) : undefined;
  const parts = [
    `${protocolWords(p.l4proto)} ${host(p.saddr, p.sport)} -> ${host(p.daddr, p.dport)}${service ? ` (${service})` : ''}`,
  ];
  if (p.icmpType !== undefined)
    parts.push(`type ${p.icmpType}${p.icmpCode !== undefined ? ` code ${p.icmpCode}` : ''}`);
  if (p.iif !== undefined) parts.push(`iif ${p.iif === '' ? '(none)' : p.iif}`);
  if (p.oif !== undefined) parts.push(`oif ${p.oif === '' ? '(none)' : p.oif}`);
  if (p.ctState !== undefined) parts.push(`ct ${p.ctState}`);
  if (p.mark !== undefined && p.mark !== 0) parts.push(`mark 0x${p.mark.toString(16)}`);
  if (p.daddrType !== undefined && p.daddrType !== 'local' && p.daddrType !== 'unicast')
    parts.push(`daddr type ${p.daddrType}`);
  return parts.join(' ');
}

/** JSON form of a description (bigints become strings through the CLI's JSON replacer). */
export function descriptionJson(d: Description): unknown {
  return {
    packets: d.packets,
    flows: d.flows.map((f) => flowJson(f)),
    ...(d.morePackets > 0n ? { more: { packets: d.morePackets, flows: d.moreFlows } } : {}),
  };
}

export function flowJson(f: FlowDescription): Record<string, unknown> {
  return {
    description: f.text,
    packets: f.packets,
    ...(f.example ? { example: f.example } : {}),
    ...(f.deciders ? { deciders: f.deciders } : {}),
  };
}

/** `40%`, `0.3%`, `<0.01%`: a share of a packet count, for human output (exact counts are in the JSON). */
export function share(part: bigint, total: bigint): string {
  if (part === 0n) return '0%';
  if (part === total) return '100%';
  const bp = Number((part * 1_000_000n) / (total === 0n ? 1n : total)) / 10_000;
  if (bp < 0.01) return '<0.01%';
  if (bp > 99.99) return '>99.99%';
  return `${bp >= 10 ? bp.toFixed(1).replace(/\.0$/, '') : bp.toFixed(2).replace(/0$/, '')}%`;
}
