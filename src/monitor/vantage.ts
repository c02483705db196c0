/**
 * A vantage point away from the server (issue 14): `rampart probe` in another network, and every agent. It dials
 * out to the server like an agent does, takes its monitors, probes them on its own scheduler (a first failure is
 * re-checked at once, as the server does), and sends results in batches. While the server is away it keeps probing
 * and keeps the results (bounded: the oldest go first, and how many went is said), then sends them oldest first.
 */
import { randomUUID } from 'node:crypto';
import { probe } from './probers.js';
import { Scheduler } from './scheduler.js';
import { applyResult, type VantageState } from './state.js';
import type { Assignment, ProbeResult } from './types.js';

export interface VantageOptions {
  /** The server's base URL (`http://127.0.0.1:8470`). */
  readonly server: string;
  readonly token: string;
  /** `probe` or `agent`: which routes to use. */
  readonly kind: 'probe' | 'agent';
  /** How often to ask for the monitors again (default 30 s). */
  readonly refreshMs?: number;
  /** How often to send results (default 1 s; at once after a failure). */
  readonly sendMs?: number;
  /** Results kept while the server is away (default 100,000). */
  readonly bufferLimit?: number;
  readonly log?: (line: string) => void;
}

const REQUEST_TIMEOUT_MS = 5000;
const BATCH = 5000;

export class VantagePoint {
  private readonly scheduler: Scheduler<Assignment>;
  private buffer: ProbeResult[] = [];
  /**
   * This run (`sender`) and the sequence number of `buffer[0]`: every batch says where it starts, so the server
   * takes a batch once even when it arrives twice (an answer lost to a timeout, then the batch sent again).
   */
  private readonly sender = randomUUID();
  private seq = 0;
  private dropped = 0;
  /** Results probed and results the server acknowledged, since start. */
  private produced = 0;
  private sent = 0;
  private states = new Map<string, VantageState>();
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private lastRefresh = 0;
  private reachable: boolean | undefined;
  /** `probe:eu-west` or `agent:web1`, as the server named this vantage point. */
  name = '';
  private readonly log: (line: string) => void;

  constructor(private readonly o: VantageOptions) {
    this.log = o.log ?? ((line) => process.stderr.write(`${new Date().toISOString()} rampart-${o.kind}: ${line}\n`));
    this.scheduler = new Scheduler<Assignment>({ run: (t) => this.probeOne(t.payload) });
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.o.server}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.o.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    if (!res.ok) {
      let detail = text.slice(0, 300);
      try {
        detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
      } catch {
        // not JSON
      }
      const e = new Error(`${method} ${path}: HTTP ${res.status}: ${detail}`) as Error & { status?: number };
      e.status = res.status;
      throw e;
    }
    return JSON.parse(text) as T;
  }

  /** Takes the monitors (waiting for the server as long as it takes; a refused token is fatal). */
  async refresh(): Promise<number> {
    const path = this.o.kind === 'probe' ? '/probe/monitors' : '/agent/monitors';
    const got = await this.call<{ vantage: string; monitors: Assignment[] }>('GET', path);
    this.name = got.vantage;
    this.lastRefresh = Date.now();
    this.scheduler.set(got.monitors.map((a) => ({ key: a.monitor, intervalMs: a.intervalMs, payload: a })));
    return got.monitors.length;
  }

  async start(): Promise<void> {
    for (;;) {
      try {
        const n = await this.refresh();
        this.log(`${this.name}: probing ${n} monitor${n === 1 ? '' : 's'} for ${this.o.server}`);
        break;
      } catch (e) {
        const status = (e as { status?: number }).status;
        if (status === 401 || status === 403) throw e;
        if (this.stopped) return;
        this.log(`waiting for the server: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    this.scheduler.start();
    const loop = () => {
      this.timer = setTimeout(() => {
        void this.tick().finally(() => {
          if (!this.stopped) loop();
        });
      }, this.o.sendMs ?? 1000);
    };
    loop();
  }

  private async tick(): Promise<void> {
    await this.send();
    if (Date.now() - this.lastRefresh >= (this.o.refreshMs ?? 30_000)) {
      await this.refresh().catch((e: Error) => this.log(`could not refresh the monitors: ${e.message}`));
    }
  }

  private async probeOne(a: Assignment): Promise<void> {
    const r = await probe(a.check, {
      monitor: a.monitor,
      vantage: this.name,
      timeoutMs: a.timeoutMs,
      ...(a.inside ? { inside: true } : {}),
    });
    this.keep(r);
    const step = applyResult(this.states.get(a.monitor), r, a.failures);
    this.states.set(a.monitor, step.next);
    if (step.recheck) this.scheduler.recheck(a.monitor, Math.min(1000, a.intervalMs / 4));
    // A failure is news: send it now rather than at the next tick.
    if (!r.ok) void this.send();
  }

  private keep(r: ProbeResult): void {
    this.produced++;
    this.buffer.push(r);
    const limit = this.o.bufferLimit ?? 100_000;
    if (this.buffer.length > limit) {
      const over = this.buffer.length - limit;
      this.buffer.splice(0, over);
      this.seq += over;
      this.dropped += over;
    }
  }

  /** Sends what is buffered, oldest first, one batch at a time; on failure everything stays for the next try. */
  send(): Promise<void> {
    this.sending ??= this.deliver().finally(() => {
      this.sending = undefined;
    });
    return this.sending;
  }

  private async deliver(): Promise<void> {
    const path = this.o.kind === 'probe' ? '/probe/results' : '/agent/monitor-results';
    while (this.buffer.length > 0) {
      const batch = this.buffer.slice(0, BATCH);
      try {
        await this.call('POST', path, {
          sender: this.sender,
          first: this.seq,
          results: batch.map(({ vantage: _v, ...r }) => r),
        });
      } catch (e) {
        if (this.reachable !== false) {
          this.log(`cannot send results (${this.buffer.length} kept): ${(e as Error).message}`);
        }
        this.reachable = false;
        return;
      }
      this.buffer.splice(0, batch.length);
      this.seq += batch.length;
      this.sent += batch.length;
      if (this.reachable === false) {
        this.log(
          `the server is back: sent the results kept while it was away${this.dropped > 0 ? ` (${this.dropped} oldest were dropped over the limit)` : ''}`,
        );
        this.dropped = 0;
      }
      this.reachable = true;
    }
  }

  /** Results waiting to be sent. */
  pending(): number {
    return this.buffer.length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.scheduler.stop();
    await this.send().catch(() => {});
    this.log(
      `stopped: ${this.produced} results probed, ${this.sent} sent${this.buffer.length > 0 ? `, ${this.buffer.length} unsent` : ''}${this.dropped > 0 ? `, ${this.dropped} dropped over the buffer limit` : ''}`,
    );
  }

  /** Results probed, sent and still waiting since start. */
  counts(): { readonly produced: number; readonly sent: number; readonly pending: number } {
    return { produced: this.produced, sent: this.sent, pending: this.buffer.length };
  }
}
