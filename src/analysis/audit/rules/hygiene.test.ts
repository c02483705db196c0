import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY } from '../../../config/load.js';
import type { RampartConfig } from '../../../config/types.js';
import { loadRuleset } from '../../../firewall/load.js';
import { parseRuleset } from '../../../firewall/parse.js';
import { trace } from '../../../firewall/tracer.js';
import { generateFirewallNft } from '../../../lab/engine-generator.js';
import { createAuditContext } from '../context.js';
import { runAudit } from '../run.js';
import type { AuditContext, AuditRule, FindingDraft } from '../types.js';
import { HYGIENE_RULES } from './hygiene.js';

const root = join(import.meta.dirname, '..', '..', '..', '..');
const fixture = (rel: string) => join(root, 'test/fixtures/audit', rel);

function ctxOf(rel: string, extra: { config?: RampartConfig; today?: string } = {}): AuditContext {
  const file = fixture(rel);
  return createAuditContext({
    ruleset: loadRuleset([file]),
    file,
    today: extra.today ?? '2025-06-01',
    ...(extra.config ? { config: extra.config } : {}),
  });
}

function rule(id: string): AuditRule {
  const r = HYGIENE_RULES.find((x) => x.id === id);
  if (!r) throw new Error(`no rule ${id}`);
  return r;
}

const check = (id: string, rel: string, extra: Parameters<typeof ctxOf>[1] = {}): readonly FindingDraft[] =>
  rule(id).check(ctxOf(rel, extra));

/** The message with the fixture's absolute path shortened, so expectations read like the human output. */
const msg = (f: FindingDraft | undefined) => f?.message.replaceAll(`${join(root, 'test/fixtures/audit')}/`, '');

function config(audit: Partial<RampartConfig['audit']> = {}, addresses: string[] = []): RampartConfig {
  const at = { file: 'rampart.yaml', line: 1, column: 1 };
  return {
    file: 'rampart.yaml',
    hosts: [{ name: 'web1', addresses, at }],
    services: [],
    adminNetworks: ['198.51.100.0/24'],
    intents: [],
    audit: { rules: {}, ...audit },
    policy: DEFAULT_POLICY,
  };
}

describe('shadowed-rule', () => {
  it("names the earlier drop that takes the accept's packets, with a packet it drops", () => {
    const [f, ...rest] = check('shadowed-rule', 'shadowed-rule/triggers.nft');
    expect(rest).toEqual([]);
    expect(f?.location?.line).toBe(7);
    expect(f?.text).toBe('tcp dport 443 accept comment "shop: https"');
    expect(msg(f)).toBe(
      'accept rule inet filter/input #3 is shadowed: 60% of the packets it matches get a different verdict, decided before it by line 6, line 5. For example tcp 203.0.113.7:40000 -> 192.0.2.11:443 (https) iif other0 ct new is dropped by shadowed-rule/triggers.nft:6 (tcp dport 1-1023 drop comment "no privileged ports (added later)").',
    );
    expect(f?.related?.map((r) => r.location?.line)).toEqual([6, 5]);
    expect(f?.related?.[0]?.text).toBe('tcp dport 1-1023 drop comment "no privileged ports (added later)"');
    // The tracer agrees: the example never reaches line 7 and is dropped.
    const rs = loadRuleset([fixture('shadowed-rule/triggers.nft')]);
    const t = trace(rs, f?.example as NonNullable<FindingDraft['example']>, { hook: 'input' });
    expect(t.verdict).toBe('drop');
  });

  it('is silent when the exception comes before the broad drop', () => {
    expect(check('shadowed-rule', 'shadowed-rule/clean.nft')).toEqual([]);
  });

  it('does not call the drop after a rate-limited accept shadowed: above the rate it decides', () => {
    const all = ['shadowed-rule', 'redundant-rule', 'empty-rule'].flatMap((id) =>
      rule(id).check(ctxOf('shadowed-rule/rate-limit.nft')),
    );
    expect(all.map(msg)).toEqual([]);
  });

  it('reports a dead backstop (a final reject whose packets are mostly rejected earlier) at low severity', () => {
    const ctx = createAuditContext({
      ruleset: loadRuleset([join(root, 'test/fixtures/nftables/firewalld-style.nft')]),
      file: 'firewalld-style.nft',
      today: '2025-06-01',
    });
    const fs = rule('shadowed-rule').check(ctx);
    expect(fs.length).toBeGreaterThan(0);
    for (const f of fs) {
      expect(f.severity).toBe('low');
      expect(f.message).toContain('a backstop made dead by the rules before it');
    }
  });
});

