import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ParseError, UserError } from '../errors.js';
import { DEFAULT_INCIDENT_POLICY } from '../incident/lifecycle.js';
import { breathe } from '../testing/breathe.js';
import { NO_ALERTING } from './alerting.js';
import { ConfigError, DEFAULT_POLICY, managedTables, parseConfig, parsePortDecl } from './load.js';

const SHOP = readFileSync(join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'config', 'shop.yaml'), 'utf8');
/** Ids from the audit catalogue (issue 4); injected so these tests do not depend on which rules exist yet. */
const RULE_IDS = ['rule-without-comment', 'redundant-rule', 'shadowed-rule', 'admin-port-exposed'];

const parse = (text: string) => parseConfig(text, 'c.yaml', { ruleIds: RULE_IDS });

const fail = (text: string, ruleIds: readonly string[] | undefined = RULE_IDS): ConfigError => {
  try {
    parseConfig(text, 'c.yaml', ruleIds ? { ruleIds } : {});
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect(e).toBeInstanceOf(ParseError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
};

/** shop.yaml with line `n` (1-based) replaced by `replacement` (which may hold several lines). */
const shopWith = (n: number, replacement: string): string => {
  const lines = SHOP.split('\n');
  lines.splice(n - 1, 1, replacement);
  return lines.join('\n');
};

const HOSTS = `hosts:
  - name: web1
    addresses: [192.0.2.11, 2001:db8::11]
    group: web
  - name: web2
    addresses: [192.0.2.12, 2001:db8::12]
    group: web
`;

describe('parseConfig: a good config', () => {
  it('parses the founding site (shop.yaml) into the RampartConfig contract', () => {
    const c = parseConfig(SHOP, 'shop.yaml', { ruleIds: RULE_IDS });
    expect(c.file).toBe('shop.yaml');
    expect(c.site).toBe('shop');
    expect(c.hosts).toEqual([
      {
        name: 'web1',
        addresses: ['192.0.2.11', '2001:db8::11'],
        firewall: 'nftables',
        group: 'web',
        at: { file: 'shop.yaml', line: 5, column: 5 },
      },
      {
        name: 'web2',
        addresses: ['192.0.2.12', '2001:db8::12'],
        firewall: 'nftables',
        group: 'web',
        at: { file: 'shop.yaml', line: 9, column: 5 },
      },
    ]);
    expect(c.services).toEqual([
      {
        name: 'shop',
        hosts: ['web1', 'web2'],
        group: 'web',
        public: [
          { proto: 'tcp', from: 80, to: 80, text: 'tcp/80' },
          { proto: 'tcp', from: 443, to: 443, text: 'tcp/443' },
        ],
        internal: [{ ports: [{ proto: 'tcp', from: 9100, to: 9100, text: 'tcp/9100' }], from: ['198.51.100.0/24'] }],
        health: [
          {
            kind: 'http',
            port: 80,
            path: '/healthz',
            expect: 200,
            timeoutMs: 2000,
            at: { file: 'shop.yaml', line: 22, column: 9 },
          },
        ],
        at: { file: 'shop.yaml', line: 15, column: 5 },
      },
    ]);
    expect(c.adminNetworks).toEqual(['198.51.100.0/24']);
    expect(c.intents.map((i) => [i.name, i.must, i.file, i.line, i.column])).toEqual([
      ['shop https from anywhere', 'allow', 'shop.yaml', 28, 5],
      ['no database from outside', 'deny', 'shop.yaml', 34, 5],
    ]);
    expect(c.intents[0]?.spec).toMatchObject({ protos: [6], dport: [[443, 443]], ctState: ['new'] });
    expect(c.audit).toEqual({
      failOn: 'high',
      adminPorts: [
        { proto: 'tcp', from: 22, to: 22, text: 'tcp/22' },
        { proto: 'tcp', from: 5432, to: 5432, text: 'tcp/5432' },
      ],
      expiringWithinDays: 30,
      rules: {
        'rule-without-comment': {
          enabled: false,
          justification: 'the nftables rules are generated from Ansible, which carries the comments',
          at: { file: 'shop.yaml', line: 45, column: 5 },
        },
        'redundant-rule': { enabled: true, severity: 'medium', at: { file: 'shop.yaml', line: 48, column: 5 } },
      },
    });
    expect(c.policy).toEqual({
      approvals: 1,
      approvers: [],
      freeze: [
        {
          kind: 'once',
          name: 'black friday 2020',
          start: '2020-11-27T00:00:00.000Z',
          end: '2020-11-30T00:00:00.000Z',
          at: { file: 'shop.yaml', line: 56, column: 7 },
        },
      ],
      canary: ['web1'],
      confirmTimeoutSeconds: 60,
      blockOn: DEFAULT_POLICY.blockOn,
      planTimeoutSeconds: 60,
      planMemoryMiB: 2048,
    });
  });

  it('gives every section its default in an empty file', () => {
    for (const text of [
      '',
      '# nothing yet\n',
      '---\n',
      'site:\nhosts:\nservices:\nadmin-networks:\nintents:\naudit:\npolicy:\n',
    ]) {
      expect(parse(text)).toEqual({
        file: 'c.yaml',
        hosts: [],
        services: [],
        adminNetworks: [],
        intents: [],
        audit: { rules: {} },
        policy: DEFAULT_POLICY,
        monitors: [],
        alerting: NO_ALERTING,
        incidents: DEFAULT_INCIDENT_POLICY,
      });
    }
  });

  it('resolves a service to its listed hosts plus every host of its group, once each', () => {
    const c = parse(
      `${HOSTS}  - name: db1\n    addresses: [192.0.2.21]\nservices:\n  - name: shop\n    hosts: [db1, web2]\n    group: web\n    public: [tcp/8000-8100, udp/53, sctp/9]\n`,
    );
    expect(c.services[0]?.hosts).toEqual(['db1', 'web2', 'web1']);
    expect(c.services[0]?.public.map((p) => [p.proto, p.from, p.to])).toEqual([
      ['tcp', 8000, 8100],
      ['udp', 53, 53],
      ['sctp', 9, 9],
    ]);
  });

  it('takes all the audit settings and accepts plain addresses and IPv6 networks as admin networks', () => {
    const c = parse(
      'admin-networks: [198.51.100.7, 2001:db8:1::/48]\naudit:\n  fail-on: critical\n  expiring-within-days: 7\n  broad-source-prefix: 16\n  established-within: 3\n  rules:\n    shadowed-rule: {severity: critical, justification: "  it bit us  "}\n',
    );
    expect(c.adminNetworks).toEqual(['198.51.100.7', '2001:db8:1::/48']);
    expect(c.audit).toMatchObject({
      failOn: 'critical',
      expiringWithinDays: 7,
      broadSourcePrefix: 16,
      establishedWithin: 3,
      rules: { 'shadowed-rule': { enabled: true, severity: 'critical', justification: 'it bit us' } },
    });
  });

  it('validates rule ids against the audit catalogue by default', () => {
    // The catalogue is being filled in; an id that is obviously not a rule is refused whatever it holds.
    const e = fail('audit:\n  rules:\n    no-such-rule:\n      enabled: true\n', undefined);
    expect(e.message).toMatch(/^c\.yaml:3:5: audit\.rules\.no-such-rule: unknown audit rule 'no-such-rule'/);
  });
});

describe('parseConfig: bad configs name file:line:column, the field, the value and what is valid', () => {
  it('rejects invalid YAML', () => {
    const e = fail('hosts:\n  - name: [web1\n');
    expect(e.message).toMatch(/^c\.yaml:\d+:\d+: invalid YAML: .*; expected valid YAML$/);
    expect(fail('site: a\nsite: b\n').message).toBe(
      'c.yaml:2:1: invalid YAML: Map keys must be unique; expected valid YAML',
    );
  });

  it('rejects a document that is not a map of sections', () => {
    expect(fail('- web1\n').message).toBe(
      'c.yaml:1:1: unexpected a list; expected a map of sections: site, hosts, services, admin-networks, intents, audit, policy, monitors, alerting, incidents, status-page',
    );
  });

  it('rejects an unknown section, with a suggestion', () => {
    expect(fail('site: shop\nadmin_networks: [198.51.100.0/24]\n').message).toBe(
      "c.yaml:2:1: admin_networks: unknown section 'admin_networks' (did you mean 'admin-networks'?); expected one of site, hosts, services, admin-networks, intents, audit, policy, monitors, alerting, incidents, status-page",
    );
  });

  it('rejects a misspelt host key and reports the missing one too, each on its own line', () => {
    const e = fail(shopWith(6, '    adress: [192.0.2.11]'));
    expect(e.message.split('\n')).toEqual([
      "c.yaml:5:5: hosts[0].addresses: missing 'addresses'; expected a list of addresses: an IPv4 or IPv6 address without prefix, like 192.0.2.11 or 2001:db8::11",
      "c.yaml:6:5: hosts[0].adress: unknown key 'adress' (did you mean 'addresses'?); expected one of name, addresses, firewall, group, tables, environment",
    ]);
    // The ParseError fields are the first problem's.
    expect([e.line, e.column, e.expected]).toEqual([
      5,
      5,
      'a list of addresses: an IPv4 or IPv6 address without prefix, like 192.0.2.11 or 2001:db8::11',
    ]);
    expect(e.issues.map((i) => i.path)).toEqual(['hosts[0].addresses', 'hosts[0].adress']);
    expect(e.details.issues).toBe(e.issues);
  });

  it('rejects a host address with a prefix, and legacy IPv4 forms', () => {
    const e = fail(shopWith(10, '    addresses: [192.0.2.12/24, 10.1.1, 2001:db8::12%eth0]'));
    expect(e.message.split('\n')).toEqual([
      "c.yaml:10:17: hosts[1].addresses[0]: '192.0.2.12/24': a host address takes no prefix; expected an IPv4 or IPv6 address without prefix, like 192.0.2.11 or 2001:db8::11",
      "c.yaml:10:32: hosts[1].addresses[1]: '10.1.1': not an IPv4 address; expected an IPv4 or IPv6 address without prefix, like 192.0.2.11 or 2001:db8::11",
      "c.yaml:10:40: hosts[1].addresses[2]: '2001:db8::12%eth0': zone ids are not allowed; expected an IPv4 or IPv6 address without prefix, like 192.0.2.11 or 2001:db8::11",
    ]);
    expect(e.token).toBe('192.0.2.12/24');
  });

  it('rejects a host without addresses', () => {
    expect(fail('hosts:\n  - name: web1\n    addresses: []\n').message).toBe(
      'c.yaml:3:16: hosts[0].addresses: unexpected an empty list; expected at least one address: an IPv4 or IPv6 address without prefix, like 192.0.2.11 or 2001:db8::11',
    );
  });

  it('rejects an unknown firewall kind', () => {
    expect(fail(shopWith(7, '    firewall: pf')).message).toBe(
      "c.yaml:7:15: hosts[0].firewall: unexpected 'pf'; expected nftables or iptables",
    );
  });

  it('rejects a host name that is not a name', () => {
    expect(fail(shopWith(9, '  - name: web 2')).message).toBe(
      "c.yaml:9:11: hosts[1].name: unexpected 'web 2'; expected a host name: letters, digits, ., _ or - (starting with a letter or digit)",
    );
  });

  it('rejects a duplicate host name', () => {
    expect(fail(shopWith(9, '  - name: web1')).message).toBe(
      "c.yaml:9:11: hosts[1].name: duplicate host name 'web1' (first declared at line 5); expected a unique host name",
    );
  });

  it('rejects a service naming an unknown host, with suggestions', () => {
    expect(fail(shopWith(16, '    hosts: [web1, web3]')).message).toBe(
      "c.yaml:16:19: services[0].hosts[1]: unknown host 'web3' (did you mean 'web1' or 'web2'?); expected one of the declared hosts: web1, web2",
    );
  });

  it('rejects a service naming a group no host has', () => {
    expect(fail(shopWith(16, '    group: wbe')).message).toBe(
      "c.yaml:16:12: services[0].group: no host is in group 'wbe' (did you mean 'web'?); expected one of the host groups: web",
    );
  });

  it('rejects a service naming a host when no host is declared', () => {
    expect(fail('hosts:\nservices:\n  - name: shop\n    hosts: [web1]\n').message).toBe(
      "c.yaml:4:13: services[0].hosts[0]: unknown host 'web1'; expected a host declared under hosts:",
    );
  });

  it('rejects a service with neither hosts nor group', () => {
    expect(fail(shopWith(16, '    # runs nowhere')).message).toBe(
      "c.yaml:15:5: services[0]: service 'shop' names neither hosts nor group; expected hosts: [host names] and/or group: a host group",
    );
  });

  it('rejects bad port declarations: range, reversed ranges, missing or unknown protocols', () => {
    const e = fail(shopWith(17, '    public: [tcp/0, tcp/65536, tcp/8100-8000, 80, http/80, tcp/eighty]'));
    const expected = 'expected tcp/PORT, udp/PORT or sctp/PORT (or PROTO/FROM-TO), PORT 1-65535';
    expect(e.message.split('\n')).toEqual([
      `c.yaml:17:14: services[0].public[0]: 'tcp/0': port 0 is out of range; ${expected}`,
      `c.yaml:17:21: services[0].public[1]: 'tcp/65536': port 65536 is out of range; ${expected}`,
      `c.yaml:17:32: services[0].public[2]: 'tcp/8100-8000': the range 8100-8000 is reversed (from > to); ${expected}`,
      `c.yaml:17:47: services[0].public[3]: unexpected '80'; ${expected}`,
      `c.yaml:17:51: services[0].public[4]: 'http/80': unknown protocol 'http'; ${expected}`,
      `c.yaml:17:60: services[0].public[5]: 'tcp/eighty': not a port declaration; ${expected}`,
    ]);
  });

  it('rejects an internal network with host bits set, naming the network meant', () => {
    expect(fail(shopWith(20, '        from: [198.51.100.1/24]')).message).toBe(
      "c.yaml:20:16: services[0].internal[0].from[0]: '198.51.100.1/24': host bits are set (did you mean 198.51.100.0/24?); expected an address or network in CIDR notation, like 198.51.100.0/24 or 2001:db8::/32",
    );
  });

  it('rejects an admin network with a bad prefix length', () => {
    expect(fail(shopWith(25, '  - 198.51.100.0/33')).message).toBe(
      "c.yaml:25:5: admin-networks[0]: '198.51.100.0/33': the prefix length must be 0-32; expected an address or network in CIDR notation, like 198.51.100.0/24 or 2001:db8::/32",
    );
  });

  it('rejects bad intents with the intents file syntax, naming the entry', () => {
    expect(fail(shopWith(33, '    dport: 99999')).message).toBe(
      "c.yaml:33:12: intents[0].dport: '99999': not a port (intent 'shop https from anywhere'); expected ports 0-65535, service names (http, https, ssh, domain, ...) and ranges, like 80,https,8000-8100",
    );
    expect(fail(shopWith(33, '    port: 443')).message).toBe(
      "c.yaml:33:5: intents[0].port: unknown intent field 'port' (did you mean 'sport' or 'dport'?); expected one of name, must, hook, family, from, to, proto, sport, dport, iif, oif, ct-state, icmp-type",
    );
    expect(fail(shopWith(34, '  - name: shop https from anywhere')).message).toBe(
      "c.yaml:34:11: intents[1].name: duplicate intent name 'shop https from anywhere'; expected a unique name",
    );
    expect(fail('intents: {name: a}\n').message).toBe(
      'c.yaml:1:10: intents: unexpected a map; expected a list of intents',
    );
  });

  it('rejects an unknown audit rule id, with a suggestion', () => {
    expect(fail(shopWith(48, '    redundant-rules:')).message).toBe(
      "c.yaml:48:5: audit.rules.redundant-rules: unknown audit rule 'redundant-rules' (did you mean 'redundant-rule'?); expected an audit rule id: admin-port-exposed, redundant-rule, rule-without-comment, shadowed-rule",
    );
  });

  it('rejects a disabled rule without a written justification', () => {
    expect(fail(shopWith(47, '')).message).toBe(
      "c.yaml:46:16: audit.rules.rule-without-comment.justification: rule 'rule-without-comment' is disabled without a justification; expected a written justification when enabled is false (it is shown in every report)",
    );
    expect(fail(shopWith(47, '      justification: "  "')).message).toBe(
      'c.yaml:47:22: audit.rules.rule-without-comment.justification: empty justification; expected a written justification when enabled is false (it is shown in every report)',
    );
  });

  it('rejects enabled written as a word, an unknown severity and a bad fail-on', () => {
    const e = fail(
      shopWith(41, '  fail-on: warning').replace('enabled: false', 'enabled: no').replace('medium', 'urgent'),
    );
    expect(e.message.split('\n')).toEqual([
      "c.yaml:41:12: audit.fail-on: unexpected 'warning'; expected one of critical, high, medium, low, info",
      "c.yaml:46:16: audit.rules.rule-without-comment.enabled: unexpected 'no'; expected true or false",
      "c.yaml:49:17: audit.rules.redundant-rule.severity: unexpected 'urgent'; expected one of critical, high, medium, low, info",
    ]);
  });

  it('rejects numbers out of range and of the wrong kind', () => {
    const e = fail('audit:\n  expiring-within-days: -1\n  broad-source-prefix: 8.5\n  established-within: "10"\n');
    expect(e.message.split('\n')).toEqual([
      "c.yaml:2:25: audit.expiring-within-days: unexpected '-1'; expected days: a whole number 0-3650",
      "c.yaml:3:24: audit.broad-source-prefix: unexpected '8.5'; expected a prefix length: a whole number 0-128",
      `c.yaml:4:23: audit.established-within: unexpected '"10"'; expected a rule count: a whole number 1-1000000`,
    ]);
  });

  it('rejects an unknown key in a service and in an audit rule, and an empty value', () => {
    const e = fail(
      shopWith(17, '    publc: [tcp/80]').replace('severity: medium', 'severity: medium\n      justifcation: why'),
    );
    expect(e.message.split('\n')).toEqual([
      "c.yaml:17:5: services[0].publc: unknown key 'publc' (did you mean 'public'?); expected one of name, hosts, group, public, internal, health, address, monitor, traffic, runbook",
      "c.yaml:50:7: audit.rules.redundant-rule.justifcation: unknown key 'justifcation' (did you mean 'justification'?); expected one of enabled, severity, justification",
    ]);
    expect(fail(shopWith(8, '    group:')).message).toBe(
      'c.yaml:8:11: hosts[0].group: unexpected nothing; expected a group name: letters, digits, ., _ or - (starting with a letter or digit)',
    );
  });

  it('points at the alias when a value comes from an anchor elsewhere', () => {
    expect(fail(`${HOSTS}  - *w\n`.replace('- name: web1', '- &w\n    name: web1')).message).toBe(
      "c.yaml:9:5: hosts[2].name: duplicate host name 'web1' (first declared at line 3); expected a unique host name",
    );
  });

  it('reports the problems of every section at once, in file order', () => {
    const e = fail('audit:\n  fail-on: never\nhosts:\n  - name: a\n    addresses: [1.2.3]\nsiet: x\n');
    expect(e.issues.map((i) => `${i.line}:${i.column} ${i.path}`)).toEqual([
      '2:12 audit.fail-on',
      '5:17 hosts[0].addresses[0]',
      '6:1 siet',
    ]);
    expect(e.message.split('\n')).toHaveLength(3);
    expect([e.file, e.line, e.column, e.token]).toEqual(['c.yaml', 2, 12, 'never']);
  });
});

describe('parseConfig: managed tables', () => {
  const host = (lines: string) => `hosts:\n  - name: web1\n    addresses: [192.0.2.11]\n${lines}`;

  it('keeps tables undefined when not written; managedTables gives the default of the firewall', () => {
    const [nft, ipt, none] = parse(
      `${host('    firewall: nftables\n')}  - name: db1\n    addresses: [192.0.2.21]\n    firewall: iptables\n  - name: x\n    addresses: [192.0.2.31]\n`,
    ).hosts;
    expect(nft?.tables).toBeUndefined();
    expect([nft, ipt, none].map((h) => h && managedTables(h))).toEqual([['inet filter'], ['filter'], ['inet filter']]);
  });

  it('takes nftables tables as FAMILY NAME (normalising spaces) and iptables tables by name', () => {
    const c = parse(
      `${host('    tables: [inet filter, "ip6  raw_6", netdev ingress-eth0]\n')}  - name: db1\n    addresses: [192.0.2.21]\n    firewall: iptables\n    tables: [filter, nat]\n`,
    );
    expect(c.hosts.map((h) => h.tables)).toEqual([
      ['inet filter', 'ip6 raw_6', 'netdev ingress-eth0'],
      ['filter', 'nat'],
    ]);
    expect(managedTables(c.hosts[1] as (typeof c.hosts)[number])).toEqual(['filter', 'nat']);
  });

  it('rejects unknown families, missing families, bad names, duplicates and tables of the other firewall', () => {
    const nft =
      'expected an nftables table as FAMILY NAME, like inet filter (families: ip, ip6, inet, arp, bridge, netdev)';
    const ipt = 'expected an iptables table: filter, nat, mangle, raw, security';
    const e = fail(
      `${host('    tables: [inett filter, filter, ip bad$name, inet filter, inet filter]\n')}  - name: db1\n    addresses: [192.0.2.21]\n    firewall: iptables\n    tables: [nta, inet filter]\n`,
    );
    expect(e.message.split('\n')).toEqual([
      `c.yaml:4:14: hosts[0].tables[0]: 'inett filter': unknown family 'inett' (did you mean 'inet'?); ${nft}`,
      `c.yaml:4:28: hosts[0].tables[1]: 'filter': the family is missing (an iptables table needs firewall: iptables on the host); ${nft}`,
      `c.yaml:4:36: hosts[0].tables[2]: 'ip bad$name': 'bad$name' is not an nftables table name; ${nft}`,
      "c.yaml:4:62: hosts[0].tables[4]: duplicate table 'inet filter'; expected each table once",
      `c.yaml:8:14: hosts[1].tables[0]: 'nta': unknown iptables table (did you mean 'nat'?); ${ipt}`,
      `c.yaml:8:19: hosts[1].tables[1]: 'inet filter': an nftables table on an iptables host (iptables tables have no family); ${ipt}`,
    ]);
    expect(fail(host('    tables: []\n')).message).toBe(
      'c.yaml:4:13: hosts[0].tables: unexpected an empty list; expected at least one table (leave tables out for the default); a list of tables: an nftables table as FAMILY NAME, like inet filter (families: ip, ip6, inet, arp, bridge, netdev); or on iptables hosts an iptables table: filter, nat, mangle, raw, security',
    );
  });
});

describe('parseConfig: health checks', () => {
  const svc = (health: string) => `${HOSTS}services:\n  - name: shop\n    group: web\n    health:\n${health}`;

  it('fills the http defaults (path /, expect 200, timeout 2s) and reads tcp checks and durations', () => {
    const c = parse(
      svc(
        '      - http: {port: 80}\n      - http: {port: 8080, path: /status?full=1, expect: 204, timeout: 500ms}\n      - tcp: {port: 22, timeout: 1m}\n      - tcp: {port: 5432}\n',
      ),
    );
    const at = (line: number) => ({ file: 'c.yaml', line, column: 9 });
    expect(c.services[0]?.health).toEqual([
      { kind: 'http', port: 80, path: '/', expect: 200, timeoutMs: 2000, at: at(12) },
      { kind: 'http', port: 8080, path: '/status?full=1', expect: 204, timeoutMs: 500, at: at(13) },
      { kind: 'tcp', port: 22, timeoutMs: 60_000, at: at(14) },
      { kind: 'tcp', port: 5432, timeoutMs: 2000, at: at(15) },
    ]);
    // No health key: no health field (not an empty list), as for internal.
    expect(parse(`${HOSTS}services:\n  - name: shop\n    group: web\n`).services[0]).not.toHaveProperty('health');
  });

  it('rejects bad durations, ports, paths and statuses, naming each', () => {
    const d = 'expected a duration from 100ms to 1m, like 500ms, 2s or 1m';
    const e = fail(
      svc(
        '      - http: {port: 80, timeout: 2}\n      - tcp: {port: 0, timeout: 1.5s}\n      - http: {port: 80, path: healthz, expect: 99, timeout: 2x}\n      - tcp: {port: 22, timeout: 10ms}\n      - tcp: {port: 22, timeout: 2h}\n      - tcp: {port: 22, timeout: soon}\n',
      ),
    );
    expect(e.message.split('\n')).toEqual([
      `c.yaml:12:35: services[0].health[0].http.timeout: '2': the unit is missing; ${d}`,
      "c.yaml:13:21: services[0].health[1].tcp.port: unexpected '0'; expected a port: a whole number 1-65535",
      `c.yaml:13:33: services[0].health[1].tcp.timeout: '1.5s': a duration is a whole number of a unit (write 1500ms, not 1.5s); ${d}`,
      "c.yaml:14:32: services[0].health[2].http.path: unexpected 'healthz'; expected a URL path starting with /, like /healthz",
      "c.yaml:14:49: services[0].health[2].http.expect: unexpected '99'; expected an HTTP status: a whole number 100-599",
      `c.yaml:14:62: services[0].health[2].http.timeout: '2x': unknown unit 'x'; ${d}`,
      `c.yaml:15:34: services[0].health[3].tcp.timeout: '10ms': less than 100ms; ${d}`,
      `c.yaml:16:34: services[0].health[4].tcp.timeout: '2h': more than 1m; ${d}`,
      `c.yaml:17:34: services[0].health[5].tcp.timeout: 'soon': not a duration; ${d}`,
    ]);
  });

  it('rejects a check without port, with an unknown key, with both kinds or with neither', () => {
    expect(fail(svc('      - tcp: {timeot: 2s}\n')).message.split('\n')).toEqual([
      "c.yaml:12:14: services[0].health[0].tcp.port: missing 'port'; expected a port: a whole number 1-65535",
      "c.yaml:12:15: services[0].health[0].tcp.timeot: unknown key 'timeot' (did you mean 'timeout'?); expected one of port, timeout",
    ]);
    expect(fail(svc('      - {}\n      - http: {port: 80}\n        tcp: {port: 80}\n')).message.split('\n')).toEqual([
      'c.yaml:12:9: services[0].health[0]: a health check with neither http nor tcp; expected one check per entry: {http: {port, path, expect, timeout}} or {tcp: {port, timeout}}',
      'c.yaml:13:9: services[0].health[1]: a health check with both http and tcp; expected one check per entry: {http: {port, path, expect, timeout}} or {tcp: {port, timeout}}',
    ]);
    expect(fail(svc('      - htp: {port: 80}\n')).message).toBe(
      "c.yaml:12:9: services[0].health[0].htp: unknown key 'htp' (did you mean 'http'?); expected one of http, tcp",
    );
  });
});

describe('parseConfig: the change policy', () => {
  const policy = (text: string) => `${HOSTS}policy:\n${text}`;

  it('reads every policy field: approvers, once and weekly freeze windows (UTC), canary, confirm timeout', () => {
    const c = parse(
      policy(
        [
          '  approvals: 2',
          '  approvers: [alice, bob, carol]',
          '  canary: [web2]',
          '  confirm-timeout: 2m',
          '  freeze:',
          '    - name: year end',
          '      start: 2025-12-24T00:00:00+01:00',
          '      end: 2026-01-02T00:00:00Z',
          '    - name: weekend',
          '      weekly: {days: [sun, sat, Saturday], from: "18:00", to: "24:00"}',
          '    - name: monday mornings',
          '      weekly: {days: [mon], from: 0:00, to: 09:30}',
          '',
        ].join('\n'),
      ),
    );
    expect(c.policy).toEqual({
      approvals: 2,
      approvers: ['alice', 'bob', 'carol'],
      canary: ['web2'],
      confirmTimeoutSeconds: 120,
      blockOn: DEFAULT_POLICY.blockOn,
      planTimeoutSeconds: 60,
      planMemoryMiB: 2048,
      freeze: [
        {
          kind: 'once',
          name: 'year end',
          start: '2025-12-23T23:00:00.000Z',
          end: '2026-01-02T00:00:00.000Z',
          at: { file: 'c.yaml', line: 14, column: 7 },
        },
        {
          kind: 'weekly',
          name: 'weekend',
          days: [0, 6],
          from: 18 * 60,
          to: 1440,
          at: { file: 'c.yaml', line: 17, column: 7 },
        },
        {
          kind: 'weekly',
          name: 'monday mornings',
          days: [1],
          from: 0,
          to: 9 * 60 + 30,
          at: { file: 'c.yaml', line: 19, column: 7 },
        },
      ],
    });
  });

  it('gives the defaults for an absent or empty section and for left-out keys', () => {
    expect(parse(HOSTS).policy).toBe(DEFAULT_POLICY);
    expect(parse(policy('')).policy).toBe(DEFAULT_POLICY);
    expect(parse(policy('  canary: [web1]\n')).policy).toEqual({ ...DEFAULT_POLICY, canary: ['web1'] });
    expect(DEFAULT_POLICY).toEqual({
      approvals: 1,
      approvers: [],
      freeze: [],
      canary: [],
      confirmTimeoutSeconds: 60,
      blockOn: ['closes-public-service', 'violates-must-allow', 'violates-must-deny', 'exposes-admin-port'],
      planTimeoutSeconds: 60,
      planMemoryMiB: 2048,
    });
  });

  it('reads block-on, plan-timeout and plan-memory, and names a misspelt danger', () => {
    const c = parse(policy('  block-on: [closes-public-service]\n  plan-timeout: 2m\n  plan-memory: 512\n'));
    expect(c.policy).toMatchObject({ blockOn: ['closes-public-service'], planTimeoutSeconds: 120, planMemoryMiB: 512 });
    expect(fail(policy('  block-on: [closes-public-service, exposes-admin-ports]\n')).message).toMatch(
      /^c\.yaml:9:37: policy\.block-on\[1\]: unexpected .exposes-admin-ports.; expected one of closes-public-service, violates-must-allow, violates-must-deny, exposes-admin-port$/,
    );
    expect(fail(policy('  plan-timeout: 2h\n')).message).toMatch(
      /^c\.yaml:9:17: policy\.plan-timeout: '2h': more than 1h/,
    );
  });

  it('rejects an unknown canary host, with a suggestion', () => {
    expect(fail(policy('  canary: [web1, web3]\n')).message).toBe(
      "c.yaml:9:18: policy.canary[1]: unknown host 'web3' (did you mean 'web1' or 'web2'?); expected one of the declared hosts: web1, web2",
    );
    expect(fail(policy('  canary: [web1, web1]\n')).message).toBe(
      "c.yaml:9:18: policy.canary[1]: duplicate canary host 'web1'; expected each host once",
    );
  });

  it('rejects more approvals than listed approvers, and duplicate approvers', () => {
    expect(fail(policy('  approvals: 3\n  approvers: [alice, bob]\n')).message).toBe(
      'c.yaml:9:14: policy.approvals: 3 approvals can never be reached with 2 approvers (alice, bob); expected at most 2 (the number of approvers), or more names under approvers',
    );
    expect(fail(policy('  approvers: [alice, bob, alice]\n')).message).toBe(
      "c.yaml:9:27: policy.approvers[2]: duplicate approver 'alice'; expected each approver once",
    );
    expect(fail(policy('  approvals: 0\n')).message).toBe(
      "c.yaml:9:14: policy.approvals: unexpected '0'; expected a number of approvals: a whole number 1-1000",
    );
    expect(fail(policy('  approvers: [al ice]\n')).message).toBe(
      "c.yaml:9:15: policy.approvers[0]: unexpected 'al ice'; expected a token name: letters, digits, ., _ or - (starting with a letter or digit)",
    );
  });

  it('rejects a confirm timeout out of 5s..1h, without a unit, or in parts of seconds', () => {
    const d = 'expected a duration from 5s to 1h, like 500ms, 2s or 1m';
    expect(fail(policy('  confirm-timeout: 2s\n')).message).toBe(
      `c.yaml:9:20: policy.confirm-timeout: '2s': less than 5s; ${d}`,
    );
    expect(fail(policy('  confirm-timeout: 2h\n')).message).toBe(
      `c.yaml:9:20: policy.confirm-timeout: '2h': more than 1h; ${d}`,
    );
    expect(fail(policy('  confirm-timeout: 60\n')).message).toBe(
      `c.yaml:9:20: policy.confirm-timeout: '60': the unit is missing; ${d}`,
    );
    expect(fail(policy('  confirm-timeout: 5500ms\n')).message).toBe(
      "c.yaml:9:20: policy.confirm-timeout: '5500ms': not a whole number of seconds; expected a duration in whole seconds, like 90s or 2m",
    );
  });

  it('rejects an end before (or at) the start, saying so in UTC when an offset is involved', () => {
    const e = fail(
      policy(
        '  freeze:\n    - name: a\n      start: 2020-11-27T00:00:00Z\n      end: 2020-11-27T00:00:00Z\n    - name: b\n      start: 2020-11-27T00:00:00Z\n      end: 2020-11-27T00:30:00+01:00\n',
      ),
    );
    expect(e.message.split('\n')).toEqual([
      "c.yaml:12:12: policy.freeze[0].end: '2020-11-27T00:00:00Z' is not after start '2020-11-27T00:00:00Z'; expected an end after the start (the end is exclusive)",
      "c.yaml:15:12: policy.freeze[1].end: '2020-11-27T00:30:00+01:00' is not after start '2020-11-27T00:00:00Z' (in UTC: 2020-11-26T23:30:00.000Z is not after 2020-11-27T00:00:00.000Z); expected an end after the start (the end is exclusive)",
    ]);
  });

  it('rejects instants without offset or time, and dates that do not exist', () => {
    const i = 'expected an ISO 8601 instant with an offset, like 2020-11-27T00:00:00Z or 2020-11-27T01:00:00+01:00';
    const e = fail(
      policy(
        '  freeze:\n    - name: a\n      start: 2020-11-27\n      end: 2020-11-28T00:00:00\n    - name: b\n      start: 2020-02-30T00:00:00Z\n      end: next week\n',
      ),
    );
    expect(e.message.split('\n')).toEqual([
      `c.yaml:11:14: policy.freeze[0].start: '2020-11-27': a date alone is not an instant (add a time and an offset: T00:00:00Z); ${i}`,
      `c.yaml:12:12: policy.freeze[0].end: '2020-11-28T00:00:00': the offset is missing (Z or +01:00); ${i}`,
      `c.yaml:14:14: policy.freeze[1].start: '2020-02-30T00:00:00Z': day 30 does not exist in 2020-02; ${i}`,
      `c.yaml:15:12: policy.freeze[1].end: 'next week': not an ISO 8601 instant; ${i}`,
    ]);
  });

  it('rejects unknown days, bad times, from not before to, and windows of neither or both kinds', () => {
    const e = fail(
      policy(
        [
          '  freeze:',
          '    - name: a',
          '      weekly: {days: [mon, tues], from: "17:00", to: "09:00"}',
          '    - name: b',
          '      weekly: {days: [], from: "24:00", to: "25:00"}',
          '',
        ].join('\n'),
      ),
    );
    expect(e.message.split('\n')).toEqual([
      "c.yaml:11:28: policy.freeze[0].weekly.days[1]: 'tues': unknown day (did you mean 'tue'?); expected a day: mon, tue, wed, thu, fri, sat, sun",
      'c.yaml:13:22: policy.freeze[1].weekly.days: unexpected an empty list; expected at least one day: mon, tue, wed, thu, fri, sat, sun',
      'c.yaml:13:32: policy.freeze[1].weekly.from: \'"24:00"\': 24:00 is only valid as the end (to); expected a time of day in UTC as HH:MM, like 09:00',
      'c.yaml:13:45: policy.freeze[1].weekly.to: \'"25:00"\': the time of day is out of range; expected a time of day in UTC as HH:MM, like 09:00 (24:00 for the end of the day)',
    ]);
    expect(
      fail(policy('  freeze:\n    - name: a\n      weekly: {days: [fri], from: "17:00", to: "09:00"}\n')).message,
    ).toBe(
      "c.yaml:11:48: policy.freeze[0].weekly.to: '09:00' is not after from '17:00' (a weekly window cannot span midnight); expected a time after from (24:00 for the end of the day); split a window over midnight into two windows",
    );
    const both = fail(
      policy(
        '  freeze:\n    - name: a\n    - name: b\n      start: 2020-11-27T00:00:00Z\n    - name: c\n      end: 2020-11-27T00:00:00Z\n      weekly: {days: [sun], from: "00:00", to: "24:00"}\n    - name: c\n      weekly: {days: [sun], from: "00:00", to: "24:00"}\n',
      ),
    );
    expect(both.message.split('\n')).toEqual([
      "c.yaml:10:7: policy.freeze[0]: freeze window 'a' has neither start/end nor weekly; expected start and end (ISO 8601 instants), or weekly: {days, from, to}",
      "c.yaml:11:7: policy.freeze[1].end: missing 'end'; expected an ISO 8601 instant with an offset, like 2020-11-27T00:00:00Z or 2020-11-27T01:00:00+01:00",
      "c.yaml:15:15: policy.freeze[2].weekly: freeze window 'c' has both start/end and weekly; expected either start and end (once) or weekly, in separate windows",
      "c.yaml:16:13: policy.freeze[3].name: duplicate freeze window name 'c' (first declared at line 13); expected a unique window name",
    ]);
  });

  it('rejects a misspelt policy key and a policy that is not a map', () => {
    expect(fail(policy('  confirm_timeout: 1m\n')).message).toBe(
      "c.yaml:9:3: policy.confirm_timeout: unknown key 'confirm_timeout' (did you mean 'confirm-timeout'?); expected one of approvals, approvers, freeze, canary, confirm-timeout, block-on, plan-timeout, plan-memory",
    );
    expect(fail('policy: [approvals]\n').message).toBe(
      'c.yaml:1:9: policy: unexpected a list; expected a map with approvals, approvers, freeze, canary, confirm-timeout, block-on, plan-timeout and plan-memory',
    );
  });
});

describe('docs/config.md', () => {
  it('has examples that load (sections other than hosts get two web hosts to refer to)', () => {
    const md = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'config.md'), 'utf8');
    const blocks = [...md.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    for (const b of blocks) {
      const text = /^(site|hosts):/.test(b) ? b : `${HOSTS}${b}`;
      expect(() => parseConfig(text, 'config.md', { ruleIds: RULE_IDS })).not.toThrow();
    }
  });
});

describe('parsePortDecl', () => {
  it('parses a port or a range and refuses anything else with what is valid', () => {
    expect(parsePortDecl('udp/53')).toEqual({ proto: 'udp', from: 53, to: 53, text: 'udp/53' });
    expect(parsePortDecl('tcp/8000-8100')).toMatchObject({ from: 8000, to: 8100 });
    expect(() => parsePortDecl('tcp/0')).toThrow(UserError);
    expect(() => parsePortDecl('443')).toThrow(
      "'443': the protocol is missing; expected tcp/PORT, udp/PORT or sctp/PORT (or PROTO/FROM-TO), PORT 1-65535",
    );
  });
});

describe('parseConfig: robustness', () => {
  const lines = SHOP.split('\n');
  const VALUES = [
    '',
    '-1',
    '0',
    '~',
    'null',
    '[]',
    '{}',
    '[a, [b]]',
    '*x',
    '&x a',
    '!!binary aGk=',
    '!custom 3',
    '"\\u0000"',
    'tcp/0',
    'tcp/70000-1',
    '99999999999999999999',
    '1e400',
    '::',
    '0.0.0.0/0',
    '__proto__',
    'constructor',
    '? [a]',
    '<<: *x',
    '|\n  block',
    'enabled: false',
    'a: b: c',
    "'",
    '"',
    '- ',
    ': x',
    '---',
    '%YAML 1.1',
  ];
  const mutation = fc.oneof(
    // Replace a value after a colon with something odd.
    fc.record({ kind: fc.constant('value' as const), line: fc.nat(), value: fc.constantFrom(...VALUES) }),
    fc.record({ kind: fc.constant('delete' as const), line: fc.nat() }),
    fc.record({ kind: fc.constant('duplicate' as const), line: fc.nat() }),
    fc.record({ kind: fc.constant('indent' as const), line: fc.nat(), by: fc.integer({ min: -4, max: 4 }) }),
    fc.record({
      kind: fc.constant('insert' as const),
      line: fc.nat(),
      at: fc.nat(),
      text: fc.string({ maxLength: 8 }),
    }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  );
  interface Mutation {
    readonly kind: string;
    readonly line?: number;
    readonly value?: string;
    readonly by?: number;
    readonly at?: number;
    readonly text?: string;
  }
  const mutate = (text: string, muts: readonly Mutation[]): string => {
    let ls = text.split('\n');
    for (const m of muts) {
      const i = (m.line ?? 0) % ls.length;
      const line = ls[i] ?? '';
      if (m.kind === 'value') {
        const colon = line.indexOf(': ');
        const dash = line.indexOf('- ');
        const cut = colon >= 0 ? colon + 2 : dash >= 0 ? dash + 2 : line.length;
        ls[i] = line.slice(0, cut) + (m.value ?? '');
      } else if (m.kind === 'delete') ls.splice(i, 1);
      else if (m.kind === 'duplicate') ls.splice(i, 0, line);
      else if (m.kind === 'indent') ls[i] = (m.by ?? 0) >= 0 ? ' '.repeat(m.by ?? 0) + line : line.slice(-(m.by ?? 0));
      else if (m.kind === 'insert') {
        const at = (m.at ?? 0) % (line.length + 1);
        ls[i] = line.slice(0, at) + (m.text ?? '') + line.slice(at);
      } else if (m.kind === 'truncate')
        ls = ls
          .join('\n')
          .slice(0, (m.at ?? 0) % (text.length + 1))
          .split('\n');
      if (ls.length === 0) ls = [''];
    }
    return ls.join('\n');
  };

  it('never throws anything but a ParseError on mutations of shop.yaml', async () => {
    expect(lines.length).toBeGreaterThan(40);
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (muts) => {
        if (++runs % 100 === 0) await breathe();
        const text = mutate(SHOP, muts);
        try {
          const c = parseConfig(text, 'shop.yaml', { ruleIds: RULE_IDS });
          // A config that loads is whole: every service resolves to declared hosts.
          for (const s of c.services) for (const h of s.hosts) expect(c.hosts.some((x) => x.name === h)).toBe(true);
        } catch (e) {
          if (!(e instanceof ParseError)) throw e;
          expect(e.line).toBeGreaterThanOrEqual(1);
          expect(e.column).toBeGreaterThanOrEqual(1);
          for (const l of e.message.split('\n')) expect(l).toMatch(/^shop\.yaml:\d+:\d+: .*; expected /);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('refuses an alias bomb instead of expanding it', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
      'site: *d',
    ].join('\n');
    expect(fail(bomb).message).toMatch(/^c\.yaml:1:1: cannot be read: .*alias/i);
  });
});
