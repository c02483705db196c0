/**
 * Issue 18's drills as `rampart drill run --all` plays them, on ONE shop lab (real kernel, HAProxy with a TLS front
 * end, two shop apps, `rampart serve`, agents, monitors and a webhook receiver next to the server) built once, the
 * scenarios one after the other with the clean-up between: the founding outage set by hand, the same ruleset forced
 * through Rampart, web2's shop process stopped, HAProxy stopped, the shop's certificate near expiry. Each with steady
 * customers through HAProxy and the scripted responder (acknowledges the page 1 s after it arrives, then runs the
 * scenario's remediation); scored by src/lab/drills/score.ts and printed against the founding postmortem.
 *
 * Not here: partial-block, whose traffic detector needs a baseline of 75 s of customers first (about 100 s more);
 * `rampart drill run --all` and bench/drill-bench.mjs play it (figures in bench/RESULTS.md).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DrillLab, type DrillResult, startDrillLab } from '../../src/lab/drills/runner.js';
import { findScenario } from '../../src/lab/drills/scenarios.js';
import { type DrillScore, renderScoreTable } from '../../src/lab/drills/score.js';
import { shopLabUnavailable } from '../../src/lab/shop-lab.js';
import { ensureBuilt, main } from '../cli/cli.js';

const skip = shopLabUnavailable(['ip', 'haproxy', 'nft', 'openssl']);
if (skip && process.env.CI === 'true') throw new Error(`CI needs the drills lab: ${skip}`);

describe.skipIf(skip !== undefined)('the drills on one lab (rampart drill run --all, without partial-block)', () => {
  let drills: DrillLab;
  const scores: DrillScore[] = [];
  const started = Date.now();
  const run = async (name: string): Promise<DrillScore> => {
    const s = findScenario(name);
    if (!s) throw new Error(name);
    const t0 = Date.now();
    const r: DrillResult = await drills.run(s, { ackDelayMs: 1000, rate: 20, deadlineMs: 60_000 });
    console.log(`drill ${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if (r.score) scores.push(r.score);
    expect(r.error).toBeUndefined();
    const score = r.score as DrillScore;
    expect(score.problems).toEqual([]);
    expect(score.notifications.duplicates).toBe(0);
    return score;
  };

  beforeAll(async () => {
    ensureBuilt();
    drills = await startDrillLab({ main });
    console.log(`drills lab up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 180_000);
  afterAll(async () => {
    await drills?.destroy();
    if (scores.length) console.log(`drills:\n${renderScoreTable(scores)}`);
  });

  it('founding-outage: detected, paged, the drift on web1 and web2 named, acknowledged, restored by hand', async () => {
    const s = await run('founding-outage');
    expect(s.usersAffected).toBe(true);
    expect(s.notify as number).toBeGreaterThanOrEqual(s.detect as number);
    expect(s.ack as number).toBeGreaterThan(s.notify as number);
    expect(s.mitigate as number).toBeGreaterThan(s.ack as number);
    expect(typeof s.recover).toBe('number');
    expect(s.alerts.fired).toContain('ServiceDown{service="shop"}');
    // the suspects route named the edit by hand on both web servers
    expect(typeof s.cause).toBe('number');
  }, 240_000);

  it('forced-change: the canary rolled back by its agent, the override and the rollback alerted', async () => {
    const s = await run('forced-change');
    expect(s.alerts.fired.some((a) => a.startsWith('ChangeRolledBack{'))).toBe(true);
    expect(s.mitigate).toBe('not applicable');
  }, 240_000);

  it('backend-down: redundancy degraded and paged, customers served (at most the requests in flight on web2 lost)', async () => {
    const s = await run('backend-down');
    expect(s.failedShare).toBeLessThanOrEqual(0.01);
    expect(s.alerts.fired).toContain('RedundancyDegraded{service="shop"}');
    expect(s.cause).toBe('not applicable');
  }, 240_000);

  it('lb-down: the public monitor DOWN though every backend is healthy, HAProxy started again', async () => {
    const s = await run('lb-down');
    expect(s.usersAffected).toBe(true);
    expect(typeof s.recover).toBe('number');
  }, 240_000);

  it('cert-expiring: the TLS front end serves a certificate with 5 days left: a warning, customers unaffected', async () => {
    const s = await run('cert-expiring');
    expect(s.alerts.fired).toContain('TlsCertificateExpiring{monitor="shop-tls",service="shop"}');
    expect(s.failedShare).toBe(0);
  }, 240_000);
});
