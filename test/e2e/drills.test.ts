/**
 * Issue 18's drills in one shop lab (real kernel, HAProxy, two shop apps, `rampart serve`, agents, monitors and a
 * webhook receiver next to the server), built once: the founding outage set by hand, then web2's shop process
 * stopped, each with steady customers through HAProxy and the scripted responder (acknowledges the page 1 s after
 * it arrives, then remediates: the baseline restored by hand (a change waits in the redundancy guard while both backends are down); web2's process started again).
 * Scored by src/lab/drills/score.ts; printed against the founding postmortem.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DrillLab, type DrillResult, startDrillLab } from '../../src/lab/drills/runner.js';
import { findScenario } from '../../src/lab/drills/scenarios.js';
import { type DrillScore, renderScoreTable } from '../../src/lab/drills/score.js';
import { shopLabUnavailable } from '../../src/lab/shop-lab.js';
import { ensureBuilt, main } from '../cli/cli.js';

const skip = shopLabUnavailable(['ip', 'haproxy', 'nft']);
if (skip && process.env.CI === 'true') throw new Error(`CI needs the drills lab: ${skip}`);

describe.skipIf(skip !== undefined)('drills in the shop lab (the founding outage, a backend down)', () => {
  let drills: DrillLab;
  const scores: DrillScore[] = [];
  const run = async (name: string): Promise<DrillResult> => {
    const s = findScenario(name);
    if (!s) throw new Error(name);
    const r = await drills.run(s, { ackDelayMs: 1000, rate: 20, deadlineMs: 60_000 });
    if (r.score) scores.push(r.score);
    return r;
  };

  beforeAll(async () => {
    ensureBuilt();
    drills = await startDrillLab({ main });
  }, 180_000);
  afterAll(async () => {
    await drills?.destroy();
    if (scores.length) console.log(`drills:\n${renderScoreTable(scores)}`);
  });

  it('founding-outage: detected, paged, acknowledged, restored by hand; the expected alerts only', async () => {
    const r = await run('founding-outage');
    expect(r.error).toBeUndefined();
    const s = r.score as DrillScore;
    expect(s.problems).toEqual([]);
    expect(s.usersAffected).toBe(true);
    expect(typeof s.detect).toBe('number');
    expect(typeof s.notify).toBe('number');
    expect(s.notify as number).toBeGreaterThanOrEqual(s.detect as number);
    expect(s.ack as number).toBeGreaterThan(s.notify as number);
    expect(s.mitigate as number).toBeGreaterThan(s.ack as number);
    expect(typeof s.recover).toBe('number');
    expect(s.notifications.duplicates).toBe(0);
    expect(s.alerts.fired).toContain('ServiceDown{service="shop"}');
    // the customers were cut off from the fault until the fix, not before nor long after it
    expect(s.failedShare).toBeGreaterThan(0);
    expect(s.cause).toBe('not measured');
  }, 240_000);

  it('backend-down: redundancy degraded and paged, customers served (at most the requests in flight on web2 lost)', async () => {
    const r = await run('backend-down');
    expect(r.error).toBeUndefined();
    const s = r.score as DrillScore;
    expect(s.problems).toEqual([]);
    // at most the requests in flight on the process when it died (HAProxy cannot retry a request already sent)
    expect(s.failedShare).toBeLessThanOrEqual(0.01);
    expect(s.alerts.fired).toContain('RedundancyDegraded{service="shop"}');
    expect(s.notifications.duplicates).toBe(0);
  }, 240_000);
});
