/**
 * The BDD variable order is a performance choice only: a compilation in another order (SOURCE_FIRST_ORDER) gives
 * the same sets as the default one: verdicts, every rule's arriving packets and hits, every decider's decisions,
 * and the unreachable report, on every generated shape (issue 19: docker's nat POSTROUTING is quadratic in the
 * default order and not in this one).
 */
import { describe, expect, it } from 'vitest';
import type { FinalVerdict } from '../firewall/model.js';
import { parseRuleset } from '../firewall/parse.js';
import { ENGINE_SHAPES, generateEngineRuleset, SHAPE_FORMATS, SHAPE_HOOKS } from '../lab/engine-generator.js';
import { compileRuleset, createPacketSpace, DEFAULT_FIELD_ORDER, SOURCE_FIRST_ORDER } from './index.js';
import type { CompiledRuleset, Decider } from './types.js';
import { findUnreachable, unreachableJson } from './unreachable.js';

const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
const deciderKey = (d: Decider) =>
  d.kind === 'rule'
    ? `${d.table}/${d.chain}#${d.position}`
    : d.kind === 'policy'
      ? `${d.table}/${d.chain} policy`
      : 'path-end';

/** Everything the order must not change, as exact packet counts and the unreachable report's JSON. */
function answers(c: CompiledRuleset) {
  const verdicts = (['accept', 'drop', 'reject'] as FinalVerdict[]).map((v) => c.verdict(v).count());
  const rules = c.rules().map((r) => [c.arriving(r).count(), c.hits(r).count()]);
  const decisions = c
    .decisions()
    .map((d) => `${deciderKey(d.decider)} ${d.verdict} ${d.packets.count()}`)
    .sort();
  return json({
    verdicts,
    uncertain: c.uncertain().count(),
    pathEnd: c.pathEnd().count(),
    rules,
    decisions,
    unreachable: unreachableJson(findUnreachable(c)),
  });
}

describe('field order', () => {
  it.each(ENGINE_SHAPES)('%s: the source-first order gives the same answers as the default order', (shape) => {
    const format = SHAPE_FORMATS[shape][0]!;
    const rs = parseRuleset(generateEngineRuleset(shape, shape === 'docker' ? 300 : 200, 7, format), 'gen', { format });
    const hook = SHAPE_HOOKS[shape];
    const a = compileRuleset(rs, { hook, space: createPacketSpace([rs]) });
    const b = compileRuleset(rs, { hook, space: createPacketSpace([rs], { fieldOrder: SOURCE_FIRST_ORDER }) });
    // The order really differs (the source above the interfaces), so the test compares two layouts.
    const first = (sp: typeof a.space, f: 'ip.saddr' | 'iifname') =>
      (sp as ReturnType<typeof createPacketSpace>).fieldLayout(f).first;
    expect(first(a.space, 'ip.saddr')).toBeGreaterThan(first(a.space, 'iifname'));
    expect(first(b.space, 'ip.saddr')).toBeLessThan(first(b.space, 'iifname'));
    expect(answers(b)).toBe(answers(a));
  });

  it('refuses an order that does not name every field once, saying which', () => {
    const rs = parseRuleset('*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n', 'x', { format: 'iptables-save' });
    expect(() => createPacketSpace([rs], { fieldOrder: DEFAULT_FIELD_ORDER.slice(1) })).toThrow(
      /fieldOrder lacks nfproto/,
    );
    expect(() => createPacketSpace([rs], { fieldOrder: [...DEFAULT_FIELD_ORDER, 'l4proto'] })).toThrow(
      /names 'l4proto' twice/,
    );
    expect(() =>
      createPacketSpace([rs], { fieldOrder: [...DEFAULT_FIELD_ORDER.slice(1), 'nope' as 'nfproto'] }),
    ).toThrow(/'nope', which is not a field/);
  });
});
