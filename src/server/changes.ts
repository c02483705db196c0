/**
 * The change workflow on the server: propose, (re)plan, update, review, override, apply, and the agents' job
 * reports. The rules themselves are pure functions in src/change/policy.ts; this file orders reads, the engine and
 * writes so that every write runs under the store's write lock with its audit entry, and the expensive plan is
 * computed outside the lock and only stored when what it was computed against is still current.
 */
import {
  activeFreeze,
  approvalStatus,
  assertSeenPlan,
  assertTransition,
  checkApply,
  checkReview,
  isAuthor,
  mintLineage,
  overrideCovers,
  overrideGap,
  planBlockerKeys,
  resolveTarget,
} from '../change/policy.js';
import type { Plan } from '../change/types.js';
import { UserError } from '../errors.js';
import { detectFormat } from '../firewall/detect.js';
import { parseRuleset } from '../firewall/parse.js';
import type {
  Actor,
  ApplyJob,
  ChangeRecord,
  ChangeTarget,
  DesiredState,
  JobEvent,
  PlanRecord,
  ReviewRecord,
  RulesetFormat,
  Store,
  StoreReader,
  StoreWriter,
  TokenRecord,
} from '../store/types.js';
import { completeJob, failJob } from './job-outcome.js';
import type { ServerDeps } from './route.js';

export interface ProposeInput {
  readonly target: ChangeTarget;
  readonly ruleset: string;
  readonly format?: RulesetFormat;
  /** The name the client read the ruleset from, for parse error locations (default `ruleset`). */
  readonly file?: string;
  readonly reason: string;
  readonly ticket?: string;
  /** Set when the change rolls back an applied one (`rollback`). */
  readonly rollbackOf?: number;
}

export interface ChangeView {
  readonly change: ChangeRecord;
  readonly plan: PlanRecord | undefined;
  readonly reviews: readonly ReviewRecord[];
  readonly approvals: ReturnType<typeof approvalStatus>;
  readonly jobs: readonly ApplyJob[];
  /** The rollout's timeline: every step the server and the agents recorded. */
  readonly events: readonly JobEvent[];
  /** Flags shown everywhere: overridden block, emergency apply, stale plan. */
  readonly flags: readonly string[];
}

const notFound = (id: number): UserError =>
  new UserError('RAMPART_ERR_NOT_FOUND', `change ${id} does not exist`, { id });

async function mustChange(r: StoreReader, id: number): Promise<ChangeRecord> {
  const c = await r.getChange(id);
  if (!c) throw notFound(id);
  return c;
}

/** A change and its latest plan; a change without a plan cannot be reviewed or applied. */
async function withPlan(r: StoreReader, id: number): Promise<{ change: ChangeRecord; plan: PlanRecord }> {
  const change = await mustChange(r, id);
  const plan = await r.latestPlan(id);
  if (!plan) throw new UserError('RAMPART_ERR_STATE', `change ${id} has no plan yet; plan it first`);
  return { change, plan };
}

/** The summary of a change for the audit log: never the whole ruleset text, but its size. */
function changeSummary(c: ChangeRecord): Record<string, unknown> {
  return {
    id: c.id,
    state: c.state,
    target: `${c.target.kind}:${c.target.name}`,
    hosts: c.hosts,
    reason: c.reason,
    ticket: c.ticket,
    version: c.version,
    authors: c.authors,
    // The chain records which ruleset every step concerned: an edit of the changes table behind the server's back
    // no longer matches it (`rampart audit-log verify` compares them).
    rulesetSha256: c.rulesetSha256,
    rulesetBytes: Buffer.byteLength(c.ruleset, 'utf8'),
    ...(c.override ? { override: c.override } : {}),
    ...(c.emergency ? { emergency: c.emergency } : {}),
  };
}

/** Parses the ruleset so that a bad one is refused before anything is stored. */
function checkRuleset(text: string, format: RulesetFormat | undefined, file: string): RulesetFormat {
  const f = format ?? detectFormat(text);
  parseRuleset(text, file, { format: f });
  return f;
}

