/**
 * The packet tracer: follows one concrete packet through a ruleset's base chains with netfilter's semantics and
 * reports the verdict, the rule (or policy) that decided it and every step on the way.
 *
 * Semantics, as the kernel has them:
 * - A packet is decided on a path of hooks: locally destined = prerouting then input; forwarded = prerouting,
 *   forward, postrouting; locally generated = output then postrouting. On each hook every base chain of every
 *   in-scope table of a matching family runs, in priority order.
 * - accept (and a nat statement) ends the current base chain only: the packet goes on to the next base chain.
 *   drop, reject and queue are final. A base chain that runs out of rules applies its policy.
 * - jump pushes a return point, goto replaces the current chain; return / the end of a regular chain pops.
 * - nat chains see only the first packet of a connection (ct state new).
 *
 * Opaque matches (rate limits, unknown sets, ...) cannot be decided: the main result assumes they match, the result
 * is marked uncertain, and when assuming they do not match changes the verdict, that verdict is reported too.
 *
 * Speed: rules are compiled once per chain (values pre-parsed into numbers, large sets sorted for binary search,
 * point-only concatenations hashed) and cached in a WeakMap keyed by the Ruleset, so one trace through a 100k-rule
 * chain costs a few milliseconds once compiled.
 */
import { UserError } from '../errors.js';
import { type BaseRef, devices, type HookEntry, hookEntries as orderedHookEntries } from './hook-order.js';
import type {
  AddrType,
  ChainType,
  CtState,
  Element,
  ExactOpaque,
  Family,
  Field,
  FieldMatch,
  FinalVerdict,
  Hook,
  L3,
  Match,
  Chain as ModelChain,
  Table as ModelTable,
  NatVerdict,
  OpaqueCategory,
  OpaqueMatch,
  Packet,
  Policy,
  Rule,
  Ruleset,
  SimpleVerdict,
} from './model.js';
import { CT_STATES, DEFAULT_SYN_TCP_OPTIONS, FIELDS, L4_PROTOCOLS, PORT_PROTOCOLS } from './model.js';
import { own } from './parsers/common.js';
import { ADDR_TYPES, CT_STATE_BITS, TRACE_ICMP_TYPES, TRACE_ICMPV6_TYPES, TRACE_TCP_FLAGS } from './symbols.js';
import { formatAddress, parseAddress } from './values.js';

// ---------------------------------------------------------------------------------------------------------------
// Public types

/** The hooks a packet can be traced at (ingress/egress belong to netdev, which is out of scope). */
export type TraceHook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
export const TRACE_HOOKS: readonly TraceHook[] = ['prerouting', 'input', 'forward', 'output', 'postrouting'];

export interface TraceOptions {
  /** The hook the packet is being decided at. `input` means "to this host" and also runs prerouting first. */
  readonly hook: Hook;
  /** Trace only the named hook instead of the whole path that leads through it. */
  readonly only?: boolean;
}

/** Identifies a table/chain in results. */
export interface ChainRef {
  readonly family: Family;
  readonly table: string;
  readonly chain: string;
}

/** A rule, for display and for pointing the user at the source. `position` is 1-based within its chain. */
export interface RuleRef extends ChainRef {
  readonly kind: 'rule';
  readonly position: number;
  readonly handle?: number;
  readonly file: string;
  readonly line: number;
  readonly text: string;
  readonly comment?: string;
}

/** A base chain's policy decided. */
export interface PolicyRef extends ChainRef {
  readonly kind: 'policy';
  readonly hook: Hook;
  readonly policy: Policy;
  readonly file: string;
  readonly line: number;
}

export type DecidedBy = RuleRef | PolicyRef;

/** What a matching rule did. `none`: no verdict (counter, log, set mark ...); `vmap-miss`: no map entry. */
export type RuleEffect =
  | 'accept'
  | 'drop'
  | 'reject'
  | 'queue'
  | 'continue'
  | 'return'
  | 'jump'
  | 'goto'
  | 'nat'
  | 'none'
  | 'vmap-miss';

export type RewriteField = 'saddr' | 'daddr' | 'sport' | 'dport' | 'mark' | 'daddr.type';

export type TraceStep =
  /** Entering a base chain. */
  | {
      readonly kind: 'chain';
      readonly family: Family;
      readonly table: string;
      readonly chain: string;
      readonly hook: Hook;
      readonly priority: number;
      /** For nat chains: the priority the kernel's nat core actually runs them at, when it differs. */
      readonly runsAt?: number;
      readonly type: ChainType;
      readonly policy: Policy;
      readonly file: string;
      readonly line: number;
    }
  /** A base chain not evaluated (nat chains see only the first packet of a connection). */
  | {
      readonly kind: 'skip';
      readonly family: Family;
      readonly table: string;
      readonly chain: string;
      readonly hook: Hook;
      readonly priority: number;
      readonly type: ChainType;
      readonly reason: string;
    }
  /** A rule whose matches all held. `opaque` lists the matches that were only assumed to hold. */
  | (Omit<RuleRef, 'kind'> & {
      readonly kind: 'rule';
      readonly depth: number;
      readonly effect: RuleEffect;
      /** jump/goto target. */
      readonly target?: string;
      /** Human detail of the effect: the nat translation, the vmap key, ... */
      readonly detail?: string;
      readonly opaque?: readonly string[];
    })
  | {
      readonly kind: 'jump' | 'goto';
      readonly family: Family;
      readonly table: string;
      readonly from: string;
      readonly to: string;
      /** Depth after the jump (a goto keeps the depth). */
      readonly depth: number;
    }
  | {
      readonly kind: 'return';
      readonly family: Family;
      readonly table: string;
      readonly from: string;
      readonly to: string;
      readonly depth: number;
      /** True when the chain ran out of rules, false for an explicit `return`. */
      readonly implicit: boolean;
    }
  | {
      readonly kind: 'policy';
      readonly family: Family;
      readonly table: string;
      readonly chain: string;
      readonly hook: Hook;
      readonly policy: Policy;
      readonly file: string;
      readonly line: number;
    }
  | {
      readonly kind: 'rewrite';
      readonly field: RewriteField;
      readonly from: string;
      /** The new value; a description when `unknown` (e.g. "primary address of eth0"). */
      readonly to: string;
      /** The new value is not known from the ruleset: the trace goes on with the old one. */
      readonly unknown?: boolean;
      readonly depth: number;
      readonly by: RuleRef;
    };

export interface OpaqueEncounter {
  readonly text: string;
  readonly category: OpaqueCategory;
  readonly reason: string;
  readonly rule: RuleRef;
  /** What it does for an ordinary new connection from a fresh source (the main verdict's assumption); absent: unknown. */
  readonly fresh?: boolean;
  /** When it does otherwise. */
  readonly otherwise?: string;
}

