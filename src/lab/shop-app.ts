/**
 * The lab's shop: a deliberately small HTTP server (node:http, no framework) that web1 and web2 run inside their
 * network namespaces, behind HAProxy.
 *
 *   GET /            200, names the host that answered (body and `X-Served-By`)
 *   GET /product/N   200, same
 *   GET /healthz     200 `ok` (HAProxy's health check)
 *   anything else    404 (405 for methods other than GET/HEAD)
 *
 * Every request is appended to an access log in the Apache/NGINX "combined" format, because later monitoring
 * work reads that log exactly as it would read a real web server's.
 *
 *   node dist/lab/shop-app.js --port 80 --name web1 --log /tmp/.../web1-access.log [--host 0.0.0.0]
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export interface ShopAppOptions {
  readonly port: number;
  /** Host name the shop reports (web1, web2). */
  readonly name: string;
  /** Access log file (appended); none when omitted. */
  readonly log?: string;
  /** Listen address; default all IPv4 addresses. */
  readonly host?: string;
}

export interface ShopApp {
  readonly server: Server;
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  close(): Promise<void>;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;
const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** `10/Oct/2000:13:55:36 +0000`, the combined log format's time (local time with its offset, like Apache). */
export function clfTime(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return (
    `${pad(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`
  );
}

/** Quotes a request-supplied value the way NGINX does: `"` and `\` and control bytes are escaped. */
function quoted(value: string | undefined): string {
  if (value === undefined || value === '') return '"-"';
  return `"${value.replace(/[\\"\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}"`;
}

/** One combined-format line: `host ident user [time] "request" status bytes "referer" "user-agent"`. */
export function combinedLogLine(
  req: IncomingMessage,
  status: number,
  bytes: number,
  at: Date,
  remoteAddress = req.socket.remoteAddress,
): string {
  const request = `${req.method ?? '-'} ${req.url ?? '-'} HTTP/${req.httpVersion}`;
  const remote = (remoteAddress ?? '-').replace(/^::ffff:/, '');
  const referer = req.headers.referer;
  const agent = req.headers['user-agent'];
  return `${remote} - - [${clfTime(at)}] ${quoted(request)} ${status} ${bytes === 0 ? '-' : bytes} ${quoted(referer)} ${quoted(agent)}\n`;
}

const PRODUCT_RE = /^\/product\/(\d{1,9})\/?$/;

function route(name: string, method: string, path: string): { status: number; body: string } {
  if (method !== 'GET' && method !== 'HEAD') return { status: 405, body: 'method not allowed\n' };
  if (path === '/healthz') return { status: 200, body: 'ok\n' };
  if (path === '/') return { status: 200, body: `shop home served by ${name}\n` };
  const m = PRODUCT_RE.exec(path);
  if (m) return { status: 200, body: `product ${Number(m[1])} served by ${name}\n` };
  return { status: 404, body: `not found (${name})\n` };
}

export function startShopApp(opts: ShopAppOptions): Promise<ShopApp> {
  if (!/^[\w.-]{1,64}$/.test(opts.name)) throw new Error(`invalid shop name '${opts.name}'`);
  const log: WriteStream | undefined = opts.log ? createWriteStream(opts.log, { flags: 'a' }) : undefined;
  const server = createServer((req, res) => {
    // Read now: once a client (HAProxy's health check) has closed the socket, remoteAddress is gone.
    const remote = req.socket.remoteAddress;
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const { status, body } = route(opts.name, req.method ?? 'GET', path);
    const payload = Buffer.from(body);
    res.writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': payload.length,
      'x-served-by': opts.name,
    });
    res.end(req.method === 'HEAD' ? undefined : payload);
    log?.write(combinedLogLine(req, status, req.method === 'HEAD' ? 0 : payload.length, new Date(), remote));
  });
  // Clients that go away mid-request must not take the shop down.
  server.on('clientError', (_err, socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      const close = (): Promise<void> =>
        new Promise((res) => {
          server.close(() => {
            if (log) log.end(() => res());
            else res();
          });
          server.closeAllConnections();
        });
      resolve({ server, port: (server.address() as AddressInfo).port, close });
    });
  });
}

async function main(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      port: { type: 'string', default: '80' },
      name: { type: 'string' },
      log: { type: 'string' },
      host: { type: 'string' },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: '${values.port}' is not a port`);
  if (!values.name) throw new Error('--name is required (e.g. --name web1)');
  const app = await startShopApp({
    port,
    name: values.name,
    ...(values.log ? { log: values.log } : {}),
    ...(values.host ? { host: values.host } : {}),
  });
  process.stdout.write(`shop-app ${values.name}: listening on ${values.host ?? '0.0.0.0'}:${app.port}\n`);
  const stop = (): void => {
    void app.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`shop-app: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  });
}
