/**
 * Health checks of a host's services (issue 6): the agent runs them against 127.0.0.1 after an apply, the server
 * against the host's address through its firewall. Plain node (http, net), no external commands.
 *
 * Every attempt opens a fresh connection (no keep-alive agent): a connection kept from before the apply would
 * prove nothing about the new ruleset. A failed attempt is retried a few times: a freshly applied ruleset needs no
 * warm-up, but a service that is restarting might.
 */
import { request } from 'node:http';
import { Socket } from 'node:net';
import type { HealthCheck } from '../config/types.js';
import type { HealthResult } from './protocol.js';

export interface HealthOptions {
  /** Extra attempts after a failed one (default 2). */
  readonly retries?: number;
  /** Pause between attempts (default 500 ms). */
  readonly intervalMs?: number;
}

type Attempt = { readonly ok: true; readonly detail: string } | { readonly ok: false; readonly detail: string };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function hostPart(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** A short name of the check, e.g. `http 127.0.0.1:8080/health` or `tcp 127.0.0.1:22`. */
export function checkLabel(check: HealthCheck, host: string): string {
  return check.kind === 'http'
    ? `http ${hostPart(host)}:${check.port}${check.path.startsWith('/') ? '' : '/'}${check.path}`
    : `tcp ${hostPart(host)}:${check.port}`;
}

function httpAttempt(check: Extract<HealthCheck, { kind: 'http' }>, host: string): Promise<Attempt> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (a: Attempt): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(a);
    };
    const req = request(
      {
        host: host.replace(/^\[|\]$/g, ''),
        port: check.port,
        path: check.path.startsWith('/') ? check.path : `/${check.path}`,
        method: 'GET',
        agent: false,
        headers: { connection: 'close', 'user-agent': 'rampart-health' },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        res.resume(); // the body is not needed
        finish(
          status === check.expect
            ? { ok: true, detail: `HTTP ${status}` }
            : { ok: false, detail: `HTTP ${status}, expected ${check.expect}` },
        );
      },
    );
    // One timer for connect and answer: a check must decide within timeoutMs.
    const timer = setTimeout(
      () => finish({ ok: false, detail: `no answer within ${check.timeoutMs} ms` }),
      check.timeoutMs,
    );
    req.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, detail: describeError(e) }));
    req.end();
  });
}

function tcpAttempt(check: Extract<HealthCheck, { kind: 'tcp' }>, host: string): Promise<Attempt> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let done = false;
    const finish = (a: Attempt): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(a);
    };
    const timer = setTimeout(
      () => finish({ ok: false, detail: `no connection within ${check.timeoutMs} ms` }),
      check.timeoutMs,
    );
    socket.once('connect', () => finish({ ok: true, detail: 'connected' }));
    socket.once('error', (e: NodeJS.ErrnoException) => finish({ ok: false, detail: describeError(e) }));
    socket.connect(check.port, host.replace(/^\[|\]$/g, ''));
  });
}

function describeError(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `unreachable (${e.code})`;
    case 'ECONNRESET':
      return 'connection reset';
    default:
      return e.code ? `${e.code}: ${e.message}` : e.message;
  }
}

async function runOne(check: HealthCheck, host: string, retries: number, intervalMs: number): Promise<HealthResult> {
  const label = checkLabel(check, host);
  const started = performance.now();
  let last: Attempt = { ok: false, detail: 'not run' };
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(intervalMs);
    last = check.kind === 'http' ? await httpAttempt(check, host) : await tcpAttempt(check, host);
    if (last.ok) break;
  }
  const tries = retries > 0 && !last.ok ? ` (after ${retries + 1} attempts)` : '';
  return { check: label, ok: last.ok, detail: `${last.detail}${tries}`, ms: Math.round(performance.now() - started) };
}

/** Runs the checks (in parallel) against `host`; one result per check, in order. Never throws. */
export async function runHealthChecks(
  checks: readonly HealthCheck[],
  host = '127.0.0.1',
  opts: HealthOptions = {},
): Promise<HealthResult[]> {
  const retries = Math.max(0, Math.floor(opts.retries ?? 2));
  const intervalMs = Math.max(0, opts.intervalMs ?? 500);
  return Promise.all(checks.map((c) => runOne(c, host, retries, intervalMs)));
}