/**
 * The outcome when the stateful and unknown matches on the path do the other thing: a rate limit is exceeded, the
 * recent list has the source, an unmodelled match fails.
 */
export interface TraceAlternative {
  readonly assumption: 'other-outcome';
  /** In words, what differs: `above 10/second`, `'-m statistic ...' does not match`. */
  readonly conditions: readonly string[];
  readonly verdict: FinalVerdict;
  readonly decidedBy: DecidedBy | undefined;
  readonly path: readonly TraceStep[];
}

/** The packet as the tracer saw it, defaults filled in. */
export interface TracedPacket extends Packet {
  readonly ctState: CtState;
  readonly mark: number;
  readonly saddrType: AddrType;
  readonly daddrType: AddrType;
}

export interface TraceResult {
  readonly verdict: FinalVerdict;
  readonly path: readonly TraceStep[];
  /**
   * The rule or policy that decided. For an accept: what accepted on the hook asked about (else the last base chain
   * traversed); undefined when no base chain saw the packet.
   */
  readonly decidedBy: DecidedBy | undefined;
  /** The hooks traversed, in order. */
  readonly hooks: readonly TraceHook[];
  /** The packet at the end of the traversal (after dnat/redirect/snat and mark rewrites). */
  readonly packet: TracedPacket;
  /**
   * True when the main verdict rests on a match whose outcome is not known even for an ordinary new connection (an
   * unmodelled module, a host name, a random match), or on a userspace queue consumer. Stateful matches with a
   * known outcome for a fresh source (rate limits, recent lists, dynamic sets) do not make it uncertain: the main
   * verdict takes that outcome and `alternatives` states the other.
   */
  readonly uncertain: boolean;
  readonly opaque: readonly OpaqueEncounter[];
  /**
   * Fields a rule needed that the packet was not given (an interface, a port, an ICMP type): those rules did not
   * match. A common mistake when tracing by hand; each also has a note.
   */
  readonly unspecified: readonly Field[];
  readonly notes: readonly string[];
  readonly alternatives?: readonly TraceAlternative[];
}

const NFPROTO_NUMBERS: Readonly<Record<L3, number>> = { ipv4: 2, ipv6: 10 };

/** Hooks a packet traverses when it is decided at `hook`. */
export function hookPath(hook: TraceHook, only = false): TraceHook[] {
  if (only) return [hook];
  switch (hook) {
    case 'input':
      return ['prerouting', 'input'];
    case 'forward':
      return ['prerouting', 'forward', 'postrouting'];
    case 'output':
      return ['output', 'postrouting'];
    default:
      return [hook];
  }
}

/**
 * Maximum jump depth we follow. The nft kernel refuses rulesets that jump deeper than 16 (NFT_JUMP_STACK_SIZE);
 * iptables has no fixed limit. 64 leaves room for either while turning a runaway traversal into an error.
 */
export const MAX_JUMP_DEPTH = 64;
const NFT_KERNEL_JUMP_LIMIT = 16;

// ---------------------------------------------------------------------------------------------------------------
// Compiled form

type Val = number | bigint | string | undefined;
type FieldKind = 'name' | 'sym' | 'num' | 'big';

const FIELD_INDEX: Readonly<Record<Field, number>> = Object.fromEntries(FIELDS.map((f, i) => [f, i])) as Record<
  Field,
  number
>;

function fieldKind(f: Field): FieldKind {
  switch (f) {
    case 'iifname':
    case 'oifname':
      return 'name';
    case 'nfproto':
    case 'ct.state':
    case 'saddr.type':
    case 'daddr.type':
      return 'sym';
    case 'ip6.saddr':
    case 'ip6.daddr':
      return 'big';
    default:
      return 'num';
  }
}

/** A compiled single-element test on one field value (already known to be present). */
type ElemTest = (v: Val) => boolean;

function symbolToNumber(field: Field, s: string): number | undefined {
  if (/^\d+$/.test(s)) return Number(s);
  if (/^0x[0-9a-f]+$/i.test(s)) return Number.parseInt(s.slice(2), 16);
  if (field === 'l4proto') return own(L4_PROTOCOLS, s);
  if (field === 'icmp.type') return own(TRACE_ICMP_TYPES, s);
  if (field === 'icmpv6.type') return own(TRACE_ICMPV6_TYPES, s);
  if (field === 'tcp.flags') return own(TRACE_TCP_FLAGS, s);
  return undefined;
}

/** Symbols a numeric range denotes on a symbolic field (parsers may hand over ct state bit values). */
function rangeToSymbols(field: Field, lo: bigint, hi: bigint): string[] {
  const inRange = (n: number) => BigInt(n) >= lo && BigInt(n) <= hi;
  if (field === 'ct.state') return CT_STATES.filter((s) => inRange(CT_STATE_BITS[s]));
  if (field === 'nfproto') return (['ipv4', 'ipv6'] as const).filter((s) => inRange(NFPROTO_NUMBERS[s]));
  return ADDR_TYPES.filter((_, i) => inRange(i));
}

function stripWildcard(value: string): string {
  return value.endsWith('*') || value.endsWith('+') ? value.slice(0, -1) : value;
}

function elementTest(field: Field, el: Element): ElemTest {
  const fk = fieldKind(field);
  if (fk === 'name') {
    if (el.kind === 'name' && el.wildcard) {
      const prefix = stripWildcard(el.value);
      return (v) => (v as string).startsWith(prefix);
    }
    if (el.kind === 'range') return () => false;
    const name = el.value;
    return (v) => v === name;
  }
  if (fk === 'sym') {
    if (el.kind === 'range') {
      const syms = new Set(rangeToSymbols(field, el.lo, el.hi));
      return (v) => syms.has(v as string);
    }
    const s = el.value;
    return (v) => v === s;
  }
  if (fk === 'big') {
    if (el.kind !== 'range') return () => false;
    const { lo, hi } = el;
    return (v) => (v as bigint) >= lo && (v as bigint) <= hi;
  }
  if (el.kind === 'range') {
    const lo = Number(el.lo);
    const hi = Number(el.hi);
    return (v) => (v as number) >= lo && (v as number) <= hi;
  }
  const n = symbolToNumber(field, el.value);
  return n === undefined ? () => false : (v) => v === n;
}

/** Key for hashing a single-point element, or undefined when the element is an interval or a prefix. */
function pointKey(field: Field, el: Element): string | undefined {
  const fk = fieldKind(field);
  if (el.kind === 'name') return el.wildcard || fk !== 'name' ? undefined : el.value;
  if (el.kind === 'symbol') {
    if (fk === 'sym' || fk === 'name') return el.value;
    if (fk === 'num') {
      const n = symbolToNumber(field, el.value);
      return n === undefined ? undefined : String(n);
    }
    return undefined;
  }
  if (fk === 'sym' || fk === 'name' || el.lo !== el.hi) return undefined;
  return el.lo.toString();
}

