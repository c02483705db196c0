/**
 * `rampart drill list` / `rampart drill run NAME|--all` (issue 18): replays the founding outage and its cousins in a
 * shop lab of its own (network namespaces created for the run and removed after it, also on failure), scores the
 * response (src/lab/drills/score.ts) against the founding postmortem, and writes a Markdown and JSON report.
 * Never touches the machine's own network namespace; refuses to run unless root with the lab's tools.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { type DrillReportEntry, drillReport, renderReportMarkdown } from '../../lab/drills/report.js';
import { startDrillLab } from '../../lab/drills/runner.js';
import { DRILL_SCENARIOS, type DrillScenario, findScenario } from '../../lab/drills/scenarios.js';
import { renderScoreTable } from '../../lab/drills/score.js';
import { shopLabUnavailable } from '../../lab/shop-lab.js';
import { printJson, run } from '../output.js';

/** The CLI script this process runs (dist/cli/main.js), for the lab's server and agents. */
const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

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
    .option('--config <file>', 'a rampart.yaml to run a game day against (refused: see docs/drills.md)')
    .option('--json', 'print the report as JSON')
    .action(
      async (
        name: string | undefined,
        o: { all?: boolean; out?: string; ackDelay: string; rate: string; config?: string; json?: boolean },
      ) =>
        run(Boolean(o.json), async () => {
          if (o.config !== undefined) {
            throw new UserError(
              'RAMPART_ERR_USAGE',
              `--config ${o.config}: drills run only in a lab of their own for now; a game day on a real site needs every host it touches marked as lab or staging in rampart.yaml, which this version cannot check, so it refuses (docs/drills.md)`,
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
          const why = shopLabUnavailable(['ip', 'haproxy', 'nft']);
          if (why) {
            throw new UserError(
              'RAMPART_ERR_USAGE',
              `rampart drill run: cannot run here: ${why}; drills build their own lab and need Linux, root, iproute2, nftables and HAProxy`,
            );
          }
          const log = (line: string) => process.stderr.write(`drill: ${line}\n`);
          const started = Date.now();
          const runnable = scenarios.filter((s) => !s.unavailable);
          const entries: DrillReportEntry[] = [];
          if (runnable.length > 0) {
            const traffic = runnable.some((s) => s.needsTraffic);
            const lab = await startDrillLab({ main: MAIN, traffic, log });
            const stop = () => void lab.destroy().finally(() => process.exit(130));
            process.once('SIGINT', stop);
            process.once('SIGTERM', stop);
            try {
              for (const s of scenarios) {
                log(`${s.name}: ${s.title}`);
                entries.push(await lab.run(s, { ackDelayMs, rate }));
              }
            } finally {
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
