#!/usr/bin/env node
/**
 * Before/after of the engine on issue 19's figures, in one run: this checkout's dist/ ("after") and another build's
 * (--before OTHER_CHECKOUT/dist), on the same generated inputs (src/lab/engine-generator.ts of this checkout), in
 * fresh child processes that alternate after, before, after, before, ... so both see the same machine load.
 *
 * Each child times one thing and reports its wall time and its CPU time (process.cpuUsage: user + system of the
 * child; on a loaded shared machine wall time mostly measures the others, CPU time the work):
 * - unreach:    createPacketSpace + compileRuleset (the shape's hook) + findUnreachable
 * - diff:       two versions, 1% of rules changed (mutate): space + diffRulesets (the incremental diff) where the build
 *               has it, else space + compile both + diffCompiled
 * - reach:      compile (not timed), one warm-up, then the median of 3 runs of a flow query and of the whole space
 * - drift-same: computePlan(config, [{current: desired, desired: the same ruleset printed again}], {findings: false,
 *               diffOnly: true}) as the server's drift check (a build without diffOnly compiles and diffs)
 * - drift-one:  the same with one rule changed
 * - plan:       computePlan of the 1% change (diff, audit, intents, blast radius)
 *
 * Usage: npm run build && node bench/engine-ab.mjs --before ../base/dist [--shapes kube-proxy,firewall,...]
 *          [--size 10000] [--runs 3] [--timeout 120] [--kinds unreach,diff,reach,drift-same,drift-one,plan]
 *          [--after-order source-first]
 * --after-order source-first: the after side's packet spaces (unreach, diff, reach) put the source address above
 * the interface names (SOURCE_FIRST_ORDER in src/analysis/packet-space.ts); drift and plan build their own spaces
 * and keep the default order.
 * Prints a markdown table (median of --runs per side, min-max, and after/before ratios of CPU and wall time) and
 * writes bench/out/engine-ab.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ownDist = join(resolve(here, '..'), 'dist');
const outDir = join(here, 'out');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const KINDS = ['unreach', 'diff', 'reach', 'drift-same', 'drift-one', 'plan'];
const CONFIG = `site: bench
hosts:
  - name: gen
    addresses: [192.0.2.10]
    firewall: FIREWALL
    tables: [TABLES]
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

// ---------------------------------------------------------------------------------------------------------------
// Child

async function child(job) {
  const imp = (rel) => import(pathToFileURL(join(job.dist, rel)).href);
  const { parseRuleset } = await imp('firewall/parse.js');
  const read = (file) => parseRuleset(readFileSync(file, 'utf8'), file, { format: job.format });
  const wall = () => performance.now();
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const timed = async (fn) => {
    const w0 = wall();
    const c0 = cpu();
    const answer = await fn();
    return { wallMs: wall() - w0, cpuMs: cpu() - c0, answer };
  };
  const out = {};
  if (job.kind === 'unreach' || job.kind === 'diff' || job.kind === 'reach') {
    const index = await imp('analysis/index.js');
    // --after-order: the after side's packet spaces take that variable order (a build without the option ignores it).
    const order = job.order === 'source-first' ? { fieldOrder: index.SOURCE_FIRST_ORDER } : {};
    const rs = read(job.file);
    if (job.kind === 'unreach') {
      const { findUnreachable } = await imp('analysis/unreachable.js');
      const r = await timed(() => {
        const space = index.createPacketSpace([rs], { collectGarbage: true, ...order });
        return findUnreachable(index.compileRuleset(rs, { hook: job.hook, space })).unreachable.length;
      });
      Object.assign(out, r);
    } else if (job.kind === 'diff') {
      const rs2 = read(job.file2);
      let incremental;
      try {
        incremental = (await imp('analysis/incremental.js')).diffRulesets;
      } catch {}
      const { diffCompiled } = await imp('analysis/diff.js');
      const r = await timed(() => {
        const space = index.createPacketSpace([rs, rs2], { collectGarbage: true, ...order });
        if (incremental) return incremental(rs, rs2, { hook: job.hook, space }).groups.length;
        const a = index.compileRuleset(rs, { hook: job.hook, space });
        const b = index.compileRuleset(rs2, { hook: job.hook, space });
        return diffCompiled(a, b).groups.length;
      });
      Object.assign(out, r, { via: incremental ? 'incremental' : 'full' });
    } else {
      const { reach } = await imp('analysis/reach.js');
      const { parseFlowSpec } = await imp('analysis/flow-spec.js');
      const space = index.createPacketSpace([rs], { collectGarbage: true, ...order });
      const compiled = index.compileRuleset(rs, { hook: job.hook, space });
      const q = (spec) => reach(compiled, parseFlowSpec(spec));
      q({ proto: 'tcp', dport: '22' });
      const med = async (spec) => {
        const rs3 = [];
        for (let i = 0; i < 3; i++) rs3.push(await timed(() => q(spec)));
        rs3.sort((a, b) => a.cpuMs - b.cpuMs);
        return rs3[1];
      };
      const flow = await med({ from: '10.0.0.0/8', proto: 'tcp', dport: '443' });
      const whole = await med({});
      Object.assign(out, {
        wallMs: flow.wallMs,
        cpuMs: flow.cpuMs,
        wholeWallMs: whole.wallMs,
        wholeCpuMs: whole.cpuMs,
      });
    }
  } else {
    const { computePlan } = await imp('change/plan.js');
    const { parseConfig } = await imp('config/load.js');
    const config = parseConfig(readFileSync(job.config, 'utf8'), job.config);
    const side = (file) => ({ text: readFileSync(file, 'utf8'), format: job.format, file });
    const r = await timed(() => {
      const p = computePlan(config, [{ host: 'gen', current: side(job.file), desired: side(job.file2) }], {
        today: '2026-11-24',
        ...(job.kind === 'plan' ? {} : { findings: false, diffOnly: true }),
      });
      return p.hosts[0].changes.length;
    });
    Object.assign(out, r);
  }
  out.rssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

// ---------------------------------------------------------------------------------------------------------------
// Parent

function runChild(job, timeoutS) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(job)], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
    timeout: timeoutS * 1000,
    killSignal: 'SIGKILL',
  });
  if (r.error?.code === 'ETIMEDOUT' || r.signal === 'SIGKILL') return { error: `timeout > ${timeoutS} s` };
  if (r.status !== 0) return { error: `exit ${r.status}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}` };
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? undefined : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const n0 = (x) => (x === undefined ? '-' : Math.round(x).toLocaleString('en-US').replace(/,/g, ' '));
const cell = (v) => (v.length === 0 ? '-' : `${n0(median(v))} (${n0(Math.min(...v))}-${n0(Math.max(...v))})`);

async function main() {
  if (process.argv.includes('--child')) return child(JSON.parse(arg('child', '{}')));
  const before = arg('before', undefined);
  if (!before) throw new Error('--before OTHER_CHECKOUT/dist is required (the build to compare with)');
  const gen = await import(pathToFileURL(join(ownDist, 'lab/engine-generator.js')).href);
  const { parseRuleset } = await import(pathToFileURL(join(ownDist, 'firewall/parse.js')).href);
  const shapes = arg('shapes', gen.ENGINE_SHAPES.join(',')).split(',');
  const size = Number(arg('size', '10000'));
  const runs = Number(arg('runs', '3'));
  const timeoutS = Number(arg('timeout', '120'));
  const kinds = arg('kinds', 'unreach,diff,reach,drift-same').split(',');
  const afterOrder = arg('after-order', undefined);
  if (afterOrder !== undefined && afterOrder !== 'source-first')
    throw new Error(`--after-order: unknown ${afterOrder}; expected source-first`);
  for (const k of kinds) if (!KINDS.includes(k)) throw new Error(`--kinds: unknown ${k}; expected ${KINDS.join(',')}`);
  mkdirSync(outDir, { recursive: true });
  const sides = { after: ownDist, before: resolve(before) };
  const load0 = loadavg().map((x) => x.toFixed(1));
  console.log(
    `engine-ab: ${shapes.join(', ')} at ${size} rules; ${kinds.join(', ')}; ${runs} runs per side, alternating; after ${ownDist}${afterOrder ? ` (${afterOrder} order)` : ''}, before ${sides.before}; ${cpus().length} cpu, node ${process.version}, load ${load0.join(' ')}`,
  );
  console.log(
    '| shape | query | CPU ms before | CPU ms after | CPU after/before | wall ms before | wall ms after | wall after/before | reach: whole space | RSS MiB before / after | answer before / after |',
  );
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |');
  const rows = [];
  const save = () =>
    writeFileSync(
      join(outDir, 'engine-ab.json'),
      `${JSON.stringify({ argv: process.argv.slice(2), rows }, null, 2)}\n`,
    );
  for (const shape of shapes) {
    const format = gen.SHAPE_FORMATS[shape][0];
    const ext = format === 'nft-text' ? 'nft' : 'rules';
    const hook = gen.SHAPE_HOOKS[shape] ?? 'input';
    const base = gen.generateEngineRuleset(shape, size, 42, format);
    const file = join(outDir, `ab-${shape}-${size}.${ext}`);
    writeFileSync(file, base);
    const second = {
      diff: gen.mutate(base, 0.01, 43),
      plan: gen.mutate(base, 0.01, 43),
      // The kernel printing the same ruleset again: other dates in iptables-save's comments, other indentation in nft.
      'drift-same':
        format === 'nft-text'
          ? base.replace(/^\t/gm, '  ')
          : base.replace(/ on [A-Z][a-z]{2} [A-Z][a-z]{2} +\d+ [\d:]+ \d{4}/g, ' on Wed Nov 25 07:30:00 2026'),
      'drift-one': gen.mutate(base, 1 / size, 44),
    };
    const rs = parseRuleset(base, file, { format });
    const iptables = format !== 'nft-text';
    const tables = [...new Set(rs.tables.map((t) => (iptables ? t.name : `${t.family} ${t.name}`)))];
    const config = join(outDir, `ab-${shape}.yaml`);
    writeFileSync(
      config,
      CONFIG.replace('FIREWALL', iptables ? 'iptables' : 'nftables').replace('TABLES', tables.join(', ')),
    );
    for (const kind of kinds) {
      let file2;
      if (second[kind] !== undefined) {
        file2 = join(outDir, `ab-${shape}-${size}-${kind}.${ext}`);
        writeFileSync(file2, second[kind]);
      }
      const got = { after: [], before: [] };
      const errors = {};
      for (let i = 0; i < runs; i++) {
        for (const side of ['after', 'before']) {
          if (errors[side]) continue;
          const order = side === 'after' ? afterOrder : undefined;
          const r = runChild({ dist: sides[side], kind, file, file2, format, hook, config, order }, timeoutS);
          if (r.error) errors[side] = r.error;
          else got[side].push(r);
        }
      }
      const pick = (side, k) => got[side].map((r) => r[k]).filter((x) => typeof x === 'number');
      const ratio = (k) => {
        const a = median(pick('after', k));
        const b = median(pick('before', k));
        return a !== undefined && b !== undefined ? (a / b).toFixed(2) : '-';
      };
      const row = { shape, kind, size, errors, after: got.after, before: got.before };
      rows.push(row);
      save();
      const show = (side, k) => errors[side] ?? cell(pick(side, k));
      const line = [
        shape,
        kind,
        show('before', 'cpuMs'),
        show('after', 'cpuMs'),
        ratio('cpuMs'),
        show('before', 'wallMs'),
        show('after', 'wallMs'),
        ratio('wallMs'),
        kind === 'reach'
          ? `whole space CPU ${cell(pick('before', 'wholeCpuMs'))} -> ${cell(pick('after', 'wholeCpuMs'))}`
          : '',
        `${n0(median(pick('before', 'rssMiB')))} / ${n0(median(pick('after', 'rssMiB')))}`,
        `${got.before[0]?.answer ?? '-'} / ${got.after[0]?.answer ?? '-'}`,
      ];
      console.log(`| ${line.join(' | ')} |`);
    }
  }
  console.log(
    `load at end ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
}

await main();