function valueKey(v: Val): string {
  return typeof v === 'string' ? v : String(v);
}

/** Membership test for the value set of one field match (presence is checked by the caller). */
function compileSet(field: Field, els: readonly Element[]): ElemTest {
  const fk = fieldKind(field);
  if (els.length <= 8) {
    const tests = els.map((e) => elementTest(field, e));
    if (tests.length === 1) return tests[0]!;
    return (v) => {
      for (const t of tests) if (t(v)) return true;
      return false;
    };
  }
  if (fk === 'num' || fk === 'big') {
    // Large sets: merge the intervals and binary-search them.
    const ivs: [bigint, bigint][] = [];
    const others: ElemTest[] = [];
    for (const e of els) {
      if (e.kind === 'range') ivs.push([e.lo, e.hi]);
      else others.push(elementTest(field, e));
    }
    ivs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const merged: [bigint, bigint][] = [];
    for (const iv of ivs) {
      const last = merged[merged.length - 1];
      if (last && iv[0] <= last[1] + 1n) {
        if (iv[1] > last[1]) last[1] = iv[1];
      } else merged.push([iv[0], iv[1]]);
    }
    const search =
      fk === 'num'
        ? (() => {
            const lo = Float64Array.from(merged, (m) => Number(m[0]));
            const hi = Float64Array.from(merged, (m) => Number(m[1]));
            return (v: Val) => {
              const x = v as number;
              let a = 0;
              let b = lo.length - 1;
              while (a <= b) {
                const mid = (a + b) >> 1;
                if (x < lo[mid]!) b = mid - 1;
                else if (x > hi[mid]!) a = mid + 1;
                else return true;
              }
              return false;
            };
          })()
        : (v: Val) => {
            const x = v as bigint;
            let a = 0;
            let b = merged.length - 1;
            while (a <= b) {
              const mid = (a + b) >> 1;
              const m = merged[mid]!;
              if (x < m[0]) b = mid - 1;
              else if (x > m[1]) a = mid + 1;
              else return true;
            }
            return false;
          };
    if (others.length === 0) return search;
    return (v) => search(v) || others.some((t) => t(v));
  }
  // Names and symbols: hash the exact ones, scan the prefixes.
  const exact = new Set<string>();
  const rest: ElemTest[] = [];
  for (const e of els) {
    const k = pointKey(field, e);
    if (k !== undefined) exact.add(k);
    else rest.push(elementTest(field, e));
  }
  return (v) => exact.has(v as string) || rest.some((t) => t(v));
}

/** Finds the first tuple containing the packet's values: hashed for point tuples, scanned otherwise. */
function compileTupleIndex(fields: readonly Field[], tuples: readonly (readonly Element[])[]): (vs: Val[]) => number {
  const hashed = new Map<string, number>();
  const scanned: { index: number; tests: ElemTest[] }[] = [];
  tuples.forEach((tuple, index) => {
    const keys = fields.map((f, i) => (tuple[i] ? pointKey(f, tuple[i]) : undefined));
    if (tuple.length === fields.length && keys.every((k) => k !== undefined)) {
      const key = keys.join('\u0000');
      if (!hashed.has(key)) hashed.set(key, index);
    } else {
      scanned.push({ index, tests: fields.map((f, i) => (tuple[i] ? elementTest(f, tuple[i]) : () => false)) });
    }
  });
  return (vs) => {
    const best = hashed.size > 0 ? (hashed.get(vs.map(valueKey).join('\u0000')) ?? -1) : -1;
    for (const s of scanned) {
      if (best >= 0 && s.index > best) break;
      if (s.tests.every((t, i) => t(vs[i]))) return s.index;
    }
    return best;
  };
}

const NO_TEST: ElemTest = () => false;
const NO_CONCAT = (): number => 0;

/**
 * A compiled concrete match. One shape for all kinds, evaluated by `holds` (one monomorphic function rather than a
 * closure per match: the hot loop over 100k rules stays fast). `t`: 0 = one numeric interval [lo, hi] tested
 * inline, 1 = a set test, 2 = a concatenation.
 */
interface CMatch {
  readonly t: 0 | 1 | 2;
  readonly idx: number;
  readonly neg: boolean;
  readonly lo: number;
  readonly hi: number;
  readonly hasMask: boolean;
  readonly mask: number;
  readonly bigMask: bigint;
  readonly test: ElemTest;
  readonly concat: (vals: Val[]) => number;
}

/** 1 when the match holds, 0 when it does not, -(i + 1) when it fails because the packet lacks field i. */
function holds(m: CMatch, vals: Val[]): number {
  if (m.t === 2) return m.concat(vals);
  let v = vals[m.idx];
  if (v === undefined) return -(m.idx + 1);
  if (m.hasMask) v = typeof v === 'bigint' ? v & m.bigMask : ((v as number) & m.mask) >>> 0;
  const hit = m.t === 0 ? (v as number) >= m.lo && (v as number) <= m.hi : m.test(v);
  return hit !== m.neg ? 1 : 0;
}

function cmatch(
  t: 0 | 1 | 2,
  idx: number,
  neg: boolean,
  lo: number,
  hi: number,
  mask: bigint | undefined,
  test: ElemTest,
  concat: CMatch['concat'],
): CMatch {
  // Always the same property order: one hidden class for every compiled match.
  return {
    t,
    idx,
    neg,
    lo,
    hi,
    hasMask: mask !== undefined,
    mask: mask === undefined ? 0 : Number(mask & 0xffffffffn) | 0,
    bigMask: mask ?? 0n,
    test,
    concat,
  };
}

function compileMatch(m: Exclude<Match, OpaqueMatch>): CMatch {
  const neg = m.op === 'ne';
  if (m.kind === 'field') {
    const idx = FIELD_INDEX[m.field];
    const only = m.values.length === 1 ? m.values[0] : undefined;
    if (only?.kind === 'range' && fieldKind(m.field) === 'num') {
      return cmatch(0, idx, neg, Number(only.lo), Number(only.hi), m.mask, NO_TEST, NO_CONCAT);
    }
    return cmatch(1, idx, neg, 0, 0, m.mask, compileSet(m.field, m.values), NO_CONCAT);
  }
  const idxs = m.fields.map((f) => FIELD_INDEX[f]);
  const lookup = compileTupleIndex(m.fields, m.tuples);
  const concat = (vals: Val[]): number => {
    const vs: Val[] = [];
    for (const i of idxs) {
      const v = vals[i];
      if (v === undefined) return -(i + 1);
      vs.push(v);
    }
    return lookup(vs) >= 0 !== neg ? 1 : 0;
  };
  return cmatch(2, -1, neg, 0, 0, undefined, NO_TEST, concat);
}

