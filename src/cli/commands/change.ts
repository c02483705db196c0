import type { Command } from 'commander';
import { renderPlanText } from '../../change/render-plan.js';
import type { Plan } from '../../change/types.js';
import { ERRORS, type ErrorCode, UserError } from '../../errors.js';
import { readTextFile } from '../../firewall/load.js';
import type { ChangeView } from '../../server/changes.js';
import type { ChangeRecord } from '../../store/types.js';
import { addClientOptions, type ClientCliOptions, clientFrom } from '../client.js';
import { addFormatOptions } from '../formats.js';
import { printJson, run } from '../output.js';

type Json = { json?: boolean };

const colour = (): boolean => Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;

function parseId(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new UserError('RAMPART_ERR_USAGE', `change id '${text}' is not a positive number`);
  }
  return Number(text);
}

function parsePlanId(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new UserError('RAMPART_ERR_USAGE', `--plan: '${text}' is not a plan id (a positive number)`);
  }
  return Number(text);
}

/**
 * The id of the change's current plan, after showing its summary (on stderr, so stdout stays the answer): a
 * review is sent for the plan the person just saw, and the server refuses it if the change moved on meanwhile.
 */
async function currentPlan(client: ReturnType<typeof clientFrom>, id: number, print: boolean): Promise<number> {
  const v = await client.request<ChangeView>('GET', `/changes/${id}?ruleset=false`);
  if (!v.plan) throw new UserError('RAMPART_ERR_STATE', `change ${id} has no plan yet; plan it first`);
  if (print) {
    const plan = v.plan.plan as Plan;
    const lines = [
      `change ${id}: plan ${v.plan.id} (${v.plan.createdAt}${v.plan.stale ? ', STALE' : ''}), ruleset sha256 ${v.change.rulesetSha256.slice(0, 12)}, by ${v.change.authors.join(', ')}`,
      `  ${plan.summary}`,
      ...v.flags.map((f) => `  ! ${f}`),
    ];
    process.stderr.write(`${lines.join('\n')}\n`);
  }
  return v.plan.id;
}

/** A change view as a terminal page: header, flags, plan, reviews, jobs. */
export function renderChangeView(v: ChangeView, color: boolean): string {
  const c = v.change;
  const bold = (s: string) => (color ? `\u001b[1m${s}\u001b[0m` : s);
  const red = (s: string) => (color ? `\u001b[31m${s}\u001b[0m` : s);
  const lines = [
    bold(`change ${c.id}: ${c.state}`),
    `  target   ${c.target.kind} ${c.target.name} (${c.hosts.join(', ')})`,
    `  author   ${c.authors.join(', ')}`,
    `  ruleset  sha256 ${c.rulesetSha256}`,
    `  reason   ${c.reason}`,
  ];
  if (c.ticket) lines.push(`  ticket   ${c.ticket}`);
  lines.push(`  updated  ${c.updatedAt}`);
  for (const f of v.flags) lines.push(red(`  ! ${f}`));
  lines.push(
    `  approvals ${v.approvals.approvers.length}/${v.approvals.required}${v.approvals.approvers.length ? ` (${v.approvals.approvers.join(', ')})` : ''}`,
  );
  if (v.plan) {
    lines.push('', bold(`plan ${v.plan.id} (${v.plan.createdAt}${v.plan.stale ? ', STALE' : ''})`));
    lines.push(renderPlanText(v.plan.plan as Plan, { color }).trimEnd());
  }
  if (v.reviews.length > 0) {
    lines.push('', bold('reviews'));
    for (const r of v.reviews) {
      lines.push(
        `  ${r.at}  ${r.reviewer}  ${r.verdict}${r.voidedAt ? ' (void)' : ''}${r.comment ? `: ${r.comment}` : ''}`,
      );
    }
  }
  if (v.jobs.length > 0) {
    lines.push('', bold('rollout'));
    for (const j of v.jobs) lines.push(`  ${j.step + 1}. ${j.host}  ${j.state}`);
  }
  return `${lines.join('\n')}\n`;
}

const TERMINAL_STATES = new Set(['applied', 'rolled-back', 'failed', 'rejected']);

