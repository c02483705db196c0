#!/usr/bin/env node
/**
 * Trace benchmark: one packet through a 100k-rule input chain (the case src/firewall/tracer.test.ts checks for
 * correctness only; timings do not belong in tests). Each run is a fresh child process that times, with
 * process.hrtime: the first trace (includes compiling the chain), then the best of 5 further traces of a packet
 * decided by the last rule. The baseline, measured in the same child, is a plain loop over the same 100k rules
 * comparing each rule's source address with the packet's (the least any rule-by-rule walk has to do).
 *
 * Usage: npm run build && node bench/trace-bench.mjs [--rules 100000] [--runs 5]
 */
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(here, '..', 'dist');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
};
const N = Number(arg('rules', '100000'));
const RUNS = Number(arg('runs', '5'));

async function child() {
  const b = await import(pathToFileURL(join(dist, 'firewall', 'ir-builders.js')).href);
  const { trace } = await import(pathToFileURL(join(dist, 'firewall', 'tracer.js')).href);
  const addr = (i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const rules = Array.from({ length: N }, (_, i) =>
    b.rule([b.tcp, b.eq('ip.saddr', addr(i)), b.dport(1 + (i % 60000))], b.accept),
  );
  const rs = b.ruleset([
    b.table('inet', 'filter', [b.base('input', { hook: 'input', policy: 'drop', priority: 0 }, rules)]),
  ]);
  const web = {
    family: 'ipv4',
    iif: 'eth0',
    saddr: '203.0.113.7',
    daddr: '192.0.2.10',
    l4proto: 6,
    sport: 40000,
    dport: 443,
  };
  const lastPkt = { ...web, saddr: addr(N - 1), dport: 1 + ((N - 1) % 60000) };
  const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
  let t0 = process.hrtime.bigint();
  const first = trace(rs, web, { hook: 'input' });
  const compiled = ms(t0);
  let best = Number.POSITIVE_INFINITY;
  let last;
  for (let i = 0; i < 5; i++) {
    t0 = process.hrtime.bigint();
    last = trace(rs, lastPkt, { hook: 'input' });
    best = Math.min(best, ms(t0));
  }
  const key = b.eq('ip.saddr', lastPkt.saddr).values[0].lo;
  let baseline = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 5; i++) {
    t0 = process.hrtime.bigint();
    let hit = -1;
    for (let k = 0; k < rules.length; k++) {
      const m = rules[k].matches.find((x) => x.field === 'ip.saddr');
      if (m?.values.some((v) => v.lo <= key && key <= v.hi)) hit = k;
    }
    baseline = Math.min(baseline, ms(t0));
    if (hit !== N - 1) throw new Error(`baseline found rule ${hit}`);
  }
  if (first.verdict !== 'drop' || last.verdict !== 'accept') throw new Error('unexpected verdicts');
  console.log(JSON.stringify({ compiled, best, baseline }));
}

if (process.argv[2] === '--child') await child();
else {
  const rows = [];
  for (let r = 0; r < RUNS; r++) {
    const out = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', '--rules', String(N)], {
      encoding: 'utf8',
    });
    if (out.status !== 0) throw new Error(out.stderr);
    rows.push(JSON.parse(out.stdout.trim().split('\n').at(-1)));
  }
  const med = (k) => rows.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(rows.length / 2)];
  const range = (k) =>
    `${Math.min(...rows.map((x) => x[k])).toFixed(1)}-${Math.max(...rows.map((x) => x[k])).toFixed(1)}`;
  console.log(`trace through a ${N}-rule input chain, ${RUNS} runs (median, min-max, ms):`);
  console.log(`  first trace (compiles the chain): ${med('compiled').toFixed(1)} (${range('compiled')})`);
  console.log(`  later trace, decided by the last rule: ${med('best').toFixed(2)} (${range('best')})`);
  console.log(`  baseline (plain loop over the rules' saddr): ${med('baseline').toFixed(2)} (${range('baseline')})`);
  console.log(`  ratio later trace / baseline: ${(med('best') / med('baseline')).toFixed(2)}`);
}