type CompiledVerdict =
  | { readonly kind: 'none' }
  | { readonly kind: 'simple'; readonly v: SimpleVerdict }
  | { readonly kind: 'nat'; readonly v: NatVerdict }
  | {
      readonly kind: 'vmap';
      readonly idxs: readonly number[];
      readonly fields: readonly Field[];
      readonly lookup: (vs: Val[]) => number;
      readonly verdicts: readonly SimpleVerdict[];
    };

interface CompiledRule {
  readonly rule: Rule;
  readonly position: number;
  readonly matches: readonly CMatch[];
  readonly opaque: readonly OpaqueMatch[];
  readonly verdict: CompiledVerdict;
}

interface CompiledChain {
  readonly table: ModelTable;
  readonly chain: ModelChain;
  readonly rules: readonly CompiledRule[];
}

interface CompiledRuleset {
  readonly chains: Map<ModelChain, CompiledChain>;
  readonly byName: Map<ModelTable, Map<string, ModelChain>>;
  readonly bases: Map<string, readonly HookEntry[]>;
}

const COMPILED = new WeakMap<Ruleset, CompiledRuleset>();

function compiledRuleset(rs: Ruleset): CompiledRuleset {
  let c = COMPILED.get(rs);
  if (!c) {
    c = { chains: new Map(), byName: new Map(), bases: new Map() };
    COMPILED.set(rs, c);
  }
  return c;
}

function compileVerdict(v: Rule['verdict']): CompiledVerdict {
  if (!v) return { kind: 'none' };
  if (v.kind === 'nat') return { kind: 'nat', v };
  if (v.kind === 'vmap') {
    return {
      kind: 'vmap',
      idxs: v.fields.map((f) => FIELD_INDEX[f]),
      fields: v.fields,
      lookup: compileTupleIndex(
        v.fields,
        v.entries.map((e) => e.key),
      ),
      verdicts: v.entries.map((e) => e.verdict),
    };
  }
  return { kind: 'simple', v };
}

/**
 * The matches a reject type implies. nft inserts them into the rule's bytecode (`reject with tcp reset` only on tcp,
 * `reject with icmp ...` only on IPv4, `icmpv6` only on IPv6) but `nft list` leaves them out as implicit, so a
 * parsed listing may lack them; the kernel agreement suite caught this on inet tables. Adding them again is
 * harmless when the parser already did.
 */
export function rejectDependencies(
  v: { readonly kind: string; readonly with?: string | undefined } | undefined,
): FieldMatch[] {
  if (v?.kind !== 'reject' || v.with === undefined) return [];
  const w = v.with.trim().toLowerCase();
  const dep = (field: Field, value: Element): FieldMatch => ({
    kind: 'field',
    field,
    op: 'eq',
    values: [value],
    text: `(implied by reject with ${v.with})`,
  });
  if (/^tcp[ -]reset$/.test(w)) return [dep('l4proto', { kind: 'range', lo: 6n, hi: 6n })];
  if (/^(icmpv6|icmp6)[ -]/.test(w)) return [dep('nfproto', { kind: 'symbol', value: 'ipv6' })];
  if (/^icmp[ -]/.test(w)) return [dep('nfproto', { kind: 'symbol', value: 'ipv4' })];
  return [];
}

function compileChain(cr: CompiledRuleset, table: ModelTable, chain: ModelChain): CompiledChain {
  let cc = cr.chains.get(chain);
  if (!cc) {
    cc = {
      table,
      chain,
      rules: chain.rules.map((rule, i) => {
        const matches: CMatch[] = [];
        const opaque: OpaqueMatch[] = [];
        for (const m of rule.matches) {
          if (m.kind === 'opaque') opaque.push(m);
          else matches.push(compileMatch(m));
        }
        for (const m of rejectDependencies(rule.verdict)) matches.push(compileMatch(m));
        const v = rule.verdict;
        if (v?.kind === 'nat' && (v.type === 'dnat' || v.type === 'snat') && !v.addr && !v.port) {
          // `dnat to ip saddr map @m`: the kernel's lookup can miss, and then the rule does not match.
          opaque.push({
            kind: 'opaque',
            category: 'unsupported-expression',
            reason:
              'the nat target is computed when the packet arrives (a map lookup); on a miss the rule does not match',
            text: v.text,
          });
        }
        return { rule, position: i + 1, matches, opaque, verdict: compileVerdict(rule.verdict) };
      }),
    };
    cr.chains.set(chain, cc);
  }
  return cc;
}

function chainByName(cr: CompiledRuleset, table: ModelTable, name: string): ModelChain | undefined {
  let m = cr.byName.get(table);
  if (!m) {
    m = new Map();
    for (const c of table.chains) if (!m.has(c.name)) m.set(c.name, c);
    cr.byName.set(table, m);
  }
  return m.get(name);
}

/** hookEntries of hook-order.ts, cached per compiled ruleset. */
function hookEntries(cr: CompiledRuleset, rs: Ruleset, hook: TraceHook, l3: L3): readonly HookEntry[] {
  const key = `${hook}/${l3}`;
  let list = cr.bases.get(key);
  if (!list) {
    list = orderedHookEntries(rs, hook, l3);
    cr.bases.set(key, list);
  }
  return list;
}

// ---------------------------------------------------------------------------------------------------------------
// Packet state

interface PacketState {
  readonly family: L3;
  saddr: bigint;
  daddr: bigint;
  readonly l4proto: number;
  sport: number | undefined;
  dport: number | undefined;
  readonly icmpType: number | undefined;
  readonly icmpCode: number | undefined;
  readonly ctState: CtState;
  mark: number;
  readonly tcpFlags: number | undefined;
  readonly tcpOptions: readonly number[];
  /** A nat rule rewrote the destination on this path: the connection's status has the dnat bit. */
  dnatted: boolean;
  readonly saddrType: AddrType;
  daddrType: AddrType;
  readonly iif: string | undefined;
  readonly oif: string | undefined;
}

function packetError(message: string, details: Record<string, unknown> = {}): UserError {
  return new UserError('RAMPART_ERR_PACKET', message, details);
}