/** Prints each new timeline event as it arrives and per-host progress, until the change reaches an end state. */
async function watch(client: ReturnType<typeof clientFrom>, id: number, o: Json): Promise<void> {
  let seen = 0;
  for (;;) {
    const v = await client.request<ChangeView>('GET', `/changes/${id}?ruleset=false`);
    if (!o.json) {
      for (const e of v.events.slice(seen)) {
        const step = v.jobs.find((j) => j.id === e.jobId);
        const where = step ? `[${step.step + 1}/${v.jobs.length} ${e.host}]` : `[${e.host}]`;
        process.stdout.write(`${e.at.slice(11, 23)}  ${where.padEnd(14)} ${e.kind.padEnd(20)} ${e.detail}\n`);
      }
    }
    seen = v.events.length;
    if (TERMINAL_STATES.has(v.change.state)) {
      if (o.json) printJson(v);
      else {
        const hosts = v.jobs.map((j) => `${j.host}: ${j.state}`).join(', ');
        process.stdout.write(`change ${id}: ${v.change.state} (${hosts})\n`);
      }
      if (v.change.state !== 'applied') process.exitCode = 1;
      return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Follows a change whose plan goes on after the server's answer (state planning) until it is planned or failed,
 * with a progress line on stderr when it is a terminal.
 */
async function followPlanning(client: ReturnType<typeof clientFrom>, first: ChangeView): Promise<ChangeView> {
  const tty = Boolean(process.stderr.isTTY);
  const started = Date.now();
  let v = first;
  while (v.change.state === 'planning') {
    if (tty) {
      const where =
        v.planning?.state === 'queued'
          ? `queued, ${v.planning.ahead ?? 0} plan${v.planning.ahead === 1 ? '' : 's'} ahead`
          : `running for ${v.planning?.seconds ?? Math.round((Date.now() - started) / 1000)} s`;
      process.stderr.write(`\r\u001b[2Kplanning change ${v.change.id}: ${where}`);
    }
    await new Promise((r) => setTimeout(r, 500));
    v = await client.request<ChangeView>('GET', `/changes/${v.change.id}?ruleset=false`);
  }
  if (tty) process.stderr.write('\r\u001b[2K');
  if (v.change.state === 'plan-failed' && v.change.planError) {
    process.exitCode = ERRORS[v.change.planError.code as ErrorCode]?.exit ?? 5;
  }
  return v;
}

function show(v: ChangeView, o: Json): void {
  if (o.json) printJson(v);
  else process.stdout.write(renderChangeView(v, colour()));
}

export function registerChange(program: Command): void {
  const change = program
    .command('change')
    .description('firewall changes on the server: propose, plan, show, list, approve, reject, override, apply');

  // One grammar (docs/cli.md): --format/--json for what it prints, --input-format for the ruleset it reads; the old
  // `--format nft-text` still means the input, with a note.
  addFormatOptions(
    addClientOptions(
      change
        .command('propose')
        .description('propose a desired ruleset for a host or a group; the server plans it at once')
        .argument('<ruleset>', 'the desired ruleset file (nft, nft -j, iptables-save)'),
    ),
    ['text', 'json'],
    { input: true },
  )
    .option('--host <name>', 'the host it is for')
    .option('--group <name>', 'or the redundancy group it is for')
    .requiredOption('--reason <text>', 'why (shown to reviewers and in the audit log)')
    .option('--ticket <ref>', 'a ticket or pull-request link')
    .action(
      async (
        file: string,
        o: ClientCliOptions &
          Json & { host?: string; group?: string; reason: string; ticket?: string; inputFormat?: string },
      ) =>
        run(Boolean(o.json), async () => {
          if (Boolean(o.host) === Boolean(o.group)) {
            throw new UserError('RAMPART_ERR_USAGE', 'give exactly one of --host NAME or --group NAME');
          }
          const body = {
            target: o.host ? { host: o.host } : { group: o.group },
            ruleset: readTextFile(file),
            file,
            reason: o.reason,
            ...(o.ticket ? { ticket: o.ticket } : {}),
            ...(o.inputFormat ? { format: o.inputFormat } : {}),
          };
          const client = clientFrom(o);
          const v = await followPlanning(client, await client.request<ChangeView>('POST', '/changes', body));
          show(v, o);
          if (v.plan?.blocked && v.change.state === 'planned') process.exitCode = 1;
        }),
    );

  addClientOptions(change.command('plan').description('re-plan a change (when it or a host moved on)').argument('<id>'))
    .option('--json', 'print the change as JSON')
    .action(async (id: string, o: ClientCliOptions & Json) =>
      run(Boolean(o.json), async () => {
        const client = clientFrom(o);
        show(await followPlanning(client, await client.request<ChangeView>('POST', `/changes/${parseId(id)}/plan`)), o);
      }),
    );

  addFormatOptions(
    addClientOptions(
      change
        .command('show')
        .description('a change with its plan, reviews and rollout (markdown: the plan, for a pull request)')
        .argument('<id>'),
    ),
    ['text', 'json', 'markdown'],
  ).action(async (id: string, o: ClientCliOptions & Json & { format: string }) =>
    run(Boolean(o.json), async () => {
      const client = clientFrom(o);
      const n = parseId(id);
      if (o.format === 'markdown') process.stdout.write(await client.text('GET', `/changes/${n}/plan?format=markdown`));
      else show(await client.request<ChangeView>('GET', `/changes/${n}`), { json: o.format === 'json' });
    }),
  );

  addClientOptions(change.command('list').description('changes, newest first'))
    .option('--state <state>', 'only changes in this state')
    .option('--host <name>', 'only changes for this host')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print the list as JSON')
    .action(async (o: ClientCliOptions & Json & { state?: string; host?: string; limit: string }) =>
      run(Boolean(o.json), async () => {
        const q = new URLSearchParams({ limit: o.limit });
        if (o.state) q.set('state', o.state);
        if (o.host) q.set('host', o.host);
        const { changes } = await clientFrom(o).request<{ changes: ChangeRecord[] }>('GET', `/changes?${q}`);
        if (o.json) return printJson({ changes });
        if (changes.length === 0) return void process.stdout.write('no changes\n');
        const rows = changes.map(
          (c) =>
            `${String(c.id).padStart(4)}  ${c.state.padEnd(11)}  ${`${c.target.kind}:${c.target.name}`.padEnd(14)}  ${c.author.padEnd(10)}  ${c.reason}${c.override ? '  [OVERRIDE]' : ''}${c.emergency ? '  [EMERGENCY]' : ''}`,
        );
        process.stdout.write(`${['  id  state        target          author      reason', ...rows].join('\n')}\n`);
      }),
    );

  for (const verdict of ['approve', 'reject'] as const) {
    const cmd = addClientOptions(
      change
        .command(verdict)
        .description(
          verdict === 'approve'
            ? 'approve the plan you read (not your own change); shows the plan summary and its id first'
            : 'reject the plan you read, with a comment',
        )
        .argument('<id>'),
    );
    if (verdict === 'reject') cmd.requiredOption('--comment <text>', 'why');
    else cmd.option('--comment <text>', 'a note for the record');
    cmd
      .option('--plan <n>', 'the plan id you reviewed (for scripts); refused when the change has a newer plan')
      .option('--json', 'print the change as JSON')
      .action(async (id: string, o: ClientCliOptions & Json & { comment?: string; plan?: string }) =>
        run(Boolean(o.json), async () => {
          const client = clientFrom(o);
          const n = parseId(id);
          const plan = o.plan !== undefined ? parsePlanId(o.plan) : await currentPlan(client, n, !o.json);
          show(
            await client.request<ChangeView>('POST', `/changes/${n}/${verdict}`, {
              plan,
              ...(o.comment !== undefined ? { comment: o.comment } : {}),
            }),
            o,
          );
        }),
      );
  }

  addClientOptions(
    change
      .command('override')
      .description(
        'admin: let the blocked plan you read be approved, with a reason (lapses on an edit or a new blocker)',
      )
      .argument('<id>'),
  )
    .requiredOption('--reason <text>', 'why the block is overridden (flagged everywhere afterwards)')
    .option('--plan <n>', 'the plan id you read (for scripts); refused when the change has a newer plan')
    .option('--json', 'print the change as JSON')
    .action(async (id: string, o: ClientCliOptions & Json & { reason: string; plan?: string }) =>
      run(Boolean(o.json), async () => {
        const client = clientFrom(o);
        const n = parseId(id);
        const plan = o.plan !== undefined ? parsePlanId(o.plan) : await currentPlan(client, n, !o.json);
        show(await client.request<ChangeView>('POST', `/changes/${n}/override`, { reason: o.reason, plan }), o);
      }),
    );

  addClientOptions(
    change.command('apply').description("queue an approved change for the hosts' agents").argument('<id>'),
  )
    .option('--emergency <reason>', 'apply inside a freeze window (flagged)')
    .option('--watch', 'follow the rollout host by host until it ends (exit 0 applied, 1 rolled back or failed)')
    .option('--json', 'print the change as JSON')
    .action(async (id: string, o: ClientCliOptions & Json & { emergency?: string; watch?: boolean }) =>
      run(Boolean(o.json), async () => {
        const client = clientFrom(o);
        const v = await client.request<ChangeView>(
          'POST',
          `/changes/${parseId(id)}/apply`,
          o.emergency ? { emergency: { reason: o.emergency } } : {},
        );
        if (o.watch) return watch(client, v.change.id, o);
        show(v, o);
      }),
    );

  addClientOptions(
    change
      .command('rollback')
      .description("roll an applied change back: proposes each host's previous desired ruleset as a new change")
      .argument('<id>'),
  )
    .requiredOption('--reason <text>', 'why it is rolled back')
    .option('--json', 'print the new change(s) as JSON')
    .action(async (id: string, o: ClientCliOptions & Json & { reason: string }) =>
      run(Boolean(o.json), async () => {
        const { changes } = await clientFrom(o).request<{ changes: ChangeView[] }>(
          'POST',
          `/changes/${parseId(id)}/rollback`,
          {
            reason: o.reason,
          },
        );
        if (o.json) return printJson({ changes });
        for (const v of changes) show(v, o);
        process.stdout.write(
          `\nreview and apply ${changes.length === 1 ? 'it' : 'them'} like any change: rampart change approve ${changes.map((v) => v.change.id).join(' / ')}\n`,
        );
      }),
    );

  addClientOptions(change.command('watch').description('follow a rollout host by host until it ends').argument('<id>'))
    .option('--json', 'print the final change as JSON')
    .action(async (id: string, o: ClientCliOptions & Json) =>
      run(Boolean(o.json), async () => watch(clientFrom(o), parseId(id), o)),
    );
}
