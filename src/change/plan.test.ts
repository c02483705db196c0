import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import type { RampartConfig } from '../config/types.js';
import { ParseError, UserError } from '../errors.js';
import { computePlan, type PlanPhase } from './plan.js';
import { renderPlanMarkdown, renderPlanText } from './render-plan.js';
import type { HostPlan, Plan, PlanHostInput } from './types.js';

const root = join(import.meta.dirname, '..', '..');
const read = (rel: string) => readFileSync(join(root, rel), 'utf8');
const config = (rel: string): RampartConfig => parseConfig(read(rel), rel);

const SHOP = 'test/fixtures/config/shop.yaml';
const SITE = 'test/fixtures/change/site.yaml';
const FIXED = 'test/fixtures/queries/founding-fixed.nft';
const OUTAGE = 'test/fixtures/nftables/founding-outage.nft';
const CHANGE = 'test/fixtures/change';

const side = (rel: string) => ({ text: read(rel), format: 'nft-text' as const, file: rel });
const input = (host: string, current: string | null, desired: string): PlanHostInput => ({
  host,
  current: current === null ? null : side(current),
  desired: side(desired),
});
const plan = (cfg: string, current: string | null, desired: string, host = 'web1'): Plan =>
  computePlan(config(cfg), [input(host, current, desired)], { today: '2026-11-24' });
const only = (p: Plan): HostPlan => {
  expect(p.hosts).toHaveLength(1);
  return p.hosts[0] as HostPlan;
};

describe('computePlan on the founding outage', () => {
  const outage = plan(SHOP, FIXED, OUTAGE);
  const h = only(outage);

  it('blocks the change that closes the shop on web1, with an example dropped packet per port', () => {
    expect(outage.blocked).toBe(true);
    expect(outage.risk).toBe('critical');
    const closes = outage.blockers.filter((b) => b.kind === 'closes-public-service');
    expect(closes.map((b) => b.message)).toEqual([
      'closes tcp/80 of service shop on web1 to the internet (was open)',
      'closes tcp/443 of service shop on web1 to the internet (was open)',
    ]);
    for (const b of closes) {
      expect(b.host).toBe('web1');
      expect(b.subject).toBe('shop');
    }
    expect(closes[0]?.example).toMatch(/^tcp \S+ -> 192\.0\.2\.11:80 /);
    expect(closes[1]?.example).toMatch(/^tcp \S+ -> 192\.0\.2\.11:443 /);
    expect(outage.summary).toContain('blocked: closes shop tcp/80 on web1; closes shop tcp/443 on web1');
  });

  it('also names the must-allow intent the outage violates', () => {
    expect(outage.blockers).toContainEqual(
      expect.objectContaining({ kind: 'violates-must-allow', subject: 'shop https from anywhere', host: 'web1' }),
    );
    expect(h.intentViolations.map((v) => v.intent)).toContain('shop https from anywhere');
  });

  it('shows the blast radius: both shop ports lose access from the internet, SSH from the admins is unchanged', () => {
    const entry = (subject: string) => h.blastRadius.find((e) => e.subject === subject);
    expect(entry('shop tcp/80')).toMatchObject({ kind: 'service', before: 'open', after: 'closed' });
    expect(entry('shop tcp/443')).toMatchObject({ before: 'open', after: 'closed', effect: 'loses-access' });
    expect(entry('admin tcp/22 from 198.51.100.0/24')).toMatchObject({ kind: 'admin', effect: 'unchanged' });
  });

  it('lists the flow change with its example packet and deciding rules on both sides', () => {
    expect(h.changes).toHaveLength(1);
    const c = h.changes[0];
    expect(c).toMatchObject({ hook: 'input', from: 'accept', to: 'drop' });
    expect(c?.flow).toContain('tcp dport 80,443');
    expect(c?.example).toMatch(/^tcp .* -> \S+:(80|443) /);
    expect(c?.oldRule).toBe(`${FIXED}:12: tcp dport { 80, 443 } accept  [filter/input #4]`);
    expect(c?.newRule).toBe('policy drop of inet filter/input');
  });

  it('reports the audit findings the change introduces, located in the desired ruleset', () => {
    const rules = h.findings.introduced.map((f) => f.rule);
    expect(rules).toContain('public-service-blocked');
    expect(rules).toContain('all-inbound-blocked');
    expect(h.findings.introduced[0]?.location).toMatch(new RegExp(`^${OUTAGE}:\\d+:\\d+$`));
    expect(h.findings.fixed).toEqual([]);
  });

  it('passes the reverse change (the fix): not blocked, the shop gains access, the findings are fixed', () => {
    const fix = plan(SHOP, OUTAGE, FIXED);
    const fh = only(fix);
    expect(fix.blocked).toBe(false);
    expect(fix.blockers).toEqual([]);
    expect(fh.blastRadius.find((e) => e.subject === 'shop tcp/443')).toMatchObject({
      before: 'closed',
      after: 'open',
      effect: 'gains-access',
    });
    expect(fh.changes.map((c) => `${c.from}->${c.to}`)).toEqual(['drop->accept']);
    expect(fh.findings.fixed.map((f) => f.rule)).toEqual(
      expect.arrayContaining(['public-service-blocked', 'all-inbound-blocked']),
    );
    expect(fh.findings.introduced).toEqual([]);
    expect(fix.risk).toBe('low');
    expect(fix.summary).toMatch(/not blocked$/);
  });

  it('survives a JSON round trip unchanged (no bigint, no class instances)', () => {
    const json = JSON.stringify(outage);
    expect(JSON.parse(json)).toStrictEqual(outage);
  });
});

