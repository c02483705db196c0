#!/usr/bin/env node
/**
 * Where an audit's time goes, rule by rule (issue 19: the 10k firewall plan's audit): compiles the input, forward and
 * output paths of one ruleset, then runs the catalogue with runAudit's onRule callback and prints each rule's CPU ms,
 * largest first. Inputs as bench/plan-bench.mjs writes them (run it first, `--runs 0` only writes them).
 *
 * Usage: npm run build && node bench/audit-rules.mjs [--file bench/out/plan-firewall-10000.nft] [--format nft-text]
 *          [--config bench/out/plan-bench-firewall.yaml] [--only shadowed-rule,admin-port-exposed] [--dist DIR]
 * Under `node --cpu-prof` it gives the profile of the audit alone (plus parse and compile).
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const dist = resolve(arg('dist', join(here, '..', 'dist')));
const file = arg('file', join(here, 'out', 'plan-firewall-10000.nft'));
const format = arg('format', file.endsWith('.nft') ? 'nft-text' : 'iptables-save');
const cfgFile = arg('config', join(here, 'out', 'plan-bench-firewall.yaml'));
const only = arg('only', undefined);
const mod = (rel) => import(pathToFileURL(join(dist, rel)).href);

const { parseRuleset } = await mod('firewall/parse.js');
const { parseConfig } = await mod('config/load.js');
const { createAuditContext } = await mod('analysis/audit/context.js');
const { runAudit } = await mod('analysis/audit/run.js');
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const config = parseConfig(readFileSync(cfgFile, 'utf8'), cfgFile);
const t0 = cpu();
const rs = parseRuleset(readFileSync(file, 'utf8'), file, { format });
const hostName = config.hosts.length === 1 ? config.hosts[0].name : undefined;
const ctx = createAuditContext({ ruleset: rs, file, config, ...(hostName ? { hostName } : {}), today: '2026-11-24' });
for (const h of ['input', 'forward', 'output']) ctx.compiled(h);
console.log(`parse + compile: ${Math.round(cpu() - t0)} CPU ms`);
const times = [];
let last = cpu();
let lastId;
const report = runAudit(ctx, {
  ...(only ? { only: only.split(',') } : {}),
  onRule: (id) => {
    const now = cpu();
    if (lastId) times.push([lastId, now - last]);
    lastId = id;
    last = now;
  },
});
if (lastId) times.push([lastId, cpu() - last]);
for (const [id, t] of times.sort((a, b) => b[1] - a[1])) console.log(`${id.padEnd(28)} ${Math.round(t)} CPU ms`);
console.log(`findings ${report.findings.length}; total ${Math.round(cpu() - t0)} CPU ms`);
