/**
 * Small builders for hand-made rulesets in tests and examples: `ruleset([table('inet', 'filter', [base('input',
 * { hook: 'input', policy: 'drop' }, [rule([tcp, dport(22)], accept)])])])`.
 *
 * Values are written the way a user writes them: addresses and prefixes as text, ports and protocols as numbers,
 * `'1024-65535'` for ranges, `'eth*'` for interface prefixes. Origins left unset are numbered in file order (table,
 * then each chain header and its rules), so a trace points at plausible lines.
 */
import type {
  BaseChainSpec,
  Chain,
  ConcatMatch,
  CtState,
  Element,
  Family,
  Field,
  FieldMatch,
  L3,
  Match,
  NamedSet,
  NatVerdict,
  OpaqueCategory,
  OpaqueMatch,
  Origin,
  Rule,
  Ruleset,
  SimpleVerdict,
  Statement,
  Table,
  Verdict,
  VmapVerdict,
} from './model.js';
import { L4_PROTOCOLS } from './model.js';
import { addressFamilyOfField, formatElement, parseAddressRange } from './values.js';

export type ValueSpec = string | number | bigint | Element;

const NAME_FIELDS: ReadonlySet<Field> = new Set(['iifname', 'oifname']);
const SYMBOL_FIELDS: ReadonlySet<Field> = new Set(['nfproto', 'ct.state', 'saddr.type', 'daddr.type']);

/** Turns a user-style value into an Element for a field. Throws on values that do not fit (a bug in the test). */
export function element(field: Field, v: ValueSpec): Element {
  if (typeof v === 'object') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return { kind: 'range', lo: BigInt(v), hi: BigInt(v) };
  if (NAME_FIELDS.has(field)) {
    const wildcard = v.endsWith('*') || v.endsWith('+');
    return { kind: 'name', value: wildcard ? v.slice(0, -1) : v, wildcard };
  }
  if (SYMBOL_FIELDS.has(field)) return { kind: 'symbol', value: v };
  if (addressFamilyOfField(field)) {
    const r = parseAddressRange(v);
    if (!r) throw new Error(`ir-builders: '${v}' is not an address, prefix or range`);
    return { kind: 'range', lo: r.lo, hi: r.hi };
  }
  if (field === 'l4proto' && L4_PROTOCOLS[v] !== undefined)
    return { kind: 'range', lo: BigInt(L4_PROTOCOLS[v]), hi: BigInt(L4_PROTOCOLS[v]) };
  const m = /^(0x[0-9a-f]+|\d+)(?:-(0x[0-9a-f]+|\d+))?$/i.exec(v);
  if (!m) throw new Error(`ir-builders: '${v}' is not a value for ${field}`);
  return { kind: 'range', lo: BigInt(m[1]!), hi: BigInt(m[2] ?? m[1]!) };
}

function fieldText(field: Field, op: 'eq' | 'ne', els: readonly Element[], mask?: bigint): string {
  const vals = els.map((e) => formatElement(field, e));
  const shown = vals.length === 1 ? vals[0]! : `{ ${vals.join(', ')} }`;
  const masked = mask === undefined ? field : `${field} & 0x${mask.toString(16)}`;
  return `${masked} ${op === 'ne' ? '!= ' : ''}${shown}`;
}

export function eq(field: Field, ...values: ValueSpec[]): FieldMatch {
  const els = values.map((v) => element(field, v));
  return { kind: 'field', field, op: 'eq', values: els, text: fieldText(field, 'eq', els) };
}

export function ne(field: Field, ...values: ValueSpec[]): FieldMatch {
  const els = values.map((v) => element(field, v));
  return { kind: 'field', field, op: 'ne', values: els, text: fieldText(field, 'ne', els) };
}

/** `(field & mask) == values`, for mark and tcp.flags. */
export function masked(field: Field, mask: bigint | number, values: ValueSpec[], op: 'eq' | 'ne' = 'eq'): FieldMatch {
  const els = values.map((v) => element(field, v));
  return { kind: 'field', field, op, values: els, mask: BigInt(mask), text: fieldText(field, op, els, BigInt(mask)) };
}

