/**
 * Hygiene rules about traffic every host needs whatever it serves: replies to its own connections, the ICMP errors
 * path MTU discovery depends on, IPv6 neighbour discovery; and port forwards that open internal addresses to the
 * internet. Each is a handful of set operations on the compiled input or forward path.
 */
import type { Field, L3, NatVerdict, Packet } from '../../../firewall/model.js';
import { formatAddressRange, parseAddress } from '../../../firewall/values.js';
import { decidersOf } from '../../describe.js';
import type { CompiledRuleset, Cube, PacketSet, RuleRef } from '../../types.js';
import type { AuditContext, AuditRule, FindingDraft, FindingLocation, RelatedLocation } from '../types.js';
import {
  activePaths,
  blocked,
  cidr,
  deciderOf,
  deciderPhrase,
  exampleOf,
  mayPass,
  notLoopbackIf,
  num,
  PRIVATE_V4,
  PRIVATE_V6,
  packetText,
  publicSources,
  relatedOfDecider,
  ruleLocation,
  sym,
} from './hygiene-common.js';

const FAMILIES: readonly L3[] = ['ipv4', 'ipv6'];
const famName = (f: L3) => (f === 'ipv4' ? 'IPv4' : 'IPv6');
/** Linux's default ip_local_port_range: the ports the host's own outgoing connections use. */
const EPHEMERAL = num(32768, 60999);

function hasPath(ctx: AuditContext, path: 'input' | 'forward'): boolean {
  return activePaths(ctx.ruleset).includes(path);
}

/** The host's addresses of a family as a destination restriction; undefined = any destination. */
function hostDestinations(ctx: AuditContext, family: L3): Cube | undefined | null {
  if (ctx.addresses.length === 0) return undefined;
  const els = ctx.addresses
    .map((a) => parseAddress(a))
    .filter((a): a is NonNullable<typeof a> => a?.family === family)
    .map((a) => num(a.value));
  // The host has no address of this family: nothing to check there.
  if (els.length === 0) return null;
  return family === 'ipv4' ? { 'ip.daddr': els } : { 'ip6.daddr': els };
}

/** Where a decider sits: the rule's line, or the line of the chain whose policy decided. */
function deciderLocation(ctx: AuditContext, d: ReturnType<typeof deciderOf>): FindingLocation | undefined {
  if (!d) return undefined;
  if (d.kind === 'rule' && d.file !== undefined && d.line !== undefined) return { file: d.file, line: d.line };
  if (d.kind === 'policy') {
    const t = ctx.ruleset.tables.find((x) => x.family === d.family && x.name === d.table);
    const c = t?.chains.find((x) => x.name === d.chain);
    if (c) return ruleLocation(c);
  }
  return undefined;
}

function located(ctx: AuditContext, d: ReturnType<typeof deciderOf>): Pick<FindingDraft, 'location' | 'text'> {
  const location = deciderLocation(ctx, d);
  return {
    ...(location ? { location } : {}),
    ...(d?.kind === 'rule' && d.text !== undefined ? { text: d.text } : {}),
    ...(d?.kind === 'policy' ? { text: `policy ${d.verdict}` } : {}),
  };
}

function relatedDeciders(c: CompiledRuleset, set: PacketSet, role: string, limit = 5): RelatedLocation[] {
  return decidersOf(c, set)
    .slice(0, limit)
    .map((d) => relatedOfDecider(d, role));
}

const verb = (v: string) => (v === 'drop' ? 'dropped' : v === 'reject' ? 'rejected' : 'accepted');

// ---------------------------------------------------------------------------------------------------------------
// no-established-accept

