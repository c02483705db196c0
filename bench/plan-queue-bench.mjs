#!/usr/bin/env node
/**
 * One large proposal cannot stall everyone (issue 12, section 3), measured against a real `rampart serve` (dist/,
 * SQLite in a temp dir, test/fixtures/config/shop.yaml with a plan-timeout long enough for the large plan to run):
 *
 *   1. /healthz latency idle: --idle sequential requests (the baseline of the same run);
 *   2. a --rules rule proposal (test/fixtures' scale generator: `table inet filter`, nat left out so the agent
 *      would accept it) is sent, /healthz is probed every 20 ms for --window seconds while it is planned, and 3 s
 *      after it a small proposal (the founding fix, for web2) is sent: how long until the small one is planned,
 *      and when (if ever, within the window) the large one was answered;
 *   3. --unauth concurrent proposals of 15 MiB without a token: how long until all are refused, and the server's
 *      RSS growth (VmHWM - VmRSS before).
 *
 * --root DIR runs another checkout's build (for the before/after: `git worktree add ../base <commit>`, npm ci and
 * npm run build there). Bounded: every step stops by itself (the window, a 150 s cap on answers); the server is
 * killed at the end.
 *
 * Usage: npm run build && node bench/plan-queue-bench.mjs [--root DIR] [--rules 100000] [--window 30] [--idle 200]
 *          [--unauth 20] [--runs 1]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');

function opt(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const ROOT = resolve(opt('root', repo));
const RULES = Number(opt('rules', 100_000));
const WINDOW = Number(opt('window', 30));
const IDLE = Number(opt('idle', 200));
const UNAUTH = Number(opt('unauth', 20));
const RUNS = Number(opt('runs', 1));
const main = join(ROOT, 'dist', 'cli', 'main.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const { generateNftText } = await import(join(repo, 'dist', 'lab', 'scale-generator.js'));

/** The generator's ruleset with its nat table left out and the filter table as `inet filter` (the managed one). */
function largeRuleset(n) {
  const text = generateNftText(n, 1);
  const out = [];
  let depth = 0;
  let skipping = false;
  for (const line of text.split('\n')) {
    if (depth === 0 && /^table ip nat \{/.test(line)) skipping = true;
    const opens = (line.match(/\{/g) ?? []).length;
    const closes = (line.match(/\}/g) ?? []).length;
    if (!skipping) out.push(line.replace(/^table ip filter \{/, 'table inet filter {'));
    depth += opens - closes;
    if (skipping && depth === 0) skipping = false;
  }
  return out.join('\n');
}

function cli(args) {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, [main, ...args], { cwd: ROOT });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => (code === 0 ? done(out) : fail(new Error(`rampart ${args.join(' ')}: ${code} ${err}`))));
  });
}

function serve(dir, config) {
  return new Promise((done, fail) => {
    const p = spawn(
      process.execPath,
      [main, 'serve', '--data-dir', dir, '--config', config, '--listen', '127.0.0.1:0', '--log-level', 'error'],
      { cwd: ROOT },
    );
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) done({ proc: p, url: m[1] });
    });
    p.on('exit', (code) => fail(new Error(`serve exited ${code}: ${out}`)));
  });
}

function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024 };
}

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

async function healthz(url) {
  const t = performance.now();
  await (await fetch(`${url}/healthz`)).text();
  return performance.now() - t;
}

