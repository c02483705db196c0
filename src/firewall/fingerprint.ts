/**
 * The content of a ruleset text without what changes each time the kernel prints the same ruleset: comment lines
 * (iptables-save's dated header and footer), packet and byte counters, nft rule handles, indentation. Two texts
 * with equal fingerprints load the same ruleset, so a drift check can say "unchanged" without parsing either
 * (src/change/plan.ts); texts that differ only in ways this does not strip are parsed and compared exactly.
 *
 * Pure string work, linear in the text.
 */
import type { InputFormat } from './model.js';

/** The text with volatile parts removed, or undefined when the format is not one this understands. */
export function rulesetFingerprint(text: string, format: InputFormat): string | undefined {
  switch (format) {
    case 'iptables-save':
      return lines(text, (l) => {
        if (l.startsWith('#')) return undefined;
        // `:INPUT ACCEPT [12:3456]` and `iptables-save -c`'s `[12:3456] -A ...`.
        return l.replace(/^(:\S+ \S+) \[\d+:\d+\]$/, '$1 [0:0]').replace(/^\[\d+:\d+\] /, '');
      });
    case 'nft-text':
      return lines(text, (l) => {
        if (l.startsWith('#')) return undefined;
        return l.replace(/\s+# handle \d+$/, '').replace(/\bcounter packets \d+ bytes \d+/g, 'counter');
      });
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

/** Lines trimmed, empty ones dropped, each mapped (undefined drops it), joined with newlines. */
function lines(text: string, map: (line: string) => string | undefined): string {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const l = raw.trim();
    if (l === '') continue;
    const m = map(l);
    if (m !== undefined) out.push(m);
  }
  return out.join('\n');
}
