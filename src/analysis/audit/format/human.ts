/**
 * Human output of an audit: findings grouped by severity (most severe first), each with its `file:line`, the quoted
 * rule, the message, an example packet and related places; then suppressed and skipped rules and one summary line.
 * Colour (ANSI) only when the caller asks for it: the CLI decides from the terminal and NO_COLOR.
 */
import { formatPacket } from '../../describe.js';
import { type AuditReport, type Finding, type FindingLocation, SEVERITIES, type Severity } from '../types.js';

export interface HumanOptions {
  readonly colour?: boolean;
}

const COLOURS: Record<Severity, string> = {
  critical: '\x1b[1;31m',
  high: '\x1b[31m',
  medium: '\x1b[33m',
  low: '\x1b[36m',
  info: '\x1b[2m',
};
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
const BOLD = '\x1b[1m';

export function formatLocation(loc: FindingLocation | undefined, fallbackFile: string): string {
  if (!loc) return fallbackFile;
  return `${loc.file}:${loc.line}${loc.column !== undefined ? `:${loc.column}` : ''}`;
}

/** `2 critical, 1 high` (severities with findings only, most severe first). */
export function severityCounts(report: AuditReport): string {
  return SEVERITIES.filter((s) => report.summary.bySeverity[s] > 0)
    .map((s) => `${report.summary.bySeverity[s]} ${s}`)
    .join(', ');
}

/** `3 findings: 1 critical, 2 high; failing at --fail-on high` (or `passing at ...`). */
export function summaryLine(report: AuditReport): string {
  const { total, failOn, failed } = report.summary;
  const verdict = `${failed ? 'failing' : 'passing'} at --fail-on ${failOn}`;
  if (total === 0) return `no findings; ${verdict}`;
  return `${total} finding${total === 1 ? '' : 's'}: ${severityCounts(report)}; ${verdict}`;
}

/** A rule's source text on one line, shortened: rules can be long (sets with thousands of elements). */
function quote(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > 200 ? `${one.slice(0, 200)}...` : one;
}

function renderFinding(f: Finding, report: AuditReport, paint: (code: string, s: string) => string): string[] {
  const lines = [`  ${paint(BOLD, f.rule)}  ${formatLocation(f.location, report.file)}`];
  if (f.text !== undefined) lines.push(`    ${paint(DIM, '>')} ${quote(f.text)}`);
  lines.push(`    ${f.message}${f.uncertain ? ' (uncertain: opaque matches involved)' : ''}`);
  if (f.example) lines.push(`    example: ${formatPacket(f.example)}`);
  const here = f.location ? formatLocation(f.location, report.file) : undefined;
  for (const r of f.related ?? []) {
    // Per-item detail of a grouped finding: the message already lists the items; JSON and SARIF keep the detail.
    if (r.detail) continue;
    const where = r.location ? formatLocation(r.location, report.file) : undefined;
    // The finding's own rule is already shown above: say only what it does.
    if (where !== undefined && where === here && (r.text === undefined || r.text === f.text)) {
      lines.push(`    related: this rule ${r.message}`);
      continue;
    }
    lines.push(`    related: ${where !== undefined ? `${where}: ` : ''}${r.message}`);
    if (r.text !== undefined) lines.push(`      ${paint(DIM, '>')} ${quote(r.text)}`);
  }
  return lines;
}

export function renderHuman(report: AuditReport, opts: HumanOptions = {}): string {
  const paint = (code: string, s: string): string => (opts.colour ? `${code}${s}${RESET}` : s);
  const out: string[] = [`rampart audit ${report.file}${report.host !== undefined ? ` (host ${report.host})` : ''}`];
  for (const sev of SEVERITIES) {
    const group = report.findings.filter((f) => f.severity === sev);
    if (group.length === 0) continue;
    out.push('', paint(COLOURS[sev], `${sev.toUpperCase()} (${group.length})`));
    for (const f of group) out.push(...renderFinding(f, report, paint));
  }
  if (report.suppressed.length > 0) {
    out.push('', 'suppressed (disabled in the config):');
    for (const s of report.suppressed) out.push(`  ${s.rule}: ${s.justification || '(no justification given)'}`);
  }
  if (report.skipped.length > 0) {
    out.push('', 'skipped:');
    for (const s of report.skipped) out.push(`  ${s.rule}: ${s.reason}`);
  }
  const summary = summaryLine(report);
  out.push('', report.summary.failed ? paint(COLOURS.critical, summary) : summary);
  return `${out.join('\n')}\n`;
}
