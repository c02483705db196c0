import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FinalVerdict, L3, Packet, Ruleset } from '../firewall/model.js';
import { parseRuleset } from '../firewall/parse.js';
import type { TraceHook, TraceResult } from '../firewall/tracer.js';
import { TRACE_HOOKS, trace } from '../firewall/tracer.js';
import { generateEngineRuleset } from '../lab/engine-generator.js';
import type { Pools, Rng } from '../lab/generate.js';
import { generateIptablesRuleset, generateNftRuleset, makePools, rng } from '../lab/generate.js';
import { breathe } from '../testing/breathe.js';
import { compileAnyState, compileRuleset } from './compile.js';
import { createPacketSpace } from './packet-space.js';
import type { Decider, Decision } from './types.js';
import { findUnreachable, unreachableJson } from './unreachable.js';

const bigints = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

/**
 * Lets the event loop run between the cases of a long synchronous property test: a vitest worker that does not
 * answer its runner for 60 s (a busy machine makes these tests several times slower) fails the run with
 * `Timeout calling "onTaskUpdate"` although every test passed.
 */

const IFACES = ['eth0', 'eth1', 'lo', 'wg0', 'docker0', 'veth12ab'];

/**
 * The packet space of one ruleset, shared by every hook compiled from it (as the audit does). A small operation
 * cache: the default (2^21 entries, 32 MB zeroed per space) is sized for rulesets of thousands of rules and cost
 * these tests more CPU than their compilations (about 50 ms per space, ~200 spaces). The cache only remembers
 * results, so its size changes no answer; a small one also makes collisions (evictions) frequent, which these
 * agreement checks then cover too.
 */
const testSpace = (rs: Ruleset, interfaces: readonly string[] = IFACES) =>
  createPacketSpace([rs], { interfaces, cacheBits: 16 });

/** testSpace(rs, interfaces), the same one for every hook of a ruleset in a property test's list of cases. */
function spaceFor(interfaces: readonly string[]): (rs: Ruleset) => ReturnType<typeof testSpace> {
  const made = new Map<Ruleset, ReturnType<typeof testSpace>>();
  return (rs) => {
    const s = made.get(rs) ?? testSpace(rs, interfaces);
    made.set(rs, s);
    return s;
  };
}

function randomPacket(r: Rng, pools: Pools): Packet {
  const family: L3 = r.chance(0.6) ? 'ipv4' : 'ipv6';
  const v4 = family === 'ipv4';
  const pick = (a: readonly string[], b: readonly string[]) => (r.chance(0.8) ? r.pick(a) : r.pick(b));
  const saddr = v4 ? pick(pools.src4, pools.dst4) : pick(pools.src6, pools.dst6);
  const daddr = v4 ? pick(pools.dst4, pools.src4) : pick(pools.dst6, pools.src6);
  const roll = r.next();
  const l4proto = roll < 0.45 ? 6 : roll < 0.7 ? 17 : roll < 0.85 ? (v4 ? 1 : 58) : r.pick([47, 132, 1, 58, 50]);
  const port = () => (r.chance(0.8) ? r.pick(pools.ports) : r.int(0, 65535));
  const p: Record<string, unknown> = { family, saddr, daddr, l4proto };
  if ([6, 17, 33, 132, 136].includes(l4proto)) {
    p.sport = r.chance(0.2) ? r.pick(pools.ports) : r.int(1024, 65535);
    p.dport = port();
  }
  if (l4proto === 1 || l4proto === 58) {
    p.icmpType = r.pick([0, 3, 8, 128, 129, 135, r.int(0, 255)]);
    p.icmpCode = r.chance(0.8) ? 0 : r.int(0, 15);
  }
  if (r.chance(0.85)) p.iif = r.pick(IFACES);
  if (r.chance(0.85)) p.oif = r.pick(IFACES);
  p.ctState = r.pick(['new', 'new', 'established', 'related', 'invalid', 'untracked']);
  if (r.chance(0.3)) p.mark = r.pick([1, 0x10, 0x4000, 0x4001, r.int(0, 0xffffffff)]);
  if (l4proto === 6 && r.chance(0.3)) p.tcpFlags = r.int(0, 255);
  if (r.chance(0.2)) p.saddrType = r.pick(['unicast', 'local', 'broadcast', 'multicast']);
  if (r.chance(0.2)) p.daddrType = r.pick(['unicast', 'local', 'broadcast', 'multicast']);
  return p as unknown as Packet;
}

