import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { generateToken } from '../../server/auth.js';
import { openStore } from '../../store/open.js';
import { printJson, run } from '../output.js';
import { addStoreOptions, type StoreCliOptions, storeTarget } from '../store-options.js';

export function registerInit(program: Command): void {
  addStoreOptions(
    program.command('init').description('create the store (run migrations) and print the first admin token, once'),
  )
    .option('--name <name>', 'name of the first admin', 'admin')
    .option('--json', 'print {"token": ..., "id": ...} as JSON')
    .option('--token-only', 'print the token alone (for scripts: export RAMPART_TOKEN=$(rampart init --token-only))')
    .action(async (o: StoreCliOptions & { name: string; json?: boolean; tokenOnly?: boolean }) =>
      run(Boolean(o.json), async () => {
        const target = storeTarget(o);
        const store = await openStore(target);
        try {
          const t = generateToken();
          const actor = { name: 'rampart-init', role: 'system' as const, from: 'local' };
          const record = await store.write(actor, async (w) => {
            // Inside the write lock, so two concurrent inits cannot both create an admin.
            if ((await w.listTokens()).length > 0) {
              throw new UserError(
                'RAMPART_ERR_STATE',
                `the store at ${target.db ? 'the given --db' : target.dataDir} is already initialised; create more tokens with 'rampart token create' and an admin token`,
              );
            }
            const r = await w.insertToken({
              id: t.id,
              name: o.name,
              role: 'admin',
              secretHash: t.secretHash,
              createdAt: new Date().toISOString(),
              createdBy: 'rampart-init',
            });
            await w.audit({
              action: 'token.create',
              target: `token:${r.id}`,
              after: { id: r.id, name: r.name, role: r.role },
            });
            return r;
          });
          if (o.json) printJson({ token: t.token, id: record.id, name: record.name, role: record.role });
          else if (o.tokenOnly) process.stdout.write(`${t.token}\n`);
          else {
            process.stdout.write(
              `store ready (${store.kind}${target.db ? '' : `, ${target.dataDir}`}, schema ${await store.schemaVersion()})\n` +
                `first admin token for '${record.name}' (shown once; it is stored only as a hash):\n\n  ${t.token}\n\n` +
                `export RAMPART_TOKEN=${t.token}\n`,
            );
          }
        } finally {
          await store.close();
        }
      }),
    );
}