export function concat(fields: Field[], tuples: ValueSpec[][], op: 'eq' | 'ne' = 'eq'): ConcatMatch {
  const ts = tuples.map((t) => t.map((v, i) => element(fields[i]!, v)));
  return {
    kind: 'concat',
    fields,
    op,
    tuples: ts,
    text: `${fields.join(' . ')} ${op === 'ne' ? '!= ' : ''}{ ${ts.map((t) => t.map((e, i) => formatElement(fields[i]!, e)).join(' . ')).join(', ')} }`,
  };
}

export function opaque(text: string, category: OpaqueCategory = 'limit', reason = 'rate-dependent'): OpaqueMatch {
  return { kind: 'opaque', category, reason, text };
}

export const tcp: FieldMatch = eq('l4proto', 6);
export const udp: FieldMatch = eq('l4proto', 17);
export const icmp: FieldMatch = eq('l4proto', 1);
export const icmpv6: FieldMatch = eq('l4proto', 58);
export const dport = (...ports: ValueSpec[]): FieldMatch => eq('dport', ...ports);
export const sport = (...ports: ValueSpec[]): FieldMatch => eq('sport', ...ports);
export const saddr = (...a: string[]): FieldMatch => eq(a[0]?.includes(':') ? 'ip6.saddr' : 'ip.saddr', ...a);
export const daddr = (...a: string[]): FieldMatch => eq(a[0]?.includes(':') ? 'ip6.daddr' : 'ip.daddr', ...a);
export const iif = (...names: string[]): FieldMatch => eq('iifname', ...names);
export const oif = (...names: string[]): FieldMatch => eq('oifname', ...names);
export const ct = (...states: CtState[]): FieldMatch => eq('ct.state', ...states);

// Verdicts
export const accept: SimpleVerdict = { kind: 'accept' };
export const drop: SimpleVerdict = { kind: 'drop' };
export const reject: SimpleVerdict = { kind: 'reject' };
export const queue: SimpleVerdict = { kind: 'queue' };
export const cont: SimpleVerdict = { kind: 'continue' };
export const ret: SimpleVerdict = { kind: 'return' };
export const jump = (target: string): SimpleVerdict => ({ kind: 'jump', target });
export const goto = (target: string): SimpleVerdict => ({ kind: 'goto', target });

function natAddr(addr: string | undefined): { family?: L3; addr?: { lo: bigint; hi: bigint } } {
  if (addr === undefined) return {};
  const r = parseAddressRange(addr);
  if (!r) throw new Error(`ir-builders: '${addr}' is not an address or range`);
  return { addr: { lo: r.lo, hi: r.hi } };
}

export function dnat(addr: string | undefined, port?: number): NatVerdict {
  return {
    kind: 'nat',
    type: 'dnat',
    ...natAddr(addr),
    ...(port !== undefined ? { port: { lo: port, hi: port } } : {}),
    text: `dnat to ${addr ?? ''}${port !== undefined ? `:${port}` : ''}`,
  };
}

export function snat(addr: string, port?: number): NatVerdict {
  return {
    kind: 'nat',
    type: 'snat',
    ...natAddr(addr),
    ...(port !== undefined ? { port: { lo: port, hi: port } } : {}),
    text: `snat to ${addr}`,
  };
}

export const masquerade: NatVerdict = { kind: 'nat', type: 'masquerade', text: 'masquerade' };

export function redirect(port?: number): NatVerdict {
  return {
    kind: 'nat',
    type: 'redirect',
    ...(port !== undefined ? { port: { lo: port, hi: port } } : {}),
    text: port !== undefined ? `redirect to :${port}` : 'redirect',
  };
}

