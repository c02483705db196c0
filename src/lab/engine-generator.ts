/**
 * Seeded rulesets for the packet-space engine benchmark (bench/engine-bench.mjs), in three shapes:
 *
 * - `kube-proxy`: what src/lab/scale-generator.ts already writes for the parse benchmark (a kube-proxy nat table next
 *   to a hand-written filter table); reused here, not re-implemented.
 * - `firewall`: a hand-written host firewall in one `inet` table (nft text only: it uses named sets and a verdict map,
 *   which iptables would need ipset files for). CIDRs of every length (IPv4 and IPv6), port ranges, named and
 *   anonymous sets, ct state, interfaces, zone chains reached by jumps, service chains, accept/drop/reject. Some rules
 *   are shadowed or redundant on purpose, including rules covered only by the union of two earlier rules (what a
 *   single-rule comparison like Capirca's cannot see).
 * - `adversarial`: one long chain of rules with overlapping random CIDRs and source/destination port ranges in
 *   random order and mixed verdicts: the worst case for decision diagrams. Both nft text and iptables-save.
 *
 * - shapes real hosts have, as iptables-save: `per-source` (one user chain per /24 source network, jumped to from
 *   INPUT), `fail2ban` (ban chains of /32 rejects per jail), `docker` (dockerd's per-network FORWARD, isolation and
 *   nat chains; benchmarked on the forward hook) and `ufw` (ufw's chain layout with user rules).
 *
 * `mutate` derives a second version that differs in a given fraction of rules (for the diff benchmark).
 *
 * Pure: the PRNG is seeded (mulberry32 from generate.ts); no Math.random, clock or I/O. Every generator returns
 * exactly `n` rules (as parseRuleset counts them: rules of all chains), except that a shape's few fixed rules are
 * kept when n is smaller than them.
 */
import { type Rng, rng } from './generate.js';
import { generateIptablesSave, generateNftText } from './scale-generator.js';

export type EngineShape = 'kube-proxy' | 'firewall' | 'adversarial' | 'per-source' | 'fail2ban' | 'docker' | 'ufw';
export type EngineFormat = 'nft-text' | 'iptables-save';

export const ENGINE_SHAPES: readonly EngineShape[] = [
  'kube-proxy',
  'firewall',
  'adversarial',
  'per-source',
  'fail2ban',
  'docker',
  'ufw',
];

/** The formats each shape can be written in (the first is the one the benchmark uses). */
export const SHAPE_FORMATS: Readonly<Record<EngineShape, readonly EngineFormat[]>> = {
  'kube-proxy': ['iptables-save', 'nft-text'],
  firewall: ['nft-text'],
  adversarial: ['iptables-save', 'nft-text'],
  'per-source': ['iptables-save'],
  fail2ban: ['iptables-save'],
  docker: ['iptables-save'],
  ufw: ['iptables-save'],
};

/** The hook path each shape is benchmarked on: where its rules do their work (Docker's are on forward). */
export const SHAPE_HOOKS: Readonly<Record<EngineShape, 'input' | 'forward'>> = {
  'kube-proxy': 'input',
  firewall: 'input',
  adversarial: 'input',
  'per-source': 'input',
  fail2ban: 'input',
  docker: 'forward',
  ufw: 'input',
};

/** A ruleset of `shape` with `n` rules in `format` (default: the shape's first format). */
export function generateEngineRuleset(
  shape: EngineShape,
  n: number,
  seed: number,
  format: EngineFormat = SHAPE_FORMATS[shape][0] as EngineFormat,
): string {
  if (!SHAPE_FORMATS[shape].includes(format)) throw new Error(`shape ${shape} has no ${format} form`);
  switch (shape) {
    case 'kube-proxy':
      return format === 'nft-text' ? generateNftText(n, seed) : generateIptablesSave(n, seed);
    case 'firewall':
      return generateFirewallNft(n, seed);
    case 'adversarial':
      return format === 'nft-text' ? generateAdversarialNft(n, seed) : generateAdversarialIptables(n, seed);
    case 'per-source':
      return generatePerSourceIptables(n, seed);
    case 'fail2ban':
      return generateFail2banIptables(n, seed);
    case 'docker':
      return generateDockerIptables(n, seed);
    case 'ufw':
      return generateUfwIptables(n, seed);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Address helpers

function ipv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function mask4(len: number): number {
  return len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
}

/** The network of `addr` at `len`, printed as nft prints it (no /32 for a host). */
function cidr4(addr: number, len: number): string {
  const net = (addr & mask4(len)) >>> 0;
  return len === 32 ? ipv4(net) : `${ipv4(net)}/${len}`;
}

/** An IPv6 prefix under 2001:db8::/32, printed in canonical (RFC 5952) form, as nft prints it. */
function cidr6(groups: readonly number[], len: number): string {
  const g = [...groups];
  while (g.length < 8) g.push(0);
  // Zero the host bits.
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, len - i * 16));
    g[i] = ((g[i] as number) & ((0xffff << (16 - keep)) & 0xffff)) >>> 0;
  }
  // Longest run of two or more zero groups becomes '::'.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  const text = best < 0 ? hex.join(':') : `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
  return len === 128 ? text : `${text}/${len}`;
}

/** A port or an inclusive range, as nft prints it. */
function nftPorts(lo: number, hi: number): string {
  return lo === hi ? String(lo) : `${lo}-${hi}`;
}

function portRange(r: Rng): [number, number] {
  const lo = r.chance(0.5) ? r.pick(COMMON_PORTS) : r.int(1, 65000);
  const width = r.pick([0, 0, 0, 0, 0, 1, 9, 99, 999]);
  return [lo, Math.min(65535, lo + width)];
}

const COMMON_PORTS = [22, 25, 53, 80, 123, 443, 587, 993, 3306, 5432, 6379, 8080, 8443, 9090, 9100];

// ---------------------------------------------------------------------------------------------------------------
// firewall: a hand-written host firewall (nft text)

type Verdict = 'accept' | 'drop' | 'reject';

/** The parts of a generated IPv4 filter rule that the deliberate shadowed/redundant copies are derived from. */
interface V4Rule {
  readonly saddr: { readonly net: number; readonly len: number };
  readonly proto: 'tcp' | 'udp';
  readonly lo: number;
  readonly hi: number;
  readonly verdict: Verdict;
}

function pickVerdict(r: Rng): Verdict {
  const x = r.next();
  return x < 0.6 ? 'accept' : x < 0.85 ? 'drop' : 'reject';
}

function v4RuleText(v: V4Rule, extra = ''): string {
  return `ip saddr ${cidr4(v.saddr.net, v.saddr.len)}${extra} ${v.proto} dport ${nftPorts(v.lo, v.hi)} ${v.verdict}`;
}

