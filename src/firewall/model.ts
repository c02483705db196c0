/**
 * The ruleset model: one immutable intermediate representation for nftables and iptables.
 *
 * Both backends land in the same shape. An iptables table becomes a Table of family `ip` (iptables) or `ip6`
 * (ip6tables) whose built-in chains are base chains at the priorities iptables-nft uses, so the tracer and the
 * analyses have one semantics to implement.
 *
 * Conventions the rest of the code relies on:
 * - Every match is a condition on header fields. A match on a field the packet does not have (an IPv4 address on an
 *   IPv6 packet, a port on an ICMP packet) is false, whatever its operator: this is what nftables' implicit
 *   dependencies and iptables' protocol requirements do.
 * - Protocol dependencies are explicit: `tcp dport 22` becomes two matches, `l4proto == tcp` and `dport == 22`.
 * - Values are sets of elements; `op: 'ne'` negates membership of the whole set.
 * - Anything the model cannot express is an OpaqueMatch (it may or may not match) and is never dropped silently.
 */

export type Backend = 'nftables' | 'iptables';
export type InputFormat = 'nft-json' | 'nft-text' | 'iptables-save';

/** nftables families. arp, bridge and netdev are recognised and reported as out of scope. */
export type Family = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';
export const IN_SCOPE_FAMILIES: readonly Family[] = ['ip', 'ip6', 'inet'];

export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting' | 'ingress' | 'egress';
export type ChainType = 'filter' | 'nat' | 'route';
export type Policy = 'accept' | 'drop';

