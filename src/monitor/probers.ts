/**
 * The probers (issue 14): one check, run once, from where this process stands (the server, an agent, `rampart
 * probe`: vantage points are roles, not code paths). Node's own http/https/net/tls/dns modules: they expose each
 * phase (DNS, connect, TLS, first byte) without a dependency, and cost less per probe than a client library.
 *
 * A probe never throws: every failure is a result with `ok: false` and the reason in words.
 */
import { promises as dnsPromises } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Check, ProbeResult, Timings } from './types.js';

export interface ProbeOptions {
  readonly monitor: string;
  readonly vantage: string;
  readonly timeoutMs: number;
  /** Run inside the host (its agent, on loopback): marked on the result. */
  readonly inside?: boolean;
  /** Replace the target address (an agent probing its own service on loopback). */
  readonly address?: string;
  readonly now?: () => number;
  /** HTTP User-Agent (default `rampart-probe`); the server says which replica probes, for the target's logs. */
  readonly userAgent?: string;
}

const BODY_LIMIT = 64 * 1024;
const MAX_REDIRECTS = 5;

type Partial = { ok: boolean; timings: Timings; error?: string; detail?: Record<string, unknown>; source?: string };

/** Runs one check; resolves with its result, never rejects. */
export async function probe(check: Check, o: ProbeOptions): Promise<ProbeResult> {
  const now = o.now ?? Date.now;
  const at = now();
  const start = performance.now();
  let r: Partial;
  try {
    r = await withTimeout(run(check, o), o.timeoutMs, start);
  } catch (e) {
    r = { ok: false, timings: { totalMs: performance.now() - start }, error: errorText(e) };
  }
  return {
    monitor: o.monitor,
    vantage: o.vantage,
    at,
    ok: r.ok,
    timings: r.timings,
    ...(r.error !== undefined ? { error: r.error } : {}),
    ...(r.detail !== undefined || r.source !== undefined
      ? { detail: { ...(r.detail ?? {}), ...(r.source !== undefined ? { source: r.source } : {}) } }
      : {}),
    ...(o.inside ? { inside: true } : {}),
  };
}

function run(check: Check, o: ProbeOptions): { promise: Promise<Partial>; abort: () => void } {
  switch (check.kind) {
    case 'http':
      return httpProbe(check, o);
    case 'tcp':
      return tcpProbe(o.address ?? check.host, check.port);
    case 'tls':
      return tlsProbe(check, o.address);
    case 'dns':
      return dnsProbe(check);
  }
}

/** Ends the probe at its deadline: the check is aborted (sockets destroyed) and the result says so. */
function withTimeout(p: { promise: Promise<Partial>; abort: () => void }, ms: number, start: number): Promise<Partial> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      p.abort();
      resolve({ ok: false, timings: { totalMs: performance.now() - start }, error: `timeout after ${ms} ms` });
    }, ms);
    p.promise.then(
      (r) => {
        clearTimeout(timer);
        resolve(r);
      },
      (e: unknown) => {
        clearTimeout(timer);
        resolve({ ok: false, timings: { totalMs: performance.now() - start }, error: errorText(e) });
      },
    );
  });
}

function errorText(e: unknown): string {
  const err = e as NodeJS.ErrnoException & { reason?: string };
  if (err?.code && err.syscall) return `${err.syscall} ${err.code}`;
  if (err?.code) return `${err.code}${err.message ? `: ${err.message}` : ''}`;
  return err instanceof Error ? err.message : String(e);
}

const ms = (from: number, to: number | undefined): number | undefined => (to === undefined ? undefined : to - from);

function httpProbe(
  check: Extract<Check, { kind: 'http' }>,
  o: ProbeOptions,
): { promise: Promise<Partial>; abort: () => void } {
  let current: http.ClientRequest | undefined;
  let aborted = false;
  const start = performance.now();
  const once = (
    url: URL,
  ): Promise<{ status: number; location?: string; body: string; t: Record<string, number>; source?: string }> =>
    new Promise((resolve, reject) => {
      const t: Record<string, number> = {};
      const lib = url.protocol === 'https:' ? https : http;
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const req = lib.request(
        {
          method: check.method,
          host: o.address ?? host,
          port: url.port || (url.protocol === 'https:' ? 443 : 80),
          path: `${url.pathname}${url.search}`,
          headers: { 'user-agent': o.userAgent ?? 'rampart-probe', host: url.host, ...check.headers },
          agent: false,
          ...(url.protocol === 'https:' ? { rejectUnauthorized: check.tlsVerify, servername: host } : {}),
        },
        (res) => {
          t.firstByte = performance.now();
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            if (size < BODY_LIMIT) chunks.push(c);
            size += c.length;
          });
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              ...(res.headers.location ? { location: res.headers.location } : {}),
              body: Buffer.concat(chunks).toString('utf8', 0, Math.min(size, BODY_LIMIT)),
              t,
              ...(req.socket?.localAddress ? { source: req.socket.localAddress } : {}),
            }),
          );
          res.on('error', reject);
        },
      );
      current = req;
      req.on('socket', (s) => {
        s.once('lookup', () => {
          t.dns = performance.now();
        });
        s.once('connect', () => {
          t.connect = performance.now();
        });
        s.once('secureConnect', () => {
          t.tls = performance.now();
        });
      });
      req.on('error', reject);
      req.end();
    });
  const promise = (async (): Promise<Partial> => {
    let url = new URL(check.url);
    for (let hop = 0; ; hop++) {
      const r = await once(url);
      if (aborted) throw new Error('aborted');
      const timings: Timings = {
        ...(r.t.dns !== undefined ? { dnsMs: ms(start, r.t.dns) } : {}),
        ...(r.t.connect !== undefined ? { connectMs: ms(start, r.t.connect) } : {}),
        ...(r.t.tls !== undefined ? { tlsMs: ms(start, r.t.tls) } : {}),
        ...(r.t.firstByte !== undefined ? { firstByteMs: ms(start, r.t.firstByte) } : {}),
        totalMs: performance.now() - start,
      } as Timings;
      const redirect = r.status >= 300 && r.status < 400 && r.location !== undefined;
      if (redirect && check.followRedirects && !check.expect.includes(r.status)) {
        if (hop >= MAX_REDIRECTS) return { ok: false, timings, error: `more than ${MAX_REDIRECTS} redirects` };
        url = new URL(r.location as string, url);
        continue;
      }
      const detail = { status: r.status };
      const base = { timings, detail, ...(r.source ? { source: r.source } : {}) };
      if (!check.expect.includes(r.status)) {
        return { ...base, ok: false, error: `status ${r.status}, expected ${check.expect.join(' or ')}` };
      }
      if (check.body !== undefined && !r.body.includes(check.body)) {
        return { ...base, ok: false, error: `the body does not contain '${check.body}'` };
      }
      if (check.maxLatencyMs !== undefined && timings.totalMs > check.maxLatencyMs) {
        return {
          ...base,
          ok: false,
          error: `answered in ${Math.round(timings.totalMs)} ms, more than ${check.maxLatencyMs} ms`,
        };
      }
      return { ...base, ok: true };
    }
  })();
  return {
    promise,
    abort: () => {
      aborted = true;
      current?.destroy();
    },
  };
}

