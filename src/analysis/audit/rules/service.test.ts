import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY } from '../../../config/load.js';
import type { RampartConfig } from '../../../config/types.js';
import { loadRuleset } from '../../../firewall/load.js';
import type { Ruleset } from '../../../firewall/model.js';
import { mergeRulesets, parseRuleset } from '../../../firewall/parse.js';
import { trace } from '../../../firewall/tracer.js';
import { createAuditContext } from '../context.js';
import { runAudit } from '../run.js';
import type { Finding, ListeningSocket } from '../types.js';
import { SERVICE_RULES } from './service.js';

const root = join(import.meta.dirname, '..', '..', '..', '..');
const fixture = (rel: string) => join(root, 'test/fixtures', rel);
const load = (...rels: string[]): Ruleset => loadRuleset(rels.map(fixture));

const at = { file: 'rampart.yaml', line: 1, column: 1 };
/** The founding site: web1/web2 in group web, service shop public tcp/80 and tcp/443, admins in 198.51.100.0/24. */
const shop: RampartConfig = {
  file: 'rampart.yaml',
  site: 'shop',
  hosts: [
    { name: 'web1', addresses: ['192.0.2.11', '2001:db8::11'], group: 'web', at },
    { name: 'web2', addresses: ['192.0.2.12', '2001:db8::12'], group: 'web', at },
  ],
  services: [
    {
      name: 'shop',
      hosts: ['web1', 'web2'],
      group: 'web',
      public: [
        { proto: 'tcp', from: 80, to: 80, text: 'tcp/80' },
        { proto: 'tcp', from: 443, to: 443, text: 'tcp/443' },
      ],
      at,
    },
  ],
  adminNetworks: ['198.51.100.0/24'],
  intents: [],
  audit: { rules: {} },
  policy: DEFAULT_POLICY,
};

interface Opts {
  readonly config?: RampartConfig;
  readonly listening?: readonly ListeningSocket[];
}

function audit(rs: Ruleset, id: string, opts: Opts = {}): Finding[] {
  const ctx = createAuditContext({
    ruleset: rs,
    file: rs.file,
    ...(opts.config ? { config: opts.config, hostName: 'web1' } : {}),
    ...(opts.listening ? { listening: opts.listening } : {}),
    today: '2026-05-01',
  });
  return [...runAudit(ctx, { rules: SERVICE_RULES, only: [id] }).findings];
}

/** The example packet gets the verdict the finding claims, as the tracer (the reference semantics) sees it. */
function expectVerdict(rs: Ruleset, f: Finding | undefined, verdicts: readonly string[]): void {
  expect(f?.example).toBeDefined();
  if (f?.example) expect(verdicts).toContain(trace(rs, f.example, { hook: 'input' }).verdict);
}

describe('the catalogue entries', () => {
  it('have stable ids, a rationale, a fix and a docs page', () => {
    expect(SERVICE_RULES.map((r) => r.id)).toEqual([
      'unfiltered-input',
      'public-service-blocked',
      'all-inbound-blocked',
      'listening-port-blocked',
      'admin-port-exposed',
      'any-any-accept',
      'broad-source-accept',
      'ipv4-ipv6-mismatch',
    ]);
    for (const r of SERVICE_RULES) {
      expect(r.rationale.length).toBeGreaterThan(40);
      expect(r.fix.length).toBeGreaterThan(20);
      const doc = readFileSync(join(root, 'docs/rules', `${r.id}.md`), 'utf8');
      expect(doc).toContain(`# \`${r.id}\``);
      expect(doc).toContain(r.defaultSeverity);
    }
  });
});