function otherVerdict(r: Rng, v: Verdict): Verdict {
  return r.pick((['accept', 'drop', 'reject'] as const).filter((x) => x !== v));
}

/**
 * A hand-written firewall of exactly n rules (at least its ~40 fixed rules), as nft text that `nft -f` loads. The
 * rules read as `nft list ruleset` prints them; the kernel's listing differs only in layout (set elements sorted and
 * packed per line, anonymous sets sorted) and spells the inet `reject` out as `reject with icmp port-unreachable`.
 */
export function generateFirewallNft(n: number, seed: number): string {
  const r = rng(seed ^ 0x5f1e);
  const chains = new Map<string, string[]>();
  const chain = (name: string): string[] => {
    let c = chains.get(name);
    if (!c) {
      c = [];
      chains.set(name, c);
    }
    return c;
  };
  const count = (): number => {
    let k = 0;
    for (const c of chains.values()) k += c.length;
    return k;
  };

  const zones = Math.max(2, Math.round(n / 200));
  const services = Math.max(2, Math.round(zones / 8));
  // Zone k owns 10.0.0.0/8 cut into 2^zoneBits blocks.
  const zoneBits = Math.max(1, Math.ceil(Math.log2(zones + 1)));
  const zoneLen = Math.min(24, 8 + zoneBits);
  const zoneNet = (k: number): number => ((10 << 24) | ((k + 1) << (32 - zoneLen))) >>> 0;

  // Named sets: non-overlapping elements (the kernel refuses overlapping intervals).
  const blockN = Math.max(8, Math.round(n / 100));
  const block4: string[] = [];
  for (let i = 0; i < blockN; i++) {
    // Distinct /24s (or hosts in them) in 100.64.0.0/10, spread by a stride so they look scattered.
    const net = ((100 << 24) | (64 << 16) | (((i * 2731) % 16384) << 8)) >>> 0;
    block4.push(r.chance(0.3) ? ipv4((net | r.int(1, 254)) >>> 0) : `${ipv4(net)}/24`);
  }
  const block6: string[] = [];
  for (let i = 0; i < Math.max(4, Math.round(blockN / 4)); i++) block6.push(cidr6([0x2001, 0xdb8, 0xbad, i], 64));
  const admins: string[] = [];
  for (let i = 0; i < 6; i++) admins.push(ipv4(((192 << 24) | (0 << 16) | (2 << 8) | (10 + i * 7)) >>> 0));

  // -- input: the fixed head every admin writes, then dispatch to zones ------------------------------------------
  const input = chain('input');
  input.push(
    'ct state established,related accept',
    'ct state invalid drop',
    'iifname "lo" accept',
    'ip saddr @blocklist_v4 counter packets 0 bytes 0 drop',
    'ip6 saddr @blocklist_v6 counter packets 0 bytes 0 drop',
    'icmp type echo-request limit rate 10/second accept',
    'icmp type { destination-unreachable, time-exceeded } accept',
    'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept',
    'tcp dport vmap { 22 : jump ssh_in, 23 : drop, 2323 : drop }',
    'iifname @lan_ifs jump from_lan',
    'meta nfproto ipv6 jump zone_v6',
  );
  for (let k = 0; k < zones; k++) {
    const iface = r.chance(0.3) ? ` iifname "${r.pick(['eth0', 'eth1', 'wg0', 'bond0.100'])}"` : '';
    input.push(`ip saddr ${cidr4(zoneNet(k), zoneLen)}${iface} jump zone_${k}`);
  }
  input.push('iifname "eth0" jump from_wan');
  input.push('tcp dport @web_ports ct state new accept');
  // The input tail: log, then an explicit reject in front of the drop policy.
  const inputTail = ['log prefix "input drop: " counter packets 0 bytes 0', 'meta l4proto tcp reject with tcp reset'];

  const ssh = chain('ssh_in');
  ssh.push(
    'ip saddr @admins_v4 accept',
    'ip saddr 10.0.0.0/8 ct state new accept',
    'ip6 saddr 2001:db8:1::/48 accept',
    'counter packets 0 bytes 0 drop',
  );
  const lan = chain('from_lan');
  lan.push(
    'ip saddr 192.168.0.0/16 udp dport { 53, 67, 123 } accept',
    'ip saddr 192.168.0.0/16 tcp dport @high_ports accept',
    'ip saddr 192.168.10.0/24 tcp dport 1024-1100 drop',
    'return',
  );
  const wan = chain('from_wan');
  wan.push(
    'ip saddr 0.0.0.0/1 tcp dport 25 reject',
    'ip saddr 128.0.0.0/1 tcp dport 25 reject',
    'tcp dport 25 accept',
    'udp dport 33434-33534 reject',
  );

  const forward = chain('forward');
  forward.push(
    'ct state established,related accept',
    'ct state invalid drop',
    'iifname @lan_ifs oifname "eth0" accept',
    'iifname "wg0" oifname "eth1" ip daddr 192.168.20.0/24 tcp dport { 22, 443 } accept',
    'iifname "eth0" oifname "br-*" ip daddr 172.18.0.0/16 tcp dport 80 accept',
    'oifname "eth0" ip daddr 198.18.0.0/15 drop',
  );
  const output = chain('output');
  output.push(
    'oifname "lo" accept',
    'ip daddr 169.254.169.254 tcp dport 80 meta skuid != 0 reject',
    'ip daddr 203.0.113.0/24 drop',
    'udp dport 53 accept',
  );

  // -- service chains: short, no jumps ---------------------------------------------------------------------------
  for (let s = 0; s < services; s++) {
    const c = chain(`svc_${s}`);
    const k = r.int(4, 8);
    for (let i = 0; i < k; i++) {
      const [lo, hi] = portRange(r);
      const proto = r.chance(0.8) ? 'tcp' : 'udp';
      const daddr = r.chance(0.5)
        ? ` ip daddr ${cidr4((192 << 24) | (0 << 16) | (2 << 8) | r.int(0, 255), r.int(26, 32))}`
        : '';
      c.push(`${daddr.trimStart()}${daddr ? ' ' : ''}${proto} dport ${nftPorts(lo, hi)} ${pickVerdict(r)}`);
    }
  }

  // -- zone chains (and the v6 zone) get the rest, round-robin --------------------------------------------------
  const fixed = count() + inputTail.length;
  const budget = Math.max(0, n - fixed);
  const zoneNames = [...Array.from({ length: zones }, (_, k) => `zone_${k}`), 'zone_v6'];
  const shares = zoneNames.map(
    (_, i) => Math.floor(budget / zoneNames.length) + (i < budget % zoneNames.length ? 1 : 0),
  );
  zoneNames.forEach((name, i) => {
    const c = chain(name);
    const share = shares[i] as number;
    if (name === 'zone_v6') fillZoneV6(r, c, share);
    else fillZone4(r, c, share, zoneNet(i), zoneLen, services);
  });
  input.push(...inputTail);

  // -- render -----------------------------------------------------------------------------------------------------
  const out: string[] = ['table inet filter {'];
  const set = (name: string, type: string, flags: string | undefined, elements: readonly string[]): void => {
    out.push(`\tset ${name} {`, `\t\ttype ${type}`);
    if (flags) out.push(`\t\tflags ${flags}`);
    out.push(`\t\telements = { ${elements.join(',\n\t\t\t     ')} }`, '\t}', '');
  };
  set('blocklist_v4', 'ipv4_addr', 'interval', block4);
  set('blocklist_v6', 'ipv6_addr', 'interval', block6);
  set('admins_v4', 'ipv4_addr', undefined, admins);
  set('web_ports', 'inet_service', undefined, ['80', '443', '8080', '8443']);
  set('high_ports', 'inet_service', 'interval', ['1024-2047', '3000-3999', '8000-8999']);
  set('lan_ifs', 'ifname', undefined, ['"eth1"', '"eth2"', '"bond0"']);
  const base: Record<string, string> = {
    input: 'type filter hook input priority filter; policy drop;',
    forward: 'type filter hook forward priority filter; policy drop;',
    output: 'type filter hook output priority filter; policy accept;',
  };
  const names = [...chains.keys()];
  names.forEach((name, i) => {
    if (i > 0) out.push('');
    out.push(`\tchain ${name} {`);
    const b = base[name];
    if (b) out.push(`\t\t${b}`);
    for (const rule of chains.get(name) ?? []) out.push(`\t\t${rule}`);
    out.push('\t}');
  });
  out.push('}');
  return `${out.join('\n')}\n`;
}