describe('redundant-rule', () => {
  it('finds a rule covered by an earlier accept, and a chain nothing jumps to (one finding per chain)', () => {
    const fs = check('redundant-rule', 'redundant-rule/triggers.nft');
    expect(fs.map((f) => f.location?.line)).toEqual([7, 10]);
    expect(msg(fs[0])).toBe(
      'accept rule inet filter/input #3 is redundant: every packet it matches already gets the same outcome from line 6, line 5. For example tcp 10.1.113.7:40000 -> 192.0.2.11:22 (ssh) iif other0 ct new is accepted by redundant-rule/triggers.nft:6 (ip saddr 10.0.0.0/8 tcp dport 22 accept comment "internal ssh").',
    );
    expect(fs[0]?.example?.saddr).toBe('10.1.113.7');
    expect(msg(fs[1])).toBe(
      'chain inet filter/old_rules is never entered: no base chain jumps or goes to it, so its 1 rule never applies',
    );
    expect(fs[1]?.related?.[0]?.text).toBe('tcp dport 8080 accept comment "staging, removed from input in 2023"');
  });

  it('is silent on a tidy ruleset', () => {
    expect(check('redundant-rule', 'redundant-rule/clean.nft')).toEqual([]);
  });
});

describe('empty-rule', () => {
  it('finds a rule whose two source networks cannot both hold', () => {
    const fs = check('empty-rule', 'empty-rule/triggers.nft');
    expect(fs.map((f) => [f.location?.line, msg(f)])).toEqual([
      [
        6,
        'accept rule inet filter/input #2 can never match: its conditions contradict each other, so no packet satisfies them all',
      ],
    ]);
  });

  it('is silent on a tidy ruleset', () => {
    expect(check('empty-rule', 'empty-rule/clean.nft')).toEqual([]);
  });

  it('is silent on a lookup in a set that is empty as loaded and filled at run time (a CrowdSec blocklist)', () => {
    expect(check('empty-rule', 'empty-rule/runtime-set.nft')).toEqual([]);
  });
});

describe('unreachable rules across hook paths', () => {
  it('does not report a postrouting rule that only forwarded packets can reach (reachable on one path is reachable)', () => {
    const ctx = createAuditContext({
      ruleset: loadRuleset([join(root, 'test/fixtures/nftables/docker-nft.nft')]),
      file: 'docker-nft.nft',
      today: '2025-06-01',
    });
    const all = ['shadowed-rule', 'redundant-rule', 'empty-rule'].flatMap((id) => rule(id).check(ctx));
    // docker's masquerade rule tests `oifname != docker0` with a source of 172.17.0.0/16: only forwarded packets
    // from the containers get there, never locally generated ones on the output path.
    expect(all.map((f) => f.text).filter((t) => t?.includes('masquerade'))).toEqual([]);
    // Each rule is reported once even though its chain runs on several paths.
    const lines = all.map((f) => f.location?.line);
    expect(new Set(lines).size).toBe(lines.length);
  });
});

