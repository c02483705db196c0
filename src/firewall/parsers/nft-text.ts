/**
 * nftables text parser: /etc/nftables.conf style files and `nft [-a] list ruleset` output.
 *
 * The text is parsed into exactly the libnftables-json array `nft -j list ruleset` would print for the same ruleset
 * (tables, sets/maps, chains, then rules), with two extra keys on tables, chains, sets and rules: `$origin` (where it
 * was written) and `$text` (the rule as written). That array then goes through the nft JSON converter, so both input
 * formats share one path into the IR, and the JSON form can be checked against the real kernel's own output.
 *
 * Values are canonicalised the way nft prints them where that is cheap and certain (service names to port numbers,
 * ICMP type numbers to names, `icmpv6` to `ipv6-icmp`, prefixes masked); expressions the parser does not know become
 * `{"$opaque": "source text"}` entries, which the converter turns into opaque matches.
 */
import { ParseError } from '../../errors.js';
import type { Ruleset } from '../model.js';
import { ICMP_CODES, ICMP_TYPES, ICMPV6_CODES, ICMPV6_TYPES, PRIORITY_NAMES, PROTOCOLS, SERVICES } from '../symbols.js';
import { formatAddress, parseAddress, parseAddressRange } from '../values.js';
import { own } from './common.js';
import { convertNftJson, VERDICT_KEYS } from './nft-json.js';

/** How deep anonymous sets may nest (`{ { { ... } } }`) before the input is refused. */
const MAX_SET_NESTING = 64;

export interface IncludedFile {
  readonly file: string;
  readonly text: string;
}

export interface NftTextOptions {
  /** Resolves an `include "path"` (glob allowed) relative to the including file. I/O stays outside the parser. */
  readonly include?: (path: string, fromFile: string) => readonly IncludedFile[];
}

/** Parses nftables text as in /etc/nftables.conf or `nft list ruleset`. */
export function parseNftText(text: string, file: string, opts: NftTextOptions = {}): Ruleset {
  const ruleset = convertNftJson(nftTextToJson(text, file, opts), file);
  return { ...ruleset, format: 'nft-text' };
}

/** The libnftables-json array (`{"nftables": [...]}` contents, without metainfo) for an nftables text. */
export function nftTextToJson(text: string, file: string, opts: NftTextOptions = {}): unknown[] {
  const state = new State(opts);
  parseFile(state, text, file, 0);
  return state.emit();
}

// ---------------------------------------------------------------------------------------------------------------
// Lexer

enum K {
  Word = 0,
  Str = 1,
  Punct = 2,
  Nl = 3,
  Eof = 4,
  Var = 5,
  SetRef = 6,
}

interface Tok {
  readonly k: K;
  readonly v: string;
  readonly s: number;
  readonly e: number;
  readonly line: number;
  readonly col: number;
  /** Comes from a `$VAR` expansion: its position is in the define, not in the rule being parsed. */
  readonly x?: true;
}

function isWordChar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) || // a-z
    (c >= 65 && c <= 90) || // A-Z
    (c >= 48 && c <= 57) || // 0-9
    c === 95 || // _
    c === 46 || // .
    c === 58 || // :
    c === 47 || // /
    c === 45 || // -
    c === 42 || // *
    c === 37 || // %
    c === 126 // ~
  );
}

const TWO_CHAR = new Set(['==', '!=', '<=', '>=', '<<', '>>']);
const ONE_CHAR = new Set(['{', '}', '(', ')', ';', ',', '=', '!', '<', '>', '&', '|', '^', '[', ']', '+']);
const MAC_RE = /^[0-9a-f]{1,2}(:[0-9a-f]{1,2}){5}$/i;

function lex(src: string, file: string): Tok[] {
  const toks: Tok[] = [];
  const n = src.length;
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const push = (k: K, v: string, s: number, e: number): void => {
    toks.push({ k, v, s, e, line, col: s - lineStart + 1 });
  };
  while (i < n) {
    const c = src.charCodeAt(i);
    if (c === 10) {
      push(K.Nl, '\n', i, i + 1);
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === 32 || c === 9 || c === 13) {
      i++;
      continue;
    }
    if (c === 35) {
      // `#` comment to end of line (nft -a prints `# handle N` this way)
      while (i < n && src.charCodeAt(i) !== 10) i++;
      continue;
    }
    if (c === 92) {
      // `\` line continuation: the newline does not end the statement
      let j = i + 1;
      while (j < n && (src.charCodeAt(j) === 32 || src.charCodeAt(j) === 9 || src.charCodeAt(j) === 13)) j++;
      if (j < n && src.charCodeAt(j) === 10) {
        i = j + 1;
        line++;
        lineStart = i;
        continue;
      }
      throw new ParseError(file, line, i - lineStart + 1, '\\', 'a line continuation at the end of a line');
    }
    if (c === 34) {
      const start = i;
      let j = i + 1;
      while (j < n && src.charCodeAt(j) !== 34 && src.charCodeAt(j) !== 10) j++;
      if (j >= n || src.charCodeAt(j) !== 34) {
        throw new ParseError(file, line, start - lineStart + 1, src.slice(start, j), "a closing '\"' on the same line");
      }
      push(K.Str, src.slice(start + 1, j), start, j + 1);
      i = j + 1;
      continue;
    }
    if (c === 36 || c === 64) {
      // $VAR and @set; names have no ':' (nft lists `dnat to ip saddr map @m:80`)
      let j = i + 1;
      while (j < n && isWordChar(src.charCodeAt(j)) && src.charCodeAt(j) !== 58) j++;
      if (j === i + 1) {
        throw new ParseError(file, line, i - lineStart + 1, src[i] ?? '', c === 36 ? 'a variable name' : 'a set name');
      }
      push(c === 36 ? K.Var : K.SetRef, src.slice(i + 1, j), i, j);
      i = j;
      continue;
    }
    if (isWordChar(c)) {
      const start = i;
      let j = i + 1;
      while (j < n && isWordChar(src.charCodeAt(j))) j++;
      const w = src.slice(start, j);
      i = j;
      if (w.includes(':') && !MAC_RE.test(w) && !(w.includes('::') || isIpv6Text(w))) {
        // `10.0.0.1:80`, `22:accept`, `:8080`: the colon is a separator unless the word is an IPv6 address
        let p = start;
        for (const part of w.split(':')) {
          if (part !== '') push(K.Word, part, p, p + part.length);
          p += part.length;
          if (p < j) push(K.Punct, ':', p, p + 1);
          p++;
        }
      } else if (w.includes('::') && !isIpv6Text(w)) {
        throw new ParseError(file, line, start - lineStart + 1, w, 'an IPv6 address');
      } else {
        push(K.Word, w, start, j);
      }
      continue;
    }
    const two = src.slice(i, i + 2);
    if (TWO_CHAR.has(two)) {
      push(K.Punct, two, i, i + 2);
      i += 2;
      continue;
    }
    const one = src[i] ?? '';
    if (ONE_CHAR.has(one)) {
      push(K.Punct, one, i, i + 1);
      i++;
      continue;
    }
    throw new ParseError(file, line, i - lineStart + 1, one, 'an nftables word, string or punctuation');
  }
  toks.push({ k: K.Eof, v: '', s: n, e: n, line, col: n - lineStart + 1 });
  return toks;
}

/** A top-level statement of nft text: where it is, and its first tokens at brace depth 0. */
export interface TopLevelStatement {
  /** Character range of the statement (without its terminator). */
  readonly start: number;
  readonly end: number;
  /** Up to `maxTokens` tokens: words, strings (`quoted`), `$VAR` as written, and `}` closing back to depth 0. */
  readonly toks: readonly {
    readonly v: string;
    readonly quoted: boolean;
    readonly line: number;
    readonly col: number;
  }[];
}

/**
 * Splits nft text into top-level statements (newline or `;` at brace depth 0) with this parser's own lexer, for
 * callers that vet which commands a text runs before parsing it (the agent refuses tables it does not manage).
 */
export function topLevelStatements(src: string, file: string, maxTokens = 8): TopLevelStatement[] {
  const out: TopLevelStatement[] = [];
  let depth = 0;
  let cur: { start: number; end: number; toks: TopLevelStatement['toks'][number][] } | undefined;
  const finish = (): void => {
    if (cur) out.push(cur);
    cur = undefined;
  };
  for (const t of lex(src, file)) {
    if (t.k === K.Eof) break;
    if (depth === 0 && (t.k === K.Nl || (t.k === K.Punct && t.v === ';'))) {
      finish();
      continue;
    }
    if (t.k === K.Nl) continue;
    cur ??= { start: t.s, end: t.e, toks: [] };
    cur.end = t.e;
    if (t.k === K.Punct && t.v === '{') {
      depth++;
      continue;
    }
    if (t.k === K.Punct && t.v === '}') depth = Math.max(0, depth - 1);
    if (depth === 0 && cur.toks.length < maxTokens) {
      const v = t.k === K.Var ? `$${t.v}` : t.k === K.SetRef ? `@${t.v}` : t.v;
      cur.toks.push({ v, quoted: t.k === K.Str, line: t.line, col: t.col });
    }
  }
  finish();
  return out;
}

function isIpv6Text(w: string): boolean {
  const r = parseAddressRange(w);
  return r !== undefined && r.family === 'ipv6';
}

// ---------------------------------------------------------------------------------------------------------------
// Tables of names nft knows (what `nft -j` prints for them)

/** Protocol numbers written by name, as nft prints them; other numbers stay numbers (the converter reads both). */
const NAMED_PROTOCOLS: readonly number[] = [0, 1, 2, 4, 6, 17, 33, 41, 47, 50, 51, 58, 132, 136];
const PROTO_ALIASES: Readonly<Record<string, string>> = { icmpv6: 'ipv6-icmp' };

/** Number to name; the first name listed for a number is the one nft prints (mld-listener-done, ipv6-icmp). */
function byNumber(table: Readonly<Record<string, number>>, only?: readonly number[]): ReadonlyMap<number, string> {
  const out = new Map<number, string>();
  for (const [name, n] of Object.entries(table)) {
    if (!out.has(n) && (only === undefined || only.includes(n))) out.set(n, name);
  }
  return out;
}
const NUM_TO_NAME = {
  icmp_type: byNumber(ICMP_TYPES),
  icmpv6_type: byNumber(ICMPV6_TYPES),
  icmp_code: byNumber(ICMP_CODES),
  icmpv6_code: byNumber(ICMPV6_CODES),
  proto: byNumber(PROTOCOLS, NAMED_PROTOCOLS),
} as const;

