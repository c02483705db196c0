/**
 * Parser for `ipset save` output (the format `ipset restore` reads): `create NAME TYPE [options]` and
 * `add NAME ELEMENT [options]` lines. The iptables-save parser resolves `-m set --match-set NAME dirs` against it.
 */
import { ParseError } from '../../errors.js';
import type { Element, L3, NamedSet, SetType, Warning } from '../model.js';
import { L4_PROTOCOLS } from '../model.js';
import { parseAddressRange, prefixRange, rangeElement } from '../values.js';
import { own, scanWord, type WordEnd } from './common.js';

/**
 * One dimension of an ipset type, as addressed by one src/dst flag of `--match-set`.
 * - `ip`/`net`: an address (one column);
 * - `port`: hash:*,port ports, stored with their protocol (two columns: protocol, port; `80` means `tcp:80`);
 * - `bport`: bitmap:port ports (one column; the kernel only looks at TCP and UDP packets);
 * - `iface`: an interface name (`physdev:` entries are kept as names but make the set opaque to the model);
 * - `mark`, `mac`: a packet mark or a MAC address.
 */
export type IpsetDim = 'ip' | 'net' | 'port' | 'bport' | 'iface' | 'mark' | 'mac';

export interface Ipset {
  readonly name: string;
  /** The ipset type as written, e.g. `hash:ip,port` or `list:set`. */
  readonly type: string;
  readonly family: L3;
  /** Empty for list:set. */
  readonly dims: readonly IpsetDim[];
  /** Columns and elements in model form. For list:set the elements are the member set names (symbols). */
  readonly set: NamedSet;
  /** list:set members, in order. */
  readonly members?: readonly string[];
  /**
   * Why the model cannot use the elements exactly (a `physdev:` interface, `nomatch` in a multi-dimensional set,
   * a MAC dimension), if it cannot.
   */
  readonly opaque?: string;
}

export interface IpsetSave {
  readonly file: string;
  readonly sets: ReadonlyMap<string, Ipset>;
  readonly warnings: readonly Warning[];
}

interface Tok {
  readonly s: string;
  readonly col: number;
}

const WORD_END: WordEnd = { i: 0, quoted: false };

/** Splits one line like a shell would for ipset restore: whitespace-separated, double quotes with `\` escapes. */
function tokenize(line: string, file: string, lineNo: number): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    const c = line.charCodeAt(i);
    if (c === 32 || c === 9) {
      i++;
      continue;
    }
    const start = i;
    const s = scanWord(line, start, i, file, lineNo, WORD_END);
    i = WORD_END.i;
    out.push({ s, col: start + 1 });
  }
  return out;
}

/** Create options that take one argument; the others (`counters`, `comment`, `forceadd`, ...) are flags. */
const CREATE_ARG_OPTS = new Set([
  'family',
  'hashsize',
  'maxelem',
  'netmask',
  'bitmask',
  'timeout',
  'range',
  'size',
  'bucketsize',
  'initval',
  'markmask',
]);
const CREATE_FLAG_OPTS = new Set(['counters', 'comment', 'skbinfo', 'forceadd']);
const ADD_ARG_OPTS = new Set([
  'timeout',
  'packets',
  'bytes',
  'comment',
  'skbmark',
  'skbprio',
  'skbqueue',
  'before',
  'after',
]);

const DIM_NAMES: Readonly<Record<string, IpsetDim>> = {
  ip: 'ip',
  net: 'net',
  port: 'port',
  iface: 'iface',
  mark: 'mark',
  mac: 'mac',
};

function dimTypes(dim: IpsetDim, family: L3): SetType[] {
  switch (dim) {
    case 'ip':
    case 'net':
      return [family === 'ipv4' ? 'ipv4_addr' : 'ipv6_addr'];
    case 'port':
      return ['inet_proto', 'inet_service'];
    case 'bport':
      return ['inet_service'];
    case 'iface':
      return ['ifname'];
    case 'mark':
      return ['mark'];
    case 'mac':
      return ['ether_addr'];
  }
}

interface Pending {
  name: string;
  type: string;
  family: L3;
  dims: IpsetDim[];
  types: SetType[];
  netmask?: number;
  elements: Element[][];
  /** Element index -> true for `nomatch` elements (hash:net*). */
  nomatch: boolean[];
  members: string[];
  opaque?: string;
  line: number;
}

