// Crash-test child: opens the BUILT store and writes forever (each write: one change and its audit entry, some of
// them large) until the parent SIGKILLs it. Prints `ready` once open and `committed <id>` after each commit.
// Usage: node crash-child.mjs <dist/store/open.js> <db spec>   (db spec: sqlite:<file> or postgres://...)
import { pathToFileURL } from 'node:url';

const [openModule, db] = process.argv.slice(2);
const { openStore } = await import(pathToFileURL(openModule).href);
const store = await openStore({ db });
const actor = { name: 'crash', role: 'system', from: 'local' };
process.stdout.write('ready\n');

for (let i = 0; ; i++) {
  // Every fifth write is about 2 MB, so a kill often lands in the middle of writing it.
  const size = i % 5 === 4 ? 2_000_000 + i : 100 + (i % 97);
  const ruleset = 'x'.repeat(size);
  const id = await store.write(actor, async (w) => {
    const now = new Date().toISOString();
    const c = await w.insertChange({
      target: { kind: 'host', name: 'web1' },
      hosts: ['web1'],
      author: 'crash',
      reason: String(size),
      ticket: null,
      format: 'nft-text',
      ruleset,
      createdAt: now,
      updatedAt: now,
    });
    await w.audit({ action: 'change.propose', target: `change:${c.id}`, after: { size } });
    return c.id;
  });
  process.stdout.write(`committed ${id}\n`);
}