const FAMILIES = new Set(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']);
const PAYLOAD_PROTOCOLS = new Set([
  'ip',
  'ip6',
  'tcp',
  'udp',
  'sctp',
  'dccp',
  'udplite',
  'th',
  'icmp',
  'icmpv6',
  'ah',
  'esp',
  'comp',
  'igmp',
  'ether',
  'vlan',
  'arp',
  'gre',
]);
/** Meta keys nft accepts without the `meta` keyword. */
const BARE_META = new Set([
  'mark',
  'iif',
  'iifname',
  'iiftype',
  'oif',
  'oifname',
  'oiftype',
  'skuid',
  'skgid',
  'nftrace',
  'rtclassid',
  'ibrname',
  'obrname',
  'pkttype',
  'cpu',
  'iifgroup',
  'oifgroup',
  'cgroup',
  'ibriport',
  'obriport',
  'ipsec',
]);
/** Words that start a statement; an unknown expression extends up to the first of these. */
const STATEMENT_WORDS = new Set([
  ...VERDICT_KEYS,
  'reject',
  'counter',
  'log',
  'limit',
  'quota',
  'notrack',
  'comment',
  'dnat',
  'snat',
  'masquerade',
  'redirect',
]);
const REL_OPS: Readonly<Record<string, string>> = {
  '==': '==',
  eq: '==',
  '!=': '!=',
  ne: '!=',
  '<': '<',
  lt: '<',
  '>': '>',
  gt: '>',
  '<=': '<=',
  le: '<=',
  '>=': '>=',
  ge: '>=',
};
const BINOPS: Readonly<Record<string, string>> = {
  '&': '&',
  and: '&',
  '|': '|',
  or: '|',
  '^': '^',
  xor: '^',
  '<<': '<<',
  lshift: '<<',
  '>>': '>>',
  rshift: '>>',
};

// ---------------------------------------------------------------------------------------------------------------
// Value types

type ValType =
  | 'ipv4'
  | 'ipv6'
  | 'addr'
  | 'port'
  | 'proto'
  | 'icmp_type'
  | 'icmpv6_type'
  | 'icmp_code'
  | 'icmpv6_code'
  | 'int'
  | 'ifname'
  | 'string'
  | 'ct_state'
  | 'ct_status'
  | 'tcp_flags'
  | 'verdict'
  | 'generic';

/** Bitmask types: a bare value list means "any of these bits" and nft prints the op as `in`. */
const BITMASK_TYPES = new Set<ValType>(['ct_state', 'ct_status', 'tcp_flags']);

const SET_TYPE_NAMES: Readonly<Record<string, ValType>> = {
  ipv4_addr: 'ipv4',
  ipv6_addr: 'ipv6',
  inet_service: 'port',
  inet_proto: 'proto',
  ifname: 'ifname',
  iface_index: 'ifname',
  mark: 'int',
  ct_state: 'ct_state',
  ct_status: 'ct_status',
  icmp_type: 'icmp_type',
  icmpv6_type: 'icmpv6_type',
  icmp_code: 'icmp_code',
  icmpv6_code: 'icmpv6_code',
  tcp_flag: 'tcp_flags',
  verdict: 'verdict',
  integer: 'int',
};

function typeOfExpr(e: unknown): ValType {
  if (typeof e !== 'object' || e === null) return 'generic';
  const o = e as Record<string, unknown>;
  if (o.payload) {
    const { protocol, field } = o.payload as { protocol: string; field: string };
    if (field === 'saddr' || field === 'daddr') {
      if (protocol === 'ip') return 'ipv4';
      if (protocol === 'ip6') return 'ipv6';
    }
    if (field === 'sport' || field === 'dport') return 'port';
    if ((protocol === 'ip' && field === 'protocol') || (protocol === 'ip6' && field === 'nexthdr')) return 'proto';
    if (protocol === 'icmp' && (field === 'type' || field === 'code'))
      return field === 'type' ? 'icmp_type' : 'icmp_code';
    if (protocol === 'icmpv6' && (field === 'type' || field === 'code')) {
      return field === 'type' ? 'icmpv6_type' : 'icmpv6_code';
    }
    if (protocol === 'tcp' && field === 'flags') return 'tcp_flags';
    return 'generic';
  }
  if (o.meta) {
    const key = (o.meta as { key: string }).key;
    if (key === 'l4proto') return 'proto';
    if (key === 'nfproto') return 'string';
    if (key === 'iifname' || key === 'oifname' || key === 'iif' || key === 'oif') return 'ifname';
    if (key === 'ibrname' || key === 'obrname') return 'ifname';
    if (key === 'mark' || key === 'skuid' || key === 'skgid' || key === 'priority') return 'int';
    return 'generic';
  }
  if (o.ct) {
    const key = (o.ct as { key: string }).key;
    if (key === 'state') return 'ct_state';
    if (key === 'status') return 'ct_status';
    if (key === 'mark') return 'int';
    if (key === 'saddr' || key === 'daddr') return 'addr';
    if (key === 'proto-src' || key === 'proto-dst') return 'port';
    return 'generic';
  }
  if (o.fib) return 'string';
  for (const op of Object.values(BINOPS)) {
    const arr = o[op];
    if (Array.isArray(arr)) return typeOfExpr(arr[0]);
  }
  return 'generic';
}

/** The set type name nft prints for a `typeof` expression. */
function typeNameOfExpr(e: unknown): string {
  const t = typeOfExpr(e);
  const names: Partial<Record<ValType, string>> = {
    ipv4: 'ipv4_addr',
    ipv6: 'ipv6_addr',
    port: 'inet_service',
    proto: 'inet_proto',
    ifname: 'ifname',
    int: 'mark',
    ct_state: 'ct_state',
    ct_status: 'ct_status',
    icmp_type: 'icmp_type',
    icmpv6_type: 'icmpv6_type',
    tcp_flags: 'tcp_flag',
  };
  const o = e as Record<string, { key?: string }>;
  if (o.meta?.key === 'iif' || o.meta?.key === 'oif') return 'iface_index';
  if (o.meta?.key === 'nfproto') return 'nf_proto';
  return names[t] ?? 'integer';
}

// ---------------------------------------------------------------------------------------------------------------
// Ruleset state (what `nft -f` would build)

interface ChainState {
  readonly obj: Record<string, unknown>;
  rules: Record<string, unknown>[];
}
interface SetState {
  readonly obj: Record<string, unknown>;
  readonly keyTypes: readonly ValType[];
  readonly dataType?: DataType;
  /** `type K : interval D`: the map's values are ranges (nft then prints a nat statement's family). */
  readonly dataInterval?: boolean;
}

/** A map's data type: one type, or one per part of a concatenation (`ipv4_addr . inet_service`). */
type DataType = ValType | readonly ValType[];
interface TableState {
  readonly obj: Record<string, unknown>;
  readonly sets: Map<string, SetState>;
  readonly chains: Map<string, ChainState>;
}

class State {
  readonly tables = new Map<string, TableState>();
  readonly defines = new Map<string, { toks: readonly Tok[]; file: string }>();
  constructor(readonly opts: NftTextOptions) {}

  emit(): unknown[] {
    const out: unknown[] = [];
    for (const t of this.tables.values()) {
      out.push({ table: t.obj });
      for (const s of t.sets.values()) out.push({ [s.dataType ? 'map' : 'set']: s.obj });
      for (const c of t.chains.values()) out.push({ chain: c.obj });
      for (const c of t.chains.values()) for (const r of c.rules) out.push({ rule: r });
    }
    return out;
  }
}

const MAX_INCLUDE_DEPTH = 16;

function parseFile(state: State, text: string, file: string, depth: number): void {
  const p = new Parser(state, text, file, lex(text, file), depth);
  p.parseTop();
}

// ---------------------------------------------------------------------------------------------------------------
// Parser

interface RuleCtx {
  readonly family: string;
  readonly table: TableState;
}

class Parser {
  private pos = 0;
  /** Tokens spliced in from `$VAR` expansions, consumed before `toks[pos]`. */
  private pending: Tok[] = [];
  private lastEnd = 0;

  constructor(
    private readonly state: State,
    private readonly src: string,
    private readonly file: string,
    private readonly toks: readonly Tok[],
    private readonly depth: number,
  ) {}

  // -- token stream ---------------------------------------------------------------------------------------------

  private peek(): Tok {
    this.expandVars();
    return this.pending.length > 0 ? (this.pending[this.pending.length - 1] as Tok) : (this.toks[this.pos] as Tok);
  }

  private peekAt(n: number): Tok {
    // look-ahead without expansion beyond the first token (used only for keywords)
    this.expandVars();
    const pl = this.pending.length;
    if (n < pl) return this.pending[pl - 1 - n] as Tok;
    return (this.toks[this.pos + n - pl] ?? this.toks[this.toks.length - 1]) as Tok;
  }

  private next(): Tok {
    const t = this.peek();
    if (this.pending.length > 0) this.pending.pop();
    else this.pos++;
    if (!t.x) this.lastEnd = t.e;
    return t;
  }

  /** Replaces a `$VAR` at the front of the stream with its definition's tokens. */
  private expandVars(): void {
    for (;;) {
      const t = this.pending.length > 0 ? this.pending[this.pending.length - 1] : this.toks[this.pos];
      if (!t || t.k !== K.Var) return;
      const def = this.state.defines.get(t.v);
      if (!def) throw this.err(t, 'a variable defined earlier with `define`', `undefined variable '$${t.v}'`);
      if (this.pending.length > 0) this.pending.pop();
      else this.pos++;
      if (!t.x) this.lastEnd = t.e;
      for (let i = def.toks.length - 1; i >= 0; i--) {
        const d = def.toks[i] as Tok;
        this.pending.push(d.x ? d : { ...d, x: true });
      }
    }
  }

  private err(t: Tok, expected: string, message?: string): ParseError {
    const tok =
      t.k === K.Eof ? '' : t.k === K.Nl ? '\\n' : t.k === K.Var ? `$${t.v}` : t.k === K.SetRef ? `@${t.v}` : t.v;
    return new ParseError(this.file, t.line, t.col, tok, expected, message);
  }

  private isWord(t: Tok, v?: string): boolean {
    return t.k === K.Word && (v === undefined || t.v === v);
  }
  private isPunct(t: Tok, v: string): boolean {
    return t.k === K.Punct && t.v === v;
  }

  private expectPunct(v: string, expected = `'${v}'`): Tok {
    const t = this.peek();
    if (!this.isPunct(t, v)) throw this.err(t, expected);
    return this.next();
  }

  /** A name: a word or a quoted string. */
  private name(expected: string): string {
    const t = this.peek();
    if (t.k === K.Word || t.k === K.Str) {
      if (t.k === K.Word && !/^[A-Za-z_][\w.\-/]*$/.test(t.v) && !/^\d+$/.test(t.v)) throw this.err(t, expected);
      this.next();
      return t.v;
    }
    throw this.err(t, expected);
  }

  private skipNl(): void {
    for (;;) {
      const t = this.peek();
      if (t.k === K.Nl || this.isPunct(t, ';')) this.next();
      else return;
    }
  }
  private skipNewlines(): void {
    while (this.peek().k === K.Nl) this.next();
  }

  /** After a statement: a newline, `;`, a closing brace or the end of input. */
  private endStatement(): void {
    const t = this.peek();
    if (t.k === K.Nl || this.isPunct(t, ';')) {
      this.next();
      return;
    }
    if (t.k === K.Eof || this.isPunct(t, '}')) return;
    throw this.err(t, "a newline or ';'");
  }

  private origin(t: Tok): Record<string, unknown> {
    return this.depth > 0 ? { file: this.file, line: t.line, column: t.col } : { line: t.line, column: t.col };
  }

  // -- top level ------------------------------------------------------------------------------------------------

  parseTop(): void {
    for (;;) {
      this.skipNl();
      const t = this.peek();
      if (t.k === K.Eof) return;
      if (t.k !== K.Word) throw this.err(t, 'a command (table, define, include, flush, add, ...)');
      this.next();
      switch (t.v) {
        case 'define':
        case 'redefine':
          this.parseDefine();
          break;
        case 'undefine':
          this.state.defines.delete(this.name('a variable name'));
          break;
        case 'include':
          this.parseInclude(t);
          break;
        case 'flush':
          this.parseFlush();
          break;
        case 'delete':
        case 'destroy':
          this.parseDelete();
          break;
        case 'add':
        case 'create':
        case 'insert':
          this.parseCommand(this.next(), t.v === 'insert');
          break;
        case 'table':
        case 'chain':
        case 'rule':
        case 'set':
        case 'map':
        case 'element':
          this.parseCommand(t, false);
          break;
        default:
          throw this.err(t, 'a command (table, define, include, flush, add, insert, delete)');
      }
      this.endStatement();
    }
  }

  private parseDefine(): void {
    const name = this.name('a variable name');
    this.expectPunct('=');
    const toks: Tok[] = [];
    let depth = 0;
    // Read raw tokens; `$VAR`s inside are replaced now, as nft does, so defines never recurse.
    for (;;) {
      const t = this.toks[this.pos] as Tok;
      if (t.k === K.Eof || (depth <= 0 && (t.k === K.Nl || this.isPunct(t, ';')))) break;
      this.pos++;
      this.lastEnd = t.e;
      if (this.isPunct(t, '{') || this.isPunct(t, '(')) depth++;
      if (this.isPunct(t, '}') || this.isPunct(t, ')')) depth--;
      if (t.k === K.Nl) continue;
      if (t.k === K.Var) {
        const def = this.state.defines.get(t.v);
        if (!def) throw this.err(t, 'a variable defined earlier with `define`', `undefined variable '$${t.v}'`);
        toks.push(...def.toks);
        continue;
      }
      toks.push(t);
    }
    if (depth !== 0) throw this.err(this.toks[this.pos] as Tok, "a closing '}'");
    if (toks.length === 0) throw this.err(this.toks[this.pos] as Tok, `a value for '${name}'`);
    this.state.defines.set(name, { toks, file: this.file });
  }

  private parseInclude(kw: Tok): void {
    const t = this.peek();
    if (t.k !== K.Str) throw this.err(t, 'a quoted file name');
    this.next();
    const resolver = this.state.opts.include;
    if (!resolver) throw this.err(kw, 'no include (this input cannot read other files)');
    if (this.depth >= MAX_INCLUDE_DEPTH) throw this.err(t, 'includes nested less deeply (include loop?)');
    for (const f of resolver(t.v, this.file)) parseFile(this.state, f.text, f.file, this.depth + 1);
  }

  private familyAndName(what: string): { family: string; name: string } {
    const t = this.peek();
    let family = 'ip';
    // family names are keywords in nft's grammar, never table names
    if (t.k === K.Word && FAMILIES.has(t.v)) {
      this.next();
      family = t.v;
    }
    return { family, name: this.name(what) };
  }

  private getTable(family: string, name: string, at: Tok): TableState {
    const tbl = this.state.tables.get(`${family} ${name}`);
    if (!tbl) throw this.err(at, `an existing table (no table ${family} ${name})`);
    return tbl;
  }

  private parseFlush(): void {
    const t = this.next();
    if (this.isWord(t, 'ruleset')) {
      const f = this.peek();
      if (f.k === K.Word && FAMILIES.has(f.v)) {
        this.next();
        for (const [k, v] of this.state.tables) if (v.obj.family === f.v) this.state.tables.delete(k);
      } else this.state.tables.clear();
      return;
    }
    if (this.isWord(t, 'table')) {
      const at = this.peek();
      const { family, name } = this.familyAndName('a table name');
      for (const c of this.getTable(family, name, at).chains.values()) c.rules = [];
      return;
    }
    if (this.isWord(t, 'chain')) {
      const at = this.peek();
      const { family, name } = this.familyAndName('a table name');
      const chain = this.getTable(family, name, at).chains.get(this.name('a chain name'));
      if (!chain) throw this.err(at, 'an existing chain');
      chain.rules = [];
      return;
    }
    if (this.isWord(t, 'set') || this.isWord(t, 'map')) {
      const at = this.peek();
      const { family, name } = this.familyAndName('a table name');
      const set = this.getTable(family, name, at).sets.get(this.name('a set name'));
      if (!set) throw this.err(at, 'an existing set');
      delete set.obj.elem;
      return;
    }
    throw this.err(t, 'ruleset, table, chain, set or map');
  }

  private parseDelete(): void {
    const t = this.next();
    const at = this.peek();
    const { family, name } = this.familyAndName('a table name');
    if (this.isWord(t, 'table')) {
      if (this.peek().k === K.Word && this.peek().v === 'handle') throw this.err(this.peek(), 'a table name');
      this.getTable(family, name, at);
      this.state.tables.delete(`${family} ${name}`);
      return;
    }
    const tbl = this.getTable(family, name, at);
    if (this.isWord(t, 'chain')) {
      const c = this.name('a chain name');
      if (!tbl.chains.delete(c)) throw this.err(at, 'an existing chain');
      return;
    }
    if (this.isWord(t, 'set') || this.isWord(t, 'map')) {
      const s = this.name('a set name');
      if (!tbl.sets.delete(s)) throw this.err(at, 'an existing set');
      return;
    }
    throw this.err(t, 'table, chain, set or map (deleting rules by handle is not supported)');
  }

  private parseCommand(kw: Tok, insert: boolean): void {
    if (kw.k !== K.Word) throw this.err(kw, 'table, chain, rule, set, map or element');
    switch (kw.v) {
      case 'table': {
        const tbl = this.declareTable(kw);
        if (this.isPunct(this.peek(), '{')) this.parseTableBody(tbl);
        return;
      }
      case 'chain': {
        const at = this.peek();
        const { family, name } = this.familyAndName('a table name');
        if (this.isPunct(this.peek(), '{')) {
          throw this.err(this.peek(), 'a chain name after the table name (a chain is declared inside a table)');
        }
        const tbl = this.getTable(family, name, at);
        this.parseChain(tbl, kw, false);
        return;
      }
      case 'set':
      case 'map': {
        const at = this.peek();
        const { family, name } = this.familyAndName('a table name');
        this.parseSet(this.getTable(family, name, at), kw, kw.v === 'map');
        return;
      }
      case 'element': {
        const at = this.peek();
        const { family, name } = this.familyAndName('a table name');
        const tbl = this.getTable(family, name, at);
        const setTok = this.peek();
        const set = tbl.sets.get(this.name('a set name'));
        if (!set) throw this.err(setTok, 'an existing set or map');
        this.addElements(set, this.parseElements(set.keyTypes, set.dataType));
        return;
      }
      case 'rule': {
        const at = this.peek();
        const { family, name } = this.familyAndName('a table name');
        const tbl = this.getTable(family, name, at);
        const chainTok = this.peek();
        const chain = tbl.chains.get(this.name('a chain name'));
        if (!chain) throw this.err(chainTok, `an existing chain in table ${family} ${name}`);
        // `add rule t c position N ...` / `handle N` / `index N`: placement in a live ruleset; ignored for files
        const p = this.peek();
        if (p.k === K.Word && (p.v === 'position' || p.v === 'handle' || p.v === 'index')) {
          this.next();
          this.next();
        }
        const rule = this.parseRule({ family, table: tbl }, chain.obj.name as string);
        if (rule) {
          if (insert) chain.rules.unshift(rule);
          else chain.rules.push(rule);
        }
        return;
      }
      default:
        throw this.err(kw, 'table, chain, rule, set, map or element');
    }
  }

  private declareTable(kw: Tok): TableState {
    const at = this.peek();
    const { family, name } = this.familyAndName('a table name');
    const key = `${family} ${name}`;
    let tbl = this.state.tables.get(key);
    if (!tbl) {
      tbl = {
        obj: { family, name, $origin: this.origin(kw.x ? at : kw) },
        sets: new Map(),
        chains: new Map(),
      };
      this.state.tables.set(key, tbl);
    }
    return tbl;
  }

  private parseTableBody(tbl: TableState): void {
    this.expectPunct('{');
    for (;;) {
      this.skipNl();
      const t = this.peek();
      if (this.isPunct(t, '}')) {
        this.next();
        return;
      }
      if (t.k !== K.Word) throw this.err(t, "chain, set, map, flags, comment or '}'");
      this.next();
      switch (t.v) {
        case 'chain':
          this.parseChain(tbl, t, true);
          break;
        case 'set':
        case 'map':
          this.parseSet(tbl, t, t.v === 'map');
          break;
        case 'flags':
          tbl.obj.flags = this.parseWordList();
          break;
        case 'comment':
          tbl.obj.comment = this.string('a quoted comment');
          break;
        case 'define':
        case 'redefine':
          this.parseDefine();
          break;
        case 'include':
          this.parseInclude(t);
          break;
        case 'flowtable':
        case 'counter':
        case 'quota':
        case 'ct':
        case 'limit':
        case 'secmark':
        case 'synproxy':
          // stateful objects do not decide verdicts; skip their definition
          this.skipObject(t);
          break;
        default:
          throw this.err(t, "chain, set, map, flags, comment or '}'");
      }
      this.endStatement();
    }
  }

  private skipObject(kw: Tok): void {
    while (!this.isPunct(this.peek(), '{')) {
      const t = this.peek();
      if (t.k === K.Eof || t.k === K.Nl || this.isPunct(t, ';') || this.isPunct(t, '}')) {
        throw this.err(t, `'{' after ${kw.v} name`);
      }
      this.next();
    }
    this.skipBalanced();
  }

  private skipBalanced(): void {
    const open = this.expectPunct('{');
    let depth = 1;
    while (depth > 0) {
      const t = this.next();
      if (t.k === K.Eof) throw this.err(open, "a matching '}'", "unbalanced '{'");
      if (this.isPunct(t, '{')) depth++;
      else if (this.isPunct(t, '}')) depth--;
    }
  }

  private string(expected: string): string {
    const t = this.peek();
    if (t.k !== K.Str && t.k !== K.Word) throw this.err(t, expected);
    this.next();
    return t.v;
  }

  private parseWordList(): string[] {
    const out = [this.name('a flag')];
    while (this.isPunct(this.peek(), ',')) {
      this.next();
      this.skipNewlines();
      out.push(this.name('a flag'));
    }
    return out;
  }

  // -- chains ---------------------------------------------------------------------------------------------------

  private parseChain(tbl: TableState, kw: Tok, withBody: boolean): void {
    const nameTok = this.peek();
    const name = this.name('a chain name');
    let chain = tbl.chains.get(name);
    if (!chain) {
      chain = {
        obj: { family: tbl.obj.family, table: tbl.obj.name, name, $origin: this.origin(kw.x ? nameTok : kw) },
        rules: [],
      };
      tbl.chains.set(name, chain);
    }
    if (!withBody && !this.isPunct(this.peek(), '{')) return;
    this.expectPunct('{');
    const ctx: RuleCtx = { family: tbl.obj.family as string, table: tbl };
    for (;;) {
      this.skipNl();
      const t = this.peek();
      if (this.isPunct(t, '}')) {
        this.next();
        return;
      }
      if (t.k === K.Eof) throw this.err(t, "'}' closing chain " + name);
      if (t.k === K.Word && (t.v === 'define' || t.v === 'redefine') && this.peekAt(2).v === '=') {
        this.next();
        this.parseDefine();
      } else if (t.k === K.Word && t.v === 'type' && this.peekAt(2).v === 'hook') {
        this.parseChainSpec(chain.obj);
      } else if (t.k === K.Word && t.v === 'policy') {
        this.next();
        const p = this.peek();
        if (!this.isWord(p, 'accept') && !this.isWord(p, 'drop')) throw this.err(p, "'accept' or 'drop'");
        this.next();
        chain.obj.policy = p.v;
      } else if (t.k === K.Word && t.v === 'comment' && this.peekAt(1).k === K.Str && this.isEnd(this.peekAt(2))) {
        this.next();
        chain.obj.comment = this.next().v;
      } else if (t.k === K.Word && (t.v === 'devices' || t.v === 'device') && chain.obj.hook !== undefined) {
        this.next();
        if (this.isPunct(this.peek(), '=')) this.next();
        chain.obj.dev = this.isPunct(this.peek(), '{') ? this.parseBraceWords() : this.string('a device name');
      } else {
        const rule = this.parseRule(ctx, name);
        if (rule) chain.rules.push(rule);
      }
      this.endStatement();
    }
  }

  private isEnd(t: Tok): boolean {
    return t.k === K.Nl || t.k === K.Eof || this.isPunct(t, ';') || this.isPunct(t, '}');
  }

  private parseBraceWords(): string[] {
    this.expectPunct('{');
    const out: string[] = [];
    for (;;) {
      this.skipNewlines();
      if (this.isPunct(this.peek(), '}')) break;
      out.push(this.string('a device name'));
      this.skipNewlines();
      if (this.isPunct(this.peek(), ',')) this.next();
    }
    this.next();
    return out;
  }

  private parseChainSpec(obj: Record<string, unknown>): void {
    this.next(); // type
    const typeTok = this.peek();
    if (!['filter', 'nat', 'route'].includes(typeTok.v) || typeTok.k !== K.Word) {
      throw this.err(typeTok, 'a chain type (filter, nat or route)');
    }
    this.next();
    this.next(); // hook
    const hookTok = this.peek();
    const hooks = ['prerouting', 'input', 'forward', 'output', 'postrouting', 'ingress', 'egress'];
    if (hookTok.k !== K.Word || !hooks.includes(hookTok.v)) throw this.err(hookTok, `a hook (${hooks.join(', ')})`);
    this.next();
    obj.type = typeTok.v;
    obj.hook = hookTok.v;
    let t = this.peek();
    if (this.isWord(t, 'device')) {
      this.next();
      obj.dev = this.string('a device name');
      t = this.peek();
    }
    if (!this.isWord(t, 'priority')) throw this.err(t, "'priority'");
    this.next();
    obj.prio = this.parsePriority();
    if (obj.policy === undefined) obj.policy = 'accept';
    const end = this.peek();
    if (!this.isEnd(end)) throw this.err(end, "';' after the priority");
  }

  private parsePriority(): number {
    const t = this.peek();
    const bad = (): ParseError =>
      this.err(t, `a priority: a number or ${Object.keys(PRIORITY_NAMES).join(', ')} with an optional + or - offset`);
    if (t.k !== K.Word) throw bad();
    this.next();
    if (/^-?\d+$/.test(t.v)) return Number(t.v);
    const m = /^([a-z]+)([+-]\d+)?$/.exec(t.v);
    const base = m?.[1] !== undefined ? own(PRIORITY_NAMES, m[1]) : undefined;
    if (base === undefined || !m) throw bad();
    if (m[2] !== undefined) return base + Number(m[2]);
    const op = this.peek();
    if (this.isPunct(op, '+') || this.isWord(op, '-')) {
      this.next();
      const num = this.peek();
      if (num.k !== K.Word || !/^\d+$/.test(num.v)) throw this.err(num, 'a number after the priority offset sign');
      this.next();
      return op.v === '+' ? base + Number(num.v) : base - Number(num.v);
    }
    if (op.k === K.Word && /^-\d+$/.test(op.v)) {
      this.next();
      return base + Number(op.v);
    }
    return base;
  }

  // -- sets and maps --------------------------------------------------------------------------------------------

  private parseSet(tbl: TableState, kw: Tok, isMap: boolean): void {
    const nameTok = this.peek();
    const name = this.name(`a ${kw.v} name`);
    const obj: Record<string, unknown> = {
      family: tbl.obj.family,
      name,
      table: tbl.obj.name,
      $origin: this.origin(kw.x ? nameTok : kw),
    };
    this.expectPunct('{');
    let keyTypes: ValType[] = [];
    let dataType: DataType | undefined;
    let dataInterval = false;
    const existing = tbl.sets.get(name);
    const pendingElems: unknown[][] = [];
    for (;;) {
      this.skipNl();
      const t = this.peek();
      if (this.isPunct(t, '}')) {
        this.next();
        break;
      }
      if (t.k !== K.Word) throw this.err(t, `type, typeof, flags, elements or '}' in ${kw.v} ${name}`);
      this.next();
      switch (t.v) {
        case 'type': {
          const names = [this.name('a data type')];
          while (this.isWord(this.peek(), '.')) {
            this.next();
            names.push(this.name('a data type'));
          }
          obj.type = names.length === 1 ? names[0] : names;
          keyTypes = names.map((n) => own(SET_TYPE_NAMES, n) ?? 'generic');
          if (isMap) {
            this.expectPunct(':', "':' and the map's data type");
            // `type ipv4_addr : interval ipv4_addr` (nat to address ranges); nft prints the map type without it
            if (this.isWord(this.peek(), 'interval')) {
              this.next();
              dataInterval = true;
            }
            const d = [this.name('a data type')];
            while (this.isWord(this.peek(), '.')) {
              this.next();
              d.push(this.name('a data type'));
            }
            obj.map = d.join(' . ');
            const dt = d.map((n) => own(SET_TYPE_NAMES, n) ?? 'generic');
            dataType = dt.length === 1 ? (dt[0] as ValType) : dt;
          }
          break;
        }
        case 'typeof': {
          const keys = [this.parseLhs(false)];
          while (this.isWord(this.peek(), '.')) {
            this.next();
            keys.push(this.parseLhs(false));
          }
          const names = keys.map(typeNameOfExpr);
          obj.type = names.length === 1 ? names[0] : names;
          keyTypes = keys.map(typeOfExpr);
          if (isMap) {
            this.expectPunct(':', "':' and the map's data expression");
            if (this.isWord(this.peek(), 'verdict')) {
              this.next();
              obj.map = 'verdict';
              dataType = 'verdict';
            } else {
              const d = this.parseLhs(false);
              obj.map = typeNameOfExpr(d);
              dataType = typeOfExpr(d);
            }
          }
          break;
        }
        case 'flags':
          obj.flags = this.parseWordList();
          break;
        case 'timeout':
        case 'gc-interval':
          obj[t.v === 'timeout' ? 'timeout' : 'gc-interval'] = this.parseTime();
          break;
        case 'size':
          obj.size = this.parseNumber(this.next(), 'a set size');
          break;
        case 'policy':
          obj.policy = this.name('performance or memory');
          break;
        case 'auto-merge':
          obj['auto-merge'] = true;
          break;
        case 'counter':
          obj.stmt = [{ counter: null }];
          break;
        case 'comment':
          obj.comment = this.string('a quoted comment');
          break;
        case 'elements': {
          this.expectPunct('=');
          if (keyTypes.length === 0 && !existing) throw this.err(t, `'type' or 'typeof' before the elements`);
          pendingElems.push(
            this.parseElements(keyTypes.length ? keyTypes : (existing?.keyTypes ?? []), dataType ?? existing?.dataType),
          );
          break;
        }
        default:
          throw this.err(t, `type, typeof, flags, timeout, size, policy, comment or elements in ${kw.v} ${name}`);
      }
      this.endStatement();
    }
    let set = existing;
    if (!set) {
      if (obj.type === undefined) throw this.err(nameTok, `'type' or 'typeof' in ${kw.v} ${name}`);
      set = dataType ? { obj, keyTypes, dataType, ...(dataInterval ? { dataInterval } : {}) } : { obj, keyTypes };
      tbl.sets.set(name, set);
    }
    for (const e of pendingElems) this.addElements(set, e);
  }

  private addElements(set: SetState, elems: unknown[]): void {
    if (elems.length === 0) return;
    const cur = (set.obj.elem as unknown[] | undefined) ?? [];
    set.obj.elem = cur.concat(elems);
  }

  private parseTime(): number {
    const t = this.next();
    const m = /^(?:\d+(?:d|h|m|s|ms))+$/.test(t.v) ? t.v.match(/\d+(?:ms|d|h|m|s)/g) : /^\d+$/.test(t.v) ? [t.v] : null;
    if (!m) throw this.err(t, 'a time such as 30s, 5m, 1h or 1d');
    let secs = 0;
    for (const part of m) {
      const num = Number.parseInt(part, 10);
      const unit = part.replace(/^\d+/, '') || 's';
      secs +=
        unit === 'd' ? num * 86400 : unit === 'h' ? num * 3600 : unit === 'm' ? num * 60 : unit === 'ms' ? 0 : num;
    }
    return secs;
  }

  private parseNumber(t: Tok, expected: string): number {
    if (t.k === K.Word && /^(0x[0-9a-f]+|\d+)$/i.test(t.v)) return Number(t.v);
    throw this.err(t, expected);
  }

  /** `{ e1, e2 : data, ... }` for a named set/map; returns libnftables-json elements. */
  private parseElements(keyTypes: readonly ValType[], dataType: DataType | undefined): unknown[] {
    const open = this.peek();
    if (!this.isPunct(open, '{')) throw this.err(open, "'{' and the elements");
    const set = this.parseSetLiteral(keyTypes, dataType);
    return (set as { set: unknown[] }).set;
  }

  // -- rules ----------------------------------------------------------------------------------------------------

  /** Parses one rule up to (not including) its terminator. Returns undefined for an empty statement. */
  private parseRule(ctx: RuleCtx, chain: string): Record<string, unknown> | undefined {
    const raw = this.pending.length === 0 ? this.toks[this.pos] : undefined;
    const first = this.peek();
    if (this.isEnd(first)) return undefined;
    const startTok = raw ?? first;
    const start = startTok.x ? undefined : startTok.s;
    const expr: unknown[] = [];
    const rule: Record<string, unknown> = { family: ctx.family, table: ctx.table.obj.name, chain };
    let sawL4 = false;
    while (!this.isEnd(this.peek())) {
      const t = this.peek();
      if (t.k === K.Word && t.v === 'comment') {
        this.next();
        rule.comment = this.string('a quoted comment');
        continue;
      }
      if (t.k === K.Word && STATEMENT_WORDS.has(t.v)) {
        const st = this.parseStatement(ctx, sawL4);
        // `reject with tcp reset` in inet: nft puts the `meta l4proto tcp` check it needs first in the rule
        if (Array.isArray(st)) {
          expr.unshift(st[0]);
          expr.push(st[1]);
        } else expr.push(st);
        continue;
      }
      if (this.isWord(t, 'ct') && this.isWord(this.peekAt(1), 'count')) {
        expr.push(this.parseCtCount());
        continue;
      }
      if (this.isWord(t, 'meter')) {
        expr.push(this.parseMeter());
        continue;
      }
      if (
        (this.isWord(t, 'add') || this.isWord(t, 'update') || this.isWord(t, 'delete')) &&
        this.peekAt(1).k === K.SetRef
      ) {
        expr.push(this.parseSetUpdate());
        continue;
      }
      const m = this.parseMatchOrOpaque();
      if (isL4Dependency(m)) sawL4 = true;
      dropRedundantDependency(expr, m, ctx.family);
      expr.push(m);
    }
    const end = this.lastEnd;
    const text = start !== undefined ? this.src.slice(start, end).replace(/[ \t]*\\[ \t\r]*\n\s*/g, ' ') : '';
    rule.expr = expr;
    rule.$origin = this.origin(startTok);
    rule.$text = text;
    return rule;
  }

  /** `ct count [over] N`: a connection-count gate, printed by nft as {"ct count": {"val": N, "inv": true}}. */
  private parseCtCount(): unknown {
    this.next();
    this.next();
    const over = this.isWord(this.peek(), 'over');
    if (over) this.next();
    const n = this.next();
    if (n.k !== K.Word || !/^\d+$/.test(n.v)) throw this.err(n, 'a connection count (a number)');
    return { 'ct count': over ? { val: Number(n.v), inv: true } : { val: Number(n.v) } };
  }

  /**
   * `meter NAME [size N] { KEY STATEMENT }`, the older spelling of a dynamic set with a stateful statement inside
   * (still accepted by nft 1.0.6), as nft's JSON prints it: {"meter": {"name", "key", "stmt", "size"}}.
   */
  private parseMeter(): unknown {
    this.next();
    const name = this.name('a meter name');
    const out: Record<string, unknown> = { name };
    if (this.isWord(this.peek(), 'size')) {
      this.next();
      out.size = this.parseNumber(this.next(), 'a meter size (a number)');
    }
    const { key, stmts } = this.parseDynsetBody('meter');
    out.key = key;
    if (stmts.length !== 1) throw this.err(this.peek(), 'one statement (limit, quota, counter, ct count) in a meter');
    out.stmt = stmts[0];
    return { meter: out };
  }

  /** `add|update|delete @set { KEY [timeout T] [STATEMENTS] }`: {"set": {"op", "elem", "set", "stmt"}}. */
  private parseSetUpdate(): unknown {
    const op = this.next().v;
    const ref = this.next();
    const { key, stmts, extras } = this.parseDynsetBody(`${op} @${ref.v}`);
    const elem = extras ? { elem: { val: key, ...extras } } : key;
    return { set: { op, elem, set: `@${ref.v}`, ...(stmts.length > 0 ? { stmt: stmts } : {}) } };
  }

  private parseDynsetBody(what: string): { key: unknown; stmts: unknown[]; extras?: Record<string, unknown> } {
    this.expectPunct('{', `'{' and the key of ${what}`);
    const key = this.parseConcatLhs(false);
    const extras = this.parseElemOptions();
    const stmts: unknown[] = [];
    for (;;) {
      const t = this.peek();
      if (this.isPunct(t, '}')) {
        this.next();
        break;
      }
      if (this.isWord(t, 'limit')) stmts.push(this.parseLimit());
      else if (this.isWord(t, 'quota')) stmts.push(this.parseQuota());
      else if (this.isWord(t, 'ct') && this.isWord(this.peekAt(1), 'count')) stmts.push(this.parseCtCount());
      else if (this.isWord(t, 'counter')) {
        this.next();
        stmts.push({ counter: null });
      } else throw this.err(t, `a statement (limit, quota, ct count, counter) or '}' closing ${what}`);
    }
    return { key, stmts, ...(extras ? { extras } : {}) };
  }

  /** A match (`lhs [op] rhs`), a mangle (`lhs set value`), a vmap, or an opaque span of unknown syntax. */
  private parseMatchOrOpaque(): unknown {
    const t = this.peek();
    const save = {
      pos: this.pos,
      pending: this.pending.length ? [...this.pending] : undefined,
      lastEnd: this.lastEnd,
    };
    try {
      return this.parseMatch();
    } catch (e) {
      if (!(e instanceof UnknownExpression)) throw e;
      // Only a known nft expression that the model does not cover becomes opaque; anything else is a typo
      // (`acept`) that nft itself would reject, and must not turn into a silent may-match.
      if (t.k !== K.Word || !NFT_EXPRESSION_WORDS.has(t.v)) {
        throw this.err(
          t,
          'a match (e.g. tcp dport 22), a statement (counter, log, limit, ...) or a verdict (accept, drop, reject, jump CHAIN)',
        );
      }
      // restore and swallow tokens up to the next statement keyword (counter, accept, ...)
      this.pos = save.pos;
      this.pending = save.pending ?? [];
      this.lastEnd = save.lastEnd;
      const startTok = t;
      let depth = 0;
      for (;;) {
        const u = this.peek();
        if (u.k === K.Eof) break;
        if (depth === 0 && (this.isEnd(u) || (u.k === K.Word && STATEMENT_WORDS.has(u.v) && u !== startTok))) break;
        if (this.isPunct(u, '{') || this.isPunct(u, '(')) depth++;
        if (this.isPunct(u, '}') || this.isPunct(u, ')')) depth--;
        this.next();
      }
      if (depth !== 0) throw this.err(this.peek(), "a closing '}' or ')'");
      const text = startTok.x ? startTok.v : this.src.slice(startTok.s, this.lastEnd);
      return { $opaque: text.replace(/[ \t]*\\[ \t\r]*\n\s*/g, ' ') };
    }
  }

  private parseMatch(): unknown {
    const lhs = this.parseConcatLhs(true);
    const lt = typeOfLhs(lhs);
    const t = this.peek();
    if (this.isWord(t, 'set')) {
      this.next();
      return { mangle: { key: lhs, value: this.parseValueExpr(lt) } };
    }
    if (this.isWord(t, 'vmap')) {
      this.next();
      return { vmap: { key: lhs, data: this.parseRhs(lt, 'verdict') } };
    }
    let op: string | undefined;
    if ((t.k === K.Punct || t.k === K.Word) && own(REL_OPS, t.v) !== undefined) {
      op = own(REL_OPS, t.v);
      this.next();
    } else if (this.isPunct(t, '!')) {
      throw this.err(t, "'!=' (nft has no '!' operator)");
    }
    let right = this.parseRhs(lt, undefined);
    let left: unknown = lhs;
    // `tcp flags syn / syn,ack`: (flags & mask) == value
    const slash = this.peek();
    if (slash.k === K.Word && slash.v === '/' && !Array.isArray(lt)) {
      this.next();
      const mask = this.parseFlagList(lt);
      left = { '&': [lhs, mask] };
      return { match: { op: op ?? '==', left, right } };
    }
    if (op === undefined) {
      const bitmask = !Array.isArray(lt) && BITMASK_TYPES.has(lt);
      const isSet = typeof right === 'object' && right !== null && 'set' in right;
      op = bitmask && (!isSet || isSingletonSet(right)) && !isMaskedLhs(lhs) ? 'in' : '==';
    }
    if (!Array.isArray(lt) && isSingletonSet(right)) {
      // nft turns a one-element anonymous set into a plain comparison
      right = (right as { set: unknown[] }).set[0];
      if (BITMASK_TYPES.has(lt) && op === '==' && !isMaskedLhs(lhs)) op = 'in';
    }
    if (Array.isArray(right) && op === '==' && !Array.isArray(lt) && BITMASK_TYPES.has(lt)) {
      // `ct state == established,related` is one combined bit value
      right = right.length === 1 ? right[0] : right;
    }
    return { match: { op, left, right } };
  }

  private parseConcatLhs(inRule: boolean): unknown {
    const first = this.parseLhs(inRule);
    if (!this.isWord(this.peek(), '.')) return this.parseBinop(first);
    const parts = [first];
    while (this.isWord(this.peek(), '.')) {
      this.next();
      parts.push(this.parseLhs(inRule));
    }
    return { concat: parts };
  }

  /** `lhs & 0xff`, `tcp flags & (syn|ack)`. */
  private parseBinop(lhs: unknown): unknown {
    let cur = lhs;
    for (;;) {
      const t = this.peek();
      const op = (t.k === K.Punct || t.k === K.Word) && own(BINOPS, t.v);
      if (!op) return cur;
      // `mark set mark or 0x4` is parsed by parseValueExpr; here only in match position
      this.next();
      const lt = typeOfExpr(cur);
      const val = this.isPunct(this.peek(), '(') ? this.parseParenFlags(lt) : this.parseScalar(lt);
      cur = { [op]: [cur, val] };
    }
  }

  private parseParenFlags(lt: ValType): unknown {
    this.expectPunct('(');
    const vals: unknown[] = [];
    for (;;) {
      vals.push(this.parseScalar(lt));
      const t = this.peek();
      if (this.isPunct(t, '|') || this.isPunct(t, ',')) {
        this.next();
        continue;
      }
      this.expectPunct(')', "'|' or ')'");
      break;
    }
    return vals.length === 1 ? vals[0] : vals;
  }

  /** A value expression after `set`: `0x1`, `mark or 0x4`, `ct mark`. */
  private parseValueExpr(lt: ValType | ValType[]): unknown {
    const t = this.peek();
    const type = Array.isArray(lt) ? 'generic' : lt;
    if (t.k === K.Word && (t.v === 'meta' || t.v === 'ct' || BARE_META.has(t.v) || PAYLOAD_PROTOCOLS.has(t.v))) {
      const save = { pos: this.pos, pending: [...this.pending], lastEnd: this.lastEnd };
      try {
        return this.parseBinop(this.parseLhs(true));
      } catch (e) {
        if (!(e instanceof UnknownExpression)) throw e;
        this.pos = save.pos;
        this.pending = save.pending ?? [];
        this.lastEnd = save.lastEnd;
      }
    }
    return this.parseScalar(type);
  }

  /** The left-hand side of a match: a payload, meta, ct or fib expression. */
  private parseLhs(inRule: boolean): unknown {
    const t = this.peek();
    if (t.k !== K.Word) {
      if (inRule) throw new UnknownExpression();
      throw this.err(t, 'an expression such as ip saddr, tcp dport, meta mark or ct state');
    }
    const v = t.v;
    if (PAYLOAD_PROTOCOLS.has(v)) {
      const f = this.peekAt(1);
      if (f.k !== K.Word || !/^[a-z][a-z0-9-]*$/.test(f.v) || STATEMENT_WORDS.has(f.v) || f.v === 'option') {
        if (inRule) throw new UnknownExpression();
        throw this.err(f, `a ${v} header field`);
      }
      if ((v === 'ip' && f.v === 'option') || (v === 'ip6' && f.v === 'exthdr')) throw new UnknownExpression();
      this.next();
      this.next();
      return { payload: { protocol: v, field: f.v } };
    }
    if (v === 'meta') {
      this.next();
      const k = this.peek();
      if (k.k !== K.Word || !/^[a-z][a-z0-9-]*$/.test(k.v))
        throw this.err(k, 'a meta key (mark, iifname, l4proto, ...)');
      this.next();
      return { meta: { key: k.v } };
    }
    if (BARE_META.has(v)) {
      this.next();
      return { meta: { key: v } };
    }
    if (v === 'ct') {
      this.next();
      let dir: string | undefined;
      let k = this.peek();
      if (this.isWord(k, 'original') || this.isWord(k, 'reply')) {
        dir = k.v;
        this.next();
        k = this.peek();
      }
      let family: string | undefined;
      if (this.isWord(k, 'ip') || this.isWord(k, 'ip6')) {
        family = k.v;
        this.next();
        k = this.peek();
      }
      if (k.k !== K.Word || !/^[a-z][a-z0-9-]*$/.test(k.v)) throw this.err(k, 'a ct key (state, status, mark, ...)');
      this.next();
      const ct: Record<string, unknown> = { key: k.v };
      if (family) ct.family = family;
      if (dir) ct.dir = dir;
      return { ct };
    }
    if (v === 'fib') {
      this.next();
      const flags: string[] = [];
      for (;;) {
        const f = this.peek();
        if (f.k !== K.Word || !['saddr', 'daddr', 'mark', 'iif', 'oif'].includes(f.v)) {
          throw this.err(f, 'a fib key (saddr, daddr, mark, iif, oif)');
        }
        this.next();
        flags.push(f.v);
        if (this.isWord(this.peek(), '.')) {
          this.next();
          continue;
        }
        break;
      }
      const r = this.peek();
      if (r.k !== K.Word || !['oif', 'oifname', 'type'].includes(r.v)) throw this.err(r, 'oif, oifname or type');
      this.next();
      return { fib: { result: r.v, flags } };
    }
    if (inRule) throw new UnknownExpression();
    throw this.err(t, 'an expression such as ip saddr, tcp dport, meta mark or ct state');
  }

  // -- right-hand sides -----------------------------------------------------------------------------------------

  /** A match's right side: a value, a comma list, a range, a prefix, `{ set }`, or `@set`. */
  private parseRhs(lt: ValType | ValType[], dataType: ValType | undefined): unknown {
    const t = this.peek();
    if (t.k === K.SetRef) {
      this.next();
      return `@${t.v}`;
    }
    if (this.isPunct(t, '{')) return this.parseSetLiteral(Array.isArray(lt) ? lt : [lt], dataType);
    if (this.isEnd(t)) throw this.err(t, 'a value');
    if (Array.isArray(lt)) return { concat: this.parseTuple(lt) };
    const type = lt;
    // `tcp flags & (syn | ack) == (syn | ack)`: a parenthesised combination of bit values
    if (BITMASK_TYPES.has(type) && this.isPunct(t, '(')) return this.parseParenFlags(type);
    const first = this.parseScalar(type);
    const sep = (u: Tok): boolean => this.isPunct(u, ',') || (BITMASK_TYPES.has(type) && this.isPunct(u, '|'));
    if (!sep(this.peek())) return first;
    // `ct state established,related`, `tcp flags & (syn|ack) == syn|ack`: a list of bit values
    const vals = [first];
    while (sep(this.peek())) {
      this.next();
      vals.push(this.parseScalar(type));
    }
    return vals;
  }

  private parseFlagList(lt: ValType): unknown {
    const vals = [this.parseScalar(lt)];
    while (this.isPunct(this.peek(), ',')) {
      this.next();
      vals.push(this.parseScalar(lt));
    }
    return vals.length === 1 ? vals[0] : vals;
  }

  private parseTuple(types: readonly ValType[]): unknown[] {
    const out: unknown[] = [];
    for (let i = 0; i < types.length; i++) {
      if (i > 0) {
        const dot = this.peek();
        if (!this.isWord(dot, '.'))
          throw this.err(dot, `'.' and the next part of a ${types.length}-part concatenation`);
        this.next();
      }
      out.push(this.parseScalar(types[i] as ValType));
    }
    return out;
  }

  /** `{ a, b-c, d . e : verdict, $set }` as an anonymous set (`{"set": [...]}`). */
  private parseSetLiteral(
    types: readonly ValType[],
    dataType: DataType | undefined,
    parseData?: () => unknown,
    depth = 0,
  ): unknown {
    const open = this.expectPunct('{');
    // Nested sets come from `$define`s inside sets; real ones nest a few levels. A bound keeps '{{{{...' from
    // exhausting the stack (found by the parser fuzzer).
    if (depth >= MAX_SET_NESTING)
      throw this.err(open, `at most ${MAX_SET_NESTING} nested sets`, 'sets nested too deeply');
    const elems: unknown[] = [];
    for (;;) {
      this.skipNewlines();
      const t = this.peek();
      if (this.isPunct(t, '}')) {
        this.next();
        break;
      }
      if (t.k === K.Eof) throw this.err(open, "a matching '}'", "unbalanced '{'");
      if (this.isPunct(t, '{')) {
        // a nested set (from `$define`) is flattened, as nft does
        const inner = this.parseSetLiteral(types, dataType, parseData, depth + 1) as { set: unknown[] };
        elems.push(...inner.set);
      } else {
        let key: unknown =
          types.length > 1 ? { concat: this.parseTuple(types) } : this.parseScalar(types[0] ?? 'generic');
        const extras = this.parseElemOptions();
        if (extras) key = { elem: { val: key, ...extras } };
        if (dataType !== undefined) {
          this.skipNewlines();
          this.expectPunct(':', "':' and the mapped value");
          this.skipNewlines();
          const data = parseData
            ? parseData()
            : Array.isArray(dataType)
              ? { concat: this.parseTuple(dataType) }
              : dataType === 'verdict'
                ? this.parseVerdict(true)
                : this.parseScalar(dataType as ValType);
          elems.push([key, data]);
        } else {
          elems.push(key);
        }
      }
      this.skipNewlines();
      const sep = this.peek();
      if (this.isPunct(sep, ',')) {
        this.next();
        continue;
      }
      if (this.isPunct(sep, '}')) continue;
      throw this.err(sep, "',' or '}'");
    }
    return { set: elems };
  }

  private parseElemOptions(): Record<string, unknown> | undefined {
    let out: Record<string, unknown> | undefined;
    for (;;) {
      const t = this.peek();
      if (this.isWord(t, 'timeout') || this.isWord(t, 'expires')) {
        this.next();
        out = { ...out, [t.v]: this.parseTime() };
      } else if (this.isWord(t, 'comment')) {
        this.next();
        out = { ...out, comment: this.string('a quoted comment') };
      } else if (this.isWord(t, 'counter')) {
        this.next();
        out = { ...out, counter: { packets: 0, bytes: 0 } };
        if (this.isWord(this.peek(), 'packets')) {
          this.next();
          const packets = this.parseNumber(this.next(), 'a packet count');
          if (!this.isWord(this.next(), 'bytes')) throw this.err(this.peek(), "'bytes'");
          out.counter = { packets, bytes: this.parseNumber(this.next(), 'a byte count') };
        }
      } else return out;
    }
  }

  /** One value of a type, including `a-b` ranges and `addr/len` prefixes. */
  private parseScalar(type: ValType): unknown {
    const t = this.peek();
    if (t.k === K.Str) {
      this.next();
      return t.v;
    }
    if (t.k === K.SetRef) {
      this.next();
      return `@${t.v}`;
    }
    if (t.k !== K.Word) throw this.err(t, describeType(type));
    this.next();
    let w = t.v;
    // `1000 - 2000` written with spaces
    const dash = this.peek();
    if (dash.k === K.Word && dash.v === '-' && type !== 'ifname' && type !== 'string') {
      this.next();
      const hi = this.peek();
      if (hi.k !== K.Word) throw this.err(hi, `the upper end of a range of ${describeType(type)}`);
      this.next();
      w = `${w}-${hi.v}`;
    }
    const v = convertWord(w, type);
    if (v === undefined) throw this.err(t, describeType(type));
    return v;
  }

  // -- statements -----------------------------------------------------------------------------------------------

  private parseVerdict(inMap: boolean): unknown {
    const t = this.peek();
    if (t.k !== K.Word || !VERDICT_KEYS.has(t.v)) throw this.err(t, 'a verdict (accept, drop, jump CHAIN, ...)');
    this.next();
    if (t.v === 'jump' || t.v === 'goto') return { [t.v]: { target: this.name('a chain name') } };
    if (t.v === 'queue') return inMap ? { queue: null } : this.parseQueue();
    return { [t.v]: null };
  }

  private parseQueue(): unknown {
    const out: Record<string, unknown> = {};
    for (;;) {
      const t = this.peek();
      if (this.isWord(t, 'num')) {
        this.next();
        const n = this.next();
        const m = /^(\d+)(?:-(\d+))?$/.exec(n.v);
        if (!m) throw this.err(n, 'a queue number or range');
        out.num = m[2] !== undefined ? { range: [Number(m[1]), Number(m[2])] } : Number(m[1]);
      } else if (this.isWord(t, 'bypass') || this.isWord(t, 'fanout')) {
        this.next();
        const flags = (out.flags as string[] | undefined) ?? [];
        flags.push(t.v);
        while (this.isPunct(this.peek(), ',')) {
          this.next();
          flags.push(this.name('bypass or fanout'));
        }
        out.flags = flags;
      } else if (this.isWord(t, 'flags')) {
        this.next();
        out.flags = this.parseWordList();
      } else break;
    }
    return { queue: Object.keys(out).length ? out : null };
  }

  private parseStatement(ctx: RuleCtx, sawL4: boolean): unknown {
    const t = this.peek();
    if (VERDICT_KEYS.has(t.v)) return this.parseVerdict(false);
    switch (t.v) {
      case 'counter': {
        this.next();
        if (this.isWord(this.peek(), 'name')) {
          this.next();
          return { counter: this.string('a counter name') };
        }
        let packets = 0;
        let bytes = 0;
        for (;;) {
          const k = this.peek();
          if (this.isWord(k, 'packets')) {
            this.next();
            packets = this.parseNumber(this.next(), 'a packet count');
          } else if (this.isWord(k, 'bytes')) {
            this.next();
            bytes = this.parseNumber(this.next(), 'a byte count');
          } else break;
        }
        return { counter: { packets, bytes } };
      }
      case 'notrack':
        this.next();
        return { notrack: null };
      case 'log':
        return this.parseLog();
      case 'limit':
        return this.parseLimit();
      case 'quota':
        return this.parseQuota();
      case 'reject':
        return this.parseReject(ctx, sawL4);
      case 'dnat':
      case 'snat':
        return this.parseNat(t.v, ctx);
      case 'masquerade':
      case 'redirect': {
        this.next();
        const out: Record<string, unknown> = {};
        if (this.isWord(this.peek(), 'to')) {
          this.next();
          this.expectPunct(':', "':' and a port");
          out.port = this.isNatMapStart(this.peek(), 'port')
            ? this.parseNatMap('port', () => this.parseScalar('port'))
            : this.parsePortOrRange();
        }
        const flags = this.parseNatFlags();
        if (flags) out.flags = flags;
        return { [t.v]: Object.keys(out).length ? out : null };
      }
      default:
        throw this.err(t, 'a statement');
    }
  }

  private parseLog(): unknown {
    this.next();
    const out: Record<string, unknown> = {};
    for (;;) {
      const t = this.peek();
      if (t.k !== K.Word) break;
      if (t.v === 'prefix') {
        this.next();
        out.prefix = this.string('a quoted log prefix');
      } else if (t.v === 'level') {
        this.next();
        const l = this.name('a log level (emerg, alert, crit, err, warn, notice, info, debug, audit)');
        if (l !== 'warn') out.level = l;
      } else if (t.v === 'group' || t.v === 'snaplen' || t.v === 'queue-threshold') {
        this.next();
        out[t.v === 'queue-threshold' ? 'qthreshold' : t.v] = this.parseNumber(this.next(), `a ${t.v} number`);
      } else if (t.v === 'flags') {
        this.next();
        const f = this.parseWordList();
        out.flags = f.length === 1 ? f[0] : f;
      } else break;
    }
    return { log: Object.keys(out).length ? out : null };
  }

  private parseLimit(): unknown {
    const kw = this.next();
    if (this.isWord(this.peek(), 'name')) {
      this.next();
      return { limit: this.string('a limit name') };
    }
    if (!this.isWord(this.peek(), 'rate')) throw this.err(this.peek(), "'rate'");
    this.next();
    const out: Record<string, unknown> = {};
    if (this.isWord(this.peek(), 'over')) {
      this.next();
      out.inv = true;
    } else if (this.isWord(this.peek(), 'until')) this.next();
    const rt = this.next();
    // `5/second`, `5 /second`, or `10 mbytes/second`
    let m = /^(\d+)\/(second|minute|hour|day|week)$/.exec(rt.v);
    let rate: number;
    let per: string;
    let unit: string | undefined;
    if (m) {
      rate = Number(m[1]);
      per = m[2] as string;
    } else {
      if (!/^\d+$/.test(rt.v)) throw this.err(rt, 'a rate such as 10/second or 1 mbytes/second');
      rate = Number(rt.v);
      const u = this.next();
      m = /^(bytes|kbytes|mbytes)?\/?(second|minute|hour|day|week)$/.exec(u.v);
      if (!m) throw this.err(u, "a rate unit such as '/second' or 'mbytes/second'");
      unit = m[1];
      per = m[2] as string;
    }
    out.rate = rate;
    out.per = per;
    let burst = unit ? 0 : 5;
    let burstUnit = unit ? 'bytes' : undefined;
    if (this.isWord(this.peek(), 'burst')) {
      this.next();
      burst = this.parseNumber(this.next(), 'a burst size');
      const bu = this.peek();
      if (this.isWord(bu, 'packets')) this.next();
      else if (this.isWord(bu, 'bytes') || this.isWord(bu, 'kbytes') || this.isWord(bu, 'mbytes')) {
        this.next();
        burstUnit = bu.v;
      }
    }
    out.burst = burst;
    if (unit) {
      out.rate_unit = unit;
      out.burst_unit = burstUnit;
    }
    void kw;
    return { limit: out };
  }

  private parseQuota(): unknown {
    this.next();
    if (this.isWord(this.peek(), 'name')) {
      this.next();
      return { quota: this.string('a quota name') };
    }
    const out: Record<string, unknown> = {};
    if (this.isWord(this.peek(), 'over')) {
      this.next();
      out.inv = true;
    } else if (this.isWord(this.peek(), 'until')) this.next();
    const n = this.next();
    let m = /^(\d+)(bytes|kbytes|mbytes|gbytes)?$/.exec(n.v);
    if (!m) throw this.err(n, 'a quota such as 100 mbytes');
    out.val = Number(m[1]);
    let unit = m[2];
    if (!unit) {
      const u = this.next();
      if (!/^(bytes|kbytes|mbytes|gbytes)$/.test(u.v)) throw this.err(u, 'bytes, kbytes, mbytes or gbytes');
      unit = u.v;
    }
    out.val_unit = unit;
    if (this.isWord(this.peek(), 'used')) {
      this.next();
      const used = this.next();
      m = /^(\d+)(bytes|kbytes|mbytes|gbytes)?$/.exec(used.v);
      if (!m) throw this.err(used, 'a used amount');
      out.used = Number(m[1]);
      out.used_unit = m[2] ?? this.next().v;
    }
    return { quota: out };
  }

  private parseReject(ctx: RuleCtx, sawL4: boolean): unknown {
    this.next();
    const defaults: Record<string, string> = { ip: 'icmp', ip6: 'icmpv6' };
    const defType = defaults[ctx.family] ?? 'icmpx';
    if (!this.isWord(this.peek(), 'with')) return { reject: { type: defType, expr: 'port-unreachable' } };
    this.next();
    const kind = this.peek();
    if (this.isWord(kind, 'tcp')) {
      this.next();
      const r = this.peek();
      if (!this.isWord(r, 'reset') && !this.isWord(r, 'rst')) throw this.err(r, "'reset'");
      this.next();
      const out = { reject: { type: 'tcp reset' } };
      // inet (and bridge/netdev) need the l4 protocol check nft adds and prints
      if (!sawL4 && ctx.family !== 'ip' && ctx.family !== 'ip6') {
        return [{ match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'tcp' } }, out];
      }
      return out;
    }
    if (!this.isWord(kind, 'icmp') && !this.isWord(kind, 'icmpv6') && !this.isWord(kind, 'icmpx')) {
      throw this.err(kind, "icmp, icmpv6, icmpx or 'tcp reset'");
    }
    this.next();
    if (this.isWord(this.peek(), 'type')) this.next();
    const codeTok = this.peek();
    const codeType: ValType = kind.v === 'icmpv6' ? 'icmpv6_code' : 'icmp_code';
    const code = kind.v === 'icmpx' ? this.name('an icmpx reject code') : this.parseScalar(codeType);
    if (code === undefined) throw this.err(codeTok, 'a reject code');
    return { reject: { type: kind.v, expr: code } };
  }

  /**
   * `dnat|snat [ip|ip6] [addr . port] to ADDR[:PORT] [flags]`. ADDR and PORT may be map lookups
   * (`ip saddr map @m`, `tcp dport map { 80 : 10.0.0.2 . 8080 }`); nft prints them as `{"map": {key, data}}`.
   */
  private parseNat(kind: string, ctx: RuleCtx): unknown {
    this.next();
    const out: Record<string, unknown> = {};
    const f = this.peek();
    if (this.isWord(f, 'ip') || this.isWord(f, 'ip6')) {
      this.next();
      out.family = f.v;
    }
    // `dnat ip addr . port to tcp dport map @m`: the map gives address and port (nft lists it without the words)
    let addrPort = false;
    if (this.isWord(this.peek(), 'addr') && this.isWord(this.peekAt(1), '.')) {
      this.next();
      this.next();
      if (!this.isWord(this.peek(), 'port')) throw this.err(this.peek(), "'port' (as in addr . port)");
      this.next();
      addrPort = true;
    }
    if (!this.isWord(this.peek(), 'to')) throw this.err(this.peek(), `'to' and the address to ${kind} to`);
    this.next();
    const a = this.peek();
    const addrType: ValType = out.family === 'ip' ? 'ipv4' : out.family === 'ip6' ? 'ipv6' : 'addr';
    if (this.isPunct(a, '[')) {
      this.next();
      out.addr = this.natAddr(this.next(), 'ipv6');
      this.expectPunct(']');
    } else if (this.isPunct(a, ':')) {
      // port only
    } else if (this.isNatMapStart(a, addrType)) {
      out.addr = this.parseNatMap(addrType, () => {
        const addr = this.parseScalar(addrType);
        if (!this.isWord(this.peek(), '.')) return addr;
        this.next();
        return { concat: [addr, this.parseScalar('port')] };
      });
    } else {
      out.addr = this.natAddr(this.next(), addrType);
    }
    if (this.isPunct(this.peek(), ':')) {
      this.next();
      out.port = this.isNatMapStart(this.peek(), 'port')
        ? this.parseNatMap('port', () => this.parseScalar('port'))
        : this.parsePortOrRange();
    }
    const flags = this.parseNatFlags();
    if (flags) out.flags = flags;
    // nft prints the family in ip/ip6 tables only when the map gives ranges or address . port pairs (the kernel
    // then needs the range flags); in inet tables the family is required and always printed.
    if (ctx.family === 'ip' || ctx.family === 'ip6') {
      if (addrPort || this.natMapIsRanged(out.addr, ctx)) out.family = ctx.family;
      else delete out.family;
    }
    const { family, addr, ...rest } = out;
    // key order as nft prints it: family, addr, port, flags
    return {
      [kind]: { ...(family !== undefined ? { family } : {}), ...(addr !== undefined ? { addr } : {}), ...rest },
    };
  }

  /** Whether a nat target starts with an expression (`ip saddr map ...`) rather than an address or port. */
  private isNatMapStart(t: Tok, type: ValType): boolean {
    if (t.k !== K.Word || !(PAYLOAD_PROTOCOLS.has(t.v) || BARE_META.has(t.v) || t.v === 'meta' || t.v === 'ct')) {
      return false;
    }
    return convertWord(t.v, type) === undefined;
  }

  /** `KEY map @name` or `KEY map { k : v, ... }` as the value of a nat statement. */
  private parseNatMap(dataType: ValType, parseData: () => unknown): unknown {
    const key = this.parseConcatLhs(false);
    const m = this.peek();
    if (!this.isWord(m, 'map')) throw this.err(m, "'map' and the map to look the translation up in");
    this.next();
    const lt = typeOfLhs(key);
    const t = this.peek();
    if (t.k === K.SetRef) {
      this.next();
      return { map: { key, data: `@${t.v}` } };
    }
    if (!this.isPunct(t, '{')) throw this.err(t, "a named map (@name) or an anonymous one ('{ key : value, ... }')");
    return { map: { key, data: this.parseSetLiteral(Array.isArray(lt) ? lt : [lt], dataType, parseData) } };
  }

  /** Whether a nat map's values are ranges, prefixes or address . port pairs. */
  private natMapIsRanged(addr: unknown, ctx: RuleCtx): boolean {
    const data = (addr as { map?: { data?: unknown } } | undefined)?.map?.data;
    if (typeof data === 'string') {
      const set = ctx.table.sets.get(data.slice(1));
      return set !== undefined && (Array.isArray(set.dataType) || set.dataInterval === true);
    }
    const elems = (data as { set?: unknown } | undefined)?.set;
    if (!Array.isArray(elems)) return false;
    return elems.some((e) => {
      const v = Array.isArray(e) ? (e[1] as Record<string, unknown> | undefined) : undefined;
      return typeof v === 'object' && v !== null && ('concat' in v || 'range' in v || 'prefix' in v);
    });
  }

  private natAddr(t: Tok, type: ValType): unknown {
    if (t.k === K.SetRef) return `@${t.v}`;
    const v = t.k === K.Word ? convertWord(t.v, type) : undefined;
    if (v === undefined) throw this.err(t, 'an address or address range to translate to');
    return v;
  }

  private parsePortOrRange(): unknown {
    const t = this.next();
    const v = t.k === K.Word ? convertWord(t.v, 'port') : undefined;
    if (v === undefined) throw this.err(t, 'a port or port range');
    return v;
  }

  private parseNatFlags(): string[] | undefined {
    const flags: string[] = [];
    for (;;) {
      const t = this.peek();
      if (t.k === K.Word && ['random', 'fully-random', 'persistent'].includes(t.v)) {
        this.next();
        flags.push(t.v);
        if (this.isPunct(this.peek(), ',')) this.next();
      } else break;
    }
    return flags.length ? flags : undefined;
  }
}

