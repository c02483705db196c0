/**
 * Flow specifications: the "which packets" part of reach queries and intents (`--from 10.0.0.0/8 --dport 80,443`
 * on the CLI, `from: 10.0.0.0/8` in an intents file), validated into a FlowSpec and turned into cubes and packet
 * sets of the engine.
 *
 * Every value problem is a UserError that names the flag or field, the value and what would be valid; the caller
 * says how a field is named (`--dport` for the CLI, `intents.yaml:4:11: dport` for a file).
 */

import { didYouMean } from '../config/did-you-mean.js';
import { UserError } from '../errors.js';
import type { CtState, Element, L3, Packet } from '../firewall/model.js';
import { CT_STATES, L4_PROTOCOLS, PORT_PROTOCOLS } from '../firewall/model.js';
import {
  TRACE_ICMP_TYPES as ICMP_TYPES,
  TRACE_ICMPV6_TYPES as ICMPV6_TYPES,
  portNumber,
  serviceNames,
} from '../firewall/symbols.js';
import { type AddrRange, parseAddressRange } from '../firewall/values.js';
import type { Cube, PacketSet, PacketSpace } from './types.js';

/** A flow spec as it comes from the user: strings, numbers or lists of them; absent = unrestricted. */
export interface FlowSpecInput {
  readonly family?: unknown;
  readonly from?: unknown;
  readonly to?: unknown;
  readonly proto?: unknown;
  readonly sport?: unknown;
  readonly dport?: unknown;
  readonly iif?: unknown;
  readonly oif?: unknown;
  readonly ctState?: unknown;
  readonly icmpType?: unknown;
}

export type FlowField = keyof FlowSpecInput;

/** A validated flow spec. Absent fields are unrestricted. */
export interface FlowSpec {
  /** The layer 3 families the flow covers (from --family or the addresses); absent = both. */
  readonly families?: readonly L3[];
  readonly from?: readonly AddrRange[];
  readonly to?: readonly AddrRange[];
  /** IANA protocol numbers. */
  readonly protos?: readonly number[];
  readonly sport?: readonly (readonly [number, number])[];
  readonly dport?: readonly (readonly [number, number])[];
  readonly iif?: readonly { readonly value: string; readonly wildcard: boolean }[];
  readonly oif?: readonly { readonly value: string; readonly wildcard: boolean }[];
  readonly ctState?: readonly CtState[];
  readonly icmpType?: readonly number[];
}

export interface FlowSpecOptions {
  /** How to name a field in messages: `--dport` for the CLI, `file:line:col: dport` for a file. */
  readonly label?: (field: FlowField) => string;
  /** Error code of the UserErrors thrown (default RAMPART_ERR_USAGE). */
  readonly code?: 'RAMPART_ERR_USAGE' | 'RAMPART_ERR_PARSE';
}

const CLI_FLAGS: Readonly<Record<FlowField, string>> = {
  family: '--family',
  from: '--from',
  to: '--to',
  proto: '--proto',
  sport: '--sport',
  dport: '--dport',
  iif: '--iif',
  oif: '--oif',
  ctState: '--ct-state',
  icmpType: '--icmp-type',
};

/** CLI flag names, the default labels. */
export const cliLabel = (field: FlowField): string => CLI_FLAGS[field];

const PORT_PROTO_NAMES = 'tcp, udp, dccp, sctp, udplite';

/** Splits `a,b, c` or a YAML list into trimmed non-empty items; numbers become strings. */
function items(value: unknown, fail: (why: string) => never): string[] {
  const raw: unknown[] = Array.isArray(value) ? value : [value];
  const out: string[] = [];
  for (const v of raw) {
    if (typeof v === 'number' || typeof v === 'bigint') out.push(String(v));
    else if (typeof v === 'string') {
      for (const part of v.split(',')) {
        const t = part.trim();
        if (t !== '') out.push(t);
      }
    } else fail(`expected a string or a list of strings, got ${v === null ? 'null' : typeof v}`);
  }
  if (out.length === 0) fail('empty list');
  return out;
}

