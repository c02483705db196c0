/**
 * The server's side of the agent protocol (src/agent/protocol.ts): which job an agent gets and when (one host at a
 * time, canary first, never while the host's services have no other healthy backend), what its steps do to the
 * change's timeline, the confirmation (the server probes the host through its firewall from its own vantage), and
 * live reports with drift (the semantic diff of the live ruleset against the desired one).
 */
import { createHash } from 'node:crypto';
import { runHealthChecks } from '../agent/health.js';
import type {
  AgentEvent,
  AgentJob,
  AgentReport,
  ConfirmAnswer,
  ConfirmRequest,
  HealthResult,
  ProbeRequest,
} from '../agent/protocol.js';
import type { Plan } from '../change/types.js';
import { managedTables } from '../config/load.js';
import type { HealthCheck, HostConfig, RampartConfig } from '../config/types.js';
import { UserError } from '../errors.js';
import type { Actor, ApplyJob, ChangeRecord, StoreReader, StoreWriter } from '../store/types.js';
import { completeJob, failJob } from './job-outcome.js';
import type { ServerDeps } from './route.js';

/** How old a backend's health verdict may be when it gates another host's turn (the confirmation never reuses one). */
const GATE_PROBE_MAX_AGE_MS = 3000;

export const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** Steps that end a job on the agent's side, and what they make of the change. */
const TERMINAL: Partial<Record<AgentEvent['kind'], 'failed' | 'rolled-back'>> = {
  refused: 'failed',
  'rolled-back': 'rolled-back',
  recovered: 'rolled-back',
  'rollback-failed': 'failed',
};

export interface Drift {
  readonly inSync: boolean;
  /** Compared against this desired revision (null: the host has no desired ruleset yet). */
  readonly desiredRevision: number | null;
  readonly changes: Plan['hosts'][number]['changes'];
  readonly summary: string;
}

/** One flow of a drift in words: `input: tcp dport 443 from any to 192.0.2.11: accept in desired, drop live`. */
function describeDrift(c: Drift['changes'][number]): string {
  return `${c.hook}: ${c.flow}: ${c.from} in desired, ${c.to} live`;
}

function hostConfig(config: RampartConfig, host: string): HostConfig {
  const h = config.hosts.find((x) => x.name === host);
  if (!h) throw new UserError('RAMPART_ERR_NOT_FOUND', `host ${host} is not in the config`);
  return h;
}

/** The health checks of every service that runs on `host`. */
export function healthChecksOf(config: RampartConfig, host: string): HealthCheck[] {
  return config.services.filter((s) => s.hosts.includes(host)).flatMap((s) => s.health ?? []);
}

/** The address the server probes a host at: its first IPv4 address, else its first address. */
function probeAddress(h: HostConfig): string | undefined {
  return h.addresses.find((a) => !a.includes(':')) ?? h.addresses[0];
}

export class RolloutService {
  constructor(private readonly deps: ServerDeps) {}

  private at(): string {
    return this.deps.now().toISOString();
  }

  private async jobOf(host: string, jobId: number): Promise<ApplyJob> {
    const job = await this.deps.store.getJob(jobId);
    // Another host's job is "not found" to this agent: an agent learns nothing about other hosts.
    if (!job || job.host !== host)
      throw new UserError('RAMPART_ERR_NOT_FOUND', `job ${jobId} does not exist for host ${host}`);
    return job;
  }

  /** Probes `host` from the server: its services' health checks against its address, through its firewall. */
  async probe(host: string): Promise<HealthResult[]> {
    const config = this.deps.config.current();
    const h = hostConfig(config, host);
    const address = probeAddress(h);
    const checks = healthChecksOf(config, host);
    if (!address || checks.length === 0) return [];
    return runHealthChecks(checks, address, { retries: 2, intervalMs: 300 });
  }

