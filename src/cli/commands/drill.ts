/**
 * `rampart drill list` / `rampart drill run NAME|--all` (issue 18): replays the founding outage and its cousins in a
 * shop lab of its own (network namespaces created for the run and removed after it, also on failure), scores the
 * response (src/lab/drills/score.ts) against the founding postmortem, and writes a Markdown and JSON report.
 * Never touches the machine's own network namespace; refuses to run unless root with the lab's tools.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { parseConfig } from '../../config/load.js';
import { UserError } from '../../errors.js';
import { type DrillReportEntry, drillReport, renderReportMarkdown } from '../../lab/drills/report.js';
import { startDrillLab } from '../../lab/drills/runner.js';
import { drillRefusal } from '../../lab/drills/safety.js';
import { DRILL_SCENARIOS, type DrillScenario, findScenario } from '../../lab/drills/scenarios.js';
import { renderCompareTable, renderScoreTable } from '../../lab/drills/score.js';
import { shopLabUnavailable } from '../../lab/shop-lab.js';
import { printJson, run } from '../output.js';

/** The CLI script this process runs (dist/cli/main.js), for the lab's server and agents. */
const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

/**
 * `--config FILE`: a game day on a real site. Refused unless every host of the site is marked lab or staging (with
 * where each unmarked one is declared); a marked site is refused too, for now, saying why: the scenarios act through
 * the lab's own namespaces, and this version has no way to act on a real site's hosts.
 */
export function gameDayRefusal(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return `--config ${file}: cannot read it (${e instanceof Error ? e.message : String(e)})`;
  }
  const config = parseConfig(text, file);
  const hosts = config.hosts.map((h) => h.name);
  const refused = drillRefusal(config, hosts.length > 0 ? hosts : ['(the site)']);
  if (refused) return `--config ${refused}`;
  return `--config ${file}: every host is marked as ${config.environment ?? 'lab or staging'}, but this version runs drills only in a lab of its own (its scenarios act through the lab's namespaces, not on a site's hosts); see docs/drills.md for a game day by hand`;
}

