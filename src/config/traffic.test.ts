import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './load.js';

const site = (traffic: string) => `hosts:
  - name: web1
    addresses: [192.0.2.11]
    group: web
  - name: lb
    addresses: [192.0.2.10]
services:
  - name: shop
    group: web
    public: [tcp/80]
${traffic}`;

const fail = (text: string): string => {
  try {
    parseConfig(text, 'c.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('traffic: of a service in rampart.yaml', () => {
  it('reads logs, counters, haproxy and the drop settings, with defaults', () => {
    const c = parseConfig(
      site(`    traffic:
      logs:
        - {path: /var/log/nginx/access.log}
        - {path: /var/log/haproxy.log, format: haproxy}
      haproxy: {host: lb, socket: /run/haproxy/admin.sock, backend: shop}
      drop: {share: 60%, for: 30s, floor: 2, slot: 1m}
`),
      'c.yaml',
    );
    const t = c.services[0]?.traffic;
    expect(t?.logs.map((l) => [l.path, l.format, l.at.line])).toEqual([
      ['/var/log/nginx/access.log', 'combined', 13],
      ['/var/log/haproxy.log', 'haproxy', 14],
    ]);
    expect(t?.counters).toBe(false);
    expect(t?.haproxy).toMatchObject({ host: 'lb', socket: '/run/haproxy/admin.sock', backend: 'shop' });
    expect(t?.drop).toEqual({ share: 0.6, forMs: 30_000, floor: 2, slotMs: 60_000 });
    expect(t?.ignorePaths).toEqual([]);
    const ignore = parseConfig(site('    traffic: {ignore-paths: [/metrics, /ping]}\n'), 'c.yaml').services[0]?.traffic;
    expect(ignore?.ignorePaths).toEqual(['/metrics', '/ping']);
  });

  it('measures the rule counters when no other source is named, with the detector defaults', () => {
    const t = parseConfig(site('    traffic: {}\n'), 'c.yaml').services[0]?.traffic;
    expect(t).toMatchObject({
      logs: [],
      counters: true,
      drop: { share: 0.5, forMs: 20_000, floor: 1, slotMs: 300_000 },
    });
    expect(parseConfig(site(''), 'c.yaml').services[0]?.traffic).toBeUndefined();
  });

  it('says where and what would be valid', () => {
    expect(fail(site('    traffic: {logs: [{path: access.log}]}\n'))).toMatch(/c\.yaml:11:\d+.*absolute file path/s);
    expect(fail(site('    traffic: {logs: [{path: /a.log, format: nginx}]}\n'))).toMatch(/one of combined, haproxy/);
    expect(fail(site('    traffic: {drop: {share: 2}}\n'))).toMatch(/outside 0\.05-0\.95/);
    expect(fail(site('    traffic: {drop: {slot: 7m}}\n'))).toMatch(/does not divide a day/);
    expect(fail(site('    traffic: {haproxy: {host: lbb, socket: /s, backend: shop}}\n'))).toMatch(
      /unknown host 'lbb'.*did you mean 'lb'/s,
    );
    expect(fail(site('    traffic: {counter: true}\n'))).toMatch(/counters/);
    expect(fail(site('    traffic: {ignore-paths: [metrics]}\n'))).toMatch(
      /c\.yaml:11:\d+.*URL path starting with \//s,
    );
    expect(fail(site('    traffic: {ignore-paths: ["/a?b=1"]}\n'))).toMatch(/no query string/);
    expect(fail(site('    traffic: {ignore-paths: /metrics}\n'))).toMatch(/a list of URL paths/);
  });
});
