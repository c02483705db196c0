#!/usr/bin/env node
/**
 * Change-plan benchmark (issue 5: "plan for a 10k-rule host < 2 s").
 *
 * For each shape and size it generates a host ruleset (src/lab/engine-generator.ts, as bench/engine-bench.mjs does)
 * and a second version with 1% of the rules changed (engine-generator's mutate), and a small site config declaring
 * one host at the generated firewall's address (192.0.2.10, inside the 192.0.2.0/24 its rules protect) with one
 * public service (tcp/80, tcp/443) and an admin network. Then, in fresh child processes, it times
 * computePlan(config, [{ current: v0, desired: v1 }]) from dist/ (parse included) and the split reported through
 * computePlan's onPhase callback: parse (and packet space) / compile (both sides, input, forward, output) / diff /
 * audit (both sides) / intents / blast radius. Median of --runs.
 *
 * Drift (issue 19: "agent report vs desired, unchanged ruleset < 50 ms"): what the server computes for an agent's
 * report, computePlan(config, [{ current: desired, desired: live }], { findings: false }), where live is the same
 * ruleset as the kernel prints it again (`drift-same`: the text with its iptables-save date lines changed, or for nft
 * text the rules re-indented) and where one rule differs (`drift-one`: one rule's port changed, mutate(text, 1 rule)).
 *
 * Usage: npm run build && node bench/plan-bench.mjs [--shapes firewall,kube-proxy] [--sizes 1000,10000] [--runs 3]
 *          [--seed 42] [--timeout 120] [--kinds plan,drift-same,drift-one] [--engine-dist OTHER_CHECKOUT/dist]
 * Writes its inputs under bench/out (gitignored).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
// --engine-dist DIR: the children plan with another build (the before of a before/after) on the same inputs.
let dist = join(root, 'dist');
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

const CONFIG = `# plan-bench: one generated host with one public service
site: bench
hosts:
  - name: gen
    addresses: [192.0.2.10]
services:
  - name: web
    hosts: [gen]
    public: [tcp/80, tcp/443]
admin-networks:
  - 192.0.2.0/28
intents:
  - name: web from anywhere
    must: allow
    to: 192.0.2.10
    proto: tcp
    dport: 443
`;

const PHASES = ['parse', 'compile', 'diff', 'audit', 'intents', 'blast-radius'];
const KINDS = ['plan', 'drift-same', 'drift-one'];
/** Issue 19's targets: a plan of a 10k-rule host in 2 s, a drift check of an unchanged ruleset in 50 ms. */
const TARGETS = { plan: 2000, 'drift-same': 50 };

/** The same ruleset as the kernel would print it again: other dates in iptables-save's comments. */
function reprinted(text) {
  return text.replace(/ on [A-Z][a-z]{2} [A-Z][a-z]{2} +\d+ [\d:]+ \d{4}/g, ' on Wed Nov 25 07:30:00 2026');
}

// ---------------------------------------------------------------------------------------------------------------
// Child: one computePlan, timed per phase

async function child(job) {
  if (job.dist) dist = resolve(job.dist);
  const { computePlan } = await mod('change/plan.js');
  const { parseConfig } = await mod('config/load.js');
  const config = parseConfig(readFileSync(job.config, 'utf8'), job.config);
  const side = (file) => ({ text: readFileSync(file, 'utf8'), format: job.format, file });
  const input = { host: 'gen', current: side(job.file), desired: side(job.file2) };
  const marks = [];
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const t0 = performance.now();
  const c0 = cpuMs();
  const plan = computePlan(config, [input], {
    today: '2026-11-24',
    onPhase: (_host, phase) => marks.push([phase, performance.now(), cpuMs()]),
    // What the server's drift check asks for (a build without diffOnly ignores it).
    ...(job.kind === 'plan' ? {} : { findings: false, diffOnly: true }),
  });
  const total = performance.now() - t0;
  const cpu = cpuMs() - c0;
  const split = {};
  const splitCpu = {};
  for (let i = 0; i + 1 < marks.length; i++) {
    split[marks[i][0]] = marks[i + 1][1] - marks[i][1];
    splitCpu[marks[i][0]] = marks[i + 1][2] - marks[i][2];
  }
  const h = plan.hosts[0];
  process.stdout.write(
    `${JSON.stringify({
      total,
      cpu,
      split,
      splitCpu,
      rssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      changes: h.changes.length,
      introduced: h.findings.introduced.length,
      fixed: h.findings.fixed.length,
      risk: plan.risk,
      blocked: plan.blocked,
    })}\n`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Parent

function runChild(job0, timeoutS) {
  const engineDist = arg('engine-dist', undefined);
  const job = engineDist ? { ...job0, dist: engineDist } : job0;
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(job)], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
    timeout: timeoutS * 1000,
    killSignal: 'SIGKILL',
  });
  if (r.error?.code === 'ETIMEDOUT' || r.signal === 'SIGKILL') return { error: `timeout after ${timeoutS} s` };
  if (r.status !== 0)
    return { error: `child exited ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}` };
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length === 0 ? undefined : v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

const ms = (x) => (x === undefined ? '-' : Math.round(x).toLocaleString('en-US').replace(/,/g, ' '));

