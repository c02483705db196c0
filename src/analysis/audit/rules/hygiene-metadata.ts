/**
 * Hygiene rules about what the ruleset says of itself: expiry dates in comments, rules nobody explained, and
 * constructs the model cannot decide. The expiry rules read the comment text (metadata the author wrote for
 * people, not a packet match); the example packet they show is still computed with the engine.
 */
import type { Match, Rule } from '../../../firewall/model.js';
import type { TraceHook } from '../../../firewall/tracer.js';
import { share } from '../../describe.js';
import type { CompiledRuleset, RuleRef } from '../../types.js';
import type { AuditContext, AuditRule, FindingDraft } from '../types.js';
import { activePaths, exampleOf, memo, packetText, ruleLocation } from './hygiene-common.js';

/** Every rule of the in-scope tables, with where it sits. */
function* allRules(ctx: AuditContext): Generator<{ rule: Rule; where: string }> {
  for (const t of ctx.ruleset.tables) {
    if (t.outOfScope) continue;
    for (const c of t.chains) {
      for (let i = 0; i < c.rules.length; i++) {
        yield { rule: c.rules[i] as Rule, where: `${t.family} ${t.name}/${c.name} #${i + 1}` };
      }
    }
  }
}

/** Each rule's first compiled path and its ref there (built once per audit, only when a rule asks). */
const refsByRule = memo((ctx: AuditContext) => {
  const m = new Map<Rule, { ref: RuleRef; compiled: CompiledRuleset }>();
  for (const path of activePaths(ctx.ruleset)) {
    const compiled = ctx.compiled(path);
    for (const ref of compiled.rules()) if (!m.has(ref.rule)) m.set(ref.rule, { ref, compiled });
  }
  return m;
});

/** A packet the rule applies to today, when it can apply at all. */
function ruleExample(ctx: AuditContext, rule: Rule) {
  const at = refsByRule(ctx).get(rule);
  if (!at) return undefined;
  const hits = at.compiled.hits(at.ref);
  return hits.isEmpty() ? undefined : exampleOf(hits);
}

// ---------------------------------------------------------------------------------------------------------------
// expired-rule / expiring-rule

const EXPIRES = /(?:^|[\s,;])expires=(\S*)/i;

/** Days since 1970-01-01 of a valid YYYY-MM-DD date, undefined when the text is not one. */
export function dayNumber(text: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = Date.UTC(y, mo - 1, d);
  const back = new Date(t);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return undefined;
  return t / 86_400_000;
}

interface Expiry {
  readonly rule: Rule;
  readonly where: string;
  readonly date: string;
  /** Days from today to the expiry date (negative: past); undefined when the date is invalid. */
  readonly daysLeft?: number;
}

