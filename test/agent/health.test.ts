/**
 * runHealthChecks against real servers on 127.0.0.1 (port 0: the kernel picks a free port).
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runHealthChecks } from '../../src/agent/health.js';
import type { ConfigLocation, HealthCheck } from '../../src/config/types.js';

const at: ConfigLocation = { file: 'rampart.yaml', line: 1, column: 1 };
const http = (port: number, path: string, expect = 200, timeoutMs = 1000): HealthCheck => ({
  kind: 'http',
  port,
  path,
  expect,
  timeoutMs,
  at,
});
const tcp = (port: number, timeoutMs = 1000): HealthCheck => ({ kind: 'tcp', port, timeoutMs, at });

function listen<S extends Server | TcpServer>(server: S): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describe('runHealthChecks', () => {
  let web: Server;
  let webPort: number;
  let silent: TcpServer;
  let silentPort: number;
  let closedPort: number;
  const held: Socket[] = [];
  let hits = 0;

  beforeAll(async () => {
    web = createHttpServer((req, res) => {
      hits++;
      if (req.url === '/health') res.writeHead(200).end('ok');
      else if (req.url === '/flaky' && hits % 3 !== 0) res.writeHead(503).end('starting');
      else if (req.url === '/flaky') res.writeHead(200).end('ok');
      else res.writeHead(404).end('no');
    });
    webPort = await listen(web);
    // Accepts connections and never answers: an HTTP check must time out.
    silent = createTcpServer((s) => held.push(s));
    silentPort = await listen(silent);
    // A port that was free a moment ago: nothing listens there now.
    const probe = createTcpServer();
    closedPort = await listen(probe);
    await new Promise<void>((r) => probe.close(() => r()));
  });

  afterAll(async () => {
    for (const s of held) s.destroy();
    await new Promise<void>((r) => web.close(() => r()));
    await new Promise<void>((r) => silent.close(() => r()));
  });

  it('passes an HTTP check answered with the expected status, and a TCP check that connects', async () => {
    const [h, t] = await runHealthChecks([http(webPort, '/health'), tcp(webPort)], '127.0.0.1', { retries: 0 });
    expect(h).toMatchObject({ check: `http 127.0.0.1:${webPort}/health`, ok: true, detail: 'HTTP 200' });
    expect(t).toMatchObject({ check: `tcp 127.0.0.1:${webPort}`, ok: true });
    expect(h?.ms).toBeGreaterThanOrEqual(0);
  });

  it('fails an HTTP check answered with another status, after its retries', async () => {
    const [r] = await runHealthChecks([http(webPort, '/nope')], '127.0.0.1', { retries: 2, intervalMs: 10 });
    expect(r?.ok).toBe(false);
    expect(r?.detail).toBe('HTTP 404, expected 200 (after 3 attempts)');
  });

  it('accepts the status the check expects, whatever it is', async () => {
    const [r] = await runHealthChecks([http(webPort, '/nope', 404)], '127.0.0.1', { retries: 0 });
    expect(r?.ok).toBe(true);
  });

  it('retries a service that is still starting', async () => {
    hits = 0;
    const [r] = await runHealthChecks([http(webPort, '/flaky')], '127.0.0.1', { retries: 3, intervalMs: 10 });
    expect(r).toMatchObject({ ok: true, detail: 'HTTP 200' });
  });

  it('fails HTTP and TCP checks on a closed port: connection refused', async () => {
    const results = await runHealthChecks([http(closedPort, '/'), tcp(closedPort)], '127.0.0.1', { retries: 0 });
    for (const r of results) {
      expect(r.ok).toBe(false);
      expect(r.detail).toBe('connection refused');
    }
  });

  it('fails an HTTP check that gets no answer within its timeout', async () => {
    const [r] = await runHealthChecks([http(silentPort, '/', 200, 300)], '127.0.0.1', { retries: 1, intervalMs: 10 });
    expect(r?.ok).toBe(false);
    expect(r?.detail).toBe('no answer within 300 ms (after 2 attempts)');
  });

  it('returns one result per check, in order, and none for no checks', async () => {
    expect(await runHealthChecks([])).toEqual([]);
    const results = await runHealthChecks([tcp(closedPort), tcp(webPort)], '127.0.0.1', { retries: 0 });
    expect(results.map((r) => r.ok)).toEqual([false, true]);
  });
});
