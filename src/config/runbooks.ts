/**
 * `runbook:` references in rampart.yaml (issue 16 §4; docs/incidents.md, "Runbooks"): a Markdown file per service
 * (`services[].runbook`) and per alert route (`alerting.route...runbook`, inherited by child routes), written
 * relative to the config file. Each file is read and parsed when the config is loaded, so a missing one is an error
 * at its file:line:column and the server never shows a runbook it cannot open; a config reload reads them again.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { matchRoutes } from '../alerting/route.js';
import type { Labels } from '../alerting/types.js';
import { parseRunbook, type Runbook } from '../incident/runbook.js';
import { expect } from './schema-kit.js';
import type { ConfigLocation, RampartConfig } from './types.js';

export const RUNBOOK_EXPECTED = 'a Markdown file, relative to the config file (like runbooks/shop.md) or absolute';
export const runbookField = z
  .string(expect(RUNBOOK_EXPECTED))
  .trim()
  .min(1, expect(RUNBOOK_EXPECTED))
  .max(4096, expect(RUNBOOK_EXPECTED));

/** Larger is not a runbook anyone reads during an outage. */
const MAX_BYTES = 1_000_000;

export interface RunbookConfig extends Runbook {
  /** The file read (absolute). */
  readonly file: string;
  /** Where it is first referenced. */
  readonly at: ConfigLocation;
}

type PathPart = string | number;

export interface RunbookRef {
  readonly path: readonly PathPart[];
  /** As written. */
  readonly value: string;
}

/**
 * Reads and parses each referenced runbook once; a file that cannot be read is reported at every reference to it.
 * `readFile` defaults to the file system (tests pass their own).
 */
export function runbooksOf(
  refs: readonly RunbookRef[],
  configFile: string,
  loc: (path: readonly PathPart[]) => ConfigLocation,
  report: (path: readonly PathPart[], problem: string, expected: string) => void,
  readFile: (file: string) => string = (f) => readFileSync(f, 'utf8'),
): RunbookConfig[] {
  const base = configFile.startsWith('embedded:') ? process.cwd() : dirname(resolve(configFile));
  const out = new Map<string, RunbookConfig | string>();
  for (const ref of refs) {
    const file = isAbsolute(ref.value) ? ref.value : resolve(base, ref.value);
    if (!out.has(ref.value)) {
      let r: RunbookConfig | string;
      try {
        const text = readFile(file);
        r =
          Buffer.byteLength(text, 'utf8') > MAX_BYTES
            ? `${file} is larger than 1 MB`
            : { ...parseRunbook(text, ref.value), file, at: loc(ref.path) };
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        r =
          code === 'ENOENT'
            ? `no such file: ${file}`
            : code === 'EISDIR'
              ? `${file} is a directory`
              : `cannot read ${file}${code ? ` (${code})` : ''}`;
      }
      out.set(ref.value, r);
    }
    const r = out.get(ref.value);
    if (typeof r === 'string') report(ref.path, `'${ref.value}': ${r}`, RUNBOOK_EXPECTED);
  }
  return [...out.values()].filter((r): r is RunbookConfig => typeof r !== 'string');
}

/**
 * The runbooks that go with alerts or an incident: those of the named services first, then those of the alert
 * routes the label sets take (the deepest matching route's, inherited from its parents), each once.
 */
export function runbooksFor(
  config: RampartConfig,
  q: { readonly services?: readonly string[]; readonly labels?: readonly Labels[] },
): RunbookConfig[] {
  const all = config.runbooks ?? [];
  if (all.length === 0) return [];
  const paths: string[] = [];
  const add = (p: string | undefined) => {
    if (p !== undefined && !paths.includes(p)) paths.push(p);
  };
  const services = new Set([...(q.services ?? []), ...(q.labels ?? []).flatMap((l) => (l.service ? [l.service] : []))]);
  for (const s of config.services) if (services.has(s.name)) add(s.runbook);
  const root = config.alerting?.route;
  if (root) for (const l of q.labels ?? []) for (const r of matchRoutes(root, l)) add(r.runbook);
  return paths.flatMap((p) => all.filter((r) => r.path === p));
}

/** What the API shows of a runbook: its path as written, title and steps (not where the server keeps the file). */
export const runbookView = (r: RunbookConfig): Runbook => ({ path: r.path, title: r.title, steps: r.steps });