describe('public-service-blocked', () => {
  it('reports the founding outage: shop 80/443 dropped for all sources by the input policy', () => {
    const rs = load('nftables/founding-outage.nft');
    const fs = audit(rs, 'public-service-blocked', { config: shop });
    // One cause (the input policy), one finding: both ports, both families.
    expect(fs.map((f) => f.message)).toEqual([
      'service shop: tcp/80 and tcp/443 to 192.0.2.11 and 2001:db8::11 are dropped for all sources',
    ]);
    const f = fs[0];
    expect(f?.severity).toBe('critical');
    expect(f?.location?.line).toBe(9);
    expect(f?.text).toBe('policy drop (inet filter/input)');
    expect(f?.example).toMatchObject({ family: 'ipv4', saddr: '203.0.113.7', daddr: '192.0.2.11', dport: 80 });
    expect(f?.related?.filter((r) => r.detail).map((r) => r.message.split(';')[0])).toEqual([
      'tcp/80 to 192.0.2.11 and 2001:db8::11 is dropped for all sources',
      'tcp/443 to 192.0.2.11 and 2001:db8::11 is dropped for all sources',
    ]);
    expectVerdict(rs, f, ['drop']);
  });

  it('reports the iptables form of the founding outage for IPv4 only', () => {
    const rs = load('iptables/founding-outage.rules');
    const fs = audit(rs, 'public-service-blocked', { config: shop });
    expect(fs.map((f) => f.message)).toEqual([
      'service shop: tcp/80 and tcp/443 to 192.0.2.11 are dropped for all sources',
    ]);
  });

  it('reports an IPv6-only outage, with an IPv6 example', () => {
    const rs = load('audit/public-service-blocked/ipv4-only.nft');
    const fs = audit(rs, 'public-service-blocked', { config: shop });
    expect(fs.map((f) => f.message)).toEqual([
      'service shop: tcp/80 and tcp/443 to 2001:db8::11 are dropped for all sources',
    ]);
    expect(fs[0]?.severity).toBe('critical');
    expect(fs[0]?.example).toMatchObject({ family: 'ipv6', daddr: '2001:db8::11', dport: 80 });
    expectVerdict(rs, fs[0], ['drop']);
  });

  it('reports a small explicit list of sources dropped before the service as a blocklist (info), at the dropping rule', () => {
    const rs = load('audit/public-service-blocked/blocklist.nft');
    const fs = audit(rs, 'public-service-blocked', { config: shop });
    expect(fs.map((f) => f.message)).toEqual([
      'service shop: tcp/80 and tcp/443 to 192.0.2.11 are closed to 256 listed IPv4 sources',
    ]);
    expect(fs[0]?.severity).toBe('info');
    expect(fs[0]?.text).toBe('ip saddr 203.0.113.0/24 drop comment "abuse 2026-03"');
    expectVerdict(rs, fs[0], ['drop']);
  });

  it('keeps a block of a wide range (wider than a /8) a partial outage: medium', () => {
    const rs = parseRuleset(
      readFileSync(fixture('audit/public-service-blocked/blocklist.nft'), 'utf8').replaceAll(
        '203.0.113.0/24',
        '128.0.0.0/2',
      ),
      'wide.nft',
    );
    const fs = audit(rs, 'public-service-blocked', { config: shop });
    expect(fs.map((f) => [f.severity, f.message])).toEqual([
      [
        'medium',
        'service shop: tcp/80 and tcp/443 to 192.0.2.11 are dropped for 128.0.0.0-169.253.255.255, 169.255.0.0-172.15.255.255, 172.32.0.0-191.255.255.255 only',
      ],
    ]);
  });

  it('does not take an abuse list (129 addresses in a named set) for an outage, an IPv4/IPv6 asymmetry or a closed SSH', () => {
    const rs = load('audit/public-service-blocked/abuse-blocklist.nft');
    const ctx = createAuditContext({
      ruleset: rs,
      file: rs.file,
      publicPorts: shop.services[0]!.public,
      today: '2026-05-01',
    });
    const rep = runAudit(ctx, { rules: SERVICE_RULES });
    expect(rep.findings.map((f) => [f.rule, f.severity, f.message])).toEqual([
      [
        'admin-port-exposed',
        'high',
        'tcp/22 (SSH) is accepted from every IPv4 source except 185.220.101.1-185.220.101.129 and every IPv6 source on the internet (no admin networks declared)',
      ],
      [
        'public-service-blocked',
        'info',
        'service inline (--public): tcp/80 and tcp/443 to this host (IPv4) are closed to 129 listed IPv4 sources (@blocklist4)',
      ],
    ]);
  });

  it('says rejected when a reject rule decides', () => {
    const rs = load('audit/all-inbound-blocked/reject-all.nft');
    const fs = audit(rs, 'public-service-blocked', { config: shop });
    expect(fs[0]?.message).toBe(
      'service shop: tcp/80 and tcp/443 to 192.0.2.11 and 2001:db8::11 are rejected for all sources',
    );
    expect(fs[0]?.text).toBe('reject with icmpx admin-prohibited');
  });

  it('does not trigger when the shop is open, despite bogon, spoofing and non-SYN drops and an iif restriction', () => {
    expect(audit(load('audit/public-service-blocked/open.nft'), 'public-service-blocked', { config: shop })).toEqual(
      [],
    );
    expect(audit(load('queries/founding-fixed.nft'), 'public-service-blocked', { config: shop })).toEqual([]);
    expect(audit(load('nftables/hardened-web.nft'), 'public-service-blocked', { config: shop })).toEqual([]);
  });

  it('is skipped without declared services', () => {
    const ctx = createAuditContext({ ruleset: load('nftables/founding-outage.nft'), file: 'x', today: '2026-05-01' });
    const rep = runAudit(ctx, { rules: SERVICE_RULES, only: ['public-service-blocked'] });
    expect(rep.findings).toEqual([]);
    expect(rep.skipped.map((s) => s.rule)).toEqual(['public-service-blocked']);
  });
});

