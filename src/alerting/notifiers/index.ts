/**
 * From an outbox row to a sent message: which channels a target has (`expandTarget`, at enqueue time), what a
 * channel id means in the current config (`resolveChannel`, at send time: a URL or key changed since the row was
 * written is taken as it is now), and the send itself (`sendNotification`), which applies send_resolved.
 */
import {
  type ChannelConfig,
  type EmailChannel,
  PAGERDUTY_EVENTS_URL,
  type ReceiverConfig,
  Secret,
} from '../../config/alerting-receivers.js';
import type { OutboxChannel } from '../../store/outbox-store.js';
import type { GroupNotification, NotifyTarget, UserContacts } from '../types.js';
import { sendEmail } from './email.js';
import { sendPagerDuty } from './pagerduty.js';
import { ok, type SendResult } from './result.js';
import { sendSlack } from './slack.js';
import type { Templates } from './templates.js';
import { sendWebhook } from './webhook.js';

/** What the notifiers need of the current config. */
export interface NotifyConfig {
  readonly receivers: readonly ReceiverConfig[];
  readonly users: readonly UserContacts[];
  /** The SMTP settings (global smtp_*) a user's e-mail goes through; `to` is the user's address. */
  readonly userEmail?: EmailChannel | undefined;
  readonly templates?: Templates | undefined;
}

/** `@alice`: how a user target is named in outbox rows and metrics. */
export const userQueue = (user: string) => `@${user}`;

/** The channels of a target as the config has them now (none for an unknown receiver or a user without contacts). */
export function expandTarget(cfg: NotifyConfig, target: NotifyTarget): OutboxChannel[] {
  if (target.kind === 'receiver') {
    const r = cfg.receivers.find((x) => x.name === target.receiver);
    return (r?.channels ?? []).map((c) => ({ channel: c.id, receiver: target.receiver }));
  }
  const u = cfg.users.find((x) => x.name === target.user);
  if (!u) return [];
  const receiver = userQueue(u.name);
  const out: OutboxChannel[] = [];
  if (u.email !== undefined) out.push({ channel: 'email', receiver });
  if (u.slack !== undefined && u.slackReceiver !== undefined) out.push({ channel: 'slack', receiver });
  if (u.webhook !== undefined) out.push({ channel: 'webhook', receiver });
  if (u.pagerduty !== undefined) out.push({ channel: 'pagerduty', receiver });
  return out;
}

/** A channel ready to send on: its config, and for a user the address or member to reach. */
export interface Destination {
  readonly channel: ChannelConfig;
  readonly to?: string | undefined;
  readonly mention?: readonly string[] | undefined;
}

const NOWHERE = { file: '', line: 0, column: 0 };

/** The channel `id` of `target` in the current config, or why it cannot be sent (a permanent failure). */
export function resolveChannel(cfg: NotifyConfig, target: NotifyTarget, id: string): Destination | string {
  if (target.kind === 'receiver') {
    const r = cfg.receivers.find((x) => x.name === target.receiver);
    if (!r) return `receiver '${target.receiver}' is no longer configured`;
    const c = r.channels.find((x) => x.id === id);
    if (!c) return `receiver '${target.receiver}' has no ${id} any more`;
    return { channel: c };
  }
  const u = cfg.users.find((x) => x.name === target.user);
  if (!u) return `user '${target.user}' is no longer configured`;
  const base = { sendResolved: true, timeoutMs: 10_000, at: NOWHERE };
  switch (id) {
    case 'email':
      if (u.email === undefined) return `user '${u.name}' has no e-mail any more`;
      if (!cfg.userEmail)
        return `user '${u.name}' has an e-mail but no SMTP server is set (alerting.global.smtp_smarthost)`;
      return { channel: { ...cfg.userEmail, id: 'email', sendResolved: true }, to: u.email };
    case 'slack': {
      if (u.slack === undefined || u.slackReceiver === undefined)
        return `user '${u.name}' has no Slack member any more`;
      const r = cfg.receivers.find((x) => x.name === u.slackReceiver);
      const c = r?.channels.find((x) => x.kind === 'slack');
      if (!c) return `user '${u.name}': receiver '${u.slackReceiver}' has no slack_configs`;
      return { channel: { ...c, sendResolved: true }, mention: [u.slack] };
    }
    case 'webhook':
      if (u.webhook === undefined) return `user '${u.name}' has no webhook any more`;
      return { channel: { ...base, kind: 'webhook', id, url: u.webhook, format: 'rampart', maxAlerts: 0 } };
    case 'pagerduty':
      if (u.pagerduty === undefined) return `user '${u.name}' has no PagerDuty key any more`;
      return {
        channel: { ...base, kind: 'pagerduty', id, routingKey: new Secret(u.pagerduty), url: PAGERDUTY_EVENTS_URL },
      };
    default:
      return `user '${u.name}' has no channel ${id}`;
  }
}

/** The notification as a channel that does not send resolutions sees it: null when nothing is left to send. */
export function forChannel(ch: ChannelConfig, n: GroupNotification): GroupNotification | null {
  if (ch.sendResolved) return n;
  if (n.status === 'resolved') return null;
  const alerts = n.alerts.filter((a) => a.state === 'firing');
  return alerts.length === n.alerts.length ? n : { ...n, alerts };
}

export async function sendNotification(
  d: Destination,
  n: GroupNotification,
  key: string,
  nowMs: number,
  templates?: Templates,
): Promise<SendResult> {
  const shown = forChannel(d.channel, n);
  if (shown === null) return ok('not sent: send_resolved is false');
  const ch = d.channel;
  switch (ch.kind) {
    case 'webhook':
      return sendWebhook(ch, shown, key, nowMs);
    case 'slack':
      return sendSlack(ch, shown, nowMs, { mention: d.mention, templates });
    case 'email':
      return sendEmail(ch, shown, key, { to: d.to, templates });
    case 'pagerduty':
      return sendPagerDuty(ch, shown, nowMs, templates);
  }
}
