import type { Command } from 'commander';
import { diffCompiled, diffJson, renderDiff } from '../../analysis/diff.js';
import { compileRuleset, createPacketSpace } from '../../analysis/index.js';
import { printJson, run } from '../output.js';
import { addRulesetOptions, loadFromCli, type RulesetCliOptions } from './parse.js';
import { EXAMPLE_INTERFACES, HOOK_HELP, parseHook, parseLimit } from './reach.js';

export function registerDiff(program: Command): void {
  addRulesetOptions(
    program
      .command('diff')
      .description(
        'semantic difference of two rulesets: every flow whose verdict changes, with an example packet and the deciding rules on each side',
      )
      .argument('<old>', 'the ruleset before (nft JSON, nft text, iptables-save)')
      .argument('<new>', 'the ruleset after'),
  )
    .option('--hook <hook>', HOOK_HELP, 'input')
    .option('--limit <n>', 'at most this many flows per verdict change', '20')
    .option('--exit-code', 'exit 1 when behaviour changes (like git diff --exit-code)')
    .action(
      async (
        oldFile: string,
        newFile: string,
        o: RulesetCliOptions & { hook?: string; limit?: string; json?: boolean; exitCode?: boolean },
      ) =>
        run(Boolean(o.json), () => {
          const hook = parseHook(o.hook);
          const limit = parseLimit(o.limit);
          const oldRs = loadFromCli([oldFile], o);
          const newRs = loadFromCli([newFile], o);
          // One space over both: interface names and other open values are encoded relative to both rulesets.
          const space = createPacketSpace([oldRs, newRs], { interfaces: EXAMPLE_INTERFACES, collectGarbage: true });
          const result = diffCompiled(compileRuleset(oldRs, { hook, space }), compileRuleset(newRs, { hook, space }), {
            limit,
          });
          if (o.json) printJson(diffJson(result));
          else process.stdout.write(renderDiff(result));
          if (o.exitCode && result.groups.length > 0) process.exitCode = 1;
        }),
    );
}
