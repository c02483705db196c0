/**
 * A customer that never stops shopping: sends GET requests at a fixed rate, each on a new connection with a short
 * timeout, and counts what failed and when. Scenarios run it in the lab's client namespace during a change, then
 * compute the failed share and the failure window from its report.
 *
 *   node dist/lab/steady-client.js --url http://10.88.0.2/ --rate 50 --duration 60 --out result.json [--timeout 2000]
 *     [--local-address 10.88.0.70]
 *
 * It stops by itself after --duration seconds or on SIGTERM/SIGINT; either way it waits for the requests in flight
 * (at most --timeout), then writes the report (write-temp + rename, so a reader never sees half a file).
 *
 * Why a new connection per request: every real customer opens their own; it also makes each request the first of
 * its HAProxy session, so HAProxy picks (and retries/redispatches) a server for every one of them.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export interface SteadyClientOptions {
  readonly url: string;
  /** Requests per second. */
  readonly rate: number;
  /** Seconds; the client stops sending after this long. */
  readonly durationS: number;
  /** Per-request timeout (whole request, connect to last byte). Default 2000 ms. */
  readonly timeoutMs?: number;
  /** The source address to send from (one of the namespace's own), for customers at several addresses. */
  readonly localAddress?: string;
}

export interface SteadyFailure {
  /** When the failed request was sent (epoch ms). */
  readonly at: number;
  /** `timeout`, `status 503`, `ECONNREFUSED`, ... */
  readonly error: string;
}

export interface SteadyReport {
  readonly url: string;
  readonly rate: number;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  /** `failed / sent` (0 when nothing was sent). */
  readonly failedShare: number;
  /** Successful answers by the `X-Served-By` header (web1, web2). */
  readonly servedBy: Readonly<Record<string, number>>;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly failures: readonly SteadyFailure[];
  /** Why it stopped: `duration` or the signal's name. */
  readonly stoppedBy: string;
}

function once(url: URL, timeoutMs: number, localAddress?: string): Promise<{ status: number; servedBy: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        agent: false,
        headers: { connection: 'close', 'user-agent': 'rampart-steady-client' },
        ...(localAddress ? { localAddress } : {}),
      },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          const by = res.headers['x-served-by'];
          resolve({ status: res.statusCode ?? 0, servedBy: typeof by === 'string' ? by : '?' });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs);
    // One deadline for the whole request, not just socket idleness.
    const timer = setTimeout(() => req.destroy(new Error('timeout')), timeoutMs);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.on('close', () => clearTimeout(timer));
    req.end();
  });
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/**
 * Runs the client in this process. Resolves with the report when the duration is over or `signal` aborts (then the
 * requests in flight are still awaited).
 */
export async function runSteadyClient(opts: SteadyClientOptions, signal?: AbortSignal): Promise<SteadyReport> {
  const url = new URL(opts.url);
  if (url.protocol !== 'http:') throw new Error(`--url: only http:// is supported, got '${opts.url}'`);
  if (!(opts.rate > 0 && opts.rate <= 10_000)) throw new Error(`--rate: ${opts.rate} is not in (0, 10000]`);
  if (!(opts.durationS > 0)) throw new Error(`--duration: ${opts.durationS} is not a positive number of seconds`);
  const timeoutMs = opts.timeoutMs ?? 2000;
  const interval = 1000 / opts.rate;
  const startedAt = Date.now();
  const t0 = performance.now();
  const end = t0 + opts.durationS * 1000;
  let sent = 0;
  let ok = 0;
  const failures: SteadyFailure[] = [];
  const servedBy: Record<string, number> = {};
  const latencies: number[] = [];
  const inFlight = new Set<Promise<void>>();
  let stoppedBy = 'duration';

  const fire = (): void => {
    const at = Date.now();
    const start = performance.now();
    sent++;
    const p = once(url, timeoutMs, opts.localAddress).then(
      (r) => {
        latencies.push(performance.now() - start);
        if (r.status === 200) {
          ok++;
          servedBy[r.servedBy] = (servedBy[r.servedBy] ?? 0) + 1;
        } else {
          failures.push({ at, error: `status ${r.status}` });
        }
      },
      (e: unknown) => {
        const err = e as NodeJS.ErrnoException;
        failures.push({ at, error: err.code ?? err.message ?? String(e) });
      },
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  await new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const stop = (why: string): void => {
      stoppedBy = why;
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    const onAbort = (): void => stop(typeof signal?.reason === 'string' ? signal.reason : 'abort');
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort);
    const tick = (): void => {
      const now = performance.now();
      // Fixed schedule: request i is due at t0 + i*interval; a late timer catches up instead of drifting. That
      // includes a timer that wakes after the end on a busy machine: what fell due before the end is still sent, so
      // a run of --duration at --rate sends rate x duration requests however late the timers were.
      while (t0 + sent * interval <= now && t0 + sent * interval < end) fire();
      if (now >= end) {
        stop('duration');
        return;
      }
      const next = Math.min(end, t0 + sent * interval);
      timer = setTimeout(tick, Math.max(0, next - performance.now()));
    };
    tick();
  });
  await Promise.allSettled([...inFlight]);
  latencies.sort((a, b) => a - b);
  failures.sort((a, b) => a.at - b.at);
  const round = (n: number): number => Math.round(n * 10) / 10;
  return {
    url: opts.url,
    rate: opts.rate,
    startedAt,
    endedAt: Date.now(),
    sent,
    ok,
    failed: failures.length,
    failedShare: sent === 0 ? 0 : failures.length / sent,
    servedBy,
    latencyMs: {
      p50: round(percentile(latencies, 50)),
      p99: round(percentile(latencies, 99)),
      max: round(latencies[latencies.length - 1] ?? 0),
    },
    failures,
    stoppedBy,
  };
}

/** Writes JSON so that a concurrent reader sees the old file or the whole new one. */
export function writeReport(file: string, report: SteadyReport): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(tmp, file);
}

async function main(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      url: { type: 'string' },
      rate: { type: 'string', default: '50' },
      duration: { type: 'string', default: '60' },
      timeout: { type: 'string', default: '2000' },
      out: { type: 'string' },
      'local-address': { type: 'string' },
    },
    strict: true,
  });
  if (!values.url) throw new Error('--url is required (e.g. --url http://10.88.0.2/)');
  if (!values.out) throw new Error('--out is required (the JSON report file)');
  const timeoutMs = Number(values.timeout);
  if (!(timeoutMs > 0)) throw new Error(`--timeout: '${values.timeout}' is not a positive number of milliseconds`);
  const ac = new AbortController();
  process.once('SIGTERM', () => ac.abort('SIGTERM'));
  process.once('SIGINT', () => ac.abort('SIGINT'));
  const report = await runSteadyClient(
    {
      url: values.url,
      rate: Number(values.rate),
      durationS: Number(values.duration),
      timeoutMs,
      ...(values['local-address'] ? { localAddress: values['local-address'] } : {}),
    },
    ac.signal,
  );
  writeReport(values.out, report);
  process.stdout.write(
    `steady-client: sent ${report.sent}, ok ${report.ok}, failed ${report.failed} (${(report.failedShare * 100).toFixed(2)}%)\n`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`steady-client: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  });
}
