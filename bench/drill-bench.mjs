#!/usr/bin/env node
/**
 * The founding-outage drill (issue 18) several times on one shop lab: the median and range of its times from the
 * fault (detected = first alert, paged = first page accepted, acknowledged, mitigated = the baseline restored by
 * hand on both hosts, recovered = customers served again) and of the failed-request share, with the scripted responder
 * acknowledging 2 s after the page. See docs/drills.md for what each figure measures.
 *
 * With --compare, Prometheus + blackbox_exporter + Alertmanager (Debian's packages) run in the same lab, once on
 * Debian's defaults and once tuned to 5 s (src/lab/prometheus-stack.ts), paging the same receiver; the fault is then
 * held until each stack paged (so mitigated and recovered include that wait: compare detection and pages only).
 *
 * Usage (root; namespaces named rampart-*, removed at the end, also on failure):
 *   npm run build && node bench/drill-bench.mjs [--runs 5] [--scenario founding-outage] [--compare]
 */
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = join(import.meta.dirname, '..');
const dist = (p) => join(root, 'dist', p);
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    scenario: { type: 'string', default: 'founding-outage' },
    compare: { type: 'boolean', default: false },
  },
});
const { startDrillLab } = await import(dist('lab/drills/runner.js'));
const { findScenario } = await import(dist('lab/drills/scenarios.js'));
const scenario = findScenario(values.scenario);
if (!scenario) throw new Error(`unknown scenario ${values.scenario}`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : Number.NaN;
};

const drills = await startDrillLab({
  main: dist('cli/main.js'),
  log: (l) => console.error(l),
  traffic: Boolean(scenario.needsTraffic),
  ...(values.compare ? { compare: 'prometheus' } : {}),
});
if (drills.compareSkipped) console.error(`comparison skipped: ${drills.compareSkipped}`);
const compares = [];
for (const sig of ['SIGINT', 'SIGTERM'])
  process.once(sig, () => void drills.destroy().finally(() => process.exit(130)));
const rows = [];
try {
  for (let i = 1; i <= Number(values.runs); i++) {
    // a random phase against the monitors' 1 s interval, as an edit by hand has
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 1000)));
    const r = await drills.run(scenario, { ackDelayMs: 2000, rate: 20 });
    const s = r.score;
    console.error(`run ${i}: ${JSON.stringify(s ?? r)}`);
    if (s) rows.push(s);
    if (r.compare) {
      console.error(`run ${i} compare: ${JSON.stringify(r.compare)}`);
      compares.push(r.compare);
    }
  }
} finally {
  await drills.destroy();
}
const num = (k) => rows.map((r) => r[k]).filter((v) => typeof v === 'number');
const fmt = (xs, unit = 1000, digits = 1) =>
  xs.length
    ? `${(median(xs) / unit).toFixed(digits)} (${(Math.min(...xs) / unit).toFixed(digits)}-${(Math.max(...xs) / unit).toFixed(digits)})`
    : 'n/a';
console.log(
  `drill bench: ${values.scenario}, ${rows.length} runs (${rows.filter((r) => r.passed).length} passed); ${cpus().length} CPUs, load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}, node ${process.version}`,
);
console.log('| from the fault to | median s (min-max) | goal |');
console.log('| --- | ---: | ---: |');
console.log(`| first alert (detected) | ${fmt(num('detect'))} | ≤ 5 |`);
console.log(`| first page accepted | ${fmt(num('notify'))} | ≤ 6 |`);
console.log(`| acknowledged (responder: 2 s after the page) | ${fmt(num('ack'))} | - |`);
console.log(`| baseline restored by hand on both hosts (mitigated) | ${fmt(num('mitigate'))} | - |`);
console.log(`| customers served again (recovered) | ${fmt(num('recover'))} | ≤ 30 |`);
console.log(
  `| failed requests, % | ${fmt(
    rows.map((r) => r.failedShare * 100),
    1,
    1,
  )} | - |`,
);
console.log(`| duplicate pages (total) | ${rows.reduce((n, r) => n + r.notifications.duplicates, 0)} | 0 |`);
console.log(
  `| cause named (suspects route) | ${fmt(num('cause'))}${rows[0] && typeof rows[0].cause !== 'number' ? ` (${rows[0].cause}${rows[0].causeNote ? `: ${rows[0].causeNote}` : ''})` : ''} | ≤ 10 |`,
);
if (compares.length > 0) {
  const stacks = compares[0].map((c) => c.stack);
  console.log('\n| on the same fault | detected, median s (min-max) | paged, median s (min-max) | paged / Rampart |');
  console.log('| --- | ---: | ---: | ---: |');
  console.log(`| Rampart | ${fmt(num('detect'))} | ${fmt(num('notify'))} | 1 |`);
  for (const name of stacks) {
    const of = (k) => compares.map((c) => c.find((x) => x.stack === name)?.[k]).filter((v) => typeof v === 'number');
    const ratio = median(of('notify')) / median(num('notify'));
    const settings = compares[0].find((x) => x.stack === name)?.settings;
    console.log(
      `| Prometheus ${name} (${settings}) | ${fmt(of('detect'))} | ${fmt(of('notify'))} | ${ratio.toFixed(1)} |`,
    );
  }
}