describe('no-established-accept', () => {
  it('finds replies dropped when the established accept is missing (the founding change without its first line)', () => {
    const [f, ...rest] = check('no-established-accept', 'no-established-accept/triggers.nft');
    expect(rest).toEqual([]);
    expect(msg(f)).toBe(
      "replies to this host's own connections are dropped on input (established tcp/IPv4, udp/IPv4, tcp/IPv6, udp/IPv6 replies from internet sources). For example tcp 203.0.113.7:443 -> 192.0.2.11:40000 iif other0 ct established is dropped by the drop policy of inet filter/input. Accept ct state established,related near the top of the input chain.",
    );
    expect(f?.location?.line).toBe(3); // the chain whose policy drops them
    const rs = loadRuleset([fixture('no-established-accept/triggers.nft')]);
    expect(trace(rs, f?.example as NonNullable<FindingDraft['example']>, { hook: 'input' }).verdict).toBe('drop');
  });

  it('finds an established accept that comes after more than establishedWithin rules', () => {
    const fs = check('no-established-accept', 'no-established-accept/late.nft');
    expect(fs.map((f) => [f.location?.line, msg(f)])).toEqual([
      [
        17,
        "the rule that accepts established replies (inet filter/input #13) comes after more than 10 rules on the input path: every reply packet is tested against them first, and a broad drop added among them cuts the host's own connections. Move ct state established,related accept to the top.",
      ],
    ]);
    expect(fs[0]?.example?.ctState).toBe('established');
  });

  it('counts the rules of the chains a reply enters on its way, and only those', () => {
    // An unconditional jump into a 20-rule chain before the accept: a reply passes all of them.
    const fs = check('no-established-accept', 'no-established-accept/jail-late.nft');
    expect(fs.map((f) => f.location?.line)).toEqual([6]);
    expect(msg(fs[0])).toContain('(inet filter/input #2) comes after more than 10 rules on the input path');
    // The same chain behind `tcp dport 22`: a reply (to an ephemeral port) never enters it.
    expect(check('no-established-accept', 'no-established-accept/jail-ssh.nft')).toEqual([]);
  });

  it('takes the limit from audit.establishedWithin', () => {
    expect(
      check('no-established-accept', 'no-established-accept/late.nft', { config: config({ establishedWithin: 20 }) }),
    ).toEqual([]);
  });

  it('ignores a blocklist dropping a few sources before the established accept', () => {
    expect(check('no-established-accept', 'no-established-accept/clean.nft')).toEqual([]);
    // late.nft drops twelve addresses even for replies: far from most replies, so only the placement is reported.
    const fs = check('no-established-accept', 'no-established-accept/late.nft');
    expect(fs.every((f) => !f.message.startsWith('replies'))).toBe(true);
  });
});

describe('icmp-blocked', () => {
  it('finds fragmentation-needed errors dropped for every source (established without related)', () => {
    const fs = check('icmp-blocked', 'icmp-blocked/triggers.nft');
    expect(fs.map(msg)).toEqual([
      'ICMP destination-unreachable/fragmentation-needed errors are dropped on input for every source (even as ct state related), so path MTU discovery breaks: connections through links with a smaller MTU hang. For example icmp 203.0.113.7 -> 192.0.2.11 type 3 code 4 iif other0 ct related is dropped by the drop policy of inet filter/input.',
    ]);
    expect(fs[0]?.example).toMatchObject({ l4proto: 1, icmpType: 3, icmpCode: 4, ctState: 'related' });
  });

  it('accepts that ping is dropped when errors come in as related', () => {
    expect(check('icmp-blocked', 'icmp-blocked/clean.nft')).toEqual([]);
  });
});

describe('icmpv6-nd-blocked', () => {
  it('finds neighbour discovery dropped when no ICMPv6 accept exists', () => {
    const fs = check('icmpv6-nd-blocked', 'icmpv6-nd-blocked/triggers.nft');
    expect(fs.map(msg)).toEqual([
      'IPv6 neighbour discovery is dropped on input from every link-local source (nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert): the host cannot resolve neighbours or learn routes, so IPv6 stops working. For example icmpv6 fe80::1 -> ff02::1:ff00:11 type 134 code 0 iif other0 ct untracked is dropped by the drop policy of inet filter/input.',
    ]);
    const rs = loadRuleset([fixture('icmpv6-nd-blocked/triggers.nft')]);
    expect(trace(rs, fs[0]?.example as NonNullable<FindingDraft['example']>, { hook: 'input' }).verdict).toBe('drop');
  });

  it('is silent when neighbour discovery is accepted', () => {
    expect(check('icmpv6-nd-blocked', 'icmpv6-nd-blocked/clean.nft')).toEqual([]);
  });

  it('does not report router solicitations dropped on a host that forwards nothing, but does on a router', () => {
    expect(check('icmpv6-nd-blocked', 'icmpv6-nd-blocked/host-no-rs.nft')).toEqual([]);
    expect(check('icmpv6-nd-blocked', 'icmpv6-nd-blocked/router-no-rs.nft').map((f) => [f.severity, msg(f)])).toEqual([
      [
        'medium',
        expect.stringMatching(
          /^IPv6 neighbour discovery is dropped on input from every link-local source \(nd-router-solicit\): this host forwards packets, and the hosts of its links that solicit a router get no answer/,
        ),
      ],
    ]);
  });
});

