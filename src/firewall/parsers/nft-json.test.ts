import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ParseError } from '../../errors.js';
import type { Chain, FieldMatch, Rule, Ruleset, Table } from '../model.js';
import { convertNftJson, parseNftJson, renderNftExpr } from './nft-json.js';

// Fixtures are real `nft -j list ruleset` output captured from the NAME.nft beside them (see regenerate.sh).
const FIXTURES = join(import.meta.dirname, '../../../test/fixtures/nft-json');

function fixture(name: string): Ruleset {
  const file = join(FIXTURES, `${name}.json`);
  return parseNftJson(readFileSync(file, 'utf8'), file);
}

function table(rs: Ruleset, family: string, name: string): Table {
  const t = rs.tables.find((x) => x.family === family && x.name === name);
  if (!t) throw new Error(`no table ${family} ${name}`);
  return t;
}

function chain(t: Table, name: string): Chain {
  const c = t.chains.find((x) => x.name === name);
  if (!c) throw new Error(`no chain ${name}`);
  return c;
}

function rule(c: Chain, handle: number): Rule {
  const r = c.rules.find((x) => x.origin.handle === handle);
  if (!r) throw new Error(`no rule with handle ${handle} in ${c.name}`);
  return r;
}

const r = (lo: bigint | number, hi: bigint | number = lo) => ({ kind: 'range', lo: BigInt(lo), hi: BigInt(hi) });
const sym = (value: string) => ({ kind: 'symbol', value });
const v4 = (a: string) => BigInt(a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0));

/** The matches of a rule without their display text, for compact comparisons. */
function bare(rule: Rule): unknown[] {
  return rule.matches.map(({ text: _t, ...m }) => m);
}

