/**
 * Helpers shared by the hygiene audit rules: which hook paths to look at, where a rule is, who decided a packet.
 * Work that several rules need (the unreachable-rule analysis, rule lookups per path) is computed once per audit
 * context and kept in a WeakMap keyed on the context, so the three unreachable rules cost one analysis.
 */

import type { Element, Origin, Packet, Ruleset } from '../../../firewall/model.js';
import { hookPath, type TraceHook } from '../../../firewall/tracer.js';
import { parseAddressRange } from '../../../firewall/values.js';
import { type DeciderInfo, decidersOf, formatPacket } from '../../describe.js';
import type { CompiledRuleset, PacketSet } from '../../types.js';
import type { AuditContext, FindingLocation, RelatedLocation } from '../types.js';

/** Hook paths whose verdicts the audit reasons about. prerouting and postrouting are parts of them. */
export const AUDIT_PATHS: readonly TraceHook[] = ['input', 'forward', 'output'];

/**
 * The paths that run at least one base chain of the ruleset (in-scope tables). A rule of a prerouting chain is on
 * both the input and forward paths, a postrouting rule on forward and output: every path holding a rule is listed.
 */
export function activePaths(rs: Ruleset): TraceHook[] {
  const hooks = new Set<string>();
  for (const t of rs.tables) {
    if (t.outOfScope) continue;
    for (const c of t.chains) if (c.base) hooks.add(c.base.hook);
  }
  return AUDIT_PATHS.filter((p) => hookPath(p).some((h) => hooks.has(h)));
}

/** Per-context memo: a value computed once per audit context (contexts are immutable). */
export function memo<T>(compute: (ctx: AuditContext) => T): (ctx: AuditContext) => T {
  const cache = new WeakMap<AuditContext, T>();
  return (ctx) => {
    let v = cache.get(ctx);
    if (v === undefined) {
      v = compute(ctx);
      cache.set(ctx, v);
    }
    return v;
  };
}

/** A rule's (or chain's) source position. */
export function ruleLocation(x: { readonly origin: Origin }): FindingLocation {
  const o = x.origin;
  return { file: o.file, line: o.line, ...(o.column !== undefined ? { column: o.column } : {}) };
}

/** Where a rule sits, for messages: `inet filter/input #3`. */
export function refName(ref: { family: string; table: string; chain: string; position: number }): string {
  return `${ref.family} ${ref.table}/${ref.chain} #${ref.position}`;
}

/** A decider as a related location: the covering rule with its text, or the chain policy. */
export function relatedOfDecider(d: DeciderInfo, role: string): RelatedLocation {
  if (d.kind === 'rule') {
    return {
      message: `${role} (${d.verdict}): ${d.family} ${d.table}/${d.chain} #${d.position}`,
      ...(d.file !== undefined && d.line !== undefined ? { location: { file: d.file, line: d.line } } : {}),
      ...(d.text !== undefined ? { text: d.text } : {}),
    };
  }
  if (d.kind === 'policy') return { message: `${role}: policy ${d.verdict} of ${d.family} ${d.table}/${d.chain}` };
  return { message: `${role}: end of the hook path (accept)` };
}

/** `file:line (rule text)` or `policy drop of inet filter/input`: who decided, in one phrase. */
export function deciderPhrase(d: DeciderInfo): string {
  if (d.kind === 'rule') return `${d.file}:${d.line} (${d.text})`;
  if (d.kind === 'policy') return `the ${d.verdict} policy of ${d.family} ${d.table}/${d.chain}`;
  return 'the end of the hook path';
}

/** The deciders of one packet (one, or none when its verdict is uncertain). */
export function deciderOf(compiled: CompiledRuleset, p: Packet): DeciderInfo | undefined {
  return decidersOf(compiled, compiled.space.fromPacket(p))[0];
}

/** Packets certainly dropped or rejected on the path. */
export function blocked(compiled: CompiledRuleset): PacketSet {
  return compiled.verdict('drop').or(compiled.verdict('reject'));
}

/** Packets not certainly blocked: accepted, or uncertain (an opaque match may let them through). */
export function mayPass(compiled: CompiledRuleset): PacketSet {
  return blocked(compiled).not();
}