interface Computed {
  readonly plan: Plan;
  readonly baseRevisions: Record<string, number>;
}

async function compute(
  deps: ServerDeps,
  r: StoreReader,
  id: number | string,
  hosts: readonly string[],
  ruleset: string,
  format: RulesetFormat,
): Promise<Computed> {
  const baseRevisions: Record<string, number> = {};
  const inputs = [];
  for (const host of hosts) {
    const d = await r.getDesired(host);
    baseRevisions[host] = d?.revision ?? 0;
    inputs.push({
      host,
      current: d ? { text: d.ruleset, format: d.format, file: `host:${host}@${d.revision}` } : null,
      desired: { text: ruleset, format, file: `change:${id}` },
    });
  }
  const today = deps.now().toISOString().slice(0, 10);
  return { plan: await deps.planner.compute(deps.config.source(), inputs, today), baseRevisions };
}

async function currentRevisions(r: StoreReader, hosts: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const h of hosts) out[h] = (await r.getDesired(h))?.revision ?? 0;
  return out;
}

const sameRevisions = (a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): boolean =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

/** Why a stored plan no longer describes the change (undefined when it still does). */
async function staleReason(r: StoreReader, c: ChangeRecord, p: PlanRecord): Promise<string | undefined> {
  // Edits of the change mark its plans stale in the same write (update); here only the hosts can have moved on.
  const now = await currentRevisions(r, c.hosts);
  for (const h of c.hosts) {
    if ((p.baseRevisions[h] ?? 0) !== now[h]) {
      return `the desired ruleset of ${h} moved on after the plan (revision ${p.baseRevisions[h] ?? 0} -> ${now[h]})`;
    }
  }
  return undefined;
}

/** Inside a write: mark plans stale, void reviews and send an approved change back to planned. */
async function invalidate(w: StoreWriter, c: ChangeRecord, why: string, at: string): Promise<ChangeRecord> {
  const plans = await w.markPlansStale(c.id);
  const voided = await w.voidReviews(c.id, at);
  let next = c;
  if (c.state === 'approved') {
    assertTransition(c.state, 'planned', c.id);
    next = await w.updateChange(c.id, c.version, { state: 'planned', updatedAt: at });
  }
  if (plans > 0 || voided > 0 || next !== c) {
    await w.audit({
      action: 'change.stale',
      target: `change:${c.id}`,
      before: { state: c.state },
      after: { state: next.state, why, plansMarkedStale: plans, reviewsVoided: voided },
    });
  }
  return next;
}

export class ChangeService {
  constructor(private readonly deps: ServerDeps) {}

  private get store(): Store {
    return this.deps.store;
  }

  private at(): string {
    return this.deps.now().toISOString();
  }

  async view(id: number): Promise<ChangeView> {
    const change = await mustChange(this.store, id);
    const [plan, reviews, jobs, events] = await Promise.all([
      this.store.latestPlan(id),
      this.store.listReviews(id),
      this.store.listJobs({ changeId: id }),
      this.store.listJobEvents({ changeId: id }),
    ]);
    const policy = this.deps.config.current().policy;
    const flags: string[] = [];
    if (change.override && plan && overrideCovers(change, plan)) {
      flags.push(`BLOCK OVERRIDDEN by ${change.override.by}: ${change.override.reason}`);
    } else if (change.override && plan?.blocked) {
      flags.push(`OVERRIDE LAPSED: ${overrideGap(change, plan)}`);
    }
    if (change.emergency) flags.push(`EMERGENCY apply by ${change.emergency.by}: ${change.emergency.reason}`);
    if (change.rollbackOf !== null) flags.push(`ROLLBACK of change ${change.rollbackOf}`);
    const stale = plan ? plan.stale || (await staleReason(this.store, change, plan)) !== undefined : false;
    if (stale && ['proposed', 'planned', 'approved'].includes(change.state)) {
      flags.push('PLAN STALE: re-plan before review or apply');
    }
    if (plan?.blocked && !overrideCovers(change, plan)) flags.push('BLOCKED: needs an admin override to be approved');
    const approvals = approvalStatus(reviews, policy, change.authors, plan?.id);
    return { change, plan, reviews, approvals, jobs, events, flags };
  }

