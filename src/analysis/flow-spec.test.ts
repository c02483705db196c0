import { describe, expect, it } from 'vitest';
import { UserError } from '../errors.js';
import { flowCubes, parseFlowSpec, restrictToRuleset } from './flow-spec.js';

const err = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected a UserError');
};

describe('parseFlowSpec', () => {
  it('parses CIDR lists, port lists with ranges, protocols, interfaces and ct states', () => {
    const s = parseFlowSpec({
      from: '10.0.0.0/8, 192.168.1.1',
      to: '192.0.2.10',
      proto: 'tcp',
      dport: '80,443,8000-8100',
      iif: 'eth0,wg*',
      ctState: 'new,established',
    });
    expect(s.families).toEqual(['ipv4']);
    expect(s.from).toEqual([
      { family: 'ipv4', lo: 0x0a000000n, hi: 0x0affffffn },
      { family: 'ipv4', lo: 0xc0a80101n, hi: 0xc0a80101n },
    ]);
    expect(s.protos).toEqual([6]);
    expect(s.dport).toEqual([
      [80, 80],
      [443, 443],
      [8000, 8100],
    ]);
    expect(s.iif).toEqual([
      { value: 'eth0', wildcard: false },
      { value: 'wg', wildcard: true },
    ]);
    expect(s.ctState).toEqual(['new', 'established']);
  });

  it('treats any and absent fields as unrestricted', () => {
    expect(parseFlowSpec({ from: 'any', to: 'any' })).toEqual({});
  });

  it('accepts YAML-style lists and numbers', () => {
    const s = parseFlowSpec({ dport: [80, '443', '1000-2000'], proto: ['tcp', 17] });
    expect(s.dport).toEqual([
      [80, 80],
      [443, 443],
      [1000, 2000],
    ]);
    expect(s.protos).toEqual([6, 17]);
  });

  it('restricts ports without a protocol to the protocols that have ports', () => {
    expect(parseFlowSpec({ dport: '53' }).protos).toEqual([6, 17, 33, 132, 136]);
  });

  it('rejects a bad address naming the flag, the value and the valid forms', () => {
    expect(err(() => parseFlowSpec({ from: '10.0.0.300' }))).toBe(
      "--from '10.0.0.300': not an address; expected any, an IPv4/IPv6 address, a prefix (10.0.0.0/8, 2001:db8::/32) or a range (10.0.0.1-10.0.0.9)",
    );
  });

  it('takes service names as nft and iptables do, alone or as a range end, and suggests a near miss', () => {
    expect(parseFlowSpec({ dport: 'https,ssh,http-8080,DOMAIN' }).dport).toEqual([
      [443, 443],
      [22, 22],
      [80, 8080],
      [53, 53],
    ]);
    expect(() => parseFlowSpec({ dport: 'htps' })).toThrow(/did you mean 'https'/);
  });

  it('rejects ports out of range and backwards ranges', () => {
    expect(err(() => parseFlowSpec({ dport: '80,70000' }))).toContain(
      "--dport '70000': not a port; expected ports 0-65535",
    );
    expect(err(() => parseFlowSpec({ sport: '900-800' }))).toContain("--sport '900-800': empty range (900 > 800)");
    expect(err(() => parseFlowSpec({ dport: 'htp' }))).toContain("--dport 'htp'");
  });

  it('rejects ports on a protocol without ports', () => {
    expect(err(() => parseFlowSpec({ proto: 'icmp', dport: '80' }))).toContain('protocol icmp has no ports');
  });

  it('rejects unknown protocols, ct states and interface names with the valid values', () => {
    expect(err(() => parseFlowSpec({ proto: 'tcpp' }))).toContain(
      "--proto 'tcpp': unknown protocol; expected a number 0-255 or one of icmp, igmp, tcp",
    );
    expect(err(() => parseFlowSpec({ ctState: 'new,estab' }))).toBe(
      "--ct-state 'estab': unknown conntrack state; expected one or more of new, established, related, invalid, untracked",
    );
    expect(err(() => parseFlowSpec({ iif: 'a-very-long-interface-name' }))).toContain('--iif');
  });

  it('rejects addresses of two families on the two sides', () => {
    expect(err(() => parseFlowSpec({ from: '10.0.0.1', to: '2001:db8::1' }))).toContain('give addresses of one family');
  });

  it('rejects an icmp type without one ICMP protocol', () => {
    expect(err(() => parseFlowSpec({ icmpType: 'echo-request' }))).toContain('--icmp-type');
    expect(parseFlowSpec({ proto: 'icmp', icmpType: 'echo-request' }).icmpType).toEqual([8]);
  });

  it('uses the caller label in messages (as the intents file does)', () => {
    expect(err(() => parseFlowSpec({ dport: 'x' }, { label: (f) => `shop.yaml:3:9: ${f}` }))).toBe(
      "shop.yaml:3:9: dport 'x': not a port; expected ports 0-65535, service names (http, https, ssh, domain, ...) and ranges, like 80,https,8000-8100",
    );
  });
});

describe('flowCubes', () => {
  it('makes one cube per family, with the family and its addresses', () => {
    const cubes = flowCubes(parseFlowSpec({ from: '10.0.0.0/8', proto: 'tcp', dport: '443' }));
    expect(cubes).toEqual([
      {
        dport: [{ kind: 'range', lo: 443n, hi: 443n }],
        l4proto: [{ kind: 'range', lo: 6n, hi: 6n }],
        nfproto: [{ kind: 'symbol', value: 'ipv4' }],
        'ip.saddr': [{ kind: 'range', lo: 0x0a000000n, hi: 0x0affffffn }],
      },
    ]);
  });

  it('makes a family-free cube when nothing names a family', () => {
    expect(flowCubes(parseFlowSpec({ ctState: 'new' }))).toEqual([{ 'ct.state': [{ kind: 'symbol', value: 'new' }] }]);
  });

  it('narrows to the family of an ip-only ruleset', () => {
    const spec = restrictToRuleset(parseFlowSpec({}), [{ family: 'ip', outOfScope: false }]);
    expect(spec.families).toEqual(['ipv4']);
    expect(restrictToRuleset(parseFlowSpec({}), [{ family: 'inet', outOfScope: false }]).families).toBeUndefined();
  });
});
