/**
 * Parsing and printing of the values inside matches: addresses, prefixes, ranges, ports, and their Element form.
 * Address parsing is delegated to ipaddr.js; everything here is pure.
 */
import ipaddr from 'ipaddr.js';
import type { Element, Field, L3 } from './model.js';

export interface AddrRange {
  readonly family: L3;
  readonly lo: bigint;
  readonly hi: bigint;
}

const V4_MAX = (1n << 32n) - 1n;
const V6_MAX = (1n << 128n) - 1n;

function bytesToBigint(bytes: readonly number[]): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/** Parses one IPv4 or IPv6 address; returns undefined when it is not one. */
export function parseAddress(text: string): { family: L3; value: bigint } | undefined {
  if (!ipaddr.isValid(text)) return undefined;
  // ipaddr.js accepts legacy IPv4 forms ("10", "0x0a.1"); only dotted quads are addresses in firewall syntax.
  if (!text.includes(':') && !/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(text)) return undefined;
  const a = ipaddr.parse(text);
  if (a.kind() === 'ipv4') return { family: 'ipv4', value: bytesToBigint(a.toByteArray()) };
  return { family: 'ipv6', value: bytesToBigint(a.toByteArray()) };
}

/** Parses `addr`, `addr/len`, `addr/netmask` (IPv4) or `lo-hi`. Returns undefined when the text is none of these. */
export function parseAddressRange(text: string): AddrRange | undefined {
  const dash = text.indexOf('-');
  if (dash > 0) {
    const lo = parseAddress(text.slice(0, dash).trim());
    const hi = parseAddress(text.slice(dash + 1).trim());
    if (!lo || !hi || lo.family !== hi.family || lo.value > hi.value) return undefined;
    return { family: lo.family, lo: lo.value, hi: hi.value };
  }
  const slash = text.indexOf('/');
  if (slash < 0) {
    const a = parseAddress(text);
    return a ? { family: a.family, lo: a.value, hi: a.value } : undefined;
  }
  const a = parseAddress(text.slice(0, slash));
  if (!a) return undefined;
  const bits = a.family === 'ipv4' ? 32 : 128;
  const lenText = text.slice(slash + 1);
  let len: number;
  if (/^\d{1,3}$/.test(lenText)) {
    len = Number(lenText);
  } else {
    const mask = a.family === 'ipv4' ? parseAddress(lenText) : undefined;
    if (mask?.family !== 'ipv4') return undefined;
    const m = mask.value;
    len = 0;
    while (len < 32 && (m >> BigInt(31 - len)) & 1n) len++;
    if (((m << BigInt(len)) & V4_MAX) !== 0n) return undefined; // non-contiguous netmask
  }
  if (len > bits) return undefined;
  return prefixRange(a.family, a.value, len);
}

export function prefixRange(family: L3, value: bigint, len: number): AddrRange {
  const bits = family === 'ipv4' ? 32 : 128;
  const host = (1n << BigInt(bits - len)) - 1n;
  const lo = value & ~host & (family === 'ipv4' ? V4_MAX : V6_MAX);
  return { family, lo, hi: lo | host };
}

export function formatAddress(family: L3, value: bigint): string {
  if (family === 'ipv4') {
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join('.');
  }
  const bytes: number[] = [];
  for (let i = 15; i >= 0; i--) bytes.push(Number((value >> BigInt(i * 8)) & 255n));
  return ipaddr.fromByteArray(bytes).toString();
}

/** `10.0.0.0/8`, `10.0.0.1`, or `10.0.0.1-10.0.0.9`: the shortest exact text for an address range. */
export function formatAddressRange(family: L3, lo: bigint, hi: bigint): string {
  if (lo === hi) return formatAddress(family, lo);
  const size = hi - lo + 1n;
  if ((size & (size - 1n)) === 0n && (lo & (size - 1n)) === 0n) {
    let bits = 0;
    while (1n << BigInt(bits) < size) bits++;
    return `${formatAddress(family, lo)}/${(family === 'ipv4' ? 32 : 128) - bits}`;
  }
  return `${formatAddress(family, lo)}-${formatAddress(family, hi)}`;
}

export function addressFamilyOfField(field: Field): L3 | undefined {
  if (field === 'ip.saddr' || field === 'ip.daddr') return 'ipv4';
  if (field === 'ip6.saddr' || field === 'ip6.daddr') return 'ipv6';
  return undefined;
}

export function rangeElement(lo: bigint | number, hi: bigint | number = lo): Element {
  return { kind: 'range', lo: BigInt(lo), hi: BigInt(hi) };
}

/** Prints one element the way nftables would. */
export function formatElement(field: Field, el: Element): string {
  if (el.kind === 'name') return el.wildcard ? `${el.value}*` : el.value;
  if (el.kind === 'symbol') return el.value;
  const fam = addressFamilyOfField(field);
  if (fam) return formatAddressRange(fam, el.lo, el.hi);
  if (field === 'mark' || field === 'tcp.flags') {
    return el.lo === el.hi ? `0x${el.lo.toString(16)}` : `0x${el.lo.toString(16)}-0x${el.hi.toString(16)}`;
  }
  return el.lo === el.hi ? String(el.lo) : `${el.lo}-${el.hi}`;
}

/** JSON.stringify replacer that prints bigints as decimal strings. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
