/**
 * The change policy's rules (issue 5): which state a change may move to, who may review it, when it may be applied,
 * and in which order its hosts are rolled out. Pure: the store records and the config come in, the clock is a
 * parameter, and a refusal is a UserError whose code the API maps to its HTTP status (src/errors.ts).
 *
 * The server calls these inside its write transaction, after reading the records, so the check and the write it
 * guards see the same state.
 */
import { didYouMean } from '../config/did-you-mean.js';
import type { ChangePolicy, FreezeWindow, RampartConfig } from '../config/types.js';
import { UserError } from '../errors.js';
import {
  type ChangeRecord,
  type ChangeState,
  type ChangeTarget,
  type PlanRecord,
  type ReviewRecord,
  type Role,
  roleAtLeast,
  type TokenRecord,
} from '../store/types.js';

/**
 * The allowed moves. Besides the straight path (proposed -> planned -> approved | rejected -> applying -> applied |
 * rolled-back | failed):
 * - planned -> planned: re-plan (the change or a host's desired state moved on; the old plan turns stale);
 * - approved -> planned: re-plan after approval; the approvals are voided with the old plan;
 * - -> planning -> planned | plan-failed: a plan that takes longer than the answer may wait goes on in the
 *   background (the proposal is answered 202); plan-failed (over its time or memory budget) can be re-planned or
 *   edited;
 * - applied -> rolled-back: an applied change is rolled back by a new change (`rampart change rollback`) that
 *   proposes each host's previous desired ruleset and goes through the same plan, review and safe apply; when it
 *   is applied, the original becomes rolled-back.
 * rejected, rolled-back and failed are final: a new attempt is a new change.
 */
export const TRANSITIONS: Readonly<Record<ChangeState, readonly ChangeState[]>> = {
  proposed: ['planned', 'planning'],
  planning: ['planned', 'planning', 'plan-failed'],
  'plan-failed': ['planning', 'planned', 'plan-failed'],
  planned: ['planned', 'planning', 'approved', 'rejected'],
  approved: ['applying', 'planned', 'planning'],
  rejected: [],
  applying: ['applied', 'rolled-back', 'failed'],
  applied: ['rolled-back'],
  'rolled-back': [],
  failed: [],
};

