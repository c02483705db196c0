/**
 * PagerDuty notifier: Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/). One
 * PagerDuty alert per Rampart alert group: `dedup_key` is the group key, so a re-sent trigger is merged into the
 * open alert and the resolution closes it. The action follows the group: `resolve` once it resolved, `acknowledge`
 * when every firing alert is acknowledged in Rampart, `trigger` otherwise. 202 is accepted; 429 and 5xx are retried
 * with backoff (PagerDuty's documented handling); 400 is an invalid event and is not retried.
 */
import { createHash } from 'node:crypto';
import type { PagerDutyChannel } from '../../config/alerting-receivers.js';
import type { GroupNotification } from '../types.js';
import { postJson, type SendResult, shownUrl } from './result.js';
import { DEFAULT_TEMPLATES, groupLink, renderMessage, type Templates, whatOf, whereOf } from './templates.js';

export type PagerDutyAction = 'trigger' | 'acknowledge' | 'resolve';
const SEVERITIES = new Set(['critical', 'error', 'warning', 'info']);

export function pagerDutyAction(n: GroupNotification): PagerDutyAction {
  if (n.status === 'resolved') return 'resolve';
  const firing = n.alerts.filter((a) => a.state === 'firing');
  return firing.length > 0 && firing.every((a) => a.ack !== undefined) ? 'acknowledge' : 'trigger';
}

/** The group key, or its SHA-256 when longer than PagerDuty's 255 characters. */
export function dedupKey(groupKey: string): string {
  return groupKey.length <= 255 ? groupKey : `sha256:${createHash('sha256').update(groupKey).digest('hex')}`;
}

const clip = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);

export function pagerDutyEvent(
  ch: Pick<PagerDutyChannel, 'severity'> & { routingKey: { reveal(): string } },
  n: GroupNotification,
  t: Templates = DEFAULT_TEMPLATES,
): Record<string, unknown> {
  const action = pagerDutyAction(n);
  const base = { routing_key: ch.routingKey.reveal(), event_action: action, dedup_key: dedupKey(n.groupKey) };
  if (action !== 'trigger') return base;
  const m = renderMessage(n, t);
  const first = n.alerts.find((a) => a.state === 'firing') ?? n.alerts[0];
  const labels = first?.labels ?? n.commonLabels;
  const fromLabel = n.commonLabels.severity ?? labels.severity;
  const severity = ch.severity ?? (fromLabel !== undefined && SEVERITIES.has(fromLabel) ? fromLabel : 'error');
  const link = groupLink(n);
  return {
    ...base,
    payload: {
      summary: clip(m.title, 1024),
      source: n.commonLabels.vantage ?? n.commonLabels.host ?? (first ? whereOf(labels) : 'rampart'),
      severity,
      timestamp: first?.startsAt,
      component: whatOf(n.commonLabels.service ? n.commonLabels : labels),
      ...(n.commonLabels.service ? { group: n.commonLabels.service } : {}),
      ...(n.commonLabels.alertname ? { class: n.commonLabels.alertname } : {}),
      custom_details: {
        alerts: m.lines.join('\n'),
        ...(first?.annotations.diagnosis ? { diagnosis: first.annotations.diagnosis } : {}),
        ...(first?.annotations.runbook ? { runbook: first.annotations.runbook } : {}),
        firing: n.alerts.filter((a) => a.state === 'firing').length + n.truncatedAlerts,
        group_labels: n.groupLabels,
      },
    },
    client: 'Rampart',
    ...(link !== '' ? { client_url: link, links: [{ href: link, text: 'Open in Rampart' }] } : {}),
  };
}

export function sendPagerDuty(
  ch: PagerDutyChannel,
  n: GroupNotification,
  nowMs: number,
  t?: Templates,
): Promise<SendResult> {
  return postJson(ch.url, JSON.stringify(pagerDutyEvent(ch, n, t)), {}, ch.timeoutMs, shownUrl(ch.url), nowMs);
}