/** The tracer went on with an approximation the engine reports as uncertain instead (nat to a range, redirect). */
function tracerApproximated(t: TraceResult): boolean {
  return t.path.some((s) => s.kind === 'rule' && s.effect === 'nat');
}

/** Checks engine == tracer on packets; returns the number of certain agreements. */
function agree(
  rs: Ruleset,
  hook: TraceHook,
  packets: readonly Packet[],
  space: ReturnType<typeof testSpace> = testSpace(rs),
): number {
  const c = compileRuleset(rs, { hook, space });
  const all = compileRuleset(rs, { hook, space, assume: 'all' });
  const sets: [FinalVerdict | 'uncertain', ReturnType<typeof c.uncertain>][] = [
    ['accept', c.verdict('accept')],
    ['drop', c.verdict('drop')],
    ['reject', c.verdict('reject')],
    ['uncertain', c.uncertain()],
  ];
  // The four sets partition the space (checked for every packet at once), so a packet is in exactly one of them: the
  // first that contains it. Testing membership costs more than the rest of the check (a packet's bits are built anew
  // for each set), so it stops there.
  let union = space.none();
  for (const [v, s] of sets) {
    expect(union.and(s).isEmpty(), `${rs.file} hook ${hook}: ${v} overlaps another verdict`).toBe(true);
    union = union.or(s);
  }
  expect(union.equals(space.all()), `${rs.file} hook ${hook}: some packets have no verdict`).toBe(true);
  let certain = 0;
  for (const p of packets) {
    let t: TraceResult;
    try {
      t = trace(rs, p, { hook });
    } catch {
      continue;
    }
    const where = `${rs.file} hook ${hook} packet ${JSON.stringify(p)}`;
    const v = sets.find(([, s]) => s.contains(p, hook))?.[0];
    expect(v, `${where}: in no verdict set`).toBeDefined();
    if (v === 'uncertain') {
      expect(t.uncertain || tracerApproximated(t), `${where}: engine uncertain, tracer ${t.verdict}`).toBe(true);
    } else {
      certain++;
      // The main verdict (stateful matches as for a fresh source) is the tracer's.
      expect(t.verdict, where).toBe(v);
      // Where it is certain whatever the stateful matches do, the tracer has no alternative either.
      if (!all.uncertain().contains(p, hook)) expect(t.alternatives ?? [], where).toEqual([]);
    }
  }
  return certain;
}

