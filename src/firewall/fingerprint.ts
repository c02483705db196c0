/**
 * The content of a ruleset text without what changes each time the kernel prints the same ruleset: comment lines
 * (iptables-save's dated header and footer), packet and byte counters, nft rule handles, indentation. Two texts
 * with equal fingerprints load the same ruleset, so a drift check can say "unchanged" without parsing either
 * (src/change/plan.ts); texts that differ only in ways this does not strip are parsed and compared exactly.
 *
 * Pure string work, linear in the text. sameRulesetText compares two texts this way without building either string.
 */
import type { InputFormat } from './model.js';

/** The text with volatile parts removed, or undefined when the format is not one this understands. */
export function rulesetFingerprint(text: string, format: InputFormat): string | undefined {
  switch (format) {
    case 'iptables-save':
      return lines(text, iptablesLine);
    case 'nft-text':
      return lines(text, nftLine);
    case 'nft-json': {
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch {
        return undefined;
      }
      return JSON.stringify(doc, (key, value) => {
        if (key === 'handle' || key === 'metainfo') return undefined;
        if (key === 'counter' && value && typeof value === 'object') return {};
        return value;
      });
    }
    default:
      return undefined;
  }
}

/**
 * Whether two texts load the same ruleset as far as their fingerprints tell (equal fingerprints), or undefined when
 * the format is not one this understands. The texts' normalised lines are compared as they are read, without
 * building either fingerprint: stops at the first differing line, and a text equal to the other is known at once.
 * The drift check of an unchanged 10k-rule host is this call (issue 19: < 50 ms).
 */
export function sameRulesetText(a: string, b: string, format: InputFormat): boolean | undefined {
  const map = format === 'iptables-save' ? iptablesLine : format === 'nft-text' ? nftLine : undefined;
  if (!map) {
    const x = rulesetFingerprint(a, format);
    return x === undefined ? undefined : x === rulesetFingerprint(b, format);
  }
  if (a === b) return true;
  const ra = new LineReader(a, map);
  const rb = new LineReader(b, map);
  for (;;) {
    const x = ra.next();
    if (x !== rb.next()) return false;
    if (x === undefined) return true;
  }
}

// Each line mapper is called with a trimmed, non-empty line; undefined drops the line. A regular expression runs
// only on lines that hold what it removes (most lines are rules, left as they are).

function iptablesLine(l: string): string | undefined {
  const c = l.charCodeAt(0);
  if (c === 35 /* # */) return undefined;
  // `:INPUT ACCEPT [12:3456]` and `iptables-save -c`'s `[12:3456] -A ...`.
  if (c === 58 /* : */) return l.replace(/^(:\S+ \S+) \[\d+:\d+\]$/, '$1 [0:0]');
  if (c === 91 /* [ */) return l.replace(/^\[\d+:\d+\] /, '');
  return l;
}

function nftLine(l: string): string | undefined {
  if (l.charCodeAt(0) === 35 /* # */) return undefined;
  let out = l;
  if (out.includes('# handle')) out = out.replace(/\s+# handle \d+$/, '');
  if (out.includes('counter packets')) out = out.replace(/\bcounter packets \d+ bytes \d+/g, 'counter');
  return out;
}

/** The mapped lines of a text, one at a time: each line trimmed, empty ones and those mapped to undefined skipped. */
class LineReader {
  private pos = 0;
  constructor(
    private readonly text: string,
    private readonly map: (line: string) => string | undefined,
  ) {}

  next(): string | undefined {
    const t = this.text;
    while (this.pos <= t.length) {
      let end = t.indexOf('\n', this.pos);
      if (end < 0) end = t.length;
      const l = t.slice(this.pos, end).trim();
      this.pos = end + 1;
      if (l === '') continue;
      const m = this.map(l);
      if (m !== undefined) return m;
    }
    return undefined;
  }
}

/** Lines trimmed, empty ones dropped, each mapped (undefined drops it), joined with newlines. */
function lines(text: string, map: (line: string) => string | undefined): string {
  const out: string[] = [];
  const r = new LineReader(text, map);
  for (let l = r.next(); l !== undefined; l = r.next()) out.push(l);
  return out.join('\n');
}
