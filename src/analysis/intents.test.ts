import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ParseError } from '../errors.js';
import { loadRuleset } from '../firewall/load.js';
import type { TraceHook } from '../firewall/tracer.js';
import { trace } from '../firewall/tracer.js';
import { compileRuleset, createPacketSpace } from './index.js';
import { checkIntents, parseIntents, renderIntents } from './intents.js';

const fail = (text: string): ParseError => {
  try {
    parseIntents(text, 'i.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ParseError);
    return e as ParseError;
  }
  throw new Error('expected a ParseError');
};

describe('parseIntents', () => {
  it('parses the shop intents fixture', () => {
    const file = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'intents', 'shop.yaml');
    const intents = parseIntents(readFileSync(file, 'utf8'), 'shop.yaml');
    expect(intents.map((i) => [i.name, i.must, i.line])).toEqual([
      ['shop https from anywhere', 'allow', 2],
      ['shop http from anywhere', 'allow', 9],
      ['ssh stays open for the admins', 'allow', 15],
      ['no database from outside', 'deny', 22],
    ]);
    expect(intents[0]?.spec).toMatchObject({ families: ['ipv4'], protos: [6], dport: [[443, 443]] });
    expect(intents[3]?.spec).toMatchObject({ iif: [{ value: 'eth0', wildcard: false }], ctState: ['new'] });
  });

  it('accepts a map with an intents list and per-intent hooks', () => {
    const [i] = parseIntents('intents:\n  - name: fwd\n    must: deny\n    hook: forward\n', 'i.yaml');
    expect(i).toMatchObject({ name: 'fwd', must: 'deny', hook: 'forward', spec: { ctState: ['new'] } });
  });

  it('reports a bad value at its line and column, naming the field and what is valid', () => {
    const e = fail('- name: web\n  must: allow\n  dport: 80,99999\n');
    expect(e.message).toBe(
      "i.yaml:3:10: intent 'web': dport '99999': not a port; expected ports 0-65535, service names (http, https, ssh, domain, ...) and ranges, like 80,https,8000-8100",
    );
  });

  it('reports an unknown field and a bad must', () => {
    expect(fail('- name: a\n  must: allow\n  port: 80\n').message).toBe(
      "i.yaml:3:3: unknown intent field 'port'; expected one of name, must, hook, family, from, to, proto, sport, dport, iif, oif, ct-state, icmp-type",
    );
    expect(fail('- name: a\n  must: permit\n').message).toBe(
      "i.yaml:2:9: must: 'permit' is not allow or deny; expected allow or deny",
    );
    expect(fail('- name: a\n  to: 10.0.0.1\n').message).toContain("i.yaml:1:3: intent 'a' has no 'must'");
  });

  it('reports invalid YAML and a document that is not a list', () => {
    expect(fail('- name: [unclosed\n').message).toMatch(/^i\.yaml:\d+:\d+: invalid YAML/);
    expect(fail('name: a\n').message).toContain('i.yaml:1:1');
    expect(fail('- name: a\n  must: allow\n- name: a\n  must: deny\n').message).toContain("duplicate intent name 'a'");
  });
});

describe('checkIntents', () => {
  const root = join(import.meta.dirname, '..', '..');
  const intents = parseIntents(readFileSync(join(root, 'test/fixtures/intents/shop.yaml'), 'utf8'), 'shop.yaml');
  const check = (file: string) => {
    const rs = loadRuleset([join(root, file)]);
    const space = createPacketSpace([rs], { interfaces: ['eth0'] });
    const compile = (hook: TraceHook) => compileRuleset(rs, { hook, space });
    return { rs, results: checkIntents(intents, compile) };
  };

  it('finds the founding outage violating the shop intents, with a counterexample the tracer confirms', () => {
    const { rs, results } = check('test/fixtures/nftables/founding-outage.nft');
    expect(results.map((r) => r.status)).toEqual(['violated', 'violated', 'holds', 'holds']);
    const [https] = results;
    expect(https?.counterexample).toMatchObject({ daddr: '192.0.2.10', l4proto: 6, dport: 443, ctState: 'new' });
    expect(https?.decidedBy).toMatchObject({ kind: 'policy', verdict: 'drop', chain: 'input' });
    if (https?.counterexample) expect(trace(rs, https.counterexample, { hook: 'input' }).verdict).toBe('drop');
  });

  it('finds every intent holding on the fixed ruleset', () => {
    expect(check('test/fixtures/queries/founding-fixed.nft').results.map((r) => r.status)).toEqual([
      'holds',
      'holds',
      'holds',
      'holds',
    ]);
  });
});

describe('intents are about traffic from outside the host', () => {
  const root = join(import.meta.dirname, '..', '..');
  const run = (file: string, yaml: string) => {
    const rs = loadRuleset([join(root, file)]);
    const space = createPacketSpace([rs], { interfaces: ['eth0'] });
    return checkIntents(parseIntents(yaml, 'i.yaml'), (hook: TraceHook) => compileRuleset(rs, { hook, space }));
  };

  it('does not count packets on lo as coming from outside: `iifname lo accept` breaks no must-deny', () => {
    // The founding outage accepts everything on lo, and nothing but SSH from outside.
    const [pg, onLo] = run(
      'test/fixtures/nftables/founding-outage.nft',
      '- name: no postgres\n  must: deny\n  proto: tcp\n  dport: 5432\n- name: no postgres on lo\n  must: deny\n  proto: tcp\n  dport: 5432\n  iif: lo\n',
    );
    expect(pg?.status).toBe('holds');
    // Asked about lo explicitly, the intent sees it.
    expect(onLo?.status).toBe('violated');
  });

  it('says what is violated in words: which sources, not a share of the packets', () => {
    const [outage] = run(
      'test/fixtures/nftables/founding-outage.nft',
      '- name: https\n  must: allow\n  proto: tcp\n  dport: 443\n',
    );
    expect(outage?.summary).toBe('not accepted from any source');
    const [ssh] = run(
      'test/fixtures/nftables/hardened-web.nft',
      '- name: no ssh\n  must: deny\n  to: 192.0.2.10\n  proto: tcp\n  dport: 22\n',
    );
    expect(ssh?.summary).toBe('accepted from 198.51.100.0/24, 203.0.113.10');
    expect(renderIntents([ssh!])).toContain(
      'VIOLATED  i.yaml:1: no ssh (must deny, hook input): accepted from 198.51.100.0/24, 203.0.113.10',
    );
  });
});
