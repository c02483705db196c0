import type { Command } from 'commander';
import { compileRuleset, createPacketSpace } from '../../analysis/index.js';
import { findUnreachable, renderUnreachable, unreachableJson } from '../../analysis/unreachable.js';
import { printJson, run } from '../output.js';
import { addRulesetOptions, loadFromCli, type RulesetCliOptions } from './parse.js';
import { EXAMPLE_INTERFACES, HOOK_HELP, parseHook } from './reach.js';

export function registerRules(program: Command): void {
  addRulesetOptions(
    program
      .command('rules')
      .description(
        'rule queries; --unreachable: every rule that can never apply (shadowed, redundant or empty), with the earlier rules that cover it',
      )
      .argument('<files...>', 'ruleset files (nft JSON, nft text, iptables-save); several are merged'),
  )
    .option('--unreachable', 'list unreachable rules (the default and, for now, only query)')
    .option('--hook <hook>', HOOK_HELP, 'input')
    .option('--exit-code', 'exit 1 when some rule is unreachable or in a chain never entered')
    .action(async (files: string[], o: RulesetCliOptions & { hook?: string; json?: boolean; exitCode?: boolean }) =>
      run(Boolean(o.json), () => {
        const hook = parseHook(o.hook);
        const rs = loadFromCli(files, o);
        const compiled = compileRuleset(rs, {
          hook,
          space: createPacketSpace([rs], { interfaces: EXAMPLE_INTERFACES, collectGarbage: true }),
        });
        const rep = findUnreachable(compiled);
        if (o.json) printJson(unreachableJson(rep));
        else process.stdout.write(renderUnreachable(rep));
        if (o.exitCode && (rep.unreachable.length > 0 || rep.neverEntered.length > 0)) process.exitCode = 1;
      }),
    );
}