  async propose(actor: Actor, input: ProposeInput): Promise<ChangeView> {
    const config = this.deps.config.current();
    const hosts = resolveTarget(config, input.target);
    const file = input.file ?? 'ruleset';
    const format = checkRuleset(input.ruleset, input.format, file);
    // The plan is computed outside the write lock; if a host's desired state moves meanwhile, compute again.
    for (let attempt = 0; ; attempt++) {
      const computed = await compute(this.deps, this.store, 'new', hosts, input.ruleset, format);
      const id = await this.store.write(actor, async (w) => {
        if (!sameRevisions(computed.baseRevisions, await currentRevisions(w, hosts))) return undefined;
        const at = this.at();
        const proposed = await w.insertChange({
          target: input.target,
          hosts,
          author: actor.name,
          reason: input.reason,
          ticket: input.ticket ?? null,
          format,
          ruleset: input.ruleset,
          createdAt: at,
          updatedAt: at,
          ...(input.rollbackOf !== undefined ? { rollbackOf: input.rollbackOf } : {}),
        });
        await w.audit({ action: 'change.propose', target: `change:${proposed.id}`, after: changeSummary(proposed) });
        return this.storePlan(w, proposed, computed, at);
      });
      if (id !== undefined) return this.view(id);
      if (attempt >= 3)
        throw new UserError('RAMPART_ERR_CONFLICT', 'the hosts kept changing while planning; try again');
    }
  }

  private async storePlan(w: StoreWriter, c: ChangeRecord, computed: Computed, at: string): Promise<number> {
    const plan = await w.insertPlan({
      changeId: c.id,
      createdAt: at,
      changeVersion: c.version,
      baseRevisions: computed.baseRevisions,
      blocked: computed.plan.blocked,
      risk: computed.plan.risk,
      plan: computed.plan,
    });
    assertTransition(c.state, 'planned', c.id);
    // An override covers one ruleset and the blockers it saw: a plan with more (or another ruleset) ends it.
    const lapsed = c.override !== null && !overrideCovers(c, plan);
    const next = await w.updateChange(c.id, c.version, {
      state: 'planned',
      updatedAt: at,
      ...(lapsed ? { override: null } : {}),
    });
    if (lapsed) {
      await w.audit({
        action: 'change.override-lapsed',
        target: `change:${c.id}`,
        before: { override: c.override },
        after: { plan: plan.id, why: overrideGap(c, plan), rulesetSha256: next.rulesetSha256 },
      });
    }
    await w.audit({
      action: 'change.plan',
      target: `change:${c.id}`,
      before: { state: c.state },
      after: {
        state: next.state,
        plan: plan.id,
        risk: plan.risk,
        blocked: plan.blocked,
        summary: computed.plan.summary,
        rulesetSha256: next.rulesetSha256,
      },
    });
    return c.id;
  }

