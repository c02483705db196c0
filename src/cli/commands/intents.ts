import type { Command } from 'commander';
import { flowInterfaces, restrictToRuleset } from '../../analysis/flow-spec.js';
import { compileRuleset, createPacketSpace } from '../../analysis/index.js';
import { checkIntents, intentsJson, parseIntents, renderIntents } from '../../analysis/intents.js';
import type { CompiledRuleset } from '../../analysis/types.js';
import { UserError } from '../../errors.js';
import { readTextFile } from '../../firewall/load.js';
import type { TraceHook } from '../../firewall/tracer.js';
import { printJson, run } from '../output.js';
import { addRulesetOptions, loadFromCli, type RulesetCliOptions } from './parse.js';
import { EXAMPLE_INTERFACES, HOOK_HELP, parseHook } from './reach.js';

export function registerIntents(program: Command): void {
  addRulesetOptions(
    program
      .command('intents')
      .description('check must-allow / must-deny intents against a ruleset; exit 1 when any is violated')
      .argument('<files...>', 'ruleset files (nft JSON, nft text, iptables-save); several are merged'),
  )
    .option(
      '--file <intents.yaml>',
      'the intents: a YAML list of {name, must: allow|deny, from, to, proto, dport, ...}',
    )
    .option('--hook <hook>', `${HOOK_HELP} (for intents without their own hook)`, 'input')
    .action(async (files: string[], o: RulesetCliOptions & { file?: string; hook?: string; json?: boolean }) =>
      run(Boolean(o.json), () => {
        const hook = parseHook(o.hook);
        if (o.file === undefined) {
          throw new UserError('RAMPART_ERR_USAGE', '--file is required: the intents file (YAML)', { flag: '--file' });
        }
        const intents = parseIntents(readTextFile(o.file, 'intents file'), o.file);
        const rs = loadFromCli(files, o);
        const space = createPacketSpace([rs], {
          interfaces: [...EXAMPLE_INTERFACES, ...flowInterfaces(intents.map((i) => i.spec))],
          // Collections run only while compiling; every hook is compiled before the first packet set is made.
          collectGarbage: true,
        });
        const compiled = new Map<TraceHook, CompiledRuleset>();
        const compile = (h: TraceHook): CompiledRuleset => {
          const known = compiled.get(h);
          if (known) return known;
          const c = compileRuleset(rs, { hook: h, space });
          compiled.set(h, c);
          return c;
        };
        const narrowed = intents.map((i) => ({ ...i, spec: restrictToRuleset(i.spec, rs.tables) }));
        for (const h of new Set(narrowed.map((i) => i.hook ?? hook))) compile(h);
        const results = checkIntents(narrowed, compile, hook);
        if (o.json) printJson(intentsJson(results));
        else process.stdout.write(renderIntents(results));
        if (results.some((r) => r.status === 'violated')) process.exitCode = 1;
      }),
    );
}
