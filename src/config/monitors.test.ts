import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './load.js';

const HOSTS = `hosts:
  - name: web1
    addresses: [192.0.2.11, 2001:db8::11]
    group: web
  - name: web2
    addresses: [2001:db8::12]
    group: web
services:
  - name: shop
    group: web
    public: [tcp/80, tcp/443]
    address: [192.0.2.10]
    health:
      - http: {port: 80, path: /healthz}
`;

const parse = (text: string) => parseConfig(text, 'c.yaml');
const fail = (text: string): string => {
  try {
    parse(text);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('monitors: in rampart.yaml', () => {
  it('reads http, tcp, tls and dns monitors with their defaults', () => {
    const c = parse(`${HOSTS}monitors:
  - name: shop-home
    service: shop
    http: {url: "https://shop.example/", expect: [200, 301], body: Welcome, max-latency: 2s, headers: {X-Probe: rampart}}
    interval: 30s
    quorum: 2
  - name: db
    tcp: {host: 192.0.2.20, port: 5432}
    from: [agents]
  - name: cert
    tls: {host: shop.example, days: 21}
  - name: dns
    dns: {name: shop.example, type: AAAA, expect: ["2001:db8::10"], resolver: 192.0.2.53}
`);
    expect(c.monitors).toEqual([
      {
        name: 'shop-home',
        service: 'shop',
        target: 'url',
        check: {
          kind: 'http',
          url: 'https://shop.example/',
          method: 'GET',
          headers: { 'X-Probe': 'rampart' },
          expect: [200, 301],
          body: 'Welcome',
          maxLatencyMs: 2000,
          tlsVerify: true,
          followRedirects: false,
        },
        intervalMs: 30_000,
        timeoutMs: 5000,
        failures: 2,
        quorum: 2,
        from: ['server', 'probes'],
      },
      expect.objectContaining({ name: 'db', check: { kind: 'tcp', host: '192.0.2.20', port: 5432 }, from: ['agents'] }),
      expect.objectContaining({ name: 'cert', check: { kind: 'tls', host: 'shop.example', port: 443, minDays: 21 } }),
      expect.objectContaining({
        name: 'dns',
        check: { kind: 'dns', name: 'shop.example', type: 'AAAA', expect: ['2001:db8::10'], resolver: '192.0.2.53' },
      }),
    ]);
  });

  it('expands a service monitor into one direct check per backend and one through its public address', () => {
    const c = parse(HOSTS.replace('    health:', '    monitor: {interval: 5s}\n    health:'));
    expect(
      c.monitors?.map((m) => [m.name, m.target, m.host, m.check.kind === 'http' ? m.check.url : '', m.from]),
    ).toEqual([
      ['shop@web1', 'direct', 'web1', 'http://192.0.2.11:80/healthz', ['server', 'agents', 'probes']],
      ['shop@web2', 'direct', 'web2', 'http://[2001:db8::12]:80/healthz', ['server', 'agents', 'probes']],
      ['shop', 'public', undefined, 'http://192.0.2.10:80/healthz', ['server', 'probes']],
    ]);
    expect(c.monitors?.every((m) => m.intervalMs === 5000 && m.timeoutMs === 5000 && m.service === 'shop')).toBe(true);
  });

  it('falls back to a TCP connect to the first public port without a health check', () => {
    const c = parse(HOSTS.replace(/ {4}health:\n.*\n/, '    monitor: true\n'));
    expect(c.monitors?.[0]?.check).toEqual({ kind: 'tcp', host: '192.0.2.11', port: 80 });
  });

  it('names file:line:column, the field and what is valid for bad monitors', () => {
    expect(fail(`${HOSTS}monitors:\n  - name: x\n    tcp: {host: a, port: 1}\n    dns: {name: b}\n`)).toContain(
      "c.yaml:16:5: monitors[0]: monitor 'x' has tcp and dns; expected exactly one of http, tcp, tls or dns",
    );
    expect(fail(`${HOSTS}monitors:\n  - name: x\n    http: {url: "ftp://a/"}\n`)).toMatch(
      /c\.yaml:17:\d+: monitors\[0\]\.http\.url: .*expected an http:\/\/ or https:\/\/ URL/,
    );
    expect(fail(`${HOSTS}monitors:\n  - name: x\n    service: shp\n    tcp: {host: a, port: 1}\n`)).toContain(
      "monitors[0].service: unknown service 'shp' (did you mean 'shop'?)",
    );
    expect(
      fail(
        `${HOSTS}monitors:\n  - name: shop\n    tcp: {host: a, port: 1}\n  - name: shop\n    tcp: {host: a, port: 2}\n`,
      ),
    ).toContain("duplicate monitor name 'shop'");
    expect(
      fail(`${HOSTS}monitors:\n  - name: x\n    tcp: {host: a, port: 1}\n    interval: 2s\n    timeout: 5s\n`),
    ).toContain('monitors[0].timeout: the timeout is longer than the interval');
    expect(fail(`${HOSTS}monitors:\n  - name: x\n    tcp: {host: a, port: 1}\n    from: [servers]\n`)).toMatch(
      /monitors\[0\]\.from\[0\]: .*expected one of server, agents, probes/,
    );
  });
});
