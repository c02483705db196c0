import type { Command } from 'commander';
import { diffJson, renderDiff } from '../../analysis/diff.js';
import { diffRulesets } from '../../analysis/incremental.js';
import { createPacketSpace } from '../../analysis/index.js';
import { printJson, run } from '../output.js';
import { createProgress, QUIET_HELP } from '../progress.js';
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
    .option('--quiet', QUIET_HELP)
    .action(
      async (
        oldFile: string,
        newFile: string,
        o: RulesetCliOptions & { hook?: string; limit?: string; json?: boolean; exitCode?: boolean; quiet?: boolean },
      ) =>
        run(Boolean(o.json), () => {
          const hook = parseHook(o.hook);
          const limit = parseLimit(o.limit);
          const progress = createProgress(o);
          progress.phase('reading the rulesets');
          const oldRs = loadFromCli([oldFile], o);
          const newRs = loadFromCli([newFile], o);
          // One space over both: interface names and other open values are encoded relative to both rulesets.
          const space = createPacketSpace([oldRs, newRs], { interfaces: EXAMPLE_INTERFACES, collectGarbage: true });
          // Only where the rules differ (the same answer as comparing full compilations).
          let version: string | undefined;
          const result = diffRulesets(oldRs, newRs, {
            hook,
            space,
            limit,
            onProgress: (v, w, t) => {
              if (v !== version)
                progress.phase(`compiling the ${v} ruleset where the rules differ (${hook} hook path)`);
              version = v;
              progress.count(w, t, 'rules walked');
            },
          });
          progress.end();
          if (o.json) printJson(diffJson(result));
          else process.stdout.write(renderDiff(result));
          if (o.exitCode && result.groups.length > 0) process.exitCode = 1;
        }),
    );
}
