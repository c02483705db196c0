#!/usr/bin/env node
/**
 * What the agent's traffic measurement costs per window (issue 14, §3), median of several runs in this process:
 *
 * - rule counters: reading the accept rules' counters of a ruleset of N rules (src/lab/scale-generator.ts), cold
 *   (the ruleset parsed, as on the first window or after a change) and warm (RuleCounterCache: the same rules with
 *   other counter values, the parse reused); baseline = `JSON.parse` (nft JSON) or `split('\n')` of the same text.
 * - access logs: lines/s of parseAccessLine (combined and HAProxy httplog); baseline = `split(' ')` of each line.
 *
 * Usage: npm run build && node bench/traffic-bench.mjs [--rules 1000,10000] [--runs 5] [--lines 200000]
 */
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const mod = (rel) => {
  const file = join(root, 'dist', rel);
  if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build first`);
  return import(pathToFileURL(file).href);
};
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
};
const sizes = arg('rules', '1000,10000').split(',').map(Number);
const runs = Number(arg('runs', '5'));
const nLines = Number(arg('lines', '200000'));

const { generateNftJson, generateIptablesSave } = await mod('lab/scale-generator.js');
const { RuleCounterCache } = await mod('monitor/rule-counters.js');
const { parseAccessLine } = await mod('monitor/access-log.js');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = (f) => {
  const t = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t) / 1e6;
};
const ports = [
  { proto: 'tcp', from: 80, to: 80 },
  { proto: 'tcp', from: 443, to: 443 },
];
const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));

console.log(
  `node ${process.version}, ${cpus().length} x ${cpus()[0]?.model}, load ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);
console.log('\n| format | rules | cold ms | warm ms | baseline ms | cold/baseline | warm/baseline |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const n of sizes) {
  for (const format of ['nft JSON', 'iptables-save']) {
    const text = format === 'nft JSON' ? generateNftJson(n, 1) : generateIptablesSave(n, 1);
    // the next reading: the same rules, every counter value changed
    const next = text
      .replace(/"packets": ?(\d+)/g, (_m, d) => `"packets": ${Number(d) + 1}`)
      .replace(/^\[(\d+):/gm, (_m, d) => `[${Number(d) + 1}:`);
    const cold = [];
    const warm = [];
    const base = [];
    for (let i = 0; i < runs; i++) {
      const cache = new RuleCounterCache();
      cold.push(time(() => (format === 'nft JSON' ? cache.nft(text) : cache.iptables(text, ''))(ports)));
      warm.push(time(() => (format === 'nft JSON' ? cache.nft(next) : cache.iptables(next, ''))(ports)));
      base.push(time(() => (format === 'nft JSON' ? JSON.parse(text) : text.split('\n'))));
    }
    const [c, w, b] = [median(cold), median(warm), median(base)];
    console.log(
      `| ${format} | ${n} | ${fmt(c)} | ${fmt(w)} | ${fmt(b)} | ${(c / b).toFixed(1)}x | ${(w / b).toFixed(1)}x |`,
    );
  }
}

const combined = (i) =>
  `10.0.${i % 256}.${i % 200} - - [03/Dec/2026:14:${String(i % 60).padStart(2, '0')}:05 +0000] "GET /p/${i} HTTP/1.1" ${i % 50 ? 200 : 503} 1234 "-" "Mozilla/5.0 (X11; Linux x86_64)"`;
const haproxy = (i) =>
  `Dec  3 14:00:05 lb haproxy[123]: 10.0.${i % 256}.1:${1024 + (i % 60000)} [03/Dec/2026:14:00:05.${String(i % 1000).padStart(3, '0')}] shop_front shop/web${(i % 2) + 1} 0/0/1/2/3 200 1234 - - ---- 1/1/0/0/0 0/0 "GET /p/${i} HTTP/1.1"`;
console.log('\n| log format | lines | parse lines/s | baseline lines/s | ratio (time) |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const [name, make, format] of [
  ['combined', combined, 'combined'],
  ['haproxy', haproxy, 'haproxy'],
]) {
  const lines = Array.from({ length: nLines }, (_, i) => make(i));
  const p = [];
  const b = [];
  for (let i = 0; i < runs; i++) {
    p.push(
      time(() => {
        for (const l of lines) if (!parseAccessLine(l, format)) throw new Error(`not parsed: ${l}`);
      }),
    );
    b.push(
      time(() => {
        for (const l of lines) l.split(' ');
      }),
    );
  }
  const [pm, bm] = [median(p), median(b)];
  console.log(
    `| ${name} | ${nLines} | ${Math.round(nLines / (pm / 1000)).toLocaleString('en')} | ${Math.round(nLines / (bm / 1000)).toLocaleString('en')} | ${(pm / bm).toFixed(1)}x |`,
  );
}
