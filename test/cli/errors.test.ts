/**
 * Bad input through the CLI: every format names file:line:column and what was expected, exits 2, and never prints a
 * stack trace.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const main = join(root, 'dist', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'rampart-cli-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function parseFile(name: string, text: string, ...args: string[]) {
  const file = join(dir, name);
  writeFileSync(file, text);
  const r = spawnSync(process.execPath, [main, 'parse', file, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { file, code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('rampart parse on bad input', () => {
  it('rejects a misspelt verdict in nft text instead of treating it as an unknown match', () => {
    const r = parseFile(
      'typo.nft',
      'table inet f {\n  chain input {\n    type filter hook input priority 0; policy drop\n    tcp dport 22 acept\n  }\n}\n',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${r.file}:4:18: unexpected 'acept'; expected a match`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('names the line and column of an unbalanced brace in nft text', () => {
    const r = parseFile('brace.nft', 'table inet f {\n  chain input {\n    tcp dport 22 accept\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${r.file}:\\d+:\\d+: .*expected`));
  });

  it('names the position of a syntax error in nft JSON', () => {
    const r = parseFile(
      'bad.json',
      '{"nftables": [\n  {"table": {"family": "inet", "name": "f"}},\n  {"chain": }\n]}\n',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${r.file}:3:13:`);
  });

  it('names the option and what would be valid in iptables-save input', () => {
    const r = parseFile('bad.rules', '*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 99999 -j ACCEPT\nCOMMIT\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${r.file}:3:\\d+: .*99999.*expected`));
  });

  it('treats object-prototype names (constructor, toString) as unknown values, not as crashes', () => {
    const r = parseFile(
      'proto.rules',
      '*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport constructor -j ACCEPT\nCOMMIT\n',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${r.file}:3:25: bad port 'constructor'`);
  });

  it('says which table lacks its COMMIT', () => {
    const r = parseFile('nocommit.rules', '*filter\n:INPUT DROP [0:0]\n-A INPUT -j ACCEPT\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/filter/);
    expect(r.stderr).toMatch(/COMMIT/);
  });

  it('rejects an unknown --format with the valid ones', () => {
    const r = parseFile('ok.nft', 'table inet f {\n}\n', '--format', 'pf');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "expected one of text, json (the rulesets' format is --input-format: nft-json, nft-text, iptables-save)",
    );
  });

  it('reports a missing file without a stack trace', () => {
    const r = spawnSync(process.execPath, [main, 'parse', join(dir, 'missing.nft')], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/: no such file\n/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
