#!/usr/bin/env node
/**
 * Traffic-drop detector benchmark (issue 14, §3): detection delay per drop kind and false alerts per simulated week,
 * for src/monitor/traffic-drop.ts and, in the same run on the same series, a naive baseline.
 *
 * For each seed it generates four weeks of 10 s request rates with src/lab/traffic-generator.ts (daily and weekly
 * seasonality, Poisson noise, a marketing spike, a holiday, deploy restarts, missing points; 100%, 80% and 30% drops
 * injected at fixed times) and feeds every point to:
 *
 * - rampart: TrafficDropDetector with its defaults (share 0.5, 20 s, floor 1 req/s), or `--share`;
 * - naive: `rate < share * avg_over_time(rate[1h])` for 20 s, as a Prometheus alerting rule would say it (the same
 *   share, the same 20 s, the same floor on that mean), the usual first rule.
 *
 * A drop is found when an alert is declared while it lasts; its delay is from the drop's start to the declaration.
 * Every other alert is false. It also times the detector alone (CPU per point, median over the seeds).
 *
 * Usage: npm run build && node bench/traffic-drop-bench.mjs [--seeds 1,2,3,4,5] [--share 0.5] [--days 28]
 * Writes bench/out/traffic-drop.json.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const dist = join(root, 'dist');
const outDir = join(here, 'out');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const mod = (rel) => {
  const file = join(dist, rel);
  if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build first`);
  return import(pathToFileURL(file).href);
};

const seeds = arg('seeds', '1,2,3,4,5').split(',').map(Number);
const share = Number(arg('share', '0.5'));
const days = Number(arg('days', '28'));
const { TrafficDropDetector } = await mod('monitor/traffic-drop.js');
const { generateTraffic } = await mod('lab/traffic-generator.js');

/**
 * The naive rule, as a Prometheus alert would say it: `rate < share * avg_over_time(rate[1h])` with `for: 20s` and
 * the mean above the floor. Stateless like Prometheus: firing while the condition holds, resolved when it does not.
 */
function naive(points, { share, forMs = 20_000, floor = 1, maxStepMs = 10_000 }) {
  const events = [];
  const window = []; // [t, rate] of the last hour, this point included
  let sum = 0;
  let lastT = null;
  let lowSince = null;
  let lowCovered = 0;
  let firing = false;
  for (const p of points) {
    const step = lastT === null ? maxStepMs : Math.min(p.t - lastT, maxStepMs);
    lastT = p.t;
    window.push([p.t, p.rate]);
    sum += p.rate;
    while (window[0][0] <= p.t - 3_600_000) sum -= window.shift()[1];
    const mean = window.length >= 60 ? sum / window.length : 0;
    if (mean >= floor && p.rate < share * mean) {
      if (lowSince === null) {
        lowSince = p.t - step;
        lowCovered = 0;
      }
      lowCovered += step;
      if (!firing && lowCovered >= forMs) {
        events.push({ kind: 'traffic-drop', at: p.t, since: lowSince });
        firing = true;
      }
    } else {
      if (firing) events.push({ kind: 'traffic-recovered', at: p.t });
      firing = false;
      lowSince = null;
    }
  }
  return events;
}

function score(events, drops) {
  const found = new Map();
  let falseAlerts = 0;
  for (const e of events) {
    if (e.kind !== 'traffic-drop') continue;
    const i = drops.findIndex((d) => e.at >= d.at && e.at <= d.at + d.durationMs);
    if (i < 0) falseAlerts++;
    else if (!found.has(i)) found.set(i, e.at - drops[i].at);
  }
  return { found, falseAlerts };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const detectors = {
  rampart: (points) => {
    const d = new TrafficDropDetector('shop', { share });
    const ev = [];
    for (const p of points) for (const e of d.observe(p)) ev.push(e);
    return ev;
  },
  naive: (points) => naive(points, { share }),
};

const results = { rampart: {}, naive: {} };
const cpuPerPointUs = [];
let totalWeeks = 0;
let totalPoints = 0;
for (const seed of seeds) {
  const g = generateTraffic({ seed, days });
  totalWeeks += days / 7;
  totalPoints += g.points.length;
  for (const [name, run] of Object.entries(detectors)) {
    const t0 = process.cpuUsage();
    const events = run(g.points);
    const cpu = process.cpuUsage(t0);
    if (name === 'rampart') cpuPerPointUs.push((cpu.user + cpu.system) / g.points.length);
    const { found, falseAlerts } = score(events, g.drops);
    const r = results[name];
    r.falseAlerts = (r.falseAlerts ?? 0) + falseAlerts;
    g.drops.forEach((d, i) => {
      const kind = `${Math.round(d.share * 100)}%`;
      r[kind] ??= { injected: 0, found: 0, delays: [] };
      r[kind].injected++;
      if (found.has(i)) {
        r[kind].found++;
        r[kind].delays.push(found.get(i) / 1000);
      }
    });
  }
}

const kinds = ['100%', '80%', '30%'];
console.log(
  `traffic-drop bench: ${seeds.length} seeds x ${days} days (${totalWeeks} simulated weeks, ${totalPoints} points), ` +
    `share ${share}; ${cpus().length} CPUs, load ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}, node ${process.version}`,
);
console.log('| detector | drop | found | delay s median (min-max) |');
console.log('| --- | --- | ---: | ---: |');
for (const name of ['rampart', 'naive']) {
  for (const k of kinds) {
    const r = results[name][k];
    if (!r) continue;
    const d = r.delays;
    const delay = d.length ? `${median(d)} (${Math.min(...d)}-${Math.max(...d)})` : '-';
    console.log(`| ${name} | ${k} | ${r.found}/${r.injected} | ${delay} |`);
  }
}
console.log('| detector | false alerts | per simulated week |');
console.log('| --- | ---: | ---: |');
for (const name of ['rampart', 'naive']) {
  const f = results[name].falseAlerts;
  console.log(`| ${name} | ${f} | ${(f / totalWeeks).toFixed(2)} |`);
}
console.log(
  `rampart CPU per point: median ${median(cpuPerPointUs).toFixed(2)} us (` +
    `${cpuPerPointUs.map((x) => x.toFixed(2)).join(', ')} per seed)`,
);
mkdirSync(outDir, { recursive: true });
writeFileSync(
  join(outDir, 'traffic-drop.json'),
  `${JSON.stringify({ seeds, days, share, weeks: totalWeeks, results, cpuPerPointUs }, null, 2)}\n`,
);
