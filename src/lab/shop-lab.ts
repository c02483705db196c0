/**
 * The shop lab: the founding outage's cast, built from real parts inside network namespaces.
 *
 *                         rampart-shop-<id>-sw  (Linux bridge br0: the L2 switch)
 *          ┌──────────────┬──────────┴───┬──────────────┬──────────────┐
 *   client 10.88.0.10   lb 10.88.0.2   web1 10.88.0.11  web2 10.88.0.12  srv 10.88.0.5
 *   steady customers    HAProxy :80    shop app :80     shop app :80     Rampart server (later)
 *
 * Every host namespace has one veth (eth0) whose other end is a port of br0 in the switch namespace.
 *
 * Safety: nothing is ever created or changed in the caller's own network namespace. The only commands run there are
 * `ip netns add/del/list` and `ip -n <host> link add eth0 ... peer ... netns <sw>`, which creates both ends of each
 * veth directly inside lab namespaces. Everything else runs via `ip netns exec`. Processes are started by the lab
 * and remembered by PID *and* start time, and only those are ever signalled. Teardown is idempotent, also runs
 * from a process 'exit' handler, and a sweep removes labs left behind by a crashed run (owner process gone and not
 * deliberately detached by `rampart lab up`).
 *
 * Each lab has a temp dir (os.tmpdir()/rampart-shop-<id>) holding lab.json (the record the sweep and `rampart lab
 * down` work from), the HAProxy config and stats socket, and the logs of every process it started.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Executor, netnsExecutor, runCommand, runCommandSync } from './executor.js';
import { backendStatus, haproxyCommand, haproxyConfig, parseShowStat, type ServerState } from './haproxy.js';
import { NS_HTTP_SCRIPT, NsHttpClient, type NsRequest } from './ns-http.js';

export const SHOP_PREFIX = 'rampart-shop';
export const SHOP_SUBNET = '10.88.0.0/24';
export const SHOP_PREFIX_LEN = 24;

/** The lab's fixed addresses (one L2 segment). */
export const SHOP_ADDRESSES = {
  lb: '10.88.0.2',
  srv: '10.88.0.5',
  client: '10.88.0.10',
  web1: '10.88.0.11',
  web2: '10.88.0.12',
} as const;
export const LB_ADDRESS = SHOP_ADDRESSES.lb;
export const SRV_ADDRESS = SHOP_ADDRESSES.srv;
export const CLIENT_ADDRESS = SHOP_ADDRESSES.client;
export const WEB1_ADDRESS = SHOP_ADDRESSES.web1;
export const WEB2_ADDRESS = SHOP_ADDRESSES.web2;

/** The shop's port on web1/web2 and on the load balancer. */
export const SHOP_PORT = 80;
/** What customers open. */
export const SHOP_URL = `http://${LB_ADDRESS}/`;

export type ShopHost = keyof typeof SHOP_ADDRESSES;
export type ShopRole = 'sw' | ShopHost;
export const SHOP_HOSTS: readonly ShopHost[] = ['client', 'lb', 'web1', 'web2', 'srv'];
export const SHOP_ROLES: readonly ShopRole[] = ['sw', ...SHOP_HOSTS];
export const WEB_SERVERS = ['web1', 'web2'] as const;
export type WebServer = (typeof WEB_SERVERS)[number];

const ROLE_RE = '(?:sw|client|lb|web1|web2|srv)';
const NS_RE = new RegExp(`^${SHOP_PREFIX}-([a-z0-9]{1,16})-${ROLE_RE}$`);
const ID_RE = /^[a-z0-9]{1,16}$/;

/** Repository root, from src/lab (vitest) or dist/lab (built): both are two levels down. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The built script `dist/lab/<name>` that lab processes run (`npm run build` first). */
export function distScript(name: string): string {
  return join(ROOT, 'dist', 'lab', name);
}

export interface LabProcess {
  readonly pid: number;
  /** /proc/<pid>/stat start time: with the PID, identifies the process even after PID reuse. */
  readonly start: string;
  readonly role: ShopRole;
  readonly ns: string;
  /** Short name, also the log file's name (e.g. `web1-app`, `haproxy`). */
  readonly label: string;
  readonly argv: readonly string[];
  /** stdout + stderr of the process. */
  readonly log: string;
}

