/**
 * One grammar for every command that reads rulesets (docs/cli.md): --format is the output, --json its shorthand,
 * --input-format the rulesets' format; the old spelling (--format nft-text) still works, with a note. The whole
 * matrix, command by command, against the built CLI: its runs share one process (cliRunner), as the test is about
 * what each command prints and its exit code; real start-ups are tested in each command's own file.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner, ensureBuilt, rampart as rampartProcess, root } from './cli.js';

const fx = (p: string) => join(root, 'test', 'fixtures', p);
const OUTAGE = fx('nftables/founding-outage.nft');
const FIXED = fx('queries/founding-fixed.nft');

/** Each command with the arguments it needs, reading nft text. */
const COMMANDS: Record<string, string[]> = {
  parse: ['parse', OUTAGE],
  trace: ['trace', OUTAGE, '--src', '203.0.113.7', '--dst', '192.0.2.11', '--dport', 'https'],
  reach: ['reach', OUTAGE, '--proto', 'tcp', '--dport', '80,443'],
  rules: ['rules', OUTAGE, '--unreachable'],
  diff: ['diff', OUTAGE, FIXED],
  intents: ['intents', FIXED, '--file', fx('intents/shop.yaml')],
  plan: ['plan', '--config', fx('config/shop.yaml'), '--host', 'web1', FIXED],
  audit: ['audit', OUTAGE, '--today', '2025-06-01'],
};

const json = (text: string): unknown => JSON.parse(text);

const rampart = cliRunner();

beforeAll(() => ensureBuilt());
afterAll(() => rampart.close());

describe.each(Object.entries(COMMANDS))('rampart %s', (_name, args) => {
  it('prints text by default, and JSON for --format json and for --json', async () => {
    const text = await rampart(...args);
    expect(text.code, text.stderr).toBeLessThan(2);
    expect(() => json(text.stdout)).toThrow();
    for (const flags of [['--format', 'json'], ['--json']]) {
      const r = await rampart(...args, ...flags);
      expect(r.code, r.stderr).toBe(text.code);
      expect(() => json(r.stdout)).not.toThrow();
    }
  });

  it('reads --input-format, and still reads the old --format nft-text with a note', async () => {
    const named = await rampart(...args, '--input-format', 'nft-text', '--json');
    expect(named.code, named.stderr).toBeLessThan(2);
    expect(named.stderr).toBe('');
    const old = await rampart(...args, '--format', 'nft-text');
    expect(old.code).toBe((await rampart(...args)).code);
    expect(old.stderr).toContain('rampart: note: --format nft-text is read as --input-format nft-text');
    const wrong = await rampart(...args, '--input-format', 'nft-json');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/invalid JSON|expected/);
  });

  it('refuses an unknown format, a contradiction and an unknown input format, saying what is valid', async () => {
    const bad = await rampart(...args, '--format', 'yaml');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--format 'yaml': unknown output format; expected one of text, json/);
    const both = await rampart(...args, '--json', '--format', 'text');
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--json and --format text contradict each other');
    const input = await rampart(...args, '--input-format', 'pf');
    expect(input.code).toBe(2);
    expect(input.stderr).toContain(
      "--input-format 'pf': unknown input format; expected one of nft-json, nft-text, iptables-save",
    );
  });
});

describe('rampart audit: its own output formats in the same grammar', () => {
  const args = COMMANDS.audit as string[];

  it('prints sarif and markdown, and still reads the old --format human as text, with a note', async () => {
    const text = await rampart(...args);
    const sarif = await rampart(...args, '--format', 'sarif');
    expect(sarif.code, sarif.stderr).toBe(text.code);
    expect(json(sarif.stdout)).toMatchObject({ version: '2.1.0' });
    const md = await rampart(...args, '--format', 'markdown');
    expect(md.code, md.stderr).toBe(text.code);
    expect(md.stdout).toMatch(/^\| Severity \| Rule \|/m);
    const human = await rampart(...args, '--format', 'human');
    expect(human.stdout).toBe(text.stdout);
    expect(human.stderr).toBe('rampart: note: --format human is now --format text\n');
    expect((await rampart(...args, '--json', '--format', 'sarif')).code).toBe(2);
  });
});

/**
 * The shared-process runner (cliRunner, test/cli/cli-runner.mjs) answers what a real `rampart` process answers: the
 * same stdout, stderr and exit code, whether the command returns, sets process.exitCode, or calls process.exit (a
 * usage error inside commander), and a run's environment does not leak into the next one. This file and the other
 * CLI tests that use the runner rely on it.
 */
describe('cliRunner', () => {
  const cases: [string, string[]][] = [
    ['a command that succeeds', ['parse', OUTAGE, '--json']],
    ['a command that fails with findings (process.exitCode 1)', ['audit', OUTAGE, '--public', 'tcp/443']],
    ['a usage error inside commander (process.exit 2)', ['parse', OUTAGE, '--bogus']],
    ['help (process.exit 0 after writing)', ['audit', '--help']],
    ['an unknown command', ['frobnicate']],
  ];
  for (const [what, args] of cases) {
    it(`answers like a real process for ${what}`, async () => {
      const real = await rampartProcess(...args);
      const shared = await rampart(...args);
      expect(shared).toEqual(real);
    });
  }

  it('sets environment variables for one run only', async () => {
    const base = 'https://example.org/rampart';
    const args = ['audit', '--list-rules', '--format', 'markdown'];
    const withEnv = await rampart.withEnv({ RAMPART_DOCS_URL: base }, ...args);
    expect(withEnv.stdout).toContain(`${base}/blob/main/docs/rules/`);
    const after = await rampart(...args);
    expect(after.stdout).not.toContain(base);
    expect(after.code).toBe(0);
  });
});
