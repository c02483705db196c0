#!/usr/bin/env node
/**
 * Why some shapes grow faster than the rules (issue 19): per shape and size, in a fresh child each, the BDD nodes a
 * compilation of the shape's hook makes, the sizes of what it keeps per rule (the packets each rule is hit by) and
 * the sizes of the hook's verdict sets (what the answers are made of). A shape whose per-rule sets grow faster than
 * its verdict sets spends its time on the per-rule sets, whatever the node's granularity.
 *
 * --without REGEX compiles the ruleset less the lines matching REGEX (which rules make the growth).
 *
 * Usage: npm run build && node bench/hit-sets.mjs [--shapes ufw,docker,kube-proxy] [--sizes 500,1000,2000]
 *          [--without '^-A ufw-user-input -s \S+ -j DROP$']
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
  const { generateEngineRuleset, SHAPE_HOOKS } = await mod('lab/engine-generator.js');
  const { parseRuleset } = await mod('firewall/parse.js');
  const index = await mod('analysis/index.js');
  const g = generateEngineRuleset(job.shape, job.size, 42);
  let text = typeof g === 'string' ? g : g.text;
  let removed = 0;
  if (job.without) {
    const re = new RegExp(job.without);
    const lines = text.split('\n');
    const kept = lines.filter((l) => !re.test(l));
    removed = lines.length - kept.length;
    text = kept.join('\n');
  }
  const file = `${job.shape}-${job.size}.${text.startsWith('*') || text.startsWith('#') ? 'rules' : 'nft'}`;
  const rs = parseRuleset(text, file, {});
  const hook = SHAPE_HOOKS[job.shape];
  const space = index.createPacketSpace([rs], {});
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const c0 = cpu();
  const c = index.compileRuleset(rs, { hook, space });
  const compileMs = Math.round(cpu() - c0);
  const b = space.bdd;
  const nodesMade = b.nodesMade;
  let hitRules = 0;
  let hitSum = 0;
  let hitMax = 0;
  for (const r of c.rules()) {
    if (!c.isHit(r)) continue;
    const s = b.size(c.hits(r).node);
    hitRules++;
    hitSum += s;
    hitMax = Math.max(hitMax, s);
  }
  const verdicts = Object.fromEntries(['accept', 'drop', 'reject'].map((v) => [v, b.size(c.verdict(v).node)]));
  console.log(
    JSON.stringify({ removed, compileMs, nodesMade, hitRules, hitSum, hitMax, verdicts, rules: c.rules().length }),
  );
  process.exit(0);
}

const shapes = arg('shapes', 'ufw,docker,kube-proxy').split(',');
const sizes = arg('sizes', '500,1000,2000').split(',').map(Number);
const without = arg('without', undefined);
console.log(`hit-sets: node ${process.version}${without ? `, without lines matching /${without}/` : ''}`);
console.log(
  '| shape | rules | lines left out | compile CPU ms | nodes made | rules hit | sum of hit-set nodes | largest hit set | accept / drop / reject set nodes |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
for (const shape of shapes) {
  for (const size of sizes) {
    const r = spawnSync(
      process.execPath,
      [fileURLToPath(import.meta.url), '--child', JSON.stringify({ shape, size, without })],
      {
        encoding: 'utf8',
        timeout: 600_000,
      },
    );
    if (r.status !== 0) {
      console.log(`| ${shape} | ${size} | failed: ${(r.stderr || r.error?.message || '').split('\n')[0]} |`);
      continue;
    }
    const x = JSON.parse(r.stdout.trim().split('\n').pop());
    const f = (n) => n.toLocaleString('en-US').replace(/,/g, ' ');
    console.log(
      `| ${shape} | ${size} | ${x.removed} | ${f(x.compileMs)} | ${f(x.nodesMade)} | ${x.hitRules} | ${f(x.hitSum)} | ${f(x.hitMax)} | ${f(x.verdicts.accept)} / ${f(x.verdicts.drop)} / ${f(x.verdicts.reject)} |`,
    );
  }
}
