import { describe, expect, it } from 'vitest';
import type { Element, Packet, Ruleset } from '../firewall/model.js';
import { parseRuleset } from '../firewall/parse.js';
import { createPacketSpace } from './packet-space.js';
import type { Cube } from './types.js';

const r = (lo: bigint | number, hi: bigint | number = lo): Element => ({
  kind: 'range',
  lo: BigInt(lo),
  hi: BigInt(hi),
});
const sym = (value: string): Element => ({ kind: 'symbol', value });
const name = (value: string, wildcard = false): Element => ({ kind: 'name', value, wildcard });

const rs: Ruleset = parseRuleset(
  [
    'table inet f {',
    ' chain input {',
    '  type filter hook input priority 0; policy drop;',
    '  iifname "eth0" accept',
    '  iifname "veth*" drop',
    '  oifname "wg0" accept',
    ' }',
    '}',
  ].join('\n'),
  't.nft',
  { format: 'nft-text' },
);

const tcp: Packet = { family: 'ipv4', saddr: '10.0.0.1', daddr: '192.0.2.1', l4proto: 6, sport: 40000, dport: 22 };

describe('packet space', () => {
  const space = createPacketSpace([rs]);

  it('counts simple sets exactly', () => {
    const ssh = space.fromCube({ nfproto: [sym('ipv4')], l4proto: [r(6)], dport: [r(22)] });
    const ssh2 = space.fromCube({ nfproto: [sym('ipv4')], l4proto: [r(6)], dport: [r(22), r(80, 81)] });
    expect(ssh2.count()).toBe(ssh.count() * 3n);
    const net = space.fromCube({ 'ip.saddr': [r(0x0a000000, 0x0affffff)] });
    const all4 = space.fromCube({ nfproto: [sym('ipv4')] });
    expect(net.count() * 256n).toBe(all4.count());
    // Ports exist only for port protocols: an address cube with dport 0-65535 is only the port protocols.
    expect(space.fromCube({ dport: [r(0, 65535)] }).covers(space.fromCube({ l4proto: [r(1)] }))).toBe(false);
  });

  it('complements within the universe', () => {
    const a = space.fromCube({ l4proto: [r(6)], dport: [r(1, 1023)] });
    expect(a.not().not().equals(a)).toBe(true);
    expect(a.or(a.not()).equals(space.all())).toBe(true);
    expect(a.and(a.not()).isEmpty()).toBe(true);
    expect(a.count() + a.not().count()).toBe(space.all().count());
    expect(space.all().minus(a).equals(a.not())).toBe(true);
  });

  it('gives examples inside the set, preferring given values', () => {
    const a = space.fromCube({
      nfproto: [sym('ipv6')],
      'ip6.daddr': [r(1n << 120n, (1n << 121n) - 1n)],
      l4proto: [r(17)],
      dport: [r(53)],
    });
    const ex = a.example()!;
    expect(a.contains(ex)).toBe(true);
    expect(ex.family).toBe('ipv6');
    expect(ex.dport).toBe(53);
    const b = space.fromCube({ l4proto: [r(6)], dport: [r(1000, 2000)] });
    expect(b.example({ dport: 1500 })!.dport).toBe(1500);
    expect(b.example({ dport: 5 })!.dport).toBeGreaterThanOrEqual(1000);
    expect(space.none().example()).toBeUndefined();
  });

  it('round-trips packets', () => {
    const p = space.fromPacket(tcp);
    expect(p.count()).toBe(1n);
    expect(p.contains(tcp)).toBe(true);
    expect(p.contains({ ...tcp, dport: 23 })).toBe(false);
    expect(p.example()).toMatchObject({ saddr: '10.0.0.1', daddr: '192.0.2.1', dport: 22, sport: 40000 });
  });

  it('frees fields of a set: the same set as its cube without them', () => {
    const packets: Packet[] = [
      tcp,
      { family: 'ipv4', saddr: '198.51.100.7', daddr: '10.0.0.5', l4proto: 17, sport: 5353, dport: 53, iif: 'eth0' },
      { family: 'ipv4', saddr: '203.0.113.9', daddr: '10.0.0.5', l4proto: 1, icmpType: 8, icmpCode: 0 },
      {
        family: 'ipv6',
        saddr: '2001:db8::1',
        daddr: '2001:db8::2',
        l4proto: 6,
        sport: 1234,
        dport: 443,
        ctState: 'new',
      },
    ];
    for (const p of packets) {
      const one = space.fromPacket(p);
      const cube = one.cubes(1).cubes[0] as Record<string, unknown>;
      const { 'ip.saddr': _a, 'ip6.saddr': _b, sport: _c, ...rest } = cube;
      const free = space.anyValueOf(one, ['ip.saddr', 'ip6.saddr', 'sport']);
      expect(free.equals(space.fromCube(rest as Cube))).toBe(true);
      expect(free.contains({ ...p, saddr: p.family === 'ipv4' ? '192.0.2.200' : '2001:db8::99' })).toBe(true);
      expect(free.contains({ ...p, daddr: p.family === 'ipv4' ? '192.0.2.200' : '2001:db8::99' })).toBe(false);
    }
  });

  it('enumerates cubes whose union is the set', () => {
    const sets = [
      space.fromCube({ l4proto: [r(6)], dport: [r(22), r(80, 90), r(1000, 1999)] }),
      space.fromCube({ 'ip.saddr': [r(0x0a000003, 0x0a0000f0)] }),
      space.fromCube({ l4proto: [r(1), r(6)], 'ct.state': [sym('new'), sym('related')] }),
      space.fromCube({ iifname: [name('veth', true)] }).not(),
      space.fromCube({ mark: [r(0x4000)] }).not(),
    ];
    for (const s of sets) {
      const { cubes, truncated } = s.cubes(500);
      expect(truncated).toBe(false);
      let u = space.none();
      for (const c of cubes) u = u.or(space.fromCube(c));
      expect(u.equals(s)).toBe(true);
    }
    const { cubes } = sets[0]!.cubes();
    expect(cubes).toHaveLength(1);
    expect(cubes[0]!.dport).toEqual([r(22), r(80, 90), r(1000, 1999)]);
  });

  it('encodes interface names, prefixes and no interface', () => {
    const eth0 = space.fromCube({ iifname: [name('eth0')] });
    const veth = space.fromCube({ iifname: [name('veth', true)] });
    const none = space.fromCube({ iifname: [name('')] });
    expect(eth0.contains({ ...tcp, iif: 'eth0' })).toBe(true);
    expect(veth.contains({ ...tcp, iif: 'veth9' })).toBe(true);
    expect(veth.contains({ ...tcp, iif: 'eth1' })).toBe(false);
    expect(none.contains(tcp)).toBe(true);
    expect(veth.and(eth0).isEmpty()).toBe(true);
    const other = eth0.or(veth).or(none).not();
    const ex = other.example()!;
    expect(ex.iif).toBeDefined();
    expect(ex.iif === 'eth0' || ex.iif!.startsWith('veth')).toBe(false);
  });

  it('makes matches on absent fields false whatever the operator', () => {
    const ne = space.matchNode({ kind: 'field', field: 'dport', op: 'ne', values: [r(22)], text: 'tcp dport != 22' });
    const set = space.wrap(space.bdd.and(ne, space.universe));
    expect(
      set.contains({ family: 'ipv4', saddr: '1.1.1.1', daddr: '2.2.2.2', l4proto: 1, icmpType: 8, icmpCode: 0 }),
    ).toBe(false);
    expect(set.contains({ ...tcp, dport: 23 })).toBe(true);
    const v6 = space.matchNode({
      kind: 'field',
      field: 'ip6.saddr',
      op: 'ne',
      values: [r(1)],
      text: 'ip6 saddr != ::1',
    });
    expect(space.wrap(space.bdd.and(v6, space.universe)).contains(tcp)).toBe(false);
  });

  it('reads ct state and masks as the tracer does', () => {
    const est = space.wrap(
      space.bdd.and(
        space.matchNode({ kind: 'field', field: 'ct.state', op: 'eq', values: [sym('established'), r(4)], text: '' }),
        space.universe,
      ),
    );
    expect(est.contains({ ...tcp, ctState: 'established' })).toBe(true);
    expect(est.contains({ ...tcp, ctState: 'related' })).toBe(true);
    expect(est.contains({ ...tcp, ctState: 'new' })).toBe(false);
    const m = space.wrap(
      space.bdd.and(
        space.matchNode({ kind: 'field', field: 'mark', op: 'eq', values: [r(0x4000)], mask: 0x4000n, text: '' }),
        space.universe,
      ),
    );
    expect(m.contains({ ...tcp, mark: 0x4001 })).toBe(true);
    expect(m.contains({ ...tcp, mark: 0x1 })).toBe(false);
    expect(m.count() * 2n).toBe(space.all().count());
  });

  it('refuses to combine sets of different spaces', () => {
    const other = createPacketSpace([]);
    expect(() => space.all().and(other.all())).toThrow(/different packet spaces/);
  });

  it('cubes of a cube set do not mention unconstrained fields', () => {
    const c: Cube = { l4proto: [r(17)], dport: [r(53)] };
    const { cubes } = space.fromCube(c).cubes();
    expect(cubes).toEqual([c]);
  });
});