describe('all-inbound-blocked', () => {
  it('reports the founding outage without a config (high), at the input policy', () => {
    const rs = load('nftables/founding-outage.nft');
    const fs = audit(rs, 'all-inbound-blocked');
    expect(fs).toHaveLength(1);
    const f = fs[0];
    expect(f?.message).toBe(
      'no new inbound connection is accepted on any port over IPv4 and IPv6: every tcp, udp and sctp connection from outside is dropped (only admin ports are open: tcp/22)',
    );
    expect(f?.severity).toBe('high');
    expect(f?.location?.line).toBe(9);
    expectVerdict(rs, f, ['drop']);
  });

  it('is critical when the host declares services', () => {
    const fs = audit(load('nftables/founding-outage.nft'), 'all-inbound-blocked', { config: shop });
    expect(fs[0]?.severity).toBe('critical');
  });

  it('is critical when the host listens on a non-loopback, non-admin port', () => {
    const rs = load('iptables/founding-outage.rules');
    const listening: ListeningSocket[] = [{ proto: 'tcp', address: '0.0.0.0', port: 443, process: 'nginx' }];
    const fs = audit(rs, 'all-inbound-blocked', { listening });
    expect(fs[0]?.message).toContain('over IPv4:');
    expect(fs[0]?.severity).toBe('critical');
    const sshOnly: ListeningSocket[] = [
      { proto: 'tcp', address: '0.0.0.0', port: 22, process: 'sshd' },
      { proto: 'tcp', address: '127.0.0.1', port: 5432, process: 'postgres' },
    ];
    expect(audit(rs, 'all-inbound-blocked', { listening: sshOnly })[0]?.severity).toBe('high');
  });

  it('locates a final reject rule', () => {
    const rs = load('audit/all-inbound-blocked/reject-all.nft');
    const f = audit(rs, 'all-inbound-blocked')[0];
    expect(f?.message).toContain('is rejected (only admin ports are open: tcp/22)');
    expect(f?.text).toBe('reject with icmpx admin-prohibited');
    expect(f?.location?.line).toBe(13);
    expectVerdict(rs, f, ['reject']);
  });

  it('does not trigger when some non-admin port is open', () => {
    expect(audit(load('audit/all-inbound-blocked/serving.nft'), 'all-inbound-blocked')).toEqual([]);
    expect(audit(load('nftables/hardened-web.nft'), 'all-inbound-blocked')).toEqual([]);
    expect(audit(load('nftables/debian-default.nft'), 'all-inbound-blocked')).toEqual([]);
  });
});

