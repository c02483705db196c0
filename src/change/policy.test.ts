import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, parseConfig } from '../config/load.js';
import type { ChangePolicy, FreezeWindow } from '../config/types.js';
import { UserError } from '../errors.js';
import {
  CHANGE_STATES,
  type ChangeRecord,
  type ChangeState,
  type PlanRecord,
  type ReviewRecord,
} from '../store/types.js';
import {
  activeFreeze,
  approvalStatus,
  assertTransition,
  blockerKey,
  checkApply,
  checkReview,
  freezeEnd,
  mintLineage,
  overrideCovers,
  planBlockerKeys,
  resolveTarget,
  rolloutOrder,
  TRANSITIONS,
} from './policy.js';

const SHOP = parseConfig(
  readFileSync(join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'config', 'shop.yaml'), 'utf8'),
  'shop.yaml',
);

const change = (over: Partial<ChangeRecord> = {}): ChangeRecord => ({
  id: 12,
  target: { kind: 'group', name: 'web' },
  hosts: ['web1', 'web2'],
  author: 'alice',
  reason: 'open tcp/8443 for the new checkout',
  ticket: 'OPS-7',
  format: 'nft-text',
  ruleset: 'table inet filter {}\n',
  state: 'planned',
  version: 2,
  createdAt: '2025-06-01T10:00:00.000Z',
  updatedAt: '2025-06-01T10:00:01.000Z',
  authors: ['alice'],
  rulesetSha256: 'a'.repeat(64),
  planError: null,
  override: null,
  emergency: null,
  rollbackOf: null,
  ...over,
});

const plan = (over: Partial<PlanRecord> = {}): PlanRecord => ({
  id: 5,
  changeId: 12,
  createdAt: '2025-06-01T10:00:01.000Z',
  changeVersion: 1,
  baseRevisions: { web1: 3, web2: 3 },
  blocked: false,
  risk: 'low',
  stale: false,
  plan: { blockers: [] },
  ...over,
});

const BLOCKED = plan({
  blocked: true,
  risk: 'critical',
  plan: {
    blockers: [
      {
        host: 'web1',
        kind: 'closes-public-service',
        message: 'closes tcp/443 of service shop on web1',
        subject: 'shop',
      },
      {
        host: 'web2',
        kind: 'closes-public-service',
        message: 'closes tcp/443 of service shop on web2',
        subject: 'shop',
      },
    ],
  },
});

let reviewId = 0;
const review = (reviewer: string, verdict: 'approve' | 'reject' = 'approve', over: Partial<ReviewRecord> = {}) => ({
  id: ++reviewId,
  changeId: 12,
  planId: 5,
  reviewer,
  verdict,
  comment: '',
  at: '2025-06-01T11:00:00.000Z',
  voidedAt: null,
  ...over,
});

/** The UserError `fn` throws (fails the test when it throws nothing or something else). */
const refusal = (fn: () => unknown): UserError => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a UserError');
};

describe('change state transitions', () => {
  // Every pair of states: allowed exactly when listed here (the path plus re-plan and rollback).
  const ALLOWED = new Set([
    'proposed->planned',
    'proposed->planning',
    'planning->planning',
    'planning->planned',
    'planning->plan-failed',
    'plan-failed->planning',
    'plan-failed->planned',
    'plan-failed->plan-failed',
    'planned->planning',
    'approved->planning',
    'planned->planned',
    'planned->approved',
    'planned->rejected',
    'approved->applying',
    'approved->planned',
    'applying->applied',
    'applying->rolled-back',
    'applying->failed',
    'applied->rolled-back',
  ]);
  const pairs = CHANGE_STATES.flatMap((from) => CHANGE_STATES.map((to) => [from, to] as const));

  it('lists a rule for every state', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...CHANGE_STATES].sort());
  });

  it.each(pairs.filter(([f, t]) => ALLOWED.has(`${f}->${t}`)))('allows %s -> %s', (from, to) => {
    expect(() => assertTransition(from, to, 12)).not.toThrow();
  });

  it.each(pairs.filter(([f, t]) => !ALLOWED.has(`${f}->${t}`)))(
    'refuses %s -> %s, saying what is allowed',
    (from, to) => {
      const e = refusal(() => assertTransition(from, to, 12));
      expect(e.code).toBe('RAMPART_ERR_STATE');
      expect(e.status).toBe(409);
      expect(e.message).toMatch(
        new RegExp(`^change 12 is ${from}; it cannot become ${to} \\(from ${from} it can become: `),
      );
      expect(e.details).toEqual({ changeId: 12, from, to, allowed: TRANSITIONS[from as ChangeState] });
    },
  );

  it('words the refusal for a final state and for a state with choices', () => {
    expect(refusal(() => assertTransition('rejected', 'applying', 12)).message).toBe(
      'change 12 is rejected; it cannot become applying (from rejected it can become: nothing, rejected is final)',
    );
    expect(refusal(() => assertTransition('proposed', 'approved', 3)).message).toBe(
      'change 3 is proposed; it cannot become approved (from proposed it can become: planned, planning)',
    );
    expect(refusal(() => assertTransition('approved', 'applied', 3)).message).toBe(
      'change 3 is approved; it cannot become applied (from approved it can become: applying, planned, planning)',
    );
  });
});

