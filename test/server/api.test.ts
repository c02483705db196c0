/**
 * The change workflow through the HTTP API, on SQLite and on PostgreSQL: propose, plan, four-eyes review, the
 * founding outage refused at plan, override, staleness, freeze windows, queueing for the agents, the audit trail.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, type Harness, pgSkipReason, startHarness } from './harness.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const OUTAGE = readFileSync(join(fixtures, 'nftables', 'founding-outage.nft'), 'utf8');
const FIXED = readFileSync(join(fixtures, 'queries', 'founding-fixed.nft'), 'utf8');
const pgWhy = await pgSkipReason();

function propose(
  h: Harness,
  user: 'alice' | 'bob' | 'admin',
  ruleset: string,
  reason = 'test change',
  target: object = { host: 'web1' },
) {
  return h.call(user, 'POST', '/changes', { target, ruleset, reason, file: 'desired.nft' });
}

/** Applies a change end to end: approve by bob, queue, report every job done (as the agent will). */
async function land(h: Harness, id: number): Promise<void> {
  expect((await h.decide('bob', id, 'approve', { comment: 'ok' })).status).toBe(200);
  const applied = await h.call('alice', 'POST', `/changes/${id}/apply`, {});
  expect(applied.status).toBe(200);
  for (const j of applied.body.jobs) {
    expect((await h.call('admin', 'POST', `/jobs/${j.id}/report`, { state: 'done' })).status).toBe(200);
  }
}

