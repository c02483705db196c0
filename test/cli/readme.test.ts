/**
 * The README is true from a clone: every command block runs, in a temporary directory (with the repository's test/
 * linked in, so fixture paths resolve) and `rampart` on PATH, and fails this test when it no longer works as shown.
 *
 * - A block of `$ command` lines shows output: each command's output (stdout and stderr) must match the lines shown
 *   under it; a line `...` stands for any number of lines.
 * - Any other shell block runs as a script, line by line: a command that exits 2 (bad usage), 70 (internal error)
 *   or 127 (no such command) fails the test, naming the README line.
 * - A block preceded by `<!-- readme-test: skip: REASON -->` is not run; the reason is required.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, main, root, run } from './cli.js';

interface Block {
  /** README line of the opening fence. */
  readonly line: number;
  readonly text: string;
  readonly skip?: string;
}

function blocks(readme: string): Block[] {
  const lines = readme.split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i] as string);
    if (!open) continue;
    const lang = open[1];
    let j = i + 1;
    while (j < lines.length && lines[j] !== '```') j++;
    const text = lines.slice(i + 1, j).join('\n');
    const marker = /^<!-- readme-test: skip: (.+) -->$/.exec((lines[i - 1] ?? '').trim());
    if (lang === '' || lang === 'sh') {
      out.push({ line: i + 1, text, ...(marker ? { skip: marker[1] as string } : {}) });
    }
    i = j;
  }
  return out;
}

/** `$ cmd` (with `\` continuations) and the output lines shown under it. */
function transcript(text: string): { command: string; expected: string[] }[] {
  const out: { command: string; expected: string[] }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i] as string;
    if (!l.startsWith('$ ')) {
      out[out.length - 1]?.expected.push(l);
      continue;
    }
    let command = l.slice(2);
    while (command.endsWith('\\') && i + 1 < lines.length) command = `${command.slice(0, -1)} ${lines[++i]?.trim()}`;
    out.push({ command, expected: [] });
  }
  return out;
}

/** Whether `actual` has the `expected` lines, `...` standing for any run of lines (trailing spaces ignored). */
function matches(expected: readonly string[], actual: readonly string[]): boolean {
  const e = expected.map((x) => x.trimEnd());
  while (e.length > 0 && e[e.length - 1] === '') e.pop();
  const a = actual.map((x) => x.trimEnd());
  while (a.length > 0 && a[a.length - 1] === '') a.pop();
  const go = (i: number, j: number): boolean => {
    if (i === e.length) return j === a.length;
    if (e[i]?.trim() === '...') {
      for (let k = j; k <= a.length; k++) if (go(i + 1, k)) return true;
      return false;
    }
    return j < a.length && a[j] === e[i] && go(i + 1, j + 1);
  };
  return go(0, 0);
}

const readme = readFileSync(join(root, 'README.md'), 'utf8');
const all = blocks(readme);
let dir = '';
let env: NodeJS.ProcessEnv = {};

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'rampart-readme-'));
  symlinkSync(join(root, 'test'), join(dir, 'test'));
  const bin = join(dir, '.bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'rampart'), `#!/bin/sh\nexec "${process.execPath}" "${main}" "$@"\n`);
  chmodSync(join(bin, 'rampart'), 0o755);
  env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, NO_COLOR: '1' };
  delete env.RAMPART_TOKEN;
  delete env.RAMPART_SERVER;
});
afterAll(() => {
  // A server a block started and did not stop (the block failed halfway): its PID is in the block's data dir.
  let pid = '';
  try {
    pid = readFileSync(join(dir, 'data', 'serve.pid'), 'utf8').trim();
  } catch {
    // no server was started, or it removed its PID file
  }
  if (/^\d+$/.test(pid)) {
    try {
      process.kill(Number(pid));
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('the README', () => {
  it('marks every block it does not run with a reason, and runs the rest', () => {
    expect(all.length).toBeGreaterThanOrEqual(8);
    for (const b of all.filter((x) => x.skip !== undefined)) expect(b.skip?.length).toBeGreaterThan(10);
  });

  it('says what npm start runs (the transcript runs the same command)', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } };
    expect(pkg.scripts.start).toBe('npm run build --silent && node dist/cli/main.js demo');
  });

  for (const b of all.filter((x) => x.skip === undefined)) {
    const shown = transcript(b.text);
    if (shown.length > 0) {
      it.each(shown.map((s) => [s.command, s.expected] as const))(
        `README line ${b.line}: $ %s prints what is shown`,
        async (command, expected) => {
          const cmd = command === 'npm start' ? `"${process.execPath}" "${main}" demo` : command;
          const r = await run('bash', ['-c', `${cmd} 2>&1`], { cwd: dir, env, input: '', timeoutMs: 120_000 });
          expect([70, 127]).not.toContain(r.code);
          const actual = r.stdout.split('\n');
          expect(matches(expected, actual), `shown:\n${expected.join('\n')}\n\nprinted:\n${r.stdout}`).toBe(true);
        },
      );
    } else {
      it(`README line ${b.line}: the block runs as shown`, async () => {
        const script = b.text
          .split('\n')
          .map((l, i) =>
            l.trim() === '' || l.trim().startsWith('#')
              ? l
              : `${l}\n__rc=$?; if [ $__rc -eq 2 ] || [ $__rc -eq 70 ] || [ $__rc -eq 127 ]; then echo "README line ${b.line + 1 + i} exited $__rc" >&2; exit 1; fi`,
          )
          .join('\n');
        // A block may start a server and run a dozen commands: at load 18 on two cores one took over 170 s.
        const r = await run('bash', ['-c', script], { cwd: dir, env, input: '', timeoutMs: 400_000 });
        expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      }, 420_000);
    }
  }
});

describe('matches', () => {
  it('matches lines exactly, with ... for any run of lines', () => {
    expect(matches(['a', 'b'], ['a', 'b', ''])).toBe(true);
    expect(matches(['a', 'b'], ['a', 'c'])).toBe(false);
    expect(matches(['a', '...'], ['a', 'b', 'c'])).toBe(true);
    expect(matches(['a', '...', 'd'], ['a', 'b', 'c', 'd'])).toBe(true);
    expect(matches(['a', '  ...', 'd'], ['a', 'd'])).toBe(true);
    expect(matches(['a'], ['a', 'b'])).toBe(false);
  });
});
