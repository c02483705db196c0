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
import { RampartError, UserError } from '../errors.js';
import { detectFormat } from '../firewall/detect.js';
import type { MonitorEvent } from '../store/monitor-store.js';
import type {
  Actor,
  ApplyJob,
  ChangeRecord,
  ChangeTarget,
  DesiredState,
  JobEvent,
  PlanError,
  PlanRecord,
  ReviewRecord,
  RulesetFormat,
  Store,
  StoreReader,
  StoreWriter,
  TokenRecord,
} from '../store/types.js';
import { completeJob, failJob } from './job-outcome.js';
import type { PlanTicket } from './planner.js';
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

/** A change as answered: the ruleset text is left out of write answers and light reads (`rulesetBytes` says how big). */
export type ChangeOut = Omit<ChangeRecord, 'ruleset'> & { readonly ruleset?: string; readonly rulesetBytes: number };

export interface ChangeView {
  readonly change: ChangeOut;
  readonly plan: PlanRecord | undefined;
  readonly reviews: readonly ReviewRecord[];
  readonly approvals: ReturnType<typeof approvalStatus>;
  readonly jobs: readonly ApplyJob[];
  /** The rollout's timeline: every step the server and the agents recorded. */
  readonly events: readonly JobEvent[];
  /** Flags shown everywhere: overridden block, emergency apply, stale plan. */
  readonly flags: readonly string[];
  /** While the change is planning: queued (with how many plans ahead) or running (for how long). */
  readonly planning?: { readonly state: 'queued' | 'running'; readonly ahead?: number; readonly seconds?: number };
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

interface Computed {
  readonly plan: Plan;
  readonly baseRevisions: Record<string, number>;
}

/** A plan on its way: the planner's ticket and the host revisions it is computed against. */
interface Running {
  readonly ticket: PlanTicket;
  readonly baseRevisions: Record<string, number>;
}

/** Submits the plan of `ruleset` for `hosts` against their current desired rulesets (parsing included). */
async function startPlan(
  deps: ServerDeps,
  r: StoreReader,
  file: string,
  hosts: readonly string[],
  ruleset: string,
  format: RulesetFormat,
): Promise<Running> {
  const baseRevisions: Record<string, number> = {};
  const inputs = [];
  for (const host of hosts) {
    const d = await r.getDesired(host);
    baseRevisions[host] = d?.revision ?? 0;
    inputs.push({
      host,
      current: d ? { text: d.ruleset, format: d.format, file: `host:${host}@${d.revision}` } : null,
      desired: { text: ruleset, format, file },
    });
  }
  const today = deps.now().toISOString().slice(0, 10);
  const policy = deps.config.current().policy;
  const budget = { timeoutMs: policy.planTimeoutSeconds * 1000, memoryMiB: policy.planMemoryMiB };
  return { ticket: deps.planner.submit(deps.config.source(), inputs, today, { budget }), baseRevisions };
}

type Outcome =
  | { readonly state: 'done'; readonly plan: Plan }
  | { readonly state: 'failed'; readonly error: unknown }
  | {
      readonly state: 'pending';
    };

/** The plan's outcome if it settles within `ms`, else pending (the plan goes on). */
async function within(result: Promise<Plan>, ms: number): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const wait = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ state: 'pending' }), ms);
  });
  try {
    return await Promise.race([
      result.then(
        (plan): Outcome => ({ state: 'done', plan }),
        (error: unknown): Outcome => ({ state: 'failed', error }),
      ),
      wait,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A plan that ran out of its time or memory: recorded on the change (plan-failed), not refused outright. */
const BUDGET_CODES = new Set(['RAMPART_ERR_PLAN_TIMEOUT', 'RAMPART_ERR_PLAN_MEMORY']);
const isBudget = (e: unknown): e is UserError => e instanceof UserError && BUDGET_CODES.has(e.code);

function planErrorOf(e: unknown, at: string): PlanError {
  return e instanceof RampartError
    ? { code: e.code, message: e.message, at }
    : { code: 'RAMPART_ERR_INTERNAL', message: e instanceof Error ? e.message : String(e), at };
}

/** Hex SHA-256 on libuv's thread pool (WebCrypto): a 15 MiB ruleset does not hold the event loop for it. */
async function sha256Off(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', Buffer.from(text, 'utf8'));
  return Buffer.from(digest).toString('hex');
}

/** What a change-writing call answers: the view, and 202 when the plan goes on after the answer. */
export interface Answered {
  readonly view: ChangeView;
  readonly status: 200 | 201 | 202;
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

/** Write answers leave the ruleset text out: the caller sent it. */
const LIGHT = { ruleset: false } as const;

/** The states from which a change can be (re)planned or edited. */
const REPLANNABLE: readonly string[] = ['proposed', 'planning', 'plan-failed', 'planned', 'approved'];

export class ChangeService {
  constructor(private readonly deps: ServerDeps) {}

  private get store(): Store {
    return this.deps.store;
  }

  private at(): string {
    return this.deps.now().toISOString();
  }

  /**
   * A change with its plan, reviews, approvals, rollout and flags. `ruleset: false` leaves the ruleset text out (a
   * 100k-rule ruleset is megabytes of JSON to write on every poll).
   */
  async view(id: number, opts: { readonly ruleset?: boolean } = {}): Promise<ChangeView> {
    const record = await mustChange(this.store, id);
    const { ruleset, ...rest } = record;
    const change = record;
    const out: ChangeOut =
      opts.ruleset === false
        ? { ...rest, rulesetBytes: Buffer.byteLength(ruleset, 'utf8') }
        : { ...record, rulesetBytes: Buffer.byteLength(ruleset, 'utf8') };
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
    if (change.state === 'plan-failed' && change.planError) {
      flags.push(`PLAN FAILED (${change.planError.code}): ${change.planError.message}`);
    }
    const ticket = change.state === 'planning' ? this.deps.planning.get(id)?.ticket : undefined;
    const progress = ticket?.progress();
    const planning =
      progress === undefined
        ? undefined
        : progress.state === 'queued'
          ? { state: 'queued' as const, ahead: progress.ahead }
          : { state: 'running' as const, seconds: Math.round((Date.now() - progress.startedAt) / 1000) };
    return { change: out, plan, reviews, approvals, jobs, events, flags, ...(planning ? { planning } : {}) };
  }

  /**
   * Proposes a change and plans it. The plan (parsing included) runs on the planner's threads; when it is done
   * within `deps.planWaitMs` the change is stored with it (201), a refused ruleset is refused with nothing stored;
   * otherwise the change is stored in state planning (202) and the plan goes on, ending in planned or plan-failed.
   */
  async propose(actor: Actor, input: ProposeInput): Promise<Answered> {
    const config = this.deps.config.current();
    const hosts = resolveTarget(config, input.target);
    const file = input.file ?? 'ruleset';
    const format = input.format ?? detectFormat(input.ruleset);
    const sha = await sha256Off(input.ruleset);
    // The plan is computed outside the write lock; if a host's desired state moves meanwhile, compute again.
    for (let attempt = 0; ; attempt++) {
      const run = await startPlan(this.deps, this.store, file, hosts, input.ruleset, format);
      const outcome = await within(run.ticket.result, this.deps.planWaitMs);
      if (outcome.state === 'failed' && !isBudget(outcome.error)) throw outcome.error;
      const stored = await this.store.write(actor, async (w) => {
        if (outcome.state === 'done' && !sameRevisions(run.baseRevisions, await currentRevisions(w, hosts))) {
          return undefined;
        }
        const at = this.at();
        const proposed = await w.insertChange({
          target: input.target,
          hosts,
          author: actor.name,
          reason: input.reason,
          ticket: input.ticket ?? null,
          format,
          ruleset: input.ruleset,
          rulesetSha256: sha,
          createdAt: at,
          updatedAt: at,
          ...(outcome.state === 'done' ? {} : { state: 'planning' as const }),
          ...(input.rollbackOf !== undefined ? { rollbackOf: input.rollbackOf } : {}),
        });
        await w.audit({ action: 'change.propose', target: `change:${proposed.id}`, after: changeSummary(proposed) });
        if (outcome.state === 'done') {
          await this.storePlan(w, proposed, { plan: outcome.plan, baseRevisions: run.baseRevisions }, at);
          return { id: proposed.id, version: undefined };
        }
        if (outcome.state === 'failed') {
          await this.planFailed(w, proposed, outcome.error, at);
          return { id: proposed.id, version: undefined };
        }
        return { id: proposed.id, version: proposed.version };
      });
      if (stored !== undefined) {
        if (stored.version !== undefined) this.follow(actor, stored.id, stored.version, run);
        return { view: await this.view(stored.id, LIGHT), status: stored.version !== undefined ? 202 : 201 };
      }
      if (attempt >= 3)
        throw new UserError('RAMPART_ERR_CONFLICT', 'the hosts kept changing while planning; try again');
    }
  }

  /**
   * Carries a plan that outlived its request to its end: stores it (planned) or its failure (plan-failed) if the
   * change is still at `version` in state planning; computes again when a host moved on meanwhile. A newer edit or
   * plan of the change supersedes this one, which then ends silently.
   */
  private follow(actor: Actor, id: number, version: number, run: Running): void {
    this.deps.planning.set(id, { version, ticket: run.ticket });
    const settle = async (outcome: Outcome): Promise<Running | undefined> =>
      this.store.write(actor, async (w) => {
        const c = await w.getChange(id);
        if (!c || c.version !== version || c.state !== 'planning') return undefined;
        const at = this.at();
        if (outcome.state === 'failed') {
          await this.planFailed(w, c, outcome.error, at);
          return undefined;
        }
        if (outcome.state !== 'done') return undefined;
        if (!sameRevisions(run.baseRevisions, await currentRevisions(w, c.hosts))) {
          return startPlan(this.deps, w, `change:${id}`, c.hosts, c.ruleset, c.format);
        }
        await this.storePlan(w, c, { plan: outcome.plan, baseRevisions: run.baseRevisions }, at);
        return undefined;
      });
    void run.ticket.result
      .then(
        (plan) => settle({ state: 'done', plan }),
        (error: unknown) => settle({ state: 'failed', error }),
      )
      .then(
        (again) => {
          if (this.deps.planning.get(id)?.ticket === run.ticket) this.deps.planning.delete(id);
          // Planned (waiting for review) or plan-failed after its request answered: open pages re-read changes.
          this.deps.hub.publish({ topic: 'changes' });
          if (again) this.follow(actor, id, version, again);
        },
        () => {
          // The store is gone (shutting down): the change stays planning and is resumed at the next start.
          if (this.deps.planning.get(id)?.ticket === run.ticket) this.deps.planning.delete(id);
        },
      );
  }

  /** Re-plans, after a restart, every change left planning by the previous process. */
  async resumePlanning(actor: Actor): Promise<number> {
    const waiting = await this.store.listChanges({ state: 'planning' });
    for (const c of waiting) {
      if (this.deps.planning.has(c.id)) continue;
      const run = await startPlan(this.deps, this.store, `change:${c.id}`, c.hosts, c.ruleset, c.format);
      this.follow(actor, c.id, c.version, run);
    }
    return waiting.length;
  }

  private async planFailed(w: StoreWriter, c: ChangeRecord, error: unknown, at: string): Promise<void> {
    const planError = planErrorOf(error, at);
    assertTransition(c.state, 'plan-failed', c.id);
    const next = await w.updateChange(c.id, c.version, { state: 'plan-failed', planError, updatedAt: at });
    await w.audit({
      action: 'change.plan-failed',
      target: `change:${c.id}`,
      before: { state: c.state },
      after: { state: next.state, code: planError.code, message: planError.message, rulesetSha256: c.rulesetSha256 },
    });
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
      ...(c.planError ? { planError: null } : {}),
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
      const { view } = await this.propose(actor, {
        target: g.target,
        ruleset: g.prev.ruleset,
        format: g.prev.format,
        file: `rollback-of-change-${id}`,
        reason: `rollback of change ${id}: ${reason}`,
        ...(c.ticket ? { ticket: c.ticket } : {}),
        rollbackOf: id,
      });
      views.push(view);
    }
    return views;
  }

  /**
   * Recomputes the plan when the change or a host moved on (a current plan is kept: approvals stay valid), or when
   * the last one failed. Like a proposal it answers 202 when the plan takes longer than the answer may wait.
   */
  async replan(actor: Actor, id: number): Promise<Answered> {
    for (let attempt = 0; ; attempt++) {
      const c = await mustChange(this.store, id);
      if (!REPLANNABLE.includes(c.state)) assertTransition(c.state, 'planned', id);
      if (c.state === 'planning' && this.deps.planning.has(id))
        return { view: await this.view(id, LIGHT), status: 200 };
      const latest = await this.store.latestPlan(id);
      if (
        (c.state === 'planned' || c.state === 'approved') &&
        latest &&
        !latest.stale &&
        (await staleReason(this.store, c, latest)) === undefined
      ) {
        return { view: await this.view(id, LIGHT), status: 200 };
      }
      const run = await startPlan(this.deps, this.store, `change:${id}`, c.hosts, c.ruleset, c.format);
      const outcome = await within(run.ticket.result, this.deps.planWaitMs);
      const following = await this.store.write(actor, async (w) => {
        const now = await mustChange(w, id);
        if (now.version !== c.version) return false;
        if (outcome.state === 'done' && !sameRevisions(run.baseRevisions, await currentRevisions(w, c.hosts))) {
          return false;
        }
        const at = this.at();
        const fresh = await invalidate(w, now, 're-planned', at);
        return this.afterPlan(w, fresh, outcome, run, at);
      });
      if (following !== false) {
        if (typeof following === 'number') this.follow(actor, id, following, run);
        return { view: await this.view(id, LIGHT), status: typeof following === 'number' ? 202 : 200 };
      }
      if (attempt >= 3)
        throw new UserError('RAMPART_ERR_CONFLICT', `change ${id} kept changing while planning; try again`);
    }
  }

  /**
   * Inside a write, after an edit or re-plan: stores the plan (done), the failure (failed: any refusal of a stored
   * ruleset, the config may have changed) or moves the change to planning (pending) and returns its version to
   * follow.
   */
  private async afterPlan(
    w: StoreWriter,
    c: ChangeRecord,
    outcome: Outcome,
    run: Running,
    at: string,
  ): Promise<number | true> {
    if (outcome.state === 'done') {
      await this.storePlan(w, c, { plan: outcome.plan, baseRevisions: run.baseRevisions }, at);
      return true;
    }
    if (outcome.state === 'failed') {
      await this.planFailed(w, c, outcome.error, at);
      return true;
    }
    assertTransition(c.state, 'planning', c.id);
    const next = await w.updateChange(c.id, c.version, { state: 'planning', updatedAt: at });
    await w.audit({
      action: 'change.planning',
      target: `change:${c.id}`,
      before: { state: c.state },
      after: { state: next.state, rulesetSha256: next.rulesetSha256 },
    });
    return next.version;
  }

  /**
   * Edits the ruleset or reason: approvals are void and the plan is recomputed. A new ruleset is planned before
   * anything is stored: one the planner refuses (syntax, a table the agent does not manage) is refused with nothing
   * changed.
   */
  async update(
    actor: Actor,
    id: number,
    patch: { ruleset?: string; format?: RulesetFormat; file?: string; reason?: string },
  ): Promise<Answered> {
    const c = await mustChange(this.store, id);
    if (!isAuthor(c, actor.name) && actor.role !== 'admin') {
      throw new UserError(
        'RAMPART_ERR_FORBIDDEN',
        `only an author (${c.authors.join(', ')}) or an admin may edit change ${id}`,
      );
    }
    if (!REPLANNABLE.includes(c.state)) assertTransition(c.state, 'planned', id);
    const ruleset = patch.ruleset;
    const format = ruleset !== undefined ? (patch.format ?? detectFormat(ruleset)) : undefined;
    let run: Running | undefined;
    let outcome: Outcome | undefined;
    const sha = ruleset !== undefined ? await sha256Off(ruleset) : undefined;
    if (ruleset !== undefined && format !== undefined) {
      run = await startPlan(this.deps, this.store, patch.file ?? 'ruleset', c.hosts, ruleset, format);
      outcome = await within(run.ticket.result, this.deps.planWaitMs);
      if (outcome.state === 'failed' && !isBudget(outcome.error)) throw outcome.error;
    }
    const following = await this.store.write(actor, async (w) => {
      const now = await mustChange(w, id);
      if (now.version !== c.version) {
        throw new UserError('RAMPART_ERR_CONFLICT', `change ${id} was changed by someone else meanwhile; reload it`);
      }
      const at = this.at();
      const invalidated = await invalidate(w, now, 'edited', at);
      const newRuleset = ruleset !== undefined && format !== undefined;
      // Whoever shaped the ruleset is an author from now on, and may not approve it; an override was for the old
      // ruleset and lapses with it.
      const authors = newRuleset && !isAuthor(now, actor.name) ? [...now.authors, actor.name] : undefined;
      const next = await w.updateChange(id, invalidated.version, {
        updatedAt: at,
        ...(newRuleset ? { ruleset, format, ...(sha ? { rulesetSha256: sha } : {}) } : {}),
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
      if (!run || !outcome) return undefined;
      if (outcome.state === 'done' && !sameRevisions(run.baseRevisions, await currentRevisions(w, next.hosts))) {
        return undefined; // a host moved on while planning: the re-plan below computes it again
      }
      return this.afterPlan(w, next, outcome, run, at);
    });
    if (typeof following === 'number' && run) {
      this.follow(actor, id, following, run);
      return { view: await this.view(id, LIGHT), status: 202 };
    }
    if (following === true) return { view: await this.view(id, LIGHT), status: 200 };
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
    return this.view(id, LIGHT);
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
    return this.view(id, LIGHT);
  }

  async apply(actor: Actor, id: number, emergency: { reason: string } | undefined): Promise<ChangeView> {
    await this.refresh(actor, id);
    const policy = this.deps.config.current().policy;
    const bypassed: Omit<MonitorEvent, 'id'>[] = [];
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
      // The safety net bypassed (alerting's ChangeEmergency and ChangeOverride), written once this commits.
      const subject = `change:${id}`;
      if (next.emergency) {
        bypassed.push({
          at,
          kind: 'change.emergency',
          subject,
          data: {
            change: id,
            hosts: change.hosts,
            by: next.emergency.by,
            reason: next.emergency.reason,
            ...(freeze ? { freeze: freeze.name } : {}),
          },
        });
      }
      if (plan.blocked && change.override) {
        bypassed.push({
          at,
          kind: 'change.override',
          subject,
          data: {
            change: id,
            hosts: change.hosts,
            by: change.override.by,
            reason: change.override.reason,
            plan: plan.id,
            blockers: (change.override.blockers ?? []).join('; '),
            appliedBy: actor.name,
          },
        });
      }
    });
    await this.deps.alerting.recordEvents(bypassed);
    return this.view(id, LIGHT);
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