/** Parses `ipset save` output. Unknown commands, types and malformed elements are ParseErrors. */
export function parseIpsetSave(text: string, file: string): IpsetSave {
  const pending = new Map<string, Pending>();
  const warnings: Warning[] = [];
  const lines = text.split('\n');
  for (let li = 0; li < lines.length; li++) {
    const lineNo = li + 1;
    let line = lines[li] ?? '';
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed === 'COMMIT') continue;
    const toks = tokenize(line, file, lineNo);
    const cmd = toks[0]!;
    const nameTok = toks[1];
    if (cmd.s !== 'create' && cmd.s !== 'add' && cmd.s !== '-N' && cmd.s !== '-A') {
      throw new ParseError(file, lineNo, cmd.col, cmd.s, "'create' or 'add' (ipset save output)");
    }
    if (!nameTok) throw new ParseError(file, lineNo, line.length + 1, '', 'a set name');
    if (cmd.s === 'create' || cmd.s === '-N') {
      const typeTok = toks[2];
      if (!typeTok) throw new ParseError(file, lineNo, line.length + 1, '', 'a set type such as hash:ip');
      if (pending.has(nameTok.s)) {
        throw new ParseError(file, lineNo, nameTok.col, nameTok.s, 'a set name not created before');
      }
      const p = parseCreate(toks, file, lineNo);
      pending.set(p.name, p);
      continue;
    }
    const p = pending.get(nameTok.s);
    if (!p) throw new ParseError(file, lineNo, nameTok.col, nameTok.s, "a set declared by an earlier 'create' line");
    const elTok = toks[2];
    if (!elTok) throw new ParseError(file, lineNo, line.length + 1, '', `an element of ${p.type}`);
    let nomatch = false;
    for (let i = 3; i < toks.length; i++) {
      const o = toks[i]!;
      if (o.s === 'nomatch') nomatch = true;
      else if (ADD_ARG_OPTS.has(o.s)) {
        if (!toks[i + 1]) throw new ParseError(file, lineNo, line.length + 1, '', `an argument for '${o.s}'`);
        i++;
      } else {
        throw new ParseError(file, lineNo, o.col, o.s, 'an element option (timeout, packets, bytes, comment, nomatch)');
      }
    }
    if (p.type === 'list:set') {
      p.members.push(elTok.s);
      p.elements.push([{ kind: 'symbol', value: elTok.s }]);
      p.nomatch.push(false);
      continue;
    }
    p.elements.push(parseElement(p, elTok, file, lineNo));
    p.nomatch.push(nomatch);
  }

  const sets = new Map<string, Ipset>();
  for (const p of pending.values()) {
    for (const m of p.members) {
      if (!pending.has(m)) {
        warnings.push({
          code: 'ipset-unknown-member',
          message: `list:set '${p.name}' names '${m}', which this file does not create`,
          origin: { file, line: p.line },
        });
      }
    }
    let elements: (readonly Element[])[] = p.elements;
    let opaque = p.opaque;
    if (p.nomatch.some((x) => x)) {
      if (p.dims.length === 1) elements = applyNomatch(p.elements, p.nomatch);
      else opaque ??= `'nomatch' entries in the ${p.dims.length}-dimensional set '${p.name}'`;
    }
    const flags: string[] = [];
    if (p.dims.includes('net') || p.dims.includes('port') || p.dims.includes('bport')) flags.push('interval');
    const set: NamedSet = {
      kind: 'set',
      name: p.name,
      types: p.type === 'list:set' ? ['list:set'] : p.types,
      flags,
      elements,
      origin: { file, line: p.line, column: 1 },
    };
    sets.set(p.name, {
      name: p.name,
      type: p.type,
      family: p.family,
      dims: p.dims,
      set,
      ...(p.type === 'list:set' ? { members: p.members } : {}),
      ...(opaque ? { opaque } : {}),
    });
  }
  return { file, sets, warnings };
}