describe('listening-port-blocked', () => {
  const rs = load('audit/listening-port-blocked/web.nft');
  const sockets: ListeningSocket[] = [
    { proto: 'tcp', address: '0.0.0.0', port: 8080, process: 'app' },
    { proto: 'tcp', address: '[::]', port: 8080, process: 'app' },
    { proto: 'tcp', address: '::', port: 443, process: 'nginx' },
    { proto: 'tcp', address: '127.0.0.1', port: 5432, process: 'postgres' },
    { proto: 'udp', address: '0.0.0.0', port: 68, process: 'dhclient' },
  ];

  it('reports a socket on a wildcard address whose port is dropped for every source', () => {
    const fs = audit(rs, 'listening-port-blocked', { listening: sockets });
    expect(fs.map((f) => f.message)).toEqual([
      'tcp/8080 (app) listens on 0.0.0.0 but new connections to it are dropped for every source',
      'tcp/8080 (app) listens on [::] but new connections to it are dropped for every source',
    ]);
    expect(fs[0]?.text).toBe('policy drop (inet filter/input)');
    expect(fs[0]?.example).toMatchObject({ dport: 8080, l4proto: 6 });
    expectVerdict(rs, fs[0], ['drop']);
  });

  it('checks a socket bound to one address against that address only', () => {
    const fs = audit(rs, 'listening-port-blocked', {
      listening: [{ proto: 'udp', address: '192.0.2.11', port: 53 }],
    });
    expect(fs[0]?.message).toBe('udp/53 listens on 192.0.2.11 but new connections to it are dropped for every source');
    expect(fs[0]?.example).toMatchObject({ daddr: '192.0.2.11', dport: 53, l4proto: 17 });
  });

  it('does not trigger for open ports, loopback sockets and DHCP clients', () => {
    expect(audit(rs, 'listening-port-blocked', { listening: sockets.slice(2) })).toEqual([]);
  });

  it('is skipped outside live mode', () => {
    const ctx = createAuditContext({ ruleset: rs, file: 'x', today: '2026-05-01' });
    const rep = runAudit(ctx, { rules: SERVICE_RULES, only: ['listening-port-blocked'] });
    expect(rep.skipped[0]?.reason).toContain('live');
  });
});

describe('admin-port-exposed', () => {
  it('says when SSH is accepted on named interfaces only (the LAN bridge of a router), at medium: their role is unknown', () => {
    const rs = parseRuleset(
      [
        'table ip filter {',
        '  chain input { type filter hook input priority 0; policy drop; iifname "br0" tcp dport 22 accept; }',
        '}',
      ].join('\n'),
      'router.nft',
    );
    expect(audit(rs, 'admin-port-exposed').map((f) => [f.severity, f.message])).toEqual([
      [
        'medium',
        'tcp/22 (SSH) is accepted from every IPv4 source on the internet (no admin networks declared), arriving on br0 only',
      ],
    ]);
  });

  it('reports SSH and Redis open to the internet, one finding per port at the accepting rule', () => {
    const rs = load('audit/admin-port-exposed/exposed.nft');
    const fs = audit(rs, 'admin-port-exposed');
    expect(fs.map((f) => f.message)).toEqual([
      'tcp/22 (SSH) is accepted from every IPv4 source and every IPv6 source on the internet (no admin networks declared)',
      'tcp/6379 (Redis) is accepted from every IPv4 source and every IPv6 source on the internet (no admin networks declared)',
    ]);
    expect(fs.map((f) => f.text)).toEqual([
      'tcp dport 22 accept',
      'tcp dport 6379 accept comment "redis for the new app"',
    ]);
    expect(fs[1]?.example).toMatchObject({ saddr: '203.0.113.7', dport: 6379 });
    expectVerdict(rs, fs[1], ['accept']);
  });

  it('with admin networks, reports what is accepted outside them', () => {
    const rs = load('nftables/hardened-web.nft');
    const fs = audit(rs, 'admin-port-exposed', { config: shop });
    expect(fs.map((f) => f.message)).toEqual([
      'tcp/22 (SSH) is accepted from 203.0.113.10 and 2001:db8:a0::/48 outside the admin networks (198.51.100.0/24)',
    ]);
    expectVerdict(rs, fs[0], ['accept']);
  });

  it('honours a configured admin port list', () => {
    const rs = load('audit/admin-port-exposed/exposed.nft');
    const config: RampartConfig = {
      ...shop,
      audit: { rules: {}, adminPorts: [{ proto: 'tcp', from: 6379, to: 6379, text: 'tcp/6379' }] },
    };
    expect(audit(rs, 'admin-port-exposed', { config }).map((f) => f.message)).toEqual([
      'tcp/6379 (Redis) is accepted from every IPv4 source and every IPv6 source outside the admin networks (198.51.100.0/24)',
    ]);
  });

  it('does not trigger when admin ports are reachable from the admin network only', () => {
    const rs = load('audit/admin-port-exposed/admin-only.nft');
    expect(audit(rs, 'admin-port-exposed')).toEqual([]);
    expect(audit(rs, 'admin-port-exposed', { config: shop })).toEqual([]);
  });
});