/** Thrown (and caught) to fall back to an opaque span when a rule uses an expression this parser does not know. */
class UnknownExpression extends Error {}

/** First words of nft expressions and statements (nft(8)), modelled or not: an unknown word is a syntax error. */
const NFT_EXPRESSION_WORDS: ReadonlySet<string> = new Set(
  (
    'ip ip6 tcp udp udplite sctp dccp th icmp icmpv6 igmp ah esp comp ether vlan arp meta ct rt fib socket osf ' +
    'ipsec numgen jhash symhash exthdr hbh rt0 rt2 srh frag dst mh iif oif iifname oifname iiftype oiftype mark ' +
    'priority skuid skgid nfproto l4proto length protocol pkttype cpu iifgroup oifgroup cgroup random secpath ' +
    'ibrname obrname ibriport obriport day hour time dup fwd flow add update delete raw inner vxlan gre geneve ' +
    'gretap tproxy synproxy xt sdif sdifname nftrace broute ipsec tunnel last'
  ).split(' '),
);

function typeOfLhs(lhs: unknown): ValType | ValType[] {
  const o = lhs as Record<string, unknown>;
  if (Array.isArray(o.concat)) return (o.concat as unknown[]).map(typeOfExpr);
  return typeOfExpr(lhs);
}

function isSingletonSet(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || !('set' in v)) return false;
  const s = (v as { set: unknown[] }).set;
  return s.length === 1 && !(typeof s[0] === 'object' && s[0] !== null && 'elem' in s[0]);
}