export const sym = (value: string): Element => ({ kind: 'symbol', value });
export const num = (lo: number | bigint, hi: number | bigint = lo): Element => ({
  kind: 'range',
  lo: BigInt(lo),
  hi: BigInt(hi),
});
export const cidr = (text: string): Element => {
  const r = parseAddressRange(text);
  if (!r) throw new Error(`not a prefix: ${text}`);
  return { kind: 'range', lo: r.lo, hi: r.hi };
};

/** Internal (not routed on the internet) destinations: RFC 1918, shared, loopback, link-local; ULA and ::1. */
export const INTERNAL_V4: readonly Element[] = [
  cidr('10.0.0.0/8'),
  cidr('172.16.0.0/12'),
  cidr('192.168.0.0/16'),
  cidr('100.64.0.0/10'),
  cidr('127.0.0.0/8'),
  cidr('169.254.0.0/16'),
];
export const INTERNAL_V6: readonly Element[] = [cidr('fc00::/7'), cidr('::1/128'), cidr('fe80::/10')];
/**
 * Private addresses a port forward may point at (RFC 1918, shared address space, ULA). Loopback is left out: the
 * kernel drops packets translated to 127.0.0.0/8 from outside unless route_localnet is set.
 */
export const PRIVATE_V4: readonly Element[] = [
  cidr('10.0.0.0/8'),
  cidr('172.16.0.0/12'),
  cidr('192.168.0.0/16'),
  cidr('100.64.0.0/10'),
];
export const PRIVATE_V6: readonly Element[] = [cidr('fc00::/7')];

/** Sources that are not the internet: internal ranges plus multicast, unspecified and reserved space. */
export function publicSources(ctx: AuditContext, family: 'ipv4' | 'ipv6'): PacketSet {
  const s = ctx.space;
  if (family === 'ipv4') {
    const notPublic = [...INTERNAL_V4, cidr('0.0.0.0/8'), cidr('224.0.0.0/3')];
    return s.fromCube({ nfproto: [sym('ipv4')] }).minus(s.fromCube({ 'ip.saddr': notPublic }));
  }
  const notPublic = [...INTERNAL_V6, cidr('::/128'), cidr('ff00::/8')];
  return s.fromCube({ nfproto: [sym('ipv6')] }).minus(s.fromCube({ 'ip6.saddr': notPublic }));
}

/** `tcp 203.0.113.7:40000 -> 192.0.2.11:443 (https) ct new`, for messages. */
export const packetText = formatPacket;

const PREFER_V4: Partial<Packet> = { saddr: '203.0.113.7', daddr: '192.0.2.11', sport: 40000, iif: 'eth0' };
const PREFER_V6: Partial<Packet> = { saddr: '2001:db8::7', daddr: '2001:db8::11', sport: 40000, iif: 'eth0' };

/**
 * One packet of the set with readable values (documentation addresses, a client port) where the set allows them;
 * `prefer` wins over those defaults.
 */
export function exampleOf(set: PacketSet, prefer: Partial<Packet> = {}): Packet | undefined {
  const first = set.example({ ...PREFER_V4, ...prefer });
  // An ICMPv6 or IPv6 packet reads better with IPv6 addresses (the space also holds odd IPv4 packets of protocol 58).
  if (!first || (first.family === 'ipv4' && first.l4proto !== 58)) return first;
  return set.example({ family: 'ipv6', ...PREFER_V6, ...prefer });
}

/**
 * Packets that did not come in on the loopback interface. Traffic over `lo` is the host talking to itself: an
 * `iifname "lo" accept` must not count as letting the network's ND or ICMP errors in. When no rule names `lo`,
 * the space has no atom for it and nothing is taken out (no rule can treat it apart anyway).
 */
export function notLoopbackIf(ctx: AuditContext): PacketSet {
  const s = ctx.space;
  const lo = s.fromCube({ iifname: [{ kind: 'name', value: 'lo', wildcard: false }] });
  const unnamed = s.fromCube({ iifname: [{ kind: 'name', value: '\u0000rampart-unnamed', wildcard: false }] });
  return lo.equals(unnamed) ? s.all() : lo.not();
}