describe('checkReview', () => {
  const args = (over: Partial<Parameters<typeof checkReview>[0]> = {}): Parameters<typeof checkReview>[0] => ({
    change: change(),
    plan: plan(),
    reviews: [],
    reviewer: { name: 'bob', role: 'approver' },
    verdict: 'approve',
    policy: DEFAULT_POLICY,
    seenPlan: 5,
    ...over,
  });

  it('accepts an approval or a rejection from an approver or admin who is not the author', () => {
    expect(() => checkReview(args())).not.toThrow();
    expect(() => checkReview(args({ verdict: 'reject', reviewer: { name: 'carol', role: 'admin' } }))).not.toThrow();
    // Another reviewer's review and the same reviewer's voided review of an old plan do not stand in the way.
    const reviews = [review('carol'), review('bob', 'approve', { planId: 4, voidedAt: '2025-06-01T10:30:00.000Z' })];
    expect(() => checkReview(args({ reviews }))).not.toThrow();
  });

  it('refuses the author approving, and rejecting, their own change', () => {
    const e = refusal(() => checkReview(args({ reviewer: { name: 'alice', role: 'admin' } })));
    expect([e.code, e.message]).toEqual([
      'RAMPART_ERR_REVIEW',
      'alice proposed change 12: the author cannot approve their own change',
    ]);
    expect(
      refusal(() => checkReview(args({ reviewer: { name: 'alice', role: 'approver' }, verdict: 'reject' }))).message,
    ).toBe(
      'alice proposed change 12: the author cannot reject their own change either (reviews come from someone else; propose a new change instead)',
    );
  });

  it('refuses a reviewer below the approver role', () => {
    for (const role of ['viewer', 'operator'] as const) {
      const e = refusal(() => checkReview(args({ reviewer: { name: 'bob', role } })));
      expect([e.code, e.message]).toEqual([
        'RAMPART_ERR_REVIEW',
        `bob has the ${role} role; reviewing a change needs the approver or admin role`,
      ]);
    }
  });

  it('refuses a reviewer not listed in policy.approvers, when the list is not empty', () => {
    const policy: ChangePolicy = { ...DEFAULT_POLICY, approvers: ['carol', 'dave'] };
    const e = refusal(() => checkReview(args({ policy, reviewer: { name: 'bob', role: 'admin' } })));
    expect([e.code, e.message]).toEqual([
      'RAMPART_ERR_REVIEW',
      'bob is not one of the approvers of this site (policy.approvers: carol, dave)',
    ]);
    expect(() => checkReview(args({ policy, reviewer: { name: 'dave', role: 'approver' } }))).not.toThrow();
  });

  it('refuses a second review of the same plan by the same reviewer', () => {
    const e = refusal(() => checkReview(args({ reviews: [review('bob', 'reject')], verdict: 'approve' })));
    expect([e.code, e.message]).toEqual([
      'RAMPART_ERR_REVIEW',
      'bob already reviewed plan 5 of change 12 (rejected at 2025-06-01T11:00:00.000Z)',
    ]);
  });

  it('refuses a review unless the change is planned', () => {
    for (const state of CHANGE_STATES.filter((s) => s !== 'planned')) {
      const e = refusal(() => checkReview(args({ change: change({ state }) })));
      expect([e.code, e.message]).toEqual([
        'RAMPART_ERR_STATE',
        `change 12 is ${state}; only a planned change can be reviewed`,
      ]);
    }
  });

  it('refuses a review of a stale plan', () => {
    const e = refusal(() => checkReview(args({ plan: plan({ stale: true }) })));
    expect([e.code, e.message]).toEqual([
      'RAMPART_ERR_STALE',
      "plan 5 of change 12 is stale: the change or a host's desired state moved on after it was computed; re-plan the change before reviewing it",
    ]);
    // A plan of another change is never current for this one.
    expect(refusal(() => checkReview(args({ plan: plan({ changeId: 13 }) }))).code).toBe('RAMPART_ERR_STALE');
  });

  it('refuses to approve a blocked plan without an admin override, but lets it be rejected', () => {
    const e = refusal(() => checkReview(args({ plan: BLOCKED })));
    expect([e.code, e.message]).toEqual([
      'RAMPART_ERR_BLOCKED',
      'the plan is blocked: closes tcp/443 of service shop on web1; closes tcp/443 of service shop on web2; an admin must record an override of plan 5 with a reason',
    ]);
    expect(() => checkReview(args({ plan: BLOCKED, verdict: 'reject' }))).not.toThrow();
    const override = {
      by: 'root',
      reason: 'maintenance page on purpose',
      at: '2025-06-01T10:10:00.000Z',
      planId: 5,
      rulesetSha256: 'a'.repeat(64),
      blockers: planBlockerKeys(BLOCKED),
    };
    expect(() => checkReview(args({ plan: BLOCKED, change: change({ override }) }))).not.toThrow();
  });

  it('refuses a review sent for a plan that is no longer the current one', () => {
    const e = refusal(() => checkReview(args({ seenPlan: 4 })));
    expect(e.code).toBe('RAMPART_ERR_STALE');
    expect(e.message).toMatch(/^you approved plan 4 of change 12, but its current plan is 5 /);
    expect(refusal(() => checkReview(args({ seenPlan: 4, verdict: 'reject' }))).message).toMatch(
      /^you rejected plan 4/,
    );
  });

  it('refuses everyone who shaped the ruleset, compared without case', () => {
    const edited = change({ authors: ['alice', 'Olga'] });
    const e = refusal(() => checkReview(args({ change: edited, reviewer: { name: 'olga', role: 'admin' } })));
    expect([e.code, e.message]).toEqual([
      'RAMPART_ERR_REVIEW',
      'olga edited the ruleset of change 12 and is one of its authors (alice, Olga): the author cannot approve their own change',
    ]);
    expect(refusal(() => checkReview(args({ reviewer: { name: 'ALICE', role: 'approver' } }))).code).toBe(
      'RAMPART_ERR_REVIEW',
    );
  });

  it("refuses a token minted by an author, and one minted through an author's token after the change", () => {
    const minted = {
      name: 'mallory',
      role: 'approver' as const,
      mintedBy: [{ name: 'alice', at: '2024-01-01T00:00:00.000Z' }],
    };
    const e = refusal(() => checkReview(args({ reviewer: minted })));
    expect(e.message).toBe(
      'the token of mallory was minted by alice, an author of change 12: an author cannot review their change through a token they issued',
    );
    // One hop removed: alice minted 'eve' (admin) after proposing, eve minted mallory.
    const hop = (at: string) => ({
      name: 'mallory',
      role: 'approver' as const,
      mintedBy: [
        { name: 'eve', at: '2025-06-01T10:20:00.000Z' },
        { name: 'alice', at },
      ],
    });
    expect(refusal(() => checkReview(args({ reviewer: hop('2025-06-01T10:05:00.000Z') }))).message).toMatch(
      /descends from a token that alice, an author of change 12, minted at 2025-06-01T10:05:00.000Z, after the change was proposed/,
    );
    // A colleague alice onboarded long before the change is a colleague, not a made-up identity.
    expect(() => checkReview(args({ reviewer: hop('2024-01-01T00:00:00.000Z') }))).not.toThrow();
  });

  it('follows the recorded token ids for the lineage, and stops at a cycle', () => {
    const t = (id: string, name: string, by: string | null, createdBy = 'x') => ({
      id,
      name,
      role: 'admin' as const,
      secretHash: '',
      createdAt: `2025-01-0${id}T00:00:00.000Z`,
      createdBy,
      createdByToken: by,
      revokedAt: null,
      lastUsedAt: null,
      expiresAt: null,
    });
    const tokens = new Map(
      [t('1', 'root', null, 'rampart-init'), t('2', 'eve', '1', 'root'), t('3', 'mallory', '2', 'eve')].map((x) => [
        x.id,
        x,
      ]),
    );
    expect(mintLineage(tokens.get('3') as never, tokens)).toEqual([
      { name: 'eve', at: '2025-01-03T00:00:00.000Z' },
      { name: 'root', at: '2025-01-02T00:00:00.000Z' },
    ]);
    const loop = new Map([
      ['4', t('4', 'a', '5')],
      ['5', t('5', 'b', '4')],
    ]);
    expect(mintLineage(loop.get('4') as never, loop)).toHaveLength(2);
  });
});