describe('computePlan', () => {
  it('opening tcp/8443 is not blocked and shows the new accept and the gained access', () => {
    const p = plan(SITE, FIXED, `${CHANGE}/open-8443.nft`);
    const h = only(p);
    expect(p.blocked).toBe(false);
    expect(h.changes).toHaveLength(1);
    expect(h.changes[0]).toMatchObject({ hook: 'input', from: 'drop', to: 'accept' });
    expect(h.changes[0]?.flow).toContain('tcp dport 8443');
    expect(h.changes[0]?.newRule).toContain('tcp dport 8443 accept');
    expect(h.blastRadius.find((e) => e.subject === 'api tcp/8443')).toMatchObject({
      kind: 'service',
      before: 'closed',
      after: 'open',
      effect: 'gains-access',
    });
    expect(h.blastRadius.find((e) => e.subject === 'api tcp/8443')?.example).toMatch(/-> 192\.0\.2\.11:8443 /);
  });

  it('reordered rules with the same behaviour: no changes, no findings moved, risk low', () => {
    const p = plan(SHOP, FIXED, `${CHANGE}/reordered.nft`);
    const h = only(p);
    expect(h.changes).toEqual([]);
    expect(h.findings).toEqual({ introduced: [], fixed: [] });
    expect(h.blastRadius.every((e) => e.effect === 'unchanged')).toBe(true);
    expect(p.risk).toBe('low');
    expect(p.blocked).toBe(false);
    expect(p.summary).toBe('1 host, 0 flow changes, 0 findings introduced, 0 fixed, risk low, not blocked');
  });

  it('blocks a change that violates a must-allow intent (the admins locked out of SSH)', () => {
    const p = plan(SITE, FIXED, `${CHANGE}/no-ssh.nft`);
    const h = only(p);
    expect(p.blocked).toBe(true);
    expect(p.risk).toBe('critical');
    expect(p.blockers).toEqual([
      expect.objectContaining({ kind: 'violates-must-allow', subject: 'admin ssh to web1', host: 'web1' }),
    ]);
    expect(p.blockers[0]?.example).toMatch(/^tcp 198\.51\.100\.\d+:\d+ -> 192\.0\.2\.11:22 /);
    expect(h.blastRadius.find((e) => e.kind === 'admin')).toMatchObject({
      subject: 'admin tcp/22 from 198.51.100.0/24',
      before: 'open',
      after: 'closed',
      effect: 'loses-access',
    });
    // The site's other intent is about web2's address: it says nothing about web1's ruleset.
    expect(h.intentViolations.map((v) => v.intent)).toEqual(['admin ssh to web1']);
  });

  it('reports findings fixed (SSH restricted to the admin network) without calling the change risky', () => {
    const p = plan(SITE, FIXED, `${CHANGE}/ssh-from-admins.nft`);
    const h = only(p);
    expect(h.findings.fixed.map((f) => f.rule)).toContain('admin-port-exposed');
    expect(h.findings.introduced).toEqual([]);
    expect(h.changes.every((c) => c.from === 'accept' && c.to === 'drop')).toBe(true);
    expect(p.blocked).toBe(false);
    // Connections from outside the admin network to SSH are now dropped: a verdict change to drop, nobody loses.
    expect(p.risk).toBe('medium');
  });

  it('compares a first ruleset with an accept-everything one and blocks it when it closes the shop', () => {
    const first = plan(SHOP, null, OUTAGE);
    const h = only(first);
    expect(h.firstRuleset).toBe(true);
    expect(first.blocked).toBe(true);
    expect(first.blockers.filter((b) => b.kind === 'closes-public-service').map((b) => b.message)).toEqual([
      'closes tcp/80 of service shop on web1 to the internet (had no ruleset before)',
      'closes tcp/443 of service shop on web1 to the internet (had no ruleset before)',
    ]);
    // A first ruleset replaces nothing: its findings are all introduced.
    expect(h.findings.fixed).toEqual([]);
    expect(h.findings.introduced.length).toBeGreaterThan(0);
  });

  it('does not block a first ruleset that keeps the shop open', () => {
    const first = plan(SHOP, null, FIXED);
    expect(only(first).firstRuleset).toBe(true);
    expect(first.blockers.filter((b) => b.kind === 'closes-public-service')).toEqual([]);
    expect(only(first).changes.some((c) => c.from === 'accept' && c.to === 'drop')).toBe(true);
  });

  it('plans several hosts: the highest risk wins and every blocker is listed', () => {
    const p = computePlan(config(SHOP), [input('web1', FIXED, OUTAGE), input('web2', FIXED, FIXED)], {
      today: '2026-11-24',
    });
    expect(p.hosts.map((h) => [h.host, h.risk])).toEqual([
      ['web1', 'critical'],
      ['web2', 'low'],
    ]);
    expect(p.risk).toBe('critical');
    expect(p.blockers.every((b) => b.host === 'web1')).toBe(true);
    expect(p.summary).toMatch(/^2 hosts, 1 flow change, /);
  });

  it('throws a ParseError at file:line:column for a bad desired ruleset', () => {
    const bad = `${CHANGE}/invalid/bad.nft`;
    let err: unknown;
    try {
      plan(SHOP, FIXED, bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ParseError);
    const pe = err as ParseError;
    expect(pe.file).toBe(bad);
    expect(pe.line).toBe(9);
    expect(pe.column).toBeGreaterThan(1);
    expect(pe.message).toMatch(new RegExp(`^${bad}:9:\\d+: `));
    expect(pe.token).toBe('acept');
  });

  it('refuses a host the config does not declare, naming the declared hosts', () => {
    expect(() => plan(SHOP, FIXED, FIXED, 'db1')).toThrow(UserError);
    expect(() => plan(SHOP, FIXED, FIXED, 'db1')).toThrow(/host 'db1' is not declared .*declared hosts: web1, web2/);
  });

  it('reports its phases in order, so a caller can time them', () => {
    const phases: PlanPhase[] = [];
    computePlan(config(SHOP), [input('web1', FIXED, OUTAGE)], {
      onPhase: (_h, p) => {
        if (p !== 'done') phases.push(p);
      },
    });
    expect(phases).toEqual(['parse', 'compile', 'diff', 'audit', 'intents', 'blast-radius']);
  });
});

describe('computePlan with diffOnly (drift checks)', () => {
  const drift = (current: PlanHostInput['current'], desired: PlanHostInput['desired']) => {
    const phases: PlanPhase[] = [];
    const p = computePlan(config(SHOP), [{ host: 'web1', current, desired }], {
      diffOnly: true,
      onPhase: (_h, ph) => {
        if (ph !== 'done') phases.push(ph);
      },
    });
    return { h: only(p), phases };
  };
  const iptables = read('test/fixtures/iptables/hardened-web.rules');

  it('recognises the same ruleset printed again (dates, counters, handles) without parsing it', () => {
    const reprinted = iptables
      .replace(/ on [A-Z][a-z]{2} .*$/gm, ' on Wed Dec  2 10:00:00 2026')
      .replace(/^(:\S+ \S+) \[0:0\]/gm, '$1 [1234:567890]');
    expect(reprinted).not.toBe(iptables);
    const { h, phases } = drift(
      { text: iptables, format: 'iptables-save', file: 'desired' },
      { text: reprinted, format: 'iptables-save', file: 'live' },
    );
    expect(h.changes).toEqual([]);
    expect(phases).toEqual(['parse']);
    // Text that does not parse is not in sync by fingerprint unless it is the same text.
    const nft = read(OUTAGE);
    const withHandles = nft.replace(/accept$/m, 'accept # handle 7').replace(/counter/, 'counter packets 3 bytes 120');
    expect(drift(side(OUTAGE), { text: withHandles, format: 'nft-text', file: 'live' }).phases).toEqual(['parse']);
  });

  it('gives the same changes as a full plan when the live ruleset differs', () => {
    for (const [cur, des] of [
      [FIXED, OUTAGE],
      [OUTAGE, FIXED],
      [`${CHANGE}/open-8443.nft`, FIXED],
    ] as const) {
      const full = only(plan(SHOP, cur, des));
      const { h, phases } = drift(side(cur), side(des));
      expect(h.changes, `${cur} -> ${des}`).toEqual(full.changes);
      expect(phases).toEqual(['parse', 'diff']);
      expect(h.findings).toEqual({ introduced: [], fixed: [] });
    }
  });

  it('compares a first ruleset against the empty one', () => {
    const full = only(plan(SHOP, null, OUTAGE));
    expect(drift(null, side(OUTAGE)).h.changes).toEqual(full.changes);
  });
});

describe('computePlan plans what the host will run (issue 12)', () => {
  const text = (t: string, file = 'desired.nft') => ({ text: t, format: 'nft-text' as const, file });
  const planText = (desired: string, current: string | null = FIXED, cfg = SHOP): Plan =>
    computePlan(config(cfg), [
      { host: 'web1', current: current === null ? null : side(current), desired: text(desired) },
    ]);

  it.each([
    ['an empty file', ''],
    ['only comments', '# nothing here yet\n# TODO\n'],
    ['flush ruleset', 'flush ruleset\n'],
  ])('blocks %s on a host that has a firewall: the agent would delete it and accept everything', (_n, desired) => {
    const p = planText(desired);
    const h = only(p);
    expect(p.blocked).toBe(true);
    expect(p.risk).toBe('critical');
    expect(h.notes?.[0]).toMatch(
      /defines none of the managed tables \(inet filter\): the agent deletes them, and web1 runs without a firewall/,
    );
    expect(p.blockers.map((b) => b.kind).sort()).toEqual(['exposes-admin-port', 'violates-must-deny']);
    expect(p.blockers.find((b) => b.kind === 'exposes-admin-port')?.message).toBe(
      'opens admin port tcp/5432 on web1 to the internet outside the admin networks (was closed)',
    );
    expect(p.blockers.find((b) => b.kind === 'violates-must-deny')?.example).toMatch(/-> 192\.0\.2\.11:5432 /);
  });

  it('refuses a ruleset that names a table the agent does not manage, listing the managed ones', () => {
    expect(() =>
      planText('table ip nat {\n  chain postrouting {\n    type nat hook postrouting priority 100;\n  }\n}\n'),
    ).toThrow(
      /^desired\.nft:1:10: defines table ip nat, which the agent does not manage on this host; expected a managed table \(inet filter\)/,
    );
  });

  it("refuses a ruleset in the other firewall's format", () => {
    const ipt = '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n';
    expect(() =>
      computePlan(config(SHOP), [
        { host: 'web1', current: null, desired: { text: ipt, format: 'iptables-save', file: 'x' } },
      ]),
    ).toThrow(/cannot be applied to an nftables host/);
  });

  it('rates a newly violated must-deny intent and a newly exposed admin port at least high, blocking by default', () => {
    const opens = read(FIXED).replace('tcp dport { 80, 443 } accept', 'tcp dport { 80, 443, 5432 } accept');
    const p = planText(opens);
    expect(p.blocked).toBe(true);
    expect(p.blockers.map((b) => b.kind).sort()).toEqual(['exposes-admin-port', 'violates-must-deny']);
    expect(p.summary).toContain(
      "blocked: opens admin tcp/5432 on web1 to the internet; violates 'no database from outside' on web1",
    );
  });

  it('warns instead of blocking for the dangers left out of policy.block-on, still at least high', () => {
    const cfg = 'test/fixtures/change/block-on-outages.yaml';
    const opens = read(FIXED).replace('tcp dport { 80, 443 } accept', 'tcp dport { 80, 443, 5432 } accept');
    const p = computePlan(config(cfg), [{ host: 'web1', current: side(FIXED), desired: text(opens) }]);
    const h = only(p);
    expect(p.blocked).toBe(false);
    expect(p.risk).toBe('high');
    expect(h.warnings?.map((b) => b.kind).sort()).toEqual(['exposes-admin-port', 'violates-must-deny']);
    expect(renderPlanText(p, { color: false })).toContain('Dangers not blocking (2, not in policy.block-on):');
    // the founding outage still blocks: closing a public service is in the list
    expect(computePlan(config(cfg), [input('web1', FIXED, OUTAGE)]).blocked).toBe(true);
  });

  it('does not call a must-deny intent newly violated when the current ruleset violates it as much already', () => {
    const opens = read(FIXED).replace('tcp dport { 80, 443 } accept', 'tcp dport { 80, 443, 5432 } accept');
    const both = computePlan(config(SHOP), [
      { host: 'web1', current: text(opens, 'current.nft'), desired: text(`${opens}\n# a comment\n`) },
    ]);
    expect(both.blocked).toBe(false);
    expect(only(both).intentViolations.map((v) => v.intent)).toContain('no database from outside');
  });
});

describe('rendering a plan', () => {
  const outage = plan(SHOP, FIXED, OUTAGE);

  it('text without colour has no escape codes and names the blockers', () => {
    const text = renderPlanText(outage, { color: false });
    expect(text).not.toContain('\x1b[');
    expect(text).toContain('BLOCKED');
    expect(text).toContain('x closes tcp/443 of service shop on web1 to the internet (was open)');
    expect(text).toMatch(/shop tcp\/443 +service +open -> closed +loses access/);
  });

  it('text with colour paints lost access red and gained access green', () => {
    expect(renderPlanText(outage, { color: true })).toMatch(/\x1b\[31m {4}shop tcp\/443 .*loses access\x1b\[0m/);
    const fix = renderPlanText(plan(SHOP, OUTAGE, FIXED), { color: true });
    expect(fix).toMatch(/\x1b\[32m {4}shop tcp\/443 .*gains access\x1b\[0m/);
    expect(fix).not.toContain('BLOCKED');
  });

  it('markdown has a heading with the risk and a BLOCKED banner, the blast radius table, flows and findings', () => {
    const md = renderPlanMarkdown(outage);
    expect(md.split('\n')[0]).toBe('## Rampart plan: risk **critical** — ⛔ BLOCKED');
    expect(md).toContain('> **BLOCKED**');
    expect(md).toContain('| Blast radius | Kind | Before | After | Effect | Example |');
    expect(md).toMatch(/\| shop tcp\/443 \| service \| open \| closed \| 🔴 loses access \| `tcp /);
    expect(md).toContain('| input | accept → drop | `tcp dport 80,443');
    // all-inbound-blocked, and public-service-blocked once for both shop ports (one cause, one finding).
    expect(md).toContain('**Findings introduced (2)**');
    expect(md).toContain('- **critical** `public-service-blocked` at `');
    const fine = renderPlanMarkdown(plan(SHOP, FIXED, `${CHANGE}/reordered.nft`));
    expect(fine.split('\n')[0]).toBe('## Rampart plan: risk **low**');
    expect(fine).not.toContain('BLOCKED');
    expect(fine).toContain('**Flow changes:** none');
  });
});
