/**
 * `--format sarif`: SARIF 2.1.0 for GitHub code scanning (upload with github/codeql-action/upload-sarif).
 *
 * Every catalogue rule is listed in tool.driver.rules (so code scanning can show rule help even for rules without
 * results) with `properties.security-severity`, which GitHub maps to its own critical/high/medium/low. Results
 * carry a partial fingerprint from the rule id and the firewall rule's text, not its line: a finding keeps its
 * identity (and its dismissal) when unrelated lines are added above it. Disabled rules produce no results; they
 * and skipped rules are reported as tool configuration notifications.
 */
import { createHash } from 'node:crypto';
import { isAbsolute, relative, sep } from 'node:path';
import { AUDIT_RULES } from '../catalogue.js';
import type { AuditReport, AuditRuleInfo, Finding, FindingLocation, Severity } from '../types.js';

/**
 * SARIF wants absolute URIs for docs links. The project has no published home yet, so links are only written when
 * the caller gives a base (`informationUri`, e.g. the repository's web address); otherwise help names the docs path.
 */

export const SECURITY_SEVERITY: Record<Severity, string> = {
  critical: '9.5',
  high: '8.0',
  medium: '5.5',
  low: '3.0',
  info: '1.0',
};

type SarifLevel = 'error' | 'warning' | 'note';
export function sarifLevel(s: Severity): SarifLevel {
  return s === 'critical' || s === 'high' ? 'error' : s === 'medium' ? 'warning' : 'note';
}

export interface SarifOptions {
  /** Rule metadata (default: the catalogue). */
  readonly rules?: readonly AuditRuleInfo[];
  readonly version?: string;
  readonly informationUri?: string;
  /** Paths under this directory are written relative to it (repository root; the CLI passes its cwd). */
  readonly root?: string;
}

export function docsUri(id: string, base: string): string {
  return `${base.replace(/\/+$/, '')}/blob/main/docs/rules/${id}.md`;
}

/** Stable identity of a finding: rule id and the firewall rule's text (or the message when there is no rule). */
export function fingerprint(f: Finding): string {
  return createHash('sha256')
    .update(`${f.rule}\0${(f.text ?? f.message).replace(/\s+/g, ' ').trim()}`)
    .digest('hex');
}

function uri(file: string, root: string | undefined): string {
  let p = file;
  if (root !== undefined && isAbsolute(p)) {
    const rel = relative(root, p);
    if (!rel.startsWith('..') && !isAbsolute(rel)) p = rel;
  }
  p = p.split(sep).join('/');
  if (isAbsolute(p)) return `file://${encodeURI(p)}`;
  return encodeURI(p.replace(/^\.\//, ''));
}

function physical(loc: FindingLocation | undefined, file: string, root: string | undefined): Record<string, unknown> {
  const path = loc?.file ?? file;
  const u = uri(path, root);
  return {
    artifactLocation: { uri: u, ...(u.includes(':') ? {} : { uriBaseId: '%SRCROOT%' }) },
    // GitHub needs a line to place the alert; a finding about the whole file points at its first line.
    region: {
      startLine: Math.max(1, loc?.line ?? 1),
      ...(loc?.column !== undefined ? { startColumn: Math.max(1, loc.column) } : {}),
    },
  };
}

function ruleDescriptor(r: AuditRuleInfo, base: string | undefined): Record<string, unknown> {
  const page = `docs/rules/${r.id}.md`;
  const help = base ? docsUri(r.id, base) : undefined;
  return {
    id: r.id,
    name: r.id
      .split('-')
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join(''),
    shortDescription: { text: r.title },
    fullDescription: { text: r.rationale },
    help: help
      ? { text: `${r.fix} See ${help}`, markdown: `${r.fix}\n\n[${page}](${help})` }
      : { text: `${r.fix} See ${page} in Rampart.`, markdown: `${r.fix}\n\nSee \`${page}\` in Rampart.` },
    ...(help ? { helpUri: help } : {}),
    defaultConfiguration: { level: sarifLevel(r.defaultSeverity) },
    properties: {
      'security-severity': SECURITY_SEVERITY[r.defaultSeverity],
      tags: ['security', 'firewall'],
      precision: 'very-high',
      needs: r.needs,
    },
  };
}

export function auditSarif(report: AuditReport, opts: SarifOptions = {}): Record<string, unknown> {
  const base = opts.informationUri;
  const infos: AuditRuleInfo[] = [...(opts.rules ?? AUDIT_RULES)];
  const index = new Map(infos.map((r, i) => [r.id, i]));
  // A finding from a rule outside the given catalogue (a custom rule) still needs a descriptor for ruleIndex.
  for (const id of [
    ...report.findings.map((f) => f.rule),
    ...report.suppressed.map((s) => s.rule),
    ...report.skipped.map((s) => s.rule),
  ]) {
    if (!index.has(id)) {
      index.set(id, infos.length);
      infos.push({ id, defaultSeverity: 'medium', title: id, rationale: id, fix: id, needs: 'none' });
    }
  }
  const results = report.findings.map((f) => {
    const related = (f.related ?? []).filter((r) => r.location);
    return {
      ruleId: f.rule,
      ruleIndex: index.get(f.rule) ?? 0,
      level: sarifLevel(f.severity),
      message: { text: f.message },
      locations: [{ physicalLocation: physical(f.location, report.file, opts.root) }],
      ...(related.length > 0
        ? {
            relatedLocations: related.map((r, i) => ({
              id: i + 1,
              physicalLocation: physical(r.location, report.file, opts.root),
              message: { text: r.message },
            })),
          }
        : {}),
      partialFingerprints: { 'rampartFinding/v1': fingerprint(f) },
      properties: {
        severity: f.severity,
        'security-severity': SECURITY_SEVERITY[f.severity],
        ...(f.example ? { example: JSON.parse(JSON.stringify(f.example)) } : {}),
        ...(f.uncertain ? { uncertain: true } : {}),
      },
    };
  });
  const notifications = [
    ...report.suppressed.map((s) => ({
      level: 'note',
      message: { text: `${s.rule} disabled: ${s.justification || '(no justification given)'}` },
      associatedRule: { id: s.rule, index: index.get(s.rule) ?? 0 },
    })),
    ...report.skipped.map((s) => ({
      level: 'note',
      message: { text: `${s.rule} skipped: ${s.reason}` },
      associatedRule: { id: s.rule, index: index.get(s.rule) ?? 0 },
    })),
  ];
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'rampart',
            ...(base ? { informationUri: base } : {}),
            version: opts.version ?? '0.1.0',
            rules: infos.map((r) => ruleDescriptor(r, base)),
          },
        },
        invocations: [
          {
            executionSuccessful: true,
            ...(notifications.length > 0 ? { toolConfigurationNotifications: notifications } : {}),
          },
        ],
        results,
        properties: {
          file: report.file,
          ...(report.host !== undefined ? { host: report.host } : {}),
          failOn: report.summary.failOn,
          failed: report.summary.failed,
        },
      },
    ],
  };
}

export function renderSarif(report: AuditReport, opts: SarifOptions = {}): string {
  return `${JSON.stringify(auditSarif(report, opts), null, 2)}\n`;
}