describe('compileRuleset', () => {
  const nft = (text: string) => parseRuleset(text, 'test.nft', { format: 'nft-text' });

  it('gives the policy verdict to everything on an empty base chain', () => {
    const rs = nft('table inet f {\n chain input {\n type filter hook input priority 0; policy drop;\n }\n}\n');
    const c = compileRuleset(rs, { hook: 'input' });
    expect(c.verdict('drop').equals(c.space.all())).toBe(true);
    expect(c.verdict('accept').isEmpty()).toBe(true);
    expect(c.uncertain().isEmpty()).toBe(true);
    const d = c.decisions();
    expect(d).toHaveLength(1);
    expect(d[0]!.decider.kind).toBe('policy');
  });

  it('accepts only what the rules accept and finds the deciding rule', () => {
    const rs = nft(
      [
        'table inet f {',
        ' chain input {',
        '  type filter hook input priority 0; policy drop;',
        '  ct state established,related accept',
        '  tcp dport { 22, 443 } accept',
        '  tcp dport 22 drop',
        '  ip saddr 10.0.0.0/8 reject',
        ' }',
        '}',
      ].join('\n'),
    );
    const space = createPacketSpace([rs]);
    const c = compileRuleset(rs, { hook: 'input', space });
    const ssh = space.fromCube({
      'ct.state': [{ kind: 'symbol', value: 'new' }],
      l4proto: [{ kind: 'range', lo: 6n, hi: 6n }],
      dport: [{ kind: 'range', lo: 22n, hi: 22n }],
    });
    expect(c.verdict('accept').covers(ssh)).toBe(true);
    const rules = c.rules();
    expect(rules).toHaveLength(4);
    expect(c.hits(rules[2]!).isEmpty()).toBe(true);
    expect(c.hits(rules[1]!).isEmpty()).toBe(false);
    expect(c.arriving(rules[2]!).and(c.matchSet(rules[2]!)).isEmpty()).toBe(true);
    const rej = c.verdict('reject');
    expect(rej.isEmpty()).toBe(false);
    expect(rej.example()?.saddr.startsWith('10.')).toBe(true);
    const ds = c.decisions(ssh);
    expect(ds.map((d) => d.decider.kind === 'rule' && d.decider.position)).toEqual([2]);
  });

  it('follows jumps, gotos and returns', () => {
    const rs = nft(
      [
        'table ip f {',
        ' chain input {',
        '  type filter hook input priority 0; policy accept;',
        '  tcp dport 80 jump web',
        '  tcp dport 81 goto web',
        '  tcp dport 82 drop',
        ' }',
        ' chain web {',
        '  ip saddr 10.0.0.1 return',
        '  ip saddr 10.0.0.2 drop',
        ' }',
        '}',
      ].join('\n'),
    );
    const c = compileRuleset(rs, { hook: 'input' });
    const p = (dport: number, saddr: string): Packet => ({
      family: 'ipv4',
      saddr,
      daddr: '192.0.2.1',
      l4proto: 6,
      sport: 5000,
      dport,
    });
    expect(c.verdict('drop').contains(p(80, '10.0.0.2'))).toBe(true);
    expect(c.verdict('accept').contains(p(80, '10.0.0.1'))).toBe(true);
    expect(c.verdict('accept').contains(p(82, '10.0.0.1'))).toBe(false);
    agree(rs, 'input', [p(80, '10.0.0.1'), p(81, '10.0.0.1'), p(82, '10.0.0.3'), p(81, '10.0.0.2')]);
  });

  it('marks packets uncertain where an opaque match decides, certain elsewhere', () => {
    const rs = nft(
      [
        'table inet f {',
        ' chain input {',
        '  type filter hook input priority 0; policy drop;',
        '  tcp dport 22 limit rate 10/minute accept',
        '  tcp dport 80 accept',
        ' }',
        '}',
      ].join('\n'),
    );
    const space = createPacketSpace([rs]);
    const c = compileRuleset(rs, { hook: 'input', space, assume: 'all' });
    const port = (n: number) =>
      space.fromCube({
        l4proto: [{ kind: 'range', lo: 6n, hi: 6n }],
        dport: [{ kind: 'range', lo: BigInt(n), hi: BigInt(n) }],
      });
    expect(c.uncertain().equals(port(22))).toBe(true);
    expect(c.verdict('accept').equals(port(80))).toBe(true);
    expect(c.hits(c.rules()[0]!).equals(port(22))).toBe(true);
    // The main split: a fresh source is under the limit, so its SSH connections are accepted; an opaque match with
    // no known outcome stays uncertain.
    const main = compileRuleset(rs, { hook: 'input', space });
    expect(main.uncertain().isEmpty()).toBe(true);
    expect(main.verdict('accept').equals(port(80).or(port(22)))).toBe(true);
    const over = nft(
      'table inet f {\n chain input {\n  type filter hook input priority 0; policy accept;\n  tcp dport 22 limit rate over 10/minute drop\n  tcp dport 23 meta cpu 1 drop\n }\n}',
    );
    const s2 = createPacketSpace([over]);
    const m2 = compileRuleset(over, { hook: 'input', space: s2 });
    const p2 = (n: number) =>
      s2.fromCube({
        l4proto: [{ kind: 'range', lo: 6n, hi: 6n }],
        dport: [{ kind: 'range', lo: BigInt(n), hi: BigInt(n) }],
      });
    expect(m2.verdict('drop').isEmpty()).toBe(true);
    expect(m2.uncertain().equals(p2(23))).toBe(true);
  });

  it('models mark set exactly', () => {
    const rs = nft(
      [
        'table ip f {',
        ' chain pre {',
        '  type filter hook prerouting priority -150; policy accept;',
        '  tcp dport 80 meta mark set 0x4000',
        ' }',
        ' chain input {',
        '  type filter hook input priority 0; policy accept;',
        '  meta mark 0x4000 drop',
        ' }',
        '}',
      ].join('\n'),
    );
    const space = createPacketSpace([rs]);
    const c = compileRuleset(rs, { hook: 'input', space });
    const base = { family: 'ipv4' as const, saddr: '10.0.0.1', daddr: '192.0.2.1', l4proto: 6, sport: 5000 };
    expect(c.verdict('drop').contains({ ...base, dport: 80 }, 'input')).toBe(true);
    expect(c.verdict('drop').contains({ ...base, dport: 81, mark: 0x4000 }, 'input')).toBe(true);
    expect(c.verdict('accept').contains({ ...base, dport: 81, mark: 1 }, 'input')).toBe(true);
  });

  it('pulls filter verdicts back through dnat', () => {
    const rs = nft(
      [
        'table ip nat {',
        ' chain pre {',
        '  type nat hook prerouting priority dstnat; policy accept;',
        '  tcp dport 8080 dnat to 10.0.0.5:80',
        ' }',
        '}',
        'table ip f {',
        ' chain fwd {',
        '  type filter hook forward priority 0; policy drop;',
        '  ip daddr 10.0.0.5 tcp dport 80 accept',
        ' }',
        '}',
      ].join('\n'),
    );
    const c = compileRuleset(rs, { hook: 'forward' });
    const p = (dport: number, ctState: 'new' | 'established' = 'new'): Packet => ({
      family: 'ipv4',
      saddr: '198.51.100.7',
      daddr: '192.0.2.1',
      l4proto: 6,
      sport: 40000,
      dport,
      ctState,
    });
    expect(c.verdict('accept').contains(p(8080), 'forward')).toBe(true);
    expect(c.verdict('drop').contains(p(8080, 'established'), 'forward')).toBe(true);
    expect(c.verdict('drop').contains(p(80), 'forward')).toBe(true);
    agree(rs, 'forward', [p(8080), p(8080, 'established'), p(80)]);
  });

  it('handles verdict maps, one branch per entry', () => {
    const rs = nft(
      [
        'table inet f {',
        ' chain input {',
        '  type filter hook input priority 0; policy accept;',
        '  tcp dport vmap { 22 : accept, 23 : drop, 24 : jump j }',
        '  tcp dport 22 drop',
        ' }',
        ' chain j {',
        '  reject',
        ' }',
        '}',
      ].join('\n'),
    );
    const c = compileRuleset(rs, { hook: 'input' });
    const p = (dport: number): Packet => ({
      family: 'ipv6',
      saddr: '2001:db8::1',
      daddr: '2001:db8::2',
      l4proto: 6,
      sport: 1,
      dport,
    });
    expect(c.verdict('accept').contains(p(22), 'input')).toBe(true);
    expect(c.verdict('drop').contains(p(23), 'input')).toBe(true);
    expect(c.verdict('reject').contains(p(24), 'input')).toBe(true);
    expect(c.verdict('accept').contains(p(25), 'input')).toBe(true);
    const second = c.rules().find((r) => r.chain === 'input' && r.position === 2)!;
    expect(c.hits(second).isEmpty()).toBe(true);
  });

  it('agrees with the tracer on random nft rulesets and packets (all hooks)', async () => {
    let certain = 0;
    for (let seed = 1; seed <= 25; seed++) {
      await breathe();
      const g = generateNftRuleset(seed);
      const rs = parseRuleset(g.text, `gen-${seed}.nft`, { format: 'nft-text' });
      const r = rng(seed * 7919);
      const packets = Array.from({ length: 60 }, () => randomPacket(r, g.pools));
      const space = testSpace(rs);
      for (const hook of TRACE_HOOKS) certain += agree(rs, hook, packets, space);
    }
    expect(certain).toBeGreaterThan(600);
  });

  it('agrees with the tracer on random iptables rulesets and packets', async () => {
    let certain = 0;
    for (let seed = 1; seed <= 18; seed++) {
      await breathe();
      const g = generateIptablesRuleset(seed);
      const r = rng(seed * 104729);
      for (const [text, fam] of [
        [g.v4, 'v4'],
        [g.v6, 'v6'],
      ] as const) {
        const rs = parseRuleset(text, `gen-${seed}-${fam}.rules`, { format: 'iptables-save' });
        const packets = Array.from({ length: 60 }, () => randomPacket(r, g.pools));
        const space = testSpace(rs);
        for (const hook of ['input', 'forward', 'output'] as const) certain += agree(rs, hook, packets, space);
      }
    }
    expect(certain).toBeGreaterThan(600);
  });

  describe('agrees with the tracer on every fixture', () => {
    const root = join(import.meta.dirname, '../../test/fixtures');
    const files: string[] = [];
    for (const dir of ['nftables', 'nft-text', 'nft-json', 'iptables']) {
      for (const f of readdirSync(join(root, dir))) {
        if (/\.(nft|json|rules)$/.test(f) && !f.includes('ipsets') && !f.startsWith('defines-'))
          files.push(join(dir, f));
      }
    }
    for (const f of files) {
      it(f, () => {
        let rs: Ruleset;
        try {
          rs = parseRuleset(readFileSync(join(root, f), 'utf8'), f);
        } catch {
          return; // fixtures that need includes or ipsets are covered by their parser tests
        }
        const r = rng(f.length * 31 + f.charCodeAt(0));
        const pools = makePools(r);
        const packets = Array.from({ length: 50 }, () => randomPacket(r, pools));
        const space = testSpace(rs);
        for (const hook of TRACE_HOOKS) agree(rs, hook, packets, space);
      });
    }
  });
});

