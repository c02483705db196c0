import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UserError } from '../errors.js';
import {
  accept,
  base,
  chain,
  concat,
  counter,
  ct,
  daddr,
  dnat,
  dport,
  drop,
  eq,
  goto,
  icmp,
  iif,
  jump,
  masked,
  masquerade,
  ne,
  opaque,
  queue,
  redirect,
  reject,
  ret,
  rule,
  ruleset,
  saddr,
  setMark,
  snat,
  table,
  tcp,
  udp,
  vmap,
} from './ir-builders.js';
import type { Chain, Packet, Ruleset, Table } from './model.js';
import { parseRuleset } from './parse.js';
import { renderTrace } from './render-trace.js';
import { type TraceResult, type TraceStep, trace } from './tracer.js';

const web: Packet = {
  family: 'ipv4',
  iif: 'eth0',
  saddr: '203.0.113.7',
  daddr: '192.0.2.10',
  l4proto: 6,
  sport: 40000,
  dport: 443,
};

const v6: Packet = { ...web, family: 'ipv6', saddr: '2001:db8::7', daddr: '2001:db8:1::10' };

function inet(chains: Chain[], name = 'filter'): Table {
  return table('inet', name, chains);
}

function input(rules: Parameters<typeof base>[2], policy: 'accept' | 'drop' = 'drop', priority = 0): Chain {
  return base('input', { hook: 'input', policy, priority }, rules);
}

function kinds(r: TraceResult): string[] {
  return r.path.map((s) => s.kind);
}

function steps<K extends TraceStep['kind']>(r: TraceResult, kind: K): Extract<TraceStep, { kind: K }>[] {
  return r.path.filter((s): s is Extract<TraceStep, { kind: K }> => s.kind === kind);
}

