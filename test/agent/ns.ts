/**
 * A throw-away network namespace for the agent's kernel tests: `rampart-agx-<random>`, deleted in afterAll and
 * from a process 'exit' handler, so nothing is left behind also when a test crashes. Nothing runs in the caller's
 * own namespace except `ip netns add/del`.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { type Executor, netnsExecutor } from '../../src/lab/executor.js';

/** Why the kernel tests cannot run here, or undefined when they can. */
export function kernelSkipReason(tools: readonly string[] = ['nft', 'ip']): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root (needs network namespaces)';
  for (const tool of tools) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} not found`;
  }
  return undefined;
}

export interface TestNamespace {
  readonly name: string;
  readonly exec: Executor;
  /** Runs a command in the namespace synchronously; throws with its stderr when it fails. */
  run(argv: readonly string[], input?: string): string;
  remove(): void;
}

export function createTestNamespace(): TestNamespace {
  const name = `rampart-agx-${randomBytes(4).toString('hex')}`;
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    process.removeListener('exit', remove);
    spawnSync('ip', ['netns', 'del', name], { timeout: 15_000 });
  };
  process.on('exit', remove);
  const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8', timeout: 15_000 });
  if (add.status !== 0) {
    remove();
    throw new Error(`ip netns add ${name}: ${add.stderr}`);
  }
  const run = (argv: readonly string[], input?: string): string => {
    const r = spawnSync('ip', ['netns', 'exec', name, ...argv], {
      encoding: 'utf8',
      timeout: 15_000,
      input: input ?? '',
    });
    if (r.status !== 0) throw new Error(`${argv.join(' ')} in ${name} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
  try {
    run(['ip', 'link', 'set', 'lo', 'up']);
  } catch (e) {
    remove();
    throw e;
  }
  return { name, exec: netnsExecutor(name), run, remove };
}

/** The namespaces that exist now (to check none of ours is left). */
export function listNamespaces(): string {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
}
