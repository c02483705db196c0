import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { iptablesAcceptCounters, nftAcceptCounters, RuleCounterCache } from './rule-counters.js';

// Real `nft -j list ruleset` and `iptables-save -c` output of a namespace; the nft counter values were set by hand
// afterwards (10, 20, ... in rule order, 1000 for the named counter) to tell the rules apart.
const fixture = (name: string) => readFileSync(new URL(`../../test/fixtures/traffic/${name}`, import.meta.url), 'utf8');
const NFT = fixture('nft-counters.json');
const IPT4 = fixture('iptables-save-c.txt');
const IPT6 = fixture('ip6tables-save-c.txt');
const tcp = (from: number, to = from) => ({ proto: 'tcp' as const, from, to });

describe('nftAcceptCounters', () => {
  it('counts the input accept rules of the port, not established/related, drop, udp or output rules', () => {
    expect(nftAcceptCounters(NFT, [tcp(80)])).toEqual([
      {
        key: 'inet filter input #9',
        rule: 'inet filter input: tcp dport { 80, 443 } ct state new counter accept',
        packets: 30,
      },
    ]);
    expect(nftAcceptCounters(NFT, [{ proto: 'udp', from: 80, to: 80 }]).map((c) => c.packets)).toEqual([40]);
    expect(nftAcceptCounters(NFT, [tcp(22), tcp(443)]).map((c) => c.packets)).toEqual([20, 30]);
  });

  it('gives a rule without a counter statement as packets: undefined (the agent never adds one)', () => {
    expect(nftAcceptCounters(NFT, [tcp(8080)])).toEqual([
      { key: 'inet filter input #10', rule: 'inet filter input: tcp dport 8080 accept', packets: undefined },
    ]);
  });

  it('follows jumps and reads a named counter once', () => {
    expect(nftAcceptCounters(NFT, [tcp(9000)])).toEqual([
      { key: 'counter inet filter web_named', rule: expect.stringContaining('inet filter svc:'), packets: 1000 },
    ]);
  });

  it('finds nothing for a port no rule accepts', () => {
    expect(nftAcceptCounters(NFT, [tcp(5432)])).toEqual([]);
    expect(nftAcceptCounters('{"nftables": []}', [tcp(80)])).toEqual([]);
  });
});

describe('iptablesAcceptCounters', () => {
  it('counts the accept rules of the port in IPv4 and IPv6, with their [packets:bytes]', () => {
    expect(iptablesAcceptCounters(IPT4, IPT6, [tcp(80)])).toEqual([
      {
        key: 'ip filter INPUT: -A INPUT -p tcp -m tcp --dport 80 -j ACCEPT',
        rule: 'ip filter INPUT: -A INPUT -p tcp -m tcp --dport 80 -j ACCEPT',
        packets: 7,
      },
      {
        key: 'ip6 filter INPUT: -A INPUT -p tcp -m tcp --dport 80 -j ACCEPT',
        rule: 'ip6 filter INPUT: -A INPUT -p tcp -m tcp --dport 80 -j ACCEPT',
        packets: 11,
      },
    ]);
  });

  it('reads multiport, NEW-only rules and user chains reached by a jump', () => {
    expect(iptablesAcceptCounters(IPT4, '', [tcp(8443)]).map((c) => c.packets)).toEqual([3]);
    expect(iptablesAcceptCounters(IPT4, '', [tcp(9000)]).map((c) => c.packets)).toEqual([9]);
    expect(iptablesAcceptCounters(IPT4, '', [tcp(8000, 8500)]).map((c) => c.packets)).toEqual([3]);
    expect(iptablesAcceptCounters('', '', [tcp(80)])).toEqual([]);
  });
});

describe('RuleCounterCache', () => {
  it('gives the new values of an unchanged ruleset, and the new rules of a changed one', () => {
    const cache = new RuleCounterCache();
    expect(
      cache
        .nft(NFT)([tcp(80)])
        .map((c) => c.packets),
    ).toEqual([30]);
    const more = NFT.replace('"packets": 30', '"packets": 31');
    expect(more).not.toBe(NFT);
    expect(
      cache
        .nft(more)([tcp(80)])
        .map((c) => c.packets),
    ).toEqual([31]);
    const doc = JSON.parse(NFT) as { nftables: { rule?: { handle: number } }[] };
    const without = JSON.stringify({ nftables: doc.nftables.filter((o) => o.rule?.handle !== 9) });
    expect(cache.nft(without)([tcp(80)])).toEqual([]);

    expect(
      cache
        .iptables(
          IPT4,
          IPT6,
        )([tcp(80)])
        .map((c) => c.packets),
    ).toEqual([7, 11]);
    const later = IPT4.replace('[7:420]', '[9:540]').replace(/on .*2026/g, 'on Fri Dec  4 00:00:00 2026');
    expect(
      cache
        .iptables(
          later,
          IPT6,
        )([tcp(80)])
        .map((c) => c.packets),
    ).toEqual([9, 11]);
    const moved = IPT4.replace(/^\[1:60\] -A INPUT -i lo -j ACCEPT\n/m, '');
    expect(moved).not.toBe(IPT4);
    // a rule removed above it: the same rule (same key), not a new one
    expect(cache.iptables(moved, IPT6)([tcp(80)])).toEqual(cache.iptables(IPT4, IPT6)([tcp(80)]));
  });
});
