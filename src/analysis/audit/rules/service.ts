/**
 * Service and exposure rules: is what must be reachable reachable (public services, listening sockets, anything at
 * all), and is what must not be wide open closed (admin ports, any-any accepts, broad sources, one family open where
 * the other is filtered). Every answer is a packet set of the input hook computed by the engine; the sets used are
 * described in service-sets.ts and the semantics of each rule in docs/rules/<id>.md.
 */
import type { PortDecl } from '../../../config/types.js';
import type { L3, Packet } from '../../../firewall/model.js';
import { type AddrRange, parseAddressRange } from '../../../firewall/values.js';
import { formatPacket } from '../../describe.js';
import type { CompiledRuleset, Decider, PacketSet, RuleRef } from '../../types.js';
import type { AuditContext, AuditRule, FindingDraft, RelatedLocation } from '../types.js';
import {
  auditFamilies,
  cached,
  deciderKey,
  decidersAsLocations,
  decisionsBySize,
  describeSources,
  exampleOf,
  exists,
  FAMILIES,
  familyName,
  fieldRanges,
  fieldsExcept,
  forallWithin,
  formatPortRanges,
  formatRanges,
  hostAddresses,
  inbound,
  internetSources,
  isFragment,
  joinAnd,
  locate,
  type PortSpec,
  portSpec,
  possibleSources,
  preferFor,
  rulesetFamilies,
  saddrField,
  sourceRanges,
  sourcesOutside,
  unfilteredInput,
  wholeBlocks,
  widestPrefix,
} from './service-sets.js';

// ---------------------------------------------------------------------------------------------------------------
// Shared pieces

const input = (ctx: AuditContext): CompiledRuleset => ctx.compiled('input');

/** Packets whose final verdict may be accept: certainly accepted, or depending on a rate limit or other opaque match. */
const mayAccept = (ctx: AuditContext): PacketSet =>
  cached(ctx, 'mayAccept', () => input(ctx).verdict('accept').or(input(ctx).uncertain()));

/**
 * Packets certainly accepted by a rule or a policy: what the exposure rules report (a rate-limited accept is not
 * proof of exposure). Packets no base chain decides are unfiltered-input's: one finding for that one cause.
 */
const accepted = (ctx: AuditContext): PacketSet =>
  cached(ctx, 'accepted', () => input(ctx).verdict('accept').minus(unfilteredInput(ctx)));

const blockedBy = (ctx: AuditContext): PacketSet =>
  cached(ctx, 'blocked', () => input(ctx).verdict('drop').or(input(ctx).verdict('reject')));

function verb(ctx: AuditContext, set: PacketSet): string {
  const c = input(ctx);
  const dropped = !set.and(c.verdict('drop')).isEmpty();
  const rejected = !set.and(c.verdict('reject')).isEmpty();
  return dropped && rejected ? 'dropped or rejected' : rejected ? 'rejected' : 'dropped';
}

/** A preferred destination for examples: the host's first address of the family, else a documentation address. */
function preferDaddr(ctx: AuditContext, fam: L3): string {
  const a = ctx.addresses.find((x) => parseAddressRange(x)?.family === fam);
  return a ?? (fam === 'ipv4' ? '192.0.2.10' : '2001:db8::10');
}

function example(ctx: AuditContext, set: PacketSet, fam: L3, extra: Partial<Packet> = {}): Packet | undefined {
  return exampleOf(set, preferFor(fam, { daddr: preferDaddr(ctx, fam), ...extra }));
}

const familyOf = (set: PacketSet, fam: L3): PacketSet =>
  set.and(set.space.fromCube({ nfproto: [{ kind: 'symbol', value: fam }] }));

// ---------------------------------------------------------------------------------------------------------------
// Blocklists

/**
 * A blocklist is a drop (or reject) rule that names a small, explicit list of sources: at most a /8 worth of IPv4
 * addresses (16.7 million, as broad-source-accept's threshold) or a /32 worth of IPv6, given as a named set, a set
 * literal or prefixes. Dropping those before a public service is deliberate, not an outage nor an IPv4/IPv6
 * asymmetry: the service rules report it as info at most, and the exposure rules do not let it hide an open port.
 */
export const BLOCKLIST_MAX: Readonly<Record<L3, bigint>> = { ipv4: 1n << 24n, ipv6: 1n << 96n };

interface Blocklist {
  readonly fam: L3;
  readonly addresses: bigint;
  readonly set?: string;
}

function blocklistOf(rule: RuleRef['rule']): Blocklist | undefined {
  const v = rule.verdict;
  if (v?.kind !== 'drop' && v?.kind !== 'reject') return undefined;
  for (const m of rule.matches) {
    if (m.kind !== 'field' || m.op !== 'eq' || (m.field !== 'ip.saddr' && m.field !== 'ip6.saddr')) continue;
    const fam: L3 = m.field === 'ip.saddr' ? 'ipv4' : 'ipv6';
    const rs = m.values.flatMap((e) => (e.kind === 'range' ? [{ lo: e.lo, hi: e.hi }] : []));
    rs.sort((x, y) => (x.lo < y.lo ? -1 : x.lo > y.lo ? 1 : 0));
    let n = 0n;
    let end = -1n;
    for (const r of rs) {
      const lo = r.lo > end ? r.lo : end + 1n;
      if (r.hi >= lo) n += r.hi - lo + 1n;
      if (r.hi > end) end = r.hi;
    }
    if (n === 0n || n > BLOCKLIST_MAX[fam]) return undefined;
    return { fam, addresses: n, ...(m.set !== undefined ? { set: m.set } : {}) };
  }
  return undefined;
}

/** The blocklist rules of the input path, by decider key. */
function blocklists(ctx: AuditContext): Map<string, Blocklist> {
  return cached(ctx, 'blocklists', () => {
    const out = new Map<string, Blocklist>();
    for (const ref of input(ctx).rules()) {
      const b = blocklistOf(ref.rule);
      if (b) out.set(deciderKey(ref), b);
    }
    return out;
  });
}

/** Packets a blocklist drops: the exposure rules count them as open when they ask "open to every source?". */
function blocklisted(ctx: AuditContext): PacketSet {
  return cached(ctx, 'blocklisted', () => {
    const bl = blocklists(ctx);
    if (bl.size === 0) return ctx.space.none();
    return input(ctx).decidedBy((d) => bl.has(deciderKey(d)));
  });
}