function tcpProbe(host: string, port: number): { promise: Promise<Partial>; abort: () => void } {
  const start = performance.now();
  const socket = net.connect({ host, port });
  const promise = new Promise<Partial>((resolve, reject) => {
    socket.once('connect', () => {
      const connectMs = performance.now() - start;
      const source = socket.localAddress;
      socket.destroy();
      resolve({ ok: true, timings: { connectMs, totalMs: connectMs }, ...(source ? { source } : {}) });
    });
    socket.once('error', reject);
  });
  return { promise, abort: () => socket.destroy() };
}

const DAY_MS = 86_400_000;

function tlsProbe(
  check: Extract<Check, { kind: 'tls' }>,
  address: string | undefined,
): { promise: Promise<Partial>; abort: () => void } {
  const start = performance.now();
  const servername = check.servername ?? (net.isIP(check.host) ? undefined : check.host);
  // The chain and the name are judged here (to say which failed), not by Node's default rejection.
  const socket = tls.connect({
    host: address ?? check.host,
    port: check.port,
    ...(servername ? { servername } : {}),
    rejectUnauthorized: false,
  });
  const promise = new Promise<Partial>((resolve, reject) => {
    socket.once('secureConnect', () => {
      const tlsMs = performance.now() - start;
      const cert = socket.getPeerCertificate();
      const chainError = socket.authorizationError;
      socket.destroy();
      const timings = { tlsMs, totalMs: tlsMs };
      if (!cert || Object.keys(cert).length === 0) return resolve({ ok: false, timings, error: 'no certificate' });
      const days = Math.floor((Date.parse(cert.valid_to) - Date.now()) / DAY_MS);
      const detail = { days, validTo: cert.valid_to, subject: cert.subject?.CN, issuer: cert.issuer?.CN };
      const nameError = tls.checkServerIdentity(servername ?? check.host, cert);
      if (chainError) return resolve({ ok: false, timings, detail, error: `certificate chain: ${chainError}` });
      if (nameError) return resolve({ ok: false, timings, detail, error: `certificate name: ${nameError.message}` });
      if (days < check.minDays) {
        return resolve({
          ok: false,
          timings,
          detail,
          error: `the certificate expires in ${days} day${days === 1 ? '' : 's'} (${cert.valid_to}), fewer than ${check.minDays}`,
        });
      }
      resolve({ ok: true, timings, detail });
    });
    socket.once('error', reject);
  });
  return { promise, abort: () => socket.destroy() };
}

function dnsProbe(check: Extract<Check, { kind: 'dns' }>): { promise: Promise<Partial>; abort: () => void } {
  const start = performance.now();
  const resolver = new dnsPromises.Resolver({ timeout: 2000, tries: 1 });
  if (check.resolver) resolver.setServers([check.resolver]);
  const promise = (async (): Promise<Partial> => {
    const raw = await resolver.resolve(check.name, check.type);
    const answers = (raw as unknown[]).map((a) =>
      typeof a === 'string'
        ? a
        : Array.isArray(a)
          ? a.join('')
          : ((a as { exchange?: string }).exchange ?? JSON.stringify(a)),
    );
    const totalMs = performance.now() - start;
    const timings = { dnsMs: totalMs, totalMs };
    const missing = check.expect.filter((e) => !answers.includes(e));
    if (missing.length > 0) {
      return {
        ok: false,
        timings,
        detail: { answers },
        error: `missing ${missing.join(', ')} (answers: ${answers.join(', ') || 'none'})`,
      };
    }
    return { ok: true, timings, detail: { answers } };
  })();
  return { promise, abort: () => resolver.cancel() };
}
