import type { Command } from 'commander';
import type { Drift } from '../../server/rollout.js';
import { addClientOptions, type ClientCliOptions, clientFrom } from '../client.js';
import { printJson, run } from '../output.js';

interface HostRow {
  name: string;
  addresses: string[];
  group: string | null;
  desired: { revision: number; changeId: number | null } | null;
  agent: { lastReport: string; state: string | null } | null;
  drift: { inSync: boolean; summary: string; at: string | null } | null;
}

export function registerHosts(program: Command): void {
  const hosts = addClientOptions(
    program.command('hosts').description('hosts of the config: desired revision, agent, drift'),
  )
    .option('--json', 'print the hosts as JSON')
    .action(async (o: ClientCliOptions & { json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const { hosts: rows } = await clientFrom(o).request<{ hosts: HostRow[] }>('GET', '/hosts');
        if (o.json) return printJson({ hosts: rows });
        const lines = rows.map((h) =>
          [
            h.name.padEnd(10),
            (h.group ?? '-').padEnd(8),
            (h.desired ? `rev ${h.desired.revision}` : 'no desired').padEnd(11),
            (h.agent ? `agent ${h.agent.state ?? ''} ${h.agent.lastReport.slice(11, 19)}` : 'no agent').padEnd(24),
            h.drift ? (h.drift.inSync ? 'in sync' : `DRIFT: ${h.drift.summary}`) : '-',
          ].join('  '),
        );
        process.stdout.write(
          `${['host        group     desired      agent                     drift', ...lines].join('\n')}\n`,
        );
      }),
    );
  addClientOptions(
    hosts
      .command('drift')
      .description("a host's live ruleset against its desired one, as a semantic diff")
      .argument('<host>'),
  )
    .option('--json', 'print the drift as JSON')
    .action(async (host: string, _o: unknown, command: Command) => {
      // `hosts` declares the same options: commander gives them to whichever command is nearer; take both.
      const o = command.optsWithGlobals<ClientCliOptions & { json?: boolean }>();
      return run(Boolean(o.json), async () => {
        const d = await clientFrom(o).request<{ host: string; reportedAt: string; drift: Drift | null }>(
          'GET',
          `/hosts/${encodeURIComponent(host)}/drift`,
        );
        if (o.json) return printJson(d);
        if (!d.drift)
          return void process.stdout.write(`${host}: no desired ruleset to compare with (reported ${d.reportedAt})\n`);
        const out = [`${host}: ${d.drift.inSync ? 'in sync' : 'DRIFT'}: ${d.drift.summary} (reported ${d.reportedAt})`];
        for (const c of d.drift.changes) {
          out.push(`  ${c.hook} ${c.from} -> ${c.to}: ${c.flow}`, `      example: ${c.example}`);
        }
        process.stdout.write(`${out.join('\n')}\n`);
        if (!d.drift.inSync) process.exitCode = 1;
      });
    });
}
