import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import AjvDraft04 from 'ajv-draft-04';
import { describe, expect, it } from 'vitest';
import { loadRuleset } from '../../../firewall/load.js';
import { AUDIT_RULES } from '../catalogue.js';
import { createAuditContext } from '../context.js';
import { runAudit } from '../run.js';
import type { AuditReport, AuditRuleInfo } from '../types.js';
import { auditSarif, fingerprint, renderSarif } from './sarif.js';

const RAMPART_URI = 'https://example.org/rampart';

const root = join(import.meta.dirname, '..', '..', '..', '..');
const schema = JSON.parse(
  readFileSync(
    join(root, 'node_modules', '@microsoft', 'jest-sarif', 'lib', 'schemas', 'sarif-2.1.0-rtm.5.json'),
    'utf8',
  ),
);
// The official schema's patterns are not valid under the u flag (`]?` outside a class).
// A CommonJS module: under NodeNext the default import is module.exports, which also carries the class as .default.
const ajv = new AjvDraft04.default({ allErrors: true, strict: false, unicodeRegExp: false });
ajv.addFormat('uri', (s: string) => URL.canParse(s));
ajv.addFormat('uri-reference', (s: string) => !/\s/.test(s));
ajv.addFormat('date-time', (s: string) => !Number.isNaN(Date.parse(s)));
const validate = ajv.compile(schema);

function valid(doc: unknown): void {
  const ok = validate(doc);
  expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
  expect(ok).toBe(true);
}

const zero = { critical: 0, high: 0, medium: 0, low: 0, info: 0 };
const empty: AuditReport = {
  file: 'outage.nft',
  findings: [],
  suppressed: [],
  skipped: [],
  summary: { total: 0, bySeverity: zero, failOn: 'high', failed: false, rulesRun: 0 },
};

/** Catalogue stand-ins, so this test does not depend on which rules exist yet. */
const rules: AuditRuleInfo[] = [
  {
    id: 'public-service-blocked',
    defaultSeverity: 'critical',
    title: 'A public service is blocked',
    rationale: 'Customers cannot reach it.',
    fix: 'Accept the port.',
    needs: 'config',
  },
  {
    id: 'admin-port-exposed',
    defaultSeverity: 'high',
    title: 'Admin port open to the world',
    rationale: 'Brute force.',
    fix: 'Restrict the source.',
    needs: 'none',
  },
  {
    id: 'icmp-blocked',
    defaultSeverity: 'medium',
    title: 'ICMP dropped',
    rationale: 'PMTUD breaks.',
    fix: 'Accept essential ICMP.',
    needs: 'none',
  },
  {
    id: 'rule-without-comment',
    defaultSeverity: 'info',
    title: 'Rule without comment',
    rationale: 'Nobody knows why.',
    fix: 'Add a comment.',
    needs: 'none',
  },
];

const full: AuditReport = {
  file: '/repo/etc/nftables.conf',
  host: 'web1',
  findings: [
    {
      rule: 'public-service-blocked',
      severity: 'critical',
      message: 'service shop: tcp/443 is not accepted from the internet',
      location: { file: '/repo/etc/nftables.conf', line: 9, column: 3 },
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
      related: [
        { message: 'declared here', location: { file: '/repo/rampart.yaml', line: 12, column: 5 } },
        { message: 'no place' },
      ],
      uncertain: true,
    },
    {
      rule: 'admin-port-exposed',
      severity: 'high',
      message: 'ssh from anywhere',
      location: { file: '/repo/etc/nftables.conf', line: 12 },
      text: 'tcp dport 22 accept',
    },
    { rule: 'icmp-blocked', severity: 'low', message: 'icmp dropped' },
    {
      rule: 'custom-rule',
      severity: 'info',
      message: 'a rule outside the catalogue',
      location: { file: 'live:rampart-x', line: 1 },
    },
  ],
  suppressed: [{ rule: 'rule-without-comment', justification: 'generated ruleset' }],
  skipped: [{ rule: 'listening-port-blocked', reason: 'needs live mode' }],
  summary: {
    total: 4,
    bySeverity: { critical: 1, high: 1, medium: 0, low: 1, info: 1 },
    failOn: 'high',
    failed: true,
    rulesRun: 7,
  },
};

interface SarifRule {
  id: string;
  help: { text: string; markdown: string };
  properties: Record<string, string>;
}
interface SarifResult {
  ruleId: string;
  locations: { physicalLocation: { artifactLocation: unknown; region: unknown } }[];
  partialFingerprints: unknown;
}
interface Sarif {
  runs: {
    tool: { driver: Record<string, unknown> & { rules: SarifRule[] } };
    results: SarifResult[];
    invocations: { toolConfigurationNotifications: { message: { text: string } }[] }[];
  }[];
}

