/**
 * `alerting.receivers` and `alerting.global` of rampart.yaml (issue 15, §4; docs/alerting.md "Receivers"): where
 * notifications go, in Alertmanager's shape and snake_case spellings so a receiver pasted from alertmanager.yml
 * works. Secrets (HMAC keys, Slack webhook URLs given as files, SMTP passwords, PagerDuty routing keys) are read
 * from files or the environment when the config is loaded, held in `Secret` values that print as `***`, and never
 * written to the store.
 *
 *   global: {smtp_smarthost: mail.example.com:587, smtp_from: rampart@example.com}
 *   receivers:
 *     - name: ops
 *       deadline: 1h
 *       webhook_configs: [{url: https://hooks.example.com/rampart, secret_file: /etc/rampart/hook.key}]
 *       slack_configs: [{api_url_file: /etc/rampart/slack.url, channel: '#ops'}]
 *       email_configs: [{to: ops@example.com}]
 *       pagerduty_configs: [{routing_key_env: PD_ROUTING_KEY}]
 */
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { z } from 'zod';
import { durationField, expect, intField, nameField, object, valid } from './schema-kit.js';
import type { ConfigLocation } from './types.js';

/** A secret read at load: `String(s)`, JSON and `util.inspect` show `***`; `reveal()` gives the value to a sender. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '***';
  }
  toJSON(): string {
    return '***';
  }
  [inspect.custom](): string {
    return 'Secret(***)';
  }
}

/** PagerDuty's Events API v2 endpoint. */
export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';
export const DEFAULT_RECEIVER_DEADLINE_MS = 3_600_000;
export const WEBHOOK_FORMATS = ['rampart', 'alertmanager'] as const;
export const EMAIL_TLS = ['starttls', 'tls', 'none'] as const;
export const PAGERDUTY_SEVERITIES = ['critical', 'error', 'warning', 'info'] as const;

const URL_EXPECTED = 'an http:// or https:// URL';
/** Why `text` is not an http(s) URL, or undefined. */
export function urlProblem(text: string): string | undefined {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return 'not a URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return `the scheme ${u.protocol.slice(0, -1)} is not http or https`;
  if (u.hostname === '') return 'the host is missing';
  return undefined;
}
const urlField = valid(URL_EXPECTED, urlProblem);

const FILE_EXPECTED = 'an absolute file path, like /etc/rampart/secret';
const fileField = z
  .string(expect(FILE_EXPECTED))
  .regex(/^\/[^\0]*$/, expect(FILE_EXPECTED))
  .max(4096, expect(FILE_EXPECTED));
const ENV_EXPECTED = 'an environment variable name, like PD_ROUTING_KEY';
const envField = z.string(expect(ENV_EXPECTED)).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, expect(ENV_EXPECTED));

const HOSTPORT_EXPECTED = 'host:port, like mail.example.com:587';
/** `mail.example.com:587`, `[2001:db8::1]:25`. */
export function hostPortOf(text: string): { host: string; port: number } | string {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return /:\d+$/.test(text) ? 'not host:port' : 'the port is missing';
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return `port ${port} is outside 1-65535`;
  return { host: (m[1] ?? m[2]) as string, port };
}
const hostPortField = valid(HOSTPORT_EXPECTED, (t) => {
  const r = hostPortOf(t);
  return typeof r === 'string' ? r : undefined;
});

const EMAIL_EXPECTED = 'an e-mail address, like ops@example.com (or a list of them, comma-separated)';
const ADDRESS_RE = /^(?:[^<>@\s,]+@[^<>@\s,]+|[^<>,]*<[^<>@\s,]+@[^<>@\s,]+>)$/;
const addressList = valid(EMAIL_EXPECTED, (t) => {
  const parts = t.split(',').map((p) => p.trim());
  const bad = parts.find((p) => !ADDRESS_RE.test(p));
  return bad === undefined ? undefined : `'${bad}' is not an e-mail address`;
});
const addressField = valid('an e-mail address, like rampart@example.com', (t) =>
  ADDRESS_RE.test(t.trim()) ? undefined : `'${t}' is not an e-mail address`,
);