function checkEstablished(ctx: AuditContext): FindingDraft[] {
  if (!hasPath(ctx, 'input')) return [];
  const c = ctx.compiled('input');
  const s = ctx.space;
  const out: FindingDraft[] = [];
  const drops = blocked(c);
  const groups: { label: string; dropped: PacketSet; proto: number }[] = [];
  let anyReply: PacketSet = s.none();
  for (const family of FAMILIES) {
    const dst = hostDestinations(ctx, family);
    if (dst === null) continue;
    for (const [proto, name] of [
      [6, 'tcp'],
      [17, 'udp'],
    ] as const) {
      const replies = s
        .fromCube({
          nfproto: [sym(family)],
          l4proto: [num(proto)],
          dport: [EPHEMERAL],
          'ct.state': [sym('established')],
          ...dst,
        })
        .and(publicSources(ctx, family));
      anyReply = anyReply.or(replies);
      const dropped = replies.and(drops);
      const n = dropped.count();
      // Most replies dropped: a missing or misplaced established accept. A blocklist that drops a few sources
      // (even their replies) is deliberate and stays far below half.
      if (n * 2n >= replies.count() && n > 0n) {
        groups.push({ label: `${name}/${famName(family)}`, dropped, proto });
      }
    }
  }
  if (groups.length > 0) {
    const first = groups[0]!;
    const p = exampleOf(first.dropped, {
      l4proto: first.proto,
      ctState: 'established',
      sport: first.proto === 6 ? 443 : 53,
      dport: 40000,
      tcpFlags: 16,
    });
    const d = p ? deciderOf(c, p) : undefined;
    const all = groups.reduce((acc, g) => acc.or(g.dropped), s.none());
    out.push({
      ...located(ctx, d),
      message: `replies to this host's own connections are dropped on input (established ${groups.map((g) => g.label).join(', ')} replies from internet sources).${p ? ` For example ${packetText(p)} is ${verb(d?.verdict ?? 'drop')} by ${d ? deciderPhrase(d) : 'an opaque match'}.` : ''} Accept ct state established,related near the top of the input chain.`,
      ...(p ? { example: p } : {}),
      related: relatedDeciders(c, all, 'drops replies'),
    });
  }
  // Where the established accept is: the rule that accepts a typical reply.
  const limit = ctx.settings.establishedWithin ?? 10;
  const accepted = anyReply.and(c.verdict('accept'));
  const p = exampleOf(accepted, { l4proto: 6, ctState: 'established', sport: 443, dport: 40000, tcpFlags: 16 });
  const d = p ? deciderOf(c, p) : undefined;
  if (p && d?.kind === 'rule' && d.verdict === 'accept') {
    const before = rulesTraversedBefore(c, d, p, limit + 1);
    if (before !== undefined && before > limit) {
      out.push({
        ...located(ctx, d),
        message: `the rule that accepts established replies (${d.family} ${d.table}/${d.chain} #${d.position}) comes after more than ${limit} rules on the input path: every reply packet is tested against them first, and a broad drop added among them cuts the host's own connections. Move ct state established,related accept to the top.`,
        example: p,
      });
    }
  }
  return out;
}

/** How many rules the packet passes on the path before the given rule (counting stops at `cap`). */
function rulesTraversedBefore(
  c: CompiledRuleset,
  d: { family?: string; table?: string; chain?: string; position?: number },
  p: Packet,
  cap: number,
): number | undefined {
  const one = c.space.fromPacket(p);
  // A packet that does not reach a chain's first rule never enters the chain: none of its rules count, and they
  // are passed over without a test each (fail2ban's jails hold thousands of rules a reply never sees).
  const firstOf = new Map<string, RuleRef>();
  for (const r of c.rules()) {
    const key = `${r.family}\u0000${r.table}\u0000${r.chain}`;
    const first = firstOf.get(key);
    if (!first || r.position < first.position) firstOf.set(key, r);
  }
  const entered = new Map<string, boolean>();
  let n = 0;
  for (const r of c.rules()) {
    if (r.family === d.family && r.table === d.table && r.chain === d.chain && r.position === d.position) return n;
    const key = `${r.family}\u0000${r.table}\u0000${r.chain}`;
    let inChain = entered.get(key);
    if (inChain === undefined) {
      inChain = !c.arrivingWithin(firstOf.get(key)!, one).isEmpty();
      entered.set(key, inChain);
    }
    if (inChain && !c.arrivingWithin(r, one).isEmpty()) n++;
    if (n >= cap) return n;
  }
  return undefined;
}

export const noEstablishedAccept: AuditRule = {
  id: 'no-established-accept',
  defaultSeverity: 'medium',
  title: "Replies to the host's own connections are dropped, or accepted only after many rules",
  rationale:
    'A stateful firewall accepts the replies of connections the host opened (package updates, DNS, API calls) with one early `ct state established,related accept`. Without it, outgoing connections hang; placed late, every packet of every connection is tested against all the rules before it, and a drop added above it breaks running connections.',
  fix: 'Put `ct state established,related accept` (iptables: `-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`) first in the input chain, after an optional `ct state invalid drop`.',
  needs: 'none',
  check: checkEstablished,
};