/**
 * The cases of the pathEnd and decidedBy properties: 20 random nft rulesets at every hook, 20 random iptables (v4)
 * rulesets at input/forward/output and kube-proxy, each compiled once (in one space per ruleset) and shared by both
 * properties; kube-proxy alone takes seconds of CPU to compile and decide. Built by the first test that needs them.
 */
type CompiledCase = { rs: Ruleset; hook: TraceHook; c: ReturnType<typeof compileRuleset> };
let decisionCases: CompiledCase[] | undefined;
async function compiledCases(): Promise<CompiledCase[]> {
  if (decisionCases) return decisionCases;
  const rulesets: [Ruleset, readonly TraceHook[]][] = [];
  const ipHooks = ['input', 'forward', 'output'] as const;
  for (let seed = 1; seed <= 20; seed++) {
    rulesets.push([
      parseRuleset(generateNftRuleset(seed).text, `gen-${seed}.nft`, { format: 'nft-text' }),
      TRACE_HOOKS,
    ]);
    const v4 = parseRuleset(generateIptablesRuleset(seed).v4, `gen-${seed}.rules`, { format: 'iptables-save' });
    rulesets.push([v4, ipHooks]);
  }
  const kube = 'test/fixtures/iptables/kube-proxy.rules';
  const k = parseRuleset(readFileSync(join(import.meta.dirname, '..', '..', kube), 'utf8'), kube, {
    format: 'iptables-save',
  });
  rulesets.push([k, ipHooks]);
  const cases: CompiledCase[] = [];
  for (const [rs, hooks] of rulesets) {
    await breathe();
    const space = testSpace(rs, []);
    for (const hook of hooks) {
      try {
        cases.push({ rs, hook, c: compileRuleset(rs, { hook, space }) });
      } catch {
        // a loop or a missing chain
      }
    }
  }
  decisionCases = cases;
  return cases;
}

