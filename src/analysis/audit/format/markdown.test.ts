import { describe, expect, it } from 'vitest';
import type { AuditReport } from '../types.js';
import { renderMarkdown, statusLine } from './markdown.js';

const file = 'outage.nft';
const zero = { critical: 0, high: 0, medium: 0, low: 0, info: 0 };
const report: AuditReport = {
  file,
  host: 'web1',
  findings: [
    {
      rule: 'public-service-blocked',
      severity: 'critical',
      message: 'service shop: tcp/443 | blocked',
      location: { file, line: 9 },
      text: 'type filter hook input priority filter; policy drop;',
      example: {
        family: 'ipv4',
        saddr: '203.0.113.7',
        daddr: '192.0.2.11',
        l4proto: 6,
        sport: 40000,
        dport: 443,
        ctState: 'new',
      },
      related: [{ message: 'declared here', location: { file: 'rampart.yaml', line: 12 } }],
    },
    {
      rule: 'admin-port-exposed',
      severity: 'high',
      message: 'ssh from anywhere',
      location: { file, line: 12 },
      text: 'tcp dport 22 accept comment "`x`"',
    },
  ],
  suppressed: [{ rule: 'icmp-blocked', justification: 'behind a load balancer' }],
  skipped: [{ rule: 'listening-port-blocked', reason: 'needs live mode' }],
  summary: { total: 2, bySeverity: { ...zero, critical: 1, high: 1 }, failOn: 'high', failed: true, rulesRun: 8 },
};

describe('renderMarkdown', () => {
  it('writes a PR comment: status line, findings table linking rule docs, details, suppressed', () => {
    const md = renderMarkdown(report);
    expect(md.split('\n')[0]).toBe('**Rampart audit: 1 critical, 1 high findings** (fails at `--fail-on high`)');
    expect(md).toContain('| Severity | Rule | Location | Message |');
    expect(md).toContain(
      '| critical | `public-service-blocked` | `outage.nft:9` | service shop: tcp/443 \\| blocked |',
    );
    expect(md).toContain('<summary>public-service-blocked at outage.nft:9</summary>');
    expect(md).toContain('```\ntype filter hook input priority filter; policy drop;\n```');
    expect(md).toContain('Example packet: `tcp 203.0.113.7:40000 -> 192.0.2.11:443 (https) ct new`');
    expect(md).toContain('- `rampart.yaml:12`: declared here');
    expect(md).toContain('- `icmp-blocked`: behind a load balancer');
    // No relative link (it would point into the user's repository); the fix is inlined instead.
    expect(md).not.toContain('](docs/');
    expect(md).toContain('How to fix: Restrict the accept to the admin networks');
    expect(md).toContain('- listening-port-blocked: needs live mode');
    // Backticks inside a rule's text do not break the code block.
    expect(md).toContain('```\ntcp dport 22 accept comment "`x`"\n```');
    expect(md).not.toMatch(/\n{3}/);
  });

  it('links docs under a given base and says when nothing was found', () => {
    const linked = renderMarkdown(report, { docsBase: 'https://example.org/rules/' });
    expect(linked).toContain('[admin-port-exposed](https://example.org/rules/admin-port-exposed.md)');
    expect(linked).toContain('- [icmp-blocked](https://example.org/rules/icmp-blocked.md): behind a load balancer');
    expect(linked).not.toContain('How to fix');
    const empty: AuditReport = {
      ...report,
      findings: [],
      suppressed: [],
      skipped: [],
      summary: { total: 0, bySeverity: zero, failOn: 'high', failed: false, rulesRun: 8 },
    };
    expect(statusLine(empty)).toBe('**Rampart audit: no findings**');
    expect(renderMarkdown(empty)).toBe(
      '**Rampart audit: no findings**\n\nAudited `outage.nft` (host `web1`): 8 rules run.\n',
    );
  });

  it('says "passes" when findings stay below --fail-on', () => {
    const low: AuditReport = {
      ...report,
      findings: [{ rule: 'rule-without-comment', severity: 'info', message: 'x' }],
      summary: { total: 1, bySeverity: { ...zero, info: 1 }, failOn: 'high', failed: false, rulesRun: 8 },
    };
    expect(statusLine(low)).toBe('**Rampart audit: 1 info finding** (passes at `--fail-on high`)');
  });
});