describe('overrides', () => {
  const covering = (over: Partial<NonNullable<ChangeRecord['override']>> = {}) => ({
    by: 'root',
    reason: 'maintenance page on purpose',
    at: '2025-06-01T10:10:00.000Z',
    planId: 5,
    rulesetSha256: 'a'.repeat(64),
    blockers: planBlockerKeys(BLOCKED),
    ...over,
  });

  it('covers the ruleset and the blockers it was given for', () => {
    expect(overrideCovers(change({ override: covering() }), BLOCKED)).toBe(true);
  });

  it('lapses when the ruleset changes', () => {
    expect(overrideCovers(change({ override: covering(), rulesetSha256: 'b'.repeat(64) }), BLOCKED)).toBe(false);
  });

  it('lapses when a re-plan finds a blocker it does not list, but not for a narrower plan', () => {
    const more = plan({
      blocked: true,
      plan: {
        blockers: [
          ...(BLOCKED.plan as { blockers: object[] }).blockers,
          { host: 'web1', kind: 'violates-must-deny', message: "violates must-deny intent 'no database from outside'" },
        ],
      },
    });
    expect(overrideCovers(change({ override: covering() }), more)).toBe(false);
    const fewer = plan({ blocked: true, plan: { blockers: [(BLOCKED.plan as { blockers: object[] }).blockers[0]] } });
    expect(overrideCovers(change({ override: covering() }), fewer)).toBe(true);
  });

  it('never covers anything when recorded before overrides were bound to a plan', () => {
    const legacy = { by: 'root', reason: 'maintenance page on purpose', at: '2025-06-01T10:10:00.000Z' };
    expect(overrideCovers(change({ override: legacy }), BLOCKED)).toBe(false);
  });

  it('identifies a blocker without the parenthesis that says what was before', () => {
    const b = {
      kind: 'closes-public-service',
      host: 'web1',
      message: 'closes tcp/80 of service shop on web1 to the internet (was open)',
    };
    expect(blockerKey(b)).toBe(
      blockerKey({ ...b, message: 'closes tcp/80 of service shop on web1 to the internet (was partial)' }),
    );
    expect(blockerKey(b)).not.toBe(
      blockerKey({ ...b, message: 'closes tcp/80 of service shop on web1 to part of the internet (was open)' }),
    );
  });
});