function parseCreate(toks: readonly Tok[], file: string, lineNo: number): Pending {
  const nameTok = toks[1]!;
  const typeTok = toks[2]!;
  const type = typeTok.s;
  let family: L3 = 'ipv4';
  let netmask: number | undefined;
  for (let i = 3; i < toks.length; i++) {
    const o = toks[i]!;
    if (CREATE_FLAG_OPTS.has(o.s)) continue;
    if (!CREATE_ARG_OPTS.has(o.s)) {
      throw new ParseError(file, lineNo, o.col, o.s, 'a create option (family, hashsize, maxelem, netmask, ...)');
    }
    const arg = toks[i + 1];
    if (!arg) throw new ParseError(file, lineNo, o.col + o.s.length, '', `an argument for '${o.s}'`);
    i++;
    if (o.s === 'family') {
      if (arg.s === 'inet') family = 'ipv4';
      else if (arg.s === 'inet6') family = 'ipv6';
      else throw new ParseError(file, lineNo, arg.col, arg.s, "'inet' or 'inet6'");
    } else if (o.s === 'netmask') {
      netmask = Number(arg.s);
      if (!/^\d{1,3}$/.test(arg.s)) throw new ParseError(file, lineNo, arg.col, arg.s, 'a prefix length');
    }
  }
  const p: Pending = {
    name: nameTok.s,
    type,
    family,
    dims: [],
    types: [],
    elements: [],
    nomatch: [],
    members: [],
    line: lineNo,
  };
  if (netmask !== undefined) p.netmask = netmask;
  if (type === 'list:set') return p;
  const colon = type.indexOf(':');
  const method = type.slice(0, colon);
  if (colon < 0 || (method !== 'hash' && method !== 'bitmap')) {
    throw new ParseError(
      file,
      lineNo,
      typeTok.col,
      type,
      'an ipset type (hash:ip, hash:net, hash:ip,port, bitmap:port, list:set, ...)',
    );
  }
  for (const d of type.slice(colon + 1).split(',')) {
    let dim = DIM_NAMES[d];
    if (!dim) {
      throw new ParseError(file, lineNo, typeTok.col, type, 'an ipset type made of ip, net, port, iface, mark, mac');
    }
    if (dim === 'port' && method === 'bitmap') dim = 'bport';
    p.dims.push(dim);
    p.types.push(...dimTypes(dim, family));
  }
  if (p.dims.includes('mac')) p.opaque = `the MAC address dimension of '${p.name}'`;
  return p;
}

