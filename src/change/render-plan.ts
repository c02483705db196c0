/**
 * A plan for people: text for a terminal (coloured when asked: red for lost access and blockers, green for gained
 * access) and Markdown for a pull-request comment. The JSON form is the Plan itself. Pure: strings out.
 */
import type { BlastRadiusEntry, Blocker, HostPlan, Plan, PlanFinding } from './types.js';

export interface TextOptions {
  readonly color: boolean;
}

const ANSI = {
  red: '\x1b[31m',
  green: '\x1b[32m',
  yellow: '\x1b[33m',
  bold: '\x1b[1m',
  dim: '\x1b[2m',
  off: '\x1b[0m',
};

const EFFECT_WORDS: Readonly<Record<BlastRadiusEntry['effect'], string>> = {
  'loses-access': 'loses access',
  'gains-access': 'gains access',
  unchanged: 'unchanged',
};

/** What blocks a plan, in general words (the blockers say exactly what). */
const BLOCKED_WHY =
  'this change closes a declared public service, violates an intent, or opens an admin port to the internet';

const EXAMPLE_WORDS: Readonly<Record<Blocker['kind'], string>> = {
  'closes-public-service': 'dropped packet',
  'violates-must-allow': 'dropped packet',
  'violates-must-deny': 'newly accepted packet',
  'exposes-admin-port': 'newly accepted packet',
};

function findingLine(f: PlanFinding): string {
  return `${f.severity} ${f.rule}${f.location ? ` at ${f.location}` : ''}: ${f.message}`;
}

export function renderPlanText(plan: Plan, opts: TextOptions): string {
  const paint = (code: keyof typeof ANSI, s: string) => (opts.color ? `${ANSI[code]}${s}${ANSI.off}` : s);
  const lines: string[] = [];
  lines.push(paint('bold', `Plan: ${plan.summary}`));
  if (plan.blocked) {
    lines.push('');
    lines.push(paint('red', `BLOCKED: ${BLOCKED_WHY}; it cannot be approved without an admin override.`));
    for (const b of plan.blockers) {
      lines.push(paint('red', `  x ${b.message}`));
      if (b.example) lines.push(`      example ${EXAMPLE_WORDS[b.kind]}: ${b.example}`);
    }
  }
  for (const h of plan.hosts) {
    lines.push('');
    lines.push(paint('bold', `Host ${h.host} (${h.format}${h.firstRuleset ? ', first ruleset' : ''}): risk ${h.risk}`));
    lines.push(...hostText(h, paint));
  }
  return `${lines.join('\n')}\n`;
}

function hostText(h: HostPlan, paint: (code: keyof typeof ANSI, s: string) => string): string[] {
  const lines: string[] = [];
  if (h.firstRuleset) lines.push('  The host has no ruleset yet: compared with one that accepts everything.');
  for (const n of h.notes ?? []) lines.push(paint('yellow', `  ! ${n}`));
  if (h.blastRadius.length > 0) {
    lines.push('  Blast radius:');
    const w = Math.max(...h.blastRadius.map((e) => e.subject.length));
    for (const e of h.blastRadius) {
      const move = e.before === e.after ? e.after : `${e.before} -> ${e.after}`;
      const text = `    ${e.subject.padEnd(w)}  ${e.kind.padEnd(8)}  ${move.padEnd(16)}  ${EFFECT_WORDS[e.effect]}`;
      const colour = e.effect === 'loses-access' ? 'red' : e.effect === 'gains-access' ? 'green' : undefined;
      lines.push(colour ? paint(colour, text) : text);
      if (e.example && e.effect !== 'unchanged') lines.push(`      example: ${e.example}`);
    }
  }
  if (h.changes.length === 0) lines.push('  Flow changes: none (behaviour is the same)');
  else {
    lines.push(`  Flow changes (${h.changes.length}):`);
    for (const c of h.changes) {
      const text = `    ${c.hook} ${c.from} -> ${c.to}: ${c.flow}`;
      const colour = c.to === 'accept' ? 'green' : c.from === 'accept' ? 'red' : undefined;
      lines.push(colour ? paint(colour, text) : text);
      if (c.example) lines.push(`        example: ${c.example}`);
      if (c.oldRule) lines.push(`        old: ${c.oldRule}`);
      if (c.newRule) lines.push(`        new: ${c.newRule}`);
    }
  }
  const { introduced, fixed } = h.findings;
  lines.push(`  Findings introduced (${introduced.length})${introduced.length === 0 ? ': none' : ':'}`);
  for (const f of introduced) lines.push(paint('yellow', `    + ${findingLine(f)}`));
  lines.push(`  Findings fixed (${fixed.length})${fixed.length === 0 ? ': none' : ':'}`);
  for (const f of fixed) lines.push(paint('green', `    - ${findingLine(f)}`));
  if (h.intentViolations.length > 0) {
    lines.push(`  Intent violations (${h.intentViolations.length}):`);
    for (const v of h.intentViolations) {
      lines.push(paint('red', `    ${v.intent}: ${v.message}`));
      if (v.example) lines.push(`        counterexample: ${v.example}`);
    }
  }
  if (h.blockers.length > 0) {
    lines.push(paint('red', `  Blockers (${h.blockers.length}):`));
    for (const b of h.blockers) lines.push(paint('red', `    x ${b.message}`));
  }
  const warnings = h.warnings ?? [];
  if (warnings.length > 0) {
    lines.push(paint('yellow', `  Dangers not blocking (${warnings.length}, not in policy.block-on):`));
    for (const b of warnings) lines.push(paint('yellow', `    ! ${b.message}`));
  }
  if (h.uncertain.length > 0) {
    lines.push('  Not exact:');
    for (const u of h.uncertain) lines.push(paint('dim', `    ? ${u}`));
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------------------------
// Markdown

/** Table cells: no pipes or line breaks; code spans for rule text and packets. */
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
const code = (s: string): string => (s === '' ? '' : `\`${cell(s).replace(/`/g, "'")}\``);