  /**
   * Rolls back an applied change: proposes each host's previous desired ruleset as a new change, linked to the
   * original, which then goes through the same plan, review and safe apply (snapshot, confirm, restore). One change
   * when every host goes back to the same ruleset, else one per host. The original becomes rolled-back when its
   * last host has been moved off it.
   */
  async rollback(actor: Actor, id: number, reason: string): Promise<ChangeView[]> {
    const c = await mustChange(this.store, id);
    if (c.state !== 'applied') {
      throw new UserError(
        'RAMPART_ERR_STATE',
        `change ${id} is ${c.state}; only an applied change can be rolled back`,
        {
          changeId: id,
          state: c.state,
        },
      );
    }
    const previous = new Map<string, DesiredState>();
    for (const host of c.hosts) {
      const d = await this.store.getDesired(host);
      if (!d || d.changeId !== id) {
        throw new UserError(
          'RAMPART_ERR_STATE',
          `${host}'s desired ruleset is no longer change ${id}'s (now ${d?.changeId ? `change ${d.changeId}` : 'set by hand'}): roll the later change back first, or propose the ruleset you want`,
        );
      }
      const prev = await this.store.getDesiredRevision(host, d.revision - 1);
      if (!prev) {
        throw new UserError(
          'RAMPART_ERR_STATE',
          `change ${id} gave ${host} its first managed ruleset: there is no earlier one to roll back to; propose the ruleset you want instead`,
        );
      }
      previous.set(host, prev);
    }
    const texts = new Set([...previous.values()].map((p) => `${p.format}\u0000${p.ruleset}`));
    const groups: { target: ChangeTarget; prev: DesiredState }[] =
      texts.size === 1
        ? [{ target: c.target, prev: previous.get(c.hosts[0] as string) as DesiredState }]
        : [...previous].map(([host, prev]) => ({ target: { kind: 'host' as const, name: host }, prev }));
    const views: ChangeView[] = [];
    for (const g of groups) {
      views.push(
        await this.propose(actor, {
          target: g.target,
          ruleset: g.prev.ruleset,
          format: g.prev.format,
          file: `rollback-of-change-${id}`,
          reason: `rollback of change ${id}: ${reason}`,
          ...(c.ticket ? { ticket: c.ticket } : {}),
          rollbackOf: id,
        }),
      );
    }
    return views;
  }

  /** Recomputes the plan when the change or a host moved on; a current plan is kept (approvals stay valid). */
  async replan(actor: Actor, id: number): Promise<ChangeView> {
    for (let attempt = 0; ; attempt++) {
      const c = await mustChange(this.store, id);
      if (!['proposed', 'planned', 'approved'].includes(c.state)) assertTransition(c.state, 'planned', id);
      const latest = await this.store.latestPlan(id);
      if (latest && !latest.stale && (await staleReason(this.store, c, latest)) === undefined) return this.view(id);
      const computed = await compute(this.deps, this.store, id, c.hosts, c.ruleset, c.format);
      const done = await this.store.write(actor, async (w) => {
        const now = await mustChange(w, id);
        if (now.version !== c.version) return false;
        if (!sameRevisions(computed.baseRevisions, await currentRevisions(w, c.hosts))) return false;
        const at = this.at();
        const fresh = await invalidate(w, now, 're-planned', at);
        await this.storePlan(w, fresh, computed, at);
        return true;
      });
      if (done) return this.view(id);
      if (attempt >= 3)
        throw new UserError('RAMPART_ERR_CONFLICT', `change ${id} kept changing while planning; try again`);
    }
  }

  /** Edits the ruleset or reason: approvals are void and the plan is recomputed. */
  async update(
    actor: Actor,
    id: number,
    patch: { ruleset?: string; format?: RulesetFormat; file?: string; reason?: string },
  ): Promise<ChangeView> {
    const c = await mustChange(this.store, id);
    if (!isAuthor(c, actor.name) && actor.role !== 'admin') {
      throw new UserError(
        'RAMPART_ERR_FORBIDDEN',
        `only an author (${c.authors.join(', ')}) or an admin may edit change ${id}`,
      );
    }
    if (!['proposed', 'planned', 'approved'].includes(c.state)) assertTransition(c.state, 'planned', id);
    const format =
      patch.ruleset !== undefined ? checkRuleset(patch.ruleset, patch.format, patch.file ?? 'ruleset') : undefined;
    await this.store.write(actor, async (w) => {
      const now = await mustChange(w, id);
      if (now.version !== c.version) {
        throw new UserError('RAMPART_ERR_CONFLICT', `change ${id} was changed by someone else meanwhile; reload it`);
      }
      const at = this.at();
      const invalidated = await invalidate(w, now, 'edited', at);
      const newRuleset = patch.ruleset !== undefined && format !== undefined;
      // Whoever shaped the ruleset is an author from now on, and may not approve it; an override was for the old
      // ruleset and lapses with it.
      const authors = newRuleset && !isAuthor(now, actor.name) ? [...now.authors, actor.name] : undefined;
      const next = await w.updateChange(id, invalidated.version, {
        updatedAt: at,
        ...(newRuleset ? { ruleset: patch.ruleset as string, format } : {}),
        ...(authors ? { authors } : {}),
        ...(newRuleset && now.override ? { override: null } : {}),
        ...(patch.reason !== undefined ? { reason: patch.reason } : {}),
      });
      if (newRuleset && now.override) {
        await w.audit({
          action: 'change.override-lapsed',
          target: `change:${id}`,
          before: { override: now.override },
          after: { why: 'the ruleset was edited', rulesetSha256: next.rulesetSha256 },
        });
      }
      await w.audit({
        action: 'change.update',
        target: `change:${id}`,
        before: changeSummary(now),
        after: changeSummary(next),
      });
    });
    return this.replan(actor, id);
  }

