#!/usr/bin/env node
/**
 * 10,000 monitors on one core (issue 14, section 4), side by side in one run with Prometheus's blackbox_exporter
 * (Debian's prometheus-blackbox-exporter) probing the same loopback targets at the same rate.
 *
 *   - the targets: one HTTP server process on 127.0.0.1 (not measured); monitor i is `GET /?m=i` (HTTP) or a TCP
 *     connect to the same port (TCP);
 *   - Rampart: a real `rampart serve` (dist/, SQLite in a temp dir) with --monitors monitors `from: [server]` at
 *     --interval seconds; its CPU (utime + stime from /proc) and RSS over --window seconds after --warm seconds, and
 *     the probes it made in that window (rampart_probe_results_total from its /metrics);
 *   - blackbox_exporter: the same number of targets at the same rate, asked the way Prometheus asks it
 *     (GET /probe?module=...&target=...) by a driver process in this script's process (not measured); its CPU and
 *     RSS over the same window, and the probes answered.
 *
 * Prints CPU seconds per 1,000 probes for both and the ratio (Rampart / blackbox_exporter; below 1 is Rampart using
 * less), the share of one core, and RSS. Bounded: every process is started here and killed at the end.
 *
 * Usage: npm run build && node bench/monitor-bench.mjs [--monitors 10000] [--interval 30] [--warm 20] [--window 60]
 *          [--runs 3] [--kinds http,tcp]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');
function opt(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const MONITORS = Number(opt('monitors', 10_000));
const INTERVAL = Number(opt('interval', 30));
const WARM = Number(opt('warm', 20));
const WINDOW = Number(opt('window', 60));
const RUNS = Number(opt('runs', 3));
const KINDS = opt('kinds', 'http,tcp').split(',');
const main = join(repo, 'dist', 'cli', 'main.js');
const BLACKBOX = '/usr/bin/prometheus-blackbox-exporter';
const TICK = Number(readFileSync('/proc/self/stat', 'utf8') && 100); // USER_HZ is 100 on Linux
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cpuOf(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / TICK;
}
function rssOf(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

function start(argv, env = {}) {
  const p = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  return { p, out: () => out };
}
async function waitFor(what, check, ms = 120_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}
const stop = (proc) =>
  new Promise((r) => {
    if (proc.p.exitCode !== null || proc.p.signalCode !== null) return r();
    proc.p.once('exit', r);
    proc.p.kill('SIGKILL');
  });

/** The targets, in their own process so their CPU is not anyone's. */
async function targets() {
  const t = start([
    process.execPath,
    '-e',
    `const s=require('node:http').createServer((q,r)=>r.end('ok\\n'));s.keepAliveTimeout=1000;s.listen(0,'127.0.0.1',()=>console.log('port',s.address().port))`,
  ]);
  await waitFor('the targets', async () => /port \d+/.test(t.out()));
  return { proc: t, port: Number(/port (\d+)/.exec(t.out())[1]) };
}

async function rampart(kind, port) {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-monbench-'));
  const lines = ['site: bench', 'hosts: []', 'monitors:'];
  for (let i = 0; i < MONITORS; i++) {
    lines.push(`  - name: m${i}`);
    lines.push(
      kind === 'http'
        ? `    http: {url: "http://127.0.0.1:${port}/?m=${i}"}`
        : `    tcp: {host: 127.0.0.1, port: ${port}}`,
    );
    lines.push(`    interval: ${INTERVAL}s`, '    timeout: 5s', '    from: [server]');
  }
  writeFileSync(join(dir, 'rampart.yaml'), `${lines.join('\n')}\n`);
  const serve = start([
    process.execPath,
    main,
    'serve',
    '--data-dir',
    join(dir, 'data'),
    '--config',
    join(dir, 'rampart.yaml'),
    '--listen',
    '127.0.0.1:0',
    '--log-level',
    'warn',
  ]);
  await waitFor('rampart serve', async () => /listening on http/.test(serve.out()));
  const url = /listening on (http:\/\/\S+)/.exec(serve.out())[1];
  const probes = async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    let n = 0;
    for (const m of text.matchAll(/^rampart_probe_results_total\{[^}]*vantage="server"[^}]*\} (\d+)/gm))
      n += Number(m[1]);
    return n;
  };
  await sleep(WARM * 1000);
  const c0 = cpuOf(serve.p.pid);
  const n0 = await probes();
  const t0 = Date.now();
  let rss = 0;
  while (Date.now() - t0 < WINDOW * 1000) {
    await sleep(1000);
    rss = Math.max(rss, rssOf(serve.p.pid));
  }
  const cpu = cpuOf(serve.p.pid) - c0;
  const n = (await probes()) - n0;
  const secs = (Date.now() - t0) / 1000;
  await stop(serve);
  rmSync(dir, { recursive: true, force: true });
  return { cpu, probes: n, secs, rss };
}

