/**
 * `rampart probe` (issue 14): a vantage point anyone runs in another network or region. Unprivileged; it dials out to
 * the server with a token of role probe, takes the monitors declared `from: probes`, probes them and reports, and
 * keeps its results while the server is away.
 */
import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { readTextFile } from '../../firewall/load.js';
import { VantagePoint } from '../../monitor/vantage.js';
import { run } from '../output.js';

function readToken(file: string | undefined): string {
  if (!file) {
    const t = process.env.RAMPART_PROBE_TOKEN;
    if (!t) {
      throw new UserError(
        'RAMPART_ERR_USAGE',
        'no probe token: set RAMPART_PROBE_TOKEN or give --token-file FILE; create one with: rampart token create --role probe --name eu-west',
      );
    }
    return t;
  }
  const text = readTextFile(file, 'token file');
  if ((statSync(file).mode & 0o077) !== 0) {
    throw new UserError('RAMPART_ERR_FILE', `${file}: readable by others; chmod 600 it`);
  }
  return text.trim();
}

export function registerProbe(program: Command): void {
  program
    .command('probe')
    .description(
      'run a vantage point: probe the monitors declared from: probes and report to the server (unprivileged; keeps results while the server is away)',
    )
    .requiredOption('--server <url>', 'the Rampart server to dial out to')
    .option('--token-file <file>', 'the probe token (default $RAMPART_PROBE_TOKEN)')
    .option('--buffer <n>', 'results kept while the server is away (the oldest go first)', '100000')
    .action(async (o: { server: string; tokenFile?: string; buffer: string }) =>
      run(false, async () => {
        const buffer = Number(o.buffer);
        if (!Number.isInteger(buffer) || buffer < 100) {
          throw new UserError('RAMPART_ERR_USAGE', `--buffer: '${o.buffer}'; expected a whole number of at least 100`);
        }
        if (!/^https?:\/\/[^/]+\/?$/.test(o.server)) {
          throw new UserError(
            'RAMPART_ERR_USAGE',
            `--server: '${o.server}' is not a server URL; expected http(s)://HOST:PORT`,
          );
        }
        const v = new VantagePoint({
          server: o.server.replace(/\/+$/, ''),
          token: readToken(o.tokenFile),
          kind: 'probe',
          bufferLimit: buffer,
        });
        const stopped = new Promise<void>((resolve) => {
          const stop = () => void v.stop().then(resolve);
          process.once('SIGTERM', stop);
          process.once('SIGINT', stop);
        });
        try {
          await v.start();
        } catch (e) {
          throw new UserError('RAMPART_ERR_USAGE', `the server refused this probe: ${(e as Error).message}`);
        }
        await stopped;
      }),
    );
}