describe('nat-exposes-internal', () => {
  it('finds a port forward to a private address that forward accepts from anywhere', () => {
    const fs = check('nat-exposes-internal', 'nat-exposes-internal/triggers.nft');
    expect(fs.map((f) => [f.location?.line, msg(f)])).toEqual([
      [
        5,
        'port forward to internal address 10.0.0.5:80 is reachable from anywhere: tcp dport 8080 from every public source is translated and then accepted on forward. For example tcp 203.0.113.7:40000 -> 192.0.2.11:8080 (http-alt) iif eth0 ct new is translated and accepted by nat-exposes-internal/triggers.nft:13 (ip daddr 10.0.0.5 tcp dport 80 accept comment "admin panel").',
      ],
    ]);
    const rs = loadRuleset([fixture('nat-exposes-internal/triggers.nft')]);
    expect(trace(rs, fs[0]?.example as NonNullable<FindingDraft['example']>, { hook: 'forward' }).verdict).toBe(
      'accept',
    );
  });

  it('is silent when forward accepts the translated traffic from the admin network only', () => {
    expect(check('nat-exposes-internal', 'nat-exposes-internal/clean.nft')).toEqual([]);
  });

  it("finds docker's published port", () => {
    const ctx = createAuditContext({
      ruleset: loadRuleset([join(root, 'test/fixtures/nftables/docker-nft.nft')]),
      file: 'docker-nft.nft',
      today: '2025-06-01',
    });
    expect(
      rule('nat-exposes-internal')
        .check(ctx)
        .map((f) => f.message.split(':')[0]),
    ).toEqual(['port forward to internal address 172.17.0.2']);
  });
});

describe('expired-rule and expiring-rule', () => {
  it('finds a rule past its date, and an expiry that is not a date', () => {
    const fs = check('expired-rule', 'expired-rule/triggers.nft');
    expect(fs.map((f) => [f.location?.line, msg(f)])).toEqual([
      [
        6,
        'rule inet filter/input #2 expired on 2025-03-31 (62 days ago). It still applies, e.g. to tcp 203.0.113.7:40000 -> 192.0.2.11:8443 iif other0 ct new.',
      ],
      [
        7,
        'rule inet filter/input #3 carries expires=2025-02-30, which is not a valid date (expected YYYY-MM-DD): its expiry cannot be checked. It still applies, e.g. to tcp 203.0.113.50:40000 -> 192.0.2.11:22 (ssh) iif other0 ct new.',
      ],
    ]);
    expect(check('expiring-rule', 'expired-rule/triggers.nft')).toEqual([]);
  });

  it('finds a rule expiring within 14 days', () => {
    const fs = check('expiring-rule', 'expiring-rule/triggers.nft');
    expect(fs.map(msg)).toEqual([
      'rule inet filter/input #2 expires on 2025-06-10 (in 9 days). It still applies, e.g. to tcp 203.0.113.7:40000 -> 192.0.2.11:8443 iif other0 ct new.',
    ]);
    expect(check('expired-rule', 'expiring-rule/triggers.nft')).toEqual([]);
    // The window comes from audit.expiringWithinDays.
    expect(check('expiring-rule', 'expiring-rule/triggers.nft', { config: config({ expiringWithinDays: 7 }) })).toEqual(
      [],
    );
  });

  it('is silent for a date far ahead, and expires on the day after the date', () => {
    expect(check('expired-rule', 'expired-rule/clean.nft')).toEqual([]);
    expect(check('expiring-rule', 'expiring-rule/clean.nft')).toEqual([]);
    expect(check('expiring-rule', 'expiring-rule/triggers.nft', { today: '2025-06-10' }).map(msg)[0]).toContain(
      '(today)',
    );
    expect(check('expired-rule', 'expiring-rule/triggers.nft', { today: '2025-06-11' }).map(msg)[0]).toContain(
      'expired on 2025-06-10 (1 day ago)',
    );
  });
});