export interface ShopLabRecord {
  readonly version: 1;
  readonly id: string;
  readonly prefix: string;
  readonly dir: string;
  readonly owner: { readonly pid: number; readonly start: string };
  /** Set by `rampart lab up`: the lab outlives its creator on purpose, so the sweep leaves it alone. */
  readonly detached: boolean;
  readonly createdAt: string;
  readonly namespaces: Readonly<Record<ShopRole, string>>;
  readonly processes: readonly LabProcess[];
}

export interface ShopLabPaths {
  readonly dir: string;
  /** lab.json: names and PIDs, what the sweep and `rampart lab down` read. */
  readonly record: string;
  readonly haproxyConfig: string;
  readonly haproxySocket: string;
  /** HAProxy's own output: one line per request (httplog) plus health-check transitions. */
  readonly haproxyLog: string;
  /** Combined-format access logs of the shop apps. */
  readonly accessLog: Readonly<Record<WebServer, string>>;
  /** Where a process with this label writes its stdout/stderr. */
  logFor(label: string): string;
}

export interface SpawnOptions {
  /** Short name for the process and its log file; default `<role>-<argv0 basename>`. */
  readonly label?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Pipes for stdin and stdout (stderr still goes to the log), for a process the lab talks to. */
  readonly pipes?: boolean;
}

export interface SpawnedProcess extends LabProcess {
  readonly child: ChildProcess;
  /** Resolves with the exit code (or null when killed by a signal). */
  readonly exited: Promise<number | null>;
}

export interface HttpAnswer {
  readonly status: number;
  readonly servedBy: string;
  readonly body: string;
}

export interface ShopLab {
  readonly id: string;
  /** `rampart-shop-<id>` */
  readonly prefix: string;
  readonly namespaces: Readonly<Record<ShopRole, string>>;
  /** Runs commands inside each namespace. */
  readonly exec: Readonly<Record<ShopRole, Executor>>;
  readonly paths: ShopLabPaths;
  /**
   * Starts a long-running process inside a namespace (`ip netns exec <ns> argv...`; ip execs in place, so the PID
   * is the process itself) and remembers it. `where` is a role or a namespace name of this lab.
   */
  spawnIn(where: ShopRole | string, argv: readonly string[], opts?: SpawnOptions): SpawnedProcess;
  /** Processes started so far (including ones that have exited). */
  processes(): readonly LabProcess[];
  /** Stops one process this lab started (SIGTERM, then SIGKILL after `graceMs`). */
  kill(p: LabProcess, graceMs?: number): Promise<void>;
  /** GET `url` from inside a namespace (through request()). */
  httpGet(from: ShopRole, url: string, timeoutMs?: number): Promise<HttpAnswer>;
  /**
   * An HTTP request from inside a namespace, through one node client kept running there (src/lab/ns-http.ts; no curl
   * needed); each request on a new connection. Rejects when no answer comes (refused, timed out, ...).
   */
  request(from: ShopRole, url: string, init?: NsRequest): Promise<HttpAnswer>;
  /** HAProxy's view of the shop backend, e.g. `{ web1: 'UP', web2: 'DOWN' }`. Needs startShop() first. */
  backendStatus(): Promise<Record<string, ServerState>>;
  /** Polls backendStatus() until `server` is in `state`; resolves with the milliseconds it took. */
  waitForBackend(server: string, state: 'UP' | 'DOWN', timeoutMs?: number): Promise<number>;
  /** The current record (what lab.json holds). */
  record(): ShopLabRecord;
  /**
   * For `rampart lab up`: marks the lab as deliberately left running, drops the exit handler and lets this process
   * exit while the lab's processes go on. Only destroyRecordedLab() (`rampart lab down`) removes it afterwards.
   */
  detach(): ShopLabRecord;
  /** Kills the processes this lab started (only those). Idempotent. */
  stop(): Promise<void>;
  /** stop() + deletes every namespace and (unless `keepDir`) the temp dir. Idempotent. */
  destroy(): Promise<void>;
  /** Synchronous destroy, for 'exit' handlers. */
  destroySync(): void;
}