const EFFECT_MD: Readonly<Record<BlastRadiusEntry['effect'], string>> = {
  'loses-access': '🔴 loses access',
  'gains-access': '🟢 gains access',
  unchanged: 'unchanged',
};

export function renderPlanMarkdown(plan: Plan): string {
  const out: string[] = [];
  out.push(`## Rampart plan: risk **${plan.risk}**${plan.blocked ? ' — ⛔ BLOCKED' : ''}`);
  out.push('');
  if (plan.blocked) {
    out.push('> [!CAUTION]');
    out.push(
      `> **BLOCKED**: ${BLOCKED_WHY}. It cannot be approved without an admin override (recorded with a reason).`,
    );
    out.push('>');
    for (const b of plan.blockers) out.push(`> - ${b.message}${b.example ? ` (example: ${code(b.example)})` : ''}`);
    out.push('');
  }
  out.push(plan.summary);
  for (const h of plan.hosts) {
    out.push('');
    out.push(`### ${h.host}: risk ${h.risk}${h.blockers.length > 0 ? ' (blocked)' : ''}`);
    out.push('');
    if (h.firstRuleset) {
      out.push('_The host has no ruleset yet: compared with one that accepts everything._');
      out.push('');
    }
    for (const n of h.notes ?? []) {
      out.push(`> [!WARNING]\n> ${cell(n)}`);
      out.push('');
    }
    const warnings = h.warnings ?? [];
    if (warnings.length > 0) {
      out.push(`**Dangers not blocking (${warnings.length})**: not in \`policy.block-on\``);
      out.push('');
      for (const b of warnings) out.push(`- ⚠️ ${b.message}${b.example ? ` (example: ${code(b.example)})` : ''}`);
      out.push('');
    }
    if (h.blastRadius.length > 0) {
      out.push('| Blast radius | Kind | Before | After | Effect | Example |');
      out.push('| --- | --- | --- | --- | --- | --- |');
      for (const e of h.blastRadius) {
        out.push(
          `| ${cell(e.subject)} | ${e.kind} | ${e.before} | ${e.after} | ${EFFECT_MD[e.effect]} | ${e.example ? code(e.example) : ''} |`,
        );
      }
      out.push('');
    }
    if (h.changes.length === 0) out.push('**Flow changes:** none (behaviour is the same).');
    else {
      out.push(`**Flow changes (${h.changes.length})**`);
      out.push('');
      out.push('| Hook | Verdict | Flow | Example | Old rule | New rule |');
      out.push('| --- | --- | --- | --- | --- | --- |');
      for (const c of h.changes) {
        out.push(
          `| ${c.hook} | ${c.from} → ${c.to} | ${code(c.flow)} | ${code(c.example)} | ${c.oldRule ? code(c.oldRule) : ''} | ${c.newRule ? code(c.newRule) : ''} |`,
        );
      }
    }
    out.push('');
    const list = (title: string, fs: readonly PlanFinding[]) => {
      out.push(`**${title} (${fs.length})**${fs.length === 0 ? ': none' : ''}`);
      if (fs.length > 0) out.push('');
      for (const f of fs)
        out.push(`- **${f.severity}** \`${f.rule}\`${f.location ? ` at \`${f.location}\`` : ''}: ${f.message}`);
      out.push('');
    };
    list('Findings introduced', h.findings.introduced);
    list('Findings fixed', h.findings.fixed);
    if (h.intentViolations.length > 0) {
      out.push(`**Intent violations (${h.intentViolations.length})**`);
      out.push('');
      for (const v of h.intentViolations)
        out.push(`- ${v.intent}: ${v.message}${v.example ? ` (counterexample: ${code(v.example)})` : ''}`);
      out.push('');
    }
    if (h.uncertain.length > 0) {
      out.push('<details><summary>Not exact</summary>');
      out.push('');
      for (const u of h.uncertain) out.push(`- ${u}`);
      out.push('');
      out.push('</details>');
      out.push('');
    }
  }
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}
