#!/usr/bin/env node
/**
 * Parse benchmark: generated kube-proxy-shaped rulesets of 1k, 10k and 100k rules in each input format, each parsed
 * in a fresh child process several times. The child times parseRuleset alone (process.hrtime around the call, after
 * the file is read) and reports its peak RSS. The same run times the unavoidable floor for each input (JSON.parse of
 * the nft JSON, a plain line split of the text formats) so the ratio parse/baseline says how much the parser adds.
 *
 * Usage: npm run build && node bench/parse-bench.mjs [--sizes 1000,10000,100000] [--runs 5] [--seed 42]
 *        node bench/parse-bench.mjs --check-shape [--sizes 3000]   (root: compares generator output with the kernel)
 * Writes inputs and bench/out/results.json (bench/out is gitignored).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const dist = join(root, 'dist');
const outDir = join(here, 'out');

const FORMATS = [
  { format: 'iptables-save', ext: 'rules', gen: 'generateIptablesSave', baseline: 'split', target: 1000 },
  { format: 'nft-json', ext: 'json', gen: 'generateNftJson', baseline: 'json', target: 1500 },
  { format: 'nft-text', ext: 'nft', gen: 'generateNftText', baseline: 'split', target: undefined },
];
const RSS_TARGET_MIB = 600;

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

// ---------------------------------------------------------------------------------------------------------------
// Child: one measurement, printed as one JSON line on stdout.

async function child() {
  const [, , , mode, format, file] = process.argv;
  const text = readFileSync(file, 'utf8');
  let result;
  let error;
  let t0;
  let t1;
  if (mode === 'parse') {
    const { parseRuleset } = await import(pathToFileURL(join(dist, 'firewall', 'parse.js')).href);
    t0 = process.hrtime.bigint();
    try {
      result = parseRuleset(text, file, { format });
    } catch (e) {
      error = `${e?.name ?? 'Error'}: ${String(e?.message ?? e).slice(0, 200)}`;
    }
    t1 = process.hrtime.bigint();
  } else {
    t0 = process.hrtime.bigint();
    result = mode === 'json' ? JSON.parse(text) : text.split('\n');
    t1 = process.hrtime.bigint();
  }
  let rules;
  if (mode === 'parse' && result?.tables) {
    rules = 0;
    for (const t of result.tables) for (const c of t.chains) rules += c.rules.length;
  }
  // maxRSS is in KiB on Linux.
  const maxRssMiB = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify({ ms: Number(t1 - t0) / 1e6, maxRssMiB, rules, error })}\n`);
}

// ---------------------------------------------------------------------------------------------------------------
// Parent

function runChild(mode, format, file) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', mode, format, file], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  if (r.status !== 0)
    return { error: `child exited ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}` };
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function stats(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1] };
}

const fmt = (x, d = 1) => (x === undefined ? '-' : x.toFixed(d));

async function main() {
  if (!existsSync(join(dist, 'lab', 'scale-generator.js'))) {
    console.error('dist/ is missing: run `npm run build` first');
    process.exit(2);
  }
  const gen = await import(pathToFileURL(join(dist, 'lab', 'scale-generator.js')).href);
  const sizes = arg('sizes', '1000,10000,100000').split(',').map(Number);
  const runs = Number(arg('runs', '5'));
  const seed = Number(arg('seed', '42'));
  mkdirSync(outDir, { recursive: true });

  if (process.argv.includes('--check-shape')) return checkShape(gen, sizes, seed);

  const machine = {
    nproc: cpus().length,
    cpu: cpuModel(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
  console.log(`parse-bench: sizes ${sizes.join(', ')}; ${runs} runs each; seed ${seed}`);
  console.log(`machine: ${machine.nproc} cpu, ${machine.cpu}, node ${machine.node}\n`);

  const rows = [];
  for (const n of sizes) {
    for (const f of FORMATS) {
      const file = join(outDir, `${f.format}-${n}.${f.ext}`);
      writeFileSync(file, gen[f.gen](n, seed));
      const bytes = readFileSync(file).length;
      const parse = [];
      const base = [];
      let error;
      let rules;
      for (let i = 0; i < runs; i++) {
        const p = runChild('parse', f.format, file);
        if (p.error) {
          error = p.error;
          break;
        }
        rules = p.rules;
        parse.push(p);
        base.push(runChild(f.baseline, f.format, file));
      }
      if (error) for (let i = 0; i < runs; i++) base.push(runChild(f.baseline, f.format, file));
      const row = {
        format: f.format,
        rules: n,
        parsedRules: rules,
        bytes,
        runs: parse.length,
        baseline: f.baseline === 'json' ? 'JSON.parse' : "split('\\n')",
        baselineMs: stats(base.map((b) => b.ms)),
        baselineRssMiB: stats(base.map((b) => b.maxRssMiB)),
        ...(parse.length
          ? { parseMs: stats(parse.map((p) => p.ms)), peakRssMiB: stats(parse.map((p) => p.maxRssMiB)) }
          : {}),
        ...(error ? { error } : {}),
      };
      if (row.parseMs) row.ratio = row.parseMs.median / row.baselineMs.median;
      if (n === 100_000 && row.parseMs) {
        row.meetsTarget =
          (f.target === undefined || row.parseMs.median < f.target) && row.peakRssMiB.max < RSS_TARGET_MIB;
      }
      rows.push(row);
      printRow(row);
    }
  }
  const result = {
    date: new Date().toISOString(),
    machine,
    seed,
    runs,
    command: process.argv.slice(1).join(' '),
    rows,
  };
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwrote ${join(outDir, 'results.json')}`);
}

let headerPrinted = false;
function printRow(r) {
  if (!headerPrinted) {
    console.log(
      'format         rules     MB    parse ms median (min-max)   peak RSS MiB   baseline ms (RSS MiB)   ratio   target',
    );
    headerPrinted = true;
  }
  const parse = r.parseMs ? `${fmt(r.parseMs.median)} (${fmt(r.parseMs.min)}-${fmt(r.parseMs.max)})` : 'n/a';
  const line = [
    r.format.padEnd(14),
    String(r.rules).padStart(6),
    fmt(r.bytes / 1e6).padStart(6),
    parse.padStart(28),
    (r.peakRssMiB ? fmt(r.peakRssMiB.max, 0) : '-').padStart(14),
    `${fmt(r.baselineMs.median)} (${fmt(r.baselineRssMiB.max, 0)})`.padStart(23),
    (r.ratio === undefined ? '-' : `${fmt(r.ratio)}x`).padStart(7),
    r.meetsTarget === undefined ? '' : r.meetsTarget ? '  ok' : '  MISSED',
  ].join(' ');
  console.log(line + (r.error ? `\n    error: ${r.error}` : ''));
}

function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? m[1] : cpus()[0]?.model;
  } catch {
    return cpus()[0]?.model;
  }
}

/**
 * Loads the generated nft text into a throwaway network namespace and compares `nft -j list ruleset` with the
 * generated JSON (table handles aside), and iptables-restore + iptables-save with the generated iptables-save text
 * (dates aside). Never touches the host's own ruleset.
 */
