import { UserError } from '../errors.js';
import { detectFormat } from './detect.js';
import type { InputFormat, L3, Ruleset, Table, Warning } from './model.js';
import { parseIptablesSave } from './parsers/iptables-save.js';
import { parseNftJson } from './parsers/nft-json.js';
import { type IncludedFile, parseNftText } from './parsers/nft-text.js';

export interface ParseOptions {
  readonly format?: InputFormat;
  readonly include?: (path: string, fromFile: string) => readonly IncludedFile[];
  readonly ipsets?: { readonly file: string; readonly text: string };
  readonly family?: L3;
}

/** Parses one ruleset text in any supported format (pure: the caller reads files). */
export function parseRuleset(text: string, file: string, opts: ParseOptions = {}): Ruleset {
  if (opts.family !== undefined && opts.family !== 'ipv4' && opts.family !== 'ipv6') {
    throw new UserError(
      'RAMPART_ERR_USAGE',
      `--family: unknown family '${String(opts.family)}'; expected ipv4 or ipv6`,
    );
  }
  const format = opts.format ?? detectFormat(text);
  switch (format) {
    case 'nft-json':
      return parseNftJson(text, file);
    case 'nft-text':
      return parseNftText(text, file, opts.include ? { include: opts.include } : {});
    case 'iptables-save':
      return parseIptablesSave(text, file, {
        ...(opts.ipsets ? { ipsets: opts.ipsets } : {}),
        ...(opts.family ? { family: opts.family } : {}),
      });
    default:
      throw new UserError(
        'RAMPART_ERR_FORMAT_UNKNOWN',
        `--format: unknown format '${String(format)}'; expected nft-json, nft-text or iptables-save`,
        { expected: 'nft-json, nft-text or iptables-save' },
      );
  }
}

/**
 * Merges rulesets read from several files into one (for example iptables-save and ip6tables-save output, or ufw's
 * user.rules and user6.rules). They must share a backend.
 */
export function mergeRulesets(parts: readonly Ruleset[]): Ruleset {
  const first = parts[0];
  if (!first) throw new UserError('RAMPART_ERR_USAGE', 'no ruleset given');
  if (parts.length === 1) return first;
  const tables: Table[] = [];
  const warnings: Warning[] = [];
  for (const p of parts) {
    if (p.backend !== first.backend) {
      throw new UserError(
        'RAMPART_ERR_USAGE',
        `cannot combine ${first.file} (${first.backend}) with ${p.file} (${p.backend}); give files of one backend`,
      );
    }
    tables.push(...p.tables);
    warnings.push(...p.warnings);
  }
  return {
    kind: 'ruleset',
    backend: first.backend,
    format: first.format,
    file: parts.map((p) => p.file).join(','),
    tables,
    warnings,
  };
}