function initialState(p: Packet, path: readonly TraceHook[]): PacketState {
  const s = parseAddress(p.saddr);
  const d = parseAddress(p.daddr);
  if (!s) throw packetError(`packet source '${p.saddr}': not an IPv4 or IPv6 address`, { saddr: p.saddr });
  if (!d) throw packetError(`packet destination '${p.daddr}': not an IPv4 or IPv6 address`, { daddr: p.daddr });
  if (s.family !== p.family || d.family !== p.family) {
    throw packetError(
      `packet family ${p.family} does not match its addresses (${p.saddr} is ${s.family}, ${p.daddr} is ${d.family})`,
    );
  }
  if (!Number.isInteger(p.l4proto) || p.l4proto < 0 || p.l4proto > 255) {
    throw packetError(`packet protocol ${p.l4proto}: expected a protocol number 0-255`);
  }
  const hasPorts = PORT_PROTOCOLS.has(p.l4proto);
  const ctState = p.ctState ?? 'new';
  return {
    family: p.family,
    saddr: s.value,
    daddr: d.value,
    l4proto: p.l4proto,
    sport: hasPorts ? p.sport : undefined,
    dport: hasPorts ? p.dport : undefined,
    icmpType: p.icmpType,
    icmpCode: p.icmpCode,
    ctState,
    mark: (p.mark ?? 0) >>> 0,
    // A connection's first segment carries SYN; later ones carry ACK.
    tcpFlags:
      p.l4proto === 6 ? (p.tcpFlags ?? (ctState === 'established' || ctState === 'related' ? 16 : 2)) : undefined,
    tcpOptions:
      p.tcpOptions ??
      (p.l4proto === 6 && ctState !== 'established' && ctState !== 'related' ? DEFAULT_SYN_TCP_OPTIONS : []),
    dnatted: false,
    saddrType: p.saddrType ?? 'unicast',
    daddrType: p.daddrType ?? (path[path.length - 1] === 'input' ? 'local' : 'unicast'),
    iif: p.iif,
    oif: p.oif,
  };
}

function fieldValues(s: PacketState, hook: TraceHook, path: readonly TraceHook[]): Val[] {
  const dev = devices(hook, path);
  const v4 = s.family === 'ipv4';
  const vals: Val[] = new Array(FIELDS.length).fill(undefined);
  const set = (f: Field, v: Val) => {
    vals[FIELD_INDEX[f]] = v;
  };
  set('iifname', dev.iif ? s.iif : undefined);
  set('oifname', dev.oif ? s.oif : undefined);
  set('nfproto', s.family);
  set('l4proto', s.l4proto);
  if (v4) {
    set('ip.saddr', Number(s.saddr));
    set('ip.daddr', Number(s.daddr));
  } else {
    set('ip6.saddr', s.saddr);
    set('ip6.daddr', s.daddr);
  }
  set('sport', s.sport);
  set('dport', s.dport);
  if (s.l4proto === 1) {
    set('icmp.type', s.icmpType);
    set('icmp.code', s.icmpCode);
  }
  if (s.l4proto === 58) {
    set('icmpv6.type', s.icmpType);
    set('icmpv6.code', s.icmpCode);
  }
  set('ct.state', s.ctState);
  set('mark', s.mark);
  set('saddr.type', s.saddrType);
  set('daddr.type', s.daddrType);
  set('tcp.flags', s.tcpFlags);
  return vals;
}

/** Why a field the packet could have is absent: the user did not give it. Notes say which flag would supply it. */
function missingHint(field: Field, s: PacketState, hook: TraceHook, path: readonly TraceHook[]): string | undefined {
  const dev = devices(hook, path);
  switch (field) {
    case 'iifname':
      return dev.iif && s.iif === undefined ? 'no input interface was given (--iif)' : undefined;
    case 'oifname':
      return dev.oif && s.oif === undefined ? 'no output interface was given (--oif)' : undefined;
    case 'sport':
      return PORT_PROTOCOLS.has(s.l4proto) && s.sport === undefined ? 'no source port was given (--sport)' : undefined;
    case 'dport':
      return PORT_PROTOCOLS.has(s.l4proto) && s.dport === undefined
        ? 'no destination port was given (--dport)'
        : undefined;
    case 'icmp.type':
    case 'icmpv6.type':
      return s.icmpType === undefined ? 'no ICMP type was given (--icmp-type)' : undefined;
    case 'icmp.code':
    case 'icmpv6.code':
      return s.icmpCode === undefined ? 'no ICMP code was given (--icmp-code)' : undefined;
    default:
      return undefined;
  }
}

/** An opaque match the packet and its path decide exactly. */
function decideExact(d: ExactOpaque, s: PacketState): boolean {
  switch (d.kind) {
    case 'ct-status':
      // A new connection has no status bit but dnat, and that only once a nat rule rewrote it on this path.
      return (
        d.bits.some(
          (b) =>
            (b === 'dnat' && s.dnatted) ||
            // A packet of an established connection: the connection is confirmed, has seen a reply, is assured.
            (s.ctState !== 'new' && (b === 'confirmed' || b === 'seen-reply' || b === 'assured')),
        ) !== d.negate
      );
    case 'tcp-option':
      return (s.l4proto === 6 && s.tcpOptions.includes(d.option)) !== d.negate;
    case 'ext-header':
      // The model's packets carry no IPv6 extension header, and without one these matches fail.
      return false;
    case 'pkttype': {
      const t = s.daddrType === 'broadcast' ? 'broadcast' : s.daddrType === 'multicast' ? 'multicast' : 'host';
      return d.values.includes(t) !== d.negate;
    }
    case 'constant':
      return d.holds;
  }
}

