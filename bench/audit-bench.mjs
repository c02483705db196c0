#!/usr/bin/env node
/**
 * `rampart audit` benchmark (issue 4: a 10k-rule ruleset audited in under 2 s, 100k in under 20 s, end to end as a
 * CLI process).
 *
 * For each shape of src/lab/engine-generator.ts (kube-proxy, hand-written firewall, adversarial) and size, it writes
 * the ruleset once, then times whole processes (median of --runs fresh runs, each killed after --timeout seconds):
 * - audit:    `rampart audit FILE --format json` (every rule of the catalogue that needs no config or live mode);
 * - baseline: `rampart parse FILE --json` in the same run: reading and parsing alone, the floor any audit pays.
 * The ratio audit / parse says how much the analysis adds. Peak RSS from /proc (VmHWM) is not available for a child
 * process here, so the child reports its own process.resourceUsage().maxRSS through an --import hook.
 *
 * Usage: npm run build && node bench/audit-bench.mjs [--shapes kube-proxy,firewall,adversarial]
 *          [--sizes 1000,10000,100000] [--runs 3] [--timeout 120] [--seed 42]
 * Writes bench/out/audit-results.json and prints a markdown table for bench/RESULTS.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const outDir = join(here, 'out');
const cli = join(root, 'dist', 'cli', 'main.js');
const TARGET_MS = { 10000: 2000, 100000: 20000 };

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

if (!existsSync(cli)) {
  console.error('dist/ is missing: run `npm run build` first');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const shapes = arg('shapes', 'kube-proxy,firewall,adversarial').split(',');
const sizes = arg('sizes', '1000,10000,100000').split(',').map(Number);
const runs = Number(arg('runs', '3'));
const timeoutS = Number(arg('timeout', '120'));
const seed = Number(arg('seed', '42'));
const gen = await import(pathToFileURL(join(root, 'dist', 'lab', 'engine-generator.js')).href);

// The child prints its peak RSS on exit (to stderr, last line), whatever the command does.
const rssHook = join(outDir, 'rss-hook.mjs');
writeFileSync(
  rssHook,
  "process.on('exit', () => process.stderr.write('\\nmaxrss-kib ' + process.resourceUsage().maxRSS + '\\n'));\n",
);

function timeOnce(args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(rssHook).href, cli, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: timeoutS * 1000,
    maxBuffer: 1 << 30,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error || r.signal) return { ms, timeout: true };
  const rss = /maxrss-kib (\d+)/.exec(r.stderr ?? '');
  let findings;
  try {
    findings = JSON.parse(r.stdout).summary?.total;
  } catch {
    findings = undefined;
  }
  // audit exits 1 when findings reach --fail-on: that is a result, not a failure.
  if (r.status !== 0 && r.status !== 1) return { ms, error: (r.stderr ?? '').split('\n')[0] };
  return { ms, rssMiB: rss ? Number(rss[1]) / 1024 : undefined, findings };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? undefined : s[(s.length - 1) >> 1];
};

function measure(args) {
  const done = [];
  for (let i = 0; i < runs; i++) {
    const r = timeOnce(args);
    if (r.timeout || r.error) return { ...r, runs: done.length, samples: done };
    done.push(r);
  }
  return {
    ms: median(done.map((d) => d.ms)),
    min: Math.min(...done.map((d) => d.ms)),
    max: Math.max(...done.map((d) => d.ms)),
    rssMiB: Math.max(...done.map((d) => d.rssMiB ?? 0)),
    findings: done[0]?.findings,
    runs: done.length,
  };
}

const machine = `${cpus().length} cpu ${cpus()[0]?.model ?? ''}, node ${process.version}, load ${loadavg()
  .map((x) => x.toFixed(2))
  .join(' ')}`;
console.log(`audit-bench: ${new Date().toISOString().slice(0, 10)}; ${machine}; ${runs} runs; timeout ${timeoutS} s`);
const rows = [];
for (const shape of shapes) {
  let timedOut = false;
  for (const n of sizes) {
    const format = gen.SHAPE_FORMATS[shape][0];
    const file = join(outDir, `engine-${shape}-${n}.${format === 'nft-text' ? 'nft' : 'rules'}`);
    if (!existsSync(file)) writeFileSync(file, gen.generateEngineRuleset(shape, n, seed, format));
    const rel = file.slice(root.length + 1);
    if (timedOut) {
      rows.push({ shape, n, skipped: 'smaller size timed out' });
      continue;
    }
    const parse = measure(['parse', rel, '--json']);
    const audit = measure(['audit', rel, '--format', 'json']);
    if (audit.timeout) timedOut = true;
    const row = { shape, n, parse, audit };
    rows.push(row);
    const fmt = (m) =>
      m.timeout
        ? `timeout ${timeoutS} s`
        : m.error
          ? `error: ${m.error}`
          : `${m.ms.toFixed(0)} (${m.min.toFixed(0)}-${m.max.toFixed(0)})`;
    console.log(
      `${shape.padEnd(12)} ${String(n).padStart(6)}  audit ms ${fmt(audit).padEnd(22)} parse ms ${fmt(parse).padEnd(20)} ratio ${
        audit.ms && parse.ms && !audit.timeout ? (audit.ms / parse.ms).toFixed(1) : '-'
      }  RSS ${audit.rssMiB ? audit.rssMiB.toFixed(0) : '-'} MiB  findings ${audit.findings ?? '-'}`,
    );
  }
}
writeFileSync(join(outDir, 'audit-results.json'), `${JSON.stringify({ machine, runs, rows }, null, 2)}\n`);

console.log(
  '\n| shape | rules | audit ms median (min-max) | parse ms (baseline) | audit / parse | peak RSS MiB | findings | target |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
for (const r of rows) {
  if (r.skipped) {
    console.log(`| ${r.shape} | ${r.n} | not run: ${r.skipped} | | | | | |`);
    continue;
  }
  const a = r.audit;
  const p = r.parse;
  const cell = (m) =>
    m.timeout
      ? `timeout after ${timeoutS} s`
      : m.error
        ? 'error'
        : `${m.ms.toFixed(0)} (${m.min.toFixed(0)}-${m.max.toFixed(0)})`;
  const target = TARGET_MS[r.n];
  const met = target === undefined ? '' : !a.timeout && a.ms < target ? 'met' : '**missed**';
  console.log(
    `| ${r.shape} | ${r.n} | ${cell(a)} | ${cell(p)} | ${a.ms && p.ms && !a.timeout ? `${(a.ms / p.ms).toFixed(1)}x` : '-'} | ${
      a.rssMiB ? a.rssMiB.toFixed(0) : '-'
    } | ${a.findings ?? '-'} | ${met} |`,
  );
}
