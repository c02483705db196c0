/**
 * reach, rules, diff and intents as a user runs them. Each command's first test starts the built CLI as its own
 * process (a real start, its exit code and stdio); the others share one process (cliRunner), as they are about what
 * the command prints and its exit code.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner, ensureBuilt, main, rampart as rampartProcess } from './cli.js';

const outage = 'test/fixtures/nftables/founding-outage.nft';
const fixed = 'test/fixtures/queries/founding-fixed.nft';

const rampart = cliRunner();

beforeAll(() => {
  ensureBuilt();
  expect(existsSync(main)).toBe(true);
}, 180_000);
afterAll(() => rampart.close());

describe('rampart reach', () => {
  it('says https to the shop is dropped by the input policy in the founding outage', async () => {
    const r = await rampartProcess(
      'reach',
      outage,
      '--to',
      '192.0.2.10',
      '--proto',
      'tcp',
      '--dport',
      '443',
      '--ct-state',
      'new',
      '--iif',
      'eth0',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('accepted: none');
    expect(r.stdout).toContain('dropped: 100% of the query');
    expect(r.stdout).toContain('tcp dport 443 from any to 192.0.2.10');
    expect(r.stdout).toContain('by drop: policy drop of inet filter/input');
  });

  it('says the fix accepts it, naming the rule, in JSON too', async () => {
    const r = await rampart('reach', fixed, '--to', '192.0.2.10', '--proto', 'tcp', '--dport', '443', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.counts.drop).toBe('0');
    expect(j.accept.flows[0].deciders.some((d: { text?: string }) => d.text === 'tcp dport { 80, 443 } accept')).toBe(
      true,
    );
    expect(j.accept.flows[0].example).toMatchObject({ daddr: '192.0.2.10', l4proto: 6, dport: 443 });
  });

  it('rejects a bad flag value with exit 2, naming the flag, the value and what is valid', async () => {
    const r = await rampart('reach', outage, '--dport', '80,99999');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      "rampart: --dport '99999': not a port; expected ports 0-65535, service names (http, https, ssh, domain, ...) and ranges, like 80,https,8000-8100\n",
    );
    expect((await rampart('reach', outage, '--hook', 'inbound')).stderr).toContain("--hook 'inbound': unknown hook");
  });
});

describe('rampart rules --unreachable', () => {
  it('lists shadowed, redundant and empty rules with their covers and file:line', async () => {
    const r = await rampartProcess('rules', 'test/fixtures/queries/shadowed.nft', '--unreachable');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('test/fixtures/queries/shadowed.nft:8: tcp dport 500-1500 accept');
    expect(r.stdout).toContain('shadowed (accept rule)');
    expect(r.stdout).toContain('covered by (drop, ');
    expect(r.stdout).toContain('test/fixtures/queries/shadowed.nft:6: tcp dport 1-1000 drop');
    expect(r.stdout).toContain('redundant (accept rule)');
    expect(r.stdout).toContain('empty (accept rule)');
    expect(r.stdout).toContain('chain never entered');
  });

  it('prints JSON and exits 1 with --exit-code when something is unreachable', async () => {
    const r = await rampart('rules', 'test/fixtures/queries/shadowed.nft', '--unreachable', '--json', '--exit-code');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.unreachable.map((u: { line: number; class: string }) => [u.line, u.class])).toEqual([
      [8, 'shadowed'],
      [10, 'redundant'],
      [11, 'empty'],
    ]);
    expect((await rampart('rules', outage, '--unreachable', '--exit-code')).code).toBe(0);
  });
});

describe('rampart diff', () => {
  it('prints "no change in behaviour" for an equivalent restructured ruleset and exits 0', async () => {
    const r = await rampartProcess(
      'diff',
      'test/fixtures/queries/web.nft',
      'test/fixtures/queries/web-restructured.nft',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hook input: no change in behaviour\n');
  });

  it('shows the outage fix as drop -> accept with deciders on each side; --exit-code gives 1', async () => {
    const r = await rampart('diff', outage, fixed);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('drop -> accept');
    expect(r.stdout).toMatch(/tcp dport 80,443 from any to any.*: drop -> accept/);
    expect(r.stdout).toContain('old drop: policy drop of inet filter/input');
    expect(r.stdout).toContain(`new accept: ${fixed}:12: tcp dport { 80, 443 } accept`);
    expect((await rampart('diff', outage, fixed, '--exit-code')).code).toBe(1);
    const j = JSON.parse((await rampart('diff', outage, fixed, '--json')).stdout);
    expect(j.changes.length).toBeGreaterThan(0);
    for (const c of j.changes) {
      expect(c).toMatchObject({ from: 'drop', to: 'accept' });
      expect(c.example.l4proto).toBe(6);
      expect([80, 443]).toContain(c.example.dport);
    }
  });
});

describe('rampart intents', () => {
  it('reports the violated shop intents with a counterexample and exits 1', async () => {
    const r = await rampartProcess('intents', outage, '--file', 'test/fixtures/intents/shop.yaml');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('VIOLATED  test/fixtures/intents/shop.yaml:2: shop https from anywhere');
    expect(r.stdout).toMatch(/counterexample: tcp \S+ -> 192\.0\.2\.10:443/);
    expect(r.stdout).toContain('decided drop by policy drop of inet filter/input');
    expect(r.stdout).toContain('ok        test/fixtures/intents/shop.yaml:15: ssh stays open for the admins');
    expect(r.stdout).toContain('2 of 4 intents violated');
  });

  it('exits 0 when all hold, and 2 on a bad intents file with file:line:column', async () => {
    const ok = await rampart('intents', fixed, '--file', 'test/fixtures/intents/shop.yaml', '--json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).ok).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'rampart-intents-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, '- name: x\n  must: allow\n  proto: tcpp\n');
    const r = await rampart('intents', fixed, '--file', bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}:3:10: intent 'x': proto 'tcpp': unknown protocol; expected a number 0-255`);
  });
});
