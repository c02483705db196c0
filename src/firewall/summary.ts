import type { Ruleset } from './model.js';

/** `1 rule`, `3 rules`. */
const count = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** A short human summary of a parsed ruleset: tables, chains with hooks and policies, rule counts, warnings. */
export function summarizeRuleset(rs: Ruleset): string {
  const out: string[] = [];
  const rules = rs.tables.reduce((n, t) => n + t.chains.reduce((m, c) => m + c.rules.length, 0), 0);
  out.push(`${rs.file}: ${rs.format} (${rs.backend}), ${count(rs.tables.length, 'table')}, ${count(rules, 'rule')}`);
  for (const t of rs.tables) {
    out.push(`  table ${t.family} ${t.name}${t.outOfScope ? ' (out of scope: not analysed)' : ''}`);
    for (const c of t.chains) {
      const b = c.base;
      const head = b ? ` [${b.type} hook ${b.hook} priority ${b.priority} policy ${b.policy}]` : '';
      out.push(`    chain ${c.name}${head}: ${count(c.rules.length, 'rule')}`);
    }
    for (const s of t.sets) out.push(`    ${s.map ? 'map' : 'set'} ${s.name}: ${count(s.elements.length, 'element')}`);
  }
  for (const w of rs.warnings) {
    const at = w.origin ? `${w.origin.file}:${w.origin.line}: ` : '';
    out.push(`  warning ${w.code}: ${at}${w.message}`);
  }
  return `${out.join('\n')}\n`;
}
