#!/usr/bin/env node
/**
 * The alert pipeline end to end inside a real `rampart serve` app (issue 15, §6), on SQLite and on PostgreSQL:
 *
 * - latency: a monitor.state DOWN event written to the store (as the monitoring service writes it) until a webhook
 *   receiver on loopback has accepted the notification: event follower, routing, grouping (group_wait as given),
 *   the flush transaction with its outbox row, the outbox worker, the signed POST. Median of --n events;
 * (route: group_wait --group-wait, group_interval 1m.)
 * - throughput: --alerts alerts posted through Alertmanager's webhook (one request), each its own group, until the
 *   receiver has every notification: alerts/s through routing, grouping and the outbox.
 *   Baseline in the same run: the same number of POSTs straight to the receiver (4 at a time), so the ratio is what
 *   routing, grouping and the durable outbox cost over sending alone.
 *
 * Usage: npm run build && node bench/alerting-bench.mjs [--n 20] [--alerts 500] [--runs 3] [--group-wait 0s]
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

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
const N = Number(arg('n', '20'));
const ALERTS = Number(arg('alerts', '500'));
const runs = Number(arg('runs', '3'));
const groupWait = arg('group-wait', '0s');
const PG_ADMIN = arg('pg', 'postgres://root@/postgres?host=/var/run/postgresql');

const { openStore } = await mod('store/open.js');
const { buildServer } = await mod('server/app.js');
const { configHolder } = await mod('server/config-holder.js');
const { generateToken } = await mod('server/auth.js');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A webhook receiver on loopback that answers 200 at once and calls `on` with each JSON body. */
async function receiver() {
  let on = () => {};
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200).end('ok');
      on(JSON.parse(Buffer.concat(chunks).toString('utf8')), performance.now());
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    set on(f) {
      on = f;
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

async function pgDatabase() {
  const name = `rampart_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  return {
    url: PG_ADMIN.replace(/\/postgres\?/, `/${name}?`),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

async function once(backend) {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-alerting-bench-'));
  const rx = await receiver();
  const db = backend === 'postgres' ? await pgDatabase() : undefined;
  const store = await openStore(db ? { db: db.url } : { dataDir: dir });
  const config = join(dir, 'rampart.yaml');
  writeFileSync(
    config,
    `site: bench
hosts: [{name: web1, addresses: [192.0.2.11]}]
services: [{name: shop, hosts: [web1], public: [tcp/80]}]
alerting:
  receivers: [{name: team, webhook_configs: [{url: '${rx.url}/hook'}]}]
  route: {receiver: team, group_by: [monitor, alertname, service], group_wait: ${groupWait}, group_interval: 1m}
`,
  );
  const t = generateToken();
  await store.write({ name: 'bench', role: 'system', from: 'local' }, (w) =>
    w.insertToken({
      id: t.id,
      name: 'prometheus',
      role: 'alertmanager',
      secretHash: t.secretHash,
      createdAt: new Date().toISOString(),
      createdBy: 'bench',
    }),
  );
  const app = await buildServer({ store, config: configHolder(config), logger: false });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    // Latency: one DOWN at a time, until its page is in.
    const lat = [];
    for (let i = 0; i < N; i++) {
      const monitor = `m${i}`;
      const got = new Promise((done) => {
        rx.on = (body, at) => {
          if (body.alerts?.some((a) => a.labels.monitor === monitor && a.state === 'firing')) done(at);
        };
      });
      const t0 = performance.now();
      await store.monitoring.insertEvents([
        {
          at: new Date().toISOString(),
          kind: 'monitor.state',
          subject: `monitor:${monitor}`,
          data: { monitor, service: 'shop', from: 'UP', to: 'DOWN', down: ['server'] },
        },
      ]);
      lat.push((await got) - t0);
    }
    // Throughput: ALERTS alerts in one Alertmanager request, each its own group.
    let seen = 0;
    const all = new Promise((done) => {
      rx.on = (body) => {
        seen += body.alerts?.length ?? 0;
        if (seen >= ALERTS) done(performance.now());
      };
    });
    const startsAt = new Date().toISOString();
    const alerts = Array.from({ length: ALERTS }, (_, i) => ({
      status: 'firing',
      labels: { alertname: 'Bench', service: `svc${i}`, monitor: `bench${i}` },
      annotations: { summary: `bench ${i}` },
      startsAt,
    }));
    const t0 = performance.now();
    const res = await fetch(`${url}/api/v1/alerts/alertmanager`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ version: '4', alerts }),
    });
    if (res.status !== 200) throw new Error(`alertmanager webhook: ${res.status} ${await res.text()}`);
    const through = ALERTS / (((await all) - t0) / 1000);
    // Baseline: the same number of POSTs straight to the receiver, 4 at a time.
    rx.on = () => {};
    const b0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < ALERTS) {
          const i = next++;
          await fetch(`${rx.url}/hook`, { method: 'POST', body: JSON.stringify({ alerts: [alerts[i]] }) });
        }
      }),
    );
    const direct = ALERTS / ((performance.now() - b0) / 1000);
    return { latency: median(lat), through, direct };
  } finally {
    await app.close();
    await store.close();
    await rx.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `alerting-bench: ${cpus().length} CPUs (${cpus()[0]?.model}), load ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}, ` + `n ${N}, alerts ${ALERTS}, runs ${runs}, group_wait ${groupWait}`,
);
for (const backend of ['sqlite', 'postgres']) {
  const rs = [];
  for (let r = 0; r < runs; r++) {
    rs.push(await once(backend));
    await sleep(200);
  }
  const lat = median(rs.map((x) => x.latency));
  const through = median(rs.map((x) => x.through));
  const direct = median(rs.map((x) => x.direct));
  console.log(
    `${backend}: DOWN event -> page accepted median ${lat.toFixed(0)} ms; ${through.toFixed(0)} alerts/s through routing, grouping and the outbox; direct POSTs ${direct.toFixed(0)}/s (ratio ${(direct / through).toFixed(2)})`,
  );
}
