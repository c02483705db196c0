import { describe, expect, it } from 'vitest';
import type { AuditReport } from '../types.js';
import { renderHuman, summaryLine } from './human.js';

const file = 'test/fixtures/nftables/founding-outage.nft';

const report: AuditReport = {
  file,
  host: 'web1',
  findings: [
    {
      rule: 'public-service-blocked',
      severity: 'critical',
      message: 'service shop: tcp/443 is not accepted from the internet (dropped by the input policy)',
      location: { file, line: 9, column: 3 },
      text: 'type filter hook input priority filter; policy drop;',
      example: {
        family: 'ipv4',
        saddr: '203.0.113.7',
        daddr: '192.0.2.11',
        l4proto: 6,
        sport: 40000,
        dport: 443,
        iif: 'eth0',
        ctState: 'new',
      },
      related: [{ message: 'the service is declared here', location: { file: 'rampart.yaml', line: 12 } }],
    },
    {
      rule: 'admin-port-exposed',
      severity: 'high',
      message: 'tcp/22 (ssh) is accepted from any source',
      location: { file, line: 12 },
      text: 'tcp dport 22 accept',
    },
    {
      rule: 'shadowed-rule',
      severity: 'high',
      message: 'never applies',
      location: { file, line: 13 },
      uncertain: true,
    },
  ],
  suppressed: [{ rule: 'rule-without-comment', justification: 'legacy ruleset, comments come with the rewrite' }],
  skipped: [{ rule: 'listening-port-blocked', reason: 'needs live mode (--live): listening sockets' }],
  summary: {
    total: 3,
    bySeverity: { critical: 1, high: 2, medium: 0, low: 0, info: 0 },
    failOn: 'high',
    failed: true,
    rulesRun: 12,
  },
};

describe('renderHuman', () => {
  it('groups findings by severity, most severe first, with location, quoted rule, example and related places', () => {
    const out = renderHuman(report);
    expect(out).toBe(
      [
        `rampart audit ${file} (host web1)`,
        '',
        'CRITICAL (1)',
        `  public-service-blocked  ${file}:9:3`,
        '    > type filter hook input priority filter; policy drop;',
        '    service shop: tcp/443 is not accepted from the internet (dropped by the input policy)',
        '    example: tcp 203.0.113.7:40000 -> 192.0.2.11:443 (https) iif eth0 ct new',
        '    related: rampart.yaml:12: the service is declared here',
        '',
        'HIGH (2)',
        `  admin-port-exposed  ${file}:12`,
        '    > tcp dport 22 accept',
        '    tcp/22 (ssh) is accepted from any source',
        `  shadowed-rule  ${file}:13`,
        '    never applies (uncertain: opaque matches involved)',
        '',
        'suppressed (disabled in the config):',
        '  rule-without-comment: legacy ruleset, comments come with the rewrite',
        '',
        'skipped:',
        '  listening-port-blocked: needs live mode (--live): listening sockets',
        '',
        '3 findings: 1 critical, 2 high; failing at --fail-on high',
        '',
      ].join('\n'),
    );
    expect(out).not.toContain('\x1b[');
  });

  it("does not repeat the finding's own rule in its related places", () => {
    const f = {
      rule: 'admin-port-exposed',
      severity: 'high' as const,
      message: 'ssh from anywhere',
      location: { file, line: 12, column: 3 },
      text: 'tcp dport 22 accept',
      related: [{ message: 'accepts it', location: { file, line: 12, column: 3 }, text: 'tcp dport 22 accept' }],
    };
    const out = renderHuman({ ...report, findings: [f] });
    expect(out).toContain('    ssh from anywhere\n');
    expect(out).toContain('    related: this rule accepts it\n');
  });

  it('colours severity headings and the failing summary only when asked', () => {
    const out = renderHuman(report, { colour: true });
    expect(out).toContain('\x1b[1;31mCRITICAL (1)\x1b[0m');
    expect(out).toContain('\x1b[31mHIGH (2)\x1b[0m');
    expect(out).toContain('\x1b[1;31m3 findings: 1 critical, 2 high; failing at --fail-on high\x1b[0m');
  });

  it('says so when there is nothing to report, and when findings stay below --fail-on', () => {
    const empty: AuditReport = {
      file,
      findings: [],
      suppressed: [],
      skipped: [],
      summary: {
        total: 0,
        bySeverity: { critical: 0, high: 0, medium: 0, low: 0, info: 0 },
        failOn: 'high',
        failed: false,
        rulesRun: 3,
      },
    };
    expect(renderHuman(empty)).toBe(`rampart audit ${file}\n\nno findings; passing at --fail-on high\n`);
    const low: AuditReport = {
      ...empty,
      findings: [{ rule: 'rule-without-comment', severity: 'info', message: 'no comment' }],
      summary: { ...empty.summary, total: 1, bySeverity: { ...empty.summary.bySeverity, info: 1 } },
    };
    expect(summaryLine(low)).toBe('1 finding: 1 info; passing at --fail-on high');
    expect(renderHuman(low)).toContain(`  rule-without-comment  ${file}\n`);
  });
});
