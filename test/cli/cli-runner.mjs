/**
 * Runs many `rampart` invocations in one node process (test/cli/cli.ts `cliRunner()`): for each argument list it
 * evaluates a fresh copy of the built CLI's entry point (dist/cli/main.js, imported with a new query string, so a new
 * commander program reads the new process.argv), with stdout and stderr captured and process.exit turned into the
 * run's exit code. The command modules it loads (the engine, the parsers, ...) stay loaded from run to run: that is
 * the saving, as loading them is most of the CPU of a short `rampart` process.
 *
 * What a real process would show is kept: the exit code is process.exit's argument or process.exitCode; nothing
 * written after process.exit counts (a real process would be gone); stdout and stderr are pipes, as under spawn;
 * environment variables given for one run are restored after it; signal and exit listeners a run added are removed.
 *
 * Protocol (IPC channel): the parent sends { id, args, env }, the runner answers { id, code, stdout, stderr }.
 */
import { pathToFileURL } from 'node:url';

const main = process.argv[2];
if (!main) {
  process.stderr.write('usage: node cli-runner.mjs DIST/cli/main.js (started by test/cli/cli.ts)\n');
  process.exit(2);
}
const mainUrl = pathToFileURL(main).href;

const realExit = process.exit.bind(process);
const realOut = process.stdout.write.bind(process.stdout);
const realErr = process.stderr.write.bind(process.stderr);

/** The run in progress: what it wrote, and whether (and how) it called process.exit. */
let current;

class Exited extends Error {}

const capture = (which, real) =>
  function write(chunk, encoding, cb) {
    if (!current) return real(chunk, encoding, cb); // not during a run: leave it visible in the test's log
    if (!current.exited) current[which] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    const done = typeof encoding === 'function' ? encoding : cb;
    if (typeof done === 'function') process.nextTick(done);
    return true;
  };
process.stdout.write = capture('stdout', realOut);
process.stderr.write = capture('stderr', realErr);

process.exit = (code) => {
  if (!current) return realExit(code);
  if (!current.exited) {
    current.exited = true;
    current.code = code ?? process.exitCode ?? 0;
  }
  // Unwinds the run as the end of a real process would; main's own catch may see it, but writes no longer count.
  throw new Exited(`process.exit(${code})`);
};

const LISTENED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'exit', 'beforeExit', 'uncaughtException', 'unhandledRejection'];

let n = 0;

async function runOne({ args, env }) {
  const saved = {};
  for (const [k, v] of Object.entries(env ?? {})) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  const listeners = Object.fromEntries(LISTENED.map((e) => [e, process.listeners(e)]));
  process.argv = [process.execPath, main, ...args];
  process.exitCode = undefined;
  current = { stdout: '', stderr: '', exited: false, code: 0 };
  try {
    n += 1;
    await import(`${mainUrl}?run=${n}`);
    // Let what the command scheduled last (a nextTick, an immediate) write before the run is read.
    await new Promise((resolve) => setImmediate(resolve));
  } catch (e) {
    if (!(e instanceof Exited) && !current.exited) {
      // What node prints for an uncaught exception, and its exit code.
      current.stderr += `${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`;
      current.exited = true;
      current.code = 1;
    }
  }
  const run = current;
  current = undefined;
  const code = run.exited ? run.code : (process.exitCode ?? 0);
  process.exitCode = undefined;
  for (const e of LISTENED) {
    for (const l of process.listeners(e)) if (!listeners[e].includes(l)) process.removeListener(e, l);
  }
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  return { code: Number(code), stdout: run.stdout, stderr: run.stderr };
}

// One run at a time: each owns process.argv, process.exitCode and the captured streams.
let queue = Promise.resolve();
process.on('message', (msg) => {
  queue = queue.then(async () => {
    const r = await runOne(msg);
    process.send({ id: msg.id, ...r });
  });
});
process.on('disconnect', () => realExit(0));
