import type { Command } from 'commander';
import { UserError } from '../../errors.js';
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

/**
 * `rampart demo` (what `npm start` runs): the tracer on the embedded founding-outage ruleset and its fix (what
 * Rampart would have shown at 2:00 PM), then the whole product live on the embedded example (src/demo/live.ts)
 * until Ctrl-C. `--no-serve` (and `--json`) print the trace only, for scripts.
 */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      "trace the founding outage's ruleset and its fix, then serve the dashboard on the embedded example until Ctrl-C (no root; a temporary data directory, removed on exit)",
    )
    .option('--json', 'print the trace as JSON (and do not serve)')
    .option('--no-serve', 'print the trace only')
    .option('--listen <host:port>', 'where the server listens (loopback; port 0 picks a free one)', '127.0.0.1:8470')
    .action(async (o: { json?: boolean; serve: boolean; listen: string }) =>
      run(Boolean(o.json), async () => {
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
        if (!o.serve) return;
        const { isLoopback, parseListen } = await import('./serve.js');
        const { host } = parseListen(o.listen);
        if (!isLoopback(host)) {
          throw new UserError(
            'RAMPART_ERR_USAGE',
            `--listen: '${o.listen}' is not a loopback address; the demo prints an admin token and serves without TLS, so it listens on 127.0.0.0/8, ::1 or localhost only`,
          );
        }
        process.stdout.write('\nStarting rampart serve on the embedded example...\n');
        const { startLiveDemo } = await import('../../demo/live.js');
        const demo = await startLiveDemo({
          listen: o.listen,
          out: (t) => process.stdout.write(t),
          err: (t) => process.stderr.write(t),
        });
        process.exitCode = await demo.done;
      }),
    );
}
