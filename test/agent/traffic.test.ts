/**
 * The agent's access-log traffic against a real server (SQLite): lines counted per 5 s window, across a rename
 * rotation and an agent restart in the middle, are stored once each, exactly; a resend counts nothing twice; while
 * the server is away the samples are kept (and persisted) and go out in order when it is back. Simulated times in
 * the past (the meter takes `now` as an argument), real files, the real HTTP API.
 */
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrafficSources } from '../../src/agent/protocol.js';
import { TrafficMeter } from '../../src/agent/traffic.js';
import { localExecutor } from '../../src/lab/executor.js';
import { type Harness, startHarness } from '../server/harness.js';

const W = 5000;
/** An aligned time an hour ago: windows the server takes as past ones. */
const T0 = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;

/** A combined-format line stamped `t` (UTC). */
function line(t: number, status = 200, path = '/p'): string {
  const d = new Date(t);
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${p(d.getUTCDate())}/${mon}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
  return `10.0.0.9 - - [${stamp}] "GET ${path} HTTP/1.1" ${status} 12 "-" "test"\n`;
}

describe('agent traffic from access logs, to a real server', () => {
  let h: Harness;
  let dir: string;
  let log: string;
  let server = true;
  const lines: string[] = [];
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    if (!server) throw new Error('connect ECONNREFUSED (the server is away)');
    const r = await h.call('web1', method, path, body);
    if (r.status !== 200) throw Object.assign(new Error(`HTTP ${r.status}: ${JSON.stringify(r.body)}`), {});
    return r.body as T;
  };
  const meter = () =>
    new TrafficMeter({
      stateDir: join(dir, 'state'),
      exec: localExecutor(),
      firewall: () => 'nftables',
      call,
      log: (l) => lines.push(l),
      drainMs: 1000,
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-agent-traffic-'));
    log = join(dir, 'access.log');
    writeFileSync(
      join(dir, 'rampart.yaml'),
      `site: t
hosts:
  - {name: web1, addresses: [192.0.2.11], group: web}
services:
  - name: shop
    group: web
    public: [tcp/80]
    health: [{http: {port: 80, path: /healthz}}]
    traffic:
      logs: [{path: ${log}, format: combined}]
      ignore-paths: [/metrics]
`,
    );
    h = await startHarness('sqlite', { config: join(dir, 'rampart.yaml') });
  });
  afterAll(async () => {
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('counts every line once across a rotation and a restart, and the server stores each window once', async () => {
    const src = await call<TrafficSources>('GET', '/agent/traffic-sources');
    // the health checks' path and ignore-paths are not customers' requests
    expect(src.services).toEqual([
      {
        service: 'shop',
        logs: [{ path: log, format: 'combined' }],
        counters: [],
        ignorePaths: ['/healthz', '/metrics'],
      },
    ]);
    // history before the agent started: not counted
    writeFileSync(log, line(T0 - 60_000) + line(T0 - 1000));
    let m = meter();
    await m.load();
    await m.configure(src, T0 + 100);
    await m.tick(T0 + 100);
    appendFileSync(log, line(T0 + 200)); // the first window was only partly seen: not counted either
    let expected = new Map<number, [number, number]>();
    const write = (t: number, status = 200) => {
      appendFileSync(log, line(t, status));
      const s = Math.floor(t / W) * W;
      const [r, e] = expected.get(s) ?? [0, 0];
      expected.set(s, [r + 1, e + (status >= 500 ? 1 : 0)]);
    };
    for (let i = 0; i < 7; i++) write(T0 + W + i * 500);
    for (const p of ['/healthz', '/healthz?deep=1', '/metrics']) appendFileSync(log, line(T0 + W + 100, 200, p));
    write(T0 + W + 200); // not the health check's path (write() counts it)
    appendFileSync(log, line(T0 + W + 300, 200, '/healthz/x'));
    expected.set(T0 + W, [9, 0]);
    write(T0 + 2 * W + 10, 503);
    await m.tick(T0 + 2 * W + 500);
    write(T0 + 2 * W + 600);
    await m.tick(T0 + 3 * W + 1000); // windows 1 and 2 close
    expect(m.pendingSamples().map((s) => [s.start - T0, s.requests, s.errors])).toEqual([
      [W, 9, 0],
      [2 * W, 2, 1],
    ]);
    await m.send();
    expect(m.pendingSamples()).toEqual([]);

    // lines of window 3, then the agent stops, the log is rotated by rename and written on while it is away
    write(T0 + 3 * W + 1);
    await m.tick(T0 + 3 * W + 1100);
    await m.stop();
    write(T0 + 3 * W + 2);
    renameSync(log, `${log}.1`);
    for (let i = 0; i < 12; i++) write(T0 + 4 * W + i * 1000); // windows 4..6, in the new file
    m = meter();
    await m.load();
    await m.configure(src, T0 + 7 * W + 1000);
    await m.tick(T0 + 7 * W + 1000);
    // the backlog lands in the windows it happened in, not in one spike
    expect(m.pendingSamples().map((s) => [s.start - T0, s.requests])).toEqual([
      [3 * W, 2],
      [4 * W, 5],
      [5 * W, 5],
      [6 * W, 2],
    ]);
    expect(lines.join('\n')).toMatch(/rotated while the agent was away/);

    // the server is away for a while: kept, persisted, sent in order when it is back, after another restart
    server = false;
    write(T0 + 7 * W + 3);
    await m.tick(T0 + 8 * W + 1000);
    await m.send();
    expect(m.pendingSamples()).toHaveLength(5);
    await m.stop();
    m = meter();
    await m.load();
    expect(m.pendingSamples()).toHaveLength(5);
    server = true;
    await m.configure(src, T0 + 9 * W + 1000);
    await m.tick(T0 + 9 * W + 1000);
    await m.send();
    expect(m.pendingSamples()).toEqual([]);
    expect(lines.join('\n')).toMatch(/cannot send samples \(5 kept\)/);
    expect(lines.join('\n')).toMatch(/stopped: 0 samples sent, 5 kept/);

    // a resent window counts nothing twice
    const again = await call<{ accepted: number; duplicates: number }>('POST', '/agent/traffic', {
      samples: [{ service: 'shop', source: 'access-log', start: T0 + W, ms: W, requests: 7, errors: 0 }],
    });
    expect(again).toEqual({ accepted: 0, duplicates: 1 });
    await m.stop();

    const rows = await h.store.traffic.points({
      service: 'shop',
      resolution: 10,
      from: T0 / 1000,
      to: (T0 + 20 * W) / 1000,
    });
    const total = rows.reduce((a, r) => a + r.requests, 0);
    const errors = rows.reduce((a, r) => a + r.errors, 0);
    expect(total).toBe([...expected.values()].reduce((a, [r]) => a + r, 0));
    expect(total).toBe(26);
    expect(errors).toBe(1);
    expected = new Map();
  });

  it('sends nothing for a log that does not exist (no data is not zero), and counts it once it appears', async () => {
    const missing = join(dir, 'later.log');
    const src: TrafficSources = {
      windowMs: W,
      services: [{ service: 'shop', logs: [{ path: missing, format: 'combined' }], counters: [] }],
    };
    const m = new TrafficMeter({
      stateDir: join(dir, 'state-missing'),
      exec: localExecutor(),
      firewall: () => 'nftables',
      call,
      log: (l) => lines.push(l),
    });
    await m.configure(src, T0);
    await m.tick(T0 + 100);
    await m.tick(T0 + 3 * W + 1000);
    expect(m.pendingSamples()).toEqual([]);
    expect(lines.join('\n')).toMatch(/later\.log does not exist \(yet\): no access-log samples until it does/);
    writeFileSync(missing, line(T0 + 3 * W + 5) + line(T0 + 3 * W + 6, 500));
    await m.tick(T0 + 3 * W + 1100);
    await m.tick(T0 + 4 * W + 1000);
    expect(m.pendingSamples().map((x) => [x.start - T0, x.requests, x.errors])).toEqual([[3 * W, 2, 1]]);
    await m.stop();
  });
});
