/**
 * `rampart incident` (issue 16; docs/incidents.md): list, show (with the timeline in the site's time zone), declare,
 * ack, note, public update, status, assign, resolve, star, and postmortem (Markdown or JSON; `--edit` opens $EDITOR on the stored
 * draft and saves the result as the next version). A client of /api/v1/incidents; `--json` everywhere.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { formatRunbook, type Runbook } from '../../incident/runbook.js';
import { formatDuration } from '../../incident/timezone.js';
import type { Incident, TimelineEntry } from '../../incident/types.js';
import type { RemediationView } from '../../server/remediate.js';
import type { SuspectsView } from '../../server/suspects.js';
import { addClientOptions, type ClientCliOptions, clientFrom } from '../client.js';
import { addFormatOptions } from '../formats.js';
import { printJson, run } from '../output.js';
import { table } from './monitors.js';

interface IncidentView extends Incident {
  readonly response: { mttdMs: number; mttaMs: number | null; mttrMs: number | null };
}

type Opts = ClientCliOptions & { json?: boolean };

const when = (iso: string | null | undefined): string => (iso ? iso.slice(0, 16).replace('T', ' ') : '-');
const dur = (ms: number | null): string => (ms === null ? '-' : formatDuration(ms));

function idOf(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) {
    throw new UserError('RAMPART_ERR_USAGE', `'${text}' is not an incident id; expected a positive whole number`);
  }
  return n;
}

/** The suspects in words: the verdict, then each candidate (suspected first) with its rule, example and who. */
function suspectLines(v: SuspectsView, all: boolean): string[] {
  const out = [v.text];
  const shown = all ? v.candidates : v.candidates.filter((c) => c.suspected);
  for (const c of shown) {
    const who =
      c.kind === 'drift'
        ? 'out-of-band edit (no author, no review)'
        : `author ${c.author ?? '-'}, approvers ${c.approvers.join(', ') || '-'}${c.reason ? `, reason "${c.reason}"` : ''}`;
    out.push(`  ${c.suspected ? 'SUSPECTED' : 'not suspected'} ${c.id} on ${c.host} at ${when(c.at)} UTC: ${who}`);
    if (c.rule) out.push(`    dropping rule: ${c.rule}`);
    if (c.example) out.push(`    example packet: ${c.example}`);
    if (all && !c.suspected) out.push(`    ${c.why}`);
  }
  for (const s of v.skipped) out.push(`  not evaluated ${s.id} on ${s.host}: ${s.why}`);
  return out;
}

function line(i: IncidentView): string {
  return `incident ${i.id} ${i.severity} ${i.status}: ${i.title}${i.commander ? ` (commander ${i.commander})` : ''}\n`;
}

function act(
  parent: Command,
  verb: string,
  what: string,
  call: (id: number, o: Opts & Record<string, string | undefined>) => { path: string; body?: unknown },
) {
  return addClientOptions(parent.command(verb).description(what).argument('<id>', 'the incident id'))
    .option('--json', 'print the incident as JSON')
    .action(async (idText: string, o: Opts & Record<string, string | undefined>) =>
      run(Boolean(o.json), async () => {
        const { path, body } = call(idOf(idText), o);
        const r = await clientFrom(o).request<IncidentView>('POST', path, body);
        if (o.json) printJson(r);
        else if ('severity' in r) process.stdout.write(line(r));
        else process.stdout.write(`${verb}: done\n`);
      }),
    );
}

interface Quantiles {
  count: number;
  median: number | null;
  p90: number | null;
}

const secs = (s: number | null): string => (s === null ? '-' : formatDuration(s * 1000));

