/**
 * The drills' page receiver: an HTTP server next to the Rampart server in the lab's srv namespace (the drill's own
 * process cannot listen on a namespace's loopback). Every webhook it accepts is one JSON line appended to the records
 * file before it answers 200, `at` being the moment of acceptance (Date.now(), the same clock as the drill's):
 * {"kind":"http","at":...,"path":"/team","id":"<X-Rampart-Id>","status":"firing"}. The first line is
 * {"kind":"ready"} once it listens.
 *
 *   node dist/lab/drills/receiver.js <records file> <port> [address, default 127.0.0.1]
 */
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

export interface ReceivedPage {
  readonly kind: 'http';
  readonly at: number;
  readonly path: string;
  /** The notification's idempotency key (the X-Rampart-Id header), '' when absent. */
  readonly id: string;
  /** The payload's `status` (Alertmanager's webhook: firing or resolved), '' when it has none. */
  readonly status: string;
  /**
   * The earliest `startsAt` of the payload's firing alerts (epoch ms), when it has them: for Prometheus's alerts the
   * moment the rule began firing (Prometheus sends its FiredAt as startsAt).
   */
  readonly startsAt?: number;
}

export type ReceiverRecord = ReceivedPage | { readonly kind: 'ready'; readonly at: number };

/** Parses the records file's text; a half-written last line (being appended) is skipped. */
export function parseRecords(text: string): ReceiverRecord[] {
  const out: ReceiverRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as ReceiverRecord);
    } catch {
      // the line being written
    }
  }
  return out;
}

function main(argv: readonly string[]): void {
  const [records, port, address = '127.0.0.1'] = argv;
  if (!records || !port) throw new Error('usage: receiver.js <records file> <port> [address]');
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let status = '';
      let startsAt: number | undefined;
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { status?: unknown; alerts?: unknown };
        if (typeof body.status === 'string') status = body.status;
        const starts = (Array.isArray(body.alerts) ? body.alerts : [])
          .filter((a: { status?: unknown }) => a?.status === 'firing')
          .map((a: { startsAt?: unknown }) => (typeof a.startsAt === 'string' ? Date.parse(a.startsAt) : Number.NaN))
          .filter((t: number) => Number.isFinite(t));
        if (starts.length > 0) startsAt = Math.min(...starts);
      } catch {
        // not JSON: recorded without a status
      }
      const id = req.headers['x-rampart-id'];
      const rec: ReceivedPage = {
        kind: 'http',
        at: Date.now(),
        path: req.url ?? '/',
        id: typeof id === 'string' ? id : '',
        status,
        ...(startsAt !== undefined ? { startsAt } : {}),
      };
      appendFileSync(records, `${JSON.stringify(rec)}\n`);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    });
  });
  server.listen(Number(port), address, () => {
    appendFileSync(records, `${JSON.stringify({ kind: 'ready', at: Date.now() })}\n`);
  });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => server.close(() => process.exit(0)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`receiver: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  }
}