  /**
   * Asks a peer's agent to probe `host`: a host sharing a service with it whose agent reported in the last 25 s and
   * has no job of its own in progress. No peer (a single-host service, agents down) is not a failure: the note says
   * the peer vantage point was missing.
   */
  async peerProbe(host: string): Promise<{ results: HealthResult[]; note: string }> {
    const config = this.deps.config.current();
    const h = hostConfig(config, host);
    const address = probeAddress(h);
    const checks = healthChecksOf(config, host);
    if (!address || checks.length === 0) return { results: [], note: '' };
    const peers = [...new Set(config.services.filter((s) => s.hosts.includes(host)).flatMap((s) => s.hosts))].filter(
      (p) => p !== host,
    );
    const now = this.deps.now().getTime();
    for (const peer of peers) {
      // Alive: reported recently. Free: no job of its own in progress (the job queue knows that at once; the state
      // in its last report can be a few seconds old).
      const r = await this.deps.store.getHostReport(peer);
      if (!r || now - Date.parse(r.at) > 25_000) continue;
      if ((await this.deps.store.listJobs({ host: peer, state: 'taken' })).length > 0) continue;
      const timeoutMs = Math.max(...checks.map((c) => c.timeoutMs)) * 3 + 3000;
      const results = await this.deps.probes.ask(peer, { target: host, address, checks }, timeoutMs);
      if (!results) return { results: [], note: `peer ${peer} did not answer its probe in time` };
      return {
        results: results.map((x) => ({ ...x, check: `from ${peer}: ${x.check}` })),
        note: `probed from ${peer} too`,
      };
    }
    return { results: [], note: 'no peer agent available to probe from' };
  }

  /** A peer agent's probe results. */
  answerProbe(peer: string, id: string, results: HealthResult[]): { accepted: boolean } {
    return { accepted: this.deps.probes.answer(peer, id, results) };
  }

  /** Why `host` must wait (another backend of its services is not healthy), or undefined when it may go. */
  private async waitReason(host: string): Promise<string | undefined> {
    const config = this.deps.config.current();
    for (const s of config.services.filter((x) => x.hosts.includes(host) && (x.health?.length ?? 0) > 0)) {
      const others = s.hosts.filter((o) => o !== host);
      if (others.length === 0) continue;
      let healthy = false;
      for (const o of others) {
        const now = this.deps.now().getTime();
        if (
          await this.deps.probes.healthOf(o, GATE_PROBE_MAX_AGE_MS, now, async () =>
            (await this.probe(o)).every((r) => r.ok),
          )
        ) {
          healthy = true;
          break;
        }
      }
      // A host failing its own health checks cannot take a working service down: every backend is failing (an
      // outage), and this change may be its fix (issue 16: `incident remediate` restores the desired ruleset).
      if (!healthy) {
        const now = this.deps.now().getTime();
        const self = await this.deps.probes.healthOf(host, GATE_PROBE_MAX_AGE_MS, now, async () =>
          (await this.probe(host)).every((r) => r.ok),
        );
        if (!self) continue;
        return `service ${s.name} has no other healthy backend (${others.join(', ')} failing its health checks): changing ${host} now could take the whole service down`;
      }
    }
    return undefined;
  }

  private async event(
    w: StoreWriter,
    job: ApplyJob,
    source: string,
    kind: string,
    detail: string,
    sourceAt: string | null = null,
  ) {
    const e = await w.insertJobEvent({
      jobId: job.id,
      changeId: job.changeId,
      host: job.host,
      at: this.at(),
      sourceAt,
      source,
      kind,
      detail,
    });
    // Every step of a rollout is in the audit trail too, not only on the change's timeline.
    await w.audit({
      action: `${source === 'agent' ? 'agent' : 'rollout'}.${kind}`,
      target: `change:${job.changeId}`,
      after: { job: job.id, host: job.host, step: job.step, detail, ...(sourceAt ? { agentAt: sourceAt } : {}) },
    });
    return e;
  }

  private agentJob(config: RampartConfig, job: ApplyJob, change: ChangeRecord, planStale: boolean): AgentJob {
    const h = hostConfig(config, job.host);
    return {
      id: job.id,
      changeId: job.changeId,
      planId: job.planId,
      host: job.host,
      step: job.step,
      firewall: h.firewall ?? 'nftables',
      managedTables: managedTables(h),
      format: change.format,
      ruleset: change.ruleset,
      // The hash stored with the change (bound to its approvals), not one recomputed from the text: a ruleset edited
      // in the table behind the server's back then fails the agent's check instead of being applied.
      rulesetSha256: change.rulesetSha256,
      change: { state: change.state, hosts: change.hosts, emergency: change.emergency !== null },
      plan: { id: job.planId, stale: planStale, approved: true },
      health: healthChecksOf(config, job.host),
      confirmTimeoutSeconds: config.policy.confirmTimeoutSeconds,
    };
  }

  /** What an agent learns when it connects: its host and what it manages there. */
  hello(host: string): { host: string; firewall: 'nftables' | 'iptables'; managedTables: readonly string[] } {
    const h = hostConfig(this.deps.config.current(), host);
    return { host, firewall: h.firewall ?? 'nftables', managedTables: managedTables(h) };
  }

