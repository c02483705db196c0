/**
 * The nftables JSON parser: `nft -j list ruleset` output (libnftables-json(5)) to the Ruleset IR.
 *
 * Two entry points: parseNftJson (text, with JSON syntax errors located to line:column) and convertNftJson (an
 * already-parsed `nftables` array). The nft text parser builds the same JSON-shaped objects and calls
 * convertNftJson; its objects may carry `$origin` ({line, column}) and `$text` (the rule's source text), which nft
 * itself never prints.
 *
 * Design decisions worth knowing:
 * - Protocol dependencies are explicit (model.ts): `tcp dport 22` becomes `l4proto == 6` then `dport == 22`.
 * - Anything not understood becomes an OpaqueMatch plus a Warning, never a dropped condition. Unknown statements
 *   are treated as conditions too (opaque), since some nft statements (limit, quota, ct count) decide whether the
 *   rule applies.
 * - A jump/goto (or a verdict-map entry) naming a chain that does not exist in the table is a ParseError, not a
 *   warning: nft itself refuses to load such a ruleset, so the input cannot be a real one, and a tracer following
 *   a dangling target would have to invent semantics.
 * - A reference to an unknown named set is an opaque match (category unknown-set) plus a warning, as model.ts
 *   foresees; so is a set filled at run time (flag dynamic, or the target of an `add @set`/`update @set`).
 */
import { ParseError } from '../../errors.js';
import type {
  BaseChainSpec,
  Chain,
  ChainType,
  ConcatMatch,
  Element,
  ExactOpaque,
  Family,
  Field,
  FieldMatch,
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
  SimpleVerdict,
  Statement,
  Table,
  Verdict,
  VmapEntry,
  Warning,
} from '../model.js';
import { DEFAULT_SYN_TCP_OPTIONS, IN_SCOPE_FAMILIES } from '../model.js';
import {
  ADDR_TYPES,
  BRIDGE_PRIORITY_NAMES,
  CT_STATE_BITS,
  ICMP_CODES,
  ICMP_TYPES,
  ICMPV6_CODES,
  ICMPV6_TYPES,
  PRIORITY_NAMES,
  PROTOCOLS,
  SERVICES,
  TCP_FLAGS,
} from '../symbols.js';
import { parseAddress, prefixRange } from '../values.js';
import { own } from './common.js';

// ---------------------------------------------------------------------------------------------------------------
// Entry points

/** A position in the source text (1-based). */
export interface SourceLoc {
  readonly line: number;
  readonly column?: number;
}

export interface ConvertOptions {
  /** Where the top-level item with this index starts, when the caller knows the text. */
  readonly locate?: (index: number) => SourceLoc | undefined;
}

/** Parses the output of `nft -j list ruleset` (libnftables-json(5)). */
export function parseNftJson(text: string, file: string): Ruleset {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw jsonSyntaxError(text, file, e);
  }
  const items = isObj(doc) ? doc.nftables : undefined;
  if (!Array.isArray(items)) {
    const start = firstNonSpace(text);
    const at = lineCol(text, start);
    throw new ParseError(
      file,
      at.line,
      at.column,
      short(text.slice(start, start + 20)),
      'an object {"nftables": [...]} as printed by `nft -j list ruleset`',
      isObj(doc) ? 'no "nftables" array in the top-level object' : undefined,
    );
  }
  const starts = topLevelItemStarts(text, items.length);
  return convertNftJson(items, file, { locate: (i) => starts?.[i] });
}

/** Converts the parsed `nftables` array to the Ruleset IR. */
export function convertNftJson(items: readonly unknown[], file: string, opts: ConvertOptions = {}): Ruleset {
  try {
    return sharedDynamicSets(new Converter(file, opts).run(items));
  } catch (e) {
    // Expressions are walked recursively; absurd nesting must still end as a user error, not a crash.
    if (e instanceof RangeError) {
      throw new ParseError(
        file,
        1,
        1,
        '',
        'expressions nested a few thousand levels deep at most',
        'expressions nested too deeply',
      );
    }
    throw e;
  }
}

/**
 * A dynamic set that one rule fills without a limit (`update @s { ip saddr }`) and another updates with one
 * (`add @s { ip saddr limit rate over 10/second } drop`): the element the first rule created has no limit, so on a
 * source's first packet the second rule's limit is not what decides (the kernel then applies its verdict). The
 * outcome for a fresh source is not known without following the set's elements: such a gate stays uncertain.
 */
function sharedDynamicSets(rs: Ruleset): Ruleset {
  const update = /^(?:add|update) @([\w.-]+) \{/;
  const plain = new Set<string>();
  for (const t of rs.tables) {
    for (const c of t.chains) {
      for (const r of c.rules) {
        for (const st of r.statements) {
          const m = st.kind === 'other' ? update.exec(st.text) : null;
          const gated = r.matches.some((x) => x.kind === 'opaque' && x.text === st.text);
          if (m && !gated) plain.add(`${t.family} ${t.name} ${m[1]}`);
        }
      }
    }
  }
  if (plain.size === 0) return rs;
  const tables = rs.tables.map((t) => ({
    ...t,
    chains: t.chains.map((c) => ({
      ...c,
      rules: c.rules.map((r) => {
        let changed = false;
        const matches = r.matches.map((x) => {
          const m = x.kind === 'opaque' && x.fresh !== undefined ? update.exec(x.text) : null;
          if (!m || !plain.has(`${t.family} ${t.name} ${m[1]}`) || x.kind !== 'opaque') return x;
          changed = true;
          const { fresh: _f, otherwise: _o, ...rest } = x;
          return {
            ...rest,
            reason: `${x.reason}; but another rule fills @${m[1]} without a limit, and an element it created decides first`,
          };
        });
        return changed ? { ...r, matches } : r;
      }),
    })),
  }));
  return { ...rs, tables };
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** nft expressions and statements are objects with one key naming their kind. */
function soleKey(o: Obj): string | undefined {
  for (const k in o) return k;
  return undefined;
}

function compact(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

function short(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function firstNonSpace(text: string): number {
  let i = 0;
  while (i < text.length && /\s/.test(text[i] as string)) i++;
  return i;
}

function lineCol(text: string, pos: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < pos; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: pos - lineStart + 1 };
}

// ---------------------------------------------------------------------------------------------------------------
// JSON text: syntax errors and positions of the top-level items

function jsonSyntaxError(text: string, file: string, e: unknown): ParseError {
  // V8's messages differ between Node versions and sometimes carry no position, so locate the error ourselves.
  const found = locateJsonError(text);
  let pos = found?.pos;
  if (pos === undefined) {
    const m = /position (\d+)/.exec(e instanceof Error ? e.message : '');
    pos = m ? Number(m[1]) : 0;
  }
  const at = lineCol(text, pos);
  let token = '';
  if (pos < text.length) {
    const m = /^[A-Za-z0-9_.+-]+/.exec(text.slice(pos, pos + 40));
    token = m ? m[0] : (text[pos] as string);
  }
  return new ParseError(
    file,
    at.line,
    at.column,
    token,
    found?.expected ?? 'valid JSON',
    'invalid JSON: unexpected ' + (token === '' ? 'end of input' : `'${token}'`),
  );
}

type JsonState = 'value' | 'valueOrClose' | 'key' | 'keyOrClose' | 'colon' | 'commaOrClose' | 'end';
const JSON_EXPECT: Record<JsonState, string> = {
  value: 'a JSON value',
  valueOrClose: "a JSON value or ']'",
  key: 'a string (object key)',
  keyOrClose: "a string (object key) or '}'",
  colon: "':'",
  commaOrClose: "',' or a closing bracket",
  end: 'end of input',
};
const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** Finds the first JSON syntax error (only called once JSON.parse has failed, so speed does not matter). */
export function locateJsonError(text: string): { pos: number; expected: string } | undefined {
  const stack: ('[' | '{')[] = [];
  const n = text.length;
  let i = 0;
  let st: JsonState = 'value';
  const after = (): JsonState => (stack.length === 0 ? 'end' : 'commaOrClose');
  /** Returns the position of a bad character in the string starting at i, or -1 (and advances i). */
  const scanString = (): number => {
    i++;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return -1;
      }
      if (c < 32) return i;
      if (c === 92) {
        const d = text[i + 1];
        if (d === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) return i;
          i += 6;
        } else if (d !== undefined && '"\\/bfnrt'.includes(d)) i += 2;
        else return i;
      } else i++;
    }
    return n;
  };
  for (;;) {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
    if (i >= n) return st === 'end' ? undefined : { pos: n, expected: JSON_EXPECT[st] };
    const c = text[i] as string;
    switch (st) {
      case 'value':
      case 'valueOrClose': {
        if (st === 'valueOrClose' && c === ']') {
          stack.pop();
          i++;
          st = after();
        } else if (c === '{') {
          stack.push('{');
          i++;
          st = 'keyOrClose';
        } else if (c === '[') {
          stack.push('[');
          i++;
          st = 'valueOrClose';
        } else if (c === '"') {
          const bad = scanString();
          if (bad >= 0) return { pos: bad, expected: "a valid string character or escape, then '\"'" };
          st = after();
        } else {
          JSON_NUMBER.lastIndex = i;
          const m = JSON_NUMBER.exec(text);
          const lit = ['true', 'false', 'null'].find((l) => text.startsWith(l, i));
          if (m && m[0].length > 0) i += m[0].length;
          else if (lit) i += lit.length;
          else return { pos: i, expected: JSON_EXPECT[st] };
          st = after();
        }
        break;
      }
      case 'key':
      case 'keyOrClose':
        if (st === 'keyOrClose' && c === '}') {
          stack.pop();
          i++;
          st = after();
        } else if (c === '"') {
          const bad = scanString();
          if (bad >= 0) return { pos: bad, expected: "a valid string character or escape, then '\"'" };
          st = 'colon';
        } else return { pos: i, expected: JSON_EXPECT[st] };
        break;
      case 'colon':
        if (c !== ':') return { pos: i, expected: "':'" };
        i++;
        st = 'value';
        break;
      case 'commaOrClose': {
        const top = stack[stack.length - 1];
        const close = top === '{' ? '}' : ']';
        if (c === ',') {
          i++;
          st = top === '{' ? 'key' : 'value';
        } else if (c === close) {
          stack.pop();
          i++;
          st = after();
        } else return { pos: i, expected: `',' or '${close}'` };
        break;
      }
      case 'end':
        return { pos: i, expected: 'end of input' };
    }
  }
}

/**
 * Where each element of the top-level "nftables" array starts, in one pass over the text (strings skipped).
 * Returns undefined when the count does not match the parsed array (e.g. a duplicated "nftables" key).
 */
function topLevelItemStarts(text: string, count: number): SourceLoc[] | undefined {
  const out: SourceLoc[] = [];
  const n = text.length;
  let depth = 0;
  let line = 1;
  let lineStart = 0;
  let lastKeyIsNftables = false;
  let capturing = false;
  let expecting = false;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      const start = i;
      // Skip to the closing quote natively; a quote preceded by an odd number of backslashes is escaped.
      i = text.indexOf('"', i + 1);
      while (i > 0 && text.charCodeAt(i - 1) === 92) {
        let b = i - 1;
        while (text.charCodeAt(b - 1) === 92) b--;
        if ((i - b) % 2 === 0) break;
        i = text.indexOf('"', i + 1);
      }
      if (i < 0) break;
      if (capturing && depth === 2 && expecting) {
        out.push({ line, column: start - lineStart + 1 });
        expecting = false;
      } else if (depth === 1 && !capturing) {
        lastKeyIsNftables = i - start === 9 && text.startsWith('nftables', start + 1);
      }
    } else if (c === 123 || c === 91) {
      if (capturing && depth === 2 && expecting) {
        out.push({ line, column: i - lineStart + 1 });
        expecting = false;
      }
      if (c === 91 && depth === 1 && lastKeyIsNftables && out.length === 0) {
        capturing = true;
        expecting = true;
      }
      depth++;
    } else if (c === 125 || c === 93) {
      depth--;
      if (capturing && depth === 1) {
        capturing = false;
        lastKeyIsNftables = false;
      }
    } else if (c === 44) {
      if (capturing && depth === 2) expecting = true;
    } else if (c === 10) {
      line++;
      lineStart = i + 1;
    } else if (capturing && depth === 2 && expecting && c > 32) {
      out.push({ line, column: i - lineStart + 1 });
      expecting = false;
    }
  }
  return out.length === count ? out : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Value kinds: how a field's or a set type's values are written and which Element they become

