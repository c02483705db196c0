/**
 * The CLI's reference, from the commands themselves: every command with its arguments and every flag with what it
 * means. docs/cli.md holds it between two markers (`npm run docs:cli` rewrites it); test/cli/flags-matrix.test.ts
 * fails when the two differ, and checks the grammar (docs/cli.md, "One grammar") over every command and flag.
 */
import { Command, type Option } from 'commander';
import { COMMANDS } from './command-list.js';

export const REFERENCE_START = '<!-- reference:start (npm run docs:cli writes this part) -->';
export const REFERENCE_END = '<!-- reference:end -->';

/** A program with every command registered, as `rampart COMMAND` would see it. */
export async function fullProgram(): Promise<Command> {
  const program = new Command().name('rampart');
  for (const c of COMMANDS) (await c.load())(program);
  return program;
}

export interface CommandInfo {
  /** `change apply`, `audit`. */
  readonly path: string;
  readonly usage: string;
  readonly description: string;
  /** Whether it runs (an action) or only groups subcommands. */
  readonly runs: boolean;
  readonly options: readonly Option[];
}

/** Every command below the root, depth first in the order they were registered, the root's commands sorted by name. */
export function commandsOf(program: Command): CommandInfo[] {
  const out: CommandInfo[] = [];
  const walk = (c: Command, prefix: string) => {
    const path = prefix ? `${prefix} ${c.name()}` : c.name();
    // commander keeps the action handler private: a command runs when it has one, which is when it has no
    // subcommands here or is a group with its own action (monitors, alerts, hosts...).
    const runs = Boolean((c as unknown as { _actionHandler: unknown })._actionHandler);
    out.push({ path, usage: c.usage(), description: c.description(), runs, options: c.options });
    for (const s of c.commands) walk(s, path);
  };
  for (const c of [...program.commands].sort((a, b) => a.name().localeCompare(b.name()))) walk(c, '');
  return out;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n+/g, ' ');

/** The Markdown reference: a heading per command that runs, its usage, and a table of its flags. */
export function renderReference(program: Command): string {
  const lines: string[] = [
    REFERENCE_START,
    '',
    'Every command and every flag, generated from the commands themselves (`npm run docs:cli`; a test fails when',
    'this part and the CLI differ). `rampart COMMAND --help` prints the same.',
    '',
  ];
  for (const c of commandsOf(program)) {
    if (!c.runs) continue;
    lines.push(`### \`rampart ${c.path}\``, '', cell(c.description), '', `Usage: \`rampart ${c.path} ${c.usage}\``, '');
    if (c.options.length > 0) {
      lines.push('| flag | means |', '| --- | --- |');
      for (const o of c.options) {
        const dflt =
          o.defaultValue !== undefined && o.defaultValue !== false ? ` (default: ${String(o.defaultValue)})` : '';
        lines.push(`| \`${cell(o.flags)}\` | ${cell(o.description)}${cell(dflt)} |`);
      }
      lines.push('');
    }
  }
  lines.push(REFERENCE_END);
  return `${lines.join('\n')}\n`;
}

/** docs/cli.md with its reference part replaced (appended under "## Reference" when it has none). */
export function withReference(doc: string, reference: string): string {
  const a = doc.indexOf(REFERENCE_START);
  const b = doc.indexOf(REFERENCE_END);
  if (a < 0 || b < a) return `${doc.trimEnd()}\n\n## Reference\n\n${reference}`;
  return doc.slice(0, a) + reference + doc.slice(b + REFERENCE_END.length + 1);
}
