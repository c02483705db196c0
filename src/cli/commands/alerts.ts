/**
 * `rampart alerts`, `rampart silence` and `rampart oncall` (issue 15): what fires and why it is or is not paged,
 * acknowledgement and resolution by hand, the route a label set takes (like `amtool config routes test`),
 * silences, and who is on call now and next. `--json` everywhere; `rampart alerts` exits 1 while an alert fires
 * unmuted (usable in scripts and cron, like `rampart monitors`).
 */
import type { Command } from 'commander';
import { formatMatcher } from '../../alerting/matchers.js';
import type { Alert } from '../../alerting/types.js';
import { formatRunbook, type Runbook } from '../../incident/runbook.js';
import { addClientOptions, type ClientCliOptions, clientFrom } from '../client.js';
import { printJson, run } from '../output.js';
import { table } from './monitors.js';

interface AlertView extends Alert {
  readonly muted: { kind: string; silence?: string; by?: string; window?: string } | null;
}

const when = (iso: string | null | undefined): string => (iso ? iso.slice(0, 19).replace('T', ' ') : '-');
const labelText = (labels: Record<string, string>, skip: readonly string[] = []) =>
  Object.entries(labels)
    .filter(([k]) => !skip.includes(k))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
const mutedText = (m: AlertView['muted']): string =>
  !m
    ? ''
    : m.kind === 'silenced'
      ? `silenced (${m.silence?.slice(0, 8)})`
      : m.kind === 'inhibited'
        ? `inhibited by ${m.by}`
        : `maintenance ${m.window}`;

function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').filter((p) => p.trim() !== '')) {
    const m = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*(.*?)\s*$/.exec(part);
    if (!m) throw new Error(`--labels: '${part}' is not name=value (like severity=critical,service=shop)`);
    out[m[1] as string] = m[2] as string;
  }
  return out;
}