function parseError(f: () => unknown): ParseError {
  try {
    f();
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
  throw new Error('expected a ParseError');
}

/** A minimal document around some rules of table inet t, chain c (a base input chain). */
function doc(expr: unknown[][], extra: unknown[] = []): unknown[] {
  return [
    { table: { family: 'inet', name: 't', handle: 1 } },
    ...extra,
    {
      chain: {
        family: 'inet',
        table: 't',
        name: 'c',
        handle: 1,
        type: 'filter',
        hook: 'input',
        prio: 0,
        policy: 'accept',
      },
    },
    ...expr.map((e, i) => ({ rule: { family: 'inet', table: 't', chain: 'c', handle: 10 + i, expr: e } })),
  ];
}

function onlyRule(expr: unknown[], extra: unknown[] = []): { rule: Rule; rs: Ruleset } {
  const rs = convertNftJson(doc([expr], extra), 'mem.json');
  return { rule: chain(table(rs, 'inet', 't'), 'c').rules[0] as Rule, rs };
}

const tcpDport = { payload: { protocol: 'tcp', field: 'dport' } };

describe('parseNftJson on real nft output (basic.json)', () => {
  const rs = fixture('basic');
  const t = table(rs, 'inet', 'filter');
  const input = chain(t, 'input');

  it('parses tables, base chains, regular chains and their handles', () => {
    expect(rs).toMatchObject({ kind: 'ruleset', backend: 'nftables', format: 'nft-json' });
    expect(t.outOfScope).toBe(false);
    expect(t.origin).toMatchObject({ line: 1, handle: 1 });
    expect(input.base).toEqual({ type: 'filter', hook: 'input', priority: 0, policy: 'drop' });
    expect(input.origin.handle).toBe(1);
    expect(chain(t, 'output').base).toMatchObject({ priority: 10, policy: 'accept' });
    expect(chain(t, 'services').base).toBeUndefined();
    expect(chain(t, 'services').origin.handle).toBe(2);
    expect(rs.warnings).toEqual([]);
  });

  it('locates every top-level item by line and column in the single-line output', () => {
    const text = readFileSync(join(FIXTURES, 'basic.json'), 'utf8');
    const r7 = rule(input, 7);
    expect(r7.origin.line).toBe(1);
    expect(
      text
        .slice((r7.origin.column ?? 0) - 1)
        .startsWith('{"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 7'),
    ).toBe(true);
  });

  it('parses ct state lists and interface names with wildcards', () => {
    expect(bare(rule(input, 7))).toEqual([
      { kind: 'field', field: 'ct.state', op: 'eq', values: [sym('established'), sym('related')] },
    ]);
    expect(rule(input, 7).verdict).toEqual({ kind: 'accept' });
    expect(bare(rule(input, 10))).toEqual([
      { kind: 'field', field: 'iifname', op: 'eq', values: [{ kind: 'name', value: 'veth', wildcard: true }] },
    ]);
    expect(rule(input, 10).statements).toEqual([{ kind: 'counter', text: 'counter' }]);
  });

  it('resolves named sets and makes protocol dependencies explicit', () => {
    const r11 = rule(input, 11);
    expect(bare(r11)).toEqual([
      {
        kind: 'field',
        field: 'ip.saddr',
        op: 'eq',
        set: 'admins',
        values: [r(v4('192.0.2.0'), v4('192.0.2.255')), r(v4('198.51.100.7'))],
      },
      { kind: 'field', field: 'l4proto', op: 'eq', values: [r(6)] },
      { kind: 'field', field: 'dport', op: 'eq', values: [r(22)] },
    ]);
    expect(r11.text).toBe('ip saddr @admins tcp dport 22 accept');
  });

  it('parses anonymous sets, ranges and prefixes, and renders the rule text', () => {
    const r13 = rule(input, 13);
    expect(r13.text).toBe('tcp dport { 80, 443 } accept');
    expect((r13.matches[1] as FieldMatch).values).toEqual([r(80), r(443)]);
    expect((r13.matches[1] as FieldMatch).text).toBe('tcp dport { 80, 443 }');
    expect(bare(rule(input, 14))).toEqual([
      { kind: 'field', field: 'l4proto', op: 'eq', values: [r(17)] },
      { kind: 'field', field: 'dport', op: 'eq', values: [r(1000, 2000)] },
    ]);
    expect((rule(input, 15).matches[0] as FieldMatch).values).toEqual([r(v4('10.0.0.0'), v4('10.255.255.255'))]);
    const v6 = (rule(input, 16).matches[0] as FieldMatch).values[0];
    expect(v6).toEqual(r(0x20010db8n << 96n, (0x20010db8n << 96n) | ((1n << 96n) - 1n)));
  });

  it('turns icmp types into numbers behind an l4proto dependency, and a limit into an opaque condition', () => {
    const r17 = rule(input, 17);
    expect(bare(r17)).toEqual([
      { kind: 'field', field: 'l4proto', op: 'eq', values: [r(1)] },
      { kind: 'field', field: 'icmp.type', op: 'eq', values: [r(8)] },
      // A fresh source is under the limit: the rule applies; above 5/second it does not.
      {
        kind: 'opaque',
        category: 'limit',
        reason: 'matches only while the rate is under 5/second',
        fresh: true,
        otherwise: 'above 5/second',
      },
    ]);
    expect(r17.verdict).toEqual({ kind: 'accept' });
    expect((rule(input, 19).matches[1] as FieldMatch).values).toEqual([r(134), r(135)]);
  });

  it('parses negation, log, reject types, jump and goto, comments', () => {
    const r20 = rule(input, 20);
    expect(bare(r20)[1]).toEqual({ kind: 'field', field: 'dport', op: 'ne', values: [r(22)] });
    expect(r20.statements).toEqual([
      { kind: 'log', prefix: 'not ssh: ', text: 'log prefix "not ssh: "' },
      { kind: 'counter', text: 'counter' },
    ]);
    expect(r20.verdict).toEqual({ kind: 'reject', with: 'tcp reset' });
    expect(rule(input, 21).verdict).toEqual({ kind: 'reject', with: 'icmpx port-unreachable' });
    expect(rule(input, 22).verdict).toEqual({ kind: 'jump', target: 'services' });
    expect(rule(input, 23).verdict).toEqual({ kind: 'goto', target: 'tail' });
    const r24 = rule(chain(t, 'services'), 24);
    expect(r24.comment).toBe('web alt');
    expect(r24.text).toBe('tcp dport 8080 accept comment "web alt"');
    expect(rule(chain(t, 'services'), 25).verdict).toEqual({ kind: 'return' });
  });
});

describe('parseNftJson: nat (nat.json)', () => {
  const rs = fixture('nat');
  const nat = table(rs, 'ip', 'nat');

  it('maps nat chains and their priorities', () => {
    expect(chain(nat, 'prerouting').base).toEqual({
      type: 'nat',
      hook: 'prerouting',
      priority: -100,
      policy: 'accept',
    });
    expect(chain(nat, 'postrouting').base?.priority).toBe(100);
    const mangle = table(rs, 'inet', 'mangle');
    expect(chain(mangle, 'prerouting').base?.priority).toBe(-150);
    expect(chain(mangle, 'pre-raw').base?.priority).toBe(-300);
  });

  it('parses dnat, snat, redirect and masquerade with addresses and ports', () => {
    const pre = chain(nat, 'prerouting');
    expect(rule(pre, 3).verdict).toEqual({
      kind: 'nat',
      type: 'dnat',
      family: 'ipv4',
      addr: { lo: v4('10.0.0.2'), hi: v4('10.0.0.2') },
      port: { lo: 8080, hi: 8080 },
      text: 'dnat to 10.0.0.2:8080',
    });
    expect(rule(pre, 4).verdict).toMatchObject({
      addr: { lo: v4('10.0.0.3'), hi: v4('10.0.0.5') },
      port: { lo: 443, hi: 444 },
    });
    expect(rule(pre, 5).verdict).toMatchObject({ type: 'redirect', port: { lo: 3129, hi: 3129 } });
    expect(rule(pre, 6).verdict).toEqual({ kind: 'nat', type: 'redirect', family: 'ipv4', text: 'redirect' });
    const post = chain(nat, 'postrouting');
    expect(rule(post, 7).verdict).toMatchObject({ type: 'masquerade' });
    expect(rule(post, 8).verdict).toMatchObject({ type: 'snat', addr: { lo: v4('203.0.113.1') } });
    expect(rule(post, 9).verdict).toMatchObject({ type: 'masquerade', port: { lo: 10000, hi: 20000 } });
    expect(rule(chain(table(rs, 'ip6', 'nat6'), 'postrouting'), 2).verdict).toMatchObject({ family: 'ipv6' });
    const inet = chain(table(rs, 'inet', 'mangle'), 'dnat-inet');
    expect(rule(inet, 6).verdict).toMatchObject({ family: 'ipv4', addr: { lo: v4('10.0.0.9') } });
    expect(rule(inet, 7).verdict).toMatchObject({
      family: 'ipv6',
      addr: { lo: 2n, hi: 2n },
      port: { lo: 8080 },
      text: 'dnat ip6 to [::2]:8080',
    });
  });

  it('keeps a map-computed nat address unknown, says so, and matches only keys in the map', () => {
    const r3 = rule(chain(table(rs, 'ip', 'natmap'), 'pre'), 3);
    expect(r3.verdict).toEqual({ kind: 'nat', type: 'dnat', family: 'ipv4', text: 'dnat to ip saddr map @fwdmap' });
    // the kernel's lookup ends the rule when the source is not a key of @fwdmap
    expect(r3.matches).toEqual([
      {
        kind: 'field',
        field: 'ip.saddr',
        op: 'eq',
        values: [r(v4('192.0.2.1'))],
        set: 'fwdmap',
        text: 'ip saddr map @fwdmap',
      },
    ]);
    expect(rs.warnings).toEqual([
      expect.objectContaining({ code: 'nft-unsupported-expression', origin: expect.objectContaining({ handle: 3 }) }),
    ]);
  });

  it('turns meta mark set into a set statement and other statements into "other"', () => {
    const mangle = table(rs, 'inet', 'mangle');
    expect(rule(chain(mangle, 'prerouting'), 5).statements).toEqual([
      { kind: 'set', field: 'mark', value: 16n, text: 'meta mark set 0x10' },
    ]);
    const raw = chain(mangle, 'pre-raw');
    expect(rule(raw, 8).statements).toEqual([{ kind: 'other', text: 'ct helper set "ftp-helper"' }]);
    expect(rule(raw, 9).statements).toEqual([{ kind: 'other', text: 'notrack' }]);
    expect(rule(raw, 9).verdict).toBeUndefined();
  });
});

describe('parseNftJson: named sets and maps (sets-maps.json)', () => {
  const rs = fixture('sets-maps');
  const t = table(rs, 'inet', 'sm');
  const input = chain(t, 'input');
  const set = (name: string) => {
    const s = t.sets.find((x) => x.name === name);
    if (!s) throw new Error(`no set ${name}`);
    return s;
  };

  it('converts set declarations: types, flags, prefixes, ranges, timeouts, counters', () => {
    expect(set('blocked')).toMatchObject({
      types: ['ipv4_addr'],
      flags: ['interval', 'timeout'],
      elements: [[r(v4('10.0.0.1'), v4('10.0.0.9'))], [r(v4('203.0.113.0'), v4('203.0.113.255'))]],
    });
    expect(set('blocked').origin.handle).toBe(3);
    expect(set('web_ports').elements).toEqual([[r(80)], [r(443)], [r(8000, 8080)]]);
    expect(set('v6hosts').elements).toHaveLength(2);
    expect(set('ifaces').elements).toEqual([
      [{ kind: 'name', value: 'eth0', wildcard: false }],
      [{ kind: 'name', value: 'wlan0', wildcard: false }],
    ]);
  });

  it('converts concatenated sets, including interval concatenations', () => {
    expect(set('pairs')).toMatchObject({
      types: ['ipv4_addr', 'inet_service'],
      elements: [
        [r(v4('10.0.0.1')), r(22)],
        [r(v4('10.0.0.2')), r(80)],
      ],
    });
    expect(set('ranges').elements).toEqual([
      [r(v4('10.0.0.0'), v4('10.0.0.255')), r(1, 1000)],
      [r(v4('10.1.0.1')), r(22)],
    ]);
  });

  it('converts maps and verdict maps', () => {
    expect(set('portvmap').map).toEqual({
      type: 'verdict',
      values: [{ kind: 'accept' }, { kind: 'drop' }, { kind: 'jump', target: 'web' }],
    });
    expect(set('fwdmap').map).toEqual({ type: 'ipv4_addr', values: ['10.0.0.1', '10.0.0.2'] });
  });

  it('matches against named sets, negated sets and interface sets', () => {
    expect(bare(rule(input, 14))).toEqual([
      { kind: 'field', field: 'ip.saddr', op: 'eq', set: 'blocked', values: set('blocked').elements.map((e) => e[0]) },
    ]);
    expect(bare(rule(input, 19))[0]).toMatchObject({ field: 'ip6.saddr', op: 'ne', set: 'v6hosts' });
    expect(bare(rule(input, 20))[0]).toMatchObject({ field: 'iifname', set: 'ifaces' });
    expect(rule(input, 20).text).toBe('iifname @ifaces accept');
  });

  it('turns concatenation lookups into ConcatMatch', () => {
    expect(bare(rule(input, 16))).toEqual([
      { kind: 'field', field: 'l4proto', op: 'eq', values: [r(6)] },
      { kind: 'concat', fields: ['ip.saddr', 'dport'], op: 'eq', set: 'pairs', tuples: set('pairs').elements },
    ]);
    expect(bare(rule(input, 18))[1]).toEqual({
      kind: 'concat',
      fields: ['ip.saddr', 'dport'],
      op: 'eq',
      tuples: [
        [r(v4('10.0.0.5')), r(25)],
        [r(v4('10.0.0.6')), r(587)],
      ],
    });
    expect(bare(rule(input, 27))[1]).toMatchObject({ kind: 'concat', set: 'ranges', tuples: set('ranges').elements });
  });

  it('turns vmap statements into VmapVerdicts, named and anonymous, single and concatenated', () => {
    const r21 = rule(input, 21);
    expect(bare(r21)).toEqual([{ kind: 'field', field: 'l4proto', op: 'eq', values: [r(6)] }]);
    expect(r21.verdict).toMatchObject({
      kind: 'vmap',
      fields: ['dport'],
      set: 'portvmap',
      entries: [
        { key: [r(22)], verdict: { kind: 'accept' } },
        { key: [r(23)], verdict: { kind: 'drop' } },
        { key: [r(8080)], verdict: { kind: 'jump', target: 'web' } },
      ],
    });
    expect(rule(input, 23).verdict).toEqual({
      kind: 'vmap',
      fields: ['dport'],
      entries: [
        { key: [r(53)], verdict: { kind: 'accept' } },
        { key: [r(67)], verdict: { kind: 'drop' } },
      ],
      text: 'udp dport vmap { 53 : accept, 67 : drop }',
    });
    expect(rule(input, 24).verdict).toMatchObject({
      fields: ['ip.saddr', 'dport'],
      entries: [
        { key: [r(v4('10.0.0.1')), r(22)], verdict: { kind: 'accept' } },
        { key: [r(v4('10.0.0.2')), r(25)], verdict: { kind: 'drop' } },
      ],
    });
  });

  it('treats set updates as statements, and a limit inside one as a condition', () => {
    const r25 = rule(input, 25);
    expect(r25.matches).toEqual([]);
    expect(r25.statements).toEqual([
      { kind: 'other', text: 'update @dyn { ip saddr }' },
      { kind: 'counter', text: 'counter' },
    ]);
    const r26 = rule(input, 26);
    // `limit rate over` alone would let a fresh source (a new element) through; but the rule before fills @dyn
    // without a limit, and the kernel then drops the first packet (the element exists, with no limit to consult):
    // no known outcome, the match stays uncertain.
    expect(bare(r26)).toEqual([
      {
        kind: 'opaque',
        category: 'limit',
        reason:
          'per ip saddr: matches only once the rate is over 10/second; but another rule fills @dyn without a limit, and an element it created decides first',
      },
    ]);
    expect(r26.verdict).toEqual({ kind: 'drop' });
    expect(rs.warnings).toEqual([]);
  });
});

describe('parseNftJson: less common expressions (misc.json)', () => {
  const rs = fixture('misc');
  const input = chain(table(rs, 'inet', 'misc'), 'input');
  const m = (handle: number, i = 0) => bare(rule(input, handle))[i];

  it('parses tcp flags: masked comparisons, flag tests and exact sets', () => {
    expect(bare(rule(input, 2))).toEqual([
      { kind: 'field', field: 'l4proto', op: 'eq', values: [r(6)] },
      { kind: 'field', field: 'tcp.flags', op: 'eq', values: [r(2)], mask: 0x12n },
    ]);
    expect(rule(input, 2).text).toBe('tcp flags & (syn|ack) == syn accept');
    expect(m(5, 1)).toEqual({ kind: 'field', field: 'tcp.flags', op: 'eq', values: [r(1), r(2)] });
    // `tcp flags syn` (op "in") tests a bit: (flags & syn) != 0.
    expect(m(41, 1)).toEqual({ kind: 'field', field: 'tcp.flags', op: 'ne', values: [r(0)], mask: 2n });
    expect(m(42, 1)).toEqual({ kind: 'field', field: 'tcp.flags', op: 'ne', values: [r(2)] });
    expect(m(43, 1)).toEqual({ kind: 'field', field: 'tcp.flags', op: 'ne', values: [r(2)], mask: 0x17n });
  });

  it('parses marks with and without masks', () => {
    expect(m(6)).toEqual({ kind: 'field', field: 'mark', op: 'eq', values: [r(1)] });
    expect(m(7)).toEqual({ kind: 'field', field: 'mark', op: 'eq', values: [r(2)], mask: 0xffn });
    expect(m(8)).toEqual({ kind: 'field', field: 'mark', op: 'ne', values: [r(3)] });
    expect(m(47)).toEqual({ kind: 'field', field: 'mark', op: 'ne', values: [r(0)], mask: 0xffn });
    expect(rule(input, 38).statements).toEqual([
      // mark = (mark & 0xff01) | 0x1: the bits outside 0xff01 are replaced.
      { kind: 'set', field: 'mark', value: 1n, mask: 0xffff00fen, text: 'meta mark set meta mark & 0xff01 | 0x1' },
    ]);
  });

  it('parses ct state bitmask forms as sets of states', () => {
    expect(m(9)).toEqual({ kind: 'field', field: 'ct.state', op: 'eq', values: [sym('established'), sym('related')] });
    expect(m(10)).toEqual({ kind: 'field', field: 'ct.state', op: 'ne', values: [sym('established')] });
    expect(m(45)).toEqual({ kind: 'field', field: 'ct.state', op: 'eq', values: [sym('new'), sym('untracked')] });
    // `ct state & (established|related) == 0` is printed by nft as op "!".
    expect(m(46)).toEqual({ kind: 'field', field: 'ct.state', op: 'ne', values: [sym('established'), sym('related')] });
  });

  it('parses fib address types, comparisons as ranges, and transport headers', () => {
    expect(m(11)).toEqual({ kind: 'field', field: 'daddr.type', op: 'eq', values: [sym('local')] });
    expect(m(13)).toEqual({
      kind: 'field',
      field: 'daddr.type',
      op: 'eq',
      values: [sym('broadcast'), sym('multicast')],
    });
    expect(m(14, 1)).toEqual({ kind: 'field', field: 'dport', op: 'eq', values: [r(0, 1023)] });
    expect(m(15, 1)).toEqual({ kind: 'field', field: 'dport', op: 'eq', values: [r(60000, 65535)] });
    expect(m(16, 1)).toEqual({ kind: 'field', field: 'sport', op: 'eq', values: [r(0, 10)] });
    expect(m(17, 1)).toEqual({ kind: 'field', field: 'sport', op: 'eq', values: [r(50001, 65535)] });
    expect(bare(rule(input, 18))).toEqual([{ kind: 'field', field: 'dport', op: 'eq', values: [r(53)] }]);
    expect(m(19)).toEqual({ kind: 'field', field: 'l4proto', op: 'eq', values: [r(132)] });
    expect(m(20)).toEqual({ kind: 'field', field: 'l4proto', op: 'eq', values: [r(33)] });
    expect(m(21)).toEqual({ kind: 'field', field: 'l4proto', op: 'eq', values: [r(136)] });
  });

  it('parses protocol and family selectors', () => {
    // In an inet table `ip protocol` holds only for IPv4 packets.
    expect(bare(rule(input, 22))).toEqual([
      { kind: 'field', field: 'nfproto', op: 'eq', values: [sym('ipv4')] },
      { kind: 'field', field: 'l4proto', op: 'eq', values: [r(47)] },
    ]);
    expect(bare(rule(input, 23))[1]).toEqual({ kind: 'field', field: 'l4proto', op: 'eq', values: [r(58)] });
    expect(bare(rule(input, 25))).toEqual([
      { kind: 'field', field: 'l4proto', op: 'eq', values: [r(6), r(17)] },
      { kind: 'field', field: 'dport', op: 'eq', values: [r(53)] },
    ]);
    expect(m(26)).toEqual({ kind: 'field', field: 'nfproto', op: 'eq', values: [sym('ipv6')] });
    expect(m(27)).toEqual({ kind: 'field', field: 'nfproto', op: 'eq', values: [sym('ipv4')] });
    expect(m(28, 2)).toEqual({ kind: 'field', field: 'icmp.code', op: 'eq', values: [r(0)] });
    expect(m(30)).toEqual({
      kind: 'field',
      field: 'iifname',
      op: 'eq',
      values: [{ kind: 'name', value: 'lo', wildcard: false }],
    });
    expect(m(31)).toMatchObject({ field: 'oifname' });
    expect(bare(rule(input, 55)).slice(1)).toEqual([
      { kind: 'field', field: 'l4proto', op: 'eq', values: [r(58)] },
      { kind: 'field', field: 'icmpv6.type', op: 'eq', values: [r(128)] },
      { kind: 'field', field: 'icmpv6.code', op: 'eq', values: [r(0)] },
    ]);
  });

  it('keeps unmodelled conditions as opaque matches with a warning naming the rule', () => {
    for (const h of [33, 34, 37, 48, 49]) {
      expect(m(h)).toMatchObject({ kind: 'opaque', category: 'unsupported-field' });
      expect(rule(input, h).verdict).toBeDefined();
    }
    expect(rule(input, 33).matches[0]?.text).toBe('ip ttl 1');
    const w = rs.warnings.find((x) => x.origin?.handle === 33);
    expect(w).toMatchObject({ code: 'nft-unsupported-field', origin: { line: 1, handle: 33 } });
    expect(w?.message).toContain('ip ttl 1');
  });

  it('makes limit, quota and ct count conditions of their rule', () => {
    expect(rule(input, 35).matches[0]).toMatchObject({
      kind: 'opaque',
      category: 'limit',
      text: 'limit rate over 10/minute',
    });
    expect(rule(input, 36).matches[0]).toMatchObject({
      kind: 'opaque',
      category: 'quota',
      text: 'quota over 10 mbytes',
    });
    expect(rule(input, 50).matches[0]).toMatchObject({ kind: 'opaque', category: 'limit', text: 'ct count over 10' });
  });

  it('parses continue, log flags and reject with an icmp type', () => {
    expect(rule(input, 39).verdict).toEqual({ kind: 'continue' });
    expect(rule(input, 51).statements).toEqual([{ kind: 'log', prefix: 'in: ', text: 'log prefix "in: " flags all' }]);
    expect(rule(input, 51).verdict).toBeUndefined();
    expect(rule(input, 52).verdict).toEqual({ kind: 'reject', with: 'icmp host-unreachable' });
    expect(rule(input, 40).statements).toEqual([{ kind: 'other', text: 'ct mark set 0x5' }]);
  });

  it('keeps arp, bridge and netdev tables out of scope with one warning each', () => {
    for (const [family, name] of [
      ['arp', 'arpt'],
      ['bridge', 'br'],
      ['netdev', 'nd'],
    ] as const) {
      const t = table(rs, family, name);
      expect(t.outOfScope).toBe(true);
      expect(t.chains).toHaveLength(1);
      expect(rs.warnings.filter((w) => w.message.includes(`table ${family} ${name}`))).toEqual([
        expect.objectContaining({ code: 'nft-out-of-scope-family', origin: t.origin }),
      ]);
    }
    expect(chain(table(rs, 'netdev', 'nd'), 'ingress').base).toMatchObject({ hook: 'ingress', priority: -500 });
    // Rules of out-of-scope tables add no per-rule warnings.
    expect(rs.warnings.some((w) => w.message.includes('arp operation'))).toBe(false);
  });
});

describe('convertNftJson (objects built by other parsers)', () => {
  it('uses $origin and $text instead of computing them', () => {
    const items = [
      { table: { family: 'ip', name: 'f', $origin: { line: 1, column: 1 } } },
      {
        chain: {
          family: 'ip',
          table: 'f',
          name: 'in',
          type: 'filter',
          hook: 'input',
          prio: 'filter',
          policy: 'drop',
          $origin: { line: 2, column: 3 },
        },
      },
      {
        rule: {
          family: 'ip',
          table: 'f',
          chain: 'in',
          expr: [{ match: { op: '==', left: tcpDport, right: 'ssh' } }, { accept: null }],
          $origin: { line: 3, column: 5 },
          $text: 'tcp dport ssh accept',
        },
      },
    ];
    const rs = convertNftJson(items, 'ruleset.nft');
    const c = chain(table(rs, 'ip', 'f'), 'in');
    expect(c.origin).toEqual({ file: 'ruleset.nft', line: 2, column: 3 });
    expect(c.rules[0]?.origin).toEqual({ file: 'ruleset.nft', line: 3, column: 5 });
    expect(c.rules[0]?.text).toBe('tcp dport ssh accept');
    expect((c.rules[0] as Rule).matches[1]).toMatchObject({ field: 'dport', values: [r(22)] });
  });

  it('takes the file of an object from $origin.file (nft include)', () => {
    const items = doc([[{ drop: null }]]);
    (items[2] as { rule: Record<string, unknown> }).rule.$origin = { file: 'inc.nft', line: 4, column: 2 };
    const c = chain(table(convertNftJson(items, 'main.nft'), 'inet', 't'), 'c');
    expect(c.rules[0]?.origin).toEqual({ file: 'inc.nft', line: 4, column: 2, handle: 10 });
    expect(c.origin.file).toBe('main.nft');
  });

  it('maps standard priority names, with offsets', () => {
    const chainWith = (prio: unknown, family = 'ip') => {
      const rs = convertNftJson(
        [
          { table: { family, name: 'f' } },
          { chain: { family, table: 'f', name: 'c', type: 'filter', hook: 'forward', prio } },
        ],
        'x',
      );
      return rs.tables[0]?.chains[0]?.base;
    };
    expect(chainWith('raw')?.priority).toBe(-300);
    expect(chainWith('mangle')?.priority).toBe(-150);
    expect(chainWith('dstnat')?.priority).toBe(-100);
    expect(chainWith('filter')?.priority).toBe(0);
    expect(chainWith('security')?.priority).toBe(50);
    expect(chainWith('srcnat')?.priority).toBe(100);
    expect(chainWith('filter + 10')?.priority).toBe(10);
    expect(chainWith('mangle - 5')?.priority).toBe(-155);
    expect(chainWith('filter', 'bridge')?.priority).toBe(-200);
    expect(chainWith('filter')?.policy).toBe('accept');
    expect(() => chainWith('sideways')).toThrow(/nftables\[1\]\.chain\.prio.*expected a priority/);
  });

  it('treats an absent op as equality or set membership', () => {
    const { rule: a } = onlyRule([
      { match: { left: tcpDport, right: { set: [22, { range: [80, 81] }] } } },
      { accept: null },
    ]);
    expect((a.matches[1] as FieldMatch).values).toEqual([r(22), r(80, 81)]);
    expect((a.matches[1] as FieldMatch).op).toBe('eq');
  });

  it('unwraps {"elem": ...} set elements and accepts service, protocol and icmp names', () => {
    const { rule: a } = onlyRule([
      { match: { op: '==', left: tcpDport, right: { set: [{ elem: { val: 'https', timeout: 60 } }, 'domain'] } } },
      { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'tcp' } },
    ]);
    expect(bare(a)).toEqual([
      { kind: 'field', field: 'l4proto', op: 'eq', values: [r(6)] },
      { kind: 'field', field: 'dport', op: 'eq', values: [r(443), r(53)] },
      { kind: 'field', field: 'l4proto', op: 'eq', values: [r(6)] },
    ]);
    expect(a.text).toBe('tcp dport { https timeout 60s, domain } meta l4proto tcp');
  });

  it('does not repeat a protocol dependency within a rule', () => {
    const { rule: a } = onlyRule([
      { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'sport' } }, right: 1024 } },
      { match: { op: '==', left: tcpDport, right: 22 } },
    ]);
    expect(a.matches.map((x) => (x.kind === 'field' ? x.field : x.kind))).toEqual(['l4proto', 'sport', 'dport']);
  });

  it('parses a singleton concatenation value and a concatenation with a negated set', () => {
    const left = { concat: [{ payload: { protocol: 'ip', field: 'daddr' } }, tcpDport] };
    const { rule: a } = onlyRule([{ match: { op: '!=', left, right: { concat: ['10.0.0.1', 22] } } }]);
    expect(bare(a)[1]).toEqual({
      kind: 'concat',
      fields: ['ip.daddr', 'dport'],
      op: 'ne',
      tuples: [[r(v4('10.0.0.1')), r(22)]],
    });
  });

  it('parses queue verdicts and reject without a type', () => {
    const { rule: a } = onlyRule([{ queue: { num: 3, flags: ['bypass'] } }]);
    expect(a.verdict).toEqual({ kind: 'queue' });
    expect(a.text).toBe('queue num 3 bypass');
    expect(onlyRule([{ reject: null }]).rule.verdict).toEqual({ kind: 'reject' });
  });

  it('makes an unknown expression in a match a may-match condition, never an always-match', () => {
    const { rule: a, rs } = onlyRule([
      { match: { op: '==', left: { socket: { key: 'transparent' } }, right: 1 } },
      { match: { op: '==', left: tcpDport, right: 'no-such-service' } },
      { accept: null },
    ]);
    expect(bare(a)).toEqual([
      { kind: 'opaque', category: 'unsupported-field', reason: expect.any(String) },
      { kind: 'field', field: 'l4proto', op: 'eq', values: [r(6)] },
      { kind: 'opaque', category: 'unsupported-expression', reason: expect.stringContaining('no-such-service') },
    ]);
    expect(a.verdict).toEqual({ kind: 'accept' });
    expect(rs.warnings.map((w) => w.code)).toEqual(['nft-unsupported-field', 'nft-unsupported-expression']);
    expect(rs.warnings[0]?.origin).toEqual({ file: 'mem.json', line: 1, handle: 10 });
  });

  it('makes an unknown statement an opaque condition with its JSON as text', () => {
    const { rule: a, rs } = onlyRule([{ 'frobnicate now': { level: 3 } }, { drop: null }]);
    expect(a.matches).toEqual([
      {
        kind: 'opaque',
        category: 'unsupported-expression',
        reason: 'statement "frobnicate now" is not understood',
        text: '{"frobnicate now":{"level":3}}',
      },
    ]);
    expect(rs.warnings).toHaveLength(1);
  });

  it('makes an unknown named set or a set filled at run time an unknown-set condition', () => {
    const saddr = { payload: { protocol: 'ip', field: 'saddr' } };
    const sets = [
      { set: { family: 'inet', table: 't', name: 'seen', type: 'ipv4_addr', flags: ['dynamic'], elem: ['10.0.0.1'] } },
    ];
    const rs = convertNftJson(
      doc(
        [
          [{ match: { op: '==', left: saddr, right: '@nope' } }],
          [{ match: { op: '==', left: saddr, right: '@seen' } }],
        ],
        sets,
      ),
      'mem.json',
    );
    const rules = chain(table(rs, 'inet', 't'), 'c').rules;
    expect(rules[0]?.matches[0]).toMatchObject({
      kind: 'opaque',
      category: 'unknown-set',
      reason: expect.stringContaining('@nope'),
    });
    expect(rules[1]?.matches[0]).toMatchObject({
      kind: 'opaque',
      category: 'unknown-set',
      reason: expect.stringContaining('run time'),
    });
    expect(rs.warnings.map((w) => w.code)).toEqual(['nft-unknown-set', 'nft-unknown-set']);
  });

  it('parses the explicit bitmask form of ct state', () => {
    const left = { '&': [{ ct: { key: 'state' } }, ['established', 'related']] };
    const { rule: a } = onlyRule([{ match: { op: '!=', left, right: 0 } }]);
    expect(bare(a)).toEqual([
      { kind: 'field', field: 'ct.state', op: 'eq', values: [sym('established'), sym('related')] },
    ]);
    expect(a.text).toBe('ct state & (established|related) != 0');
  });

  it('keeps a verdict map on an unmodelled key as an opaque condition and warns that it may decide', () => {
    const key = { payload: { protocol: 'ip', field: 'dscp' } };
    const { rule: a, rs } = onlyRule([{ vmap: { key, data: { set: [['cs1', { drop: null }]] } } }]);
    expect(a.matches).toMatchObject([{ kind: 'opaque', category: 'unsupported-field' }]);
    expect(a.verdict).toBeUndefined();
    expect(rs.warnings[0]?.message).toContain('verdict it may give');
  });

  it('adds elements given as separate "element" objects to their set', () => {
    const rs = convertNftJson(
      [
        { table: { family: 'ip', name: 'f' } },
        { set: { family: 'ip', table: 'f', name: 's', type: 'inet_service' } },
        { element: { family: 'ip', table: 'f', name: 's', elem: [22, { range: [8000, 8001] }] } },
      ],
      'x',
    );
    expect(rs.tables[0]?.sets[0]?.elements).toEqual([[r(22)], [r(8000, 8001)]]);
  });

  it('ignores named stateful objects and warns about unknown top-level objects', () => {
    const rs = convertNftJson(
      [
        { metainfo: { version: '1.0.6' } },
        { table: { family: 'ip', name: 'f' } },
        { counter: { family: 'ip', table: 'f', name: 'c' } },
        { gizmo: {} },
      ],
      'x',
    );
    expect(rs.warnings).toEqual([
      expect.objectContaining({ code: 'nft-unknown-object', message: expect.stringContaining('nftables[3].gizmo') }),
    ]);
  });
});