const sendResolved = z.boolean(expect('true or false')).optional();
const INLINE_SECRET = (field: string, instead: string) =>
  z
    .unknown()
    .superRefine((v, ctx) => {
      if (v === undefined) return;
      ctx.addIssue({
        code: 'custom',
        message: `${instead} (secrets are read from a file or the environment, never kept in rampart.yaml)`,
        params: { problem: `${field} written inline` },
      });
    })
    .optional();

const WebhookSchema = object(
  {
    url: urlField,
    send_resolved: sendResolved,
    format: z.enum(WEBHOOK_FORMATS, expect(`one of ${WEBHOOK_FORMATS.join(', ')}`)).optional(),
    secret_file: fileField.optional(),
    secret_env: envField.optional(),
    max_alerts: intField(0, 10_000, 'a number of alerts (0: all)').optional(),
    timeout: durationField(100, 60_000).optional(),
  },
  'a webhook: a map with url, and optionally send_resolved, format, secret_file or secret_env, max_alerts, timeout',
);

const SlackSchema = object(
  {
    api_url: urlField.optional(),
    api_url_file: fileField.optional(),
    channel: z.string(expect("a channel, like '#ops'")).min(1, expect("a channel, like '#ops'")).optional(),
    send_resolved: sendResolved,
    timeout: durationField(100, 60_000).optional(),
  },
  'a Slack incoming webhook: a map with api_url or api_url_file, and optionally channel, send_resolved, timeout',
);

const EmailSchema = object(
  {
    to: addressList,
    from: addressField.optional(),
    smarthost: hostPortField.optional(),
    auth_username: z.string(expect('a user name')).min(1, expect('a user name')).optional(),
    auth_password: INLINE_SECRET('auth_password', 'auth_password_file or auth_password_env'),
    auth_password_file: fileField.optional(),
    auth_password_env: envField.optional(),
    require_tls: z.boolean(expect('true or false')).optional(),
    tls: z.enum(EMAIL_TLS, expect(`one of ${EMAIL_TLS.join(', ')}`)).optional(),
    tls_config: object(
      {
        ca_file: fileField.optional(),
        insecure_skip_verify: z.boolean(expect('true or false')).optional(),
      },
      'a map with ca_file and insecure_skip_verify',
    ).optional(),
    send_resolved: sendResolved,
    timeout: durationField(100, 120_000).optional(),
  },
  'an e-mail: a map with to, and optionally from, smarthost, auth_username, auth_password_file or auth_password_env, require_tls, tls, tls_config, send_resolved, timeout',
);

const PagerDutySchema = object(
  {
    routing_key: INLINE_SECRET('routing_key', 'routing_key_file or routing_key_env'),
    routing_key_file: fileField.optional(),
    routing_key_env: envField.optional(),
    url: urlField.optional(),
    severity: z.enum(PAGERDUTY_SEVERITIES, expect(`one of ${PAGERDUTY_SEVERITIES.join(', ')}`)).optional(),
    send_resolved: sendResolved,
    timeout: durationField(100, 60_000).optional(),
  },
  'a PagerDuty Events API v2 integration: a map with routing_key_file or routing_key_env, and optionally url, severity, send_resolved, timeout',
);

export const ReceiverSchema = object(
  {
    name: nameField('a receiver name'),
    deadline: durationField(10_000, 7 * 86_400_000).optional(),
    webhook_configs: z.array(WebhookSchema, expect('a list of webhooks')).optional(),
    slack_configs: z.array(SlackSchema, expect('a list of Slack incoming webhooks')).optional(),
    email_configs: z.array(EmailSchema, expect('a list of e-mails')).optional(),
    pagerduty_configs: z.array(PagerDutySchema, expect('a list of PagerDuty integrations')).optional(),
  },
  'a receiver: a map with name, and optionally deadline, webhook_configs, slack_configs, email_configs, pagerduty_configs',
);

export const ReceiversSchema = z.array(ReceiverSchema, expect('a list of receivers'));
export type ReceiversEntry = z.infer<typeof ReceiversSchema>;