/** The blocklists that decide all of a set's packets, or undefined when something else decides some of them. */
function blockedByBlocklists(ctx: AuditContext, set: PacketSet): Blocklist[] | undefined {
  const bl = blocklists(ctx);
  const out: Blocklist[] = [];
  for (const d of input(ctx).decisions(set)) {
    const b = bl.get(deciderKey(d.decider));
    if (!b) return undefined;
    out.push(b);
  }
  return out.length > 0 ? out : undefined;
}

export const DEFAULT_ADMIN_PORTS: readonly PortDecl[] = [
  22, 3389, 3306, 5432, 6379, 11211, 27017, 9200, 2375, 2376,
].map((p) => ({ proto: 'tcp' as const, from: p, to: p, text: `tcp/${p}` }));

const ADMIN_PORT_NAMES: Readonly<Record<number, string>> = {
  22: 'SSH',
  3389: 'RDP',
  3306: 'MySQL',
  5432: 'PostgreSQL',
  6379: 'Redis',
  11211: 'memcached',
  27017: 'MongoDB',
  9200: 'Elasticsearch',
  2375: 'Docker API',
  2376: 'Docker API (TLS)',
};

const adminPorts = (ctx: AuditContext): readonly PortDecl[] => ctx.settings.adminPorts ?? DEFAULT_ADMIN_PORTS;

const portLabel = (p: PortDecl): string => {
  const n = p.proto === 'tcp' && p.from === p.to ? ADMIN_PORT_NAMES[p.from] : undefined;
  return n ? `${p.text} (${n})` : p.text;
};

/** Public ports of the declared services, as specs. */
const publicPorts = (ctx: AuditContext): PortSpec[] => ctx.services.flatMap((s) => s.public.map(portSpec));

function overlaps(a: PortSpec, b: PortSpec): boolean {
  return a.proto === b.proto && a.from <= b.to && b.from <= a.to;
}

/** The packets of some port specs (every other field free). */
function portsSet(ctx: AuditContext, ports: readonly PortSpec[]): PacketSet {
  let s = ctx.space.none();
  for (const p of ports) {
    s = s.or(
      ctx.space.fromCube({
        l4proto: [{ kind: 'range', lo: BigInt(p.proto), hi: BigInt(p.proto) }],
        dport: [{ kind: 'range', lo: BigInt(p.from), hi: BigInt(p.to) }],
      }),
    );
  }
  return s;
}

const PROTO_LABEL: Readonly<Record<number, string>> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

/** `tcp dport 22, 80-90; udp dport 53` for the connections of a set. */
function describePorts(set: PacketSet): string {
  const parts: string[] = [];
  for (const proto of [6, 17, 132]) {
    const s = set.and(set.space.fromCube({ l4proto: [{ kind: 'range', lo: BigInt(proto), hi: BigInt(proto) }] }));
    if (s.isEmpty()) continue;
    const rs = fieldRanges(s, 'dport');
    const all = rs.length === 1 && rs[0]?.lo === 0n && rs[0]?.hi === 65535n;
    parts.push(all ? `every ${PROTO_LABEL[proto]} port` : `${PROTO_LABEL[proto]}/${formatPortRanges(rs)}`);
  }
  return parts.join(', ');
}

