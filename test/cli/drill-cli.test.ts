/** `rampart drill list|run` (issue 18) as a user meets it; the drills themselves run in test/e2e/drills.test.ts. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drillReport, renderReportMarkdown } from '../../src/lab/drills/report.js';
import { DRILL_SCENARIOS, FOUNDING_OUTAGE_RULESET } from '../../src/lab/drills/scenarios.js';
import { cliRunner, ensureBuilt, rampart as rampartProcess, root } from './cli.js';

describe('rampart drill', () => {
  /** Runs sharing one process (cliRunner); `drill list` starts the built CLI as its own process, as a user does. */
  const rampart = cliRunner();
  beforeAll(() => ensureBuilt(), 180_000);
  afterAll(() => rampart.close());

  it('list describes every scenario with what it expects', async () => {
    const r = await rampartProcess('drill', 'list');
    expect(r.code, r.stderr).toBe(0);
    for (const s of DRILL_SCENARIOS) expect(r.stdout).toContain(`${s.name}: ${s.title}`);
    expect(r.stdout).toMatch(/founding-outage: .*\n.*\n {2}expects: ServiceDown\{service:shop\}/);
    expect(r.stdout).toContain("cert-expiring: The shop's certificate near expiry\n");
    const j = JSON.parse((await rampart('drill', 'list', '--json')).stdout) as { scenarios: { name: string }[] };
    expect(j.scenarios.map((s) => s.name)).toEqual(DRILL_SCENARIOS.map((s) => s.name));
  });

  it('run refuses an unknown scenario, a name with --all, bad options, and --interactive with --all', async () => {
    const unknown = await rampart('drill', 'run', 'flood');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown scenario 'flood'; expected one of founding-outage, forced-change");
    expect((await rampart('drill', 'run', 'lb-down', '--all')).stderr).toContain('not both');
    expect((await rampart('drill', 'run', 'lb-down', '--ack-delay', 'soon')).stderr).toContain(
      "--ack-delay: 'soon' is not a duration",
    );
    expect((await rampart('drill', 'run', 'lb-down', '--compare', 'nagios')).stderr).toContain(
      "--compare: 'nagios' is not a stack; expected prometheus",
    );
    expect((await rampart('drill', 'run', '--all', '--interactive')).stderr).toContain(
      '--interactive plays one scenario',
    );
  });

  it('run --config refuses a site whose hosts are not marked lab or staging, and says where they are', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-drill-cli-'));
    try {
      const hosts = (env: string) =>
        `site: {name: shop${env}}\nhosts:\n  - {name: web1, addresses: [192.0.2.11]}\n  - {name: web2, addresses: [192.0.2.12], environment: staging}\n`;
      const unmarked = join(dir, 'rampart.yaml');
      writeFileSync(unmarked, hosts(''));
      const r = await rampart('drill', 'run', 'lb-down', '--config', unmarked);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `--config ${unmarked}: drills act only on hosts marked as lab or staging, and these are not: web1 (${unmarked}:3:5: not marked)`,
      );
      expect(r.stderr).not.toContain('web2 (');
      const marked = join(dir, 'staging.yaml');
      writeFileSync(marked, hosts(', environment: staging'));
      const m = await rampart('drill', 'run', 'lb-down', '--config', marked);
      expect(m.code).toBe(2);
      expect(m.stderr).toContain(
        'every host is marked as staging, but this version runs drills only in a lab of its own',
      );
      const bad = join(dir, 'bad.yaml');
      writeFileSync(bad, hosts(', environment: stageing'));
      expect((await rampart('drill', 'run', 'lb-down', '--config', bad)).stderr).toMatch(
        /bad\.yaml:1:33: site\.environment: 'stageing': unknown environment \(did you mean 'staging'\?\); expected one of production, staging, lab/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the drill report', () => {
  it('says PASS only when every drill that ran passed, and names skipped ones', () => {
    const t = Date.parse('2026-12-04T17:00:00Z');
    const report = drillReport(
      [
        { scenario: 'cert-expiring', skipped: 'no TLS in the lab' },
        { scenario: 'lb-down', error: 'lab broke' },
      ],
      { ackDelayMs: 2000, rate: 20 },
      t,
      t + 60_000,
    );
    expect(report.passed).toBe(false);
    const md = renderReportMarkdown(report);
    expect(md).toContain('# Drill report 2026-12-04 17:00 UTC');
    expect(md).toContain('Skipped: no TLS in the lab.');
    expect(md).toContain('The drill itself failed: lab broke');
    expect(md).toContain('Result: **FAIL**');
  });
});

it("the founding-outage scenario injects the same ruleset as the postmortem's fixture", () => {
  const fixture = readFileSync(join(root, 'test', 'fixtures', 'nftables', 'founding-outage.nft'), 'utf8');
  const code = (t: string) =>
    t
      .split('\n')
      .filter((l) => !l.startsWith('#') && l.trim() !== '')
      .join('\n');
  expect(code(FOUNDING_OUTAGE_RULESET)).toBe(code(fixture));
});
