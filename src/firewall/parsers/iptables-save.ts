/**
 * Parser for iptables-save / ip6tables-save output, and for the iptables-restore files ufw keeps
 * (/etc/ufw/*.rules), into the ruleset model.
 *
 * Each `*table ... COMMIT` block becomes a Table of family `ip` or `ip6`; built-in chains are base chains at the
 * priorities iptables-nft registers. Work is done in two passes per block: the first tokenises lines and collects
 * chain declarations (so the family can be detected and `-j` targets resolved before rules are built), the second
 * builds the rules. The hot loop dispatches on option strings with switches; regexes are kept off the common path.
 */
import { didYouMean } from '../../config/did-you-mean.js';
import { ParseError } from '../../errors.js';
import type {
  BaseChainSpec,
  Chain,
  ChainType,
  Element,
  Family,
  Field,
  Hook,
  L3,
  Match,
  NamedSet,
  NatType,
  NatVerdict,
  OpaqueCategory,
  Origin,
  Policy,
  Rule,
  Ruleset,
  Statement,
  Table,
  Verdict,
  Warning,
} from '../model.js';
import { DEFAULT_SYN_TCP_OPTIONS, type ExactOpaque, PORT_PROTOCOLS } from '../model.js';
import {
  IPTABLES_ADDR_TYPES,
  IPTABLES_ICMP_TYPES,
  IPTABLES_ICMPV6_TYPES,
  IPTABLES_PROTOCOLS,
  IPTABLES_SERVICES,
  IPTABLES_TCP_FLAGS,
} from '../symbols.js';
import { parseAddress, parseAddressRange, rangeElement } from '../values.js';
import { own, scanWord, type WordEnd } from './common.js';
import { type IpsetSave, parseIpsetSave, resolveIpset } from './ipset.js';

export interface IptablesOptions {
  /** `ipset save` output, for `-m set --match-set`. */
  readonly ipsets?: { readonly file: string; readonly text: string };
  /** Force the family (iptables-save = ipv4, ip6tables-save = ipv6); detected from the addresses otherwise. */
  readonly family?: L3;
}

// ---------------------------------------------------------------------------------------------------------------
// Tables and built-in chains

interface BuiltinSpec {
  readonly hook: Hook;
  readonly priority: number;
  readonly type: ChainType;
}

/** Built-in chains at the priorities iptables-nft uses (NF_IP_PRI_*). */
const BUILTINS: Readonly<Record<string, Readonly<Record<string, BuiltinSpec>>>> = {
  filter: {
    INPUT: { hook: 'input', priority: 0, type: 'filter' },
    FORWARD: { hook: 'forward', priority: 0, type: 'filter' },
    OUTPUT: { hook: 'output', priority: 0, type: 'filter' },
  },
  nat: {
    PREROUTING: { hook: 'prerouting', priority: -100, type: 'nat' },
    INPUT: { hook: 'input', priority: 100, type: 'nat' },
    OUTPUT: { hook: 'output', priority: -100, type: 'nat' },
    POSTROUTING: { hook: 'postrouting', priority: 100, type: 'nat' },
  },
  mangle: {
    PREROUTING: { hook: 'prerouting', priority: -150, type: 'filter' },
    INPUT: { hook: 'input', priority: -150, type: 'filter' },
    FORWARD: { hook: 'forward', priority: -150, type: 'filter' },
    OUTPUT: { hook: 'output', priority: -150, type: 'route' },
    POSTROUTING: { hook: 'postrouting', priority: -150, type: 'filter' },
  },
  raw: {
    PREROUTING: { hook: 'prerouting', priority: -300, type: 'filter' },
    OUTPUT: { hook: 'output', priority: -300, type: 'filter' },
  },
  security: {
    INPUT: { hook: 'input', priority: 50, type: 'filter' },
    FORWARD: { hook: 'forward', priority: 50, type: 'filter' },
    OUTPUT: { hook: 'output', priority: 50, type: 'filter' },
  },
};

/** Targets that end the traversal (or hand the packet to NAT / userspace). */
const VERDICT_TARGETS = new Set([
  'ACCEPT',
  'DROP',
  'REJECT',
  'RETURN',
  'QUEUE',
  'NFQUEUE',
  'DNAT',
  'SNAT',
  'MASQUERADE',
  'REDIRECT',
  'NETMAP',
]);

/** Target extensions that only have side effects the model does not need (the rule continues). */
const QUIET_TARGETS = new Set([
  'LOG',
  'NFLOG',
  'ULOG',
  'MARK',
  'CONNMARK',
  'CT',
  'NOTRACK',
  'TRACE',
  'TCPMSS',
  'CLASSIFY',
  'DSCP',
  'TOS',
  'TTL',
  'HL',
  'ECN',
  'CHECKSUM',
  'SECMARK',
  'CONNSECMARK',
  'AUDIT',
  'IDLETIMER',
  'LED',
  'RATEEST',
  'SET',
  'TCPOPTSTRIP',
]);

/** Known targets whose effect on the verdict or on later matches the model does not follow: kept, with a warning. */
const WARN_TARGETS = new Set(['TEE', 'TPROXY', 'SYNPROXY', 'CLUSTERIP', 'DNPT', 'SNPT', 'HMARK']);

function knownTargets(): string {
  return [...VERDICT_TARGETS, ...QUIET_TARGETS, ...WARN_TARGETS].join(', ');
}

/**
 * The match extensions iptables and ip6tables have (iptables-extensions(8), iptables 1.8): `-m NAME` with any other
 * name is refused by iptables-restore ("Couldn't load match"), so it is a parse error here too, not an opaque match.
 */
const MATCH_MODULES: readonly string[] = [
  'addrtype',
  'ah',
  'bpf',
  'cgroup',
  'cluster',
  'comment',
  'connbytes',
  'connlabel',
  'connlimit',
  'connmark',
  'conntrack',
  'cpu',
  'dccp',
  'devgroup',
  'dscp',
  'dst',
  'ecn',
  'esp',
  'eui64',
  'frag',
  'hashlimit',
  'hbh',
  'helper',
  'hl',
  'icmp',
  'icmp6',
  'icmpv6',
  'ipv6-icmp',
  'iprange',
  'ipcomp',
  'ipv6header',
  'ipvs',
  'l2tp',
  'length',
  'limit',
  'mac',
  'mark',
  'mh',
  'multiport',
  'nfacct',
  'osf',
  'owner',
  'physdev',
  'pkttype',
  'policy',
  'quota',
  'rateest',
  'realm',
  'recent',
  'rpfilter',
  'rt',
  'sctp',
  'set',
  'socket',
  'state',
  'statistic',
  'string',
  'tcp',
  'tcpmss',
  'time',
  'tos',
  'ttl',
  'u32',
  'udp',
  'udplite',
];

/** ` (did you mean 'X'?)` for a misspelt name, compared without case (`ACEPT` -> `ACCEPT`). */
function suggest(name: string, known: readonly string[]): string {
  const lower = known.map((k) => k.toLowerCase());
  const hint = didYouMean(name.toLowerCase(), lower);
  if (hint === '') return '';
  return hint.replace(/'([^']+)'/g, (_m, k: string) => `'${known[lower.indexOf(k)] ?? k}'`);
}

// ---------------------------------------------------------------------------------------------------------------
// Tokens

interface Tok {
  readonly s: string;
  /** 1-based column of the token's first character (the opening quote for quoted tokens). */
  readonly col: number;
  /** The token was (partly) quoted, so a leading `-` or `!` in it is data, not syntax. */
  readonly q: boolean;
  /** 0-based index just after the token in its line. */
  readonly end: number;
}

/**
 * Token objects are reused from line to line: a rule's tokens are only read while that rule is parsed (what the
 * model keeps are the strings), and on 100k-rule inputs two million short-lived objects were a large part of the
 * garbage collector's work.
 */
const TOK_POOL: { s: string; col: number; q: boolean; end: number }[] = [];

function pooledTok(index: number, s: string, col: number, q: boolean, end: number): Tok {
  let t = TOK_POOL[index];
  if (t === undefined) {
    t = { s, col, q, end };
    TOK_POOL[index] = t;
  } else {
    t.s = s;
    t.col = col;
    t.q = q;
    t.end = end;
  }
  return t;
}

const WORD_END: WordEnd = { i: 0, quoted: false };

/**
 * iptables-restore's tokeniser: whitespace splits, double quotes group, `\` escapes the next character in quotes.
 * The returned tokens are valid until the next call (see TOK_POOL).
 */
