/** `rampart drill list|run` (issue 18) as a user meets it; the drills themselves run in test/e2e/drills.test.ts. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { drillReport, renderReportMarkdown } from '../../src/lab/drills/report.js';
import { DRILL_SCENARIOS, FOUNDING_OUTAGE_RULESET } from '../../src/lab/drills/scenarios.js';
import { ensureBuilt, rampart, root } from './cli.js';

describe('rampart drill', () => {
  beforeAll(() => ensureBuilt(), 180_000);

  it('list describes every scenario with what it expects', () => {
    const r = rampart('drill', 'list');
    expect(r.code, r.stderr).toBe(0);
    for (const s of DRILL_SCENARIOS) expect(r.stdout).toContain(`${s.name}: ${s.title}`);
    expect(r.stdout).toMatch(/founding-outage: .*\n.*\n {2}expects: ServiceDown\{service:shop\}/);
    expect(r.stdout).toContain("cert-expiring: The shop's certificate near expiry [not available in this lab]");
    const j = JSON.parse(rampart('drill', 'list', '--json').stdout) as { scenarios: { name: string }[] };
    expect(j.scenarios.map((s) => s.name)).toEqual(DRILL_SCENARIOS.map((s) => s.name));
  });

  it('run refuses an unknown scenario, a name with --all, and a rampart.yaml (no game day on unmarked hosts)', () => {
    const unknown = rampart('drill', 'run', 'flood');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown scenario 'flood'; expected one of founding-outage, forced-change");
    expect(rampart('drill', 'run', 'lb-down', '--all').stderr).toContain('not both');
    const site = rampart('drill', 'run', 'lb-down', '--config', 'rampart.yaml');
    expect(site.code).toBe(2);
    expect(site.stderr).toMatch(/--config rampart\.yaml: .*marked as lab or staging/);
    expect(rampart('drill', 'run', 'lb-down', '--ack-delay', 'soon').stderr).toContain(
      "--ack-delay: 'soon' is not a duration",
    );
  });

  it('run of a scenario the lab cannot play reports it skipped without building a lab', () => {
    const r = rampart('drill', 'run', 'cert-expiring', '--json');
    const report = JSON.parse(r.stdout) as { drills: { scenario: string; skipped?: string }[]; passed: boolean };
    expect(report.drills).toEqual([{ scenario: 'cert-expiring', skipped: expect.stringMatching(/plain HTTP/) }]);
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
