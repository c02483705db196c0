/**
 * `rampart monitors` (issue 14): every monitor's state with a mark per vantage point, and each service's;
 * `rampart monitors show NAME`: per-vantage detail, the diagnosis, the last hour by minute, recent results, events.
 * Exit code 1 when something is DOWN (or, for show, when that monitor is not UP): usable in scripts and cron.
 */
import type { Command } from 'commander';
import type { MonitorView, ServiceView } from '../../server/monitoring.js';
import { addClientOptions, type ClientCliOptions, clientFrom } from '../client.js';
import { printJson, run } from '../output.js';

const MARK = { up: '✓', down: '✗', unknown: '?' } as const;

export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

function ago(iso: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function marks(m: MonitorView): string {
  const v = Object.entries(m.vantages).sort(([a], [b]) => a.localeCompare(b));
  if (v.length === 0) return '-';
  return v.map(([name, s]) => `${name}${s.inside ? '(inside)' : ''} ${MARK[s.state]}`).join(', ');
}

/** Eight levels of a block sparkline. */
export function sparkline(values: readonly number[]): string {
  const max = Math.max(...values, 0);
  const blocks = '▁▂▃▄▅▆▇█';
  return values.map((v) => (max === 0 ? blocks[0] : blocks[Math.min(7, Math.floor((v / max) * 7.999))])).join('');
}

export function registerMonitors(program: Command): void {
  const cmd = addClientOptions(
    program
      .command('monitors')
      .description('monitors and services: state by quorum over vantage points (exit 1 when something is DOWN)'),
  )
    .option('--json', 'print monitors and services as JSON')
    .action(async (o: ClientCliOptions & { json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const got = await clientFrom(o).request<{ monitors: MonitorView[]; services: ServiceView[] }>(
          'GET',
          '/monitors',
        );
        const down = got.monitors.some((m) => m.state === 'DOWN') || got.services.some((s) => s.state === 'DOWN');
        if (o.json) {
          printJson(got);
        } else if (got.monitors.length === 0) {
          process.stdout.write(
            'no monitors: declare them under monitors: in the config, or give a service monitor: true (docs/monitoring.md)\n',
          );
        } else {
          const now = Date.now();
          const rows = [
            ['MONITOR', 'STATE', 'SINCE', 'LATENCY', 'VANTAGE POINTS'],
            ...got.monitors.map((m) => {
              const server = m.vantages.server;
              return [m.name, m.state, ago(m.since, now), server?.ms !== undefined ? `${server.ms} ms` : '-', marks(m)];
            }),
          ];
          const out = [table(rows)];
          if (got.services.length > 0) {
            out.push('', table([['SERVICE', 'STATE', 'WHY'], ...got.services.map((s) => [s.name, s.state, s.reason])]));
          }
          const diagnosed = got.monitors.filter((m) => m.diagnosis);
          for (const m of diagnosed) out.push('', `${m.name}: ${m.diagnosis?.summary}`);
          process.stdout.write(`${out.join('\n')}\n`);
        }
        if (down) process.exitCode = 1;
      }),
    );
  addClientOptions(
    cmd
      .command('show')
      .description('one monitor: each vantage point, the diagnosis, the last hour, recent results and events')
      .argument('<name>'),
  )
    .option('--json', 'print the monitor as JSON')
    .action(async (name: string, _o: unknown, command: Command) => {
      // `monitors` declares the same options: commander gives them to whichever command is nearer; take both.
      const o = command.optsWithGlobals<ClientCliOptions & { json?: boolean }>();
      return run(Boolean(o.json), async () => {
        type Shown = MonitorView & {
          lastHour: { at: string; count: number; failures: number; p50Ms: number; p95Ms: number; maxMs: number }[];
          results: { vantage: string; at: number; ok: boolean; timings: { totalMs: number }; error?: string }[];
          events: { at: string; kind: string; data: Record<string, unknown> }[];
        };
        const m = await clientFrom(o).request<Shown>('GET', `/monitors/${encodeURIComponent(name)}`);
        if (o.json) printJson(m);
        else {
          const now = Date.now();
          const out = [
            `${m.name}: ${m.state} for ${ago(m.since, now)} (${m.check}${m.service ? `; service ${m.service}` : ''})`,
            `  ${m.reason}`,
          ];
          if (m.diagnosis) out.push(`  diagnosis (${m.diagnosis.cause}): ${m.diagnosis.summary}`);
          out.push('', 'vantage points:');
          const vs = Object.entries(m.vantages).sort(([a], [b]) => a.localeCompare(b));
          if (vs.length === 0) out.push('  none has reported yet');
          else {
            out.push(
              table(
                vs.map(([n, v]) => [
                  `  ${n}${v.inside ? ' (inside)' : ''}`,
                  v.state,
                  `${ago(v.lastAt, now)} ago`,
                  v.ms !== undefined ? `${v.ms} ms` : '-',
                  v.error ?? '',
                ]),
              ),
            );
          }
          if (m.lastHour.length > 0) {
            const fails = m.lastHour.reduce((n, x) => n + x.failures, 0);
            const count = m.lastHour.reduce((n, x) => n + x.count, 0);
            out.push(
              '',
              `last hour: ${count} probes, ${fails} failed; p95 latency by minute ${sparkline(m.lastHour.map((x) => x.p95Ms))} (max ${Math.max(...m.lastHour.map((x) => x.maxMs))} ms)`,
            );
            if (fails > 0) out.push(`  failures by minute ${sparkline(m.lastHour.map((x) => x.failures))}`);
          }
          const failed = m.results.filter((r) => !r.ok).slice(0, 5);
          if (failed.length > 0) {
            out.push('', 'recent failures:');
            for (const r of failed) out.push(`  ${new Date(r.at).toISOString()}  ${r.vantage}  ${r.error ?? 'failed'}`);
          }
          if (m.events.length > 0) {
            out.push('', 'events:');
            for (const e of m.events.slice(-10)) {
              const d = e.data;
              out.push(
                `  ${e.at}  ${e.kind === 'monitor.state' ? `${d.from} -> ${d.to}: ${d.reason}` : `${d.vantage}: ${d.from} -> ${d.to}${d.error ? ` (${d.error})` : ''}`}`,
              );
            }
          }
          process.stdout.write(`${out.join('\n')}\n`);
        }
        if (m.state !== 'UP') process.exitCode = 1;
      });
    });
}