// ---------------------------------------------------------------------------------------------------------------
// icmp-blocked

function checkIcmp(ctx: AuditContext): FindingDraft[] {
  if (!hasPath(ctx, 'input')) return [];
  const c = ctx.compiled('input');
  const s = ctx.space;
  const pass = mayPass(c);
  const drops = blocked(c);
  const out: FindingDraft[] = [];
  for (const family of FAMILIES) {
    const dst = hostDestinations(ctx, family);
    if (dst === null) continue;
    const pub = publicSources(ctx, family);
    // What the kernel sees when a router on the path says "too big": an ICMP error about a tracked connection,
    // ct state related.
    const tooBig: Cube =
      family === 'ipv4'
        ? { l4proto: [num(1)], 'icmp.type': [num(3)], 'icmp.code': [num(4)], 'ct.state': [sym('related')], ...dst }
        : { l4proto: [num(58)], 'icmpv6.type': [num(2)], 'ct.state': [sym('related')], ...dst };
    const errors = s.fromCube(tooBig).and(pub).and(notLoopbackIf(ctx));
    if (errors.isEmpty() || !errors.and(pass).isEmpty()) continue;
    const echo = s
      .fromCube(
        family === 'ipv4'
          ? { l4proto: [num(1)], 'icmp.type': [num(8)], ...dst }
          : { l4proto: [num(58)], 'icmpv6.type': [num(128)], ...dst },
      )
      .and(pub);
    const echoToo = echo.and(pass).isEmpty();
    const p = exampleOf(errors.and(drops), {
      ctState: 'related',
      icmpType: family === 'ipv4' ? 3 : 2,
      icmpCode: family === 'ipv4' ? 4 : 0,
    });
    const d = p ? deciderOf(c, p) : undefined;
    const what = family === 'ipv4' ? 'ICMP destination-unreachable/fragmentation-needed' : 'ICMPv6 packet-too-big';
    out.push({
      ...located(ctx, d),
      message: `${what} errors are dropped on input for every source (even as ct state related), so path MTU discovery breaks: connections through links with a smaller MTU hang${echoToo ? `; echo-request is dropped too (all ${family === 'ipv4' ? 'ICMP' : 'ICMPv6'} from the internet is blocked)` : ''}.${p ? ` For example ${packetText(p)} is ${verb(d?.verdict ?? 'drop')} by ${d ? deciderPhrase(d) : 'an opaque match'}.` : ''}`,
      ...(p ? { example: p } : {}),
      related: relatedDeciders(c, errors, 'drops them'),
    });
  }
  return out;
}

export const icmpBlocked: AuditRule = {
  id: 'icmp-blocked',
  defaultSeverity: 'medium',
  title: 'ICMP errors needed for path MTU discovery are dropped',
  rationale:
    'TCP finds the largest packet a path carries from ICMP "fragmentation needed" (IPv4) and "packet too big" (IPv6) errors. A firewall that drops all ICMP creates black-hole connections: the handshake works, then transfers stall. Blocking ping is a choice; blocking these errors is a bug.',
  fix: 'Accept `ct state established,related` (it admits errors about existing connections), or explicitly `icmp type destination-unreachable accept` and `icmpv6 type packet-too-big accept`.',
  needs: 'none',
  check: checkIcmp,
};

// ---------------------------------------------------------------------------------------------------------------
// icmpv6-nd-blocked

const ND_TYPES: readonly { type: number; name: string }[] = [
  { type: 133, name: 'nd-router-solicit' },
  { type: 134, name: 'nd-router-advert' },
  { type: 135, name: 'nd-neighbor-solicit' },
  { type: 136, name: 'nd-neighbor-advert' },
];

