/**
 * Issue 6's scenarios, end to end, with real parts: HAProxy in front of two shop apps, the Rampart server and an
 * agent per web server, each in its own network namespace (src/lab/shop-lab.ts), nftables in the kernel, and the
 * rampart CLI run from the client namespace as an operator would. The figures (time to rollback, failed request
 * share, time to drift) are printed and recorded in bench/RESULTS.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASELINE_RULESET, type RampartLab, startRampart } from '../../src/lab/rampart-lab.js';
import {
  createShopLab,
  distScript,
  SHOP_URL,
  type ShopLab,
  shopLabUnavailable,
  startShop,
} from '../../src/lab/shop-lab.js';
import type { SteadyReport } from '../../src/lab/steady-client.js';
import { ensureBuilt, main, root } from '../cli/cli.js';

const OUTAGE = join(root, 'test', 'fixtures', 'nftables', 'founding-outage.nft');
const skip = shopLabUnavailable(['ip', 'haproxy', 'nft']);
if (skip && process.env.CI === 'true') throw new Error(`CI needs the agent lab scenarios: ${skip}`);

interface Event {
  jobId: number;
  host: string;
  kind: string;
  at: string;
  sourceAt: string | null;
  source: string;
  detail: string;
}
interface View {
  change: { id: number; state: string };
  jobs: { id: number; host: string; step: number; state: string }[];
  events: Event[];
  flags: string[];
}

const figures: string[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skip !== undefined)(
  'agent scenarios in the shop lab (HAProxy, two web servers, server, agents)',
  () => {
    let lab: ShopLab;
    let r: RampartLab;
    const file = (name: string, text: string) => {
      const p = join(lab.paths.dir, name);
      writeFileSync(p, text);
      return p;
    };
    // What `rampart change show --json` prints, from the API: polled, and the CLI starts node each time.
    const view = (id: number): Promise<View> => r.api<View>('bob', 'GET', `/changes/${id}`);
    const nft = async (host: 'web1' | 'web2') => (await lab.exec[host].run(['nft', 'list', 'ruleset'])).stdout;
    /** Proposes for a target, approves as bob, applies with --watch; returns the final view and the watch output. */
    async function rollout(
      ruleset: string,
      target: string[],
      reason: string,
      extra: { override?: string; emergency?: string } = {},
    ) {
      const p = await r.cli('alice', 'change', 'propose', ruleset, ...target, '--reason', reason, '--json');
      const id = (JSON.parse(p.stdout) as View).change.id;
      if (extra.override)
        expect((await r.cli('admin', 'change', 'override', String(id), '--reason', extra.override)).code).toBe(0);
      const approved = await r.cli('bob', 'change', 'approve', String(id));
      expect(approved.code, approved.stderr).toBe(0);
      const applied = await r.cli(
        'alice',
        'change',
        'apply',
        String(id),
        '--watch',
        ...(extra.emergency ? ['--emergency', extra.emergency] : []),
      );
      return { id, watch: applied, view: await view(id) };
    }

    beforeAll(async () => {
      ensureBuilt();
      lab = await createShopLab();
      await startShop(lab);
      r = await startRampart(lab, main, { confirmTimeoutSeconds: 10, pollMs: 300 });
    });
    afterAll(async () => {
      await lab?.destroy();
      if (figures.length) console.log(`agent lab figures:\n  ${figures.join('\n  ')}`);
    });

    it('1. rolls a normal change out web1 then web2, each verified', async () => {
      const base = await rollout(
        file('baseline.nft', BASELINE_RULESET),
        ['--group', 'web'],
        'take the web servers under management',
      );
      expect(base.watch.code, base.watch.stdout + base.watch.stderr).toBe(0);
      const open = file(
        'open-8443.nft',
        BASELINE_RULESET.replace('tcp dport 80 accept', 'tcp dport { 80, 8443 } accept'),
      );
      const opened = await rollout(open, ['--group', 'web'], 'open tcp/8443 for the new API');
      const watch = opened.watch;
      expect(watch.code, watch.stdout + watch.stderr).toBe(0);
      expect(opened.view.change.state).toBe('applied');
      // The change is applied when the server confirms the last host; that agent says 'committed' a moment later
      // (seen in CI on a busy machine: web2's event had not arrived when the watch ended).
      const committedHosts = (x: View) => x.events.filter((e) => e.kind === 'committed').map((e) => e.host);
      let v = opened.view;
      for (const end = Date.now() + 30_000; committedHosts(v).length < 2 && Date.now() < end; ) {
        await sleep(300);
        v = await view(opened.id);
      }
      expect(committedHosts(v)).toEqual(['web1', 'web2']);
      // web2 was handed its job only after web1 was confirmed
      const i1 = v.events.findIndex((e) => e.host === 'web1' && e.kind === 'confirmed');
      const i2 = v.events.findIndex((e) => e.host === 'web2' && e.kind === 'handed-out');
      expect(i1).toBeLessThan(i2);
      for (const h of ['web1', 'web2'] as const) expect(await nft(h)).toContain('8443');
      // two vantage points confirmed each host: the server and the other web server's agent
      expect(v.events.find((e) => e.host === 'web1' && e.kind === 'confirmed')?.detail).toMatch(/probed from web2 too/);
      expect(v.events.find((e) => e.host === 'web2' && e.kind === 'confirmed')?.detail).toMatch(/probed from web1 too/);
      expect(await lab.backendStatus()).toMatchObject({ web1: 'UP', web2: 'UP' });
      expect(watch.stdout).toMatch(/\[1\/2 web1\]\s+committed/);

      // Rolling it back is a change too, through the same review and safe path; then 8443 is closed again.
      const rb = await r.cli(
        'alice',
        'change',
        'rollback',
        String(v.change.id),
        '--reason',
        'the API launch moved',
        '--json',
      );
      expect(rb.code, rb.stderr).toBe(0);
      const rid = String((JSON.parse(rb.stdout) as { changes: View[] }).changes[0]?.change.id);
      expect((await r.cli('bob', 'change', 'approve', rid)).code).toBe(0);
      const back = await r.cli('alice', 'change', 'apply', rid, '--watch');
      expect(back.code, back.stdout + back.stderr).toBe(0);
      for (const h of ['web1', 'web2'] as const) expect(await nft(h)).not.toContain('8443');
      expect((await view(v.change.id)).change.state).toBe('rolled-back');
      const reopen = await rollout(open, ['--group', 'web'], 'open tcp/8443 again');
      expect(reopen.watch.code).toBe(0);
    });

    it('2. blocks the founding change at plan', async () => {
      const p = await r.cli(
        'alice',
        'change',
        'propose',
        OUTAGE,
        '--group',
        'web',
        '--reason',
        'block all incoming traffic',
      );
      expect(p.code).toBe(1);
      expect(p.stdout).toMatch(/BLOCKED/);
      const id = p.stdout.match(/change (\d+):/)?.[1] as string;
      const approve = await r.cli('bob', 'change', 'approve', id);
      expect(approve.code).toBe(5);
      expect(approve.stderr).toMatch(/blocked/);
    });

    it('3. forced through as an emergency, it is rolled back on web1 by itself and never reaches web2', async () => {
      const before2 = await nft('web2');
      const out = join(lab.paths.dir, 'steady-3.json');
      const client = lab.spawnIn(
        'client',
        [
          process.execPath,
          distScript('steady-client.js'),
          '--url',
          SHOP_URL,
          '--rate',
          '50',
          '--duration',
          '60',
          '--out',
          out,
        ],
        {
          label: 'steady-3',
        },
      );
      await sleep(1500);
      const { watch, view: v } = await rollout(OUTAGE, ['--group', 'web'], 'block all incoming traffic (forced)', {
        override: 'drill: forcing the founding change through to prove the rollback',
        emergency: 'drill: prove the agent rolls back a change that closes the shop',
      });
      expect(watch.code).toBe(1);
      expect(v.change.state).toBe('rolled-back');
      expect(v.jobs.map((j) => `${j.host} ${j.state}`)).toEqual(['web1 failed', 'web2 cancelled']);
      expect(v.flags.join('\n')).toMatch(/BLOCK OVERRIDDEN/);
      const applied = v.events.find((e) => e.host === 'web1' && e.kind === 'applied') as Event;
      const rolled = v.events.find((e) => e.host === 'web1' && e.kind === 'rolled-back') as Event;
      const failed = v.events.find((e) => e.kind === 'remote-health-failed');
      expect(failed?.detail).toMatch(/http 10\.88\.0\.11:80\/healthz/);
      expect(failed?.detail).toMatch(/from web2: http 10\.88\.0\.11:80\/healthz/);
      const t0 = Date.parse(applied.sourceAt ?? applied.at);
      const rollbackMs = Date.parse(rolled.sourceAt ?? rolled.at) - t0;
      // service on web1 is back: HAProxy sees it UP again
      await lab.waitForBackend('web1', 'UP', 15_000);
      // a figure (printed below), not an assertion: waitForBackend's own budget says whether it came back at all
      const restoredMs = Date.now() - t0;
      expect(await nft('web2')).toBe(before2);
      await sleep(1500);
      await lab.kill(client);
      await client.exited;
      const report = JSON.parse(readFileSync(out, 'utf8')) as SteadyReport;
      const share = report.failed / Math.max(1, report.sent);
      figures.push(
        `scenario 3: rollback ${rollbackMs} ms after apply (agent clock); web1 UP in HAProxy ${restoredMs} ms after apply; ` +
          `client ${report.failed}/${report.sent} failed (${(share * 100).toFixed(2)}%)`,
      );
      expect(report.sent).toBeGreaterThan(100);
      expect(share).toBeLessThanOrEqual(0.01);
    });

    const cutRuleset = () =>
      BASELINE_RULESET.replace(
        '\t\ttype filter hook output priority filter; policy accept;\n',
        '\t\ttype filter hook output priority filter; policy accept;\n\t\tip daddr 10.88.0.5 tcp dport 8470 drop comment "cuts the agent off"\n',
      ).replace('tcp dport { 80, 8443 }', 'tcp dport 80');

    it('4. a change that cuts the agent off from the server is rolled back within the confirm timeout', async () => {
      const { watch, view: v } = await rollout(
        file('cut.nft', cutRuleset()),
        ['--host', 'web1'],
        'tighten egress (cuts the agent off)',
      );
      expect(watch.code).toBe(1);
      expect(v.change.state).toBe('rolled-back');
      const kinds = v.events.filter((e) => e.host === 'web1' && e.source === 'agent').map((e) => e.kind);
      expect(kinds, JSON.stringify(v.events)).toEqual([
        'pending-saved',
        'applied',
        'health-ok',
        'confirm-timeout',
        'rolled-back',
      ]);
      expect(v.events.some((e) => e.kind === 'confirmed')).toBe(false);
      const at = (k: string) =>
        Date.parse((v.events.find((e) => e.host === 'web1' && e.kind === k) as Event).sourceAt as string);
      const ms = at('rolled-back') - at('applied');
      figures.push(`scenario 4: snapshot restored ${ms} ms after apply (confirm timeout 10 s), without the server`);
      expect(ms).toBeLessThan(12_000);
      expect(await nft('web1')).not.toContain('cuts the agent off');
    });

    it('5. an agent killed between apply and confirm restores the snapshot when it starts again', async () => {
      const before = await nft('web1');
      const p = await r.cli(
        'alice',
        'change',
        'propose',
        file('cut5.nft', cutRuleset()),
        '--host',
        'web1',
        '--reason',
        'cut, then kill',
        '--json',
      );
      const id = String((JSON.parse(p.stdout) as View).change.id);
      expect((await r.cli('bob', 'change', 'approve', id)).code).toBe(0);
      expect((await r.cli('alice', 'change', 'apply', id)).code).toBe(0);
      // the new ruleset is in force (applied) and the agent waits for a confirmation that cannot come: kill it now
      const t0 = Date.now();
      while (!(await nft('web1')).includes('cuts the agent off')) {
        expect(Date.now() - t0).toBeLessThan(20_000);
        await sleep(50);
      }
      process.kill(r.agents.web1.pid, 'SIGKILL');
      await r.agents.web1.exited;
      expect(await nft('web1')).toContain('cuts the agent off'); // nobody restored it yet
      r.agents.web1 = r.startAgent('web1');
      while ((await nft('web1')).includes('cuts the agent off')) {
        expect(Date.now() - t0).toBeLessThan(30_000);
        await sleep(100);
      }
      figures.push(
        `scenario 5: snapshot back ${Date.now() - t0} ms after the apply (agent killed and restarted in between)`,
      );
      expect(await nft('web1')).toBe(before);
      let v = await view(Number(id));
      while (v.change.state === 'applying') {
        await sleep(300);
        v = await view(Number(id));
      }
      expect(v.change.state).toBe('rolled-back');
      expect(v.events.some((e) => e.kind === 'recovered')).toBe(true);
    });

    it('6. reports a hand-made change inside web1 as drift within 10 s, as a semantic diff', async () => {
      const pre = await r.cli('bob', 'hosts', 'drift', 'web1');
      expect(pre.code, pre.stdout + pre.stderr).toBe(0); // in sync before the hand-made change
      const t0 = Date.now();
      await lab.exec.web1.run(['nft', 'add', 'rule', 'inet', 'filter', 'input', 'tcp', 'dport', '3306', 'accept']);
      let out = await r.cli('bob', 'hosts', 'drift', 'web1');
      while (out.code !== 1) {
        expect(Date.now() - t0).toBeLessThan(10_000);
        await sleep(250);
        out = await r.cli('bob', 'hosts', 'drift', 'web1');
      }
      figures.push(`scenario 6: drift reported ${Date.now() - t0} ms after 'nft add rule'`);
      expect(out.stdout).toMatch(/web1: DRIFT/);
      expect(out.stdout, out.stdout).toMatch(/input drop -> accept: .*3306/);
      await lab.exec.web1.run([
        'nft',
        'delete',
        'rule',
        'inet',
        'filter',
        'input',
        'handle',
        handleOf(
          await lab.exec.web1.run(['nft', '-a', 'list', 'chain', 'inet', 'filter', 'input']).then((x) => x.stdout),
          '3306',
        ),
      ]);
    });

    it('7. a stale plan is refused by the server when its turn comes (the agent refuses it too: test/agent/agent-job.test.ts)', async () => {
      const a = await r.cli(
        'alice',
        'change',
        'propose',
        file('a.nft', BASELINE_RULESET.replace('tcp dport 80 accept', 'tcp dport { 80, 8080 } accept')),
        '--host',
        'web2',
        '--reason',
        'change A: open 8080',
        '--json',
      );
      const b = await r.cli(
        'alice',
        'change',
        'propose',
        file('b.nft', BASELINE_RULESET.replace('tcp dport 80 accept', 'tcp dport { 80, 9090 } accept')),
        '--host',
        'web2',
        '--reason',
        'change B: open 9090',
        '--json',
      );
      expect(a.code, a.stderr).toBe(0);
      expect(b.code, b.stderr).toBe(0);
      const [ia, ib] = [a, b].map((x) => String((JSON.parse(x.stdout) as View).change.id)) as [string, string];
      for (const id of [ia, ib]) {
        const ok = await r.cli('bob', 'change', 'approve', id);
        expect(ok.code, ok.stderr).toBe(0);
      }
      // web2's agent is stopped while both changes are queued, so B's turn comes only after A landed
      await lab.kill(r.agents.web2);
      await r.agents.web2.exited;
      const applyA = await r.cli('alice', 'change', 'apply', ia);
      expect(applyA.code, applyA.stderr).toBe(0);
      const applyB = await r.cli('alice', 'change', 'apply', ib); // both queued; B was planned before A landed
      expect(applyB.code, applyB.stderr).toBe(0);
      r.agents.web2 = r.startAgent('web2');
      const wa = await r.cli('alice', 'change', 'watch', ia);
      expect(wa.code, wa.stdout + wa.stderr).toBe(0);
      const wb = await r.cli('alice', 'change', 'watch', ib);
      expect(wb.code, wb.stdout + wb.stderr).toBe(1);
      const vb = await view(Number(ib));
      expect(vb.change.state).toBe('failed');
      expect(vb.events.find((e) => e.kind === 'refused')?.detail).toMatch(/stale/);
      expect(await nft('web2')).not.toContain('9090');
    });
  },
);

function handleOf(listing: string, needle: string): string {
  const line = listing.split('\n').find((l) => l.includes(needle)) as string;
  return (/# handle (\d+)/.exec(line) as RegExpExecArray)[1] as string;
}
