/**
 * Runs drills (src/lab/drills/scenarios.ts) in the shop lab (issue 18): builds the lab once — namespaces, HAProxy,
 * the two shop apps with nftables, `rampart serve` with agents and monitors, alerting to a webhook receiver next to
 * the server — then, per scenario: steady customers through HAProxy, the fault, a scripted responder (acknowledges
 * the page after a set delay, then runs the scenario's remediation), the wait for recovery, the clean-up, and the
 * observation scored by src/lab/drills/score.ts.
 *
 * Everything touches only the lab's own namespaces (lab.exec / lab.spawnIn); the server is read and driven through
 * the rampart CLI run in the client namespace as the lab's people, as an operator's workstation would.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Alert } from '../../alerting/types.js';
import type { MonitorView } from '../../server/monitoring.js';
import { BASELINE_RULESET, type RampartLab, SERVER_URL, startRampart } from '../rampart-lab.js';
import {
  createShopLab,
  distScript,
  isRunning,
  SHOP_URL,
  type ShopLab,
  type SpawnedProcess,
  startShop,
} from '../shop-lab.js';
import type { SteadyReport } from '../steady-client.js';
import { parseRecords, type ReceivedPage } from './receiver.js';
import { DRILL_RULESETS, type DrillAction, type DrillProcess, type DrillScenario } from './scenarios.js';
import { type DrillObservation, type DrillScore, scoreDrill } from './score.js';

export const RECEIVER_PORT = 8025;
const HOOKS = `http://127.0.0.1:${RECEIVER_PORT}`;
/** The person on call in the drills' schedule (the scripted responder acknowledges as them). */
export const ON_CALL = 'alice';