function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Validates a flow spec; throws a UserError naming the field, the value and what is valid. */
export function parseFlowSpec(input: FlowSpecInput, opts: FlowSpecOptions = {}): FlowSpec {
  const label = opts.label ?? cliLabel;
  const code = opts.code ?? 'RAMPART_ERR_USAGE';
  const fail = (field: FlowField, value: unknown, why: string): never => {
    throw new UserError(code, `${label(field)} ${show(value)}: ${why}`, {
      field,
      flag: label(field),
      value: typeof value === 'string' ? value : show(value),
      why,
    });
  };
  const list = (field: FlowField): string[] | undefined => {
    const v = input[field];
    if (v === undefined || v === null) return undefined;
    return items(v, (why) => fail(field, v, why));
  };

  // Family
  let families: L3[] | undefined;
  const famItems = list('family');
  if (famItems) {
    families = [];
    for (const f of famItems) {
      const t = f.toLowerCase();
      const fam =
        t === 'ipv4' || t === 'ip' || t === '4'
          ? 'ipv4'
          : t === 'ipv6' || t === 'ip6' || t === '6'
            ? 'ipv6'
            : undefined;
      if (!fam) fail('family', f, 'unknown family; expected ipv4 or ipv6');
      else if (!families.includes(fam)) families.push(fam);
    }
  }

  // Addresses
  const addrs = (field: 'from' | 'to'): AddrRange[] | undefined => {
    const xs = list(field);
    if (!xs) return undefined;
    if (xs.length === 1 && xs[0]?.toLowerCase() === 'any') return undefined;
    return xs.map((x) => {
      if (x.toLowerCase() === 'any') return fail(field, x, "'any' cannot be combined with addresses");
      const r = parseAddressRange(x);
      if (!r) {
        return fail(
          field,
          x,
          'not an address; expected any, an IPv4/IPv6 address, a prefix (10.0.0.0/8, 2001:db8::/32) or a range (10.0.0.1-10.0.0.9)',
        );
      }
      return r;
    });
  };
  const from = addrs('from');
  const to = addrs('to');
  const famsOf = (rs: AddrRange[] | undefined) => (rs ? [...new Set(rs.map((r) => r.family))] : undefined);
  const fromFams = famsOf(from);
  const toFams = famsOf(to);
  for (const [field, fams, rs] of [
    ['from', fromFams, from],
    ['to', toFams, to],
  ] as const) {
    if (!fams || !rs) continue;
    if (families) {
      const bad = rs.find((r) => !families?.includes(r.family));
      if (bad)
        fail(
          field,
          input[field],
          `${bad.family === 'ipv4' ? 'IPv4' : 'IPv6'} address but --family is ${families.join(',')}`,
        );
    }
  }
  if (fromFams && toFams) {
    const common = fromFams.filter((f) => toFams.includes(f));
    if (common.length === 0) {
      fail(
        'to',
        input.to,
        `is ${toFams.join(',')} but the source addresses are ${fromFams.join(',')}; give addresses of one family`,
      );
    }
    const lone = [...fromFams, ...toFams].find((f) => !common.includes(f));
    if (lone) {
      const field = fromFams.includes(lone) ? 'from' : 'to';
      fail(field, input[field], `has ${lone} addresses but the other side has none; a packet has one family`);
    }
    families = families ?? common;
  } else if (fromFams || toFams) {
    families = families ?? fromFams ?? toFams;
  }

  // Protocols
  let protos: number[] | undefined;
  const protoItems = list('proto');
  if (protoItems) {
    protos = [];
    for (const p of protoItems) {
      const t = p.toLowerCase();
      const named = L4_PROTOCOLS[t];
      const n = named ?? (/^\d+$/.test(t) && Number(t) <= 255 ? Number(t) : undefined);
      if (n === undefined) {
        fail('proto', p, `unknown protocol; expected a number 0-255 or one of ${Object.keys(L4_PROTOCOLS).join(', ')}`);
      } else if (!protos.includes(n)) protos.push(n);
    }
  }

  // Ports
  const ports = (field: 'sport' | 'dport'): [number, number][] | undefined => {
    const xs = list(field);
    if (!xs) return undefined;
    const out = xs.map((x): [number, number] => {
      // A port, a service name (https), or a range of either (8000-8100); names can hold '-' (ptp-event).
      const whole = portNumber(x);
      const m = whole === undefined ? /^([\w-]+?)\s*[-:]\s*([\w-]+)$/.exec(x) : null;
      const lo = whole ?? (m ? (portNumber(m[1] as string) ?? Number.NaN) : Number.NaN);
      const hi = whole ?? (m ? (portNumber(m[2] as string) ?? Number.NaN) : Number.NaN);
      if (Number.isNaN(lo) || Number.isNaN(hi)) {
        return fail(
          field,
          x,
          `not a port${/^[a-z]/i.test(x) ? didYouMean(x, serviceNames()) : ''}; expected ports 0-65535, service names (http, https, ssh, domain, ...) and ranges, like 80,https,8000-8100`,
        );
      }
      if (lo > hi) return fail(field, x, `empty range (${lo} > ${hi}); write the low port first`);
      return [lo, hi];
    });
    if (protos) {
      const noPorts = protos.find((p) => !PORT_PROTOCOLS.has(p));
      if (noPorts !== undefined) {
        fail(field, input[field], `protocol ${protoName(noPorts)} has no ports (ports exist for ${PORT_PROTO_NAMES})`);
      }
    }
    return out;
  };
  const sport = ports('sport');
  const dport = ports('dport');
  if ((sport || dport) && !protos) protos = [...PORT_PROTOCOLS];

  // Interfaces
  const ifaces = (field: 'iif' | 'oif') =>
    list(field)?.map((x) => {
      const wildcard = x.endsWith('*') || x.endsWith('+');
      const value = wildcard ? x.slice(0, -1) : x;
      if (!/^[^\s/*+]{1,15}$/.test(value) && !(wildcard && value === '')) {
        return fail(
          field,
          x,
          "not an interface name; expected 1-15 characters, no spaces or '/', optionally ending in * (prefix)",
        );
      }
      return { value, wildcard };
    });
  const iif = ifaces('iif');
  const oif = ifaces('oif');

  // Conntrack state
  const ctItems = list('ctState');
  const ctState = ctItems?.map((c) => {
    const t = c.toLowerCase();
    if (!(CT_STATES as readonly string[]).includes(t)) {
      return fail('ctState', c, `unknown conntrack state; expected one or more of ${CT_STATES.join(', ')}`);
    }
    return t as CtState;
  });

  // ICMP type
  let icmpType: number[] | undefined;
  const icmpItems = list('icmpType');
  if (icmpItems) {
    const icmpProtos = protos ?? (families?.length === 1 ? [families[0] === 'ipv4' ? 1 : 58] : undefined);
    if (icmpProtos?.length !== 1 || (icmpProtos[0] !== 1 && icmpProtos[0] !== 58)) {
      fail(
        'icmpType',
        input.icmpType,
        `only for one ICMP protocol; add ${label('proto')} icmp or ${label('proto')} icmpv6`,
      );
    }
    const v6 = icmpProtos?.[0] === 58;
    protos = icmpProtos ? [...icmpProtos] : protos;
    const names = v6 ? ICMPV6_TYPES : ICMP_TYPES;
    icmpType = icmpItems.map((x) => {
      const t = x.toLowerCase();
      const n = names[t] ?? (/^\d+$/.test(t) && Number(t) <= 255 ? Number(t) : undefined);
      if (n === undefined) {
        return fail(
          'icmpType',
          x,
          `unknown ${v6 ? 'ICMPv6' : 'ICMP'} type; expected 0-255 or one of ${Object.keys(names).join(', ')}`,
        );
      }
      return n;
    });
  }
  if (protos && families) {
    if (protos.includes(1) && !families.includes('ipv4'))
      fail('proto', input.proto, 'icmp is IPv4 only; use icmpv6 for IPv6');
    if (protos.includes(58) && !families.includes('ipv6'))
      fail('proto', input.proto, 'icmpv6 is IPv6 only; use icmp for IPv4');
  }

  return {
    ...(families ? { families } : {}),
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
    ...(protos ? { protos } : {}),
    ...(sport ? { sport } : {}),
    ...(dport ? { dport } : {}),
    ...(iif ? { iif } : {}),
    ...(oif ? { oif } : {}),
    ...(ctState ? { ctState } : {}),
    ...(icmpType ? { icmpType } : {}),
  };
}

export function protoName(n: number): string {
  if (n === 58) return 'icmpv6';
  return Object.entries(L4_PROTOCOLS).find(([, v]) => v === n)?.[0] ?? String(n);
}

const range = (lo: bigint | number, hi: bigint | number): Element => ({
  kind: 'range',
  lo: BigInt(lo),
  hi: BigInt(hi),
});

/**
 * The cubes of a flow: one per layer 3 family the flow covers (a cube cannot say "IPv4 from A or IPv6 from B"), or
 * a single family-free cube when neither the spec nor its addresses name a family.
 */
export function flowCubes(spec: FlowSpec): Cube[] {
  const common: Cube = {
    ...(spec.sport ? { sport: spec.sport.map(([lo, hi]) => range(lo, hi)) } : {}),
    ...(spec.dport ? { dport: spec.dport.map(([lo, hi]) => range(lo, hi)) } : {}),
    ...(spec.iif ? { iifname: spec.iif.map((i) => ({ kind: 'name' as const, ...i })) } : {}),
    ...(spec.oif ? { oifname: spec.oif.map((i) => ({ kind: 'name' as const, ...i })) } : {}),
    ...(spec.ctState ? { 'ct.state': spec.ctState.map((s) => ({ kind: 'symbol' as const, value: s })) } : {}),
  };
  const protoCube = (fam: L3 | undefined): Cube | undefined => {
    let protos = spec.protos;
    if (protos && fam) protos = protos.filter((p) => (fam === 'ipv4' ? p !== 58 : p !== 1));
    if (protos && protos.length === 0) return undefined;
    const c: Cube = protos ? { l4proto: protos.map((p) => range(p, p)) } : {};
    if (spec.icmpType) {
      const types = spec.icmpType.map((t) => range(t, t));
      return { ...c, ...(protos?.[0] === 58 ? { 'icmpv6.type': types } : { 'icmp.type': types }) };
    }
    return c;
  };
  if (!spec.families) {
    const p = protoCube(undefined);
    return p ? [{ ...common, ...p }] : [];
  }
  const out: Cube[] = [];
  for (const fam of spec.families) {
    const p = protoCube(fam);
    if (!p) continue;
    const v4 = fam === 'ipv4';
    const src = spec.from?.filter((r) => r.family === fam);
    const dst = spec.to?.filter((r) => r.family === fam);
    if ((spec.from && src?.length === 0) || (spec.to && dst?.length === 0)) continue;
    out.push({
      ...common,
      ...p,
      nfproto: [{ kind: 'symbol', value: fam }],
      ...(src ? { [v4 ? 'ip.saddr' : 'ip6.saddr']: src.map((r) => range(r.lo, r.hi)) } : {}),
      ...(dst ? { [v4 ? 'ip.daddr' : 'ip6.daddr']: dst.map((r) => range(r.lo, r.hi)) } : {}),
    });
  }
  return out;
}

/** The packets of a flow within a space. */
export function flowSet(space: PacketSpace, spec: FlowSpec): PacketSet {
  let set = space.none();
  for (const c of flowCubes(spec)) set = set.or(space.fromCube(c));
  return set;
}

/** Preferred example values for a flow (so examples look like what the user asked about). */
export function flowPreference(spec: FlowSpec): Partial<Packet> {
  return {
    ...(spec.families?.length === 1 ? { family: spec.families[0] } : {}),
    l4proto: spec.protos?.[0] ?? 6,
    ...(spec.iif?.[0] && !spec.iif[0].wildcard ? { iif: spec.iif[0].value } : {}),
    ...(spec.ctState?.[0] ? { ctState: spec.ctState[0] } : { ctState: 'new' as const }),
  };
}

/**
 * Narrows a spec without a family to the families the ruleset's tables can see: an iptables (ip) ruleset says
 * nothing about IPv6 packets, which would otherwise fill every answer as "accepted: no chain saw them".
 */
export function restrictToRuleset(
  spec: FlowSpec,
  tables: readonly { family: string; outOfScope: boolean }[],
): FlowSpec {
  if (spec.families) return spec;
  const fams = new Set(tables.filter((t) => !t.outOfScope).map((t) => t.family));
  if (fams.size === 0 || fams.has('inet') || (fams.has('ip') && fams.has('ip6'))) return spec;
  const only: L3 = fams.has('ip') ? 'ipv4' : 'ipv6';
  if (spec.protos?.includes(only === 'ipv4' ? 58 : 1) && spec.protos.length === 1) return spec;
  return { ...spec, families: [only] };
}

/**
 * Interface names a spec asks about, to build the packet space with (createPacketSpace(rulesets, { interfaces })):
 * a name no rule mentions is otherwise one "any other interface" atom, and examples and descriptions would not
 * carry the name asked for.
 */
export function flowInterfaces(specs: readonly FlowSpec[]): string[] {
  const names = new Set<string>();
  for (const s of specs) for (const i of [...(s.iif ?? []), ...(s.oif ?? [])]) if (!i.wildcard) names.add(i.value);
  return [...names].sort();
}