type Kind =
  | 'ipv4'
  | 'ipv6'
  | 'port'
  | 'proto'
  | 'ifname'
  | 'mark'
  | 'ctstate'
  | 'icmpType'
  | 'icmpCode'
  | 'icmpv6Type'
  | 'icmpv6Code'
  | 'tcpflags'
  | 'addrtype'
  | 'nfproto'
  | 'ethertype'
  | 'ether'
  | 'int';

const SET_TYPE_KIND: Readonly<Record<string, Kind>> = {
  ipv4_addr: 'ipv4',
  ipv6_addr: 'ipv6',
  inet_service: 'port',
  inet_proto: 'proto',
  ifname: 'ifname',
  mark: 'mark',
  ct_state: 'ctstate',
  icmp_type: 'icmpType',
  icmp_code: 'icmpCode',
  icmpv6_type: 'icmpv6Type',
  icmpv6_code: 'icmpv6Code',
  tcp_flag: 'tcpflags',
  fib_addrtype: 'addrtype',
  nf_proto: 'nfproto',
  ether_type: 'ethertype',
  ether_addr: 'ether',
};

/** Largest value of the integer kinds, for `<`/`>` comparisons. */
const KIND_MAX: Partial<Record<Kind, bigint>> = {
  ipv4: (1n << 32n) - 1n,
  ipv6: (1n << 128n) - 1n,
  port: 65535n,
  proto: 255n,
  mark: (1n << 32n) - 1n,
  icmpType: 255n,
  icmpCode: 255n,
  icmpv6Type: 255n,
  icmpv6Code: 255n,
  tcpflags: 255n,
  ether: (1n << 48n) - 1n,
};

const ADDR_TYPE_NAMES: ReadonlySet<string> = new Set(ADDR_TYPES);

function intOf(v: unknown): bigint | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? BigInt(v) : undefined;
  if (typeof v === 'bigint') return v >= 0n ? v : undefined;
  if (typeof v === 'string' && /^(?:\d+|0x[0-9a-fA-F]+)$/.test(v)) return BigInt(v);
  return undefined;
}

/** ORs flag values written as `syn`, `["syn","ack"]`, `{"|": [...]}` or numbers. */
function flagsOf(v: unknown, table: Readonly<Record<string, number>>): bigint | undefined {
  if (typeof v === 'string') {
    const n = own(table, v);
    return n === undefined ? intOf(v) : BigInt(n);
  }
  if (Array.isArray(v)) {
    let acc = 0n;
    for (const x of v) {
      const b = flagsOf(x, table);
      if (b === undefined) return undefined;
      acc |= b;
    }
    return acc;
  }
  if (isObj(v) && Array.isArray(v['|'])) return flagsOf(v['|'], table);
  return intOf(v);
}

/** One scalar of an integer kind, or undefined when it is not one. */
function scalarOf(v: unknown, kind: Kind): bigint | undefined {
  switch (kind) {
    case 'ipv4':
    case 'ipv6': {
      if (typeof v !== 'string') return undefined;
      if (kind === 'ipv4') return ipv4Of(v);
      const a = parseAddress(v);
      return a && a.family === kind ? a.value : undefined;
    }
    case 'port':
      if (typeof v === 'string' && !/^\d/.test(v)) {
        const n = own(SERVICES, v);
        return n === undefined ? undefined : BigInt(n);
      }
      return boundedInt(v, 65535n);
    case 'proto':
      if (typeof v === 'string' && !/^\d/.test(v)) {
        const n = own(PROTOCOLS, v);
        return n === undefined ? undefined : BigInt(n);
      }
      return boundedInt(v, 255n);
    case 'icmpType':
    case 'icmpCode':
    case 'icmpv6Type':
    case 'icmpv6Code': {
      if (typeof v === 'string' && !/^\d/.test(v)) {
        const table =
          kind === 'icmpType'
            ? ICMP_TYPES
            : kind === 'icmpCode'
              ? ICMP_CODES
              : kind === 'icmpv6Type'
                ? ICMPV6_TYPES
                : ICMPV6_CODES;
        const n = own(table, v);
        return n === undefined ? undefined : BigInt(n);
      }
      return boundedInt(v, 255n);
    }
    case 'tcpflags': {
      const f = flagsOf(v, TCP_FLAGS);
      return f !== undefined && f <= 255n ? f : undefined;
    }
    case 'mark':
      return boundedInt(v, (1n << 32n) - 1n);
    case 'ether': {
      if (typeof v !== 'string' || !/^[0-9a-fA-F]{1,2}(?::[0-9a-fA-F]{1,2}){5}$/.test(v)) return undefined;
      return v.split(':').reduce((acc, b) => (acc << 8n) | BigInt(Number.parseInt(b, 16)), 0n);
    }
    case 'int':
      return intOf(v);
    default:
      return undefined;
  }
}

/** Dotted-quad IPv4 without a library call: addresses are the bulk of large rulesets. */
function ipv4Of(s: string): bigint | undefined {
  let value = 0;
  let octet = -1;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (octet < 0 || ++dots > 3) return undefined;
      value = value * 256 + octet;
      octet = -1;
    } else if (c >= 48 && c <= 57) {
      // A leading zero is ambiguous (octal in some parsers): leave such text to the strict parser.
      if (octet === 0) return undefined;
      octet = (octet < 0 ? 0 : octet * 10) + (c - 48);
      if (octet > 255) return undefined;
    } else return undefined;
  }
  if (dots !== 3 || octet < 0) return undefined;
  return BigInt(value * 256 + octet);
}

function boundedInt(v: unknown, max: bigint): bigint | undefined {
  const n = intOf(v);
  return n !== undefined && n <= max ? n : undefined;
}

const NFPROTO_NAMES: Readonly<Record<string, L3>> = { ipv4: 'ipv4', ipv6: 'ipv6', ip: 'ipv4', ip6: 'ipv6' };
const NFPROTO_NUMBERS: Readonly<Record<number, L3>> = { 2: 'ipv4', 10: 'ipv6' };
const ETHERTYPE_NUMBERS: Readonly<Record<number, L3>> = { 2048: 'ipv4', 34525: 'ipv6' };

/**
 * Adds the Elements one value stands for to `out`. Returns false when the value cannot be understood (the caller
 * then makes the match opaque). `{"set": [...]}` and `{"elem": {"val": ...}}` are flattened.
 */
function addElements(v: unknown, kind: Kind, out: Element[]): boolean {
  if (isObj(v)) {
    const k = soleKey(v);
    const inner = k === undefined ? undefined : v[k];
    if (k === 'set' && Array.isArray(inner)) return inner.every((x) => addElements(x, kind, out));
    if (k === 'elem' && isObj(inner)) return addElements(inner.val, kind, out);
    if (k === 'prefix' && isObj(inner) && (kind === 'ipv4' || kind === 'ipv6')) {
      const addr = scalarOf(inner.addr, kind);
      const len = inner.len;
      const bits = kind === 'ipv4' ? 32 : 128;
      if (addr === undefined || typeof len !== 'number' || !Number.isInteger(len) || len < 0 || len > bits) {
        return false;
      }
      const r = prefixRange(kind, addr, len);
      out.push({ kind: 'range', lo: r.lo, hi: r.hi });
      return true;
    }
    if (k === 'range' && Array.isArray(inner) && inner.length === 2) {
      const lo = scalarOf(inner[0], kind);
      const hi = scalarOf(inner[1], kind);
      if (lo === undefined || hi === undefined || lo > hi) return false;
      out.push({ kind: 'range', lo, hi });
      return true;
    }
    if (k === '|' && kind === 'tcpflags') {
      const f = scalarOf(v, kind);
      if (f === undefined) return false;
      out.push({ kind: 'range', lo: f, hi: f });
      return true;
    }
    return false;
  }
  switch (kind) {
    case 'ifname': {
      if (typeof v !== 'string' || v === '') return false;
      // nft prints a wildcard as a trailing `*` and a literal asterisk as `\*`.
      if (v.endsWith('\\*')) out.push({ kind: 'name', value: `${v.slice(0, -2)}*`, wildcard: false });
      else if (v.endsWith('*')) out.push({ kind: 'name', value: v.slice(0, -1), wildcard: true });
      else out.push({ kind: 'name', value: v, wildcard: false });
      return true;
    }
    case 'ctstate': {
      if (Array.isArray(v)) return v.every((x) => addElements(x, kind, out));
      if (typeof v !== 'string' || own(CT_STATE_BITS, v) === undefined) return false;
      out.push({ kind: 'symbol', value: v });
      return true;
    }
    case 'addrtype':
      if (typeof v !== 'string' || !ADDR_TYPE_NAMES.has(v)) return false;
      out.push({ kind: 'symbol', value: v });
      return true;
    case 'nfproto': {
      const l3 =
        typeof v === 'string' && Object.hasOwn(NFPROTO_NAMES, v)
          ? NFPROTO_NAMES[v]
          : typeof v === 'number'
            ? NFPROTO_NUMBERS[v]
            : undefined;
      if (!l3) return false;
      out.push({ kind: 'symbol', value: l3 });
      return true;
    }
    case 'ethertype': {
      // `meta protocol`: the ethertype. Only ip and ip6 exist in the model's packets; any other ethertype (arp,
      // vlan, ...) adds no element, so `==` never matches an IP packet and `!=` always does, which is the truth.
      const l3 =
        typeof v === 'string' && (v === 'ip' || v === 'ip6')
          ? NFPROTO_NAMES[v]
          : typeof v === 'number'
            ? ETHERTYPE_NUMBERS[v]
            : undefined;
      if (l3) out.push({ kind: 'symbol', value: l3 });
      else if (typeof v !== 'string' && typeof v !== 'number') return false;
      return true;
    }
    default: {
      if (kind === 'tcpflags' && Array.isArray(v)) {
        const f = scalarOf(v, kind);
        if (f === undefined) return false;
        out.push({ kind: 'range', lo: f, hi: f });
        return true;
      }
      if (Array.isArray(v)) return v.every((x) => addElements(x, kind, out));
      const n = scalarOf(v, kind);
      if (n === undefined) return false;
      out.push(single(n));
      return true;
    }
  }
}

/** Single small values (ports, protocols) recur in every rule; Elements are immutable, so share them. */
const SMALL: Element[] = [];
function single(n: bigint): Element {
  if (n >= 65536n) return { kind: 'range', lo: n, hi: n };
  const i = Number(n);
  let e = SMALL[i];
  if (!e) {
    e = { kind: 'range', lo: n, hi: n };
    SMALL[i] = e;
  }
  return e;
}

