#!/usr/bin/env node
import { Command } from 'commander';
import { registerAgent } from './commands/agent.js';
import { registerAudit } from './commands/audit.js';
import { registerAuditLog } from './commands/audit-log.js';
import { registerChange } from './commands/change.js';
import { registerDemo } from './commands/demo.js';
import { registerDiff } from './commands/diff.js';
import { registerHosts } from './commands/hosts.js';
import { registerInit } from './commands/init.js';
import { registerIntents } from './commands/intents.js';
import { registerLab } from './commands/lab.js';
import { registerParse } from './commands/parse.js';
import { registerPlan } from './commands/plan.js';
import { registerReach } from './commands/reach.js';
import { registerRules } from './commands/rules.js';
import { registerServe } from './commands/serve.js';
import { registerToken } from './commands/token.js';
import { registerTrace } from './commands/trace.js';

const program = new Command();
program
  .name('rampart')
  .description('Firewall audit, safe change management and incident response for nftables and iptables hosts')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride((err) => {
    // commander usage errors: exit code 2 like every other bad input
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

registerParse(program);
registerTrace(program);
registerReach(program);
registerRules(program);
registerDiff(program);
registerIntents(program);
registerAudit(program);
registerPlan(program);
registerServe(program);
registerInit(program);
registerToken(program);
registerChange(program);
registerAuditLog(program);
registerAgent(program);
registerHosts(program);
registerDemo(program);
registerLab(program);

await program.parseAsync(process.argv);
