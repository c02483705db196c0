/**
 * Runs the built CLI (dist/cli/main.js) as a user would. The build is refreshed first when any source file is newer
 * than its output, so CLI tests never run stale code.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
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

/** Long enough for a busy 2-core machine (several times an idle one's seconds); a run past it is killed. */
const RUN_TIMEOUT_MS = 120_000;

/**
 * Runs a command and collects its output without blocking the test's event loop (a worker blocked in spawnSync
 * cannot answer vitest: "Timeout calling onTaskUpdate" on a busy machine). Past `timeoutMs` the process is killed
 * with SIGKILL and `code` is null, as spawnSync reports a timeout.
 */
export function run(
  command: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {},
): Promise<Ran> {
  return new Promise((done, fail) => {
    const p = spawn(command, args, { cwd: opts.cwd ?? root, env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? RUN_TIMEOUT_MS);
    p.on('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
    p.stdin.on('error', () => {}); // a process that exits without reading its input
    // With `input` (even ''), stdin ends after it, as under spawnSync; without, it stays open, as spawn leaves it.
    if (opts.input !== undefined) p.stdin.end(opts.input);
  });
}

/** The built CLI as its own process, as a user runs it: real start-up, real exit code and stdio. */
export function rampart(...args: string[]): Promise<Ran> {
  return run(process.execPath, [main, ...args], { input: '' });
}

/**
 * The CLI as a child process that does not block the test's event loop (for tests that run a server in the same
 * process, or processes that take a while), with `env` added to the environment and colours off.
 */
export function rampartAsync(env: Record<string, string>, ...args: string[]): Promise<Ran> {
  return run(process.execPath, [main, ...args], {
    env: { ...process.env, NO_COLOR: '1', ...env },
    timeoutMs: 300_000, // labs come up in it; a test times out at 180 s anyway
  });
}

/**
 * Many CLI runs in one node process (test/cli/cli-runner.mjs): each run evaluates the built CLI's entry point afresh
 * with its own argv, captured stdout/stderr and exit code, while the command modules stay loaded, which is most of
 * a short run's CPU. For tests about a command's output and exit code; start-up and real stdio stay covered by
 * tests that use `rampart()`. The runner starts on the first run; `close()` it in afterAll.
 */
export interface CliRunner {
  /** Like `rampart(...args)`, in the shared process. */
  (...args: string[]): Promise<Ran>;
  /** With environment variables set for this run only. */
  withEnv(env: Record<string, string>, ...args: string[]): Promise<Ran>;
  close(): Promise<void>;
}

interface Pending {
  readonly done: (r: Ran) => void;
  readonly fail: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export function cliRunner(): CliRunner {
  let child: ChildProcess | undefined;
  let log = '';
  let next = 0;
  const pending = new Map<number, Pending>();

  const failAll = (why: string) => {
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      pending.delete(id);
      p.fail(new Error(`${why}${log ? `; its output:\n${log}` : ''}`));
    }
  };

  const start = (): ChildProcess => {
    const c = spawn(process.execPath, [join(import.meta.dirname, 'cli-runner.mjs'), main], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    log = '';
    c.stdout?.setEncoding('utf8').on('data', (d: string) => (log += d));
    c.stderr?.setEncoding('utf8').on('data', (d: string) => (log += d));
    c.on('message', (m: Ran & { id: number }) => {
      const p = pending.get(m.id);
      if (!p) return;
      clearTimeout(p.timer);
      pending.delete(m.id);
      p.done({ code: m.code, stdout: m.stdout, stderr: m.stderr });
    });
    c.on('exit', (code, signal) => {
      if (child === c) child = undefined;
      failAll(`the CLI runner exited (${signal ?? code})`);
    });
    return c;
  };

  const send = (env: Record<string, string>, args: string[]): Promise<Ran> =>
    new Promise((done, fail) => {
      child ??= start();
      const c = child;
      const id = next++;
      const timer = setTimeout(() => {
        // A run that hangs takes the runner with it; the next run starts a fresh one.
        c.kill('SIGKILL');
        failAll(`rampart ${args.join(' ')}: no answer within ${RUN_TIMEOUT_MS / 1000} s`);
      }, RUN_TIMEOUT_MS);
      pending.set(id, { done, fail, timer });
      c.send({ id, args, env });
    });

  const runner = ((...args: string[]) => send({}, args)) as CliRunner;
  runner.withEnv = (env, ...args) => send(env, args);
  runner.close = () =>
    new Promise((done) => {
      const c = child;
      if (!c) return done();
      c.once('exit', () => done());
      c.disconnect();
    });
  return runner;
}
