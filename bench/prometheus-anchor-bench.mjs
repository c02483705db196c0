#!/usr/bin/env node
/**
 * The side-by-side anchor of issue 15 §6: the founding outage (the out-of-band `nft` edit on web1 and web2) detected
 * and paged by Rampart and by Prometheus + blackbox_exporter + Alertmanager, in the same shop lab at the same time.
 *
 * - Rampart: a real `rampart serve` in srv with the lab's monitors (every 1 s, timeout 500 ms, 2 failures), the server
 *   and a probe as vantage points, and alerting on its defaults (group_wait 500 ms) to a webhook receiver on srv's
 *   loopback. Measured: edit -> the `shop` monitor DOWN, edit -> the first notification accepted by the receiver.
 * - Prometheus (Debian's packages) probing the same URL (http://10.88.0.2/healthz) through blackbox_exporter's
 *   http_2xx module, rule `probe_success == 0` (alert ShopDown), Alertmanager posting to a webhook receiver on srv's
 *   loopback, in two configurations run side by side (each its own Prometheus and Alertmanager, one blackbox_exporter):
 *   - `default`: what Debian ships in /etc/prometheus/prometheus.yml and alertmanager.yml: scrape_interval and
 *     evaluation_interval 15 s (Prometheus's built-in global default is 1 m; Debian's file sets 15 s and most
 *     guides copy it), `for: 1m` (the most common choice in published blackbox rules; awesome-prometheus-alerts
 *     uses 0m, others 2m-5m), group_wait 30 s, group_interval 5 m, group_by [alertname, cluster, service];
 *   - `tuned`: scrape and evaluation every 1 s (scrape_timeout 1 s, so blackbox_exporter probes with 0.5 s like
 *     Rampart's monitor), `for: 1s` (two failed evaluations, like Rampart's 2 failures), group_wait 0 s.
 *   Measured: edit -> the alert `firing` in Prometheus's /api/v1/alerts, edit -> Alertmanager's webhook received.
 *
 * Each cycle starts fresh Prometheus and Alertmanager processes (new data dirs), so every outage is a new alert group
 * for them, as the first outage of the day is: an outage within group_interval (5 m) of the last one's resolution
 * would wait for the old group's next interval instead, and Prometheus keeps resending resolved alerts for 15 m.
 * Rampart's group of the last cycle is gone once its resolved notification went out, which each cycle waits for.
 * A watcher process in srv (this file with --watch) receives the webhooks and polls Rampart's /api/v1/monitors and
 * each Prometheus's /api/v1/alerts every 200 ms, writing timestamped JSON lines; every time is Date.now() of this
 * machine (all namespaces share the clock). The edit lands at a random 0-15 s phase after the stacks are ready.
 *
 * Usage (root; namespaces named rampart-shop-*, removed at the end, also on failure or Ctrl-C):
 *   npm run build && node bench/prometheus-anchor-bench.mjs [--runs 5] [--timeout 400] [--dist DIR]
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const HOOK_PORT = 5000;
const SHOP_HEALTH = 'http://10.88.0.2/healthz';

/** Watcher mode, run inside srv: webhook receiver + pollers, one JSON line per observation change. */
async function watch() {
  const out = (o) => process.stdout.write(`${JSON.stringify({ t: Date.now(), ...o })}\n`);
  const rampart = process.env.WATCH_RAMPART;
  const token = process.env.WATCH_TOKEN;
  const promsFile = process.env.WATCH_PROMS; // rewritten by the bench: [{name, url}]
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const t = Date.now();
      res.writeHead(200).end('ok');
      let body = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        // recorded with an empty body
      }
      const alerts = (body.alerts ?? []).map((a) => `${a.labels?.alertname}:${a.status ?? a.state}`);
      process.stdout.write(
        `${JSON.stringify({ t, src: req.url.slice(1), kind: 'hook', status: body.status, alerts })}\n`,
      );
    });
  });
  await new Promise((r) => server.listen(HOOK_PORT, '127.0.0.1', r));
  out({ kind: 'ready' });
  const last = new Map();
  const note = (src, kind, value) => {
    const k = `${src}/${kind}`;
    if (last.get(k) !== value) {
      last.set(k, value);
      out({ src, kind, value });
    }
  };
  const get = async (url, headers = {}) => {
    const r = await fetch(url, { headers, signal: AbortSignal.timeout(2000) });
    if (!r.ok) throw new Error(`${url}: ${r.status}`);
    return r.json();
  };
  for (;;) {
    const t0 = Date.now();
    const proms = JSON.parse(readFileSync(promsFile, 'utf8'));
    await Promise.all([
      get(`${rampart}/api/v1/monitors`, { authorization: `Bearer ${token}` })
        .then((j) => {
          const m = j.monitors.find((x) => x.name === 'shop');
          note('rampart', 'monitor', m?.state ?? 'none');
          // the state machine's own time of the change (the poll sees it up to a poll later)
          if (m?.state === 'DOWN') note('rampart', 'downSince', m.since);
        })
        .catch(() => note('rampart', 'monitor', 'error')),
      ...proms.flatMap((p) => [
        get(`${p.url}/api/v1/alerts`)
          .then((j) =>
            note(p.name, 'alert', j.data.alerts.find((a) => a.labels.alertname === 'ShopDown')?.state ?? 'inactive'),
          )
          .catch(() => note(p.name, 'alert', 'error')),
        get(`${p.url}/api/v1/query?query=probe_success`)
          .then((j) => note(p.name, 'probe', j.data.result[0]?.value[1] ?? 'none'))
          .catch(() => note(p.name, 'probe', 'error')),
      ]),
    ]);
    await sleep(Math.max(0, 200 - (Date.now() - t0)));
  }
}