function checkNd(ctx: AuditContext): FindingDraft[] {
  if (!hasPath(ctx, 'input')) return [];
  const c = ctx.compiled('input');
  const s = ctx.space;
  const pass = mayPass(c);
  const notLo = notLoopbackIf(ctx);
  const blockedTypes: { name: string; set: PacketSet }[] = [];
  for (const t of ND_TYPES) {
    // Conntrack does not track neighbour discovery (it cannot start a connection): on the kernel here (6.18,
    // checked with counters in a network namespace) nftables sees these packets as ct state untracked. Sources are
    // link-local, or unspecified for duplicate address detection.
    const nd = s
      .fromCube({
        nfproto: [sym('ipv6')],
        l4proto: [num(58)],
        'icmpv6.type': [num(t.type)],
        'ip6.saddr': [cidr('fe80::/10'), cidr('::/128')],
        'ct.state': [sym('untracked')],
      })
      .and(notLo);
    if (nd.and(pass).isEmpty()) blockedTypes.push({ name: t.name, set: nd });
  }
  // A router solicitation is for routers: a host that drops it (and forwards nothing) loses nothing. Neighbour
  // solicitations and advertisements (address resolution) and router advertisements (routes, SLAAC) it needs.
  const essential = blockedTypes.filter((b) => b.name !== 'nd-router-solicit' || routes(ctx));
  if (essential.length === 0) return [];
  const first = essential[0]!;
  const lost = [
    ...(essential.some((b) => b.name.startsWith('nd-neighbor')) ? ['resolve neighbours'] : []),
    ...(essential.some((b) => b.name === 'nd-router-advert') ? ['learn routes'] : []),
  ].join(' or ');
  const p = exampleOf(first.set, { saddr: 'fe80::1', daddr: 'ff02::1:ff00:11', ctState: 'untracked' });
  const d = p ? deciderOf(c, p) : undefined;
  const all = blockedTypes.reduce((acc, b) => acc.or(b.set), s.none());
  const onlyRs = essential.length === 1 && first.name === 'nd-router-solicit';
  return [
    {
      ...located(ctx, d),
      // Only router solicitations, on a router: the hosts of its links wait for its next periodic advertisement.
      ...(onlyRs ? { severity: 'medium' as const } : {}),
      message: `IPv6 neighbour discovery is dropped on input from every link-local source (${blockedTypes.map((b) => b.name).join(', ')}): ${onlyRs ? 'this host forwards packets, and the hosts of its links that solicit a router get no answer (they wait for its next periodic advertisement).' : `the host cannot ${lost}, so IPv6 stops working.`}${p ? ` For example ${packetText(p)} is ${verb(d?.verdict ?? 'drop')} by ${d ? deciderPhrase(d) : 'an opaque match'}.` : ''}`,
      ...(p ? { example: p } : {}),
      related: relatedDeciders(c, all, 'drops them'),
    },
  ];
}

/** The host routes: some forward path accepts packets, so it may be the router others solicit. */
function routes(ctx: AuditContext): boolean {
  return hasPath(ctx, 'forward') && !ctx.compiled('forward').verdict('accept').isEmpty();
}

export const icmpv6NdBlocked: AuditRule = {
  id: 'icmpv6-nd-blocked',
  defaultSeverity: 'high',
  title: 'IPv6 neighbour discovery is dropped',
  rationale:
    "IPv6 has no ARP: hosts find each other's link-layer addresses and their routers with ICMPv6 neighbour and router solicitations and advertisements. Dropping them cuts the host off IPv6 entirely. Router solicitations are the exception: only a router needs to receive them, so dropping them alone is reported only when the host forwards packets. Conntrack does not track these messages: current kernels mark them ct state untracked (older ones invalid), so a `ct state untracked drop` (on older kernels `ct state invalid drop`) placed before the ICMPv6 accept drops them too.",
  fix: 'Accept `icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert }` before any `ct state untracked drop` or `ct state invalid drop` (ip6tables: `-p ipv6-icmp --icmpv6-type neighbour-solicitation -j ACCEPT` etc.).',
  needs: 'none',
  check: checkNd,
};

// ---------------------------------------------------------------------------------------------------------------
// nat-exposes-internal

function natFamily(ref: RuleRef, v: NatVerdict): L3 {
  if (ref.family === 'ip') return 'ipv4';
  if (ref.family === 'ip6') return 'ipv6';
  if (v.family) return v.family;
  return v.addr && v.addr.hi > 0xffffffffn ? 'ipv6' : 'ipv4';
}

