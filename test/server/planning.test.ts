/**
 * One large proposal cannot stall everyone (issue 12): plans run on real worker threads with a time and memory
 * budget, a proposal whose plan takes longer than the answer may wait is answered 202 and followed to its end, a
 * small plan is not queued behind a large one, a plan over its budget leaves the change plan-failed with the
 * budget's error, and a change left planning by a stopped server is planned again by the next.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Each test waits for plans on worker threads; a busy machine makes that slow, never wrong.
const SLOW = { timeout: 300_000 };

import { generateAdversarialNft } from '../../src/lab/engine-generator.js';
import { BACKENDS, type Harness, pgSkipReason, SHOP_CONFIG, startHarness } from './harness.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const FIXED = readFileSync(join(fixtures, 'queries', 'founding-fixed.nft'), 'utf8');
/** 50,000 rules that overlap on purpose: seconds of planning at the least, whatever the engine's progress. */
const LARGE = generateAdversarialNft(50_000, 7).replace('table ip filter', 'table inet filter');
const pgWhy = await pgSkipReason();

const dir = mkdtempSync(join(tmpdir(), 'rampart-planning-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** shop.yaml with extra `policy:` lines. */
function shopWith(name: string, policy: string): string {
  const text = readFileSync(SHOP_CONFIG, 'utf8').replace('policy:\n', `policy:\n${policy}`);
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const propose = (h: Harness, ruleset: string, host = 'web1') =>
  h.call('alice', 'POST', '/changes', { target: { host }, ruleset, reason: 'planning test', file: 'd.nft' });

describe.each(BACKENDS)('plans off the event loop, within a budget (%s)', (backend) => {
  const skip = backend === 'postgres' && pgWhy !== undefined;

  describe('a large plan and a small one', () => {
    let h: Harness;
    beforeAll(async () => {
      if (!skip) h = await startHarness(backend, { worker: true, planWaitMs: 300 });
    });
    afterAll(async () => h?.close());

    it.skipIf(skip)('answers 202 for the large one and plans the small one beside it', SLOW, async () => {
      const large = await propose(h, LARGE);
      expect(large.status).toBe(202);
      expect(large.body.change.state).toBe('planning');
      expect(large.body.plan).toBeUndefined();
      const id = large.body.change.id as number;
      const small = await propose(h, FIXED, 'web2');
      expect([201, 202]).toContain(small.status);
      const done = await h.until(small.body.change.id, (v) => v.change.state === 'planned');
      expect(done.plan.blocked).toBe(false);
      const meanwhile = (await h.call('vic', 'GET', `/changes/${id}`)).body;
      expect(meanwhile.change.state).toBe('planning');
      expect(meanwhile.planning.state).toBe('running');
      expect((await h.call(undefined, 'GET', '/healthz')).status).toBe(200);
      const metrics = (await h.call(undefined, 'GET', '/metrics')).body as string;
      expect(metrics).toMatch(/rampart_plans\{state="running"\} 1/);
      expect(metrics).toMatch(/rampart_changes\{state="planning"\} 1/);
      // reviews wait for the plan
      const early = await h.call('bob', 'POST', `/changes/${id}/approve`, { plan: 1 });
      expect(early.status).toBe(409);
    });
  });

  describe('budgets', () => {
    let h: Harness;
    const config = shopWith(`timeout-${backend}.yaml`, '  plan-timeout: 1s\n');
    beforeAll(async () => {
      if (!skip) h = await startHarness(backend, { worker: true, planWaitMs: 100, config });
    });
    afterAll(async () => h?.close());

    it.skipIf(skip)(
      'leaves a change whose plan takes too long plan-failed with RAMPART_ERR_PLAN_TIMEOUT',
      SLOW,
      async () => {
        const p = await propose(h, LARGE);
        expect([201, 202]).toContain(p.status);
        const id = p.body.change.id as number;
        const failed = await h.until(id, (v) => v.change.state !== 'planning');
        expect(failed.change.state).toBe('plan-failed');
        expect(failed.change.planError).toMatchObject({ code: 'RAMPART_ERR_PLAN_TIMEOUT' });
        expect(failed.change.planError.message).toMatch(/longer than 1 s \(policy\.plan-timeout\)/);
        expect(failed.flags.join('\n')).toContain('PLAN FAILED (RAMPART_ERR_PLAN_TIMEOUT)');
        const log = (await h.call('admin', 'GET', '/audit-log')).body.entries as { action: string; target: string }[];
        expect(log.some((e) => e.action === 'change.plan-failed' && e.target === `change:${id}`)).toBe(true);
        // an admin raises the budget, as the message says; the author edits: planned again, on a fresh thread
        writeFileSync(config, readFileSync(SHOP_CONFIG, 'utf8'));
        expect((await h.call('admin', 'POST', '/config/reload')).status).toBe(200);
        const edited = await h.call('alice', 'PATCH', `/changes/${id}`, { ruleset: FIXED });
        expect([200, 202], JSON.stringify(edited.body)).toContain(edited.status);
        const planned = await h.until(id, (v) => v.change.state === 'planned');
        expect(planned.change.planError).toBeNull();
      },
    );
  });

  describe('memory', () => {
    let h: Harness;
    beforeAll(async () => {
      if (!skip) {
        h = await startHarness(backend, {
          worker: true,
          planWaitMs: 100,
          config: shopWith(`memory-${backend}.yaml`, '  plan-memory: 64\n'),
        });
      }
    });
    afterAll(async () => h?.close());

    it.skipIf(skip)(
      'leaves a change whose plan needs too much memory plan-failed with RAMPART_ERR_PLAN_MEMORY',
      async () => {
        const p = await propose(h, LARGE);
        const failed = await h.until(p.body.change.id, (v) => v.change.state !== 'planning');
        expect(failed.change.state).toBe('plan-failed');
        expect(failed.change.planError).toMatchObject({ code: 'RAMPART_ERR_PLAN_MEMORY' });
        expect((await h.call(undefined, 'GET', '/healthz')).status).toBe(200);
      },
    );
  });

  describe('a restart', () => {
    let h: Harness;
    let id = 0;
    beforeAll(async () => {
      if (skip) return;
      h = await startHarness(backend, {
        worker: true,
        before: async (store) => {
          // What a server that stopped mid-plan leaves behind: a change planning, and no plan.
          id = await store.write({ name: 'alice', role: 'operator', from: 'test' }, async (w) => {
            const at = new Date().toISOString();
            const c = await w.insertChange({
              target: { kind: 'host', name: 'web1' },
              hosts: ['web1'],
              author: 'alice',
              reason: 'left planning',
              ticket: null,
              format: 'nft-text',
              ruleset: FIXED,
              createdAt: at,
              updatedAt: at,
              state: 'planning',
            });
            await w.audit({ action: 'change.propose', target: `change:${c.id}` });
            return c.id;
          });
        },
      });
    });
    afterAll(async () => h?.close());

    it.skipIf(skip)('plans again what the previous process left planning', SLOW, async () => {
      const v = await h.until(id, (x) => x.change.state !== 'planning');
      expect(v.change.state).toBe('planned');
      expect(v.plan.blocked).toBe(false);
    });
  });
});
