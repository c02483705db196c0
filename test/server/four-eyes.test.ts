/**
 * Four eyes that cannot be walked around (issue 12), tried as an attacker would, over the real server on SQLite
 * and PostgreSQL: approvals and overrides bound to the plan and ruleset the person read, everyone who shaped a
 * ruleset is its author, tokens minted by an author do not count, names are people whatever their case; and the
 * edges of authentication (before the body is read, small bodies where no ruleset travels, expiry, last use, a
 * limiter on failures written to the audit trail once per burst).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BACKENDS, type Harness, pgSkipReason, startHarness } from './harness.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const OUTAGE = readFileSync(join(fixtures, 'nftables', 'founding-outage.nft'), 'utf8');
const FIXED = readFileSync(join(fixtures, 'queries', 'founding-fixed.nft'), 'utf8');
/** One blocker: the shop's tcp/80 is closed (tcp/443 stays open). */
const CLOSES_80 = FIXED.replace('tcp dport { 80, 443 } accept', 'tcp dport 443 accept');
/** Opens the database port against the intent "no database from outside". */
const OPENS_5432 = FIXED.replace('tcp dport { 80, 443 } accept', 'tcp dport { 80, 443, 5432 } accept');
const pgWhy = await pgSkipReason();

describe.each(BACKENDS)('four eyes over the API (%s)', (backend) => {
  let h: Harness;
  const skip = backend === 'postgres' && pgWhy !== undefined;
  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
  });
  afterAll(async () => h?.close());

  const propose = async (user: 'alice' | 'admin', ruleset: string, host = 'web1') => {
    const p = await h.call(user, 'POST', '/changes', { target: { host }, ruleset, reason: 'test', file: 'd.nft' });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    return p.body;
  };

  it.skipIf(skip)('lets an override lapse when the author edits the ruleset to one with more blockers', async () => {
    const p = await propose('alice', CLOSES_80);
    const id = p.change.id as number;
    expect(p.plan.blocked).toBe(true);
    expect(p.plan.plan.blockers).toHaveLength(1);
    const o = await h.decide('admin', id, 'override', { reason: 'tcp/80 redirects are served by the LB now' });
    expect(o.status).toBe(200);
    expect(o.body.change.override).toMatchObject({ planId: p.plan.id, rulesetSha256: p.change.rulesetSha256 });
    expect(o.body.change.override.blockers).toHaveLength(1);

    const edited = await h.call('alice', 'PATCH', `/changes/${id}`, { ruleset: OUTAGE });
    expect(edited.status).toBe(200);
    expect(edited.body.plan.plan.blockers).toHaveLength(3);
    expect(edited.body.change.override).toBeNull();
    expect(edited.body.flags.join('\n')).toContain('BLOCKED');
    expect(edited.body.flags.join('\n')).not.toContain('BLOCK OVERRIDDEN');

    const approve = await h.decide('bob', id, 'approve');
    expect(approve.status).toBe(409);
    expect(approve.body.code).toBe('RAMPART_ERR_BLOCKED');
    expect((await h.call('alice', 'POST', `/changes/${id}/apply`, {})).status).toBe(409);
    const log = (await h.call('admin', 'GET', '/audit-log')).body.entries as { action: string; target: string }[];
    expect(log.some((e) => e.action === 'change.override-lapsed' && e.target === `change:${id}`)).toBe(true);
  });

  it.skipIf(skip)('refuses an override or approval sent for a plan that is no longer current', async () => {
    const p = await propose('alice', CLOSES_80, 'web2');
    const id = p.change.id as number;
    const read = p.plan.id as number;
    await h.call('alice', 'PATCH', `/changes/${id}`, { ruleset: OUTAGE });
    const o = await h.call('admin', 'POST', `/changes/${id}/override`, { plan: read, reason: 'what I read was fine' });
    expect(o.status).toBe(409);
    expect(o.body.code).toBe('RAMPART_ERR_STALE');
    expect(o.body.detail).toMatch(new RegExp(`you overrode plan ${read} of change ${id}, but its current plan is`));
  });

  it.skipIf(skip)('records an approval only for the plan the reviewer read (409 after an edit)', async () => {
    const p = await propose('alice', FIXED);
    const id = p.change.id as number;
    const read = p.plan.id as number;
    const edited = await h.call('alice', 'PATCH', `/changes/${id}`, { ruleset: OPENS_5432 });
    expect(edited.body.plan.id).not.toBe(read);
    const approve = await h.call('bob', 'POST', `/changes/${id}/approve`, { plan: read, comment: 'looks fine' });
    expect(approve.status).toBe(409);
    expect(approve.body.code).toBe('RAMPART_ERR_STALE');
    expect(approve.body.detail).toContain(`you approved plan ${read} of change ${id}, but its current plan is`);
    const view = (await h.call('vic', 'GET', `/changes/${id}`)).body;
    expect(view.reviews).toHaveLength(0);
    expect(view.change.state).toBe('planned');
    // without the plan id the request is not even valid
    const bare = await h.call('bob', 'POST', `/changes/${id}/approve`, {});
    expect(bare.status).toBe(400);
    expect(bare.body.errors.map((e: { field: string }) => e.field)).toContain('body.plan');
  });

  it.skipIf(skip)('treats an admin who edited the ruleset as an author who may not approve it', async () => {
    const p = await propose('alice', FIXED);
    const id = p.change.id as number;
    const edited = await h.call('admin', 'PATCH', `/changes/${id}`, { ruleset: OPENS_5432 });
    expect(edited.body.change.authors).toEqual(['alice', 'admin']);
    const own = await h.decide('admin', id, 'approve');
    expect(own.status).toBe(403);
    expect(own.body.code).toBe('RAMPART_ERR_REVIEW');
    expect(own.body.detail).toMatch(/admin edited the ruleset of change \d+ and is one of its authors/);
    // a reason-only edit does not make anyone an author
    const q = await propose('alice', FIXED);
    await h.call('admin', 'PATCH', `/changes/${q.change.id}`, { reason: 'clearer reason for the record' });
    expect((await h.call('vic', 'GET', `/changes/${q.change.id}`)).body.change.authors).toEqual(['alice']);
  });

  it.skipIf(skip)('refuses an approval through a token the author minted, under any name', async () => {
    const p = await propose('admin', FIXED);
    const id = p.change.id as number;
    const minted = await h.call('admin', 'POST', '/tokens', { name: `mallory-${backend}`, role: 'approver' });
    expect(minted.status).toBe(201);
    expect(minted.body.createdByToken).toMatch(/^[0-9a-f]{8}$/);
    const res = await fetch(`${h.url}/api/v1/changes/${id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${minted.body.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ plan: p.plan.id }),
    });
    expect(res.status).toBe(403);
    const body = (await res.json()) as { code: string; detail: string };
    expect(body.code).toBe('RAMPART_ERR_REVIEW');
    expect(body.detail).toMatch(/was minted by admin, an author of change/);
    // someone the author did not mint may
    expect((await h.decide('bob', id, 'approve')).body.change.state).toBe('approved');
  });

  it.skipIf(skip)('blocks a blank ruleset on a host that has a firewall, and refuses unmanaged tables', async () => {
    const first = await propose('alice', FIXED, 'web2');
    expect((await h.decide('bob', first.change.id, 'approve')).status).toBe(200);
    const applied = await h.call('alice', 'POST', `/changes/${first.change.id}/apply`, {});
    for (const j of applied.body.jobs) await h.call('admin', 'POST', `/jobs/${j.id}/report`, { state: 'done' });
    for (const blank of ['', '# nothing\n', 'flush ruleset\n']) {
      const p = await h.call('alice', 'POST', '/changes', {
        target: { host: 'web2' },
        ruleset: blank || ' ',
        reason: 'x y z',
      });
      expect(p.status).toBe(201);
      expect(p.body.plan.blocked).toBe(true);
      expect(p.body.plan.risk).toBe('critical');
      expect(p.body.plan.plan.hosts[0].notes[0]).toMatch(/the agent deletes them, and web2 runs without a firewall/);
    }
    const before = (await h.call('vic', 'GET', '/changes?limit=500')).body.changes.length;
    const nat = await h.call('alice', 'POST', '/changes', {
      target: { host: 'web2' },
      ruleset: 'table ip nat {\n  chain pre {\n    type nat hook prerouting priority -100;\n  }\n}\n',
      reason: 'only nat',
      file: 'nat.nft',
    });
    expect(nat.status).toBe(400);
    expect(nat.body.detail).toMatch(
      /^nat\.nft:1:10: defines table ip nat, which the agent does not manage on this host; expected a managed table \(inet filter\)/,
    );
    expect((await h.call('vic', 'GET', '/changes?limit=500')).body.changes.length).toBe(before);
  });

  it.skipIf(skip)('compares token names without case: Olga and olga are one person', async () => {
    const first = await h.call('admin', 'POST', '/tokens', { name: `Olga-${backend}`, role: 'approver' });
    expect(first.status).toBe(201);
    const twin = await h.call('admin', 'POST', '/tokens', { name: `olga-${backend}`, role: 'approver' });
    expect(twin.status).toBe(409);
    expect(twin.body.detail).toMatch(/compared without case/);
    // the same spelling is the same person's next token (rotation)
    expect((await h.call('admin', 'POST', '/tokens', { name: `Olga-${backend}`, role: 'approver' })).status).toBe(201);
  });

  it.skipIf(skip)(
    'authenticates before reading the body, and keeps bodies small where no ruleset travels',
    async () => {
      // Malformed JSON without a token: refused for the token (401), not for the body (400).
      const junk = await h.call(undefined, 'POST', '/changes', '{"target": ');
      expect(junk.status).toBe(401);
      const big = 'x'.repeat(17 * 1024 * 1024);
      const unauth = await fetch(`${h.url}/api/v1/changes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: big,
      });
      expect(unauth.status).toBe(401);
      const tooBig = await h.call('admin', 'POST', '/tokens', { name: 'x', role: 'viewer', pad: 'y'.repeat(100_000) });
      expect(tooBig.status).toBe(413);
      expect(tooBig.body.code).toBe('RAMPART_ERR_TOO_LARGE');
    },
  );

  it.skipIf(skip)('writes when a token was last used, and refuses an expired token', async () => {
    const before = Date.now();
    const t = await h.call('admin', 'POST', '/tokens', { name: `temp-${backend}`, role: 'viewer', expires: '90d' });
    const after = Date.now();
    expect(t.status).toBe(201);
    // 90 days from when the server took the request, however long the request took (ISO strings keep milliseconds)
    const expires = Date.parse(t.body.expiresAt);
    expect(expires).toBeGreaterThanOrEqual(before + 90 * 86_400_000);
    expect(expires).toBeLessThanOrEqual(after + 90 * 86_400_000);
    await fetch(`${h.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${t.body.token}` } });
    // Written after the answer, not in its way: wait for it.
    await vi.waitFor(
      async () => {
        const tokens = (await h.call('admin', 'GET', '/tokens')).body.tokens as { id: string; lastUsedAt: string }[];
        expect(tokens.find((x) => x.id === t.body.id)?.lastUsedAt).not.toBeNull();
      },
      { timeout: 15_000, interval: 100 },
    );
    const bad = await h.call('admin', 'POST', '/tokens', { name: 'temp2', role: 'viewer', expires: 'soonish' });
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/body\.expires: 'soonish'; expected a duration such as 90d/);
  });
});