function tracedPacket(s: PacketState): TracedPacket {
  return {
    family: s.family,
    ...(s.iif !== undefined ? { iif: s.iif } : {}),
    ...(s.oif !== undefined ? { oif: s.oif } : {}),
    saddr: formatAddress(s.family, s.saddr),
    daddr: formatAddress(s.family, s.daddr),
    l4proto: s.l4proto,
    ...(s.sport !== undefined ? { sport: s.sport } : {}),
    ...(s.dport !== undefined ? { dport: s.dport } : {}),
    ...(s.icmpType !== undefined ? { icmpType: s.icmpType } : {}),
    ...(s.icmpCode !== undefined ? { icmpCode: s.icmpCode } : {}),
    ctState: s.ctState,
    mark: s.mark,
    ...(s.tcpFlags !== undefined ? { tcpFlags: s.tcpFlags } : {}),
    saddrType: s.saddrType,
    daddrType: s.daddrType,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Traversal

function ruleRef(table: ModelTable, chain: ModelChain, cr: CompiledRule): RuleRef {
  const r = cr.rule;
  return {
    kind: 'rule',
    family: table.family,
    table: table.name,
    chain: chain.name,
    position: cr.position,
    ...(r.origin.handle !== undefined ? { handle: r.origin.handle } : {}),
    file: r.origin.file,
    line: r.origin.line,
    text: r.text,
    ...(r.comment !== undefined ? { comment: r.comment } : {}),
  };
}

function where(ref: RuleRef): string {
  return `${ref.file}:${ref.line}: rule #${ref.position} in ${ref.family} ${ref.table}/${ref.chain}`;
}

interface Frame {
  chain: ModelChain;
  rules: readonly CompiledRule[];
  next: number;
  /** Chains this frame has been (a goto replaces the chain but keeps the frame): for loop detection. */
  lineage: string[];
}

interface Run {
  readonly verdict: FinalVerdict;
  readonly decidedBy: DecidedBy | undefined;
  readonly path: TraceStep[];
  readonly state: PacketState;
}

interface RunContext {
  readonly rs: Ruleset;
  readonly cr: CompiledRuleset;
  readonly hooks: readonly TraceHook[];
  readonly askedHook: TraceHook;
  /** The main verdict (each stateful match as for a fresh source, unknown ones hold), or the other outcome of each. */
  readonly flip: boolean;
  readonly notes: Set<string>;
  readonly opaque: Map<OpaqueMatch, OpaqueEncounter>;
  /** Fields already reported as missing from the packet (one note per field). */
  readonly missingNoted: Set<Field>;
  queued: boolean;
}

type ChainOutcome =
  | { readonly kind: 'accept'; readonly by: DecidedBy; readonly nat?: boolean }
  | { readonly kind: 'final'; readonly verdict: FinalVerdict; readonly by: DecidedBy };

function describeNat(v: NatVerdict, family: L3): string {
  const addr =
    v.addr === undefined
      ? ''
      : v.addr.lo === v.addr.hi
        ? formatAddress(v.family ?? family, v.addr.lo)
        : `${formatAddress(v.family ?? family, v.addr.lo)}-${formatAddress(v.family ?? family, v.addr.hi)}`;
  const port = v.port === undefined ? '' : v.port.lo === v.port.hi ? `${v.port.lo}` : `${v.port.lo}-${v.port.hi}`;
  if (!addr && !port) return v.type;
  const shownAddr = addr && family === 'ipv6' && port ? `[${addr}]` : addr;
  return `${v.type} to ${shownAddr}${port ? `:${port}` : ''}`;
}

/** Applies a nat statement's rewrite to the packet state, recording it. */
function applyNat(
  v: NatVerdict,
  s: PacketState,
  hook: TraceHook,
  ref: RuleRef,
  depth: number,
  path: TraceStep[],
  ctx: RunContext,
): void {
  const rewrite = (field: RewriteField, from: string, to: string) => {
    if (from !== to) path.push({ kind: 'rewrite', field, from, to, depth, by: ref });
  };
  if (v.family !== undefined && v.family !== s.family) {
    ctx.notes.add(`${where(ref)}: ${v.type} for ${v.family} does not apply to this ${s.family} packet`);
    return;
  }
  const ranged = (v.addr && v.addr.lo !== v.addr.hi) || (v.port && v.port.lo !== v.port.hi);
  if (ranged) {
    ctx.notes.add(`${where(ref)}: ${v.type} to a range; the trace continues with the first address/port of it`);
  }
  const hasPorts = PORT_PROTOCOLS.has(s.l4proto);
  if (v.type === 'dnat' || v.type === 'redirect') {
    if (v.type === 'redirect') {
      if (hook === 'output') {
        const lo = s.family === 'ipv4' ? 0x7f000001n : 1n;
        rewrite('daddr', formatAddress(s.family, s.daddr), formatAddress(s.family, lo));
        s.daddr = lo;
      } else {
        path.push({
          kind: 'rewrite',
          field: 'daddr',
          from: formatAddress(s.family, s.daddr),
          to: `primary address of ${s.iif ?? 'the input interface'}`,
          unknown: true,
          depth,
          by: ref,
        });
        ctx.notes.add(
          `${where(ref)}: redirect sends the packet to the primary address of its input interface, which a ruleset ` +
            'does not tell; the trace goes on with the old destination address',
        );
      }
      rewrite('daddr.type', s.daddrType, 'local');
      s.daddrType = 'local';
      s.dnatted = true;
    } else if (!v.addr && !v.port) {
      path.push({
        kind: 'rewrite',
        field: 'daddr',
        from: formatAddress(s.family, s.daddr),
        to: `unknown (${v.text})`,
        unknown: true,
        depth,
        by: ref,
      });
      ctx.notes.add(
        `${where(ref)}: the dnat target is computed (a map lookup or expression) and not known to the model; the trace ` +
          'goes on with the old destination',
      );
    } else if (v.addr) {
      const to = v.addr.lo;
      rewrite('daddr', formatAddress(s.family, s.daddr), formatAddress(s.family, to));
      s.daddr = to;
      // A published port: addressed to this host, forwarded after dnat; later fib/addrtype lookups see the new one.
      if (ctx.hooks.includes('forward') && s.daddrType === 'local') {
        rewrite('daddr.type', 'local', 'unicast');
        s.daddrType = 'unicast';
      }
    }
    if (v.port && hasPorts) {
      rewrite('dport', String(s.dport ?? '-'), String(v.port.lo));
      s.dport = v.port.lo;
    }
    s.dnatted = true;
    if (hook === 'prerouting' && ctx.hooks.includes('input')) {
      ctx.notes.add(
        `the destination was rewritten in prerouting (${where(ref)}); the routing decision that follows uses the new ` +
          'destination: if that is not this host, the packet is forwarded: trace again with --hook forward',
      );
    }
    return;
  }
  if (v.type === 'masquerade') {
    ctx.notes.add(
      `${where(ref)}: masquerade uses the address of the output interface, which a ruleset does not tell; the source ` +
        'address is kept',
    );
  } else if (v.addr) {
    rewrite('saddr', formatAddress(s.family, s.saddr), formatAddress(s.family, v.addr.lo));
    s.saddr = v.addr.lo;
  }
  if (v.port && hasPorts) {
    rewrite('sport', String(s.sport ?? '-'), String(v.port.lo));
    s.sport = v.port.lo;
  }
}

function runBaseChain(
  table: ModelTable,
  base: ModelChain,
  hook: TraceHook,
  s: PacketState,
  path: TraceStep[],
  ctx: RunContext,
): ChainOutcome {
  const spec = base.base!;
  let vals = fieldValues(s, hook, ctx.hooks);
  const fam = table.family;
  const stack: Frame[] = [
    { chain: base, rules: compileChain(ctx.cr, table, base).rules, next: 0, lineage: [base.name] },
  ];
  const policy = (): ChainOutcome => {
    const by: PolicyRef = {
      kind: 'policy',
      family: fam,
      table: table.name,
      chain: base.name,
      hook: spec.hook,
      policy: spec.policy,
      file: base.origin.file,
      line: base.origin.line,
    };
    path.push({ ...by, kind: 'policy' });
    return spec.policy === 'accept' ? { kind: 'accept', by } : { kind: 'final', verdict: 'drop', by };
  };
  const pop = (implicit: boolean): void => {
    const from = stack.pop()!;
    const to = stack[stack.length - 1]!;
    path.push({
      kind: 'return',
      family: fam,
      table: table.name,
      from: from.chain.name,
      to: to.chain.name,
      depth: stack.length - 1,
      implicit,
    });
  };
  const noteMissing = (i: number, chain: ModelChain, rule: CompiledRule): void => {
    const field = FIELDS[i]!;
    const hint = missingHint(field, s, hook, ctx.hooks);
    if (hint && !ctx.missingNoted.has(field)) {
      ctx.missingNoted.add(field);
      ctx.notes.add(
        `${hint}: rules matching ${field} do not match (first seen: ${where(ruleRef(table, chain, rule))})`,
      );
    }
  };

  for (;;) {
    const frame = stack[stack.length - 1]!;
    if (frame.next >= frame.rules.length) {
      if (stack.length === 1) return policy();
      pop(true);
      continue;
    }
    const cr = frame.rules[frame.next++]!;
    const ms = cr.matches;
    let ok = true;
    for (let i = 0; i < ms.length; i++) {
      const h = holds(ms[i]!, vals);
      if (h !== 1) {
        if (h < 0) noteMissing(-h - 1, frame.chain, cr);
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    let assumed: string[] | undefined;
    if (cr.opaque.length > 0) {
      const ref = ruleRef(table, frame.chain, cr);
      let holds = true;
      for (const o of cr.opaque) {
        // Decided from the packet and its path: exact, no assumption.
        if (o.decide) {
          if (!decideExact(o.decide, s)) {
            holds = false;
            break;
          }
          continue;
        }
        if (!ctx.opaque.has(o)) {
          ctx.opaque.set(o, {
            text: o.text,
            category: o.category,
            reason: o.reason,
            rule: ref,
            ...(o.fresh !== undefined ? { fresh: o.fresh } : {}),
            ...(o.otherwise !== undefined ? { otherwise: o.otherwise } : {}),
          });
        }
        const main = o.fresh ?? true;
        if ((ctx.flip ? !main : main) === false) {
          holds = false;
          break;
        }
        assumed ??= [];
        assumed.push(o.text);
      }
      if (!holds) continue;
    }
    const ref = ruleRef(table, frame.chain, cr);
    const fromChain = frame.chain;
    const depth = stack.length - 1;
    const step = (effect: RuleEffect, extra: { target?: string; detail?: string } = {}): void => {
      const { kind: _k, ...rest } = ref;
      path.push({ kind: 'rule', ...rest, depth, effect, ...extra, ...(assumed ? { opaque: assumed } : {}) });
    };

    // Statements run before the verdict; only a mark change affects the traversal.
    let rewrites: TraceStep[] | undefined;
    for (const st of cr.rule.statements) {
      if (st.kind !== 'set' || st.field !== 'mark') continue;
      // (mark & ~mask) ^ value: nft's bitwise form and iptables' --set-xmark; a plain set has the full mask.
      const mask = st.mask === undefined ? 0xffffffff : Number(st.mask & 0xffffffffn);
      const next = ((s.mark & ~mask) ^ Number(st.value & 0xffffffffn)) >>> 0;
      if (next !== s.mark) {
        rewrites ??= [];
        rewrites.push({
          kind: 'rewrite',
          field: 'mark',
          from: `0x${s.mark.toString(16)}`,
          to: `0x${next.toString(16)}`,
          depth,
          by: ref,
        });
        s.mark = next;
      }
    }
    if (rewrites) vals = fieldValues(s, hook, ctx.hooks);

    let v: SimpleVerdict | undefined;
    let vmapDetail: string | undefined;
    const cv = cr.verdict;
    if (cv.kind === 'nat') {
      step('nat', { detail: describeNat(cv.v, s.family) });
      if (rewrites) path.push(...rewrites);
      applyNat(cv.v, s, hook, ref, depth, path, ctx);
      return { kind: 'accept', by: ref, nat: true };
    }
    if (cv.kind === 'vmap') {
      const vs: Val[] = [];
      let present = true;
      for (const i of cv.idxs) {
        const x = vals[i];
        if (x === undefined) {
          noteMissing(i, frame.chain, cr);
          present = false;
          break;
        }
        vs.push(x);
      }
      const hit = present ? cv.lookup(vs) : -1;
      if (hit < 0) {
        step('vmap-miss', { detail: present ? 'no map entry for the packet' : 'the packet lacks the map key' });
        if (rewrites) path.push(...rewrites);
        continue;
      }
      v = cv.verdicts[hit]!;
      vmapDetail = `map entry ${hit + 1}`;
    } else if (cv.kind === 'simple') {
      v = cv.v;
    }
    const detail = vmapDetail ? { detail: vmapDetail } : {};
    if (v === undefined) {
      step('none');
      if (rewrites) path.push(...rewrites);
      continue;
    }
    switch (v.kind) {
      case 'continue':
        step('continue', detail);
        if (rewrites) path.push(...rewrites);
        continue;
      case 'accept':
        step('accept', detail);
        if (rewrites) path.push(...rewrites);
        return { kind: 'accept', by: ref };
      case 'drop':
        step('drop', detail);
        return { kind: 'final', verdict: 'drop', by: ref };
      case 'reject':
        step('reject', v.with ? { ...detail, detail: `${vmapDetail ? `${vmapDetail}, ` : ''}with ${v.with}` } : detail);
        return { kind: 'final', verdict: 'reject', by: ref };
      case 'queue':
        step('queue', detail);
        ctx.queued = true;
        ctx.notes.add(`queued to userspace: verdict depends on the consumer (${where(ref)})`);
        return { kind: 'final', verdict: 'drop', by: ref };
      case 'return':
        step('return', detail);
        if (rewrites) path.push(...rewrites);
        if (stack.length === 1) return policy();
        pop(false);
        continue;
      case 'jump':
      case 'goto': {
        const target = chainByName(ctx.cr, table, v.target);
        if (!target) {
          throw new UserError(
            'RAMPART_ERR_NO_CHAIN',
            `${where(ref)} ${v.kind}s to chain '${v.target}', which does not exist in table ${fam} ${table.name}`,
            {
              family: fam,
              table: table.name,
              chain: frame.chain.name,
              rule: cr.position,
              target: v.target,
              file: ref.file,
              line: ref.line,
            },
          );
        }
        if (stack.some((f) => f.lineage.includes(v.target))) {
          const trail = [...stack.flatMap((f) => f.lineage), v.target].join(' -> ');
          throw new UserError(
            'RAMPART_ERR_LOOP',
            `${where(ref)} ${v.kind}s to chain '${v.target}', which is already being traversed (loop: ${trail})`,
            {
              family: fam,
              table: table.name,
              chain: frame.chain.name,
              rule: cr.position,
              target: v.target,
              file: ref.file,
              line: ref.line,
            },
          );
        }
        step(v.kind, { ...detail, target: v.target });
        if (rewrites) path.push(...rewrites);
        const rules = compileChain(ctx.cr, table, target).rules;
        if (v.kind === 'jump') {
          if (stack.length > MAX_JUMP_DEPTH) {
            throw new UserError(
              'RAMPART_ERR_LOOP',
              `${where(ref)} jumps deeper than ${MAX_JUMP_DEPTH} chains; netfilter would not load this ruleset`,
              { family: fam, table: table.name, chain: frame.chain.name, rule: cr.position, target: v.target },
            );
          }
          stack.push({ chain: target, rules, next: 0, lineage: [target.name] });
          if (stack.length - 1 > NFT_KERNEL_JUMP_LIMIT && ctx.rs.backend === 'nftables') {
            ctx.notes.add(
              `jumps nest ${stack.length - 1} deep at ${where(ref)}; the nft kernel refuses rulesets nested deeper ` +
                `than ${NFT_KERNEL_JUMP_LIMIT}`,
            );
          }
        } else {
          frame.chain = target;
          frame.rules = rules;
          frame.next = 0;
          frame.lineage.push(target.name);
        }
        path.push({
          kind: v.kind,
          family: fam,
          table: table.name,
          from: fromChain.name,
          to: target.name,
          depth: stack.length - 1,
        });
        continue;
      }
    }
  }
}

function runPath(ctx: RunContext, s: PacketState): Run {
  const path: TraceStep[] = [];
  let lastAccept: DecidedBy | undefined;
  let askedAccept: DecidedBy | undefined;
  const head = ({ table, chain }: BaseRef) => ({
    family: table.family,
    table: table.name,
    chain: chain.name,
    hook: chain.base!.hook,
    priority: chain.base!.priority,
    type: chain.base!.type,
  });
  const run = (ref: BaseRef, hook: TraceHook, natPriority?: number): ChainOutcome => {
    const b = ref.chain.base!;
    path.push({
      kind: 'chain',
      ...head(ref),
      ...(natPriority !== undefined && natPriority !== b.priority ? { runsAt: natPriority } : {}),
      policy: b.policy,
      file: ref.chain.origin.file,
      line: ref.chain.origin.line,
    });
    return runBaseChain(ref.table, ref.chain, hook, s, path, ctx);
  };
  for (const hook of ctx.hooks) {
    for (const entry of hookEntries(ctx.cr, ctx.rs, hook, s.family)) {
      const outcomes: ChainOutcome[] = [];
      if (entry.kind === 'chain') {
        outcomes.push(run(entry.base, hook));
      } else {
        let boundBy: RuleRef | undefined;
        for (const m of entry.members) {
          if (s.ctState !== 'new' || boundBy) {
            path.push({
              kind: 'skip',
              ...head(m),
              reason: boundBy
                ? `the connection's nat binding was set up by ${where(boundBy)}; later nat chains on this hook are not consulted`
                : `nat chains see only the first packet of a connection (ct state new); this one is ${s.ctState}`,
            });
            continue;
          }
          const out = run(m, hook, entry.priority);
          outcomes.push(out);
          if (out.kind === 'final') break;
          if (out.nat && out.by.kind === 'rule') boundBy = out.by;
        }
      }
      for (const out of outcomes) {
        if (out.kind === 'final') return { verdict: out.verdict, decidedBy: out.by, path, state: s };
        lastAccept = out.by;
        if (hook === ctx.askedHook) askedAccept = out.by;
      }
    }
  }
  return { verdict: 'accept', decidedBy: askedAccept ?? lastAccept, path, state: s };
}

/** Follows one packet through the ruleset's base chains on a hook (and the hooks before and after it). */
export function trace(ruleset: Ruleset, packet: Packet, opts: TraceOptions): TraceResult {
  if (!(TRACE_HOOKS as readonly string[]).includes(opts.hook)) {
    throw packetError(`hook '${opts.hook}' cannot be traced; expected one of ${TRACE_HOOKS.join(', ')}`, {
      hook: opts.hook,
    });
  }
  const askedHook = opts.hook as TraceHook;
  const hooks = hookPath(askedHook, opts.only ?? false);
  const cr = compiledRuleset(ruleset);
  const notes = new Set<string>();
  const opaque = new Map<OpaqueMatch, OpaqueEncounter>();
  const ctx: RunContext = {
    rs: ruleset,
    cr,
    hooks,
    askedHook,
    flip: false,
    notes,
    opaque,
    missingNoted: new Set(),
    queued: false,
  };
  const start = initialState(packet, hooks);
  if (start.iif !== undefined && hooks.every((h) => !devices(h, hooks).iif)) {
    notes.add('--iif is ignored: a locally generated packet has no input interface');
  }
  if (start.oif !== undefined && hooks.every((h) => !devices(h, hooks).oif)) {
    notes.add('--oif is ignored: the output interface is not known before routing, and input has none');
  }
  const main = runPath(ctx, { ...start });
  const alternatives: TraceAlternative[] = [];
  if (opaque.size > 0) {
    // The other outcome of every stateful or unknown match on the path: what a flood, a known source or a failing
    // unmodelled match would get.
    const altCtx: RunContext = {
      ...ctx,
      flip: true,
      notes: new Set(),
      opaque: new Map(),
      missingNoted: new Set(),
      queued: false,
    };
    try {
      const alt = runPath(altCtx, { ...start });
      if (alt.verdict !== main.verdict) {
        // The conditions that matter: those of the rules that decide either way; all flipped ones otherwise.
        const flipped = [...altCtx.opaque.values()];
        const sameRule = (o: OpaqueEncounter, d: DecidedBy | undefined) =>
          d?.kind === 'rule' &&
          o.rule.family === d.family &&
          o.rule.table === d.table &&
          o.rule.chain === d.chain &&
          o.rule.position === d.position;
        const deciding = flipped.filter((o) => sameRule(o, main.decidedBy) || sameRule(o, alt.decidedBy));
        const conditions = (deciding.length > 0 ? deciding : flipped).map((o) =>
          o.fresh === undefined
            ? `'${o.text}' does not match`
            : (o.otherwise ?? `'${o.text}' ${o.fresh ? 'does not match' : 'matches'}`),
        );
        alternatives.push({
          assumption: 'other-outcome',
          conditions: [...new Set(conditions)],
          verdict: alt.verdict,
          decidedBy: alt.decidedBy,
          path: alt.path,
        });
      }
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      notes.add(
        `with the other outcome of the stateful or unknown matches, the trace stops with an error: ${e.message}`,
      );
    }
  }
  if (main.path.length === 0) {
    notes.add(
      `no base chain of a ${start.family} table is attached to ${hooks.join(', ')}: nothing filters this packet`,
    );
  }
  return {
    verdict: main.verdict,
    path: main.path,
    decidedBy: main.decidedBy,
    hooks,
    packet: tracedPacket(main.state),
    uncertain: [...opaque.values()].some((o) => o.fresh === undefined) || ctx.queued,
    opaque: [...opaque.values()],
    unspecified: [...ctx.missingNoted],
    notes: [...notes],
    ...(alternatives.length > 0 ? { alternatives } : {}),
  };
}
