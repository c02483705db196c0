/**
 * `rampart demo` (what `npm start` runs after its trace): the real `rampart serve` on SQLite in a temporary data
 * directory, on the embedded example (src/demo/site.ts) with its history (src/demo/history.ts), the demo shop on
 * loopback for its monitors, a pending change that repeats the founding outage (refused at plan), and the founding
 * incident replayed with its timeline and postmortem. It prints the dashboard's URL and an admin token and runs
 * until SIGINT or SIGTERM, then stops the server and the shop and removes the directory.
 *
 * The server is `rampart serve` itself in a child process (its own process group, so a Ctrl-C reaches the demo,
 * which stops it with SIGTERM and waits for it). Nothing runs as root and nothing leaves the machine: the store,
 * the config and the server's log are in the temporary directory, the shop and the server listen on loopback.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from '../agent/agent.js';
import { UserError } from '../errors.js';
import type { Executor } from '../lab/executor.js';
import { generateToken } from '../server/auth.js';
import { openStore } from '../store/open.js';
import type { Role } from '../store/types.js';
import { writeHistory } from './history.js';
import { startShop } from './shop.js';
import { DEMO_HOSTS, DESIRED_NFT, demoConfig, OUTAGE_CHANGE, PROBE_INTERVAL_S } from './site.js';

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const ACTOR = { name: 'rampart-demo', role: 'system', from: 'local' } as const;
/** The people of the example: `admin` is the reader's; alice and bob are the founding postmortem's responders. */
const PEOPLE = { admin: 'admin', alice: 'operator', bob: 'approver' } as const satisfies Record<string, Role>;
type Person = keyof typeof PEOPLE;

/** Measures of the founding postmortem, put into the drafted postmortem as its responders would. */
const MEASURES = [
  'Review and audit the firewall rules regularly: `rampart audit` in CI and on the live hosts.',
  'Bring every firewall edit under change management: reviewed, planned and refused when it closes the shop (`rampart change`).',
  'Keep the shop redundant: web1 and web2 behind the load balancer, and know when one of them is down.',
  'Train engineers on the incident process: declare, acknowledge, write the timeline as you go.',
  'Monitor incoming traffic to the web servers and alert on drops.',
];