/** Converts one (possibly concatenated) element to tuples, one Element per kind. */
function addTuples(v: unknown, kinds: readonly Kind[], out: Element[][]): boolean {
  if (kinds.length === 1) {
    const els: Element[] = [];
    if (!addElements(v, kinds[0] as Kind, els)) return false;
    for (const e of els) out.push([e]);
    return true;
  }
  if (!isObj(v)) return false;
  const k = soleKey(v);
  const inner = k === undefined ? undefined : v[k];
  if (k === 'set' && Array.isArray(inner)) return inner.every((x) => addTuples(x, kinds, out));
  if (k === 'elem' && isObj(inner)) return addTuples(inner.val, kinds, out);
  if (k !== 'concat' || !Array.isArray(inner) || inner.length !== kinds.length) return false;
  let acc: Element[][] = [[]];
  for (let i = 0; i < kinds.length; i++) {
    const els: Element[] = [];
    if (!addElements(inner[i], kinds[i] as Kind, els) || els.length === 0) return false;
    const next: Element[][] = [];
    for (const prefix of acc) for (const e of els) next.push([...prefix, e]);
    acc = next;
  }
  for (const t of acc) out.push(t);
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering nft syntax from JSON expressions (for Rule.text and Match.text)

const UNQUALIFIED_META = new Set(['iifname', 'oifname', 'iif', 'oif', 'iiftype', 'oiftype', 'iifgroup', 'oifgroup']);
const QUOTED_KEYS = new Set(['iifname', 'oifname', 'iif', 'oif', 'ibrname', 'obrname']);
const BARE = /^[A-Za-z0-9_.:/@*$-]+$/;
const SIMPLE_VERDICTS = new Set(['accept', 'drop', 'continue', 'return']);
/** Verdict statements (`{"accept": null}`, `{"jump": {...}}`); also the verdict words of nft syntax. */
export const VERDICT_KEYS: ReadonlySet<string> = new Set([...SIMPLE_VERDICTS, 'jump', 'goto', 'queue']);

/** Renders one nft JSON expression or statement in nft syntax (`tcp dport { 80, 443 }`, `accept`, ...). */
export function renderNftExpr(expr: unknown): string {
  return render(expr, 0);
}

const QUOTE = 1;
const HEX = 2;

/** `mode` says how to print values: QUOTE strings (interface names), HEX numbers (marks). */
function render(e: unknown, mode: number): string {
  if (e === null || e === undefined) return '';
  if (typeof e === 'number' || typeof e === 'bigint') return mode & HEX && e >= 0 ? `0x${e.toString(16)}` : String(e);
  if (typeof e === 'boolean') return e ? 'exists' : 'missing';
  if (typeof e === 'string') return e.startsWith('@') || (!(mode & QUOTE) && BARE.test(e)) ? e : JSON.stringify(e);
  if (Array.isArray(e)) return e.map((x) => render(x, mode)).join(',');
  if (!isObj(e)) return compact(e);
  const k = soleKey(e);
  if (k === undefined) return compact(e);
  const v = e[k];
  const o = isObj(v) ? v : undefined;
  if (SIMPLE_VERDICTS.has(k) && (v === null || v === undefined)) return k;
  switch (k) {
    case 'match': {
      if (!o) break;
      const q = valueMode(o.left);
      const left = render(o.left, 0);
      const op = typeof o.op === 'string' ? o.op : '==';
      if (op === '!') return `${left} & ${renderFlags(o.right, q)} == 0`;
      // After a binary operation (`meta mark & 0xff == 0x2`) nft needs the operator written out.
      const binop = isObj(o.left) && ['&', '|', '^', '<<', '>>'].includes(soleKey(o.left) ?? '');
      const shown = (op === '==' && !binop) || op === 'in' ? '' : `${op} `;
      return `${left} ${shown}${render(o.right, q)}`;
    }
    case 'payload':
      if (!o) break;
      if (typeof o.protocol === 'string') return `${o.protocol} ${String(o.field)}`;
      return `@${String(o.base)},${String(o.offset)},${String(o.len)}`;
    case 'meta':
      if (!o || typeof o.key !== 'string') break;
      return UNQUALIFIED_META.has(o.key) ? o.key : `meta ${o.key}`;
    case 'ct':
      if (!o || typeof o.key !== 'string') break;
      return `ct ${typeof o.dir === 'string' ? `${o.dir} ` : ''}${typeof o.family === 'string' ? `${o.family} ` : ''}${o.key}`;
    case 'fib':
      if (!o) break;
      return `fib ${Array.isArray(o.flags) ? o.flags.join(' . ') : String(o.flags)} ${String(o.result)}`;
    case 'exthdr':
    case 'rt':
    case 'socket':
    case 'osf':
      return `${k} ${compact(v)}`;
    case '&':
    case '|':
    case '^':
    case '<<':
    case '>>':
      if (!Array.isArray(v) || v.length !== 2) break;
      return `${render(v[0], 0)} ${k} ${k === '&' ? renderFlags(v[1], valueMode(v[0])) : render(v[1], valueMode(v[0]))}`;
    case 'concat':
      if (!Array.isArray(v)) break;
      return v.map((x) => render(x, mode)).join(' . ');
    case 'set':
      if (Array.isArray(v)) return `{ ${v.map((x) => renderSetItem(x, mode)).join(', ')} }`;
      if (o && typeof o.op === 'string') {
        const stmts = Array.isArray(o.stmt) ? o.stmt.map((s) => ` ${render(s, 0)}`).join('') : '';
        return `${o.op} ${render(o.set, 0)} { ${render(o.elem, 0)}${stmts} }`;
      }
      break;
    case 'meter': {
      if (!o) break;
      const size = typeof o.size === 'number' ? ` size ${o.size}` : '';
      return `meter ${String(o.name)}${size} { ${render(o.key, 0)} ${render(o.stmt, 0)} }`;
    }
    case 'prefix':
      if (!o) break;
      return `${render(o.addr, 0)}/${String(o.len)}`;
    case 'range':
      if (!Array.isArray(v) || v.length !== 2) break;
      return `${render(v[0], mode)}-${render(v[1], mode)}`;
    case 'elem': {
      if (!o) break;
      let s = render(o.val, mode);
      if (typeof o.timeout === 'number') s += ` timeout ${o.timeout}s`;
      if (typeof o.comment === 'string') s += ` comment ${JSON.stringify(o.comment)}`;
      return s;
    }
    case 'map':
      if (!o) break;
      return `${render(o.key, 0)} map ${render(o.data, 0)}`;
    case 'vmap':
      if (!o) break;
      return `${render(o.key, 0)} vmap ${render(o.data, 0)}`;
    case 'jump':
    case 'goto':
      if (!o) break;
      return `${k} ${render(o.target, 0)}`;
    case 'reject': {
      if (!o) return 'reject';
      if (o.type === 'tcp reset') return 'reject with tcp reset';
      if (typeof o.type === 'string')
        return `reject with ${o.type}${o.expr === undefined ? '' : ` ${render(o.expr, 0)}`}`;
      return 'reject';
    }
    case 'counter':
      return typeof v === 'string' ? `counter name ${JSON.stringify(v)}` : 'counter';
    case 'log': {
      if (!o) return 'log';
      let s = 'log';
      if (typeof o.prefix === 'string') s += ` prefix ${JSON.stringify(o.prefix)}`;
      if (o.level !== undefined) s += ` level ${String(o.level)}`;
      if (o.group !== undefined) s += ` group ${String(o.group)}`;
      if (o.flags !== undefined) s += ` flags ${Array.isArray(o.flags) ? o.flags.join(',') : String(o.flags)}`;
      return s;
    }
    case 'limit': {
      if (!o) break;
      const unit = typeof o.rate_unit === 'string' && o.rate_unit !== 'packets' ? ` ${o.rate_unit}` : '';
      let s = `limit rate ${o.inv === true ? 'over ' : ''}${String(o.rate)}${unit}/${String(o.per ?? 'second')}`;
      if (typeof o.burst === 'number' && o.burst !== 0 && !(o.burst === 5 && unit === '')) {
        s += ` burst ${o.burst} ${typeof o.burst_unit === 'string' ? o.burst_unit : unit === '' ? 'packets' : 'bytes'}`;
      }
      return s;
    }
    case 'quota':
      if (!o) break;
      return `quota ${o.inv === true ? 'over ' : ''}${String(o.val)} ${String(o.val_unit ?? 'bytes')}`;
    case 'ct count':
      if (!o) break;
      return `ct count ${o.inv === true ? 'over ' : ''}${String(o.val)}`;
    case 'mangle':
      if (!o) break;
      return `${render(o.key, 0)} set ${render(o.value, valueMode(o.key))}`;
    case 'ct helper':
    case 'ct timeout':
    case 'ct expectation':
      return `${k} set ${JSON.stringify(v)}`;
    case 'notrack':
      return 'notrack';
    case 'queue': {
      let s = 'queue';
      if (o?.num !== undefined) s += ` num ${render(o.num, 0)}`;
      if (o?.flags !== undefined) s += ` ${Array.isArray(o.flags) ? o.flags.join(',') : String(o.flags)}`;
      return s;
    }
    case 'dnat':
    case 'snat':
    case 'masquerade':
    case 'redirect': {
      let s: string = k;
      if (o && typeof o.family === 'string') s += ` ${o.family}`;
      const port = o?.port === undefined ? '' : `:${render(o.port, 0)}`;
      if (o && o.addr !== undefined) {
        const a = render(o.addr, 0);
        s += ` to ${port !== '' && a.includes(':') ? `[${a}]` : a}${port}`;
      } else if (port !== '') s += ` to ${port}`;
      if (o && o.flags !== undefined) s += ` ${Array.isArray(o.flags) ? o.flags.join(',') : String(o.flags)}`;
      return s;
    }
    case 'xt':
      if (!o) break;
      return `xt ${String(o.type)} ${JSON.stringify(o.name)}`;
    case '$opaque':
      // the nft text parser's stand-in for syntax it does not know: the source text itself
      if (typeof v === 'string') return v;
      break;
  }
  return compact(e);
}

function renderFlags(v: unknown, mode: number): string {
  return Array.isArray(v) ? `(${v.map((x) => render(x, mode)).join('|')})` : render(v, mode);
}

function renderSetItem(x: unknown, mode: number): string {
  if (Array.isArray(x) && x.length === 2) return `${render(x[0], mode)} : ${render(x[1], 0)}`;
  return render(x, mode);
}

/** How nft prints the values compared with (or assigned to) this expression: quoted names, hex marks. */
function valueMode(left: unknown): number {
  if (!isObj(left)) return 0;
  const k = soleKey(left);
  const v = k === undefined ? undefined : left[k];
  if (k === 'meta' && isObj(v)) return QUOTED_KEYS.has(String(v.key)) ? QUOTE : v.key === 'mark' ? HEX : 0;
  if (k === 'ct' && isObj(v)) return v.key === 'mark' ? HEX : 0;
  if (k === 'concat' && Array.isArray(v)) return v.some((x) => valueMode(x) & QUOTE) ? QUOTE : 0;
  if (k !== undefined && ['&', '|', '^'].includes(k) && Array.isArray(v)) return valueMode(v[0]);
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Conversion

const FAMILIES = new Set<Family>(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']);
const HOOKS = new Set<Hook>(['prerouting', 'input', 'forward', 'output', 'postrouting', 'ingress', 'egress']);
const CHAIN_TYPES = new Set<ChainType>(['filter', 'nat', 'route']);
const PORT_PROTOCOLS: Readonly<Record<string, number>> = { tcp: 6, udp: 17, sctp: 132, dccp: 33, udplite: 136 };
/** Top-level objects that are not analysed (named stateful objects, flowtables) and need no warning. */
const IGNORED_OBJECTS = new Set([
  'metainfo',
  'counter',
  'quota',
  'limit',
  'ct helper',
  'ct timeout',
  'ct expectation',
  'secmark',
  'synproxy',
  'flowtable',
]);
/** Statements with effects that do not decide the verdict or whether the rule applies. */
const EFFECT_STATEMENTS = new Set([
  'notrack',
  'ct helper',
  'ct timeout',
  'ct expectation',
  'dup',
  'fwd',
  'tproxy',
  'synproxy',
  'secmark',
  'flow',
  'xt target',
]);

interface SetInfo {
  readonly kinds: readonly Kind[];
  /** Why the set's contents cannot be used (unconvertible elements or filled at run time). */
  unusable?: string;
  readonly named: {
    kind: 'set';
    name: string;
    types: readonly string[];
    flags: readonly string[];
    elements: Element[][];
    map?: { type: string; values: (SimpleVerdict | string)[] };
    origin: Origin;
  };
  /** For verdict maps: the converted entries. */
  readonly vmapEntries: VmapEntry[];
  readonly at: At;
}

interface ChainB {
  readonly name: string;
  readonly base?: BaseChainSpec;
  readonly rules: Rule[];
  readonly origin: Origin;
}

interface TableB {
  readonly family: Family;
  readonly name: string;
  readonly chains: Map<string, ChainB>;
  readonly sets: Map<string, SetInfo>;
  readonly origin: Origin;
  readonly outOfScope: boolean;
}

/**
 * Where an error or warning points: the JSON path and the source location of the enclosing top-level item. The
 * path is built only when needed (an error or warning), since 100k rules would otherwise build 100k strings.
 */
class At {
  constructor(
    readonly line: number,
    readonly column: number | undefined,
    private readonly parent: At | undefined,
    private readonly seg: string | number,
    /** Set when the object came from another file (`$origin.file`, e.g. an nft include). */
    readonly file?: string,
  ) {}
  get path(): string {
    const p = this.parent ? this.parent.path : 'nftables';
    return typeof this.seg === 'number' ? `${p}[${this.seg}]` : `${p}.${this.seg}`;
  }
  sub(seg: string | number): At {
    return new At(this.line, this.column, this, seg, this.file);
  }
}

interface JumpCheck {
  readonly table: TableB;
  readonly target: string;
  readonly at: At;
}

/** What a left-hand side expression refers to. */
interface FieldRef {
  readonly field: Field;
  readonly kind: Kind;
  /** Matches the field needs first (`l4proto == tcp` before `tcp dport`). */
  readonly deps: readonly Dep[];
  readonly mask?: bigint;
}

interface Dep {
  readonly field: 'l4proto' | 'nfproto';
  readonly value: Element;
  readonly key: string;
}

function l4Dep(proto: number): Dep {
  return { field: 'l4proto', value: { kind: 'range', lo: BigInt(proto), hi: BigInt(proto) }, key: `l4proto=${proto}` };
}
function nfDep(l3: L3): Dep {
  return { field: 'nfproto', value: { kind: 'symbol', value: l3 }, key: `nfproto=${l3}` };
}

const DEP_TCP = l4Dep(6);
const DEP_ICMP = l4Dep(1);
const DEP_ICMPV6 = l4Dep(58);
const PORT_DEPS: Readonly<Record<string, Dep>> = Object.fromEntries(
  Object.entries(PORT_PROTOCOLS).map(([name, n]) => [name, l4Dep(n)]),
);

/** The state of one rule being converted. */
interface RuleCtx {
  readonly table: TableB;
  readonly at: At;
  readonly origin: Origin;
  readonly matches: Match[];
  readonly statements: Statement[];
  readonly depKeys: string[];
  verdict?: Verdict;
  text: string;
}

class Converter {
  private readonly warnings: Warning[] = [];
  private readonly tables = new Map<string, TableB>();
  private readonly jumps: JumpCheck[] = [];
  /** Sets that rules fill at run time (`add @s`, `update @s`), keyed by table key and set name. */
  private readonly dynamicSets = new Set<string>();

  constructor(
    private readonly file: string,
    private readonly opts: ConvertOptions,
  ) {}

  run(items: readonly unknown[]): Ruleset {
    const rules: { index: number; wrapper: string | undefined; body: Obj }[] = [];
    // Pass 1: tables, chains, sets; rules are kept for pass 2 so that every set and chain is known by then.
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (!isObj(item)) this.fail(this.at(i, `nftables[${i}]`, undefined), item, 'an object such as {"rule": {...}}');
      let kind = soleKey(item);
      let body = kind === undefined ? undefined : item[kind];
      let wrapper: string | undefined;
      // Command wrappers ({"add": {"rule": ...}}) are accepted for add/create, which describe the same state.
      if ((kind === 'add' || kind === 'create') && isObj(body)) {
        wrapper = kind;
        kind = soleKey(body);
        body = kind === undefined ? undefined : body[kind];
      }
      if (kind === undefined) this.fail(this.at(i, wrapper, undefined), item, 'an object with one key');
      const path = `nftables[${i}]${wrapper ? `.${wrapper}` : ''}.${kind}`;
      if (IGNORED_OBJECTS.has(kind)) continue;
      if (!isObj(body)) {
        if (['table', 'chain', 'rule', 'set', 'map', 'element'].includes(kind)) {
          this.fail(this.at(i, wrapper, undefined, kind), body, `an object for "${kind}"`);
        }
        if (['insert', 'replace', 'delete', 'destroy', 'flush', 'reset', 'rename'].includes(kind)) {
          this.fail(this.at(i, wrapper, undefined), kind, 'a ruleset listing (nft -j list ruleset), not a command');
        }
        this.warnings.push({
          code: 'nft-unknown-object',
          message: `${path}: ignored unknown object "${kind}"`,
          origin: this.originOf(this.at(i, wrapper, undefined, kind)),
        });
        continue;
      }
      const at = this.at(i, wrapper, body, kind);
      switch (kind) {
        case 'table':
          this.addTable(body, at);
          break;
        case 'chain':
          this.addChain(body, at);
          break;
        case 'set':
        case 'map':
          this.addSet(body, at, kind === 'map');
          break;
        case 'element':
          this.addElementObject(body, at);
          break;
        case 'rule':
          rules.push({ index: i, wrapper, body });
          this.noteDynamicSets(body);
          break;
        case 'insert':
        case 'replace':
        case 'delete':
        case 'destroy':
        case 'flush':
        case 'reset':
        case 'rename':
          this.fail(this.at(i, wrapper, undefined), kind, 'a ruleset listing (nft -j list ruleset), not a command');
          break;
        default:
          this.warnings.push({
            code: 'nft-unknown-object',
            message: `${path}: ignored unknown object "${kind}"`,
            origin: this.originOf(at),
          });
      }
    }
    for (const [key, t] of this.tables) {
      for (const [name, s] of t.sets) {
        if (this.dynamicSets.has(`${key}\0${name}`) && s.unusable === undefined) {
          s.unusable = 'its contents change at run time (rules add elements to it)';
        }
      }
    }
    // Pass 2: rules.
    for (const { index, wrapper, body } of rules) this.addRule(body, this.at(index, wrapper, body, 'rule'));
    for (const j of this.jumps) {
      if (!j.table.chains.has(j.target)) {
        const names = [...j.table.chains.keys()];
        this.fail(
          j.at,
          j.target,
          `a chain of table ${j.table.family} ${j.table.name} (${names.length > 0 ? names.join(', ') : 'it has none'})`,
          `jump to unknown chain '${j.target}'`,
        );
      }
    }
    const tables: Table[] = [];
    for (const t of this.tables.values()) {
      const chains: Chain[] = [];
      for (const c of t.chains.values()) {
        chains.push({
          kind: 'chain',
          name: c.name,
          ...(c.base ? { base: c.base } : {}),
          rules: c.rules,
          origin: c.origin,
        });
      }
      const sets: NamedSet[] = [];
      for (const s of t.sets.values()) sets.push(s.named);
      tables.push({
        kind: 'table',
        family: t.family,
        name: t.name,
        chains,
        sets,
        origin: t.origin,
        outOfScope: t.outOfScope,
      });
    }
    return {
      kind: 'ruleset',
      backend: 'nftables',
      format: 'nft-json',
      file: this.file,
      tables,
      warnings: this.warnings,
    };
  }

  // --- locations and errors

  private at(index: number, wrapper: string | undefined, body: unknown, kind?: string): At {
    const o = isObj(body) ? body.$origin : undefined;
    let line = 1;
    let column: number | undefined;
    let file: string | undefined;
    if (isObj(o) && typeof o.line === 'number') {
      line = o.line;
      if (typeof o.column === 'number') column = o.column;
      if (typeof o.file === 'string') file = o.file;
    } else {
      const loc = this.opts.locate?.(index);
      if (loc) {
        line = loc.line;
        column = loc.column;
      }
    }
    let at = new At(line, column, undefined, index, file);
    if (wrapper !== undefined) at = at.sub(wrapper);
    return kind === undefined ? at : at.sub(kind);
  }

  private originOf(at: At, handle?: unknown): Origin {
    // Built by assignment rather than spreads: this runs once per rule and spreads allocate.
    const o: { file: string; line: number; column?: number; handle?: number } = {
      file: at.file ?? this.file,
      line: at.line,
    };
    if (at.column !== undefined) o.column = at.column;
    if (typeof handle === 'number') o.handle = handle;
    return o;
  }

  private fail(at: At, token: unknown, expected: string, what?: string): never {
    const shown = typeof token === 'string' ? token : token === undefined ? '' : compact(token);
    throw new ParseError(
      at.file ?? this.file,
      at.line,
      at.column ?? 1,
      shown,
      expected,
      `${at.path}: ${what ?? (shown === '' ? 'missing value' : `unexpected '${short(shown)}'`)}`,
    );
  }

  private str(o: Obj, key: string, at: At, expected = 'a string'): string {
    const v = o[key];
    if (typeof v !== 'string' || v === '') this.fail(sub(at, key), v, expected);
    return v;
  }

  private tableOf(o: Obj, at: At, tableKey = 'table'): TableB {
    const family = this.str(o, 'family', at, 'a family (ip, ip6, inet, arp, bridge, netdev)');
    const name = this.str(o, tableKey, at, 'a table name');
    const t = this.tables.get(`${family}\0${name}`);
    if (!t)
      this.fail(
        sub(at, tableKey),
        name,
        `a table declared before (family ${family})`,
        `unknown table '${family} ${name}'`,
      );
    return t;
  }

  // --- tables, chains, sets

  private addTable(o: Obj, at: At): void {
    const family = this.str(o, 'family', at, 'a family (ip, ip6, inet, arp, bridge, netdev)') as Family;
    if (!FAMILIES.has(family)) this.fail(sub(at, 'family'), family, 'one of ip, ip6, inet, arp, bridge, netdev');
    const name = this.str(o, 'name', at, 'a table name');
    const key = `${family}\0${name}`;
    if (this.tables.has(key)) return; // nft -j never repeats a table; a repeated declaration adds to it, as in nft.
    const outOfScope = !IN_SCOPE_FAMILIES.includes(family);
    const origin = this.originOf(at, o.handle);
    this.tables.set(key, { family, name, chains: new Map(), sets: new Map(), origin, outOfScope });
    if (outOfScope) {
      this.warnings.push({
        code: 'nft-out-of-scope-family',
        message: `table ${family} ${name} is not analysed: only ip, ip6 and inet tables filter IP traffic in the model`,
        origin,
      });
    }
  }

  private addChain(o: Obj, at: At): void {
    const t = this.tableOf(o, at);
    const name = this.str(o, 'name', at, 'a chain name');
    if (t.chains.has(name)) return;
    let base: BaseChainSpec | undefined;
    if (o.hook !== undefined || o.type !== undefined) {
      const hook = o.hook as Hook;
      if (typeof hook !== 'string' || !HOOKS.has(hook)) {
        this.fail(sub(at, 'hook'), o.hook, 'a hook (prerouting, input, forward, output, postrouting, ingress, egress)');
      }
      const type = (o.type ?? 'filter') as ChainType;
      if (typeof type !== 'string' || !CHAIN_TYPES.has(type))
        this.fail(sub(at, 'type'), o.type, 'filter, nat or route');
      const policy = (o.policy ?? 'accept') as Policy;
      if (policy !== 'accept' && policy !== 'drop') this.fail(sub(at, 'policy'), o.policy, 'accept or drop');
      const priority = this.priorityOf(o.prio ?? o.priority ?? 0, t.family, sub(at, 'prio'));
      const dev = Array.isArray(o.dev) ? o.dev.filter((d) => typeof d === 'string').join(',') : o.dev;
      base = { type, hook, priority, policy, ...(typeof dev === 'string' && dev !== '' ? { device: dev } : {}) };
    }
    t.chains.set(name, { name, ...(base ? { base } : {}), rules: [], origin: this.originOf(at, o.handle) });
  }

  /** nft -j prints a number; hand-written JSON may use a standard name, optionally with an offset (`filter + 10`). */
  private priorityOf(v: unknown, family: Family, at: At): number {
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    if (typeof v === 'string') {
      const m = /^\s*([a-z]+)\s*(?:([+-])\s*(\d+))?\s*$/.exec(v);
      const names = family === 'bridge' ? BRIDGE_PRIORITY_NAMES : PRIORITY_NAMES;
      const base = m ? own(names, m[1] as string) : undefined;
      if (m && base !== undefined) return base + (m[2] === '-' ? -1 : 1) * Number(m[3] ?? 0);
      if (/^-?\d+$/.test(v)) return Number(v);
    }
    return this.fail(at, v, `a priority: a number or one of ${Object.keys(PRIORITY_NAMES).join(', ')}`);
  }

  private kindsOf(o: Obj, at: At): { kinds: Kind[]; types: string[] } {
    let types: string[] | undefined;
    if (typeof o.type === 'string') types = [o.type];
    else if (Array.isArray(o.type) && o.type.length > 0 && o.type.every((x) => typeof x === 'string')) {
      types = o.type as string[];
    }
    if (types) return { types, kinds: types.map((t) => SET_TYPE_KIND[t] ?? 'int') };
    // `typeof` declarations: the type is that of an expression.
    const tf = o.typeof;
    const exprs = isObj(tf) && Array.isArray(tf.concat) ? tf.concat : tf !== undefined ? [tf] : undefined;
    if (exprs) {
      const kinds: Kind[] = [];
      for (const x of exprs) {
        const r = this.resolveLeft(x, 'inet');
        kinds.push(typeof r === 'string' ? 'int' : r.kind);
      }
      return { types: exprs.map((x) => renderNftExpr(x)), kinds };
    }
    return this.fail(sub(at, 'type'), o.type, 'a set type (e.g. "ipv4_addr" or ["ipv4_addr", "inet_service"])');
  }

  private addSet(o: Obj, at: At, isMap: boolean): void {
    const t = this.tableOf(o, at);
    const name = this.str(o, 'name', at, 'a set name');
    const { kinds, types } = this.kindsOf(o, at);
    const flags = Array.isArray(o.flags)
      ? o.flags.filter((f): f is string => typeof f === 'string')
      : typeof o.flags === 'string'
        ? [o.flags]
        : [];
    let map: { type: string; values: (SimpleVerdict | string)[] } | undefined;
    if (isMap) {
      const mt = o.map;
      const type = typeof mt === 'string' ? mt : Array.isArray(mt) ? mt.join(' . ') : undefined;
      if (type === undefined) this.fail(sub(at, 'map'), mt, 'the map data type (e.g. "verdict")');
      map = { type, values: [] };
    }
    const info: SetInfo = {
      kinds,
      named: {
        kind: 'set',
        name,
        types,
        flags,
        elements: [],
        ...(map ? { map } : {}),
        origin: this.originOf(at, o.handle),
      },
      vmapEntries: [],
      at,
    };
    if (flags.includes('dynamic')) info.unusable = 'its contents change at run time (flag dynamic)';
    t.sets.set(name, info);
    this.addSetElements(t, info, o.elem, sub(at, 'elem'));
  }

  private addElementObject(o: Obj, at: At): void {
    const t = this.tableOf(o, at);
    const name = this.str(o, 'name', at, 'a set name');
    const info = t.sets.get(name);
    if (!info) this.fail(sub(at, 'name'), name, `a set of table ${t.family} ${t.name}`, `unknown set '${name}'`);
    this.addSetElements(t, info, o.elem, sub(at, 'elem'));
  }

  private addSetElements(t: TableB, info: SetInfo, elems: unknown, at: At): void {
    if (elems === undefined) return;
    const list = Array.isArray(elems) ? elems : [elems];
    const map = info.named.map;
    for (let i = 0; i < list.length; i++) {
      const el = list[i];
      const eat = at.sub(i);
      let key: unknown = el;
      let data: unknown;
      if (map) {
        if (!Array.isArray(el) || el.length !== 2) this.fail(eat, el, 'a [key, value] pair');
        key = el[0];
        data = el[1];
      }
      const tuples: Element[][] = [];
      if (!addTuples(key, info.kinds, tuples)) {
        info.unusable ??= `element ${renderNftExpr(key)} is not understood`;
        this.warnings.push({
          code: 'nft-unsupported-element',
          message: `${eat.path}: cannot understand element ${short(renderNftExpr(key))} of set ${info.named.name} (type ${info.named.types.join(' . ')}); matches on this set are treated as unknown`,
          origin: this.originOf(at),
        });
        continue;
      }
      for (const tuple of tuples) {
        info.named.elements.push(tuple);
        if (!map) continue;
        if (map.type === 'verdict') {
          const verdict = this.simpleVerdict(data, t, eat);
          map.values.push(verdict);
          info.vmapEntries.push({ key: tuple, verdict });
        } else map.values.push(renderNftExpr(data));
      }
    }
  }

  private noteDynamicSets(o: Obj): void {
    const expr = o.expr;
    if (!Array.isArray(expr)) return;
    for (const s of expr) {
      if (!isObj(s)) continue;
      const body = isObj(s.set) ? s.set : isObj(s.map) ? s.map : undefined;
      if (body && typeof body.op === 'string' && typeof body.set === 'string' && body.set.startsWith('@')) {
        this.dynamicSets.add(`${String(o.family)}\0${String(o.table)}\0${body.set.slice(1)}`);
      }
    }
  }

  // --- rules

  private addRule(o: Obj, at: At): void {
    const t = this.tableOf(o, at);
    const chainName = this.str(o, 'chain', at, 'a chain name');
    const chain = t.chains.get(chainName);
    if (!chain) {
      this.fail(
        sub(at, 'chain'),
        chainName,
        `a chain declared in table ${t.family} ${t.name}`,
        `unknown chain '${chainName}'`,
      );
    }
    const expr = o.expr;
    if (!Array.isArray(expr)) this.fail(sub(at, 'expr'), expr, 'an array of expressions and statements');
    const origin = this.originOf(at, o.handle);
    const rc: RuleCtx = {
      table: t,
      at,
      origin,
      matches: [],
      statements: [],
      depKeys: [],
      text: '',
    };
    const given = typeof o.$text === 'string' ? o.$text : undefined;
    const comment = typeof o.comment === 'string' ? o.comment : undefined;
    // Each expression is rendered once: its text serves both the rule's text and its match or statement.
    const texts: string[] = [];
    for (const x of expr) texts.push(render(x, 0));
    if (given !== undefined) rc.text = given;
    else rc.text = comment === undefined ? texts.join(' ') : `${texts.join(' ')} comment ${JSON.stringify(comment)}`;
    const exprAt = at.sub('expr');
    for (let i = 0; i < expr.length; i++) this.convertExpr(expr[i], rc, exprAt.sub(i), texts[i] as string);
    const out: { -readonly [K in keyof Rule]: Rule[K] } = {
      kind: 'rule',
      matches: rc.matches,
      statements: rc.statements,
      origin,
      text: rc.text,
    };
    if (rc.verdict) out.verdict = rc.verdict;
    if (comment !== undefined) out.comment = comment;
    chain.rules.push(out);
  }

  private convertExpr(x: unknown, rc: RuleCtx, at: At, text: string): void {
    if (!isObj(x)) this.fail(at, x, 'an expression object such as {"match": {...}} or {"accept": null}');
    const k = soleKey(x);
    if (k === undefined) this.fail(at, x, 'an expression object with one key');
    const v = x[k];
    if (rc.verdict) {
      // nft never prints anything after a verdict; a statement there would never run.
      this.warn(rc, 'nft-after-verdict', `ignored '${text}' after the verdict`);
      return;
    }
    switch (k) {
      case 'match':
        if (!isObj(v) || v.left === undefined || v.right === undefined) {
          this.fail(at, v, 'a match object {"op": ..., "left": ..., "right": ...}');
        }
        this.convertMatch(v, rc, at, text);
        return;
      case 'counter':
        rc.statements.push({ kind: 'counter', text: text });
        return;
      case 'log': {
        const prefix = isObj(v) && typeof v.prefix === 'string' ? v.prefix : undefined;
        rc.statements.push({ kind: 'log', ...(prefix !== undefined ? { prefix } : {}), text: text });
        return;
      }
      case 'limit':
      case 'ct count':
      case 'quota': {
        const g = gateOutcome(x);
        this.opaque(rc, k === 'quota' ? 'quota' : 'limit', text, g.reason, false, g);
        return;
      }
      case 'mangle':
        this.convertMangle(x, rc, text);
        return;
      case 'set':
      case 'map':
      case 'meter': {
        // `add @s { ip saddr limit rate over 10/second }`, `meter m { ip saddr limit rate 5/second }`: the statements
        // inside keep per-element state (one rate per source, say) and decide whether the rule applies. A fresh
        // source has a new element: its limit is not yet exceeded, its count is 1.
        const raw = isObj(v) ? (Array.isArray(v.stmt) ? v.stmt : v.stmt === undefined ? [] : [v.stmt]) : [];
        const gates = raw.filter((s) => isObj(s) && ['limit', 'quota', 'ct count'].includes(soleKey(s) ?? ''));
        rc.statements.push({ kind: 'other', text: text });
        if (gates.length > 0) {
          const outcomes = gates.map(gateOutcome);
          const fresh = outcomes.every((g) => g.fresh);
          const inner = isObj(v) && isObj(v.elem) && isObj(v.elem.elem) ? v.elem.elem.val : undefined;
          const keyExpr = isObj(v) ? (v.key ?? inner ?? v.elem) : undefined;
          const key = keyExpr === undefined ? '' : render(keyExpr, 0);
          const otherwise = outcomes.map((g) => g.otherwise).join(' or ');
          const cat: OpaqueCategory = gates.some((g) => isObj(g) && 'quota' in g) ? 'quota' : 'limit';
          this.opaque(rc, cat, text, `per ${key || 'element'}: ${outcomes.map((g) => g.reason).join(' and ')}`, false, {
            fresh,
            otherwise: `${otherwise} for one ${key || 'element'}`,
          });
        }
        return;
      }
      case 'xt':
        if (isObj(v) && v.type === 'target') {
          rc.statements.push({ kind: 'other', text: text });
          this.warn(rc, 'nft-unsupported-module', `iptables target '${String(v.name)}' (xt) is not modelled`);
        } else {
          this.opaque(
            rc,
            'unsupported-module',
            text,
            `iptables extension '${isObj(v) ? String(v.name) : '?'}' (xt) is not modelled`,
            true,
          );
        }
        return;
      case 'reject':
        rc.verdict = this.simpleVerdict(x, rc.table, at);
        this.addRejectDeps(v, rc, text);
        return;
      case 'dnat':
      case 'snat':
      case 'masquerade':
      case 'redirect':
        rc.verdict = this.natVerdict(k, v, rc, text);
        return;
      case 'vmap':
        this.convertVmap(v, rc, at, text);
        return;
      case '$opaque':
        // Written by the nft text parser for an expression it does not know; never printed by nft itself.
        if (typeof v === 'string') {
          this.opaque(rc, 'unsupported-expression', v, 'this expression is not understood', true);
          return;
        }
        break;
    }
    if (VERDICT_KEYS.has(k)) {
      rc.verdict = this.simpleVerdict(x, rc.table, at);
      return;
    }
    if (EFFECT_STATEMENTS.has(k)) {
      rc.statements.push({ kind: 'other', text: text });
      return;
    }
    // Unknown statements may be conditions (new nft versions add match-like statements): be sound.
    this.opaque(rc, 'unsupported-expression', text, `statement "${k}" is not understood`, true);
  }

  /**
   * The conditions a reject type puts into the kernel's rule although `nft list` leaves them out (checked with
   * `nft --debug=netlink` on nft 1.0.6, kernel 6.18; see docs/kernel-agreement.md):
   * - `reject with tcp reset` is compiled with `meta l4proto tcp` first in every family. nft prints that match in
   *   inet tables but not in ip/ip6 tables (where it also drops an explicit `ip protocol tcp`).
   * - `reject with icmp ...` in an inet table is compiled with `meta nfproto ipv4`, `reject with icmpv6 ...` with
   *   `meta nfproto ipv6`; neither is printed. In ip/ip6 tables the family already says it.
   * - `reject with icmpx ...` (and plain `reject` in inet) has no extra condition.
   * The tracer applies the same implied matches on its own (for IRs from other sources); having them twice is
   * harmless, and having them here makes the IR say what the kernel does for every other consumer.
   */
  private addRejectDeps(v: unknown, rc: RuleCtx, text: string): void {
    const type = isObj(v) ? v.type : undefined;
    if (type === 'tcp reset') this.addDeps([DEP_TCP], rc, text);
    else if (rc.table.family === 'inet' && type === 'icmp') this.addDeps([nfDep('ipv4')], rc, text);
    else if (rc.table.family === 'inet' && type === 'icmpv6') this.addDeps([nfDep('ipv6')], rc, text);
  }

  private warn(rc: RuleCtx, code: string, message: string): void {
    if (rc.table.outOfScope) return; // one warning for the whole table is enough
    this.warnings.push({ code, message: `${rc.text}: ${message}`, origin: rc.origin });
  }

  private opaque(
    rc: RuleCtx,
    category: OpaqueCategory,
    text: string,
    reason: string,
    warn: boolean,
    outcome?: { readonly fresh: boolean; readonly otherwise: string },
    decide?: ExactOpaque,
  ): void {
    rc.matches.push({
      kind: 'opaque',
      category,
      reason,
      text,
      ...(outcome ? { fresh: outcome.fresh, otherwise: outcome.otherwise } : {}),
      ...(decide ? { decide } : {}),
    });
    if (warn) this.warn(rc, `nft-${category}`, `cannot model '${text}' (${reason}); the rule may or may not match`);
  }

  private addDeps(deps: readonly Dep[], rc: RuleCtx, text: string): void {
    for (const d of deps) {
      if (rc.depKeys.includes(d.key)) continue;
      rc.depKeys.push(d.key);
      // The dependency carries the text of the match that implies it: that is what the user wrote.
      rc.matches.push({ kind: 'field', field: d.field, op: 'eq', values: [d.value], text });
    }
  }

  /** Resolves a left-hand side to a model field, or returns why it cannot be modelled. */
  private resolveLeft(left: unknown, family: Family): FieldRef | string {
    if (!isObj(left)) return 'not an expression';
    const k = soleKey(left);
    const v = k === undefined ? undefined : left[k];
    if (k === 'payload' && isObj(v)) {
      const p = v.protocol;
      const f = v.field;
      if (typeof p !== 'string' || typeof f !== 'string') return 'raw payload expressions are not modelled';
      if (f === 'sport' || f === 'dport') {
        const dep = PORT_DEPS[p];
        if (dep) return { field: f, kind: 'port', deps: [dep] };
        if (p === 'th') return { field: f, kind: 'port', deps: [] };
      }
      if (p === 'ip' && (f === 'saddr' || f === 'daddr')) return { field: `ip.${f}`, kind: 'ipv4', deps: [] };
      if (p === 'ip6' && (f === 'saddr' || f === 'daddr')) return { field: `ip6.${f}`, kind: 'ipv6', deps: [] };
      if (p === 'icmp' && (f === 'type' || f === 'code')) {
        return { field: `icmp.${f}`, kind: f === 'type' ? 'icmpType' : 'icmpCode', deps: [DEP_ICMP] };
      }
      if (p === 'icmpv6' && (f === 'type' || f === 'code')) {
        return { field: `icmpv6.${f}`, kind: f === 'type' ? 'icmpv6Type' : 'icmpv6Code', deps: [DEP_ICMPV6] };
      }
      if (p === 'tcp' && f === 'flags') return { field: 'tcp.flags', kind: 'tcpflags', deps: [DEP_TCP] };
      // `ip protocol` / `ip6 nexthdr` only exist on packets of their family, which an inet table must check.
      if (p === 'ip' && f === 'protocol') {
        return { field: 'l4proto', kind: 'proto', deps: family === 'ip' ? [] : [nfDep('ipv4')] };
      }
      if (p === 'ip6' && f === 'nexthdr') {
        return { field: 'l4proto', kind: 'proto', deps: family === 'ip6' ? [] : [nfDep('ipv6')] };
      }
      return `field ${p} ${f} is not modelled`;
    }
    if (k === 'meta' && isObj(v)) {
      switch (v.key) {
        case 'iifname':
        case 'iif':
          return { field: 'iifname', kind: 'ifname', deps: [] };
        case 'oifname':
        case 'oif':
          return { field: 'oifname', kind: 'ifname', deps: [] };
        case 'l4proto':
          return { field: 'l4proto', kind: 'proto', deps: [] };
        case 'nfproto':
          return { field: 'nfproto', kind: 'nfproto', deps: [] };
        case 'protocol':
          return { field: 'nfproto', kind: 'ethertype', deps: [] };
        case 'mark':
          return { field: 'mark', kind: 'mark', deps: [] };
      }
      return `meta ${String(v.key)} is not modelled`;
    }
    if (k === 'ct' && isObj(v)) {
      if (v.key === 'state') return { field: 'ct.state', kind: 'ctstate', deps: [] };
      return `ct ${String(v.key)} is not modelled`;
    }
    if (k === 'fib' && isObj(v)) {
      const flags = v.flags;
      const only =
        Array.isArray(flags) && flags.length === 1 ? flags[0] : typeof flags === 'string' ? flags : undefined;
      if (v.result === 'type' && (only === 'daddr' || only === 'saddr')) {
        return { field: only === 'daddr' ? 'daddr.type' : 'saddr.type', kind: 'addrtype', deps: [] };
      }
      return `fib ${render(left, 0).slice(4)} is not modelled`;
    }
    if (k === '&' && Array.isArray(v) && v.length === 2) {
      const inner = this.resolveLeft(v[0], family);
      if (typeof inner === 'string') return inner;
      if (inner.mask !== undefined || (inner.kind !== 'mark' && inner.kind !== 'tcpflags')) {
        return `a bitmask on ${render(v[0], 0)} is not modelled`;
      }
      const mask = scalarOf(v[1], inner.kind);
      if (mask === undefined) return `mask ${render(v[1], 0)} is not understood`;
      return { ...inner, mask };
    }
    return `expression ${k ?? '?'} is not modelled`;
  }

  private convertMatch(m: Obj, rc: RuleCtx, at: At, text: string): void {
    const op = m.op === undefined ? '==' : m.op;
    if (typeof op !== 'string' || !['==', '!=', 'in', '<', '>', '<=', '>=', '!'].includes(op)) {
      this.fail(sub(at, 'match.op'), op, 'one of ==, !=, <, >, <=, >=, in, !');
    }
    const left = m.left;
    const right = m.right;
    if (isObj(left) && Array.isArray(left.concat)) {
      this.convertConcatMatch(left.concat, op, right, rc, text);
      return;
    }
    // ct state with a mask, or the flag ops `in`/`!`: decide per state, since a packet has exactly one.
    const ctMasked = isObj(left) && Array.isArray(left['&']) ? left['&'] : undefined;
    if (ctMasked && this.isCtState(ctMasked[0])) {
      this.convertCtStateMask(ctMasked[1], op, right, rc, text);
      return;
    }
    // `ip saddr & 255.255.255.0 == 10.0.0.0`: a contiguous netmask is a prefix (nft lists it as 10.0.0.0/24).
    const prefixed = maskedAddressAsPrefix(left, right, op);
    if (prefixed) {
      this.convertMatch({ op, left: prefixed.left, right: prefixed.right }, rc, at, text);
      return;
    }
    const ref = this.resolveLeft(left, rc.table.family);
    if (typeof ref === 'string') {
      const ct = ctMarkOutcome(left, right, op);
      if (ct) {
        this.opaque(rc, 'unsupported-field', text, `${ref}; a new connection's mark is 0`, false, ct);
        return;
      }
      const status = ctStatusOutcome(left, right, op);
      if (status) {
        this.opaque(rc, 'unsupported-field', text, status.reason, false, status, status.decide);
        return;
      }
      const header = headerOutcome(left, right, op);
      if (header) {
        // `ip hdrlength` exists only on IPv4 packets, which an inet table must check.
        if (header.decide.kind === 'constant' && rc.table.family !== 'ip') this.addDeps([nfDep('ipv4')], rc, text);
        this.opaque(rc, 'unsupported-field', text, header.reason, false, header, header.decide);
        return;
      }
      const option = tcpOptionOutcome(left, right, op);
      if (option) {
        this.opaque(rc, 'unsupported-field', text, option.reason, false, option, option.decide);
        if (option.deps) this.addDeps([DEP_TCP], rc, text);
        return;
      }
      this.opaque(rc, 'unsupported-field', text, ref, true);
      return;
    }
    let values: Element[] = [];
    let setName: string | undefined;
    let fop: 'eq' | 'ne' = op === '!=' || op === '!' ? 'ne' : 'eq';
    let mask = ref.mask;
    if (typeof right === 'string' && right.startsWith('@')) {
      setName = right.slice(1);
      const info = rc.table.sets.get(setName);
      if (!info || info.unusable !== undefined || info.kinds.length !== 1 || info.named.map) {
        const reason = !info
          ? `set @${setName} is not declared in table ${rc.table.family} ${rc.table.name}`
          : info.unusable !== undefined
            ? `set @${setName}: ${info.unusable}`
            : `set @${setName} has type ${info.named.types.join(' . ')}`;
        this.addDeps(ref.deps, rc, text);
        this.opaque(rc, 'unknown-set', text, reason, true);
        return;
      }
      for (const t of info.named.elements) values.push(t[0] as Element);
      if (op !== '==' && op !== '!=' && op !== 'in') this.fail(sub(at, 'match.op'), op, '== or != with a named set');
    } else if (op === '<' || op === '>' || op === '<=' || op === '>=') {
      const n = scalarOf(right, ref.kind);
      const max = KIND_MAX[ref.kind];
      if (n === undefined || max === undefined) {
        this.addDeps(ref.deps, rc, text);
        this.opaque(
          rc,
          'unsupported-expression',
          text,
          `cannot compare ${render(left, 0)} with ${render(right, 0)}`,
          true,
        );
        return;
      }
      const [lo, hi] = op === '<' ? [0n, n - 1n] : op === '<=' ? [0n, n] : op === '>' ? [n + 1n, max] : [n, max];
      // `< 0` or `> max` matches nothing: an empty eq set says exactly that.
      if (lo <= hi) values.push({ kind: 'range', lo, hi });
    } else if ((op === 'in' || op === '!') && ref.kind === 'tcpflags' && !isSetExpr(right)) {
      // Flag test: `tcp flags syn` (op in) is `(flags & syn) != 0`; op `!` is `(flags & syn) == 0`.
      const bits = scalarOf(right, 'tcpflags');
      if (bits === undefined) {
        this.addDeps(ref.deps, rc, text);
        this.opaque(rc, 'unsupported-expression', text, `value ${render(right, 0)} is not understood`, true);
        return;
      }
      mask = mask === undefined ? bits : mask & bits;
      values = [{ kind: 'range', lo: 0n, hi: 0n }];
      fop = op === 'in' ? 'ne' : 'eq';
    } else if (!addElements(right, ref.kind, values)) {
      this.addDeps(ref.deps, rc, text);
      this.opaque(rc, 'unsupported-expression', text, `value ${short(render(right, 0))} is not understood`, true);
      return;
    }
    this.addDeps(ref.deps, rc, text);
    const fm: { -readonly [K in keyof FieldMatch]: FieldMatch[K] } = {
      kind: 'field',
      field: ref.field,
      op: fop,
      values,
      text,
    };
    if (mask !== undefined) fm.mask = mask;
    if (setName !== undefined) fm.set = setName;
    if (fm.field === 'l4proto' && fop === 'eq' && mask === undefined && values.length === 1) {
      const v = values[0] as Element;
      if (v.kind === 'range' && v.lo === v.hi) rc.depKeys.push(`l4proto=${v.lo}`);
    }
    if (fm.field === 'nfproto' && fop === 'eq' && values.length === 1 && values[0]?.kind === 'symbol') {
      rc.depKeys.push(`nfproto=${values[0].value}`);
    }
    rc.matches.push(fm);
  }

  private isCtState(x: unknown): boolean {
    return isObj(x) && isObj(x.ct) && x.ct.key === 'state';
  }

  /**
   * `ct state & MASK op VALUE`. A packet has exactly one conntrack state (one bit), so the condition is decided per
   * state and the match lists the states for which it holds.
   */
  private convertCtStateMask(maskExpr: unknown, op: string, right: unknown, rc: RuleCtx, text: string): void {
    const mask = flagsOf(maskExpr, CT_STATE_BITS);
    const rightVals: bigint[] = [];
    const list = isObj(right) && Array.isArray(right.set) ? right.set : [right];
    for (const r of list) {
      const b = flagsOf(r, CT_STATE_BITS);
      if (b === undefined) {
        this.opaque(rc, 'unsupported-expression', text, `value ${render(r, 0)} is not understood`, true);
        return;
      }
      rightVals.push(b);
    }
    if (mask === undefined || !['==', '!=', 'in', '!'].includes(op)) {
      this.opaque(rc, 'unsupported-expression', text, 'this form of ct state test is not understood', true);
      return;
    }
    const states: Element[] = [];
    for (const [name, bit] of Object.entries(CT_STATE_BITS)) {
      const masked = BigInt(bit) & mask;
      const anyBits = rightVals.reduce((a, b) => a | b, 0n);
      const holds =
        op === '=='
          ? rightVals.includes(masked)
          : op === '!='
            ? !rightVals.includes(masked)
            : op === 'in'
              ? (masked & anyBits) !== 0n
              : (masked & anyBits) === 0n;
      if (holds) states.push({ kind: 'symbol', value: name });
    }
    rc.matches.push({ kind: 'field', field: 'ct.state', op: 'eq', values: states, text });
  }

  private convertConcatMatch(parts: readonly unknown[], op: string, right: unknown, rc: RuleCtx, text: string): void {
    const refs: FieldRef[] = [];
    for (const p of parts) {
      const r = this.resolveLeft(p, rc.table.family);
      if (typeof r === 'string' || r.mask !== undefined) {
        for (const x of refs) this.addDeps(x.deps, rc, text);
        this.opaque(
          rc,
          'unsupported-field',
          text,
          typeof r === 'string' ? r : 'masks inside a concatenation are not modelled',
          true,
        );
        return;
      }
      refs.push(r);
    }
    for (const r of refs) this.addDeps(r.deps, rc, text);
    if (op !== '==' && op !== '!=' && op !== 'in') {
      this.opaque(rc, 'unsupported-expression', text, `operator ${op} on a concatenation is not modelled`, true);
      return;
    }
    const fields = refs.map((r) => r.field);
    let tuples: Element[][] = [];
    let setName: string | undefined;
    if (typeof right === 'string' && right.startsWith('@')) {
      setName = right.slice(1);
      const info = rc.table.sets.get(setName);
      if (!info || info.unusable !== undefined || info.kinds.length !== refs.length || info.named.map) {
        const reason = !info
          ? `set @${setName} is not declared in table ${rc.table.family} ${rc.table.name}`
          : info.unusable !== undefined
            ? `set @${setName}: ${info.unusable}`
            : `set @${setName} has type ${info.named.types.join(' . ')}`;
        this.opaque(rc, 'unknown-set', text, reason, true);
        return;
      }
      tuples = info.named.elements;
    } else if (
      !addTuples(
        right,
        refs.map((r) => r.kind),
        tuples,
      )
    ) {
      this.opaque(rc, 'unsupported-expression', text, `value ${short(render(right, 0))} is not understood`, true);
      return;
    }
    const cm: ConcatMatch = {
      kind: 'concat',
      fields,
      op: op === '!=' ? 'ne' : 'eq',
      tuples,
      ...(setName !== undefined ? { set: setName } : {}),
      text,
    };
    rc.matches.push(cm);
  }

  private convertMangle(x: Obj, rc: RuleCtx, text: string): void {
    const v = x.mangle;
    const key = isObj(v) ? v.key : undefined;
    if (isObj(key) && isObj(key.meta) && key.meta.key === 'mark' && isObj(v)) {
      const value = v.value;
      const n = scalarOf(value, 'mark');
      if (n !== undefined) {
        rc.statements.push({ kind: 'set', field: 'mark', value: n, text });
        return;
      }
      // `meta mark set mark and A or B` is {"|": [{"&": [mark, A]}, B]}: new = (old & A) | B. The Statement's mask
      // holds the bits that are replaced (~A), so new = (old & ~mask) | value.
      const or = isObj(value) && Array.isArray(value['|']) ? value['|'] : undefined;
      const and = or && isObj(or[0]) && Array.isArray(or[0]['&']) ? or[0]['&'] : undefined;
      const keep =
        and && isObj(and[0]) && isObj(and[0].meta) && and[0].meta.key === 'mark' ? scalarOf(and[1], 'mark') : undefined;
      const set = or ? scalarOf(or[1], 'mark') : undefined;
      if (keep !== undefined && set !== undefined) {
        rc.statements.push({ kind: 'set', field: 'mark', value: set, mask: ~keep & 0xffffffffn, text });
        return;
      }
      rc.statements.push({ kind: 'other', text });
      this.warn(
        rc,
        'nft-unsupported-expression',
        `cannot model the mark set by '${text}'; later mark matches may be wrong`,
      );
      return;
    }
    rc.statements.push({ kind: 'other', text });
  }

  private simpleVerdict(x: unknown, t: TableB, at: At): SimpleVerdict {
    const k = isObj(x) ? soleKey(x) : undefined;
    const v = isObj(x) && k !== undefined ? x[k] : undefined;
    switch (k) {
      case 'accept':
      case 'drop':
      case 'continue':
      case 'return':
        return { kind: k };
      case 'queue':
        return { kind: 'queue' };
      case 'reject': {
        if (!isObj(v)) return { kind: 'reject' };
        const s = render(x, 0);
        return s === 'reject' ? { kind: 'reject' } : { kind: 'reject', with: s.slice('reject with '.length) };
      }
      case 'jump':
      case 'goto': {
        const target = isObj(v) ? v.target : undefined;
        if (typeof target !== 'string' || target === '') this.fail(sub(at, `${k}.target`), target, 'a chain name');
        this.jumps.push({ table: t, target, at });
        return { kind: k, target };
      }
    }
    return this.fail(at, x, 'a verdict (accept, drop, reject, queue, continue, return, jump, goto)');
  }

  /**
   * A nat statement. A map-valued target (`dnat to ip saddr map @m`, `dnat ip to tcp dport map { 80 : 10.0.0.2 }`)
   * has no fixed address: the verdict then carries neither addr nor port, which the tracer treats as a computed
   * target (uncertain). The kernel compiles the map as a lookup that ends the rule on a miss (`lookup reg 1 set m
   * dreg 1`, checked with nft --debug=netlink), so the nat only happens for packets whose key is in the map: that
   * is a match on the map's keys, added here so that packets outside the map are decided exactly.
   */
  private natVerdict(type: NatType, v: unknown, rc: RuleCtx, text: string): NatVerdict {
    const o = isObj(v) ? v : {};
    let family: L3 | undefined =
      o.family === 'ip'
        ? 'ipv4'
        : o.family === 'ip6'
          ? 'ipv6'
          : rc.table.family === 'ip'
            ? 'ipv4'
            : rc.table.family === 'ip6'
              ? 'ipv6'
              : undefined;
    const addrMap = isNatMap(o.addr);
    const portMap = isNatMap(o.port);
    if (addrMap) this.convertNatMapKey(o.addr, rc);
    if (portMap) this.convertNatMapKey(o.port, rc);
    let addr: { lo: bigint; hi: bigint } | undefined;
    if (addrMap) {
      this.warn(
        rc,
        'nft-unsupported-expression',
        `the translated address of '${text}' comes from a map lookup and is not modelled`,
      );
    } else if (o.addr !== undefined) {
      for (const fam of family ? [family] : (['ipv4', 'ipv6'] as const)) {
        const els: Element[] = [];
        if (addElements(o.addr, fam, els) && els.length === 1 && els[0]?.kind === 'range') {
          addr = { lo: els[0].lo, hi: els[0].hi };
          family = fam;
          break;
        }
      }
      if (!addr) this.warn(rc, 'nft-unsupported-expression', `the translated address of '${text}' is not modelled`);
    }
    let port: { lo: number; hi: number } | undefined;
    // With a map-valued address the port alone would let a trace go on as if the address were kept: leave both
    // out, so the target reads as computed.
    if (o.port !== undefined && !addrMap) {
      const els: Element[] = [];
      if (!portMap && addElements(o.port, 'port', els) && els.length === 1 && els[0]?.kind === 'range') {
        port = { lo: Number(els[0].lo), hi: Number(els[0].hi) };
      } else this.warn(rc, 'nft-unsupported-expression', `the translated port of '${text}' is not modelled`);
    }
    return {
      kind: 'nat',
      type,
      ...(family ? { family } : {}),
      ...(addr ? { addr } : {}),
      ...(port ? { port } : {}),
      text,
    };
  }

  /** The match "the lookup key of this nat map is in the map", or an opaque condition when it cannot be modelled. */
  private convertNatMapKey(m: unknown, rc: RuleCtx): void {
    const body = isObj(m) && isObj(m.map) ? m.map : {};
    const key = body.key;
    const data = body.data;
    const text = render(m, 0);
    const parts = isObj(key) && Array.isArray(key.concat) ? key.concat : [key];
    const refs: FieldRef[] = [];
    for (const p of parts) {
      const r = this.resolveLeft(p, rc.table.family);
      if (typeof r === 'string' || r.mask !== undefined) {
        for (const x of refs) this.addDeps(x.deps, rc, text);
        this.opaque(rc, 'unsupported-field', text, `nat map key: ${typeof r === 'string' ? r : 'masked key'}`, true);
        return;
      }
      refs.push(r);
    }
    for (const r of refs) this.addDeps(r.deps, rc, text);
    const kinds = refs.map((r) => r.kind);
    let tuples: Element[][] = [];
    let setName: string | undefined;
    if (typeof data === 'string' && data.startsWith('@')) {
      setName = data.slice(1);
      const info = rc.table.sets.get(setName);
      if (!info?.named.map || info.unusable !== undefined || info.kinds.length !== kinds.length) {
        const reason = !info
          ? `map @${setName} is not declared in table ${rc.table.family} ${rc.table.name}`
          : info.unusable !== undefined
            ? `map @${setName}: ${info.unusable}`
            : `@${setName} is not a map for this key`;
        this.opaque(rc, 'unknown-set', text, `${reason}; the nat happens only for keys in the map`, true);
        return;
      }
      tuples = info.named.elements;
    } else if (
      !(isObj(data) && Array.isArray(data.set)) ||
      !data.set.every((pair) => Array.isArray(pair) && pair.length === 2 && addTuples(pair[0], kinds, tuples))
    ) {
      this.opaque(rc, 'unsupported-expression', text, `nat map ${short(render(data, 0))} is not understood`, true);
      return;
    }
    const fields = refs.map((r) => r.field);
    if (fields.length === 1) {
      const fm: { -readonly [K in keyof FieldMatch]: FieldMatch[K] } = {
        kind: 'field',
        field: fields[0] as Field,
        op: 'eq',
        values: tuples.map((t) => t[0] as Element),
        text,
      };
      if (setName !== undefined) fm.set = setName;
      rc.matches.push(fm);
    } else {
      rc.matches.push({
        kind: 'concat',
        fields,
        op: 'eq',
        tuples,
        ...(setName !== undefined ? { set: setName } : {}),
        text,
      });
    }
  }

  private convertVmap(v: unknown, rc: RuleCtx, at: At, text: string): void {
    if (!isObj(v) || v.key === undefined || v.data === undefined)
      this.fail(at, v, 'a vmap object {"key": ..., "data": ...}');
    const keyParts = isObj(v.key) && Array.isArray(v.key.concat) ? v.key.concat : [v.key];
    const refs: FieldRef[] = [];
    for (const p of keyParts) {
      const r = this.resolveLeft(p, rc.table.family);
      if (typeof r === 'string' || r.mask !== undefined) {
        // Without a key field the verdict cannot be modelled: keep an opaque condition, drop the verdict, and say
        // in the warning that the rule may decide (VMAP_UNKNOWN) so nobody mistakes it for a no-op.
        this.opaque(
          rc,
          'unsupported-field',
          text,
          (typeof r === 'string' ? r : 'masked vmap keys are not modelled') + VMAP_UNKNOWN,
          true,
        );
        return;
      }
      refs.push(r);
    }
    for (const r of refs) this.addDeps(r.deps, rc, text);
    const kinds = refs.map((r) => r.kind);
    const data = v.data;
    let entries: VmapEntry[] = [];
    let setName: string | undefined;
    if (typeof data === 'string' && data.startsWith('@')) {
      setName = data.slice(1);
      const info = rc.table.sets.get(setName);
      if (info?.named.map?.type !== 'verdict' || info.unusable !== undefined || info.kinds.length !== kinds.length) {
        const reason = !info
          ? `map @${setName} is not declared in table ${rc.table.family} ${rc.table.name}`
          : info.unusable !== undefined
            ? `map @${setName}: ${info.unusable}`
            : `@${setName} is not a verdict map for this key`;
        this.opaque(rc, 'unknown-set', text, reason + VMAP_UNKNOWN, true);
        return;
      }
      entries = info.vmapEntries;
    } else if (isObj(data) && Array.isArray(data.set)) {
      const list = data.set;
      for (let i = 0; i < list.length; i++) {
        const pair = list[i];
        const pat = sub(at, `vmap.data.set[${i}]`);
        if (!Array.isArray(pair) || pair.length !== 2) this.fail(pat, pair, 'a [key, verdict] pair');
        const tuples: Element[][] = [];
        if (!addTuples(pair[0], kinds, tuples)) {
          this.opaque(
            rc,
            'unsupported-expression',
            text,
            `vmap key ${render(pair[0], 0)} is not understood${VMAP_UNKNOWN}`,
            true,
          );
          return;
        }
        const verdict = this.simpleVerdict(pair[1], rc.table, pat);
        for (const key of tuples) entries.push({ key, verdict });
      }
    } else {
      this.opaque(
        rc,
        'unsupported-expression',
        text,
        `vmap data is neither a named map nor an anonymous one${VMAP_UNKNOWN}`,
        true,
      );
      return;
    }
    rc.verdict = {
      kind: 'vmap',
      fields: refs.map((r) => r.field),
      entries,
      ...(setName !== undefined ? { set: setName } : {}),
      text,
    };
  }
}

function isNatMap(v: unknown): boolean {
  return isObj(v) && isObj(v.map);
}

const VMAP_UNKNOWN = '; the verdict it may give (accept, drop, jump, ...) is not modelled';

function isSetExpr(v: unknown): boolean {
  return isObj(v) && Array.isArray(v.set);
}

function sub(at: At, key: string): At {
  return at.sub(key);
}

/**
 * A stateful statement that gates a rule (`limit`, `quota`, `ct count`), for an ordinary new connection from a fresh
 * source: `limit rate 10/second` passes (the bucket is full), `limit rate over 10/second` does not (it matches only
 * above the rate), `ct count 5` passes and `ct count over 5` does not (the connection is the first), `quota` likewise.
 */
function gateOutcome(g: unknown): { fresh: boolean; otherwise: string; reason: string } {
  const k = isObj(g) ? soleKey(g) : undefined;
  const v = k !== undefined && isObj(g) ? g[k] : undefined;
  const o = isObj(v) ? v : undefined;
  const over = o?.inv === true;
  if (k === 'limit') {
    const unit = typeof o?.rate_unit === 'string' && o.rate_unit !== 'packets' ? ` ${o.rate_unit}` : '';
    const rate = `${String(o?.rate ?? '?')}${unit}/${String(o?.per ?? 'second')}`;
    return over
      ? {
          fresh: false,
          otherwise: `above ${rate}`,
          reason: `matches only once the rate is over ${rate}`,
        }
      : {
          fresh: true,
          otherwise: `above ${rate}`,
          reason: `matches only while the rate is under ${rate}`,
        };
  }
  if (k === 'ct count') {
    const n = typeof o?.val === 'number' ? o.val : 0;
    return over
      ? {
          fresh: n < 1,
          otherwise: `with more than ${n} connections`,
          reason: `matches only with more than ${n} tracked connections`,
        }
      : {
          fresh: n >= 1,
          otherwise: `with more than ${n} connections`,
          reason: `matches only with at most ${n} tracked connections`,
        };
  }
  const val = `${String(o?.val ?? '?')} ${String(o?.val_unit ?? 'bytes')}`;
  return over
    ? { fresh: false, otherwise: `after ${val}`, reason: `matches only after ${val} were counted` }
    : { fresh: true, otherwise: `after ${val}`, reason: `matches only until ${val} were counted` };
}

/** `addr & mask == value` with a contiguous mask, as the prefix match nft itself makes of it; else undefined. */
function maskedAddressAsPrefix(
  left: unknown,
  right: unknown,
  op: string,
): { left: unknown; right: unknown } | undefined {
  if ((op !== '==' && op !== '!=') || !isObj(left) || !Array.isArray(left['&']) || left['&'].length !== 2)
    return undefined;
  const [inner, mask] = left['&'] as [unknown, unknown];
  const p = isObj(inner) && isObj(inner.payload) ? inner.payload : undefined;
  if (!p || (p.protocol !== 'ip' && p.protocol !== 'ip6') || (p.field !== 'saddr' && p.field !== 'daddr'))
    return undefined;
  if (typeof mask !== 'string' || typeof right !== 'string') return undefined;
  const m = parseAddress(mask);
  const a = parseAddress(right);
  if (!m || !a || m.family !== a.family || m.family !== (p.protocol === 'ip' ? 'ipv4' : 'ipv6')) return undefined;
  const bits = m.family === 'ipv4' ? 32 : 128;
  let len = 0;
  while (len < bits && (m.value >> BigInt(bits - 1 - len)) & 1n) len++;
  const expected = len === 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(bits - len);
  if (m.value !== expected || (a.value & ~expected) !== 0n) return undefined;
  return { left: inner, right: { prefix: { addr: right, len } } };
}

/**
 * `ct mark [& mask] OP value`: the connection's mark, which the model does not track. A new connection starts with
 * mark 0, so its outcome for a fresh connection is known; one whose mark a rule set may differ.
 */
function ctMarkOutcome(left: unknown, right: unknown, op: string): { fresh: boolean; otherwise: string } | undefined {
  const isCtMark = (e: unknown): boolean => isObj(e) && isObj(e.ct) && e.ct.key === 'mark' && e.ct.dir === undefined;
  let mask = 0xffffffff;
  if (isObj(left) && Array.isArray(left['&']) && left['&'].length === 2 && isCtMark(left['&'][0])) {
    if (typeof left['&'][1] !== 'number') return undefined;
    mask = left['&'][1];
  } else if (!isCtMark(left)) return undefined;
  const vals = isObj(right) && Array.isArray(right.set) ? right.set : [right];
  if (!vals.every((x) => typeof x === 'number')) return undefined;
  const hit = vals.some((x) => (0 & mask) >>> 0 === (x as number) >>> 0);
  let fresh: boolean;
  if (op === '==' || op === 'in') fresh = hit;
  else if (op === '!=') fresh = !hit;
  else return undefined;
  return { fresh, otherwise: 'on a connection whose mark a rule has set' };
}

/**
 * `ct status dnat`, `ct status != snat`, `ct status & (dnat|snat) != 0`: a new connection has no status bit set, but
 * dnat once a nat rule rewrote its destination on the path; the tracer knows the path (`decide`), the engine takes
 * the outcome of a connection no nat touched.
 */
function ctStatusOutcome(
  left: unknown,
  right: unknown,
  op: string,
): { fresh: boolean; otherwise: string; reason: string; decide: ExactOpaque } | undefined {
  if (!isObj(left) || !isObj(left.ct) || left.ct.key !== 'status') return undefined;
  const bits = (Array.isArray(right) ? right : [right]).filter((x): x is string => typeof x === 'string');
  if (bits.length === 0) return undefined;
  let negate: boolean;
  if (op === '==' || op === 'in') negate = false;
  else if (op === '!=' || op === '!') negate = true;
  else return undefined;
  return {
    fresh: negate,
    otherwise: `on a connection with status ${bits.join(' or ')}`,
    reason: `conntrack status ${bits.join(',')}: a new connection has no status bit set unless a nat rule rewrote it`,
    decide: { kind: 'ct-status', bits, negate },
  };
}

const TCP_OPTION_KINDS: Readonly<Record<string, number>> = {
  eol: 0,
  nop: 1,
  maxseg: 2,
  window: 3,
  'sack-perm': 4,
  sack: 5,
  sack0: 5,
  timestamp: 8,
};

/** `tcp option maxseg exists`, `tcp option 64 missing`: decided against the packet's options. */
function tcpOptionOutcome(
  left: unknown,
  right: unknown,
  op: string,
): { fresh: boolean; otherwise: string; reason: string; decide: ExactOpaque; deps: boolean } | undefined {
  if (!isObj(left) || !isObj(left['tcp option'])) return undefined;
  const t = left['tcp option'];
  if (t.field !== undefined || typeof right !== 'boolean' || (op !== '==' && op !== '!=')) return undefined;
  const name = t.name;
  const n = typeof name === 'number' ? name : typeof name === 'string' ? TCP_OPTION_KINDS[name] : undefined;
  if (n === undefined) return undefined;
  const negate = right !== (op === '==');
  const has = DEFAULT_SYN_TCP_OPTIONS.includes(n);
  return {
    fresh: has !== negate,
    otherwise: `on a segment ${has ? 'without' : 'with'} TCP option ${n}`,
    reason: `TCP option ${n} ${negate ? 'missing' : 'present'} (an ordinary SYN carries ${DEFAULT_SYN_TCP_OPTIONS.join(', ')})`,
    decide: { kind: 'tcp-option', option: n, negate },
    deps: true,
  };
}

/**
 * `meta pkttype { broadcast, multicast }` and `ip hdrlength != 5`: properties of the packet the model has no field for
 * but knows for the packets it has: a packet to the host (or routed through it) is of type host unless addressed to a
 * broadcast or multicast address, and carries no IP options (header length 5).
 */
function headerOutcome(
  left: unknown,
  right: unknown,
  op: string,
): { fresh: boolean; otherwise: string; reason: string; decide: ExactOpaque } | undefined {
  if (!isObj(left)) return undefined;
  const negate = op === '!=';
  if (op !== '==' && op !== '!=' && op !== 'in') return undefined;
  if (isObj(left.meta) && left.meta.key === 'pkttype') {
    const vals = (isObj(right) && Array.isArray(right.set) ? right.set : Array.isArray(right) ? right : [right]).filter(
      (x): x is string => typeof x === 'string',
    );
    if (vals.length === 0) return undefined;
    return {
      fresh: vals.includes('host') !== negate,
      otherwise: `on a packet of type ${['host', 'broadcast', 'multicast'].filter((t) => vals.includes(t) === negate).join(' or ') || 'other'}`,
      reason: 'packet type: host for a packet to this host, broadcast or multicast by its destination',
      decide: { kind: 'pkttype', values: vals, negate },
    };
  }
  if (isObj(left.payload) && left.payload.protocol === 'ip' && left.payload.field === 'hdrlength') {
    if (typeof right !== 'number') return undefined;
    const holds = (right === 5) !== negate;
    return {
      fresh: holds,
      otherwise: 'on a packet with IP options',
      reason: 'IPv4 header length: 5 (20 bytes) on a packet without IP options, as the model has them',
      decide: { kind: 'constant', holds },
    };
  }
  return undefined;
}
