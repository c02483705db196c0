import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  AlertingGlobalSchema,
  PAGERDUTY_EVENTS_URL,
  type ReceiversContext,
  ReceiversSchema,
  receiversOf,
  userEmailOf,
} from './alerting-receivers.js';
import { KNOWN } from './schema-kit.js';

const dir = mkdtempSync(join(tmpdir(), 'rampart-receivers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

function load(yaml: string, env: Record<string, string> = {}) {
  const doc = parse(yaml) as { receivers: unknown; global?: unknown };
  const r = ReceiversSchema.safeParse(doc.receivers);
  const g = AlertingGlobalSchema.optional().safeParse(doc.global);
  const issues = [...(r.success ? [] : r.error.issues), ...(g.success ? [] : g.error.issues)].map((i) => ({
    path: i.path.join('.'),
    message: i.message,
    problem: (i as { params?: { problem?: string } }).params?.problem,
  }));
  if (!r.success || !g.success) return { issues, problems: [], receivers: [] };
  const problems: string[] = [];
  const ctx: ReceiversContext = {
    loc: (path) => ({ file: 'rampart.yaml', line: path.length, column: 1 }),
    problem: (path, problem, expected) => problems.push(`${path.join('.')}: ${problem}; expected ${expected}`),
    env,
  };
  return { issues, problems, receivers: receiversOf(r.data, g.data, ctx), userEmail: userEmailOf(g.data, ctx) };
}

describe('alerting receivers in rampart.yaml', () => {
  it("reads Alertmanager's receiver shapes with secrets from files and the environment", () => {
    const key = file('hook.key', 'k3y\n');
    const slack = file('slack.url', 'https://hooks.slack.com/services/T/B/X\n');
    const pw = file('smtp.pw', 'hunter2');
    const { issues, problems, receivers, userEmail } = load(
      `
global: {smtp_from: rampart@example.com, smtp_smarthost: 'mail.example.com:587', smtp_auth_username: rampart, smtp_auth_password_file: ${pw}}
receivers:
  - name: ops
    deadline: 30m
    webhook_configs: [{url: 'https://hooks.example.com/a', secret_file: ${key}, format: alertmanager, max_alerts: 5}]
    slack_configs: [{api_url_file: ${slack}, channel: '#ops'}]
    email_configs: [{to: 'ops@example.com, lead@example.com'}, {to: x@example.com, smarthost: 'smtp.example.com:465'}]
    pagerduty_configs: [{routing_key_env: PD_KEY, severity: critical}]
  - name: quiet
`,
      { PD_KEY: 'R0UT1NG' },
    );
    expect(issues).toEqual([]);
    expect(problems).toEqual([]);
    const ops = receivers[0];
    expect(ops?.deadlineMs).toBe(1_800_000);
    expect(receivers[1]).toMatchObject({ name: 'quiet', deadlineMs: 3_600_000, channels: [] });
    expect(ops?.channels.map((c) => c.id)).toEqual(['webhook/0', 'slack/0', 'email/0', 'email/1', 'pagerduty/0']);
    const [w, s, e0, e1, pd] = ops?.channels ?? [];
    expect(w).toMatchObject({ kind: 'webhook', format: 'alertmanager', maxAlerts: 5, sendResolved: true });
    expect(w?.kind === 'webhook' && w.secret?.reveal()).toBe('k3y');
    expect(s?.kind === 'slack' && s.url.reveal()).toBe('https://hooks.slack.com/services/T/B/X');
    expect(s).toMatchObject({ channel: '#ops', sendResolved: false });
    expect(e0).toMatchObject({
      from: 'rampart@example.com',
      smarthost: { host: 'mail.example.com', port: 587 },
      tls: 'starttls',
    });
    expect(e0?.kind === 'email' && e0.auth?.password.reveal()).toBe('hunter2');
    expect(e1).toMatchObject({ tls: 'tls', smarthost: { port: 465 } });
    expect(pd).toMatchObject({ kind: 'pagerduty', url: PAGERDUTY_EVENTS_URL, severity: 'critical' });
    expect(pd?.kind === 'pagerduty' && pd.routingKey.reveal()).toBe('R0UT1NG');
    expect(userEmail).toMatchObject({ id: 'email', from: 'rampart@example.com', sendResolved: true });
    // secrets never show in logs or JSON
    const shown = `${JSON.stringify(receivers)} ${inspect(receivers, { depth: 10 })} ${String(pd?.kind === 'pagerduty' && pd.routingKey)}`;
    for (const secret of ['k3y', 'hunter2', 'R0UT1NG', 'services/T/B/X']) expect(shown).not.toContain(secret);
  });

  it('says where a URL, a duration, an unknown key or an inline secret is wrong', () => {
    const { issues } = load(`
receivers:
  - name: ops
    deadline: 2
    webhook_configs: [{url: 'ftp://files.example.com/x'}, {url: 'https://ok.example.com', sendresolved: true}]
    pagerduty_configs: [{routing_key: abc}]
`);
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i]));
    expect(byPath['0.deadline']).toMatchObject({ problem: 'the unit is missing' });
    expect(byPath['0.webhook_configs.0.url']).toMatchObject({
      message: 'an http:// or https:// URL',
      problem: 'the scheme ftp is not http or https',
    });
    // unknown keys carry the known ones, for "did you mean send_resolved"
    expect(byPath['0.webhook_configs.1']?.message.startsWith(KNOWN)).toBe(true);
    expect(byPath['0.webhook_configs.1']?.message).toContain('send_resolved');
    expect(byPath['0.pagerduty_configs.0.routing_key']).toMatchObject({ problem: 'routing_key written inline' });
    expect(byPath['0.pagerduty_configs.0.routing_key']?.message).toContain('routing_key_file or routing_key_env');
  });

  it('reports unreadable secrets, unset variables, duplicate names and missing SMTP settings at their place', () => {
    const { issues, problems, receivers } = load(`
receivers:
  - name: ops
    webhook_configs: [{url: 'http://127.0.0.1:9/x', secret_file: ${join(dir, 'missing.key')}}]
    pagerduty_configs: [{routing_key_env: NOT_SET}, {}]
    email_configs: [{to: ops@example.com}]
  - name: ops
`);
    expect(issues).toEqual([]);
    expect(problems).toEqual(
      [
        `ops.0.webhook_configs.0.secret_file: cannot read ${join(dir, 'missing.key')} (ENOENT); expected a readable file holding the secret`,
        'ops.0.email_configs.0: no from address (and no global.smtp_from); expected from, or global.smtp_from',
        'ops.0.email_configs.0: no smarthost (and no global.smtp_smarthost); expected smarthost (host:port, like mail.example.com:587), or global.smtp_smarthost',
        "ops.0.pagerduty_configs.0.routing_key_env: the environment variable NOT_SET is not set; expected a variable holding the secret, set in the server's environment",
        'ops.0.pagerduty_configs.1: neither routing_key_file nor routing_key_env is set; expected one of routing_key_file or routing_key_env',
        "ops.1.name: receiver 'ops' is declared twice (first at alerting.receivers[0]); expected a unique receiver name",
      ].map((p) => p.replace(/^ops\./, 'alerting.receivers.')),
    );
    expect(receivers.length).toBe(1);
  });
});
