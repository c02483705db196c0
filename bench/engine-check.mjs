#!/usr/bin/env node
/**
 * Answers-must-not-change check for engine work (issue 19): hashes of what the engine answers on the benchmark's
 * generated rulesets, compared with a recorded reference.
 *
 * Per shape and size, in a fresh child process (collection on, as the CLI and the benchmark run):
 * - unreach: sha256 of the whole unreachable report as `rules --unreachable --json` prints it, and the packet count
 *   of the arriving set of every 97th rule of the hook path (exact BigInt counts, in the hash);
 * - diff:    sha256 of `diff --json` between the ruleset and its 1% mutation (mutate(text, 0.01, seed + 1)), by the
 *            incremental diff when the build has it (src/analysis/incremental.ts), else over full compilations;
 * - reach:   sha256 of `reach --json` for each of the benchmark's six queries;
 * - plan:    sha256 of computePlan's output for the ruleset and its mutation (bench/plan-bench.mjs's config), at
 *            sizes up to --plan-max (default 1000; the 10k plans take long).
 *
 * Usage: npm run build && node bench/engine-check.mjs [--shapes ...] [--sizes 1000,10000] [--seed 42]
 *          [--record bench/engine-hashes.json] [--compare bench/engine-hashes.json] [--plan-max 1000]
 * With --compare it exits 1 when any hash differs (and prints which).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(resolve(here, '..'), 'dist');
const outDir = join(here, 'out');
const mod = (rel) => import(pathToFileURL(join(dist, rel)).href);

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const json = (v) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
const sha = (v) =>
  createHash('sha256')
    .update(typeof v === 'string' ? v : json(v))
    .digest('hex')
    .slice(0, 16);

const REACH_QUERIES = [
  { proto: 'tcp', dport: '22' },
  { from: '10.0.0.0/8', proto: 'tcp', dport: '443' },
  { to: '192.0.2.0/24', proto: 'tcp', dport: '80,443' },
  { proto: 'udp', dport: '53' },
  { from: '203.0.113.7', to: '10.96.0.10', proto: 'tcp', dport: '1-65535' },
  {},
];

const PLAN_CONFIG = `site: check
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

async function child(job) {
  const { parseRuleset } = await mod('firewall/parse.js');
  const { createPacketSpace, compileRuleset } = await mod('analysis/index.js');
  const { findUnreachable, unreachableJson } = await mod('analysis/unreachable.js');
  const { diffCompiled, diffJson } = await mod('analysis/diff.js');
  const { reach, reachJson } = await mod('analysis/reach.js');
  const { parseFlowSpec } = await mod('analysis/flow-spec.js');
  const text1 = readFileSync(job.file, 'utf8');
  const text2 = readFileSync(job.file2, 'utf8');
  const rs = parseRuleset(text1, job.file, { format: job.format });
  const rs2 = parseRuleset(text2, job.file2, { format: job.format });
  const out = {};
  const t0 = performance.now();
  {
    const space = createPacketSpace([rs], { collectGarbage: true });
    const c = compileRuleset(rs, { hook: job.hook, space });
    out.unreach = sha(unreachableJson(findUnreachable(c)));
    const rules = c.rules();
    const counts = [];
    for (let i = 0; i < rules.length; i += 97) counts.push(c.arriving(rules[i]).count());
    out.arriving = sha(counts);
    out.arrivingSampled = counts.length;
    const qs = [];
    for (const q of REACH_QUERIES) qs.push(sha(reachJson(reach(c, parseFlowSpec(q)))));
    out.reach = qs;
  }
  {
    // The incremental diff where it exists (the CLI's), else the diff of full compilations: the same answer.
    const inc = existsSync(join(dist, 'analysis', 'incremental.js')) ? await mod('analysis/incremental.js') : undefined;
    const space = createPacketSpace([rs, rs2], { collectGarbage: true });
    if (inc) out.diff = sha(diffJson(inc.diffRulesets(rs, rs2, { hook: job.hook, space })));
    else {
      const a = compileRuleset(rs, { hook: job.hook, space });
      const b = compileRuleset(rs2, { hook: job.hook, space });
      out.diff = sha(diffJson(diffCompiled(a, b)));
    }
  }
  if (job.plan) {
    const { computePlan } = await mod('change/plan.js');
    const { parseConfig } = await mod('config/load.js');
    // The host manages every table of the generated ruleset with the firewall of its format (as plan-bench's
    // config): since the managed tables (src/firewall/managed-tables.ts), a plan reads the desired ruleset the way
    // the agent applies it, and refuses an iptables dump for an nftables host.
    const iptables = job.format !== 'nft-text';
    const tables = [...new Set(rs.tables.map((t) => (iptables ? t.name : `${t.family} ${t.name}`)))];
    const host = `    addresses: [192.0.2.10]\n    firewall: ${iptables ? 'iptables' : 'nftables'}\n    tables: [${tables.join(', ')}]\n`;
    const config = parseConfig(PLAN_CONFIG.replace('    addresses: [192.0.2.10]\n', host), 'check.yaml');
    const plan = computePlan(
      config,
      [
        {
          host: 'gen',
          current: { text: text1, format: job.format, file: job.file },
          desired: { text: text2, format: job.format, file: job.file2 },
        },
      ],
      { today: '2026-11-24' },
    );
    out.plan = sha(plan);
  }
  out.ms = Math.round(performance.now() - t0);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

async function main() {
  const gen = await mod('lab/engine-generator.js');
  const shapes = arg('shapes', gen.ENGINE_SHAPES.join(',')).split(',');
  const sizes = arg('sizes', '1000,10000').split(',').map(Number);
  const seed = Number(arg('seed', '42'));
  const planMax = Number(arg('plan-max', '1000'));
  mkdirSync(outDir, { recursive: true });
  const results = {};
  for (const shape of shapes) {
    for (const n of sizes) {
      const format = gen.SHAPE_FORMATS[shape][0];
      const ext = format === 'nft-text' ? 'nft' : 'rules';
      // Files are named as in engine-bench.mjs so that their paths (printed in the reports) are the same.
      const file = join('bench', 'out', `check-${shape}-${n}.${ext}`);
      const file2 = join('bench', 'out', `check-${shape}-${n}-v1.${ext}`);
      const base = gen.generateEngineRuleset(shape, n, seed, format);
      writeFileSync(resolve(here, '..', file), base);
      writeFileSync(resolve(here, '..', file2), gen.mutate(base, 0.01, seed + 1));
      const job = { file, file2, format, hook: gen.SHAPE_HOOKS[shape], plan: n <= planMax };
      const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(job)], {
        cwd: resolve(here, '..'),
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      if (r.status !== 0) {
        console.error(`${shape} ${n}: child failed: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
        process.exit(2);
      }
      const got = JSON.parse(r.stdout.trim().split('\n').pop());
      const { ms, ...hashes } = got;
      results[`${shape}-${n}`] = hashes;
      console.log(`${shape} ${n} (${ms} ms): ${JSON.stringify(hashes)}`);
    }
  }
  const record = arg('record', undefined);
  if (record) {
    const prev = existsSync(record) ? JSON.parse(readFileSync(record, 'utf8')) : {};
    writeFileSync(record, `${JSON.stringify({ ...prev, ...results }, null, 2)}\n`);
    console.log(`recorded in ${record}`);
  }
  const compare = arg('compare', undefined);
  if (compare) {
    const ref = JSON.parse(readFileSync(compare, 'utf8'));
    let bad = 0;
    for (const [key, h] of Object.entries(results)) {
      const want = ref[key];
      if (!want) {
        console.log(`${key}: no reference`);
        continue;
      }
      for (const [k, v] of Object.entries(h)) {
        if (want[k] === undefined) continue;
        if (json(want[k]) !== json(v)) {
          bad++;
          console.log(`DIFFERS ${key} ${k}: reference ${json(want[k])}, now ${json(v)}`);
        }
      }
    }
    console.log(bad === 0 ? 'all hashes equal the reference' : `${bad} hashes differ`);
    if (bad > 0) process.exit(1);
  }
}

if (process.argv[2] === '--child') await child(JSON.parse(process.argv[3]));
else await main();
