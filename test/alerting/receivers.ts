/**
 * Real receivers on loopback for the notifier and outbox tests: an HTTP server that records each request (and can
 * be told how to answer), an SMTP server (the smtp-server package) whose messages are parsed back with mailparser,
 * and a self-signed certificate made with openssl for STARTTLS.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import type { Alert, GroupNotification } from '../../src/alerting/types.js';

export interface Recorded {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export interface HttpReceiver {
  readonly url: string;
  readonly requests: Recorded[];
  /** How to answer the next requests (a status and body), in turn; afterwards 200. */
  answers: { status: number; body?: string; headers?: Record<string, string> }[];
  close(): Promise<void>;
}

export async function httpReceiver(
  handle?: (r: Recorded, req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>,
): Promise<HttpReceiver> {
  const requests: Recorded[] = [];
  const rec: HttpReceiver = {
    url: '',
    requests,
    answers: [],
    close: async () => {},
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const r = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      if (handle && (await handle(r, req, res))) return;
      requests.push(r);
      const a = rec.answers.shift() ?? { status: 200, body: 'ok' };
      res.writeHead(a.status, { 'content-type': 'text/plain', ...(a.headers ?? {}) });
      res.end(a.body ?? '');
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  Object.assign(rec, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return rec;
}

export interface SmtpReceiver {
  readonly port: number;
  readonly mails: ParsedMail[];
  /** The envelope recipients and AUTH user of each message. */
  readonly envelopes: { rcpt: string[]; user: string | undefined; secure: boolean }[];
  /** Reply to the next DATA with this SMTP error (e.g. 451 or 550), in turn. */
  failures: { code: number; message: string }[];
  close(): Promise<void>;
}

export interface SmtpOptions {
  readonly tls?: { key: string; cert: string } | undefined;
  readonly auth?: { user: string; pass: string } | undefined;
}

export async function smtpReceiver(o: SmtpOptions = {}): Promise<SmtpReceiver> {
  const mails: ParsedMail[] = [];
  const envelopes: SmtpReceiver['envelopes'] = [];
  const rec = { port: 0, mails, envelopes, failures: [] as { code: number; message: string }[], close: async () => {} };
  const server = new SMTPServer({
    ...(o.tls ? { key: o.tls.key, cert: o.tls.cert } : {}),
    disabledCommands: [...(o.tls ? [] : ['STARTTLS']), ...(o.auth ? [] : ['AUTH'])],
    authOptional: o.auth === undefined,
    allowInsecureAuth: false,
    logger: false,
    onAuth(auth, _session, cb) {
      if (o.auth && auth.username === o.auth.user && auth.password === o.auth.pass) cb(null, { user: auth.username });
      else cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', async () => {
        const fail = rec.failures.shift();
        if (fail) {
          cb(Object.assign(new Error(fail.message), { responseCode: fail.code }));
          return;
        }
        mails.push(await simpleParser(Buffer.concat(chunks)));
        envelopes.push({
          rcpt: session.envelope.rcptTo.map((r) => r.address),
          user: session.user as string | undefined,
          secure: session.secure,
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  rec.port = (server.server.address() as AddressInfo).port;
  rec.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return rec;
}

/** A self-signed certificate for 127.0.0.1 and localhost (openssl), as PEM texts. */
export function selfSigned(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-cert-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    const r = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const T0 = '2026-12-03T10:00:00.000Z';

export function alert(over: Partial<Alert> & { labels: Alert['labels'] }): Alert {
  return {
    fingerprint: over.fingerprint ?? 'a1b2c3d4e5f60718',
    annotations: {},
    state: 'firing',
    startsAt: T0,
    endsAt: null,
    source: 'monitor.state',
    ...over,
  };
}

/** The founding outage: the shop DOWN from the internet vantage point, with the monitor's diagnosis. */
export function shopDown(over: Partial<GroupNotification> = {}): GroupNotification {
  return {
    receiver: 'ops',
    groupKey: '{}/{severity="critical"}:{service="shop"}',
    status: 'firing',
    groupLabels: { service: 'shop' },
    commonLabels: { alertname: 'MonitorDown', service: 'shop', severity: 'critical', vantage: 'internet' },
    commonAnnotations: { summary: 'shop is DOWN' },
    alerts: [
      alert({
        fingerprint: '0f1e2d3c4b5a6978',
        labels: { alertname: 'MonitorDown', service: 'shop', severity: 'critical', vantage: 'internet' },
        annotations: {
          summary: 'shop is DOWN',
          diagnosis: 'tcp/443 dropped by rule 12 of inet filter input on lb (change #42)',
        },
        generatorURL: 'https://rampart.example.com/monitors/shop',
      }),
    ],
    truncatedAlerts: 0,
    externalURL: 'https://rampart.example.com',
    ...over,
  };
}
