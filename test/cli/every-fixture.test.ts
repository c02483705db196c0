/**
 * `rampart parse` and `rampart trace` work on every fixture, as a user runs them: the built CLI, real files, real exit
 * codes. Fixtures that need a companion file get it (the ipset host its ipset save, ip6tables dumps an IPv6 packet).
 * The runs share one process (cliRunner): the test is about each fixture's output; real start-ups are tested in
 * errors.test.ts (parse) and trace.test.ts.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner, ensureBuilt, root } from './cli.js';

const fixturesDir = join(root, 'test', 'fixtures');

/** Files that are not rulesets on their own: included parts, ipset dumps, scripts, docs. */
const NOT_RULESETS = /(\.md|\.sh|\.mjs|\.yaml|ipsets\.save|defines-vars\.nft|typo\.nft|corpus\.json)$/;

function fixtures(): string[] {
  const out: string[] = [];
  for (const dir of readdirSync(fixturesDir, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    // Files only: per-rule folders (test/fixtures/audit/<rule-id>/) belong to their own tests.
    const files = readdirSync(join(fixturesDir, dir.name), { withFileTypes: true }).filter((f) => f.isFile());
    for (const f of files.map((x) => x.name).sort()) {
      if (!NOT_RULESETS.test(f)) out.push(`test/fixtures/${dir.name}/${f}`);
    }
  }
  return out;
}

function extraArgs(file: string): string[] {
  return file.endsWith('ipset-host.rules') ? ['--ipset', 'test/fixtures/iptables/ipsets.save'] : [];
}

function packetArgs(file: string): string[] {
  const v6 = file.endsWith('6.rules');
  return [
    '--hook',
    'input',
    '--iif',
    'eth0',
    '--src',
    v6 ? '2001:db8:1::7' : '203.0.113.7',
    '--dst',
    v6 ? '2001:db8:2::10' : '192.0.2.10',
    '--proto',
    'tcp',
    '--sport',
    '40000',
    '--dport',
    '443',
  ];
}

const rampart = cliRunner();

beforeAll(() => ensureBuilt(), 180_000);
afterAll(() => rampart.close());

describe('every fixture', () => {
  const files = fixtures();

  it('has at least 30 ruleset fixtures to run on', () => {
    expect(files.length).toBeGreaterThanOrEqual(30);
  });

  it.each(files)('parses %s to a model with tables and prints it as JSON', async (file) => {
    const r = await rampart('parse', file, '--json', ...extraArgs(file));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const model = JSON.parse(r.stdout) as { kind: string; tables: unknown[] };
    expect(model.kind).toBe('ruleset');
    expect(model.tables.length).toBeGreaterThan(0);
  });

  it.each(files)('traces an https packet through %s with a verdict and a path', async (file) => {
    const r = await rampart('trace', file, ...packetArgs(file), '--json', ...extraArgs(file));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as { verdict: string; path: unknown[] };
    expect(['accept', 'drop', 'reject']).toContain(result.verdict);
    expect(Array.isArray(result.path)).toBe(true);
  });
});