describe('pathEnd', () => {
  it('is the path-end decision of decisions(), on random nft and iptables rulesets and kube-proxy', async () => {
    let nonEmpty = 0;
    for (const { rs, hook, c } of await compiledCases()) {
      // The path-end share of decisions() over every packet (what pathEnd must equal).
      let want = c.space.none();
      for (const d of c.decisions()) if (d.decider.kind === 'path-end') want = want.or(d.packets);
      expect(c.pathEnd().equals(want), `${rs.file} ${hook}`).toBe(true);
      if (!want.isEmpty()) nonEmpty++;
    }
    expect(nonEmpty).toBeGreaterThan(20);
  });
});

describe('decidedBy', () => {
  it("is the union of the chosen deciders' shares of decisions(), on random nft and iptables rulesets and kube-proxy", async () => {
    const keyOf = (d: Decider) =>
      d.kind === 'rule'
        ? `${d.family}/${d.table}/${d.chain}#${d.position}`
        : d.kind === 'policy'
          ? `p ${d.family}/${d.table}/${d.chain}`
          : 'end';
    let nonEmpty = 0;
    let checked = 0;
    for (const { rs, hook, c } of await compiledCases()) {
      const all = c.decisions();
      const r = rng(checked + 7);
      // Picks: the drops and rejects (a blocklist's shape), every other decider, and a random third (accepts too).
      const picks: ((d: Decision) => boolean)[] = [
        (d) => d.verdict !== 'accept',
        (_d) => r.chance(0.5),
        (d) => d.decider.kind !== 'path-end' && r.chance(0.34),
      ];
      for (const pick of picks) {
        const keys = new Set(all.filter(pick).map((d) => keyOf(d.decider)));
        let want = c.space.none();
        for (const d of all) if (keys.has(keyOf(d.decider))) want = want.or(d.packets);
        const got = c.decidedBy((d) => keys.has(keyOf(d)));
        expect(got.equals(want), `${rs.file} ${hook}`).toBe(true);
        checked++;
        if (!want.isEmpty()) nonEmpty++;
      }
    }
    expect(nonEmpty).toBeGreaterThan(40);
  });
});

