/**
 * Message templates (issue 15, §4): data, with defaults that say what fails, from where, since when, and link to
 * the alert. A template is text with `{name}` placeholders filled from an alert's facts (below) or the group's;
 * an unknown or empty placeholder renders as nothing, and `{a|b}` takes the first non-empty of several.
 *
 * Facts of an alert: `what` (service, monitor, instance or alertname), `where` (vantage, host, or "-"), `since`
 * (startsAt, UTC, minute precision), `ended`, `state` (FIRING, RESOLVED), `summary`, `description`, `diagnosis`
 * (annotations), `link`, and every label as `label.NAME`, every annotation as `annotation.NAME`. Of a group:
 * `status` (FIRING, RESOLVED), `count` (firing alerts), `resolvedCount`, `receiver`, `groupKey`, `link`.
 */
import type { Alert, GroupNotification } from '../types.js';

export interface Templates {
  /** The subject of an e-mail, the header of a Slack message, PagerDuty's summary (≤ 1024 characters). */
  readonly title: string;
  /** One line per alert in text bodies. */
  readonly alertLine: string;
  /** The line under the alert lines. */
  readonly footer: string;
}

export const DEFAULT_TEMPLATES: Templates = {
  title: '[{status}{countShown}] {commonWhat|label.alertname}{whereShown}',
  alertLine: '{state}: {what} failing from {where} since {since}{summaryShown}',
  footer: 'Details: {link}',
};

type Vars = Readonly<Record<string, string>>;

/** Fills `{name}` and `{a|b}` placeholders. */
export function render(template: string, vars: Vars): string {
  return template.replace(/\{([A-Za-z0-9_.|-]+)\}/g, (_m, names: string) => {
    for (const n of names.split('|')) {
      const v = vars[n];
      if (v !== undefined && v !== '') return v;
    }
    return '';
  });
}

/** `2026-12-03 10:00 UTC`. */
export function shownTime(iso: string | null): string {
  if (iso === null) return '';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  return `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** What fails: the most specific name an alert carries. */
export function whatOf(labels: Readonly<Record<string, string>>): string {
  return labels.service ?? labels.monitor ?? labels.instance ?? labels.job ?? labels.alertname ?? 'alert';
}

/** From where: the vantage point or host that sees it. */
export function whereOf(labels: Readonly<Record<string, string>>): string {
  return labels.vantage ?? labels.host ?? labels.instance ?? '-';
}

/** The link to one alert: the dashboard's page for it, else what raised it, else the dashboard. */
export function alertLink(n: GroupNotification, a: Alert): string {
  const base = n.externalURL.replace(/\/+$/, '');
  if (base !== '') return `${base}/alerts/${a.fingerprint}`;
  return a.generatorURL ?? '';
}

/** The link to the group: the dashboard's alert list filtered to it, else the first alert's. */
export function groupLink(n: GroupNotification): string {
  const base = n.externalURL.replace(/\/+$/, '');
  const first = n.alerts[0];
  if (n.alerts.length === 1 && first) return alertLink(n, first);
  if (base !== '') return `${base}/alerts?group=${encodeURIComponent(n.groupKey)}`;
  return first ? alertLink(n, first) : '';
}

export function alertVars(n: GroupNotification, a: Alert): Vars {
  const v: Record<string, string> = {
    what: whatOf(a.labels),
    where: whereOf(a.labels),
    since: shownTime(a.startsAt),
    ended: shownTime(a.endsAt),
    state: a.state === 'firing' ? 'FIRING' : 'RESOLVED',
    summary: a.annotations.summary ?? '',
    description: a.annotations.description ?? '',
    diagnosis: a.annotations.diagnosis ?? '',
    link: alertLink(n, a),
    fingerprint: a.fingerprint,
  };
  v.summaryShown = v.summary ? ` - ${v.summary}` : '';
  for (const [k, val] of Object.entries(a.labels)) v[`label.${k}`] = val;
  for (const [k, val] of Object.entries(a.annotations)) v[`annotation.${k}`] = val;
  return v;
}

export function groupVars(n: GroupNotification): Vars {
  const firing = n.alerts.filter((a) => a.state === 'firing').length;
  const resolvedCount = n.alerts.length - firing;
  const commonWhat =
    n.commonLabels.service ?? n.commonLabels.monitor ?? n.commonLabels.instance ?? n.commonLabels.job ?? '';
  const commonWhere = n.commonLabels.vantage ?? n.commonLabels.host ?? '';
  const v: Record<string, string> = {
    status: n.status === 'firing' ? 'FIRING' : 'RESOLVED',
    count: String(firing + n.truncatedAlerts),
    countShown: n.status === 'firing' ? `:${firing + n.truncatedAlerts}` : '',
    resolvedCount: String(resolvedCount),
    receiver: n.receiver,
    groupKey: n.groupKey,
    link: groupLink(n),
    commonWhat: commonWhat === '' && n.alerts.length === 1 && n.alerts[0] ? whatOf(n.alerts[0].labels) : commonWhat,
    commonWhere,
  };
  v.whereShown = v.commonWhere ? ` from ${v.commonWhere}` : '';
  for (const [k, val] of Object.entries(n.commonLabels)) v[`label.${k}`] = val;
  for (const [k, val] of Object.entries(n.commonAnnotations)) v[`annotation.${k}`] = val;
  return v;
}

/** The message every text channel sends: a title, one line per alert (firing first), a footer. */
export interface RenderedMessage {
  readonly title: string;
  readonly lines: readonly string[];
  readonly footer: string;
}

export function renderMessage(n: GroupNotification, t: Templates = DEFAULT_TEMPLATES): RenderedMessage {
  const lines = n.alerts.map((a) => render(t.alertLine, alertVars(n, a)));
  if (n.truncatedAlerts > 0) lines.push(`... and ${n.truncatedAlerts} more`);
  return { title: render(t.title, groupVars(n)), lines, footer: render(t.footer, groupVars(n)) };
}

/** The plain-text body: title, alert lines with their diagnosis and link, footer. */
export function textBody(n: GroupNotification, t: Templates = DEFAULT_TEMPLATES): string {
  const m = renderMessage(n, t);
  const out = [m.title, ''];
  n.alerts.forEach((a, i) => {
    out.push(m.lines[i] ?? '');
    const d = a.annotations.diagnosis;
    if (d) out.push(`  Diagnosis: ${d}`);
    if (a.annotations.runbook) out.push(`  Runbook: ${a.annotations.runbook}`);
    const link = alertLink(n, a);
    if (link) out.push(`  ${link}`);
  });
  if (n.truncatedAlerts > 0) out.push(m.lines[m.lines.length - 1] ?? '');
  out.push('', m.footer);
  return `${out.join('\n')}\n`;
}
