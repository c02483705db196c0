import { describe, expect, it } from 'vitest';
import type { Element } from '../firewall/model.js';
import { formatPacket, mergeCubes, normalizeElements, rangeToPrefixes, renderCube } from './describe.js';
import type { Cube } from './types.js';

const r = (lo: bigint | number, hi: bigint | number = lo): Element => ({
  kind: 'range',
  lo: BigInt(lo),
  hi: BigInt(hi),
});
const ip = (a: string): bigint => a.split('.').reduce((v, o) => (v << 8n) | BigInt(o), 0n);
const sym = (value: string): Element => ({ kind: 'symbol', value });

describe('normalizeElements', () => {
  it('coalesces adjacent and overlapping ranges and sorts them', () => {
    expect(normalizeElements([r(443), r(80), r(81, 90), r(85, 100)])).toEqual([r(80, 100), r(443)]);
  });
  it('orders ct states as the kernel lists them and removes duplicates', () => {
    expect(normalizeElements([sym('related'), sym('new'), sym('new')])).toEqual([sym('new'), sym('related')]);
  });
});

describe('rangeToPrefixes', () => {
  it('covers a range with the fewest prefixes', () => {
    expect(rangeToPrefixes(ip('10.0.0.0'), ip('10.0.1.255'), 32)).toEqual([
      { lo: ip('10.0.0.0'), hi: ip('10.0.1.255') },
    ]);
    expect(rangeToPrefixes(ip('10.0.0.1'), ip('10.0.0.3'), 32)).toHaveLength(2);
    expect(rangeToPrefixes(0n, (1n << 32n) - 1n, 32)).toHaveLength(1);
  });
  it('with a most, gives up past it', () => {
    expect(rangeToPrefixes(ip('10.0.0.1'), ip('10.0.0.3'), 32, 2)).toHaveLength(2);
    expect(rangeToPrefixes(ip('10.0.0.1'), ip('10.0.0.9'), 32, 2)).toBeUndefined();
  });
});

describe('address lists', () => {
  it('show six items, a range as its one or two prefixes or as lo-hi, and count the rest', () => {
    const els = [
      r(ip('10.0.0.1')),
      r(ip('10.0.0.2'), ip('10.0.0.3')),
      r(ip('10.0.0.5'), ip('10.0.0.6')),
      r(ip('10.0.0.9'), ip('10.0.0.20')),
      r(ip('10.0.1.1'), ip('10.0.1.2')),
      r(ip('10.0.2.0'), ip('10.0.2.255')),
      r(ip('10.0.3.7')),
    ];
    expect(renderCube({ 'ip.saddr': els.slice(0, 3) })).toBe('from 10.0.0.1,10.0.0.2/31,10.0.0.5,10.0.0.6 to any');
    // 10.0.1.1-10.0.1.2 is two prefixes across the cap: the first is the sixth item shown.
    expect(renderCube({ 'ip.saddr': els })).toBe(
      'from 10.0.0.1,10.0.0.2/31,10.0.0.5,10.0.0.6,10.0.0.9-10.0.0.20,10.0.1.1,...(+3) to any',
    );
  });
});

describe('mergeCubes', () => {
  it('merges cubes that differ in one field, and then in another', () => {
    const base: Cube = { l4proto: [r(6)], 'ip.daddr': [r(ip('192.0.2.10'))] };
    const cubes: Cube[] = [
      { ...base, dport: [r(80)], 'ip.saddr': [r(ip('10.0.0.0'), ip('10.0.0.255'))] },
      { ...base, dport: [r(443)], 'ip.saddr': [r(ip('10.0.0.0'), ip('10.0.0.255'))] },
      { ...base, dport: [r(80)], 'ip.saddr': [r(ip('10.0.1.0'), ip('10.0.1.255'))] },
      { ...base, dport: [r(443)], 'ip.saddr': [r(ip('10.0.1.0'), ip('10.0.1.255'))] },
    ];
    const merged = mergeCubes(cubes);
    expect(merged).toHaveLength(1);
    expect(renderCube(merged[0] as Cube)).toBe('tcp dport 80,443 from 10.0.0.0/23 to 192.0.2.10');
  });

  it('lets an unrestricted field absorb a restricted one', () => {
    const merged = mergeCubes([{ l4proto: [r(17)] }, { l4proto: [r(17)], dport: [r(53)] }]);
    expect(merged).toEqual([{ l4proto: [r(17)] }]);
  });

  it('keeps cubes that differ in two fields apart', () => {
    expect(
      mergeCubes([
        { l4proto: [r(6)], dport: [r(22)] },
        { l4proto: [r(17)], dport: [r(53)] },
      ]),
    ).toHaveLength(2);
  });
});