export function registerAlerts(program: Command): void {
  const alerts = program
    .command('alerts')
    .description('alerts firing (and why each is or is not paged), ack, resolve, and the route a label set takes');
  addClientOptions(
    alerts.command('list', { isDefault: true }).description('alerts, firing first (exit 1 while one fires unmuted)'),
  )
    .option('--all', 'also resolved alerts')
    .option('--json', 'print the alerts as JSON')
    .action(async (o: ClientCliOptions & { all?: boolean; json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const q = o.all ? '' : '?state=firing';
        const { alerts: list } = await clientFrom(o).request<{ alerts: AlertView[] }>('GET', `/alerts${q}`);
        if (o.json) printJson({ alerts: list });
        else if (list.length === 0) process.stdout.write(o.all ? 'no alerts\n' : 'no alert firing\n');
        else {
          const rows = [['ID', 'ALERT', 'STATE', 'SINCE', 'LABELS', 'NOTIFIED', 'ACK']];
          for (const a of list) {
            rows.push([
              a.fingerprint,
              a.labels.alertname ?? '',
              a.state,
              when(a.state === 'firing' ? a.startsAt : a.endsAt),
              labelText(a.labels, ['alertname']),
              a.state === 'firing' ? mutedText(a.muted) || 'yes' : '',
              a.ack ? `${a.ack.by} ${when(a.ack.at)}` : '',
            ]);
          }
          const out = [table(rows)];
          for (const a of list)
            if (a.state === 'firing' && a.annotations.summary) out.push(`${a.fingerprint}: ${a.annotations.summary}`);
          process.stdout.write(`${out.join('\n')}\n`);
        }
        if (list.some((a) => a.state === 'firing' && !a.muted)) process.exitCode = 1;
      }),
    );
  addClientOptions(
    alerts
      .command('show')
      .description('one alert: labels, annotations, and its runbooks')
      .argument('<id>', 'the alert id (its fingerprint)'),
  )
    .option('--json', 'print the alert as JSON')
    .action(async (id: string, o: ClientCliOptions & { json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const a = await clientFrom(o).request<AlertView & { runbooks: Runbook[] }>(
          'GET',
          `/alerts/${encodeURIComponent(id)}`,
        );
        if (o.json) return printJson(a);
        const out = [
          `${a.fingerprint} ${a.labels.alertname ?? ''} ${a.state} since ${when(a.startsAt)}${a.endsAt ? `, resolved ${when(a.endsAt)}` : ''}`,
          `  labels ${labelText(a.labels, ['alertname'])}`,
          ...Object.entries(a.annotations).map(([k, v]) => `  ${k}: ${v}`),
          `  notified: ${a.state === 'firing' ? mutedText(a.muted) || 'yes' : '-'}${a.ack ? `; acknowledged by ${a.ack.by} ${when(a.ack.at)}` : ''}`,
        ];
        for (const rb of a.runbooks) out.push('', `runbook: ${formatRunbook(rb)}`);
        process.stdout.write(`${out.join('\n')}\n`);
      }),
    );
  for (const [verb, what] of [
    ['ack', 'acknowledge a firing alert: its escalation stops, it still resolves by itself'],
    ['resolve', 'resolve a firing alert by hand'],
  ] as const) {
    addClientOptions(alerts.command(verb).description(what).argument('<id>', 'the alert id (its fingerprint)'))
      .option('--json', 'print the alert as JSON')
      .action(async (id: string, o: ClientCliOptions & { json?: boolean }) =>
        run(Boolean(o.json), async () => {
          const a = await clientFrom(o).request<Alert>('POST', `/alerts/${encodeURIComponent(id)}/${verb}`);
          if (o.json) printJson(a);
          else
            process.stdout.write(
              `${verb === 'ack' ? 'acknowledged' : 'resolved'} ${a.fingerprint} ${a.labels.alertname} {${labelText(a.labels, ['alertname'])}}\n`,
            );
        }),
      );
  }
  addClientOptions(alerts.command('route').description('the routes and receivers an alert with these labels takes'))
    .requiredOption('--labels <list>', 'name=value pairs, like severity=critical,service=shop')
    .option('--json', 'print the routes as JSON')
    .action(async (o: ClientCliOptions & { labels: string; json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const labels = parseLabels(o.labels);
        const q = Object.entries(labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        const r = await clientFrom(o).request<{
          routes: {
            key: string;
            receiver: string;
            at?: string;
            groupBy: string[] | 'all';
            groupWaitMs: number;
            escalation?: string;
          }[];
        }>('GET', `/alerts/route?labels=${encodeURIComponent(q)}`);
        if (o.json) return printJson(r);
        if (r.routes.length === 0) {
          process.stdout.write('no route: alerting.route is not set, so alerts are recorded and nobody is notified\n');
          return;
        }
        const rows = [['RECEIVER', 'ROUTE', 'GROUP BY', 'WAIT', 'ESCALATION', 'WRITTEN AT']];
        for (const x of r.routes)
          rows.push([
            x.receiver,
            x.key,
            x.groupBy === 'all' ? '...' : x.groupBy.join(','),
            `${x.groupWaitMs}ms`,
            x.escalation ?? '-',
            x.at ?? '',
          ]);
        process.stdout.write(`${table(rows)}\n`);
      }),
    );
}

interface SilenceView {
  id: string;
  matchers: { name: string; op: '=' | '!=' | '=~' | '!~'; value: string }[];
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
  untilResolved: boolean;
  status: string;
}

/** `2h`, `30m`, `1d` in ms. */
function durationMs(text: string): number {
  const m = /^(\d+)\s*(m|h|d|w)$/.exec(text.trim());
  if (!m) throw new Error(`--for: '${text}' is not a duration like 30m, 2h, 1d or 1w`);
  return Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'm' | 'h' | 'd' | 'w'];
}

