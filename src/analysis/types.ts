/**
 * The contract of the packet-space engine: packet sets, and a ruleset compiled to a verdict function over them.
 *
 * Implemented by packet-space.ts (BDD-backed packet sets) and compile.ts (ruleset -> verdict sets, per-rule hit
 * sets); used by the queries (reach, unreachable rules, diff, intents), the CLI, audit and change planning.
 * Everything here is pure: no I/O, no clock.
 */
import type { Element, Field, FinalVerdict, Packet, Rule, Ruleset } from '../firewall/model.js';
import type { TraceHook } from '../firewall/tracer.js';

/**
 * A product set of packets: each listed field restricted to a union of elements, unlisted fields unrestricted.
 * Address fields use range elements; iifname/oifname use name elements (`wildcard` = prefix); symbolic fields use
 * symbol elements. An iifname/oifname of `{kind:'name', value:'', wildcard:false}` means "no interface" (the
 * packet has none, as on the output hook for iif).
 */
export type Cube = Partial<Record<Field, readonly Element[]>>;

/** A set of packets. Immutable; belongs to one PacketSpace and combines only with sets of the same space. */
export interface PacketSet {
  readonly space: PacketSpace;
  and(other: PacketSet): PacketSet;
  or(other: PacketSet): PacketSet;
  minus(other: PacketSet): PacketSet;
  /** Complement within the space's universe of well-formed packets. */
  not(): PacketSet;
  isEmpty(): boolean;
  equals(other: PacketSet): boolean;
  /** Whether this set includes every packet of `other`. */
  covers(other: PacketSet): boolean;
  /** Number of distinct well-formed packets (header tuples) in the set. */
  count(): bigint;
  /** One packet of the set (deterministic), preferring the given field values where the set allows them. */
  example(prefer?: Partial<Packet>): Packet | undefined;
  /** Disjoint cubes whose union is the set, largest first, at most `limit` (then `truncated`). */
  cubes(limit?: number): { readonly cubes: readonly Cube[]; readonly truncated: boolean };
  contains(packet: Packet): boolean;
}

/**
 * The space packets live in. Interface names and other open-ended values are encoded relative to the names the
 * rulesets mention, so every set used together (e.g. both sides of a diff) must come from one space built over all
 * of the rulesets involved.
 */
export interface PacketSpace {
  all(): PacketSet;
  none(): PacketSet;
  fromCube(cube: Cube): PacketSet;
  fromPacket(packet: Packet): PacketSet;
  /** The set with each of `fields` free: any value a packet of the set's family and protocol can have there. */
  anyValueOf(set: PacketSet, fields: readonly Field[]): PacketSet;
  /**
   * The values a numeric field takes in `set` (the other fields quantified away) as ranges, unordered; undefined
   * when more than `maxRanges` ranges would be needed.
   */
  fieldValues(set: PacketSet, f: Field, maxRanges?: number): [bigint, bigint][] | undefined;
  /** The values of field f for which some packet of `a` is not in `b` ([] when a is a subset of b). */
  valuesOutside(a: PacketSet, b: PacketSet, f: Field, maxRanges?: number): [bigint, bigint][] | undefined;
  /** Size of the node table, for benchmarks and memory reports. */
  stats(): { readonly nodes: number; readonly cacheHits: number; readonly cacheMisses: number };
}

/** Where a rule is: table (with family), chain, 1-based position, and the rule itself (origin, text, verdict). */
export interface RuleRef {
  readonly kind: 'rule';
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  readonly position: number;
  readonly rule: Rule;
}

/** A base chain's policy, as a decider. */
export interface PolicyRef {
  readonly kind: 'policy';
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  readonly policy: 'accept' | 'drop';
}

/** The end of the hook path with no drop: the packet is accepted. */
export interface PathEndRef {
  readonly kind: 'path-end';
}

export type Decider = RuleRef | PolicyRef | PathEndRef;

export interface Decision {
  readonly decider: Decider;
  readonly verdict: FinalVerdict;
  /** The packets this decider gave their final verdict to. */
  readonly packets: PacketSet;
}

/** A ruleset compiled for one hook path (as the tracer walks it: input = prerouting then input, ...). */
export interface CompiledRuleset {
  readonly ruleset: Ruleset;
  readonly hook: TraceHook;
  readonly space: PacketSpace;
  /** Packets whose final verdict is certainly `verdict`, whatever the opaque matches do. */
  verdict(verdict: FinalVerdict): PacketSet;
  /** Packets whose verdict depends on opaque matches (rate limits, unknown sets, ...). */
  uncertain(): PacketSet;
  /** packets and uncertain(), without building the verdict sets when no packet of `packets` meets an opaque match. */
  uncertainWithin(packets: PacketSet): PacketSet;
  /** Every rule of every chain that the hook path can reach, in evaluation order. */
  rules(): readonly RuleRef[];
  /** Packets that arrive at the rule's position (in any call context), before its match is tested. */
  arriving(rule: RuleRef): PacketSet;
  /** arriving(rule) and `within` (cheaper than building the whole arriving set when `within` is small). */
  arrivingWithin(rule: RuleRef, within: PacketSet): PacketSet;
  /** The rule's own match (opaque matches counted as may-match). */
  matchSet(rule: RuleRef): PacketSet;
  /** arriving(rule) and matchSet(rule): the packets the rule applies to. Empty = the rule is unreachable. */
  hits(rule: RuleRef): PacketSet;
  /** Who decided the packets of `packets`, split by decider (final verdicts only). */
  decisions(packets?: PacketSet): readonly Decision[];
  /**
   * The packets no rule or policy decides: accepted at the end of the hook path (the `path-end` decision of
   * decisions() over every packet, without crediting every other decider).
   */
  pathEnd(): PacketSet;
  /**
   * The packets decisions() over every packet credits to the deciders `pick` chooses (their union), without
   * crediting every other decider.
   */
  decidedBy(pick: (d: Decider) => boolean): PacketSet;
}
