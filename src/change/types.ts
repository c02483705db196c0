/**
 * The contract of a change plan: what `rampart plan` and the server compute for a proposed ruleset, stored as data
 * (JSON) with the change and shown as text, JSON and Markdown. Pure data: no class instances, no bigint (counts are
 * decimal strings), so a stored plan reads back exactly as written.
 */
import type { RulesetFormat } from '../store/types.js';

export type RiskLevel = 'low' | 'medium' | 'high' | 'critical';
export const RISK_LEVELS: readonly RiskLevel[] = ['low', 'medium', 'high', 'critical'];

/**
 * What makes a plan dangerous. Each kind raises the risk to critical (closes-public-service, violates-must-allow)
 * or at least high (violates-must-deny, exposes-admin-port); the kinds in `policy.block-on` (default: all four)
 * block the plan until an admin overrides it.
 */
export type BlockerKind = 'closes-public-service' | 'violates-must-allow' | 'violates-must-deny' | 'exposes-admin-port';
export const BLOCKER_KINDS: readonly BlockerKind[] = [
  'closes-public-service',
  'violates-must-allow',
  'violates-must-deny',
  'exposes-admin-port',
];

/** Why a plan cannot be approved without an admin override. */
export interface Blocker {
  readonly host: string;
  readonly kind: BlockerKind;
  /** `closes tcp/443 of service shop on web1 to the internet (was open)`. */
  readonly message: string;
  /** Service or intent name. */
  readonly subject: string;
  /** An example packet: one the new ruleset drops (closes, must-allow) or newly accepts (must-deny, admin port). */
  readonly example?: string;
}

export interface PlanDiffChange {
  readonly hook: string;
  readonly from: string;
  readonly to: string;
  /** Readable flow, e.g. `tcp dport 443 from any to 192.0.2.11`. */
  readonly flow: string;
  readonly example: string;
  readonly oldRule?: string;
  readonly newRule?: string;
}

export interface PlanFinding {
  readonly rule: string;
  readonly severity: string;
  readonly message: string;
  /** file:line:column of the rule in the ruleset it was found in. */
  readonly location?: string;
}

export interface BlastRadiusEntry {
  /** A declared service port (`shop tcp/443`) or flow (`admin ssh from 198.51.100.0/24`). */
  readonly subject: string;
  /** `exposure`: an admin port from the internet outside the admin networks. */
  readonly kind: 'service' | 'admin' | 'intent' | 'exposure';
  readonly before: 'open' | 'closed' | 'partial';
  readonly after: 'open' | 'closed' | 'partial';
  /** `loses-access` when after is less open than before, `gains-access` when more. */
  readonly effect: 'loses-access' | 'gains-access' | 'unchanged';
  readonly example?: string;
}

export interface HostPlan {
  readonly host: string;
  readonly format: RulesetFormat;
  /** True when the host had no desired ruleset before (the diff is against an empty, accept-everything ruleset). */
  readonly firstRuleset: boolean;
  /** The semantic diff against the host's current desired ruleset; empty when behaviour does not change. */
  readonly changes: readonly PlanDiffChange[];
  readonly findings: { readonly introduced: readonly PlanFinding[]; readonly fixed: readonly PlanFinding[] };
  readonly intentViolations: readonly {
    readonly intent: string;
    readonly message: string;
    readonly example?: string;
  }[];
  readonly blastRadius: readonly BlastRadiusEntry[];
  readonly risk: RiskLevel;
  readonly blockers: readonly Blocker[];
  /**
   * Dangers that do not block (their kind is not in `policy.block-on`), shown and counted in the risk. Absent in
   * plans stored before issue 12.
   */
  readonly warnings?: readonly Blocker[];
  /** What the host will run, where it differs from the ruleset as written (managed tables removed, ...). */
  readonly notes?: readonly string[];
  /** Where the analysis could not be exact (opaque matches), in words. */
  readonly uncertain: readonly string[];
}

export interface Plan {
  readonly schema: 'rampart.plan/v1';
  readonly hosts: readonly HostPlan[];
  /** The highest host risk. */
  readonly risk: RiskLevel;
  readonly blocked: boolean;
  readonly blockers: readonly Blocker[];
  /** One line: `2 hosts, 3 flow changes, 1 finding introduced, blocked: closes shop tcp/443 on web1`. */
  readonly summary: string;
}

/** Input of computePlan: texts in, so the function stays pure (the caller reads files or the store). */
export interface PlanHostInput {
  readonly host: string;
  /** The host's current desired ruleset, or null when it has none yet. */
  readonly current: { readonly text: string; readonly format: RulesetFormat; readonly file: string } | null;
  readonly desired: { readonly text: string; readonly format: RulesetFormat; readonly file: string };
}