describe('failed authentications', () => {
  let h: Harness;
  let clock = Date.parse('2026-12-01T10:00:00.000Z');
  beforeAll(async () => {
    h = await startHarness('sqlite', { now: () => new Date(clock), authLimits: { failures: 3, windowMs: 60_000 } });
  });
  afterAll(async () => h?.close());

  const bad = () =>
    fetch(`${h.url}/api/v1/whoami`, {
      headers: { authorization: 'Bearer rpt_00000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
    });

  it('slows down an address after N failures, lets valid tokens through, and audits the burst once', async () => {
    expect((await bad()).status).toBe(401);
    expect((await bad()).status).toBe(401);
    expect((await bad()).status).toBe(401);
    const limited = await bad();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await bad()).status).toBe(429);
    expect((await h.call('vic', 'GET', '/whoami')).status).toBe(200);
    const log = (await h.call('admin', 'GET', '/audit-log')).body.entries as { action: string; target: string }[];
    expect(log.filter((e) => e.action === 'auth.failures').map((e) => e.target)).toEqual([
      'address:127.0.0.1',
      'token:00000000',
    ]);
    const metrics = (await h.call(undefined, 'GET', '/metrics')).body as string;
    expect(metrics).toMatch(/rampart_auth_failures_total\{reason="unknown"\} 3/);
    expect(metrics).toMatch(/rampart_auth_failures_total\{reason="rate-limited"\} 2/);
    clock += 61_000;
    expect((await bad()).status).toBe(401);
  });

  it('refuses an expired token with a clear problem', async () => {
    const t = await h.call('admin', 'POST', '/tokens', { name: 'short', role: 'viewer', expires: '1h' });
    const use = () => fetch(`${h.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${t.body.token}` } });
    expect((await use()).status).toBe(200);
    clock += 3_600_000;
    const r = await use();
    expect(r.status).toBe(401);
    expect(((await r.json()) as { detail: string }).detail).toMatch(/token [0-9a-f]{8} \(short\) expired at /);
  });
});
