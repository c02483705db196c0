/**
 * A plan leaves out, on both sides, the rules whose unreachable-rule findings the change cannot alter
 * (settledRules in src/analysis/incremental.ts). Its findings must be exactly those of auditing every rule of both
 * versions (PlanOptions.settle false): checked on random iptables rulesets and real ones with nat, under random
 * text edits, and on the edits the argument has to get right (a jump that puts a chain on a path, a comment).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AUDIT_PATHS } from '../analysis/audit/rules/hygiene-common.js';
import { settledRules } from '../analysis/incremental.js';
import { createPacketSpace } from '../analysis/packet-space.js';
import { parseConfig } from '../config/load.js';
import type { Rule, Ruleset } from '../firewall/model.js';
import { parseRuleset } from '../firewall/parse.js';
import { generateIptablesRuleset, type Rng, rng } from '../lab/generate.js';
import { breathe } from '../testing/breathe.js';
import { rewritingRuleset } from '../testing/rewriting-ruleset.js';
import { computePlan } from './plan.js';
import type { Plan } from './types.js';

const root = join(import.meta.dirname, '..', '..');

const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));

type Format = 'iptables-save' | 'nft-text';

/** The tables of a ruleset text (the host manages all of them). */
const tablesOf = (text: string, format: Format) =>
  format === 'iptables-save'
    ? [...new Set([...text.matchAll(/^\*(\w+)/gm)].map((m) => m[1]))]
    : [...new Set([...text.matchAll(/^table (\w+) (\w+)/gm)].map((m) => `${m[1]} ${m[2]}`))];

function plans(before: string, after: string, format: Format): { settled: Plan; every: Plan } {
  const config = parseConfig(
    `site: t
hosts:
  - name: gen
    addresses: [192.0.2.10]
    firewall: ${format === 'iptables-save' ? 'iptables' : 'nftables'}
    tables: [${tablesOf(`${before}\n${after}`, format).join(', ')}]
services:
  - name: web
    hosts: [gen]
    public: [tcp/80, tcp/443]
admin-networks:
  - 192.0.2.0/28
`,
    't.yaml',
  );
  const input = [
    {
      host: 'gen',
      current: { text: before, format, file: 'before.rules' },
      desired: { text: after, format, file: 'after.rules' },
    },
  ];
  return {
    settled: computePlan(config, input, { today: '2026-11-24' }),
    every: computePlan(config, input, { today: '2026-11-24', settle: false }),
  };
}

/** How many rules of the two versions the plan leaves out of its audit. */
function settledCount(before: string, after: string, format: Format = 'iptables-save'): number {
  const a = parseRuleset(before, 'before.rules', { format });
  const b = parseRuleset(after, 'after.rules', { format });
  const s = settledRules(a, b, AUDIT_PATHS, createPacketSpace([a, b]));
  const count = (rs: Ruleset, settled: (r: Rule) => boolean) =>
    rs.tables.flatMap((t) => t.chains.flatMap((c) => c.rules)).filter(settled).length;
  return count(a, s.prev) + count(b, s.next);
}

/**
 * Random edits of an iptables-save text, line by line: delete a rule, move it, flip its verdict, copy a rule into
 * another chain of its table (jumps included: a copied jump can put a never-entered chain on a path), change or
 * add a comment.
 */
