import type { Command } from 'commander';
import { loadRuleset } from '../../firewall/load.js';
import type { L3 } from '../../firewall/model.js';
import { summarizeRuleset } from '../../firewall/summary.js';
import { addFormatOptions, type FormatOptions } from '../formats.js';
import { printJson, run } from '../output.js';

export interface RulesetCliOptions extends FormatOptions {
  family?: L3;
  ipset?: string;
}

/** The options of every command that reads rulesets: formats (docs/cli.md), iptables family, ipset file. */
export function addRulesetOptions(cmd: Command): Command {
  return addFormatOptions(cmd, ['text', 'json'], { input: true })
    .option('--family <family>', 'for iptables-save input: ipv4 (iptables) or ipv6 (ip6tables) (default: detected)')
    .option('--ipset <file>', 'ipset definitions (`ipset save` output) for -m set matches');
}

export function loadFromCli(files: string[], o: RulesetCliOptions) {
  return loadRuleset(files, {
    ...(o.inputFormat ? { format: o.inputFormat } : {}),
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
  ).action(async (files: string[], o: RulesetCliOptions & { json?: boolean }) =>
    run(Boolean(o.json), () => {
      const rs = loadFromCli(files, o);
      if (o.json) printJson(rs);
      else process.stdout.write(summarizeRuleset(rs));
    }),
  );
}
