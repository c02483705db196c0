/**
 * Issue 18 §3 in CI: the founding-outage drill with Prometheus + blackbox_exporter + Alertmanager (Debian's packages,
 * installed by .ci/run) beside Rampart on the same lab, probing the shop's public URL and both backends, paging the
 * same receiver. CI runs the stack tuned to 5 s only: on Debian's defaults it pages after about two minutes, which
 * the bench measures (`node bench/drill-bench.mjs --compare`, figures in bench/RESULTS.md), not every CI run.
 * What is checked: the stack started, scraped, fired `probe_success == 0` and paged the receiver, and the drill
 * scored it next to Rampart's own response; the figures are printed, not asserted (a shared machine's timing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DrillLab, startDrillLab } from '../../src/lab/drills/runner.js';
import { findScenario } from '../../src/lab/drills/scenarios.js';
import { PROMETHEUS_TUNED, prometheusUnavailable } from '../../src/lab/prometheus-stack.js';
import { shopLabUnavailable } from '../../src/lab/shop-lab.js';
import { ensureBuilt, main } from '../cli/cli.js';

const skip = shopLabUnavailable(['ip', 'haproxy', 'nft', 'openssl']) ?? prometheusUnavailable();
if (skip && process.env.CI === 'true') throw new Error(`CI needs the drills lab and the Prometheus stack: ${skip}`);

describe.skipIf(skip !== undefined)('the founding outage side by side with Prometheus + Alertmanager (tuned)', () => {
  let drills: DrillLab;

  beforeAll(async () => {
    ensureBuilt();
    drills = await startDrillLab({ main, compare: 'prometheus', compareStacks: [PROMETHEUS_TUNED] });
  });
  afterAll(async () => drills?.destroy());

  it('pages from both stacks on the same fault and scores them side by side', async () => {
    expect(drills.compareSkipped).toBeUndefined();
    const s = findScenario('founding-outage');
    if (!s) throw new Error('founding-outage');
    const r = await drills.run(s, { ackDelayMs: 1000, compareHoldMs: 90_000, deadlineMs: 120_000 });
    expect(r.error).toBeUndefined();
    expect(r.score?.passed, JSON.stringify(r.score?.problems)).toBe(true);
    const [tuned] = r.compare ?? [];
    console.log(
      `founding-outage: Rampart detected ${r.score?.detect} ms, paged ${r.score?.notify} ms; ` +
        `Prometheus tuned (${tuned?.settings}) detected ${tuned?.detect} ms, paged ${tuned?.notify} ms`,
    );
    expect(tuned?.stack).toBe('tuned');
    expect(typeof tuned?.detect, `Prometheus's alert: ${tuned?.detect}`).toBe('number');
    expect(typeof tuned?.notify, `Prometheus's page: ${tuned?.notify}`).toBe('number');
    expect(typeof r.score?.notify).toBe('number');
  });
});
