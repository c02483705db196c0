#!/usr/bin/env node
/**
 * Replica failover on PostgreSQL (issue 14 §4): how long after a SIGKILL the surviving `rampart serve` replica is
 * probing every monitor the dead one held. The goal: within two monitor intervals.
 *
 * Each run: a fresh database, two real replicas (src/lab/replica-lab.ts: real processes, one loopback HTTP target
 * per monitor that records which replica probes it, from the replica's User-Agent), wait until the monitors are
 * shared (every target probed by one replica over the last two intervals, both replicas busy), SIGKILL the replica
 * holding the second half, and time until the survivor's first probe of the last of them. The baseline is the
 * monitor interval itself (the figure is printed as a ratio to it) and, in the same run, a clean stop (SIGTERM:
 * the replica gives its leases back) timed the same way.
 *
 * Needs PostgreSQL (RAMPART_TEST_PG_URL, default the local server over its socket as root: `npm run test:setup`).
 *
 * Usage: npm run build && node bench/failover-bench.mjs [--runs 5] [--intervals 2,10] [--monitors 20]
 */
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');
function opt(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const RUNS = Number(opt('runs', 5));
const INTERVALS = opt('intervals', '2,10').split(',').map(Number);
const MONITORS = Number(opt('monitors', 20));
const ADMIN = process.env.RAMPART_TEST_PG_URL ?? 'postgres://root@/postgres?host=/var/run/postgresql';
const main = join(repo, 'dist', 'cli', 'main.js');
const { startReplicaLab, firstProbe } = await import(join(repo, 'dist', 'lab', 'replica-lab.js'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

async function admin(sqlText) {
  const c = new pg.Client({ connectionString: ADMIN });
  await c.connect();
  try {
    await c.query(sqlText);
  } finally {
    await c.end();
  }
}

async function once(intervalMs, signal) {
  const name = `rampart_bench_${randomBytes(5).toString('hex')}`;
  await admin(`create database ${name}`);
  const url = ADMIN.replace(/^(postgres(?:ql)?:\/\/[^/?#]*)(\/[^?#]*)?/i, `$1/${name}`);
  const lab = await startReplicaLab({ db: url, main, monitors: MONITORS, intervalMs });
  try {
    const [a, b] = [lab.replicas[0].pid, lab.replicas[1].pid];
    const window = 2 * intervalMs;
    const settleBy = Date.now() + 120_000;
    let seen;
    for (;;) {
      await sleep(500);
      seen = lab.probedBy(Date.now() - window);
      const sets = [...seen.values()];
      if (sets.every((s) => s.size === 1) && sets.some((s) => s.has(a)) && sets.some((s) => s.has(b))) break;
      if (Date.now() > settleBy) throw new Error('the replicas did not share the monitors in 120 s');
    }
    const theirs = [...seen].filter(([, s]) => s.has(b)).map(([n]) => n);
    const t0 = Date.now();
    if (signal === 'SIGKILL') await lab.kill(1);
    else {
      const exited = new Promise((r) => lab.replicas[1].process.once('exit', r));
      lab.replicas[1].process.kill('SIGTERM');
      await exited;
    }
    const by = t0 + 120_000;
    for (;;) {
      const first = firstProbe(lab.targets, a, t0);
      if (theirs.every((n) => first.get(n) !== undefined)) {
        return { ms: Math.max(...theirs.map((n) => first.get(n) - t0)), monitors: theirs.length };
      }
      if (Date.now() > by) throw new Error('not taken over in 120 s');
      await sleep(50);
    }
  } finally {
    await lab.close();
    await admin(`drop database if exists ${name} with (force)`);
  }
}

console.log(
  `failover bench: ${MONITORS} monitors, ${RUNS} runs per interval and signal, intervals ${INTERVALS.join(', ')} s`,
);
const rows = [];
for (const interval of INTERVALS) {
  for (const signal of ['SIGKILL', 'SIGTERM']) {
    const runs = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await once(interval * 1000, signal);
      runs.push(r.ms);
      console.log(
        `  interval ${interval} s, ${signal}: run ${i + 1}: ${r.monitors} monitors taken over in ${(r.ms / 1000).toFixed(2)} s`,
      );
    }
    rows.push({ interval, signal, median: median(runs), min: Math.min(...runs), max: Math.max(...runs) });
  }
}
console.log('\n| interval | stop | takeover s median (min-max) | in intervals (goal <= 2) |');
console.log('| ---: | --- | ---: | ---: |');
for (const r of rows) {
  console.log(
    `| ${r.interval} s | ${r.signal} | ${(r.median / 1000).toFixed(2)} (${(r.min / 1000).toFixed(2)}-${(r.max / 1000).toFixed(2)}) | ${(r.median / 1000 / r.interval).toFixed(2)} |`,
  );
}