const expiries = memo((ctx: AuditContext): Expiry[] => {
  const today = dayNumber(ctx.today);
  const out: Expiry[] = [];
  for (const { rule, where } of allRules(ctx)) {
    if (!rule.comment) continue;
    const m = EXPIRES.exec(rule.comment);
    if (!m) continue;
    const date = (m[1] ?? '').replace(/[.,;)"']+$/, '');
    const day = dayNumber(date);
    out.push({
      rule,
      where,
      date,
      ...(day !== undefined && today !== undefined ? { daysLeft: day - today } : {}),
    });
  }
  return out;
});

const days = (n: number) => `${n} day${n === 1 ? '' : 's'}`;

function expiryFinding(ctx: AuditContext, e: Expiry, message: string): FindingDraft {
  const p = ruleExample(ctx, e.rule);
  return {
    location: ruleLocation(e.rule),
    text: e.rule.text,
    message: `${message}${p ? ` It still applies, e.g. to ${packetText(p)}.` : ''}`,
    ...(p ? { example: p } : {}),
  };
}

export const expiredRule: AuditRule = {
  id: 'expired-rule',
  defaultSeverity: 'medium',
  title: 'A rule is past the expiry date in its comment',
  rationale:
    "Temporary rules (a partner's test access, an incident workaround) are marked `expires=YYYY-MM-DD` so they do not outlive their purpose. Past that date the rule is an opening nobody owns any more. An expiry that is not a valid date cannot be checked at all, and is reported too.",
  fix: 'Delete the rule, or renew it deliberately by changing the date in its comment.',
  needs: 'none',
  check: (ctx) =>
    expiries(ctx).flatMap((e) => {
      if (e.daysLeft === undefined) {
        return [
          expiryFinding(
            ctx,
            e,
            `rule ${e.where} carries expires=${e.date}, which is not a valid date (expected YYYY-MM-DD): its expiry cannot be checked.`,
          ),
        ];
      }
      if (e.daysLeft >= 0) return [];
      return [expiryFinding(ctx, e, `rule ${e.where} expired on ${e.date} (${days(-e.daysLeft)} ago).`)];
    }),
};

export const expiringRule: AuditRule = {
  id: 'expiring-rule',
  defaultSeverity: 'low',
  title: 'A rule reaches the expiry date in its comment soon',
  rationale:
    'A warning before a temporary rule (`expires=YYYY-MM-DD` in its comment) becomes expired-rule: time to ask its owner whether it is still needed.',
  fix: "Plan the rule's removal, or renew it by changing the date in its comment. The window is `audit.expiring-within-days` in rampart.yaml (default 14).",
  needs: 'none',
  check: (ctx) => {
    const within = ctx.settings.expiringWithinDays ?? 14;
    return expiries(ctx).flatMap((e) => {
      if (e.daysLeft === undefined || e.daysLeft < 0 || e.daysLeft > within) return [];
      const when = e.daysLeft === 0 ? 'today' : `in ${days(e.daysLeft)}`;
      return [expiryFinding(ctx, e, `rule ${e.where} expires on ${e.date} (${when}).`)];
    });
  },
};

// ---------------------------------------------------------------------------------------------------------------
// rule-without-comment

const DECIDING = new Set(['accept', 'drop', 'reject', 'queue', 'jump', 'goto', 'nat', 'vmap']);

export const ruleWithoutComment: AuditRule = {
  id: 'rule-without-comment',
  defaultSeverity: 'info',
  title: 'A rule that decides traffic has no comment',
  rationale:
    'Six months later nobody knows why a rule exists, so nobody dares remove it, and rulesets only grow. A comment saying why (ticket, owner, purpose) makes reviews and audits possible. Comments in the file (`# ...`) are lost when the ruleset is loaded; rule comments stay with the rule.',
  fix: 'Add `comment "why, ticket, owner"` to the rule (iptables: `-m comment --comment "..."`). The rule is opt-in (most rulesets have no comments at all): run it with `--enable rule-without-comment`, or enable it for good under `audit.rules.rule-without-comment` in rampart.yaml.',
  needs: 'none',
  optIn: true,
  check: (ctx) => {
    const out: FindingDraft[] = [];
    for (const { rule, where } of allRules(ctx)) {
      const v = rule.verdict;
      if (!v || !DECIDING.has(v.kind)) continue;
      if (rule.comment !== undefined && rule.comment.trim() !== '') continue;
      const what = v.kind === 'nat' ? v.type : v.kind;
      out.push({
        location: ruleLocation(rule),
        text: rule.text,
        message: `${what} rule ${where} has no comment: nobody can tell why it exists.`,
      });
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------------------
// unsupported-construct

/** Why the rule's outcome may be unknown to the model: its opaque matches, or an inexact rewrite/verdict. */
function uncertainCauses(rule: Rule, path: TraceHook): string[] {
  const causes = rule.matches
    .filter((m): m is Extract<Match, { kind: 'opaque' }> => m.kind === 'opaque')
    .map((m) => `\`${m.text}\` (${m.category}: ${m.reason})`);
  const v = rule.verdict;
  if (v?.kind === 'queue') causes.push('queue (the verdict comes from a userspace program)');
  if (v?.kind === 'nat') {
    const ranged = (v.addr && v.addr.lo !== v.addr.hi) || (v.port && v.port.lo !== v.port.hi);
    if ((v.type === 'dnat' || v.type === 'snat') && !v.addr && !v.port) causes.push(`\`${v.text}\` (nat map)`);
    else if (ranged) causes.push(`\`${v.text}\` (nat to a range)`);
    else if (v.type === 'redirect' && path !== 'output')
      causes.push(`\`${v.text}\` (redirect to the interface address)`);
  }
  return causes;
}

export const unsupportedConstruct: AuditRule = {
  id: 'unsupported-construct',
  defaultSeverity: 'info',
  title: 'A construct the model cannot decide makes some answers uncertain',
  rationale:
    'Rate limits, quotas, unknown sets and unsupported modules depend on state the ruleset does not contain. Rampart treats them soundly (such packets are reported as uncertain, never as certainly accepted or dropped), but findings about that traffic are weaker: this lists which rules cause it.',
  fix: 'Nothing to fix in the firewall as such. Check the uncertain traffic by hand (`rampart trace`), or load the missing sets (ipset save output) so the model can decide them.',
  needs: 'none',
  check: (ctx) => {
    const out: FindingDraft[] = [];
    const seen = new Set<Rule>();
    for (const path of activePaths(ctx.ruleset)) {
      const c = ctx.compiled(path);
      const unc = c.uncertain();
      if (unc.isEmpty()) continue;
      const total = unc.count();
      let explained = false;
      for (const ref of c.rules()) {
        if (seen.has(ref.rule)) continue;
        const causes = uncertainCauses(ref.rule, path);
        if (causes.length === 0) continue;
        const affected = c.hits(ref).and(unc);
        if (affected.isEmpty()) continue;
        seen.add(ref.rule);
        explained = true;
        const p = exampleOf(affected);
        out.push({
          location: ruleLocation(ref.rule),
          text: ref.rule.text,
          message: `${causes.join(', ')} cannot be decided from the ruleset: the verdict of the traffic this rule applies to on the ${path} path is uncertain (${share(affected.count(), total)} of the uncertain packets there).${p ? ` For example ${packetText(p)}.` : ''}`,
          ...(p ? { example: p } : {}),
          uncertain: true,
        });
      }
      if (!explained) {
        const p = exampleOf(unc);
        out.push({
          message: `some verdicts on the ${path} path are uncertain (rewrites or verdicts the model cannot compute exactly).${p ? ` For example ${packetText(p)}.` : ''}`,
          ...(p ? { example: p } : {}),
          uncertain: true,
        });
      }
    }
    return out;
  },
};

export const METADATA_RULES: readonly AuditRule[] = [
  expiredRule,
  expiringRule,
  ruleWithoutComment,
  unsupportedConstruct,
];