/** `rampart incidents stats`: the figures of issue 16 §6 (the same as GET /incidents/stats and /metrics). */
export function registerIncidentsStats(program: Command): void {
  const incidents = program.command('incidents').description('incident figures: counts and response times');
  addClientOptions(
    incidents
      .command('stats', { isDefault: true })
      .description('incidents by severity and service, MTTD, MTTA and MTTR (median and p90) since a time'),
  )
    .option('--since <when>', 'a duration back from now (90d, 2w, 12h) or an ISO 8601 instant', '90d')
    .option('--json', 'print the figures as JSON')
    .action(async (o: Opts & { since: string }) =>
      run(Boolean(o.json), async () => {
        const s = await clientFrom(o).request<{
          since: string;
          until: string;
          total: number;
          open: number;
          bySeverity: Record<string, number>;
          byService: Record<string, number>;
          mttd: Quantiles;
          mtta: Quantiles;
          mttr: Quantiles;
        }>('GET', `/incidents/stats?since=${encodeURIComponent(o.since)}`);
        if (o.json) return printJson(s);
        const out = [
          `${s.total} incident${s.total === 1 ? '' : 's'} since ${when(s.since)} UTC (${s.open} open)`,
          `  by severity: ${Object.entries(s.bySeverity)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
          `  by service: ${
            Object.entries(s.byService)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ') || '-'
          }`,
          '',
        ];
        const rows = [['', 'MEDIAN', 'P90', 'OF']];
        for (const [name, q] of [
          ['MTTD (start to detected)', s.mttd],
          ['MTTA (detected to acknowledged)', s.mtta],
          ['MTTR (start to resolved)', s.mttr],
        ] as const)
          rows.push([name, secs(q.median), secs(q.p90), String(q.count)]);
        // A blank line between the counts and the table, as docs/incidents.md shows it.
        process.stdout.write(`${out.join('\n')}\n${table(rows)}\n`);
      }),
    );
}

export function registerIncident(program: Command): void {
  const inc = program
    .command('incident')
    .description('incidents: list, show with the timeline, declare, ack, note, status, assign, resolve, postmortem');

  addClientOptions(
    inc.command('list', { isDefault: true }).description('incidents, newest first (exit 1 while one is open)'),
  )
    .option('--all', 'also resolved incidents')
    .option('--json', 'print the incidents as JSON')
    .action(async (o: Opts & { all?: boolean }) =>
      run(Boolean(o.json), async () => {
        const { incidents } = await clientFrom(o).request<{ incidents: IncidentView[] }>(
          'GET',
          `/incidents${o.all ? '' : '?status=open'}`,
        );
        if (o.json) printJson({ incidents });
        else if (incidents.length === 0) process.stdout.write(o.all ? 'no incidents\n' : 'no open incident\n');
        else {
          const rows = [['ID', 'SEV', 'STATUS', 'STARTED (UTC)', 'COMMANDER', 'SERVICES', 'MTTA', 'MTTR', 'TITLE']];
          for (const i of incidents) {
            rows.push([
              String(i.id),
              i.severity,
              i.status,
              when(i.startedAt),
              i.commander ?? '-',
              i.services.join(',') || '-',
              dur(i.response.mttaMs),
              dur(i.response.mttrMs),
              i.title,
            ]);
          }
          process.stdout.write(`${table(rows)}\n`);
        }
        if (incidents.some((i) => i.status !== 'resolved')) process.exitCode = 1;
      }),
    );

  addClientOptions(
    inc.command('show').description('an incident and its timeline (local time and UTC)').argument('<id>'),
  )
    .option('--json', 'print the incident and timeline as JSON')
    .action(async (idText: string, o: Opts) =>
      run(Boolean(o.json), async () => {
        const r = await clientFrom(o).request<{
          incident: IncidentView;
          timeZone: string;
          timeline: TimelineEntry[];
          runbooks?: Runbook[];
          impact?: { text: string };
        }>('GET', `/incidents/${idOf(idText)}`);
        if (o.json) return printJson(r);
        const i = r.incident;
        const out = [
          line(i).trimEnd(),
          `  services ${i.services.join(', ') || '-'}; hosts ${i.hosts.join(', ') || '-'}`,
          `  started ${when(i.startedAt)} UTC, detected ${when(i.detectedAt)}, acknowledged ${when(i.acknowledgedAt)}, mitigated ${when(i.mitigatedAt)}, resolved ${when(i.resolvedAt)}`,
          `  MTTD ${dur(i.response.mttdMs)}, MTTA ${dur(i.response.mttaMs)}, MTTR ${dur(i.response.mttrMs)}`,
          ...(r.impact ? [`  impact: ${r.impact.text}`] : []),
          '',
          `timeline (${r.timeZone}; * starred, ! key moment):`,
        ];
        for (const e of r.timeline) {
          const mark = `${e.starred ? '*' : ' '}${e.keyMoment ? '!' : ' '}`;
          out.push(`${mark} ${e.local}  (${e.at.slice(11, 16)} UTC)  ${e.text}  [${e.key}]`);
        }
        for (const rb of r.runbooks ?? []) out.push('', `runbook: ${formatRunbook(rb)}`);
        // The suspected cause (the engine's verdict on the changes and drifts before the start).
        try {
          const v = await clientFrom(o).request<SuspectsView>('GET', `/incidents/${i.id}/suspects`);
          out.push('', 'suspected cause:', ...suspectLines(v, false).map((l) => `  ${l}`));
        } catch (e) {
          out.push('', `suspected cause: not available (${e instanceof Error ? e.message : String(e)})`);
        }
        process.stdout.write(`${out.join('\n')}\n`);
      }),
    );

  addClientOptions(
    inc
      .command('suspects')
      .description(
        'the suspected cause: each change and drift before the start, judged by the engine against the failing flows',
      )
      .argument('<id>'),
  )
    .option('--json', 'print the ranked candidates as JSON')
    .action(async (idText: string, o: Opts) =>
      run(Boolean(o.json), async () => {
        const v = await clientFrom(o).request<SuspectsView>('GET', `/incidents/${idOf(idText)}/suspects`);
        if (o.json) return printJson(v);
        process.stdout.write(`${suspectLines(v, true).join('\n')}\n`);
      }),
    );

  addClientOptions(
    inc
      .command('remediate')
      .description(
        'propose the fix of the suspected cause as a change (a rollback, or the desired ruleset restored), reviewed and applied like any change',
      )
      .argument('<id>'),
  )
    .option('-m, --message <text>', 'why (added to the change reason)')
    .option('--json', 'print the proposed changes as JSON')
    .action(async (idText: string, o: Opts & { message?: string }) =>
      run(Boolean(o.json), async () => {
        const r = await clientFrom(o).request<RemediationView>(
          'POST',
          `/incidents/${idOf(idText)}/remediate`,
          o.message ? { reason: o.message } : {},
        );
        if (o.json) return printJson(r);
        const out = [
          `incident ${r.incident}: ${r.kind === 'rollback' ? 'rollback' : 'restoration of the desired ruleset'} proposed for ${r.suspect.id} on ${r.suspect.hosts.join(', ')}`,
        ];
        for (const c of r.changes) out.push(`  change ${c.change.id} ${c.change.state}: ${c.change.reason}`);
        out.push(r.next);
        process.stdout.write(`${out.join('\n')}\n`);
      }),
    );

  addClientOptions(inc.command('declare').description('declare an incident by hand'))
    .requiredOption('--title <text>', 'what is happening, in a line')
    .requiredOption('--sev <n>', 'severity: 1-4 or SEV1-SEV4')
    .option('--service <names>', 'affected services, comma-separated')
    .option('--host <names>', 'affected hosts, comma-separated')
    .option('--commander <user>', 'the incident commander')
    .option('--started <iso>', 'when it began, if before now (ISO 8601)')
    .option('--json', 'print the incident as JSON')
    .action(
      async (
        o: Opts & { title: string; sev: string; service?: string; host?: string; commander?: string; started?: string },
      ) =>
        run(Boolean(o.json), async () => {
          const list = (s: string | undefined) =>
            s
              ? s
                  .split(',')
                  .map((x) => x.trim())
                  .filter(Boolean)
              : undefined;
          const body = {
            title: o.title,
            severity: o.sev,
            ...(list(o.service) ? { services: list(o.service) } : {}),
            ...(list(o.host) ? { hosts: list(o.host) } : {}),
            ...(o.commander ? { commander: o.commander } : {}),
            ...(o.started ? { startedAt: o.started } : {}),
          };
          const r = await clientFrom(o).request<IncidentView>('POST', '/incidents', body);
          if (o.json) printJson(r);
          else process.stdout.write(`declared ${line(r)}`);
        }),
    );

  act(inc, 'ack', 'acknowledge an incident (you command it unless someone does)', (id) => ({
    path: `/incidents/${id}/ack`,
  }));
  act(inc, 'resolve', 'resolve an incident', (id, o) => ({
    path: `/incidents/${id}/resolve`,
    body: o.message ? { text: o.message } : {},
  })).option('-m, --message <text>', 'how it was resolved');
  act(inc, 'assign', 'make a user the incident commander', (id, o) => ({
    path: `/incidents/${id}/assign`,
    body: { commander: o.commander },
  })).requiredOption('--commander <user>', 'the new commander');
  act(inc, 'status', 'a status update: investigating, identified, monitoring or resolved', (id, o) => ({
    path: `/incidents/${id}/status`,
    body: { status: o.status, ...(o.message ? { text: o.message } : {}) },
  }))
    .requiredOption('--status <status>', 'investigating, identified, monitoring or resolved')
    .option('-m, --message <text>', 'what was found or done (the root cause, for identified)');

  addClientOptions(
    inc.command('note').description("add a responder's note to the timeline").argument('<id>').argument('<text...>'),
  )
    .option('--json', 'print the note as JSON')
    .action(async (idText: string, words: string[], o: Opts) =>
      run(Boolean(o.json), async () => {
        const r = await clientFrom(o).request<{ id: number }>('POST', `/incidents/${idOf(idText)}/notes`, {
          text: words.join(' '),
        });
        if (o.json) printJson(r);
        else process.stdout.write(`noted (entry:${r.id})\n`);
      }),
    );

  addClientOptions(
    inc
      .command('update')
      .description('post an update to the public status page (customers read it as written; audited)')
      .argument('<id>'),
  )
    .requiredOption('--public <text>', 'the update as customers should read it (no host names, no internals)')
    .option('--json', 'print the entry as JSON')
    .action(async (idText: string, o: Opts & { public: string }) =>
      run(Boolean(o.json), async () => {
        const r = await clientFrom(o).request<{ id: number }>('POST', `/incidents/${idOf(idText)}/public-updates`, {
          text: o.public,
        });
        if (o.json) printJson(r);
        else process.stdout.write(`public update posted (entry:${r.id}); GET /status.json shows it\n`);
      }),
    );

  addClientOptions(
    inc.command('star').description('star a timeline entry for the postmortem').argument('<id>').argument('<key>'),
  )
    .option('--off', 'unstar it')
    .option('--json', 'print the answer as JSON')
    .action(async (idText: string, key: string, o: Opts & { off?: boolean }) =>
      run(Boolean(o.json), async () => {
        const r = await clientFrom(o).request('POST', `/incidents/${idOf(idText)}/star`, { key, starred: !o.off });
        if (o.json) printJson(r);
        else process.stdout.write(`${o.off ? 'unstarred' : 'starred'} ${key}\n`);
      }),
    );

  addFormatOptions(
    addClientOptions(
      inc.command('postmortem').description("the postmortem in the founding document's structure").argument('<id>'),
    ),
    ['markdown', 'json'],
  )
    .option('--version <n>', 'an earlier version')
    .option('--edit', 'open it in $EDITOR and save the result as the next version')
    .action(async (idText: string, o: ClientCliOptions & { format: string; version?: string; edit?: boolean }) =>
      run(o.format === 'json', async () => {
        const id = idOf(idText);
        const client = clientFrom(o);
        const q = o.version ? `?version=${encodeURIComponent(o.version)}` : '';
        const pm = await client.request<{ version: number; markdown: string; json: unknown }>(
          'GET',
          `/incidents/${id}/postmortem${q}`,
        );
        if (!o.edit) {
          if (o.format === 'json') printJson(pm);
          else process.stdout.write(pm.markdown);
          return;
        }
        const editor = process.env.VISUAL || process.env.EDITOR;
        if (!editor) throw new UserError('RAMPART_ERR_USAGE', '--edit: neither $VISUAL nor $EDITOR is set');
        const dir = mkdtempSync(join(tmpdir(), 'rampart-postmortem-'));
        try {
          const file = join(dir, `incident-${id}-postmortem.md`);
          writeFileSync(file, pm.markdown, { mode: 0o600 });
          const r = spawnSync(editor, [file], { stdio: 'inherit', shell: true });
          if (r.status !== 0)
            throw new UserError('RAMPART_ERR_USAGE', `--edit: ${editor} exited with ${r.status}; nothing saved`);
          const edited = readFileSync(file, 'utf8');
          if (edited === pm.markdown) {
            process.stderr.write('unchanged: nothing saved\n');
            return;
          }
          const saved = await client.request<{ version: number }>('PUT', `/incidents/${id}/postmortem`, {
            markdown: edited,
            version: pm.version,
          });
          process.stdout.write(`saved the postmortem of incident ${id} as version ${saved.version}\n`);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }),
    );
}