/** Protocol names nft compares the family's l4 dependency (`meta l4proto`, `ip protocol`, ...) against. */
const DEPENDENCY_NAMES: Readonly<Record<string, string>> = {
  tcp: 'tcp',
  udp: 'udp',
  sctp: 'sctp',
  dccp: 'dccp',
  udplite: 'udplite',
  icmp: 'icmp',
  icmpv6: 'ipv6-icmp',
  ah: 'ah',
  esp: 'esp',
  comp: 'comp',
  igmp: 'igmp',
};

/**
 * nft drops an explicit protocol match that equals the dependency it would add itself for a later header match
 * (`meta l4proto udp ... udp dport 53` in inet, `ip protocol tcp tcp dport 22` in ip), and prints the rule without
 * it. Mirror that so the JSON is what `nft -j` prints; the converter re-adds protocol dependencies anyway.
 */
function dropRedundantDependency(expr: unknown[], m: unknown, family: string): void {
  const o = m as { match?: { left?: unknown }; vmap?: { key?: unknown } };
  const left = (o.match?.left ?? o.vmap?.key) as { payload?: { protocol?: string } } | undefined;
  const proto = left?.payload?.protocol;
  const name = proto !== undefined ? own(DEPENDENCY_NAMES, proto) : undefined;
  if (name === undefined) return;
  for (let i = expr.length - 1; i >= 0; i--) {
    const e = (
      expr[i] as {
        match?: {
          op: string;
          left: Record<string, { key?: string; protocol?: string; field?: string }>;
          right: unknown;
        };
      }
    ).match;
    if (e?.op !== '==' || e.right !== name) continue;
    const l = e.left;
    const isDep =
      family === 'ip'
        ? l.payload?.protocol === 'ip' && l.payload.field === 'protocol'
        : family === 'ip6'
          ? l.payload?.protocol === 'ip6' && l.payload.field === 'nexthdr'
          : l.meta?.key === 'l4proto';
    if (isDep) {
      expr.splice(i, 1);
      return;
    }
  }
}

