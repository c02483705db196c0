/**
 * `rampart agent`: runs as root on a host, dials out to the server, and applies jobs safely.
 *
 * The dead-man's switch lives here, on the host: the pending state (with the snapshot) is on disk before the new
 * ruleset goes in, and the snapshot comes back unless the server confirms before the deadline. The server cannot
 * stop that from happening: a ruleset that cuts the agent off from the server is rolled back by the agent alone.
 * Events the server cannot receive right now wait in an outbox and go out in order once it answers again.
 */

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { UserError } from '../errors.js';
import type { Executor } from '../lab/executor.js';
import { VantagePoint } from '../monitor/vantage.js';
import { applyAtomic, prepareApply, readManaged, restore, snapshot } from './firewall-exec.js';
import { runHealthChecks } from './health.js';
import { readListeningSockets } from './live.js';
import { clearPending, loadLastApplied, loadPending, saveLastApplied, savePending } from './pending.js';
import type {
  AgentEvent,
  AgentEventKind,
  AgentJob,
  AgentReport,
  ConfirmAnswer,
  HealthResult,
  ProbeRequest,
} from './protocol.js';
import { TrafficMeter } from './traffic.js';

export interface AgentOptions {
  readonly server: string;
  readonly token: string;
  /** Where the pending state and the last applied job live (0700). */
  readonly stateDir: string;
  readonly exec: Executor;
  /** How often to ask for work (default 1000 ms). */
  readonly pollMs?: number;
  /** How often to read the live ruleset and report it when it changed (default 2000 ms; at least every 30 s). */
  readonly reportMs?: number;
  readonly log?: (line: string) => void;
  /**
   * Probe the monitors the server assigns this host (issue 14): its own service on loopback, its peers' through
   * their firewalls (default true).
   */
  readonly monitor?: boolean;
  /**
   * Measure incoming traffic (issue 14, §3): the access logs, rule counters and HAProxy backends the server names
   * for this host's services, sent per window (default true).
   */
  readonly traffic?: boolean;
  /**
   * The demo's mode (src/demo, no root): the live ruleset is this file (nft text), read for every report instead of
   * asking nft; no command touches a kernel (`exec` is not used for the firewall) and jobs are refused, nothing
   * applied. Not offered by the CLI: a real host's agent reads its kernel.
   */
  readonly liveFile?: string;
}

const REQUEST_TIMEOUT_MS = 3000;
/** A report goes out at least this often, also when nothing changed: the server picks peers among live agents. */
const HEARTBEAT_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** Why a job must not be applied on this host, or undefined when it may. */
export function verifyJob(job: AgentJob, host: string): string | undefined {
  if (job.host !== host) return `the job is for ${job.host}, this agent is ${host}`;
  if (job.change.state !== 'applying') return `change ${job.changeId} is ${job.change.state}, not applying`;
  if (!job.plan.approved) return `plan ${job.planId} is not approved`;
  if (job.plan.stale) return `plan ${job.planId} is stale`;
  if (sha256(job.ruleset) !== job.rulesetSha256) return 'the ruleset does not match the approved one (SHA-256 differs)';
  return undefined;
}

export class Agent {
  private host = '';
  private outbox: { jobId: number; event: AgentEvent }[] = [];
  private stopped = false;
  private lastReportSha = '';
  private lastReportAt = 0;
  private busy: number | undefined;
  private readonly log: (line: string) => void;

  constructor(private readonly o: AgentOptions) {
    this.log = o.log ?? ((line) => process.stderr.write(`${new Date().toISOString()} rampart-agent: ${line}\n`));
  }

