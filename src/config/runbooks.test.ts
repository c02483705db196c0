import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './load.js';
import { runbooksFor, runbookView } from './runbooks.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-runbooks-'));
  mkdirSync(join(dir, 'runbooks'));
  writeFileSync(
    join(dir, 'runbooks', 'shop.md'),
    '# Shop down\n\n1. Acknowledge: `rampart incident ack ID`\n2. Look\n',
  );
  writeFileSync(join(dir, 'runbooks', 'pager.md'), '# Paged\n\n1. `rampart alerts`\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (service: string, route = '') => `hosts:
  - name: web1
    addresses: [192.0.2.11]
services:
  - name: shop
    hosts: [web1]
    public: [tcp/80]
${service}alerting:
  receivers:
    - name: oncall
      webhook_configs: [{url: "http://127.0.0.1:9/hook"}]
  route:
    receiver: oncall
    routes:
      - matchers: ['severity="critical"']
${route}`;

const fail = (text: string, file: string): string => {
  try {
    parseConfig(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('runbook: in rampart.yaml', () => {
  it('reads the runbooks of services and routes relative to the config file, each once', () => {
    const c = parseConfig(
      config('    runbook: runbooks/shop.md\n', '        runbook: runbooks/pager.md\n'),
      join(dir, 'rampart.yaml'),
    );
    expect(c.services[0]?.runbook).toBe('runbooks/shop.md');
    expect(c.runbooks?.map((r) => [r.path, r.file, r.title, r.steps.length, r.at.line])).toEqual([
      ['runbooks/shop.md', join(dir, 'runbooks', 'shop.md'), 'Shop down', 2, 8],
      ['runbooks/pager.md', join(dir, 'runbooks', 'pager.md'), 'Paged', 1, 17],
    ]);
    // The service's first, then the route's (a child route inherits its parent's).
    const both = runbooksFor(c, { labels: [{ alertname: 'MonitorDown', severity: 'critical', service: 'shop' }] });
    expect(both.map(runbookView).map((r) => r.path)).toEqual(['runbooks/shop.md', 'runbooks/pager.md']);
    expect(runbooksFor(c, { labels: [{ alertname: 'X', severity: 'warning' }] })).toEqual([]);
    expect(runbooksFor(c, { services: ['shop'] }).map((r) => r.path)).toEqual(['runbooks/shop.md']);
    expect(runbookView(both[0] as (typeof both)[0])).not.toHaveProperty('file');
  });

  it('names the file:line:column, the field and the file looked for when a runbook is missing', () => {
    const file = join(dir, 'rampart.yaml');
    expect(fail(config('    runbook: runbooks/shp.md\n'), file)).toBe(
      `${file}:8:14: services[0].runbook: 'runbooks/shp.md': no such file: ${join(dir, 'runbooks', 'shp.md')}; expected a Markdown file, relative to the config file (like runbooks/shop.md) or absolute`,
    );
    expect(fail(config('', '        runbook: runbooks\n'), file)).toContain(
      `${file}:16:18: alerting.route.routes[0].runbook: 'runbooks': ${join(dir, 'runbooks')} is a directory;`,
    );
    expect(fail(config('    runbook: 12\n'), file)).toContain(`${file}:8:14: services[0].runbook: unexpected '12'`);
  });

  it('reads through the reader it is given (a config is never half loaded: a missing runbook fails the load)', () => {
    const read: string[] = [];
    const c = parseConfig(config('    runbook: /srv/runbooks/shop.md\n'), 'x/rampart.yaml', {
      readFile: (f) => {
        read.push(f);
        return '1. one\n';
      },
    });
    expect(read).toEqual(['/srv/runbooks/shop.md']);
    expect(c.runbooks?.[0]?.title).toBe('shop');
  });
});
