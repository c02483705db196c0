/**
 * Issue 16 §7 in the shop lab, with real parts: HAProxy, two shop apps, nftables in each web server's namespace,
 * `rampart serve` with an agent per web server, and a webhook receiver next to the server. The policy has a freeze
 * window all week, so every apply is an emergency change (with its reason, flagged and audited): the path an
 * incident's fix takes.
 *
 * Steady customers shop through HAProxy the whole time (the agents count their requests in the access logs, the
 * traffic baseline learns their rate), and the shop's runbook is in the lab's rampart.yaml.
 *
 * 1. The founding outage by hand (the nft edit on web1 and web2): an incident is declared automatically; its
 *    timeline holds the drift, the first failing probe, the alert and the notification, in that order; the
 *    notification carries the shop's runbook; the suspected cause is the drifted live ruleset on web1 and web2;
 *    `rampart incident remediate` proposes the desired ruleset again, bob approves, alice applies it as an
 *    emergency; the shop recovers; the postmortem is generated (root cause prefilled from the suspect) and MTTD,
 *    MTTA and MTTR are printed. The incident's estimated share of requests lost is checked against the share the
 *    customers themselves saw fail over the incident's interval.
 * 2. A forced bad change through Rampart ("allow traffic only from trusted sources": the shop only from the admin
 *    network, so the server's own confirmation passes): overridden by the admin, approved by bob, applied by alice
 *    as an emergency; the new incident names that change as the suspect, with its author and approver.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Impact } from '../../src/incident/impact.js';
import {
  BASELINE_RULESET,
  LAB_RUNBOOK_PATH,
  type RampartLab,
  SERVER_URL,
  startRampart,
} from '../../src/lab/rampart-lab.js';
import {
  createShopLab,
  distScript,
  SHOP_ADDRESSES,
  SHOP_URL,
  type ShopLab,
  type SpawnedProcess,
  shopLabUnavailable,
  startShop,
} from '../../src/lab/shop-lab.js';
import type { SteadyReport } from '../../src/lab/steady-client.js';
import type { MonitorView } from '../../src/server/monitoring.js';
import type { SuspectsView } from '../../src/server/suspects.js';
import { ensureBuilt, main, root } from '../cli/cli.js';

const OUTAGE = join(root, 'test', 'fixtures', 'nftables', 'founding-outage.nft');
const CHILD = join(root, 'test', 'alerting', 'receivers-child.mjs');
const skip = shopLabUnavailable(['ip', 'haproxy', 'nft']);
if (skip && process.env.CI === 'true') throw new Error(`CI needs the incident lab scenarios: ${skip}`);

const SMTP_PORT = 2526;
const HTTP_PORT = 8026;
/** Customers' requests per second through HAProxy (each on a new connection). */
const CUSTOMER_RATE = 20;
const figures: string[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

type Entry = { kind: string; at: string; text: string; key: string };
type IncidentView = {
  id: number;
  title: string;
  status: string;
  services: string[];
  startedAt: string;
  response: { mttdMs: number; mttaMs: number | null; mttrMs: number | null };
};
type Change = { change: { id: number; state: string; emergency?: { by: string } | null } };

const ALERTING = `alerting:
  external_url: ${SERVER_URL}
  receivers:
    - name: team
      webhook_configs: [{url: "http://127.0.0.1:${HTTP_PORT}/team"}]
  route:
    receiver: team
    group_by: [service]
incidents:
  auto-declare: severity >= critical
  severity: SEV1
  reopen-window: 0s
`;

/**
 * The founding intent, deployed wrongly through Rampart: the shop only from "trusted sources" (the admin network and
 * the web servers themselves), so the server's confirmation and the peers' checks pass while the load balancer and
 * the customers are dropped.
 */
const TRUSTED_ONLY = BASELINE_RULESET.replace(
  'tcp dport 80 accept comment "the shop"',
  `tcp dport 80 ip saddr { ${SHOP_ADDRESSES.srv}, ${SHOP_ADDRESSES.web1}, ${SHOP_ADDRESSES.web2} } accept comment "trusted sources only"`,
);

describe.skipIf(skip !== undefined)('incidents in the shop lab (suspect, remediate, postmortem)', () => {
  let lab: ShopLab;
  let r: RampartLab;
  let records: string;
  let customers: SpawnedProcess;
  const customersReport = (n: number) => join(lab.paths.dir, `customers-${n}.json`);
  /** Steady customers in the client namespace until stopped (their report is written when they stop). */
  const startCustomers = (n: number) =>
    lab.spawnIn(
      'client',
      [
        process.execPath,
        distScript('steady-client.js'),
        '--url',
        SHOP_URL,
        '--rate',
        String(CUSTOMER_RATE),
        '--duration',
        '1200',
        '--out',
        customersReport(n),
      ],
      { label: `customers-${n}` },
    );

  async function until<T>(what: string, get: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await get();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`${what} did not happen in ${ms} ms`);
      await sleep(150);
    }
  }
  const cli = async (who: 'admin' | 'alice' | 'bob', ...args: string[]) => {
    const got = await r.cli(who, ...args);
    if (got.code !== 0 && got.code !== 1) throw new Error(`rampart ${args.join(' ')}: ${got.stderr}`);
    return got;
  };
  const json = async <T>(...args: string[]): Promise<T> => {
    const got = await r.cli('admin', ...args, '--json');
    if (got.stdout.trim() === '') throw new Error(`rampart ${args.join(' ')}: ${got.stderr}`);
    return JSON.parse(got.stdout) as T;
  };
  const monitors = async () => (await json<{ monitors: MonitorView[] }>('monitors')).monitors;
  const allUp = async () => {
    const ms = await monitors();
    return ms.length > 0 && ms.every((m) => m.state === 'UP') ? true : undefined;
  };
  const openIncident = async (after: number) => {
    let seen: IncidentView[] = [];
    try {
      return await until('an incident declared by the policy', async () => {
        seen = (await r.api<{ incidents: IncidentView[] }>('bob', 'GET', '/incidents')).incidents;
        // The start may be moved back to when the traffic drop began (the start of its 10 s point).
        return seen.find(
          (i) => i.services.includes('shop') && i.status !== 'resolved' && Date.parse(i.startedAt) >= after - 15_000,
        );
      });
    } catch (e) {
      const list = seen
        .map((i) => `${i.id} ${i.status} '${i.title}' [${i.services}] started ${i.startedAt}`)
        .join('; ');
      throw new Error(`${(e as Error).message}; after ${new Date(after).toISOString()} the incidents were: ${list}`);
    }
  };
  /** The shop's alerts firing now (TrafficDrop resolves once traffic is back in its band for 10 s). */
  const shopFiring = async () =>
    (await r.api<{ alerts: { labels: Record<string, string> }[] }>('bob', 'GET', '/alerts?state=firing')).alerts.filter(
      (a) => a.labels.service === 'shop',
    );
  const suspects = (id: number) => json<SuspectsView>('incident', 'suspects', String(id));
  const hooked = () =>
    existsSync(records)
      ? readFileSync(records, 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as { kind: string; at: number })
      : [];
  const nftFile = (host: 'web1' | 'web2', file: string) => lab.exec[host].run(['nft', '-f', file]);
  /** Approved by bob, applied by alice as an emergency (the freeze window): waits until it is applied. */
  async function approveAndApply(id: number, why: string): Promise<Change> {
    await cli('bob', 'change', 'approve', String(id));
    await cli('alice', 'change', 'apply', String(id), '--emergency', why);
    return until(
      `change ${id} applied`,
      async () => {
        const c = await json<Change>('change', 'show', String(id));
        if (c.change.state === 'failed' || c.change.state === 'rolled-back')
          throw new Error(`change ${id} ${c.change.state}`);
        return c.change.state === 'applied' ? c : undefined;
      },
      90_000,
    );
  }

  beforeAll(async () => {
    ensureBuilt();
    lab = await createShopLab();
    const baseline = join(lab.paths.dir, 'baseline.nft');
    writeFileSync(baseline, `flush ruleset\n${BASELINE_RULESET}`);
    for (const h of ['web1', 'web2'] as const) await nftFile(h, baseline);
    await startShop(lab);
    customers = startCustomers(1);
    records = join(lab.paths.dir, 'received.jsonl');
    lab.spawnIn('srv', [process.execPath, CHILD, records, String(SMTP_PORT), String(HTTP_PORT)], {
      label: 'receivers',
    });
    await until('the receivers in srv', () => (hooked().some((x) => x.kind === 'ready') ? true : undefined), 30_000);
    r = await startRampart(lab, main, {
      pollMs: 300,
      monitor: { intervalMs: 1000, timeoutMs: 500 },
      desired: { web1: BASELINE_RULESET, web2: BASELINE_RULESET },
      freeze: true,
      alerting: ALERTING,
      traffic: { logDir: lab.paths.dir },
    });
    await until('every monitor UP', allUp, 90_000);
  }, 180_000);
  afterAll(async () => {
    await lab?.destroy();
    if (figures.length) console.log(`incident lab figures:\n  ${figures.join('\n  ')}`);
  });

  it('1. the founding outage by hand: declared, the drift suspected on web1 and web2, remediated, postmortem', async () => {
    // the traffic baseline knows the customers' rate on both web servers (three 10 s slots of them)
    await until(
      'an expected request rate for web1 and web2',
      async () => {
        const t = (await r.api<{ traffic: { host?: string; expected: number | null }[] }>('bob', 'GET', '/traffic'))
          .traffic;
        return ['web1', 'web2'].every((h) => (t.find((x) => x.host === h)?.expected ?? 0) > 1) ? true : undefined;
      },
      120_000,
    );
    const edit = Date.now();
    await Promise.all([nftFile('web1', OUTAGE), nftFile('web2', OUTAGE)]);
    const inc = await openIncident(edit);
    figures.push(`founding outage: edit -> incident declared: ${secs(Date.now() - edit)}`);
    await cli('alice', 'incident', 'ack', String(inc.id));
    // the right suspect: the drift on both web servers
    const v = await until('the drift on web1 and web2 suspected', async () => {
      const s = await suspects(inc.id);
      const hosts = s.candidates.filter((c) => c.suspected && c.kind === 'drift').map((c) => c.host);
      return hosts.includes('web1') && hosts.includes('web2') ? s : undefined;
    });
    figures.push(`founding outage: edit -> the right suspect (drift on web1 and web2): ${secs(Date.now() - edit)}`);
    expect(v.verdict).toBe('suspected');
    expect(v.candidates[0]).toMatchObject({ kind: 'drift', author: null, rule: 'policy drop of inet filter/input' });
    expect(v.candidates[0]?.breaks[0]?.acceptedBefore[0]).toContain('tcp dport 80 accept');

    // the timeline: the drift, the first failing probe, the alert, the notification, in that order
    // Wait for every kind read below: monitoring writes its events in batches (EVENT_DELAY_MS), so under load the
    // agents' FirewallDrift can be notified and the suspect named before the first failing probe is stored.
    const kinds = ['host.drift', 'monitor.vantage', 'alert.fired', 'notification.sent', 'incident.suspect'];
    const timeline = await until(
      'the drift, the failing probe, the alert, the notification on the timeline',
      async () => {
        const t = (await json<{ timeline: Entry[] }>('incident', 'show', String(inc.id))).timeline;
        return kinds.every((k) => t.some((e) => e.kind === k)) ? t : undefined;
      },
    );
    const first = (kind: string) => {
      const e = timeline.find((x) => x.kind === kind);
      expect(e, kind).toBeDefined();
      return Date.parse(e?.at as string);
    };
    const [drift, probe, alert, sent] = ['host.drift', 'monitor.vantage', 'alert.fired', 'notification.sent'].map(
      first,
    ) as [number, number, number, number];
    figures.push(
      `founding outage timeline after the edit: drift ${secs(drift - edit)}, first failing probe ${secs(probe - edit)}, alert ${secs(alert - edit)}, notification ${secs(sent - edit)}`,
    );
    // The edit is dated by when web1's or web2's agent read it (it reads every 2 s): it may come just after the
    // first failing probe, and the figure above says by how much; the rest is in order.
    // The first alert in the incident's scope may be web1's FirewallDrift when an agent read the edit before the
    // first probe failed (seen at 0.2 s against 1.5 s): it follows the first sign of the outage, whichever it was.
    expect(Math.min(probe, drift)).toBeLessThanOrEqual(alert);
    expect(alert).toBeLessThanOrEqual(sent);
    expect(drift).toBeLessThanOrEqual(first('incident.suspect'));
    expect(timeline.filter((e) => e.kind === 'incident.suspect')).toHaveLength(1);
    // the shop's notification carries its runbook (rampart.yaml in the lab names it). The first one sent may be the
    // agents' FirewallDrift (no runbook: it is the host's, not the shop's), and the shop's alert follows it by a
    // group wait: wait for it rather than read the receiver once (it came after the drift's under load).
    const runbooks = () =>
      (hooked().filter((x) => x.kind === 'http') as unknown as { body: string }[])
        .flatMap((h) => (JSON.parse(h.body) as { alerts: { annotations: Record<string, string> }[] }).alerts)
        .map((a) => a.annotations.runbook);
    await until("the shop's notification with its runbook", () =>
      runbooks().includes(LAB_RUNBOOK_PATH) ? true : undefined,
    );
    const shown = (await cli('bob', 'incident', 'show', String(inc.id))).stdout;
    expect(shown).toContain('suspected cause:');
    expect(shown).toMatch(/SUSPECTED drift:\d+ on web[12]/);

    // remediate: the desired ruleset proposed again, reviewed, applied as an emergency; the shop recovers
    const rem = await cli('alice', 'incident', 'remediate', String(inc.id), '-m', 'the shop is down');
    expect(rem.stdout).toMatch(/restoration of the desired ruleset proposed for drift:\d+ on web[12], web[12]/);
    // planned within the server's 2 s wait, or still `planning` on a loaded machine: wait for its plan
    const fixId = Number(/change (\d+) (?:planned|planning)/.exec(rem.stdout)?.[1]);
    expect(fixId).toBeGreaterThan(0);
    await until('the fix planned', async () =>
      (await json<Change>('change', 'show', String(fixId))).change.state === 'planned' ? true : undefined,
    );
    const remediated = Date.now();
    const fixed = await approveAndApply(fixId, `incident ${inc.id}: restore the desired ruleset`);
    expect(fixed.change.emergency?.by).toBe('alice');
    await until('every monitor UP after the remediation', allUp, 60_000);
    figures.push(`founding outage: remediate -> shop recovered (every monitor UP): ${secs(Date.now() - remediated)}`);
    const after = (await json<{ timeline: Entry[] }>('incident', 'show', String(inc.id))).timeline.map((e) => e.kind);
    for (const k of ['incident.remediate', 'change.proposed', 'change.approved', 'change.applied'])
      expect(after, k).toContain(k);

    // resolved when the traffic is back in its band too (else the still-firing TrafficDrop would open another)
    await until('the shop’s alerts resolved', async () => ((await shopFiring()).length === 0 ? true : undefined));
    await cli('alice', 'incident', 'resolve', String(inc.id), '-m', 'the desired ruleset is back on web1 and web2');
    // the customers' own count: the next ones take over first (a few seconds of both is more traffic, never a drop
    // the detector would open another incident for), so the shop's traffic never stops
    const previous = customers;
    customers = startCustomers(2);
    await sleep(5000);
    await lab.kill(previous, 5000);
    const pm = (await cli('bob', 'incident', 'postmortem', String(inc.id))).stdout;
    writeFileSync(join(lab.paths.dir, 'founding-postmortem.md'), pm);
    if (process.env.RAMPART_WRITE_EXAMPLES === '1')
      writeFileSync(join(root, 'docs', 'examples', 'founding-postmortem-lab.md'), pm);
    expect(pm).toMatch(/^# Postmortem: /);
    expect(pm).toMatch(
      /\*\*Root Cause:\*\* Suspected by Rampart: An out-of-band edit of the firewall \(drift\) on web/,
    );
    for (const s of ['## Issue Summary', '## Timeline', '## Root Cause and Resolution', '## TODO'])
      expect(pm).toContain(s);
    const done = (await json<{ incident: IncidentView }>('incident', 'show', String(inc.id))).incident;
    const { mttdMs, mttaMs, mttrMs } = done.response;
    expect(mttaMs).not.toBeNull();
    expect(mttrMs).not.toBeNull();
    figures.push(
      `founding outage: MTTD ${secs(mttdMs)}, MTTA ${secs(mttaMs as number)}, MTTR ${secs(mttrMs as number)}`,
    );

    // Impact, estimated from the access logs against the baseline, vs what the customers saw fail. The agents send
    // 5 s windows: wait until the incident's interval is measured to its end.
    const impact = await until('the incident’s interval measured', async () => {
      const i = (await r.api<{ impact: Impact }>('bob', 'GET', `/incidents/${inc.id}`)).impact;
      return i.overall.measuredMs >= i.durationMs - 10_000 ? i : undefined;
    });
    const report = JSON.parse(readFileSync(customersReport(1), 'utf8')) as SteadyReport;
    const [from, to] = [Date.parse(impact.startedAt), Date.parse(impact.endedAt)];
    expect(report.startedAt).toBeLessThan(from);
    expect(report.endedAt).toBeGreaterThan(to);
    const failed = report.failures.filter((f) => f.at >= from && f.at < to).length;
    const sentIn = (CUSTOMER_RATE * (to - from)) / 1000;
    const measured = failed / sentIn;
    const estimated = impact.overall.lostShare as number;
    figures.push(
      `founding outage impact over ${secs(to - from)}: estimated ${(estimated * 100).toFixed(1)}% of requests lost (${impact.overall.observedRequests} of ${impact.overall.expectedRequests}), customers saw ${(measured * 100).toFixed(1)}% fail (${failed} of ${Math.round(sentIn)})`,
    );
    // Every request failed from the edit to the fix; the interval also holds the 10-20 s until the traffic was back
    // in its band (52-68% failed in the runs of bench/RESULTS.md): a large share, and the estimate agrees with it.
    expect(measured).toBeGreaterThan(0.3);
    expect(Math.abs(estimated - measured)).toBeLessThanOrEqual(0.15);
    expect(impact.services.map((s) => s.service)).toEqual(['shop']);
  }, 240_000);

  it('2. a forced bad change through Rampart is named as the suspect with its author and approver', async () => {
    const file = join(lab.paths.dir, 'trusted-only.nft');
    writeFileSync(file, TRUSTED_ONLY);
    const p = await cli('alice', 'change', 'propose', file, '--group', 'web', '--reason', 'allow only trusted sources');
    const id = Number(/change (\d+)/.exec(p.stdout)?.[1]);
    expect(id).toBeGreaterThan(0);
    // it closes the public shop: blocked until the admin overrides it
    await cli('admin', 'change', 'override', String(id), '--reason', 'forced: security asked for it');
    const applyAt = Date.now();
    await approveAndApply(id, 'security asked for it today');
    const inc = await openIncident(applyAt);
    const v = await until('the change suspected', async () => {
      const s = await suspects(inc.id);
      return s.candidates[0]?.suspected && s.candidates[0].kind === 'change' ? s : undefined;
    });
    figures.push(`forced bad change: apply -> the change named as the suspect: ${secs(Date.now() - applyAt)}`);
    expect(v.candidates[0]).toMatchObject({
      changeId: id,
      author: 'alice',
      approvers: ['bob'],
      reason: 'allow only trusted sources',
    });
    expect(v.candidates[0]?.rule).toBe('policy drop of inet filter/input');
    expect(v.candidates[0]?.example).not.toContain(SHOP_ADDRESSES.srv);
    expect(v.text).toMatch(new RegExp(`^Suspected: change ${id} on web[12] by alice, approved by bob `));
    // the earlier drift was over before this incident began: not a candidate
    expect(v.candidates.some((c) => c.kind === 'drift' && c.suspected)).toBe(false);
    const rem = JSON.parse((await cli('alice', 'incident', 'remediate', String(inc.id), '--json')).stdout) as {
      kind: string;
      suspect: { id: string; hosts: string[] };
      changes: { change: { id: number; rollbackOf: number | null } }[];
    };
    expect(rem).toMatchObject({ kind: 'rollback', suspect: { id: String(id) } });
    expect(rem.suspect.hosts.sort()).toEqual(['web1', 'web2']);
    const back = rem.changes[0]?.change.id as number;
    expect(rem.changes[0]?.change.rollbackOf).toBe(id);
    await until('the rollback planned', async () =>
      (await json<Change>('change', 'show', String(back))).change.state === 'planned' ? true : undefined,
    );
    await approveAndApply(back, `incident ${inc.id}: roll back change ${id}`);
    await until('every monitor UP after the rollback', allUp, 60_000);
  }, 240_000);
});