describe('renderCube', () => {
  it('renders the founding outage flow', () => {
    expect(renderCube({ l4proto: [r(6)], dport: [r(443)], 'ip.daddr': [r(ip('192.0.2.10'))] })).toBe(
      'tcp dport 443 from any to 192.0.2.10',
    );
  });
  it('renders udp port lists, interfaces and ct states', () => {
    expect(
      renderCube({
        l4proto: [r(17)],
        dport: [r(53), r(123)],
        'ip.saddr': [r(ip('10.0.0.0'), ip('10.255.255.255'))],
        iifname: [{ kind: 'name', value: 'eth0', wildcard: false }],
        'ct.state': [sym('new')],
      }),
    ).toBe('udp dport 53,123 from 10.0.0.0/8 to any iif eth0 ct new');
  });
  it('prints a range as a range when prefixes would be longer', () => {
    expect(renderCube({ 'ip.saddr': [r(ip('10.0.0.1'), ip('10.0.0.9'))] })).toBe('from 10.0.0.1-10.0.0.9 to any');
  });
  it('names the family when no address shows it', () => {
    expect(renderCube({ nfproto: [sym('ipv6')], l4proto: [r(6)], dport: [r(22)] })).toBe(
      'ip6 tcp dport 22 from any to any',
    );
  });
  it('leaves out full ranges', () => {
    expect(renderCube({ l4proto: [r(6)], sport: [r(0, 65535)], dport: [r(8000, 8100)] })).toBe(
      'tcp dport 8000-8100 from any to any',
    );
  });
});

describe('formatPacket', () => {
  const base = { family: 'ipv4', saddr: '203.0.113.7', daddr: '192.0.2.10', sport: 40000, dport: 443 } as const;
  it('names the protocol and the destination port in words', () => {
    expect(formatPacket({ ...base, l4proto: 6 })).toBe('tcp 203.0.113.7:40000 -> 192.0.2.10:443 (https)');
    expect(formatPacket({ ...base, l4proto: 17, dport: 53 })).toBe('udp 203.0.113.7:40000 -> 192.0.2.10:53 (domain)');
    expect(formatPacket({ ...base, l4proto: 6, dport: 25 })).toBe('tcp 203.0.113.7:40000 -> 192.0.2.10:25 (smtp)');
    expect(formatPacket({ ...base, l4proto: 6, dport: 44444 })).toBe('tcp 203.0.113.7:40000 -> 192.0.2.10:44444');
    expect(formatPacket({ ...base, family: 'ipv6', saddr: '2001:db8::7', daddr: '2001:db8::10', l4proto: 6 })).toBe(
      'tcp [2001:db8::7]:40000 -> [2001:db8::10]:443 (https)',
    );
  });
  it('gives no ports to protocols without them, and a number without a name says so', () => {
    expect(formatPacket({ ...base, l4proto: 47, sport: 0, dport: 0 })).toBe('gre 203.0.113.7 -> 192.0.2.10');
    expect(formatPacket({ ...base, l4proto: 112, sport: 0, dport: 0 })).toBe('vrrp 203.0.113.7 -> 192.0.2.10');
    expect(formatPacket({ ...base, l4proto: 7, sport: 0, dport: 0 })).toBe('protocol 7 203.0.113.7 -> 192.0.2.10');
    expect(formatPacket({ ...base, l4proto: 1, sport: 0, dport: 0, icmpType: 8, icmpCode: 0 })).toBe(
      'icmp 203.0.113.7 -> 192.0.2.10 type 8 code 0',
    );
  });
});
