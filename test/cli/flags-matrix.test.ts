/**
 * Every command's flags (issue 13 §2), from the commands themselves, in one process: the grammar of docs/cli.md holds
 * for each of them, and docs/cli.md's reference lists exactly them. The behaviour of the format flags is run
 * against the built CLI in grammar.test.ts; this file checks that no command is left out of the convention.
 * `npm run docs:cli` (RAMPART_WRITE_DOCS=1) rewrites the reference instead of comparing it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/command-list.js';
import { type CommandInfo, commandsOf, fullProgram, renderReference, withReference } from '../../src/cli/reference.js';
import { root } from './cli.js';

/**
 * Commands that run without `--json`, and why. Anything else that runs must take it: a script can read every
 * command's answer the same way.
 */
const NO_JSON: Record<string, string> = {
  serve: 'a daemon: it logs (JSON lines when stdout is not a terminal) and answers the API',
  agent: 'a daemon on each host: it logs, the server shows what it did',
  probe: 'a daemon at a vantage point: it logs, the server shows its results',
  'audit-log export': 'prints the audit log as JSON lines already',
  'lab outage': 'a demo step that prints one line; `rampart lab up --json` describes the lab',
};

const DOC = join(root, 'docs', 'cli.md');
let program: Command;
let commands: CommandInfo[];
const running = () => commands.filter((c) => c.runs);
const flag = (c: CommandInfo, long: string) => c.options.find((o) => o.long === long);

beforeAll(async () => {
  program = await fullProgram();
  commands = commandsOf(program);
});

describe('every command and flag', () => {
  it('loads every command of `rampart --help`', () => {
    expect(commands.filter((c) => !c.path.includes(' ')).map((c) => c.path)).toEqual(
      COMMANDS.map((c) => c.name).sort((a, b) => a.localeCompare(b)),
    );
    // and the subcommands with them: change apply, incident postmortem, ...
    expect(running().length).toBeGreaterThan(60);
  });

  it('describes each command and each flag', () => {
    const bare = [
      ...commands.filter((c) => c.description.trim() === '').map((c) => c.path),
      ...commands.flatMap((c) => c.options.filter((o) => !o.description?.trim()).map((o) => `${c.path} ${o.flags}`)),
    ];
    expect(bare).toEqual([]);
  });

  it('gives --json to every command that runs, but the daemons and the few listed with their reason', () => {
    const missing = running()
      .filter((c) => !flag(c, '--json') && !(c.path in NO_JSON))
      .map((c) => c.path);
    expect(missing).toEqual([]);
    // an exception that is no longer one is taken off the list
    const stale = Object.keys(NO_JSON).filter((p) => {
      const c = commands.find((x) => x.path === p);
      return !c || flag(c, '--json');
    });
    expect(stale).toEqual([]);
  });

  it('means the output by --format everywhere, with --json as its shorthand', () => {
    const wrong: string[] = [];
    for (const c of running()) {
      const f = flag(c, '--format');
      if (!f) continue;
      if (!flag(c, '--json')) wrong.push(`${c.path}: --format without --json`);
      if (!/^output: /.test(f.description)) wrong.push(`${c.path}: --format is '${f.description}', not 'output: ...'`);
      if (/nft-text|nft-json|iptables-save/.test(f.description))
        wrong.push(`${c.path}: --format names an input format ('${f.description}')`);
    }
    expect(wrong).toEqual([]);
  });

  it('names the rulesets read by --input-format, on every command that reads rulesets and only there', () => {
    const reads = ['parse', 'trace', 'reach', 'rules', 'diff', 'intents', 'audit', 'plan', 'change propose'];
    const withInput = running()
      .filter((c) => flag(c, '--input-format'))
      .map((c) => c.path)
      .sort();
    expect(withInput).toEqual([...reads].sort());
    for (const p of reads) {
      const f = flag(commands.find((c) => c.path === p) as CommandInfo, '--input-format');
      expect(f?.description).toMatch(/nft-json, nft-text, iptables-save/);
    }
  });

  it('talks to the server with the same three flags on every client command', () => {
    const odd = running()
      .filter((c) => flag(c, '--server') && !['agent', 'probe'].includes(c.path))
      .filter((c) => !flag(c, '--token') || !flag(c, '--client-config'))
      .map((c) => c.path);
    expect(odd).toEqual([]);
  });
});

describe('docs/cli.md', () => {
  it('lists every command that runs and every flag, as the commands define them', () => {
    const doc = readFileSync(DOC, 'utf8');
    const want = withReference(doc, renderReference(program));
    if (process.env.RAMPART_WRITE_DOCS === '1') writeFileSync(DOC, want);
    else expect(doc, 'docs/cli.md differs from the commands: run `npm run docs:cli`').toBe(want);
  });
});