function isMaskedLhs(lhs: unknown): boolean {
  return typeof lhs === 'object' && lhs !== null && Object.keys(lhs).some((k) => Object.values(BINOPS).includes(k));
}

/** Whether a match already pins the layer 4 protocol (so `reject with tcp reset` needs no added check). */
function isL4Dependency(m: unknown): boolean {
  const left = (m as { match?: { left?: { payload?: { protocol?: string }; meta?: { key?: string } } } }).match?.left;
  if (!left) return false;
  const p = left.payload?.protocol;
  const field = (left.payload as { field?: string } | undefined)?.field;
  return p === 'tcp' || left.meta?.key === 'l4proto' || field === 'protocol' || field === 'nexthdr';
}

function describeType(type: ValType): string {
  const d: Record<ValType, string> = {
    ipv4: 'an IPv4 address, prefix or range',
    ipv6: 'an IPv6 address, prefix or range',
    addr: 'an address, prefix or range',
    port: 'a port number, range or service name',
    proto: 'a protocol name or number',
    icmp_type: 'an ICMP type',
    icmpv6_type: 'an ICMPv6 type',
    icmp_code: 'an ICMP code',
    icmpv6_code: 'an ICMPv6 code',
    int: 'a number or range',
    ifname: 'an interface name',
    string: 'a value',
    ct_state: 'a conntrack state (new, established, related, invalid, untracked)',
    ct_status: 'a conntrack status',
    tcp_flags: 'a TCP flag (fin, syn, rst, psh, ack, urg, ecn, cwr)',
    verdict: 'a verdict',
    generic: 'a value',
  };
  return d[type];
}