async function blackbox(kind, port) {
  const dir = mkdtempSync(join(tmpdir(), 'blackbox-monbench-'));
  writeFileSync(
    join(dir, 'blackbox.yml'),
    `modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n  tcp_connect:\n    prober: tcp\n    timeout: 5s\n`,
  );
  const listen = `127.0.0.1:${19000 + Math.floor(Math.random() * 1000)}`;
  const bb = start([
    BLACKBOX,
    `--config.file=${join(dir, 'blackbox.yml')}`,
    `--web.listen-address=${listen}`,
    '--log.level=warn',
  ]);
  await waitFor('blackbox_exporter', async () => (await fetch(`http://${listen}/-/healthy`)).ok);
  // The driver: Prometheus's part, each target every INTERVAL seconds, spread evenly (not measured).
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let done = 0;
  let stopped = false;
  const ask = (i) =>
    new Promise((r) => {
      const target = kind === 'http' ? `http://127.0.0.1:${port}/?m=${i}` : `127.0.0.1:${port}`;
      const path = `/probe?module=${kind === 'http' ? 'http_2xx' : 'tcp_connect'}&target=${encodeURIComponent(target)}`;
      const req = http.get({ host: listen.split(':')[0], port: Number(listen.split(':')[1]), path, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          done++;
          r();
        });
      });
      req.on('error', () => r());
    });
  const perMs = MONITORS / (INTERVAL * 1000);
  const t00 = Date.now();
  let sent = 0;
  const driver = (async () => {
    while (!stopped) {
      const due = Math.floor((Date.now() - t00) * perMs);
      while (sent < due) void ask(sent++ % MONITORS);
      await sleep(10);
    }
  })();
  await sleep(WARM * 1000);
  const c0 = cpuOf(bb.p.pid);
  const n0 = done;
  const t0 = Date.now();
  let rss = 0;
  while (Date.now() - t0 < WINDOW * 1000) {
    await sleep(1000);
    rss = Math.max(rss, rssOf(bb.p.pid));
  }
  const cpu = cpuOf(bb.p.pid) - c0;
  const n = done - n0;
  const secs = (Date.now() - t0) / 1000;
  stopped = true;
  await driver;
  agent.destroy();
  await stop(bb);
  rmSync(dir, { recursive: true, force: true });
  return { cpu, probes: n, secs, rss };
}

const t = await targets();
console.log(
  `monitor bench: ${MONITORS} monitors every ${INTERVAL} s (${(MONITORS / INTERVAL).toFixed(0)} probes/s), warm ${WARM} s, window ${WINDOW} s, ${RUNS} runs; ${cpus().length} CPUs ${cpus()[0]?.model ?? ''}, load ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);
const rows = [];
try {
  for (const kind of KINDS) {
    const r = [];
    const b = [];
    for (let run = 0; run < RUNS; run++) {
      // alternate the order so neither side always runs on the warmer or busier machine
      const pair = run % 2 === 0 ? [rampart, blackbox] : [blackbox, rampart];
      for (const f of pair) {
        const res = await f(kind, t.port);
        (f === rampart ? r : b).push(res);
        console.log(
          `  ${kind} run ${run + 1} ${f === rampart ? 'rampart ' : 'blackbox'}: ${res.probes} probes in ${res.secs.toFixed(0)} s, ${res.cpu.toFixed(2)} CPU s (${((res.cpu / res.probes) * 1000).toFixed(3)} per 1000), ${((res.cpu / res.secs) * 100).toFixed(1)}% of a core, RSS ${res.rss.toFixed(0)} MB`,
        );
      }
    }
    const per = (xs) => median(xs.map((x) => (x.cpu / x.probes) * 1000));
    const core = (xs) => median(xs.map((x) => x.cpu / x.secs));
    const rss = (xs) => median(xs.map((x) => x.rss));
    rows.push({
      kind,
      rampart: per(r),
      blackbox: per(b),
      rampartCore: core(r),
      blackboxCore: core(b),
      rampartRss: rss(r),
      blackboxRss: rss(b),
    });
  }
} finally {
  await stop(t.proc);
}
console.log(
  '\n| probe | Rampart CPU s / 1000 probes | blackbox_exporter CPU s / 1000 | ratio | Rampart share of a core | blackbox share | Rampart RSS | blackbox RSS |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const x of rows) {
  console.log(
    `| ${x.kind} | ${x.rampart.toFixed(3)} | ${x.blackbox.toFixed(3)} | ${(x.rampart / x.blackbox).toFixed(2)} | ${x.rampartCore.toFixed(3)} | ${x.blackboxCore.toFixed(3)} | ${x.rampartRss.toFixed(0)} MB | ${x.blackboxRss.toFixed(0)} MB |`,
  );
}
