#!/usr/bin/env node
/**
 * The founding outage made by hand, repeated in the shop lab (issue 14, §6 scenario 1): how long from the `nft` edit
 * on web1 and web2 to the public monitor DOWN (server and probe vantage points), to the firewall diagnosis with
 * drift, and to the traffic-drop events on both hosts; and from the fix back to UP and traffic recovered. Medians
 * over several cycles in one lab (real kernel, HAProxy, server, agents, probe, customers at a steady rate).
 *
 * Usage (root; namespaces named rampart-*, removed at the end, also on failure):
 *   npm run build && node bench/monitoring-lab-bench.mjs [--runs 5] [--rate 40]
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = join(import.meta.dirname, '..');
const dist = (p) => join(root, 'dist', p);
const { values } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, rate: { type: 'string', default: '40' } },
});
const runs = Number(values.runs);
const { BASELINE_RULESET, startRampart } = await import(dist('lab/rampart-lab.js'));
const { createShopLab, distScript, SHOP_URL, startShop } = await import(dist('lab/shop-lab.js'));
const OUTAGE = join(root, 'test', 'fixtures', 'nftables', 'founding-outage.nft');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : Number.NaN;
};

const lab = await createShopLab();
const rows = [];
let missed = 0;
// Stopped by a signal: the lab's namespaces and processes go too.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    void lab.destroy().finally(() => process.exit(130));
  });
}
try {
  const baseline = join(lab.paths.dir, 'baseline.nft');
  writeFileSync(baseline, `flush ruleset\n${BASELINE_RULESET}`);
  const nft = (host, file) => lab.exec[host].run(['nft', '-f', file]);
  for (const h of ['web1', 'web2']) await nft(h, baseline);
  await startShop(lab);
  const r = await startRampart(lab, dist('cli/main.js'), {
    pollMs: 300,
    monitor: { intervalMs: 1000, timeoutMs: 500 },
    traffic: { logDir: lab.paths.dir },
    desired: { web1: BASELINE_RULESET, web2: BASELINE_RULESET },
  });
  r.startProbe();
  const seconds = String(runs * 150 + 120);
  lab.spawnIn(
    'client',
    [process.execPath, distScript('steady-client.js'), '--url', SHOP_URL, '--rate', values.rate, '--duration', seconds],
    {
      label: 'customers',
    },
  );
  const json = async (...args) => JSON.parse((await r.cli('bob', ...args, '--json')).stdout);
  const until = async (what, ok, ms = 180_000, every = 100) => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await ok();
      if (v) return v;
      if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
      await sleep(every);
    }
  };
  const monitors = () => json('monitors');
  const events = async (kind) => (await json('events', '--kind', kind, '--limit', '1000')).events;
  const allUp = async () => {
    const s = await monitors();
    return s.monitors.length === 3 && s.monitors.every((m) => m.state === 'UP');
  };
  const learnt = async () => {
    const t = (await json('traffic')).traffic;
    return ['web1', 'web2'].every((h) => {
      const x = t.find((y) => y.host === h);
      return x && x.state === 'normal' && (x.expected ?? 0) > 1;
    });
  };
  for (let run = 1; run <= runs; run++) {
    await until('every monitor UP', allUp);
    await until('an expected rate on both hosts', learnt, 240_000, 1000);
    const drops0 = (await events('traffic.drop')).length;
    const rec0 = (await events('traffic.recovered')).length;
    // a random phase against the agents' 5 s windows, as an edit by hand has
    await sleep(Math.floor(Math.random() * 5000));
    const edit = Date.now();
    await Promise.all([nft('web1', OUTAGE), nft('web2', OUTAGE)]);
    const down = await until('public monitor DOWN', async () => {
      const s = await monitors();
      return s.monitors.find((m) => m.name === 'shop')?.state === 'DOWN' && Date.now();
    });
    const diagnosed = await until('diagnosis with drift', async () => {
      const s = await monitors();
      return (
        ['shop@web1', 'shop@web2'].every((n) => s.monitors.find((m) => m.name === n)?.diagnosis?.firewall?.drifted) &&
        Date.now()
      );
    });
    const drops = await until(
      'traffic.drop on both hosts',
      async () => {
        const es = (await events('traffic.drop')).slice(drops0);
        return ['web1', 'web2'].every((h) => es.some((e) => e.data.host === h)) && es;
      },
      120_000,
      250,
    ).catch(async (e) => {
      // what the server knew then, for the record: a miss is a finding, not a reason to lose the other cycles
      console.error(`run ${run}: ${e.message}; traffic now: ${JSON.stringify((await json('traffic')).traffic)}`);
      console.error(
        `run ${run}: drops since the edit: ${JSON.stringify((await events('traffic.drop')).slice(drops0))}`,
      );
      return undefined;
    });
    if (!drops) {
      missed++;
      await Promise.all([nft('web1', baseline), nft('web2', baseline)]);
      continue;
    }
    // the event's own time: the end of the point that decided it (the server took it in within a second)
    const dropAt = Math.max(...drops.map((e) => Date.parse(e.at)));
    await Promise.all([nft('web1', baseline), nft('web2', baseline)]);
    const fix = Date.now();
    const up = await until('every monitor UP again', async () => (await allUp()) && Date.now());
    const recovered = await until(
      'traffic.recovered on both hosts',
      async () => {
        const es = (await events('traffic.recovered')).slice(rec0);
        return ['web1', 'web2'].every((h) => es.some((e) => e.data.host === h)) && es;
      },
      120_000,
      250,
    );
    const row = {
      run,
      down: (down - edit) / 1000,
      diagnosis: (diagnosed - edit) / 1000,
      drop: (dropAt - edit) / 1000,
      up: (up - fix) / 1000,
      recovered: (Math.max(...recovered.map((e) => Date.parse(e.at))) - fix) / 1000,
      expected: drops.map((e) => e.data.expected),
    };
    rows.push(row);
    console.error(`run ${run}: ${JSON.stringify(row)}`);
  }
} finally {
  await lab.destroy();
}
const fmt = (k) => {
  const xs = rows.map((r) => r[k]);
  return `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`;
};
console.log(
  `monitoring lab bench: ${rows.length} cycles (${missed} more without a traffic.drop on both hosts within 120 s), customers at ${values.rate} req/s; ${cpus().length} CPUs, load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}, node ${process.version}`,
);
console.log('| from | to | median s (min-max) | goal |');
console.log('| --- | --- | ---: | ---: |');
console.log(`| nft edit on web1 and web2 | public monitor DOWN | ${fmt('down')} | 5 |`);
console.log(`| nft edit | firewall diagnosis with drift on both backends | ${fmt('diagnosis')} | - |`);
console.log(`| nft edit | traffic.drop on both hosts | ${fmt('drop')} | 10 |`);
console.log(`| fix | every monitor UP | ${fmt('up')} | - |`);
console.log(`| fix | traffic.recovered on both hosts | ${fmt('recovered')} | - |`);