const NUM_RE = /^(0x[0-9a-f]+|\d+)$/i;

function numberOf(w: string): number | undefined {
  return NUM_RE.test(w) ? Number(w) : undefined;
}

/** Converts one word to the JSON value nft prints for it, or undefined when it is not a valid value of the type. */
function convertWord(w: string, type: ValType): unknown {
  switch (type) {
    case 'ipv4':
    case 'ipv6':
    case 'addr':
      return convertAddress(w, type);
    case 'port':
      return convertRange(w, (p) => {
        const n = numberOf(p) ?? own(SERVICES, p);
        return n !== undefined && n <= 65535 ? n : undefined;
      });
    case 'int':
      return convertRange(w, numberOf);
    case 'proto': {
      const n = numberOf(w);
      if (n !== undefined) return n <= 255 ? (NUM_TO_NAME.proto.get(n) ?? n) : undefined;
      return own(PROTO_ALIASES, w) ?? (/^[a-z][a-z0-9-]*$/.test(w) ? w : undefined);
    }
    case 'icmp_type':
    case 'icmpv6_type':
    case 'icmp_code':
    case 'icmpv6_code': {
      const table = NUM_TO_NAME[type];
      return convertRange(w, (p) => {
        const n = numberOf(p);
        if (n !== undefined) return n <= 255 ? (table.get(n) ?? n) : undefined;
        return /^[a-z][a-z0-9-]*$/.test(p) ? p : undefined;
      });
    }
    case 'ifname':
    case 'string':
    case 'ct_state':
    case 'ct_status':
    case 'tcp_flags':
      return /^(0x[0-9a-f]+|\d+)$/i.test(w) ? Number(w) : w;
    default: {
      const r = convertRange(w, numberOf);
      return r ?? w;
    }
  }
}

