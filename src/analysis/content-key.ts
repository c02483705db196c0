/**
 * Content keys: what a rule does, independent of where it is written and how it is spelled (origins, texts,
 * counters and comments left out). The incremental diff aligns two versions' chains by them; the compiler's chain
 * memo recognises a chain whose rules (and callees) are the same in two versions by them.
 */
import type { Match, Rule, Statement, Verdict } from '../firewall/model.js';

function elementsKey(els: readonly { kind: string; lo?: bigint; hi?: bigint; value?: string; wildcard?: boolean }[]) {
  return els
    .map((e) => (e.kind === 'range' ? `${e.lo}-${e.hi}` : `${e.kind}:${e.value}${e.wildcard ? '*' : ''}`))
    .join(',');
}

function matchKey(m: Match): string {
  if (m.kind === 'field') return `f|${m.field}|${m.op}|${m.mask ?? ''}|${elementsKey(m.values)}`;
  if (m.kind === 'concat') return `c|${m.fields.join('.')}|${m.op}|${m.tuples.map(elementsKey).join(';')}`;
  // Two opaque matches are the same condition only when written the same way.
  return `o|${m.category}|${m.reason}|${m.text}`;
}

function statementKey(s: Statement): string {
  if (s.kind === 'set') return `set|${s.field}|${s.value}|${s.mask ?? ''}`;
  // Counters, logs and other statements never change a verdict: the same key whatever they say.
  return s.kind;
}

function verdictKey(v: Verdict | undefined): string {
  if (!v) return '-';
  switch (v.kind) {
    case 'nat':
      return `nat|${v.type}|${v.family ?? ''}|${v.addr ? `${v.addr.lo}-${v.addr.hi}` : ''}|${v.port ? `${v.port.lo}-${v.port.hi}` : ''}`;
    case 'vmap':
      return `vmap|${v.fields.join('.')}|${v.entries.map((e) => `${elementsKey(e.key)}:${verdictKey(e.verdict)}`).join(';')}`;
    case 'reject':
      return `reject|${v.with ?? ''}`;
    case 'jump':
    case 'goto':
      return `${v.kind}|${v.target}`;
    default:
      return v.kind;
  }
}

const contentKeys = new WeakMap<Rule, string>();

/** What a rule does, independent of where it is written and how it is spelled (built once per rule). */
export function ruleContentKey(r: Rule): string {
  let k = contentKeys.get(r);
  if (k === undefined) {
    k = `${r.matches.map(matchKey).join('&')}#${r.statements.map(statementKey).join('&')}#${verdictKey(r.verdict)}`;
    contentKeys.set(r, k);
  }
  return k;
}

/** The chains a rule jumps or goes to (a verdict map's entries included). */
export function jumpTargets(rule: Rule): string[] {
  const v = rule.verdict;
  if (v?.kind === 'jump' || v?.kind === 'goto') return [v.target];
  if (v?.kind === 'vmap') {
    return v.entries.flatMap((e) => (e.verdict.kind === 'jump' || e.verdict.kind === 'goto' ? [e.verdict.target] : []));
  }
  return [];
}