describe('auditSarif', () => {
  it('is checked by a validator that does reject bad SARIF', () => {
    expect(validate({ version: '2.1.0', runs: [{ tool: { driver: {} } }] })).toBe(false);
    const doc = auditSarif(full, { rules }) as unknown as { runs: { results: { level: string }[] }[] };
    const bad = structuredClone(doc);
    if (bad.runs[0]?.results[0]) bad.runs[0].results[0].level = 'critical';
    expect(validate(bad)).toBe(false);
  });

  it('is valid SARIF 2.1.0 for an empty report, listing every catalogue rule', () => {
    const doc = JSON.parse(renderSarif(empty)) as Sarif;
    valid(doc);
    const run = doc.runs[0]!;
    expect(run.results).toEqual([]);
    expect(run.tool.driver).toMatchObject({ name: 'rampart', version: '0.1.0' });
    // No published home yet: no invented links, help names the docs page.
    expect(run.tool.driver).not.toHaveProperty('informationUri');
    expect(run.tool.driver.rules[0]).not.toHaveProperty('helpUri');
    expect(run.tool.driver.rules.map((r) => r.id)).toEqual(AUDIT_RULES.map((r) => r.id));
    valid(auditSarif(empty, { rules }));
  });

  it('is valid SARIF with every field present, with GitHub security severities and levels', () => {
    const doc = auditSarif(full, {
      rules,
      root: '/repo',
      version: '9.9.9',
      informationUri: RAMPART_URI,
    }) as unknown as Sarif;
    valid(doc);
    const run = doc.runs[0]!;
    const psb = run.tool.driver.rules[0]!;
    expect(psb).toMatchObject({
      id: 'public-service-blocked',
      shortDescription: { text: 'A public service is blocked' },
      fullDescription: { text: 'Customers cannot reach it.' },
      helpUri: `${RAMPART_URI}/blob/main/docs/rules/public-service-blocked.md`,
      defaultConfiguration: { level: 'error' },
      properties: { 'security-severity': '9.5' },
    });
    expect(psb.help.text).toContain('Accept the port.');
    expect(psb.help.markdown).toContain('docs/rules/public-service-blocked.md');
    expect(run.tool.driver.rules.map((r) => r.properties['security-severity'])).toEqual([
      '9.5',
      '8.0',
      '5.5',
      '1.0',
      '5.5',
      '5.5',
    ]);
    expect(run.tool.driver.version).toBe('9.9.9');
    const [a, b, c, d] = run.results;
    expect(a).toMatchObject({
      ruleId: 'public-service-blocked',
      ruleIndex: 0,
      level: 'error',
      message: { text: 'service shop: tcp/443 is not accepted from the internet' },
      locations: [
        {
          physicalLocation: {
            artifactLocation: { uri: 'etc/nftables.conf', uriBaseId: '%SRCROOT%' },
            region: { startLine: 9, startColumn: 3 },
          },
        },
      ],
      relatedLocations: [
        { id: 1, message: { text: 'declared here' }, physicalLocation: { artifactLocation: { uri: 'rampart.yaml' } } },
      ],
    });
    expect(b).toMatchObject({ ruleId: 'admin-port-exposed', ruleIndex: 1, level: 'error' });
    // Severity overridden to low: the result's level follows the finding, not the rule default.
    expect(c).toMatchObject({ ruleId: 'icmp-blocked', ruleIndex: 2, level: 'note' });
    expect(c?.locations[0]?.physicalLocation.region).toEqual({ startLine: 1 });
    expect(d).toMatchObject({ ruleId: 'custom-rule', ruleIndex: 4, level: 'note' });
    expect(d?.locations[0]?.physicalLocation.artifactLocation).toEqual({ uri: 'live:rampart-x' });
    // Disabled and skipped rules are notifications, not results.
    expect(run.results.map((r) => r.ruleId)).not.toContain('rule-without-comment');
    expect(run.invocations[0]?.toolConfigurationNotifications.map((n) => n.message.text)).toEqual([
      'rule-without-comment disabled: generated ruleset',
      'listening-port-blocked skipped: needs live mode',
    ]);
  });

  it('is valid SARIF for a real audit of the founding outage with the whole catalogue', () => {
    const file = join(root, 'test', 'fixtures', 'nftables', 'founding-outage.nft');
    const ctx = createAuditContext({
      ruleset: loadRuleset([file]),
      file,
      publicPorts: [{ proto: 'tcp', from: 443, to: 443, text: 'tcp/443' }],
      today: '2025-01-01',
    });
    const doc = auditSarif(runAudit(ctx), { root }) as unknown as Sarif;
    valid(doc);
    expect(doc.runs[0]?.results.length).toBeGreaterThan(0);
    expect(doc.runs[0]?.results[0]?.locations[0]?.physicalLocation.artifactLocation).toEqual({
      uri: 'test/fixtures/nftables/founding-outage.nft',
      uriBaseId: '%SRCROOT%',
    });
  });

  it('fingerprints a finding by rule and rule text, not by line', () => {
    const f = full.findings[1]!;
    const moved = { ...f, location: { file: 'other.nft', line: 400 } };
    expect(fingerprint(moved)).toBe(fingerprint(f));
    expect(fingerprint({ ...f, text: 'tcp dport 23 accept' })).not.toBe(fingerprint(f));
    expect(fingerprint({ ...f, rule: 'any-any-accept' })).not.toBe(fingerprint(f));
    const doc = auditSarif(full, { rules }) as unknown as Sarif;
    expect(doc.runs[0]?.results[1]?.partialFingerprints).toEqual({ 'rampartFinding/v1': fingerprint(f) });
  });
});