describe('approvalStatus', () => {
  const two: ChangePolicy = { ...DEFAULT_POLICY, approvals: 2 };

  it('counts distinct approvers other than the author, ignoring voided reviews', () => {
    const voided = { voidedAt: '2025-06-01T12:00:00.000Z' };
    const reviews = [review('bob'), review('bob'), review('alice'), review('carol', 'approve', voided)];
    expect(approvalStatus(reviews, two, ['alice'])).toEqual({
      approvers: ['bob'],
      required: 2,
      satisfied: false,
      rejectedBy: [],
    });
    expect(approvalStatus([...reviews, review('dave')], two, ['alice'])).toMatchObject({
      approvers: ['bob', 'dave'],
      satisfied: true,
    });
  });

  it('is never satisfied once someone rejected', () => {
    expect(approvalStatus([review('bob'), review('carol', 'reject')], DEFAULT_POLICY, ['alice'])).toEqual({
      approvers: ['bob'],
      required: 1,
      satisfied: false,
      rejectedBy: ['carol'],
    });
  });

  it('counts only reviews of the current plan, and no author under another spelling', () => {
    const reviews = [review('bob', 'approve', { planId: 4 }), review('Alice'), review('carol')];
    expect(approvalStatus(reviews, two, ['alice'], 5)).toMatchObject({ approvers: ['carol'], satisfied: false });
  });

  it('counts only listed approvers when the policy lists them', () => {
    const policy: ChangePolicy = { ...DEFAULT_POLICY, approvers: ['carol'] };
    expect(approvalStatus([review('bob')], policy, ['alice'])).toMatchObject({ approvers: [], satisfied: false });
    expect(approvalStatus([review('carol')], policy, ['alice'])).toMatchObject({
      approvers: ['carol'],
      satisfied: true,
    });
  });
});

