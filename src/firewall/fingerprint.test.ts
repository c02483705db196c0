import { describe, expect, it } from 'vitest';
import { ENGINE_SHAPES, generateEngineRuleset, mutate, SHAPE_FORMATS } from '../lab/engine-generator.js';
import { rulesetFingerprint, sameRulesetText } from './fingerprint.js';
import type { InputFormat } from './model.js';

/** The fingerprint as first written (split, trim, both regular expressions on every line): the oracle. */
function reference(text: string, format: 'iptables-save' | 'nft-text'): string {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) continue;
    out.push(
      format === 'iptables-save'
        ? l.replace(/^(:\S+ \S+) \[\d+:\d+\]$/, '$1 [0:0]').replace(/^\[\d+:\d+\] /, '')
        : l.replace(/\s+# handle \d+$/, '').replace(/\bcounter packets \d+ bytes \d+/g, 'counter'),
    );
  }
  return out.join('\n');
}

/** What the kernel changes when it prints the same ruleset again, and edits that change it. */
function variants(text: string, format: 'iptables-save' | 'nft-text'): Record<string, string> {
  const lines = text.split('\n');
  const ruleAt = lines.findIndex(
    (l, i) => i > lines.length / 2 && (format === 'nft-text' ? /^\s+\S/.test(l) : l.startsWith('-A ')),
  );
  const edited = [...lines];
  edited[ruleAt] = `${edited[ruleAt]}${format === 'nft-text' ? ' counter' : ' -m comment --comment x'}`;
  const reprinted =
    format === 'iptables-save'
      ? text
          .replace(/ on [A-Z][a-z]{2} [A-Z][a-z]{2} +\d+ [\d:]+ \d{4}/g, ' on Wed Nov 25 07:30:00 2026')
          .replace(/^(:\S+ \S+) \[0:0\]/gm, '$1 [1234:567890]')
          .replace(/^-A /gm, '[5:300] -A ')
      : text
          .replace(/^\t/gm, '  ')
          .replace(/accept$/gm, 'accept # handle 42')
          .replace(/counter packets \d+ bytes \d+/g, 'counter packets 9 bytes 999')
          .replace(/ counter (?!packets)/g, ' counter packets 3 bytes 120 ');
  return {
    same: text,
    reprinted,
    'comments and blank lines': `# printed by a test\n\n${text.replace(/\n/g, '\n\n')}# end\n`,
    crlf: text.replace(/\n/g, '\r\n'),
    'no final newline': text.replace(/\n+$/, ''),
    'one rule changed': edited.join('\n'),
    'one line deleted': lines.filter((_, i) => i !== ruleAt).join('\n'),
    'lines swapped': [...lines.slice(0, ruleAt), lines[ruleAt + 1], lines[ruleAt], ...lines.slice(ruleAt + 2)].join(
      '\n',
    ),
    'one percent mutated': mutate(text, 0.01, 7),
    empty: '',
  };
}

describe('rulesetFingerprint and sameRulesetText', () => {
  const cases: [string, 'iptables-save' | 'nft-text', string][] = [];
  for (const shape of ENGINE_SHAPES) {
    for (const format of SHAPE_FORMATS[shape]) {
      if (format === 'iptables-save' || format === 'nft-text')
        cases.push([shape, format, generateEngineRuleset(shape, 300, 11, format)]);
    }
  }

  it.each(cases)(
    '%s (%s): the fingerprint is the reference one, and sameRulesetText says whether fingerprints are equal',
    (_shape, format, text) => {
      const vs = variants(text, format);
      let same = 0;
      let differ = 0;
      for (const [name, a] of Object.entries(vs)) {
        expect(rulesetFingerprint(a, format), name).toBe(reference(a, format));
        for (const [name2, b] of Object.entries(vs)) {
          const equal = reference(a, format) === reference(b, format);
          expect(sameRulesetText(a, b, format), `${name} vs ${name2}`).toBe(equal);
          if (equal) same++;
          else differ++;
        }
      }
      // Both answers occur: re-printed texts are recognised, edits are not hidden.
      expect(same).toBeGreaterThan(Object.keys(vs).length);
      expect(differ).toBeGreaterThan(0);
      expect(sameRulesetText(text, vs.reprinted as string, format)).toBe(true);
      expect(sameRulesetText(text, vs['one rule changed'] as string, format)).toBe(false);
    },
  );

  it('compares nft JSON by its fingerprint, and knows no other format', () => {
    const doc = (handle: number, rule: string) =>
      JSON.stringify({ nftables: [{ metainfo: { version: '1.0.9' } }, { rule: { handle, expr: rule } }] });
    expect(sameRulesetText(doc(1, 'a'), doc(2, 'a'), 'nft-json')).toBe(true);
    expect(sameRulesetText(doc(1, 'a'), doc(1, 'b'), 'nft-json')).toBe(false);
    expect(sameRulesetText('{', '{', 'nft-json')).toBeUndefined();
    expect(sameRulesetText('x', 'x', 'ufw' as InputFormat)).toBeUndefined();
  });
});
