/**
 * The one small interface through which Rampart runs commands that touch a kernel (nft, iptables-restore, ip).
 *
 * The lab points it at a network namespace it created; the agent will point it at the host. Every command has a
 * timeout, and a command that overruns is killed by its own PID, never by name.
 */
import { spawn, spawnSync } from 'node:child_process';

export interface ExecOptions {
  /** Written to the command's stdin (then stdin is closed). */
  readonly input?: string;
  /** Kill the command after this long. Default 30 s. */
  readonly timeoutMs?: number;
  /** Return a non-zero exit instead of throwing. */
  readonly allowFailure?: boolean;
  /** Working directory (e.g. where `nft -f` resolves relative includes). */
  readonly cwd?: string;
  /** Environment of the command (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
}

export interface ExecResult {
  readonly argv: readonly string[];
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Executor {
  /** A short description for messages, e.g. `netns rampart-kt-123-fw`. */
  readonly where: string;
  run(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
}

export class ExecError extends Error {
  readonly result: ExecResult;
  constructor(message: string, result: ExecResult) {
    super(message);
    this.name = 'ExecError';
    this.result = result;
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_OUTPUT = 64 * 1024 * 1024;

function describe(argv: readonly string[]): string {
  const text = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

/** Runs argv directly (no shell), with a timeout. */
export function runCommand(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [cmd, ...args] = argv;
  if (!cmd) return Promise.reject(new Error('runCommand: empty argv'));
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      ...(opts.env ? { env: opts.env } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => {
      size += b.length;
      if (size <= MAX_OUTPUT) out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${describe(argv)}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result: ExecResult = {
        argv,
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (timedOut) {
        reject(new ExecError(`timed out after ${timeoutMs} ms: ${describe(argv)}`, result));
      } else if (result.code !== 0 && !opts.allowFailure) {
        reject(new ExecError(`exit ${result.code}: ${describe(argv)}: ${result.stderr.trim().slice(0, 2000)}`, result));
      } else {
        resolve(result);
      }
    });
    // A command that exits before reading its input makes stdin emit EPIPE; the exit code tells the story.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Synchronous variant, for process 'exit' handlers where nothing asynchronous runs any more. */
export function runCommandSync(argv: readonly string[], opts: ExecOptions = {}): ExecResult {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('runCommandSync: empty argv');
  const r = spawnSync(cmd, args, {
    input: opts.input ?? '',
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxBuffer: MAX_OUTPUT,
    killSignal: 'SIGKILL',
  });
  const result: ExecResult = {
    argv,
    code: r.status ?? 1,
    stdout: r.stdout?.toString('utf8') ?? '',
    stderr: r.stderr?.toString('utf8') ?? (r.error ? r.error.message : ''),
  };
  if (result.code !== 0 && !opts.allowFailure) {
    throw new ExecError(`exit ${result.code}: ${describe(argv)}: ${result.stderr.trim().slice(0, 2000)}`, result);
  }
  return result;
}

/** Runs commands inside the named network namespace (`ip netns exec NAME ...`). */
export function netnsExecutor(namespace: string): Executor {
  if (!/^[\w.-]+$/.test(namespace)) throw new Error(`invalid namespace name '${namespace}'`);
  return {
    where: `netns ${namespace}`,
    run: (argv, opts) => runCommand(['ip', 'netns', 'exec', namespace, ...argv], opts),
  };
}

/** Runs commands where the caller runs (the agent on its host). The lab never uses this for kernel changes. */
export function localExecutor(): Executor {
  return { where: 'local', run: runCommand };
}
