import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { buildServer } from '../../server/app.js';
import { configHolder } from '../../server/config-holder.js';
import { openStore } from '../../store/open.js';
import { run } from '../output.js';
import { addStoreOptions, type StoreCliOptions, storeTarget } from '../store-options.js';

export const DEFAULT_LISTEN = '127.0.0.1:8470';

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) {
    throw new UserError(
      'RAMPART_ERR_USAGE',
      `--listen: '${text}' is not HOST:PORT; expected e.g. 127.0.0.1:8470 or [::1]:8470`,
    );
  }
  return { host: (m[1] ?? m[2]) as string, port };
}

export function registerServe(program: Command): void {
  addStoreOptions(
    program
      .command('serve')
      .description('run the Rampart server: JSON API under /api/v1, /healthz, /metrics; SIGHUP reloads the config'),
  )
    .option('--config <file>', 'rampart.yaml (hosts, services, intents, change policy)')
    .option('--listen <host:port>', 'address to listen on', DEFAULT_LISTEN)
    .option('--log-level <level>', 'pino log level (fatal, error, warn, info, debug)', 'info')
    .action(async (o: StoreCliOptions & { config?: string; listen: string; logLevel: string }) =>
      run(false, async () => {
        const { host, port } = parseListen(o.listen);
        const config = configHolder(o.config ?? null);
        const store = await openStore(storeTarget(o));
        const app = await buildServer({ store, config, logger: { level: o.logLevel } });
        process.on('SIGHUP', () => {
          const r = config.reload();
          if (r.ok) app.log.info({ file: config.path }, 'config reloaded');
          else
            app.log.error(
              { file: config.path, error: r.error.message },
              'config reload refused; the old config stays in force',
            );
          void store
            .write({ name: 'SIGHUP', role: 'system', from: 'local' }, (w) =>
              w.audit({
                action: r.ok ? 'config.reload' : 'config.reload-refused',
                target: 'config',
                after: r.ok ? { file: config.path } : { file: config.path, error: r.error.message },
              }),
            )
            .catch((e: unknown) => app.log.error({ err: e }, 'could not record the reload'));
        });
        const stop = async (signal: string) => {
          app.log.info({ signal }, 'shutting down');
          await app.close();
          await store.close();
          process.exit(0);
        };
        process.once('SIGTERM', () => void stop('SIGTERM'));
        process.once('SIGINT', () => void stop('SIGINT'));
        const address = await app.listen({ host, port });
        process.stdout.write(`rampart: listening on ${address} (store: ${store.kind})\n`);
      }),
    );
}
