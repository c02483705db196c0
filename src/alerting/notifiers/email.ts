/**
 * E-mail notifier over SMTP with nodemailer: TLS from the first byte (`tls`, port 465), STARTTLS required
 * (`starttls`: a server that does not offer it is refused, never sent to in the clear), or plain (`none`); AUTH when
 * a user is set. Subject and a text body from the templates plus a simple HTML body; the Message-ID is derived
 * from the idempotency key, so a retried send is the same message to mail systems that deduplicate. SMTP's own
 * classes decide retries: a 5xx reply is permanent, a 4xx reply or a network failure is retried.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import nodemailer from 'nodemailer';
import type { EmailChannel } from '../../config/alerting-receivers.js';
import type { GroupNotification } from '../types.js';
import { ok, permanent, retryable, type SendResult } from './result.js';
import {
  alertLink,
  alertVars,
  DEFAULT_TEMPLATES,
  groupLink,
  renderMessage,
  type Templates,
  textBody,
} from './templates.js';

const escHtml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** `<rampart.HEX@domain>`: the same for every attempt of one key. */
export function messageIdOf(key: string, from: string): string {
  const domain = /@([^>\s]+)>?\s*$/.exec(from)?.[1] ?? 'rampart.invalid';
  return `<rampart.${createHash('sha256').update(key).digest('hex').slice(0, 40)}@${domain}>`;
}

export function htmlBody(n: GroupNotification, t: Templates = DEFAULT_TEMPLATES): string {
  const m = renderMessage(n, t);
  const rows = n.alerts
    .map((a) => {
      const v = alertVars(n, a);
      const link = alertLink(n, a);
      const color = a.state === 'firing' ? '#b00020' : '#1b5e20';
      return `<tr><td style="color:${color};font-weight:bold">${escHtml(v.state ?? '')}</td><td>${escHtml(v.what ?? '')}</td><td>${escHtml(v.where ?? '')}</td><td>${escHtml(v.since ?? '')}</td><td>${escHtml(v.summary ?? '')}${
        a.annotations.diagnosis ? `<br><i>Diagnosis: ${escHtml(a.annotations.diagnosis)}</i>` : ''
      }${a.annotations.runbook ? `<br>Runbook: ${escHtml(a.annotations.runbook)}` : ''}</td><td>${link ? `<a href="${escHtml(link)}">open</a>` : ''}</td></tr>`;
    })
    .join('\n');
  const more = n.truncatedAlerts > 0 ? `<p>... and ${n.truncatedAlerts} more</p>` : '';
  const link = groupLink(n);
  return `<!doctype html><html><body style="font-family:sans-serif">
<h2>${escHtml(m.title)}</h2>
<table cellpadding="4" style="border-collapse:collapse">
<tr><th align="left">State</th><th align="left">What</th><th align="left">From</th><th align="left">Since</th><th align="left">Summary</th><th></th></tr>
${rows}
</table>${more}
${link ? `<p><a href="${escHtml(link)}">Open in Rampart</a></p>` : ''}
</body></html>
`;
}

export interface EmailOptions {
  /** Overrides the channel's `to` (a user target's own address). */
  readonly to?: string | undefined;
  readonly templates?: Templates | undefined;
}

export async function sendEmail(
  ch: EmailChannel,
  n: GroupNotification,
  key: string,
  o: EmailOptions = {},
): Promise<SendResult> {
  const t = o.templates ?? DEFAULT_TEMPLATES;
  const transport = nodemailer.createTransport({
    host: ch.smarthost.host,
    port: ch.smarthost.port,
    secure: ch.tls === 'tls',
    requireTLS: ch.tls === 'starttls',
    ignoreTLS: ch.tls === 'none',
    ...(ch.auth ? { auth: { user: ch.auth.username, pass: ch.auth.password.reveal() } } : {}),
    tls: {
      // SNI names a host, never an address (RFC 6066).
      ...(isIP(ch.smarthost.host) === 0 ? { servername: ch.smarthost.host } : {}),
      rejectUnauthorized: !ch.insecureSkipVerify,
      ...(ch.ca !== undefined ? { ca: ch.ca } : {}),
    },
    connectionTimeout: ch.timeoutMs,
    greetingTimeout: ch.timeoutMs,
    socketTimeout: ch.timeoutMs,
  });
  const where = `SMTP ${ch.smarthost.host}:${ch.smarthost.port}`;
  try {
    const info = await transport.sendMail({
      from: ch.from,
      to: o.to ?? ch.to,
      subject: renderMessage(n, t).title,
      text: textBody(n, t),
      html: htmlBody(n, t),
      messageId: messageIdOf(key, ch.from),
      headers: { 'X-Rampart-Id': key },
    });
    return ok(String(info.response ?? '').slice(0, 200));
  } catch (e) {
    const err = e as Error & { responseCode?: number; code?: string; response?: string; command?: string };
    const said = (err.response ?? err.message).replace(/\s+/g, ' ');
    const why = (
      err.command === 'STARTTLS'
        ? `${where} refused STARTTLS (${said}); nothing was sent in the clear (tls: starttls requires it)`
        : `${where}: ${said}`
    ).slice(0, 500);
    if (typeof err.responseCode === 'number' && err.responseCode >= 500) return permanent(why);
    return retryable(why);
  } finally {
    transport.close();
  }
}