function checkShape(gen, sizes, seed) {
  const n = sizes[0] > 5000 ? 3000 : sizes[0];
  const ns = `rampart-bench-${process.pid}`;
  const nftFile = join(outDir, `shape-${n}.nft`);
  const iptFile = join(outDir, `shape-${n}.rules`);
  writeFileSync(nftFile, gen.generateNftText(n, seed));
  writeFileSync(iptFile, gen.generateIptablesSave(n, seed));
  execFileSync('ip', ['netns', 'add', ns]);
  let failures = 0;
  try {
    const inNs = (...a) => execFileSync('ip', ['netns', 'exec', ns, ...a], { maxBuffer: 1 << 30 }).toString();
    inNs('nft', '-f', nftFile);
    const strip = (d) =>
      d.nftables.map((x) => {
        if (x.table) return JSON.stringify({ table: { ...x.table, handle: 0 } });
        return JSON.stringify(x);
      });
    const kernel = strip(JSON.parse(inNs('nft', '-j', 'list', 'ruleset')));
    const mine = strip(gen.generateNftJsonObject(n, seed));
    failures += compare('nft -j list ruleset', kernel, mine);
    inNs('nft', 'flush', 'ruleset');
    inNs('iptables-restore', iptFile);
    const norm = (s) => s.split('\n').filter((l) => !l.startsWith('#'));
    failures += compare('iptables-save', norm(inNs('iptables-save')), norm(readFileSync(iptFile, 'utf8')));
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
  process.exitCode = failures ? 1 : 0;
}

function compare(what, kernel, mine) {
  let diffs = 0;
  for (let i = 0; i < Math.max(kernel.length, mine.length); i++) {
    if (kernel[i] !== mine[i] && diffs++ < 5)
      console.log(`${what} #${i}\n  kernel:    ${kernel[i]}\n  generated: ${mine[i]}`);
  }
  console.log(`${what}: ${mine.length} items, ${diffs} differ from the kernel's`);
  return diffs;
}

if (process.argv[2] === '--child') await child();
else await main();