  /** The host's next job when it is its turn; records why it waits otherwise. */
  async next(actor: Actor, host: string): Promise<{ job: AgentJob | null; waiting?: string; probes?: ProbeRequest[] }> {
    const probes = this.deps.probes.take(host);
    const answer = await this.nextJob(actor, host);
    return probes.length > 0 ? { ...answer, probes } : answer;
  }

  private async nextJob(actor: Actor, host: string): Promise<{ job: AgentJob | null; waiting?: string }> {
    const config = this.deps.config.current();
    hostConfig(config, host);
    const store = this.deps.store;
    const mine = await store.listJobs({ host });
    // A job handed out before (the agent restarted without a pending state) comes first: hand it out again.
    // Jobs of changes that are no longer applying (failed, rolled back elsewhere) are skipped.
    const open = [...mine.filter((j) => j.state === 'taken'), ...mine.filter((j) => j.state === 'queued')];
    let candidate: ApplyJob | undefined;
    let change: ChangeRecord | undefined;
    for (const j of open) {
      const c = await store.getChange(j.changeId);
      if (c?.state === 'applying') {
        candidate = j;
        change = c;
        break;
      }
    }
    if (!candidate || !change) return { job: null };
    const taken = candidate.state === 'taken';
    if (!taken) {
      const all = await store.listJobs({ changeId: change.id });
      if (all.some((j) => j.step < candidate.step && j.state !== 'done'))
        return { job: null, waiting: 'an earlier host of the rollout is not done' };
      const why = await this.waitReason(host);
      if (why) {
        await store.write(actor, async (w) => {
          const events = await w.listJobEvents({ jobId: candidate.id });
          if (events.at(-1)?.detail !== why) await this.event(w, candidate, 'server', 'waiting', why);
        });
        return { job: null, waiting: why };
      }
    }
    const plan = await store.getPlan(candidate.planId);
    const desired = await store.getDesired(host);
    const stale = !plan || plan.stale || (plan.baseRevisions[host] ?? 0) !== (desired?.revision ?? 0);
    return store.write(actor, async (w) => {
      const job = (await w.getJob(candidate.id)) as ApplyJob;
      if (job.state !== 'queued' && job.state !== 'taken') return { job: null };
      if (stale) {
        await this.event(
          w,
          job,
          'server',
          'refused',
          `plan ${job.planId} is stale: ${host}'s desired ruleset moved on after it was approved`,
        );
        await failJob(w, job, this.at(), 'failed', 'server', 'stale plan');
        return { job: null };
      }
      if (job.state === 'queued') {
        await w.updateJob(job.id, 'taken', this.at());
        await this.event(
          w,
          job,
          'server',
          'handed-out',
          `step ${job.step + 1} of ${change.hosts.length}: ${host}'s agent took the job`,
        );
      }
      return { job: this.agentJob(config, job, change, false) };
    });
  }

  async recordEvent(actor: Actor, host: string, jobId: number, ev: AgentEvent): Promise<{ recorded: true }> {
    const job = await this.jobOf(host, jobId);
    let rolledBack: { readonly at: string; readonly detail: string } | undefined;
    await this.deps.store.write(actor, async (w) => {
      const current = (await w.getJob(job.id)) as ApplyJob;
      // Delivery is at least once (an agent retries what it could not confirm was received): the same event
      // (kind, agent time, detail) twice is recorded once.
      const seen = await w.listJobEvents({ jobId: job.id });
      if (
        seen.some((e) => e.source === 'agent' && e.kind === ev.kind && e.sourceAt === ev.at && e.detail === ev.detail)
      )
        return;
      await this.event(w, current, 'agent', ev.kind, ev.detail, ev.at);
      const end = TERMINAL[ev.kind];
      // The agent undid (or tried to undo) the change on its own: alerting's ChangeRolledBack.
      if (end && ev.kind !== 'refused' && current.state !== 'failed' && current.state !== 'cancelled')
        rolledBack = { at: this.at(), detail: ev.detail };
      if (end && (current.state === 'taken' || current.state === 'queued')) {
        await failJob(w, current, this.at(), end, 'agent', `${ev.kind}: ${ev.detail}`);
      } else if (end && current.state === 'done') {
        // The agent rolled back after the server had confirmed (the answer never reached it before the deadline):
        // the host runs its previous ruleset, so that becomes its desired state again and the change is rolled back.
        const at = this.at();
        const d = await w.getDesired(host);
        let note = `${host} rolled back after its job was confirmed (the confirmation did not reach it in time)`;
        if (d?.changeId === job.changeId) {
          const prev = await w.getDesiredRevision(host, d.revision - 1);
          if (prev) {
            const back = await w.setDesired({
              host,
              format: prev.format,
              ruleset: prev.ruleset,
              changeId: prev.changeId,
              updatedAt: at,
            });
            note += `; its desired ruleset is revision ${prev.revision}'s again (now revision ${back.revision})`;
          } else {
            note += '; it had no managed ruleset before, so its desired state stays and drift shows the difference';
          }
        }
        await this.event(w, current, 'server', 'attention', note);
        await failJob(w, current, at, 'rolled-back', 'agent', note);
        if (rolledBack) rolledBack = { at, detail: `${ev.detail}; ${note}` };
      }
    });
    if (rolledBack) {
      await this.deps.alerting.recordEvents([
        {
          at: rolledBack.at,
          kind: 'agent.rollback',
          subject: `change:${job.changeId}`,
          data: {
            change: job.changeId,
            host,
            job: job.id,
            outcome: ev.kind,
            detail: rolledBack.detail,
            agentAt: ev.at,
          },
        },
      ]);
    }
    return { recorded: true };
  }

