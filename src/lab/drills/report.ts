/**
 * The drill report (issue 18 §2), pure: the results of `rampart drill run` as Markdown (the score table against the
 * founding postmortem, then per drill what fired, the pages, the problems, the generated postmortem) and as JSON.
 */
import { DRILL_SCENARIOS } from './scenarios.js';
import {
  type CompareScore,
  type DrillObservation,
  type DrillScore,
  formatMeasured,
  renderCompareTable,
  renderScoreTable,
} from './score.js';

export interface DrillReportEntry {
  readonly scenario: string;
  readonly skipped?: string;
  readonly error?: string;
  readonly score?: DrillScore;
  readonly observation?: DrillObservation;
  readonly incident?: { readonly id: number; readonly postmortem: string };
  /** Prometheus + Alertmanager on the same fault (`--compare prometheus`), or why they were not compared. */
  readonly compare?: readonly CompareScore[];
  readonly compareSkipped?: string;
}

export interface DrillReport {
  readonly version: 1;
  /** ISO 8601 UTC. */
  readonly startedAt: string;
  readonly endedAt: string;
  readonly settings: { readonly ackDelayMs: number; readonly rate: number };
  readonly drills: readonly DrillReportEntry[];
  readonly passed: boolean;
}

export function drillReport(
  entries: readonly DrillReportEntry[],
  settings: DrillReport['settings'],
  startedAt: number,
  endedAt: number,
): DrillReport {
  return {
    version: 1,
    startedAt: new Date(startedAt).toISOString(),
    endedAt: new Date(endedAt).toISOString(),
    settings,
    drills: entries,
    passed: entries.every((e) => e.skipped !== undefined || (e.error === undefined && e.score?.passed === true)),
  };
}

export function renderReportMarkdown(report: DrillReport): string {
  const scored = report.drills.flatMap((d) => (d.score ? [d.score] : []));
  const out: string[] = [
    `# Drill report ${report.startedAt.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Scripted responder: acknowledges ${formatMeasured(report.settings.ackDelayMs)} after the page, then runs the scenario's remediation. Steady customers: ${report.settings.rate} requests/s through HAProxy. Result: **${report.passed ? 'PASS' : 'FAIL'}**.`,
    '',
  ];
  if (scored.length > 0) out.push(renderScoreTable(scored), '');
  out.push(
    'Times are from the fault. "cause named" is when the incident\'s suspects route first named the right change or drift (n/a where the cause is not a firewall change); the founding figures are from its postmortem (detected by a customer, recovered after 2 h, 80% of users).',
    '',
  );
  const compared = report.drills.flatMap((d) => (d.score && d.compare ? [{ score: d.score, compare: d.compare }] : []));
  if (compared.length > 0) {
    out.push(
      '## Side by side: Prometheus + blackbox_exporter + Alertmanager',
      '',
      'The same fault, probed by blackbox_exporter (the public URL and both backends), alerting on `probe_success == 0`, paging the same receiver; the fault is held until each stack paged (so mitigated and recovered above include that wait). Detected: the alert firing (its startsAt as Prometheus sent it).',
      '',
      renderCompareTable(compared),
      '',
    );
  }
  const skippedCompare = report.drills.find((d) => d.compareSkipped)?.compareSkipped;
  if (skippedCompare) out.push(`The comparison with Prometheus + Alertmanager was skipped: ${skippedCompare}.`, '');
  for (const d of report.drills) {
    const s = DRILL_SCENARIOS.find((x) => x.name === d.scenario);
    out.push(`## ${d.scenario}${s ? `: ${s.title}` : ''}`, '');
    if (s) out.push(s.description, '');
    if (d.skipped) {
      out.push(`Skipped: ${d.skipped}.`, '');
      continue;
    }
    if (d.error) out.push(`The drill itself failed: ${d.error}`, '');
    if (d.score) {
      const sc = d.score;
      out.push(
        `- alerts fired: ${sc.alerts.fired.join(', ') || 'none'}`,
        `- pages: ${sc.notifications.sent} firing, ${sc.notifications.resolved} resolved, ${sc.notifications.duplicates} duplicate(s)`,
        `- failed requests: ${(sc.failedShare * 100).toFixed(2)}%`,
        `- cause named: ${sc.cause === 'not applicable' ? 'n/a' : formatMeasured(sc.cause)}${sc.causeNote ? ` (${sc.causeNote})` : ''}`,
        `- ${sc.passed ? 'passed' : `problems: ${sc.problems.join('; ')}`}`,
        '',
      );
    }
    if (d.incident) {
      out.push(`### Generated postmortem (incident ${d.incident.id})`, '', d.incident.postmortem.trim(), '');
    }
  }
  return `${out.join('\n')}\n`;
}