export interface ShopLabOptions {
  /** Replaces the random part of the names (`rampart-shop-<name>-<role>`); [a-z0-9]{1,16}. */
  readonly name?: string;
  /** Keep the temp dir (logs) after destroy(). Default false. */
  readonly keepDir?: boolean;
  /** Per setup command; default 20 s. */
  readonly timeoutMs?: number;
}

/** Why the lab cannot run here (undefined: it can). Checks Linux, root, and the given tools on PATH. */
export function shopLabUnavailable(tools: readonly string[] = ['ip', 'haproxy']): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root (network namespaces need root)';
  for (const tool of tools) {
    if (!/^[\w.-]+$/.test(tool)) return `invalid tool name '${tool}'`;
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} not found on PATH`;
  }
  return undefined;
}

/** Start time of a process (field 22 of /proc/<pid>/stat), or undefined when it is gone or a zombie. */
export function processStart(pid: number): string | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: fields are counted after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
  return rest[19];
}

/** True when `p` is still the very process that was started (same PID and start time) and not a zombie. */
export function isRunning(p: Pick<LabProcess, 'pid' | 'start'>): boolean {
  return p.start !== '' && processStart(p.pid) === p.start;
}

function signal(p: LabProcess, sig: NodeJS.Signals): void {
  if (!isRunning(p)) return;
  try {
    process.kill(p.pid, sig);
  } catch {
    // exited in between
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, wait up to `graceMs`, then SIGKILL and wait a little more. Only verified processes are signalled. */
async function killAll(procs: readonly LabProcess[], graceMs: number): Promise<void> {
  for (const p of procs) signal(p, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (procs.some(isRunning) && Date.now() < deadline) await sleep(50);
  for (const p of procs) signal(p, 'SIGKILL');
  const hard = Date.now() + 3000;
  while (procs.some(isRunning) && Date.now() < hard) await sleep(50);
}

function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

export function labDir(id: string): string {
  return join(tmpdir(), `${SHOP_PREFIX}-${id}`);
}

export function readLabRecord(file: string): ShopLabRecord {
  const r = JSON.parse(readFileSync(file, 'utf8')) as ShopLabRecord;
  if (r.version !== 1 || !ID_RE.test(r.id) || typeof r.namespaces !== 'object' || !Array.isArray(r.processes)) {
    throw new Error(`${file}: not a Rampart shop lab record`);
  }
  for (const ns of Object.values(r.namespaces)) {
    if (!NS_RE.test(ns)) throw new Error(`${file}: namespace '${ns}' is not a shop lab namespace`);
  }
  return r;
}

async function listNamespaces(): Promise<string[]> {
  const r = await runCommand(['ip', '-j', 'netns', 'list'], { timeoutMs: 10_000 });
  const text = r.stdout.trim();
  if (text === '') return [];
  return (JSON.parse(text) as { name: string }[]).map((n) => n.name);
}

/**
 * Removes a lab from its record (used by `rampart lab down` and the sweep): kills its recorded processes (only if
 * PID and start time still match), deletes its namespaces and its temp dir.
 */
export async function destroyRecordedLab(record: ShopLabRecord, opts: { keepDir?: boolean } = {}): Promise<void> {
  await killAll(record.processes, 3000);
  for (const ns of Object.values(record.namespaces)) {
    if (!NS_RE.test(ns)) continue;
    await runCommand(['ip', 'netns', 'del', ns], { allowFailure: true, timeoutMs: 10_000 });
  }
  // Only a directory named like a lab dir is removed, whatever the record says.
  if (!opts.keepDir && basename(record.dir) === `${SHOP_PREFIX}-${record.id}`) {
    rmSync(record.dir, { recursive: true, force: true });
  }
}

/**
 * Deletes shop labs whose creating process is gone (a crashed run) and that were not detached by `rampart lab up`.
 * Labs without a readable record are left alone: nothing proves whose they are. Returns the prefixes removed.
 */
export async function sweepStaleShopLabs(): Promise<string[]> {
  const ids = new Set<string>();
  for (const name of await listNamespaces()) {
    const m = NS_RE.exec(name);
    if (m) ids.add(m[1] as string);
  }
  const removed: string[] = [];
  for (const id of ids) {
    let record: ShopLabRecord;
    try {
      record = readLabRecord(join(labDir(id), 'lab.json'));
    } catch {
      continue;
    }
    if (record.detached || isRunning(record.owner)) continue;
    await destroyRecordedLab(record);
    removed.push(record.prefix);
  }
  return removed;
}

/** Creates the namespaces, the switch and the links. On any failure the partial lab is removed first. */
export async function createShopLab(opts: ShopLabOptions = {}): Promise<ShopLab> {
  const id = opts.name ?? randomBytes(4).toString('hex');
  if (!ID_RE.test(id)) throw new Error(`invalid lab name '${id}': expected [a-z0-9]{1,16}`);
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const prefix = `${SHOP_PREFIX}-${id}`;
  const namespaces = Object.fromEntries(SHOP_ROLES.map((r) => [r, `${prefix}-${r}`])) as Record<ShopRole, string>;
  const exec = Object.fromEntries(SHOP_ROLES.map((r) => [r, netnsExecutor(namespaces[r])])) as Record<
    ShopRole,
    Executor
  >;
  const dir = labDir(id);
  const paths: ShopLabPaths = {
    dir,
    record: join(dir, 'lab.json'),
    haproxyConfig: join(dir, 'haproxy.cfg'),
    haproxySocket: join(dir, 'haproxy.sock'),
    haproxyLog: join(dir, 'haproxy.log'),
    accessLog: { web1: join(dir, 'web1-access.log'), web2: join(dir, 'web2-access.log') },
    logFor: (label) => join(dir, `${label}.log`),
  };

  const existing = await listNamespaces();
  const clash = Object.values(namespaces).find((ns) => existing.includes(ns));
  if (clash) throw new Error(`namespace ${clash} already exists: another shop lab uses the name '${id}'`);
  // Fails when the dir exists: a second lab with the same name must not share (and later delete) it.
  mkdirSync(dir, { mode: 0o700 });

  const self = { pid: process.pid, start: processStart(process.pid) ?? '' };
  let detached = false;
  const createdAt = new Date().toISOString();
  const procs: SpawnedProcess[] = [];
  const record = (): ShopLabRecord => ({
    version: 1,
    id,
    prefix,
    dir,
    owner: self,
    detached,
    createdAt,
    namespaces,
    processes: procs.map(({ child: _c, exited: _e, ...p }) => p),
  });
  const save = (): void => writeJsonAtomic(paths.record, record());
  save();

  let stopped: Promise<void> | undefined;
  let destroyed: Promise<void> | undefined;
  let torn = false;
  const stop = (): Promise<void> => {
    stopped ??= killAll(procs, 3000);
    return stopped;
  };
  const destroySync = (): void => {
    if (torn) return;
    torn = true;
    process.removeListener('exit', destroySync);
    for (const p of procs) signal(p, 'SIGKILL');
    for (const ns of Object.values(namespaces)) {
      runCommandSync(['ip', 'netns', 'del', ns], { allowFailure: true, timeoutMs });
    }
    if (!opts.keepDir) rmSync(dir, { recursive: true, force: true });
  };
  const destroy = (): Promise<void> => {
    destroyed ??= (async () => {
      if (torn) return;
      process.removeListener('exit', destroySync);
      await stop();
      torn = true;
      for (const ns of Object.values(namespaces)) {
        await runCommand(['ip', 'netns', 'del', ns], { allowFailure: true, timeoutMs });
      }
      if (!opts.keepDir) rmSync(dir, { recursive: true, force: true });
    })();
    return destroyed;
  };
  // Registered before the first namespace exists, so even a crash halfway through setup cleans up.
  process.on('exit', destroySync);

  const nsOf = (where: string): { role: ShopRole; ns: string } => {
    const role = (SHOP_ROLES as readonly string[]).includes(where)
      ? (where as ShopRole)
      : SHOP_ROLES.find((r) => namespaces[r] === where);
    if (!role) throw new Error(`'${where}' is neither a role nor a namespace of lab ${prefix}`);
    return { role, ns: namespaces[role] };
  };

  const spawnIn = (where: string, argv: readonly string[], sopts: SpawnOptions = {}): SpawnedProcess => {
    if (torn || stopped) throw new Error(`lab ${prefix} is stopped; cannot start ${argv.join(' ')}`);
    if (argv.length === 0) throw new Error('spawnIn: empty argv');
    const { role, ns } = nsOf(where);
    const label = sopts.label ?? `${role}-${(argv[0] as string).split('/').pop()}`;
    if (!/^[\w.-]+$/.test(label)) throw new Error(`invalid process label '${label}'`);
    const log = paths.logFor(label);
    const fd = openSync(log, 'a');
    let child: ChildProcess;
    try {
      // Own process group: a Ctrl-C meant for the CLI that started the lab does not reach the lab's processes.
      child = spawn('ip', ['netns', 'exec', ns, ...argv], {
        stdio: sopts.pipes ? ['pipe', 'pipe', fd] : ['ignore', fd, fd],
        detached: true,
        ...(sopts.env ? { env: sopts.env } : {}),
        ...(sopts.cwd ? { cwd: sopts.cwd } : {}),
      });
    } finally {
      closeSync(fd);
    }
    if (child.pid === undefined) throw new Error(`cannot start ${argv.join(' ')} in ${ns}`);
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(null));
    });
    const p: SpawnedProcess = {
      pid: child.pid,
      start: processStart(child.pid) ?? '',
      role,
      ns,
      label,
      argv: [...argv],
      log,
      child,
      exited,
    };
    procs.push(p);
    save();
    return p;
  };

  const clients = new Map<ShopRole, NsHttpClient>();
  const request = (from: ShopRole, url: string, init: NsRequest = {}): Promise<HttpAnswer> => {
    let c = clients.get(from);
    if (!c) {
      c = new NsHttpClient(namespaces[from], () =>
        spawnIn(from, [process.execPath, '-e', NS_HTTP_SCRIPT], { label: `${from}-http`, pipes: true }),
      );
      clients.set(from, c);
    }
    return c.request(url, init);
  };
  const httpGet = (from: ShopRole, url: string, timeoutMs = 5000): Promise<HttpAnswer> =>
    request(from, url, { timeoutMs });

  const status = (): Promise<Record<string, ServerState>> => backendStatus(paths.haproxySocket, 'shop');
  const waitForBackend = async (server: string, state: 'UP' | 'DOWN', waitMs = 15_000): Promise<number> => {
    const t0 = performance.now();
    let last: Record<string, ServerState> = {};
    while (performance.now() - t0 < waitMs) {
      try {
        last = await status();
        if (last[server] === state) return performance.now() - t0;
      } catch {
        // HAProxy not answering yet
      }
      await sleep(50);
    }
    throw new Error(`HAProxy did not see ${server} ${state} within ${waitMs} ms (last: ${JSON.stringify(last)})`);
  };

  const lab: ShopLab = {
    id,
    prefix,
    namespaces,
    exec,
    paths,
    spawnIn,
    processes: () => record().processes,
    kill: async (p, graceMs = 3000) => killAll([p], graceMs),
    httpGet,
    request,
    backendStatus: status,
    waitForBackend,
    record,
    detach: () => {
      detached = true;
      process.removeListener('exit', destroySync);
      // The HTTP clients are this process's, not the lab's: they end with it (their stdin closes) and leave the record.
      for (const c of clients.values()) {
        const p = c.process();
        if (p) procs.splice(procs.indexOf(p), 1);
        c.close();
      }
      clients.clear();
      for (const p of procs) p.child.unref();
      save();
      return record();
    },
    stop,
    destroy,
    destroySync,
  };

  try {
    for (const r of SHOP_ROLES) await runCommand(['ip', 'netns', 'add', namespaces[r]], { timeoutMs });
    const sw = namespaces.sw;
    await exec.sw.run(['ip', 'link', 'add', 'br0', 'type', 'bridge'], { timeoutMs });
    for (const h of SHOP_HOSTS) {
      // Both ends are born inside the lab: eth0 in the host's namespace, its peer (named after the host) in sw.
      await runCommand(
        ['ip', '-n', namespaces[h], 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', h, 'netns', sw],
        {
          timeoutMs,
        },
      );
    }
    const swBatch = ['link set lo up', 'link set br0 up'];
    for (const h of SHOP_HOSTS) swBatch.push(`link set ${h} master br0`, `link set ${h} up`);
    await exec.sw.run(['ip', '-batch', '-'], { input: `${swBatch.join('\n')}\n`, timeoutMs });
    for (const h of SHOP_HOSTS) {
      const batch = ['link set lo up', `addr add ${SHOP_ADDRESSES[h]}/${SHOP_PREFIX_LEN} dev eth0`, 'link set eth0 up'];
      await exec[h].run(['ip', '-batch', '-'], { input: `${batch.join('\n')}\n`, timeoutMs });
    }
    return lab;
  } catch (e) {
    await destroy();
    throw e;
  }
}

export interface ShopServices {
  readonly apps: Readonly<Record<WebServer, SpawnedProcess>>;
  readonly haproxy: SpawnedProcess;
}

async function waitFor(what: string, ms: number, check: () => boolean | Promise<boolean>, p?: SpawnedProcess) {
  const t0 = Date.now();
  let exitCode: number | null | undefined;
  void p?.exited.then((c) => {
    exitCode = c;
  });
  while (Date.now() - t0 < ms) {
    if (await check()) return;
    if (exitCode !== undefined && p) {
      const log = existsSync(p.log) ? readFileSync(p.log, 'utf8').slice(-2000) : '';
      throw new Error(`${p.label} exited (${exitCode}) before ${what}:\n${log}`);
    }
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/**
 * Starts the shop: the shop app on web1 and web2 (from dist/: build first), then HAProxy in lb, and waits until
 * HAProxy sees both servers UP.
 */
export async function startShop(
  lab: ShopLab,
  opts: {
    timeoutMs?: number;
    /** Also a TLS front end on the load balancer (haproxyConfig's `tls`: port and PEM file). */
    tls?: { readonly port: number; readonly crt: string };
  } = {},
): Promise<ShopServices> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  for (const script of ['shop-app.js', 'steady-client.js']) {
    if (!existsSync(distScript(script))) throw new Error(`${distScript(script)} is missing: run npm run build`);
  }
  const apps = {} as Record<WebServer, SpawnedProcess>;
  for (const w of WEB_SERVERS) {
    apps[w] = lab.spawnIn(
      w,
      [
        process.execPath,
        distScript('shop-app.js'),
        '--port',
        String(SHOP_PORT),
        '--name',
        w,
        '--log',
        lab.paths.accessLog[w],
      ],
      { label: `${w}-app` },
    );
  }
  for (const w of WEB_SERVERS) {
    const p = apps[w];
    await waitFor(`${w}'s shop app to listen`, timeoutMs, () => readFileSync(p.log, 'utf8').includes('listening'), p);
  }
  writeFileSync(
    lab.paths.haproxyConfig,
    haproxyConfig({
      bind: { address: LB_ADDRESS, port: SHOP_PORT },
      servers: WEB_SERVERS.map((w) => ({ name: w, address: SHOP_ADDRESSES[w], port: SHOP_PORT })),
      statsSocket: lab.paths.haproxySocket,
      ...(opts.tls ? { tls: opts.tls } : {}),
    }),
  );
  const haproxy = lab.spawnIn('lb', ['haproxy', '-f', lab.paths.haproxyConfig, '-db'], { label: 'haproxy' });
  await waitFor(
    'HAProxy to see web1 and web2 UP',
    timeoutMs,
    async () => {
      try {
        // HAProxy starts servers as UP before any check ran: wait for a passed check (L7OK) on both.
        const rows = parseShowStat(await haproxyCommand(lab.paths.haproxySocket, 'show stat'));
        return WEB_SERVERS.every((w) =>
          rows.some((r) => r.pxname === 'shop' && r.svname === w && r.status === 'UP' && r.check_status === 'L7OK'),
        );
      } catch {
        return false;
      }
    },
    haproxy,
  );
  return { apps, haproxy };
}