  async confirm(actor: Actor, host: string, jobId: number, req: ConfirmRequest): Promise<ConfirmAnswer> {
    const job = await this.jobOf(host, jobId);
    if (job.state === 'done') return { confirmed: true, remote: [], reason: 'already confirmed' };
    if (job.state !== 'taken') return { confirmed: false, remote: [], reason: `job ${jobId} is ${job.state}` };
    const late = await this.pastConfirmDeadline(job, this.deps.store);
    if (late) return { confirmed: false, remote: [], reason: late };
    const localBad = req.local.filter((r) => !r.ok);
    let remote: HealthResult[] = [];
    let peerNote = '';
    if (localBad.length === 0) {
      // Two vantage points at once: the server's own probe and a peer's (another backend of the same services).
      const [own, peer] = await Promise.all([this.probe(host), this.peerProbe(host)]);
      remote = [...own, ...peer.results];
      peerNote = peer.note;
    }
    const remoteBad = remote.filter((r) => !r.ok);
    const confirmed = localBad.length === 0 && remoteBad.length === 0;
    const reason = confirmed
      ? `local and remote health checks pass (${remote.length} remote${peerNote ? `; ${peerNote}` : ''})`
      : localBad.length > 0
        ? `local health checks failed: ${localBad.map((r) => `${r.check}: ${r.detail}`).join('; ')}`
        : `${host}'s services cannot be reached through its firewall: ${remoteBad.map((r) => `${r.check}: ${r.detail}`).join('; ')}`;
    let answer: ConfirmAnswer = { confirmed, remote, reason };
    await this.deps.store.write(actor, async (w) => {
      const current = (await w.getJob(job.id)) as ApplyJob;
      if (current.state !== 'taken') return;
      // The probes took time: a confirmation written after the deadline could contradict an agent that rolled back.
      const lateNow = confirmed ? await this.pastConfirmDeadline(current, w) : undefined;
      if (lateNow) {
        answer = { confirmed: false, remote, reason: lateNow };
        return;
      }
      await this.event(w, current, 'server', confirmed ? 'confirmed' : 'remote-health-failed', reason);
      if (confirmed) await completeJob(w, current, this.at(), 'server', reason);
    });
    return answer;
  }

  /**
   * Why a confirmation comes too late, or undefined. The agent restores its snapshot at its own deadline (the confirm
   * timeout from when it started the job); the server counts from when it handed the job out, which is earlier, so
   * a job the server confirms is one its agent has not given up on. Without this, a confirm request held back by the
   * very ruleset it confirms (TCP retransmits it once the agent's rollback reopens the path) marked the change applied
   * after the agent had rolled it back (seen in CI: the watch exited 0 for a change that cut the agent off).
   */
  private async pastConfirmDeadline(
    job: ApplyJob,
    reader: Pick<StoreReader, 'listJobEvents'>,
  ): Promise<string | undefined> {
    const events = await reader.listJobEvents({ jobId: job.id });
    const handed = events.find((e) => e.kind === 'handed-out')?.at ?? job.updatedAt;
    const seconds = this.deps.config.current().policy.confirmTimeoutSeconds;
    const deadline = Date.parse(handed) + seconds * 1000;
    const now = this.deps.now().getTime();
    if (now <= deadline) return undefined;
    return (
      `too late to confirm: job ${job.id} was handed out at ${handed} and its confirm timeout (${seconds} s) ended ` +
      `${((now - deadline) / 1000).toFixed(1)} s ago; the agent restores its snapshot by itself`
    );
  }

