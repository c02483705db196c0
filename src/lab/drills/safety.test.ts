import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../config/load.js';
import { LAB_RUNBOOK, LAB_RUNBOOK_PATH, labConfig } from '../rampart-lab.js';
import { drillRefusal, unmarkedHosts } from './safety.js';

const site = (siteLine: string, web1 = '', web2 = '') => `${siteLine}
hosts:
  - name: web1
    addresses: [192.0.2.11]${web1}
  - name: web2
    addresses: [192.0.2.12]${web2}
`;
const parse = (text: string) => parseConfig(text, 'site.yaml');
const fail = (text: string): string => {
  try {
    parse(text);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('where a drill may act: hosts marked lab or staging in rampart.yaml', () => {
  it('refuses an unmarked site, naming each host with where it is declared', () => {
    const msg = drillRefusal(parse(site('site: shop')), ['web1', 'web2']);
    expect(msg).toBe(
      "site.yaml: drills act only on hosts marked as lab or staging, and these are not: web1 (site.yaml:3:5: not marked), web2 (site.yaml:5:5: not marked); mark each host with 'environment: staging' (or lab), or the whole site with 'site: {name: ..., environment: staging}' (docs/config.md)",
    );
  });

  it('lets a drill act on hosts marked staging or lab, and a marked site covers hosts it does not declare', () => {
    const hosts = parse(site('site: shop', '\n    environment: staging', '\n    environment: lab'));
    expect(hosts.hosts.map((h) => h.environment)).toEqual(['staging', 'lab']);
    expect(drillRefusal(hosts, ['web1', 'web2'])).toBeUndefined();
    // the load balancer is not declared: only a marked site covers it
    expect(unmarkedHosts(hosts, ['lb'])).toEqual([{ host: 'lb' }]);
    const marked = parse(site('site: {name: shop, environment: staging}'));
    expect(marked.environment).toBe('staging');
    expect(drillRefusal(marked, ['web1', 'web2', 'lb'])).toBeUndefined();
  });

  it("lets a host's own marking win over the site's: production inside a staging site is refused", () => {
    const c = parse(site('site: {name: shop, environment: staging}', '\n    environment: production'));
    expect(unmarkedHosts(c, ['web1', 'web2'])).toEqual([
      { host: 'web1', environment: 'production', at: 'site.yaml:3:5' },
    ]);
  });

  it('the shop lab marks its site as a lab (the drills check it before the first fault)', () => {
    // as the lab writes it: rampart.yaml with its runbook next to it (the config checks the runbook exists)
    const dir = mkdtempSync(join(tmpdir(), 'rampart-drill-safety-'));
    let c: ReturnType<typeof parseConfig>;
    try {
      mkdirSync(join(dir, 'runbooks'));
      writeFileSync(join(dir, LAB_RUNBOOK_PATH), LAB_RUNBOOK);
      c = parseConfig(labConfig({ monitor: {}, tls: { port: 443 } }), join(dir, 'rampart.yaml'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(c.environment).toBe('lab');
    expect(drillRefusal(c, ['web1', 'web2', 'lb'])).toBeUndefined();
    expect(c.monitors?.map((m) => m.name)).toContain('shop-tls');
  });

  it('says where a bad environment is and what would be valid', () => {
    expect(fail(site('site: shop', '\n    environment: stagin'))).toMatch(
      /site\.yaml:5:18: hosts\[0\]\.environment: 'stagin': unknown environment \(did you mean 'staging'\?\); expected one of production, staging, lab/,
    );
    expect(fail(site('site: {name: shop, environment: prod}'))).toMatch(
      /site\.yaml:1:33: site\.environment: 'prod': unknown environment; expected one of production, staging, lab/,
    );
    expect(fail(site('site: {name: shop, environment: 3}'))).toMatch(
      /site\.environment: .*one of production, staging, lab/,
    );
  });
});
