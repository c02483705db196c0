#!/usr/bin/env node
/**
 * What the durable outbox (issue 15, §4) costs, on SQLite and on PostgreSQL, median of several runs in this process:
 *
 * - enqueue: notifications/s written with enqueueOutbox, 50 per transaction (a group flush of many groups);
 * - delivery: notifications/s from the queue to a webhook receiver on loopback that answers 200 at once, through
 *   the real worker (claim with a lease, sign, POST, record), 4 at a time; baseline = the same POSTs of the same
 *   notifications without the store (webhookRequest + fetch, 4 at a time), so the ratio is the outbox's overhead;
 * - latency: one notification from enqueue (then kick()) to the receiver having it, with an idle worker running.
 *
 * Usage: npm run build && node bench/outbox-bench.mjs [--n 2000] [--runs 5] [--pg postgres://...]
 * (PostgreSQL: default the local server over its unix socket as root; a throwaway database is created and dropped.)
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
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
const N = Number(arg('n', '2000'));
const runs = Number(arg('runs', '5'));
const PG_ADMIN = arg('pg', 'postgres://root@/postgres?host=/var/run/postgresql');

const { openStore } = await mod('store/open.js');
const { startOutboxWorker } = await mod('server/outbox-worker.js');
const { webhookRequest } = await mod('alerting/notifiers/webhook.js');
const { Secret } = await mod('config/alerting-receivers.js');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

let received = 0;
let onReceive = () => {};
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    received++;
    onReceive();
    res.writeHead(200);
    res.end('ok');
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/hook`;
const channel = {
  kind: 'webhook',
  id: 'webhook/0',
  url,
  format: 'rampart',
  maxAlerts: 0,
  sendResolved: true,
  timeoutMs: 10_000,
  secret: new Secret('bench-secret'),
  at: { file: 'bench', line: 1, column: 1 },
};
const config = { receivers: [{ name: 'ops', deadlineMs: 3_600_000, channels: [channel], at: channel.at }], users: [] };
const expand = () => [{ channel: 'webhook/0', receiver: 'ops' }];

function notification(i) {
  return {
    receiver: 'ops',
    groupKey: `{}:{service="svc-${i}"}`,
    status: 'firing',
    groupLabels: { service: `svc-${i}` },
    commonLabels: { alertname: 'MonitorDown', service: `svc-${i}`, severity: 'critical', vantage: 'internet' },
    commonAnnotations: { summary: `svc-${i} is DOWN` },
    alerts: [
      {
        fingerprint: i.toString(16).padStart(16, '0'),
        labels: { alertname: 'MonitorDown', service: `svc-${i}`, severity: 'critical', vantage: 'internet' },
        annotations: { summary: `svc-${i} is DOWN`, diagnosis: 'tcp/443 dropped by rule 12 of inet filter input' },
        state: 'firing',
        startsAt: new Date().toISOString(),
        endsAt: null,
        source: 'monitor.state',
      },
    ],
    truncatedAlerts: 0,
    externalURL: 'https://rampart.example.com',
  };
}
const drafts = (run, n) =>
  Array.from({ length: n }, (_, i) => ({
    key: `r${run}-${i}`,
    target: { kind: 'receiver', receiver: 'ops' },
    notification: notification(i),
    createdAt: new Date().toISOString(),
  }));

const waitFor = (count) =>
  new Promise((r) => {
    if (received >= count) return r();
    onReceive = () => {
      if (received >= count) {
        onReceive = () => {};
        r();
      }
    };
  });

async function direct(n) {
  received = 0;
  const items = drafts('d', n);
  const t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < items.length) {
        const d = items[next++];
        const r = webhookRequest(channel, d.notification, d.key, Date.now());
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...r.headers },
          body: r.body,
        });
        await res.text();
      }
    }),
  );
  return performance.now() - t;
}

async function measure(store, label) {
  const enq = [];
  const del = [];
  const base = [];
  const lat = [];
  for (let run = 0; run < runs; run++) {
    base.push(await direct(N));
    const items = drafts(run, N);
    let t = performance.now();
    for (let i = 0; i < items.length; i += 50) await store.outbox.enqueue(items.slice(i, i + 50), expand);
    enq.push(performance.now() - t);
    received = 0;
    t = performance.now();
    const worker = startOutboxWorker({ outbox: store.outbox, config: () => config, concurrency: 4, pollMs: 1000 });
    await waitFor(N);
    del.push(performance.now() - t);
    // latency: an idle worker, one notification at a time, kicked after the enqueue
    for (let k = 0; k < 5; k++) {
      received = 0;
      const one = drafts(`${run}-lat-${k}`, 1);
      const t1 = performance.now();
      await store.outbox.enqueue(one, expand);
      worker.kick();
      await waitFor(1);
      lat.push(performance.now() - t1);
      await new Promise((r) => setTimeout(r, 20));
    }
    await worker.stop();
  }
  const e = median(enq);
  const d = median(del);
  const b = median(base);
  console.log(
    `| ${label} | ${N} | ${((N / e) * 1000).toFixed(0)}/s | ${((N / d) * 1000).toFixed(0)}/s | ${((N / b) * 1000).toFixed(0)}/s | ${(d / b).toFixed(2)} | ${median(lat).toFixed(1)} ms |`,
  );
}

console.log(
  `node ${process.version}, ${cpus().length} x ${cpus()[0]?.model}, load ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}; medians of ${runs} runs`,
);
console.log(
  '| store | notifications | enqueue | delivery (outbox) | delivery (direct POST, baseline) | ratio | enqueue-to-receiver, one |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');

const dir = mkdtempSync(join(tmpdir(), 'rampart-outbox-bench-'));
try {
  const s = await openStore({ dataDir: dir });
  await measure(s, 'SQLite');
  await s.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const name = `rampart_bench_${randomBytes(5).toString('hex')}`;
const admin = new pg.Client({ connectionString: PG_ADMIN });
try {
  await admin.connect();
  await admin.query(`create database ${name}`);
  const dbUrl = PG_ADMIN.replace(/^(postgres(?:ql)?:\/\/[^/?#]*)(\/[^?#]*)?/i, `$1/${name}`);
  const s = await openStore({ db: dbUrl });
  await measure(s, 'PostgreSQL');
  await s.close();
} catch (e) {
  console.log(`PostgreSQL skipped: ${e instanceof Error ? e.message : String(e)}`);
} finally {
  await admin.query(`drop database if exists ${name} with (force)`).catch(() => {});
  await admin.end().catch(() => {});
  server.close();
}
