import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRuleset } from '../firewall/load.js';
import { trace } from '../firewall/tracer.js';
import { parseFlowSpec } from './flow-spec.js';
import { compileRuleset, createPacketSpace } from './index.js';
import { reach, renderReach } from './reach.js';

const root = join(import.meta.dirname, '..', '..');
const load = (rel: string) => loadRuleset([join(root, rel)]);
const https = parseFlowSpec({ to: '192.0.2.10', proto: 'tcp', dport: '443', ctState: 'new', iif: 'eth0' });

describe('reach', () => {
  it('says the founding outage drops new https to the shop, by the input policy', () => {
    const rs = load('test/fixtures/nftables/founding-outage.nft');
    const c = compileRuleset(rs, { hook: 'input', space: createPacketSpace([rs]) });
    const r = reach(c, https);
    expect(r.outcomes.accept.packets).toBe(0n);
    expect(r.outcomes.drop.packets).toBeGreaterThan(0n);
    const flows = r.outcomes.drop.flows;
    expect(flows.some((f) => f.text.startsWith('tcp dport 443 from any to 192.0.2.10'))).toBe(true);
    const by = flows.flatMap((f) => f.deciders ?? []);
    expect(by.some((d) => d.kind === 'policy' && d.verdict === 'drop' && d.chain === 'input')).toBe(true);
    // The example really is dropped, as the tracer sees it.
    const ex = flows[0]?.example;
    expect(ex).toBeDefined();
    if (ex) expect(trace(rs, ex, { hook: 'input' }).verdict).toBe('drop');
    expect(renderReach(r)).toContain('dropped:');
  });

  it('says the fixed ruleset accepts it, by the restored rule', () => {
    const rs = load('test/fixtures/queries/founding-fixed.nft');
    const c = compileRuleset(rs, { hook: 'input', space: createPacketSpace([rs]) });
    const r = reach(c, https);
    expect(r.outcomes.drop.packets).toBe(0n);
    expect(r.outcomes.accept.packets).toBe(r.packets);
    const by = r.outcomes.accept.flows.flatMap((f) => f.deciders ?? []);
    expect(by.map((d) => d.text)).toContain('tcp dport { 80, 443 } accept');
  });

  it('splits a wider query into accepted and dropped flows whose counts add up', () => {
    const rs = load('test/fixtures/queries/founding-fixed.nft');
    const c = compileRuleset(rs, { hook: 'input', space: createPacketSpace([rs]) });
    const r = reach(c, parseFlowSpec({ proto: 'tcp', ctState: 'new' }));
    const o = r.outcomes;
    expect(o.accept.packets + o.drop.packets + o.reject.packets + o.uncertain.packets).toBe(r.packets);
    for (const f of [...o.accept.flows, ...o.drop.flows]) {
      if (!f.example) continue;
      const t = trace(rs, f.example, { hook: 'input' });
      expect(o.accept.flows.includes(f) ? 'accept' : 'drop').toBe(t.verdict);
    }
  });
});
