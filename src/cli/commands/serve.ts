import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { readTextFile } from '../../firewall/load.js';
import { buildServer, timedStop } from '../../server/app.js';
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

const WINDOW_UNITS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000 };

/** `10/60s`: failures allowed, and the window. */
export function parseAuthLimit(text: string): { failures: number; windowMs: number } {
  const m = /^(\d{1,6})\/(\d{1,5})(s|m|h)$/.exec(text.trim());
  const failures = Number(m?.[1]);
  const windowMs = Number(m?.[2]) * (WINDOW_UNITS[m?.[3] ?? ''] ?? Number.NaN);
  if (!m || failures < 1 || !(windowMs >= 1000)) {
    throw new UserError(
      'RAMPART_ERR_USAGE',
      `--auth-limit: '${text}' is not FAILURES/WINDOW; expected e.g. 10/60s or 30/5m (at least 1 failure, a window of 1s or more)`,
    );
  }
  return { failures, windowMs };
}

/**
 * `serve --detach`: starts the same command without --detach in its own session, logging to <data-dir>/serve.log,
 * and returns once it listens (or fails, with the log's last lines), writing its PID to <data-dir>/serve.pid. For
 * scripts and the README, which must not race the server's start.
 */
async function detach(dataDir: string): Promise<void> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const log = join(dataDir, 'serve.log');
  const pidFile = join(dataDir, 'serve.pid');
  const fd = openSync(log, 'a', 0o600);
  const args = process.argv.slice(1).filter((a) => a !== '--detach');
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const start = statSync(log).size;
  let exited: number | null = null;
  child.on('exit', (code) => {
    exited = code ?? 1;
  });
  const deadline = Date.now() + 90_000;
  for (;;) {
    const text = readFileSync(log, 'utf8').slice(start);
    const m = /rampart: listening on (\S+)/.exec(text);
    if (m) {
      writeFileSync(pidFile, `${child.pid}\n`, { mode: 0o600 });
      child.unref();
      process.stdout.write(
        `rampart: listening on ${m[1]} (pid ${child.pid}; log ${log}; stop it with: kill ${child.pid})\n`,
      );
      return;
    }
    if (exited !== null || Date.now() > deadline) {
      if (exited === null) child.kill();
      const tail = text.trim().split('\n').slice(-5).join('\n');
      throw new UserError(
        'RAMPART_ERR_USAGE',
        `the server did not start${exited !== null ? ` (exit ${exited})` : ' in 90 s'}:\n${tail}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** 127.0.0.0/8, ::1 and localhost: addresses nobody else can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
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
    .option(
      '--auth-limit <n/window>',
      'failed authentications per address or token id before 429, and the window (e.g. 10/60s, 30/5m)',
      '10/60s',
    )
    .option(
      '--detach',
      'run in the background: return once it listens, its PID in <data-dir>/serve.pid, logs in serve.log',
    )
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM, chain included); needs --tls-key')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .action(
      async (
        o: StoreCliOptions & {
          config?: string;
          listen: string;
          logLevel: string;
          tlsCert?: string;
          tlsKey?: string;
          authLimit: string;
          detach?: boolean;
        },
      ) =>
        run(false, async () => {
          if (o.detach) return detach(storeTarget(o).dataDir);
          const { host, port } = parseListen(o.listen);
          if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
            throw new UserError('RAMPART_ERR_USAGE', 'give both --tls-cert FILE and --tls-key FILE, or neither');
          }
          const https =
            o.tlsCert !== undefined && o.tlsKey !== undefined
              ? { cert: readTextFile(o.tlsCert), key: readTextFile(o.tlsKey) }
              : undefined;
          const authLimits = parseAuthLimit(o.authLimit);
          const config = configHolder(o.config ?? null);
          const store = await openStore(storeTarget(o));
          const app = await buildServer({
            store,
            config,
            authLimits,
            // human-readable lines when a person watches the terminal, JSON lines for log shippers otherwise
            logger: { level: o.logLevel, pretty: Boolean(process.stdout.isTTY) },
            ...(https ? { https } : {}),
          });
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
            // A slow stop names its part: the services name theirs inside the server's close.
            await timedStop(app.log, 'the server (requests and services)', () => app.close());
            await timedStop(app.log, 'the store', () => store.close());
            process.exit(0);
          };
          process.once('SIGTERM', () => void stop('SIGTERM'));
          process.once('SIGINT', () => void stop('SIGINT'));
          let address: string;
          try {
            address = await app.listen({ host, port });
          } catch (e) {
            // Nothing listens, so nothing must keep running either (timers, the store): close both and say why.
            await app.close().catch(() => undefined);
            await store.close().catch(() => undefined);
            const code = (e as NodeJS.ErrnoException).code;
            if (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL' || code === 'EACCES') {
              const why =
                code === 'EADDRINUSE'
                  ? 'the address is already in use (another rampart serve?)'
                  : code === 'EACCES'
                    ? 'permission denied (ports below 1024 need privileges)'
                    : 'the address is not on this machine';
              throw new UserError(
                'RAMPART_ERR_USAGE',
                `--listen ${o.listen}: cannot listen: ${why}; choose another with --listen HOST:PORT (port 0 picks a free one)`,
              );
            }
            throw e;
          }
          if (!https && !isLoopback(host)) {
            app.log.warn(
              { listen: o.listen },
              'listening on a non-loopback address without TLS: tokens and rulesets cross the network in the clear; give --tls-cert and --tls-key, or put a TLS proxy in front and listen on loopback',
            );
          }
          process.stdout.write(`rampart: listening on ${address} (store: ${store.kind}${https ? ', TLS' : ''})\n`);
        }),
    );
}