  /** Brings the stored plan's staleness up to date (its own write, so a refusal afterwards does not undo it). */
  private async refresh(actor: Actor, id: number): Promise<void> {
    const c = await mustChange(this.store, id);
    const p = await this.store.latestPlan(id);
    if (!p || p.stale) return;
    const why = await staleReason(this.store, c, p);
    if (why === undefined) return;
    await this.store.write(actor, async (w) => {
      const now = await mustChange(w, id);
      const plan = await w.latestPlan(id);
      if (!plan || plan.stale || (await staleReason(w, now, plan)) === undefined) return;
      await invalidate(w, now, why, this.at());
    });
  }

  /**
   * Records a review of the plan the reviewer read (`seenPlan`): refused when the change has a newer plan, when the
   * reviewer or the lineage of their token is too close to the change's authors, and by the rest of the policy.
   */
  async review(
    actor: Actor,
    id: number,
    verdict: 'approve' | 'reject',
    comment: string,
    seenPlan: number,
    token?: TokenRecord,
  ): Promise<ChangeView> {
    await this.refresh(actor, id);
    const policy = this.deps.config.current().policy;
    await this.store.write(actor, async (w) => {
      const { change, plan } = await withPlan(w, id);
      const reviews = await w.listReviews(id);
      const tokens = token ? new Map((await w.listTokens()).map((t) => [t.id, t])) : undefined;
      checkReview({
        change,
        plan,
        reviews,
        reviewer: {
          name: actor.name,
          role: actor.role === 'system' ? 'viewer' : actor.role,
          ...(token && tokens ? { mintedBy: mintLineage(token, tokens) } : {}),
        },
        verdict,
        policy,
        seenPlan,
      });
      const at = this.at();
      const review = await w.insertReview({
        changeId: id,
        planId: plan.id,
        reviewer: actor.name,
        verdict,
        comment,
        at,
      });
      let next = change;
      if (verdict === 'reject') {
        assertTransition(change.state, 'rejected', id);
        next = await w.updateChange(id, change.version, { state: 'rejected', updatedAt: at });
      } else if (approvalStatus([...reviews, review], policy, change.authors, plan.id).satisfied) {
        assertTransition(change.state, 'approved', id);
        next = await w.updateChange(id, change.version, { state: 'approved', updatedAt: at });
      }
      await w.audit({
        action: `change.${verdict}`,
        target: `change:${id}`,
        before: { state: change.state },
        after: {
          state: next.state,
          review: review.id,
          plan: plan.id,
          rulesetSha256: change.rulesetSha256,
          comment,
          ...(plan.blocked ? { blocked: true } : {}),
        },
      });
    });
    return this.view(id);
  }

