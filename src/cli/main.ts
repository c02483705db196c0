#!/usr/bin/env node
import { Command } from 'commander';
import { COMMANDS } from './command-list.js';
import { reportError } from './output.js';

// `rampart parse --json big.rules | head`: the reader may close the pipe before the output ends. The rest of the
// output has nowhere to go: it is dropped, and the command ends as it would have (its exit code), without a stack
// trace. Any other write error still throws. Once per process: the tests' runner evaluates this module many times.
const pipeGuard = Symbol.for('rampart.cli.closed-pipe');
const g = globalThis as { [pipeGuard]?: boolean };
if (!g[pipeGuard]) {
  g[pipeGuard] = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
    });
  }
}

const program = new Command();
program
  .name('rampart')
  .description('Firewall audit, safe change management and incident response for nftables and iptables hosts')
  .version('0.1.0')
  .showHelpAfterError("(run 'rampart --help', or 'rampart COMMAND --help', for what is valid)")
  .exitOverride((err) => {
    // commander usage errors: exit code 2 like every other bad input
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

const args = process.argv.slice(2);
let first = args.find((a) => !a.startsWith('-'));
if (first === 'help') first = args[args.indexOf('help') + 1];
const chosen = COMMANDS.find((c) => c.name === first);
if (chosen) (await chosen.load())(program);
else {
  // No command (or an unknown one): list them all, so help and "did you mean" see every name.
  for (const c of COMMANDS) program.command(c.name).summary(c.summary);
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // What a hook refused before the action ran (formats, ...): the same message and exit code as inside it.
  process.exitCode = reportError(e, args.includes('--json'));
}
