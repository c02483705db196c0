/**
 * The notifiers against real receivers on loopback: HTTP servers for the webhook (signature verified here), Slack
 * (Block Kit shape) and PagerDuty (Events API v2 request schema), and a real SMTP server (smtp-server, STARTTLS
 * with a self-signed certificate, AUTH) whose messages are parsed back with mailparser. The retry of PagerDuty's
 * 429 goes through the real outbox and worker on a SQLite store.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { sendEmail } from '../../src/alerting/notifiers/email.js';
import { expandTarget, type NotifyConfig, resolveChannel } from '../../src/alerting/notifiers/index.js';
import { sendPagerDuty } from '../../src/alerting/notifiers/pagerduty.js';
import { sendSlack } from '../../src/alerting/notifiers/slack.js';
import { sendWebhook } from '../../src/alerting/notifiers/webhook.js';
import type { DeliveryFailure } from '../../src/alerting/outbox.js';
import {
  type EmailChannel,
  type PagerDutyChannel,
  type ReceiverConfig,
  Secret,
  type SlackChannel,
  type WebhookChannel,
} from '../../src/config/alerting-receivers.js';
import { registerOutboxMetrics, startOutboxWorker } from '../../src/server/outbox-worker.js';
import { openStore } from '../../src/store/open.js';
import { alert, type HttpReceiver, httpReceiver, selfSigned, shopDown, smtpReceiver, T0 } from './receivers.js';

const at = { file: 'rampart.yaml', line: 1, column: 1 };
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
async function http(): Promise<HttpReceiver> {
  const r = await httpReceiver();
  cleanups.push(() => r.close());
  return r;
}
const NOW = Date.parse('2026-12-03T10:00:02.000Z');

function webhook(url: string, over: Partial<WebhookChannel> = {}): WebhookChannel {
  return {
    kind: 'webhook',
    id: 'webhook/0',
    url,
    format: 'rampart',
    maxAlerts: 0,
    sendResolved: true,
    timeoutMs: 2000,
    at,
    ...over,
  };
}

describe('webhook notifier', () => {
  it('posts the notification signed with HMAC-SHA256 over timestamp and body, with the idempotency key', async () => {
    const r = await http();
    const res = await sendWebhook(webhook(`${r.url}/hook`, { secret: new Secret('s3cret') }), shopDown(), 'k-1', NOW);
    expect(res.outcome).toBe('ok');
    const [req] = r.requests;
    expect(req?.path).toBe('/hook');
    expect(req?.headers['content-type']).toBe('application/json');
    expect(req?.headers['x-rampart-id']).toBe('k-1');
    const ts = String(req?.headers['x-rampart-timestamp']);
    expect(ts).toBe(String(NOW / 1000));
    // what a receiver does: recompute over the raw body
    const expected = `sha256=${createHmac('sha256', 's3cret').update(`${ts}.${req?.body}`).digest('hex')}`;
    expect(req?.headers['x-rampart-signature']).toBe(expected);
    const body = JSON.parse(req?.body ?? '{}');
    expect(body).toMatchObject({ version: '1', id: 'k-1', status: 'firing', groupKey: shopDown().groupKey });
    expect(body.title).toBe('[FIRING:1] shop from internet');
    expect(body.alerts[0].link).toBe('https://rampart.example.com/alerts/0f1e2d3c4b5a6978');
    expect(body.alerts[0].annotations.diagnosis).toContain('dropped by rule 12');
  });

  it("sends Alertmanager's version-4 payload, truncated to max_alerts, unsigned without a secret", async () => {
    const r = await http();
    const n = shopDown({
      alerts: [
        ...shopDown().alerts,
        alert({
          fingerprint: '1111111111111111',
          labels: { alertname: 'MonitorDown', service: 'shop', vantage: 'eu' },
        }),
        alert({
          fingerprint: '2222222222222222',
          state: 'resolved',
          endsAt: '2026-12-03T10:05:00.000Z',
          labels: { alertname: 'MonitorDown', service: 'shop', vantage: 'us' },
        }),
      ],
    });
    expect((await sendWebhook(webhook(r.url, { format: 'alertmanager', maxAlerts: 2 }), n, 'k-2', NOW)).outcome).toBe(
      'ok',
    );
    const req = r.requests[0];
    expect(req?.headers['x-rampart-signature']).toBeUndefined();
    const body = JSON.parse(req?.body ?? '{}');
    expect(Object.keys(body).sort()).toEqual(
      [
        'version',
        'groupKey',
        'truncatedAlerts',
        'status',
        'receiver',
        'groupLabels',
        'commonLabels',
        'commonAnnotations',
        'externalURL',
        'alerts',
      ].sort(),
    );
    expect(body).toMatchObject({ version: '4', truncatedAlerts: 1, receiver: 'ops', status: 'firing' });
    expect(body.alerts).toHaveLength(2);
    expect(body.alerts[0]).toEqual({
      status: 'firing',
      labels: n.alerts[0]?.labels,
      annotations: n.alerts[0]?.annotations,
      startsAt: T0,
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'https://rampart.example.com/monitors/shop',
      fingerprint: '0f1e2d3c4b5a6978',
    });
  });

  it('retries 5xx, 429 (with Retry-After) and timeouts; a 4xx is permanent', async () => {
    const r = await http();
    r.answers.push(
      { status: 503, body: 'busy' },
      { status: 429, headers: { 'retry-after': '7' } },
      { status: 404, body: 'no such hook' },
    );
    const ch = webhook(`${r.url}/h?token=abc`);
    expect(await sendWebhook(ch, shopDown(), 'k', NOW)).toEqual({
      outcome: 'retryable',
      error: `POST ${r.url}/h: HTTP 503 busy`,
    });
    expect(await sendWebhook(ch, shopDown(), 'k', NOW)).toMatchObject({ outcome: 'retryable', retryAfterMs: 7000 });
    expect(await sendWebhook(ch, shopDown(), 'k', NOW)).toMatchObject({ outcome: 'permanent' });
    // a receiver that never answers: bounded by the channel's timeout
    const silent = await httpReceiver(async () => true);
    cleanups.push(() => silent.close());
    const res = await sendWebhook(webhook(silent.url, { timeoutMs: 300 }), shopDown(), 'k', NOW);
    expect(res).toMatchObject({ outcome: 'retryable', error: expect.stringContaining('no answer within 300 ms') });
    // credentials in the URL go as basic auth, never in the error
    r.answers.push({ status: 401, body: 'who?' });
    const withAuth = await sendWebhook(webhook(r.url.replace('http://', 'http://am:p%40ss@')), shopDown(), 'k', NOW);
    expect(r.requests.at(-1)?.headers.authorization).toBe(`Basic ${Buffer.from('am:p@ss').toString('base64')}`);
    expect(withAuth).toEqual({ outcome: 'permanent', error: `POST ${r.url}/: HTTP 401 who?` });
    // nothing listening
    expect((await sendWebhook(webhook('http://127.0.0.1:9/'), shopDown(), 'k', NOW)).outcome).toBe('retryable');
  });
});

describe('Slack notifier', () => {
  it('posts a Block Kit message: what is down, from where, since when, the diagnosis, a link, a mention', async () => {
    const r = await http();
    const ch: SlackChannel = {
      kind: 'slack',
      id: 'slack/0',
      url: new Secret(`${r.url}/services/T0/B0/XYZ`),
      channel: '#ops',
      sendResolved: false,
      timeoutMs: 2000,
      at,
    };
    expect((await sendSlack(ch, shopDown(), NOW, { mention: ['U0123ABC'] })).outcome).toBe('ok');
    const body = JSON.parse(r.requests[0]?.body ?? '{}');
    expect(body.channel).toBe('#ops');
    expect(body.text).toContain('<@U0123ABC>');
    expect(body.text).toContain('[FIRING:1] shop from internet');
    const types = body.blocks.map((b: { type: string }) => b.type);
    expect(types).toEqual(['header', 'section', 'section', 'context', 'actions']);
    expect(body.blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: '[FIRING:1] shop from internet', emoji: true },
    });
    expect(body.blocks[1].text.text).toBe('<@U0123ABC>');
    const section = body.blocks[2];
    expect(section.text.type).toBe('mrkdwn');
    expect(section.text.text).toContain('FIRING: shop*');
    expect(section.text.text).toContain('*From:* internet');
    expect(section.text.text).toContain('*Since:* 2026-12-03 10:00 UTC');
    expect(section.accessory).toMatchObject({
      type: 'button',
      url: 'https://rampart.example.com/alerts/0f1e2d3c4b5a6978',
    });
    expect(body.blocks[3].elements[0].text).toContain('*Diagnosis:* tcp/443 dropped by rule 12');
    expect(body.blocks[4].elements[0]).toMatchObject({ type: 'button', style: 'danger' });

    // the webhook URL is a secret: a failure does not show it
    r.answers.push({ status: 404, body: 'no_service' });
    const res = await sendSlack(ch, shopDown(), NOW);
    expect(res).toEqual({ outcome: 'permanent', error: 'POST the Slack incoming webhook: HTTP 404 no_service' });
  });
});

describe('PagerDuty notifier', () => {
  /** A receiver that checks the Events API v2 request schema and answers as PagerDuty does. */
  async function pagerDuty() {
    const problems: string[] = [];
    const events: Record<string, unknown>[] = [];
    const answers: number[] = [];
    const r = await httpReceiver(async (req, _m, res) => {
      const e = JSON.parse(req.body) as Record<string, unknown>;
      const p = e.payload as Record<string, unknown> | undefined;
      const bad: string[] = [];
      if (req.path !== '/v2/enqueue') bad.push(`path ${req.path}`);
      if (typeof e.routing_key !== 'string' || e.routing_key.length !== 32) bad.push('routing_key');
      if (!['trigger', 'acknowledge', 'resolve'].includes(String(e.event_action))) bad.push('event_action');
      if (typeof e.dedup_key !== 'string' || e.dedup_key.length > 255) bad.push('dedup_key');
      if (e.event_action === 'trigger') {
        if (typeof p?.summary !== 'string' || p.summary.length > 1024) bad.push('payload.summary');
        if (typeof p?.source !== 'string' || p.source === '') bad.push('payload.source');
        if (!['critical', 'error', 'warning', 'info'].includes(String(p?.severity))) bad.push('payload.severity');
        if (p?.timestamp !== undefined && Number.isNaN(Date.parse(String(p.timestamp)))) bad.push('payload.timestamp');
      }
      const status = bad.length > 0 ? 400 : (answers.shift() ?? 202);
      if (bad.length > 0) problems.push(...bad);
      else events.push(e);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          status === 202
            ? { status: 'success', message: 'Event processed', dedup_key: e.dedup_key }
            : { status: 'invalid event', errors: bad },
        ),
      );
      return true;
    });
    cleanups.push(() => r.close());
    const ch: PagerDutyChannel = {
      kind: 'pagerduty',
      id: 'pagerduty/0',
      routingKey: new Secret('0123456789abcdef0123456789abcdef'),
      url: `${r.url}/v2/enqueue`,
      sendResolved: true,
      timeoutMs: 2000,
      at,
    };
    return { r, ch, problems, events, answers };
  }

  it('triggers, acknowledges and resolves one PagerDuty alert per group (dedup_key = the group key)', async () => {
    const { ch, problems, events } = await pagerDuty();
    const n = shopDown();
    expect((await sendPagerDuty(ch, n, NOW)).outcome).toBe('ok');
    const acked = shopDown({
      alerts: n.alerts.map((a) => ({ ...a, ack: { by: 'alice', at: '2026-12-03T10:01:00.000Z' } })),
    });
    expect((await sendPagerDuty(ch, acked, NOW)).outcome).toBe('ok');
    const resolved = shopDown({
      status: 'resolved',
      alerts: n.alerts.map((a) => ({ ...a, state: 'resolved' as const, endsAt: '2026-12-03T10:09:00.000Z' })),
    });
    expect((await sendPagerDuty(ch, resolved, NOW)).outcome).toBe('ok');
    expect(problems).toEqual([]);
    expect(events.map((e) => [e.event_action, e.dedup_key])).toEqual([
      ['trigger', n.groupKey],
      ['acknowledge', n.groupKey],
      ['resolve', n.groupKey],
    ]);
    expect(events[0]).toMatchObject({
      payload: {
        summary: '[FIRING:1] shop from internet',
        source: 'internet',
        severity: 'critical',
        timestamp: T0,
        component: 'shop',
        group: 'shop',
        class: 'MonitorDown',
        custom_details: { diagnosis: expect.stringContaining('dropped by rule 12') },
      },
      client: 'Rampart',
      client_url: 'https://rampart.example.com/alerts/0f1e2d3c4b5a6978',
    });
  });

  it('retries a 429 through the outbox until PagerDuty takes it (202); a 400 is given up at once, with its event', async () => {
    const { r, ch, events, answers } = await pagerDuty();
    const dir = mkdtempSync(join(tmpdir(), 'rampart-pd-'));
    const store = await openStore({ dataDir: dir });
    cleanups.push(async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const receivers: ReceiverConfig[] = [
      { name: 'pd', deadlineMs: 60_000, channels: [ch], at },
      {
        name: 'broken',
        deadlineMs: 60_000,
        channels: [{ ...ch, routingKey: new Secret('too-short') }],
        at,
      },
    ];
    const cfg: NotifyConfig = { receivers, users: [] };
    answers.push(429, 429);
    const created = new Date().toISOString();
    await store.outbox.enqueue(
      [
        { key: 'pd-1', target: { kind: 'receiver', receiver: 'pd' }, notification: shopDown(), createdAt: created },
        { key: 'pd-2', target: { kind: 'receiver', receiver: 'broken' }, notification: shopDown(), createdAt: created },
      ],
      (t) => expandTarget(cfg, t),
    );
    const failures: DeliveryFailure[] = [];
    const registry = new Registry();
    const metrics = registerOutboxMetrics(registry, store.outbox, Date.now);
    const worker = startOutboxWorker({
      metrics,
      outbox: store.outbox,
      config: () => cfg,
      backoff: { baseMs: 20, capMs: 50 },
      pollMs: 10,
      concurrency: 1,
      onGiveUp: (f) => {
        failures.push(f);
      },
    });
    cleanups.push(() => worker.stop());
    for (let i = 0; i < 500 && (await store.outbox.rows({ state: 'pending' })).length > 0; i++)
      await new Promise((res) => setTimeout(res, 20));
    await worker.stop();
    const rows = await store.outbox.rows();
    expect(rows.map((x) => [x.key, x.state, x.attempts])).toEqual([
      ['pd-1', 'sent', 3],
      ['pd-2', 'failed', 1],
    ]);
    // two 429s and the accepted trigger for pd-1 (the same event each time), one refused event for pd-2
    expect(r.requests.length).toBe(0);
    expect(events.map((e) => `${e.event_action} ${e.dedup_key}`)).toEqual(
      Array(3).fill(`trigger ${shopDown().groupKey}`),
    );
    expect(failures).toMatchObject([
      { key: 'pd-2', receiver: 'broken', channel: 'pagerduty/0', reason: 'permanent', attempts: 1 },
    ]);
    expect(failures[0]?.error).toContain('HTTP 400');
    const scraped = await registry.metrics();
    expect(scraped).toContain('rampart_notifications_sent_total{receiver="pd",channel="pagerduty/0"} 1');
    expect(scraped).toContain(
      'rampart_notifications_failed_total{receiver="pd",channel="pagerduty/0",result="retry"} 2',
    );
    expect(scraped).toContain(
      'rampart_notifications_failed_total{receiver="broken",channel="pagerduty/0",result="gave-up"} 1',
    );
    expect(scraped).toContain('rampart_outbox_pending{receiver="pd"} 0');
    expect(scraped).toMatch(/rampart_outbox_oldest_pending_seconds\{receiver="pd"\} 0/);
    // written with the give-up, in its transaction: the alerting service reads it like any event
    const events2 = await store.monitoring.listEvents({ kind: 'notification.failed' });
    expect(events2.map((e) => [e.subject, (e.data as DeliveryFailure).key])).toEqual([['receiver:broken', 'pd-2']]);
  });
});

