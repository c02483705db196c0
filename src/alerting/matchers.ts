/**
 * Label matchers with Prometheus's and Alertmanager's semantics (issue 15 §2): `=`, `!=`, `=~`, `!~`; regular
 * expressions are anchored at both ends (`=~"web.*"` matches `web1`, not `myweb1`); a label that is absent has the
 * value "" (so `team!="net"` matches alerts without a team, and `team=""` matches only those). Written as in
 * amtool and Alertmanager's `matchers:` lists: `severity="critical"`, `service=~"shop|cart"`, or unquoted values.
 */
import type { Labels } from './types.js';

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface Matcher {
  readonly name: string;
  readonly op: MatchOp;
  readonly value: string;
}

export const MATCHER_EXPECTED =
  'a matcher: a label name, one of = != =~ !~, and a value, like severity="critical" or service=~"shop|cart"';

const compiled = new Map<string, RegExp>();
function anchored(value: string): RegExp {
  let re = compiled.get(value);
  if (!re) {
    re = new RegExp(`^(?:${value})$`, 'u');
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(value, re);
  }
  return re;
}

export function matches(m: Matcher, labels: Labels): boolean {
  const v = labels[m.name] ?? '';
  switch (m.op) {
    case '=':
      return v === m.value;
    case '!=':
      return v !== m.value;
    case '=~':
      return anchored(m.value).test(v);
    case '!~':
      return !anchored(m.value).test(v);
  }
}

/** Every matcher holds (an empty list matches everything). */
export function matchAll(ms: readonly Matcher[], labels: Labels): boolean {
  for (const m of ms) if (!matches(m, labels)) return false;
  return true;
}

const MATCHER_RE = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$/s;

/** One matcher from its text, or the problem in words. */
export function parseMatcher(text: string): Matcher | string {
  const m = MATCHER_RE.exec(text);
  if (!m) {
    if (/^\s*[^=!~\s]+\s*$/.test(text)) return `'${text.trim()}' has no operator (=, !=, =~ or !~)`;
    const name = /^\s*([^=!~\s]*)/.exec(text)?.[1] ?? '';
    if (name === '') return 'the label name is missing';
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) return `'${name}' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)`;
    const op = /^\s*[^=!~\s]*\s*([=!~]+)/.exec(text)?.[1] ?? '';
    return `unknown operator '${op}' (one of =, !=, =~, !~)`;
  }
  const name = m[1] ?? '';
  const op = (m[2] ?? '=') as MatchOp;
  let value = m[3] ?? '';
  if (value.startsWith('"')) {
    if (value.length < 2 || !value.endsWith('"')) return `the value ${value} has no closing quote`;
    try {
      value = JSON.parse(value) as string;
    } catch {
      return `the value ${value} is not a valid quoted string`;
    }
  } else if (/[",{}]/.test(value)) {
    return `the value '${value}' must be quoted (it contains ", comma or braces)`;
  }
  if (op === '=~' || op === '!~') {
    try {
      anchored(value);
    } catch (e) {
      return `the regular expression '${value}' is not valid: ${(e as Error).message}`;
    }
  }
  return { name, op, value };
}

/** Splits `a="x,y", b=~"z"` (optionally in braces) at the commas outside quotes. */
export function splitMatchers(text: string): string[] {
  let t = text.trim();
  if (t.startsWith('{') && t.endsWith('}')) t = t.slice(1, -1);
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < t.length; i++) {
    const c = t[i] as string;
    if (c === '\\' && quoted) {
      cur += c + (t[i + 1] ?? '');
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ',' && !quoted) {
      if (cur.trim() !== '') out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  if (cur.trim() !== '') out.push(cur);
  return out;
}

/** A list of matchers from `a="x", b!="y"`, or the first problem with its 1-based index. */
export function parseMatchers(text: string): Matcher[] | { index: number; problem: string } {
  const out: Matcher[] = [];
  const parts = splitMatchers(text);
  for (let i = 0; i < parts.length; i++) {
    const m = parseMatcher(parts[i] as string);
    if (typeof m === 'string') return { index: i + 1, problem: m };
    out.push(m);
  }
  return out;
}

export function formatMatcher(m: Matcher): string {
  return `${m.name}${m.op}${JSON.stringify(m.value)}`;
}
