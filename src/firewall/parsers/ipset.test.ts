import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ParseError } from '../../errors.js';
import { parseIpsetSave, resolveIpset } from './ipset.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/iptables');
const r = (lo: number | bigint, hi: number | bigint = lo) => ({ kind: 'range', lo: BigInt(lo), hi: BigInt(hi) });
const ip4 = (a: string) => a.split('.').reduce((v, o) => v * 256n + BigInt(o), 0n);

describe('parseIpsetSave', () => {
  const save = parseIpsetSave(readFileSync(join(FIXTURES, 'ipsets.save'), 'utf8'), 'ipsets.save');

  it('parses the real `ipset save` output of the ipset host', () => {
    expect([...save.sets.keys()]).toEqual([
      'blocklist',
      'admins',
      'web-ports',
      'svc',
      'mgmt-if',
      'partners',
      'scanners',
      'denied',
    ]);
    expect(save.warnings).toEqual([]);
    const admins = save.sets.get('admins')!;
    expect(admins).toMatchObject({ type: 'hash:ip', family: 'ipv4', dims: ['ip'] });
    expect(admins.set).toMatchObject({
      kind: 'set',
      name: 'admins',
      types: ['ipv4_addr'],
      elements: [[r(ip4('203.0.113.10'))], [r(ip4('203.0.113.11'))]],
      origin: { file: 'ipsets.save', line: 5 },
    });
    expect(save.sets.get('web-ports')).toMatchObject({
      dims: ['bport'],
      set: { types: ['inet_service'], elements: [[r(80)], [r(443)]] },
    });
    expect(save.sets.get('svc')!.set).toMatchObject({
      types: ['ipv4_addr', 'inet_proto', 'inet_service'],
      elements: [
        [r(ip4('10.0.0.5')), r(6), r(5432)],
        [r(ip4('10.0.0.6')), r(17), r(53)],
      ],
    });
    expect(save.sets.get('mgmt-if')!.set.elements).toEqual([
      [r(ip4('10.10.0.0'), ip4('10.10.255.255')), { kind: 'name', value: 'eth1', wildcard: false }],
    ]);
    expect(save.sets.get('denied')).toMatchObject({ type: 'list:set', members: ['blocklist', 'scanners'] });
  });

  it('applies hash:net nomatch entries: the more specific prefix wins', () => {
    expect(save.sets.get('blocklist')!.set.elements).toEqual([
      [r(ip4('192.0.2.0'), ip4('192.0.2.255'))],
      [r(ip4('198.51.100.0'), ip4('198.51.100.127'))],
    ]);
    const nested = parseIpsetSave(
      'create n hash:net\nadd n 10.0.0.0/8\nadd n 10.1.0.0/16 nomatch\nadd n 10.1.2.0/24\n',
      'n.save',
    );
    expect(nested.sets.get('n')!.set.elements).toEqual([
      [r(ip4('10.0.0.0'), ip4('10.0.255.255'))],
      [r(ip4('10.1.2.0'), ip4('10.1.2.255'))],
      [r(ip4('10.2.0.0'), ip4('10.255.255.255'))],
    ]);
  });

  it('flattens list:set members for matching', () => {
    const denied = resolveIpset(save, 'denied');
    expect(denied).toMatchObject({
      family: 'ipv4',
      dims: ['net'],
      elements: [[r(ip4('192.0.2.0'), ip4('192.0.2.255'))], [expect.anything()], [r(ip4('192.0.2.77'))]],
    });
    const mixed = parseIpsetSave(
      'create a hash:ip\ncreate b hash:ip,port\ncreate l list:set\nadd l a\nadd l b\n',
      'm.save',
    );
    expect(resolveIpset(mixed, 'l')).toMatch(/mixes member types/);
    expect(resolveIpset(mixed, 'zz')).toMatch(/not in m\.save/);
  });

  it('handles IPv6 sets, netmask, ICMP entries and bridge ports (the last two opaque to the model)', () => {
    const s = parseIpsetSave(
      [
        'create v6 hash:ip,port family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x8a1a7b77',
        'add v6 2001:db8::1,udp:53',
        'add v6 2001:db8::2,ipv6-icmp:echo-request',
        'create m hash:ip family inet netmask 24',
        'add m 10.9.9.0',
        'create ni hash:net,iface family inet',
        'add ni 10.0.1.0/24,physdev:br0',
      ].join('\n'),
      's.save',
    );
    expect(s.sets.get('v6')).toMatchObject({ family: 'ipv6', opaque: expect.stringMatching(/ICMP/) });
    expect(s.sets.get('v6')!.set.elements[0]).toEqual([r((0x20010db8n << 96n) | 1n), r(17), r(53)]);
    expect(s.sets.get('m')!.set.elements).toEqual([[r(ip4('10.9.9.0'), ip4('10.9.9.255'))]]);
    expect(s.sets.get('ni')!.opaque).toMatch(/physdev/);
  });

  const errors: [string, string, RegExp][] = [
    ['unknown command', 'flush x\n', /^e\.save:1:1: unexpected 'flush'; expected 'create' or 'add'/],
    [
      'add before create',
      'add x 10.0.0.1\n',
      /^e\.save:1:5: unexpected 'x'; expected a set declared by an earlier 'create' line/,
    ],
    [
      'bad element',
      'create x hash:ip\nadd x 10.0.0.256\n',
      /^e\.save:2:7: unexpected '10\.0\.0\.256'; expected an IPv4 address/,
    ],
    ['wrong family', 'create x hash:ip family inet6\nadd x 10.0.0.1\n', /^e\.save:2:7: .*expected an IPv6 address/],
    [
      'wrong dimensions',
      'create x hash:ip,port\nadd x 10.0.0.1\n',
      /^e\.save:2:7: .*expected an element of hash:ip,port \(2 comma-separated parts\)/,
    ],
    ['unknown type', 'create x hash:foo\n', /^e\.save:1:10: unexpected 'hash:foo'; expected an ipset type made of/],
    ['bad port', 'create x bitmap:port range 0-1024\nadd x 70000\n', /^e\.save:2:7: .*expected a port or port range/],
    ['duplicate set', 'create x hash:ip\ncreate x hash:ip\n', /^e\.save:2:8: .*expected a set name not created before/],
    [
      'unknown option',
      'create x hash:ip colour blue\n',
      /^e\.save:1:18: unexpected 'colour'; expected a create option/,
    ],
  ];
  it.each(errors)('rejects %s with file:line:column', (_name, text, re) => {
    let err: unknown;
    try {
      parseIpsetSave(text, 'e.save');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ParseError);
    expect((err as ParseError).message).toMatch(re);
  });
});