/** Fills one IPv4 zone chain with `share` rules: mostly fresh rules, some derived shadowed/redundant ones. */
function fillZone4(r: Rng, c: string[], share: number, zone: number, zoneLen: number, services: number): void {
  const made: V4Rule[] = [];
  const inZone = (len: number): { net: number; len: number } => {
    const l = Math.max(zoneLen, len);
    const host = (zone | (r.int(0, 0x7fffffff) & ~mask4(zoneLen))) >>> 0;
    return { net: (host & mask4(l)) >>> 0, len: l };
  };
  while (c.length < share) {
    const left = share - c.length;
    const roll = r.next();
    const prev = made.length > 0 ? r.pick(made) : undefined;
    if (prev && roll < 0.04) {
      // Redundant: a narrower copy with the same verdict after a broader rule.
      const len = Math.min(32, prev.saddr.len + r.int(1, 8));
      const saddr = { net: (prev.saddr.net | (r.int(0, 0x7fffffff) & ~mask4(prev.saddr.len) & mask4(len))) >>> 0, len };
      c.push(v4RuleText({ ...prev, saddr, lo: prev.lo, hi: prev.lo }));
    } else if (prev && roll < 0.08) {
      // Shadowed: the same packets, another verdict (a conflict an auditor must see).
      const len = Math.min(32, prev.saddr.len + r.int(0, 4));
      const saddr = { net: (prev.saddr.net | (r.int(0, 0x7fffffff) & ~mask4(prev.saddr.len) & mask4(len))) >>> 0, len };
      c.push(v4RuleText({ ...prev, saddr, verdict: otherVerdict(r, prev.verdict) }));
    } else if (roll < 0.1 && left >= 3) {
      // Covered only by the union of two earlier rules: the two halves of a prefix, then the whole prefix.
      const whole = inZone(r.int(zoneLen + 1, 28));
      const half = whole.len + 1;
      const [lo, hi] = portRange(r);
      const proto = r.chance(0.8) ? 'tcp' : 'udp';
      const v = pickVerdict(r);
      const lower = { saddr: { net: whole.net, len: half }, proto, lo, hi, verdict: v } as const;
      const upper = { ...lower, saddr: { net: (whole.net | (1 << (32 - half))) >>> 0, len: half } };
      c.push(v4RuleText(lower), v4RuleText(upper), v4RuleText({ ...lower, saddr: whole, verdict: otherVerdict(r, v) }));
    } else if (roll < 0.14 && services > 0) {
      const [lo, hi] = portRange(r);
      c.push(
        `ip saddr ${cidr4(inZone(r.int(zoneLen, 30)).net, r.int(zoneLen, 30))} tcp dport ${nftPorts(lo, hi)} jump svc_${r.int(0, services - 1)}`,
      );
    } else if (roll < 0.2) {
      // Sets, interfaces and ct state.
      const s = inZone(r.int(zoneLen, 32));
      const form = r.int(0, 4);
      if (form === 0) c.push(`ip saddr ${cidr4(s.net, s.len)} tcp dport @web_ports ${pickVerdict(r)}`);
      else if (form === 1)
        c.push(
          `iifname "${r.pick(['eth0', 'eth1', 'wg0', 'veth*'])}" ip saddr ${cidr4(s.net, s.len)} udp dport @high_ports ${pickVerdict(r)}`,
        );
      else if (form === 2)
        c.push(
          `ip saddr ${cidr4(s.net, s.len)} ct state new tcp dport { ${[...new Set([r.pick(COMMON_PORTS), r.pick(COMMON_PORTS), r.pick(COMMON_PORTS)])].sort((a, b) => a - b).join(', ')} } ${pickVerdict(r)}`,
        );
      else if (form === 3) c.push(`ip saddr @admins_v4 ip daddr ${cidr4(s.net, s.len)} accept`);
      else c.push(`ip saddr ${cidr4(s.net, s.len)} ip protocol icmp ${r.chance(0.5) ? 'accept' : 'drop'}`);
    } else {
      const saddr = inZone(r.pick([zoneLen + 2, 22, 24, 24, 26, 27, 28, 28, 29, 30, 31, 32, 32, 32]));
      const [lo, hi] = portRange(r);
      const v: V4Rule = { saddr, proto: r.chance(0.8) ? 'tcp' : 'udp', lo, hi, verdict: pickVerdict(r) };
      made.push(v);
      const daddr = r.chance(0.3)
        ? ` ip daddr ${cidr4((192 << 24) | (0 << 16) | (2 << 8) | r.int(0, 255), r.int(24, 32))}`
        : '';
      const counter = r.chance(0.2) ? ' counter packets 0 bytes 0' : '';
      const text = v4RuleText(v, daddr);
      c.push(counter ? text.replace(/ (accept|drop|reject)$/, `${counter} $1`) : text);
    }
  }
  // The halves-and-whole triple can overshoot by up to two: trim (keeps the exact count).
  c.length = share;
}