describe('convertNftJson: map-valued nat targets (JSON as nft 1.0.6 prints it)', () => {
  const natChain = {
    chain: { family: 'ip', table: 'n', name: 'pre', type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' },
  };
  const natRule = (stmt: unknown, extra: unknown[] = []): Rule => {
    const rs = convertNftJson(
      [
        { table: { family: 'ip', name: 'n' } },
        ...extra,
        natChain,
        { rule: { family: 'ip', table: 'n', chain: 'pre', handle: 5, expr: [stmt] } },
      ],
      'nat.json',
    );
    return chain(table(rs, 'ip', 'n'), 'pre').rules[0] as Rule;
  };

  it('matches the key of an anonymous map (tcp dport map { 80 : 10.0.0.2, 8080 : 10.0.0.3 })', () => {
    const x = natRule({
      dnat: {
        addr: {
          map: {
            key: tcpDport,
            data: {
              set: [
                [80, '10.0.0.2'],
                [8080, '10.0.0.3'],
              ],
            },
          },
        },
      },
    });
    expect(x.verdict).toMatchObject({ kind: 'nat', type: 'dnat', family: 'ipv4' });
    expect(x.verdict).not.toHaveProperty('addr');
    expect(bare(x)).toEqual([
      { kind: 'field', field: 'l4proto', op: 'eq', values: [r(6)] },
      { kind: 'field', field: 'dport', op: 'eq', values: [r(80), r(8080)] },
    ]);
  });

  it('matches a concatenated key and leaves out the port when the address comes from a map', () => {
    const x = natRule({
      dnat: {
        addr: {
          map: {
            key: { concat: [{ payload: { protocol: 'ip', field: 'saddr' } }, tcpDport] },
            data: { set: [[{ concat: ['10.0.0.1', 80] }, '10.0.0.2']] },
          },
        },
        port: 8080,
      },
    });
    expect(x.verdict).toEqual({ kind: 'nat', type: 'dnat', family: 'ipv4', text: expect.any(String) });
    expect(bare(x)).toEqual([
      { kind: 'field', field: 'l4proto', op: 'eq', values: [r(6)] },
      { kind: 'concat', fields: ['ip.saddr', 'dport'], op: 'eq', tuples: [[r(v4('10.0.0.1')), r(80)]] },
    ]);
  });

  it('keeps a fixed address and matches the key of a port map', () => {
    const x = natRule({
      dnat: { addr: '10.0.0.9', port: { map: { key: tcpDport, data: { set: [[80, 8080]] } } } },
    });
    expect(x.verdict).toMatchObject({ addr: { lo: v4('10.0.0.9'), hi: v4('10.0.0.9') } });
    expect(x.verdict).not.toHaveProperty('port');
    expect(bare(x)).toEqual([
      { kind: 'field', field: 'l4proto', op: 'eq', values: [r(6)] },
      { kind: 'field', field: 'dport', op: 'eq', values: [r(80)] },
    ]);
  });

  it('makes the key condition opaque when the map is not declared', () => {
    const x = natRule({
      snat: { addr: { map: { key: { payload: { protocol: 'ip', field: 'daddr' } }, data: '@nope' } } },
    });
    expect(x.verdict).toMatchObject({ kind: 'nat', type: 'snat' });
    expect(x.matches).toEqual([expect.objectContaining({ kind: 'opaque', category: 'unknown-set' })]);
  });
});

describe('convertNftJson: conditions implied by a reject type (nft lists them without)', () => {
  const l4tcp = { kind: 'field', field: 'l4proto', op: 'eq', values: [r(6)] };
  const nf = (v: string) => ({ kind: 'field', field: 'nfproto', op: 'eq', values: [sym(v)] });
  const rejectIn = (family: string, expr: unknown[]): Rule => {
    const rs = convertNftJson(
      [
        { table: { family, name: 't' } },
        { chain: { family, table: 't', name: 'c', type: 'filter', hook: 'input', prio: 0, policy: 'accept' } },
        { rule: { family, table: 't', chain: 'c', handle: 2, expr } },
      ],
      'reject.json',
    );
    return chain(table(rs, family, 't'), 'c').rules[0] as Rule;
  };

  it('adds l4proto tcp to reject with tcp reset where nft does not print it (ip, ip6)', () => {
    for (const family of ['ip', 'ip6']) {
      const x = rejectIn(family, [{ reject: { type: 'tcp reset' } }]);
      expect(bare(x)).toEqual([l4tcp]);
      expect(x.matches[0]?.text).toBe('reject with tcp reset');
    }
  });

  it('does not add l4proto tcp twice (inet prints it; tcp dport implies it)', () => {
    const listed = [{ match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'tcp' } }];
    expect(bare(rejectIn('inet', [...listed, { reject: { type: 'tcp reset' } }]))).toEqual([l4tcp]);
    const dport = [{ match: { op: '==', left: tcpDport, right: 22 } }, { reject: { type: 'tcp reset' } }];
    expect(bare(rejectIn('ip', dport))).toEqual([l4tcp, { kind: 'field', field: 'dport', op: 'eq', values: [r(22)] }]);
  });

  it('adds nfproto ipv4 to reject with icmp and nfproto ipv6 to reject with icmpv6 in inet tables', () => {
    expect(bare(rejectIn('inet', [{ reject: { type: 'icmp', expr: 'host-unreachable' } }]))).toEqual([nf('ipv4')]);
    expect(bare(rejectIn('inet', [{ reject: { type: 'icmpv6', expr: 'admin-prohibited' } }]))).toEqual([nf('ipv6')]);
    const explicit = [{ match: { op: '==', left: { meta: { key: 'nfproto' } }, right: 'ipv4' } }];
    expect(bare(rejectIn('inet', [...explicit, { reject: { type: 'icmp', expr: 'host-unreachable' } }]))).toEqual([
      nf('ipv4'),
    ]);
  });

  it('adds nothing for icmpx, for plain reject, or for icmp in an ip table', () => {
    expect(rejectIn('inet', [{ reject: { type: 'icmpx', expr: 'admin-prohibited' } }]).matches).toEqual([]);
    expect(rejectIn('inet', [{ reject: null }]).matches).toEqual([]);
    expect(rejectIn('ip', [{ reject: { type: 'icmp', expr: 'port-unreachable' } }]).matches).toEqual([]);
  });
});

