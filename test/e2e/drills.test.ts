/**
 * Issue 18's done-when, as CI runs it: `rampart drill run --all` (the built CLI, as root) plays all six drills on ONE
 * shop lab (real kernel, HAProxy with a TLS front end, two shop apps, `rampart serve`, agents, monitors, the traffic
 * counting on the access logs and a webhook receiver next to the server), built once by the command, the scenarios
 * one after the other in src/lab/drills/scenarios.ts's order with the clean-up between: the founding outage set by
 * hand, the same ruleset forced through Rampart, web2's shop process stopped, HAProxy stopped, the shop's certificate
 * near expiry, and last partial-block (a rule on the load balancer dropping four of the customers' five source
 * addresses). Each with steady customers through HAProxy and the scripted responder (acknowledges the page 1 s after
 * it arrives, then runs the scenario's remediation); scored by src/lab/drills/score.ts. The score table printed here
 * is the command's own stdout; the assertions read the JSON report it writes (--out).
 *
 * partial-block waits for the traffic detector's baseline of the customers (its expected rate at least theirs: about
 * 45 s of them) and keeps them shopping until its TrafficDrop resolved; that adds about a minute and a half to the
 * five others' (about 80 s). The command's arguments, refusals and report are tested in test/cli/drill-cli.test.ts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DrillReport } from '../../src/lab/drills/report.js';
import { DRILL_SCENARIOS } from '../../src/lab/drills/scenarios.js';
import type { DrillScore } from '../../src/lab/drills/score.js';
import { shopLabUnavailable } from '../../src/lab/shop-lab.js';
import { ensureBuilt, main, root } from '../cli/cli.js';

const skip = shopLabUnavailable(['ip', 'haproxy', 'nft', 'openssl']);
if (skip && process.env.CI === 'true') throw new Error(`CI needs the drills lab: ${skip}`);

/** Longest the whole command may take before it is stopped (SIGTERM: it removes its lab, then exits). */
const COMMAND_LIMIT_MS = 12 * 60_000;

describe.skipIf(skip !== undefined)('rampart drill run --all: the six drills on one lab', () => {
  const out = mkdtempSync(join(tmpdir(), 'rampart-drills-'));
  let code: number | null = null;
  let stdout = '';
  let report: DrillReport;
  const score = (name: string): DrillScore => {
    const d = report.drills.find((x) => x.scenario === name);
    expect(d, name).toBeDefined();
    expect(d?.skipped, name).toBeUndefined();
    expect(d?.error, name).toBeUndefined();
    expect(d?.score, name).toBeDefined();
    return d?.score as DrillScore;
  };

  beforeAll(async () => {
    ensureBuilt();
    const started = Date.now();
    const child = spawn(process.execPath, [main, 'drill', 'run', '--all', '--ack-delay', '1s', '--out', out], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1' },
    });
    const stop = setTimeout(() => child.kill('SIGTERM'), COMMAND_LIMIT_MS);
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    // its progress lines, as they come, with the time since the start
    child.stderr.on('data', (d) => {
      stderr += d;
      const lines = stderr.split('\n');
      stderr = lines.pop() ?? '';
      for (const l of lines) console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${l}`);
    });
    code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
    clearTimeout(stop);
    if (stderr) console.log(stderr);
    console.log(
      `rampart drill run --all: exit ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s\n${stdout}`,
    );
    report = JSON.parse(readFileSync(join(out, 'drill-report.json'), 'utf8')) as DrillReport;
  }, COMMAND_LIMIT_MS + 60_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('passes: every scenario played in order, each PASS with 0 duplicate pages, and prints the score table', () => {
    expect(report.drills.map((d) => d.scenario)).toEqual(DRILL_SCENARIOS.map((s) => s.name));
    for (const d of report.drills) {
      expect(d.error, d.scenario).toBeUndefined();
      expect(d.score?.problems, d.scenario).toEqual([]);
      expect(d.score?.notifications.duplicates, d.scenario).toBe(0);
    }
    expect(report.passed).toBe(true);
    expect(code).toBe(0);
    expect(stdout).toContain(`|  | founding postmortem | ${DRILL_SCENARIOS.map((s) => s.name).join(' | ')} |`);
    expect(stdout).toContain('| result | - | PASS | PASS | PASS | PASS | PASS | PASS |');
    expect(stdout.trimEnd().endsWith('PASS')).toBe(true);
  });

  it('founding-outage: detected, paged, the drift on web1 and web2 named, acknowledged, restored by hand', () => {
    const s = score('founding-outage');
    expect(s.usersAffected).toBe(true);
    expect(s.notify as number).toBeGreaterThanOrEqual(s.detect as number);
    expect(s.ack as number).toBeGreaterThan(s.notify as number);
    expect(s.mitigate as number).toBeGreaterThan(s.ack as number);
    expect(typeof s.recover).toBe('number');
    expect(s.alerts.fired).toContain('ServiceDown{service="shop"}');
    // the suspects route named the edit by hand on both web servers
    expect(typeof s.cause).toBe('number');
  });

  it('forced-change: the canary rolled back by its agent, the override and the rollback alerted', () => {
    const s = score('forced-change');
    expect(s.alerts.fired.some((a) => a.startsWith('ChangeRolledBack{'))).toBe(true);
    expect(s.mitigate).toBe('not applicable');
  });

  it('backend-down: redundancy degraded and paged, customers served (at most the requests in flight on web2 lost)', () => {
    const s = score('backend-down');
    expect(s.failedShare).toBeLessThanOrEqual(0.01);
    expect(s.alerts.fired).toContain('RedundancyDegraded{service="shop"}');
    expect(s.cause).toBe('not applicable');
  });

  it('lb-down: the public monitor DOWN though every backend is healthy, HAProxy started again', () => {
    const s = score('lb-down');
    expect(s.usersAffected).toBe(true);
    expect(typeof s.recover).toBe('number');
  });

  it('cert-expiring: the TLS front end serves a certificate with 5 days left: a warning, customers unaffected', () => {
    const s = score('cert-expiring');
    expect(s.alerts.fired).toContain('TlsCertificateExpiring{monitor="shop-tls",service="shop"}');
    expect(s.failedShare).toBe(0);
  });

  it('partial-block: 80% of the customers cut off on the load balancer, seen only as a traffic drop, paged, fixed by hand', () => {
    const s = score('partial-block');
    expect(s.usersAffected).toBe(true);
    // the monitors' vantage points are not in the blocked range: the traffic drop is the only sign
    expect(s.alerts.fired.length).toBeGreaterThan(0);
    for (const a of s.alerts.fired) expect(a).toMatch(/^TrafficDrop\{.*service="shop"/);
    expect(s.notify as number).toBeGreaterThanOrEqual(s.detect as number);
    expect(typeof s.recover).toBe('number');
    expect(s.failedShare).toBeGreaterThan(0);
    expect(s.cause).toBe('not applicable');
  });
});
