/**
 * Runs the catalogue against one audit context: applies the configured severities and disabled rules (each with its
 * written justification), skips rules whose inputs are missing (no config, not live) and says why, sorts findings
 * most severe first, and summarises against --fail-on.
 */
import { AUDIT_RULES } from './catalogue.js';
import {
  type AuditContext,
  type AuditReport,
  type AuditRule,
  type Finding,
  SEVERITIES,
  type Severity,
  type SkippedRule,
  type SuppressedRule,
  severityRank,
} from './types.js';

export interface RunAuditOptions {
  readonly failOn?: Severity;
  /** Run only these rule ids (default: all). */
  readonly only?: readonly string[];
  /** Opt-in rules to run (`--enable`). */
  readonly enable?: readonly string[];
  /** The catalogue to run (tests); default AUDIT_RULES. */
  readonly rules?: readonly AuditRule[];
  /** Called before each catalogue rule runs: its id, how many ran before it, and how many will run at most. */
  readonly onRule?: (id: string, done: number, total: number) => void;
}

export function runAudit(ctx: AuditContext, opts: RunAuditOptions = {}): AuditReport {
  const findings: Finding[] = [];
  const suppressed: SuppressedRule[] = [];
  const skipped: SkippedRule[] = [];
  let rulesRun = 0;
  for (const rule of opts.rules ?? AUDIT_RULES) {
    if (opts.only && !opts.only.includes(rule.id)) continue;
    const setting = ctx.settings.rules[rule.id];
    if (setting && !setting.enabled) {
      suppressed.push({ rule: rule.id, justification: setting.justification ?? '' });
      continue;
    }
    const asked = opts.enable?.includes(rule.id) || opts.only?.includes(rule.id) || setting !== undefined;
    if (rule.optIn && !asked) {
      skipped.push({
        rule: rule.id,
        reason: `opt-in: enable it with --enable ${rule.id}, or under audit.rules.${rule.id} in rampart.yaml`,
      });
      continue;
    }
    const missing = missingInput(rule, ctx);
    if (missing) {
      skipped.push({ rule: rule.id, reason: missing });
      continue;
    }
    opts.onRule?.(rule.id, rulesRun, (opts.rules ?? AUDIT_RULES).length);
    rulesRun++;
    const severity = setting?.severity ?? rule.defaultSeverity;
    for (const f of rule.check(ctx)) {
      // A rule may raise its own severity per finding (all-inbound-blocked is critical when services are declared);
      // a configured severity always wins.
      findings.push({ ...f, rule: rule.id, severity: setting?.severity ?? f.severity ?? severity });
    }
  }
  findings.sort(
    (a, b) =>
      severityRank(b.severity) - severityRank(a.severity) ||
      (a.location?.line ?? 0) - (b.location?.line ?? 0) ||
      a.rule.localeCompare(b.rule),
  );
  const failOn = opts.failOn ?? ctx.settings.failOn ?? 'high';
  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  for (const f of findings) bySeverity[f.severity]++;
  const failed = findings.some((f) => severityRank(f.severity) >= severityRank(failOn));
  return {
    file: ctx.file,
    ...(ctx.host ? { host: ctx.host.name } : {}),
    findings,
    suppressed,
    skipped,
    summary: { total: findings.length, bySeverity, failOn, failed, rulesRun },
  };
}

function missingInput(rule: AuditRule, ctx: AuditContext): string | undefined {
  if (rule.needs === 'live' && !ctx.listening) return 'needs live mode (--live): listening sockets';
  if (rule.needs === 'config' && ctx.services.length === 0 && !ctx.config)
    return 'needs declared services (--config rampart.yaml or --public tcp/443)';
  return undefined;
}
