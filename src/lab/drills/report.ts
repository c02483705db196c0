/**
 * The drill report (issue 18 §2), pure: the results of `rampart drill run` as Markdown (the score table against the
 * founding postmortem, then per drill what fired, the pages, the problems, the generated postmortem) and as JSON.
 */
import { DRILL_SCENARIOS } from './scenarios.js';
import { type DrillObservation, type DrillScore, formatMeasured, renderScoreTable } from './score.js';

export interface DrillReportEntry {
  readonly scenario: string;
  readonly skipped?: string;
  readonly error?: string;
  readonly score?: DrillScore;
  readonly observation?: DrillObservation;
  readonly incident?: { readonly id: number; readonly postmortem: string };
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
    'Times are from the fault. "cause named" is not measured until the incident API names suspects; the founding figures are from its postmortem (detected by a customer, recovered after 2 h, 80% of users).',
    '',
  );
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