function tokenize(line: string, file: string, lineNo: number): Tok[] {
  const out: Tok[] = [];
  const n = line.length;
  let i = 0;
  while (i < n) {
    const c = line.charCodeAt(i);
    if (c === 32 || c === 9) {
      i++;
      continue;
    }
    const start = i;
    // Fast path: an unquoted token is a plain slice.
    while (i < n) {
      const d = line.charCodeAt(i);
      if (d === 32 || d === 9 || d === 34) break;
      i++;
    }
    if (i >= n || line.charCodeAt(i) !== 34) {
      out.push(pooledTok(out.length, line.slice(start, i), start + 1, false, i));
      continue;
    }
    const s = scanWord(line, start, i, file, lineNo, WORD_END);
    i = WORD_END.i;
    out.push(pooledTok(out.length, s, start + 1, WORD_END.quoted, i));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Value tables

const CT_STATES: Readonly<Record<string, string>> = {
  NEW: 'new',
  ESTABLISHED: 'established',
  RELATED: 'related',
  INVALID: 'invalid',
  UNTRACKED: 'untracked',
};

// ---------------------------------------------------------------------------------------------------------------
// Options: which match module owns which option

const PROTO_MODULE_OPTS: Readonly<Record<string, ReadonlySet<string>>> = {
  tcp: new Set(['--sport', '--source-port', '--dport', '--destination-port', '--tcp-flags', '--syn', '--tcp-option']),
  udp: new Set(['--sport', '--source-port', '--dport', '--destination-port']),
  udplite: new Set(['--sport', '--source-port', '--dport', '--destination-port']),
  sctp: new Set(['--sport', '--source-port', '--dport', '--destination-port', '--chunk-types']),
  dccp: new Set(['--sport', '--source-port', '--dport', '--destination-port', '--dccp-types', '--dccp-option']),
  icmp: new Set(['--icmp-type']),
  icmp6: new Set(['--icmpv6-type']),
};

/** Options of the modules this parser models (the others claim any `--option` that follows them). */
const MODULE_OPTS: Readonly<Record<string, ReadonlySet<string>>> = {
  ...PROTO_MODULE_OPTS,
  multiport: new Set(['--dports', '--sports', '--ports', '--destination-ports', '--source-ports']),
  conntrack: new Set([
    '--ctstate',
    '--ctstatus',
    '--ctproto',
    '--ctorigsrc',
    '--ctorigdst',
    '--ctreplsrc',
    '--ctrepldst',
    '--ctorigsrcport',
    '--ctorigdstport',
    '--ctreplsrcport',
    '--ctrepldstport',
    '--ctexpire',
    '--ctdir',
  ]),
  state: new Set(['--state']),
  iprange: new Set(['--src-range', '--dst-range']),
  comment: new Set(['--comment']),
  set: new Set([
    '--match-set',
    '--set',
    '--return-nomatch',
    '--update-counters',
    '--update-subcounters',
    '--packets-eq',
    '--packets-lt',
    '--packets-gt',
    '--bytes-eq',
    '--bytes-lt',
    '--bytes-gt',
  ]),
  addrtype: new Set(['--src-type', '--dst-type', '--limit-iface-in', '--limit-iface-out']),
  mark: new Set(['--mark']),
  limit: new Set(['--limit', '--limit-burst']),
};

/** Modules whose conditions depend on rates or counts (OpaqueMatch category 'limit'). */
const LIMIT_MODULES = new Set(['limit', 'hashlimit', 'connlimit']);
const QUOTA_MODULES = new Set(['quota', 'connbytes']);

/** Options of the core parser that may also be written long. */
const CORE_LONG: Readonly<Record<string, string>> = {
  '--source': '-s',
  '--src': '-s',
  '--destination': '-d',
  '--dst': '-d',
  '--protocol': '-p',
  '--in-interface': '-i',
  '--out-interface': '-o',
  '--jump': '-j',
  '--goto': '-g',
  '--match': '-m',
  '--fragment': '-f',
  '--set-counters': '-c',
};

/** Target options the modelled targets understand; unmodelled targets take any `--option`. */
const TARGET_OPTS: Readonly<Record<string, ReadonlySet<string>>> = {
  ACCEPT: new Set(),
  DROP: new Set(),
  RETURN: new Set(),
  QUEUE: new Set(),
  REJECT: new Set(['--reject-with']),
  DNAT: new Set(['--to-destination', '--to', '--random', '--persistent']),
  SNAT: new Set(['--to-source', '--to', '--random', '--random-fully', '--persistent']),
  MASQUERADE: new Set(['--to-ports', '--random', '--random-fully']),
  REDIRECT: new Set(['--to-ports', '--random']),
};

/** Arguments each modelled option takes (others take the following tokens that do not look like options). */
const ARITY: Readonly<Record<string, number>> = {
  '--sport': 1,
  '--source-port': 1,
  '--dport': 1,
  '--destination-port': 1,
  '--tcp-flags': 2,
  '--syn': 0,
  '--icmp-type': 1,
  '--icmpv6-type': 1,
  '--dports': 1,
  '--sports': 1,
  '--ports': 1,
  '--destination-ports': 1,
  '--source-ports': 1,
  '--ctstate': 1,
  '--state': 1,
  '--src-range': 1,
  '--dst-range': 1,
  '--comment': 1,
  '--match-set': 2,
  '--src-type': 1,
  '--dst-type': 1,
  '--limit-iface-in': 0,
  '--limit-iface-out': 0,
  '--mark': 1,
  '--reject-with': 1,
  '--to-destination': 1,
  '--to-source': 1,
  '--to-ports': 1,
  '--set-mark': 1,
  '--set-xmark': 1,
  '--and-mark': 1,
  '--or-mark': 1,
  '--xor-mark': 1,
  '--log-prefix': 1,
  '--nflog-prefix': 1,
  '--random': 0,
  '--random-fully': 0,
  '--persistent': 0,
};

// ---------------------------------------------------------------------------------------------------------------
// Parse state

interface Opt {
  readonly name: string;
  /** The `!` when negated, else the option itself: where the option's text starts. */
  readonly tok: Tok;
  readonly nameTok: Tok;
  readonly neg: boolean;
  readonly args: Tok[];
}

interface ModuleInst {
  readonly name: string;
  /** The `-m` token; undefined for a protocol module loaded implicitly by `-p tcp`. */
  readonly tok: Tok | undefined;
  /** Index just after the module name in the line (-1 when implicit). */
  readonly nameEnd: number;
  readonly opts: Opt[];
}

type Item = { readonly kind: 'core'; readonly opt: Opt } | { readonly kind: 'module'; readonly inst: ModuleInst };

interface ChainDecl {
  readonly name: string;
  readonly builtin: BuiltinSpec | undefined;
  policy: Policy;
  readonly origin: Origin;
  readonly rules: Rule[];
  /** Declared by a `:` or `-N` line (built-ins may be implied by ufw files that only append to them). */
  readonly declared: boolean;
}

interface RuleLine {
  readonly line: number;
  /** The line as read (columns refer to it). */
  readonly raw: string;
  /** The line without surrounding blanks: Rule.text. */
  readonly text: string;
}

interface Block {
  readonly name: string;
  /** The family named by the `# Generated by ip6tables-save|iptables-save` header above the block, if any. */
  readonly header?: Family;
  readonly line: number;
  readonly chains: Map<string, ChainDecl>;
  /** The source text the offsets below point into. */
  readonly source: string;
  /**
   * Rule lines as flat (line number, start, end) triples: plain numbers, so that pass 1 keeps no object per rule
   * alive for the garbage collector to copy (RuleLine objects are made on the fly in pass 2).
   */
  readonly ruleLines: number[];
}

class Warnings {
  private readonly byKey = new Map<string, { w: Warning; count: number }>();
  /** One warning per key, with a count: kube-proxy hosts would otherwise produce one per rule. */
  add(key: string, code: string, message: string, origin: Origin): void {
    const e = this.byKey.get(key);
    if (e) e.count++;
    else this.byKey.set(key, { w: { code, message, origin }, count: 1 });
  }
  list(): Warning[] {
    return [...this.byKey.values()].map(({ w, count }) =>
      count > 1 ? { ...w, message: `${w.message} (${count} rules; first shown)` } : w,
    );
  }
}

interface Ctx {
  readonly file: string;
  readonly family: Family;
  readonly l3: L3;
  readonly table: string;
  readonly chains: Map<string, ChainDecl>;
  readonly warnings: Warnings;
  readonly ipsets: IpsetSave | undefined;
  readonly usedSets: Map<string, NamedSet>;
  readonly addrCache: Map<string, AddrEntry | null>;
  /** Elements are immutable, so equal port texts share one (fewer bigints for the GC on 100k-rule inputs). */
  readonly portCache: Map<string, Element>;
  /** Matches by source text, per table (see cachedMatches). */
  readonly matchCache: Map<string, readonly Match[]>;
  /** Jump and goto verdicts by target (bounded by the number of chains). */
  readonly verdictCache: Map<string, Verdict>;
  line: number;
  lineText: string;
  /** Column of the option or `-m` being built, for warnings. */
  column: number;
  chain: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Entry point

/** Parses iptables-save / ip6tables-save output (and ufw's *.rules files, which use the same format). */
export function parseIptablesSave(text: string, file: string, opts: IptablesOptions = {}): Ruleset {
  const warnings = new Warnings();
  const ipsets = opts.ipsets ? parseIpsetSave(opts.ipsets.text, opts.ipsets.file) : undefined;
  const tables: Table[] = [];
  const seen = new Map<string, Family>();
  const addrCache = new Map<string, AddrEntry | null>();
  const assumedV4: Block[] = [];
  let block: Block | undefined;
  let header: Family | undefined;
  let lineNo = 0;
  let pos = 0;
  const len = text.length;
  while (pos < len) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = len;
    let line = text.slice(pos, end);
    const lineStart = pos;
    pos = end + 1;
    lineNo++;
    if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
    // Leading whitespace is allowed by iptables-restore; find the first significant character.
    let k = 0;
    while (k < line.length && (line.charCodeAt(k) === 32 || line.charCodeAt(k) === 9)) k++;
    if (k === line.length) continue;
    const c = line.charCodeAt(k);
    if (c === 35 /* # */) {
      // Comments, including ufw's `### tuple ###` lines. The save tools' own header names the family, which is
      // the only clue an ip6tables-save without addresses (policy ACCEPT, no rules) carries.
      if (line.startsWith('# Generated by ip6tables-save', k)) header = 'ip6';
      else if (line.startsWith('# Generated by iptables-save', k)) header = 'ip';
      continue;
    }
    if (c === 42 /* * */) {
      const name = line.slice(k + 1).trim();
      if (block) throw new ParseError(file, lineNo, k + 1, line.trim(), `COMMIT to end table '${block.name}' first`);
      if (!BUILTINS[name]) {
        throw new ParseError(file, lineNo, k + 2, name, 'a table name (filter, nat, mangle, raw, security)');
      }
      block = { name, line: lineNo, chains: new Map(), source: text, ruleLines: [], ...(header ? { header } : {}) };
      continue;
    }
    if (!block) {
      throw new ParseError(
        file,
        lineNo,
        k + 1,
        line.trim().split(/\s+/)[0] ?? '',
        "a '*table' line before any chain or rule",
      );
    }
    if (c === 58 /* : */) {
      declareChain(block, line, k, file, lineNo);
      continue;
    }
    const trimmed = line.trim();
    if (trimmed === 'COMMIT') {
      tables.push(buildTable(block, file, opts, seen, warnings, ipsets, addrCache, assumedV4));
      block = undefined;
      continue;
    }
    // Rules are tokenised in pass 2 only: keeping every token of a 100k-rule block alive costs more in GC than
    // tokenising the few lines family detection needs twice.
    block.ruleLines.push(lineNo, lineStart, lineStart + line.length);
    // `-N chain` declares a user chain in iptables-restore input; register it now so pass 2 knows it.
    if (trimmed.startsWith('-N') || trimmed.startsWith('--new-chain')) {
      const toks = tokenize(line, file, lineNo);
      const first = toks[0]!;
      const name = toks[1];
      if (!name) throw new ParseError(file, lineNo, first.col + first.s.length, '', 'a chain name after -N');
      if (!block.chains.has(name.s)) {
        block.chains.set(name.s, {
          name: name.s,
          builtin: undefined,
          policy: 'accept',
          origin: { file, line: lineNo, column: first.col },
          rules: [],
          declared: true,
        });
      }
    }
  }
  if (block) {
    throw new ParseError(file, lineNo + 1, 1, '', `COMMIT for table '${block.name}' (opened on line ${block.line})`);
  }
  // Say which family was assumed for rules nothing dates (no address, no ICMP type, no ip6tables-only option), unless
  // the file also holds ip6tables tables (a concatenated dump then names both).
  const first = assumedV4[0];
  if (first && !tables.some((t) => t.family === 'ip6')) {
    warnings.add(
      'family-assumed',
      'iptables-family-guess',
      `no address or ICMP option in table ${assumedV4.map((b) => b.name).join(', ')} says which family the rules are for; taken as iptables (IPv4) (give --family ipv6, or name the file *.v6, if it is ip6tables)`,
      { file, line: first.line, column: 1 },
    );
  }
  return { kind: 'ruleset', backend: 'iptables', format: 'iptables-save', file, tables, warnings: warnings.list() };
}

function declareChain(block: Block, line: string, k: number, file: string, lineNo: number): void {
  const sp = line.indexOf(' ', k);
  const name = sp < 0 ? line.slice(k + 1) : line.slice(k + 1, sp);
  if (name === '') throw new ParseError(file, lineNo, k + 2, '', 'a chain name after :');
  let ps = sp < 0 ? line.length : sp;
  while (ps < line.length && (line.charCodeAt(ps) === 32 || line.charCodeAt(ps) === 9)) ps++;
  let pe = ps;
  while (pe < line.length && line.charCodeAt(pe) !== 32 && line.charCodeAt(pe) !== 9) pe++;
  const policyText = line.slice(ps, pe);
  const policyCol = ps + 1;
  const builtin = BUILTINS[block.name]![name];
  let policy: Policy = 'accept';
  if (builtin) {
    if (policyText === 'ACCEPT') policy = 'accept';
    else if (policyText === 'DROP') policy = 'drop';
    else throw new ParseError(file, lineNo, policyCol, policyText, `ACCEPT or DROP (policy of built-in chain ${name})`);
  } else if (policyText !== '-') {
    throw new ParseError(
      file,
      lineNo,
      policyCol,
      policyText,
      `'-' (${name} is not a built-in chain of table ${block.name}, so it has no policy)`,
    );
  }
  if (block.chains.has(name)) throw new ParseError(file, lineNo, k + 1, name, 'a chain not declared before');
  block.chains.set(name, {
    name,
    builtin,
    policy,
    origin: { file, line: lineNo, column: k + 1 },
    rules: [],
    declared: true,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Family detection

const ADDR_OPTS = new Set(['-s', '-d', '--source', '--destination', '--src', '--dst', '--src-range', '--dst-range']);
const NAT_ADDR_OPTS = new Set(['--to-destination', '--to-source', '--to']);

const IPV6_ONLY = new Set([
  'rt',
  'frag',
  'hbh',
  'dst',
  'mh',
  'ipv6header',
  'eui64',
  'hl',
  '--rt-type',
  '--rt-segsleft',
  '--fragid',
  '--hl-eq',
  '--hl-lt',
  '--hl-gt',
  '--mh-type',
]);

/** The file names ip6tables rules are kept under: rules.v6, ip6tables.rules, user6.rules, before6.rules. */
const V6_FILE_NAME = /(\.v6|ip6tables[^/]*|[a-z]6\.rules|rules6)$/i;

const V4_FILE_NAME = /(\.v4|(^|[^6])iptables[^/]*|[a-z]4\.rules|rules4)$/i;

/** 'ipv6' when the rule names IPv6 addresses or ICMPv6, 'ipv4' when IPv4 addresses or ICMP, else undefined. */
function ruleFamily(toks: readonly Tok[]): L3 | undefined {
  let v4 = false;
  for (let i = 0; i < toks.length; i++) {
    const s = toks[i]!.s;
    if (s === 'icmpv6' || s === 'ipv6-icmp' || s === '--icmpv6-type' || s === 'icmp6') return 'ipv6';
    // Match modules and options only ip6tables has (routing, fragment and other extension headers, hop limit).
    if (IPV6_ONLY.has(s) && (s.startsWith('--') || toks[i - 1]?.s === '-m')) return 'ipv6';
    if (s.startsWith('icmp6-') && toks[i - 1]?.s === '--reject-with') return 'ipv6';
    if (s === '--icmp-type' || s === 'icmp') v4 = true;
    else if (ADDR_OPTS.has(s) || NAT_ADDR_OPTS.has(s)) {
      let a = toks[i + 1]?.s;
      if (a === '!') a = toks[i + 2]?.s;
      if (a === undefined) continue;
      const colon = a.indexOf(':');
      if (ADDR_OPTS.has(s)) {
        if (colon >= 0) return 'ipv6';
        // Digits and dots only: a host name (pxe.example.org) says nothing about the family.
        if (a.indexOf('.') >= 0 && /^[\d.,/-]+$/.test(a)) v4 = true;
      } else if (a.startsWith('[') || (colon >= 0 && a.indexOf(':', colon + 1) >= 0)) return 'ipv6';
      else if (a.indexOf('.') >= 0) v4 = true;
    }
  }
  return v4 ? 'ipv4' : undefined;
}

function blockFamily(
  block: Block,
  file: string,
  opts: IptablesOptions,
  seen: Map<string, Family>,
  warnings: Warnings,
  assumedV4: Block[],
): Family {
  if (opts.family) return opts.family === 'ipv4' ? 'ip' : 'ip6';
  if (block.header) return block.header;
  // The first rule that names an address family decides: a later rule of the other family is then a bad
  // address, reported where it is.
  for (let i = 0; i < block.ruleLines.length; i += 3) {
    const r = ruleLineAt(block, i);
    const f = ruleFamily(tokenize(r.raw, file, r.line));
    if (f === 'ipv6') return 'ip6';
    if (f === 'ipv4') return 'ip';
  }
  // No address in the block: a second block of the same table is the ip6tables-save half of a concatenation.
  if (seen.get(block.name) === 'ip') {
    warnings.add(
      `family-guess:${block.line}`,
      'iptables-family-guess',
      `table ${block.name} appears twice and its second block names no address; taken as ip6tables (ip6)`,
      { file, line: block.line, column: 1 },
    );
    return 'ip6';
  }
  // Nothing in the block names a family: the file's name may (rules.v6, ip6tables.rules, user6.rules).
  const base = file.slice(file.lastIndexOf('/') + 1);
  if (V6_FILE_NAME.test(base)) {
    warnings.add(
      `family-guess:${block.line}`,
      'iptables-family-guess',
      `no address or ICMPv6 option in table ${block.name} says which family it is for; taken as ip6tables (IPv6) from the file name ${base} (give --family ipv4 if it is iptables)`,
      { file, line: block.line, column: 1 },
    );
    return 'ip6';
  }
  // rules.v4, iptables.rules: the name says IPv4, as the default does; nothing to warn about.
  if (block.ruleLines.length > 0 && !V4_FILE_NAME.test(base)) assumedV4.push(block);
  return 'ip';
}

// ---------------------------------------------------------------------------------------------------------------
// Pass 2: a table block into a Table

function buildTable(
  block: Block,
  file: string,
  opts: IptablesOptions,
  seen: Map<string, Family>,
  warnings: Warnings,
  ipsets: IpsetSave | undefined,
  addrCache: Map<string, AddrEntry | null>,
  assumedV4: Block[],
): Table {
  const family = blockFamily(block, file, opts, seen, warnings, assumedV4);
  if (!seen.has(block.name) || family === 'ip') seen.set(block.name, family);
  const ctx: Ctx = {
    file,
    family,
    l3: family === 'ip' ? 'ipv4' : 'ipv6',
    table: block.name,
    chains: block.chains,
    warnings,
    ipsets,
    usedSets: new Map(),
    addrCache,
    portCache: new Map(),
    matchCache: new Map(),
    verdictCache: new Map(),
    line: 0,
    lineText: '',
    column: 1,
    chain: '',
  };
  for (let i = 0; i < block.ruleLines.length; i += 3) {
    const r = ruleLineAt(block, i);
    ctx.line = r.line;
    ctx.lineText = r.raw;
    const toks = tokenize(r.raw, file, r.line);
    const cmd = toks[0]!;
    switch (cmd.s) {
      case '-N':
      case '--new-chain':
        if (toks.length > 2) throw new ParseError(file, r.line, toks[2]!.col, toks[2]!.s, 'end of line after -N CHAIN');
        continue;
      case '-P':
      case '--policy':
      case '-F':
      case '--flush':
      case '-X':
      case '--delete-chain':
      case '-Z':
      case '--zero':
        chainCommand(ctx, r, toks);
        continue;
      case '-A':
      case '--append':
      case '-I':
      case '--insert':
        break;
      default:
        if (cmd.s.charCodeAt(0) === 91 /* [ */ && toks[1]) {
          // `iptables-save -c` puts packet and byte counters in front of each rule.
          toks.shift();
          if (toks[0]!.s === '-A' || toks[0]!.s === '-I') {
            buildRuleLine(ctx, r, toks);
            continue;
          }
        }
        throw new ParseError(
          file,
          r.line,
          cmd.col,
          cmd.s,
          "'-A CHAIN', '-I CHAIN', ':CHAIN POLICY', '-N', '-P', '-F', '-X', '-Z', 'COMMIT' or a '#' comment",
        );
    }
    buildRuleLine(ctx, r, toks);
  }
  const chains: Chain[] = [];
  for (const c of block.chains.values()) {
    const chain: Chain = {
      kind: 'chain',
      name: c.name,
      rules: c.rules,
      origin: c.origin,
      ...(c.builtin
        ? {
            base: {
              type: c.builtin.type,
              hook: c.builtin.hook,
              priority: c.builtin.priority,
              policy: c.policy,
            } as BaseChainSpec,
          }
        : {}),
    };
    chains.push(chain);
  }
  return {
    kind: 'table',
    family,
    name: block.name,
    chains,
    sets: [...ctx.usedSets.values()],
    origin: { file, line: block.line, column: 1 },
    outOfScope: false,
  };
}

/**
 * The chain commands iptables-restore runs in order inside a table, as hand-written rules.v4 files have them:
 * `-P CHAIN POLICY` sets a built-in chain's policy, `-F [CHAIN]` empties one chain (or all) of the rules given so far,
 * `-X [CHAIN]` deletes an empty user chain (or all of them), `-Z` zeroes counters (nothing to model).
 */
function chainCommand(ctx: Ctx, r: RuleLine, toks: Tok[]): void {
  const cmd = toks[0]!;
  const name = cmd.s.startsWith('--')
    ? ({ '--policy': '-P', '--flush': '-F', '--delete-chain': '-X', '--zero': '-Z' } as Record<string, string>)[cmd.s]!
    : cmd.s;
  const chainTok = toks[1];
  const end = name === '-P' ? 3 : 2;
  if (toks.length > end) {
    throw new ParseError(
      ctx.file,
      r.line,
      toks[end]!.col,
      toks[end]!.s,
      `end of line after ${name} ${name === '-P' ? 'CHAIN POLICY' : '[CHAIN]'}`,
    );
  }
  const known = (tok: Tok): ChainDecl => {
    const c = ctx.chains.get(tok.s);
    if (c) return c;
    const builtin = BUILTINS[ctx.table]![tok.s];
    if (!builtin) {
      throw new ParseError(
        ctx.file,
        r.line,
        tok.col,
        tok.s,
        `a chain of table ${ctx.table} (declared: ${[...ctx.chains.keys()].join(', ') || 'none'})`,
        `${name}: no chain '${tok.s}' in table ${ctx.table}`,
      );
    }
    // A built-in chain exists in every table of its kind, declared or not.
    const decl: ChainDecl = {
      name: tok.s,
      builtin,
      policy: 'accept',
      origin: { file: ctx.file, line: r.line, column: cmd.col },
      rules: [],
      declared: true,
    };
    ctx.chains.set(tok.s, decl);
    return decl;
  };
  switch (name) {
    case '-P': {
      const policyTok = toks[2];
      if (!chainTok || !policyTok) {
        throw new ParseError(
          ctx.file,
          r.line,
          cmd.col + cmd.s.length + 1,
          '',
          'a built-in chain and ACCEPT or DROP after -P',
        );
      }
      const c = known(chainTok);
      if (!c.builtin) {
        throw new ParseError(
          ctx.file,
          r.line,
          chainTok.col,
          chainTok.s,
          `a built-in chain of table ${ctx.table}`,
          `-P: '${chainTok.s}' is a user chain, which has no policy`,
        );
      }
      if (policyTok.s !== 'ACCEPT' && policyTok.s !== 'DROP') {
        throw new ParseError(
          ctx.file,
          r.line,
          policyTok.col,
          policyTok.s,
          `ACCEPT or DROP (policy of built-in chain ${chainTok.s})`,
        );
      }
      c.policy = policyTok.s === 'ACCEPT' ? 'accept' : 'drop';
      return;
    }
    case '-F': {
      const targets = chainTok ? [known(chainTok)] : [...ctx.chains.values()];
      for (const c of targets) c.rules.length = 0;
      return;
    }
    case '-X': {
      const targets = chainTok ? [known(chainTok)] : [...ctx.chains.values()].filter((c) => !c.builtin);
      for (const c of targets) {
        if (c.builtin) {
          throw new ParseError(
            ctx.file,
            r.line,
            chainTok!.col,
            chainTok!.s,
            'a user chain',
            `-X: built-in chain '${c.name}' cannot be deleted`,
          );
        }
        if (c.rules.length > 0) {
          throw new ParseError(
            ctx.file,
            r.line,
            (chainTok ?? cmd).col,
            c.name,
            `an empty chain (flush it first with -F ${c.name})`,
            `-X: chain '${c.name}' is not empty`,
          );
        }
        ctx.chains.delete(c.name);
      }
      return;
    }
    default:
      return;
  }
}

function ruleLineAt(block: Block, i: number): RuleLine {
  const raw = block.source.slice(block.ruleLines[i + 1]!, block.ruleLines[i + 2]!);
  return { line: block.ruleLines[i]!, raw, text: raw.trim() };
}

function buildRuleLine(ctx: Ctx, r: RuleLine, toks: Tok[]): void {
  const cmd = toks[0]!;
  const chainTok = toks[1];
  if (!chainTok) throw new ParseError(ctx.file, r.line, cmd.col + cmd.s.length, '', `a chain name after ${cmd.s}`);
  let chain = ctx.chains.get(chainTok.s);
  if (!chain) {
    const builtin = BUILTINS[ctx.table]![chainTok.s];
    if (!builtin) {
      throw new ParseError(
        ctx.file,
        r.line,
        chainTok.col,
        chainTok.s,
        `a chain declared with ':${chainTok.s} - [0:0]' (declared in table ${ctx.table}: ${[...ctx.chains.keys()].join(', ') || 'none'})`,
      );
    }
    // ufw's rules files append to built-ins without declaring them; their policy is whatever the kernel has.
    chain = {
      name: chainTok.s,
      builtin,
      policy: 'accept',
      origin: { file: ctx.file, line: r.line, column: cmd.col },
      rules: [],
      declared: false,
    };
    ctx.chains.set(chain.name, chain);
    ctx.warnings.add(
      `implicit:${ctx.table}:${chain.name}`,
      'iptables-implicit-chain',
      `built-in chain ${chain.name} of table ${ctx.table} is used without a ':${chain.name} POLICY' line; policy taken as ACCEPT`,
      chain.origin,
    );
  }
  let start = 2;
  let insertAt = -1;
  if (cmd.s === '-I' || cmd.s === '--insert') {
    const n = toks[2];
    insertAt = 0;
    if (n && /^\d+$/.test(n.s)) {
      insertAt = Math.max(0, Number(n.s) - 1);
      start = 3;
    }
  }
  ctx.chain = chain.name;
  const rule = parseRule(ctx, r, toks, start, cmd.col);
  if (insertAt < 0) chain.rules.push(rule);
  else chain.rules.splice(Math.min(insertAt, chain.rules.length), 0, rule);
}

// ---------------------------------------------------------------------------------------------------------------
// One rule

function err(ctx: Ctx, tok: Tok | undefined, expected: string, message?: string): ParseError {
  if (!tok) return new ParseError(ctx.file, ctx.line, ctx.lineText.length + 1, '', expected, message);
  return new ParseError(ctx.file, ctx.line, tok.col, tok.s, expected, message);
}

function isOptionLike(t: Tok): boolean {
  return !t.q && t.s.length > 1 && t.s.charCodeAt(0) === 45 /* - */;
}

function parseRule(ctx: Ctx, r: RuleLine, toks: Tok[], start: number, column: number): Rule {
  const items: Item[] = [];
  const modules: ModuleInst[] = [];
  let implicitProto: ModuleInst | undefined;
  let protoItemIndex = -1;
  let protoName: string | undefined;
  let protoNeg = false;
  let target: { tok: Tok; goto: boolean; opts: Opt[] } | undefined;
  /** The module or target that gets the next `--option` first ('target' after -j). */
  let current: ModuleInst | 'target' | undefined;
  let neg = false;
  let negTok: Tok | undefined;

  const takeArgs = (name: string, i: number): { args: Tok[]; next: number; inlineNeg: boolean } => {
    const arity = ARITY[name];
    const args: Tok[] = [];
    let j = i + 1;
    let inlineNeg = false;
    // Old style `--opt ! value`: negation written after the option.
    const t = toks[j];
    if (t && !t.q && t.s === '!' && toks[j + 1] && !isOptionLike(toks[j + 1]!) && arity !== 0) {
      inlineNeg = true;
      j++;
      ctx.warnings.add(
        'old-negation',
        'iptables-old-negation',
        `'${name} ! value' is the deprecated form of '! ${name} value'; read as the latter`,
        { file: ctx.file, line: ctx.line, column: t.col },
      );
    }
    if (arity !== undefined) {
      for (let a = 0; a < arity; a++) {
        const v = toks[j];
        if (!v || (isOptionLike(v) && !/^-\d/.test(v.s)) || (v.s === '!' && !v.q)) {
          throw err(
            ctx,
            v,
            `${arity === 1 ? 'an argument' : `${arity} arguments`} for ${name}`,
            `missing argument for ${name}`,
          );
        }
        args.push(v);
        j++;
      }
    } else {
      while (j < toks.length && !isOptionLike(toks[j]!) && !(toks[j]!.s === '!' && !toks[j]!.q)) {
        args.push(toks[j]!);
        j++;
      }
    }
    return { args, next: j, inlineNeg };
  };

  let i = start;
  while (i < toks.length) {
    const t = toks[i]!;
    const s = t.s;
    if (s === '!' && !t.q) {
      if (neg) throw err(ctx, t, 'an option after !');
      neg = true;
      negTok = t;
      i++;
      continue;
    }
    if (!isOptionLike(t)) throw err(ctx, t, 'an option (such as -s, -p, -m, -j)');
    const core = s.charCodeAt(1) === 45 ? CORE_LONG[s] : s;
    switch (core) {
      case '-s':
      case '-d':
      case '-p':
      case '-i':
      case '-o': {
        const { args, next, inlineNeg } = takeArgs(core, i);
        if (args.length === 0) throw err(ctx, toks[next], `an argument for ${s}`, `missing argument for ${s}`);
        if (args.length > 1) throw err(ctx, args[1], 'an option (one argument per option)');
        const opt: Opt = { name: core, tok: negTok ?? t, nameTok: t, neg: neg || inlineNeg, args };
        for (const it of items) {
          if (it.kind === 'core' && it.opt.name === core) {
            throw err(ctx, t, `one ${core} per rule (iptables: multiple ${core} flags not allowed)`);
          }
        }
        items.push({ kind: 'core', opt });
        if (core === '-p') {
          protoName = normaliseProto(args[0]!.s);
          protoNeg = opt.neg;
          protoItemIndex = items.length - 1;
        }
        neg = false;
        negTok = undefined;
        current = undefined;
        i = next;
        continue;
      }
      case '-f': {
        items.push({ kind: 'core', opt: { name: '-f', tok: negTok ?? t, nameTok: t, neg, args: [] } });
        neg = false;
        negTok = undefined;
        i++;
        continue;
      }
      case '-c': {
        // Counters given inline (`-c PKTS BYTES`): they do not change what the rule matches.
        if (!toks[i + 2]) throw err(ctx, toks[i + 1], 'packet and byte counters after -c');
        i += 3;
        continue;
      }
      case '-m': {
        if (neg) throw err(ctx, negTok, 'an option (! cannot negate -m)');
        const nameTok = toks[i + 1];
        if (!nameTok || isOptionLike(nameTok))
          throw err(ctx, nameTok, 'a match module name after -m', 'missing argument for -m');
        if (!MATCH_MODULES.includes(nameTok.s.toLowerCase())) {
          const hint = suggest(nameTok.s, MATCH_MODULES);
          throw err(
            ctx,
            nameTok,
            hint !== ''
              ? 'a match module iptables has (iptables-extensions(8))'
              : `a match module iptables has: ${MATCH_MODULES.join(', ')}`,
            `unknown match module '${nameTok.s}'${hint} (iptables-restore refuses it: "Couldn't load match")`,
          );
        }
        const inst: ModuleInst = { name: nameTok.s, tok: t, nameEnd: nameTok.end, opts: [] };
        modules.push(inst);
        items.push({ kind: 'module', inst });
        current = inst;
        i += 2;
        continue;
      }
      case '-j':
      case '-g': {
        if (neg) throw err(ctx, negTok, 'an option (! cannot negate a target)');
        if (target) throw err(ctx, t, 'one -j or -g per rule');
        const nameTok = toks[i + 1];
        if (!nameTok || isOptionLike(nameTok))
          throw err(ctx, nameTok, `a target or chain name after ${s}`, `missing argument for ${s}`);
        target = { tok: nameTok, goto: core === '-g', opts: [] };
        current = 'target';
        i += 2;
        continue;
      }
      default:
        break;
    }
    if (s.charCodeAt(1) !== 45) throw err(ctx, t, 'an option: -s, -d, -p, -i, -o, -f, -m, -j, -g or a module option');
    // A module or target `--option`: find its owner.
    let owner: ModuleInst | 'target' | undefined;
    if (current && claims(current, s, target)) owner = current;
    if (!owner) {
      for (let m = modules.length - 1; m >= 0; m--) {
        const inst = modules[m]!;
        if (MODULE_OPTS[inst.name]?.has(s)) {
          owner = inst;
          break;
        }
      }
    }
    if (!owner && protoName !== undefined && PROTO_MODULE_OPTS[protoModule(protoName)]?.has(s)) {
      if (!implicitProto) {
        implicitProto = { name: protoModule(protoName), tok: undefined, nameEnd: -1, opts: [] };
        modules.push(implicitProto);
        items.splice(protoItemIndex + 1, 0, { kind: 'module', inst: implicitProto });
      }
      owner = implicitProto;
    }
    if (!owner && target && claims('target', s, target)) owner = 'target';
    if (!owner) {
      const loaded = modules.filter((m) => m.tok).map((m) => m.name);
      const icmpWrong = (s === '--icmp-type' && ctx.family === 'ip6') || (s === '--icmpv6-type' && ctx.family === 'ip');
      if (icmpWrong) {
        // The kernel's tools refuse it too: ip6tables has no --icmp-type, iptables no --icmpv6-type.
        const [tool, right, proto] =
          ctx.family === 'ip6'
            ? ['ip6tables-restore', '--icmpv6-type', 'ipv6-icmp']
            : ['iptables-restore', '--icmp-type', 'icmp'];
        throw err(
          ctx,
          t,
          `${right} (with -p ${proto}) in this ${ctx.family === 'ip6' ? 'ip6tables (IPv6)' : 'iptables (IPv4)'} table`,
          `unknown option '${s}': ${tool} refuses it too (unknown option "${s}")`,
        );
      }
      const hint =
        PROTO_MODULE_OPTS.tcp!.has(s) || s === '--dports' || s === '--sports'
          ? ` (${s} needs -p tcp, -p udp, ... first)`
          : '';
      throw err(
        ctx,
        t,
        `an option of ${loaded.length ? `-m ${loaded.join(', -m ')}` : 'a loaded match module'}${target ? ` or of target ${target.tok.s}` : ''}${hint}`,
        `unknown option '${s}'`,
      );
    }
    const { args, next, inlineNeg } = takeArgs(s, i);
    const opt: Opt = { name: s, tok: negTok ?? t, nameTok: t, neg: neg || inlineNeg, args };
    if (owner === 'target') target!.opts.push(opt);
    else owner.opts.push(opt);
    neg = false;
    negTok = undefined;
    i = next;
  }
  if (neg) throw err(ctx, undefined, 'an option after !');

  // Build the matches in the order written.
  const matches: Match[] = [];
  let comment: string | undefined;
  const proto = protoName === undefined ? undefined : protoNumber(ctx, protoName, items[protoItemIndex]);
  for (const item of items) {
    if (item.kind === 'core') {
      const opt = item.opt;
      ctx.column = opt.tok.col;
      cachedMatches(ctx, optText(ctx, opt), matches, () => coreMatch(ctx, opt, matches));
      continue;
    }
    const inst = item.inst;
    ctx.column = inst.tok?.col ?? inst.opts[0]?.tok.col ?? column;
    if (inst.name === 'comment' || inst.name === 'set') {
      // Comments give no match; set matches warn per set and depend on the ipset file: neither is cached.
      const c = moduleMatches(ctx, inst, matches, proto, protoNeg);
      if (c !== undefined) comment = comment === undefined ? c : `${comment}; ${c}`;
      continue;
    }
    checkModule(ctx, inst, proto, protoNeg);
    let key = inst.tok ? `-m ${inst.name}` : inst.name;
    for (const o of inst.opts) key += ` ${optText(ctx, o)}`;
    cachedMatches(ctx, key, matches, () => moduleMatches(ctx, inst, matches, proto, protoNeg));
  }
  const origin: Origin = { file: ctx.file, line: r.line, column };
  const { statements, verdict } = buildTarget(ctx, target, proto);
  // One complete literal per shape: properties added later would live in a separate backing store (one more
  // allocation per rule), and spreads allocate intermediate objects.
  const text = r.text;
  if (verdict) {
    return comment === undefined
      ? { kind: 'rule', matches, statements, verdict, origin, text }
      : { kind: 'rule', matches, statements, verdict, comment, origin, text };
  }
  return comment === undefined
    ? { kind: 'rule', matches, statements, origin, text }
    : { kind: 'rule', matches, statements, comment, origin, text };
}

/**
 * Caches are emptied when they reach this size: what repeats in real rulesets (`-p tcp`, a service's cluster IP
 * on adjacent kube-proxy lines) repeats often or nearby, while a 100k-entry map of unique addresses costs more to
 * grow and to keep than it saves.
 */
const CACHE_LIMIT = 4096;

function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, value);
}

/**
 * Matches are immutable and their meaning depends only on their text within one table, so rules that repeat a
 * match (`-p tcp`, `-i eth0`, `-m conntrack --ctstate NEW`) share one object. On 100k-rule inputs this is most of
 * the memory the model would otherwise hold, and most of the garbage collector's work. Opaque matches are not
 * shared so that their warnings keep counting rules.
 */
function cachedMatches(ctx: Ctx, key: string, out: Match[], build: () => void): void {
  const hit = ctx.matchCache.get(key);
  if (hit !== undefined) {
    for (let i = 0; i < hit.length; i++) out.push(hit[i]!);
    return;
  }
  const start = out.length;
  build();
  for (let i = start; i < out.length; i++) if (out[i]!.kind === 'opaque') return;
  remember(ctx.matchCache, key, out.slice(start));
}

/** The checks that depend on the rest of the rule (its -p, the table family): run even when matches are cached. */
function checkModule(ctx: Ctx, inst: ModuleInst, proto: number | undefined, protoNeg: boolean): void {
  switch (inst.name) {
    case 'tcp':
    case 'udp':
    case 'udplite':
    case 'sctp':
    case 'dccp':
      if (inst.tok && proto !== own(IPTABLES_PROTOCOLS, inst.name)) {
        throw err(ctx, inst.tok, `-p ${inst.name} before -m ${inst.name}`, `-m ${inst.name} without -p ${inst.name}`);
      }
      if (protoNeg) {
        // iptables-nft accepts `! -p tcp --dport 22` and compiles it to `meta l4proto != tcp th dport 22`: the
        // port of any other protocol. The model reads it the same way for protocols that have ports.
        const o = inst.opts[0];
        ctx.warnings.add(
          'negated-proto-ports',
          'iptables-negated-protocol-ports',
          `'! -p ${inst.name}' with ${o?.name ?? 'port'} matches the ports of every other protocol (nft: th dport); legacy iptables rejects it`,
          { file: ctx.file, line: ctx.line, column: o?.tok.col ?? 1 },
        );
      }
      return;
    case 'multiport':
      for (const opt of inst.opts) requirePortProto(ctx, opt, proto, protoNeg);
      return;
    default:
      // icmp/icmp6 checks need only -p (part of no other key) and the family (fixed per table): run them here too.
      if (inst.name === 'icmp' || inst.name === 'icmp6') {
        const v6 = inst.name === 'icmp6';
        if (inst.tok && (proto !== (v6 ? 58 : 1) || protoNeg)) {
          const p = v6 ? 'ipv6-icmp' : 'icmp';
          throw err(ctx, inst.tok, `-p ${p} before -m ${inst.name}`, `-m ${inst.name} without -p ${p}`);
        }
      }
  }
}

function claims(who: ModuleInst | 'target', opt: string, target: { tok: Tok } | undefined): boolean {
  if (who === 'target') {
    if (!target) return false;
    const known = TARGET_OPTS[target.tok.s];
    return known ? known.has(opt) : true;
  }
  if (CORE_LONG[opt]) return false;
  const known = MODULE_OPTS[who.name];
  if (known) return known.has(opt);
  // An unmodelled module takes any option, except the protocol options `-p tcp` makes implicit.
  return !PROTO_MODULE_OPTS.tcp!.has(opt) && opt !== '--icmp-type' && opt !== '--icmpv6-type';
}

function normaliseProto(p: string): string {
  const lower = p.toLowerCase();
  return lower === 'icmpv6' ? 'ipv6-icmp' : lower;
}

function protoModule(p: string): string {
  if (p === 'ipv6-icmp' || p === '58') return 'icmp6';
  const n = own(IPTABLES_PROTOCOLS, p);
  if (n === 6 || p === '6') return 'tcp';
  if (n === 17 || p === '17') return 'udp';
  if (n === 1 || p === '1') return 'icmp';
  if (n === 132 || p === '132') return 'sctp';
  if (n === 33 || p === '33') return 'dccp';
  if (n === 136 || p === '136') return 'udplite';
  return p;
}

/** The protocol number of `-p`, or -1 for `all`. */
function protoNumber(ctx: Ctx, p: string, item: Item | undefined): number {
  if (p === 'all' || p === '0') return -1;
  const named = own(IPTABLES_PROTOCOLS, p);
  if (named !== undefined) return named;
  if (isDecimal(p)) {
    const n = Number(p);
    if (n <= 255) return n;
  }
  const tok = item?.kind === 'core' ? item.opt.args[0] : undefined;
  throw err(ctx, tok, 'a protocol name (tcp, udp, icmp, ...), number 0-255 or all', 'bad protocol');
}

function isDecimal(s: string): boolean {
  if (s.length === 0 || s.length > 10) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** The option as written (from its `!` to its last argument), sliced from the line: no string building per match. */
/**
 * `-m name [!] --option args` as written. When the option directly follows its `-m name` this is one slice of the
 * line (the common case in iptables-save output), else the two parts joined.
 */
function modText(ctx: Ctx, inst: ModuleInst, opt: Opt): string {
  if (!inst.tok) return optText(ctx, opt);
  if (opt.tok.col - 2 === inst.nameEnd && inst.opts[0] === opt) {
    const last = opt.args.length ? opt.args[opt.args.length - 1]! : opt.nameTok;
    return ctx.lineText.slice(inst.tok.col - 1, last.end);
  }
  return `-m ${inst.name} ${optText(ctx, opt)}`;
}

function optText(ctx: Ctx, opt: Opt, display?: string): string {
  const last = opt.args.length ? opt.args[opt.args.length - 1]! : opt.nameTok;
  const text = ctx.lineText.slice(opt.tok.col - 1, last.end);
  return display === undefined ? text : `${display} ${text}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Core matches

function coreMatch(ctx: Ctx, opt: Opt, out: Match[]): void {
  const arg = opt.args[0];
  const text = optText(ctx, opt);
  const op = opt.neg ? 'ne' : 'eq';
  switch (opt.name) {
    case '-s':
    case '-d': {
      const field: Field =
        ctx.family === 'ip'
          ? opt.name === '-s'
            ? 'ip.saddr'
            : 'ip.daddr'
          : opt.name === '-s'
            ? 'ip6.saddr'
            : 'ip6.daddr';
      const hosts = hostNames(ctx, arg!);
      if (hosts.length > 0) {
        // iptables-restore resolves host names when it loads the file (one rule per address); which addresses a
        // name had then is not in the file.
        const which = hosts.map((h) => `'${h}'`).join(', ');
        out.push(
          opaque(
            ctx,
            text,
            'host-name',
            `host name ${which} in ${opt.name}: iptables-restore resolves it when loading the file, so the addresses it matches are not known here`,
            `host-${hosts.join(',')}`,
          ),
        );
        return;
      }
      const values = addressList(ctx, arg!);
      if (opt.neg && values.length > 1) {
        throw err(ctx, opt.tok, 'a single address (iptables does not allow ! with several addresses)');
      }
      // 0.0.0.0/0 matches every packet of the family: iptables-save omits it, hand-written files may not.
      const only = values[0]!;
      if (!opt.neg && values.length === 1 && only.kind === 'range' && only.lo === 0n && only.hi === maxAddr(ctx.l3))
        return;
      out.push({ kind: 'field', field, op, values, text });
      return;
    }
    case '-p': {
      const n = protoNumber(ctx, normaliseProto(arg!.s), { kind: 'core', opt });
      if (n < 0) {
        // `-p all` matches everything; `! -p all` nothing.
        if (opt.neg) out.push({ kind: 'field', field: 'l4proto', op: 'ne', values: [rangeElement(0, 255)], text });
        return;
      }
      out.push({ kind: 'field', field: 'l4proto', op, values: [protoElement(n)], text });
      return;
    }
    case '-i':
    case '-o': {
      const name = arg!.s;
      if (name.length > 16 || name === '')
        throw err(ctx, arg, 'an interface name (at most 15 characters, + as wildcard)');
      const wildcard = name.endsWith('+');
      const value = wildcard ? name.slice(0, -1) : name;
      // `-i +` is any interface.
      if (wildcard && value === '' && !opt.neg) return;
      out.push({
        kind: 'field',
        field: opt.name === '-i' ? 'iifname' : 'oifname',
        op,
        values: [{ kind: 'name', value, wildcard }],
        text,
      });
      return;
    }
    case '-f':
      out.push(opaque(ctx, text, 'unsupported-field', 'fragment (-f) matches are not modelled', 'fragment'));
      return;
  }
}

const PROTO_ELEMENTS: Element[] = [];
function protoElement(n: number): Element {
  let el = PROTO_ELEMENTS[n];
  if (!el) {
    el = rangeElement(n);
    PROTO_ELEMENTS[n] = el;
  }
  return el;
}

function maxAddr(l3: L3): bigint {
  return l3 === 'ipv4' ? (1n << 32n) - 1n : (1n << 128n) - 1n;
}

/** A parsed address text; `el` is shared by every match that names the same text. */
interface AddrEntry {
  readonly lo: bigint;
  readonly hi: bigint;
  readonly family: L3;
  readonly el: Element;
}

/** Fast IPv4 `a.b.c.d[/len]` without allocation; falls back to the general parser for anything else. */
function parseAddrFast(ctx: Ctx, text: string): AddrEntry | null {
  const cached = ctx.addrCache.get(text);
  if (cached !== undefined) return cached;
  let result: { lo: bigint; hi: bigint; family: L3 } | null = null;
  let v = 0;
  let part = -1;
  let dots = 0;
  let i = 0;
  let ok = true;
  const n = text.length;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      part = part < 0 ? c - 48 : part * 10 + (c - 48);
      if (part > 255) {
        ok = false;
        break;
      }
    } else if (c === 46 && part >= 0 && dots < 3) {
      v = v * 256 + part;
      part = -1;
      dots++;
    } else break;
  }
  if (ok && dots === 3 && part >= 0) {
    v = v * 256 + part;
    let len = 32;
    let tail = true;
    if (i < n) {
      if (text.charCodeAt(i) === 47 && isDecimal(text.slice(i + 1)) && n - i - 1 <= 2) len = Number(text.slice(i + 1));
      else tail = false;
    }
    if (tail && len <= 32) {
      const size = 2 ** (32 - len);
      const lo = v - (v % size);
      const blo = BigInt(lo);
      result = { lo: blo, hi: size === 1 ? blo : BigInt(lo + size - 1), family: 'ipv4' };
    } else if (tail) result = null;
    else {
      const r = parseAddressRange(text);
      result = r && text.indexOf('-') < 0 ? r : null;
    }
  } else {
    const r = text.indexOf('-') < 0 ? parseAddressRange(text) : undefined;
    result = r ?? null;
  }
  const entry: AddrEntry | null = result ? { ...result, el: { kind: 'range', lo: result.lo, hi: result.hi } } : null;
  remember(ctx.addrCache, text, entry);
  return entry;
}

/** One address (no prefix, no range), through the same cache as rule addresses. */
function parseSingleAddress(ctx: Ctx, text: string): AddrEntry | null {
  if (text.indexOf('/') >= 0) return null;
  const r = parseAddrFast(ctx, text);
  return r && r.lo === r.hi ? r : null;
}

/** DNS names in an address list (`-s pxe.example.org,10.0.0.1`): the parts that are no address but a valid name. */
function hostNames(ctx: Ctx, tok: Tok): string[] {
  const parts = tok.s.indexOf(',') >= 0 ? tok.s.split(',') : [tok.s];
  const out: string[] = [];
  for (const p of parts) {
    if (parseAddrFast(ctx, p)) continue;
    // RFC 1123 labels, at least one letter somewhere (an all-digit name is a bad address, as for iptables).
    if (/^(?=.*[a-z])[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i.test(p))
      out.push(p);
  }
  return out;
}

function addressList(ctx: Ctx, tok: Tok): Element[] {
  const parts = tok.s.indexOf(',') >= 0 ? tok.s.split(',') : [tok.s];
  const out: Element[] = [];
  for (const p of parts) {
    const r = parseAddrFast(ctx, p);
    if (!r) {
      throw err(
        ctx,
        tok,
        `an ${ctx.l3 === 'ipv4' ? 'IPv4' : 'IPv6'} address, address/prefix or address/netmask`,
        `bad address '${p}'`,
      );
    }
    if (r.family !== ctx.l3) {
      throw err(
        ctx,
        tok,
        `an ${ctx.l3 === 'ipv4' ? 'IPv4' : 'IPv6'} address (table ${ctx.table} is ${ctx.family === 'ip' ? 'iptables (ip)' : 'ip6tables (ip6)'})`,
        `bad address '${p}'`,
      );
    }
    out.push(r.el);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Module matches

function opaque(
  ctx: Ctx,
  text: string,
  category: OpaqueCategory,
  reason: string,
  key: string,
  outcome?: { readonly fresh: boolean; readonly otherwise: string },
  subject = '',
  decide?: ExactOpaque,
): Match {
  ctx.warnings.add(`opaque:${key}`, `iptables-opaque-${category}`, `${subject}${reason}; kept as an opaque match`, {
    file: ctx.file,
    line: ctx.line,
    column: ctx.column,
  });
  return {
    kind: 'opaque',
    category,
    reason,
    text,
    ...(outcome ? { fresh: outcome.fresh, otherwise: outcome.otherwise } : {}),
    ...(decide ? { decide } : {}),
  };
}

function parsePort(ctx: Ctx, tok: Tok, s: string): number {
  if (isDecimal(s)) {
    const n = Number(s);
    if (n <= 65535) return n;
  }
  const named = own(IPTABLES_SERVICES, s);
  if (named !== undefined) return named;
  throw err(ctx, tok, 'a port number 0-65535 (or a range a:b, :b, a:)', `bad port '${s}'`);
}

/** `22`, `1024:65535`, `:1023`, `1024:` (and the multiport form `a:b`). */
function parsePortRange(ctx: Ctx, tok: Tok, s: string): Element {
  const cached = ctx.portCache.get(s);
  if (cached) return cached;
  const el = parsePortRangeUncached(ctx, tok, s);
  remember(ctx.portCache, s, el);
  return el;
}

function parsePortRangeUncached(ctx: Ctx, tok: Tok, s: string): Element {
  const colon = s.indexOf(':');
  if (colon < 0) {
    const n = parsePort(ctx, tok, s);
    const b = BigInt(n);
    return { kind: 'range', lo: b, hi: b };
  }
  const lo = colon === 0 ? 0 : parsePort(ctx, tok, s.slice(0, colon));
  const hi = colon === s.length - 1 ? 65535 : parsePort(ctx, tok, s.slice(colon + 1));
  // iptables swaps a reversed range (`--dport 90:80` is saved as 80:90).
  return lo <= hi ? rangeElement(lo, hi) : rangeElement(hi, lo);
}

function requirePortProto(ctx: Ctx, opt: Opt, proto: number | undefined, protoNeg: boolean): void {
  if (proto === undefined || proto < 0 || protoNeg || !PORT_PROTOCOLS.has(proto)) {
    throw err(ctx, opt.tok, `-p tcp, -p udp, -p sctp, -p dccp or -p udplite before ${opt.name}`);
  }
}

function flagList(ctx: Ctx, tok: Tok): number {
  let m = 0;
  for (const f of tok.s.split(',')) {
    const v = own(IPTABLES_TCP_FLAGS, f.toUpperCase());
    if (v === undefined)
      throw err(ctx, tok, 'TCP flags: FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, ALL or NONE', `bad TCP flag '${f}'`);
    m |= v;
  }
  return m;
}

function icmpMatch(ctx: Ctx, opt: Opt, v6: boolean, out: Match[]): void {
  const tok = opt.args[0]!;
  const s = tok.s;
  const names = v6 ? IPTABLES_ICMPV6_TYPES : IPTABLES_ICMP_TYPES;
  let type: number;
  let code: number | undefined;
  const named = names[s];
  if (named) {
    type = named[0];
    code = named[1];
  } else {
    const slash = s.indexOf('/');
    const ts = slash < 0 ? s : s.slice(0, slash);
    const cs = slash < 0 ? undefined : s.slice(slash + 1);
    if (!isDecimal(ts) || Number(ts) > 255 || (cs !== undefined && (!isDecimal(cs) || Number(cs) > 255))) {
      throw err(
        ctx,
        tok,
        `an ${v6 ? 'ICMPv6' : 'ICMP'} type name or number[/code]`,
        `bad ${v6 ? 'ICMPv6' : 'ICMP'} type '${s}'`,
      );
    }
    type = Number(ts);
    code = cs === undefined ? undefined : Number(cs);
  }
  const text = optText(ctx, opt);
  const tf: Field = v6 ? 'icmpv6.type' : 'icmp.type';
  const cf: Field = v6 ? 'icmpv6.code' : 'icmp.code';
  if (type < 0) {
    // `--icmp-type any`: every ICMP packet; negated, none.
    if (opt.neg) out.push({ kind: 'field', field: tf, op: 'ne', values: [rangeElement(0, 255)], text });
    return;
  }
  if (code === undefined) {
    out.push({ kind: 'field', field: tf, op: opt.neg ? 'ne' : 'eq', values: [rangeElement(type)], text });
  } else if (!opt.neg) {
    out.push({ kind: 'field', field: tf, op: 'eq', values: [rangeElement(type)], text });
    out.push({ kind: 'field', field: cf, op: 'eq', values: [rangeElement(code)], text });
  } else {
    // ! (type == t && code == c) is not a conjunction of field matches, but it is a concatenation lookup.
    out.push({ kind: 'concat', fields: [tf, cf], op: 'ne', tuples: [[rangeElement(type), rangeElement(code)]], text });
  }
}

const CT_STATUS_BITS = new Set(['expected', 'seen-reply', 'assured', 'confirmed', 'snat', 'dnat', 'dying']);

/** `--ctstatus DNAT,ASSURED`: true when any of the bits is set. A new connection has none, unless nat rewrote it. */
function ctStatusMatch(ctx: Ctx, text: string, arg: string, neg: boolean): Match {
  const bits = arg.split(',').map((b) => b.toLowerCase().replace('seen_reply', 'seen-reply'));
  for (const b of bits) {
    if (!CT_STATUS_BITS.has(b) && b !== 'none') {
      throw err(
        ctx,
        undefined,
        `conntrack status bits from NONE, EXPECTED, SEEN_REPLY, ASSURED, CONFIRMED`,
        `bad conntrack status '${b}'`,
      );
    }
  }
  return ctStatus(
    ctx,
    text,
    bits.filter((b) => b !== 'none'),
    neg,
    bits.includes('none'),
  );
}

function ctStatus(ctx: Ctx, text: string, bits: string[], neg: boolean, none: boolean): Match {
  // A new connection's status: no bit set (dnat only after a nat rule rewrote it on this path).
  const fresh = (none || bits.length === 0) !== neg;
  return opaque(
    ctx,
    text,
    'unsupported-field',
    `conntrack status ${bits.join(',') || 'none'}: a new connection has no status bit set unless a nat rule rewrote it`,
    `ctstatus-${bits.join(',')}`,
    { fresh, otherwise: `on a connection with status ${bits.join(' or ')}` },
    '',
    { kind: 'ct-status', bits: none ? [...CT_STATUS_BITS] : bits, negate: none ? !neg : neg },
  );
}

function stateMatch(ctx: Ctx, inst: ModuleInst, opt: Opt, out: Match[]): void {
  const tok = opt.args[0]!;
  const values: Element[] = [];
  for (const st of tok.s.split(',')) {
    const v = CT_STATES[st.toUpperCase()];
    if (v === undefined) {
      if (st === 'SNAT' || st === 'DNAT') {
        // The virtual states SNAT/DNAT are the conntrack status bits: mixed with real states, not modelled.
        out.push(
          opaque(ctx, optText(ctx, opt), 'unsupported-field', `conntrack state ${st} is not modelled`, `ctstate-${st}`),
        );
        return;
      }
      throw err(
        ctx,
        tok,
        'states from NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED (comma-separated)',
        `bad state '${st}'`,
      );
    }
    values.push({ kind: 'symbol', value: v });
  }
  out.push({ kind: 'field', field: 'ct.state', op: opt.neg ? 'ne' : 'eq', values, text: modText(ctx, inst, opt) });
}

function parseNumber(ctx: Ctx, tok: Tok, s: string, what: string): bigint {
  if (isDecimal(s)) return BigInt(s);
  if ((s.startsWith('0x') || s.startsWith('0X')) && s.length > 2 && s.length <= 18 && /^0[xX][0-9a-fA-F]+$/.test(s)) {
    return BigInt(s);
  }
  throw err(ctx, tok, what, `bad number '${s}'`);
}

/** `V` or `V/M` as a mark with an optional mask. */
function valueMask(ctx: Ctx, tok: Tok, what: string): { value: bigint; mask: bigint | undefined } {
  const slash = tok.s.indexOf('/');
  if (slash < 0) return { value: parseNumber(ctx, tok, tok.s, what), mask: undefined };
  return {
    value: parseNumber(ctx, tok, tok.s.slice(0, slash), what),
    mask: parseNumber(ctx, tok, tok.s.slice(slash + 1), what),
  };
}

const FULL_MARK = 0xffffffffn;

/** Returns the rule comment when the module is `comment`. */
function moduleMatches(
  ctx: Ctx,
  inst: ModuleInst,
  out: Match[],
  proto: number | undefined,
  protoNeg: boolean,
): string | undefined {
  const prefix = inst.tok ? `-m ${inst.name} ` : '';
  switch (inst.name) {
    case 'tcp':
    case 'udp':
    case 'udplite':
    case 'sctp':
    case 'dccp': {
      const want = own(IPTABLES_PROTOCOLS, inst.name)!;
      if (inst.tok && proto !== want) {
        throw err(ctx, inst.tok, `-p ${inst.name} before -m ${inst.name}`, `-m ${inst.name} without -p ${inst.name}`);
      }
      for (const opt of inst.opts) {
        const a = opt.args[0];
        switch (opt.name) {
          case '--sport':
          case '--source-port':
          case '--dport':
          case '--destination-port': {
            const field: Field = opt.name === '--sport' || opt.name === '--source-port' ? 'sport' : 'dport';
            out.push({
              kind: 'field',
              field,
              op: opt.neg ? 'ne' : 'eq',
              values: [parsePortRange(ctx, a!, a!.s)],
              text: modText(ctx, inst, opt),
            });
            break;
          }
          case '--syn':
          case '--tcp-flags': {
            const mask = opt.name === '--syn' ? 0x17 : flagList(ctx, a!);
            const comp = opt.name === '--syn' ? 0x02 : flagList(ctx, opt.args[1]!);
            out.push({
              kind: 'field',
              field: 'tcp.flags',
              op: opt.neg ? 'ne' : 'eq',
              values: [rangeElement(comp & mask)],
              mask: BigInt(mask),
              text: modText(ctx, inst, opt),
            });
            break;
          }
          case '--tcp-option': {
            const n = Number(a?.s);
            if (!a || !/^\d+$/.test(a.s) || n > 255) throw err(ctx, a, 'a TCP option kind 0-255', 'bad TCP option');
            const has = DEFAULT_SYN_TCP_OPTIONS.includes(n);
            out.push(
              opaque(
                ctx,
                modText(ctx, inst, opt),
                'unsupported-field',
                `TCP option ${n} ${opt.neg ? 'absent' : 'present'} (an ordinary SYN carries ${DEFAULT_SYN_TCP_OPTIONS.join(', ')})`,
                `tcp-option-${n}`,
                {
                  fresh: has !== opt.neg,
                  otherwise: `on a segment ${has ? 'without' : 'with'} TCP option ${n}`,
                },
                '',
                { kind: 'tcp-option', option: n, negate: opt.neg },
              ),
            );
            break;
          }
          default:
            out.push(
              opaque(
                ctx,
                modText(ctx, inst, opt),
                'unsupported-field',
                `${opt.name} of -m ${inst.name} is not modelled`,
                opt.name,
              ),
            );
        }
      }
      return undefined;
    }
    case 'rt':
    case 'frag':
    case 'hbh':
    case 'dst':
    case 'ipv6header': {
      // These look into IPv6 extension headers. Without the header the match fails, whatever `!` says of its
      // options; an ordinary packet (and every packet of the model) carries none.
      const text = (prefix + inst.opts.map((o) => optText(ctx, o)).join(' ')).trim();
      out.push(
        opaque(
          ctx,
          text,
          'unsupported-field',
          `-m ${inst.name} needs an IPv6 ${inst.name === 'ipv6header' ? 'extension' : inst.name === 'rt' ? 'routing' : inst.name === 'frag' ? 'fragment' : inst.name === 'hbh' ? 'hop-by-hop' : 'destination options'} header, which an ordinary packet does not carry`,
          `module-${inst.name}`,
          { fresh: false, otherwise: `on a packet carrying that IPv6 extension header` },
          '',
          { kind: 'ext-header', header: inst.name },
        ),
      );
      return undefined;
    }
    case 'icmp':
    case 'icmp6': {
      const v6 = inst.name === 'icmp6';
      const want = v6 ? 58 : 1;
      if (inst.tok && (proto !== want || protoNeg)) {
        const p = v6 ? 'ipv6-icmp' : 'icmp';
        throw err(ctx, inst.tok, `-p ${p} before -m ${inst.name}`, `-m ${inst.name} without -p ${p}`);
      }
      if (v6 !== (ctx.family === 'ip6')) {
        throw err(
          ctx,
          inst.tok ?? inst.opts[0]?.nameTok,
          v6
            ? '-p icmp and --icmp-type (table is iptables, ip)'
            : '-p ipv6-icmp and --icmpv6-type (table is ip6tables, ip6)',
          `ICMP${v6 ? 'v6' : ''} match in an ${v6 ? 'IPv4' : 'IPv6'} table`,
        );
      }
      for (const opt of inst.opts) icmpMatch(ctx, opt, v6, out);
      return undefined;
    }
    case 'multiport': {
      for (const opt of inst.opts) {
        requirePortProto(ctx, opt, proto, protoNeg);
        const tok = opt.args[0]!;
        const values = tok.s.split(',').map((p) => parsePortRange(ctx, tok, p));
        if (values.length > 15) throw err(ctx, tok, 'at most 15 ports (a range counts as two)');
        const text = modText(ctx, inst, opt);
        const op = opt.neg ? 'ne' : 'eq';
        if (opt.name === '--ports') {
          if (opt.neg) {
            // ! (sport in P or dport in P) = sport not in P and dport not in P: exact as two matches.
            out.push({ kind: 'field', field: 'sport', op: 'ne', values, text });
            out.push({ kind: 'field', field: 'dport', op: 'ne', values, text });
          } else {
            // sport in P OR dport in P needs a disjunction the IR does not have. Splitting the rule in two would
            // repeat its statements and jumps for packets matching both, and break the one-line-one-rule link the
            // analyses report by; the match stays one opaque condition instead.
            out.push(
              opaque(
                ctx,
                text,
                'unsupported-expression',
                '-m multiport --ports (source or destination port) is a disjunction',
                'multiport-ports',
              ),
            );
          }
        } else {
          const field: Field = opt.name === '--dports' || opt.name === '--destination-ports' ? 'dport' : 'sport';
          out.push({ kind: 'field', field, op, values, text });
        }
      }
      return undefined;
    }
    case 'state':
    case 'conntrack': {
      for (const opt of inst.opts) {
        if (opt.name === '--state' || opt.name === '--ctstate') stateMatch(ctx, inst, opt, out);
        else if (opt.name === '--ctstatus')
          out.push(ctStatusMatch(ctx, modText(ctx, inst, opt), opt.args[0]?.s ?? '', opt.neg));
        else {
          out.push(
            opaque(
              ctx,
              modText(ctx, inst, opt),
              'unsupported-field',
              `-m conntrack ${opt.name} is not modelled`,
              `conntrack${opt.name}`,
            ),
          );
        }
      }
      return undefined;
    }
    case 'iprange': {
      for (const opt of inst.opts) {
        const tok = opt.args[0]!;
        const dash = tok.s.indexOf('-');
        const lo = dash > 0 ? parseAddress(tok.s.slice(0, dash)) : undefined;
        const hi = dash > 0 ? parseAddress(tok.s.slice(dash + 1)) : undefined;
        if (!lo || !hi || lo.family !== ctx.l3 || hi.family !== ctx.l3 || lo.value > hi.value) {
          throw err(
            ctx,
            tok,
            `an ${ctx.l3 === 'ipv4' ? 'IPv4' : 'IPv6'} address range FROM-TO`,
            `bad address range '${tok.s}'`,
          );
        }
        const src = opt.name === '--src-range';
        const field: Field = ctx.family === 'ip' ? (src ? 'ip.saddr' : 'ip.daddr') : src ? 'ip6.saddr' : 'ip6.daddr';
        out.push({
          kind: 'field',
          field,
          op: opt.neg ? 'ne' : 'eq',
          values: [{ kind: 'range', lo: lo.value, hi: hi.value }],
          text: modText(ctx, inst, opt),
        });
      }
      return undefined;
    }
    case 'comment': {
      let c: string | undefined;
      for (const opt of inst.opts) c = c === undefined ? opt.args[0]!.s : `${c}; ${opt.args[0]!.s}`;
      return c;
    }
    case 'addrtype': {
      const limited = inst.opts.find((o) => o.name === '--limit-iface-in' || o.name === '--limit-iface-out');
      const text = prefix + inst.opts.map((o) => optText(ctx, o)).join(' ');
      if (limited) {
        out.push(
          opaque(
            ctx,
            text,
            'unsupported-expression',
            `-m addrtype ${limited.name} (type relative to one interface) is not modelled`,
            'addrtype-limit',
          ),
        );
        return undefined;
      }
      for (const opt of inst.opts) {
        const tok = opt.args[0]!;
        const values: Element[] = [];
        for (const t of tok.s.split(',')) {
          const up = t.toUpperCase();
          if (!IPTABLES_ADDR_TYPES.has(up))
            throw err(ctx, tok, `address types from ${[...IPTABLES_ADDR_TYPES].join(', ')}`, `bad address type '${t}'`);
          values.push({ kind: 'symbol', value: up.toLowerCase() });
        }
        out.push({
          kind: 'field',
          field: opt.name === '--src-type' ? 'saddr.type' : 'daddr.type',
          op: opt.neg ? 'ne' : 'eq',
          values,
          text: modText(ctx, inst, opt),
        });
      }
      return undefined;
    }
    case 'mark': {
      for (const opt of inst.opts) {
        const { value, mask } = valueMask(ctx, opt.args[0]!, 'a mark value[/mask] (decimal or 0x hex)');
        out.push({
          kind: 'field',
          field: 'mark',
          op: opt.neg ? 'ne' : 'eq',
          values: [rangeElement(mask === undefined ? value : value & mask)],
          ...(mask !== undefined && mask !== FULL_MARK ? { mask } : {}),
          text: modText(ctx, inst, opt),
        });
      }
      return undefined;
    }
    case 'set':
      setMatches(ctx, inst, out, prefix);
      return undefined;
    default: {
      const text = (prefix + inst.opts.map((o) => optText(ctx, o)).join(' ')).trim();
      const category: OpaqueCategory = LIMIT_MODULES.has(inst.name)
        ? 'limit'
        : QUOTA_MODULES.has(inst.name)
          ? 'quota'
          : 'unsupported-module';
      const state = freshOutcome(inst);
      out.push(
        opaque(
          ctx,
          text,
          category,
          state?.reason ?? `-m ${inst.name} is not modelled (it may or may not match)`,
          `module-${inst.name}`,
          state,
          state ? `-m ${inst.name}: ` : '',
        ),
      );
      return undefined;
    }
  }
}

/**
 * What a stateful match does for an ordinary new connection from a fresh source (no history, every rate under its
 * limit, one connection), and when it does otherwise. undefined for modules whose outcome is not known even then
 * (statistic is random, owner and the like look at things the model has no notion of).
 */
function freshOutcome(inst: ModuleInst): { fresh: boolean; otherwise: string; reason: string } | undefined {
  const opt = (...names: string[]) => inst.opts.find((o) => names.includes(o.name));
  const arg = (o: Opt | undefined) => o?.args.map((a) => a.s).join(' ') ?? '';
  const flip = (r: { fresh: boolean; otherwise: string; reason: string }, neg: boolean | undefined) =>
    neg ? { ...r, fresh: !r.fresh, reason: `not: ${r.reason}` } : r;
  switch (inst.name) {
    case 'limit': {
      const o = opt('--limit');
      const rate = o ? arg(o) : '3/hour';
      return flip(
        {
          fresh: true,
          otherwise: `above ${rate}`,
          reason: `matches only while the rate is under ${rate} (burst ${arg(opt('--limit-burst')) || '5'})`,
        },
        o?.neg,
      );
    }
    case 'hashlimit': {
      const up = opt('--hashlimit-upto', '--hashlimit');
      const above = opt('--hashlimit-above');
      const mode = arg(opt('--hashlimit-mode')) || 'rule';
      const per = mode === 'rule' ? '' : ` per ${mode}`;
      if (above)
        return {
          fresh: false,
          otherwise: `above ${arg(above)}${per}`,
          reason: `matches only above ${arg(above)}${per}`,
        };
      if (up)
        return {
          fresh: true,
          otherwise: `above ${arg(up)}${per}`,
          reason: `matches only while under ${arg(up)}${per}`,
        };
      return undefined;
    }
    case 'connlimit': {
      const above = opt('--connlimit-above');
      const upto = opt('--connlimit-upto');
      const n = Number(arg(above ?? upto));
      if (!Number.isFinite(n)) return undefined;
      // The connection being opened is the first of its source.
      const r = above
        ? {
            fresh: n < 1,
            otherwise: `with more than ${n} connections from one source`,
            reason: `matches only with more than ${n} connections`,
          }
        : {
            fresh: n >= 1,
            otherwise: `with more than ${n} connections from one source`,
            reason: `matches only with at most ${n} connections`,
          };
      return flip(r, (above ?? upto)?.neg);
    }
    case 'recent': {
      const name = arg(opt('--name')) || 'DEFAULT';
      const set = opt('--set');
      if (set) {
        return flip(
          {
            fresh: true,
            otherwise: 'never (it adds the source to the list and matches)',
            reason: `adds the source to recent list ${name}`,
          },
          set.neg,
        );
      }
      const check = opt('--rcheck', '--update', '--remove');
      if (!check) return undefined;
      const hits = arg(opt('--hitcount'));
      const secs = arg(opt('--seconds'));
      const when = hits
        ? `once ${hits} hits${secs ? ` in ${secs} s` : ''} came from one source`
        : `once the source is in recent list ${name}${secs ? ` (seen in the last ${secs} s)` : ''}`;
      return flip(
        { fresh: false, otherwise: when, reason: `matches only ${when}; a fresh source has no history` },
        check.neg,
      );
    }
    case 'quota': {
      const q = opt('--quota');
      return flip(
        { fresh: true, otherwise: `after ${arg(q)} bytes`, reason: `matches only until ${arg(q)} bytes were counted` },
        q?.neg,
      );
    }
    default:
      return undefined;
  }
}

function setMatches(ctx: Ctx, inst: ModuleInst, out: Match[], prefix: string): void {
  const text = prefix + inst.opts.map((o) => optText(ctx, o)).join(' ');
  const extra = inst.opts.find((o) => o.name !== '--match-set' && o.name !== '--set');
  if (extra && extra.name !== '--update-counters' && extra.name !== '--update-subcounters') {
    out.push(opaque(ctx, text, 'unsupported-expression', `-m set ${extra.name} is not modelled`, `set${extra.name}`));
    return;
  }
  for (const opt of inst.opts) {
    if (opt.name !== '--match-set' && opt.name !== '--set') continue;
    const nameTok = opt.args[0];
    const dirTok = opt.args[1];
    if (!nameTok || !dirTok)
      throw err(
        ctx,
        nameTok ?? opt.tok,
        `a set name and src|dst flags after ${opt.name}`,
        `missing argument for ${opt.name}`,
      );
    const dirs = dirTok.s.split(',');
    for (const d of dirs) {
      if (d !== 'src' && d !== 'dst')
        throw err(ctx, dirTok, 'src or dst flags, comma-separated (e.g. src,dst)', `bad set flag '${d}'`);
    }
    const mtext = modText(ctx, inst, opt);
    const name = nameTok.s;
    const unknown = (reason: string): void => {
      ctx.warnings.add(`unknown-set:${name}`, 'iptables-unknown-set', reason, {
        file: ctx.file,
        line: ctx.line,
        column: nameTok.col,
      });
      out.push({ kind: 'opaque', category: 'unknown-set', reason, text: mtext });
    };
    if (!ctx.ipsets) {
      unknown(`ipset '${name}' is used but no ipset file was given (ipset save output); its match is opaque`);
      continue;
    }
    const resolved = resolveIpset(ctx.ipsets, name);
    if (typeof resolved === 'string') {
      if (!ctx.ipsets.sets.has(name)) unknown(`ipset '${name}' is not in ${ctx.ipsets.file}; its match is opaque`);
      else out.push(opaque(ctx, mtext, 'unsupported-expression', `ipset '${name}': ${resolved}`, `set-${name}`));
      continue;
    }
    if (resolved.family !== ctx.l3) {
      out.push(
        opaque(
          ctx,
          mtext,
          'unsupported-expression',
          `ipset '${name}' is of family ${resolved.family === 'ipv4' ? 'inet' : 'inet6'}, not usable in table ${ctx.family} ${ctx.table}`,
          `set-family-${name}`,
        ),
      );
      continue;
    }
    if (dirs.length < resolved.dims.length) {
      throw err(
        ctx,
        dirTok,
        `${resolved.dims.length} src/dst flags for set '${name}' (${ctx.ipsets.sets.get(name)?.type})`,
      );
    }
    const op = opt.neg ? 'ne' : 'eq';
    const fields: Field[] = [];
    let hasPort = false;
    let bport = false;
    for (let d = 0; d < resolved.dims.length; d++) {
      const src = dirs[d] === 'src';
      switch (resolved.dims[d]!) {
        case 'ip':
        case 'net':
          fields.push(ctx.family === 'ip' ? (src ? 'ip.saddr' : 'ip.daddr') : src ? 'ip6.saddr' : 'ip6.daddr');
          break;
        case 'port':
          hasPort = true;
          fields.push('l4proto', src ? 'sport' : 'dport');
          break;
        case 'bport':
          hasPort = true;
          bport = true;
          fields.push(src ? 'sport' : 'dport');
          break;
        case 'iface':
          fields.push(src ? 'iifname' : 'oifname');
          break;
        case 'mark':
          fields.push('mark');
          break;
        case 'mac':
          break;
      }
    }
    if (hasPort && opt.neg) {
      // A packet without ports is "not in" the set for iptables, but the model's port fields are false on it.
      out.push(
        opaque(
          ctx,
          mtext,
          'unsupported-expression',
          `negated match on ipset '${name}' with a port dimension`,
          `set-neg-port-${name}`,
        ),
      );
      continue;
    }
    if (hasPort && !bport) {
      const pi = fields.indexOf('l4proto');
      if (resolved.elements.some((t) => t[pi]?.kind === 'range' && !PORT_PROTOCOLS.has(Number(t[pi].lo)))) {
        out.push(
          opaque(
            ctx,
            mtext,
            'unsupported-expression',
            `ipset '${name}' has entries for protocols without ports`,
            `set-proto-${name}`,
          ),
        );
        continue;
      }
    }
    const declared = ctx.ipsets.sets.get(name)!;
    ctx.usedSets.set(name, { ...declared.set, types: resolved.types, elements: resolved.elements });
    if (bport) {
      // bitmap:port looks at TCP and UDP packets only.
      out.push({ kind: 'field', field: 'l4proto', op: 'eq', values: [rangeElement(6), rangeElement(17)], text: mtext });
    }
    if (fields.length === 1) {
      out.push({
        kind: 'field',
        field: fields[0]!,
        op,
        values: resolved.elements.map((t) => t[0]!),
        set: name,
        text: mtext,
      });
    } else {
      out.push({ kind: 'concat', fields, op, tuples: resolved.elements, set: name, text: mtext });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Targets

function optArg(opts: readonly Opt[], ...names: string[]): Opt | undefined {
  for (const o of opts) if (names.includes(o.name)) return o;
  return undefined;
}

// Verdicts are immutable: rules share them (kube-proxy nodes have tens of thousands of jumps to a few chains).
const ACCEPT: Verdict = { kind: 'accept' };
const DROP: Verdict = { kind: 'drop' };
const RETURN: Verdict = { kind: 'return' };
const QUEUE: Verdict = { kind: 'queue' };

function chainVerdict(ctx: Ctx, kind: 'jump' | 'goto', target: string): Verdict {
  const key = kind === 'jump' ? target : `-g ${target}`;
  const hit = ctx.verdictCache.get(key);
  if (hit) return hit;
  const v: Verdict = { kind, target };
  ctx.verdictCache.set(key, v);
  return v;
}

/** Shared by every rule without statements; never mutated. */
const NO_STATEMENTS: Statement[] = [];
const COUNTER_ONLY: Statement[] = [{ kind: 'counter', text: 'counter' }];

function buildTarget(
  ctx: Ctx,
  target: { tok: Tok; goto: boolean; opts: Opt[] } | undefined,
  proto: number | undefined,
): { statements: Statement[]; verdict: Verdict | undefined } {
  if (!target) return { statements: COUNTER_ONLY, verdict: undefined };
  // Targets with a verdict return this shared empty list; statement targets allocate their own below.
  let statements: Statement[] = NO_STATEMENTS;
  const own = (): Statement[] => {
    statements = [];
    return statements;
  };
  const name = target.tok.s;
  const text = `${target.goto ? '-g' : '-j'} ${name}${target.opts.length ? ` ${target.opts.map((o) => optText(ctx, o)).join(' ')}` : ''}`;
  const o = target.opts;
  if (target.goto) {
    if (!ctx.chains.has(name) || ctx.chains.get(name)!.builtin) {
      throw err(
        ctx,
        target.tok,
        `a user-defined chain of table ${ctx.table} after -g (${userChains(ctx)})`,
        `unknown chain '${name}'`,
      );
    }
    return { statements, verdict: chainVerdict(ctx, 'goto', name) };
  }
  const chain = ctx.chains.get(name);
  if (chain && !chain.builtin) {
    if (o.length) throw err(ctx, o[0]!.tok, `no options after -j ${name} (a chain)`);
    return { statements, verdict: chainVerdict(ctx, 'jump', name) };
  }
  switch (name) {
    case 'ACCEPT':
      return { statements, verdict: ACCEPT };
    case 'DROP':
      return { statements, verdict: DROP };
    case 'RETURN':
      return { statements, verdict: RETURN };
    case 'QUEUE':
    case 'NFQUEUE':
      return { statements, verdict: QUEUE };
    case 'REJECT': {
      const w = optArg(o, '--reject-with')?.args[0]?.s;
      return { statements, verdict: w === undefined ? { kind: 'reject' } : { kind: 'reject', with: w } };
    }
    case 'LOG':
    case 'NFLOG':
    case 'ULOG': {
      const p = optArg(o, '--log-prefix', '--nflog-prefix', '--ulog-prefix')?.args[0]?.s;
      own().push(p === undefined ? { kind: 'log', text } : { kind: 'log', prefix: p, text });
      return { statements, verdict: undefined };
    }
    case 'MARK':
      own().push(markStatement(ctx, o, text));
      return { statements, verdict: undefined };
    case 'DNAT':
    case 'SNAT':
      return { statements, verdict: natVerdict(ctx, name === 'DNAT' ? 'dnat' : 'snat', o, text, proto) };
    case 'MASQUERADE':
    case 'REDIRECT':
      return {
        statements,
        verdict: natVerdict(ctx, name === 'MASQUERADE' ? 'masquerade' : 'redirect', o, text, proto),
      };
    case 'NETMAP': {
      const type: NatType = ctx.chain === 'POSTROUTING' || ctx.chain === 'INPUT' ? 'snat' : 'dnat';
      return { statements, verdict: { kind: 'nat', type, family: ctx.l3, text } };
    }
    default:
      break;
  }
  if (chain?.builtin) throw err(ctx, target.tok, `a target or user-defined chain (${name} is a built-in chain)`);
  if (QUIET_TARGETS.has(name)) {
    if (name === 'CONNMARK' && optArg(o, '--restore-mark')) {
      ctx.warnings.add(
        'connmark-restore',
        'iptables-mark-unknown',
        'CONNMARK --restore-mark sets the packet mark from conntrack; later mark matches are not exact',
        {
          file: ctx.file,
          line: ctx.line,
          column: target.tok.col,
        },
      );
    }
    own().push({ kind: 'other', text });
    return { statements, verdict: undefined };
  }
  if (WARN_TARGETS.has(name) || o.length > 0) {
    ctx.warnings.add(
      `target:${name}`,
      'iptables-unmodelled-target',
      `target ${name} is kept as a non-terminal statement; its effect on the verdict is not modelled`,
      { file: ctx.file, line: ctx.line, column: target.tok.col },
    );
    own().push({ kind: 'other', text });
    return { statements, verdict: undefined };
  }
  const chains = [...ctx.chains.values()].filter((c) => !c.builtin).map((c) => c.name);
  const hint = suggest(name, [...VERDICT_TARGETS, ...QUIET_TARGETS, ...WARN_TARGETS, ...chains]);
  throw err(
    ctx,
    target.tok,
    hint !== ''
      ? `a target or a chain declared in table ${ctx.table}`
      : `a target (${knownTargets()}) or a chain declared in table ${ctx.table} (${userChains(ctx)})`,
    `unknown target or chain '${name}'${hint}`,
  );
}

function userChains(ctx: Ctx): string {
  const names = [...ctx.chains.values()].filter((c) => !c.builtin).map((c) => c.name);
  if (names.length === 0) return 'none declared';
  return names.length > 20 ? `${names.slice(0, 20).join(', ')}, ...` : names.join(', ');
}

/**
 * MARK as a `set` statement meaning `mark = (mark & ~mask) | value` (mask absent: the whole mark). --set-xmark
 * V/M is `(mark & ~M) ^ V`, the same when V lies inside M (always so as iptables-save prints --set-mark).
 */
function markStatement(ctx: Ctx, o: readonly Opt[], text: string): Statement {
  const opt = o[0];
  if (!opt?.args[0]) throw err(ctx, undefined, 'a MARK option (--set-mark, --set-xmark, --and-mark, --or-mark)');
  const { value, mask } = valueMask(ctx, opt.args[0], 'a mark value[/mask] (decimal or 0x hex)');
  const set = (v: bigint, m: bigint): Statement =>
    m === FULL_MARK
      ? { kind: 'set', field: 'mark', value: v, text }
      : { kind: 'set', field: 'mark', value: v, mask: m, text };
  switch (opt.name) {
    case '--set-mark':
      return set(value, mask === undefined ? FULL_MARK : mask | value);
    case '--set-xmark': {
      const m = mask ?? FULL_MARK;
      if ((value & ~m & FULL_MARK) === 0n) return set(value, m);
      break;
    }
    case '--and-mark':
      return set(0n, ~value & FULL_MARK);
    case '--or-mark':
      return set(value, value);
    default:
      break;
  }
  ctx.warnings.add(
    'mark-xor',
    'iptables-mark-unknown',
    `MARK ${opt.name} toggles mark bits; later mark matches are not exact`,
    {
      file: ctx.file,
      line: ctx.line,
      column: opt.tok.col,
    },
  );
  return { kind: 'other', text };
}

function natVerdict(ctx: Ctx, type: NatType, o: readonly Opt[], text: string, proto: number | undefined): NatVerdict {
  const base: { kind: 'nat'; type: NatType; family: L3; text: string } = { kind: 'nat', type, family: ctx.l3, text };
  if (type === 'masquerade' || type === 'redirect') {
    const p = optArg(o, '--to-ports');
    if (!p) return base;
    requirePortProto(ctx, p, proto, false);
    return { ...base, port: portSpan(ctx, p.args[0]!, p.args[0]!.s) };
  }
  const tos = o.filter((x) => x.name === '--to-destination' || x.name === '--to-source' || x.name === '--to');
  const to = tos[0];
  if (!to) {
    throw err(
      ctx,
      undefined,
      `${type === 'dnat' ? '--to-destination' : '--to-source'} ADDR[-ADDR][:PORT[-PORT]]`,
      `missing ${type === 'dnat' ? '--to-destination' : '--to-source'}`,
    );
  }
  if (tos.length > 1) {
    ctx.warnings.add('nat-multi', 'iptables-nat-multiple', 'several --to options: only the first is modelled', {
      file: ctx.file,
      line: ctx.line,
      column: tos[1]!.tok.col,
    });
  }
  const tok = to.args[0]!;
  let s = tok.s;
  let portText: string | undefined;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) throw err(ctx, tok, '[IPv6 address]:port', `bad NAT address '${s}'`);
    if (s.charCodeAt(close + 1) === 58) portText = s.slice(close + 2);
    s = s.slice(1, close);
  } else if (ctx.l3 === 'ipv4') {
    const colon = s.indexOf(':');
    if (colon >= 0) {
      portText = s.slice(colon + 1);
      s = s.slice(0, colon);
    }
  }
  const result: { -readonly [K in keyof NatVerdict]: NatVerdict[K] } = { ...base };
  if (s !== '') {
    const dash = s.indexOf('-');
    const lo = parseSingleAddress(ctx, dash < 0 ? s : s.slice(0, dash));
    const hi = dash < 0 ? lo : parseSingleAddress(ctx, s.slice(dash + 1));
    if (!lo || !hi || lo.family !== ctx.l3 || hi.family !== ctx.l3 || lo.lo > hi.lo) {
      throw err(
        ctx,
        tok,
        `an ${ctx.l3 === 'ipv4' ? 'IPv4' : 'IPv6'} address or range, optionally :port or :port-port`,
        `bad NAT address '${s}'`,
      );
    }
    result.addr = { lo: lo.lo, hi: hi.lo };
  }
  if (portText !== undefined) {
    requirePortProto(ctx, to, proto, false);
    result.port = portSpan(ctx, tok, portText);
  }
  return result;
}

function portSpan(ctx: Ctx, tok: Tok, s: string): { lo: number; hi: number } {
  const dash = s.indexOf('-');
  const lo = parsePort(ctx, tok, dash < 0 ? s : s.slice(0, dash));
  const hi = dash < 0 ? lo : parsePort(ctx, tok, s.slice(dash + 1));
  if (lo > hi) throw err(ctx, tok, 'a port range LOW-HIGH', `bad port range '${s}'`);
  return { lo, hi };
}