describe('rule-without-comment', () => {
  it('finds a deciding rule without a comment (nft), and ignores a bare counter', () => {
    const fs = check('rule-without-comment', 'rule-without-comment/triggers.nft');
    expect(fs.map((f) => [f.location?.line, f.text, msg(f)])).toEqual([
      [6, 'tcp dport 8443 accept', 'accept rule inet filter/input #2 has no comment: nobody can tell why it exists.'],
    ]);
  });

  it('reads iptables comments (-m comment --comment)', () => {
    const fs = check('rule-without-comment', 'rule-without-comment/triggers.iptables');
    expect(fs.map((f) => [f.location?.line, msg(f)])).toEqual([
      [7, 'accept rule ip filter/INPUT #2 has no comment: nobody can tell why it exists.'],
    ]);
  });

  it('is silent when every rule is explained', () => {
    expect(check('rule-without-comment', 'rule-without-comment/clean.nft')).toEqual([]);
  });
});

describe('unsupported-construct', () => {
  it('names the unmodelled match that makes the ssh verdicts uncertain (a rate limit does not: its main outcome is known)', () => {
    const fs = check('unsupported-construct', 'unsupported-construct/triggers.nft');
    expect(fs.map((f) => [f.location?.line, msg(f), f.uncertain])).toEqual([
      [
        7,
        '`meta cpu 1` (unsupported-field: meta cpu is not modelled) cannot be decided from the ruleset: the verdict of the traffic this rule applies to on the input path is uncertain (100% of the uncertain packets there). For example tcp 203.0.113.7:40000 -> 192.0.2.11:22 (ssh) iif other0 ct new.',
        true,
      ],
    ]);
  });

  it('is silent when every verdict is certain', () => {
    expect(check('unsupported-construct', 'unsupported-construct/clean.nft')).toEqual([]);
  });
});

describe('the hygiene rules together', () => {
  it('run through runAudit with ids, severities and a disabled rule', () => {
    const ctx = ctxOf('icmpv6-nd-blocked/triggers.nft', {
      config: config({
        rules: {
          'rule-without-comment': {
            enabled: false,
            justification: 'documented in the wiki',
            at: { file: 'rampart.yaml', line: 9, column: 5 },
          },
        },
      }),
    });
    const rep = runAudit(ctx, { rules: HYGIENE_RULES });
    expect(rep.findings.map((f) => [f.rule, f.severity])).toEqual([['icmpv6-nd-blocked', 'high']]);
    expect(rep.suppressed).toEqual([{ rule: 'rule-without-comment', justification: 'documented in the wiki' }]);
  });

  it('leave rule-without-comment out unless it is enabled (opt-in), and say how to enable it', () => {
    const ctx = createAuditContext({
      ruleset: loadRuleset([join(root, 'test/fixtures/nftables/founding-outage.nft')]),
      file: 'founding-outage.nft',
      today: '2025-06-01',
    });
    const rep = runAudit(ctx, { rules: HYGIENE_RULES });
    expect(rep.findings.map((f) => f.rule)).not.toContain('rule-without-comment');
    expect(rep.skipped).toContainEqual({
      rule: 'rule-without-comment',
      reason:
        'opt-in: enable it with --enable rule-without-comment, or under audit.rules.rule-without-comment in rampart.yaml',
    });
    expect(runAudit(ctx, { rules: HYGIENE_RULES, only: ['rule-without-comment'] }).findings.length).toBeGreaterThan(0);
  });

  it('find nothing but missing comments in the founding outage ruleset', () => {
    const ctx = createAuditContext({
      ruleset: loadRuleset([join(root, 'test/fixtures/nftables/founding-outage.nft')]),
      file: 'founding-outage.nft',
      today: '2025-06-01',
    });
    const rep = runAudit(ctx, { rules: HYGIENE_RULES, enable: ['rule-without-comment'] });
    expect([...new Set(rep.findings.map((f) => f.rule))]).toEqual(['icmpv6-nd-blocked', 'rule-without-comment']);
  });

  it('run on a 1k-rule ruleset (compile and unreachable analysis included; their cost is measured in bench/audit-bench.mjs)', () => {
    const ctx = createAuditContext({
      ruleset: parseRuleset(generateFirewallNft(1_000, 1), 'gen.nft'),
      file: 'gen.nft',
      today: '2025-06-01',
    });
    const rep = runAudit(ctx, { rules: HYGIENE_RULES, enable: ['rule-without-comment'] });
    expect(rep.summary.rulesRun).toBe(HYGIENE_RULES.length);
  });
});