async function main() {
  if (process.argv.includes('--child')) return child(JSON.parse(arg('child', '{}')));
  const gen = await mod('lab/engine-generator.js');
  const shapes = arg('shapes', 'firewall').split(',');
  const kinds = arg('kinds', 'plan').split(',');
  for (const k of kinds) if (!KINDS.includes(k)) throw new Error(`--kinds: unknown ${k}; expected ${KINDS.join(',')}`);
  const sizes = arg('sizes', '1000,10000').split(',').map(Number);
  const runs = Number(arg('runs', '3'));
  const seed = Number(arg('seed', '42'));
  const timeoutS = Number(arg('timeout', '120'));
  mkdirSync(outDir, { recursive: true });
  const { parseRuleset } = await mod('firewall/parse.js');
  // The host manages every table of its generated ruleset (kube-proxy's nat too), with the firewall of its format:
  // the plan reads the desired ruleset the way the agent will apply it.
  const configFor = (shape, text, format) => {
    const rs = parseRuleset(text, 'generated', { format });
    const iptables = format !== 'nft-text';
    const tables = [...new Set(rs.tables.map((t) => (iptables ? t.name : `${t.family} ${t.name}`)))];
    const file = join(outDir, `plan-bench-${shape}.yaml`);
    const host = `    addresses: [192.0.2.10]\n    firewall: ${iptables ? 'iptables' : 'nftables'}\n    tables: [${tables.join(', ')}]\n`;
    writeFileSync(file, CONFIG.replace('    addresses: [192.0.2.10]\n', host));
    return file;
  };
  console.log(
    `plan-bench: shapes ${shapes.join(', ')}; sizes ${sizes.join(', ')}; median of ${runs} fresh children; seed ${seed}; ` +
      `${cpus().length} cpu, node ${process.version}, load ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
  );
  console.log('');
  const rows = [];
  for (const kind of kinds) {
    for (const shape of shapes) {
      for (const n of sizes) {
        const format = gen.SHAPE_FORMATS[shape][0];
        const ext = format === 'nft-text' ? 'nft' : 'rules';
        const file = join(outDir, `plan-${shape}-${n}.${ext}`);
        const file2 = join(outDir, `plan-${shape}-${n}-${kind}.${ext}`);
        const base = gen.generateEngineRuleset(shape, n, seed, format);
        writeFileSync(file, base);
        const config = configFor(shape, base, format);
        const second =
          kind === 'plan'
            ? gen.mutate(base, 0.01, seed + 1)
            : kind === 'drift-same'
              ? reprinted(base)
              : reprinted(gen.mutate(base, 1 / n, seed + 2));
        writeFileSync(file2, second);
        const got = [];
        let error;
        for (let i = 0; i < runs; i++) {
          const r = runChild({ file, file2, format, config, kind }, timeoutS);
          if (r.error) {
            error = r.error;
            break;
          }
          got.push(r);
        }
        const med = (f) => median(got.map(f).filter((x) => typeof x === 'number'));
        const last = got[got.length - 1];
        rows.push({
          kind,
          shape,
          n,
          runs: got.length,
          error,
          total: med((r) => r.total),
          min: got.length ? Math.min(...got.map((r) => r.total)) : undefined,
          max: got.length ? Math.max(...got.map((r) => r.total)) : undefined,
          cpu: med((r) => r.cpu),
          // Per phase: CPU time (user + system) of the child, which other load on the machine barely changes.
          split: Object.fromEntries(PHASES.map((p) => [p, med((r) => r.splitCpu?.[p] ?? r.split[p])])),
          rss: med((r) => r.rssMiB),
          last,
        });
        const row = rows[rows.length - 1];
        console.log(
          `${kind} ${shape} ${n}: ${error ? `${error} ` : ''}wall ${ms(row.total)} ms, CPU ${ms(row.cpu)} ms (CPU ms: ${PHASES.map((p) => `${p} ${ms(row.split[p])}`).join(', ')})`,
        );
      }
    }
  }
  console.log('');
  console.log(
    `| what | shape | rules | wall ms median (min-max) | CPU ms | ${PHASES.join(' CPU ms | ')} CPU ms | peak RSS MiB | flow changes | findings +/- | target |`,
  );
  console.log(
    `| --- | --- | ---: | ---: | ---: | ${PHASES.map(() => '---:').join(' | ')} | ---: | ---: | ---: | --- |`,
  );
  for (const r of rows) {
    const goal = TARGETS[r.kind];
    const goalText = goal >= 1000 ? `${goal / 1000} s` : `${goal} ms`;
    const target =
      r.n === 10000 && goal
        ? r.total !== undefined && r.total < goal
          ? `met (${goalText})`
          : `**missed** (${goalText})`
        : '';
    const total = r.error && r.total === undefined ? r.error : `${ms(r.total)} (${ms(r.min)}-${ms(r.max)})`;
    console.log(
      `| ${r.kind} | ${r.shape} | ${r.n} | ${total} | ${ms(r.cpu)} | ${PHASES.map((p) => ms(r.split[p])).join(' | ')} | ${r.rss ?? '-'} | ${r.last?.changes ?? '-'} | ${r.last ? `${r.last.introduced}/${r.last.fixed}` : '-'} | ${target} |`,
    );
  }
}

await main();
