/**
 * Deterministic generator of large, realistic rulesets for benchmarks and scale tests.
 *
 * The shape is what big real hosts carry: a kube-proxy nat table (KUBE-SERVICES with one rule per service port,
 * KUBE-SVC chains that spread load over endpoints, KUBE-SEP chains that DNAT) next to a hand-written filter table
 * (CIDRs of every length, port ranges, multiport, conntrack, interfaces, comments, logging, custom chains).
 *
 * One abstract ruleset is built from a seed and rendered three ways, so the three formats describe the same policy:
 * - iptables-save, exactly as `iptables-save` (nf_tables variant) prints it;
 * - nft text, as `nft list ruleset` prints it (kube-proxy's random endpoint choice becomes a `numgen random` vmap,
 *   as kube-proxy's own nftables mode writes it, because xt `statistic` has no native nft form);
 * - nft JSON, shaped exactly like `nft -j list ruleset` of that text (checked against the kernel, see bench/README).
 *
 * Pure: no Math.random, no clock, no I/O. `n` is the number of rules of the rendered format (exactly n, or the few
 * fixed rules when n is smaller than them).
 */

// ---------------------------------------------------------------------------------------------------------------
// PRNG

/** mulberry32: small, fast, good enough for test data, and the same sequence on every platform. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Rng {
  float(): number;
  int(lo: number, hi: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

function makeRng(seed: number): Rng {
  const next = prng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return {
    float: next,
    int,
    pick: <T>(items: readonly T[]): T => items[int(0, items.length - 1)] as T,
    chance: (p: number) => next() < p,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Abstract ruleset

type Proto = 'tcp' | 'udp';

type GenMatch =
  | { readonly k: 'addr'; readonly dir: 's' | 'd'; readonly net: number; readonly len: number; readonly neg: boolean }
  | { readonly k: 'proto'; readonly p: Proto }
  | { readonly k: 'port'; readonly p: Proto; readonly lo: number; readonly hi: number }
  | { readonly k: 'ports'; readonly p: Proto; readonly list: readonly number[] }
  /** `name` ending in '+' is an iptables wildcard (nft `*`). */
  | { readonly k: 'if'; readonly dir: 'i' | 'o'; readonly name: string; readonly neg: boolean }
  | { readonly k: 'ct'; readonly states: readonly string[] }
  /** `! --mark v/v`: the bit is not set. */
  | { readonly k: 'markUnset'; readonly bit: number }
  | { readonly k: 'local' };

type GenAction =
  | { readonly k: 'accept' | 'drop' | 'return' | 'reject' }
  | { readonly k: 'jump'; readonly target: string }
  | { readonly k: 'dnat'; readonly addr: number; readonly port: number }
  | { readonly k: 'masquerade' }
  | { readonly k: 'orMark' | 'xorMark'; readonly bit: number }
  | { readonly k: 'log'; readonly prefix: string }
  /** kube-proxy's random endpoint choice. iptables: one statistic rule per target; nft: one numgen vmap rule. */
  | { readonly k: 'spread'; readonly targets: readonly string[]; readonly comments: readonly string[] };

interface GenRule {
  readonly m: readonly GenMatch[];
  readonly a: GenAction;
  readonly comment?: string;
  readonly counter: boolean;
}

interface GenChain {
  readonly name: string;
  readonly base?: {
    readonly type: 'filter' | 'nat';
    readonly hook: string;
    readonly prio: number;
    readonly policy: 'accept' | 'drop';
  };
  readonly rules: GenRule[];
}

interface GenTable {
  readonly name: 'nat' | 'filter';
  readonly chains: GenChain[];
}

type Flavour = 'iptables' | 'nft';