describe('freeze windows', () => {
  const at = { file: 'rampart.yaml', line: 1, column: 1 };
  const blackFriday: FreezeWindow = {
    kind: 'once',
    name: 'black friday',
    start: '2025-11-28T00:00:00.000Z',
    end: '2025-12-01T00:00:00.000Z',
    at,
  };
  // Friday 18:00 to midnight and all of Saturday and Sunday, UTC.
  const friEvening: FreezeWindow = { kind: 'weekly', name: 'friday evening', days: [5], from: 18 * 60, to: 1440, at };
  const weekend: FreezeWindow = { kind: 'weekly', name: 'weekend', days: [0, 6], from: 0, to: 1440, at };
  const policy: ChangePolicy = { ...DEFAULT_POLICY, freeze: [blackFriday, friEvening, weekend] };
  const when = (iso: string) => activeFreeze(policy, new Date(iso))?.name;

  it('finds the first window containing now, with exclusive ends', () => {
    expect(when('2025-11-27T23:59:59.999Z')).toBeUndefined(); // Thursday
    expect(when('2025-11-28T00:00:00.000Z')).toBe('black friday');
    expect(when('2025-11-29T12:00:00.000Z')).toBe('black friday'); // also a weekend: the first window wins
    expect(when('2025-12-01T00:00:00.000Z')).toBeUndefined(); // Monday
    expect(when('2025-06-06T17:59:59.999Z')).toBeUndefined(); // Friday
    expect(when('2025-06-06T18:00:00.000Z')).toBe('friday evening');
    expect(when('2025-06-06T23:59:59.999Z')).toBe('friday evening');
    expect(when('2025-06-07T00:00:00.000Z')).toBe('weekend');
    expect(when('2025-06-08T23:59:59.999Z')).toBe('weekend');
    expect(when('2025-06-09T00:00:00.000Z')).toBeUndefined();
  });

  it('reads weekly windows in UTC whatever the offset the instant was written with', () => {
    // 19:30+02:00 on a Friday is 17:30 UTC: not yet frozen.
    expect(when('2025-06-06T19:30:00+02:00')).toBeUndefined();
    expect(when('2025-06-06T20:30:00+02:00')).toBe('friday evening');
  });

  it('tells when the occurrence containing now ends', () => {
    expect(freezeEnd(friEvening, new Date('2025-06-06T20:00:00Z'))?.toISOString()).toBe('2025-06-07T00:00:00.000Z');
    expect(freezeEnd(blackFriday, new Date('2025-11-29T00:00:00Z'))?.toISOString()).toBe('2025-12-01T00:00:00.000Z');
    expect(freezeEnd(friEvening, new Date('2025-06-05T20:00:00Z'))).toBeUndefined();
  });

  it('has no window in the default policy, and none active now in shop.yaml (its window is in 2020)', () => {
    expect(activeFreeze(DEFAULT_POLICY, new Date())).toBeUndefined();
    expect(activeFreeze(SHOP.policy, new Date())).toBeUndefined();
    expect(activeFreeze(SHOP.policy, new Date('2020-11-28T12:00:00Z'))?.name).toBe('black friday 2020');
  });
});

