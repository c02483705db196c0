/**
 * One grammar for every command (docs/cli.md): `--format` is the OUTPUT format (text, json, and markdown or sarif
 * where a command has them), `--json` is its shorthand, and `--input-format` names the format of the rulesets read
 * (nft-json, nft-text, iptables-save; detected when left out).
 *
 * The old spellings keep working for one release, with a note on stderr: `--format nft-text` on a command that reads
 * rulesets (it meant the input format there) and audit's `--format human` (now `text`).
 */
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import type { InputFormat } from '../firewall/model.js';

export const INPUT_FORMATS: readonly InputFormat[] = ['nft-json', 'nft-text', 'iptables-save'];

export interface FormatOptions {
  format?: string;
  json?: boolean;
  inputFormat?: InputFormat;
}

function note(message: string): void {
  process.stderr.write(`rampart: note: ${message}\n`);
}

/**
 * Adds `--format`, `--json` and (for commands that read rulesets) `--input-format`, and settles them before the
 * action runs: afterwards `o.format` is one of `outputs`, `o.json` is true exactly when it is json, and
 * `o.inputFormat` is set when the user named one. Refuses an unknown format naming what is valid.
 */
export function addFormatOptions(
  cmd: Command,
  outputs: readonly string[],
  opts: { readonly input?: boolean; readonly aliases?: Readonly<Record<string, string>> } = {},
): Command {
  cmd.option('--format <format>', `output: ${outputs.join(', ')} (default ${outputs[0]})`);
  cmd.option('--json', 'same as --format json');
  if (opts.input) {
    cmd.option('--input-format <format>', `the rulesets' format: ${INPUT_FORMATS.join(', ')} (default: detected)`);
  }
  cmd.hook('preAction', (_parent, action) => {
    const o = action.opts() as FormatOptions;
    let format = o.format?.trim().toLowerCase();
    if (format !== undefined && opts.input && (INPUT_FORMATS as readonly string[]).includes(format)) {
      note(
        `--format ${format} is read as --input-format ${format}; --format now names the output (${outputs.join(', ')})`,
      );
      if (o.inputFormat === undefined) action.setOptionValue('inputFormat', format);
      format = undefined;
    }
    const alias = format !== undefined ? opts.aliases?.[format] : undefined;
    if (format !== undefined && alias !== undefined) {
      note(`--format ${format} is now --format ${alias}`);
      format = alias;
    }
    if (o.json) {
      if (format !== undefined && format !== 'json') {
        throw new UserError('RAMPART_ERR_USAGE', `--json and --format ${format} contradict each other; give one`);
      }
      format = 'json';
    }
    format ??= outputs[0];
    if (format === undefined || !outputs.includes(format)) {
      const input = opts.input ? ` (the rulesets' format is --input-format: ${INPUT_FORMATS.join(', ')})` : '';
      throw new UserError(
        'RAMPART_ERR_USAGE',
        `--format '${o.format}': unknown output format; expected one of ${outputs.join(', ')}${input}`,
        {
          flag: '--format',
          value: o.format,
        },
      );
    }
    const input = action.opts().inputFormat as string | undefined;
    if (input !== undefined && !(INPUT_FORMATS as readonly string[]).includes(input)) {
      throw new UserError(
        'RAMPART_ERR_USAGE',
        `--input-format '${input}': unknown input format; expected one of ${INPUT_FORMATS.join(', ')}`,
        { flag: '--input-format', value: input },
      );
    }
    action.setOptionValue('format', format);
    action.setOptionValue('json', format === 'json');
  });
  return cmd;
}
