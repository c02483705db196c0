/**
 * `--format markdown`: a pull-request comment. A bold status line a reviewer reads first, a table of findings (rule
 * names link their docs page), then one collapsed details block per finding with the quoted rule, the example
 * packet and related rules, and the suppressed rules with their justification (reviewers should see those too).
 */
import { formatPacket } from '../../describe.js';
import { AUDIT_RULES } from '../catalogue.js';
import type { AuditReport, Finding } from '../types.js';
import { formatLocation, severityCounts } from './human.js';

export interface MarkdownOptions {
  /**
   * Prefix of rule docs links, an absolute address (`https://github.com/you/rampart/blob/main/docs/rules/`; the CLI's
   * `--docs-url`). Without one the rule names are not links: a relative `docs/rules/...` link would point into the
   * user's repository, where the comment is posted, and break. The rule's fix is then inlined in its details.
   */
  readonly docsBase?: string;
}

/** The rule name, linked to its page when a docs address is known. */
function ruleName(id: string, docs: string | undefined): string {
  return docs !== undefined ? `[${id}](${docs}${id}.md)` : code(id);
}

/** Table cells: no pipes or newlines. */
function cell(s: string): string {
  return s
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/\s*\n\s*/g, ' ');
}

/** Inline code that survives backticks in the content. */
function code(s: string): string {
  const one = s.replace(/\s*\n\s*/g, ' ');
  const longest = Math.max(0, ...(one.match(/`+/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(longest + 1);
  return longest > 0 ? `${fence} ${one} ${fence}` : `${fence}${one}${fence}`;
}

function block(s: string): string {
  const longest = Math.max(2, ...(s.match(/`+/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}\n${s}\n${fence}`;
}

/** HTML-escaped, for <summary>. */
function html(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function statusLine(report: AuditReport): string {
  const { total, failOn, failed } = report.summary;
  if (total === 0) return `**Rampart audit: no findings**`;
  return `**Rampart audit: ${severityCounts(report)} finding${total === 1 ? '' : 's'}** (${failed ? 'fails' : 'passes'} at \`--fail-on ${failOn}\`)`;
}

function details(f: Finding, report: AuditReport, docs: string | undefined): string[] {
  const where = formatLocation(f.location, report.file);
  const out = ['<details>', `<summary>${html(`${f.rule} at ${where}`)}</summary>`, ''];
  if (f.text !== undefined) out.push(block(f.text), '');
  out.push(`${f.message}${f.uncertain ? ' (uncertain: opaque matches involved)' : ''}`, '');
  if (f.example) out.push(`Example packet: ${code(formatPacket(f.example))}`, '');
  for (const r of f.related ?? []) {
    const loc = r.location ? `${code(formatLocation(r.location, report.file))}: ` : '';
    out.push(`- ${loc}${r.message}${r.text !== undefined ? ` ${code(r.text)}` : ''}`);
  }
  if (f.related && f.related.length > 0) out.push('');
  const fix = docs === undefined ? AUDIT_RULES.find((r) => r.id === f.rule)?.fix : undefined;
  if (fix !== undefined) out.push(`How to fix: ${fix} (the rule's page: \`docs/rules/${f.rule}.md\` in Rampart)`, '');
  out.push('</details>');
  return out;
}

export function renderMarkdown(report: AuditReport, opts: MarkdownOptions = {}): string {
  const docs = opts.docsBase;
  const target = `${code(report.file)}${report.host !== undefined ? ` (host ${code(report.host)})` : ''}`;
  const out = [statusLine(report), '', `Audited ${target}: ${report.summary.rulesRun} rules run.`];
  if (report.findings.length > 0) {
    out.push('', '| Severity | Rule | Location | Message |', '| --- | --- | --- | --- |');
    for (const f of report.findings) {
      out.push(
        `| ${f.severity} | ${cell(ruleName(f.rule, docs))} | ${cell(code(formatLocation(f.location, report.file)))} | ${cell(f.message)} |`,
      );
    }
    out.push('');
    for (const f of report.findings) out.push(...details(f, report, docs), '');
  }
  if (report.suppressed.length > 0) {
    out.push('', 'Suppressed (disabled in the config):', '');
    for (const s of report.suppressed) {
      out.push(`- ${ruleName(s.rule, docs)}: ${s.justification || '(no justification given)'}`);
    }
  }
  if (report.skipped.length > 0) {
    out.push('', 'Skipped:', '');
    for (const s of report.skipped) out.push(`- ${s.rule}: ${s.reason}`);
  }
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n')}\n`;
}
