/**
 * The agent's safe apply against a real server (on 127.0.0.1) and a real netfilter (a namespace this test creates):
 * a job it may apply is applied, confirmed and committed, leaving every unmanaged table alone; a job that is stale,
 * unapproved or whose ruleset is not the approved one is refused by the agent itself, with nothing applied, even
 * when the server handed it out (here the job is altered after the server handed it out, as a compromised or
 * buggy server would).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { AgentJob } from '../../src/agent/protocol.js';
import { type Harness, startHarness } from '../server/harness.js';
import { createTestNamespace, kernelSkipReason, type TestNamespace } from './ns.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const FIXED = readFileSync(join(fixtures, 'queries', 'founding-fixed.nft'), 'utf8');
const KEEP =
  'table ip keepme {\n\tchain c {\n\t\ttype filter hook input priority 10; policy accept;\n\t\tcounter\n\t}\n}\n';
const skip = kernelSkipReason();
if (skip && process.env.CI === 'true') throw new Error(`CI needs the agent kernel tests: ${skip}`);

describe.skipIf(skip !== undefined)('agent jobs against a real server and kernel', () => {
  let h: Harness;
  let ns: TestNamespace;
  let agent: Agent;
  const dir = mkdtempSync(join(tmpdir(), 'rampart-agent-job-'));
  const logs: string[] = [];

  beforeAll(async () => {
    ns = createTestNamespace();
    ns.run(['nft', '-f', '-'], KEEP);
    h = await startHarness('sqlite', { config: join(fixtures, 'config', 'agents.yaml') });
    agent = new Agent({ server: h.url, token: h.tokens.web1, stateDir: dir, exec: ns.exec, log: (l) => logs.push(l) });
    expect(await agent.connect()).toBe('web1');
  });
  afterAll(async () => {
    ns?.remove();
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function queued(ruleset: string, reason: string): Promise<{ id: number; job: AgentJob }> {
    const id = (await h.call('alice', 'POST', '/changes', { target: { host: 'web1' }, ruleset, reason })).body.change
      .id as number;
    await h.decide('bob', id, 'approve');
    await h.call('alice', 'POST', `/changes/${id}/apply`, {});
    const job = (await h.call('web1', 'GET', '/agent/next')).body.job as AgentJob;
    expect(job.changeId).toBe(id);
    return { id, job };
  }

  const lastEvent = async (id: number) => (await h.call('vic', 'GET', `/changes/${id}`)).body.events.at(-1);

  it.each([
    ['a stale plan', (j: AgentJob) => ({ ...j, plan: { ...j.plan, stale: true } }), /plan \d+ is stale/],
    ['an unapproved plan', (j: AgentJob) => ({ ...j, plan: { ...j.plan, approved: false } }), /not approved/],
    [
      'a ruleset that is not the approved one',
      (j: AgentJob) => ({ ...j, ruleset: `${j.ruleset}\n# extra\n` }),
      /SHA-256/,
    ],
    ['a job for another host', (j: AgentJob) => ({ ...j, host: 'web2' }), /for web2, this agent is web1/],
  ])('refuses %s and applies nothing', async (_name, alter, why) => {
    const before = ns.run(['nft', 'list', 'ruleset']);
    const { id, job } = await queued(FIXED, 'refusal test');
    await agent.handle(alter(job));
    expect(await agent.drain()).toBe(true);
    expect(ns.run(['nft', 'list', 'ruleset'])).toBe(before);
    const e = await lastEvent(id);
    expect(e).toMatchObject({ kind: 'refused', source: 'agent' });
    expect(e.detail).toMatch(why);
    expect((await h.call('vic', 'GET', `/changes/${id}`)).body.change.state).toBe('failed');
  });

  it('applies, confirms and commits a valid job, replacing only the managed table', async () => {
    const { id, job } = await queued(FIXED, 'valid job');
    await agent.handle(job);
    expect(await agent.drain()).toBe(true);
    const live = ns.run(['nft', 'list', 'ruleset']);
    expect(live).toContain('table inet filter');
    expect(live).toContain('tcp dport { 80, 443 } accept');
    expect(live).toContain('table ip keepme'); // `flush ruleset` in the desired text did not flush it
    const v = (await h.call('vic', 'GET', `/changes/${id}`)).body;
    expect(v.change.state).toBe('applied');
    expect(
      v.events.filter((e: { source: string }) => e.source === 'agent').map((e: { kind: string }) => e.kind),
    ).toEqual(['pending-saved', 'applied', 'health-ok', 'committed']);
  });
});
