#!/usr/bin/env node
/**
 * The founding-outage drill (issue 18) several times on one shop lab: the median and range of its times from the
 * fault (detected = first alert, paged = first page accepted, acknowledged, mitigated = the baseline restored by
 * hand on both hosts, recovered = customers served again) and of the failed-request share, with the scripted responder
 * acknowledging 2 s after the page. See docs/drills.md for what each figure measures.
 *
 * Usage (root; namespaces named rampart-*, removed at the end, also on failure):
 *   npm run build && node bench/drill-bench.mjs [--runs 5] [--scenario founding-outage]
 */
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = join(import.meta.dirname, '..');
const dist = (p) => join(root, 'dist', p);
const { values } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, scenario: { type: 'string', default: 'founding-outage' } },
});
const { startDrillLab } = await import(dist('lab/drills/runner.js'));
const { findScenario } = await import(dist('lab/drills/scenarios.js'));
const scenario = findScenario(values.scenario);
if (!scenario) throw new Error(`unknown scenario ${values.scenario}`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : Number.NaN;
};

const drills = await startDrillLab({ main: dist('cli/main.js'), log: (l) => console.error(l) });
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
