#!/usr/bin/env node
/**
 * An experiment, not the engine (issue 19): can a long chain's verdict sets be computed without a set per rule?
 *
 * The engine walks a chain rule by rule, splitting the packets still unmatched by each rule's match and keeping each
 * rule's hits. On ufw's shape those per-rule sets grow quadratically (bench/hit-sets.mjs). This script takes one
 * chain's rules that end in accept, drop or reject (no jumps, no opaque matches: the bulk of ufw-user-input) and
 * computes the chain's verdict sets (which packets each verdict gets, first match wins) two ways over the same BDD:
 *
 * - walk:    as the engine does, remaining set and each rule's hits (hit = rest and m, rest = rest - m);
 * - halves:  first match over a block of rules is (M, A, D, R): the packets some rule of the block matches and those
 *            the block accepts, drops, rejects. Two blocks in order combine as M = M1 | M2, A = A1 | (A2 - M1), ...
 *            Built by halving, every rule's packets are joined log2(n) times instead of subtracted from a remaining
 *            set that carries every earlier rule; no per-rule set is made.
 *
 * Both must give the same sets (canonical nodes: checked). Prints CPU ms and nodes made of each, per size.
 * Usage: npm run build && node bench/first-match-spike.mjs [--shape ufw] [--chain ufw-user-input] [--sizes 1000,2000,4000]
 */
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(resolve(here, '..'), 'dist');
const mod = (rel) => import(pathToFileURL(join(dist, rel)).href);

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

if (process.argv[2] === '--child') {
  const job = JSON.parse(process.argv[3]);
  const { generateEngineRuleset } = await mod('lab/engine-generator.js');
  const { parseRuleset } = await mod('firewall/parse.js');
  const index = await mod('analysis/index.js');
  const g = generateEngineRuleset(job.shape, job.size, 42);
  const text = typeof g === 'string' ? g : g.text;
  const rs = parseRuleset(text, `${job.shape}.rules`, {});
  const chain = rs.tables.flatMap((t) => t.chains).find((c) => c.name === job.chain);
  if (!chain) throw new Error(`no chain ${job.chain}`);
  const rules = chain.rules.filter(
    (r) =>
      r.verdict && ['accept', 'drop', 'reject'].includes(r.verdict.kind) && r.matches.every((m) => m.kind !== 'opaque'),
  );
  const space = index.createPacketSpace([rs], {});
  const b = space.bdd;
  const ms = rules.map((r) => r.matches.reduce((acc, m) => b.and(acc, space.matchNode(m)), 1));
  const kinds = rules.map((r) => r.verdict.kind);
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };

  const made0 = b.nodesMade;
  const c0 = cpu();
  let rest = 1;
  const out = { accept: 0, drop: 0, reject: 0 };
  const hits = [];
  for (let i = 0; i < ms.length; i++) {
    const h = b.and(rest, ms[i]);
    hits.push(h);
    rest = b.diff(rest, ms[i]);
    out[kinds[i]] = b.or(out[kinds[i]], h);
  }
  const walkMs = cpu() - c0;
  const walkMade = b.nodesMade - made0;

  const made1 = b.nodesMade;
  const c1 = cpu();
  const block = (lo, hi) => {
    if (hi - lo === 1) {
      const m = ms[lo];
      return {
        m,
        accept: kinds[lo] === 'accept' ? m : 0,
        drop: kinds[lo] === 'drop' ? m : 0,
        reject: kinds[lo] === 'reject' ? m : 0,
      };
    }
    const mid = (lo + hi) >> 1;
    const x = block(lo, mid);
    const y = block(mid, hi);
    return {
      m: b.or(x.m, y.m),
      accept: b.or(x.accept, b.diff(y.accept, x.m)),
      drop: b.or(x.drop, b.diff(y.drop, x.m)),
      reject: b.or(x.reject, b.diff(y.reject, x.m)),
    };
  };
  const r = ms.length > 0 ? block(0, ms.length) : { accept: 0, drop: 0, reject: 0 };
  const halvesMs = cpu() - c1;
  const halvesMade = b.nodesMade - made1;
  const same = r.accept === out.accept && r.drop === out.drop && r.reject === out.reject;
  console.log(
    JSON.stringify({
      rules: ms.length,
      walkMs: Math.round(walkMs),
      walkMade,
      halvesMs: Math.round(halvesMs),
      halvesMade,
      same,
      sizes: [b.size(out.accept), b.size(out.drop), b.size(out.reject)],
    }),
  );
  process.exit(0);
}

const shape = arg('shape', 'ufw');
const chain = arg('chain', 'ufw-user-input');
const sizes = arg('sizes', '1000,2000,4000').split(',').map(Number);
console.log(`first-match-spike: ${shape}, chain ${chain}, node ${process.version}`);
console.log(
  '| rules in the shape | chain rules used | walk CPU ms | walk nodes made | halves CPU ms | halves nodes made | same sets | accept / drop / reject nodes |',
);
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |');
const f = (n) => n.toLocaleString('en-US').replace(/,/g, ' ');
for (const size of sizes) {
  const r = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--child', JSON.stringify({ shape, chain, size })],
    {
      encoding: 'utf8',
      timeout: 600_000,
    },
  );
  if (r.status !== 0) {
    console.log(`| ${size} | failed: ${(r.stderr || r.error?.message || '').split('\n')[0]} |`);
    continue;
  }
  const x = JSON.parse(r.stdout.trim().split('\n').pop());
  console.log(
    `| ${size} | ${x.rules} | ${f(x.walkMs)} | ${f(x.walkMade)} | ${f(x.halvesMs)} | ${f(x.halvesMade)} | ${x.same ? 'yes' : 'NO'} | ${x.sizes.map(f).join(' / ')} |`,
  );
}
