#!/usr/bin/env node
/**
 * API load benchmark (issue 5: "the API sustains 500 requests/s of mixed reads on SQLite on the 2-core machine with
 * p99 under 50 ms (load from a second process on loopback)").
 *
 * Starts a real `rampart serve` (dist/, SQLite in a temp dir, test/fixtures/config/shop.yaml) as a child process,
 * seeds it through the API (tokens, --changes proposals with plans, one approved and queued), then drives it
 * from this process with autocannon on 127.0.0.1:
 *   - mixed: GET /api/v1/changes, /changes/:id, /changes/:id/plan?format=text, /hosts, /jobs, /whoami, each with
 *     a viewer token (authentication and role check on every request), at a fixed --rate for --duration seconds;
 *   - baseline in the same run: GET /healthz (no auth, one tiny store read) at the same rate, so the ratio shows
 *     what authentication, validation and the store reads cost on top of Fastify;
 *   - max: the mixed reads unthrottled, to show the headroom.
 * Median of --runs for each. Bounded: every load stops by itself after --duration seconds.
 *
 * Usage: npm run build && node bench/api-bench.mjs [--rate 500] [--duration 15] [--runs 3] [--connections 10]
 *          [--changes 20]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const main = join(root, 'dist', 'cli', 'main.js');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}
const RATE = arg('rate', 500);
const DURATION = arg('duration', 15);
const RUNS = arg('runs', 3);
const CONNECTIONS = arg('connections', 10);
const CHANGES = arg('changes', 20);

function run(args) {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, [main, ...args], { cwd: root });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => (code === 0 ? done(out) : fail(new Error(`rampart ${args.join(' ')}: ${code} ${err}`))));
  });
}

function serve(dir) {
  return new Promise((done, fail) => {
    const config = join(root, 'test', 'fixtures', 'config', 'shop.yaml');
    const p = spawn(
      process.execPath,
      [main, 'serve', '--data-dir', dir, '--config', config, '--listen', '127.0.0.1:0', '--log-level', 'error'],
      {
        cwd: root,
      },
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

async function api(url, token, method, path, body) {
  const res = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

function load(url, requests, rate) {
  return new Promise((done, fail) => {
    autocannon(
      {
        url,
        connections: CONNECTIONS,
        duration: DURATION,
        ...(rate ? { overallRate: rate } : {}),
        requests,
      },
      (err, r) => (err ? fail(err) : done(r)),
    );
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'rampart-api-bench-'));
let server;
try {
  const admin = JSON.parse(await run(['init', '--data-dir', dir, '--json'])).token;
  server = await serve(dir);
  const { url } = server;
  const mk = async (name, role) => (await api(url, admin, 'POST', '/tokens', { name, role })).token;
  const [alice, bob, viewer] = [await mk('alice', 'operator'), await mk('bob', 'approver'), await mk('vic', 'viewer')];
  const fixed = readFileSync(join(root, 'test', 'fixtures', 'queries', 'founding-fixed.nft'), 'utf8');
  const ids = [];
  for (let i = 0; i < CHANGES; i++) {
    const target = i % 2 ? { group: 'web' } : { host: 'web1' };
    ids.push(
      (await api(url, alice, 'POST', '/changes', { target, ruleset: fixed, reason: `bench change ${i}` })).change.id,
    );
  }
  await api(url, bob, 'POST', `/changes/${ids[0]}/approve`, {});
  await api(url, alice, 'POST', `/changes/${ids[0]}/apply`, {});

  const auth = { authorization: `Bearer ${viewer}` };
  const mixed = [
    '/api/v1/changes',
    `/api/v1/changes/${ids[1]}`,
    `/api/v1/changes/${ids[2]}/plan?format=text`,
    '/api/v1/hosts',
    '/api/v1/jobs',
    '/api/v1/whoami',
    `/api/v1/changes/${ids[0]}`,
  ].map((path) => ({ method: 'GET', path, headers: auth }));
  const health = [{ method: 'GET', path: '/healthz' }];

  const rows = [];
  for (const [name, requests, rate] of [
    ['healthz (baseline)', health, RATE],
    ['mixed reads', mixed, RATE],
    ['mixed reads, unthrottled', mixed, 0],
  ]) {
    const runs = [];
    for (let i = 0; i < RUNS; i++) runs.push(await load(url, requests, rate));
    rows.push({
      name,
      rps: median(runs.map((r) => r.requests.average)),
      p50: median(runs.map((r) => r.latency.p50)),
      p99: median(runs.map((r) => r.latency.p99)),
      max: median(runs.map((r) => r.latency.max)),
      bad: runs.reduce((n, r) => n + r.errors + r.timeouts + r.non2xx, 0),
      total: runs.reduce((n, r) => n + r.requests.total, 0),
    });
  }
  const base = rows[0];
  console.log(
    `api-bench: ${new Date().toISOString()}, ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log(
    `rate ${RATE}/s target, ${DURATION} s per run, ${CONNECTIONS} connections, median of ${RUNS} runs, SQLite, ${CHANGES} changes`,
  );
  console.log('| load | req/s | p50 ms | p99 ms | max ms | failed | p99 vs baseline |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.max} | ${r.bad}/${r.total} | ${(r.p99 / Math.max(1, base.p99)).toFixed(1)}x |`,
    );
  }
  const mixedRow = rows[1];
  const met = mixedRow.rps >= RATE * 0.97 && mixedRow.p99 < 50 && mixedRow.bad === 0;
  console.log(`target (>= ${RATE} req/s of mixed reads, p99 < 50 ms, no failures): ${met ? 'met' : 'MISSED'}`);
} finally {
  server?.proc.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
