/**
 * `rampart traffic [SERVICE]` (issue 14, §3): each service's incoming request rate now against what the traffic-drop
 * detector expects, per host and source, with a sparkline of the last hour; `--json` for scripts. Exit code 1 while
 * a drop lasts (usable in scripts and cron, like `rampart monitors`).
 */
import type { Command } from 'commander';
import type { TrafficNow, TrafficSeriesPoint } from '../../server/traffic.js';
import { addClientOptions, type ClientCliOptions, clientFrom } from '../client.js';
import { printJson, run } from '../output.js';
import { sparkline, table } from './monitors.js';

const rate = (r: number | null) => (r === null ? '-' : `${r < 10 ? r.toFixed(1) : Math.round(r)}/s`);

/** The last hour by minute; a minute nobody measured is a space, not a zero (a gap is no evidence of a drop). */
export function hourLine(points: readonly TrafficSeriesPoint[]): string {
  const known = points.map((p) => p.rate ?? 0);
  const line = sparkline(known);
  return [...line].map((c, i) => (points[i]?.rate === null ? ' ' : c)).join('');
}

export function registerTraffic(program: Command): void {
  addClientOptions(
    program
      .command('traffic')
      .description(
        "incoming request rate per service now vs expected, the last hour's sparkline (exit 1 during a drop)",
      )
      .argument('[service]', 'one service: its hosts, sources and the last hour'),
  )
    .option('--json', 'print rates, expectations and the series as JSON')
    .action(async (service: string | undefined, o: ClientCliOptions & { json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const client = clientFrom(o);
        const now = service
          ? (await client.request<{ now: TrafficNow[] }>('GET', `/traffic/${encodeURIComponent(service)}?since=60`)).now
          : (await client.request<{ traffic: TrafficNow[] }>('GET', '/traffic')).traffic;
        const services = [...new Set(now.map((t) => t.service))];
        const series = new Map<string, TrafficSeriesPoint[]>();
        for (const s of services) {
          const got = await client.request<{ points: TrafficSeriesPoint[] }>(
            'GET',
            `/traffic/${encodeURIComponent(s)}?resolution=1m&since=3600`,
          );
          series.set(s, got.points.slice(-60));
        }
        const dropping = now.some((t) => t.state === 'drop');
        if (o.json) {
          printJson({ traffic: now, lastHour: Object.fromEntries(series) });
        } else if (now.length === 0) {
          process.stdout.write(
            'no traffic measured: give a service a traffic: map in the config (access logs, rule counters or HAProxy; docs/monitoring.md)\n',
          );
        } else {
          const rows = [['SERVICE', 'HOST', 'SOURCE', 'RATE', 'EXPECTED', 'STATE', 'LAST HOUR']];
          for (const t of now) {
            const whole = t.host === undefined;
            rows.push([
              whole ? t.service : '',
              whole ? '(all)' : (t.host ?? ''),
              t.source ?? '',
              rate(t.rate),
              t.expected === null ? (t.state === 'no-data' ? '-' : 'learning') : rate(t.expected),
              t.state === 'drop' ? 'DROP' : t.state,
              whole ? hourLine(series.get(t.service) ?? []) : '',
            ]);
          }
          const out = [table(rows)];
          for (const t of now)
            if (t.drop && t.host !== undefined) out.push('', `${t.service}@${t.host}: ${t.drop.description}`);
          process.stdout.write(`${out.join('\n')}\n`);
        }
        if (dropping) process.exitCode = 1;
      }),
    );
}