describe('renderNftExpr', () => {
  it('renders expressions and statements in nft syntax', () => {
    expect(renderNftExpr({ match: { op: '==', left: tcpDport, right: { set: [80, 443] } } })).toBe(
      'tcp dport { 80, 443 }',
    );
    expect(renderNftExpr({ match: { op: '!=', left: { meta: { key: 'oifname' } }, right: 'eth*' } })).toBe(
      'oifname != "eth*"',
    );
    expect(renderNftExpr({ match: { op: '>=', left: tcpDport, right: 1024 } })).toBe('tcp dport >= 1024');
    expect(
      renderNftExpr({
        match: {
          op: '==',
          left: { payload: { protocol: 'ip', field: 'saddr' } },
          right: { prefix: { addr: '10.0.0.0', len: 8 } },
        },
      }),
    ).toBe('ip saddr 10.0.0.0/8');
    expect(renderNftExpr({ vmap: { key: tcpDport, data: { set: [[22, { jump: { target: 'ssh' } }]] } } })).toBe(
      'tcp dport vmap { 22 : jump ssh }',
    );
    expect(renderNftExpr({ dnat: { addr: '10.0.0.1', port: { range: [80, 81] } } })).toBe('dnat to 10.0.0.1:80-81');
    expect(renderNftExpr({ limit: { rate: 10, per: 'minute', burst: 20, inv: true } })).toBe(
      'limit rate over 10/minute burst 20 packets',
    );
    expect(renderNftExpr({ accept: null })).toBe('accept');
    expect(renderNftExpr({ unknown: [1] })).toBe('{"unknown":[1]}');
  });
});