describe('e-mail notifier', () => {
  const tls = selfSigned();
  function email(port: number, over: Partial<EmailChannel> = {}): EmailChannel {
    return {
      kind: 'email',
      id: 'email/0',
      to: 'ops@example.com',
      from: 'Rampart <rampart@example.com>',
      smarthost: { host: '127.0.0.1', port },
      tls: 'starttls',
      ca: tls.cert,
      insecureSkipVerify: false,
      sendResolved: false,
      timeoutMs: 5000,
      at,
      ...over,
    };
  }

  it('sends over STARTTLS with AUTH: subject, text and HTML say what fails, from where, since when, with links', async () => {
    const smtp = await smtpReceiver({ tls, auth: { user: 'rampart', pass: 'pw' } });
    cleanups.push(() => smtp.close());
    const ch = email(smtp.port, { auth: { username: 'rampart', password: new Secret('pw') } });
    expect((await sendEmail(ch, shopDown(), 'k-mail')).outcome).toBe('ok');
    expect((await sendEmail(ch, shopDown(), 'k-mail', { to: 'alice@example.com' })).outcome).toBe('ok');
    expect(smtp.envelopes).toEqual([
      { rcpt: ['ops@example.com'], user: 'rampart', secure: true },
      { rcpt: ['alice@example.com'], user: 'rampart', secure: true },
    ]);
    const [m, again] = smtp.mails;
    expect(m?.subject).toBe('[FIRING:1] shop from internet');
    expect(m?.from?.text).toBe('"Rampart" <rampart@example.com>');
    expect(m?.text).toContain('FIRING: shop failing from internet since 2026-12-03 10:00 UTC - shop is DOWN');
    expect(m?.text).toContain('Diagnosis: tcp/443 dropped by rule 12');
    expect(m?.text).toContain('https://rampart.example.com/alerts/0f1e2d3c4b5a6978');
    expect(m?.html).toContain('<a href="https://rampart.example.com/alerts/0f1e2d3c4b5a6978">open</a>');
    expect(m?.headers.get('x-rampart-id')).toBe('k-mail');
    // the same key is the same Message-ID (a retry is the same message)
    expect(m?.messageId).toMatch(/^<rampart\.[0-9a-f]{40}@example\.com>$/);
    expect(again?.messageId).toBe(m?.messageId);
  });

  it('sends over TLS from the first byte (tls), and refuses a certificate it was not told to trust', async () => {
    const smtp = await smtpReceiver({ tls, secure: true });
    cleanups.push(() => smtp.close());
    expect((await sendEmail(email(smtp.port, { tls: 'tls' }), shopDown(), 'k-tls')).outcome).toBe('ok');
    expect(smtp.envelopes).toEqual([{ rcpt: ['ops@example.com'], user: undefined, secure: true }]);
    const untrusted = await sendEmail(email(smtp.port, { tls: 'tls', ca: undefined }), shopDown(), 'k-tls');
    expect(untrusted).toMatchObject({ outcome: 'retryable', error: expect.stringContaining('certificate') });
    expect(smtp.mails).toHaveLength(1);
  });

  it('never sends in the clear when STARTTLS is required (permanent: the server lacks it); 4xx is retried, 5xx is permanent', async () => {
    const plain = await smtpReceiver();
    cleanups.push(() => plain.close());
    expect(await sendEmail(email(plain.port), shopDown(), 'k')).toMatchObject({
      outcome: 'permanent',
      error: expect.stringContaining('refused STARTTLS'),
    });
    expect(plain.mails).toHaveLength(0);
    const none = email(plain.port, { tls: 'none' });
    plain.failures.push({ code: 451, message: 'try later' }, { code: 550, message: 'no such mailbox' });
    expect(await sendEmail(none, shopDown(), 'k')).toMatchObject({ outcome: 'retryable' });
    expect(await sendEmail(none, shopDown(), 'k')).toMatchObject({
      outcome: 'permanent',
      error: expect.stringContaining('550'),
    });
    expect((await sendEmail(none, shopDown(), 'k')).outcome).toBe('ok');
    expect(plain.mails).toHaveLength(1);
  });
});

