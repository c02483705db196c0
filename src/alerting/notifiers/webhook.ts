/**
 * Webhook notifier: the group notification as JSON, in Rampart's shape or Alertmanager's version-4 webhook payload
 * (`format: alertmanager`, so a receiver written for Alertmanager takes it unchanged), signed when a secret is set:
 *
 *   X-Rampart-Id: <idempotency key>           the same on every retry: the receiver drops what it has seen
 *   X-Rampart-Timestamp: <unix seconds>
 *   X-Rampart-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
 *
 * The receiver recomputes the HMAC over the raw body and refuses a timestamp older than a few minutes (replays).
 */
import { createHmac } from 'node:crypto';
import type { WebhookChannel } from '../../config/alerting-receivers.js';
import type { Alert, GroupNotification } from '../types.js';
import { postJson, type SendResult, shownUrl } from './result.js';
import { alertLink, renderMessage } from './templates.js';

/** Alertmanager's "zero time" for a firing alert's endsAt. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** At most `max` alerts (0: all), firing ones kept first; the rest counted in truncatedAlerts. */
export function truncate(n: GroupNotification, max: number): GroupNotification {
  if (max <= 0 || n.alerts.length <= max) return n;
  return { ...n, alerts: n.alerts.slice(0, max), truncatedAlerts: n.truncatedAlerts + n.alerts.length - max };
}

/** Alertmanager's webhook payload, version 4 (prometheus/alertmanager notify/webhook). */
export function alertmanagerPayload(n: GroupNotification): Record<string, unknown> {
  return {
    version: '4',
    groupKey: n.groupKey,
    truncatedAlerts: n.truncatedAlerts,
    status: n.status,
    receiver: n.receiver,
    groupLabels: n.groupLabels,
    commonLabels: n.commonLabels,
    commonAnnotations: n.commonAnnotations,
    externalURL: n.externalURL,
    alerts: n.alerts.map((a: Alert) => ({
      status: a.state,
      labels: a.labels,
      annotations: a.annotations,
      startsAt: a.startsAt,
      endsAt: a.endsAt ?? ZERO_TIME,
      generatorURL: a.generatorURL ?? '',
      fingerprint: a.fingerprint,
    })),
  };
}

/** Rampart's payload: the notification itself, with its key, a rendered title and each alert's link. */
export function rampartPayload(n: GroupNotification, key: string): Record<string, unknown> {
  return {
    version: '1',
    id: key,
    title: renderMessage(n).title,
    ...n,
    alerts: n.alerts.map((a) => ({ ...a, link: alertLink(n, a) })),
  };
}

export function signature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export interface WebhookRequest {
  readonly body: string;
  readonly headers: Record<string, string>;
}

export function webhookRequest(ch: WebhookChannel, n: GroupNotification, key: string, nowMs: number): WebhookRequest {
  const t = truncate(n, ch.maxAlerts);
  const body = JSON.stringify(ch.format === 'alertmanager' ? alertmanagerPayload(t) : rampartPayload(t, key));
  const timestamp = String(Math.floor(nowMs / 1000));
  const headers: Record<string, string> = { 'X-Rampart-Id': key, 'X-Rampart-Timestamp': timestamp };
  if (ch.secret) headers['X-Rampart-Signature'] = signature(ch.secret.reveal(), timestamp, body);
  return { body, headers };
}

export function sendWebhook(ch: WebhookChannel, n: GroupNotification, key: string, nowMs: number): Promise<SendResult> {
  const r = webhookRequest(ch, n, key, nowMs);
  return postJson(ch.url, r.body, r.headers, ch.timeoutMs, shownUrl(ch.url), nowMs);
}