function inRanges(x: bigint, els: readonly { kind: string; lo?: bigint; hi?: bigint }[]): boolean {
  return els.some((e) => e.lo !== undefined && e.hi !== undefined && e.lo <= x && x <= e.hi);
}

/** The fields of an example packet other than its source, as a cube: the same flow from another source. */
/** p's flow from any source address and port (one quantification: describing p's set cost ~0.6 ms a rule). */
function flowWithoutSource(ctx: AuditContext, p: Packet): PacketSet {
  return ctx.space.anyValueOf(ctx.space.fromPacket(p), SOURCE_FIELDS);
}

const SOURCE_FIELDS: readonly Field[] = ['ip.saddr', 'ip6.saddr', 'sport'];

function checkNat(ctx: AuditContext): FindingDraft[] {
  if (!hasPath(ctx, 'forward')) return [];
  const fwd = ctx.compiled('forward');
  const out: FindingDraft[] = [];
  const local = new Set(ctx.addresses.map((a) => parseAddress(a)?.value).filter((v) => v !== undefined));
  for (const ref of fwd.rules()) {
    const v = ref.rule.verdict;
    if (v?.kind !== 'nat' || v.type !== 'dnat' || !v.addr) continue;
    const family = natFamily(ref, v);
    const to = v.addr.lo;
    if (!inRanges(to, family === 'ipv4' ? PRIVATE_V4 : PRIVATE_V6)) continue;
    // A target that is the host itself is delivered locally (input path); any other goes through forward.
    const c = local.has(to) && hasPath(ctx, 'input') ? ctx.compiled('input') : fwd;
    const hits = local.has(to) ? c.rules().find((r) => r.rule === ref.rule) : ref;
    if (!hits) continue;
    const exposed = c
      .hits(hits)
      .and(c.verdict('accept'))
      .and(ctx.space.fromCube({ 'ct.state': [sym('new')] }))
      .and(publicSources(ctx, family));
    if (exposed.isEmpty()) continue;
    const p = exampleOf(exposed, { daddr: family === 'ipv4' ? '192.0.2.11' : '2001:db8::11' });
    if (!p) continue;
    // From anywhere: the same flow from every public source is translated and accepted.
    if (!exposed.covers(flowWithoutSource(ctx, p).and(publicSources(ctx, family)))) continue;
    const d = deciderOf(c, p);
    const addr = formatAddressRange(family, v.addr.lo, v.addr.hi);
    const port = v.port
      ? `${family === 'ipv6' ? `[${addr}]` : addr}:${v.port.lo === v.port.hi ? v.port.lo : `${v.port.lo}-${v.port.hi}`}`
      : addr;
    const target = port;
    out.push({
      location: ruleLocation(ref.rule),
      text: ref.rule.text,
      message: `port forward to internal address ${target} is reachable from anywhere: ${p.dport !== undefined ? `${protoText(p.l4proto)} dport ${p.dport}` : 'this traffic'} from every public source is translated and then accepted on ${c.hook}.${` For example ${packetText(p)} is translated and ${verb(d?.verdict ?? 'accept')} by ${d ? deciderPhrase(d) : 'an opaque match'}.`}`,
      example: p,
      related: d ? [relatedOfDecider(d, 'accepts the translated traffic')] : [],
    });
  }
  return out;
}

const protoText = (n: number) => (n === 6 ? 'tcp' : n === 17 ? 'udp' : `l4proto ${n}`);

export const natExposesInternal: AuditRule = {
  id: 'nat-exposes-internal',
  defaultSeverity: 'high',
  title: 'A port forward makes an internal address reachable from anywhere',
  rationale:
    'A DNAT rule in prerouting rewrites traffic to a private (RFC 1918, ULA) address behind the firewall; when the forward path then accepts it from any source, a machine that was meant to be internal is on the internet, often without the hardening an exposed host gets. Container runtimes add such forwards silently.',
  fix: 'Restrict the forward to the sources that need it (`ip saddr @partners dnat to ...`, or a forward-chain accept limited to them), or remove it and publish the service through a reverse proxy.',
  needs: 'none',
  check: checkNat,
};

export const TRAFFIC_RULES: readonly AuditRule[] = [
  noEstablishedAccept,
  icmpBlocked,
  icmpv6NdBlocked,
  natExposesInternal,
];