function convertRange(w: string, one: (p: string) => number | string | undefined): unknown {
  const single = one(w);
  if (single !== undefined) return single;
  const dash = w.indexOf('-', 1);
  if (dash > 0) {
    const lo = one(w.slice(0, dash));
    const hi = one(w.slice(dash + 1));
    if (lo !== undefined && hi !== undefined) return { range: [lo, hi] };
  }
  return undefined;
}

function isCanonicalIpv4(w: string): boolean {
  let parts = 0;
  let start = 0;
  for (let i = 0; i <= w.length; i++) {
    const c = i < w.length ? w.charCodeAt(i) : 46;
    if (c === 46) {
      const len = i - start;
      if (len === 0 || len > 3 || (len > 1 && w.charCodeAt(start) === 48)) return false;
      if (Number(w.slice(start, i)) > 255) return false;
      parts++;
      start = i + 1;
    } else if (c < 48 || c > 57) return false;
  }
  return parts === 4;
}

function convertAddress(w: string, type: ValType): unknown {
  const want = type === 'ipv4' ? 'ipv4' : type === 'ipv6' ? 'ipv6' : undefined;
  const slash = w.indexOf('/');
  const dash = w.indexOf('-');
  if (slash < 0 && dash < 0) {
    // fast path: a canonical dotted quad prints as itself (most addresses in large rulesets)
    if (want !== 'ipv6' && isCanonicalIpv4(w)) return w;
    const a = parseAddress(w);
    if (!a || (want && a.family !== want)) return undefined;
    return formatAddress(a.family, a.value);
  }
  if (dash > 0 && slash < 0) {
    const lo = parseAddress(w.slice(0, dash));
    const hi = parseAddress(w.slice(dash + 1));
    if (!lo || !hi || lo.family !== hi.family || (want && lo.family !== want)) return undefined;
    return { range: [formatAddress(lo.family, lo.value), formatAddress(hi.family, hi.value)] };
  }
  const r = parseAddressRange(w);
  if (!r || (want && r.family !== want)) return undefined;
  const len = Number(w.slice(slash + 1));
  const bits = r.family === 'ipv4' ? 32 : 128;
  let plen = len;
  if (!Number.isInteger(len)) {
    // dotted netmask: recover the length from the range size
    plen = bits - (r.hi - r.lo + 1n).toString(2).length + 1;
  }
  if (plen === bits) return formatAddress(r.family, r.lo);
  return { prefix: { addr: formatAddress(r.family, r.lo), len: plen } };
}
