/** docs/cli.md is the contract scripts rely on: checked against the error registry it documents. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS, type ErrorCode } from '../../src/errors.js';
import { root } from './cli.js';

const doc = readFileSync(join(root, 'docs', 'cli.md'), 'utf8');

/** exit -> the error codes its row lists. */
function exitTable(): Map<number, string[]> {
  const out = new Map<number, string[]>();
  const section = doc.slice(doc.indexOf('## Exit codes'));
  for (const line of section.split('\n')) {
    const m = /^\|\s*(\d+)\s*\|[^|]*\|([^|]*)\|\s*$/.exec(line);
    if (m)
      out.set(
        Number(m[1]),
        [...(m[2] as string).matchAll(/RAMPART_ERR_[A-Z_]+/g)].map((x) => x[0]),
      );
  }
  return out;
}

describe('docs/cli.md', () => {
  it('lists every error code under the exit code the registry gives it, and no other', () => {
    const table = exitTable();
    expect([...table.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 70]);
    const documented = new Map<string, number>();
    for (const [exit, codes] of table) for (const c of codes) documented.set(c, exit);
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(documented.get(code), `${code} (exit ${spec.exit}) in docs/cli.md`).toBe(spec.exit);
    }
    for (const code of documented.keys()) expect(Object.keys(ERRORS)).toContain(code as ErrorCode);
  });
});