/** IPv6 zone: prefixes of every length under 2001:db8::/32. */
function fillZoneV6(r: Rng, c: string[], share: number): void {
  while (c.length < share) {
    const len = r.pick([32, 40, 48, 48, 56, 64, 64, 64, 96, 112, 127, 128]);
    const groups = [0x2001, 0xdb8, r.int(0, 15), r.int(0, 0xffff), r.int(0, 0xffff), 0, 0, r.int(1, 0xffff)];
    const [lo, hi] = portRange(r);
    const proto = r.chance(0.8) ? 'tcp' : 'udp';
    c.push(`ip6 saddr ${cidr6(groups, len)} ${proto} dport ${nftPorts(lo, hi)} ${pickVerdict(r)}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// adversarial: overlapping random CIDRs and port ranges, random order, mixed verdicts

interface AdvRule {
  readonly s?: { readonly net: number; readonly len: number };
  readonly d?: { readonly net: number; readonly len: number };
  readonly proto?: 'tcp' | 'udp';
  readonly sport?: readonly [number, number];
  readonly dport?: readonly [number, number];
  readonly verdict: Verdict;
}

function adversarialRules(n: number, seed: number): AdvRule[] {
  const r = rng(seed ^ 0xad5e);
  // A few roots make prefixes of every length overlap instead of scattering over 2^32.
  const roots = Array.from({ length: 8 }, () => r.int(0, 0xffffffff) >>> 0);
  const cidr = (): { net: number; len: number } => {
    // Prefixes of every length, mostly 16..28: short ones overlap many later rules (a few /8s alone would cover
    // most of what follows them and make the rest trivially unreachable).
    const len = r.chance(0.1) ? r.int(8, 15) : r.chance(0.9) ? r.int(16, 28) : r.int(29, 32);
    const a = (r.pick(roots) ^ (r.int(0, 0xffffffff) >>> r.int(4, 31))) >>> 0;
    return { net: (a & mask4(len)) >>> 0, len };
  };
  const range = (): [number, number] => {
    const lo = r.int(1, 65535);
    const w = r.pick([0, 1, 15, 255, 1023, 4095, 32767]);
    return [lo, Math.min(65535, lo + r.int(0, w))];
  };
  const rules: AdvRule[] = [];
  for (let i = 0; i < n; i++) {
    const proto = r.chance(0.95) ? (r.chance(0.7) ? 'tcp' : 'udp') : undefined;
    const x = r.next();
    // Every rule has a source prefix: a rule matching everything would make all later rules unreachable.
    rules.push({
      s: cidr(),
      ...(r.chance(0.7) ? { d: cidr() } : {}),
      ...(proto ? { proto } : {}),
      ...(proto && r.chance(0.3) ? { sport: range() } : {}),
      ...(proto && r.chance(0.9) ? { dport: range() } : {}),
      verdict: x < 0.4 ? 'accept' : x < 0.8 ? 'drop' : 'reject',
    });
  }
  return rules;
}

/** n adversarial rules in the INPUT chain of table ip filter (policy drop), as `nft list ruleset` prints it. */
export function generateAdversarialNft(n: number, seed: number): string {
  const out = ['table ip filter {', '\tchain INPUT {', '\t\ttype filter hook input priority filter; policy drop;'];
  for (const a of adversarialRules(n, seed)) {
    const p: string[] = [];
    if (a.s) p.push(`ip saddr ${cidr4(a.s.net, a.s.len)}`);
    if (a.d) p.push(`ip daddr ${cidr4(a.d.net, a.d.len)}`);
    if (a.proto && !a.sport && !a.dport) p.push(`ip protocol ${a.proto}`);
    if (a.proto && a.sport) p.push(`${a.proto} sport ${nftPorts(a.sport[0], a.sport[1])}`);
    if (a.proto && a.dport) p.push(`${a.proto} dport ${nftPorts(a.dport[0], a.dport[1])}`);
    p.push(a.verdict);
    out.push(`\t\t${p.join(' ')}`);
  }
  out.push('\t}', '}');
  return `${out.join('\n')}\n`;
}

/** The same rules as generateAdversarialNft, as `iptables-save` (nf_tables) prints them. */
export function generateAdversarialIptables(n: number, seed: number): string {
  const out = [
    '# Generated by iptables-save v1.8.9 (nf_tables) on Tue Nov 24 06:00:00 2026',
    '*filter',
    ':INPUT DROP [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
  ];
  const ports = (x: readonly [number, number]): string => (x[0] === x[1] ? String(x[0]) : `${x[0]}:${x[1]}`);
  for (const a of adversarialRules(n, seed)) {
    let line = '-A INPUT';
    if (a.s) line += ` -s ${ipv4(a.s.net)}/${a.s.len}`;
    if (a.d) line += ` -d ${ipv4(a.d.net)}/${a.d.len}`;
    if (a.proto) {
      line += ` -p ${a.proto}`;
      if (a.sport || a.dport) line += ` -m ${a.proto}`;
      if (a.sport) line += ` --sport ${ports(a.sport)}`;
      if (a.dport) line += ` --dport ${ports(a.dport)}`;
    }
    line +=
      a.verdict === 'reject' ? ' -j REJECT --reject-with icmp-port-unreachable' : ` -j ${a.verdict.toUpperCase()}`;
    out.push(line);
  }
  out.push('COMMIT', '# Completed on Tue Nov 24 06:00:00 2026');
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// mutate: a second version for the diff benchmark

export type MutationKind = 'port' | 'address' | 'verdict' | 'delete' | 'insert';

export interface Mutation {
  readonly kind: MutationKind;
  /** 1-based line of the rule in the original text. */
  readonly line: number;
  readonly before: string;
  /** The new rule line (absent for a deletion; for an insertion, the inserted line that follows `before`). */
  readonly after?: string;
}

export interface MutationResult {
  readonly text: string;
  readonly changes: readonly Mutation[];
}

/**
 * Returns a version of `text` (iptables-save or nft text) in which round(fraction x rules) rules (at least one)
 * differ: a changed port, a changed address (a bit flipped inside the prefix, so it stays a valid network), a
 * changed verdict (accept/drop/reject), a deleted rule, or an inserted modified copy of a rule. Line based, so it
 * works on any of the generators' outputs and keeps the text loadable.
 */
export function mutate(text: string, fraction: number, seed: number): string {
  return mutateWithChanges(text, fraction, seed).text;
}

export function mutateWithChanges(text: string, fraction: number, seed: number): MutationResult {
  const r = rng(seed ^ 0x3a7e);
  const lines = text.split('\n');
  const iptables = lines.some((l) => l.startsWith('-A '));
  const ruleLines = iptables ? iptablesRuleLines(lines) : nftRuleLines(lines);
  const k = Math.min(ruleLines.length, Math.max(1, Math.round(fraction * ruleLines.length)));
  // Partial Fisher-Yates: k distinct rules.
  const pool = [...ruleLines];
  for (let i = 0; i < k; i++) {
    const j = r.int(i, pool.length - 1);
    [pool[i], pool[j]] = [pool[j] as number, pool[i] as number];
  }
  const chosen = pool.slice(0, k).sort((a, b) => a - b);
  const replaced = new Map<number, string[]>();
  const changes: Mutation[] = [];
  for (const idx of chosen) {
    const before = lines[idx] as string;
    const edits: [MutationKind, string][] = [];
    for (const kind of ['port', 'address', 'verdict'] as const) {
      const after = editRule(r, before, kind, iptables);
      if (after !== undefined && after !== before) edits.push([kind, after]);
    }
    const x = r.next();
    if (x < 0.15) {
      replaced.set(idx, []);
      changes.push({ kind: 'delete', line: idx + 1, before });
    } else if (x < 0.3 || edits.length === 0) {
      // An inserted rule: a modified copy placed after the original (an exact duplicate when nothing can change).
      const after = edits.length > 0 ? r.pick(edits)[1] : before;
      replaced.set(idx, [before, after]);
      changes.push({ kind: 'insert', line: idx + 1, before, after });
    } else {
      const [kind, after] = r.pick(edits);
      replaced.set(idx, [after]);
      changes.push({ kind, line: idx + 1, before, after });
    }
  }
  const out: string[] = [];
  lines.forEach((l, i) => {
    const rep = replaced.get(i);
    if (rep) out.push(...rep);
    else out.push(l);
  });
  return { text: out.join('\n'), changes };
}

function iptablesRuleLines(lines: readonly string[]): number[] {
  const out: number[] = [];
  lines.forEach((l, i) => {
    if (l.startsWith('-A ')) out.push(i);
  });
  return out;
}

/** Rule lines of nft text: lines inside a chain block other than its type/policy declaration and comments. */
function nftRuleLines(lines: readonly string[]): number[] {
  const out: number[] = [];
  let inChain = false;
  let depth = 0;
  lines.forEach((raw, i) => {
    const l = raw.trim();
    if (!inChain) {
      if (/^chain \S+ \{$/.test(l)) {
        inChain = true;
        depth = 1;
      }
      return;
    }
    if (l === '}' && depth === 1) {
      inChain = false;
      return;
    }
    if (l === '' || l.startsWith('#') || l.startsWith('type ') || l.startsWith('policy ') || l.startsWith('comment '))
      return;
    out.push(i);
  });
  return out;
}

const VERDICTS: readonly Verdict[] = ['accept', 'drop', 'reject'];

function editRule(r: Rng, line: string, kind: 'port' | 'address' | 'verdict', iptables: boolean): string | undefined {
  switch (kind) {
    case 'port': {
      const re = iptables ? /(--[sd]port )(\d+)(?::(\d+))?(?=\s|$)/ : /([sd]port )(\d+)(?:-(\d+))?(?=\s|$)/;
      const m = re.exec(line);
      if (!m) return undefined;
      const lo = Number(m[2]);
      const hi = m[3] === undefined ? lo : Number(m[3]);
      const nlo = r.int(1, 65535 - (hi - lo));
      const sep = iptables ? ':' : '-';
      const repl = `${m[1]}${nlo}${hi === lo ? '' : `${sep}${nlo + hi - lo}`}`;
      return line.slice(0, m.index) + repl + line.slice(m.index + m[0].length);
    }
    case 'address': {
      const re = iptables
        ? /(-[sd] )(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)/
        : /([sd]addr (?:!= )?)(\d+)\.(\d+)\.(\d+)\.(\d+)(?:\/(\d+))?(?![\d.:])/;
      const m = re.exec(line);
      if (!m) return undefined;
      const len = m[6] === undefined ? 32 : Number(m[6]);
      if (len === 0) return undefined;
      const addr = ((Number(m[2]) << 24) | (Number(m[3]) << 16) | (Number(m[4]) << 8) | Number(m[5])) >>> 0;
      // Flip one bit inside the prefix: a different network of the same length.
      const flipped = (addr ^ (1 << (32 - r.int(Math.max(1, len - 7), len)))) >>> 0;
      const repl = iptables ? `${m[1]}${ipv4(flipped)}/${len}` : `${m[1]}${cidr4(flipped, len)}`;
      return line.slice(0, m.index) + repl + line.slice(m.index + m[0].length);
    }
    case 'verdict': {
      if (iptables) {
        const m = / -j (ACCEPT|DROP|REJECT)(?: --reject-with \S+)?$/.exec(line);
        if (!m) return undefined;
        const v = otherVerdict(r, (m[1] as string).toLowerCase() as Verdict);
        const target = v === 'reject' ? 'REJECT --reject-with icmp-port-unreachable' : v.toUpperCase();
        return `${line.slice(0, m.index)} -j ${target}`;
      }
      const m = / (accept|drop|reject)((?: comment "[^"]*")?)$/.exec(line);
      if (!m || !VERDICTS.includes(m[1] as Verdict)) return undefined;
      return `${line.slice(0, m.index)} ${otherVerdict(r, m[1] as Verdict)}${m[2]}`;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Shapes real hosts have (iptables-save): one chain per source network, fail2ban, Docker networks, ufw

interface IptTable {
  readonly name: 'filter' | 'nat';
  /** Built-in chains with their policies, in iptables-save's order. */
  readonly builtins: readonly (readonly [string, 'ACCEPT' | 'DROP'])[];
  /** Rules per chain (built-in and user chains), each rule without its `-A CHAIN` head. */
  readonly chains: Map<string, string[]>;
}

function iptTable(name: 'filter' | 'nat', builtins: IptTable['builtins']): IptTable {
  const chains = new Map<string, string[]>();
  for (const [c] of builtins) chains.set(c, []);
  return { name, builtins, chains };
}

function iptChain(t: IptTable, name: string): string[] {
  let c = t.chains.get(name);
  if (!c) {
    c = [];
    t.chains.set(name, c);
  }
  return c;
}

function iptRuleCount(tables: readonly IptTable[]): number {
  let k = 0;
  for (const t of tables) for (const c of t.chains.values()) k += c.length;
  return k;
}

const STAMP = 'Tue Nov 24 06:00:00 2026';

/** iptables-save text of the tables: built-in chains, then user chains by name; rules chain by chain. */
function renderIptables(tables: readonly IptTable[]): string {
  const out: string[] = [];
  for (const t of tables) {
    out.push(`# Generated by iptables-save v1.8.9 (nf_tables) on ${STAMP}`, `*${t.name}`);
    const builtin = new Set(t.builtins.map(([c]) => c));
    for (const [c, p] of t.builtins) out.push(`:${c} ${p} [0:0]`);
    const user = [...t.chains.keys()].filter((c) => !builtin.has(c)).sort();
    for (const c of user) out.push(`:${c} - [0:0]`);
    for (const c of [...t.builtins.map(([b]) => b), ...user]) {
      for (const r of t.chains.get(c) ?? []) out.push(`-A ${c} ${r}`);
    }
    out.push('COMMIT', `# Completed on ${STAMP}`);
  }
  return `${out.join('\n')}\n`;
}

const FILTER_BUILTINS = (input: 'ACCEPT' | 'DROP', forward: 'ACCEPT' | 'DROP'): IptTable['builtins'] => [
  ['INPUT', input],
  ['FORWARD', forward],
  ['OUTPUT', 'ACCEPT'],
];

const REJECT = '-j REJECT --reject-with icmp-port-unreachable';

/** A network as iptables-save prints it (always with its length). */
function iptCidr(addr: number, len: number): string {
  return `${ipv4((addr & mask4(len)) >>> 0)}/${len}`;
}

function iptPorts(lo: number, hi: number): string {
  return lo === hi ? String(lo) : `${lo}:${hi}`;
}

/** A random public-looking IPv4 address (not in 0/8, 10/8, 127/8, 224/3). */
function publicIpv4(r: Rng): number {
  for (;;) {
    const a = r.int(1, 223);
    if (a === 10 || a === 127 || a === 100 || a === 172 || a === 192) continue;
    return ((a << 24) | (r.int(0, 255) << 16) | (r.int(0, 255) << 8) | r.int(1, 254)) >>> 0;
  }
}

/**
 * One user chain per /24 source network, each jumped to from INPUT (`-s 10.a.b.0/24 -j net-a-b`), about 20 rules
 * per chain: per-host and per-service accepts, a few drops and rejects, and a final drop or return. What a new user
 * tried first (issue 19: 5 000 rules, 250 chains).
 */
export function generatePerSourceIptables(n: number, seed: number): string {
  const r = rng(seed ^ 0x50c3);
  const filter = iptTable('filter', FILTER_BUILTINS('DROP', 'DROP'));
  const input = iptChain(filter, 'INPUT');
  input.push(
    '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-m conntrack --ctstate INVALID -j DROP',
    '-i lo -j ACCEPT',
    '-p icmp -m icmp --icmp-type 8 -j ACCEPT',
  );
  const tail = ['-p tcp -m tcp --dport 22 -j ACCEPT', `-p tcp ${REJECT.replace('icmp-port-unreachable', 'tcp-reset')}`];
  const chains = Math.max(2, Math.round(n / 20));
  const fixed = input.length + tail.length + chains;
  const budget = Math.max(0, n - fixed);
  const servers = Array.from({ length: 16 }, (_, i) => ((192 << 24) | (2 << 8) | (10 + i)) >>> 0);
  for (let k = 0; k < chains; k++) {
    // Distinct /24s spread over 10.0.0.0/8.
    const net = ((10 << 24) | (((k * 193 + 7) % 65536) << 8)) >>> 0;
    const name = `net-${(net >>> 16) & 255}-${(net >>> 8) & 255}`;
    input.push(`-s ${ipv4(net)}/24 -j ${name}`);
    const c = iptChain(filter, name);
    const share = Math.floor(budget / chains) + (k < budget % chains ? 1 : 0);
    while (c.length < share - 1) {
      const x = r.next();
      const host = `${ipv4((net | r.int(1, 254)) >>> 0)}/32`;
      const dst = `${ipv4(r.pick(servers))}/32`;
      const proto = r.chance(0.85) ? 'tcp' : 'udp';
      const [lo, hi] = portRange(r);
      if (x < 0.35) c.push(`-s ${host} -d ${dst} -p ${proto} -m ${proto} --dport ${iptPorts(lo, hi)} -j ACCEPT`);
      else if (x < 0.6) c.push(`-d ${dst} -p ${proto} -m ${proto} --dport ${iptPorts(lo, hi)} -j ACCEPT`);
      else if (x < 0.7) {
        const ports = [...new Set([r.pick(COMMON_PORTS), r.pick(COMMON_PORTS), r.pick(COMMON_PORTS)])];
        c.push(`-s ${host} -p tcp -m multiport --dports ${ports.sort((a, b) => a - b).join(',')} -j ACCEPT`);
      } else if (x < 0.8) c.push(`-s ${host} -j DROP`);
      else if (x < 0.9) c.push(`-s ${host} -p ${proto} -m ${proto} --dport ${iptPorts(lo, hi)} ${REJECT}`);
      else {
        const sub = r.int(25, 30);
        c.push(`-s ${iptCidr((net | r.int(0, 255)) >>> 0, sub)} -p ${proto} -m ${proto} --dport ${lo} -j ACCEPT`);
      }
    }
    if (share > 0) c.push(r.chance(0.5) ? '-j RETURN' : '-j DROP');
  }
  input.push(...tail);
  return renderIptables([filter]);
}

/**
 * A host with fail2ban: one f2b-<jail> chain per jail jumped to from INPUT for the jail's ports, holding one
 * `-s ADDR/32 -j REJECT` per banned address (random internet addresses) and a final RETURN, in front of a small
 * host firewall (conntrack, loopback, service accepts, policy drop).
 */
export function generateFail2banIptables(n: number, seed: number): string {
  const r = rng(seed ^ 0xf2b0);
  const filter = iptTable('filter', FILTER_BUILTINS('DROP', 'DROP'));
  const input = iptChain(filter, 'INPUT');
  const jails: [string, string][] = [
    ['sshd', '22'],
    ['nginx-http-auth', '80,443'],
    ['nginx-botsearch', '80,443'],
    ['postfix', '25,465,587'],
    ['dovecot', '110,143,993,995'],
    ['recidive', '0:65535'],
  ];
  for (const [jail, ports] of jails) {
    input.push(ports === '0:65535' ? `-p tcp -j f2b-${jail}` : `-p tcp -m multiport --dports ${ports} -j f2b-${jail}`);
  }
  input.push(
    '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-m conntrack --ctstate INVALID -j DROP',
    '-i lo -j ACCEPT',
    '-p icmp -m icmp --icmp-type 8 -m limit --limit 10/sec -j ACCEPT',
    '-p tcp -m multiport --dports 22,25,80,443,465,587,993 -m conntrack --ctstate NEW -j ACCEPT',
    '-s 192.0.2.0/28 -p tcp -m tcp --dport 9100 -j ACCEPT',
    '-p udp -m udp --dport 51820 -j ACCEPT',
  );
  const budget = Math.max(0, n - input.length - jails.length);
  // sshd collects most bans, recidive the fewest.
  const weights = [0.45, 0.15, 0.15, 0.1, 0.1, 0.05];
  let given = 0;
  jails.forEach(([jail], i) => {
    const c = iptChain(filter, `f2b-${jail}`);
    const k = i === jails.length - 1 ? budget - given : Math.floor(budget * (weights[i] as number));
    given += k;
    const seen = new Set<number>();
    while (c.length < k) {
      const a = publicIpv4(r);
      if (seen.has(a)) continue;
      seen.add(a);
      c.push(`-s ${ipv4(a)}/32 ${REJECT}`);
    }
    c.push('-j RETURN');
  });
  return renderIptables([filter]);
}

/**
 * A Docker host: per bridge network a FORWARD block, isolation rules and masquerading, per published container port
 * a DOCKER accept, a DNAT and a hairpin MASQUERADE (as dockerd writes them), and a few DOCKER-USER rules. The
 * interesting hook is forward (the benchmark's default for this shape).
 */
export function generateDockerIptables(n: number, seed: number): string {
  const r = rng(seed ^ 0xd0c4);
  const filter = iptTable('filter', FILTER_BUILTINS('ACCEPT', 'DROP'));
  const nat = iptTable('nat', [
    ['PREROUTING', 'ACCEPT'],
    ['INPUT', 'ACCEPT'],
    ['OUTPUT', 'ACCEPT'],
    ['POSTROUTING', 'ACCEPT'],
  ]);
  const fwd = iptChain(filter, 'FORWARD');
  const docker = iptChain(filter, 'DOCKER');
  const iso1 = iptChain(filter, 'DOCKER-ISOLATION-STAGE-1');
  const iso2 = iptChain(filter, 'DOCKER-ISOLATION-STAGE-2');
  const user = iptChain(filter, 'DOCKER-USER');
  fwd.push('-j DOCKER-USER', '-j DOCKER-ISOLATION-STAGE-1');
  user.push(
    '-s 198.51.100.0/24 -j DROP',
    '-i eth0 -p tcp -m tcp --dport 5432 -j DROP',
    '-i eth0 -p tcp -m tcp --dport 6379 -j DROP',
  );
  const pre = iptChain(nat, 'PREROUTING');
  const out = iptChain(nat, 'OUTPUT');
  const post = iptChain(nat, 'POSTROUTING');
  const ndocker = iptChain(nat, 'DOCKER');
  pre.push('-m addrtype --dst-type LOCAL -j DOCKER');
  out.push('! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER');
  // Per network 8 rules (4 FORWARD, 2 isolation, 1 MASQUERADE, 1 nat DOCKER return), per published port 3.
  const networks = Math.max(1, Math.round(n / 60));
  const fixedTail = 4; // the two isolation RETURNs, DOCKER-USER's RETURN and INPUT's rule
  let hostPort = 8000;
  const nets: { br: string; net: number; next: number }[] = [];
  for (let k = 0; k < networks; k++) {
    const br = k === 0 ? 'docker0' : `br-${(0x5e2a1f0c9d00 + k * 0x1f3d7).toString(16).padStart(12, '0')}`;
    // 172.17.0.0/16 for docker0, then /24s from 172.18.0.0 on (docker's default address pools).
    const net =
      k === 0 ? ((172 << 24) | (17 << 16)) >>> 0 : ((172 << 24) | ((18 + (k >> 8)) << 16) | ((k & 255) << 8)) >>> 0;
    const len = k === 0 ? 16 : 24;
    nets.push({ br, net, next: 2 });
    fwd.push(
      `-o ${br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
      `-o ${br} -j DOCKER`,
      `-i ${br} ! -o ${br} -j ACCEPT`,
      `-i ${br} -o ${br} -j ACCEPT`,
    );
    iso1.push(`-i ${br} ! -o ${br} -j DOCKER-ISOLATION-STAGE-2`);
    iso2.push(`-o ${br} -j DROP`);
    post.push(`-s ${iptCidr(net, len)} ! -o ${br} -j MASQUERADE`);
    ndocker.push(`-i ${br} -j RETURN`);
  }
  const filterInput = iptChain(filter, 'INPUT');
  filterInput.push('-i docker0 -p udp -m udp --dport 53 -j ACCEPT');
  while (iptRuleCount([filter, nat]) + fixedTail + 3 <= n) {
    const nw = r.pick(nets);
    if (nw.next > 250) continue;
    const addr = (nw.net | nw.next++) >>> 0;
    const proto = r.chance(0.9) ? 'tcp' : 'udp';
    const port = r.pick([80, 443, 3000, 5000, 5432, 6379, 8080, 8443, 9000, 9090, 27017]);
    const published = hostPort++;
    docker.push(`-d ${ipv4(addr)}/32 ! -i ${nw.br} -o ${nw.br} -p ${proto} -m ${proto} --dport ${port} -j ACCEPT`);
    const bind = r.chance(0.2) ? '-d 127.0.0.1/32 ' : '';
    ndocker.push(
      `${bind}! -i ${nw.br} -p ${proto} -m ${proto} --dport ${published} -j DNAT --to-destination ${ipv4(addr)}:${port}`,
    );
    post.push(`-s ${ipv4(addr)}/32 -d ${ipv4(addr)}/32 -p ${proto} -m ${proto} --dport ${port} -j MASQUERADE`);
  }
  iso1.push('-j RETURN');
  iso2.push('-j RETURN');
  user.push('-j RETURN');
  // Pad with DOCKER-USER rules to exactly n (before its RETURN).
  user.pop();
  while (iptRuleCount([filter, nat]) + 1 < n) {
    user.push(`-s ${ipv4(publicIpv4(r))}/32 -j DROP`);
  }
  user.push('-j RETURN');
  return renderIptables([filter, nat]);
}

/**
 * A host managed by ufw: ufw's chain layout (before/after/logging/reject/track/user chains, ufw-not-local, the
 * limit chains), exactly as `ufw enable` writes it, and n minus the fixed rules as `ufw allow/deny/limit` rules in
 * ufw-user-input (ports, sources, destinations, multiport app profiles, deny-from, and the recent/limit pairs).
 */
export function generateUfwIptables(n: number, seed: number): string {
  const r = rng(seed ^ 0x0f3a);
  const filter = iptTable('filter', FILTER_BUILTINS('DROP', 'DROP'));
  const add = (c: string, rules: readonly string[]): void => {
    iptChain(filter, c).push(...rules);
  };
  for (const dir of ['input', 'forward', 'output']) {
    const base = dir.toUpperCase();
    add(
      base,
      ['before-logging', 'before', 'after', 'after-logging', 'reject', 'track'].map((p) => `-j ufw-${p}-${dir}`),
    );
    iptChain(filter, `ufw-user-${dir}`);
    iptChain(filter, `ufw-user-logging-${dir}`);
    iptChain(filter, `ufw-before-logging-${dir}`);
    iptChain(filter, `ufw-reject-${dir}`);
  }
  add('ufw-after-input', [
    '-p udp -m udp --dport 137 -j ufw-skip-to-policy-input',
    '-p udp -m udp --dport 138 -j ufw-skip-to-policy-input',
    '-p tcp -m tcp --dport 139 -j ufw-skip-to-policy-input',
    '-p tcp -m tcp --dport 445 -j ufw-skip-to-policy-input',
    '-p udp -m udp --dport 67 -j ufw-skip-to-policy-input',
    '-p udp -m udp --dport 68 -j ufw-skip-to-policy-input',
    '-m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input',
  ]);
  iptChain(filter, 'ufw-after-forward');
  iptChain(filter, 'ufw-after-output');
  for (const d of ['forward', 'input']) {
    add(`ufw-after-logging-${d}`, ['-m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "']);
  }
  iptChain(filter, 'ufw-after-logging-output');
  add('ufw-before-forward', [
    '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-p icmp -m icmp --icmp-type 3 -j ACCEPT',
    '-p icmp -m icmp --icmp-type 11 -j ACCEPT',
    '-p icmp -m icmp --icmp-type 12 -j ACCEPT',
    '-p icmp -m icmp --icmp-type 8 -j ACCEPT',
    '-j ufw-user-forward',
  ]);
  add('ufw-before-input', [
    '-i lo -j ACCEPT',
    '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-m conntrack --ctstate INVALID -j ufw-logging-deny',
    '-m conntrack --ctstate INVALID -j DROP',
    '-p icmp -m icmp --icmp-type 3 -j ACCEPT',
    '-p icmp -m icmp --icmp-type 11 -j ACCEPT',
    '-p icmp -m icmp --icmp-type 12 -j ACCEPT',
    '-p icmp -m icmp --icmp-type 8 -j ACCEPT',
    '-p udp -m udp --sport 67 --dport 68 -j ACCEPT',
    '-j ufw-not-local',
    '-d 224.0.0.251/32 -p udp -m udp --dport 5353 -j ACCEPT',
    '-d 239.255.255.250/32 -p udp -m udp --dport 1900 -j ACCEPT',
    '-j ufw-user-input',
  ]);
  add('ufw-before-output', [
    '-o lo -j ACCEPT',
    '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-j ufw-user-output',
  ]);
  add('ufw-logging-allow', ['-m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW ALLOW] "']);
  add('ufw-logging-deny', [
    '-m conntrack --ctstate INVALID -m limit --limit 3/min --limit-burst 10 -j RETURN',
    '-m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "',
  ]);
  add('ufw-not-local', [
    '-m addrtype --dst-type LOCAL -j RETURN',
    '-m addrtype --dst-type MULTICAST -j RETURN',
    '-m addrtype --dst-type BROADCAST -j RETURN',
    '-m limit --limit 3/min --limit-burst 10 -j ufw-logging-deny',
    '-j DROP',
  ]);
  add('ufw-skip-to-policy-forward', ['-j DROP']);
  add('ufw-skip-to-policy-input', ['-j DROP']);
  add('ufw-skip-to-policy-output', ['-j ACCEPT']);
  iptChain(filter, 'ufw-track-forward');
  iptChain(filter, 'ufw-track-input');
  add('ufw-track-output', [
    '-p tcp -m conntrack --ctstate NEW -j ACCEPT',
    '-p udp -m conntrack --ctstate NEW -j ACCEPT',
  ]);
  add('ufw-user-limit', ['-m limit --limit 3/min -j LOG --log-prefix "[UFW LIMIT BLOCK] "', REJECT]);
  add('ufw-user-limit-accept', ['-j ACCEPT']);
  const userInput = iptChain(filter, 'ufw-user-input');
  const userOutput = iptChain(filter, 'ufw-user-output');
  const apps: [string, string][] = [
    ['Nginx%20Full', '80,443'],
    ['Postfix', '25'],
    ['Dovecot%20IMAP', '143,993'],
    ['OpenSSH', '22'],
  ];
  const tracked = new Set<string>();
  while (iptRuleCount([filter]) < n) {
    const left = n - iptRuleCount([filter]);
    const x = r.next();
    const proto = r.chance(0.8) ? 'tcp' : 'udp';
    const port = r.chance(0.6) ? r.pick(COMMON_PORTS) : r.int(1024, 65000);
    const f = r.chance(0.6) ? `-s ${iptCidr(publicIpv4(r), r.pick([8, 16, 20, 24, 24, 28, 32, 32]))} ` : '';
    if (x < 0.45) userInput.push(`${f}-p ${proto} -m ${proto} --dport ${port} -j ACCEPT`);
    else if (x < 0.6) userInput.push(`-s ${ipv4(publicIpv4(r))}/32 -j DROP`);
    else if (x < 0.7) {
      const dst = `-d ${ipv4(((192 << 24) | (2 << 8) | r.int(1, 30)) >>> 0)}/32 `;
      userInput.push(`${f}${dst}-p ${proto} -m ${proto} --dport ${port} -j ACCEPT`);
    } else if (x < 0.78) {
      const [app, ports] = r.pick(apps);
      userInput.push(`${f}-p tcp -m multiport --dports ${ports} -m comment --comment "\\'dapp_${app}\\'" -j ACCEPT`);
    } else if (x < 0.88) userInput.push(`${f}-p ${proto} -m ${proto} --dport ${port} ${REJECT}`);
    else if (x < 0.94 && left >= 3 && !tracked.has(`${proto}${port}`)) {
      // `ufw limit PORT/tcp`: the recent pair, then the accept through ufw-user-limit-accept.
      tracked.add(`${proto}${port}`);
      userInput.push(
        `-p ${proto} -m ${proto} --dport ${port} -m conntrack --ctstate NEW -m recent --set --name DEFAULT --mask 255.255.255.255 --rsource`,
        `-p ${proto} -m ${proto} --dport ${port} -m conntrack --ctstate NEW -m recent --update --seconds 30 --hitcount 6 --name DEFAULT --mask 255.255.255.255 --rsource -j ufw-user-limit`,
        `-p ${proto} -m ${proto} --dport ${port} -j ufw-user-limit-accept`,
      );
    } else userOutput.push(`-d ${iptCidr(publicIpv4(r), 24)} -p tcp -m tcp --dport ${port} -j ACCEPT`);
  }
  return renderIptables([filter]);
}
