#!/usr/bin/env node
/**
 * The dashboard's audit log page on a large log (issue 17): a real server (dist/, in-process, SQLite in a temp dir)
 * with N audit entries, over HTTP: the page the dashboard reads now (`GET /audit-log?limit=25`, then a page deep in
 * the log by its cursor), against what it read before (every entry, `GET /audit-log`), and the verify button's
 * request (`GET /audit-log/verify`, the whole chain recomputed).
 *
 * Usage: npm run build && node bench/audit-log-bench.mjs [--entries 100000] [--runs 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildServer } from '../dist/server/app.js';
import { generateToken } from '../dist/server/auth.js';
import { configHolder } from '../dist/server/config-holder.js';
import { openStore } from '../dist/store/open.js';

const opt = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const ENTRIES = Number(opt('entries', 100_000));
const RUNS = Number(opt('runs', 3));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'rampart-auditlog-bench-'));
const store = await openStore({ dataDir: dir });
let app;
try {
  const t = generateToken();
  const actor = { name: 'bench', role: 'admin', from: 'local' };
  await store.write(actor, async (w) => {
    await w.insertToken({
      id: t.id,
      name: 'admin',
      role: 'admin',
      secretHash: t.secretHash,
      createdAt: new Date().toISOString(),
      createdBy: 'bench',
    });
  });
  const t0 = performance.now();
  // Entries shaped like a rollout's (a few hundred bytes each), 1,000 per transaction.
  for (let done = 0; done < ENTRIES; done += 1000) {
    await store.write(actor, async (w) => {
      for (let i = done; i < Math.min(ENTRIES, done + 1000); i++) {
        await w.audit({
          action: 'agent.applied',
          target: `change:${1 + Math.floor(i / 20)}`,
          after: { job: i, host: `web${i % 20}`, step: i % 20, detail: 'the new ruleset is in force on the host' },
        });
      }
    });
  }
  console.log(`${ENTRIES} entries written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  app = await buildServer({ store, config: configHolder(null), webRoot: false });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const get = async (path) => {
    const s = performance.now();
    const res = await fetch(`${url}/api/v1${path}`, { headers: { authorization: `Bearer ${t.token}` } });
    const body = await res.text();
    if (!res.ok) throw new Error(`${path}: ${res.status} ${body}`);
    return { ms: performance.now() - s, bytes: body.length, json: JSON.parse(body) };
  };
  const measure = async (label, path) => {
    const runs = [];
    for (let i = 0; i < RUNS; i++) runs.push(await get(path));
    const ms = runs.map((r) => r.ms);
    console.log(
      `${label}: ${median(ms).toFixed(0)} ms (${Math.min(...ms).toFixed(0)}-${Math.max(...ms).toFixed(0)}), ${runs[0].bytes} B`,
    );
    return runs[0].json;
  };
  const first = await measure('first page (limit=25)', '/audit-log?limit=25');
  await measure('a page deep in the log (before=half)', `/audit-log?limit=25&before=${Math.floor(first.head / 2)}`);
  await measure('every entry (what the page read before)', '/audit-log');
  const v = await measure('verify the chain', '/audit-log/verify');
  if (!v.ok || v.count !== ENTRIES) throw new Error(`verify: ${JSON.stringify(v)}`);
  console.log(
    `node ${process.version}, ${cpus().length} x ${cpus()[0]?.model}, load ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
} finally {
  await app?.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