export interface LiveDemoOptions {
  /** HOST:PORT for the server (loopback); port 0 picks a free one. */
  readonly listen: string;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

export interface LiveDemo {
  readonly url: string;
  readonly dir: string;
  readonly token: string;
  /** Resolves with the exit code once the demo stopped (after a signal or the server's own exit). */
  readonly done: Promise<number>;
}

interface Running {
  dir: string;
  child?: ChildProcess;
  shop?: { close(): Promise<void> };
  agents?: { agent: Agent; running: Promise<void> }[];
}

/** The demo's agents run no command on a kernel: their live ruleset is a file, and anything else is refused. */
const NO_KERNEL: Executor = {
  where: 'the demo (no kernel)',
  run: async (argv) => {
    throw new Error(`the demo's agents run no commands (asked for: ${argv.join(' ')})`);
  },
};

/**
 * The hosts' agents: the real agent (src/agent/agent.ts) in this process, one per demo host, with its own agent
 * token, reading its live ruleset from a file in the demo's directory (the desired ruleset: the hosts are in sync)
 * and reporting it to the server as a host's agent does. They apply nothing (a job is refused) and probe nothing.
 */
function startAgents(r: Running, url: string, tokens: Readonly<Record<string, string>>, err: (t: string) => void) {
  r.agents = Object.keys(DEMO_HOSTS).map((host) => {
    const stateDir = join(r.dir, 'agents', host);
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const liveFile = join(stateDir, 'live.nft');
    writeFileSync(liveFile, DESIRED_NFT, { mode: 0o600 });
    const agent = new Agent({
      server: url,
      token: tokens[host] as string,
      stateDir,
      exec: NO_KERNEL,
      liveFile,
      pollMs: 2000,
      monitor: false,
      traffic: false,
      // Its progress lines are noise here; what went wrong is the reader's to see.
      log: (line) => {
        if (/fail|refused|error/i.test(line)) err(`agent ${host}: ${line}\n`);
      },
    });
    const running = agent.run({ firewall: 'nftables', tables: ['inet filter'] }).catch((e: Error) => {
      err(`agent ${host} stopped: ${e.message}\n`);
    });
    return { agent, running };
  });
}

async function api(
  url: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  if (res.status >= 400) {
    throw new Error(`${method} ${path} answered ${res.status}: ${String(parsed.detail ?? text).slice(0, 500)}`);
  }
  return { status: res.status, body: parsed };
}

/** Starts `rampart serve` and resolves with its URL once it listens. */
function serve(r: Running, listen: string, err: (text: string) => void): Promise<string> {
  const env = { ...process.env };
  // The example's own SQLite store, whatever the environment points the CLI at.
  delete env.RAMPART_DB;
  delete env.RAMPART_DATA_DIR;
  const child = spawn(
    process.execPath,
    [
      MAIN,
      'serve',
      '--data-dir',
      r.dir,
      '--config',
      join(r.dir, 'rampart.yaml'),
      '--listen',
      listen,
      '--log-level',
      'warn',
    ],
    { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  r.child = child;
  return new Promise((resolve, reject) => {
    let out = '';
    let listening = false;
    const timer = setTimeout(() => reject(new Error(`rampart serve did not listen within 120 s:\n${out}`)), 120_000);
    const take = (d: Buffer) => {
      const text = d.toString();
      if (listening) {
        // The server's warnings and errors, after it started, are the reader's to see.
        err(text.replace(/^(?=.)/gm, 'serve: '));
        return;
      }
      out += text;
      // serve reports a failed listen (the port taken) but its other services keep it running: stop waiting.
      if (/EADDRINUSE|EADDRNOTAVAIL|EACCES/.test(out)) {
        clearTimeout(timer);
        reject(
          new UserError(
            'RAMPART_ERR_USAGE',
            `rampart serve cannot listen on ${listen}: ${/(listen \S+:[^\n]*)/.exec(out)?.[1] ?? out.trim()}; give another address, e.g. npm start -- --listen 127.0.0.1:0`,
          ),
        );
        return;
      }
      const m = /rampart: listening on (\S+)/.exec(out);
      if (m) {
        listening = true;
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!listening) {
        reject(
          new UserError(
            'RAMPART_ERR_USAGE',
            `rampart serve exited (${signal ?? code}) before listening:\n${out.trim()}`,
          ),
        );
      }
    });
  });
}

/** Stops what runs (server first, with SIGTERM, then the shop) and removes the directory. */
async function stop(r: Running): Promise<number> {
  let code = 0;
  // The agents first (they would only log the server's absence), each after its current wait.
  for (const a of r.agents ?? []) a.agent.stop();
  await Promise.race([
    Promise.all((r.agents ?? []).map((a) => a.running)),
    new Promise((done) => setTimeout(done, 5000).unref()),
  ]);
  const child = r.child;
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<number>((done) => child.once('exit', (c, s) => done(c ?? (s ? 1 : 0))));
    child.kill('SIGTERM');
    // The server stops its monitors, detectors and planner and closes the store first: seconds when idle, but it
    // took over 15 s on a machine at load 12 (the demo then killed it and exited 1). A minute, then it is killed.
    const forced = setTimeout(() => {
      process.stderr.write('rampart demo: the server did not stop within 60 s of SIGTERM: killing it\n');
      child.kill('SIGKILL');
    }, 60_000);
    code = await exited;
    clearTimeout(forced);
  } else if (child) {
    code = child.exitCode ?? 1;
  }
  await r.shop?.close();
  rmSync(r.dir, { recursive: true, force: true });
  return code;
}

/**
 * Starts the demo and resolves once it serves; `done` resolves with the exit code after SIGINT or SIGTERM (or the
 * server's own exit). A signal during the start stops what was started and removes the directory too.
 */
export async function startLiveDemo(o: LiveDemoOptions): Promise<LiveDemo> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-demo-'));
  const r: Running = { dir };
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });
  let stopping: Promise<number> | undefined;
  const shutdown = (why: string, code?: number): Promise<number> => {
    if (!stopping) {
      o.err(`rampart demo: ${why}: stopping the server and the shop, removing ${dir}\n`);
      stopping = stop(r).then((c) => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        process.off('exit', onExit);
        const result = code ?? c;
        finish(result);
        return result;
      });
    }
    return stopping;
  };
  const onSignal = (signal: NodeJS.Signals) => void shutdown(signal);
  // A crash of the demo itself still takes the server with it.
  const onExit = () => r.child?.kill('SIGTERM');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.once('exit', onExit);
  try {
    const shop = await startShop();
    r.shop = shop;
    writeFileSync(join(dir, 'rampart.yaml'), demoConfig(shop.port), { mode: 0o600 });
    const tokens = {} as Record<Person, string>;
    const agentTokens: Record<string, string> = {};
    const store = await openStore({ dataDir: dir });
    let history: Awaited<ReturnType<typeof writeHistory>> | undefined;
    try {
      const nowMs = Date.now();
      await store.write(ACTOR, async (w) => {
        for (const [name, role] of Object.entries(PEOPLE) as [Person, Role][]) {
          const t = generateToken();
          const rec = await w.insertToken({
            id: t.id,
            name,
            role,
            secretHash: t.secretHash,
            createdAt: new Date(nowMs).toISOString(),
            createdBy: ACTOR.name,
          });
          await w.audit({ action: 'token.create', target: `token:${rec.id}`, after: { id: rec.id, name, role } });
          tokens[name] = t.token;
        }
        for (const host of Object.keys(DEMO_HOSTS)) {
          // The host's agent token (named as the host, as `rampart token create --role agent --name web1` makes it).
          const t = generateToken();
          const rec = await w.insertToken({
            id: t.id,
            name: host,
            role: 'agent',
            secretHash: t.secretHash,
            createdAt: new Date(nowMs).toISOString(),
            createdBy: ACTOR.name,
          });
          await w.audit({
            action: 'token.create',
            target: `token:${rec.id}`,
            after: { id: rec.id, name: host, role: 'agent' },
          });
          agentTokens[host] = t.token;
          const d = await w.setDesired({
            host,
            format: 'nft-text',
            ruleset: DESIRED_NFT,
            changeId: null,
            updatedAt: new Date(nowMs).toISOString(),
          });
          await w.audit({
            action: 'demo.desired',
            target: `host:${host}`,
            after: { revision: d.revision, reason: 'the ruleset restored at the end of the founding outage' },
          });
        }
      });
      const seeded = await writeHistory(store, nowMs);
      history = seeded;
      await store.write(ACTOR, (w) =>
        w.audit({
          action: 'demo.history',
          target: 'demo',
          after: {
            note: 'history written by rampart demo with past times: the founding outage replayed, 90 days of probes',
            ...seeded,
          },
        }),
      );
    } finally {
      await store.close();
    }
    const seeded = history;
    if (!seeded) throw new Error('the example history was not written');

    if (stopping) throw new UserError('RAMPART_ERR_USAGE', 'stopped while starting');
    const url = await serve(r, o.listen, o.err);
    startAgents(r, url, agentTokens, o.err);
    // The change that repeats the founding outage, proposed by alice through the API: the plan refuses it.
    const proposed = await api(url, tokens.alice, 'POST', '/changes', OUTAGE_CHANGE);
    const changeId = (proposed.body.change as { id: number }).id;
    let view = proposed.body;
    for (let i = 0; (view.change as { state: string }).state === 'planning'; i++) {
      if (i > 600) throw new Error(`change ${changeId} was still planning after 120 s`);
      await new Promise((done) => setTimeout(done, 200));
      view = (await api(url, tokens.alice, 'GET', `/changes/${changeId}`)).body;
    }
    const plan = view.plan as
      | { blocked?: boolean; plan?: { blockers?: { host: string; message: string }[] } }
      | undefined;
    // The postmortem: the server drafts version 1 from the timeline; alice adds the measures as version 2.
    const pm = (await api(url, tokens.alice, 'GET', `/incidents/${seeded.incidentId}/postmortem`)).body as {
      markdown: string;
      version: number;
    };
    const withMeasures = pm.markdown.replace(/^- None decided yet\.$/m, MEASURES.map((m) => `- ${m}`).join('\n'));
    if (withMeasures !== pm.markdown) {
      await api(url, tokens.alice, 'PUT', `/incidents/${seeded.incidentId}/postmortem`, {
        markdown: withMeasures,
        version: pm.version,
      });
    }

    if (stopping) throw new UserError('RAMPART_ERR_USAGE', 'stopped while starting');
    const blocker = plan?.plan?.blockers?.[0];
    o.out(
      [
        '',
        `Rampart is serving the shop of the founding outage (rampart serve, SQLite in ${dir}):`,
        '',
        `  dashboard    ${url}/`,
        `  sign in      ${tokens.admin}   (an admin token)`,
        `  status page  ${url}/status`,
        `  the shop     ${shop.urls.web1}/ (web1) and ${shop.urls.web2}/ (web2), probed every ${PROBE_INTERVAL_S} s`,
        `  agents       web1 and web2: the real agent, reporting a live ruleset read from a file (no root, nothing applied)`,
        `  change ${changeId}     the founding outage's edit proposed again: ${plan?.blocked ? 'blocked at plan' : `NOT blocked (${String((view.change as { state: string }).state)})`}${blocker ? ` (${blocker.host}: ${blocker.message})` : ''}`,
        `  incident ${seeded.incidentId}   the founding outage replayed on ${seeded.outageDay} (14:00 to 16:00 GMT+3), with its timeline and postmortem`,
        '',
        'Stop it with Ctrl-C: the server and the shop stop and the directory is removed.',
        '',
      ].join('\n'),
    );

    r.child?.once('exit', (code, signal) => void shutdown(`the server exited (${signal ?? code})`, 1));
    return { url, dir, token: tokens.admin, done };
  } catch (e) {
    await shutdown(`could not start: ${(e as Error).message.split('\n')[0]}`, 1);
    throw e;
  }
}