function editText(text: string, r: Rng, edits: number): string {
  const lines = text.split('\n');
  const rules = () => lines.flatMap((l, i) => (l.startsWith('-A ') ? [i] : []));
  const tableAt = (i: number) => {
    for (let k = i; k >= 0; k--) if (lines[k]!.startsWith('*')) return k;
    return -1;
  };
  const chainsOf = (t: number) => {
    const out: string[] = [];
    for (let k = t + 1; k < lines.length && !lines[k]!.startsWith('COMMIT'); k++)
      if (lines[k]!.startsWith(':')) out.push(lines[k]!.slice(1).split(' ')[0]!);
    return out;
  };
  for (let e = 0; e < edits; e++) {
    const rs = rules();
    if (rs.length === 0) break;
    const i = r.pick(rs);
    const line = lines[i]!;
    const chain = line.split(' ')[1]!;
    const roll = r.next();
    if (roll < 0.2) lines.splice(i, 1);
    else if (roll < 0.35) {
      // Move within its chain.
      const same = rs.filter((k) => lines[k]!.split(' ')[1] === chain);
      lines.splice(i, 1);
      const to = r.pick(same.map((k) => (k > i ? k - 1 : k)));
      lines.splice(to, 0, line);
    } else if (roll < 0.55) {
      const flipped = / -j ACCEPT\b/.test(line)
        ? line.replace(/ -j ACCEPT\b/, ' -j DROP')
        : line.replace(/ -j (DROP|REJECT)\b.*$/, ' -j ACCEPT');
      lines[i] = flipped;
    } else if (roll < 0.8) {
      // A copy into another chain of the same table (not into the chain it jumps to: no loop).
      const chains = chainsOf(tableAt(i)).filter((c) => !new RegExp(` -[jg] ${c}\\b`).test(line));
      if (chains.length === 0) continue;
      const target = r.pick(chains);
      const copy = line.replace(/^-A \S+/, `-A ${target}`);
      const at = rs.filter((k) => lines[k]!.split(' ')[1] === target);
      const after = at.length > 0 ? r.pick(at) : tableAt(i) + chainsOf(tableAt(i)).length;
      lines.splice(after + 1, 0, copy);
    } else {
      lines[i] = / --comment "[^"]*"/.test(line)
        ? line.replace(/ --comment "[^"]*"/, ` --comment "edited ${e}"`)
        : line.replace(/^(-A \S+)/, `$1 -m comment --comment "added ${e}"`);
    }
  }
  return lines.join('\n');
}

/**
 * Random edits of an nft text's rules: delete one, flip its verdict, copy it into another chain (not a jump into
 * that chain: no loop), retarget a dnat.
 */
function editNft(text: string, r: Rng, edits: number): string {
  const lines = text.split('\n');
  const isRule = (l: string) => /^ {4}\S/.test(l) && !/^ {4}type /.test(l);
  const chainAt = (i: number) => {
    for (let k = i; k >= 0; k--) {
      const m = /^ {2}chain (\S+)/.exec(lines[k]!);
      if (m) return m[1]!;
    }
    return '';
  };
  for (let e = 0; e < edits; e++) {
    const rs = lines.flatMap((l, i) => (isRule(l) ? [i] : []));
    if (rs.length === 0) break;
    const i = r.pick(rs);
    const line = lines[i]!;
    const roll = r.next();
    if (roll < 0.25) lines.splice(i, 1);
    else if (roll < 0.5) {
      lines[i] = /\baccept$/.test(line)
        ? line.replace(/accept$/, 'drop')
        : /\b(drop|reject)$/.test(line)
          ? line.replace(/(drop|reject)$/, 'accept')
          : line.replace(/dnat to (\S+):\d+/, 'dnat to $1:443');
    } else if (roll < 0.8) {
      const chains = [...new Set(rs.map(chainAt))].filter((c) => !line.endsWith(`jump ${c}`));
      const target = r.pick(chains);
      const at = rs.filter((k) => chainAt(k) === target);
      lines.splice(r.pick(at) + 1, 0, line);
    } else {
      lines[i] = line.replace(/dnat to (\S+):\d+/, 'dnat to $1:8080').replace(/ip daddr \S+/, 'ip daddr 10.0.0.1');
    }
  }
  return lines.join('\n');
}

/** Both plans, or undefined when the edit made a ruleset the engine refuses (a jump loop). */
function compare(before: string, after: string, what: string, format: Format = 'iptables-save'): Plan | undefined {
  let p: { settled: Plan; every: Plan };
  try {
    p = plans(before, after, format);
  } catch {
    return undefined;
  }
  expect(json(p.settled), what).toBe(json(p.every));
  return p.settled;
}

