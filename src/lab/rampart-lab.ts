/**
 * Rampart inside the shop lab: the server in srv (10.88.0.5:8470, SQLite in the lab dir) with the lab's
 * rampart.yaml, an agent in web1 and web2, and tokens for the people of the founding story (alice proposes, bob
 * approves, admin overrides). Used by the issue-6 scenarios and by `rampart lab up`. Every process is started with
 * lab.spawnIn, so the lab stops exactly those; the store is prepared before the server starts (tokens are written
 * the way `rampart init` writes the first one).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateToken } from '../server/auth.js';
import { openStore } from '../store/open.js';
import type { Role } from '../store/types.js';
import { SHOP_ADDRESSES, type ShopLab, type SpawnedProcess } from './shop-lab.js';

export const SERVER_PORT = 8470;
export const SERVER_URL = `http://${SHOP_ADDRESSES.srv}:${SERVER_PORT}`;

/** The site as the founding postmortem's team would declare it after the outage. */
export interface LabConfigOptions {
  readonly confirmTimeoutSeconds?: number;
  /** The firewall each web server's agent manages (default nftables for both). */
  readonly firewalls?: Partial<Record<'web1' | 'web2', 'nftables' | 'iptables'>>;
  /**
   * Monitor the shop (issue 14): its public address (HAProxy) and each backend, from the server, the agents and a
   * probe in the client's network, every `intervalMs` (default 1000).
   */
  readonly monitor?: {
    readonly intervalMs?: number;
    readonly timeoutMs?: number;
    /** Also `shop-from-client`: the public address probed by the probes alone (its history is theirs). */
    readonly probeOnly?: boolean;
  };
  /**
   * Count the shop's incoming requests (issue 14, §3): each agent follows its shop app's access log
   * (`<logDir>/web1-access.log`, as the lab writes them); the detector's slot is 10 s so it has a baseline within
   * about a minute of traffic, and a recovery is declared after 10 s back in the band (the default is 20 s).
   */
  readonly traffic?: { readonly logDir: string };
  /** An `alerting:` section (issue 15), appended to the file as it is written (top-level YAML, two-space indents). */
  readonly alerting?: string;
  /** A freeze window all week (policy.freeze): every apply is an emergency change with a reason (issue 16). */
  readonly freeze?: boolean;
  /**
   * The shop's TLS front end on the load balancer (startShop's `tls`): a `shop-tls` monitor of its certificate from
   * the server, every `intervalMs` (default 2 s; the drills' cert-expiring).
   */
  readonly tls?: { readonly port: number; readonly intervalMs?: number };
}

