/**
 * HAProxy for the shop lab: the generated config and a reader of backend status.
 *
 * Status comes from HAProxy's stats socket (`show stat`, CSV). The socket is a path in the lab's temp dir, and a
 * path-bound unix socket belongs to the filesystem, not to a network namespace, so the caller reaches HAProxy in
 * the lb namespace directly with node:net: neither socat nor curl is needed.
 */
import { connect } from 'node:net';

export interface HaproxyServer {
  readonly name: string;
  readonly address: string;
  readonly port: number;
}

export interface HaproxyConfigOptions {
  /** Frontend address and port, e.g. 10.88.0.2:80. */
  readonly bind: { readonly address: string; readonly port: number };
  readonly servers: readonly HaproxyServer[];
  /** Admin-level stats socket (absolute path). */
  readonly statsSocket: string;
  /** Backend name; default `shop`. */
  readonly backend?: string;
  /**
   * A TLS front end on the same address (the drills' cert-expiring): `crt` is a PEM file with the certificate and its
   * key, replaceable at run time through the stats socket (`set ssl cert` + `commit ssl cert`, setCertificate()).
   */
  readonly tls?: { readonly port: number; readonly crt: string };
}

/**
 * The lab's config. Choices beyond the brief, and why:
 * - `option redispatch 1`: redispatch on EVERY retry (plain `option redispatch` waits for the last of the 3), so a
 *   request that meets a silently dropping server is sent to the other one after one connect timeout (1 s) instead
 *   of three, well inside the steady client's timeout.
 * - `timeout check 500`: a health check against a dropping server gives up within one interval.
 * - logs to stdout (the lab captures it in haproxy.log), one line per request, for later monitoring work.
 */
export function haproxyConfig(opts: HaproxyConfigOptions): string {
  const backend = opts.backend ?? 'shop';
  for (const s of opts.servers) {
    if (!/^[\w.-]+$/.test(s.name)) throw new Error(`invalid HAProxy server name '${s.name}'`);
  }
  if (/[\s"#]/.test(opts.statsSocket))
    throw new Error(`stats socket path must not contain spaces: ${opts.statsSocket}`);
  if (opts.tls && /[\s"#]/.test(opts.tls.crt))
    throw new Error(`certificate path must not contain spaces: ${opts.tls.crt}`);
  return [
    'global',
    `  stats socket ${opts.statsSocket} mode 600 level admin`,
    '  stats timeout 10s',
    '  log stdout format raw local0',
    '',
    'defaults',
    '  mode http',
    '  log global',
    '  option httplog',
    '  option dontlognull',
    '  retries 3',
    '  option redispatch 1',
    '  timeout connect 1s',
    '  timeout client 5s',
    '  timeout server 5s',
    '  timeout check 500ms',
    '',
    `frontend ${backend}_front`,
    `  bind ${opts.bind.address}:${opts.bind.port}`,
    `  default_backend ${backend}`,
    '',
    ...(opts.tls
      ? [
          `frontend ${backend}_tls`,
          `  bind ${opts.bind.address}:${opts.tls.port} ssl crt ${opts.tls.crt}`,
          `  default_backend ${backend}`,
          '',
        ]
      : []),
    `backend ${backend}`,
    '  balance roundrobin',
    '  option httpchk GET /healthz',
    '  http-check expect status 200',
    ...opts.servers.map((s) => `  server ${s.name} ${s.address}:${s.port} check inter 500 fall 2 rise 2`),
    '',
  ].join('\n');
}

/**
 * Replaces the certificate HAProxy serves from `crt` (a PEM path named in its config) with `pem` (certificate and
 * key) through the runtime API, without a restart: connections keep flowing. Throws with HAProxy's answer when it
 * refuses.
 */
export async function setCertificate(socketPath: string, crt: string, pem: string): Promise<void> {
  const set = await haproxyCommand(socketPath, `set ssl cert ${crt} <<\n${pem.trim()}\n`);
  if (!/Transaction (created|updated)/i.test(set)) throw new Error(`HAProxy refused the certificate: ${set.trim()}`);
  const commit = await haproxyCommand(socketPath, `commit ssl cert ${crt}`);
  if (!/Success/i.test(commit)) throw new Error(`HAProxy did not commit the certificate: ${commit.trim()}`);
}

/** Sends one command to the stats socket and returns the whole answer. */
export function haproxyCommand(socketPath: string, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`HAProxy stats socket ${socketPath}: no answer to '${command}' within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('connect', () => sock.end(`${command}\n`));
    sock.on('data', (b: Buffer) => chunks.push(b));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`HAProxy stats socket ${socketPath}: ${e.message}`));
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

export type StatRow = Readonly<Record<string, string>>;

/** Parses `show stat` CSV (header line starts with `# `). */
export function parseShowStat(csv: string): StatRow[] {
  const lines = csv.split('\n').filter((l) => l.trim() !== '');
  const header = lines[0];
  if (!header?.startsWith('# ')) throw new Error(`unexpected 'show stat' answer: ${csv.slice(0, 200)}`);
  const cols = header.slice(2).split(',');
  return lines.slice(1).map((line) => {
    const cells = line.split(',');
    return Object.fromEntries(cols.map((c, i) => [c, cells[i] ?? '']));
  });
}

/** UP or DOWN (HAProxy's transitional `UP 1/2` is still UP, `DOWN 1/2` still DOWN), or MAINT / other as given. */
export type ServerState = 'UP' | 'DOWN' | 'MAINT' | 'NOLB' | 'DRAIN' | string;

/** State of each server of `backend`, e.g. `{ web1: 'UP', web2: 'DOWN' }`. */
export async function backendStatus(socketPath: string, backend = 'shop'): Promise<Record<string, ServerState>> {
  const rows = parseShowStat(await haproxyCommand(socketPath, 'show stat'));
  const out: Record<string, ServerState> = {};
  for (const r of rows) {
    if (r.pxname !== backend || r.svname === 'FRONTEND' || r.svname === 'BACKEND' || !r.svname) continue;
    out[r.svname] = (r.status ?? '').split(' ')[0] ?? '';
  }
  return out;
}