describe('any-any-accept', () => {
  it('reports an accept that looks at neither source nor port, with its context', () => {
    const rs = load('audit/any-any-accept/debug-accept.nft');
    const fs = audit(rs, 'any-any-accept');
    expect(fs.map((f) => f.message)).toEqual([
      'rule accepts every new connection from any source to any port: tcp, udp, sctp over IPv4 and IPv6 arriving on eth1; admin ports among them: tcp/3389 (RDP), tcp/3306 (MySQL), tcp/5432 (PostgreSQL), tcp/6379 (Redis), tcp/11211 (memcached), tcp/27017 (MongoDB), tcp/9200 (Elasticsearch), tcp/2375 (Docker API) and tcp/2376 (Docker API (TLS))',
    ]);
    expect(fs[0]?.text).toBe('iifname "eth1" accept comment "debug, remove after incident 42"');
    expect(fs[0]?.example).toMatchObject({ iif: 'eth1' });
    expectVerdict(rs, fs[0], ['accept']);
  });

  it('reports a wide-open base chain policy', () => {
    const fs = audit(load('nftables/debian-default.nft'), 'any-any-accept');
    expect(fs.map((f) => f.message)).toEqual([
      'the base chain policy (policy accept of inet filter/input) accepts every new connection from any source to any port: tcp, udp, sctp over IPv4 and IPv6; admin ports among them: tcp/22 (SSH), tcp/3389 (RDP), tcp/3306 (MySQL), tcp/5432 (PostgreSQL), tcp/6379 (Redis), tcp/11211 (memcached), tcp/27017 (MongoDB), tcp/9200 (Elasticsearch), tcp/2375 (Docker API) and tcp/2376 (Docker API (TLS))',
    ]);
    // One cause, one finding: the admin ports that policy opens are not reported again one by one.
    expect(audit(load('nftables/debian-default.nft'), 'admin-port-exposed')).toEqual([]);
  });

  it('does not report lo, established, per-port accepts or an accept-all reached from one source', () => {
    expect(audit(load('audit/any-any-accept/scoped.nft'), 'any-any-accept')).toEqual([]);
    expect(audit(load('nftables/hardened-web.nft'), 'any-any-accept')).toEqual([]);
    expect(audit(load('nftables/founding-outage.nft'), 'any-any-accept')).toEqual([]);
  });
});

describe('broad-source-accept', () => {
  it('reports a non-public port accepted from a /8', () => {
    const rs = load('audit/broad-source-accept/wide.nft');
    const fs = audit(rs, 'broad-source-accept', { config: shop });
    expect(fs.map((f) => f.message)).toEqual([
      'rule accepts tcp/9100 from 10.0.0.0/8 (/8): a source range of /8 or wider for a port that is not public',
    ]);
    expect(fs[0]?.location?.line).toBe(12);
    expect(fs[0]?.example?.saddr.startsWith('10.')).toBe(true);
    expectVerdict(rs, fs[0], ['accept']);
  });

  it('honours broadSourcePrefix', () => {
    const rs = load('audit/broad-source-accept/narrow.nft');
    const config: RampartConfig = { ...shop, audit: { rules: {}, broadSourcePrefix: 16 } };
    expect(audit(rs, 'broad-source-accept', { config }).map((f) => f.message)).toEqual([
      'rule accepts tcp/9100 from 10.20.0.0/16 (/16): a source range of /16 or wider for a port that is not public',
    ]);
  });

  it('does not report narrow sources, or ports open to everyone', () => {
    expect(audit(load('audit/broad-source-accept/narrow.nft'), 'broad-source-accept')).toEqual([]);
    expect(audit(load('nftables/hardened-web.nft'), 'broad-source-accept')).toEqual([]);
    expect(audit(load('nftables/debian-default.nft'), 'broad-source-accept')).toEqual([]);
  });
});