function thrown(f: () => unknown): UserError {
  try {
    f();
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  throw new Error('expected a UserError');
}

describe('trace: verdicts within one base chain', () => {
  it('accepts on the first matching accept rule and names it', () => {
    const rs = ruleset([inet([input([rule([tcp, dport(22)], accept), rule([tcp, dport(80, 443)], accept)])])]);
    const r = trace(rs, web, { hook: 'input' });
    expect(r.verdict).toBe('accept');
    expect(r.decidedBy).toMatchObject({ kind: 'rule', table: 'filter', chain: 'input', position: 2, file: 'test.nft' });
    expect(r.uncertain).toBe(false);
  });

  it('applies the policy when no rule decides', () => {
    const rs = ruleset([inet([input([rule([tcp, dport(22)], accept)])])]);
    const r = trace(rs, web, { hook: 'input' });
    expect(r.verdict).toBe('drop');
    expect(r.decidedBy).toMatchObject({ kind: 'policy', chain: 'input', policy: 'drop' });
    expect(kinds(r)).toEqual(['chain', 'policy']);
  });

  it('reports reject as reject and stops there', () => {
    const rs = ruleset([inet([input([rule([tcp], reject), rule([], accept)], 'accept')])]);
    expect(trace(rs, web, { hook: 'input' }).verdict).toBe('reject');
  });

  it('records rules without a verdict and goes on (counter, continue)', () => {
    const rs = ruleset([
      inet([
        input([rule([], undefined, { statements: [counter] }), rule([tcp], { kind: 'continue' }), rule([], drop)]),
      ]),
    ]);
    const r = trace(rs, web, { hook: 'input' });
    expect(r.verdict).toBe('drop');
    expect(steps(r, 'rule').map((s) => s.effect)).toEqual(['none', 'continue', 'drop']);
  });

  it('applies a reject only to packets its type implies (nft list omits these dependencies)', () => {
    const rs = ruleset([
      inet([
        input(
          [
            rule([dport(53)], { kind: 'reject', with: 'tcp reset' }),
            rule([dport(53)], { kind: 'reject', with: 'icmp port-unreachable' }),
            rule([dport(53)], { kind: 'reject', with: 'icmpv6 admin-prohibited' }),
          ],
          'accept',
        ),
      ]),
    ]);
    const dns = { ...web, l4proto: 17, dport: 53 };
    expect(trace(rs, { ...web, dport: 53 }, { hook: 'input' }).decidedBy).toMatchObject({ position: 1 });
    expect(trace(rs, dns, { hook: 'input' }).decidedBy).toMatchObject({ position: 2 });
    expect(trace(rs, { ...v6, l4proto: 17, dport: 53 }, { hook: 'input' }).decidedBy).toMatchObject({ position: 3 });
  });

  it('treats queue as a final drop that is uncertain', () => {
    const rs = ruleset([inet([input([rule([tcp], queue)], 'accept')])]);
    const r = trace(rs, web, { hook: 'input' });
    expect(r.verdict).toBe('drop');
    expect(r.uncertain).toBe(true);
    expect(r.notes.some((n) => n.includes('queued to userspace: verdict depends on the consumer'))).toBe(true);
  });
});

describe('trace: several base chains and hooks', () => {
  it('runs prerouting before input and reports every base chain visited', () => {
    const rs = ruleset([
      inet([base('pre', { hook: 'prerouting', priority: -150 }, [rule([tcp], accept)]), input([], 'accept')]),
    ]);
    const r = trace(rs, web, { hook: 'input' });
    expect(r.hooks).toEqual(['prerouting', 'input']);
    expect(steps(r, 'chain').map((s) => `${s.hook}:${s.chain}`)).toEqual(['prerouting:pre', 'input:input']);
    expect(trace(rs, web, { hook: 'input', only: true }).hooks).toEqual(['input']);
  });

  it('lets an accept end only its own base chain: a later base chain can still drop', () => {
    const rs = ruleset([
      inet([input([rule([tcp, dport(8080)], accept)], 'accept', 0)], 'filter'),
      inet([input([rule([tcp, dport(8080)], drop)], 'accept', 10)], 'guard'),
    ]);
    const r = trace(rs, { ...web, dport: 8080 }, { hook: 'input' });
    expect(r.verdict).toBe('drop');
    expect(r.decidedBy).toMatchObject({ table: 'guard', position: 1 });
  });

  it('orders base chains by priority; on a tie the later-registered chain runs first, as in the kernel', () => {
    const rs = ruleset([
      inet([input([], 'accept', 10)], 'b'),
      inet([input([], 'accept', -5)], 'a'),
      inet([input([], 'accept', 10), base('input2', { hook: 'input', priority: 10 })], 'c'),
    ]);
    const r = trace(rs, web, { hook: 'input', only: true });
    expect(steps(r, 'chain').map((s) => `${s.table}/${s.chain}`)).toEqual([
      'a/input',
      'c/input2',
      'c/input',
      'b/input',
    ]);
  });

  it('runs nat chains inside the nat core at priority -100 (prerouting), ordered among themselves', () => {
    const rs = ruleset([
      table('ip', 'nat', [
        base('pre', { hook: 'prerouting', type: 'nat', priority: -300 }, [
          rule([udp], undefined, { statements: [counter] }),
        ]),
      ]),
      inet(
        [base('raw', { hook: 'prerouting', priority: -200 }), base('mangle', { hook: 'prerouting', priority: -150 })],
        'f',
      ),
      table('ip', 'nat2', [base('pre', { hook: 'prerouting', type: 'nat', priority: -110 })]),
      inet([base('late', { hook: 'prerouting', priority: -90 })], 'g'),
    ]);
    const r = trace(rs, web, { hook: 'prerouting' });
    expect(steps(r, 'chain').map((s) => `${s.table}/${s.chain}`)).toEqual([
      'f/raw',
      'f/mangle',
      'nat/pre',
      'nat2/pre',
      'g/late',
    ]);
    expect(steps(r, 'chain')[2]).toMatchObject({ priority: -300, runsAt: -100 });
  });

  it('consults no further nat chain on a hook once one has set up the binding', () => {
    const rs = ruleset([
      table('ip', 'a', [
        base('pre', { hook: 'prerouting', type: 'nat', priority: -100 }, [rule([tcp], dnat('10.0.0.1'))]),
      ]),
      table('ip', 'b', [
        base('pre', { hook: 'prerouting', type: 'nat', priority: -100 }, [rule([tcp], dnat('10.0.0.2'))]),
      ]),
    ]);
    const r = trace(rs, web, { hook: 'prerouting' });
    // equal priority: b registered later, runs first
    expect(r.packet.daddr).toBe('10.0.0.2');
    expect(steps(r, 'skip')).toMatchObject([{ table: 'a', chain: 'pre' }]);
    expect(steps(r, 'skip')[0]?.reason).toContain('nat binding was set up');
  });

  it('on a drop, later base chains are not visited', () => {
    const rs = ruleset([inet([input([], 'drop', -10)], 'first'), inet([input([], 'accept', 0)], 'second')]);
    const r = trace(rs, web, { hook: 'input' });
    expect(steps(r, 'chain').map((s) => s.table)).toEqual(['first']);
  });

  it('selects tables by family: ip for IPv4, ip6 for IPv6, inet for both, and skips out-of-scope ones', () => {
    const rs = ruleset([
      table('ip', 'four', [input([], 'accept')]),
      table('ip6', 'six', [input([], 'accept')]),
      inet([input([], 'accept')], 'both'),
      table('netdev', 'nd', [base('input', { hook: 'input' }, [rule([], drop)])]),
    ]);
    expect(steps(trace(rs, web, { hook: 'input' }), 'chain').map((s) => s.table)).toEqual(['both', 'four']);
    expect(steps(trace(rs, v6, { hook: 'input' }), 'chain').map((s) => s.table)).toEqual(['both', 'six']);
  });

  it('follows forward through prerouting, forward and postrouting; output through output and postrouting', () => {
    const hooks = ['prerouting', 'input', 'forward', 'output', 'postrouting'] as const;
    const rs = ruleset([inet(hooks.map((h) => base(h, { hook: h })))]);
    const seen = (hook: (typeof hooks)[number]) => steps(trace(rs, web, { hook }), 'chain').map((s) => s.hook);
    expect(seen('forward')).toEqual(['prerouting', 'forward', 'postrouting']);
    expect(seen('output')).toEqual(['output', 'postrouting']);
    expect(seen('prerouting')).toEqual(['prerouting']);
  });

  it('accepts when no base chain sees the packet, with a note', () => {
    const r = trace(ruleset([table('ip6', 'six', [input([], 'drop')])]), web, { hook: 'input' });
    expect(r.verdict).toBe('accept');
    expect(r.decidedBy).toBeUndefined();
    expect(r.notes.join('\n')).toContain('no base chain');
  });

  it('rejects hooks that cannot be traced', () => {
    expect(thrown(() => trace(ruleset([]), web, { hook: 'ingress' })).code).toBe('RAMPART_ERR_PACKET');
  });
});

describe('trace: jump, goto, return', () => {
  it('jump runs the target and comes back to the next rule of the caller', () => {
    const rs = ruleset([
      inet([input([rule([tcp], jump('tcp_in')), rule([], accept)]), chain('tcp_in', [rule([dport(22)], drop)])]),
    ]);
    const r = trace(rs, web, { hook: 'input' });
    expect(r.verdict).toBe('accept');
    expect(kinds(r)).toEqual(['chain', 'rule', 'jump', 'return', 'rule']);
    expect(steps(r, 'return')[0]).toMatchObject({ from: 'tcp_in', to: 'input', implicit: true, depth: 0 });
  });

  it('a rule inside a jumped-to chain decides, with depth 1', () => {
    const rs = ruleset([
      inet([input([rule([tcp], jump('web'))]), chain('web', [rule([dport(443)], accept, { comment: 'shop' })])]),
    ]);
    const r = trace(rs, web, { hook: 'input' });
    expect(r.verdict).toBe('accept');
    expect(r.decidedBy).toMatchObject({ chain: 'web', position: 1, comment: 'shop' });
    expect(steps(r, 'rule')[1]).toMatchObject({ chain: 'web', depth: 1, effect: 'accept' });
  });

  it('explicit return goes back to the caller', () => {
    const rs = ruleset([
      inet([input([rule([], jump('a')), rule([], drop)], 'accept'), chain('a', [rule([tcp], ret), rule([], accept)])]),
    ]);
    const r = trace(rs, web, { hook: 'input' });
    expect(r.verdict).toBe('drop');
    expect(steps(r, 'return')[0]).toMatchObject({ implicit: false, from: 'a', to: 'input' });
  });

  it('goto does not come back: the end of the target applies the base policy', () => {
    const rs = ruleset([
      inet([input([rule([tcp], goto('g')), rule([], accept)], 'drop'), chain('g', [rule([dport(22)], accept)])]),
    ]);
    const r = trace(rs, web, { hook: 'input' });
    expect(r.verdict).toBe('drop');
    expect(r.decidedBy).toMatchObject({ kind: 'policy', chain: 'input' });
  });

  it('goto from a jumped-to chain returns to the chain that jumped', () => {
    const rs = ruleset([
      inet([
        input([rule([], jump('a')), rule([], reject)], 'accept'),
        chain('a', [rule([], goto('b'))]),
        chain('b', [rule([dport(1)], accept)]),
      ]),
    ]);
    const r = trace(rs, web, { hook: 'input' });
    expect(r.verdict).toBe('reject');
    expect(steps(r, 'return')[0]).toMatchObject({ from: 'b', to: 'input' });
  });

  it('return in a base chain applies its policy', () => {
    const rs = ruleset([inet([input([rule([tcp], ret), rule([], accept)], 'drop')])]);
    expect(trace(rs, web, { hook: 'input' }).decidedBy).toMatchObject({ kind: 'policy' });
  });

  it('reports a jump to a missing chain with its origin', () => {
    const rs = ruleset([inet([input([rule([tcp], jump('nope'), { line: 14 })])])], { file: '/etc/nftables.conf' });
    const e = thrown(() => trace(rs, web, { hook: 'input' }));
    expect(e.code).toBe('RAMPART_ERR_NO_CHAIN');
    expect(e.message).toContain('/etc/nftables.conf:14');
    expect(e.message).toContain("'nope'");
    expect(e.message).toContain('inet filter/input');
  });

  it('reports a jump loop', () => {
    const rs = ruleset([
      inet([input([rule([], jump('a'))]), chain('a', [rule([], jump('b'))]), chain('b', [rule([], jump('a'))])]),
    ]);
    const e = thrown(() => trace(rs, web, { hook: 'input' }));
    expect(e.code).toBe('RAMPART_ERR_LOOP');
    expect(e.message).toContain('input -> a -> b -> a');
  });

  it('reports a goto loop', () => {
    const rs = ruleset([
      inet([input([rule([], jump('a'))]), chain('a', [rule([], goto('b'))]), chain('b', [rule([], goto('a'))])]),
    ]);
    expect(thrown(() => trace(rs, web, { hook: 'input' })).code).toBe('RAMPART_ERR_LOOP');
  });

  it('caps the jump depth at 64', () => {
    const chains = Array.from({ length: 70 }, (_, i) => chain(`c${i}`, [rule([], jump(`c${i + 1}`))]));
    const rs = ruleset([inet([input([rule([], jump('c0'))]), ...chains, chain('c70')])]);
    const e = thrown(() => trace(rs, web, { hook: 'input' }));
    expect(e.code).toBe('RAMPART_ERR_LOOP');
    expect(e.message).toContain('deeper than 64');
  });

  it('notes jumps deeper than the nft kernel allows', () => {
    const chains = Array.from({ length: 20 }, (_, i) => chain(`c${i}`, [rule([], jump(`c${i + 1}`))]));
    const rs = ruleset([inet([input([rule([], jump('c0'))], 'accept'), ...chains, chain('c20')])]);
    expect(trace(rs, web, { hook: 'input' }).notes.join('\n')).toContain('deeper than 16');
  });
});

describe('trace: matching', () => {
  it('a match on a field the packet does not have is false, for eq and ne alike', () => {
    const ping: Packet = {
      family: 'ipv4',
      iif: 'eth0',
      saddr: '203.0.113.7',
      daddr: '192.0.2.10',
      l4proto: 1,
      icmpType: 8,
    };
    const rs = ruleset([
      inet([input([rule([ne('dport', 22)], drop), rule([eq('ip6.saddr', '::/0')], drop)], 'accept')]),
    ]);
    expect(trace(rs, ping, { hook: 'input' }).verdict).toBe('accept');
  });

  it('ne means "not in the set"', () => {
    const rs = ruleset([inet([input([rule([tcp, ne('dport', 80, 443)], drop)], 'accept')])]);
    expect(trace(rs, web, { hook: 'input' }).verdict).toBe('accept');
    expect(trace(rs, { ...web, dport: 22 }, { hook: 'input' }).verdict).toBe('drop');
  });

  it('matches addresses in prefixes and ranges, IPv4 and IPv6', () => {
    const rs = ruleset([
      inet([
        input([
          rule([saddr('203.0.113.0/25')], accept),
          rule([saddr('2001:db8::/64')], accept),
          rule([daddr('2001:db8:1::1-2001:db8:1::ff')], reject),
        ]),
      ]),
    ]);
    expect(trace(rs, web, { hook: 'input' }).verdict).toBe('accept');
    expect(trace(rs, { ...web, saddr: '203.0.113.200' }, { hook: 'input' }).verdict).toBe('drop');
    expect(trace(rs, v6, { hook: 'input' }).verdict).toBe('accept');
    expect(trace(rs, { ...v6, saddr: '2001:db8:5::1' }, { hook: 'input' }).verdict).toBe('reject');
  });

  it('matches large sets (binary search) the same as small ones', () => {
    const many = Array.from({ length: 500 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    const ports = Array.from({ length: 300 }, (_, i) => 1000 + 2 * i);
    const six = Array.from({ length: 50 }, (_, i) => `2001:db8:${i.toString(16)}::/48`);
    const rs = ruleset([
      inet([
        input(
          [rule([saddr(...many)], drop), rule([tcp, dport(...ports)], reject), rule([eq('ip6.saddr', ...six)], drop)],
          'accept',
        ),
      ]),
    ]);
    expect(trace(rs, { ...web, saddr: '10.1.243.9' }, { hook: 'input' }).verdict).toBe('drop');
    expect(trace(rs, { ...web, saddr: '10.1.244.9' }, { hook: 'input' }).verdict).toBe('accept');
    expect(trace(rs, { ...web, dport: 1598 }, { hook: 'input' }).verdict).toBe('reject');
    expect(trace(rs, { ...web, dport: 1599 }, { hook: 'input' }).verdict).toBe('accept');
    expect(trace(rs, { ...v6, saddr: '2001:db8:31::1' }, { hook: 'input' }).verdict).toBe('drop');
    expect(trace(rs, { ...v6, saddr: '2001:db8:32::1' }, { hook: 'input' }).verdict).toBe('accept');
  });

  it('matches interface names exactly or by prefix (nft eth*, iptables eth+)', () => {
    const rs = ruleset([
      inet([input([rule([iif('lo')], accept), rule([iif('wg*')], accept), rule([iif('vl+')], reject)])]),
    ]);
    expect(trace(rs, { ...web, iif: 'lo' }, { hook: 'input' }).verdict).toBe('accept');
    expect(trace(rs, { ...web, iif: 'lo0' }, { hook: 'input' }).verdict).toBe('drop');
    expect(trace(rs, { ...web, iif: 'wg0' }, { hook: 'input' }).verdict).toBe('accept');
    expect(trace(rs, { ...web, iif: 'vlan5' }, { hook: 'input' }).verdict).toBe('reject');
  });

  it('notes an unspecified input interface when a rule needed it', () => {
    const { iif: _, ...noIif } = web;
    const rs = ruleset([inet([input([rule([iif('lo')], accept), rule([tcp], drop)], 'accept')])]);
    const r = trace(rs, noIif, { hook: 'input' });
    expect(r.verdict).toBe('drop');
    expect(r.notes.join('\n')).toContain('no input interface was given (--iif)');
    expect(r.unspecified).toEqual(['iifname']);
  });

  it('has no output interface on input and no input interface on output', () => {
    const rs = ruleset([
      inet([
        input([rule([eq('oifname', 'eth0')], drop)], 'accept'),
        base('out', { hook: 'output' }, [rule([iif('eth0')], drop)]),
      ]),
    ]);
    const both = { ...web, oif: 'eth0' };
    expect(trace(rs, both, { hook: 'input' }).verdict).toBe('accept');
    expect(trace(rs, both, { hook: 'output' }).verdict).toBe('accept');
  });

  it('derives ct state, daddr type and tcp flags defaults', () => {
    const rs = ruleset([
      inet([
        input(
          [
            rule([ct('new'), eq('daddr.type', 'local'), masked('tcp.flags', 0x12, [0x02])], accept),
            rule([ct('established'), masked('tcp.flags', 0x10, [0x10])], reject),
          ],
          'drop',
        ),
        base('fwd', { hook: 'forward' }, [rule([eq('daddr.type', 'local')], drop)]),
      ]),
    ]);
    const r = trace(rs, web, { hook: 'input' });
    expect(r.verdict).toBe('accept');
    expect(r.packet).toMatchObject({ ctState: 'new', mark: 0, tcpFlags: 2, daddrType: 'local', saddrType: 'unicast' });
    expect(trace(rs, { ...web, ctState: 'established' }, { hook: 'input' }).verdict).toBe('reject');
    expect(trace(rs, web, { hook: 'forward' }).verdict).toBe('accept');
  });

  it('compares marks under a mask and sees a mark set earlier in the traversal', () => {
    const rs = ruleset([
      inet([
        base('pre', { hook: 'prerouting', type: 'filter', priority: -150 }, [
          rule([tcp], undefined, { statements: [setMark(0x4000, 0x4000)] }),
        ]),
        input([rule([masked('mark', 0x4000, [0x4000])], reject)], 'accept'),
      ]),
    ]);
    const r = trace(rs, { ...web, mark: 0x1 }, { hook: 'input' });
    expect(r.verdict).toBe('reject');
    expect(r.packet.mark).toBe(0x4001);
    expect(steps(r, 'rewrite')[0]).toMatchObject({ field: 'mark', from: '0x1', to: '0x4001' });
  });

  it('matches concatenations as tuples', () => {
    const rs = ruleset([
      inet([
        input([
          rule(
            [
              tcp,
              concat(
                ['ip.saddr', 'dport'],
                [
                  ['203.0.113.0/24', 22],
                  ['198.51.100.1', 443],
                ],
              ),
            ],
            accept,
          ),
        ]),
      ]),
    ]);
    expect(trace(rs, { ...web, dport: 22 }, { hook: 'input' }).verdict).toBe('accept');
    expect(trace(rs, web, { hook: 'input' }).verdict).toBe('drop');
    expect(trace(rs, { ...web, saddr: '198.51.100.1' }, { hook: 'input' }).verdict).toBe('accept');
  });

  it('matches ICMP type and code only on ICMP packets', () => {
    const rs = ruleset([inet([input([rule([icmp, eq('icmp.type', 8)], accept), rule([udp], accept)])])]);
    const ping: Packet = {
      family: 'ipv4',
      saddr: '203.0.113.7',
      daddr: '192.0.2.10',
      l4proto: 1,
      icmpType: 8,
      iif: 'eth0',
    };
    expect(trace(rs, ping, { hook: 'input' }).verdict).toBe('accept');
    expect(trace(rs, { ...ping, icmpType: 0 }, { hook: 'input' }).verdict).toBe('drop');
  });
});

describe('trace: verdict maps', () => {
  const rs = ruleset([
    inet([
      input([
        rule(
          [tcp],
          vmap(
            ['dport'],
            [
              [[22], jump('ssh')],
              [[443], accept],
              [['8000-8999'], drop],
            ],
          ),
        ),
        rule([], reject),
      ]),
      chain('ssh', [rule([saddr('198.51.100.0/24')], accept)]),
    ]),
  ]);

  it('applies the entry verdict for the key', () => {
    expect(trace(rs, web, { hook: 'input' }).verdict).toBe('accept');
    expect(trace(rs, { ...web, dport: 8443 }, { hook: 'input' }).verdict).toBe('drop');
    const r = trace(rs, { ...web, dport: 22 }, { hook: 'input' });
    expect(r.verdict).toBe('reject');
    expect(kinds(r)).toEqual(['chain', 'rule', 'jump', 'return', 'rule']);
  });

  it('goes on to the next rule when no entry matches', () => {
    const r = trace(rs, { ...web, dport: 25 }, { hook: 'input' });
    expect(r.verdict).toBe('reject');
    expect(steps(r, 'rule')[0]?.effect).toBe('vmap-miss');
  });
});

describe('trace: nat', () => {
  const natRs = (extraInput: Parameters<typeof input>[0] = []) =>
    ruleset([
      table('ip', 'nat', [
        base('prerouting', { hook: 'prerouting', type: 'nat', priority: -100 }, [
          rule([tcp, dport(443)], dnat('10.0.0.5', 8443)),
        ]),
        base('postrouting', { hook: 'postrouting', type: 'nat', priority: 100 }, [
          rule([eq('oifname', 'eth1')], masquerade),
        ]),
      ]),
      inet([
        input(extraInput, 'accept'),
        base('forward', { hook: 'forward', policy: 'drop' }, [rule([tcp, dport(8443), daddr('10.0.0.5')], accept)]),
      ]),
    ]);

  it('rewrites the destination for the rest of the traversal', () => {
    const r = trace(natRs(), { ...web, oif: 'eth1' }, { hook: 'forward' });
    expect(r.verdict).toBe('accept');
    expect(r.packet).toMatchObject({ daddr: '10.0.0.5', dport: 8443, saddr: '203.0.113.7' });
    expect(steps(r, 'rewrite').map((s) => `${s.field}:${s.from}->${s.to}`)).toEqual([
      'daddr:192.0.2.10->10.0.0.5',
      'dport:443->8443',
    ]);
    expect(steps(r, 'rule').map((s) => s.effect)).toEqual(['nat', 'accept', 'nat']);
    expect(r.decidedBy).toMatchObject({ chain: 'forward' });
    expect(r.notes.join('\n')).toContain('masquerade');
  });

  it('skips nat chains for packets that are not the first of their connection', () => {
    const r = trace(natRs(), { ...web, ctState: 'established' }, { hook: 'forward' });
    expect(r.verdict).toBe('drop');
    // forward drops it, so postrouting (and its nat chain) is never reached
    expect(steps(r, 'skip').map((s) => s.chain)).toEqual(['prerouting']);
    expect(r.packet.daddr).toBe('192.0.2.10');
  });

  it('a nat statement ends only its base chain', () => {
    const r = trace(natRs([rule([tcp, dport(8443)], drop)]), web, { hook: 'input' });
    expect(r.verdict).toBe('drop');
    expect(r.notes.join('\n')).toContain('routing decision');
  });

  it('treats a computed nat target (map lookup) as uncertain: a lookup miss lets the next nat chain decide', () => {
    const byMap = { ...dnat(undefined), text: 'dnat to ip saddr map @fwdmap' };
    const rs = ruleset([
      table('ip', 'nat', [base('pre', { hook: 'prerouting', type: 'nat', priority: -100 }, [rule([udp], redirect())])]),
      table('ip', 'natmap', [base('pre', { hook: 'prerouting', type: 'nat', priority: -100 }, [rule([], byMap)])]),
      inet([input([rule([eq('daddr.type', 'local'), dport(53)], reject)], 'accept')]),
    ]);
    const r = trace(rs, { ...web, l4proto: 17, dport: 53 }, { hook: 'input' });
    expect(r.uncertain).toBe(true);
    expect(r.opaque.map((o) => o.text)).toEqual(['dnat to ip saddr map @fwdmap']);
    expect(steps(r, 'rewrite')[0]).toMatchObject({ field: 'daddr', unknown: true });
    expect(steps(r, 'skip').map((s) => s.table)).toEqual(['nat']);
  });

  it('snat rewrites the source, redirect in output goes to loopback', () => {
    const rs = ruleset([
      table('ip', 'nat', [
        base('out', { hook: 'output', type: 'nat', priority: -100 }, [rule([tcp], redirect(3128))]),
        base('post', { hook: 'postrouting', type: 'nat', priority: 100 }, [rule([], snat('192.0.2.1'))]),
      ]),
    ]);
    const r = trace(rs, { ...web, dport: 80 }, { hook: 'output' });
    expect(r.packet).toMatchObject({ daddr: '127.0.0.1', dport: 3128, saddr: '192.0.2.1', daddrType: 'local' });
  });
});

describe('trace: opaque matches', () => {
  it('assumes an opaque match with no known outcome holds, marks the result uncertain and reports the other verdict', () => {
    const rs = ruleset([inet([input([rule([tcp, opaque('limit rate 10/second')], accept)], 'drop')])]);
    const r = trace(rs, web, { hook: 'input' });
    expect(r.verdict).toBe('accept');
    expect(r.uncertain).toBe(true);
    expect(r.opaque).toMatchObject([{ text: 'limit rate 10/second', category: 'limit', rule: { position: 1 } }]);
    expect(steps(r, 'rule')[0]?.opaque).toEqual(['limit rate 10/second']);
    expect(r.alternatives).toHaveLength(1);
    expect(r.alternatives?.[0]).toMatchObject({
      assumption: 'other-outcome',
      conditions: ["'limit rate 10/second' does not match"],
      verdict: 'drop',
    });
    expect(r.alternatives?.[0]?.decidedBy).toMatchObject({ kind: 'policy' });
  });

  it('takes the outcome of a fresh source for a stateful match (main verdict, certain), the other as the alternative', () => {
    const over = { ...opaque('limit rate over 10/second burst 4 packets'), fresh: false, otherwise: 'above 10/second' };
    const rs = ruleset([inet([input([rule([tcp, over], { kind: 'drop' })], 'accept')])]);
    const r = trace(rs, web, { hook: 'input' });
    // The kernel accepts a single packet under a `limit rate over` drop: so does the main verdict.
    expect(r.verdict).toBe('accept');
    expect(r.uncertain).toBe(false);
    expect(r.alternatives).toEqual([
      expect.objectContaining({ assumption: 'other-outcome', conditions: ['above 10/second'], verdict: 'drop' }),
    ]);
  });

  it('decides conntrack status from the path and TCP options from the packet, exactly', () => {
    const dnatted = {
      ...opaque('ct status dnat', 'unsupported-field'),
      fresh: false,
      decide: { kind: 'ct-status' as const, bits: ['dnat'], negate: false },
    };
    const rs = ruleset([inet([input([rule([tcp, dnatted], accept)], 'drop')])]);
    const r = trace(rs, web, { hook: 'input' });
    // No nat touched the packet: its connection has no dnat bit, the accept does not apply.
    expect(r.verdict).toBe('drop');
    expect(r.uncertain).toBe(false);
    expect(r.alternatives).toBeUndefined();
    const opt = (n: number) => ({
      ...opaque(`-m tcp --tcp-option ${n}`, 'unsupported-field'),
      fresh: n === 2,
      decide: { kind: 'tcp-option' as const, option: n, negate: false },
    });
    const t = ruleset([inet([input([rule([tcp, opt(64)], { kind: 'drop' }), rule([tcp, opt(2)], accept)], 'drop')])]);
    expect(trace(t, web, { hook: 'input' }).decidedBy).toMatchObject({ position: 2 });
    expect(trace(t, { ...web, tcpOptions: [64] }, { hook: 'input' }).decidedBy).toMatchObject({ position: 1 });
  });

  it('lists no alternative when both assumptions agree, and ignores opaque matches of rules that fail anyway', () => {
    const rs = ruleset([
      inet([
        input([
          rule([udp, opaque('limit rate 1/second')], accept),
          rule([tcp, opaque('quota 1 mbytes', 'quota')], undefined, { statements: [counter] }),
          rule([], accept),
        ]),
      ]),
    ]);
    const r = trace(rs, web, { hook: 'input' });
    expect(r.verdict).toBe('accept');
    expect(r.uncertain).toBe(true);
    expect(r.opaque.map((o) => o.text)).toEqual(['quota 1 mbytes']);
    expect(r.alternatives).toBeUndefined();
  });
});

describe('trace: packets', () => {
  it('rejects a packet whose addresses are not addresses or not of its family', () => {
    const rs = ruleset([]);
    expect(thrown(() => trace(rs, { ...web, saddr: '1.2.3' }, { hook: 'input' })).message).toContain("'1.2.3'");
    expect(thrown(() => trace(rs, { ...web, daddr: '::1' }, { hook: 'input' })).code).toBe('RAMPART_ERR_PACKET');
  });

  it('renders the verdict line first with the deciding rule', () => {
    const rs = ruleset(
      [
        inet([
          input([
            rule([], undefined, { statements: [counter] }),
            rule([tcp, dport(22)], drop, { line: 14 }),
            rule([tcp], jump('web')),
          ]),
          chain('web', [rule([dport(443)], drop)]),
        ]),
      ],
      {
        file: '/etc/nftables.conf',
      },
    );
    const text = renderTrace(trace(rs, { ...web, dport: 22 }, { hook: 'input' }));
    expect(text.split('\n')[0]).toBe(
      'verdict: DROP  (rule filter/input #2 at /etc/nftables.conf:14: "l4proto 6 dport 22 drop")',
    );
    const deep = renderTrace(trace(rs, web, { hook: 'input' }));
    expect(deep).toMatch(/\n {6}web #1 {2}\/etc\/nftables.conf:\d+ {2}"dport 443 drop" {2}=> drop/);
  });
});

describe('trace: a 100k-rule chain', () => {
  // How fast this is, is measured in bench/trace-bench.mjs (no timing assertions in tests: a loaded machine fails them).
  it('traces one packet through a 100k-rule chain to the last rule, and to the policy', () => {
    const rules = Array.from({ length: 100_000 }, (_, i) =>
      rule([tcp, eq('ip.saddr', `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`), dport(1 + (i % 60000))], accept),
    );
    const rs: Ruleset = ruleset([inet([input(rules)])]);
    const first = trace(rs, web, { hook: 'input' });
    const last = trace(rs, { ...web, saddr: '10.1.134.159', dport: 1 + (99999 % 60000) }, { hook: 'input' });
    expect(first.verdict).toBe('drop');
    expect(last.verdict).toBe('accept');
    expect(last.decidedBy).toMatchObject({ position: 100_000 });
  });
});

describe('trace: parsed fixtures (needs the parsers)', () => {
  const load = (path: string) => parseRuleset(readFileSync(path, 'utf8'), path);

  it('founding outage: HTTPS to the shop is dropped by the input policy, SSH is accepted', () => {
    const rs = load('test/fixtures/nftables/founding-outage.nft');
    const r = trace(rs, web, { hook: 'input' });
    expect(r.verdict).toBe('drop');
    expect(r.decidedBy).toMatchObject({ kind: 'policy', table: 'filter', chain: 'input' });
    expect(trace(rs, { ...web, dport: 22 }, { hook: 'input' }).verdict).toBe('accept');
  });

  it('multi-chain: an accept in one base chain does not stop a later base chain from dropping', () => {
    const rs = load('test/fixtures/nftables/multi-chain.nft');
    const r = trace(rs, { ...web, dport: 8080 }, { hook: 'input' });
    expect(r.verdict).toBe('drop');
    expect(r.decidedBy).toMatchObject({ kind: 'rule', table: 'guard', chain: 'input', position: 1 });
    expect(trace(rs, { ...web, saddr: '192.0.2.9' }, { hook: 'input' }).decidedBy).toMatchObject({ table: 'early' });
    expect(trace(rs, { ...web, saddr: '203.0.113.200', dport: 9000 }, { hook: 'input' }).verdict).toBe('drop');
    expect(trace(rs, { ...web, saddr: '203.0.113.20', dport: 9000 }, { hook: 'input' }).verdict).toBe('accept');
  });

  it('hardened web (nft text and nft JSON agree): shop open, SSH only from admins, ping rate-limited', () => {
    for (const file of ['test/fixtures/nftables/hardened-web.nft', 'test/fixtures/nftables/hardened-web.nft.json']) {
      const rs = load(file);
      expect(trace(rs, web, { hook: 'input' }).verdict).toBe('accept');
      expect(trace(rs, { ...web, dport: 22 }, { hook: 'input' }).verdict).toBe('drop');
      expect(trace(rs, { ...web, saddr: '198.51.100.9', dport: 22 }, { hook: 'input' }).verdict).toBe('accept');
      const ping = trace(rs, { ...web, l4proto: 1, icmpType: 8 }, { hook: 'input' });
      expect(ping.verdict).toBe('accept');
      expect(ping.uncertain).toBe(false);
      expect(ping.alternatives?.[0]).toMatchObject({ verdict: 'drop', conditions: ['above 10/second'] });
    }
  });

  const iptables = (name: string) => load(`test/fixtures/iptables/${name}`);

  it('iptables founding outage: the INPUT policy drops HTTPS; the commented SSH rule accepts', () => {
    const rs = iptables('founding-outage.rules');
    expect(trace(rs, web, { hook: 'input' }).decidedBy).toMatchObject({
      kind: 'policy',
      table: 'filter',
      chain: 'INPUT',
    });
    const ssh = trace(rs, { ...web, dport: 22 }, { hook: 'input' });
    expect(ssh.verdict).toBe('accept');
    expect(ssh.decidedBy).toMatchObject({
      chain: 'INPUT',
      position: 3,
      line: 8,
      comment: 'ssh only: block all other incoming',
    });
  });

  it('iptables hardened web: mangle PREROUTING runs before filter INPUT and drops a new SYN+ACK', () => {
    const rs = iptables('hardened-web.rules');
    const ok = trace(rs, web, { hook: 'input' });
    expect(ok.verdict).toBe('accept');
    expect(ok.decidedBy).toMatchObject({ chain: 'INPUT', comment: 'public web' });
    const synack = trace(rs, { ...web, tcpFlags: 0x12 }, { hook: 'input' });
    expect(synack.verdict).toBe('drop');
    expect(synack.decidedBy).toMatchObject({ table: 'mangle', chain: 'PREROUTING', position: 2 });
  });

  it('iptables docker host: a published port is DNATed in PREROUTING and accepted by the DOCKER chain', () => {
    const rs = iptables('docker-host.rules');
    const pkt: Packet = { ...web, oif: 'docker0', dport: 8080, daddrType: 'local' };
    const r = trace(rs, pkt, { hook: 'forward' });
    expect(r.verdict).toBe('accept');
    expect(r.packet).toMatchObject({ daddr: '172.17.0.2', dport: 80 });
    expect(r.decidedBy).toMatchObject({ table: 'filter', chain: 'DOCKER', position: 1 });
    const blocked = trace(rs, { ...pkt, saddr: '192.0.2.99' }, { hook: 'forward' });
    expect(blocked.decidedBy).toMatchObject({ chain: 'DOCKER-USER', position: 1 });
  });
});