function parsePortNumber(s: string): number | undefined {
  if (!/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

function parseElement(p: Pending, tok: Tok, file: string, lineNo: number): Element[] {
  const parts = tok.s.split(',');
  if (parts.length !== p.dims.length) {
    throw new ParseError(
      file,
      lineNo,
      tok.col,
      tok.s,
      `an element of ${p.type} (${p.dims.length} comma-separated parts)`,
    );
  }
  const out: Element[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const dim = p.dims[i]!;
    const bad = (what: string): never => {
      throw new ParseError(file, lineNo, tok.col, tok.s, what);
    };
    switch (dim) {
      case 'ip':
      case 'net': {
        const r = parseAddressRange(part);
        if (!r || r.family !== p.family) bad(`an ${p.family === 'ipv4' ? 'IPv4' : 'IPv6'} address or prefix`);
        let { lo, hi } = r!;
        if (p.netmask !== undefined && dim === 'ip') {
          ({ lo, hi } = prefixRange(p.family, lo, p.netmask));
        }
        out.push(rangeElement(lo, hi));
        break;
      }
      case 'port': {
        const colon = part.indexOf(':');
        const protoName = colon < 0 ? 'tcp' : part.slice(0, colon);
        const portText = colon < 0 ? part : part.slice(colon + 1);
        // L4_PROTOCOLS holds the names ipset prints (ipv6-icmp among them).
        const proto = /^\d+$/.test(protoName) ? Number(protoName) : own(L4_PROTOCOLS, protoName);
        if (proto === undefined || proto > 255) bad('a protocol:port element such as tcp:80');
        out.push(rangeElement(proto!));
        const dash = portText.indexOf('-');
        const lo = parsePortNumber(dash < 0 ? portText : portText.slice(0, dash));
        const hi = dash < 0 ? lo : parsePortNumber(portText.slice(dash + 1));
        if (lo === undefined || hi === undefined || lo > hi) {
          if (proto === 1 || proto === 58) {
            // ICMP type/code stored in the port column: valid ipset, but not a port; the set becomes opaque.
            p.opaque ??= `ICMP entries in the port dimension of '${p.name}'`;
            out.push(rangeElement(0));
            break;
          }
          bad('a port or port range');
        }
        out.push(rangeElement(lo!, hi!));
        break;
      }
      case 'bport': {
        const dash = part.indexOf('-');
        const lo = parsePortNumber(dash < 0 ? part : part.slice(0, dash));
        const hi = dash < 0 ? lo : parsePortNumber(part.slice(dash + 1));
        if (lo === undefined || hi === undefined || lo > hi) bad('a port or port range');
        out.push(rangeElement(lo!, hi!));
        break;
      }
      case 'iface': {
        if (part.startsWith('physdev:')) {
          p.opaque ??= `bridge port (physdev:) entries in '${p.name}'`;
          out.push({ kind: 'name', value: part.slice(8), wildcard: false });
        } else {
          if (part === '' || part.length > 15) bad('an interface name');
          out.push({ kind: 'name', value: part, wildcard: false });
        }
        break;
      }
      case 'mark': {
        if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(part)) bad('a mark value');
        out.push(rangeElement(BigInt(part)));
        break;
      }
      case 'mac':
        out.push({ kind: 'symbol', value: part.toLowerCase() });
        break;
    }
  }
  return out;
}

/**
 * hash:net lookups try the most specific prefix first, so a `nomatch` entry excludes its prefix from any wider
 * entry and a narrower positive entry inside it is included again. Applying entries from the widest to the
 * narrowest (add for positive, subtract for nomatch) gives the same set of addresses.
 */
function applyNomatch(elements: readonly Element[][], nomatch: readonly boolean[]): Element[][] {
  const items = elements.map((e, i) => ({ el: e[0]!, no: nomatch[i] === true }));
  const width = (e: Element) => (e.kind === 'range' ? e.hi - e.lo : 0n);
  items.sort((a, b) => (width(a.el) > width(b.el) ? -1 : width(a.el) < width(b.el) ? 1 : 0));
  let ranges: { lo: bigint; hi: bigint }[] = [];
  for (const { el, no } of items) {
    if (el.kind !== 'range') continue;
    const next: { lo: bigint; hi: bigint }[] = [];
    for (const r of ranges) {
      if (r.hi < el.lo || r.lo > el.hi) next.push(r);
      else {
        if (r.lo < el.lo) next.push({ lo: r.lo, hi: el.lo - 1n });
        if (r.hi > el.hi) next.push({ lo: el.hi + 1n, hi: r.hi });
      }
    }
    if (!no) next.push({ lo: el.lo, hi: el.hi });
    ranges = next;
  }
  ranges.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  return ranges.map((r) => [rangeElement(r.lo, r.hi)]);
}

function dimShape(dims: readonly IpsetDim[]): string {
  return dims.map((d) => (d === 'net' ? 'ip' : d)).join();
}

/** The elements of a set in model form, with list:set members flattened. */
export interface ResolvedIpset {
  readonly family: L3;
  readonly dims: readonly IpsetDim[];
  readonly types: readonly SetType[];
  readonly elements: readonly (readonly Element[])[];
}

/**
 * Resolves a set for matching: list:set members are unioned when they all have the same family and dimensions.
 * Returns a string (the reason) when the model cannot represent the set exactly.
 */
export function resolveIpset(
  save: IpsetSave,
  name: string,
  seen: ReadonlySet<string> = new Set(),
): ResolvedIpset | string {
  const s = save.sets.get(name);
  if (!s) return `set '${name}' is not in ${save.file}`;
  if (s.opaque) return s.opaque;
  if (!s.members) return { family: s.family, dims: s.dims, types: s.set.types, elements: s.set.elements };
  if (seen.has(name)) return `list:set '${name}' contains itself`;
  const inner = new Set(seen).add(name);
  let acc: ResolvedIpset | undefined;
  const elements: (readonly Element[])[] = [];
  for (const m of s.members) {
    const r = resolveIpset(save, m, inner);
    if (typeof r === 'string') return r;
    // hash:ip and hash:net members match the same way (an address in a range): only the shape must agree.
    if (acc && (acc.family !== r.family || dimShape(acc.dims) !== dimShape(r.dims))) {
      return `list:set '${name}' mixes member types (${acc.dims.join(',')} and ${r.dims.join(',')})`;
    }
    acc ??= r;
    elements.push(...r.elements);
  }
  if (!acc)
    return { family: s.family, dims: ['ip'], types: [s.family === 'ipv4' ? 'ipv4_addr' : 'ipv6_addr'], elements: [] };
  return { family: acc.family, dims: acc.dims, types: acc.types, elements };
}