describe('ipv4-ipv6-mismatch', () => {
  // rules.v6 is an empty ip6tables-save (policy ACCEPT): nothing in it names an address, so its family is given.
  const read = (rel: string) => readFileSync(fixture(rel), 'utf8');
  const pair = mergeRulesets([
    parseRuleset(read('audit/ipv4-ipv6-mismatch/rules.v4'), 'rules.v4'),
    parseRuleset(read('audit/ipv4-ipv6-mismatch/rules.v6'), 'rules.v6', { family: 'ipv6' }),
  ]);

  it('reports ports filtered by iptables but open on an unfiltered ip6tables', () => {
    const fs = audit(pair, 'ipv4-ipv6-mismatch');
    expect(fs.map((f) => f.message)).toEqual([
      'tcp/0-21,23-79,81-442,444-65535: IPv6 accepts new connections from every source, but on IPv4 it is dropped for every source',
      // DHCPv6 (udp/546-547) exists on IPv6 only: not a mismatch.
      'udp/0-545,548-65535: IPv6 accepts new connections from every source, but on IPv4 it is dropped for every source',
      'every sctp port: IPv6 accepts new connections from every source, but on IPv4 it is dropped for every source',
      'tcp/22: IPv6 accepts new connections from every source, but on IPv4 it is accepted only from 198.51.100.0/24',
    ]);
    const ssh = fs[3];
    expect(ssh?.text).toBe('policy accept (ip6 filter/INPUT)');
    expect(ssh?.example).toMatchObject({ family: 'ipv6', dport: 22 });
    expectVerdict(pair, ssh, ['accept']);
  });

  it('does not count DHCPv6 (udp/546) open on IPv6 only as a mismatch: IPv4 has no DHCPv6', () => {
    const rs = parseRuleset(
      [
        'table ip filter {',
        '  chain input { type filter hook input priority 0; policy drop; tcp dport 443 accept; }',
        '}',
        'table ip6 filter {',
        '  chain input { type filter hook input priority 0; policy drop; tcp dport 443 accept; udp dport 546 accept; }',
        '}',
      ].join('\n'),
      'dhcpv6.nft',
    );
    expect(audit(rs, 'ipv4-ipv6-mismatch')).toEqual([]);
  });

  it('reads the concatenated iptables-save + ip6tables-save form the same way', () => {
    const fs = audit(load('audit/ipv4-ipv6-mismatch/iptables-both.rules'), 'ipv4-ipv6-mismatch');
    expect(fs).toHaveLength(4);
  });

  it('checks only the declared service ports when services are declared', () => {
    const rs = load('audit/public-service-blocked/ipv4-only.nft');
    const fs = audit(rs, 'ipv4-ipv6-mismatch', { config: shop });
    expect(fs.map((f) => f.message)).toEqual([
      'service shop tcp/80: IPv4 accepts new connections from every source, but on IPv6 it is dropped for every source',
      'service shop tcp/443: IPv4 accepts new connections from every source, but on IPv6 it is dropped for every source',
    ]);
    expect(fs[0]?.example).toMatchObject({ family: 'ipv4', daddr: '192.0.2.11', dport: 80 });
    expectVerdict(rs, fs[0], ['accept']);
  });

  it('does not trigger when both families get the same rules, or when only one family is given', () => {
    expect(audit(load('audit/ipv4-ipv6-mismatch/hardened-inet.nft'), 'ipv4-ipv6-mismatch')).toEqual([]);
    expect(
      audit(load('iptables/hardened-web.rules', 'iptables/hardened-web6.rules'), 'ipv4-ipv6-mismatch', {
        config: shop,
      }),
    ).toEqual([]);
    expect(audit(load('audit/ipv4-ipv6-mismatch/rules.v4'), 'ipv4-ipv6-mismatch')).toEqual([]);
  });
});