function parseMs(field: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m)
    throw new UserError('RAMPART_ERR_USAGE', `${field}: '${text}' is not a duration; expected like 2s, 500ms, 1m`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

export function registerDrill(program: Command): void {
  const drill = program
    .command('drill')
    .description('replay the founding outage and its cousins in a lab of its own, scored: drill list / drill run');

  drill
    .command('list')
    .description('the drill scenarios: what each breaks, what it expects')
    .option('--json', 'print the scenarios as JSON')
    .action(async (o: { json?: boolean }) =>
      run(Boolean(o.json), () => {
        if (o.json) {
          printJson({ scenarios: DRILL_SCENARIOS });
          return;
        }
        for (const s of DRILL_SCENARIOS) {
          const expects = s.expect.alerts
            .map((a) => `${a.alertname}${a.labels ? JSON.stringify(a.labels).replace(/"/g, '') : ''}`)
            .join(', ');
          process.stdout.write(
            `${s.name}: ${s.title}${s.unavailable ? ' [not available in this lab]' : ''}\n  ${s.description}\n  expects: ${expects}; users ${s.expect.usersAffected ? 'affected' : 'unaffected'}\n\n`,
          );
        }
      }),
    );

  drill
    .command('run')
    .description('run one drill or --all in a shop lab of its own (root, ip, haproxy, nft), print the score table')
    .argument('[name]', 'the scenario (rampart drill list)')
    .option('--all', 'run every scenario, one after the other, on one lab')
    .option('--out <dir>', 'write drill-report.md and drill-report.json (and each generated postmortem) there')
    .option('--ack-delay <duration>', "the scripted responder's delay from the page to its acknowledgement", '2s')
    .option('--rate <n>', "the steady customers' requests per second", '20')
    .option(
      '--config <file>',
      'a rampart.yaml to run a game day against: refused unless every host is marked lab or staging (docs/drills.md)',
    )
    .option('--interactive', 'a person responds instead of the scripted responder: prints what to do, scores them')
    .option(
      '--compare <stack>',
      'also run prometheus (+ blackbox_exporter + Alertmanager: defaults and tuned to 5 s) on the same fault',
    )
    .option('--json', 'print the report as JSON')
    .action(
      async (
        name: string | undefined,
        o: {
          all?: boolean;
          out?: string;
          ackDelay: string;
          rate: string;
          config?: string;
          interactive?: boolean;
          compare?: string;
          json?: boolean;
        },
      ) =>
        run(Boolean(o.json), async () => {
          if (o.config !== undefined) throw new UserError('RAMPART_ERR_USAGE', gameDayRefusal(o.config));
          if (o.compare !== undefined && o.compare !== 'prometheus') {
            throw new UserError('RAMPART_ERR_USAGE', `--compare: '${o.compare}' is not a stack; expected prometheus`);
          }
          if (o.interactive && o.all) {
            throw new UserError(
              'RAMPART_ERR_USAGE',
              '--interactive plays one scenario with a person; name it instead of --all',
            );
          }
          let scenarios: DrillScenario[];
          if (o.all) {
            if (name !== undefined) throw new UserError('RAMPART_ERR_USAGE', `give a scenario name or --all, not both`);
            scenarios = [...DRILL_SCENARIOS];
          } else {
            const s = name === undefined ? undefined : findScenario(name);
            if (!s) {
              throw new UserError(
                'RAMPART_ERR_USAGE',
                `${name === undefined ? 'no scenario given' : `unknown scenario '${name}'`}; expected one of ${DRILL_SCENARIOS.map((x) => x.name).join(', ')} or --all`,
              );
            }
            scenarios = [s];
          }
          const ackDelayMs = parseMs('--ack-delay', o.ackDelay);
          const rate = Number(o.rate);
          if (!(rate > 0 && rate <= 1000)) {
            throw new UserError('RAMPART_ERR_USAGE', `--rate: '${o.rate}' is not a number in (0, 1000]`);
          }
          const why = shopLabUnavailable(['ip', 'haproxy', 'nft', 'openssl']);
          if (why) {
            throw new UserError(
              'RAMPART_ERR_USAGE',
              `rampart drill run: cannot run here: ${why}; drills build their own lab and need Linux, root, iproute2, nftables, HAProxy and openssl`,
            );
          }
          const log = (line: string) => process.stderr.write(`drill: ${line}\n`);
          const started = Date.now();
          const runnable = scenarios.filter((s) => !s.unavailable);
          const entries: DrillReportEntry[] = [];
          if (runnable.length > 0) {
            const traffic = runnable.some((s) => s.needsTraffic);
            const lab = await startDrillLab({
              main: MAIN,
              traffic,
              log,
              ...(o.compare === 'prometheus' ? { compare: 'prometheus' as const } : {}),
            });
            if (lab.compareSkipped) log(`the comparison with Prometheus is skipped: ${lab.compareSkipped}`);
            const stop = () => void lab.destroy().finally(() => process.exit(130));
            process.once('SIGINT', stop);
            process.once('SIGTERM', stop);
            // --interactive: Enter gives up (the drill then ends, scored as it stands)
            const rl = o.interactive ? createInterface({ input: process.stdin }) : undefined;
            const giveUp = rl ? new Promise<void>((r) => rl.once('line', () => r())) : undefined;
            try {
              for (const s of scenarios) {
                log(`${s.name}: ${s.title}`);
                entries.push(
                  await lab.run(s, {
                    ackDelayMs,
                    rate,
                    ...(rl
                      ? {
                          interactive: {
                            say: (text: string) => process.stderr.write(`\n${text}\n\n`),
                            ...(giveUp ? { giveUp } : {}),
                          },
                        }
                      : {}),
                  }),
                );
              }
            } finally {
              rl?.close();
              process.removeListener('SIGINT', stop);
              process.removeListener('SIGTERM', stop);
              await lab.destroy();
            }
          } else {
            for (const s of scenarios) entries.push({ scenario: s.name, skipped: s.unavailable ?? '' });
          }
          const report = drillReport(entries, { ackDelayMs, rate }, started, Date.now());
          if (o.out) {
            const dir = resolve(o.out);
            mkdirSync(dir, { recursive: true });
            writeFileSync(join(dir, 'drill-report.md'), renderReportMarkdown(report));
            writeFileSync(join(dir, 'drill-report.json'), `${JSON.stringify(report, null, 2)}\n`);
            for (const e of entries) {
              if (e.incident) writeFileSync(join(dir, `postmortem-${e.scenario}.md`), e.incident.postmortem);
            }
            log(`report written to ${join(dir, 'drill-report.md')} and drill-report.json`);
          }
          if (o.json) printJson(report);
          else {
            const scores = entries.flatMap((e) => (e.score ? [e.score] : []));
            if (scores.length > 0) process.stdout.write(`${renderScoreTable(scores)}\n`);
            const compared = entries.flatMap((e) =>
              e.score && e.compare ? [{ score: e.score, compare: e.compare }] : [],
            );
            if (compared.length > 0) {
              process.stdout.write(`\nside by side with Prometheus + Alertmanager:\n${renderCompareTable(compared)}\n`);
            }
            const skippedCompare = entries.find((e) => e.compareSkipped)?.compareSkipped;
            if (skippedCompare) process.stdout.write(`the comparison with Prometheus was skipped: ${skippedCompare}\n`);
            for (const e of entries) {
              if (e.skipped) process.stdout.write(`${e.scenario}: skipped: ${e.skipped}\n`);
              if (e.error) process.stdout.write(`${e.scenario}: the drill failed: ${e.error}\n`);
              if (e.score && !e.score.passed) process.stdout.write(`${e.scenario}: ${e.score.problems.join('; ')}\n`);
            }
            process.stdout.write(`${report.passed ? 'PASS' : 'FAIL'}\n`);
          }
          if (!report.passed) process.exitCode = 1;
        }),
    );
}
