#!/usr/bin/env node
/**
 * The founding outage made by hand, paged (issue 15, §6): in the shop lab (real kernel, HAProxy, the server, agents)
 * with real receivers next to the server (test/alerting/receivers-child.mjs: smtp-server, an HTTP server), how long
 * from a shop monitor going DOWN to the first page of the critical group each receiver accepted: the team receiver (signed webhook,
 * e-mail) and the person on call (the escalation's first step: webhook, e-mail). Routes with Rampart's critical
 * defaults (group_wait 500 ms); group_interval is 2 s only so that each cycle's resolved message, which ends the
 * group before the next cycle, comes quickly (it plays no part in the first page).
 *
 * Times: DOWN is the first `monitor.state` DOWN event's own time after the edit (the moment the server's state
 * machine decided it); "written" is when the flush wrote the team's outbox row (read from the server's SQLite file,
 * read-only); "accepted" is when the receiver had the message (before its 250 / 200), on the same clock.
 *
 * Usage (root; namespaces named rampart-*, removed at the end, also on failure):
 *   npm run build && node bench/alerting-lab-bench.mjs [--runs 10]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';

const root = join(import.meta.dirname, '..');
const dist = (p) => join(root, 'dist', p);
const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' } } });
const runs = Number(values.runs);
const { BASELINE_RULESET, SERVER_URL, startRampart } = await import(dist('lab/rampart-lab.js'));
const { createShopLab, startShop } = await import(dist('lab/shop-lab.js'));
const OUTAGE = join(root, 'test', 'fixtures', 'nftables', 'founding-outage.nft');
const CHILD = join(root, 'test', 'alerting', 'receivers-child.mjs');
const SMTP_PORT = 2525;
const HTTP_PORT = 8025;
const HOOKS = `http://127.0.0.1:${HTTP_PORT}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : Number.NaN;
};

const alerting = (secretFile) => `alerting:
  external_url: ${SERVER_URL}
  global: {smtp_smarthost: "127.0.0.1:${SMTP_PORT}", smtp_from: rampart@shop.example, smtp_require_tls: false}
  receivers:
    - name: team
      email_configs: [{to: web-team@shop.example}]
      webhook_configs: [{url: "${HOOKS}/team", secret_file: ${secretFile}}]
  users:
    - {name: alice, email: alice@shop.example, webhook: "${HOOKS}/alice"}
    - {name: bob, email: bob@shop.example, webhook: "${HOOKS}/bob"}
  schedules:
    - name: web-primary
      time_zone: Europe/Berlin
      layers:
        - {rotation: weekly, handoff: "mon 09:00", start: 2026-11-30, participants: [alice, bob]}
  escalation_policies:
    - name: web
      steps:
        - {notify: [{schedule: web-primary}], wait: 10m}
  route:
    receiver: team
    group_by: [service]
    group_interval: 2s
    routes:
      - matchers: ['severity="critical"']
        escalation: web
`;

const lab = await createShopLab();
const rows = [];
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
  const records = join(lab.paths.dir, 'received.jsonl');
  lab.spawnIn('srv', [process.execPath, CHILD, records, String(SMTP_PORT), String(HTTP_PORT)], { label: 'receivers' });
  const received = () =>
    existsSync(records)
      ? readFileSync(records, 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l))
      : [];
  const until = async (what, ok, ms = 120_000, every = 100) => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await ok();
      if (v) return v;
      if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
      await sleep(every);
    }
  };
  await until('the receivers', () => received().some((x) => x.kind === 'ready'), 30_000);
  const secretFile = join(lab.paths.dir, 'webhook-secret');
  writeFileSync(secretFile, 'lab-webhook-secret-0123456789abcdef\n', { mode: 0o600 });
  const r = await startRampart(lab, dist('cli/main.js'), {
    pollMs: 300,
    monitor: { intervalMs: 1000, timeoutMs: 500 },
    desired: { web1: BASELINE_RULESET, web2: BASELINE_RULESET },
    alerting: alerting(secretFile),
  });
  const json = async (...args) => JSON.parse((await r.cli('admin', ...args, '--json')).stdout);
  const oncall = (await json('oncall')).schedules[0].now.user;
  const db = new Database(join(r.dataDir, 'rampart.db'), { readonly: true, fileMustExist: true });
  // the shop's group on the critical route: a warning (a monitor DEGRADED on the way down) has a group of its own on
  // the root route, the hosts' drift (where raised) one of its own on the critical route
  const written = db.prepare(
    `SELECT MIN(created_ms) AS at FROM alert_outbox WHERE receiver = 'team' AND group_key LIKE '%{severity="critical"}:{service="shop"}%' AND created_ms >= ?`,
  );
  const allUp = async () => {
    const s = await json('monitors');
    return s.monitors.length === 3 && s.monitors.every((m) => m.state === 'UP');
  };
  const firstAfter = (since, match) => received().find((x) => x.at >= since && match(x))?.at;
  // the page of the critical group (its idempotency key names the group), not a warning's message
  const critical = (id) => typeof id === 'string' && id.includes('{severity="critical"}:{service="shop"}');
  const hook = (path) => (x) => x.kind === 'http' && x.path === path && critical(x.headers['x-rampart-id']);
  const mail = (to) => (x) => x.kind === 'mail' && x.rcpt.includes(to) && critical(x.rampartId);
  for (let run = 1; run <= runs; run++) {
    await until('every monitor UP', allUp);
    // a random phase against the monitors' 1 s interval, as an edit by hand has
    await sleep(Math.floor(Math.random() * 1000));
    const edit = Date.now();
    await Promise.all([nft('web1', OUTAGE), nft('web2', OUTAGE)]);
    const down = await until('a shop monitor DOWN', async () => {
      const { events } = await json('events', '--kind', 'monitor.state', '--limit', '1000');
      const at = events
        .filter((e) => e.data.to === 'DOWN')
        .map((e) => Date.parse(e.at))
        .filter((t) => t >= edit);
      return at.length > 0 && Math.min(...at);
    });
    const targets = {
      teamHook: hook('/team'),
      teamMail: mail('web-team@shop.example'),
      oncallHook: hook(`/${oncall}`),
      oncallMail: mail(`${oncall}@shop.example`),
    };
    const got = await until('the first message at every receiver', () => {
      const t = Object.fromEntries(Object.entries(targets).map(([k, m]) => [k, firstAfter(down, m)]));
      return Object.values(t).every((x) => x !== undefined) && t;
    });
    const row = { run, down: (down - edit) / 1000, written: (written.get(down).at - down) / 1000 };
    for (const [k, at] of Object.entries(got)) row[k] = (at - down) / 1000;
    row.first = Math.min(...Object.values(got).map((at) => (at - down) / 1000));
    rows.push(row);
    console.error(`run ${run}: ${JSON.stringify(row)}`);
    // the fix; the group ends with its resolved message before the next cycle
    await Promise.all([nft('web1', baseline), nft('web2', baseline)]);
    const fixed = Date.now();
    await until('the resolved message', () =>
      received().some((x) => x.at >= fixed && hook('/team')(x) && JSON.parse(x.body).status === 'resolved'),
    );
  }
  db.close();
} finally {
  await lab.destroy();
}
const fmt = (k) => {
  const xs = rows.map((r) => r[k]);
  return `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;
};
console.log(
  `alerting lab bench: ${rows.length} cycles; ${cpus().length} CPUs, load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}, node ${process.version}`,
);
console.log('| from | to | median s (min-max) | goal |');
console.log('| --- | --- | ---: | ---: |');
console.log(`| nft edit on web1 and web2 | first shop monitor DOWN (its event's time) | ${fmt('down')} | - |`);
console.log(`| monitor DOWN | the team's notification written to the outbox | ${fmt('written')} | - |`);
console.log(`| monitor DOWN | first page accepted by any receiver | ${fmt('first')} | ≤ 1 |`);
console.log(`| monitor DOWN | team webhook (signed) accepted | ${fmt('teamHook')} | - |`);
console.log(`| monitor DOWN | team e-mail accepted | ${fmt('teamMail')} | - |`);
console.log(`| monitor DOWN | on-call person's webhook accepted | ${fmt('oncallHook')} | - |`);
console.log(`| monitor DOWN | on-call person's e-mail accepted | ${fmt('oncallMail')} | - |`);