describe.each(BACKENDS)('change workflow over the API (%s)', (backend) => {
  let h: Harness;
  const skip = backend === 'postgres' && pgWhy !== undefined;
  beforeAll(async () => {
    if (skip) {
      console.warn(`skipping the PostgreSQL API tests: ${pgWhy}`);
      return;
    }
    h = await startHarness(backend);
  });
  afterAll(async () => h?.close());

  it.skipIf(skip)('answers /healthz and publishes an OpenAPI document naming every route and its role', async () => {
    const health = await h.call(undefined, 'GET', '/healthz');
    expect(health.body).toMatchObject({ status: 'ok', store: backend });
    const doc = (await h.call(undefined, 'GET', '/api/v1/openapi.json')).body;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths['/api/v1/changes'].post['x-rampart-role']).toBe('operator');
    expect(doc.paths['/api/v1/changes'].post.requestBody.content['application/json'].schema.required).toEqual(
      expect.arrayContaining(['target', 'ruleset', 'reason']),
    );
    expect(doc.paths['/api/v1/changes/{id}/approve'].post['x-rampart-role']).toBe('approver');
  });

  it.skipIf(skip)('proposes, plans, approves by someone else and queues a change for the agents', async () => {
    const p = await propose(h, 'alice', FIXED, 'first managed ruleset for web1');
    expect(p.status).toBe(201);
    expect(p.body.change).toMatchObject({ state: 'planned', author: 'alice', hosts: ['web1'] });
    expect(p.body.plan).toMatchObject({ blocked: false, stale: false });
    const id = p.body.change.id as number;
    const text = await h.call('vic', 'GET', `/changes/${id}/plan?format=markdown`);
    expect(text.type).toContain('text/markdown');
    await land(h, id);
    const after = await h.call('vic', 'GET', `/changes/${id}`);
    expect(after.body.change.state).toBe('applied');
    expect(after.body.jobs.map((j: { state: string }) => j.state)).toEqual(['done']);
    const desired = await h.call('vic', 'GET', '/hosts/web1/desired');
    expect(desired.body).toMatchObject({ revision: 1, changeId: id });
  });

  it.skipIf(skip)('blocks the founding outage at plan: it cannot be approved without an admin override', async () => {
    const p = await propose(h, 'alice', OUTAGE, 'block all incoming traffic');
    expect(p.body.plan.blocked).toBe(true);
    expect(p.body.plan.risk).toBe('critical');
    expect(p.body.flags.join('\n')).toContain('BLOCKED');
    const id = p.body.change.id as number;
    const refused = await h.decide('bob', id, 'approve', {});
    expect(refused.status).toBe(409);
    expect(refused.type).toContain('application/problem+json');
    expect(refused.body).toMatchObject({ code: 'RAMPART_ERR_BLOCKED', status: 409 });
    expect(refused.body.detail).toMatch(/shop/);
    // an approver cannot override; an admin can, with a reason, and it is flagged from then on
    expect((await h.decide('bob', id, 'override', { reason: 'I say so, trust me' })).status).toBe(403);
    const o = await h.decide('admin', id, 'override', {
      reason: 'planned maintenance window, LB drained',
    });
    expect(o.status).toBe(200);
    expect(o.body.flags.join('\n')).toContain('BLOCK OVERRIDDEN by admin');
    const ok = await h.decide('bob', id, 'approve', {});
    expect(ok.status).toBe(200);
    expect(ok.body.change.state).toBe('approved');
    const list = await h.call('vic', 'GET', '/changes?state=approved');
    expect(list.body.changes.find((c: { id: number }) => c.id === id).override.by).toBe('admin');
  });

  it.skipIf(skip)('never lets the author approve their own change, and counts distinct approvers', async () => {
    const p = await propose(h, 'bob', FIXED, 'bob proposes, bob may not approve');
    const id = p.body.change.id as number;
    const own = await h.decide('bob', id, 'approve', {});
    expect(own.status).toBe(403);
    expect(own.body.code).toBe('RAMPART_ERR_REVIEW');
    expect(own.body.detail).toMatch(/own change/);
    const viewer = await h.decide('vic', id, 'approve', {});
    expect(viewer.status).toBe(403);
    expect(viewer.body.code).toBe('RAMPART_ERR_FORBIDDEN');
    expect((await h.decide('carol', id, 'approve', {})).body.change.state).toBe('approved');
  });

  it.skipIf(skip)('refuses invalid transitions with a clear error', async () => {
    const p = await propose(h, 'alice', FIXED, 'to be rejected');
    const id = p.body.change.id as number;
    expect((await h.decide('carol', id, 'reject', { comment: 'not this week' })).body.change.state).toBe('rejected');
    const apply = await h.call('alice', 'POST', `/changes/${id}/apply`, {});
    expect(apply.status).toBe(409);
    expect(apply.body.code).toBe('RAMPART_ERR_STATE');
    expect(apply.body.detail).toMatch(/rejected/);
    const approve = await h.decide('bob', id, 'approve', {});
    expect(approve.body.code).toBe('RAMPART_ERR_STATE');
  });

  it.skipIf(skip)(
    'voids approvals when the host moved on: the stale plan cannot be applied until re-planned',
    async () => {
      const a = (await propose(h, 'alice', FIXED, 'change A')).body.change.id as number;
      const b = (
        await propose(
          h,
          'alice',
          FIXED.replace('tcp dport { 80, 443 } accept', 'tcp dport { 80, 443, 8443 } accept'),
          'change B',
        )
      ).body.change.id as number;
      expect((await h.decide('bob', b, 'approve', {})).body.change.state).toBe('approved');
      await land(h, a);
      const refused = await h.call('alice', 'POST', `/changes/${b}/apply`, {});
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe('RAMPART_ERR_STALE');
      const view = await h.call('vic', 'GET', `/changes/${b}`);
      expect(view.body.change.state).toBe('planned');
      expect(view.body.flags.join('\n')).toContain('PLAN STALE');
      expect(view.body.reviews.every((r: { voidedAt: string | null }) => r.voidedAt !== null)).toBe(true);
      const replanned = await h.call('alice', 'POST', `/changes/${b}/plan`);
      expect(replanned.body.plan.stale).toBe(false);
      expect(replanned.body.flags.join('\n')).not.toContain('STALE');
      expect((await h.decide('bob', b, 'approve', {})).body.change.state).toBe('approved');
    },
  );

  it.skipIf(skip)(
    'voids approvals when the change itself is edited, and lets only its author or an admin edit it',
    async () => {
      const id = (await propose(h, 'alice', FIXED, 'edit me later')).body.change.id as number;
      expect((await h.decide('bob', id, 'approve', {})).body.change.state).toBe('approved');
      const notAuthor = await h.call('bob', 'PATCH', `/changes/${id}`, { reason: 'bob rewrites it' });
      expect(notAuthor.status).toBe(403);
      const edited = await h.call('alice', 'PATCH', `/changes/${id}`, {
        ruleset: FIXED.replace('tcp dport 22 accept', 'tcp dport 22 ip saddr 198.51.100.0/24 accept'),
      });
      expect(edited.status).toBe(200);
      expect(edited.body.change.state).toBe('planned');
      expect(edited.body.approvals.approvers).toEqual([]);
      expect(edited.body.reviews.every((r: { voidedAt: string | null }) => r.voidedAt !== null)).toBe(true);
      expect((await h.call('alice', 'POST', `/changes/${id}/apply`, {})).body.code).toBe('RAMPART_ERR_STATE');
    },
  );

  it.skipIf(skip)('refuses a bad ruleset with its location and stores nothing', async () => {
    const before = (await h.call('admin', 'GET', '/audit-log')).body.entries.length;
    const count = (await h.call('vic', 'GET', '/changes?limit=500')).body.changes.length;
    const bad = await propose(h, 'alice', 'table inet filter {\n  chain input {\n    tcp dport 80 acept\n  }\n}\n');
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('RAMPART_ERR_PARSE');
    expect(bad.body.errors[0].field).toBe('body.ruleset');
    expect(bad.body.detail).toMatch(/^desired\.nft:3:\d+: /);
    expect((await h.call('vic', 'GET', '/changes?limit=500')).body.changes.length).toBe(count);
    expect((await h.call('admin', 'GET', '/audit-log')).body.entries.length).toBe(before);
  });

  it.skipIf(skip)('validates bodies and names the failing field in problem+json', async () => {
    const r = await h.call('alice', 'POST', '/changes', { target: { host: 'web1' }, ruleset: FIXED });
    expect(r.status).toBe(400);
    expect(r.type).toContain('application/problem+json');
    expect(r.body.errors.map((e: { field: string }) => e.field)).toContain('body.reason');
    const unknownHost = await propose(h, 'alice', FIXED, 'typo in host', { host: 'webl' });
    expect(unknownHost.status).toBe(404);
    expect(unknownHost.body.detail).toMatch(/web1/);
    const junk = await h.call('alice', 'POST', '/changes', '{"target": ');
    expect(junk.status).toBe(400);
    expect(junk.body.code).toBe('RAMPART_ERR_VALIDATION');
  });

  it.skipIf(skip)('serialises parallel proposals and approvals: no lost update, one valid chain', async () => {
    const ids = await Promise.all(
      Array.from(
        { length: 8 },
        async (_, i) => (await propose(h, 'alice', FIXED, `parallel ${i}`)).body.change.id as number,
      ),
    );
    expect(new Set(ids).size).toBe(8);
    // three approvers race on each change; policy needs one: the first wins, the others see it is no longer planned
    const results = await Promise.all(
      ids.flatMap((id) => (['bob', 'carol', 'dave'] as const).map((u) => h.decide(u, id, 'approve', {}))),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(8);
    expect(results.filter((r) => r.status === 409).every((r) => r.body.code === 'RAMPART_ERR_STATE')).toBe(true);
    for (const id of ids) {
      const v = (await h.call('vic', 'GET', `/changes/${id}`)).body;
      expect(v.change.state).toBe('approved');
      expect(v.reviews).toHaveLength(1);
    }
    const verify = await h.call('vic', 'GET', '/audit-log/verify');
    expect(verify.body.ok).toBe(true);
  });

  it.skipIf(skip)(
    'records every state change in a verifiable hash-chained audit log, exportable as JSON lines',
    async () => {
      const log = (await h.call('admin', 'GET', '/audit-log')).body.entries as {
        action: string;
        actor: string;
        from: string;
      }[];
      const actions = new Set(log.map((e) => e.action));
      for (const a of [
        'change.propose',
        'change.plan',
        'change.approve',
        'change.reject',
        'change.override',
        'change.apply',
        'change.stale',
        'job.done',
      ]) {
        expect(actions).toContain(a);
      }
      expect(log.find((e) => e.action === 'change.override')).toMatchObject({ actor: 'admin', from: '127.0.0.1' });
      const jsonl = await h.call('admin', 'GET', '/audit-log?format=jsonl');
      expect(jsonl.type).toContain('ndjson');
      expect(String(jsonl.body).trim().split('\n')).toHaveLength(log.length);
      expect((await h.call('vic', 'GET', '/audit-log')).status).toBe(403);
      // The dashboard's pages: newest first, cursor by seq, every entry once across the pages, none left out.
      const all = ((await h.call('admin', 'GET', '/audit-log')).body.entries as { seq: number }[]).map((e) => e.seq);
      const seqs: number[] = [];
      let before: number | null | undefined;
      for (let pages = 0; before !== null; pages++) {
        expect(pages).toBeLessThan(all.length);
        const page = await h.call('admin', 'GET', `/audit-log?limit=7${before ? `&before=${before}` : ''}`);
        expect(page.status).toBe(200);
        expect(page.body.head).toBe(all.at(-1));
        const got = page.body.entries.map((e: { seq: number }) => e.seq);
        expect(got.length).toBeLessThanOrEqual(7);
        expect(got).toEqual([...got].sort((a: number, b: number) => b - a));
        seqs.push(...got);
        before = page.body.next;
      }
      expect(seqs).toEqual([...all].reverse());
      const bad = await h.call('admin', 'GET', '/audit-log?format=jsonl&limit=5');
      expect(bad.status).toBe(400);
      expect(bad.body.errors[0]).toMatchObject({
        field: 'query.format',
        message: expect.stringMatching(/without pages/),
      });
      expect((await h.call('admin', 'GET', '/audit-log?limit=0')).body.errors[0].field).toBe('query.limit');
    },
  );

  it.skipIf(skip)('exposes Prometheus metrics', async () => {
    const m = await h.call(undefined, 'GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.body).toMatch(/rampart_http_requests_total\{method="POST",route="\/api\/v1\/changes",status="201"\} \d+/);
    expect(m.body).toMatch(/rampart_changes\{state="approved"\} [1-9]/);
  });
});

describe('freeze windows', () => {
  let h: Harness;
  // shop.yaml freezes 2020-11-27T00:00Z .. 2020-11-30T00:00Z (black friday 2020)
  beforeAll(async () => {
    h = await startHarness('sqlite', { now: () => new Date('2020-11-28T12:00:00Z') });
  });
  afterAll(async () => h?.close());

  it('refuses to apply inside a freeze except as an emergency with a reason, which is flagged', async () => {
    const id = (await propose(h, 'alice', FIXED, 'during the freeze')).body.change.id as number;
    await h.decide('bob', id, 'approve', {});
    const frozen = await h.call('alice', 'POST', `/changes/${id}/apply`, {});
    expect(frozen.status).toBe(409);
    expect(frozen.body.code).toBe('RAMPART_ERR_FROZEN');
    expect(frozen.body.detail).toMatch(/black friday 2020/);
    const short = await h.call('alice', 'POST', `/changes/${id}/apply`, { emergency: { reason: 'now' } });
    expect(short.status).toBe(400);
    expect(short.body.errors[0].field).toBe('body.emergency.reason');
    const ok = await h.call('alice', 'POST', `/changes/${id}/apply`, {
      emergency: { reason: 'checkout is down, restoring port 443' },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.change.state).toBe('applying');
    expect(ok.body.flags.join('\n')).toContain('EMERGENCY apply by alice');
  });

  it('refuses request bodies over the limit with 413 problem+json', async () => {
    const big = await h.call('alice', 'POST', '/changes', {
      target: { host: 'web1' },
      ruleset: 'x'.repeat(17 * 1024 * 1024),
      reason: 'too big',
    });
    expect(big.status).toBe(413);
    expect(big.body.code).toBe('RAMPART_ERR_TOO_LARGE');
  });
});
