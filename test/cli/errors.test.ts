/**
 * Bad input through the CLI: every format names file:line:column and what was expected, exits 2, and never prints a
 * stack trace. The runs share one process (cliRunner), as the tests are about what parse prints; the last two tests
 * start the built CLI as its own process, as a user does.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner, ensureBuilt, main, rampart as rampartProcess, root } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 'rampart-cli-errors-'));
const rampart = cliRunner();
beforeAll(() => ensureBuilt(), 180_000);
afterAll(async () => {
  await rampart.close();
  rmSync(dir, { recursive: true, force: true });
});

async function parseFile(name: string, text: string, ...args: string[]) {
  const file = join(dir, name);
  writeFileSync(file, text);
  return { file, ...(await rampart('parse', file, ...args)) };
}

describe('rampart parse on bad input', () => {
  it('rejects a misspelt verdict in nft text instead of treating it as an unknown match', async () => {
    const r = await parseFile(
      'typo.nft',
      'table inet f {\n  chain input {\n    type filter hook input priority 0; policy drop\n    tcp dport 22 acept\n  }\n}\n',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${r.file}:4:18: unexpected 'acept'; expected a match`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('names the line and column of an unbalanced brace in nft text', async () => {
    const r = await parseFile('brace.nft', 'table inet f {\n  chain input {\n    tcp dport 22 accept\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${r.file}:\\d+:\\d+: .*expected`));
  });

  it('names the position of a syntax error in nft JSON', async () => {
    const r = await parseFile(
      'bad.json',
      '{"nftables": [\n  {"table": {"family": "inet", "name": "f"}},\n  {"chain": }\n]}\n',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${r.file}:3:13:`);
  });

  it('names the option and what would be valid in iptables-save input', async () => {
    const r = await parseFile(
      'bad.rules',
      '*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 99999 -j ACCEPT\nCOMMIT\n',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${r.file}:3:\\d+: .*99999.*expected`));
  });

  it('treats object-prototype names (constructor, toString) as unknown values, not as crashes', async () => {
    const r = await parseFile(
      'proto.rules',
      '*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport constructor -j ACCEPT\nCOMMIT\n',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${r.file}:3:25: bad port 'constructor'`);
  });

  it('says which table lacks its COMMIT', async () => {
    const r = await parseFile('nocommit.rules', '*filter\n:INPUT DROP [0:0]\n-A INPUT -j ACCEPT\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/filter/);
    expect(r.stderr).toMatch(/COMMIT/);
  });

  it('rejects an unknown --format with the valid ones', async () => {
    const r = await parseFile('ok.nft', 'table inet f {\n}\n', '--format', 'pf');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "expected one of text, json (the rulesets' format is --input-format: nft-json, nft-text, iptables-save)",
    );
  });

  it('reports a missing file without a stack trace', async () => {
    const r = await rampartProcess('parse', join(dir, 'missing.nft'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/: no such file\n/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('stops quietly when the reader closes the pipe early (`| head`), with the exit code it would have had', async () => {
    // 0.9 MB of JSON: more than a pipe holds, so the CLI is still writing when the reader goes away.
    const r = await new Promise<{ code: number | null; stderr: string; read: number }>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [main, 'parse', '--json', join(root, 'test/fixtures/iptables/kube-proxy.rules')],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stderr = '';
      let read = 0;
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      child.stdout.once('data', (d: Buffer) => {
        read = d.length;
        child.stdout.destroy();
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stderr, read });
      });
    });
    expect(r.read).toBeGreaterThan(0);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