if (process.argv[2] === '--watch') {
  await watch();
} else {
  await bench();
}

async function bench() {
  const root = join(import.meta.dirname, '..');
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      timeout: { type: 'string', default: '400' },
      // another build of Rampart to measure (its dist/ directory); default this checkout's
      dist: { type: 'string', default: join(root, 'dist') },
    },
  });
  const dist = (p) => join(values.dist, p);
  const runs = Number(values.runs);
  const waitMs = Number(values.timeout) * 1000;
  const { BASELINE_RULESET, startRampart, SERVER_URL } = await import(dist('lab/rampart-lab.js'));
  const { createShopLab, shopLabUnavailable, startShop } = await import(dist('lab/shop-lab.js'));
  const why = shopLabUnavailable([
    'ip',
    'haproxy',
    'nft',
    'prometheus',
    'prometheus-alertmanager',
    'prometheus-blackbox-exporter',
  ]);
  if (why) {
    console.error(
      `cannot run: ${why} (apt-get install prometheus prometheus-alertmanager prometheus-blackbox-exporter)`,
    );
    process.exit(2);
  }
  const OUTAGE = join(root, 'test', 'fixtures', 'nftables', 'founding-outage.nft');
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : Number.NaN;
  };
  const { PROMETHEUS_DEFAULTS, startBlackbox, startPrometheusStack } = await import(dist('lab/prometheus-stack.js'));
  // Debian's defaults, and tuned to Rampart's own speeds (1 s, for: 1s, group_wait 0s; the drills' --compare tunes
  // to 5 s instead: src/lab/prometheus-stack.ts PROMETHEUS_TUNED).
  const STACKS = [
    PROMETHEUS_DEFAULTS,
    {
      ...PROMETHEUS_DEFAULTS,
      name: 'tuned',
      promPort: 9091,
      amPort: 9094,
      scrapeInterval: '1s',
      scrapeTimeout: '1s',
      evaluationInterval: '1s',
      for: '1s',
      groupWait: '0s',
    },
  ];

  const lab = await createShopLab();
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      console.error(`${sig}: tearing the lab down`);
      void lab.destroy().finally(() => process.exit(130));
    });
  }
  const rows = [];
  let misses = 0;
  try {
    const baseline = join(lab.paths.dir, 'baseline.nft');
    writeFileSync(baseline, `flush ruleset\n${BASELINE_RULESET}`);
    const nft = (host, file) => lab.exec[host].run(['nft', '-f', file]);
    for (const h of ['web1', 'web2']) await nft(h, baseline);
    await startShop(lab);
    const r = await startRampart(lab, dist('cli/main.js'), {
      pollMs: 300,
      monitor: { intervalMs: 1000, timeoutMs: 500 },
      desired: { web1: BASELINE_RULESET, web2: BASELINE_RULESET },
    });
    r.startProbe();
    // Alerting on Rampart's defaults (route without intervals: group_wait 500ms), then SIGHUP reloads the config.
    appendFileSync(
      r.configFile,
      `alerting:
  receivers: [{name: team, webhook_configs: [{url: 'http://127.0.0.1:${HOOK_PORT}/rampart'}]}]
  route: {receiver: team}
`,
    );
    process.kill(r.server.pid, 'SIGHUP');

    const promsFile = join(lab.paths.dir, 'watch-proms.json');
    writeFileSync(promsFile, '[]');
    const watcher = lab.spawnIn('srv', [process.execPath, import.meta.filename, '--watch'], {
      label: 'watch',
      env: { ...process.env, WATCH_RAMPART: SERVER_URL, WATCH_TOKEN: r.tokens.bob, WATCH_PROMS: promsFile },
    });
    const seen = () =>
      readFileSync(watcher.log, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l));
    const until = async (what, ok, ms = waitMs) => {
      const end = Date.now() + ms;
      for (;;) {
        const v = ok(seen());
        if (v) return v;
        if (Date.now() > end) {
          if (what.startsWith('Rampart')) for (const x of seen().slice(-60)) console.error(`  ${JSON.stringify(x)}`);
          throw new Error(`${what}: not within ${ms / 1000} s`);
        }
        await sleep(100);
      }
    };
    /** The first observation after `since` that `pick` accepts. */
    const first = (es, since, pick) => es.find((e) => e.t >= since && pick(e));
    await until('the watcher', (es) => es.some((e) => e.kind === 'ready'), 30_000);

    startBlackbox(lab);
    const startStack = (s, run) => {
      const st = startPrometheusStack(
        lab,
        s,
        { urls: [SHOP_HEALTH], webhookUrl: `http://127.0.0.1:${HOOK_PORT}/${s.name}` },
        join(lab.paths.dir, `${s.name}-${run}`),
      );
      return { am: st.alertmanager, prom: st.prometheus };
    };
    writeFileSync(
      promsFile,
      JSON.stringify(STACKS.map((s) => ({ name: s.name, url: `http://127.0.0.1:${s.promPort}` }))),
    );

    for (let run = 1; run <= runs; run++) {
      const procs = STACKS.map((s) => startStack(s, run));
      const started = Date.now();
      // Ready: the shop UP for Rampart, each Prometheus has scraped a successful probe.
      await until('Rampart UP and each Prometheus with probe_success 1', (es) => {
        const lastOf = (src, kind) => es.filter((e) => e.src === src && e.kind === kind).at(-1);
        return (
          lastOf('rampart', 'monitor')?.value === 'UP' &&
          STACKS.every((s) => {
            const p = lastOf(s.name, 'probe');
            return p && p.t >= started && p.value === '1';
          })
        );
      });
      await sleep(Math.floor(Math.random() * 15_000));
      const edit = Date.now();
      await Promise.all([nft('web1', OUTAGE), nft('web2', OUTAGE)]);
      const row = { run };
      let got = {};
      const times = await until('every page after the edit', (es) => {
        const down = first(es, edit, (e) => e.src === 'rampart' && e.kind === 'monitor' && e.value === 'DOWN');
        const page = first(es, edit, (e) => e.src === 'rampart' && e.kind === 'hook' && e.status === 'firing');
        // the first page naming the shop DOWN (a MonitorDegraded warning may come first, when one vantage point fails)
        const pageDown = first(
          es,
          edit,
          (e) =>
            e.src === 'rampart' &&
            e.kind === 'hook' &&
            e.alerts.some((a) => /^(MonitorDown|ServiceDown):firing$/.test(a)),
        );
        got = { down, page, pageDown };
        for (const s of STACKS) {
          got[`${s.name}Firing`] = first(
            es,
            edit,
            (e) => e.src === s.name && e.kind === 'alert' && e.value === 'firing',
          );
          got[`${s.name}Page`] = first(es, edit, (e) => e.src === s.name && e.kind === 'hook' && e.status === 'firing');
        }
        return Object.values(got).every(Boolean) && got;
      }).catch((e) => {
        // a miss is a finding: say what was missing and what was seen, then go on with the next cycle
        const missing = Object.entries(got).filter(([, v]) => !v);
        console.error(`run ${run}: ${e.message}; missing: ${missing.map(([k]) => k).join(', ')}`);
        for (const x of seen().filter((x) => x.t >= edit - 60_000)) console.error(`  ${JSON.stringify(x)}`);
        return undefined;
      });
      if (!times) {
        misses++;
        await Promise.all([nft('web1', baseline), nft('web2', baseline)]);
        for (const p of procs) await Promise.all([lab.kill(p.prom), lab.kill(p.am)]);
        await sleep(45_000); // Rampart's group resolves and is announced (group_interval 30 s)
        continue;
      }
      for (const [k, e] of Object.entries(times)) row[k] = (e.t - edit) / 1000;
      const since = first(seen(), edit, (e) => e.src === 'rampart' && e.kind === 'downSince');
      if (since) row.downSince = (Date.parse(since.value) - edit) / 1000;
      row.firstPage = times.page.alerts;
      row.downToPage = row.pageDown - (row.downSince ?? row.down);
      for (const st of STACKS) row[`${st.name}FiringToPage`] = row[`${st.name}Page`] - row[`${st.name}Firing`];
      await Promise.all([nft('web1', baseline), nft('web2', baseline)]);
      const fix = Date.now();
      const back = await until("Rampart's resolved page and every alert inactive", (es) => {
        const up = first(es, fix, (e) => e.src === 'rampart' && e.kind === 'monitor' && e.value === 'UP');
        const resolved = first(es, fix, (e) => e.src === 'rampart' && e.kind === 'hook' && e.status === 'resolved');
        const inactive = STACKS.map((s) =>
          first(es, fix, (e) => e.src === s.name && e.kind === 'alert' && e.value === 'inactive'),
        );
        return up && resolved && inactive.every(Boolean) && { up, resolved };
      });
      row.up = (back.up.t - fix) / 1000;
      row.resolved = (back.resolved.t - fix) / 1000;
      rows.push(row);
      console.error(`run ${run}: ${JSON.stringify(row)}`);
      for (const p of procs) await Promise.all([lab.kill(p.prom), lab.kill(p.am)]);
    }
  } finally {
    await lab.destroy();
  }
  const fmt = (k) => {
    const xs = rows.map((r) => r[k]);
    return `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`;
  };
  const ratio = (k) => (median(rows.map((r) => r[k])) / median(rows.map((r) => r.pageDown))).toFixed(1);
  console.log(
    `prometheus anchor bench: ${rows.length} cycles (${misses} more missed a page, see above); ${cpus().length} CPUs, load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}, node ${process.version}`,
  );
  console.log(
    '| stack | nft edit -> detected (s) | detected -> webhook (s) | nft edit -> webhook received (s) | page time / Rampart |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: |');
  console.log(
    `| Rampart (defaults: monitor every 1 s, 2 failures; group_wait 500ms) | ${fmt('downSince')} monitor DOWN | ${fmt('downToPage')} | ${fmt('pageDown')} (any first page: ${fmt('page')}) | 1 |`,
  );
  console.log(
    `| Prometheus + blackbox_exporter + Alertmanager, Debian's defaults (scrape/eval 15 s, for: 1m, group_wait 30s) | ${fmt('defaultFiring')} alert firing | ${fmt('defaultFiringToPage')} | ${fmt('defaultPage')} | ${ratio('defaultPage')} |`,
  );
  console.log(
    `| the same, tuned (scrape/eval 1 s, for: 1s, group_wait 0s) | ${fmt('tunedFiring')} alert firing | ${fmt('tunedFiringToPage')} | ${fmt('tunedPage')} | ${ratio('tunedPage')} |`,
  );
  console.log(`\nRampart after the fix: monitor UP ${fmt('up')} s, resolved page ${fmt('resolved')} s`);
}