describe('one notification, several channels', () => {
  it('retries a failing webhook without sending the delivered e-mail again', async () => {
    const hook = await http();
    hook.answers.push({ status: 503 }, { status: 502 });
    const smtp = await smtpReceiver();
    cleanups.push(() => smtp.close());
    const dir = mkdtempSync(join(tmpdir(), 'rampart-multi-'));
    const store = await openStore({ dataDir: dir });
    cleanups.push(async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const mail: EmailChannel = {
      kind: 'email',
      id: 'email/0',
      to: 'ops@example.com',
      from: 'rampart@example.com',
      smarthost: { host: '127.0.0.1', port: smtp.port },
      tls: 'none',
      insecureSkipVerify: false,
      sendResolved: false,
      timeoutMs: 5000,
      at,
    };
    const cfg: NotifyConfig = {
      receivers: [{ name: 'ops', deadlineMs: 60_000, channels: [webhook(`${hook.url}/h`), mail], at }],
      users: [],
    };
    await store.outbox.enqueue(
      [
        {
          key: 'multi-1',
          target: { kind: 'receiver', receiver: 'ops' },
          notification: shopDown(),
          createdAt: new Date().toISOString(),
        },
      ],
      (t) => expandTarget(cfg, t),
    );
    const worker = startOutboxWorker({
      outbox: store.outbox,
      config: () => cfg,
      backoff: { baseMs: 20, capMs: 50 },
      pollMs: 10,
    });
    cleanups.push(() => worker.stop());
    for (let i = 0; i < 500 && (await store.outbox.rows({ state: 'pending' })).length > 0; i++)
      await new Promise((res) => setTimeout(res, 20));
    await worker.stop();
    expect((await store.outbox.rows()).map((r) => `${r.channel} ${r.state} ${r.attempts}`)).toEqual([
      'webhook/0 sent 3',
      'email/0 sent 1',
    ]);
    expect(hook.requests.map((r) => r.headers['x-rampart-id'])).toEqual(['multi-1', 'multi-1', 'multi-1']);
    expect(smtp.mails).toHaveLength(1);
  });
  it('kick() sends a new notification at once, without waiting for the next poll (an hour here)', async () => {
    const hook = await http();
    const dir = mkdtempSync(join(tmpdir(), 'rampart-kick-'));
    const store = await openStore({ dataDir: dir });
    cleanups.push(async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const cfg: NotifyConfig = {
      receivers: [{ name: 'ops', deadlineMs: 60_000, channels: [webhook(`${hook.url}/h`)], at }],
      users: [],
    };
    const worker = startOutboxWorker({ outbox: store.outbox, config: () => cfg, pollMs: 3_600_000 });
    cleanups.push(() => worker.stop());
    for (const key of ['kick-1', 'kick-2']) {
      await store.outbox.enqueue(
        [
          {
            key,
            target: { kind: 'receiver', receiver: 'ops' },
            notification: shopDown(),
            createdAt: new Date().toISOString(),
          },
        ],
        (t) => expandTarget(cfg, t),
      );
      worker.kick();
      while (!hook.requests.some((r) => r.headers['x-rampart-id'] === key))
        await new Promise((res) => setTimeout(res, 10));
    }
    expect(hook.requests.map((r) => r.headers['x-rampart-id'])).toEqual(['kick-1', 'kick-2']);
  });
});

describe('targets and channels', () => {
  it('expands a receiver to its channels and a user to their contacts, resolved in the config at send time', () => {
    const ch: WebhookChannel = webhook('http://127.0.0.1:9/');
    const slack: SlackChannel = {
      kind: 'slack',
      id: 'slack/0',
      url: new Secret('http://127.0.0.1:9/s'),
      sendResolved: false,
      timeoutMs: 1000,
      at,
    };
    const cfg: NotifyConfig = {
      receivers: [
        { name: 'ops', deadlineMs: 1000, channels: [ch], at },
        { name: 'chat', deadlineMs: 1000, channels: [slack], at },
      ],
      users: [
        {
          name: 'alice',
          email: 'alice@example.com',
          slack: 'U1',
          slackReceiver: 'chat',
          webhook: 'http://127.0.0.1:9/a',
        },
      ],
    };
    expect(expandTarget(cfg, { kind: 'receiver', receiver: 'ops' })).toEqual([
      { channel: 'webhook/0', receiver: 'ops' },
    ]);
    expect(expandTarget(cfg, { kind: 'user', user: 'alice' }).map((c) => c.channel)).toEqual([
      'email',
      'slack',
      'webhook',
    ]);
    expect(expandTarget(cfg, { kind: 'receiver', receiver: 'gone' })).toEqual([]);
    expect(resolveChannel(cfg, { kind: 'user', user: 'alice' }, 'slack')).toMatchObject({
      channel: { kind: 'slack', sendResolved: true },
      mention: ['U1'],
    });
    expect(resolveChannel(cfg, { kind: 'user', user: 'alice' }, 'email')).toBe(
      "user 'alice' has an e-mail but no SMTP server is set (alerting.global.smtp_smarthost)",
    );
    expect(resolveChannel(cfg, { kind: 'receiver', receiver: 'ops' }, 'email/0')).toBe(
      "receiver 'ops' has no email/0 any more",
    );
  });
});