  private async call<T>(method: string, path: string, body?: unknown, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
    const res = await fetch(`${this.o.server}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.o.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) {
      let detail = text.slice(0, 300);
      try {
        detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
      } catch {
        // not JSON
      }
      throw new UserError('RAMPART_ERR_SERVER', `${method} ${path}: HTTP ${res.status}: ${detail}`, {
        status: res.status,
      });
    }
    return JSON.parse(text) as T;
  }

  /**
   * Queues an event and starts delivering the outbox in the background, in order; undelivered events wait for the
   * next try. Never waits for the server: a ruleset that cuts the agent off must not slow its own rollback.
   */
  private emit(jobId: number, kind: AgentEventKind, detail: string): void {
    this.log(`job ${jobId}: ${kind}: ${detail}`);
    this.outbox.push({ jobId, event: { kind, at: new Date().toISOString(), detail } });
    void this.flush();
  }

  private flushing: Promise<void> | undefined;

  /** Delivers the outbox; one delivery at a time (a second call waits for the running one). */
  private flush(): Promise<void> {
    this.flushing ??= this.deliver().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Waits until every queued event is delivered (or `timeoutMs` passed); true when the outbox is empty. */
  async drain(timeoutMs = 10_000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (this.outbox.length > 0 && Date.now() < end) {
      await this.flush();
      if (this.outbox.length > 0) await sleep(200);
    }
    return this.outbox.length === 0;
  }

  private async deliver(): Promise<void> {
    while (this.outbox.length > 0) {
      const next = this.outbox[0] as { jobId: number; event: AgentEvent };
      try {
        await this.call('POST', `/agent/jobs/${next.jobId}/events`, next.event);
      } catch (e) {
        // A 4xx other than auth means the server will never take it (job gone): drop it rather than block the rest.
        const status = (e as UserError).details?.status as number | undefined;
        if (status !== undefined && status >= 400 && status < 500 && status !== 401 && status !== 403) {
          this.outbox.shift();
          continue;
        }
        return;
      }
      this.outbox.shift();
    }
  }

  /** On start: a pending apply from before a crash is rolled back before anything else. */
  async recover(): Promise<void> {
    // Nothing is ever applied from a file: nothing to put back.
    if (this.o.liveFile) return;
    const p = await loadPending(this.o.stateDir);
    if (!p) return;
    this.log(`found a pending apply of job ${p.jobId} from ${p.startedAt}: restoring the snapshot`);
    try {
      await restore(this.o.exec, p.target, p.snapshot);
      await clearPending(this.o.stateDir);
      this.emit(
        p.jobId,
        'recovered',
        `the agent restarted during job ${p.jobId} (started ${p.startedAt}); the snapshot is back in force`,
      );
    } catch (e) {
      this.emit(p.jobId, 'rollback-failed', `restoring the snapshot after a restart failed: ${(e as Error).message}`);
      throw e;
    }
  }

  private async rollback(
    job: AgentJob,
    target: Parameters<typeof restore>[1],
    snap: Parameters<typeof restore>[2],
    why: string,
  ) {
    try {
      await restore(this.o.exec, target, snap);
      await clearPending(this.o.stateDir);
      this.emit(job.id, 'rolled-back', `snapshot restored: ${why}`);
    } catch (e) {
      this.emit(job.id, 'rollback-failed', `${why}; restoring the snapshot failed: ${(e as Error).message}`);
    }
  }

  /** The safe apply of one job (see the protocol's header). Never throws: every outcome is an event. */
  async handle(job: AgentJob): Promise<void> {
    this.busy = job.id;
    try {
      if ((await loadLastApplied(this.o.stateDir)) === job.id) {
        this.emit(job.id, 'committed', 'already committed before a restart');
        return;
      }
      if (this.o.liveFile) {
        this.emit(
          job.id,
          'refused',
          `nothing applied: this agent reads its live ruleset from ${this.o.liveFile} (the demo) and touches no firewall`,
        );
        return;
      }
      const bad = verifyJob(job, this.host);
      const target = { firewall: job.firewall, tables: job.managedTables };
      let prepared: string;
      try {
        if (bad) throw new Error(bad);
        prepared = prepareApply(target, { text: job.ruleset, format: job.format });
      } catch (e) {
        this.emit(job.id, 'refused', `nothing applied: ${(e as Error).message}`);
        return;
      }
      const snap = await snapshot(this.o.exec, target);
      const startedAt = new Date();
      const deadline = new Date(startedAt.getTime() + job.confirmTimeoutSeconds * 1000);
      await savePending(this.o.stateDir, {
        jobId: job.id,
        changeId: job.changeId,
        startedAt: startedAt.toISOString(),
        deadline: deadline.toISOString(),
        target,
        snapshot: snap,
      });
      this.emit(
        job.id,
        'pending-saved',
        `snapshot of ${job.managedTables.join(', ')} saved; confirm by ${deadline.toISOString()}`,
      );
      try {
        await applyAtomic(this.o.exec, target, prepared);
      } catch (e) {
        // The transaction is all or nothing: nothing changed; the pending state goes.
        await clearPending(this.o.stateDir);
        this.emit(job.id, 'refused', `the kernel refused the ruleset, nothing changed: ${(e as Error).message}`);
        return;
      }
      this.emit(job.id, 'applied', `${job.managedTables.join(', ')} replaced in one transaction`);
      const local = await runHealthChecks(job.health, '127.0.0.1', { retries: 3, intervalMs: 500 });
      const failed = local.filter((r) => !r.ok);
      if (failed.length > 0) {
        const why = failed.map((r) => `${r.check}: ${r.detail}`).join('; ');
        this.emit(job.id, 'health-failed', why);
        await this.rollback(job, target, snap, `local health checks failed (${why})`);
        return;
      }
      this.emit(
        job.id,
        'health-ok',
        local.length ? local.map((r) => `${r.check} ${r.ms} ms`).join(', ') : 'no health checks declared',
      );
      const answer = await this.awaitConfirmation(job, local, deadline);
      if (answer?.confirmed) {
        await saveLastApplied(this.o.stateDir, job.id);
        await clearPending(this.o.stateDir);
        this.emit(job.id, 'committed', answer.reason);
        return;
      }
      if (!answer) {
        this.emit(job.id, 'confirm-timeout', `no confirmation from the server within ${job.confirmTimeoutSeconds} s`);
        await this.rollback(job, target, snap, 'no confirmation before the deadline');
      } else {
        await this.rollback(job, target, snap, answer.reason);
      }
    } finally {
      this.busy = undefined;
    }
  }

  private async awaitConfirmation(
    job: AgentJob,
    local: readonly HealthResult[],
    deadline: Date,
  ): Promise<ConfirmAnswer | undefined> {
    while (Date.now() < deadline.getTime()) {
      try {
        // The server probes the host before it answers: give it the time left, not the usual request timeout.
        const left = deadline.getTime() - Date.now();
        return await this.call<ConfirmAnswer>('POST', `/agent/jobs/${job.id}/confirm`, { local }, Math.max(1000, left));
      } catch {
        await sleep(Math.min(1000, Math.max(0, deadline.getTime() - Date.now())));
      }
    }
    return undefined;
  }

  /** Probes another host for the server (a second vantage point), in the background. */
  private async probePeer(p: ProbeRequest): Promise<void> {
    try {
      const results = await runHealthChecks(p.checks, p.address, { retries: 2, intervalMs: 300 });
      await this.call('POST', `/agent/probes/${p.id}`, { results });
    } catch (e) {
      this.log(`probe of ${p.target} for the server failed: ${(e as Error).message}`);
    }
  }

  private async report(): Promise<void> {
    const target = this.currentTarget;
    if (!target) return;
    const live = this.o.liveFile
      ? { format: 'nft-text' as const, text: await readFile(this.o.liveFile, 'utf8') }
      : await readManaged(this.o.exec, target);
    const sha = sha256(live.text);
    if (sha === this.lastReportSha && Date.now() - this.lastReportAt < HEARTBEAT_MS) return;
    const sockets = (await readListeningSockets()).map((s) => ({ proto: s.proto, address: s.address, port: s.port }));
    const report: AgentReport = {
      at: new Date().toISOString(),
      firewall: target.firewall,
      live,
      sockets,
      state: this.busy === undefined ? 'idle' : `applying job ${this.busy}`,
    };
    await this.call('POST', '/agent/report', report);
    this.lastReportSha = sha;
    this.lastReportAt = Date.now();
  }

  /** What the agent reports: the tables of the last job (the server's config decides; these are its defaults). */
  private currentTarget: { firewall: 'nftables' | 'iptables'; tables: readonly string[] } | undefined;

  /**
   * Learns which host this agent speaks for (the token's name) and what the server's config says it manages there,
   * waiting for the server as long as needed. A refused token is fatal: waiting would not fix it.
   */
  async connect(): Promise<string> {
    for (;;) {
      try {
        const hello = await this.call<{ host: string; firewall: 'nftables' | 'iptables'; managedTables: string[] }>(
          'GET',
          '/agent/hello',
        );
        this.host = hello.host;
        this.currentTarget = { firewall: hello.firewall, tables: hello.managedTables };
        return hello.host;
      } catch (e) {
        const status = (e as UserError).details?.status as number | undefined;
        if (status === 401 || status === 403 || status === 404) {
          throw new UserError('RAMPART_ERR_USAGE', `the server refused this agent: ${(e as Error).message}`);
        }
        if (this.stopped) throw e;
        this.log(`waiting for the server: ${(e as Error).message}`);
        await sleep(this.o.pollMs ?? 1000);
      }
    }
  }

  async run(target: { firewall: 'nftables' | 'iptables'; tables: readonly string[] }): Promise<void> {
    this.currentTarget = target;
    await this.recover();
    await this.connect();
    this.log(`agent for ${this.host} connected to ${this.o.server}`);
    const vantage =
      this.o.monitor === false
        ? undefined
        : new VantagePoint({ server: this.o.server, token: this.o.token, kind: 'agent', log: (l) => this.log(l) });
    void vantage?.start().catch((e: Error) => this.log(`monitoring stopped: ${e.message}`));
    const traffic =
      this.o.traffic === false
        ? undefined
        : new TrafficMeter({
            stateDir: this.o.stateDir,
            exec: this.o.exec,
            firewall: () => this.currentTarget?.firewall ?? 'nftables',
            call: (method, path, body) => this.call(method, path, body),
            log: (l) => this.log(l),
          });
    void traffic?.start().catch((e: Error) => this.log(`traffic measurement stopped: ${e.message}`));
    const reporter = (async () => {
      while (!this.stopped) {
        await this.report().catch((e: Error) => this.log(`report failed: ${e.message}`));
        await sleep(this.o.reportMs ?? 2000);
      }
    })();
    while (!this.stopped) {
      try {
        await this.flush();
        const { job, probes } = await this.call<{ job: AgentJob | null; probes?: ProbeRequest[] }>(
          'GET',
          '/agent/next',
        );
        for (const p of probes ?? []) void this.probePeer(p);
        if (job) {
          this.currentTarget = { firewall: job.firewall, tables: job.managedTables };
          await this.handle(job);
          this.lastReportSha = '';
          continue;
        }
      } catch (e) {
        this.log(`poll failed: ${(e as Error).message}`);
      }
      await sleep(this.o.pollMs ?? 1000);
    }
    await reporter;
    await vantage?.stop();
    await traffic?.stop();
  }

  stop(): void {
    this.stopped = true;
  }
}
