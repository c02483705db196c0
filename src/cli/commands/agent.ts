import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Agent } from '../../agent/agent.js';
import { UserError } from '../../errors.js';
import { readTextFile } from '../../firewall/load.js';
import { localExecutor } from '../../lab/executor.js';
import { run } from '../output.js';

/**
 * True unless this process runs in a named network namespace (one under /run/netns, as `ip netns add` makes and
 * `ip netns exec` enters): the same test as `ip netns identify`. Comparing with PID 1's namespace would be more
 * direct, but /proc/1/ns is often unreadable in containers; when in doubt the answer is "host", the careful one.
 */
export function inHostNetworkNamespace(): boolean {
  try {
    const self = statSync('/proc/self/ns/net');
    for (const name of readdirSync('/run/netns')) {
      const st = statSync(join('/run/netns', name));
      if (st.ino === self.ino && st.dev === self.dev) return false;
    }
  } catch {
    // no /run/netns: not in a named namespace
  }
  return true;
}

function readToken(file: string | undefined): string {
  if (!file) {
    const t = process.env.RAMPART_AGENT_TOKEN;
    if (!t)
      throw new UserError('RAMPART_ERR_USAGE', 'no agent token: set RAMPART_AGENT_TOKEN or give --token-file FILE');
    return t;
  }
  const text = readTextFile(file, 'token file');
  if ((statSync(file).mode & 0o077) !== 0)
    throw new UserError('RAMPART_ERR_FILE', `${file}: readable by others; chmod 600 it`);
  return text.trim();
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description(
      'run the host agent (root): takes approved jobs from the server, applies them atomically with health-checked automatic rollback, reports the live ruleset for drift. Touches only the managed tables.',
    )
    .requiredOption('--server <url>', 'the Rampart server the agent dials out to')
    .option(
      '--token-file <file>',
      'the agent token (default $RAMPART_AGENT_TOKEN); create it with: rampart token create --role agent --name HOST',
    )
    .option('--state-dir <dir>', 'pending state and snapshots (0700)', '/var/lib/rampart-agent')
    .option(
      '--firewall <kind>',
      'nftables or iptables (reports before the first job; jobs carry the server config)',
      'nftables',
    )
    .option('--tables <list>', "managed tables, comma separated (default 'inet filter' / 'filter')")
    .option('--poll <ms>', 'how often to ask for work', '1000')
    .option('--no-traffic', 'do not measure incoming traffic (access logs, rule counters, HAProxy) for the server')
    .option('--manage-host-firewall', "allow running in the machine's own network namespace (a real host, not a lab)")
    .action(
      async (o: {
        server: string;
        tokenFile?: string;
        stateDir: string;
        firewall: string;
        tables?: string;
        poll: string;
        manageHostFirewall?: boolean;
        traffic: boolean;
      }) =>
        run(false, async () => {
          if (o.firewall !== 'nftables' && o.firewall !== 'iptables') {
            throw new UserError('RAMPART_ERR_USAGE', `--firewall: '${o.firewall}'; expected nftables or iptables`);
          }
          if (inHostNetworkNamespace() && !o.manageHostFirewall) {
            throw new UserError(
              'RAMPART_ERR_USAGE',
              "refusing to manage this machine's own firewall: the agent runs in the host network namespace. On a real host that is the point; say so with --manage-host-firewall",
            );
          }
          const tables = o.tables
            ? o.tables.split(',').map((t) => t.trim())
            : o.firewall === 'nftables'
              ? ['inet filter']
              : ['filter'];
          const agent = new Agent({
            server: o.server.replace(/\/+$/, ''),
            token: readToken(o.tokenFile),
            stateDir: o.stateDir,
            exec: localExecutor(),
            pollMs: Math.max(100, Number(o.poll) || 1000),
            traffic: o.traffic,
          });
          process.once('SIGTERM', () => agent.stop());
          process.once('SIGINT', () => agent.stop());
          process.stderr.write(
            `rampart-agent: managing ${tables.join(', ')} (${o.firewall}); nothing else on this host is touched\n`,
          );
          await agent.run({ firewall: o.firewall, tables });
        }),
    );
}