/** Alertmanager's `global.smtp_*` defaults for every e-mail config, and the PagerDuty URL. */
export const AlertingGlobalSchema = object(
  {
    smtp_from: addressField.optional(),
    smtp_smarthost: hostPortField.optional(),
    smtp_auth_username: z.string(expect('a user name')).min(1, expect('a user name')).optional(),
    smtp_auth_password: INLINE_SECRET('smtp_auth_password', 'smtp_auth_password_file or smtp_auth_password_env'),
    smtp_auth_password_file: fileField.optional(),
    smtp_auth_password_env: envField.optional(),
    smtp_require_tls: z.boolean(expect('true or false')).optional(),
    pagerduty_url: urlField.optional(),
    resolve_timeout: durationField(1000, 86_400_000).optional(),
  },
  'a map of defaults: smtp_from, smtp_smarthost, smtp_auth_username, smtp_auth_password_file or smtp_auth_password_env, smtp_require_tls, pagerduty_url, resolve_timeout',
);
export type AlertingGlobalEntry = z.infer<typeof AlertingGlobalSchema>;

// ---------------------------------------------------------------------------------------------------------------

interface ChannelBase {
  /** `webhook/0`, `email/1`: the config list and index, what outbox rows name. */
  readonly id: string;
  readonly sendResolved: boolean;
  readonly timeoutMs: number;
  readonly at: ConfigLocation;
}

export interface WebhookChannel extends ChannelBase {
  readonly kind: 'webhook';
  readonly url: string;
  readonly format: (typeof WEBHOOK_FORMATS)[number];
  readonly secret?: Secret | undefined;
  /** 0: all alerts. */
  readonly maxAlerts: number;
}

export interface SlackChannel extends ChannelBase {
  readonly kind: 'slack';
  /** The incoming-webhook URL is itself a secret (anyone holding it can post). */
  readonly url: Secret;
  readonly channel?: string | undefined;
}

export interface EmailChannel extends ChannelBase {
  readonly kind: 'email';
  readonly to: string;
  readonly from: string;
  readonly smarthost: { readonly host: string; readonly port: number };
  readonly auth?: { readonly username: string; readonly password: Secret } | undefined;
  /** tls: TLS from the first byte (port 465); starttls: upgrade, refusing a server without it; none: plain. */
  readonly tls: (typeof EMAIL_TLS)[number];
  readonly ca?: string | undefined;
  readonly insecureSkipVerify: boolean;
}

export interface PagerDutyChannel extends ChannelBase {
  readonly kind: 'pagerduty';
  readonly routingKey: Secret;
  readonly url: string;
  readonly severity?: (typeof PAGERDUTY_SEVERITIES)[number] | undefined;
}

export type ChannelConfig = WebhookChannel | SlackChannel | EmailChannel | PagerDutyChannel;

export interface ReceiverConfig {
  readonly name: string;
  /** How long a notification is retried before it is given up (and the receiver's failure alerted elsewhere). */
  readonly deadlineMs: number;
  readonly channels: readonly ChannelConfig[];
  readonly at: ConfigLocation;
}

type PathPart = string | number;

