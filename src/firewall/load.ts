/** The I/O edge of the firewall layer: reads ruleset files (and nft includes) from disk. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import type { Ruleset } from './model.js';
import { mergeRulesets, type ParseOptions, parseRuleset } from './parse.js';
import type { IncludedFile } from './parsers/nft-text.js';

/** errno codes in words. */
const FILE_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
};

export function readTextFile(path: string, what = 'ruleset file'): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new UserError('RAMPART_ERR_FILE', `cannot read ${what} '${path}': ${FILE_ERRORS[code] ?? code}`, {
      path,
      errno: code,
    });
  }
}

function globToRegExp(pattern: string): RegExp {
  const esc = pattern
    .replace(/[.+^${}()|\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  return new RegExp(`^${esc}$`);
}

/** nft's include semantics: relative to the including file's directory (then the cwd); `*` globs sorted by name. */
export function includeFromDisk(path: string, fromFile: string): IncludedFile[] {
  const candidates = isAbsolute(path) ? [path] : [join(dirname(fromFile), path), resolve(path)];
  for (const candidate of candidates) {
    if (/[*?]/.test(candidate)) {
      const dir = dirname(candidate);
      if (!existsSync(dir)) continue;
      const re = globToRegExp(candidate.slice(dir.length + 1));
      return readdirSync(dir)
        .filter((n) => re.test(n))
        .sort()
        .map((n) => join(dir, n))
        .filter((p) => statSync(p).isFile())
        .map((p) => ({ file: p, text: readTextFile(p, 'included file') }));
    }
    if (existsSync(candidate)) return [{ file: candidate, text: readTextFile(candidate, 'included file') }];
  }
  throw new UserError('RAMPART_ERR_FILE', `${fromFile}: include "${path}" not found`, { path, fromFile });
}

export interface LoadOptions extends Omit<ParseOptions, 'include' | 'ipsets'> {
  readonly ipsetFile?: string;
}

/** Reads and parses one or more ruleset files; several files are merged (e.g. iptables and ip6tables). */
export function loadRuleset(files: readonly string[], opts: LoadOptions = {}): Ruleset {
  const ipsets = opts.ipsetFile
    ? { file: opts.ipsetFile, text: readTextFile(opts.ipsetFile, 'ipset file') }
    : undefined;
  const parts = files.map((f) =>
    parseRuleset(readTextFile(f), f, {
      ...(opts.format ? { format: opts.format } : {}),
      ...(opts.family ? { family: opts.family } : {}),
      ...(ipsets ? { ipsets } : {}),
      include: includeFromDisk,
    }),
  );
  return mergeRulesets(parts);
}