/** How many rules a rule takes in the given rendering. */
function ruleCount(r: GenRule, flavour: Flavour): number {
  return r.a.k === 'spread' && flavour === 'iptables' ? r.a.targets.length : 1;
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const NAMESPACES = ['default', 'kube-system', 'shop', 'payments', 'monitoring', 'ingress-nginx', 'search', 'auth'];
const APPS = ['api', 'web', 'cart', 'checkout', 'db', 'cache', 'metrics', 'grafana', 'queue', 'worker', 'images'];
const PORT_NAMES = ['http', 'https', 'grpc', 'metrics', 'admin', 'dns', 'redis', 'pg'];
const IFACES = ['eth0', 'eth1', 'ens3', 'wg0', 'bond0.100', 'eth+', 'veth+', 'br-+'];
const COMMON_PORTS = [22, 25, 53, 80, 123, 143, 443, 465, 587, 993, 2049, 3306, 5432, 6379, 8080, 8443, 9090, 9100];
const PREFIX_LENS = [8, 10, 12, 16, 18, 20, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32];
// In kernel bit order (invalid, established, related, new), which is how nft prints a ct state bitmask.
const CT_SETS: readonly (readonly string[])[] = [['new'], ['established', 'related'], ['invalid'], ['related', 'new']];
const MASQ_BIT = 0x4000;

function ipv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function netOf(addr: number, len: number): number {
  return len === 0 ? 0 : (addr & (~0 << (32 - len))) >>> 0;
}

function build(n: number, seed: number, flavour: Flavour): GenTable[] {
  const rng = makeRng(seed);
  let count = 0;
  const add = (chain: GenChain, r: GenRule): void => {
    chain.rules.push(r);
    count += ruleCount(r, flavour);
  };

  // -- nat: kube-proxy (about 70% of the rules) ------------------------------------------------------------------
  const natBudget = Math.floor(n * 0.7);
  const pre: GenChain = {
    name: 'PREROUTING',
    base: { type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' },
    rules: [],
  };
  const natIn: GenChain = {
    name: 'INPUT',
    base: { type: 'nat', hook: 'input', prio: 100, policy: 'accept' },
    rules: [],
  };
  const natOut: GenChain = {
    name: 'OUTPUT',
    base: { type: 'nat', hook: 'output', prio: -100, policy: 'accept' },
    rules: [],
  };
  const post: GenChain = {
    name: 'POSTROUTING',
    base: { type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' },
    rules: [],
  };
  const markMasq: GenChain = { name: 'KUBE-MARK-MASQ', rules: [] };
  const nodePorts: GenChain = { name: 'KUBE-NODEPORTS', rules: [] };
  const kpost: GenChain = { name: 'KUBE-POSTROUTING', rules: [] };
  const services: GenChain = { name: 'KUBE-SERVICES', rules: [] };
  const natChains: GenChain[] = [pre, natIn, natOut, post, markMasq, nodePorts, kpost, services];
  const svcChains: GenChain[] = [];
  const sepChains: GenChain[] = [];

  const portals = 'kubernetes service portals';
  add(pre, { m: [], a: { k: 'jump', target: 'KUBE-SERVICES' }, comment: portals, counter: true });
  add(natOut, { m: [], a: { k: 'jump', target: 'KUBE-SERVICES' }, comment: portals, counter: true });
  add(post, {
    m: [],
    a: { k: 'jump', target: 'KUBE-POSTROUTING' },
    comment: 'kubernetes postrouting rules',
    counter: true,
  });
  add(markMasq, { m: [], a: { k: 'orMark', bit: MASQ_BIT }, counter: true });
  add(kpost, { m: [{ k: 'markUnset', bit: MASQ_BIT }], a: { k: 'return' }, counter: true });
  add(kpost, { m: [], a: { k: 'xorMark', bit: MASQ_BIT }, counter: true });
  add(kpost, { m: [], a: { k: 'masquerade' }, comment: 'kubernetes service traffic requiring SNAT', counter: true });

  const chainId = (): string => {
    let s = '';
    for (let i = 0; i < 16; i++) s += B32[rng.int(0, 31)];
    return s;
  };
  const clusterNet = (10 << 24) | (244 << 16);
  let svcIndex = 0;
  // Each service port costs 2 + 3k rules (iptables) or 3 + 2k (nft); stop while the next one still fits.
  while (count + (flavour === 'iptables' ? 14 : 11) <= natBudget) {
    const k = rng.pick([1, 1, 2, 2, 2, 3, 3, 4]);
    const ns = rng.pick(NAMESPACES);
    const name = `${rng.pick(APPS)}-${svcIndex}`;
    const portName = rng.pick(PORT_NAMES);
    const svc = `${ns}/${name}:${portName}`;
    const p: Proto = portName === 'dns' && rng.chance(0.5) ? 'udp' : 'tcp';
    const port = rng.pick(COMMON_PORTS);
    const targetPort = rng.chance(0.5) ? port : rng.int(1024, 32767);
    const clusterIp =
      ((10 << 24) | (96 << 16) | ((Math.floor(svcIndex / 254) % 256) << 8) | ((svcIndex % 254) + 1)) >>> 0;
    svcIndex++;
    const svcName = `KUBE-SVC-${chainId()}`;
    const svcChain: GenChain = { name: svcName, rules: [] };
    svcChains.push(svcChain);
    add(services, {
      m: [
        { k: 'addr', dir: 'd', net: clusterIp, len: 32, neg: false },
        { k: 'port', p, lo: port, hi: port },
      ],
      a: { k: 'jump', target: svcName },
      comment: `${svc} cluster IP`,
      counter: true,
    });
    add(svcChain, {
      m: [
        { k: 'addr', dir: 's', net: clusterNet >>> 0, len: 16, neg: true },
        { k: 'addr', dir: 'd', net: clusterIp, len: 32, neg: false },
        { k: 'port', p, lo: port, hi: port },
      ],
      a: { k: 'jump', target: 'KUBE-MARK-MASQ' },
      comment: `${svc} cluster IP`,
      counter: true,
    });
    const targets: string[] = [];
    const comments: string[] = [];
    for (let e = 0; e < k; e++) {
      const ep = (clusterNet | (rng.int(0, 255) << 8) | rng.int(2, 254)) >>> 0;
      const sepName = `KUBE-SEP-${chainId()}`;
      targets.push(sepName);
      comments.push(`${svc} -> ${ipv4(ep)}:${targetPort}`);
      const sep: GenChain = { name: sepName, rules: [] };
      sepChains.push(sep);
      add(sep, {
        m: [{ k: 'addr', dir: 's', net: ep, len: 32, neg: false }],
        a: { k: 'jump', target: 'KUBE-MARK-MASQ' },
        comment: svc,
        counter: true,
      });
      add(sep, { m: [{ k: 'proto', p }], a: { k: 'dnat', addr: ep, port: targetPort }, comment: svc, counter: true });
    }
    add(svcChain, { m: [], a: { k: 'spread', targets, comments }, counter: true });
  }
  add(services, {
    m: [{ k: 'local' }],
    a: { k: 'jump', target: 'KUBE-NODEPORTS' },
    comment: 'kubernetes service nodeports; NOTE: this must be the last rule in this chain',
    counter: true,
  });
  natChains.push(...svcChains, ...sepChains);

  // -- filter: hand-written (the rest) ---------------------------------------------------------------------------
  const input: GenChain = {
    name: 'INPUT',
    base: { type: 'filter', hook: 'input', prio: 0, policy: 'drop' },
    rules: [],
  };
  const forward: GenChain = {
    name: 'FORWARD',
    base: { type: 'filter', hook: 'forward', prio: 0, policy: 'drop' },
    rules: [],
  };
  const output: GenChain = {
    name: 'OUTPUT',
    base: { type: 'filter', hook: 'output', prio: 0, policy: 'accept' },
    rules: [],
  };
  const custom: GenChain[] = ['admin-ssh', 'web-in', 'mail-in', 'monitoring', 'partners', 'blocklist'].map((name) => ({
    name,
    rules: [],
  }));
  const logdrop: GenChain = { name: 'LOGDROP', rules: [] };
  const filterChains = [input, forward, output, ...custom, logdrop];

  add(input, { m: [{ k: 'ct', states: ['established', 'related'] }], a: { k: 'accept' }, counter: false });
  add(input, { m: [{ k: 'if', dir: 'i', name: 'lo', neg: false }], a: { k: 'accept' }, counter: false });
  add(input, { m: [{ k: 'ct', states: ['invalid'] }], a: { k: 'drop' }, counter: false });
  add(forward, { m: [{ k: 'ct', states: ['established', 'related'] }], a: { k: 'accept' }, counter: false });
  add(logdrop, { m: [], a: { k: 'log', prefix: 'LOGDROP: ' }, counter: false });
  add(logdrop, { m: [], a: { k: 'drop' }, counter: false });
  for (const c of custom) add(input, { m: [], a: { k: 'jump', target: c.name }, counter: false });

  let ruleNo = 0;
  while (count < n) {
    // Most rules go to the custom chains, as on a real hand-maintained host; some to INPUT and FORWARD.
    const roll = rng.float();
    const chain = roll < 0.15 ? input : roll < 0.25 ? forward : roll < 0.28 ? output : rng.pick(custom);
    add(chain, randomRule(rng, chain, ruleNo++));
  }
  return [
    { name: 'nat', chains: natChains },
    { name: 'filter', chains: filterChains },
  ];
}

function randomCidr(rng: Rng): { net: number; len: number } {
  const len = rng.pick(PREFIX_LENS);
  const first = rng.pick([10, 172, 192, 198, 203, rng.int(1, 223)]);
  const addr = ((first << 24) | (rng.int(0, 255) << 16) | (rng.int(0, 255) << 8) | rng.int(0, 255)) >>> 0;
  return { net: netOf(addr, len), len };
}

function randomRule(rng: Rng, chain: GenChain, ruleNo: number): GenRule {
  const m: GenMatch[] = [];
  const isBase = chain.base !== undefined;
  if (rng.chance(0.5)) m.push({ k: 'addr', dir: 's', ...randomCidr(rng), neg: rng.chance(0.08) });
  if (rng.chance(0.15)) m.push({ k: 'addr', dir: 'd', ...randomCidr(rng), neg: rng.chance(0.05) });
  if (chain.name !== 'OUTPUT' && rng.chance(0.3))
    m.push({ k: 'if', dir: 'i', name: rng.pick(IFACES), neg: rng.chance(0.1) });
  if (chain.name !== 'INPUT' && rng.chance(chain.name === 'FORWARD' ? 0.5 : 0.05))
    m.push({ k: 'if', dir: 'o', name: rng.pick(IFACES), neg: false });
  if (rng.chance(0.75)) {
    const p: Proto = rng.chance(0.8) ? 'tcp' : 'udp';
    const shape = rng.float();
    if (shape < 0.5) {
      const port = rng.chance(0.6) ? rng.pick(COMMON_PORTS) : rng.int(1, 65535);
      m.push({ k: 'port', p, lo: port, hi: port });
    } else if (shape < 0.7) {
      const lo = rng.int(1024, 60000);
      m.push({ k: 'port', p, lo, hi: lo + rng.int(1, 5000) });
    } else if (shape < 0.9) {
      const list = new Set<number>();
      const size = rng.int(2, 6);
      while (list.size < size) list.add(rng.chance(0.7) ? rng.pick(COMMON_PORTS) : rng.int(1, 65535));
      m.push({ k: 'ports', p, list: [...list].sort((a, b) => a - b) });
    } else {
      m.push({ k: 'proto', p });
    }
  }
  if (rng.chance(0.2)) m.push({ k: 'ct', states: rng.pick(CT_SETS) });
  const roll = rng.float();
  let a: GenAction;
  if (roll < 0.45) a = { k: 'accept' };
  else if (roll < 0.68) a = { k: 'drop' };
  else if (roll < 0.78) a = { k: 'reject' };
  else if (roll < 0.86) a = isBase ? { k: 'jump', target: 'LOGDROP' } : { k: 'return' };
  else if (roll < 0.93) a = { k: 'log', prefix: `${chain.name} ${ruleNo % 97}: ` };
  else a = { k: 'jump', target: 'LOGDROP' };
  const comment = rng.chance(0.3) ? `ticket OPS-${1000 + (ruleNo % 9000)} ${rng.pick(APPS)}` : undefined;
  return { m, a, ...(comment ? { comment } : {}), counter: rng.chance(0.3) };
}

// ---------------------------------------------------------------------------------------------------------------
// iptables-save

const IPT_POLICY = { accept: 'ACCEPT', drop: 'DROP' } as const;
/** The order in which the conntrack match prints its states. */
const IPT_CT_ORDER = ['invalid', 'new', 'related', 'established', 'untracked'];
const STAMP = 'Tue Nov 24 10:00:00 2026';

function iptRule(chain: string, r: GenRule, out: string[]): void {
  let addrs = '';
  let ifs = '';
  let proto = '';
  let mods = '';
  for (const m of r.m) {
    switch (m.k) {
      case 'addr':
        addrs += `${m.neg ? ' !' : ''} -${m.dir} ${ipv4(m.net)}/${m.len}`;
        break;
      case 'if':
        ifs += `${m.neg ? ' !' : ''} -${m.dir} ${m.name}`;
        break;
      case 'proto':
        proto = ` -p ${m.p}`;
        break;
      case 'port':
        proto = ` -p ${m.p}`;
        mods += ` -m ${m.p} --dport ${m.lo === m.hi ? m.lo : `${m.lo}:${m.hi}`}`;
        break;
      case 'ports':
        proto = ` -p ${m.p}`;
        mods += ` -m multiport --dports ${m.list.join(',')}`;
        break;
      case 'ct':
        mods += ` -m conntrack --ctstate ${IPT_CT_ORDER.filter((s) => m.states.includes(s))
          .map((s) => s.toUpperCase())
          .join(',')}`;
        break;
      case 'markUnset':
        mods += ` -m mark ! --mark 0x${m.bit.toString(16)}/0x${m.bit.toString(16)}`;
        break;
      case 'local':
        mods += ' -m addrtype --dst-type LOCAL';
        break;
    }
  }
  // iptables-save prints the comment match where it was given; kube-proxy gives it before the protocol match.
  const comment = (c: string | undefined): string => (c === undefined ? '' : ` -m comment --comment "${c}"`);
  const head = `-A ${chain}${addrs}${ifs}${proto}`;
  const a = r.a;
  let target: string;
  switch (a.k) {
    case 'accept':
    case 'drop':
    case 'return':
      target = a.k.toUpperCase();
      break;
    case 'reject':
      target = 'REJECT --reject-with icmp-port-unreachable';
      break;
    case 'jump':
      target = a.target;
      break;
    case 'dnat':
      target = `DNAT --to-destination ${ipv4(a.addr)}:${a.port}`;
      break;
    case 'masquerade':
      target = 'MASQUERADE --random-fully';
      break;
    case 'orMark':
      target = `MARK --set-xmark 0x${a.bit.toString(16)}/0x${a.bit.toString(16)}`;
      break;
    case 'xorMark':
      target = `MARK --set-xmark 0x${a.bit.toString(16)}/0x0`;
      break;
    case 'log':
      target = `LOG --log-prefix "${a.prefix}"`;
      break;
    case 'spread': {
      const k = a.targets.length;
      for (let i = 0; i < k; i++) {
        const left = k - i;
        const stat = left > 1 ? ` -m statistic --mode random --probability ${statProbability(1 / left)}` : '';
        out.push(`${head}${comment(a.comments[i])}${mods}${stat} -j ${a.targets[i]}`);
      }
      return;
    }
  }
  out.push(`${head}${comment(r.comment)}${mods} -j ${target}`);
}

/** xt_statistic stores the probability as a 31-bit fraction; iptables-save prints that value with 11 decimals. */
function statProbability(p: number): string {
  return (Math.round(0x80000000 * p) / 0x80000000).toFixed(11);
}

/** An iptables-save text of exactly n rules (at least the few fixed kube-proxy and baseline rules). */
export function generateIptablesSave(n: number, seed: number): string {
  const out: string[] = [];
  // iptables-save prints filter before nat, and in each table the built-in chains, then user chains by name.
  for (const t of build(n, seed, 'iptables').reverse()) {
    const chains = [
      ...t.chains.filter((c) => c.base),
      ...t.chains.filter((c) => !c.base).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    ];
    out.push(`# Generated by iptables-save v1.8.9 (nf_tables) on ${STAMP}`, `*${t.name}`);
    for (const c of chains) out.push(`:${c.name} ${c.base ? IPT_POLICY[c.base.policy] : '-'} [0:0]`);
    for (const c of chains) for (const r of c.rules) iptRule(c.name, r, out);
    out.push('COMMIT', `# Completed on ${STAMP}`);
  }
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// nft text

const PRIO_NAME: Record<string, Record<number, string>> = {
  filter: { 0: 'filter' },
  nat: { [-100]: 'dstnat', 100: 'srcnat' },
};

function nftPrio(type: string, hook: string, prio: number): string {
  // nft prints symbolic priorities only where they are standard for the hook: dstnat on prerouting, srcnat on
  // postrouting; the nat output/input chains print as numbers.
  if (type === 'nat') {
    if (hook === 'prerouting' && prio === -100) return 'dstnat';
    if (hook === 'postrouting' && prio === 100) return 'srcnat';
    return String(prio);
  }
  return PRIO_NAME[type]?.[prio] ?? String(prio);
}

function nftIfname(name: string): string {
  return name.endsWith('+') ? `${name.slice(0, -1)}*` : name;
}

function nftAddr(m: { net: number; len: number }): string {
  return m.len === 32 ? ipv4(m.net) : `${ipv4(m.net)}/${m.len}`;
}

function nftRuleText(r: GenRule): string {
  const parts: string[] = [];
  for (const m of r.m) {
    switch (m.k) {
      case 'addr':
        parts.push(`ip ${m.dir}addr ${m.neg ? '!= ' : ''}${nftAddr(m)}`);
        break;
      case 'if':
        parts.push(`${m.dir}ifname ${m.neg ? '!= ' : ''}"${nftIfname(m.name)}"`);
        break;
      case 'proto':
        parts.push(`ip protocol ${m.p}`);
        break;
      case 'port':
        parts.push(`${m.p} dport ${m.lo === m.hi ? m.lo : `${m.lo}-${m.hi}`}`);
        break;
      case 'ports':
        parts.push(`${m.p} dport { ${m.list.join(', ')} }`);
        break;
      case 'ct':
        // The comma form is a bitmask match; braces would make an anonymous set (another JSON shape).
        parts.push(`ct state ${m.states.join(',')}`);
        break;
      case 'markUnset':
        parts.push(`meta mark & 0x${hex8(m.bit)} != 0x${hex8(m.bit)}`);
        break;
      case 'local':
        parts.push('fib daddr type local');
        break;
    }
  }
  if (r.counter) parts.push('counter packets 0 bytes 0');
  const a = r.a;
  switch (a.k) {
    case 'accept':
    case 'drop':
    case 'return':
      parts.push(a.k);
      break;
    case 'reject':
      parts.push('reject');
      break;
    case 'jump':
      parts.push(`jump ${a.target}`);
      break;
    case 'dnat':
      parts.push(`dnat to ${ipv4(a.addr)}:${a.port}`);
      break;
    case 'masquerade':
      parts.push('masquerade fully-random');
      break;
    case 'orMark':
      parts.push(`meta mark set meta mark | 0x${hex8(a.bit)}`);
      break;
    case 'xorMark':
      parts.push(`meta mark set meta mark ^ 0x${hex8(a.bit)}`);
      break;
    case 'log':
      parts.push(`log prefix "${a.prefix}"`);
      break;
    case 'spread':
      parts.push(
        `numgen random mod ${a.targets.length} vmap { ${a.targets.map((t, i) => `${i} : jump ${t}`).join(', ')} }`,
      );
      break;
  }
  if (r.comment !== undefined) parts.push(`comment "${r.comment}"`);
  return parts.join(' ');
}

function hex8(v: number): string {
  return v.toString(16).padStart(8, '0');
}

/** nft text (as `nft list ruleset` prints it) of exactly n rules. */
export function generateNftText(n: number, seed: number): string {
  const out: string[] = [];
  for (const t of build(n, seed, 'nft')) {
    out.push(`table ip ${t.name} {`);
    t.chains.forEach((c, i) => {
      if (i > 0) out.push('');
      out.push(`\tchain ${c.name} {`);
      if (c.base) {
        const b = c.base;
        out.push(`\t\ttype ${b.type} hook ${b.hook} priority ${nftPrio(b.type, b.hook, b.prio)}; policy ${b.policy};`);
      }
      for (const r of c.rules) out.push(`\t\t${nftRuleText(r)}`);
      out.push('\t}');
    });
    out.push('}');
  }
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// nft JSON

type Json = null | boolean | number | string | readonly Json[] | { readonly [k: string]: Json };

function jMatch(op: string, left: Json, right: Json): Json {
  return { match: { op, left, right } };
}

function jAddr(m: { net: number; len: number }): Json {
  return m.len === 32 ? ipv4(m.net) : { prefix: { addr: ipv4(m.net), len: m.len } };
}

function nftRuleExpr(r: GenRule): Json[] {
  const e: Json[] = [];
  for (const m of r.m) {
    switch (m.k) {
      case 'addr':
        e.push(jMatch(m.neg ? '!=' : '==', { payload: { protocol: 'ip', field: `${m.dir}addr` } }, jAddr(m)));
        break;
      case 'if':
        e.push(jMatch(m.neg ? '!=' : '==', { meta: { key: `${m.dir}ifname` } }, nftIfname(m.name)));
        break;
      case 'proto':
        e.push(jMatch('==', { payload: { protocol: 'ip', field: 'protocol' } }, m.p));
        break;
      case 'port':
        e.push(
          jMatch('==', { payload: { protocol: m.p, field: 'dport' } }, m.lo === m.hi ? m.lo : { range: [m.lo, m.hi] }),
        );
        break;
      case 'ports':
        e.push(jMatch('==', { payload: { protocol: m.p, field: 'dport' } }, { set: m.list }));
        break;
      case 'ct':
        e.push(jMatch('in', { ct: { key: 'state' } }, m.states.length === 1 ? (m.states[0] as string) : m.states));
        break;
      case 'markUnset':
        e.push(jMatch('!=', { '&': [{ meta: { key: 'mark' } }, m.bit] }, m.bit));
        break;
      case 'local':
        e.push(jMatch('==', { fib: { result: 'type', flags: ['daddr'] } }, 'local'));
        break;
    }
  }
  if (r.counter) e.push({ counter: { packets: 0, bytes: 0 } });
  const a = r.a;
  switch (a.k) {
    case 'accept':
    case 'drop':
    case 'return':
      e.push({ [a.k]: null });
      break;
    case 'reject':
      e.push({ reject: { type: 'icmp', expr: 'port-unreachable' } });
      break;
    case 'jump':
      e.push({ jump: { target: a.target } });
      break;
    case 'dnat':
      e.push({ dnat: { addr: ipv4(a.addr), port: a.port } });
      break;
    case 'masquerade':
      e.push({ masquerade: { flags: 'fully-random' } });
      break;
    case 'orMark':
    case 'xorMark':
      e.push({
        mangle: {
          key: { meta: { key: 'mark' } },
          value: { [a.k === 'orMark' ? '|' : '^']: [{ meta: { key: 'mark' } }, a.bit] },
        },
      });
      break;
    case 'log':
      e.push({ log: { prefix: a.prefix } });
      break;
    case 'spread':
      e.push({
        vmap: {
          key: { numgen: { mode: 'random', mod: a.targets.length, offset: 0 } },
          data: { set: a.targets.map((t, i) => [i, { jump: { target: t } }]) },
        },
      });
      break;
  }
  return e;
}

/** The objects of `nft -j list ruleset` for the same ruleset as generateNftText (handles as the kernel assigns them). */
export function generateNftJsonObject(n: number, seed: number): { nftables: Json[] } {
  const items: Json[] = [{ metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } }];
  let tableHandle = 1;
  for (const t of build(n, seed, 'nft')) {
    items.push({ table: { family: 'ip', name: t.name, handle: tableHandle++ } });
    // Chains and rules share one handle counter per table; the nested syntax creates all chains first.
    let h = 1;
    for (const c of t.chains) {
      const chain: Record<string, Json> = { family: 'ip', table: t.name, name: c.name, handle: h++ };
      if (c.base)
        Object.assign(chain, { type: c.base.type, hook: c.base.hook, prio: c.base.prio, policy: c.base.policy });
      items.push({ chain });
    }
    for (const c of t.chains) {
      for (const r of c.rules) {
        // An anonymous set (`{ 80, 443 }`, a vmap) takes a handle from the same counter, just before its rule.
        if (r.a.k === 'spread' || r.m.some((m) => m.k === 'ports')) h++;
        const rule: Record<string, Json> = { family: 'ip', table: t.name, chain: c.name, handle: h++ };
        if (r.comment !== undefined) rule.comment = r.comment;
        rule.expr = nftRuleExpr(r);
        items.push({ rule });
      }
    }
  }
  return { nftables: items };
}

/** `nft -j list ruleset` output (one line, as nft prints it) of exactly n rules. */
export function generateNftJson(n: number, seed: number): string {
  return `${JSON.stringify(generateNftJsonObject(n, seed))}\n`;
}