export function vmap(fields: Field[], entries: [ValueSpec[], SimpleVerdict][]): VmapVerdict {
  return {
    kind: 'vmap',
    fields,
    entries: entries.map(([key, verdict]) => ({ key: key.map((v, i) => element(fields[i]!, v)), verdict })),
    text: `${fields.join(' . ')} vmap { ... }`,
  };
}

export function setMark(value: bigint | number, mask?: bigint | number): Statement {
  return {
    kind: 'set',
    field: 'mark',
    value: BigInt(value),
    ...(mask !== undefined ? { mask: BigInt(mask) } : {}),
    text: `meta mark set 0x${BigInt(value).toString(16)}`,
  };
}

export const counter: Statement = { kind: 'counter', text: 'counter' };

function verdictText(v: Verdict | undefined): string {
  if (!v) return '';
  if (v.kind === 'nat' || v.kind === 'vmap') return v.text;
  if (v.kind === 'jump' || v.kind === 'goto') return `${v.kind} ${v.target}`;
  return v.kind;
}

export interface RuleOptions {
  readonly statements?: readonly Statement[];
  readonly comment?: string;
  readonly text?: string;
  readonly file?: string;
  readonly line?: number;
  readonly handle?: number;
}

export function rule(matches: readonly Match[], verdict?: Verdict, o: RuleOptions = {}): Rule {
  const text =
    o.text ??
    [...matches.map((m) => m.text), ...(o.statements ?? []).map((s) => s.text), verdictText(verdict)]
      .filter((t) => t !== '')
      .join(' ');
  return {
    kind: 'rule',
    matches,
    statements: o.statements ?? [],
    ...(verdict ? { verdict } : {}),
    ...(o.comment !== undefined ? { comment: o.comment } : {}),
    origin: {
      file: o.file ?? '',
      line: o.line ?? 0,
      ...(o.handle !== undefined ? { handle: o.handle } : {}),
    },
    text,
  };
}

export interface BaseOptions {
  readonly hook: BaseChainSpec['hook'];
  readonly type?: BaseChainSpec['type'];
  readonly priority?: number;
  readonly policy?: BaseChainSpec['policy'];
}

export function base(name: string, o: BaseOptions, rules: readonly Rule[] = []): Chain {
  return {
    kind: 'chain',
    name,
    base: { type: o.type ?? 'filter', hook: o.hook, priority: o.priority ?? 0, policy: o.policy ?? 'accept' },
    rules,
    origin: { file: '', line: 0 },
  };
}

export function chain(name: string, rules: readonly Rule[] = []): Chain {
  return { kind: 'chain', name, rules, origin: { file: '', line: 0 } };
}

export function table(
  family: Family,
  name: string,
  chains: readonly Chain[],
  o: { sets?: readonly NamedSet[]; outOfScope?: boolean } = {},
): Table {
  return {
    kind: 'table',
    family,
    name,
    chains,
    sets: o.sets ?? [],
    origin: { file: '', line: 0 },
    outOfScope: o.outOfScope ?? !['ip', 'ip6', 'inet'].includes(family),
  };
}

/** Assembles a ruleset, numbering unset origins (file `file`, lines in layout order). */
export function ruleset(
  tables: readonly Table[],
  o: { file?: string; backend?: Ruleset['backend']; format?: Ruleset['format'] } = {},
): Ruleset {
  const file = o.file ?? 'test.nft';
  let line = 0;
  const place = (origin: Origin): Origin => {
    line++;
    if (origin.line !== 0 && origin.file !== '') return origin;
    return { ...origin, file: origin.file || file, line: origin.line || line };
  };
  const placed = tables.map((t) => ({
    ...t,
    origin: place(t.origin),
    chains: t.chains.map((c) => ({
      ...c,
      origin: place(c.origin),
      rules: c.rules.map((r) => ({ ...r, origin: place(r.origin) })),
    })),
  }));
  return {
    kind: 'ruleset',
    backend: o.backend ?? 'nftables',
    format: o.format ?? 'nft-text',
    file,
    tables: placed,
    warnings: [],
  };
}