export interface DrillLabOptions {
  /** The built CLI (dist/cli/main.js) the lab's server, agents and the responder run. */
  readonly main: string;
  /** Also count the shop's traffic from the access logs (partial-block needs it; a baseline takes about a minute). */
  readonly traffic?: boolean;
  /** Monitors' interval (default 1000 ms). */
  readonly monitorIntervalMs?: number;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

export interface DrillRunOptions {
  /** How long the scripted responder takes to acknowledge the page (default 2000 ms). */
  readonly ackDelayMs?: number;
  /** All customers' requests per second together (default 20). */
  readonly rate?: number;
  /** Longest wait for the page, then for recovery (default 90 s each). */
  readonly deadlineMs?: number;
}

export interface DrillResult {
  readonly scenario: string;
  readonly skipped?: string;
  readonly observation?: DrillObservation;
  readonly score?: DrillScore;
  /** The incident Rampart declared during the drill, with its generated postmortem (Markdown), when there is one. */
  readonly incident?: { readonly id: number; readonly postmortem: string };
  /** What went wrong running the drill itself (not the response being scored). */
  readonly error?: string;
}

export interface DrillLab {
  readonly lab: ShopLab;
  readonly rampart: RampartLab;
  run(scenario: DrillScenario, opts?: DrillRunOptions): Promise<DrillResult>;
  destroy(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The responder's acknowledgement, in one process in the client namespace (one `rampart alerts ack` per alert took
 * 30 s on a loaded two-core machine): every firing alert that started since the fault, acknowledged through the API
 * as the person on call. Prints the HTTP statuses.
 */
const ACK_SCRIPT = `const [url, token, since] = process.argv.slice(1);
const h = { authorization: 'Bearer ' + token };
(async () => {
  const { alerts } = await (await fetch(url + '/api/v1/alerts?state=firing', { headers: h })).json();
  const todo = alerts.filter((a) => !a.ack && Date.parse(a.startsAt) >= Number(since));
  const st = await Promise.all(todo.map((a) => fetch(url + '/api/v1/alerts/' + a.fingerprint + '/ack',
    { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: '{}' }).then((r) => r.status)));
  process.stdout.write(JSON.stringify(st));
})().catch((e) => { process.stderr.write(String(e)); process.exit(1); });`;

async function until<T>(what: string, ms: number, get: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what} did not happen within ${ms} ms`);
    await sleep(200);
  }
}

/** The drills' rampart.yaml alerting: a team webhook, the person on call paged at once, short group timers. */
export function drillAlertingYaml(): string {
  return `alerting:
  external_url: ${SERVER_URL}
  receivers:
    - name: team
      webhook_configs: [{url: "${HOOKS}/team", send_resolved: true}]
  users:
    - {name: alice, webhook: "${HOOKS}/alice"}
    - {name: bob, webhook: "${HOOKS}/bob"}
  schedules:
    - name: web-primary
      time_zone: UTC
      layers:
        - {rotation: weekly, handoff: "mon 09:00", start: 2026-11-30, participants: [${ON_CALL}]}
  escalation_policies:
    - name: web
      steps:
        - {notify: [{schedule: web-primary}], wait: 10m}
  route:
    receiver: team
    group_by: [service]
    group_wait: 1s
    group_interval: 2s
    routes:
      - matchers: ['severity="critical"']
        escalation: web
`;
}

export async function startDrillLab(opts: DrillLabOptions): Promise<DrillLab> {
  const log = opts.log ?? (() => {});
  const lab = await createShopLab();
  try {
    const file = (name: string, text: string) => {
      const p = join(lab.paths.dir, name);
      writeFileSync(p, text);
      return p;
    };
    const baseline = file('baseline.nft', `flush ruleset\n${BASELINE_RULESET}`);
    for (const h of ['web1', 'web2'] as const) await lab.exec[h].run(['nft', '-f', baseline]);
    log('lab: starting the shop (two shop apps, HAProxy)');
    const shop = await startShop(lab);
    const procs: Record<DrillProcess, SpawnedProcess> = { 'web2-app': shop.apps.web2, haproxy: shop.haproxy };
    const records = join(lab.paths.dir, 'pages.jsonl');
    lab.spawnIn('srv', [process.execPath, distScript('drills/receiver.js'), records, String(RECEIVER_PORT)], {
      label: 'receiver',
    });
    const received = () => (existsSync(records) ? parseRecords(readFileSync(records, 'utf8')) : []);
    await until('the page receiver to listen', 30_000, () =>
      received().some((x) => x.kind === 'ready') ? 1 : undefined,
    );
    log('lab: starting rampart serve and the agents');
    const r = await startRampart(lab, opts.main, {
      pollMs: 300,
      monitor: { intervalMs: opts.monitorIntervalMs ?? 1000, timeoutMs: 500 },
      ...(opts.traffic ? { traffic: { logDir: lab.paths.dir } } : {}),
      desired: { web1: BASELINE_RULESET, web2: BASELINE_RULESET },
      alerting: drillAlertingYaml(),
    });
    const json = async <T>(who: 'admin' | 'alice' | 'bob', ...args: string[]): Promise<T> => {
      const got = await r.cli(who, ...args, '--json');
      if (got.stdout.trim() === '') throw new Error(`rampart ${args.join(' ')}: ${got.stderr.trim()}`);
      return JSON.parse(got.stdout) as T;
    };
    const monitorsUp = async () => {
      const ms = (await json<{ monitors: MonitorView[] }>('admin', 'monitors')).monitors;
      return ms.length >= 3 && ms.every((m) => m.state === 'UP');
    };
    const alerts = async () => (await json<{ alerts: Alert[] }>('admin', 'alerts', '--all')).alerts;
    await until('every monitor UP', 120_000, async () => ((await monitorsUp()) ? true : undefined));
    const extraAddresses = new Set<string>();

    const rulesetFile = (name: keyof typeof DRILL_RULESETS) =>
      file(`drill-${name}.nft`, name === 'baseline' ? `flush ruleset\n${BASELINE_RULESET}` : DRILL_RULESETS[name]);
    /** When the last `change` action was applied (its fault time). */
    let appliedAt: number | undefined;
    const act = async (a: DrillAction): Promise<void> => {
      switch (a.kind) {
        case 'nft':
          await Promise.all(a.hosts.map((h) => lab.exec[h].run(['nft', '-f', rulesetFile(a.ruleset)])));
          return;
        case 'nft-delete-table':
          await lab.exec[a.host].run(['nft', 'delete', 'table', 'inet', a.table], { allowFailure: true });
          return;
        case 'stop':
          await lab.kill(procs[a.process]);
          return;
        case 'start': {
          const p = procs[a.process];
          if (isRunning(p)) return;
          const again = lab.spawnIn(p.role, p.argv, { label: p.label });
          procs[a.process] = again;
          if (a.process === 'haproxy') {
            await until('HAProxy to see web1 and web2 UP', 30_000, async () => {
              const s = await lab.backendStatus().catch(() => ({}) as Record<string, string>);
              return s.web1 === 'UP' && s.web2 === 'UP' ? true : undefined;
            });
          } else {
            await lab.waitForBackend('web2', 'UP', 30_000);
          }
          return;
        }
        case 'change': {
          const p = await r.cli(
            'alice',
            'change',
            'propose',
            rulesetFile(a.ruleset),
            '--group',
            'web',
            '--reason',
            a.reason,
            '--json',
          );
          const id = String((JSON.parse(p.stdout) as { change: { id: number } }).change.id);
          if (a.override) {
            const o = await r.cli('admin', 'change', 'override', id, '--reason', a.override);
            if (o.code !== 0) throw new Error(`change override ${id}: ${o.stderr.trim()}`);
          }
          const ok = await r.cli('bob', 'change', 'approve', id);
          if (ok.code !== 0) throw new Error(`change approve ${id}: ${ok.stderr.trim()}`);
          // The fault is the apply, not the paperwork before it.
          appliedAt = Date.now();
          // --watch follows the rollout to its end; a forced bad change ends rolled back (non-zero, expected)
          await r.cli('alice', 'change', 'apply', id, '--watch', ...(a.emergency ? ['--emergency', a.emergency] : []));
          return;
        }
      }
    };

    const run = async (s: DrillScenario, ro: DrillRunOptions = {}): Promise<DrillResult> => {
      if (s.unavailable) return { scenario: s.name, skipped: s.unavailable };
      if (s.needsTraffic && !opts.traffic) {
        return { scenario: s.name, skipped: 'needs the lab started with traffic counting (--traffic)' };
      }
      const deadline = ro.deadlineMs ?? 90_000;
      const rate = ro.rate ?? 20;
      const clients = s.clients ?? [];
      for (const a of clients.slice(1)) {
        if (extraAddresses.has(a)) continue;
        await lab.exec.client.run(['ip', 'addr', 'add', `${a}/24`, 'dev', 'eth0']);
        extraAddresses.add(a);
      }
      const sources = clients.length > 0 ? clients : [undefined];
      const outs = sources.map((_, i) => join(lab.paths.dir, `steady-${s.name}-${i}.json`));
      const steady = sources.map((addr, i) =>
        lab.spawnIn(
          'client',
          [
            process.execPath,
            distScript('steady-client.js'),
            '--url',
            SHOP_URL,
            '--rate',
            String(rate / sources.length),
            '--duration',
            '900',
            '--timeout',
            '1000',
            '--out',
            outs[i] as string,
            ...(addr ? ['--local-address', addr] : []),
          ],
          { label: `steady-${s.name}-${i}` },
        ),
      );
      const steadyStart = Date.now();
      const stopSteady = async () => {
        for (const p of steady) if (isRunning(p)) p.child.kill('SIGTERM');
        await Promise.all(steady.map((p) => p.exited));
      };
      let faultAt = 0;
      let ackedAt: number | undefined;
      let mitigatedAt: number | undefined;
      let error: string | undefined;
      try {
        // Customers shop for a while first: the traffic detector needs a baseline (a few of its 10 s slots).
        await sleep(s.needsTraffic ? 75_000 : 2000);
        log(`${s.name}: injecting the fault`);
        faultAt = Date.now();
        appliedAt = undefined;
        for (const a of s.inject) await act(a);
        if (appliedAt !== undefined) faultAt = appliedAt;
        const firstPage = await until('the first page', deadline, () =>
          received().find((x): x is ReceivedPage => x.kind === 'http' && x.at >= faultAt && x.status === 'firing'),
        ).catch(() => undefined);
        log(`${s.name}: ${firstPage ? `paged after ${firstPage.at - faultAt} ms` : 'no page'}`);
        if (firstPage) {
          // The responder reads the page, then acknowledges every alert of the drill still firing.
          await sleep(Math.max(0, firstPage.at + (ro.ackDelayMs ?? 2000) - Date.now()));
          const acked = await lab.exec.client.run(
            [process.execPath, '-e', ACK_SCRIPT, SERVER_URL, r.tokens[ON_CALL], String(faultAt)],
            { timeoutMs: 60_000 },
          );
          ackedAt = Date.now();
          const statuses = JSON.parse(acked.stdout) as number[];
          // 404: the alert resolved between the list and its ack (forced-change's web1 is back within seconds)
          if (statuses.some((x) => x !== 200 && x !== 404)) {
            throw new Error(`acknowledging the alerts: HTTP ${statuses.join(', ')}`);
          }
          log(`${s.name}: ${ON_CALL} acknowledged the drill's firing alerts (HTTP ${acked.stdout.trim()})`);
        }
        if (s.remediate.length > 0) {
          for (const a of s.remediate) await act(a);
          mitigatedAt = Date.now();
          log(`${s.name}: remediation done after ${mitigatedAt - faultAt} ms`);
        }
        await until('every monitor UP again', deadline, async () => ((await monitorsUp()) ? true : undefined));
        // a few more seconds of customers, so that their recovery is seen
        await sleep(2000);
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
        log(`${s.name}: ${error}`);
      } finally {
        await stopSteady();
      }
      const endedAt = Date.now();
      const reports = outs.filter((o) => existsSync(o)).map((o) => JSON.parse(readFileSync(o, 'utf8')) as SteadyReport);
      for (const a of s.cleanup) await act(a).catch(() => {});
      const fired = (await alerts()).filter((a) => Date.parse(a.startsAt) >= faultAt);
      const pages = received().filter((x): x is ReceivedPage => x.kind === 'http' && x.at >= faultAt);
      const observation: DrillObservation = {
        scenario: s.name,
        faultAt,
        alerts: fired.map((a) => ({ labels: a.labels, startsAt: Date.parse(a.startsAt) })),
        pages: pages.map((p) => ({
          at: p.at,
          receiver: p.path,
          id: p.id,
          status: p.status === 'resolved' ? 'resolved' : 'firing',
        })),
        ...(ackedAt !== undefined ? { ackedAt } : {}),
        ...(mitigatedAt !== undefined ? { mitigatedAt } : {}),
        traffic: {
          startedAt: Math.min(steadyStart, ...reports.map((x) => x.startedAt)),
          endedAt: Math.min(endedAt, ...reports.map((x) => x.endedAt)),
          rate,
          sent: reports.reduce((n, x) => n + x.sent, 0),
          failed: reports.reduce((n, x) => n + x.failed, 0),
          failuresAt: reports.flatMap((x) => x.failures.map((f) => f.at)).sort((a, b) => a - b),
        },
        endedAt,
      };
      // The next drill starts from a quiet lab: every monitor UP and none of this drill's alerts firing.
      await until('the lab quiet again', deadline, async () => {
        if (!(await monitorsUp())) return undefined;
        const still = (await alerts()).filter(
          (a) => a.state === 'firing' && a.labels.service === 'shop' && Date.parse(a.startsAt) >= faultAt,
        );
        return still.length === 0 ? true : undefined;
      }).catch((e: unknown) => log(`${s.name}: ${e instanceof Error ? e.message : String(e)}`));
      // read once the lab is quiet, so the incident has resolved with its alerts where it does
      const incident = await postmortemSince(faultAt).catch(() => undefined);
      return {
        scenario: s.name,
        observation,
        score: scoreDrill(s, observation, Date.now()),
        ...(incident ? { incident } : {}),
        ...(error ? { error } : {}),
      };
    };

    /** The incident Rampart declared since the fault, and its generated postmortem. */
    const postmortemSince = async (since: number) => {
      const list = await json<{ incidents: { id: number; detectedAt: string }[] }>(
        'admin',
        'incident',
        'list',
        '--all',
      );
      // the first incident of the drill (the list is newest first): the outage's, not a later side incident's
      const inc = list.incidents.filter((i) => Date.parse(i.detectedAt) >= since).at(-1);
      if (!inc) return undefined;
      const pm = await r.cli('admin', 'incident', 'postmortem', String(inc.id), '--format', 'markdown');
      return pm.code === 0 ? { id: inc.id, postmortem: pm.stdout } : undefined;
    };

    return { lab, rampart: r, run, destroy: () => lab.destroy() };
  } catch (e) {
    await lab.destroy();
    throw e;
  }
}