  /**
   * Lets the blocked plan the admin read (`seenPlan`) be approved: the override names that plan, the ruleset's
   * SHA-256 and the blockers it covers, and lapses when the ruleset is edited or a re-plan adds a blocker.
   */
  async override(actor: Actor, id: number, reason: string, seenPlan: number): Promise<ChangeView> {
    await this.refresh(actor, id);
    await this.store.write(actor, async (w) => {
      const change = await mustChange(w, id);
      const plan = await w.latestPlan(id);
      if (!plan?.blocked)
        throw new UserError('RAMPART_ERR_STATE', `change ${id} is not blocked; there is nothing to override`);
      if (change.state !== 'planned') {
        throw new UserError(
          'RAMPART_ERR_STATE',
          `change ${id} is ${change.state}; a block can be overridden only while it is planned`,
        );
      }
      assertSeenPlan(change, plan, seenPlan, 'overrode');
      if (plan.stale) {
        throw new UserError(
          'RAMPART_ERR_STALE',
          `plan ${plan.id} of change ${id} is stale; re-plan it ('rampart change plan ${id}') and override the new plan`,
          { changeId: id, planId: plan.id },
        );
      }
      const at = this.at();
      const blockers = planBlockerKeys(plan);
      const next = await w.updateChange(id, change.version, {
        override: { by: actor.name, reason, at, planId: plan.id, rulesetSha256: change.rulesetSha256, blockers },
        updatedAt: at,
      });
      await w.audit({
        action: 'change.override',
        target: `change:${id}`,
        before: changeSummary(change),
        after: { ...changeSummary(next), plan: plan.id, blockers: (plan.plan as Plan).blockers.map((b) => b.message) },
      });
    });
    return this.view(id);
  }

  async apply(actor: Actor, id: number, emergency: { reason: string } | undefined): Promise<ChangeView> {
    await this.refresh(actor, id);
    const policy = this.deps.config.current().policy;
    await this.store.write(actor, async (w) => {
      const { change, plan } = await withPlan(w, id);
      if (plan.stale) {
        throw new UserError(
          'RAMPART_ERR_STALE',
          `the plan of change ${id} is stale (a host's desired ruleset moved on after it); its approvals are void: re-plan with 'rampart change plan ${id}' and have it reviewed again`,
          { changeId: id, planId: plan.id },
        );
      }
      const now = this.deps.now();
      checkApply({ change, plan, policy, now, ...(emergency ? { emergency } : {}) });
      const at = now.toISOString();
      const freeze = activeFreeze(policy, now);
      assertTransition(change.state, 'applying', id);
      const next = await w.updateChange(id, change.version, {
        state: 'applying',
        updatedAt: at,
        ...(freeze && emergency ? { emergency: { by: actor.name, reason: emergency.reason, at } } : {}),
      });
      const jobs = [];
      for (const [step, host] of change.hosts.entries()) {
        jobs.push(await w.insertJob({ changeId: id, planId: plan.id, host, step, createdAt: at }));
      }
      await w.audit({
        action: 'change.apply',
        target: `change:${id}`,
        before: { state: change.state },
        after: {
          ...changeSummary(next),
          plan: plan.id,
          jobs: jobs.map((j) => ({ id: j.id, host: j.host, step: j.step })),
          ...(freeze ? { freeze: freeze.name } : {}),
        },
      });
    });
    return this.view(id);
  }

  /**
   * A job's outcome recorded by an admin by hand (for hosts without an agent, and the tests of the workflow):
   * `done` makes the change's ruleset the host's desired state, `failed` fails the change and cancels the rest.
   */
  async reportJob(actor: Actor, jobId: number, state: 'done' | 'failed', detail: string): Promise<ApplyJob> {
    return this.store.write(actor, async (w) => {
      const job = await w.getJob(jobId);
      if (!job) throw new UserError('RAMPART_ERR_NOT_FOUND', `job ${jobId} does not exist`);
      if (job.state === 'done' || job.state === 'failed' || job.state === 'cancelled') {
        throw new UserError('RAMPART_ERR_STATE', `job ${jobId} is already ${job.state}`);
      }
      const at = this.at();
      const outcome =
        state === 'done'
          ? await completeJob(w, job, at, 'admin', detail)
          : await failJob(w, job, at, 'failed', 'admin', detail);
      return outcome;
    });
  }
}
