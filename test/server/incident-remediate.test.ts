/**
 * The suspected change of an incident and its remediation in the server (issue 16 §3), against a real server and
 * store, without a kernel: the agents' reports and the jobs' outcomes are posted as the agents and the admin do.
 *
 * 1. The founding outage by hand: web1 and web2 report the live ruleset of the bad edit (drift); an incident about
 *    the shop names that drift on both hosts as the suspect (the dropping policy, an example packet), not the change
 *    that set the desired ruleset; the suspect is on the timeline once; `remediate` (operator+) proposes the desired
 *    ruleset again as one change to the group, on the timeline; the postmortem's root cause names the drift.
 * 2. A bad change through Rampart (proposed by alice, approved by bob): named with its author and approvers;
 *    `remediate` proposes its rollback.
 * 3. No suspect: the plain `none` verdict, and `remediate` refuses, saying so.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/server/auth.js';
import { type Harness, startHarness, type User } from './harness.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const FIXED = readFileSync(join(fixtures, 'queries', 'founding-fixed.nft'), 'utf8');
const OUTAGE = readFileSync(join(fixtures, 'nftables', 'founding-outage.nft'), 'utf8');

const CONFIG = `site: shop
hosts:
  - {name: web1, addresses: [192.0.2.11], firewall: nftables, group: web}
  - {name: web2, addresses: [192.0.2.12], firewall: nftables, group: web}
  - {name: db1, addresses: [192.0.2.21], firewall: nftables, group: db}
services:
  - {name: shop, group: web, public: [tcp/80, tcp/443]}
  - {name: db, group: db, internal: [{ports: [tcp/5432], from: [192.0.2.0/28]}]}
policy:
  approvals: 1
incidents:
  auto-declare: off
`;

describe('the suspected change and remediation in the server', () => {
  let h: Harness;
  let dir: string;
  let web2 = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-remediate-'));
    const config = join(dir, 'rampart.yaml');
    writeFileSync(config, CONFIG);
    // the server's clock is the real one, moved by `skew` where a test needs events at chosen times (1c)
    h = await startHarness('sqlite', { config, now: () => new Date(Date.now() + skew) });
    const t = generateToken();
    await h.store.write({ name: 'test', role: 'system', from: 'local' }, (w) =>
      w.insertToken({
        id: t.id,
        name: 'web2',
        role: 'agent',
        secretHash: t.secretHash,
        createdAt: new Date().toISOString(),
        createdBy: 'test',
      }),
    );
    web2 = t.token;
  });
  afterAll(async () => {
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * A change proposed by alice, approved by bob and applied (the jobs reported done by the admin); a blocked plan is
   * forced through with the admin's override first.
   */
  async function applied(target: Record<string, string>, ruleset: string, reason: string): Promise<number> {
    const p = await h.call('alice', 'POST', '/changes', { target, ruleset, reason });
    expect(p.status).toBe(201);
    const id = p.body.change.id as number;
    if (p.body.plan?.blocked) {
      expect((await h.decide('admin', id, 'override', { reason: 'forced: trusted sources only' })).status).toBe(200);
    }
    expect((await h.decide('bob', id, 'approve', {})).body.change.state).toBe('approved');
    const a = await h.call('alice', 'POST', `/changes/${id}/apply`, {});
    expect(a.body.change.state).toBe('applying');
    for (const j of a.body.jobs) await h.call('admin', 'POST', `/jobs/${j.id}/report`, { state: 'done' });
    return id;
  }
  let skew = 0;
  const report = async (host: 'web1' | 'web2', text: string) => {
    const body = {
      at: new Date().toISOString(),
      firewall: 'nftables',
      live: { format: 'nft-text', text },
      sockets: [],
      state: 'idle',
    };
    if (host === 'web1') return h.call('web1', 'POST', '/agent/report', body);
    const res = await fetch(`${h.url}/api/v1/agent/report`, {
      method: 'POST',
      headers: { authorization: `Bearer ${web2}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
  const declare = async (title: string, body: Record<string, unknown> = {}) => {
    const r = await h.call('alice', 'POST', '/incidents', { title, severity: 1, services: ['shop'], ...body });
    expect(r.status).toBe(201);
    return r.body.id as number;
  };

  it('1. names the out-of-band edit on web1 and web2 and proposes the desired ruleset again', async () => {
    const setup = await applied({ group: 'web' }, FIXED, 'the shop open on 80 and 443');
    for (const host of ['web1', 'web2'] as const) {
      expect((await report(host, FIXED)).body.drift.inSync).toBe(true);
      const r = await report(host, OUTAGE);
      expect(r.status).toBe(200);
      expect(r.body.drift.inSync).toBe(false);
    }
    const id = await declare('shop down');
    const got = await h.call('vic', 'GET', `/incidents/${id}/suspects`);
    expect(got.status).toBe(200);
    const v = got.body;
    expect(v.verdict).toBe('suspected');
    const suspected = v.candidates.filter((c: { suspected: boolean }) => c.suspected);
    expect(suspected.map((c: { kind: string; host: string }) => [c.kind, c.host]).sort()).toEqual([
      ['drift', 'web1'],
      ['drift', 'web2'],
    ]);
    const top = v.candidates[0];
    expect(top.rule).toBe('policy drop of inet filter/input');
    expect(top.example).toMatch(/^tcp \S+ -> \S+:(80|443) /);
    expect(top.breaks[0]).toMatchObject({ to: 'drop', share: '100%' });
    expect(top.breaks[0].acceptedBefore[0]).toContain('tcp dport { 80, 443 } accept');
    expect(top.author).toBeNull();
    // the change that set the desired ruleset only opened the shop: a candidate, not suspected
    const change = v.candidates.find((c: { changeId?: number }) => c.changeId === setup);
    expect(change).toMatchObject({ suspected: false, author: 'alice', approvers: ['bob'] });
    expect(v.flows).toEqual([
      { service: 'shop', proto: 'tcp', to: ['192.0.2.11', '192.0.2.12'], ports: [80, 443], from: 'anywhere' },
    ]);

    // on the timeline once, however often it is asked
    await h.call('vic', 'GET', `/incidents/${id}/suspects`);
    const shown = (await h.call('vic', 'GET', `/incidents/${id}`)).body;
    const entries = shown.timeline.filter((e: { kind: string }) => e.kind === 'incident.suspect');
    expect(entries).toHaveLength(1);
    expect(entries[0].text).toMatch(
      /^Suspected cause: an out-of-band edit of the firewall \(drift\) on web[12] and web[12] turns 100% of shop: tcp port 80, 443 to 192\.0\.2\.11, 192\.0\.2\.12 from anywhere from accept to drop, now decided by policy drop of inet filter\/input/,
    );
    expect(entries[0].keyMoment).toBe(true);

    // remediation: operators and up only
    for (const u of ['vic', 'web1', 'prometheus'] as User[]) {
      expect((await h.call(u, 'POST', `/incidents/${id}/remediate`, {})).status).toBe(403);
    }
    const r = await h.call('alice', 'POST', `/incidents/${id}/remediate`, { reason: 'the shop is down' });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ kind: 'restore', suspect: { kind: 'drift' } });
    expect(r.body.changes).toHaveLength(1);
    const fix = r.body.changes[0].change;
    expect(fix).toMatchObject({ target: { kind: 'group', name: 'web' }, author: 'alice', state: 'planned' });
    expect(fix.reason).toContain('remediation of incident');
    expect(r.body.next).toContain(`rampart change apply ${fix.id}`);
    // the same ruleset as desired: the plan changes nothing in the desired state, it puts it back on the hosts
    const ruleset = (await h.call('vic', 'GET', `/changes/${fix.id}?ruleset=true`)).body.change.ruleset;
    expect(ruleset).toBe(FIXED);
    // the proposal, its approval and its application on the timeline
    expect((await h.decide('bob', fix.id, 'approve', {})).body.change.state).toBe('approved');
    const a = await h.call('alice', 'POST', `/changes/${fix.id}/apply`, {});
    for (const j of a.body.jobs) await h.call('admin', 'POST', `/jobs/${j.id}/report`, { state: 'done' });
    const after = (await h.call('vic', 'GET', `/incidents/${id}`)).body.timeline.map((e: { kind: string }) => e.kind);
    expect(after).toContain('incident.remediate');
    for (const k of ['change.proposed', 'change.approved', 'change.applied'])
      expect(after.filter((x: string) => x === k).length).toBeGreaterThan(0);
    const log = (await h.call('admin', 'GET', '/audit-log')).body.entries;
    expect(log.some((e: { action: string }) => e.action === 'incident.remediate')).toBe(true);

    // the postmortem's root cause is prefilled from the suspect
    const pm = (await h.call('vic', 'GET', `/incidents/${id}/postmortem?format=markdown`)).body as string;
    expect(pm).toMatch(
      /\*\*Root Cause:\*\* Suspected by Rampart: An out-of-band edit of the firewall \(drift\) on web/,
    );
    expect(pm).toContain('made outside Rampart, so without review');
    for (const host of ['web1', 'web2'] as const) expect((await report(host, FIXED)).body.drift.inSync).toBe(true);
    await h.call('alice', 'POST', `/incidents/${id}/resolve`, {});
  });

  it('1b. names the same bad edit again when it comes back after the fix (an earlier identical drift hides nothing)', async () => {
    // the edit, fixed by hand, then made again: the same live ruleset against the same desired revision twice
    for (const text of [OUTAGE, FIXED, OUTAGE]) {
      for (const host of ['web1', 'web2'] as const) {
        expect((await report(host, text)).body.drift.inSync).toBe(text === FIXED);
      }
    }
    const id = await declare('shop down: the bad edit is back');
    const v = (await h.call('vic', 'GET', `/incidents/${id}/suspects`)).body;
    expect(v.verdict).toBe('suspected');
    const suspected = v.candidates.filter((c: { suspected: boolean }) => c.suspected);
    expect(suspected.map((c: { kind: string; host: string }) => [c.kind, c.host]).sort()).toEqual([
      ['drift', 'web1'],
      ['drift', 'web2'],
    ]);
    // the first edit's drift was over before this incident: set aside, saying so
    expect(v.skipped.some((x: { why: string }) => /^back in sync at /.test(x.why))).toBe(true);
    for (const host of ['web1', 'web2'] as const) expect((await report(host, FIXED)).body.drift.inSync).toBe(true);
    await h.call('alice', 'POST', `/incidents/${id}/resolve`, {});
  });

  it('1c. notes the cause once when the edit reaches a second host after the first suspect was named', async () => {
    // web2's agent reads the same edit a moment after web1's: one cause, one timeline entry
    const kinds = async (id: number) =>
      (await h.call('vic', 'GET', `/incidents/${id}`)).body.timeline.filter(
        (e: { kind: string }) => e.kind === 'incident.suspect',
      );
    // web1's edit read 60 s ago, the outage began 10 s ago; then web2's, read 30 s ago, arrives: nearer the start, it
    // becomes the top candidate (in the lab the start moves back to the first failing probe, with the same effect)
    // (an hour on, so that the earlier tests' drifts are over before all of it; the clock stays there after this test)
    const later = 3_600_000;
    skew = later - 60_000;
    expect((await report('web1', OUTAGE)).body.drift.inSync).toBe(false);
    skew = later;
    const id = await declare('shop down on web1', { startedAt: new Date(Date.now() + later - 10_000).toISOString() });
    const first = (await h.call('vic', 'GET', `/incidents/${id}/suspects`)).body;
    expect(
      first.candidates.filter((c: { suspected: boolean }) => c.suspected).map((c: { host: string }) => c.host),
    ).toEqual(['web1']);
    expect(await kinds(id)).toHaveLength(1);
    skew = later - 30_000;
    expect((await report('web2', OUTAGE)).body.drift.inSync).toBe(false);
    skew = later;
    const both = (await h.call('vic', 'GET', `/incidents/${id}/suspects`)).body;
    expect(
      both.candidates
        .filter((c: { suspected: boolean }) => c.suspected)
        .map((c: { host: string }) => c.host)
        .sort(),
    ).toEqual(['web1', 'web2']);
    const noted = await kinds(id);
    expect(noted).toHaveLength(1);
    expect(noted[0].text).toContain('(drift) on web1 turns');
    expect(both.candidates[0].host).toBe('web2');
    for (const host of ['web1', 'web2'] as const) expect((await report(host, FIXED)).body.drift.inSync).toBe(true);
    await h.call('alice', 'POST', `/incidents/${id}/resolve`, {});
  });

  it('2. names a bad change through Rampart with its author and approvers, and proposes its rollback', async () => {
    const bad = await applied({ group: 'web' }, OUTAGE, 'allow traffic only from trusted sources');
    const id = await declare('shop down again');
    const v = (await h.call('vic', 'GET', `/incidents/${id}/suspects`)).body;
    expect(v.verdict).toBe('suspected');
    expect(v.candidates[0]).toMatchObject({
      kind: 'change',
      changeId: bad,
      suspected: true,
      author: 'alice',
      approvers: ['bob'],
      reason: 'allow traffic only from trusted sources',
    });
    expect(v.candidates[0].rule).toBe('policy drop of inet filter/input');
    expect(v.text).toMatch(new RegExp(`^Suspected: change ${bad} on web[12] by alice, approved by bob `));
    const r = await h.call('alice', 'POST', `/incidents/${id}/remediate`, {});
    expect(r.status).toBe(201);
    expect(r.body.kind).toBe('rollback');
    expect(r.body.changes[0].change).toMatchObject({ rollbackOf: bad, state: 'planned' });
    const text = (await h.call('vic', 'GET', `/incidents/${id}`)).body.timeline.find(
      (e: { kind: string }) => e.kind === 'incident.suspect',
    ).text;
    expect(text).toContain(`change ${bad} on web`);
    expect(text).toContain('proposed by alice, approved by bob');
  });

  it('3. says plainly when no change explains the failure, and remediate refuses', async () => {
    const id = await declare('db slow', { services: ['db'], hosts: ['db1'] });
    const v = (await h.call('vic', 'GET', `/incidents/${id}/suspects`)).body;
    expect(v.verdict).toBe('none');
    expect(v.text).toMatch(/no change explains the failure; look at the service inside the host or the load balancer/);
    expect(v.flows).toEqual([
      { service: 'db', proto: 'tcp', to: ['192.0.2.21'], ports: [5432], from: ['192.0.2.0/28'] },
    ]);
    const r = await h.call('alice', 'POST', `/incidents/${id}/remediate`, {});
    expect(r.status).toBe(409);
    expect(JSON.stringify(r.body)).toContain(`incident ${id} has no suspected change or drift to undo`);
    expect((await h.call('alice', 'POST', '/incidents/999/remediate', {})).status).toBe(404);
  });
});