/** What receiversOf needs from its caller: positions, a way to report, and where secrets come from. */
export interface ReceiversContext {
  readonly loc: (path: readonly PathPart[]) => ConfigLocation;
  /** Reports a problem at `path` (the caller positions it and fails the load). */
  readonly problem: (path: readonly PathPart[], problem: string, expected: string) => void;
  /** Defaults: the real file system and process.env. */
  readonly readFile?: ((file: string) => string) | undefined;
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * The typed receivers of a validated `receivers:` list (with `global:` defaults): secrets read, e-mail defaults
 * filled, each problem (a duplicate name, an unreadable secret file, an unset variable, a missing smarthost)
 * reported at its place. `path` is where the list is (`['alerting', 'receivers']`).
 */
export function receiversOf(
  entries: ReceiversEntry,
  global: AlertingGlobalEntry | undefined,
  ctx: ReceiversContext,
  path: readonly PathPart[] = ['alerting', 'receivers'],
  globalPath: readonly PathPart[] = ['alerting', 'global'],
): ReceiverConfig[] {
  const readFile = ctx.readFile ?? ((f: string) => readFileSync(f, 'utf8'));
  const env = ctx.env ?? process.env;
  const g = global ?? {};

  /** A secret from `file` or `envName` (exactly one), or undefined after reporting why not. */
  const secret = (
    at: readonly PathPart[],
    names: { file: string; env: string },
    file: string | undefined,
    envName: string | undefined,
    required: boolean,
  ): Secret | undefined => {
    if (file !== undefined && envName !== undefined) {
      ctx.problem(
        [...at, names.env],
        `both ${names.file} and ${names.env} are set`,
        `one of ${names.file} or ${names.env}`,
      );
      return undefined;
    }
    if (file !== undefined) {
      let text: string;
      try {
        text = readFile(file);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        ctx.problem(
          [...at, names.file],
          `cannot read ${file}${code ? ` (${code})` : ''}`,
          'a readable file holding the secret',
        );
        return undefined;
      }
      const value = text.trim();
      if (value === '') {
        ctx.problem([...at, names.file], `${file} is empty`, 'a file holding the secret');
        return undefined;
      }
      return new Secret(value);
    }
    if (envName !== undefined) {
      const value = env[envName]?.trim();
      if (value === undefined || value === '') {
        ctx.problem(
          [...at, names.env],
          `the environment variable ${envName} is not set`,
          "a variable holding the secret, set in the server's environment",
        );
        return undefined;
      }
      return new Secret(value);
    }
    if (required)
      ctx.problem(at, `neither ${names.file} nor ${names.env} is set`, `one of ${names.file} or ${names.env}`);
    return undefined;
  };

  const globalPassword = secret(
    globalPath,
    { file: 'smtp_auth_password_file', env: 'smtp_auth_password_env' },
    g.smtp_auth_password_file,
    g.smtp_auth_password_env,
    false,
  );

  const seen = new Map<string, number>();
  const out: ReceiverConfig[] = [];
  entries.forEach((r, i) => {
    const rp = [...path, i];
    const first = seen.get(r.name);
    if (first !== undefined) {
      ctx.problem(
        [...rp, 'name'],
        `receiver '${r.name}' is declared twice (first at ${path.join('.')}[${first}])`,
        'a unique receiver name',
      );
      return;
    }
    seen.set(r.name, i);
    const channels: ChannelConfig[] = [];
    (r.webhook_configs ?? []).forEach((w, j) => {
      const p = [...rp, 'webhook_configs', j];
      const key = secret(p, { file: 'secret_file', env: 'secret_env' }, w.secret_file, w.secret_env, false);
      channels.push({
        kind: 'webhook',
        id: `webhook/${j}`,
        url: w.url,
        format: w.format ?? 'rampart',
        ...(key ? { secret: key } : {}),
        maxAlerts: w.max_alerts ?? 0,
        sendResolved: w.send_resolved ?? true,
        timeoutMs: w.timeout ?? DEFAULT_TIMEOUT_MS,
        at: ctx.loc(p),
      });
    });
    (r.slack_configs ?? []).forEach((s, j) => {
      const p = [...rp, 'slack_configs', j];
      let url: Secret | undefined;
      if (s.api_url !== undefined && s.api_url_file !== undefined)
        ctx.problem([...p, 'api_url_file'], 'both api_url and api_url_file are set', 'one of api_url or api_url_file');
      else if (s.api_url !== undefined) url = new Secret(s.api_url);
      else {
        url = secret(p, { file: 'api_url_file', env: 'api_url_env' }, s.api_url_file, undefined, false);
        if (s.api_url_file === undefined)
          ctx.problem(p, 'neither api_url nor api_url_file is set', 'one of api_url or api_url_file');
        const problem = url === undefined ? undefined : urlProblem(url.reveal());
        if (problem !== undefined) {
          ctx.problem([...p, 'api_url_file'], `the file does not hold a URL: ${problem}`, URL_EXPECTED);
          url = undefined;
        }
      }
      if (url)
        channels.push({
          kind: 'slack',
          id: `slack/${j}`,
          url,
          ...(s.channel !== undefined ? { channel: s.channel } : {}),
          sendResolved: s.send_resolved ?? false,
          timeoutMs: s.timeout ?? DEFAULT_TIMEOUT_MS,
          at: ctx.loc(p),
        });
    });
    (r.email_configs ?? []).forEach((e, j) => {
      const p = [...rp, 'email_configs', j];
      const from = e.from ?? g.smtp_from;
      const hostPort = e.smarthost ?? g.smtp_smarthost;
      if (from === undefined) ctx.problem(p, 'no from address (and no global.smtp_from)', 'from, or global.smtp_from');
      if (hostPort === undefined)
        ctx.problem(
          p,
          'no smarthost (and no global.smtp_smarthost)',
          `smarthost (${HOSTPORT_EXPECTED}), or global.smtp_smarthost`,
        );
      const own = secret(
        p,
        { file: 'auth_password_file', env: 'auth_password_env' },
        e.auth_password_file,
        e.auth_password_env,
        false,
      );
      const username = e.auth_username ?? g.smtp_auth_username;
      const password = own ?? globalPassword;
      if (
        username !== undefined &&
        password === undefined &&
        e.auth_password_file === undefined &&
        e.auth_password_env === undefined
      )
        ctx.problem(
          p,
          `auth_username '${username}' without a password`,
          'auth_password_file or auth_password_env (or the global ones)',
        );
      let ca: string | undefined;
      if (e.tls_config?.ca_file !== undefined) {
        try {
          ca = readFile(e.tls_config.ca_file);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          ctx.problem(
            [...p, 'tls_config', 'ca_file'],
            `cannot read ${e.tls_config.ca_file}${code ? ` (${code})` : ''}`,
            'a readable PEM file',
          );
        }
      }
      if (from === undefined || hostPort === undefined) return;
      const hp = hostPortOf(hostPort) as { host: string; port: number };
      const requireTls = e.require_tls ?? g.smtp_require_tls ?? true;
      const tls = e.tls ?? (hp.port === 465 ? 'tls' : requireTls ? 'starttls' : 'none');
      if (tls === 'none' && e.require_tls === true)
        ctx.problem([...p, 'tls'], 'tls: none with require_tls: true', 'tls: starttls or tls, or require_tls: false');
      channels.push({
        kind: 'email',
        id: `email/${j}`,
        to: e.to,
        from,
        smarthost: hp,
        ...(username !== undefined && password !== undefined ? { auth: { username, password } } : {}),
        tls,
        ...(ca !== undefined ? { ca } : {}),
        insecureSkipVerify: e.tls_config?.insecure_skip_verify ?? false,
        sendResolved: e.send_resolved ?? false,
        timeoutMs: e.timeout ?? 30_000,
        at: ctx.loc(p),
      });
    });
    (r.pagerduty_configs ?? []).forEach((d, j) => {
      const p = [...rp, 'pagerduty_configs', j];
      const key = secret(
        p,
        { file: 'routing_key_file', env: 'routing_key_env' },
        d.routing_key_file,
        d.routing_key_env,
        true,
      );
      if (!key) return;
      channels.push({
        kind: 'pagerduty',
        id: `pagerduty/${j}`,
        routingKey: key,
        url: d.url ?? g.pagerduty_url ?? PAGERDUTY_EVENTS_URL,
        ...(d.severity !== undefined ? { severity: d.severity } : {}),
        sendResolved: d.send_resolved ?? true,
        timeoutMs: d.timeout ?? DEFAULT_TIMEOUT_MS,
        at: ctx.loc(p),
      });
    });
    out.push({ name: r.name, deadlineMs: r.deadline ?? DEFAULT_RECEIVER_DEADLINE_MS, channels, at: ctx.loc(rp) });
  });
  return out;
}

/**
 * The e-mail channel users' own addresses are reached through: `global.smtp_*` (from, smarthost, auth), or
 * undefined when no smarthost and from are set. `to` is filled per user at send time.
 */
export function userEmailOf(
  global: AlertingGlobalEntry | undefined,
  ctx: ReceiversContext,
  globalPath: readonly PathPart[] = ['alerting', 'global'],
): EmailChannel | undefined {
  const g = global ?? {};
  if (g.smtp_smarthost === undefined || g.smtp_from === undefined) return undefined;
  // The password was checked by receiversOf; read here without reporting twice.
  const quiet: ReceiversContext = { ...ctx, problem: () => {} };
  const [r] = receiversOf(
    [{ name: 'users', email_configs: [{ to: 'user@rampart.invalid' }] }],
    g,
    quiet,
    globalPath,
    globalPath,
  );
  const ch = r?.channels[0];
  return ch?.kind === 'email' ? { ...ch, id: 'email', sendResolved: true } : undefined;
}
