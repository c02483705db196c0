/**
 * Slack notifier: an incoming-webhook message in Block Kit (a header with the group's title, one section per
 * alert saying what fails, from where and since when, its diagnosis when the monitor found one, a button to the
 * alert) with a plain `text` fallback for notifications. A user target mentions the person (`<@U0123ABC>`).
 * Slack's limits are kept: 50 blocks, 150 characters in a header, 3000 in a section.
 */
import type { SlackChannel } from '../../config/alerting-receivers.js';
import type { GroupNotification } from '../types.js';
import { postJson, type SendResult } from './result.js';
import { alertLink, alertVars, DEFAULT_TEMPLATES, groupLink, renderMessage, type Templates } from './templates.js';

const MAX_ALERT_SECTIONS = 20;
const clip = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);
/** Slack's mrkdwn control characters, escaped in values. */
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export interface SlackOptions {
  /** Slack member ids to mention (a user target). */
  readonly mention?: readonly string[] | undefined;
  readonly templates?: Templates | undefined;
}

export function slackMessage(ch: Pick<SlackChannel, 'channel'>, n: GroupNotification, o: SlackOptions = {}) {
  const t = o.templates ?? DEFAULT_TEMPLATES;
  const m = renderMessage(n, t);
  const mention = (o.mention ?? []).map((id) => `<@${id}>`).join(' ');
  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(m.title, 150), emoji: true } },
  ];
  if (mention !== '') blocks.push({ type: 'section', text: { type: 'mrkdwn', text: mention } });
  for (const a of n.alerts.slice(0, MAX_ALERT_SECTIONS)) {
    const v = alertVars(n, a);
    const lines = [
      `*${a.state === 'firing' ? ':red_circle: FIRING' : ':large_green_circle: RESOLVED'}: ${esc(v.what ?? '')}*`,
      `*From:* ${esc(v.where ?? '-')}`,
      `*Since:* ${esc(v.since ?? '')}${a.endsAt ? `  *Resolved:* ${esc(v.ended ?? '')}` : ''}`,
    ];
    if (v.summary) lines.push(esc(v.summary));
    const section: Record<string, unknown> = {
      type: 'section',
      text: { type: 'mrkdwn', text: clip(lines.join('\n'), 3000) },
    };
    const link = alertLink(n, a);
    if (link !== '')
      section.accessory = { type: 'button', text: { type: 'plain_text', text: 'Open alert' }, url: link };
    blocks.push(section);
    if (a.annotations.diagnosis)
      blocks.push({
        type: 'context',
        elements: [{ type: 'mrkdwn', text: clip(`*Diagnosis:* ${esc(a.annotations.diagnosis)}`, 3000) }],
      });
    if (a.annotations.runbook)
      blocks.push({
        type: 'context',
        elements: [{ type: 'mrkdwn', text: clip(`*Runbook:* ${esc(a.annotations.runbook)}`, 3000) }],
      });
  }
  const more = n.alerts.length - Math.min(n.alerts.length, MAX_ALERT_SECTIONS) + n.truncatedAlerts;
  if (more > 0) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `… and ${more} more` }] });
  const link = groupLink(n);
  if (link !== '')
    blocks.push({
      type: 'actions',
      elements: [
        {
          type: 'button',
          text: { type: 'plain_text', text: n.alerts.length === 1 ? 'Open alert' : 'Open alerts' },
          url: link,
          ...(n.status === 'firing' ? { style: 'danger' } : {}),
        },
      ],
    });
  const text = [mention, m.title, ...m.lines.slice(0, 5)].filter((s) => s !== '').join('\n');
  return {
    ...(ch.channel !== undefined ? { channel: ch.channel } : {}),
    text: clip(text, 3000),
    blocks,
  };
}

export function sendSlack(
  ch: SlackChannel,
  n: GroupNotification,
  nowMs: number,
  o: SlackOptions = {},
): Promise<SendResult> {
  const body = JSON.stringify(slackMessage(ch, n, o));
  // The webhook URL is the secret: errors name Slack, never the path.
  return postJson(ch.url.reveal(), body, {}, ch.timeoutMs, 'the Slack incoming webhook', nowMs);
}