describe('checkApply', () => {
  const at = { file: 'rampart.yaml', line: 1, column: 1 };
  const freeze: FreezeWindow = { kind: 'weekly', name: 'weekend', days: [0, 6], from: 0, to: 1440, at };
  const policy: ChangePolicy = { ...DEFAULT_POLICY, freeze: [freeze] };
  const saturday = new Date('2025-06-07T10:00:00Z');
  const monday = new Date('2025-06-09T10:00:00Z');
  const args = (over: Partial<Parameters<typeof checkApply>[0]> = {}): Parameters<typeof checkApply>[0] => ({
    change: change({ state: 'approved' }),
    plan: plan(),
    policy,
    now: monday,
    ...over,
  });

  it('lets an approved change with a current plan go outside freeze windows', () => {
    expect(checkApply(args())).toEqual({ freeze: undefined, emergency: false });
    // An emergency reason outside a freeze is not needed and not flagged.
    expect(checkApply(args({ emergency: { reason: 'outage' } }))).toEqual({ freeze: undefined, emergency: false });
  });

  it('refuses a change that is not approved', () => {
    for (const state of CHANGE_STATES.filter((s) => s !== 'approved')) {
      const e = refusal(() => checkApply(args({ change: change({ state }) })));
      expect([e.code, e.message]).toEqual([
        'RAMPART_ERR_STATE',
        `change 12 is ${state}; only an approved change can be applied`,
      ]);
    }
  });

  it('refuses a stale plan', () => {
    const e = refusal(() => checkApply(args({ plan: plan({ stale: true }) })));
    expect([e.code, e.message]).toEqual([
      'RAMPART_ERR_STALE',
      "plan 5 of change 12 is stale: the change or a host's desired state moved on after it was computed; re-plan the change before applying it",
    ]);
  });

  it('refuses a blocked plan whose override is gone or does not cover it', () => {
    expect(refusal(() => checkApply(args({ plan: BLOCKED }))).code).toBe('RAMPART_ERR_BLOCKED');
    const override = {
      by: 'root',
      reason: 'on purpose',
      at: '2025-06-01T10:10:00.000Z',
      planId: 5,
      rulesetSha256: 'a'.repeat(64),
      blockers: planBlockerKeys(BLOCKED),
    };
    expect(checkApply(args({ plan: BLOCKED, change: change({ state: 'approved', override }) })).emergency).toBe(false);
    const edited = change({ state: 'approved', override, rulesetSha256: 'c'.repeat(64) });
    expect(refusal(() => checkApply(args({ plan: BLOCKED, change: edited }))).message).toMatch(
      /it lapsed when the ruleset was edited/,
    );
  });

  it('refuses inside a freeze, naming the window, when it ends, and the emergency way', () => {
    const e = refusal(() => checkApply(args({ now: saturday })));
    expect(e.code).toBe('RAMPART_ERR_FROZEN');
    expect(e.message).toBe(
      "change 12 cannot be applied now: freeze window 'weekend' is in force until 2025-06-08T00:00:00.000Z; apply it after that, or apply it now as an emergency change by giving an emergency reason (it is flagged on the change and in the audit log)",
    );
    expect(e.details).toEqual({ changeId: 12, window: 'weekend', until: '2025-06-08T00:00:00.000Z' });
  });

  it('lets an emergency with a reason through a freeze, flagged, and refuses an empty reason', () => {
    expect(checkApply(args({ now: saturday, emergency: { reason: 'checkout down' } }))).toEqual({
      freeze,
      emergency: true,
    });
    for (const reason of ['', '   ']) {
      const e = refusal(() => checkApply(args({ now: saturday, emergency: { reason } })));
      expect([e.code, e.message]).toEqual([
        'RAMPART_ERR_VALIDATION',
        'an emergency change needs a reason: say why it cannot wait',
      ]);
    }
  });
});

describe('rollout order and targets', () => {
  it('puts canary hosts first in policy order, the rest in the given order', () => {
    expect(rolloutOrder(['a', 'b', 'c', 'd'], ['c', 'a'])).toEqual(['c', 'a', 'b', 'd']);
    expect(rolloutOrder(['a', 'b'], ['x', 'b', 'b'])).toEqual(['b', 'a']);
    expect(rolloutOrder(['a', 'b'], [])).toEqual(['a', 'b']);
  });

  it('resolves a host and a group (canary first) of shop.yaml', () => {
    expect(resolveTarget(SHOP, { kind: 'host', name: 'web2' })).toEqual(['web2']);
    expect(resolveTarget(SHOP, { kind: 'group', name: 'web' })).toEqual(['web1', 'web2']);
    const canary2 = { ...SHOP, policy: { ...SHOP.policy, canary: ['web2'] } };
    expect(resolveTarget(canary2, { kind: 'group', name: 'web' })).toEqual(['web2', 'web1']);
  });

  it('refuses an unknown host or a group without hosts, listing the known names', () => {
    const host = refusal(() => resolveTarget(SHOP, { kind: 'host', name: 'web3' }));
    expect([host.code, host.status, host.message]).toEqual([
      'RAMPART_ERR_NOT_FOUND',
      404,
      "unknown host 'web3' (did you mean 'web1' or 'web2'?); the hosts of shop.yaml are: web1, web2",
    ]);
    const group = refusal(() => resolveTarget(SHOP, { kind: 'group', name: 'wbe' }));
    expect([group.code, group.message]).toEqual([
      'RAMPART_ERR_NOT_FOUND',
      "no host is in group 'wbe' (did you mean 'web'?); the groups of shop.yaml are: web",
    ]);
    const empty = { ...SHOP, hosts: [] };
    expect(refusal(() => resolveTarget(empty, { kind: 'host', name: 'web1' })).message).toBe(
      "unknown host 'web1'; shop.yaml declares no hosts",
    );
  });
});
