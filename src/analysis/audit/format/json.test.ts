import { describe, expect, it } from 'vitest';
import type { AuditReport } from '../types.js';
import { auditJson, renderJson } from './json.js';

const file = 'outage.nft';
const report: AuditReport = {
  file,
  host: 'web1',
  findings: [
    {
      rule: 'public-service-blocked',
      severity: 'critical',
      message: 'tcp/443 blocked',
      location: { file, line: 9, column: 3 },
      text: 'policy drop',
      example: { family: 'ipv6', saddr: '2001:db8:ff::7', daddr: '2001:db8::11', l4proto: 6, sport: 40000, dport: 443 },
      related: [{ message: 'declared here', location: { file: 'rampart.yaml', line: 4 } }, { message: 'no location' }],
    },
    { rule: 'all-inbound-blocked', severity: 'high', message: 'nothing accepted' },
  ],
  suppressed: [{ rule: 'icmp-blocked', justification: 'behind a load balancer' }],
  skipped: [{ rule: 'listening-port-blocked', reason: 'needs live mode' }],
  summary: {
    total: 2,
    bySeverity: { critical: 1, high: 1, medium: 0, low: 0, info: 0 },
    failOn: 'critical',
    failed: true,
    rulesRun: 9,
  },
};

describe('auditJson', () => {
  it('keeps the stable shape: findings, summary, suppressed, skipped', () => {
    const j = JSON.parse(renderJson(report));
    expect(Object.keys(j)).toEqual(['findings', 'summary', 'suppressed', 'skipped']);
    expect(j.findings[0]).toEqual({
      rule: 'public-service-blocked',
      severity: 'critical',
      message: 'tcp/443 blocked',
      location: { file, line: 9, column: 3 },
      text: 'policy drop',
      example: { family: 'ipv6', saddr: '2001:db8:ff::7', daddr: '2001:db8::11', l4proto: 6, sport: 40000, dport: 443 },
      related: [{ message: 'declared here', location: { file: 'rampart.yaml', line: 4 } }, { message: 'no location' }],
    });
    // A finding about the whole ruleset still has a location: the file.
    expect(j.findings[1]).toEqual({
      rule: 'all-inbound-blocked',
      severity: 'high',
      message: 'nothing accepted',
      location: { file },
    });
    expect(j.summary).toEqual({
      file,
      host: 'web1',
      total: 2,
      bySeverity: { critical: 1, high: 1, medium: 0, low: 0, info: 0 },
      failOn: 'critical',
      failed: true,
      rulesRun: 9,
    });
    expect(j.suppressed).toEqual([{ rule: 'icmp-blocked', justification: 'behind a load balancer' }]);
    expect(j.skipped).toEqual([{ rule: 'listening-port-blocked', reason: 'needs live mode' }]);
  });

  it('turns bigints into strings so the object is JSON-native', () => {
    const odd = {
      ...report,
      findings: [{ ...report.findings[0], example: { ...report.findings[0]?.example, mark: 5n } }],
    };
    const j = auditJson(odd as unknown as AuditReport);
    expect(j.findings[0]?.example?.mark).toBe('5');
    expect(() => JSON.stringify(j)).not.toThrow();
  });
});
