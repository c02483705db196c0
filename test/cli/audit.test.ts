/**
 * `rampart audit` as a user runs it. The first test starts the built CLI as its own process (exit code and stdio of
 * a real start); the others share one process (cliRunner), as they are about what audit prints and its exit code.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner, ensureBuilt, main, rampart as rampartProcess, root } from './cli.js';

const outage = 'test/fixtures/nftables/founding-outage.nft';
const fixed = 'test/fixtures/queries/founding-fixed.nft';
const shop = 'test/fixtures/config/shop.yaml';
const dir = mkdtempSync(join(tmpdir(), 'rampart-audit-'));

const rampart = cliRunner();

beforeAll(() => {
  ensureBuilt();
  expect(existsSync(main)).toBe(true);
}, 180_000);
afterAll(() => rampart.close());

interface JsonFinding {
  rule: string;
  severity: string;
  message: string;
  location: { file: string; line?: number };
  example?: { l4proto: number; dport?: number };
}
const rulesOf = (stdout: string): string[] => (JSON.parse(stdout).findings as JsonFinding[]).map((f) => f.rule);

describe('rampart audit on the founding outage', () => {
  it('reports the blocked public service as critical with a counterexample and exits 1', async () => {
    const r = await rampartProcess('audit', outage, '--public', 'tcp/80,tcp/443');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')[0]).toBe(`rampart audit ${outage}`);
    expect(r.stdout).toContain('CRITICAL (');
    expect(r.stdout).toMatch(new RegExp(`public-service-blocked  ${outage}:9`));
    expect(r.stdout).toMatch(/example: tcp \S+ -> \S+:443 /);
    expect(r.stdout).toMatch(/\n\d+ findings: \d+ critical, .*; failing at --fail-on high\n$/);
  });

  it('finds the service blocked with the site config for web1, naming host and config service', async () => {
    const r = await rampart('audit', outage, '--config', shop, '--host', 'web1', '--format', 'json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    const psb = (j.findings as JsonFinding[]).filter((f) => f.rule === 'public-service-blocked');
    expect(psb.length).toBeGreaterThan(0);
    expect(psb[0]).toMatchObject({ severity: 'critical', location: { file: outage, line: 9 } });
    expect(psb[0]?.example).toMatchObject({ l4proto: 6 });
    expect(j.summary).toMatchObject({ host: 'web1', failOn: 'high', failed: true });
    // The config disables rule-without-comment with a justification: it shows as suppressed, not as findings.
    expect(j.suppressed).toContainEqual({
      rule: 'rule-without-comment',
      justification: 'the nftables rules are generated from Ansible, which carries the comments',
    });
    expect(rulesOf(r.stdout)).not.toContain('rule-without-comment');
  });

  it('without a config reports all-inbound-blocked and lists public-service-blocked as skipped, with why', async () => {
    const r = await rampart('audit', outage, '--format', 'json');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(rulesOf(r.stdout)).toContain('all-inbound-blocked');
    expect(rulesOf(r.stdout)).not.toContain('public-service-blocked');
    expect(j.skipped).toContainEqual({
      rule: 'public-service-blocked',
      reason: 'needs declared services (--config rampart.yaml or --public tcp/443)',
    });
    expect(Object.keys(j)).toEqual(['findings', 'summary', 'suppressed', 'skipped']);
  });

  it('passes the fixed ruleset for the same services', async () => {
    const r = await rampart('audit', fixed, '--public', 'tcp/80,tcp/443', '--format', 'json');
    expect(r.stderr).toBe('');
    expect(rulesOf(r.stdout)).not.toContain('public-service-blocked');
    expect(rulesOf(r.stdout)).not.toContain('all-inbound-blocked');
  });
});

describe('rampart audit output formats', () => {
  it('prints SARIF 2.1.0 with the catalogue and results located in the ruleset', async () => {
    const r = await rampart('audit', outage, '--public', 'tcp/80,tcp/443', '--format', 'sarif');
    expect(r.code).toBe(1);
    const s = JSON.parse(r.stdout);
    expect(s.version).toBe('2.1.0');
    const run = s.runs[0];
    expect(run.tool.driver.name).toBe('rampart');
    const ids = run.tool.driver.rules.map((x: { id: string }) => x.id);
    expect(ids).toContain('public-service-blocked');
    const res = run.results.find((x: { ruleId: string }) => x.ruleId === 'public-service-blocked');
    expect(res).toMatchObject({
      level: 'error',
      ruleIndex: ids.indexOf('public-service-blocked'),
      locations: [{ physicalLocation: { artifactLocation: { uri: outage }, region: { startLine: 9 } } }],
    });
  });

  it('prints a Markdown PR comment with a findings table', async () => {
    const r = await rampart('audit', outage, '--public', 'tcp/80,tcp/443', '--format', 'markdown');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^\*\*Rampart audit: \d+ critical, .* findings\*\* \(fails at `--fail-on high`\)\n/);
    expect(r.stdout).toContain('| Severity | Rule | Location | Message |');
    // No relative link (the comment lives in the user's repository): the rule name, and its fix inlined.
    expect(r.stdout).toContain(`| critical | \`public-service-blocked\` | \`${outage}:9`);
    expect(r.stdout).not.toContain('](docs/');
    expect(r.stdout).toContain('How to fix: ');
    expect(r.stdout).toContain('<details>');
  });

  it('links the rules to their pages in the Rampart repository given by --docs-url or RAMPART_DOCS_URL', async () => {
    const base = 'https://github.com/example/rampart';
    const r = await rampart('audit', outage, '--public', 'tcp/80,tcp/443', '--format', 'markdown', '--docs-url', base);
    expect(r.stdout).toContain(
      `| critical | [public-service-blocked](${base}/blob/main/docs/rules/public-service-blocked.md) |`,
    );
    // Every page linked exists in this repository.
    for (const m of r.stdout.matchAll(
      /\]\(https:\/\/github\.com\/example\/rampart\/blob\/main\/(docs\/rules\/[\w-]+\.md)\)/g,
    )) {
      expect(existsSync(join(root, m[1] as string)), m[1]).toBe(true);
    }
    const env = await rampart.withEnv({ RAMPART_DOCS_URL: base }, 'audit', '--list-rules', '--format', 'markdown');
    expect(env.stdout).toContain(`[unfiltered-input](${base}/blob/main/docs/rules/unfiltered-input.md)`);
    expect((await rampart('audit', outage, '--docs-url', 'docs/')).code).toBe(2);
  });

  it('lists the rule catalogue, as text and as JSON', async () => {
    const r = await rampart('audit', '--list-rules');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^id +severity +needs +title\n/);
    expect(r.stdout).toMatch(/\npublic-service-blocked +critical +config +/);
    const j = JSON.parse((await rampart('audit', '--list-rules', '--format', 'json')).stdout);
    expect(j.rules.find((x: { id: string }) => x.id === 'all-inbound-blocked')).toMatchObject({
      docs: 'docs/rules/all-inbound-blocked.md',
    });
  });
});

describe('rampart audit exit codes', () => {
  it('--fail-on critical still fails on the outage with a service declared, passes without one', async () => {
    expect((await rampart('audit', outage, '--public', 'tcp/80,tcp/443', '--fail-on', 'critical')).code).toBe(1);
    // Without declared services or listeners, all-inbound-blocked is high: below critical.
    const r = await rampart('audit', outage, '--fail-on', 'critical');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/passing at --fail-on critical\n$/);
  });

  it('--only runs just the named rules; --fail-on info fails on anything', async () => {
    const r = await rampart('audit', outage, '--only', 'rule-without-comment', '--format', 'json');
    expect(r.code).toBe(0);
    expect(new Set(rulesOf(r.stdout))).toEqual(new Set(['rule-without-comment']));
    expect((await rampart('audit', outage, '--only', 'rule-without-comment', '--fail-on', 'info')).code).toBe(1);
  });

  it('takes the default --fail-on from the config, and the flag over the config', async () => {
    const cfg = join(dir, 'critical.yaml');
    writeFileSync(cfg, 'audit:\n  fail-on: critical\n');
    const r = await rampart('audit', outage, '--config', cfg, '--format', 'json');
    expect(JSON.parse(r.stdout).summary.failOn).toBe('critical');
    expect(r.code).toBe(0);
    expect((await rampart('audit', outage, '--config', cfg, '--fail-on', 'high')).code).toBe(1);
  });
});

describe('rampart audit usage errors', () => {
  const cases: [string[], string][] = [
    [
      ['--format', 'xml'],
      "rampart: --format 'xml': unknown output format; expected one of text, json, sarif, markdown (the rulesets' format is --input-format: nft-json, nft-text, iptables-save)\n",
    ],
    [
      ['--fail-on', 'hgh'],
      "rampart: --fail-on 'hgh': unknown severity (did you mean 'high'?); expected one of critical, high, medium, low, info\n",
    ],
    [
      ['--public', 'tcp/80,tcp/99999'],
      "rampart: --public 'tcp/99999': port 99999 is out of range; expected tcp/PORT, udp/PORT or sctp/PORT (or PROTO/FROM-TO), PORT 1-65535\n",
    ],
    [
      ['--only', 'shadowed-rules'],
      "rampart: --only 'shadowed-rules': unknown rule id (did you mean 'shadowed-rule'?); expected ids from rampart audit --list-rules\n",
    ],
    [['--today', '2025-02-30'], "rampart: --today '2025-02-30': not a date; expected YYYY-MM-DD, like 2025-03-14\n"],
    [['--netns', 'x'], "rampart: --netns 'x': needs --live\n"],
    [['--live'], 'rampart: --live: reads the running ruleset; give either --live or ruleset files, not both\n'],
  ];
  for (const [args, message] of cases) {
    it(`exits 2 on ${args.join(' ')}`, async () => {
      const r = await rampart('audit', outage, ...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(message);
      expect(r.stdout).toBe('');
    });
  }

  it('exits 2 without a ruleset, and with --host naming no declared host', async () => {
    const none = await rampart('audit');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no ruleset: give ruleset files');
    const host = await rampart('audit', outage, '--config', shop, '--host', 'web9');
    expect(host.code).toBe(2);
    expect(host.stderr).toContain('--host web9: no such host');
    expect(host.stderr).toContain('web1, web2');
  });

  it('reports a bad config at file:line:column and exits 2; JSON formats get the error as JSON', async () => {
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'services:\n  - name: shop\n    public: [tcp/80, tcp/70000]\n');
    const r = await rampart('audit', outage, '--config', cfg);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^rampart: ${cfg}:3:\\d+: .*70000`));
    const j = await rampart('audit', outage, '--config', cfg, '--format', 'json');
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stderr).error).toMatchObject({ code: 'RAMPART_ERR_PARSE', file: cfg, line: 3 });
    const missing = await rampart('audit', outage, '--config', join(dir, 'nope.yaml'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`cannot read config file '${join(dir, 'nope.yaml')}': no such file`);
  });

  it('reports a ruleset parse error at file:line:column and exits 2', async () => {
    const bad = join(dir, 'typo.nft');
    writeFileSync(
      bad,
      'table inet filter {\n  chain input {\n    type filter hook input priority 0; policy drop;\n    tcp dport 22 acept\n  }\n}\n',
    );
    const r = await rampart('audit', bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^rampart: ${bad}:4:\\d+: unexpected 'acept'`));
  });
});