describe('errors', () => {
  it('reports truncated JSON with line and column', () => {
    const text = '{"nftables": [\n  {"table": {"family": "inet", "name": "f"}},\n  {"chain": {"family": "inet",';
    const e = parseError(() => parseNftJson(text, 'cut.json'));
    expect(e).toMatchObject({ file: 'cut.json', line: 3, token: '' });
    expect(e.message).toMatch(/^cut\.json:3:\d+: invalid JSON: unexpected end of input; expected/);
  });

  it('reports a JSON syntax error at the offending token', () => {
    const e = parseError(() =>
      parseNftJson('{"nftables": [\n  {"table": {"family": "inet" "name": "f"}}\n]}', 'bad.json'),
    );
    expect(e).toMatchObject({ line: 2, column: 31, token: '"', expected: "',' or '}'" });
  });

  it('rejects JSON that is not an nftables document', () => {
    expect(() => parseNftJson('[1, 2]', 'x.json')).toThrow(
      /x\.json:1:1: .*expected an object \{"nftables": \[\.\.\.\]\}/,
    );
    expect(() => parseNftJson('{"rules": []}', 'x.json')).toThrow(/no "nftables" array/);
  });

  it('names the JSON path and the line of the item for wrong shapes', () => {
    const text = JSON.stringify(
      {
        nftables: [
          { table: { family: 'inet', name: 't' } },
          { chain: { family: 'inet', table: 't', name: 'c' } },
          { rule: { family: 'inet', table: 't', chain: 'c', expr: [{ accept: null }, 42] } },
        ],
      },
      null,
      2,
    );
    const e = parseError(() => parseNftJson(text, 'pretty.json'));
    // The item's `{` is on the line before its "rule" key.
    expect(e.line).toBe(text.split('\n').findIndex((l) => l.includes('"rule"')));
    expect(e.message).toContain('nftables[2].rule.expr[1]');
    expect(e.token).toBe('42');
  });

  it('rejects wrong types in tables, chains and rules', () => {
    const t = { table: { family: 'inet', name: 't' } };
    const c = { chain: { family: 'inet', table: 't', name: 'c' } };
    expect(() => convertNftJson([{ table: { family: 'ipx', name: 't' } }], 'x')).toThrow(
      /nftables\[0\]\.table\.family.*expected one of ip, ip6/,
    );
    expect(() => convertNftJson([t, { chain: { family: 'inet', table: 'nope', name: 'c' } }], 'x')).toThrow(
      /unknown table 'inet nope'/,
    );
    expect(() =>
      convertNftJson([t, c, { rule: { family: 'inet', table: 't', chain: 'c', expr: 'accept' } }], 'x'),
    ).toThrow(/nftables\[2\]\.rule\.expr.*expected an array/);
    expect(() => convertNftJson([t, c, { rule: { family: 'inet', table: 't', chain: 'zz', expr: [] } }], 'x')).toThrow(
      /unknown chain 'zz'/,
    );
    expect(() =>
      convertNftJson(
        [t, c, { rule: { family: 'inet', table: 't', chain: 'c', expr: [{ match: { op: '==', left: tcpDport } }] } }],
        'x',
      ),
    ).toThrow(/nftables\[2\]\.rule\.expr\[0\]/);
    expect(() =>
      convertNftJson([t, { chain: { family: 'inet', table: 't', name: 'c', type: 'filter', hook: 'sideways' } }], 'x'),
    ).toThrow(/expected a hook/);
    expect(() => convertNftJson(['table'], 'x')).toThrow(/nftables\[0\]/);
  });

  // A jump to a chain that does not exist is an error, not a warning: nft refuses to load such a ruleset, so this
  // input cannot describe a real firewall, and analysing it would mean inventing what the jump does.
  it('rejects a jump to an unknown chain, naming the rule', () => {
    const e = parseError(() => convertNftJson(doc([[{ accept: null }], [{ jump: { target: 'missing' } }]]), 'j.json'));
    expect(e.message).toContain("jump to unknown chain 'missing'");
    expect(e.message).toContain('nftables[3].rule.expr[0]');
    expect(e.expected).toContain('a chain of table inet t (c)');
    expect(() =>
      convertNftJson(
        doc([[{ vmap: { key: tcpDport, data: { set: [[22, { goto: { target: 'gone' } }]] } } }]]),
        'j.json',
      ),
    ).toThrow(/unknown chain 'gone'/);
  });
});
