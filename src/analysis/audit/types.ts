/**
 * The contract of `rampart audit`: audit rules (a catalogue with stable ids), the context they run in, and the
 * findings they produce. Every finding is computed with the packet-space engine (with a counterexample packet where
 * one exists), never by matching rule text.
 *
 * Pure: rules receive parsed rulesets, compiled hooks, the declared site and (live mode) the listening sockets
 * read by the caller. Output formats (human, JSON, SARIF, Markdown) render an AuditReport.
 */

import type { AuditConfig, HostConfig, RampartConfig, ServiceConfig } from '../../config/types.js';
import type { Packet, Rule, Ruleset } from '../../firewall/model.js';
import type { TraceHook } from '../../firewall/tracer.js';
import type { CompiledRuleset, PacketSpace } from '../types.js';

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info';
/** Most severe first. */
export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'info'];
export const severityRank = (s: Severity): number => SEVERITIES.length - SEVERITIES.indexOf(s);

/** What a rule needs to run: `config` rules are skipped (and listed as skipped) without declared services etc. */
export type AuditNeeds = 'none' | 'config' | 'live';

export interface AuditRuleInfo {
  /** Stable kebab-case id; docs/rules/<id>.md documents it. */
  readonly id: string;
  readonly defaultSeverity: Severity;
  /** One line, shown in catalogues (`rampart audit --list-rules`) and SARIF shortDescription. */
  readonly title: string;
  readonly rationale: string;
  readonly fix: string;
  readonly needs: AuditNeeds;
  /**
   * Off unless asked for (`--enable ID`, `--only ID`, or `audit.rules.<id>` in rampart.yaml): rules whose findings
   * are a matter of house style and would otherwise fill every report (rule-without-comment).
   */
  readonly optIn?: boolean;
}

export interface FindingLocation {
  readonly file: string;
  readonly line: number;
  readonly column?: number;
}

/** Another place that explains a finding: a covering rule, the rule that drops a service, the IPv6 twin. */
export interface RelatedLocation {
  readonly message: string;
  readonly location?: FindingLocation;
  readonly text?: string;
  /**
   * One item of a grouped finding (a port of several exposed by one rule): kept in JSON, SARIF and Markdown, left
   * out of the human output, whose message already lists the items.
   */
  readonly detail?: boolean;
}

export interface Finding {
  readonly rule: string;
  readonly severity: Severity;
  readonly message: string;
  /** The firewall rule the finding is about (its source line), when there is one. */
  readonly location?: FindingLocation;
  /** The source text of that rule, quoted in human and Markdown output. */
  readonly text?: string;
  /** A packet that demonstrates the finding (accepted when it should not be, dropped when it should pass). */
  readonly example?: Packet;
  readonly related?: readonly RelatedLocation[];
  /** True when opaque matches (rate limits, unknown modules) make the answer uncertain. */
  readonly uncertain?: boolean;
}

/** A listening socket of the audited host (live mode). */
export interface ListeningSocket {
  readonly proto: 'tcp' | 'udp';
  /** Bound address: `0.0.0.0`, `::`, `127.0.0.1`, a host address. */
  readonly address: string;
  readonly port: number;
  readonly process?: string;
}

export interface AuditContext {
  readonly ruleset: Ruleset;
  /** The file the ruleset came from (or `live:<netns|host>`); finding locations fall back to it. */
  readonly file: string;
  /** One space over the ruleset, shared by every compiled hook. */
  readonly space: PacketSpace;
  /** The ruleset compiled for a hook path (cached: compile once per hook per audit). */
  compiled(hook: TraceHook): CompiledRuleset;
  /**
   * The same with every stateful match free to go either way (CompileOptions.assume 'all'): what a rule does under
   * some state, for the rules that say a rule never applies (a rate-limited accept does not shadow the drop after it).
   */
  compiledAnyState(hook: TraceHook): CompiledRuleset;
  readonly config?: RampartConfig;
  /** The host being audited (`--host web1`), when the config names it. */
  readonly host?: HostConfig;
  /** Services this host runs (from the config, plus `--public` flags): the public ports to check. */
  readonly services: readonly ServiceConfig[];
  /** The host's addresses (from the config); empty = any destination. */
  readonly addresses: readonly string[];
  readonly adminNetworks: readonly string[];
  readonly settings: AuditConfig;
  /** Live mode: the sockets listening on the host. Undefined when not live. */
  readonly listening?: readonly ListeningSocket[];
  /** Today, for expiry rules (passed in: the core reads no clock). */
  readonly today: string;
  /**
   * Rules whose unreachable-rule findings a plan knows to be the same in the other version of the ruleset
   * (src/analysis/incremental.ts, settledRules): the plan reports only findings a change introduces or fixes, so
   * the audit leaves these rules out on both sides. Unset (every rule analysed) outside plans.
   */
  readonly settled?: (rule: Rule) => boolean;
}

/** What a rule's check returns: a finding without its rule id; severity only when it differs from the default. */
export type FindingDraft = Omit<Finding, 'severity' | 'rule'> & { readonly severity?: Severity };

export interface AuditRule extends AuditRuleInfo {
  check(ctx: AuditContext): readonly FindingDraft[];
}

export interface SuppressedRule {
  readonly rule: string;
  readonly justification: string;
}

export interface SkippedRule {
  readonly rule: string;
  readonly reason: string;
}

export interface AuditSummary {
  readonly total: number;
  readonly bySeverity: Readonly<Record<Severity, number>>;
  readonly failOn: Severity;
  /** Findings at or above failOn exist: exit code 1. */
  readonly failed: boolean;
  readonly rulesRun: number;
}

export interface AuditReport {
  readonly file: string;
  readonly host?: string;
  readonly findings: readonly Finding[];
  readonly suppressed: readonly SuppressedRule[];
  readonly skipped: readonly SkippedRule[];
  readonly summary: AuditSummary;
}
