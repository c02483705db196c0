import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Ruleset } from '../../src/firewall/model.js';
import { parseRuleset } from '../../src/firewall/parse.js';
import {
  ENGINE_SHAPES,
  type EngineFormat,
  generateEngineRuleset,
  mutate,
  mutateWithChanges,
  SHAPE_FORMATS,
} from '../../src/lab/engine-generator.js';

function ruleCount(rs: Ruleset): number {
  let n = 0;
  for (const t of rs.tables) for (const c of t.chains) n += c.rules.length;
  return n;
}

const parse = (text: string, format: EngineFormat): Ruleset => parseRuleset(text, `gen.${format}`, { format });

describe('engine ruleset generator', () => {
  for (const shape of ENGINE_SHAPES) {
    for (const format of SHAPE_FORMATS[shape]) {
      it(`writes a ${shape} ruleset in ${format} that parses to exactly n rules`, () => {
        for (const n of [1000, 3000]) {
          const text = generateEngineRuleset(shape, n, 7, format);
          expect(ruleCount(parse(text, format))).toBe(n);
        }
      });
    }
  }

  it('is deterministic: same seed, same text; another seed, another text', () => {
    for (const shape of ENGINE_SHAPES) {
      expect(generateEngineRuleset(shape, 500, 1)).toBe(generateEngineRuleset(shape, 500, 1));
      expect(generateEngineRuleset(shape, 500, 1)).not.toBe(generateEngineRuleset(shape, 500, 2));
    }
  });

  it('writes the firewall shape with sets, ct state, interfaces, IPv6, jumps and all three verdicts', () => {
    const text = generateEngineRuleset('firewall', 2000, 3);
    for (const needle of ['@blocklist_v4', 'ct state', 'iifname', 'ip6 saddr', 'jump zone_', 'jump svc_', 'vmap']) {
      expect(text).toContain(needle);
    }
    for (const v of [' accept\n', ' drop\n', ' reject\n']) expect(text).toContain(v);
    // Prefix lengths of every size appear, IPv4 from /8-ish up to hosts.
    expect(text).toMatch(/ip saddr 10\.\d+\.\d+\.\d+\/1\d /);
    expect(text).toMatch(/ip saddr 10\.\d+\.\d+\.\d+\/2\d /);
    expect(text).toMatch(/ip saddr 10\.\d+\.\d+\.\d+ /);
  });

  it('keeps the parse at 100k rules (firewall and adversarial) exact', () => {
    expect(ruleCount(parse(generateEngineRuleset('firewall', 100_000, 42), 'nft-text'))).toBe(100_000);
    expect(ruleCount(parse(generateEngineRuleset('adversarial', 100_000, 42), 'iptables-save'))).toBe(100_000);
  }, 180_000);
});

describe('mutate', () => {
  for (const shape of ENGINE_SHAPES) {
    for (const format of SHAPE_FORMATS[shape]) {
      it(`changes about 1% of the rules of a ${shape} ${format} ruleset and keeps it parseable`, () => {
        const text = generateEngineRuleset(shape, 10_000, 5, format);
        const { text: next, changes } = mutateWithChanges(text, 0.01, 9);
        expect(changes.length).toBe(100);
        const kinds = new Set(changes.map((c) => c.kind));
        expect(kinds.has('delete')).toBe(true);
        expect(kinds.has('insert')).toBe(true);
        const deleted = changes.filter((c) => c.kind === 'delete').length;
        const inserted = changes.filter((c) => c.kind === 'insert').length;
        expect(ruleCount(parse(next, format))).toBe(10_000 - deleted + inserted);
        expect(mutate(text, 0.01, 9)).toBe(next);
        // Changed rules are really changed.
        for (const c of changes) if (c.kind !== 'delete' && c.kind !== 'insert') expect(c.after).not.toBe(c.before);
      });
    }
  }

  it('changes ports, addresses and verdicts of the adversarial shape', () => {
    const { changes } = mutateWithChanges(generateEngineRuleset('adversarial', 10_000, 5, 'nft-text'), 0.01, 9);
    const kinds = new Set(changes.map((c) => c.kind));
    for (const k of ['port', 'address', 'verdict'] as const) expect(kinds.has(k)).toBe(true);
  });
});

// The nft text must be what the kernel accepts, not only what our parser accepts.
const isRoot = process.getuid?.() === 0;
describe.skipIf(!isRoot)('generated nft text loads into a real kernel', () => {
  function inNamespace(fn: (ns: string) => void): void {
    const ns = `rampart-enggen-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      fn(ns);
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  }

  const cases: [string, string, 'nft' | 'iptables-restore'][] = [
    ['firewall nft text', generateEngineRuleset('firewall', 2000, 11), 'nft'],
    ['adversarial nft text', generateEngineRuleset('adversarial', 2000, 11, 'nft-text'), 'nft'],
    ['adversarial iptables-save', generateEngineRuleset('adversarial', 2000, 11, 'iptables-save'), 'iptables-restore'],
    ['kube-proxy nft text', generateEngineRuleset('kube-proxy', 2000, 11, 'nft-text'), 'nft'],
    ['mutated firewall nft text', mutate(generateEngineRuleset('firewall', 2000, 11), 0.05, 3), 'nft'],
    [
      'mutated adversarial iptables-save',
      mutate(generateEngineRuleset('adversarial', 2000, 11, 'iptables-save'), 0.05, 3),
      'iptables-restore',
    ],
  ];
  for (const [name, text, tool] of cases) {
    it(`loads the ${name}`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'rampart-enggen-'));
      try {
        const file = join(dir, 'ruleset');
        writeFileSync(file, text);
        inNamespace((ns) => {
          const argv = tool === 'nft' ? ['nft', '-f', file] : ['iptables-restore', file];
          execFileSync('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
          const listed =
            tool === 'nft'
              ? execFileSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'ruleset'], { encoding: 'utf8' })
              : execFileSync('ip', ['netns', 'exec', ns, 'iptables-save'], { encoding: 'utf8' });
          expect(listed.length).toBeGreaterThan(1000);
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 180_000);
  }
});
