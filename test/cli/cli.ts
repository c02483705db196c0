/**
 * Runs the built CLI (dist/cli/main.js) as a user would. The build is refreshed first when any source file is newer
 * than its output, so CLI tests never run stale code.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

export const root = join(import.meta.dirname, '..', '..');
export const main = join(root, 'dist', 'cli', 'main.js');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

function stale(): boolean {
  const src = join(root, 'src');
  return sources(src).some((file) => {
    const out = join(root, 'dist', relative(src, file).replace(/\.ts$/, '.js'));
    return !existsSync(out) || statSync(file).mtimeMs > statSync(out).mtimeMs;
  });
}

/** Builds dist/ when it is missing or older than src/. */
export function ensureBuilt(): void {
  if (stale()) {
    // Other parts of the tree may have type errors mid-change; tsc still emits, so the exit status is not checked.
    spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
      cwd: root,
      encoding: 'utf8',
    });
  }
}

export interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function rampart(...args: string[]): Ran {
  const r = spawnSync(process.execPath, [main, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The CLI as a child process that does not block the test's event loop (for tests that run a server in the same
 * process, or processes that take a while), with `env` added to the environment and colours off.
 */
export function rampartAsync(env: Record<string, string>, ...args: string[]): Promise<Ran> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [main, ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1', ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => done({ code, stdout, stderr }));
  });
}
