// Real receivers for a server inside a lab namespace (test/e2e/alerting-lab.test.ts): the test's own process cannot
// listen on a namespace's loopback, so this child does, started with `ip netns exec` next to the server. An SMTP
// server (smtp-server; each message parsed back with mailparser) and an HTTP server that answers 200 to everything.
// Every message accepted is one JSON line appended to RECORDS, written before the receiver answers (the SMTP 250,
// the HTTP 200), with `at` = the moment of acceptance (Date.now(), the same clock as the server's on this machine).
// The first line is {"kind":"ready"} once both listen.
// Usage: node receivers-child.mjs <records file> <smtp port> <http port> [address, default 127.0.0.1]
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

const [records, smtpPort, httpPort, address = '127.0.0.1'] = process.argv.slice(2);
if (!records || !smtpPort || !httpPort) {
  process.stderr.write('usage: receivers-child.mjs <records file> <smtp port> <http port> [address]\n');
  process.exit(2);
}
const record = (r) => appendFileSync(records, `${JSON.stringify(r)}\n`);
// mailparser leaves headers it does not know as written: nodemailer sends the idempotency key (with its quotes and
// braces) as RFC 2047 encoded words, decoded here.
const decodeWords = (v) =>
  String(v)
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?[^?]+\?([QqBb])\?([^?]*)\?=/g, (_m, enc, text) =>
      enc.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : Buffer.from(
            text
              .replace(/_/g, ' ')
              .replace(/=([0-9A-Fa-f]{2})/g, (_h, hex) => String.fromCharCode(Number.parseInt(hex, 16))),
            'latin1',
          ).toString('utf8'),
    );

const smtp = new SMTPServer({
  disabledCommands: ['STARTTLS', 'AUTH'],
  authOptional: true,
  // A lab namespace has no DNS: smtp-server's reverse lookup of the client would only wait for its 1.5 s timeout
  // before each greeting, which is the receiver's delay, not the sender's.
  disableReverseLookup: true,
  logger: false,
  onData(stream, session, cb) {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', async () => {
      try {
        const m = await simpleParser(Buffer.concat(chunks));
        record({
          kind: 'mail',
          at: Date.now(),
          rcpt: session.envelope.rcptTo.map((x) => x.address),
          from: m.from?.text ?? '',
          subject: m.subject ?? '',
          text: m.text ?? '',
          html: typeof m.html === 'string' ? m.html : '',
          messageId: m.messageId ?? '',
          rampartId: decodeWords(m.headers.get('x-rampart-id') ?? ''),
        });
        cb();
      } catch (e) {
        cb(Object.assign(new Error(`cannot parse the message: ${e}`), { responseCode: 451 }));
      }
    });
  },
});
smtp.on('error', (e) => process.stderr.write(`smtp: ${e}\n`));

const http = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    record({
      kind: 'http',
      at: Date.now(),
      method: req.method,
      path: req.url,
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
});
http.keepAliveTimeout = 1000;

await Promise.all([
  new Promise((resolve) => smtp.listen(Number(smtpPort), address, resolve)),
  new Promise((resolve) => http.listen(Number(httpPort), address, resolve)),
]);
record({ kind: 'ready', at: Date.now(), smtpPort: Number(smtpPort), httpPort: Number(httpPort) });
const stop = () => {
  http.closeAllConnections();
  http.close();
  smtp.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
