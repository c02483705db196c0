import type { Command } from 'commander';
import type { Packet } from '../../firewall/model.js';
import { parseNftText } from '../../firewall/parsers/nft-text.js';
import { describeDecider } from '../../firewall/render-trace.js';
import { trace } from '../../firewall/tracer.js';
import { FOUNDING_FIXED_NFT, FOUNDING_OUTAGE_NFT } from '../demo-data.js';
import { printJson, run } from '../output.js';

const FLOWS: readonly { readonly name: string; readonly packet: Packet }[] = [
  {
    name: 'customer -> shop https',
    packet: {
      family: 'ipv4',
      iif: 'eth0',
      saddr: '203.0.113.7',
      daddr: '192.0.2.10',
      l4proto: 6,
      sport: 40000,
      dport: 443,
    },
  },
  {
    name: 'customer -> shop http',
    packet: {
      family: 'ipv4',
      iif: 'eth0',
      saddr: '203.0.113.7',
      daddr: '192.0.2.10',
      l4proto: 6,
      sport: 40001,
      dport: 80,
    },
  },
  {
    name: 'admin -> ssh',
    packet: {
      family: 'ipv4',
      iif: 'eth0',
      saddr: '198.51.100.5',
      daddr: '192.0.2.10',
      l4proto: 6,
      sport: 40002,
      dport: 22,
    },
  },
  {
    name: 'internet -> ssh',
    packet: {
      family: 'ipv4',
      iif: 'eth0',
      saddr: '203.0.113.7',
      daddr: '192.0.2.10',
      l4proto: 6,
      sport: 40003,
      dport: 22,
    },
  },
];

/** Runs the tracer on the embedded founding-outage ruleset and its fix: what Rampart would have shown at 2:00 PM. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description("trace the founding outage's ruleset and its fix (embedded example; no root, no files needed)")
    .option('--json', 'print the results as JSON')
    .action(async (o: { json?: boolean }) =>
      run(Boolean(o.json), () => {
        const rulesets = [
          { name: 'after the change (founding outage)', rs: parseNftText(FOUNDING_OUTAGE_NFT, 'embedded:outage.nft') },
          { name: 'after the fix', rs: parseNftText(FOUNDING_FIXED_NFT, 'embedded:fixed.nft') },
        ];
        const results = rulesets.map(({ name, rs }) => ({
          ruleset: name,
          flows: FLOWS.map((f) => {
            const r = trace(rs, f.packet, { hook: 'input' });
            return { flow: f.name, verdict: r.verdict, decidedBy: describeDecider(r.decidedBy), path: r.path };
          }),
        }));
        if (o.json) return printJson(results);
        const out: string[] = ['Rampart demo: the founding outage, traced through the real ruleset model', ''];
        for (const r of results) {
          out.push(`${r.ruleset}:`);
          for (const f of r.flows)
            out.push(`  ${f.flow.padEnd(24)} ${f.verdict.toUpperCase().padEnd(7)} ${f.decidedBy}`);
          out.push('');
        }
        out.push('Try it on your own ruleset:  rampart trace /etc/nftables.conf --hook input --iif eth0 \\');
        out.push('  --src 203.0.113.7 --dst 192.0.2.10 --proto tcp --dport 443');
        process.stdout.write(`${out.join('\n')}\n`);
      }),
    );
}