export function labConfig(opts: LabConfigOptions = {}): string {
  const monitors = [
    ...(opts.monitor?.probeOnly
      ? [
          `  - name: shop-from-client
    http: {url: "http://${SHOP_ADDRESSES.lb}/healthz"}
    interval: ${opts.monitor.intervalMs ?? 1000}ms
    timeout: ${opts.monitor.timeoutMs ?? 500}ms
    from: [probes]
`,
        ]
      : []),
    ...(opts.tls
      ? [
          `  - name: shop-tls
    service: shop
    tls: {host: ${SHOP_ADDRESSES.lb}, port: ${opts.tls.port}, days: 0}
    interval: ${opts.tls.intervalMs ?? 2000}ms
    # about the certificate's end, not availability (the shop's monitors say that): a slow handshake on a loaded
    # machine must not page (seen once at load 8 while a fault was held 100 s)
    timeout: ${opts.tls.intervalMs ?? 2000}ms
    failures: 3
    from: [server]
`,
        ]
      : []),
  ];
  // Marked as a lab: drills act only on hosts marked lab or staging (src/lab/drills/safety.ts).
  return `# The shop lab (src/lab/shop-lab.ts): two web servers behind HAProxy, managed by Rampart agents.
site: {name: shop-lab, environment: lab}
hosts:
  - name: web1
    addresses: [${SHOP_ADDRESSES.web1}]
    firewall: ${opts.firewalls?.web1 ?? 'nftables'}
    group: web
  - name: web2
    addresses: [${SHOP_ADDRESSES.web2}]
    firewall: ${opts.firewalls?.web2 ?? 'nftables'}
    group: web
services:
  - name: shop
    group: web
    public: [tcp/80]
    runbook: ${LAB_RUNBOOK_PATH}
    health:
      - http: {port: 80, path: /healthz, timeout: 1s}
${
  opts.monitor
    ? `    address: [${SHOP_ADDRESSES.lb}]
    monitor: {interval: ${opts.monitor.intervalMs ?? 1000}ms, timeout: ${opts.monitor.timeoutMs ?? 500}ms, failures: 2}
`
    : ''
}${
  opts.traffic
    ? `    traffic:
      logs: [{path: "${opts.traffic.logDir}/{host}-access.log", format: combined}]
      drop: {slot: 10s, for: 10s}
`
    : ''
}${monitors.length > 0 ? `monitors:\n${monitors.join('')}` : ''}admin-networks: [${SHOP_ADDRESSES.srv}/32]
policy:
  approvals: 1
  canary: [web1]
  confirm-timeout: ${opts.confirmTimeoutSeconds ?? 10}s
${
  opts.freeze
    ? `  freeze:
    - {name: lab freeze, weekly: {days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00"}}
`
    : ''
}${opts.alerting ?? ''}`;
}

/**
 * The shop's runbook in the lab (issue 16 §4), written next to the lab's rampart.yaml: every alert about the shop
 * carries it (the `runbook` annotation in the webhook, a `Runbook:` line in mail) and `rampart alerts show` and
 * `rampart incident show` print its steps. docs/examples/runbooks/shop.md is the full one for a real site.
 */
export const LAB_RUNBOOK_PATH = 'runbooks/shop.md';
export const LAB_RUNBOOK = `# Runbook: the shop lab is down

1. Acknowledge, so escalation stops: \`rampart incident ack ID\`.
2. Read the timeline and the suspected cause: \`rampart incident show ID\`.
3. If the suspect is a drift or a change of the firewall, propose its fix through review: \`rampart incident remediate ID\`.
4. Confirm the recovery from every vantage point: \`rampart monitors\`.
5. Resolve, then draft the postmortem: \`rampart incident postmortem ID\`.
`;

/** What each web server runs before Rampart manages it: the shop open, SSH from the admin network. */
export const BASELINE_RULESET = `table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tiifname "lo" accept
\t\tmeta l4proto icmp accept
\t\ttcp dport 22 ip saddr ${SHOP_ADDRESSES.srv} accept comment "ssh from the admin network"
\t\ttcp dport 80 accept comment "the shop"
\t}
\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t}
}
`;

/** The same baseline for an iptables host (iptables-save of the filter table). */
export const BASELINE_IPTABLES = `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -s ${SHOP_ADDRESSES.srv}/32 -p tcp -m tcp --dport 22 -m comment --comment "ssh from the admin network" -j ACCEPT
-A INPUT -p tcp -m tcp --dport 80 -m comment --comment "the shop" -j ACCEPT
COMMIT
`;

export const PEOPLE = { admin: 'admin', alice: 'operator', bob: 'approver' } as const satisfies Record<string, Role>;
export type Person = keyof typeof PEOPLE;

export interface RampartLab {
  readonly url: string;
  readonly configFile: string;
  readonly dataDir: string;
  readonly tokens: Readonly<Record<Person | 'web1' | 'web2' | 'probe', string>>;
  readonly server: SpawnedProcess;
  agents: Record<'web1' | 'web2', SpawnedProcess>;
  /** Starts (again) the agent of one web server, with the same state dir (so it finds a pending apply). */
  startAgent(host: 'web1' | 'web2'): SpawnedProcess;
  /** Starts `rampart probe` in the client namespace (a vantage point in the users' network; token name `client`). */
  startProbe(): SpawnedProcess;
  /** Runs the rampart CLI in the client namespace as `who` (an operator's workstation in the lab). */
  cli(who: Person, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /**
   * Calls the server's API (`/api/v1` + `path`) as `who` from the client namespace, the answer parsed as JSON; throws
   * on an answer that is not 2xx. For polling: the CLI starts node each time (0.3 s of CPU), this does not. What the
   * CLI prints is tested by calling the CLI.
   */
  api<T>(who: Person, method: string, path: string, body?: unknown): Promise<T>;
}

function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const t0 = Date.now();
  return (async () => {
    while (Date.now() - t0 < ms) {
      if (await check().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out after ${ms} ms waiting for ${what}`);
  })();
}

export async function startRampart(
  lab: ShopLab,
  main: string,
  opts: LabConfigOptions & {
    pollMs?: number;
    /** Each host's desired ruleset before the server starts (as if a change had applied it). */
    desired?: Partial<Record<'web1' | 'web2', string>>;
    /** More environment for the server (e.g. NODE_EXTRA_CA_CERTS: the lab's own certificate authority). */
    serverEnv?: NodeJS.ProcessEnv;
  } = {},
): Promise<RampartLab> {
  const dataDir = join(lab.paths.dir, 'rampart-data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const configFile = join(lab.paths.dir, 'rampart.yaml');
  writeFileSync(configFile, labConfig(opts));
  mkdirSync(join(lab.paths.dir, 'runbooks'), { recursive: true });
  writeFileSync(join(lab.paths.dir, LAB_RUNBOOK_PATH), LAB_RUNBOOK);
  const tokens = {} as Record<Person | 'web1' | 'web2' | 'probe', string>;
  const store = await openStore({ dataDir });
  try {
    await store.write({ name: 'rampart-lab', role: 'system', from: 'local' }, async (w) => {
      const all: [string, Role][] = [
        ...Object.entries(PEOPLE),
        ['web1', 'agent'],
        ['web2', 'agent'],
        ['client', 'probe'],
      ];
      for (const [name, role] of all) {
        const t = generateToken();
        const r = await w.insertToken({
          id: t.id,
          name,
          role,
          secretHash: t.secretHash,
          createdAt: new Date().toISOString(),
          createdBy: 'rampart-lab',
        });
        await w.audit({ action: 'token.create', target: `token:${r.id}`, after: { id: r.id, name, role } });
        tokens[(name === 'client' ? 'probe' : name) as Person] = t.token;
      }
      for (const [host, ruleset] of Object.entries(opts.desired ?? {})) {
        await w.setDesired({
          host,
          format: 'nft-text',
          ruleset,
          changeId: null,
          updatedAt: new Date().toISOString(),
        });
      }
    });
  } finally {
    await store.close();
  }
  const server = lab.spawnIn(
    'srv',
    [
      process.execPath,
      main,
      'serve',
      '--data-dir',
      dataDir,
      '--config',
      configFile,
      '--listen',
      `${SHOP_ADDRESSES.srv}:${SERVER_PORT}`,
      '--log-level',
      'warn',
    ],
    { label: 'rampart-server', ...(opts.serverEnv ? { env: { ...process.env, ...opts.serverEnv } } : {}) },
  );
  await until(
    'the Rampart server to answer',
    30_000,
    async () => (await lab.httpGet('client', `${SERVER_URL}/healthz`, 2000)).status === 200,
  );
  const startAgent = (host: 'web1' | 'web2'): SpawnedProcess =>
    lab.spawnIn(
      host,
      [
        process.execPath,
        main,
        'agent',
        '--server',
        SERVER_URL,
        '--state-dir',
        join(lab.paths.dir, `agent-${host}`),
        '--poll',
        String(opts.pollMs ?? 300),
      ],
      { label: `${host}-agent`, env: { ...process.env, RAMPART_AGENT_TOKEN: tokens[host] } },
    );
  const agents = { web1: startAgent('web1'), web2: startAgent('web2') };
  const cli = (who: Person, ...args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn('ip', ['netns', 'exec', lab.namespaces.client, process.execPath, main, ...args], {
        env: { ...process.env, NO_COLOR: '1', RAMPART_SERVER: SERVER_URL, RAMPART_TOKEN: tokens[who] },
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  const startProbe = (): SpawnedProcess =>
    lab.spawnIn('client', [process.execPath, main, 'probe', '--server', SERVER_URL], {
      label: 'client-probe',
      env: { ...process.env, RAMPART_PROBE_TOKEN: tokens.probe },
    });
  const api = async <T>(who: Person, method: string, path: string, body?: unknown): Promise<T> => {
    const a = await lab.request('client', `${SERVER_URL}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${tokens[who]}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      timeoutMs: 10_000,
    });
    if (a.status < 200 || a.status > 299) throw new Error(`${method} ${path} as ${who}: ${a.status} ${a.body}`);
    return JSON.parse(a.body) as T;
  };
  return { url: SERVER_URL, configFile, dataDir, tokens, server, agents, startAgent, startProbe, cli, api };
}