export function canTransition(from: ChangeState, to: ChangeState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Throws RAMPART_ERR_STATE unless `from -> to` is allowed, naming what the change can become instead. */
export function assertTransition(from: ChangeState, to: ChangeState, changeId: number): void {
  if (canTransition(from, to)) return;
  const allowed = TRANSITIONS[from];
  const options = allowed.length > 0 ? allowed.join(', ') : `nothing, ${from} is final`;
  throw new UserError(
    'RAMPART_ERR_STATE',
    `change ${changeId} is ${from}; it cannot become ${to} (from ${from} it can become: ${options})`,
    { changeId, from, to, allowed: [...allowed] },
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Reviews

export interface Reviewer {
  readonly name: string;
  readonly role: Role;
  /**
   * Who minted the reviewer's token, nearest first, each with when: the token's own minter, then the minter of
   * that minter's token, and so on (see `mintLineage`). Empty for tokens minted locally (`rampart init`).
   */
  readonly mintedBy?: readonly { readonly name: string; readonly at: string }[];
}

export type Verdict = ReviewRecord['verdict'];

/** People are named case-insensitively: 'Olga' and 'olga' are one person (token names are unique that way). */
export function personKey(name: string): string {
  return name.normalize('NFKC').toLowerCase();
}

export function samePerson(a: string, b: string): boolean {
  return personKey(a) === personKey(b);
}

/** Whether `name` shaped the change's ruleset (proposed it or edited it). */
export function isAuthor(change: ChangeRecord, name: string): boolean {
  return change.authors.some((a) => samePerson(a, name));
}

/**
 * The mint lineage of a token: who minted it, who minted the minter's token, ... (nearest first), following the
 * recorded token ids (`createdByToken`); stops at a locally minted token or a cycle.
 */
export function mintLineage(
  token: TokenRecord,
  tokens: ReadonlyMap<string, TokenRecord>,
): { readonly name: string; readonly at: string }[] {
  const out: { name: string; at: string }[] = [];
  const seen = new Set<string>([token.id]);
  let t: TokenRecord | undefined = token;
  while (t?.createdByToken) {
    out.push({ name: t.createdBy, at: t.createdAt });
    if (seen.has(t.createdByToken)) break;
    seen.add(t.createdByToken);
    t = tokens.get(t.createdByToken);
  }
  return out;
}

/**
 * Why a reviewer is too close to the change's authors to be the second pair of eyes, or undefined. Refused: an
 * author (the proposer, or anyone who edited the ruleset); a token minted by an author (at any time); a token
 * whose lineage passes through a token an author minted after the change was proposed (an identity made up for
 * this change, one hop removed).
 */
export function authorshipConflict(change: ChangeRecord, reviewer: Reviewer, verdict: Verdict): string | undefined {
  const tail =
    verdict === 'approve'
      ? 'the author cannot approve their own change'
      : 'the author cannot reject their own change either (reviews come from someone else; propose a new change instead)';
  if (samePerson(change.author, reviewer.name)) return `${reviewer.name} proposed change ${change.id}: ${tail}`;
  if (isAuthor(change, reviewer.name)) {
    return `${reviewer.name} edited the ruleset of change ${change.id} and is one of its authors (${change.authors.join(', ')}): ${tail}`;
  }
  const lineage = reviewer.mintedBy ?? [];
  const [direct] = lineage;
  if (direct && isAuthor(change, direct.name)) {
    return `the token of ${reviewer.name} was minted by ${direct.name}, an author of change ${change.id}: an author cannot review their change through a token they issued`;
  }
  for (const hop of lineage.slice(1)) {
    if (isAuthor(change, hop.name) && hop.at >= change.createdAt) {
      return `the token of ${reviewer.name} descends from a token that ${hop.name}, an author of change ${change.id}, minted at ${hop.at}, after the change was proposed: an author cannot review their change through identities they issued`;
    }
  }
  return undefined;
}

/** The blockers of a stored plan (the plan is stored as data: read it defensively). */
function planBlockers(plan: PlanRecord): { kind: string; host: string; message: string }[] {
  const blockers = (plan.plan as { blockers?: unknown } | null)?.blockers;
  if (!Array.isArray(blockers)) return [];
  return blockers.flatMap((b) => {
    const x = b as { kind?: unknown; host?: unknown; message?: unknown } | null;
    return typeof x?.message === 'string'
      ? [{ kind: String(x.kind ?? ''), host: String(x.host ?? ''), message: x.message }]
      : [];
  });
}

/** The blockers of a stored plan, in words. */
function blockerText(plan: PlanRecord): string {
  const messages = planBlockers(plan).map((b) => b.message);
  return messages.length > 0 ? messages.join('; ') : 'see the plan';
}

/**
 * A blocker's identity across re-plans: kind, host and message without its trailing parenthesis (which says what
 * the state was before, and may change when another change lands first).
 */
export function blockerKey(b: { readonly kind: string; readonly host: string; readonly message: string }): string {
  return `${b.kind} ${b.host}: ${b.message.replace(/\s*\([^()]*\)\s*$/, '')}`;
}

/** The keys of a stored plan's blockers (what an override of that plan covers). */
export function planBlockerKeys(plan: PlanRecord): string[] {
  return planBlockers(plan).map(blockerKey);
}

/**
 * Whether the change's override lets this plan through: it was given for this very ruleset (SHA-256) and lists
 * every blocker the plan has. An edit of the ruleset, or a re-plan with a new blocker, makes it lapse.
 */
export function overrideCovers(change: ChangeRecord, plan: PlanRecord): boolean {
  const o = change.override;
  if (o === null || o.rulesetSha256 === undefined || o.blockers === undefined) return false;
  if (o.rulesetSha256 !== change.rulesetSha256) return false;
  const covered = new Set(o.blockers);
  return planBlockerKeys(plan).every((k) => covered.has(k));
}

/** Why an existing override does not cover the plan, in words (undefined when there is none, or it covers). */
export function overrideGap(change: ChangeRecord, plan: PlanRecord): string | undefined {
  const o = change.override;
  if (o === null || overrideCovers(change, plan)) return undefined;
  if (o.rulesetSha256 === undefined || o.blockers === undefined) {
    return `the override by ${o.by} was recorded before overrides were bound to a ruleset and covers nothing`;
  }
  if (o.rulesetSha256 !== change.rulesetSha256) {
    return `the override by ${o.by} was for another ruleset (sha256 ${o.rulesetSha256.slice(0, 12)}, now ${change.rulesetSha256.slice(0, 12)}): it lapsed when the ruleset was edited`;
  }
  const covered = new Set(o.blockers);
  const fresh = planBlockers(plan).filter((b) => !covered.has(blockerKey(b)));
  return `the override by ${o.by} (plan ${o.planId}) does not cover: ${fresh.map((b) => b.message).join('; ')}`;
}

function assertFresh(change: ChangeRecord, plan: PlanRecord, doing: string): void {
  if (plan.changeId !== change.id || plan.stale) {
    throw new UserError(
      'RAMPART_ERR_STALE',
      `plan ${plan.id} of change ${change.id} is stale: the change or a host's desired state moved on after it was computed; re-plan the change before ${doing} it`,
      { changeId: change.id, planId: plan.id },
    );
  }
}

/**
 * Refuses a decision taken on a plan that is no longer the change's current one: the reviewer (or the admin who
 * overrides) read plan `seen`, and the change has moved on to `plan` since.
 */
export function assertSeenPlan(change: ChangeRecord, plan: PlanRecord, seen: number, doing: string): void {
  if (seen === plan.id) return;
  throw new UserError(
    'RAMPART_ERR_STALE',
    `you ${doing} plan ${seen} of change ${change.id}, but its current plan is ${plan.id} (computed ${plan.createdAt}; the ruleset or a host moved on): read plan ${plan.id} ('rampart change show ${change.id}') and decide on that`,
    { changeId: change.id, seenPlan: seen, currentPlan: plan.id },
  );
}

/**
 * Refuses a review the policy does not allow; returns nothing when it may be recorded. Checked in this order: the
 * change is planned, the reviewer read the current plan and it is fresh, the reviewer may review at all (role,
 * authorship and token lineage, approvers list), has not reviewed this plan yet, and a blocked plan has an admin
 * override covering it before anyone approves it.
 */
export function checkReview(args: {
  readonly change: ChangeRecord;
  readonly plan: PlanRecord;
  readonly reviews: readonly ReviewRecord[];
  readonly reviewer: Reviewer;
  readonly verdict: Verdict;
  readonly policy: ChangePolicy;
  /** The plan id the reviewer read (sent with the review). */
  readonly seenPlan: number;
}): void {
  const { change, plan, reviews, reviewer, verdict, policy } = args;
  const details = { changeId: change.id, planId: plan.id, reviewer: reviewer.name, verdict };
  if (change.state !== 'planned') {
    throw new UserError(
      'RAMPART_ERR_STATE',
      `change ${change.id} is ${change.state}; only a planned change can be reviewed`,
      { ...details, from: change.state, allowed: ['planned'] },
    );
  }
  assertSeenPlan(change, plan, args.seenPlan, verdict === 'approve' ? 'approved' : 'rejected');
  assertFresh(change, plan, 'reviewing');
  if (!roleAtLeast(reviewer.role, 'approver')) {
    throw new UserError(
      'RAMPART_ERR_REVIEW',
      `${reviewer.name} has the ${reviewer.role} role; reviewing a change needs the approver or admin role`,
      { ...details, role: reviewer.role },
    );
  }
  const conflict = authorshipConflict(change, reviewer, verdict);
  if (conflict !== undefined) {
    throw new UserError('RAMPART_ERR_REVIEW', conflict, { ...details, authors: [...change.authors] });
  }
  if (policy.approvers.length > 0 && !policy.approvers.some((a) => samePerson(a, reviewer.name))) {
    throw new UserError(
      'RAMPART_ERR_REVIEW',
      `${reviewer.name} is not one of the approvers of this site (policy.approvers: ${policy.approvers.join(', ')})`,
      { ...details, approvers: [...policy.approvers] },
    );
  }
  const earlier = reviews.find(
    (r) => r.planId === plan.id && samePerson(r.reviewer, reviewer.name) && r.voidedAt === null,
  );
  if (earlier) {
    throw new UserError(
      'RAMPART_ERR_REVIEW',
      `${reviewer.name} already reviewed plan ${plan.id} of change ${change.id} (${earlier.verdict === 'approve' ? 'approved' : 'rejected'} at ${earlier.at})`,
      { ...details, reviewId: earlier.id },
    );
  }
  if (verdict === 'approve' && plan.blocked && !overrideCovers(change, plan)) {
    const gap = overrideGap(change, plan);
    throw new UserError(
      'RAMPART_ERR_BLOCKED',
      `the plan is blocked: ${blockerText(plan)}; ${gap ? `${gap}; ` : ''}an admin must record an override of plan ${plan.id} with a reason`,
      details,
    );
  }
}

export interface ApprovalStatus {
  /** Distinct reviewers whose approval counts, in the order they approved. */
  readonly approvers: readonly string[];
  readonly required: number;
  /** Enough approvals and no rejection. */
  readonly satisfied: boolean;
  /** Distinct reviewers who rejected. */
  readonly rejectedBy: readonly string[];
}

/**
 * Where the reviews stand. Only reviews of the current plan count (`planId`, when given), never voided ones, never
 * an author's; when the policy lists approvers, only their approvals count (so an approver removed from the list
 * by a config reload no longer counts). Names are compared case-insensitively.
 */
export function approvalStatus(
  reviews: readonly ReviewRecord[],
  policy: ChangePolicy,
  authors: readonly string[],
  planId?: number,
): ApprovalStatus {
  const approvers: string[] = [];
  const rejectedBy: string[] = [];
  const has = (list: readonly string[], name: string) => list.some((n) => samePerson(n, name));
  for (const r of reviews) {
    if (r.voidedAt !== null || has(authors, r.reviewer)) continue;
    if (planId !== undefined && r.planId !== planId) continue;
    if (r.verdict === 'reject') {
      if (!has(rejectedBy, r.reviewer)) rejectedBy.push(r.reviewer);
    } else if (policy.approvers.length === 0 || has(policy.approvers, r.reviewer)) {
      if (!has(approvers, r.reviewer)) approvers.push(r.reviewer);
    }
  }
  return {
    approvers,
    required: policy.approvals,
    satisfied: rejectedBy.length === 0 && approvers.length >= policy.approvals,
    rejectedBy,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Freeze windows

const DAY_MS = 86_400_000;

/** When the occurrence of `window` that contains `now` ends (undefined when `now` is outside the window). */
export function freezeEnd(window: FreezeWindow, now: Date): Date | undefined {
  const t = now.getTime();
  if (window.kind === 'once') {
    const start = Date.parse(window.start);
    const end = Date.parse(window.end);
    return t >= start && t < end ? new Date(end) : undefined;
  }
  const midnight = t - (((t % DAY_MS) + DAY_MS) % DAY_MS);
  const minute = (t - midnight) / 60_000;
  if (!window.days.includes(now.getUTCDay()) || minute < window.from || minute >= window.to) return undefined;
  return new Date(midnight + window.to * 60_000);
}

/** The first window (in policy order) containing `now`, or undefined. Weekly windows are in UTC; ends are exclusive. */
export function activeFreeze(policy: ChangePolicy, now: Date): FreezeWindow | undefined {
  return policy.freeze.find((w) => freezeEnd(w, now) !== undefined);
}

// ---------------------------------------------------------------------------------------------------------------
// Apply

export interface ApplyDecision {
  /** The freeze window `now` is in, if any. */
  readonly freeze: FreezeWindow | undefined;
  /** True when the change goes out inside a freeze on an emergency reason: record it on the change, flag it. */
  readonly emergency: boolean;
}

/**
 * Refuses to apply unless the change is approved on a current plan, and outside freeze windows unless as an
 * emergency with a reason. Outside a freeze an emergency reason is accepted but not needed, and not flagged.
 */
export function checkApply(args: {
  readonly change: ChangeRecord;
  readonly plan: PlanRecord;
  readonly policy: ChangePolicy;
  readonly now: Date;
  readonly emergency?: { readonly reason: string };
}): ApplyDecision {
  const { change, plan, policy, now, emergency } = args;
  if (change.state !== 'approved') {
    throw new UserError(
      'RAMPART_ERR_STATE',
      `change ${change.id} is ${change.state}; only an approved change can be applied`,
      { changeId: change.id, from: change.state, to: 'applying', allowed: ['approved'] },
    );
  }
  assertFresh(change, plan, 'applying');
  // Approval refuses blocked plans without a covering override; checked again in case it lapsed since.
  if (plan.blocked && !overrideCovers(change, plan)) {
    const gap = overrideGap(change, plan);
    throw new UserError(
      'RAMPART_ERR_BLOCKED',
      `the plan is blocked: ${blockerText(plan)}; ${gap ? `${gap}; ` : ''}an admin must record an override of plan ${plan.id} with a reason`,
      { changeId: change.id, planId: plan.id },
    );
  }
  if (emergency !== undefined && emergency.reason.trim() === '') {
    throw new UserError('RAMPART_ERR_VALIDATION', 'an emergency change needs a reason: say why it cannot wait', {
      changeId: change.id,
      field: 'emergency.reason',
    });
  }
  const freeze = activeFreeze(policy, now);
  if (freeze === undefined) return { freeze: undefined, emergency: false };
  if (emergency === undefined) {
    const until = freezeEnd(freeze, now)?.toISOString() ?? 'its end';
    throw new UserError(
      'RAMPART_ERR_FROZEN',
      `change ${change.id} cannot be applied now: freeze window '${freeze.name}' is in force until ${until}; apply it after that, or apply it now as an emergency change by giving an emergency reason (it is flagged on the change and in the audit log)`,
      { changeId: change.id, window: freeze.name, until },
    );
  }
  return { freeze, emergency: true };
}

// ---------------------------------------------------------------------------------------------------------------
// Rollout

/** The canary hosts that are among `hosts` first, in policy order; then the rest in the given order. */
export function rolloutOrder(hosts: readonly string[], canary: readonly string[]): string[] {
  const first = canary.filter((h, i) => hosts.includes(h) && canary.indexOf(h) === i);
  return [...first, ...hosts.filter((h) => !first.includes(h))];
}

/** The hosts a change targets, in rollout order; RAMPART_ERR_NOT_FOUND for an unknown host or an empty group. */
export function resolveTarget(config: RampartConfig, target: ChangeTarget): string[] {
  const hostNames = config.hosts.map((h) => h.name);
  if (target.kind === 'host') {
    if (!hostNames.includes(target.name)) {
      throw new UserError(
        'RAMPART_ERR_NOT_FOUND',
        `unknown host '${target.name}'${didYouMean(target.name, hostNames)}; ${hostNames.length > 0 ? `the hosts of ${config.file} are: ${hostNames.join(', ')}` : `${config.file} declares no hosts`}`,
        { target, known: hostNames },
      );
    }
    return [target.name];
  }
  const members = config.hosts.filter((h) => h.group === target.name).map((h) => h.name);
  if (members.length === 0) {
    const groups = [...new Set(config.hosts.flatMap((h) => (h.group ? [h.group] : [])))];
    throw new UserError(
      'RAMPART_ERR_NOT_FOUND',
      `no host is in group '${target.name}'${didYouMean(target.name, groups)}; ${groups.length > 0 ? `the groups of ${config.file} are: ${groups.join(', ')}` : `${config.file} declares no groups`}`,
      { target, known: groups },
    );
  }
  return rolloutOrder(members, config.policy.canary);
}