  /** Stores the agent's live report; recomputes drift when the live ruleset or the desired one changed. */
  async report(actor: Actor, host: string, report: AgentReport): Promise<{ drift: Drift | null }> {
    const config = this.deps.config.current();
    hostConfig(config, host);
    const store = this.deps.store;
    const liveSha256 = sha256(report.live.text);
    const before = await store.getHostReport(host);
    // Reports can arrive late and out of order (a request held back while a ruleset cut the agent off is delivered
    // after the rollback): one older than the stored report changes nothing.
    const storedAt = (before?.report as AgentReport | undefined)?.at;
    if (before && storedAt !== undefined && report.at < storedAt)
      return { drift: (before.drift as Drift | null) ?? null };
    const desired = await store.getDesired(host);
    // Mid-apply the live ruleset is expected to differ: drift is computed only from an idle agent's report.
    const busy = report.state !== 'idle' || (await store.listJobs({ host, state: 'taken' })).length > 0;
    const previous = before?.drift as Drift | null | undefined;
    let drift: Drift | null = previous ?? null;
    const stale =
      !before ||
      before.liveSha256 !== liveSha256 ||
      (previous?.desiredRevision ?? null) !== (desired?.revision ?? null);
    if (!busy && stale) {
      if (!desired) drift = null;
      else {
        const today = this.deps.now().toISOString().slice(0, 10);
        const plan = await this.deps.planner.compute(
          this.deps.config.source(),
          [
            {
              host,
              current: { text: desired.ruleset, format: desired.format, file: `desired:${host}@${desired.revision}` },
              desired: { text: report.live.text, format: report.live.format, file: `live:${host}` },
            },
          ],
          today,
          {
            // Drift is the semantic diff alone: an unchanged ruleset is recognised by its content, a changed one is
            // compared only where its rules differ.
            findings: false,
            diffOnly: true,
            budget: {
              timeoutMs: this.deps.config.current().policy.planTimeoutSeconds * 1000,
              memoryMiB: this.deps.config.current().policy.planMemoryMiB,
            },
          },
        );
        const changes = plan.hosts[0]?.changes ?? [];
        drift = {
          inSync: changes.length === 0,
          desiredRevision: desired.revision,
          changes,
          summary:
            changes.length === 0
              ? 'in sync with the desired ruleset'
              : `${changes.length} flow change${changes.length === 1 ? '' : 's'} against desired revision ${desired.revision}`,
        };
      }
    }
    const at = this.at();
    const was = previous?.inSync;
    const turned = drift !== null && drift.inSync !== was && (was !== undefined || !drift.inSync);
    await store.write(actor, async (w) => {
      await w.setHostReport({
        host,
        at,
        report,
        liveSha256,
        drift,
        driftAt: stale && !busy ? at : (before?.driftAt ?? null),
      });
      // The drifted live ruleset itself, for the suspected change (issue 16 §3): the report is overwritten by the
      // next one, the snapshot stays.
      if (drift && !drift.inSync && stale && !busy && drift.desiredRevision !== null) {
        await w.addDriftSnapshot({
          host,
          at,
          desiredRevision: drift.desiredRevision,
          format: report.live.format,
          live: report.live.text,
          liveSha256,
          summary: drift.summary,
        });
      }
      if (drift && turned) {
        await w.audit({
          action: drift.inSync ? 'host.in-sync' : 'host.drift',
          target: `host:${host}`,
          before: previous ? { inSync: previous.inSync } : null,
          // seenAt: when the agent read that live ruleset (the incident timeline dates the edit by it, not by when
          // the server got round to the semantic diff).
          after: {
            inSync: drift.inSync,
            summary: drift.summary,
            changes: drift.changes.slice(0, 5),
            seenAt: report.at,
          },
        });
      }
    });
    if (drift && turned) {
      // What alerting follows (FirewallDrift): written once the report is stored, like the audit entry beside it.
      await this.deps.alerting.recordEvents([
        {
          at,
          kind: drift.inSync ? 'host.in-sync' : 'host.drift',
          subject: `host:${host}`,
          data: {
            host,
            inSync: drift.inSync,
            desiredRevision: drift.desiredRevision,
            summary: drift.summary,
            changes: drift.changes.length,
            ...(drift.inSync ? {} : { flows: drift.changes.slice(0, 5).map(describeDrift) }),
          },
        },
      ]);
    }
    return { drift };
  }
}