describe('widenDontCares', () => {
  /** The definition, one field at a time (what the region-by-region computation must equal). */
  function reference(space: ReturnType<typeof createPacketSpace>, node: number): number {
    const b = space.bdd;
    const support = b.support(node);
    const order = [...space.layout.values()].sort((x, y) => x.first - y.first);
    for (const l of order) {
      const f = l.field;
      if (!support.some((v) => v >= l.first && v < l.first + l.width)) continue;
      const vars = space.fieldVarSet([f]);
      const size =
        f === 'iifname' || f === 'oifname'
          ? space.atomCount
          : f === 'nfproto'
            ? 2
            : f === 'ct.state'
              ? 5
              : f === 'saddr.type' || f === 'daddr.type'
                ? 12
                : undefined;
      if (size !== undefined && size < 1 << l.width) {
        const invalid = space.fieldIntervals(f, [[BigInt(size), (1n << BigInt(l.width)) - 1n]]);
        node = b.or(node, b.and(invalid, b.exists(node, vars)));
      }
      const p = f === 'iifname' || f === 'oifname' ? 1 : space.present(f);
      if (p !== 1) node = b.or(node, b.diff(b.exists(node, vars), p));
    }
    return node;
  }

  it('equals the field-by-field definition on verdict sets and cubes', async () => {
    const { compileRuleset } = await import('./compile.js');
    const { generateNftRuleset } = await import('../lab/generate.js');
    let compared = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const g = parseRuleset(generateNftRuleset(seed).text, `gen-${seed}.nft`);
      const space = createPacketSpace([g], { interfaces: ['eth0'] });
      for (const hook of ['input', 'forward', 'output'] as const) {
        const c = compileRuleset(g, { hook, space });
        const sets = [c.verdict('accept'), c.verdict('drop'), c.verdict('reject'), c.uncertain()];
        sets.push(space.fromCube({ l4proto: [r(6)], dport: [r(22)] }).and(sets[0]!));
        sets.push(space.fromCube({ 'ip.saddr': [r(0x0a000000, 0x0affffff)] }).minus(sets[1]!));
        for (const s of sets) {
          expect(space.widenDontCares(s.node), `seed ${seed} ${hook}`).toBe(reference(space, s.node));
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(100);
  });
});
