/**
 * One HTTP client process per lab namespace, kept for the lab's life: requests go to it as JSON lines on its stdin,
 * answers come back as JSON lines on its stdout. Starting node inside a namespace for every request cost about 0.3 s
 * of CPU each (and over 5 s at load 18 on two cores, issue 13), and the lab tests poll the server several times a
 * second: that was most of their CPU time.
 *
 * Every request opens its own connection (`agent: false`), as a fresh process did: a test that changes a firewall
 * expects the next request to be a new connection, not one kept alive from before the change.
 */
import type { HttpAnswer, SpawnedProcess } from './shop-lab.js';

/** The client, run with `node -e` inside the namespace. It exits when its stdin closes (the lab's owner is gone). */
export const NS_HTTP_SCRIPT = `
const http = require('http'), https = require('https');
const rl = require('readline').createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let q;
  try { q = JSON.parse(line); } catch { return; }
  let sent = false;
  const done = (a) => { if (!sent) { sent = true; process.stdout.write(JSON.stringify({ id: q.id, ...a }) + '\\n'); } };
  let u;
  try { u = new URL(q.url); } catch (e) { return done({ error: String(e) }); }
  const req = (u.protocol === 'https:' ? https : http).request(
    u,
    { method: q.method || 'GET', headers: q.headers || {}, agent: false, signal: AbortSignal.timeout(q.timeoutMs) },
    (res) => {
      const body = [];
      res.on('data', (c) => body.push(c));
      res.on('end', () => done({
        status: res.statusCode,
        servedBy: String(res.headers['x-served-by'] ?? ''),
        body: Buffer.concat(body).toString('utf8'),
      }));
      res.on('error', (e) => done({ error: String(e.code ?? e.name ?? e) }));
    },
  );
  req.on('error', (e) => done({ error: String(e.code ?? e.name ?? e) }));
  if (typeof q.body === 'string') req.write(q.body);
  req.end();
});
rl.on('close', () => process.exit(0));
`;

export interface NsRequest {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** The request's own timeout (default 5000 ms). */
  readonly timeoutMs?: number;
}

interface Pending {
  readonly resolve: (a: HttpAnswer) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly url: string;
  /** The client process it was sent to. */
  readonly proc: SpawnedProcess;
}

/**
 * Sends requests through one long-lived client process, started (again) on first use by `start` (which runs
 * NS_HTTP_SCRIPT in the namespace with piped stdin and stdout). The process and its pipes do not keep the caller
 * alive; a pending request's guard timer does.
 */
export class NsHttpClient {
  private proc: SpawnedProcess | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(
    private readonly where: string,
    private readonly start: () => SpawnedProcess,
  ) {}

  request(url: string, init: NsRequest = {}): Promise<HttpAnswer> {
    const timeoutMs = init.timeoutMs ?? 5000;
    const proc = this.running();
    const id = this.nextId++;
    return new Promise<HttpAnswer>((resolve, reject) => {
      // Only guards against a client that hangs; the request's own timeout is inside the client.
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new Error(`${this.where}: no answer from the lab's HTTP client for ${url} within ${timeoutMs + 60_000} ms`),
        );
      }, timeoutMs + 60_000);
      this.pending.set(id, { resolve, reject, timer, url, proc });
      proc.child.stdin?.write(
        `${JSON.stringify({ id, url, method: init.method, headers: init.headers, body: init.body, timeoutMs })}\n`,
      );
    });
  }

  /** The client process while it runs. */
  process(): SpawnedProcess | undefined {
    const p = this.proc;
    return p && p.child.exitCode === null && p.child.signalCode === null ? p : undefined;
  }

  /** Ends the client (its stdin closes, so it exits); a later request starts a new one. */
  close(): void {
    const p = this.proc;
    this.proc = undefined;
    p?.child.stdin?.end();
  }

  private running(): SpawnedProcess {
    const p = this.process();
    if (p) return p;
    const started = this.start();
    const { stdin, stdout } = started.child;
    if (!stdin || !stdout) throw new Error(`${this.where}: the lab's HTTP client was started without pipes`);
    stdin.on('error', () => {}); // a client that died: its pending requests fail below
    let buf = '';
    stdout.setEncoding('utf8');
    stdout.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.answer(line);
      }
    });
    started.child.once('exit', (code, signal) => {
      if (this.proc === started) this.proc = undefined;
      for (const [id, w] of this.pending) {
        if (w.proc !== started) continue;
        clearTimeout(w.timer);
        this.pending.delete(id);
        w.reject(
          new Error(`${this.where}: the lab's HTTP client exited (${signal ?? code}) before answering ${w.url}`),
        );
      }
    });
    started.child.unref();
    (stdin as unknown as { unref?: () => void }).unref?.();
    (stdout as unknown as { unref?: () => void }).unref?.();
    this.proc = started;
    return started;
  }

  private answer(line: string): void {
    let a: { id: number; error?: string } & Partial<HttpAnswer>;
    try {
      a = JSON.parse(line) as typeof a;
    } catch {
      return;
    }
    const w = this.pending.get(a.id);
    if (!w) return;
    this.pending.delete(a.id);
    clearTimeout(w.timer);
    if (a.error !== undefined) w.reject(new Error(`${w.url}: ${a.error}`));
    else w.resolve({ status: a.status ?? 0, servedBy: a.servedBy ?? '', body: a.body ?? '' });
  }
}