/** Where a table, chain or rule came from. Lines and columns are 1-based. */
export interface Origin {
  readonly file: string;
  readonly line: number;
  readonly column?: number;
  /** nftables rule/chain handle, when the input carried one (nft -j, nft -a). */
  readonly handle?: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Header fields and values

/**
 * Header fields the analyses understand. Address fields carry their family in the name, so an `ip.saddr` match is
 * false on an IPv6 packet. `sport`/`dport` exist only for tcp, udp, sctp, dccp and udplite packets; `icmp.*` only
 * for ICMP (IPv4), `icmpv6.*` only for ICMPv6.
 */
export type Field =
  | 'iifname'
  | 'oifname'
  | 'nfproto'
  | 'l4proto'
  | 'ip.saddr'
  | 'ip.daddr'
  | 'ip6.saddr'
  | 'ip6.daddr'
  | 'sport'
  | 'dport'
  | 'icmp.type'
  | 'icmp.code'
  | 'icmpv6.type'
  | 'icmpv6.code'
  | 'ct.state'
  | 'mark'
  | 'saddr.type'
  | 'daddr.type'
  | 'tcp.flags';

export const FIELDS: readonly Field[] = [
  'iifname',
  'oifname',
  'nfproto',
  'l4proto',
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
  'ct.state',
  'mark',
  'saddr.type',
  'daddr.type',
  'tcp.flags',
];

/** Layer 3 protocol values for `nfproto`. */
export type L3 = 'ipv4' | 'ipv6';

/** Conntrack states (`ct state`, `-m conntrack --ctstate`, `-m state --state`). */
export type CtState = 'new' | 'established' | 'related' | 'invalid' | 'untracked';
export const CT_STATES: readonly CtState[] = ['new', 'established', 'related', 'invalid', 'untracked'];

/** Address types (`fib daddr type`, `-m addrtype`), as the kernel names them (lower case). */
export type AddrType =
  | 'unspec'
  | 'unicast'
  | 'local'
  | 'broadcast'
  | 'anycast'
  | 'multicast'
  | 'blackhole'
  | 'unreachable'
  | 'prohibit'
  | 'throw'
  | 'nat'
  | 'xresolve';

/**
 * One element of a value set.
 * - `range`: an inclusive integer interval. Used for numbers (ports, protocols, ICMP types, marks) and addresses
 *   (IPv4 as 32-bit, IPv6 as 128-bit unsigned integers). A single value has lo === hi; a prefix is its range.
 * - `name`: an interface name; `wildcard` means a prefix match (`eth*` in nftables, `eth+` in iptables).
 * - `symbol`: a member of a small enumerated domain (`nfproto`, `ct.state`, `*.type`).
 */
export type Element =
  | { readonly kind: 'range'; readonly lo: bigint; readonly hi: bigint }
  | { readonly kind: 'name'; readonly value: string; readonly wildcard: boolean }
  | { readonly kind: 'symbol'; readonly value: string };

// ---------------------------------------------------------------------------------------------------------------
// Matches

interface MatchBase {
  /** The source text of this match (e.g. `tcp dport { 80, 443 }` or `-p tcp --dport 80`), for display. */
  readonly text: string;
}

/** `field op values`: the packet's field is (eq) or is not (ne) in the set. */
export interface FieldMatch extends MatchBase {
  readonly kind: 'field';
  readonly field: Field;
  readonly op: 'eq' | 'ne';
  readonly values: readonly Element[];
  /** For `mark` and `tcp.flags`: compare `(field & mask)` against the values. */
  readonly mask?: bigint;
  /** Name of the named set (nft `@name`, ipset) the values came from. */
  readonly set?: string;
}

/** A concatenation lookup: `ip saddr . tcp dport { 10.0.0.1 . 22, ... }`, or an ipset of type hash:ip,port. */
export interface ConcatMatch extends MatchBase {
  readonly kind: 'concat';
  readonly fields: readonly Field[];
  readonly op: 'eq' | 'ne';
  /** Each tuple has one element per field. */
  readonly tuples: readonly (readonly Element[])[];
  readonly set?: string;
}

/** Why a match is opaque. `limit` and `quota` depend on rates; the others on state the model does not have. */
export type OpaqueCategory =
  | 'limit'
  | 'quota'
  | 'unknown-set'
  | 'unsupported-field'
  | 'unsupported-module'
  /** iptables `-s`/`-d` with a host name: resolved when the file is loaded, unknown here. */
  | 'host-name'
  | 'unsupported-expression';

/** A condition the model cannot decide. It may or may not match: analyses must treat it soundly. */
export interface OpaqueMatch extends MatchBase {
  readonly kind: 'opaque';
  readonly category: OpaqueCategory;
  readonly reason: string;
  /**
   * Whether the match holds for an ordinary new connection from a fresh source: under every rate and count limit,
   * with no recent-list history, dynamic sets as loaded, a new conntrack entry. The main verdict (tracer, engine,
   * audit) takes this outcome and states the other as the alternative. Absent when nothing is known (an unmodelled
   * module, a random match): the main verdict then assumes the match holds and is uncertain.
   */
  readonly fresh?: boolean;
  /** When the other outcome happens, in words: `above 10/second`, `once 6 hits in 1 s came from one source`. */
  readonly otherwise?: string;
  /**
   * How the tracer decides the match exactly from the packet and its path (the engine, which has no such field, uses
   * `fresh`): conntrack status bits (a new connection has none but `dnat` when a nat rule rewrote its destination
   * earlier on the path), a TCP option of the packet, an IPv6 extension header (the model's packets carry none).
   */
  readonly decide?: ExactOpaque;
}

export type ExactOpaque =
  | { readonly kind: 'ct-status'; readonly bits: readonly string[]; readonly negate: boolean }
  | { readonly kind: 'tcp-option'; readonly option: number; readonly negate: boolean }
  | { readonly kind: 'ext-header'; readonly header: string }
  /** `meta pkttype`: broadcast and multicast by the destination address type, host otherwise. */
  | { readonly kind: 'pkttype'; readonly values: readonly string[]; readonly negate: boolean }
  /** A header property every packet of the model has alike (`ip hdrlength 5`: no IP options). */
  | { readonly kind: 'constant'; readonly holds: boolean };

/**
 * The TCP options of an ordinary connection's first segment, as Linux sends them: MSS, SACK permitted, timestamps,
 * NOP, window scale. `--tcp-option N` is decided against these for a new connection.
 */
export const DEFAULT_SYN_TCP_OPTIONS: readonly number[] = [2, 4, 8, 1, 3];

export type Match = FieldMatch | ConcatMatch | OpaqueMatch;

// ---------------------------------------------------------------------------------------------------------------
// Statements (effects that do not end the chain) and verdicts

export type NatType = 'dnat' | 'snat' | 'masquerade' | 'redirect';

export type Statement =
  | { readonly kind: 'counter'; readonly text: string }
  | { readonly kind: 'log'; readonly prefix?: string; readonly text: string }
  /** Sets a packet field for the rest of the traversal (`meta mark set`, `-j MARK --set-mark`). */
  | {
      readonly kind: 'set';
      readonly field: 'mark';
      readonly value: bigint;
      readonly mask?: bigint;
      readonly text: string;
    }
  /** Any other statement with no effect on the verdict (ct helper, notrack, set updates, ...). */
  | { readonly kind: 'other'; readonly text: string };

/**
 * Network address translation. In both nftables and iptables a nat statement ends the traversal of its base chain
 * like an accept. `addr`/`port` are the translated-to values when given (a single address/port or a range).
 */
export interface NatVerdict {
  readonly kind: 'nat';
  readonly type: NatType;
  readonly family?: L3;
  readonly addr?: { readonly lo: bigint; readonly hi: bigint };
  readonly port?: { readonly lo: number; readonly hi: number };
  readonly text: string;
}

export interface VmapEntry {
  /** One element per key field. */
  readonly key: readonly Element[];
  readonly verdict: SimpleVerdict;
}

/** A verdict map: `tcp dport vmap { 22 : accept, 80 : jump web }`. No entry found = the rule does not decide. */
export interface VmapVerdict {
  readonly kind: 'vmap';
  readonly fields: readonly Field[];
  readonly entries: readonly VmapEntry[];
  readonly set?: string;
  readonly text: string;
}

export type SimpleVerdict =
  | { readonly kind: 'accept' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'reject'; readonly with?: string }
  | { readonly kind: 'queue' }
  | { readonly kind: 'continue' }
  | { readonly kind: 'return' }
  | { readonly kind: 'jump'; readonly target: string }
  | { readonly kind: 'goto'; readonly target: string };

export type Verdict = SimpleVerdict | NatVerdict | VmapVerdict;

// ---------------------------------------------------------------------------------------------------------------
// Structure

export interface Rule {
  readonly kind: 'rule';
  /** All matches must hold for the rule to apply (conjunction, in order). */
  readonly matches: readonly Match[];
  readonly statements: readonly Statement[];
  /** Absent: the rule does not decide (counter/log only, or `continue`). */
  readonly verdict?: Verdict;
  readonly comment?: string;
  readonly origin: Origin;
  /** The rule as written (nft rule text or the iptables-save line), for display. */
  readonly text: string;
}

export interface BaseChainSpec {
  readonly type: ChainType;
  readonly hook: Hook;
  readonly priority: number;
  readonly policy: Policy;
  /** netdev ingress/egress device. */
  readonly device?: string;
}

export interface Chain {
  readonly kind: 'chain';
  readonly name: string;
  /** Present for base chains (nft `type ... hook ... priority`; iptables built-in chains). */
  readonly base?: BaseChainSpec;
  readonly rules: readonly Rule[];
  readonly origin: Origin;
}

export type SetType =
  | 'ipv4_addr'
  | 'ipv6_addr'
  | 'inet_service'
  | 'inet_proto'
  | 'ifname'
  | 'mark'
  | 'ether_addr'
  | 'ct_state'
  | string;

/** A named set or map as declared in its table (nft `set`/`map`, or an ipset). */
export interface NamedSet {
  readonly kind: 'set';
  readonly name: string;
  /** One type per concatenated field, e.g. ['ipv4_addr', 'inet_service']. */
  readonly types: readonly SetType[];
  readonly flags: readonly string[];
  /** Each element is a tuple with one Element per type. */
  readonly elements: readonly (readonly Element[])[];
  /** For maps: the data type and the value of each element (same order as elements). */
  readonly map?: { readonly type: string; readonly values: readonly (SimpleVerdict | string)[] };
  readonly origin: Origin;
}

export interface Table {
  readonly kind: 'table';
  readonly family: Family;
  readonly name: string;
  readonly chains: readonly Chain[];
  readonly sets: readonly NamedSet[];
  readonly origin: Origin;
  /** arp, bridge and netdev tables are kept but not analysed. */
  readonly outOfScope: boolean;
}

export interface Warning {
  readonly code: string;
  readonly message: string;
  readonly origin?: Origin;
}

export interface Ruleset {
  readonly kind: 'ruleset';
  readonly backend: Backend;
  readonly format: InputFormat;
  readonly file: string;
  readonly tables: readonly Table[];
  /** Things parsed but not fully understood: opaque matches, out-of-scope families, unknown sets. */
  readonly warnings: readonly Warning[];
}

// ---------------------------------------------------------------------------------------------------------------
// Packets

/** IANA protocol numbers for the names the parsers accept. */
export const L4_PROTOCOLS: Readonly<Record<string, number>> = {
  icmp: 1,
  igmp: 2,
  tcp: 6,
  udp: 17,
  dccp: 33,
  gre: 47,
  esp: 50,
  ah: 51,
  'ipv6-icmp': 58,
  icmpv6: 58,
  sctp: 132,
  udplite: 136,
};

/** Protocols whose packets have ports. */
export const PORT_PROTOCOLS: ReadonlySet<number> = new Set([6, 17, 33, 132, 136]);

/** A concrete packet as the tracer sees it at the start of a hook. */
export interface Packet {
  readonly family: L3;
  readonly iif?: string;
  readonly oif?: string;
  /** Textual IPv4 or IPv6 address. */
  readonly saddr: string;
  readonly daddr: string;
  /** IANA protocol number. */
  readonly l4proto: number;
  readonly sport?: number;
  readonly dport?: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
  /** Default 'new'. */
  readonly ctState?: CtState;
  /** Default 0. */
  readonly mark?: number;
  /** TCP flags bitmask (FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 ECE=64 CWR=128); default SYN for a new tcp packet. */
  readonly tcpFlags?: number;
  /** TCP option kinds the segment carries; default DEFAULT_SYN_TCP_OPTIONS for a SYN, none otherwise. */
  readonly tcpOptions?: readonly number[];
  /** Address types; by default daddr is `local` on input, `unicast` elsewhere, saddr `unicast`. */
  readonly saddrType?: AddrType;
  readonly daddrType?: AddrType;
}

export type FinalVerdict = 'accept' | 'drop' | 'reject';
