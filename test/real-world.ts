/**
 * The real-world corpus (test/fixtures/real-world/corpus.json) for tests: its entries, and each entry read as
 * `rampart audit` reads files (nft includes with absolute paths resolve under the entry's directory, which mirrors
 * the repository it came from).
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import type { L3, Ruleset } from '../src/firewall/model.js';
import { mergeRulesets, parseRuleset } from '../src/firewall/parse.js';

export const CORPUS_DIR = join(import.meta.dirname, 'fixtures', 'real-world');

export interface CorpusEntry {
  readonly id: string;
  readonly files: readonly string[];
  readonly root: string;
  readonly kind: 'nft' | 'iptables';
  readonly what: string;
  readonly kernel: 'accepts' | 'refuses';
  readonly kernelSays?: string;
  /** The family the kernel tools load it as (ip6tables-restore); the parser must find it on its own. */
  readonly family?: L3;
  readonly ipsets?: string;
  readonly includes?: readonly string[];
  readonly lab?: {
    readonly interfaces?: readonly string[];
    readonly hosts?: Readonly<Record<string, string>>;
    readonly nfacct?: readonly string[];
  };
}

export function corpusEntries(): CorpusEntry[] {
  return (JSON.parse(readFileSync(join(CORPUS_DIR, 'corpus.json'), 'utf8')) as { entries: CorpusEntry[] }).entries;
}

export function corpusEntry(id: string): CorpusEntry {
  const e = corpusEntries().find((x) => x.id === id);
  if (!e) throw new Error(`no corpus entry ${id}`);
  return e;
}

/** An nft file of the entry with its includes spliced in (what `nft -f` loads), for the kernel. */
export function expandedNftText(e: CorpusEntry, rel: string): string {
  const base = join(CORPUS_DIR, e.root);
  const expand = (path: string): string =>
    readFileSync(path, 'utf8')
      .split('\n')
      .map((line) => {
        const m = /^\s*include\s+"([^"]+)"\s*$/.exec(line);
        if (!m) return line;
        const inc = m[1] as string;
        return expand(isAbsolute(inc) ? join(base, inc) : join(dirname(path), inc));
      })
      .join('\n');
  return expand(join(CORPUS_DIR, rel));
}

/** Reads an entry as the CLI reads its files (throws the parser's error for what it cannot read). */
export function readCorpusEntry(e: CorpusEntry): Ruleset {
  const base = join(CORPUS_DIR, e.root);
  const include = (path: string, fromFile: string) => {
    const p = isAbsolute(path) ? join(base, path) : join(dirname(fromFile), path);
    return [{ file: p, text: readFileSync(p, 'utf8') }];
  };
  const ipsets = e.ipsets
    ? { file: `test/fixtures/real-world/${e.ipsets}`, text: readFileSync(join(CORPUS_DIR, e.ipsets), 'utf8') }
    : undefined;
  return mergeRulesets(
    e.files.map((f) =>
      parseRuleset(readFileSync(join(CORPUS_DIR, f), 'utf8'), `test/fixtures/real-world/${f}`, {
        include,
        ...(ipsets ? { ipsets } : {}),
      }),
    ),
  );
}
