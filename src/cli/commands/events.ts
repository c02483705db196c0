/**
 * `rampart events` (issue 14): monitoring's events, oldest first — monitor and service state changes, diagnoses,
 * traffic drops and recoveries (docs/monitoring.md "Events"); `--kind`, `--subject`, `--after ID` to follow on.
 */
import type { Command } from 'commander';
import { addClientOptions, type ClientCliOptions, clientFrom } from '../client.js';
import { printJson, run } from '../output.js';

interface EventView {
  id: number;
  at: string;
  kind: string;
  subject: string;
  data: Record<string, unknown>;
}

/** One line per event: what changed, in the event's own words where it has them. */
function summary(e: EventView): string {
  const d = e.data;
  if (typeof d.description === 'string') return d.description;
  if (typeof d.from === 'string' && typeof d.to === 'string')
    return `${d.from} -> ${d.to}${typeof d.reason === 'string' ? `: ${d.reason}` : ''}`;
  const diag = d.diagnosis as { summary?: string } | undefined;
  if (diag?.summary) return diag.summary;
  return JSON.stringify(d);
}

export function registerEvents(program: Command): void {
  addClientOptions(
    program.command('events').description('monitoring events, oldest first: state changes, diagnoses, traffic drops'),
  )
    .option('--kind <kind>', 'only this kind, like monitor.state or traffic.drop')
    .option('--subject <subject>', 'only this subject, like monitor:shop or service:shop')
    .option('--after <id>', 'only events after this id (to follow on from the last one seen)')
    .option('--limit <n>', 'the newest N (default 100, at most 1000)')
    .option('--json', 'print the events as JSON')
    .action(
      async (
        o: ClientCliOptions & { kind?: string; subject?: string; after?: string; limit?: string; json?: boolean },
      ) =>
        run(Boolean(o.json), async () => {
          const q = new URLSearchParams();
          if (o.kind) q.set('kind', o.kind);
          if (o.subject) q.set('subject', o.subject);
          if (o.after) q.set('after', o.after);
          if (o.limit) q.set('limit', o.limit);
          const qs = q.toString();
          const got = await clientFrom(o).request<{ events: EventView[] }>('GET', `/events${qs ? `?${qs}` : ''}`);
          if (o.json) printJson(got);
          else if (got.events.length === 0) process.stdout.write('no events\n');
          else {
            process.stdout.write(
              `${got.events.map((e) => `${e.id}  ${e.at}  ${e.kind}  ${e.subject}  ${summary(e)}`).join('\n')}\n`,
            );
          }
        }),
    );
}
