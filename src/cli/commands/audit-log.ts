import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { readTextFile } from '../../firewall/load.js';
import { toJsonLines } from '../../store/audit-chain.js';
import { openStore } from '../../store/open.js';
import { printJson, run } from '../output.js';
import { addStoreOptions, type StoreCliOptions, storeTarget } from '../store-options.js';

/** `SEQ HASH` (as `audit-log head` prints it) or a bare HASH: the head kept elsewhere. */
export function parseExpectedHead(text: string, where: string): { seq?: number; hash: string } {
  const m = /^\s*(?:(\d+)\s+)?([0-9a-f]{64})\s*$/.exec(text);
  if (!m) {
    throw new UserError(
      'RAMPART_ERR_USAGE',
      `${where}: '${text.trim().slice(0, 80)}' is not an audit head; expected 'SEQ HASH' as 'rampart audit-log head' prints it, or the 64-hex-digit hash alone`,
    );
  }
  return { ...(m[1] !== undefined ? { seq: Number(m[1]) } : {}), hash: m[2] as string };
}

export function registerAuditLog(program: Command): void {
  const log = program.command('audit-log').description('the hash-chained audit trail of every state-changing action');
  addStoreOptions(
    log
      .command('verify')
      .description('recompute the chain; exit 1 and name the first entry altered, inserted or removed'),
  )
    .option('--expect-head <head>', "the head kept elsewhere ('SEQ HASH' from 'audit-log head', or the hash)")
    .option('--expect-head-file <file>', 'the same, read from a file')
    .option('--json', 'print the verdict as JSON')
    .action(async (o: StoreCliOptions & { json?: boolean; expectHead?: string; expectHeadFile?: string }) =>
      run(Boolean(o.json), async () => {
        const expected =
          o.expectHead !== undefined
            ? parseExpectedHead(o.expectHead, '--expect-head')
            : o.expectHeadFile !== undefined
              ? parseExpectedHead(readTextFile(o.expectHeadFile).split('\n')[0] ?? '', o.expectHeadFile)
              : undefined;
        const store = await openStore(storeTarget(o));
        try {
          const v = await store.verifyAuditLog(expected);
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
  addStoreOptions(
    log
      .command('head')
      .description(
        "print the newest entry's seq and hash ('SEQ HASH'): keep it elsewhere, check it with verify --expect-head",
      ),
  )
    .option('--json', 'print {"seq": ..., "hash": ...}')
    .action(async (o: StoreCliOptions & { json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const store = await openStore(storeTarget(o));
        try {
          const head = await store.auditHead();
          if (head === undefined) {
            process.stdout.write('audit log TAMPERED: the audit head row is missing\n');
            process.exitCode = 1;
            return;
          }
          if (o.json) printJson({ seq: head.lastSeq, hash: head.lastHash });
          else process.stdout.write(`${head.lastSeq} ${head.lastHash}\n`);
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