describe('compileAnyState', () => {
  /** A random ruleset with a rate limit put in front of the verdict of some of its rules. */
  const withLimits = (text: string, r: Rng): string =>
    text
      .split('\n')
      .map((line) => {
        const m = /^( {4}(?!type |flags |elements )\S.*?) (accept|drop|reject|return|jump \S+)$/.exec(line);
        return m && r.chance(0.2) ? `${m[1]} limit rate 10/second ${m[2]}` : line;
      })
      .join('\n');

  it('answers as a full assume-all compilation, region or not (random rulesets with rate limits, the firewall shape)', () => {
    const cases: [Ruleset, TraceHook][] = [];
    for (let seed = 1; seed <= 16; seed++) {
      const text = withLimits(generateNftRuleset(seed).text, rng(seed * 13));
      let rs: Ruleset;
      try {
        rs = parseRuleset(text, `limits-${seed}.nft`, { format: 'nft-text' });
      } catch {
        continue;
      }
      for (const hook of TRACE_HOOKS) cases.push([rs, hook]);
    }
    const fw = generateEngineRuleset('firewall', 300, 5);
    cases.push([parseRuleset(fw, 'firewall-300.nft', { format: 'nft-text' }), 'input']);
    const rl = 'test/fixtures/audit/shadowed-rule/rate-limit.nft';
    const rlText = readFileSync(join(import.meta.dirname, '..', '..', rl), 'utf8');
    cases.push([parseRuleset(rlText, rl, { format: 'nft-text' }), 'input']);
    let split = 0;
    const spaceOf = spaceFor(IFACES);
    for (const [rs, hook] of cases) {
      const space = spaceOf(rs);
      let full: ReturnType<typeof compileRuleset>;
      try {
        full = compileRuleset(rs, { hook, space, assume: 'all' });
      } catch {
        continue; // a loop or a missing chain
      }
      const main = compileRuleset(rs, { hook, space });
      const got = compileAnyState(rs, main);
      if (got.constructor.name === 'SplitCompiled') split++;
      const where = `${rs.file} ${hook}`;
      for (const v of ['accept', 'drop', 'reject'] as const) {
        expect(got.verdict(v).equals(full.verdict(v)), `${where} ${v}`).toBe(true);
      }
      expect(got.uncertain().equals(full.uncertain()), `${where} uncertain`).toBe(true);
      expect(got.pathEnd().equals(full.pathEnd()), `${where} pathEnd`).toBe(true);
      expect(got.rules().length).toBe(full.rules().length);
      for (const ref of got.rules()) {
        expect(got.isHit(ref), `${where} ${ref.chain}#${ref.position} isHit`).toBe(!full.hits(ref).isEmpty());
        expect(got.hits(ref).equals(full.hits(ref)), `${where} ${ref.chain}#${ref.position} hits`).toBe(true);
        expect(got.arriving(ref).equals(full.arriving(ref)), `${where} ${ref.chain}#${ref.position} arriving`).toBe(
          true,
        );
        expect(got.matchSet(ref).equals(full.matchSet(ref)), `${where} ${ref.chain}#${ref.position} match`).toBe(true);
      }
      const byKey = (ds: readonly Decision[]) =>
        new Map(
          ds
            .filter((d) => !d.packets.isEmpty())
            .map((d) => [
              `${d.decider.kind === 'rule' ? `${d.decider.family} ${d.decider.table}/${d.decider.chain}#${d.decider.position}` : d.decider.kind === 'policy' ? `p ${d.decider.family} ${d.decider.table}/${d.decider.chain}` : 'end'}`,
              d.packets,
            ]),
        );
      const want = byKey(full.decisions());
      const have = byKey(got.decisions());
      expect([...have.keys()].sort(), `${where} deciders`).toEqual([...want.keys()].sort());
      for (const [k, s] of want) expect(have.get(k)!.equals(s), `${where} decider ${k}`).toBe(true);
      expect(JSON.stringify(unreachableJson(findUnreachable(got)), bigints)).toBe(
        JSON.stringify(unreachableJson(findUnreachable(full)), bigints),
      );
    }
    expect(split).toBeGreaterThan(10);
  });
});