describe('one finding per cause', () => {
  const nft = (text: string): Ruleset => parseRuleset(text, 'grouped.nft');

  it('groups the admin ports one rule exposes into one finding, the ports listed and detailed per port', () => {
    const rs = nft(`table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    tcp dport { 22, 3306, 5432 } accept
    tcp dport 6379 accept
  }
}
`);
    const fs = audit(rs, 'admin-port-exposed');
    expect(fs.map((f) => [f.location?.line, f.message])).toEqual([
      [
        5,
        'tcp/22 (SSH), tcp/3306 (MySQL) and tcp/5432 (PostgreSQL) are accepted from every IPv4 source and every IPv6 source on the internet (no admin networks declared)',
      ],
      [
        6,
        'tcp/6379 (Redis) is accepted from every IPv4 source and every IPv6 source on the internet (no admin networks declared)',
      ],
    ]);
    const detail = fs[0]!.related!.filter((r) => r.detail);
    expect(detail.map((r) => r.message.split(';')[0])).toEqual([
      'tcp/22 (SSH) is accepted from every IPv4 source and every IPv6 source on the internet (no admin networks declared)',
      'tcp/3306 (MySQL) is accepted from every IPv4 source and every IPv6 source on the internet (no admin networks declared)',
      'tcp/5432 (PostgreSQL) is accepted from every IPv4 source and every IPv6 source on the internet (no admin networks declared)',
    ]);
    expect(detail[1]!.message).toMatch(
      /; example: tcp 203\.0\.113\.7:40000 -> 192\.0\.2\.10:3306 \(mysql\) iif eth0 ct new$/,
    );
    expectVerdict(rs, fs[0], ['accept']);
  });

  it('reports a host with no firewall at all as one finding, not as a clean bill', () => {
    const fs = audit(nft(''), 'unfiltered-input');
    expect(fs.map((f) => [f.severity, f.message])).toEqual([
      [
        'high',
        'no firewall: the ruleset has no tables, so nothing filters new connections to this host over IPv4 and IPv6: every port is open to every source; admin ports among them: tcp/22 (SSH), tcp/3389 (RDP), tcp/3306 (MySQL), tcp/5432 (PostgreSQL), tcp/6379 (Redis), tcp/11211 (memcached), tcp/27017 (MongoDB), tcp/9200 (Elasticsearch), tcp/2375 (Docker API) and tcp/2376 (Docker API (TLS))',
      ],
    ]);
    // With the site declared, the services it leaves open are named too.
    expect(audit(nft(''), 'unfiltered-input', { config: shop })[0]!.message).toMatch(
      /; declared services: shop tcp\/80 and shop tcp\/443$/,
    );
  });

  it('recognises a fragment (ufw user.rules): one finding saying so, instead of every port exposed', () => {
    const rs = loadRuleset([join(root, 'test/fixtures/real-world/noraworld--ufw-conf/etc/ufw/user.rules')]);
    const ctx = createAuditContext({ ruleset: rs, file: rs.file, today: '2026-05-01' });
    const rep = runAudit(ctx);
    expect(rep.findings.map((f) => [f.rule, f.severity])).toEqual([['unfiltered-input', 'medium']]);
    expect(rep.findings[0]!.message).toMatch(
      /^this file is a fragment: it has user chains \(ufw-user-input, ufw-user-output, ufw-user-forward, ufw-after-logging-input and 4 more\) but no base chain, so no hook runs them, and on its own nothing filters new connections to the host over IPv4 .* Audit what the host runs instead: `rampart audit --live` on the host, or its full dump/,
    );
  });

  it('says when base chains exist but none is on the input path', () => {
    const fs = audit(
      nft(
        'table ip nat {\n  chain post {\n    type nat hook postrouting priority 100; policy accept;\n    masquerade\n  }\n}\n',
      ),
      'unfiltered-input',
    );
    expect(fs[0]?.message).toMatch(
      /^no base chain filters the input path \(prerouting, input\) over IPv4; the ruleset's base chains are on postrouting: every port is open/,
    );
  });
});