async function propose(url, token, host, ruleset, reason) {
  const res = await fetch(`${url}/api/v1/changes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ target: { host }, ruleset, reason }),
    signal: AbortSignal.timeout(150_000),
  });
  return { status: res.status, body: await res.json() };
}

/** Until the change is planned (or failed); ms from `t0`. */
async function untilPlanned(url, token, answer, t0) {
  let body = answer.body;
  for (;;) {
    const state = body?.change?.state;
    if (state && state !== 'planning' && state !== 'proposed') return { ms: performance.now() - t0, state };
    if (performance.now() - t0 > 150_000) return { ms: Number.NaN, state: 'no answer in 150 s' };
    await sleep(100);
    body = await (
      await fetch(`${url}/api/v1/changes/${body.change.id}`, { headers: { authorization: `Bearer ${token}` } })
    ).json();
  }
}

async function once() {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-plan-queue-'));
  const config = join(dir, 'rampart.yaml');
  // A build from before policy.plan-timeout existed refuses the key (and has no plan budget to raise).
  const knowsBudget = readFileSync(join(ROOT, 'dist', 'config', 'load.js'), 'utf8').includes('plan-timeout');
  const shop = readFileSync(join(repo, 'test', 'fixtures', 'config', 'shop.yaml'), 'utf8');
  writeFileSync(config, knowsBudget ? shop.replace('policy:\n', 'policy:\n  plan-timeout: 20m\n') : shop);
  const data = join(dir, 'data');
  const admin = JSON.parse(await cli(['init', '--data-dir', data, '--json'])).token;
  let server;
  try {
    server = await serve(data, config);
    const url = server.url;
    const alice = await fetch(`${url}/api/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'alice', role: 'operator' }),
    }).then((r) => r.json());

    const idle = [];
    for (let i = 0; i < IDLE; i++) idle.push(await healthz(url));

    const large = largeRuleset(RULES);
    const small = readFileSync(join(repo, 'test', 'fixtures', 'queries', 'founding-fixed.nft'), 'utf8');
    const t0 = performance.now();
    let largeAnswer;
    const largeDone = propose(url, alice.token, 'web1', large, 'a large ruleset').then(
      (a) => {
        largeAnswer = { ms: performance.now() - t0, status: a.status };
        return a;
      },
      (e) => {
        largeAnswer = { ms: Number.NaN, status: String(e.name) };
      },
    );
    const during = [];
    const slowest = { ms: 0, at: 0 };
    const probing = (async () => {
      while (performance.now() - t0 < WINDOW * 1000) {
        const at = performance.now() - t0;
        const ms = await healthz(url);
        during.push(ms);
        if (ms > slowest.ms) Object.assign(slowest, { ms, at });
        await sleep(20);
      }
    })();
    await sleep(3000);
    const ts = performance.now();
    const smallAnswer = await propose(url, alice.token, 'web2', small, 'a small ruleset');
    const smallResult = await untilPlanned(url, alice.token, smallAnswer, ts);
    smallResult.answerStatus = smallAnswer.status;
    await probing;

    // unauthenticated 15 MiB bodies
    const before = memory(server.proc.pid);
    const body = JSON.stringify({ target: { host: 'web1' }, ruleset: 'x'.repeat(15 * 1024 * 1024), reason: 'junk' });
    const tu = performance.now();
    const statuses = await Promise.all(
      Array.from({ length: UNAUTH }, () =>
        fetch(`${url}/api/v1/changes`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(150_000),
        })
          .then((r) => r.status)
          // the server answered 401 and closed the connection before the whole body was sent
          .catch(() => 'closed'),
      ),
    );
    const unauthMs = performance.now() - tu;
    const after = memory(server.proc.pid);
    void largeDone;
    return {
      idle: { p50: pct(idle, 50), p99: pct(idle, 99), max: Math.max(...idle) },
      during: {
        n: during.length,
        p50: pct(during, 50),
        p99: pct(during, 99),
        max: Math.max(...during),
        slowestAtMs: slowest.at,
      },
      large: largeAnswer ?? { ms: Number.NaN, status: `no answer in ${WINDOW} s` },
      small: smallResult,
      unauth: { ms: unauthMs, statuses: [...new Set(statuses)], rssGrowthMiB: after.hwmMiB - before.rssMiB },
    };
  } finally {
    server?.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const f = (x) => (Number.isNaN(x) ? '-' : x.toFixed(1));
console.log(
  `plan-queue-bench: ${ROOT} rules=${RULES} window=${WINDOW}s; ${cpus().length} x ${cpus()[0]?.model}; node ${process.version}; load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
for (let r = 0; r < RUNS; r++) {
  const x = await once();
  console.log(JSON.stringify(x));
  console.log(
    `| healthz idle p50/p99/max ms | ${f(x.idle.p50)} / ${f(x.idle.p99)} / ${f(x.idle.max)} |\n` +
      `| healthz during the large plan p50/p99/max ms (${x.during.n} probes) | ${f(x.during.p50)} / ${f(x.during.p99)} / ${f(x.during.max)} (slowest ${f(x.during.slowestAtMs / 1000)} s after the large proposal) |\n` +
      `| large proposal answered after ms (status) | ${f(x.large.ms)} (${x.large.status}) |\n` +
      `| small proposal sent 3 s later: planned after ms (first answer) | ${f(x.small.ms)} (${x.small.answerStatus}, ${x.small.state}) |\n` +
      `| ${UNAUTH} unauthenticated 15 MiB proposals refused after ms (statuses), server RSS growth MiB | ${f(x.unauth.ms)} (${x.unauth.statuses.join(',')}), ${f(x.unauth.rssGrowthMiB)} |`,
  );
}