function dedupeRelated(rs: readonly RelatedLocation[]): RelatedLocation[] {
  const seen = new Set<string>();
  return rs.filter((r) => {
    const k = `${r.message}|${r.location?.file}:${r.location?.line}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// public-service-blocked

interface BlockedPart {
  readonly fam: L3;
  readonly full: boolean;
  readonly bad: PacketSet;
  /** Where and how: `to 192.0.2.11 is dropped for all sources`, without the port. */
  readonly dests: string;
  readonly verb: string;
  readonly sources?: string;
  /** Every source it blocks is on a blocklist (blocklistOf): how many addresses, from which named sets. */
  readonly listed?: { readonly count: bigint; readonly sets: readonly string[] };
}

interface BlockedPort {
  readonly decl: PortDecl;
  readonly parts: BlockedPart[];
  readonly lead: BlockedPart;
  readonly uncertain: boolean;
}

/** `tcp/80 and tcp/443 to 192.0.2.11 and 2001:db8::11 are dropped for all sources` (families merged when alike). */
function blockedText(ports: readonly PortDecl[], parts: readonly BlockedPart[]): string {
  const what = joinAnd(ports.map((p) => p.text));
  const be = ports.length > 1 ? 'are' : 'is';
  const first = parts[0] as BlockedPart;
  if (parts.every((p) => p.full && p.verb === first.verb)) {
    return `${what} to ${joinAnd(parts.map((p) => p.dests))} ${be} ${first.verb} for all sources`;
  }
  return parts
    .map((p) => {
      if (p.listed) {
        const n = p.listed.count;
        const sets = p.listed.sets.length > 0 ? ` (${p.listed.sets.map((x) => `@${x}`).join(', ')})` : '';
        return `${what} to ${p.dests} ${be} closed to ${n} listed ${familyName(p.fam)} source${n === 1n ? '' : 's'}${sets}`;
      }
      return `${what} to ${p.dests} ${be} ${p.verb} for ${p.full ? 'all sources' : `${p.sources} only`}`;
    })
    .join('; ');
}

const publicServiceBlocked: AuditRule = {
  id: 'public-service-blocked',
  defaultSeverity: 'critical',
  title: 'A declared public service is not reachable from the internet',
  rationale:
    'A service declared public (host, protocol, port) must accept new connections from any internet address. A drop or reject in its way is an outage: the founding incident was exactly this, after a "block all incoming" change.',
  fix: 'Add (or move above the drop) an accept for the service port, e.g. `tcp dport { 80, 443 } ct state new accept`, or correct the service declaration in rampart.yaml.',
  needs: 'config',
  check(ctx) {
    const c = input(ctx);
    const ok = mayAccept(ctx);
    const fams = auditFamilies(ctx);
    const out: FindingDraft[] = [];
    for (const svc of ctx.services) {
      // One finding per cause: the ports of a service blocked by the same rule (or policy), alike per family.
      const groups = new Map<string, BlockedPort[]>();
      for (const decl of svc.public) {
        const port = portSpec(decl);
        const parts: BlockedPart[] = [];
        let uncertain = false;
        for (const fam of fams) {
          const daddrs = hostAddresses(ctx, fam);
          const q = inbound(ctx, { family: fam, sources: internetSources(fam), daddrs, ports: [port] });
          if (q.isEmpty()) continue;
          if (!q.and(c.uncertain()).isEmpty()) uncertain = true;
          // A source reaches the service when some interface accepts its connection: which interface faces the
          // internet is not declared, so accepting on eth0 only is not a block.
          const reached = exists(q.and(ok), ['iifname']).and(q);
          const bad = q.minus(reached);
          if (bad.isEmpty()) continue;
          const full = reached.isEmpty();
          const dests =
            daddrs.length > 0 ? formatRanges(sourceLikeRanges(bad, fam, 'daddr')) : `this host (${familyName(fam)})`;
          const lists = full ? undefined : blockedByBlocklists(ctx, bad);
          const srcs = sourceRanges(bad, fam);
          parts.push({
            fam,
            full,
            bad,
            dests,
            verb: verb(ctx, bad),
            ...(full ? {} : { sources: formatRanges(srcs) }),
            ...(lists
              ? {
                  listed: {
                    count: srcs.reduce((n, r) => n + r.hi - r.lo + 1n, 0n),
                    sets: [...new Set(lists.flatMap((l) => (l.set !== undefined ? [l.set] : [])))],
                  },
                }
              : {}),
          });
        }
        if (parts.length === 0) continue;
        const lead = parts.find((p) => p.full) ?? (parts[0] as BlockedPart);
        const first = decisionsBySize(c, lead.bad, ctx.ruleset)[0];
        const shape = parts
          .map((p) => `${p.fam}|${p.full}|${p.dests}|${p.verb}|${p.sources ?? ''}|${p.listed?.count ?? ''}`)
          .join(';');
        const key = `${first ? deciderKey(first.d.decider) : ''}|${shape}`;
        const b: BlockedPort = { decl, parts, lead, uncertain };
        const g = groups.get(key);
        if (g) g.push(b);
        else groups.set(key, [b]);
      }
      for (const bs of groups.values()) {
        const lead = (bs[0] as BlockedPort).lead;
        const { main } = decidersAsLocations(ctx, c, lead.bad);
        const related = dedupeRelated(
          bs.flatMap((b) => b.parts.flatMap((p) => decidersAsLocations(ctx, c, p.bad).related)),
        );
        const examples = bs.map((b) => {
          const port = portSpec(b.decl);
          return example(ctx, b.lead.bad, b.lead.fam, { l4proto: port.proto, dport: port.from });
        });
        if (bs.length > 1) {
          bs.forEach((b, i) => {
            const ex = examples[i];
            related.push({
              message: `${blockedText([b.decl], b.parts)}${ex ? `; example: ${formatPacket(ex)}` : ''}`,
              ...(main?.location ? { location: main.location } : {}),
              detail: true,
            });
          });
        }
        const ex = examples[0];
        out.push({
          message: `service ${svc.name}: ${blockedText(
            bs.map((b) => b.decl),
            (bs[0] as BlockedPort).parts,
          )}`,
          // A blocklist in front of the service is deliberate: info. A partial block otherwise: medium.
          ...(bs.some((b) => b.parts.some((p) => p.full))
            ? {}
            : bs.every((b) => b.parts.every((p) => p.listed))
              ? { severity: 'info' as const }
              : { severity: 'medium' as const }),
          ...(main?.location ? { location: main.location } : {}),
          ...(main?.text ? { text: main.text } : {}),
          ...(ex ? { example: ex } : {}),
          related,
          ...(bs.some((b) => b.uncertain) ? { uncertain: true } : {}),
        });
      }
    }
    return out;
  },
};

/** The destination (or source) address ranges of a set for one family. */
function sourceLikeRanges(set: PacketSet, fam: L3, which: 'saddr' | 'daddr'): AddrRange[] {
  const field = which === 'saddr' ? saddrField(fam) : fam === 'ipv4' ? 'ip.daddr' : 'ip6.daddr';
  return fieldRanges(familyOf(set, fam), field).map((x) => ({ family: fam, ...x }));
}

// ---------------------------------------------------------------------------------------------------------------
// all-inbound-blocked

/** New inbound connections from any possible source to the host, on every audited family (admin ports excluded). */
function allInbound(ctx: AuditContext, fams: readonly L3[]): PacketSet {
  let q = ctx.space.none();
  for (const fam of fams) q = q.or(inbound(ctx, { family: fam, daddrs: hostAddresses(ctx, fam) }));
  return q;
}

function isLoopback(address: string): boolean {
  const [addr, zone] = splitZone(address);
  if (zone === 'lo' || addr === 'localhost') return true;
  const a = parseAddressRange(addr);
  if (!a) return false;
  if (a.family === 'ipv4') return a.lo >> 24n === 127n;
  return a.lo === 1n;
}

function splitZone(address: string): [string, string | undefined] {
  const t = address.trim().replace(/^\[/, '').replace(/\]$/, '');
  const i = t.indexOf('%');
  return i < 0 ? [t, undefined] : [t.slice(0, i), t.slice(i + 1)];
}

const allInboundBlocked: AuditRule = {
  id: 'all-inbound-blocked',
  defaultSeverity: 'high',
  title: 'No new inbound connection is accepted on any port (admin ports aside)',
  rationale:
    'A host that accepts no new connection from outside, except perhaps SSH for its administrators, serves nobody. This is what a "block all incoming" change does, and it is the founding outage: the web server kept only SSH open. Critical when the host declares services or listens on non-loopback sockets, high otherwise.',
  fix: 'Accept the ports the host serves before the final drop (e.g. `tcp dport { 80, 443 } ct state new accept`). If the host really serves nothing from outside, disable this rule for it with a justification.',
  needs: 'none',
  check(ctx) {
    const fams = auditFamilies(ctx);
    if (fams.length === 0) return [];
    const c = input(ctx);
    const admin = portsSet(ctx, adminPorts(ctx).map(portSpec));
    const all = allInbound(ctx, fams);
    const q = all.minus(admin);
    if (q.isEmpty() || !q.and(mayAccept(ctx)).isEmpty()) return [];
    const adminOpen = all.and(admin).and(mayAccept(ctx));
    const { main, related } = decidersAsLocations(ctx, c, q);
    const lead = fams[0] as L3;
    const ex = example(ctx, familyOf(q, lead), lead, { l4proto: 6, dport: 443 });
    const serves =
      ctx.services.length > 0 ||
      (ctx.listening ?? []).some(
        (s) =>
          !isLoopback(s.address) &&
          !adminPorts(ctx).some(
            (p) => PROTO_LABEL[portSpec(p).proto] === s.proto && p.from <= s.port && s.port <= p.to,
          ),
      );
    const famText = fams.map(familyName).join(' and ');
    const except = adminOpen.isEmpty() ? '' : ` (only admin ports are open: ${describePorts(adminOpen)})`;
    return [
      {
        message: `no new inbound connection is accepted on any port over ${famText}: every tcp, udp and sctp connection from outside is ${verb(ctx, q)}${except}`,
        ...(serves ? { severity: 'critical' as const } : {}),
        ...(main?.location ? { location: main.location } : {}),
        ...(main?.text ? { text: main.text } : {}),
        ...(ex ? { example: ex } : {}),
        related,
      },
    ];
  },
};

// ---------------------------------------------------------------------------------------------------------------
// listening-port-blocked

/** Client sockets that listen on a wildcard address by design and only receive replies (DHCP clients). */
const CLIENT_SOCKETS = new Set(['udp/68', 'udp/546']);

const listeningPortBlocked: AuditRule = {
  id: 'listening-port-blocked',
  defaultSeverity: 'high',
  title: 'A socket listens on a port that the firewall drops for every source',
  rationale:
    'A process listening on a non-loopback address expects connections. When the firewall drops every new connection to that port, either the service is broken for its clients (an outage nobody declared) or it should not listen on a public address at all.',
  fix: 'Accept the port from the sources that need it, or bind the service to 127.0.0.1/::1 (or stop it) if nobody outside should reach it.',
  needs: 'live',
  check(ctx) {
    const c = input(ctx);
    const filtered = rulesetFamilies(ctx.ruleset);
    const out: FindingDraft[] = [];
    const seen = new Set<string>();
    for (const s of ctx.listening ?? []) {
      if (isLoopback(s.address) || CLIENT_SOCKETS.has(`${s.proto}/${s.port}`)) continue;
      const [addr] = splitZone(s.address);
      const wildcard = addr === '' || addr === '*' || addr === '0.0.0.0' || addr === '::';
      const bound = wildcard ? undefined : parseAddressRange(addr);
      if (!wildcard && !bound) continue;
      // `::` and `*` take IPv4 too (bindv6only is off by default).
      const fams: L3[] = bound ? [bound.family] : addr === '0.0.0.0' ? ['ipv4'] : [...FAMILIES];
      const key = `${s.proto}/${s.port}@${bound ? addr : fams.join('+')}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const port: PortSpec = { proto: s.proto === 'tcp' ? 6 : 17, from: s.port, to: s.port };
      let q = ctx.space.none();
      for (const fam of fams) {
        if (!filtered.includes(fam)) continue;
        const daddrs = bound ? [bound] : hostAddresses(ctx, fam);
        q = q.or(inbound(ctx, { family: fam, daddrs, ports: [port] }));
      }
      if (q.isEmpty() || !q.and(mayAccept(ctx)).isEmpty()) continue;
      const { main, related } = decidersAsLocations(ctx, c, q);
      const fam = fams.find((f) => filtered.includes(f)) as L3;
      const ex = example(ctx, familyOf(q, fam), fam, {
        l4proto: port.proto,
        dport: s.port,
        ...(bound ? { daddr: addr } : {}),
      });
      out.push({
        message: `${s.proto}/${s.port}${s.process ? ` (${s.process})` : ''} listens on ${s.address} but new connections to it are ${verb(ctx, q)} for every source`,
        ...(main?.location ? { location: main.location } : {}),
        ...(main?.text ? { text: main.text } : {}),
        ...(ex ? { example: ex } : {}),
        related,
      });
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------------------
// admin-port-exposed

interface AdminExposure {
  readonly decl: PortDecl;
  readonly exposed: PacketSet;
  readonly text: string;
  /** Some connections to the port depend on opaque matches (rate limits...): there may be more exposure. */
  readonly uncertain: boolean;
  readonly lead: L3;
  /** Accepted only on these named interfaces (`iifname "br0"`), which may be internal: the config does not say. */
  readonly interfaces?: readonly string[];
}

/**
 * Admin ports accepted from outside the admin networks; when none are declared, admin ports accepted from every
 * internet address (in some context: destination, interface), since a restricted source list cannot be judged
 * without knowing which networks are the admins'.
 */
function adminExposures(ctx: AuditContext): AdminExposure[] {
  return cached(ctx, 'adminExposures', () => {
    const ok = accepted(ctx);
    const pub = publicPorts(ctx);
    const fams = auditFamilies(ctx);
    const nets = ctx.adminNetworks;
    const out: AdminExposure[] = [];
    for (const decl of adminPorts(ctx)) {
      const port = portSpec(decl);
      // A port declared public is meant to be reachable from anywhere (a git server's SSH, say).
      if (pub.some((p) => overlaps(p, port))) continue;
      let exposed = ctx.space.none();
      let domain = ctx.space.none();
      const texts: string[] = [];
      let lead: L3 | undefined;
      let uncertain = false;
      for (const fam of fams) {
        const sources = nets.length > 0 ? sourcesOutside(fam, nets) : internetSources(fam);
        const q = inbound(ctx, { family: fam, sources, daddrs: hostAddresses(ctx, fam), ports: [port] });
        if (!q.and(input(ctx).uncertain()).isEmpty()) uncertain = true;
        // Ports an any-any accept opens are that finding's: it names them.
        let e = q.and(ok).minus(anyAnyOpened(ctx));
        // Open to every source, a blocklist in front aside (it does not close the port to the world).
        if (nets.length === 0) e = forallWithin(e.or(q.and(blocklisted(ctx))), q, [saddrField(fam)]).and(e);
        if (e.isEmpty()) continue;
        lead = lead ?? fam;
        exposed = exposed.or(e);
        domain = domain.or(q);
        texts.push(describeSources(sourceRanges(e, fam), sources, fam));
      }
      if (!lead) continue;
      const where =
        nets.length > 0
          ? `${texts.join(' and ')} outside the admin networks (${formatRanges(nets.flatMap((n) => parseAddressRange(n) ?? []))})`
          : `${texts.join(' and ')} on the internet (no admin networks declared)`;
      const names = interfaceNames(exposed, domain);
      const named = names.length > 0 && !names.includes('(any other)');
      const text = named ? `${where}, arriving on ${names.join(', ')} only` : where;
      out.push({ decl, exposed, text, uncertain, lead, ...(named ? { interfaces: names } : {}) });
    }
    return out;
  });
}

const adminPortExposed: AuditRule = {
  id: 'admin-port-exposed',
  defaultSeverity: 'high',
  title: 'An SSH, RDP, database or cache port is accepted from outside the admin networks',
  rationale:
    'Administration and data ports are the first thing scanners try: SSH and RDP are brute-forced, and Redis, memcached, MongoDB, Elasticsearch and the Docker API have been mass-exploited when left open. They should be reachable only from the declared admin networks (or a VPN).',
  fix: 'Restrict the accept to the admin networks, e.g. `ip saddr 198.51.100.0/24 tcp dport 22 ct state new accept`, and declare them under `adminNetworks:` in rampart.yaml.',
  needs: 'none',
  check(ctx) {
    const c = input(ctx);
    // One finding per cause: exposures accepted by the same rule (or policy) from the same sources are one finding
    // that lists the ports; each port's detail stays in the related locations (JSON, SARIF).
    const groups = new Map<string, { xs: AdminExposure[]; accepts: ReturnType<typeof decisionsBySize> }>();
    for (const x of adminExposures(ctx)) {
      const accepts = decisionsBySize(c, x.exposed, ctx.ruleset).filter((d) => d.d.verdict === 'accept');
      const key = `${accepts[0] ? deciderKey(accepts[0].d.decider) : ''}|${x.text}`;
      const g = groups.get(key);
      if (g) g.xs.push(x);
      else groups.set(key, { xs: [x], accepts });
    }
    return [...groups.values()].map(({ xs, accepts }): FindingDraft => {
      const main = accepts[0] ? locate(ctx, accepts[0].d.decider) : undefined;
      const related: RelatedLocation[] = accepts.slice(0, 5).map(({ d }) => {
        const l = locate(ctx, d.decider);
        return {
          message: `accepts ${xs.length > 1 ? 'them' : 'it'}: ${l.label}`,
          ...(l.location ? { location: l.location } : {}),
          ...(l.text ? { text: l.text } : {}),
        };
      });
      const examples = xs.map((x) => {
        const port = portSpec(x.decl);
        return example(ctx, familyOf(x.exposed, x.lead), x.lead, { l4proto: port.proto, dport: port.from });
      });
      if (xs.length > 1) {
        xs.forEach((x, i) => {
          const ex = examples[i];
          related.push({
            message: `${portLabel(x.decl)} is accepted from ${x.text}${ex ? `; example: ${formatPacket(ex)}` : ''}`,
            ...(main?.location ? { location: main.location } : {}),
            detail: true,
          });
        });
      }
      const ex = examples[0];
      const lead = xs[0] as AdminExposure;
      return {
        message: `${joinAnd(xs.map((x) => portLabel(x.decl)))} ${xs.length > 1 ? 'are' : 'is'} accepted from ${lead.text}`,
        ...(main?.location ? { location: main.location } : {}),
        ...(main?.text ? { text: main.text } : {}),
        ...(ex ? { example: ex } : {}),
        related,
        ...(xs.some((x) => x.uncertain) ? { uncertain: true } : {}),
        // Only on named interfaces (a LAN bridge, a VPN): exposed only if one of them faces the internet, which the
        // ruleset does not say.
        ...(xs.every((x) => x.interfaces) ? { severity: 'medium' as const } : {}),
      };
    });
  },
};

// ---------------------------------------------------------------------------------------------------------------
// any-any-accept

/** The fields "regardless of source and port" quantifies over. */
const SOURCE_AND_PORT = ['ip.saddr', 'ip6.saddr', 'dport'] as const;

function anyAnyDomain(ctx: AuditContext, fams: readonly L3[]): PacketSet {
  let n = ctx.space.none();
  for (const fam of fams) {
    n = n.or(inbound(ctx, { family: fam, sources: internetSources(fam), daddrs: hostAddresses(ctx, fam) }));
  }
  return n;
}

/** The input interfaces a set is limited to (`(any other)` for the unnamed rest), or [] when it has every one. */
function interfaceNames(set: PacketSet, domain: PacketSet): string[] {
  const ifaces = exists(set, fieldsExcept(['iifname']));
  if (ifaces.covers(exists(domain, fieldsExcept(['iifname'])))) return [];
  const names = new Set<string>();
  for (const cube of ifaces.cubes(64).cubes) {
    for (const e of cube.iifname ?? []) {
      if (e.kind === 'name')
        names.add(/^other\d+$/.test(e.value) ? '(any other)' : `${e.value}${e.wildcard ? '*' : ''}`);
    }
  }
  return [...names];
}

/** `tcp and udp over IPv4 and IPv6 on iif eth1`: the context (protocol, family, interface) of an open set. */
function contextText(ctx: AuditContext, set: PacketSet, domain: PacketSet): string {
  const protos = [6, 17, 132].filter(
    (p) => !set.and(ctx.space.fromCube({ l4proto: [{ kind: 'range', lo: BigInt(p), hi: BigInt(p) }] })).isEmpty(),
  );
  const fams = FAMILIES.filter((f) => !familyOf(set, f).isEmpty());
  const names = interfaceNames(set, domain);
  const ifText = names.length > 0 ? ` arriving on ${names.join(', ')}` : '';
  return `${protos.map((p) => PROTO_LABEL[p]).join(', ')} over ${fams.map(familyName).join(' and ')}${ifText}`;
}

interface AnyAny {
  readonly decider: Decider;
  /** The new connections from any source to any port it accepts. */
  readonly witness: PacketSet;
}

/** The rules and policies that accept every new connection from any internet source to any port (some context). */
function anyAnyDecisions(ctx: AuditContext): AnyAny[] {
  return cached(ctx, 'anyAny', () => {
    const fams = auditFamilies(ctx);
    if (fams.length === 0) return [];
    const c = input(ctx);
    const domain = anyAnyDomain(ctx, fams);
    const fields = [...SOURCE_AND_PORT];
    // Contexts (family, protocol, interface, destination...) in which every internet source reaches every port.
    const open = forallWithin(domain.and(accepted(ctx).or(blocklisted(ctx))), domain, fields).and(accepted(ctx));
    if (open.isEmpty()) return [];
    const out: AnyAny[] = [];
    for (const { d } of decisionsBySize(c, open, ctx.ruleset)) {
      if (d.verdict !== 'accept' || d.decider.kind === 'path-end') continue;
      let witness: PacketSet;
      if (d.decider.kind === 'rule') {
        // The rule itself must not look at source or port: its own match, within the domain, holds for every
        // source and port. (A port accept that happens to complete an open set is not an any-any rule.)
        const own = forallWithin(c.matchSet(d.decider).and(domain), domain, fields);
        witness = own.and(open).and(c.hits(d.decider));
        if (witness.isEmpty()) continue;
      } else {
        witness = d.packets;
      }
      out.push({ decider: d.decider, witness });
    }
    return out;
  });
}

/** Packets an any-any accept decides: admin-port-exposed leaves them to any-any-accept, which names the ports. */
function anyAnyOpened(ctx: AuditContext): PacketSet {
  return cached(ctx, 'anyAnyOpened', () => {
    const keys = new Set(anyAnyDecisions(ctx).map((a) => deciderKey(a.decider)));
    if (keys.size === 0) return ctx.space.none();
    return input(ctx).decidedBy((d) => keys.has(deciderKey(d)));
  });
}

/** The admin ports a set of accepted packets opens to every source: `tcp/22 (SSH), tcp/3306 (MySQL)`. */
function adminPortsIn(ctx: AuditContext, set: PacketSet): string[] {
  return adminPorts(ctx)
    .filter((p) => !set.and(portsSet(ctx, [portSpec(p)])).isEmpty())
    .map(portLabel);
}

const anyAnyAccept: AuditRule = {
  id: 'any-any-accept',
  defaultSeverity: 'high',
  title: 'A rule (or policy) accepts every new connection regardless of source and port',
  rationale:
    'An accept that looks at neither the source nor the port opens every service of the host, including the ones nobody meant to publish (databases, debug ports, a forgotten admin panel). Often left over from troubleshooting ("allow all for now").',
  fix: 'Replace it with accepts for the ports the host serves, restricted to the sources that need them; keep `iif lo accept` and `ct state established,related accept`, which this rule does not report.',
  needs: 'none',
  check(ctx) {
    const fams = auditFamilies(ctx);
    if (fams.length === 0) return [];
    const domain = anyAnyDomain(ctx, fams);
    return anyAnyDecisions(ctx).map(({ decider, witness }): FindingDraft => {
      const l = locate(ctx, decider);
      const fam = FAMILIES.find((f) => !familyOf(witness, f).isEmpty()) as L3;
      const ex = example(ctx, familyOf(witness, fam), fam, { l4proto: 6, dport: 5432 });
      const who = decider.kind === 'rule' ? 'accepts' : `(${l.label}) accepts`;
      const admin = adminPortsIn(ctx, witness);
      return {
        message: `${decider.kind === 'rule' ? 'rule' : 'the base chain policy'} ${who} every new connection from any source to any port: ${contextText(ctx, witness, domain)}${admin.length > 0 ? `; admin ports among them: ${joinAnd(admin)}` : ''}`,
        ...(l.location ? { location: l.location } : {}),
        ...(l.text ? { text: l.text } : {}),
        ...(ex ? { example: ex } : {}),
      };
    });
  },
};

// ---------------------------------------------------------------------------------------------------------------
// broad-source-accept

const broadSourceAccept: AuditRule = {
  id: 'broad-source-accept',
  defaultSeverity: 'medium',
  title: 'A non-public port is accepted from a very wide source range (/8 or wider)',
  rationale:
    'A source range of a /8 or wider (16 million IPv4 addresses) is rarely what was meant for an internal port: "10.0.0.0/8" trusts every machine of every network behind the company routers, and a typo such as 1.0.0.0/8 trusts part of the internet. Such ranges are where lateral movement goes.',
  fix: 'Narrow the source to the hosts or subnets that need the port (a named set keeps it readable), or declare the port public in rampart.yaml if it is meant for everyone.',
  needs: 'none',
  check(ctx) {
    const fams = auditFamilies(ctx);
    if (fams.length === 0) return [];
    const c = input(ctx);
    const v4Max = ctx.settings.broadSourcePrefix ?? 8;
    // An IPv4 /8 is about an ISP's or a large company's whole space; the IPv6 counterpart is a /32 allocation.
    const maxLen: Record<L3, number> = { ipv4: v4Max, ipv6: v4Max + 24 };
    let domain = ctx.space.none();
    for (const fam of fams) {
      domain = domain.or(inbound(ctx, { family: fam, sources: possibleSources(fam), daddrs: hostAddresses(ctx, fam) }));
    }
    const skipPorts = [...publicPorts(ctx), ...adminExposures(ctx).map((x) => portSpec(x.decl))];
    domain = domain.minus(portsSet(ctx, skipPorts));
    const acceptedSet = domain.and(accepted(ctx));
    if (acceptedSet.isEmpty()) return [];
    // Whole-ruleset set operations first (a few BDD operations, whatever the number of rules): the accepted
    // packets whose source's whole /N block is accepted alike, minus the contexts open to every internet source.
    // Only the rules that accept those packets are then looked at one by one.
    let broad = ctx.space.none();
    for (const fam of fams) {
      const bits = (fam === 'ipv4' ? 32 : 128) - maxLen[fam];
      const mine = familyOf(acceptedSet, fam);
      if (mine.isEmpty()) continue;
      const wide = wholeBlocks(mine, familyOf(domain, fam), saddrField(fam), bits);
      if (wide.isEmpty()) continue;
      const famDomain = inbound(ctx, { family: fam, sources: internetSources(fam), daddrs: hostAddresses(ctx, fam) });
      const everywhere = forallWithin(mine, famDomain.minus(portsSet(ctx, skipPorts)), [saddrField(fam)]);
      broad = broad.or(wide.minus(exists(everywhere, [saddrField(fam)])));
    }
    if (broad.isEmpty()) return [];
    const out: FindingDraft[] = [];
    for (const { d } of decisionsBySize(c, broad, ctx.ruleset)) {
      if (d.verdict !== 'accept' || d.decider.kind !== 'rule') continue;
      const texts: string[] = [];
      let lead: L3 | undefined;
      for (const fam of fams) {
        let mine = familyOf(d.packets, fam);
        if (mine.isEmpty()) continue;
        // Where the rule's own match does not look at the source, the port is open to everyone and earlier drops
        // (bogons, a blocklist) merely carve holes: not a broad source.
        const famDomain = familyOf(domain, fam);
        const own = forallWithin(c.matchSet(d.decider).and(famDomain), famDomain, [saddrField(fam)]);
        mine = mine.minus(exists(own, [saddrField(fam)]));
        if (mine.isEmpty()) continue;
        const src = sourceRanges(mine, fam);
        if ((widestPrefix(src) ?? 999) > maxLen[fam]) continue;
        lead = lead ?? fam;
        texts.push(`${describePorts(mine)} from ${formatRanges(src)} (/${widestPrefix(src)})`);
      }
      if (!lead) continue;
      const l = locate(ctx, d.decider);
      const ex = example(ctx, familyOf(d.packets, lead), lead);
      out.push({
        message: `rule accepts ${texts.join(' and ')}: a source range of /${maxLen[lead]} or wider for a port that is not public`,
        ...(l.location ? { location: l.location } : {}),
        ...(l.text ? { text: l.text } : {}),
        ...(ex ? { example: ex } : {}),
      });
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------------------
// ipv4-ipv6-mismatch

interface FamilyView {
  readonly fam: L3;
  readonly q: PacketSet;
  /** Certainly accepted / possibly accepted (opaque matches) connections of q. */
  readonly acc: PacketSet;
  readonly may: PacketSet;
  /** (proto, port) sets, every other field free: ports some source can open, ports every source can open. */
  readonly some: PacketSet;
  readonly all: PacketSet;
  readonly someMay: PacketSet;
  readonly allMay: PacketSet;
  readonly dom: PacketSet;
}

const PROTO_PORT = fieldsExcept(['l4proto', 'dport']);

/** Ports of a protocol that exists on one family only: DHCP (udp/67-68) on IPv4, DHCPv6 (udp/546-547) on IPv6. */
const FAMILY_ONLY_PORTS: Record<L3, readonly [number, number]> = { ipv4: [67, 68], ipv6: [546, 547] };

function familyOnlyPorts(ctx: AuditContext, fam: L3): PacketSet {
  const [lo, hi] = FAMILY_ONLY_PORTS[fam];
  return ctx.space.fromCube({
    l4proto: [{ kind: 'range', lo: 17n, hi: 17n }],
    dport: [{ kind: 'range', lo: BigInt(lo), hi: BigInt(hi) }],
  });
}

function familyView(ctx: AuditContext, fam: L3, ports: readonly PortSpec[] | undefined): FamilyView {
  const q = inbound(ctx, {
    family: fam,
    sources: internetSources(fam),
    daddrs: hostAddresses(ctx, fam),
    ...(ports ? { ports } : {}),
  });
  const acc = q.and(accepted(ctx));
  const may = q.and(mayAccept(ctx));
  const src = [saddrField(fam)];
  // A blocklist does not make a port "open to some sources only": its sources count as reaching it here.
  const bl = q.and(blocklisted(ctx));
  return {
    fam,
    q,
    acc,
    may,
    some: exists(acc, PROTO_PORT),
    all: exists(forallWithin(acc.or(bl), q, src).and(acc), PROTO_PORT),
    someMay: exists(may, PROTO_PORT),
    allMay: exists(forallWithin(may.or(bl), q, src).and(may), PROTO_PORT),
    dom: exists(q, PROTO_PORT),
  };
}

const ipv4Ipv6Mismatch: AuditRule = {
  id: 'ipv4-ipv6-mismatch',
  defaultSeverity: 'high',
  title: 'A service is filtered on one IP family and open (or closed) on the other',
  rationale:
    'IPv4 and IPv6 are filtered by separate rules (iptables and ip6tables, ip and ip6 tables, or family-specific matches in inet tables). When only one side is maintained, a port closed on IPv4 stays open to the whole IPv6 internet, or a public service is unreachable for IPv6 clients.',
  fix: 'Give both families the same rules: use an inet table with family-free matches, or mirror the iptables rules in ip6tables (and audit both files together: `rampart audit rules.v4 rules.v6`).',
  needs: 'none',
  check(ctx) {
    const filtered = rulesetFamilies(ctx.ruleset);
    // Both families must be filtered here: an iptables-save alone says nothing about the host's IPv6 rules.
    if (filtered.length < 2 || auditFamilies(ctx).length < 2) return [];
    const declared = publicPorts(ctx);
    const ports = declared.length > 0 ? declared : undefined;
    const v4 = familyView(ctx, 'ipv4', ports);
    const v6 = familyView(ctx, 'ipv6', ports);
    const c = input(ctx);
    const out: FindingDraft[] = [];
    // For each direction: ports some source can open on one family and no source on the other, and ports every
    // source can open on one family and only some on the other (filtered on one side, open on the other).
    const kinds: { open: FamilyView; other: FamilyView; set: PacketSet; is: 'closed' | 'restricted' }[] = [];
    for (const [a, b] of [
      [v4, v6],
      [v6, v4],
    ] as const) {
      // The open side counts certain accepts, the other side possible ones: opaque matches never make a mismatch.
      // Without declared services, a port open to some sources only on one family (SSH from an IPv4 admin
      // network) and closed on the other is not taken for a service: only ports open to every source count.
      const opened = (declared.length > 0 ? a.some : a.all).minus(familyOnlyPorts(ctx, a.fam));
      kinds.push({ open: a, other: b, set: opened.and(b.dom.minus(b.someMay)), is: 'closed' });
      kinds.push({
        open: a,
        other: b,
        set: a.all.minus(familyOnlyPorts(ctx, a.fam)).and(b.someMay.minus(b.allMay)),
        is: 'restricted',
      });
    }
    const units: { label: string; set: PacketSet }[] =
      declared.length > 0
        ? ctx.services.flatMap((s) =>
            s.public.map((p) => ({ label: `service ${s.name} ${p.text}`, set: portsSet(ctx, [portSpec(p)]) })),
          )
        : [6, 17, 132].map((p) => ({
            label: '',
            set: ctx.space.fromCube({ l4proto: [{ kind: 'range', lo: BigInt(p), hi: BigInt(p) }] }),
          }));
    for (const k of kinds) {
      for (const u of units) {
        const m = k.set.and(u.set);
        if (m.isEmpty()) continue;
        const openPart = k.open.acc.and(m);
        const wasOpen = m.and(k.open.all).equals(m.and(k.open.some));
        const what = u.label || describePorts(k.open.q.and(m));
        const srcText = wasOpen ? 'every source' : `${formatRanges(sourceRanges(openPart, k.open.fam))} only`;
        const otherPart = k.other.q.and(m);
        const otherText =
          k.is === 'closed'
            ? `${verb(ctx, otherPart.and(blockedBy(ctx)))} for every source`
            : `accepted only from ${describeSources(sourceRanges(k.other.may.and(m), k.other.fam), internetSources(k.other.fam), k.other.fam)}`;
        const accepts = decisionsBySize(c, openPart, ctx.ruleset).filter((d) => d.d.verdict === 'accept');
        const main = accepts[0] ? locate(ctx, accepts[0].d.decider) : undefined;
        const { related } = decidersAsLocations(ctx, c, otherPart.minus(k.other.may));
        const ex = example(ctx, openPart, k.open.fam);
        out.push({
          message: `${what}: ${familyName(k.open.fam)} accepts new connections from ${srcText}, but on ${familyName(k.other.fam)} it is ${otherText}`,
          ...(main?.location ? { location: main.location } : {}),
          ...(main?.text ? { text: main.text } : {}),
          ...(ex ? { example: ex } : {}),
          related,
        });
      }
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------------------
// unfiltered-input

const INPUT_PATH_HOOKS = new Set(['prerouting', 'input']);

const unfilteredInputRule: AuditRule = {
  id: 'unfiltered-input',
  defaultSeverity: 'high',
  title: 'Nothing filters new connections to the host: no firewall, or a file with no base chain on the input path',
  rationale:
    'A host with no firewall at all is the most exposed host there is: every port, admin and database ports included, is open to every source. A file with user chains but no base chain (ufw user.rules, a fail2ban chain file, kube-proxy restore input) decides nothing on its own: no hook runs its chains, and what the host does depends on the rest of its ruleset.',
  fix: 'Give the host a ruleset with an input base chain (nftables: `type filter hook input priority 0; policy drop;` with accepts for what it serves). For a fragment, audit what the host really runs: `rampart audit --live` on the host, or the full dump (`iptables-save`, `nft list ruleset`).',
  needs: 'none',
  check(ctx) {
    const tables = ctx.ruleset.tables.filter((t) => !t.outOfScope);
    const none = tables.length === 0;
    let fams = none ? [...FAMILIES] : auditFamilies(ctx);
    if (none && ctx.addresses.length > 0) fams = fams.filter((f) => hostAddresses(ctx, f).length > 0);
    const open = fams.filter((fam) => {
      const q = inbound(ctx, { family: fam, daddrs: hostAddresses(ctx, fam) });
      return !q.isEmpty() && q.minus(unfilteredInput(ctx)).isEmpty();
    });
    if (open.length === 0) return [];
    const famText = joinAnd(open.map(familyName));
    const admin = adminPorts(ctx).map(portLabel);
    const services = ctx.services.flatMap((svc) => svc.public.map((p) => `${svc.name} ${p.text}`));
    const leaves = `every port is open to every source; admin ports among them: ${joinAnd(admin)}${services.length > 0 ? `; declared services: ${joinAnd(services)}` : ''}`;
    const ex = example(ctx, inbound(ctx, { family: open[0] as L3 }), open[0] as L3, { l4proto: 6, dport: 22 });
    const base = {
      ...(ex ? { example: ex } : {}),
      related: [{ message: 'accepts them: the end of the hook path (no base chain filters these packets)' }],
    };
    if (none) {
      return [
        {
          message: `no firewall: the ruleset has no tables, so nothing filters new connections to this host over ${famText}: ${leaves}`,
          ...base,
        },
      ];
    }
    const chains = tables.flatMap((t) => t.chains.map((c) => ({ t, c })));
    const onPath = chains.filter(({ c }) => c.base && INPUT_PATH_HOOKS.has(c.base.hook));
    const user = chains.filter(({ c }) => !c.base && c.rules.length > 0);
    const firstUser = user[0];
    if (onPath.length === 0 && firstUser && isFragment(ctx.ruleset)) {
      const names = user.map(({ c }) => c.name);
      const shown =
        names.length > 4 ? `${names.slice(0, 4).join(', ')} and ${names.length - 4} more` : names.join(', ');
      const o = firstUser.c.origin;
      return [
        {
          message: `this file is a fragment: it has user chains (${shown}) but no base chain, so no hook runs them, and on its own nothing filters new connections to the host over ${famText} (${leaves.replace('every port is open', 'every port would be open')}). Audit what the host runs instead: \`rampart audit --live\` on the host, or its full dump (iptables-save, nft list ruleset)`,
          severity: 'medium',
          location: { file: o.file, line: o.line, ...(o.column !== undefined ? { column: o.column } : {}) },
          ...base,
        },
      ];
    }
    const hooks = [...new Set(chains.flatMap(({ c }) => (c.base ? [c.base.hook] : [])))];
    const t0 = tables[0]!;
    return [
      {
        message: `no base chain filters the input path (prerouting, input) over ${famText}${hooks.length > 0 ? `; the ruleset's base chains are on ${joinAnd(hooks)}` : ''}: ${leaves}`,
        location: {
          file: t0.origin.file,
          line: t0.origin.line,
          ...(t0.origin.column !== undefined ? { column: t0.origin.column } : {}),
        },
        ...base,
      },
    ];
  },
};

export const SERVICE_RULES: readonly AuditRule[] = [
  unfilteredInputRule,
  publicServiceBlocked,
  allInboundBlocked,
  listeningPortBlocked,
  adminPortExposed,
  anyAnyAccept,
  broadSourceAccept,
  ipv4Ipv6Mismatch,
];
