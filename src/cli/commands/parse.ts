import type { Command } from 'commander';
import { loadRuleset } from '../../firewall/load.js';
import type { InputFormat, L3 } from '../../firewall/model.js';
import { summarizeRuleset } from '../../firewall/summary.js';
import { printJson, run } from '../output.js';

export interface RulesetCliOptions {
  format?: InputFormat;
  family?: L3;
  ipset?: string;
}

export function addRulesetOptions(cmd: Command): Command {
  return cmd
    .option('--format <format>', 'input format: nft-json, nft-text or iptables-save (default: detected)')
    .option('--family <family>', 'for iptables-save input: ipv4 (iptables) or ipv6 (ip6tables) (default: detected)')
    .option('--ipset <file>', 'ipset definitions (`ipset save` output) for -m set matches');
}

export function loadFromCli(files: string[], o: RulesetCliOptions) {
  return loadRuleset(files, {
    ...(o.format ? { format: o.format } : {}),
    ...(o.family ? { family: o.family } : {}),
    ...(o.ipset ? { ipsetFile: o.ipset } : {}),
  });
}

export function registerParse(program: Command): void {
  addRulesetOptions(
    program
      .command('parse')
      .description('parse a ruleset and print the model (tables, chains, rules, warnings)')
      .argument('<files...>', 'ruleset files (nft JSON, nft text, iptables-save); several are merged'),
  )
    .option('--json', 'print the full model as JSON')
    .action(async (files: string[], o: RulesetCliOptions & { json?: boolean }) =>
      run(Boolean(o.json), () => {
        const rs = loadFromCli(files, o);
        if (o.json) printJson(rs);
        else process.stdout.write(summarizeRuleset(rs));
      }),
    );
}