export function registerSilence(program: Command): void {
  const silence = program.command('silence').description('silences: mute the alerts matchers select, for a time');
  addClientOptions(
    silence
      .command('add')
      .description('add a silence (matchers like service=shop or host=~"web.*")')
      .argument('<matchers...>', 'one or more matchers: name=value, name!=value, name=~regex, name!~regex'),
  )
    .requiredOption('--comment <text>', 'why (shown to whoever reads the alert)')
    .option('--for <duration>', 'how long, like 30m, 2h or 1d (default 1h)')
    .option('--until-resolved', 'end as soon as no alert it matched fires any more (or after --for, 7d by default)')
    .option('--start <iso>', 'when it starts (default now)')
    .option('--json', 'print the silence as JSON')
    .action(
      async (
        matchers: string[],
        o: ClientCliOptions & {
          comment: string;
          for?: string;
          untilResolved?: boolean;
          start?: string;
          json?: boolean;
        },
      ) =>
        run(Boolean(o.json), async () => {
          const start = o.start ? new Date(o.start) : new Date();
          if (Number.isNaN(start.getTime())) throw new Error(`--start: '${o.start}' is not an ISO 8601 time`);
          const body = {
            matchers,
            comment: o.comment,
            ...(o.start ? { startsAt: start.toISOString() } : {}),
            ...(o.for ? { endsAt: new Date(start.getTime() + durationMs(o.for)).toISOString() } : {}),
            ...(o.untilResolved ? { untilResolved: true } : {}),
          };
          const s = await clientFrom(o).request<SilenceView>('POST', '/silences', body);
          if (o.json) printJson(s);
          else
            process.stdout.write(
              `silence ${s.id}: ${s.matchers.map(formatMatcher).join(', ')} until ${when(s.endsAt)} UTC${s.untilResolved ? ' or until what it matches resolves' : ''}\n`,
            );
        }),
    );
  addClientOptions(silence.command('list').description('silences and their status'))
    .option('--all', 'also expired silences')
    .option('--json', 'print the silences as JSON')
    .action(async (o: ClientCliOptions & { all?: boolean; json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const { silences } = await clientFrom(o).request<{ silences: SilenceView[] }>('GET', '/silences');
        const shown = o.all ? silences : silences.filter((s) => s.status !== 'expired');
        if (o.json) return printJson({ silences: shown });
        if (shown.length === 0) return void process.stdout.write('no silence\n');
        const rows = [['ID', 'STATUS', 'MATCHERS', 'ENDS', 'BY', 'COMMENT']];
        for (const s of shown)
          rows.push([
            s.id,
            s.status,
            s.matchers.map(formatMatcher).join(', '),
            s.untilResolved ? `resolved / ${when(s.endsAt)}` : when(s.endsAt),
            s.createdBy,
            s.comment,
          ]);
        process.stdout.write(`${table(rows)}\n`);
      }),
    );
  addClientOptions(silence.command('expire').description('end a silence now').argument('<id>', 'the silence id'))
    .option('--json', 'print the answer as JSON')
    .action(async (id: string, o: ClientCliOptions & { json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const r = await clientFrom(o).request<{ id: string }>('DELETE', `/silences/${encodeURIComponent(id)}`);
        if (o.json) printJson(r);
        else process.stdout.write(`silence ${r.id} expired\n`);
      }),
    );
}

export function registerOncall(program: Command): void {
  addClientOptions(program.command('oncall').description('who is on call now and next, per schedule'))
    .option('--json', 'print the schedules as JSON')
    .action(async (o: ClientCliOptions & { json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const r = await clientFrom(o).request<{
          schedules: {
            name: string;
            timeZone: string;
            now: { user: string } | null;
            next: { at: string; user: string | null } | null;
          }[];
        }>('GET', '/oncall');
        if (o.json) return printJson(r);
        if (r.schedules.length === 0)
          return void process.stdout.write('no schedule: see alerting.schedules (docs/alerting.md)\n');
        const rows = [['SCHEDULE', 'NOW', 'NEXT', 'HANDOFF (UTC)', 'TIME ZONE']];
        for (const s of r.schedules)
          rows.push([s.name, s.now?.user ?? '(nobody)', s.next?.user ?? '(nobody)', when(s.next?.at), s.timeZone]);
        process.stdout.write(`${table(rows)}\n`);
      }),
    );
}
