/**
 * The agent protocol over HTTP, without a kernel: which job an agent gets and when (one host at a time, canary
 * first), what agent steps do to the change (rollback stops the rollout), confirmation, drift from live reports,
 * and an agent token that speaks only for its own host.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/server/auth.js';
import { type Harness, startHarness } from './harness.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const CONFIG = join(fixtures, 'config', 'agents.yaml');
const FIXED = readFileSync(join(fixtures, 'queries', 'founding-fixed.nft'), 'utf8');
const WITH_8443 = FIXED.replace('tcp dport { 80, 443 } accept', 'tcp dport { 80, 443, 8443 } accept');

describe('agent protocol', () => {
  let h: Harness;
  let web2 = '';
  const as = async (token: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${h.url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    // biome-ignore lint/suspicious/noExplicitAny: answers are arbitrary JSON the tests pick apart
    return { status: res.status, body: (await res.json()) as any };
  };
  const event = (token: string, job: number, kind: string, detail = 'test') =>
    as(token, 'POST', `/agent/jobs/${job}/events`, { kind, at: new Date().toISOString(), detail });

  beforeAll(async () => {
    h = await startHarness('sqlite', { config: CONFIG });
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
  afterAll(async () => h?.close());

  async function approvedGroupChange(ruleset: string, reason: string): Promise<number> {
    const p = await h.call('alice', 'POST', '/changes', { target: { group: 'web' }, ruleset, reason });
    expect(p.status).toBe(201);
    const id = p.body.change.id as number;
    expect((await h.decide('bob', id, 'approve', {})).body.change.state).toBe('approved');
    expect((await h.call('alice', 'POST', `/changes/${id}/apply`, {})).body.change.state).toBe('applying');
    return id;
  }

  it('rolls out one host at a time, canary first, and marks the change applied when every host confirmed', async () => {
    const id = await approvedGroupChange(FIXED, 'first managed ruleset');
    // web2 is the canary (policy.canary): web1 gets nothing until web2 is done
    expect((await h.call('web1', 'GET', '/agent/next')).body.job).toBeNull();
    const j2 = (await as(web2, 'GET', '/agent/next')).body.job;
    expect(j2).toMatchObject({
      host: 'web2',
      step: 0,
      changeId: id,
      managedTables: ['inet filter'],
      firewall: 'nftables',
    });
    expect(j2.plan).toEqual({ id: j2.planId, stale: false, approved: true });
    for (const k of ['pending-saved', 'applied', 'health-ok']) expect((await event(web2, j2.id, k)).status).toBe(200);
    // an event delivered twice (the agent retried after a timeout) is recorded once
    const again = { kind: 'health-ok', at: '2026-11-24T10:00:00.000Z', detail: 'retried' };
    await as(web2, 'POST', `/agent/jobs/${j2.id}/events`, again);
    await as(web2, 'POST', `/agent/jobs/${j2.id}/events`, again);
    const c2 = await as(web2, 'POST', `/agent/jobs/${j2.id}/confirm`, { local: [] });
    expect(c2.body.confirmed).toBe(true);
    await event(web2, j2.id, 'committed');
    const j1 = (await h.call('web1', 'GET', '/agent/next')).body.job;
    expect(j1).toMatchObject({ host: 'web1', step: 1 });
    expect((await h.call('web1', 'POST', `/agent/jobs/${j1.id}/confirm`, { local: [] })).body.confirmed).toBe(true);
    const v = (await h.call('vic', 'GET', `/changes/${id}`)).body;
    expect(v.change.state).toBe('applied');
    expect(v.events.map((e: { host: string; kind: string }) => `${e.host} ${e.kind}`)).toEqual([
      'web2 handed-out',
      'web2 pending-saved',
      'web2 applied',
      'web2 health-ok',
      'web2 health-ok',
      'web2 confirmed',
      'web2 done',
      'web2 committed',
      'web1 handed-out',
      'web1 confirmed',
      'web1 done',
    ]);
    expect((await h.call('vic', 'GET', '/hosts/web1/desired')).body.changeId).toBe(id);
  });

  it('stops the rollout when the canary rolls back: the other host is left untouched', async () => {
    const id = await approvedGroupChange(WITH_8443, 'open 8443');
    const j2 = (await as(web2, 'GET', '/agent/next')).body.job;
    await event(web2, j2.id, 'applied');
    await event(web2, j2.id, 'health-failed', 'http :80/healthz: connection refused');
    await event(web2, j2.id, 'rolled-back', 'snapshot restored');
    const v = (await h.call('vic', 'GET', `/changes/${id}`)).body;
    expect(v.change.state).toBe('rolled-back');
    expect(v.jobs.map((j: { host: string; state: string }) => `${j.host} ${j.state}`)).toEqual([
      'web2 failed',
      'web1 cancelled',
    ]);
    expect((await h.call('web1', 'GET', '/agent/next')).body.job).toBeNull();
    const log = (await h.call('admin', 'GET', '/audit-log')).body.entries as {
      action: string;
      actor: string;
      role: string;
    }[];
    // Not necessarily the last entry: the rollback's critical ChangeRolledBack alert may already have declared an
    // incident, which the server audits as its own.
    expect(log.filter((e) => e.action === 'job.rolled-back')).toEqual([
      expect.objectContaining({ actor: 'web2', role: 'agent' }),
    ]);
    // every step is in the audit trail, not only on the timeline
    const steps = log.filter((e) => e.actor === 'web2').map((e) => e.action);
    expect(steps).toEqual(
      expect.arrayContaining(['rollout.handed-out', 'agent.applied', 'agent.health-failed', 'agent.rolled-back']),
    );
  });

  it('rolls an applied change back through a linked change that goes through review and the agents again', async () => {
    // the first test applied FIXED to both hosts; apply WITH_8443 on top, then roll it back
    const id = await approvedGroupChange(WITH_8443, 'open 8443, to be rolled back');
    for (const token of [web2, h.tokens.web1]) {
      const job = (await as(token, 'GET', '/agent/next')).body.job;
      expect((await as(token, 'POST', `/agent/jobs/${job.id}/confirm`, { local: [] })).body.confirmed).toBe(true);
    }
    expect((await h.call('vic', 'GET', `/changes/${id}`)).body.change.state).toBe('applied');
    const refused = await h.call('alice', 'POST', `/changes/${id - 1}/rollback`, { reason: 'not applied' });
    expect(refused.body.code).toBe('RAMPART_ERR_STATE');
    const rb = await h.call('alice', 'POST', `/changes/${id}/rollback`, { reason: 'the API launch moved' });
    expect(rb.status).toBe(201);
    expect(rb.body.changes).toHaveLength(1);
    const r = rb.body.changes[0];
    expect(r.change).toMatchObject({ rollbackOf: id, target: { kind: 'group', name: 'web' } });
    expect((await h.call('vic', 'GET', `/changes/${r.change.id}`)).body.change.ruleset).toBe(FIXED);
    expect(r.flags).toContain(`ROLLBACK of change ${id}`);
    expect(r.change.reason).toBe(`rollback of change ${id}: the API launch moved`);
    // same path as any change: review, then the agents one host at a time
    await h.decide('bob', r.change.id, 'approve', {});
    await h.call('alice', 'POST', `/changes/${r.change.id}/apply`, {});
    for (const token of [web2, h.tokens.web1]) {
      const job = (await as(token, 'GET', '/agent/next')).body.job;
      expect(job.ruleset).toBe(FIXED);
      await as(token, 'POST', `/agent/jobs/${job.id}/confirm`, { local: [] });
    }
    expect((await h.call('vic', 'GET', `/changes/${r.change.id}`)).body.change.state).toBe('applied');
    expect((await h.call('vic', 'GET', `/changes/${id}`)).body.change.state).toBe('rolled-back');
    expect((await h.call('vic', 'GET', '/hosts/web1/desired')).body.changeId).toBe(r.change.id);
  });

  it('takes an agent at its word when it rolled back after a confirmation it never received', async () => {
    const before = (await h.call('vic', 'GET', '/hosts/web2/desired')).body;
    const id = (
      await h.call('alice', 'POST', '/changes', {
        target: { host: 'web2' },
        ruleset: WITH_8443,
        reason: 'lost confirmation',
      })
    ).body.change.id as number;
    await h.decide('bob', id, 'approve', {});
    await h.call('alice', 'POST', `/changes/${id}/apply`, {});
    const job = (await as(web2, 'GET', '/agent/next')).body.job;
    expect((await as(web2, 'POST', `/agent/jobs/${job.id}/confirm`, { local: [] })).body.confirmed).toBe(true);
    expect((await h.call('vic', 'GET', `/changes/${id}`)).body.change.state).toBe('applied');
    // the answer never reached the agent: it rolled back at its deadline and says so when it can
    await event(web2, job.id, 'confirm-timeout', 'no confirmation from the server within 10 s');
    await event(web2, job.id, 'rolled-back', 'snapshot restored: no confirmation before the deadline');
    const v = (await h.call('vic', 'GET', `/changes/${id}`)).body;
    expect(v.change.state).toBe('rolled-back');
    expect(v.events.find((e: { kind: string }) => e.kind === 'attention').detail).toMatch(
      /desired ruleset is revision \d+'s again/,
    );
    const after = (await h.call('vic', 'GET', '/hosts/web2/desired')).body;
    expect(after.ruleset).toBe(before.ruleset);
    expect(after.revision).toBe(before.revision + 2);
  });

  it('lets an agent token speak only for its own host', async () => {
    const id = await approvedGroupChange(WITH_8443, 'again');
    const j2 = (await as(web2, 'GET', '/agent/next')).body.job;
    expect(j2.changeId).toBe(id);
    const foreign = await h.call('web1', 'POST', `/agent/jobs/${j2.id}/events`, {
      kind: 'rolled-back',
      at: new Date().toISOString(),
      detail: 'x',
    });
    expect(foreign.status).toBe(404);
    expect((await h.call('web1', 'GET', '/changes')).status).toBe(403);
    expect((await h.call('admin', 'GET', '/agent/next')).status).toBe(403);
  });

  it('reports drift as a semantic diff once the live ruleset differs from the desired one', async () => {
    const report = (text: string) =>
      h.call('web1', 'POST', '/agent/report', {
        at: new Date().toISOString(),
        firewall: 'nftables',
        live: { format: 'nft-text', text },
        sockets: [{ proto: 'tcp', address: '0.0.0.0', port: 80 }],
        state: 'idle',
      });
    const same = await report(FIXED.replace('flush ruleset\n', ''));
    expect(same.body.drift).toMatchObject({ inSync: true });
    const drifted = await report(FIXED.replace('tcp dport 22 accept', 'tcp dport { 22, 3306 } accept'));
    expect(drifted.body.drift.inSync).toBe(false);
    expect(drifted.body.drift.changes[0]).toMatchObject({ hook: 'input', from: 'drop', to: 'accept' });
    expect(drifted.body.drift.changes[0].flow).toContain('3306');
    // the drifted live ruleset is kept for the suspected change (the in-sync one is not)
    const kept = await h.store.driftSnapshots({ from: '2000-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' });
    expect(kept.map((d) => [d.host, d.live?.includes('{ 22, 3306 }')])).toEqual([['web1', true]]);
    // a report older than the stored one (delivered late) changes nothing
    const late = await h.call('web1', 'POST', '/agent/report', {
      at: '2020-01-01T00:00:00.000Z',
      firewall: 'nftables',
      live: { format: 'nft-text', text: FIXED },
      sockets: [],
      state: 'idle',
    });
    expect(late.body.drift.inSync).toBe(false);
    const view = (await h.call('vic', 'GET', '/hosts/web1/drift')).body;
    expect(view.drift.inSync).toBe(false);
    const hosts = (await h.call('vic', 'GET', '/hosts')).body.hosts;
    expect(hosts.find((x: { name: string }) => x.name === 'web1').drift.inSync).toBe(false);
    const log = (await h.call('admin', 'GET', '/audit-log')).body.entries;
    expect(
      log.some((e: { action: string; target: string }) => e.action === 'host.drift' && e.target === 'host:web1'),
    ).toBe(true);
  });
});

describe('agent protocol: a confirmation after the deadline', () => {
  let h: Harness;
  // The server's clock, moved on by hand: the confirm timeout (10 s in agents.yaml) passes without waiting.
  let skewMs = 0;
  beforeAll(async () => {
    h = await startHarness('sqlite', { config: CONFIG, now: () => new Date(Date.now() + skewMs) });
  });
  afterAll(async () => h?.close());

  /** A change for web1 proposed, approved and applied, and the job web1's agent took for it (server clock now). */
  async function takenJob(reason: string): Promise<{ id: number; job: { id: number } }> {
    skewMs = 0;
    const p = await h.call('alice', 'POST', '/changes', { target: { host: 'web1' }, ruleset: WITH_8443, reason });
    const id = p.body.change.id as number;
    await h.decide('bob', id, 'approve', {});
    await h.call('alice', 'POST', `/changes/${id}/apply`, {});
    const job = (await h.call('web1', 'GET', '/agent/next')).body.job;
    expect(job).toMatchObject({ host: 'web1', confirmTimeoutSeconds: 10 });
    return { id, job };
  }

  it('is refused: a request the cut-off ruleset held back cannot mark applied what the agent rolled back', async () => {
    const { id, job } = await takenJob('a confirm that arrives late');
    skewMs = 10_500;
    const late = await h.call('web1', 'POST', `/agent/jobs/${job.id}/confirm`, { local: [] });
    expect(late.body.confirmed).toBe(false);
    expect(late.body.reason).toMatch(/too late to confirm: job \d+ was handed out at .* confirm timeout \(10 s\)/);
    let v = (await h.call('vic', 'GET', `/changes/${id}`)).body;
    expect(v.change.state).toBe('applying');
    expect(v.events.map((e: { kind: string }) => e.kind)).not.toContain('confirmed');
    // the agent's own account arrives once its path is open again: the change ends rolled back, never applied
    for (const [kind, detail] of [
      ['confirm-timeout', 'no confirmation from the server within 10 s'],
      ['rolled-back', 'snapshot restored: no confirmation before the deadline'],
    ])
      await h.call('web1', 'POST', `/agent/jobs/${job.id}/events`, { kind, at: new Date().toISOString(), detail });
    v = (await h.call('vic', 'GET', `/changes/${id}`)).body;
    expect(v.change.state).toBe('rolled-back');
  });

  it('still confirms inside the deadline', async () => {
    const { id, job } = await takenJob('a confirm in time');
    skewMs = 9_000;
    expect((await h.call('web1', 'POST', `/agent/jobs/${job.id}/confirm`, { local: [] })).body.confirmed).toBe(true);
    expect((await h.call('vic', 'GET', `/changes/${id}`)).body.change.state).toBe('applied');
  });
});
