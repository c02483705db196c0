import type { Command } from 'commander';
import { type FlowSpecInput, flowInterfaces, parseFlowSpec, restrictToRuleset } from '../../analysis/flow-spec.js';
import { compileRuleset, createPacketSpace } from '../../analysis/index.js';
import { reach, reachJson, renderReach } from '../../analysis/reach.js';
import { UserError } from '../../errors.js';
import { CT_STATES } from '../../firewall/model.js';
import { TRACE_HOOKS, type TraceHook } from '../../firewall/tracer.js';
import { printJson, run } from '../output.js';
import { addRulesetOptions, loadFromCli, type RulesetCliOptions } from './parse.js';

/**
 * An interface name examples can use: without it, an example packet on "any interface but lo" arrives on an
 * invented name (other0). Adding a name to the space changes no answer, only how interfaces split into atoms.
 */
export const EXAMPLE_INTERFACES: readonly string[] = ['eth0'];

export const HOOK_HELP =
  'hook path to analyse: input (to this host, after prerouting), forward, output, prerouting, postrouting';

export function parseHook(text: string | undefined, flag = '--hook'): TraceHook {
  const h = (text ?? 'input').trim().toLowerCase();
  if (!(TRACE_HOOKS as readonly string[]).includes(h)) {
    throw new UserError(
      'RAMPART_ERR_USAGE',
      `${flag} '${text}': unknown hook; expected one of ${TRACE_HOOKS.join(', ')}`,
      {
        flag,
        value: text,
      },
    );
  }
  return h as TraceHook;
}

export function parseLimit(text: string | undefined, fallback = 20): number {
  if (text === undefined) return fallback;
  const t = text.trim();
  if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > 10000) {
    throw new UserError('RAMPART_ERR_USAGE', `--limit '${text}': expected a number of flows, 1-10000`, {
      flag: '--limit',
    });
  }
  return Number(t);
}

interface ReachCliOptions extends RulesetCliOptions {
  hook?: string;
  from?: string;
  to?: string;
  proto?: string;
  sport?: string;
  dport?: string;
  iif?: string;
  oif?: string;
  ctState?: string;
  icmpType?: string;
  limit?: string;
  json?: boolean;
}

export function registerReach(program: Command): void {
  addRulesetOptions(
    program
      .command('reach')
      .description(
        'which packets of a flow space the ruleset accepts, drops or rejects: readable flows with an example packet and the deciding rule',
      )
      .argument('<files...>', 'ruleset files (nft JSON, nft text, iptables-save); several are merged'),
  )
    .option('--hook <hook>', HOOK_HELP, 'input')
    .option('--from <cidrs>', 'source addresses: any, or addresses, prefixes and ranges, comma-separated', 'any')
    .option('--to <cidrs>', 'destination addresses (same forms as --from)', 'any')
    .option('--proto <protocols>', 'l4 protocols, comma-separated names or numbers (default: all)')
    .option('--sport <ports>', 'source ports and ranges, e.g. 1024-65535')
    .option('--dport <ports>', 'destination ports and ranges, e.g. 80,443,8000-8100')
    .option('--iif <names>', 'input interfaces (eth* for a prefix)')
    .option('--oif <names>', 'output interfaces')
    .option('--ct-state <states>', `conntrack states: ${CT_STATES.join(', ')} (default: all)`)
    .option('--icmp-type <types>', 'ICMP/ICMPv6 types (names or numbers; needs --proto icmp or icmpv6)')
    .option('--limit <n>', 'at most this many flows per outcome', '20')
    .action(async (files: string[], o: ReachCliOptions) =>
      run(Boolean(o.json), () => {
        // Validate every flag before reading files: bad flags fail fast and alone.
        const hook = parseHook(o.hook);
        const limit = parseLimit(o.limit);
        const input: FlowSpecInput = {
          ...(o.family !== undefined ? { family: o.family } : {}),
          from: o.from,
          to: o.to,
          ...(o.proto !== undefined ? { proto: o.proto } : {}),
          ...(o.sport !== undefined ? { sport: o.sport } : {}),
          ...(o.dport !== undefined ? { dport: o.dport } : {}),
          ...(o.iif !== undefined ? { iif: o.iif } : {}),
          ...(o.oif !== undefined ? { oif: o.oif } : {}),
          ...(o.ctState !== undefined ? { ctState: o.ctState } : {}),
          ...(o.icmpType !== undefined ? { icmpType: o.icmpType } : {}),
        };
        const parsed = parseFlowSpec(input);
        const rs = loadFromCli(files, o);
        const spec = restrictToRuleset(parsed, rs.tables);
        const space = createPacketSpace([rs], {
          interfaces: [...EXAMPLE_INTERFACES, ...flowInterfaces([spec])],
          collectGarbage: true,
        });
        const compiled = compileRuleset(rs, { hook, space });
        const result = reach(compiled, spec, { limit });
        if (o.json) printJson(reachJson(result));
        else process.stdout.write(renderReach(result));
      }),
    );
}
