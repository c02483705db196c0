/**
 * Monitoring from the command line (issue 14), with real processes: `rampart serve` probes loopback servers,
 * `rampart probe` (a token of role probe) probes from its own process, `rampart monitors` shows both and exits 1 when
 * something is DOWN, and a probe that loses the server keeps its results and sends them when it is back: every
 * result it sent is in the store (the rollups count exactly what it sent), also across a SIGKILL of the server.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner, ensureBuilt, main, type Ran, root } from './cli.js';

/**
 * The CLI runs in one shared process (test/cli/cli.ts `cliRunner()`): these tests are about a command's output and
 * exit code against a real server, and loading the client's modules again for every run was most of their CPU.
 */
const runner = cliRunner();
afterAll(() => runner.close());
const rampartAsync = (env: Record<string, string>, ...args: string[]) =>
  runner.withEnv({ NO_COLOR: '1', ...env }, ...args);

const cli = rampartAsync;

interface Proc {
  proc: ChildProcess;
  out: () => string;
}

function start(args: string[], env: Record<string, string>, ready: RegExp): Promise<Proc & { match: RegExpExecArray }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [main, ...args], { cwd: root, env: { ...process.env, ...env } });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start: ${out}`)), 90_000);
    const seen = (d: Buffer) => {
      out += d;
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, out: () => out, match: m });
      }
    };
    proc.stdout?.on('data', seen);
    proc.stderr?.on('data', seen);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited ${code}: ${out}`));
    });
  });
}

