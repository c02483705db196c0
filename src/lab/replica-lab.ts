/**
 * Several `rampart serve` replicas on one PostgreSQL (issue 14 §4, §6 scenario 4), with real parts only: real server
 * processes, a real database, and one small HTTP server per monitor on loopback that counts who probes it (each
 * replica names itself in its User-Agent). Used by test/e2e/replica-failover.test.ts and bench/failover-bench.mjs.
 *
 * Nothing here touches a firewall, a route or an interface: loopback only, processes this module started, ended by
 * their PID.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateToken } from '../server/auth.js';
import { openStore } from '../store/open.js';
import type { Role } from '../store/types.js';

/** One monitor's target: answers 200 (or 500 while `failing`), and keeps who asked when. */
export interface Target {
  readonly name: string;
  readonly url: string;
  /** Every request: when, and the replica its User-Agent names (`-` for anyone else). */
  readonly hits: { at: number; replica: string }[];
  failing: boolean;
}

export interface Replica {
  readonly index: number;
  readonly url: string;
  readonly process: ChildProcess;
  /** The replica's name in leases and User-Agents: `host-PID-random`; its PID is enough to tell it. */
  readonly pid: number;
  /** stderr and stdout, for a failing test's message. */
  readonly output: () => string;
}

export interface ReplicaLab {
  readonly targets: readonly Target[];
  readonly replicas: (Replica | undefined)[];
  readonly intervalMs: number;
  /** Starts replica `i` (again) and waits until it answers. */
  start(i: number): Promise<Replica>;
  /** SIGKILL, no goodbye (its leases stay until they expire). */
  kill(i: number): Promise<void>;
  /** GET an API path as the viewer, from replica `i`. */
  get(i: number, path: string): Promise<unknown>;
  /** POST an API path as the probe `eu`, to replica `i`. */
  postAsProbe(i: number, path: string, body: unknown): Promise<{ status: number; body: unknown }>;
  /** The replica (by PID) that probed each target since `since`. */
  probedBy(since: number, until?: number): Map<string, Set<number>>;
  close(): Promise<void>;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });

async function until(what: string, ms: number, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await ok().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`${what} did not happen in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startReplicaLab(opts: {
  /** PostgreSQL URL of an empty database. */
  readonly db: string;
  /** dist/cli/main.js */
  readonly main: string;
  readonly monitors?: number;
  readonly intervalMs?: number;
  readonly replicas?: number;
}): Promise<ReplicaLab> {
  const intervalMs = opts.intervalMs ?? 2000;
  const dir = mkdtempSync(join(tmpdir(), 'rampart-replicas-'));
  const servers: http.Server[] = [];
  const targets: Target[] = [];
  for (let i = 0; i < (opts.monitors ?? 6); i++) {
    const target: Target = { name: `m${i}`, url: '', hits: [], failing: false };
    const s = http.createServer((req, res) => {
      const ua = req.headers['user-agent'] ?? '';
      const m = /replica \S+-(\d+)-[0-9a-f]+\)/.exec(ua);
      target.hits.push({ at: Date.now(), replica: m?.[1] ?? '-' });
      res.writeHead(target.failing ? 500 : 200, { 'content-type': 'text/plain' });
      res.end(target.failing ? 'failing\n' : 'ok\n');
    });
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    servers.push(s);
    (target as { url: string }).url = `http://127.0.0.1:${(s.address() as AddressInfo).port}/healthz`;
    targets.push(target);
  }
  const interval = `${intervalMs / 1000}s`;
  const config = join(dir, 'rampart.yaml');
  writeFileSync(
    config,
    [
      'site: replicas',
      'monitors:',
      ...targets.map(
        (t) =>
          `  - {name: ${t.name}, http: {url: "${t.url}"}, interval: ${interval}, timeout: ${Math.min(1000, intervalMs / 2)}ms, failures: 2, from: [server, probes]}`,
      ),
      '',
    ].join('\n'),
  );
  const tokens: Record<string, string> = {};
  const store = await openStore({ db: opts.db });
  try {
    await store.write({ name: 'replica-lab', role: 'system', from: 'local' }, async (w) => {
      for (const [name, role] of [
        ['vic', 'viewer'],
        ['eu', 'probe'],
      ] as [string, Role][]) {
        const t = generateToken();
        await w.insertToken({
          id: t.id,
          name,
          role,
          secretHash: t.secretHash,
          createdAt: new Date().toISOString(),
          createdBy: 'replica-lab',
        });
        tokens[name] = t.token;
      }
    });
  } finally {
    await store.close();
  }
  const ports: number[] = [];
  for (let i = 0; i < (opts.replicas ?? 2); i++) ports.push(await freePort());
  const replicas: (Replica | undefined)[] = ports.map(() => undefined);

  const call = async (i: number, method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${ports[i]}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  };

  const start = async (i: number): Promise<Replica> => {
    const port = ports[i] as number;
    const child = spawn(
      process.execPath,
      [opts.main, 'serve', '--db', opts.db, '--config', config, '--listen', `127.0.0.1:${port}`, '--log-level', 'info'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    );
    let out = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (out += d));
    const r: Replica = {
      index: i,
      url: `http://127.0.0.1:${port}`,
      process: child,
      pid: child.pid as number,
      output: () => out,
    };
    replicas[i] = r;
    await until(`replica ${i} to answer`, 60_000, async () => {
      if (child.exitCode !== null) throw new Error(`replica ${i} exited: ${out.slice(-2000)}`);
      return (await fetch(`${r.url}/healthz`, { signal: AbortSignal.timeout(2000) })).ok;
    }).catch((e: Error) => {
      throw new Error(`${e.message}\n${out.slice(-2000)}`);
    });
    return r;
  };

  const kill = async (i: number) => {
    const r = replicas[i];
    if (!r || r.process.exitCode !== null || r.process.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => r.process.once('exit', () => resolve()));
    r.process.kill('SIGKILL');
    await exited;
  };

  for (let i = 0; i < replicas.length; i++) await start(i);

  return {
    targets,
    replicas,
    intervalMs,
    start,
    kill,
    get: async (i, path) => {
      const r = await call(i, 'GET', path, tokens.vic as string);
      if (r.status !== 200)
        throw new Error(`GET ${path} from replica ${i}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    postAsProbe: (i, path, body) => call(i, 'POST', path, tokens.eu as string, body),
    probedBy(since, to = Number.POSITIVE_INFINITY) {
      const out = new Map<string, Set<number>>();
      for (const t of targets) {
        out.set(t.name, new Set(t.hits.filter((h) => h.at >= since && h.at < to).map((h) => Number(h.replica))));
      }
      return out;
    },
    async close() {
      for (let i = 0; i < replicas.length; i++) {
        const r = replicas[i];
        if (r && r.process.exitCode === null && r.process.signalCode === null) {
          const exited = new Promise<void>((resolve) => r.process.once('exit', () => resolve()));
          r.process.kill('SIGTERM');
          const t = setTimeout(() => r.process.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(t);
        }
      }
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** When each monitor was first probed by `pid` after `since` (undefined: not yet). */
export function firstProbe(targets: readonly Target[], pid: number, since: number): Map<string, number | undefined> {
  return new Map(targets.map((t) => [t.name, t.hits.find((h) => h.at >= since && Number(h.replica) === pid)?.at]));
}
