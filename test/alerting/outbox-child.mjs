// Outbox crash-test child: runs the BUILT outbox worker against a store until the parent SIGKILLs it, sending every
// notification of receiver `ops` to one webhook URL. Prints `ready` once the worker runs.
// Usage: node outbox-child.mjs <dist dir> <db spec> <webhook url> <holder> <concurrency> <lease ms>
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dist, db, url, holder, concurrency, leaseMs] = process.argv.slice(2);
const load = (p) => import(pathToFileURL(join(dist, p)).href);
const { openStore } = await load('store/open.js');
const { startOutboxWorker } = await load('server/outbox-worker.js');

const store = await openStore({ db });
const webhook = {
  kind: 'webhook',
  id: 'webhook/0',
  url,
  format: 'rampart',
  maxAlerts: 0,
  sendResolved: true,
  timeoutMs: 5000,
  at: { file: 'rampart.yaml', line: 1, column: 1 },
};
const config = { receivers: [{ name: 'ops', deadlineMs: 3_600_000, channels: [webhook], at: webhook.at }], users: [] };
startOutboxWorker({
  outbox: store.outbox,
  holder,
  config: () => config,
  concurrency: Number(concurrency),
  leaseMs: Number(leaseMs),
  pollMs: 20,
  backoff: { baseMs: 50, capMs: 200 },
  log: (level, message) => process.stderr.write(`${level} ${message}\n`),
});
process.stdout.write('ready\n');