function stop(p: Proc | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((done) => {
    if (!p || p.proc.exitCode !== null || p.proc.signalCode !== null) return done();
    p.proc.once('exit', () => done());
    p.proc.kill(signal);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('rampart monitors and rampart probe', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-cli-monitoring-'));
  const data = join(dir, 'data');
  const config = join(dir, 'rampart.yaml');
  let backend: http.Server;
  let port = 0;
  let server: (Proc & { url: string }) | undefined;
  let probe: Proc | undefined;
  let admin = '';
  let probeToken = '';

  const serve = async (listen = '127.0.0.1:0') => {
    const s = await start(
      ['serve', '--data-dir', data, '--config', config, '--listen', listen, '--log-level', 'warn'],
      {},
      /listening on (http:\/\/\S+)/,
    );
    server = { ...s, url: s.match[1] as string };
  };

  beforeAll(async () => {
    ensureBuilt();
    backend = http.createServer((_req, res) => res.end('ok\n'));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
    port = (backend.address() as AddressInfo).port;
    writeFileSync(
      config,
      `site: loop
hosts:
  - {name: web1, addresses: [127.0.0.1]}
monitors:
  - name: shop-home
    http: {url: "http://127.0.0.1:${port}/"}
    interval: 1s
    timeout: 500ms
    from: [probes]
  - name: shop-tcp
    tcp: {host: 127.0.0.1, port: ${port}}
    interval: 1s
    timeout: 500ms
    from: [server]
`,
    );
    const init = await cli({}, 'init', '--data-dir', data, '--token-only');
    expect(init.code).toBe(0);
    admin = init.stdout.trim();
    await serve();
  });
  afterAll(async () => {
    await stop(probe);
    await stop(server);
    await new Promise<void>((r) => backend.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows what the server and a probe see, and exits 1 when something is DOWN', async () => {
    const env = { RAMPART_SERVER: server?.url ?? '', RAMPART_TOKEN: admin };
    const t = await cli(env, 'token', 'create', '--name', 'eu-west', '--role', 'probe', '--token-only');
    expect(t.code).toBe(0);
    probeToken = t.stdout.trim();
    // no token: a clear refusal that says how to get one
    const none = await cli({ RAMPART_PROBE_TOKEN: '' }, 'probe', '--server', server?.url ?? '');
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no probe token: set RAMPART_PROBE_TOKEN .*rampart token create --role probe/);
    probe = await start(
      ['probe', '--server', server?.url ?? ''],
      { RAMPART_PROBE_TOKEN: probeToken },
      /probing 1 monitor\b/,
    );
    expect(probe.out()).toMatch(/probe:eu-west: probing 1 monitor for /);
    let shown: Ran | undefined;
    for (let i = 0; i < 100; i++) {
      shown = await cli(env, 'monitors');
      if (/shop-home\s+UP/.test(shown.stdout) && /shop-tcp\s+UP/.test(shown.stdout)) break;
      await sleep(300);
    }
    expect(shown?.code).toBe(0);
    expect(shown?.stdout).toMatch(/^MONITOR\s+STATE\s+SINCE\s+LATENCY\s+VANTAGE POINTS$/m);
    expect(shown?.stdout).toMatch(/^shop-home\s+UP\s+\S+\s+-\s+probe:eu-west ✓$/m);
    expect(shown?.stdout).toMatch(/^shop-tcp\s+UP\s+\S+\s+[0-9.]+ ms\s+server ✓$/m);
    const json = JSON.parse((await cli(env, 'monitors', '--json')).stdout);
    expect(json.monitors.map((m: { name: string }) => m.name)).toEqual(['shop-home', 'shop-tcp']);
    // the backend goes away: DOWN from both, exit 1, and `show` has the failures and the transition
    await new Promise<void>((r) => {
      backend.closeAllConnections();
      backend.close(() => r());
    });
    for (let i = 0; i < 100; i++) {
      shown = await cli(env, 'monitors');
      if (/shop-tcp\s+DOWN/.test(shown.stdout) && /shop-home\s+DOWN/.test(shown.stdout)) break;
      await sleep(300);
    }
    expect(shown?.code).toBe(1);
    const show = await cli(env, 'monitors', 'show', 'shop-home');
    expect(show.code).toBe(1);
    expect(show.stdout).toMatch(/^shop-home: DOWN for \S+ \(http GET http:\/\/127\.0\.0\.1:\d+\/\)$/m);
    expect(show.stdout).toMatch(/^ {2}probe:eu-west\s+down\s+.*ECONNREFUSED/m);
    expect(show.stdout).toMatch(/^recent failures:$/m);
    expect(show.stdout).toMatch(/UP -> DOWN: down from 1 of 1 \(quorum 1\): probe:eu-west: .*ECONNREFUSED/);
    const missing = await cli(env, 'monitors', 'show', 'nope');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no monitor 'nope'; the monitors are: shop-home, shop-tcp/);
    await new Promise<void>((r) => backend.listen(port, '127.0.0.1', () => r()));
  });

  it('keeps probing while the server is killed, and sends everything when it is back', async () => {
    const listen = new URL(server?.url ?? '').host;
    await stop(server, 'SIGKILL');
    await sleep(5000);
    await serve(listen);
    // the probe finds the server again and sends what it kept
    const end = Date.now() + 60_000;
    while (
      !/the server is back: sent the results kept while it was away/.test(probe?.out() ?? '') &&
      Date.now() < end
    ) {
      await sleep(300);
    }
    expect(probe?.out()).toMatch(/cannot send results \(\d+ kept\)/);
    expect(probe?.out()).toMatch(/the server is back: sent the results kept while it was away/);
    await stop(probe);
    const m = /stopped: (\d+) results probed, (\d+) sent/.exec(probe?.out() ?? '');
    expect(m, probe?.out()).not.toBeNull();
    const sent = Number(m?.[2]);
    expect(sent).toBeGreaterThan(10);
    // shop-home is probed by the probe alone: its rollups count exactly what the probe sent (the server acknowledged
    // each batch only once it was stored, so the SIGKILL lost none)
    const env = { RAMPART_SERVER: server?.url ?? '', RAMPART_TOKEN: admin };
    const home = JSON.parse((await cli(env, 'monitors', 'show', 'shop-home', '--json')).stdout);
    expect(home.lastHour.reduce((n: number, b: { count: number }) => n + b.count, 0)).toBe(sent);
  });
});
