#!/usr/bin/env node
/**
 * The dashboard's weight and speed (issue 17, section 2): the script and style the first load ships (raw and gzip),
 * and the overview's load time in Debian's chromium against a real `rampart serve` (dist/, SQLite in a temp dir)
 * with 10,000 monitors. The monitors are `from: [probes]` (no probe runs here, so they stay UNKNOWN): what is
 * measured is the page and the API it reads, not the prober (bench/monitor-bench.mjs measures that).
 *
 * Usage: npm run build && node bench/web-bench.mjs [--monitors 10000] [--runs 5]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'dist', 'cli', 'main.js');
const opt = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const MONITORS = Number(opt('monitors', 10_000));
const RUNS = Number(opt('runs', 5));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// 1. What the first load ships.
const web = join(root, 'dist', 'web');
let raw = 0;
let gz = 0;
const files = [];
for (const f of readdirSync(web)) {
  const body = readFileSync(join(web, f));
  const z = gzipSync(body).length;
  files.push(`${f} ${body.length} B (gzip ${z} B)`);
  if (/\.(js|css|html)$/.test(f)) {
    raw += statSync(join(web, f)).size;
    gz += z;
  }
}
// scripts/build-web.mjs says which scripts the first load fetches (the entry and its static imports); the charts
// chunk is loaded on demand by the pages that draw charts.
const bundle = JSON.parse(readFileSync(join(web, 'bundle.json'), 'utf8'));
const script = bundle.firstLoad;
const scriptBytes = script.reduce((n, f) => n + statSync(join(web, f)).size, 0);
const scriptGz = script.reduce((n, f) => n + gzipSync(readFileSync(join(web, f))).length, 0);
const lazyBytes = bundle.onDemand.reduce((n, f) => n + statSync(join(web, f)).size, 0);
console.log(`files: ${files.join(', ')}`);
console.log(
  `first load script ${scriptBytes} B (${(scriptBytes / 1024).toFixed(1)} KiB, gzip ${scriptGz} B, goal <= 200 KB): ${script.join(', ')}; on demand ${lazyBytes} B (${bundle.onDemand.join(', ')}); everything ${raw} B, gzip ${gz} B`,
);

// 2. The overview with MONITORS monitors.
const dir = mkdtempSync(join(tmpdir(), 'rampart-webbench-'));
const lines = ['site: bench', 'hosts: []', 'monitors:'];
for (let i = 0; i < MONITORS; i++) {
  lines.push(`  - name: m${i}`, '    tcp: {host: 127.0.0.1, port: 9}', '    from: [probes]');
}
writeFileSync(join(dir, 'rampart.yaml'), `${lines.join('\n')}\n`);
const init = spawnSync(process.execPath, [main, 'init', '--data-dir', join(dir, 'data'), '--json'], {
  encoding: 'utf8',
});
const admin = JSON.parse(init.stdout).token;
const serve = spawn(process.execPath, [
  main,
  'serve',
  '--data-dir',
  join(dir, 'data'),
  '--config',
  join(dir, 'rampart.yaml'),
  '--listen',
  '127.0.0.1:0',
  '--log-level',
  'warn',
]);
let out = '';
serve.stdout.on('data', (d) => (out += d));
serve.stderr.on('data', (d) => (out += d));
const url = await new Promise((resolve, reject) => {
  const t = setInterval(() => {
    const m = /listening on (http:\/\/\S+)/.exec(out);
    if (m) {
      clearInterval(t);
      resolve(m[1]);
    }
  }, 100);
  serve.on('exit', (c) => reject(new Error(`serve exited ${c}: ${out}`)));
});
const profile = mkdtempSync(join(tmpdir(), 'rampart-webbench-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.RAMPART_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${url}/`);
  await page.getByLabel('API token').fill(admin);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  const api = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const res = await page.evaluate(async () => (await fetch('/api/v1/monitors?limit=25&state=DOWN')).json());
    api.push(performance.now() - t0);
    if (res.counts.UNKNOWN + res.counts.UP + res.counts.DOWN + res.counts.DEGRADED !== MONITORS)
      throw new Error(`expected ${MONITORS} monitors: ${JSON.stringify(res.counts)}`);
  }
  const loads = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await page.goto(`${url}/#/overview`, { waitUntil: 'commit' });
    await page.reload({ waitUntil: 'commit' });
    await page.getByText(`UNKNOWN ${MONITORS}`).waitFor({ timeout: 120_000 });
    loads.push(performance.now() - t0);
  }
  const pageMs = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await page.goto(`${url}/#/monitors`, { waitUntil: 'commit' });
    await page.reload({ waitUntil: 'commit' });
    await page.getByText(`${MONITORS} monitors, 1–50 shown`).waitFor({ timeout: 120_000 });
    pageMs.push(performance.now() - t0);
  }
  console.log(
    `web bench: ${MONITORS} monitors, ${RUNS} runs; ${cpus().length} CPUs ${cpus()[0]?.model ?? ''}, node ${process.version}, load ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  console.log(
    `GET /monitors?limit=25&state=DOWN from the page: median ${median(api).toFixed(0)} ms (${api.map((x) => x.toFixed(0)).join(', ')})`,
  );
  console.log(
    `overview reload to counts shown: median ${median(loads).toFixed(0)} ms (${loads.map((x) => x.toFixed(0)).join(', ')})`,
  );
  console.log(
    `monitors page reload to first page shown: median ${median(pageMs).toFixed(0)} ms (${pageMs.map((x) => x.toFixed(0)).join(', ')})`,
  );
} finally {
  await context.close();
  serve.kill('SIGTERM');
  await new Promise((r) => serve.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
  rmSync(profile, { recursive: true, force: true });
}