describe('a plan leaves out rules the change cannot alter: the same findings as auditing every rule', () => {
  it('on random iptables rulesets under random edits', async () => {
    let findings = 0;
    let settled = 0;
    let compared = 0;
    for (let seed = 1; seed <= 120; seed++) {
      await breathe();
      const before = generateIptablesRuleset(seed).v4;
      const after = editText(before, rng(seed * 59), 1 + (seed % 3));
      const p = compare(before, after, `seed ${seed}`);
      if (!p) continue;
      compared++;
      findings += p.hosts[0]!.findings.introduced.length + p.hosts[0]!.findings.fixed.length;
      settled += settledCount(before, after);
    }
    // The comparisons mean something: findings changed, and rules were left out.
    expect(compared).toBeGreaterThan(90);
    expect(findings).toBeGreaterThan(20);
    expect(settled).toBeGreaterThan(100);
  });

  it('on real rulesets with nat (kube-proxy, docker) under random edits', async () => {
    for (const file of ['test/fixtures/iptables/kube-proxy.rules', 'test/fixtures/iptables/docker-host.rules']) {
      const before = readFileSync(join(root, file), 'utf8');
      for (let seed = 1; seed <= 4; seed++) {
        await breathe();
        compare(before, editText(before, rng(seed * 61 + file.length), 2), `${file} seed ${seed}`);
      }
    }
  });

  it('on random nft rulesets that rewrite what later rules test (dnat, mark set), under random edits', async () => {
    let findings = 0;
    let settled = 0;
    for (let seed = 1; seed <= 120; seed++) {
      await breathe();
      const before = rewritingRuleset(seed);
      const after = editNft(before, rng(seed * 67), 1 + (seed % 2));
      const p = compare(before, after, `seed ${seed}`, 'nft-text');
      if (!p) continue;
      findings += p.hosts[0]!.findings.introduced.length + p.hosts[0]!.findings.fixed.length;
      settled += settledCount(before, after, 'nft-text');
    }
    expect(findings).toBeGreaterThan(20);
    expect(settled).toBeGreaterThan(50);
  });

  it('reports a rule that packets rewritten by a new dnat now reach (its match is tested after the rewrite)', () => {
    const before = `table ip t {
  chain mangle {
    type filter hook prerouting priority mangle; policy accept;
    meta mark set 0x0
    ip daddr 1.2.3.4 tcp dport 8080 meta mark set 0x1
  }
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 1.2.3.5 tcp dport 9090 dnat to 10.0.0.6:80
  }
  chain in {
    type filter hook input priority filter; policy drop;
    meta mark 0x0 drop
    ip daddr 10.0.0.5 tcp dport 80 accept
    ip saddr 192.168.0.0/16 udp dport 53 accept
  }
}
`;
    const after = before.replace(
      'dnat to 10.0.0.6:80\n',
      'dnat to 10.0.0.6:80\n    ip daddr 1.2.3.4 tcp dport 8080 dnat to 10.0.0.5:80\n',
    );
    const p = compare(before, after, 'dnat added', 'nft-text')!;
    // Before, every packet to 10.0.0.5:80 is marked 0 and dropped: the accept is shadowed. After, 1.2.3.4:8080 is
    // marked 1, rewritten to 10.0.0.5:80 and accepted by it: the finding is fixed, though the accept's own match
    // (10.0.0.5:80) meets no packet the new dnat matches (1.2.3.4:8080) before the rewrite.
    expect(p.hosts[0]!.findings.fixed.map((f) => f.message).join('\n')).toMatch(/ip t\/in #2 is shadowed/);
    expect(settledCount(before, after, 'nft-text')).toBeGreaterThan(0);
  });

  it('reports the rules a new jump puts on a path, though no packet of theirs enters their chain', () => {
    const before = `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:extra - [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A extra -p udp -m udp --dport 53 -j ACCEPT
COMMIT
`;
    const after = before.replace('-A INPUT -p tcp', '-A INPUT -p tcp -m tcp --dport 80 -j extra\n-A INPUT -p tcp');
    const p = compare(before, after, 'jump added')!;
    // The udp rule of `extra` is now on the input path, and never applies there: a finding the change introduces.
    expect(p.hosts[0]!.findings.introduced.map((f) => f.message).join('\n')).toMatch(
      /none of its packets enter chain extra/,
    );
    expect(settledCount(before, after)).toBeGreaterThan(0);
  });

  it('reports a rule kept out of its chain when a jump into the chain is deleted', () => {
    // udp never enters `extra`: which jumps it passes (arrives at) decides what the finding says covers it.
    const before = `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:extra - [0:0]
-A INPUT -p tcp -m tcp --dport 80 -j extra
-A INPUT -s 10.0.0.0/8 -j DROP
-A INPUT -p tcp -m tcp --dport 22 -j extra
-A extra -p udp -m udp --dport 53 -j ACCEPT
-A extra -p tcp -j ACCEPT
COMMIT
`;
    const after = before.replace('-A INPUT -p tcp -m tcp --dport 80 -j extra\n', '');
    const p = compare(before, after, 'jump deleted')!;
    // Before, every udp packet passes the first jump; after, those from 10.0.0.0/8 are dropped before any jump.
    expect(p.hosts[0]!.findings.fixed.map((f) => f.message).join('\n')).toMatch(/filter\/extra #1 is shadowed/);
    expect(p.hosts[0]!.findings.introduced.map((f) => f.message).join('\n')).toMatch(/filter\/extra #1 is shadowed/);
  });

  it('reports a rule whose example is decided by a new rule, across a mark rewritten before both', () => {
    // prerouting rewrites the mark of new connections before forward sees them: the jump's own match (mark 0x1) and
    // the packets the new reject hits are sets of different terms, so only their quantified forms can be compared.
    const before = `table ip t {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 10.3.3.6 tcp dport 53 meta mark set 0x1
    meta mark set 0x2
  }
  chain fwd {
    type filter hook forward priority filter; policy accept;
    meta mark 0x1 iifname "eth0" drop
    tcp dport 22 reject
    accept
    ip daddr 10.2.1.8 ip saddr 10.0.0.9 meta mark 0x1 jump sub
  }
  chain sub {
    tcp dport 80 drop
  }
}
`;
    const after = before.replace('tcp dport 22 reject\n', 'tcp dport 22 reject\n    iifname "eth0" reject\n');
    const p = compare(before, after, 'mark rewritten', 'nft-text')!;
    const jump = /ip t\/fwd #\d is shadowed/;
    expect(p.hosts[0]!.findings.fixed.map((f) => f.message).join('\n')).toMatch(jump);
    expect(p.hosts[0]!.findings.introduced.map((f) => f.message).join('\n')).toMatch(jump);
  });

  it('reports the same one of two copies of a line as the full audit does', () => {
    const before = `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -j ACCEPT
-A INPUT -p udp -m udp --dport 53 -j ACCEPT
-A INPUT -s 10.0.0.0/8 -j DROP
-A INPUT -p udp -m udp --dport 53 -j ACCEPT
COMMIT
`;
    // The first copy deleted: the alignment pairs the second with the one left, while the full audit's multiset
    // difference cancels the first finding of each identity and reports the second copy's as fixed.
    const after = before.replace('-A INPUT -p udp -m udp --dport 53 -j ACCEPT\n-A INPUT -s', '-A INPUT -s');
    const p = compare(before, after, 'copy deleted')!;
    expect(p.hosts[0]!.findings.fixed.map((f) => [f.location, f.message.slice(0, 45)])).toEqual([
      ['before.rules:8:1', 'accept rule ip filter/INPUT #4 is redundant: '],
    ]);
  });

  it('reports findings whose covering rule only had its comment changed', () => {
    const before = `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -s 10.0.0.0/8 -m comment --comment "old name" -j DROP
-A INPUT -s 10.1.0.0/16 -j DROP
-A INPUT -s 192.168.0.0/16 -p tcp -j ACCEPT
COMMIT
`;
    const after = before.replace('old name', 'new name');
    const p = compare(before, after, 'comment changed')!;
    // The redundant /16 drop quotes its cover's text: fixed in the old wording, introduced in the new.
    expect(p.hosts[0]!.findings.introduced).toHaveLength(1);
    expect(p.hosts[0]!.findings.fixed).toHaveLength(1);
    expect(settledCount(before, after)).toBeGreaterThan(0);
  });
});
