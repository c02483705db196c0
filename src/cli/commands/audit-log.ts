import type { Command } from 'commander';
import { toJsonLines } from '../../store/audit-chain.js';
import { openStore } from '../../store/open.js';
import { printJson, run } from '../output.js';
import { addStoreOptions, type StoreCliOptions, storeTarget } from '../store-options.js';

export function registerAuditLog(program: Command): void {
  const log = program.command('audit-log').description('the hash-chained audit trail of every state-changing action');
  addStoreOptions(
    log
      .command('verify')
      .description('recompute the chain; exit 1 and name the first entry altered, inserted or removed'),
  )
    .option('--json', 'print the verdict as JSON')
    .action(async (o: StoreCliOptions & { json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const store = await openStore(storeTarget(o));
        try {
          const v = await store.verifyAuditLog();
          if (o.json) printJson(v);
          else if (v.ok)
            process.stdout.write(`audit log intact: ${v.count} entries, head ${v.headHash.slice(0, 16)}\n`);
          else process.stdout.write(`audit log TAMPERED: entry ${v.seq} ${v.problem}: ${v.message}\n`);
          if (!v.ok) process.exitCode = 1;
        } finally {
          await store.close();
        }
      }),
    );
  addStoreOptions(log.command('export').description('print the entries as JSON lines'))
    .option('--from <seq>', 'first entry', '1')
    .action(async (o: StoreCliOptions & { from: string }) =>
      run(false, async () => {
        const store = await openStore(storeTarget(o));
        try {
          process.stdout.write(toJsonLines(await store.auditEntries({ from: Math.max(1, Number(o.from) || 1) })));
        } finally {
          await store.close();
        }
      }),
    );
}
