/**
 * `rampart plan`: the offline (GitOps) form of a change plan. Compares a desired ruleset with the host's current one
 * (or none: a first ruleset) against the declared site, prints the plan as text, JSON or Markdown (for a pull-request
 * comment), and exits 1 when the plan is blocked (closes a public service or violates a must-allow intent), 2 on bad
 * input. No server: this is the I/O edge around the pure computePlan.
 */
import type { Command } from 'commander';
import { computePlan } from '../../change/plan.js';
import { renderPlanMarkdown, renderPlanText } from '../../change/render-plan.js';
import { parseConfig } from '../../config/load.js';
import { UserError } from '../../errors.js';
import { detectFormat } from '../../firewall/detect.js';
import { includeFromDisk, readTextFile } from '../../firewall/load.js';
import { addFormatOptions, type FormatOptions } from '../formats.js';
import { printJson, run } from '../output.js';
import { parseToday } from './audit.js';

export const PLAN_FORMATS = ['text', 'json', 'markdown'] as const;
export type PlanFormat = (typeof PLAN_FORMATS)[number];

interface PlanCliOptions extends FormatOptions {
  config?: string;
  host?: string;
  current?: string;
  today?: string;
}

function usage(flag: string, message: string, value?: string): UserError {
  return new UserError('RAMPART_ERR_USAGE', `${flag}${value !== undefined ? ` '${value}'` : ''}: ${message}`, {
    flag,
    ...(value !== undefined ? { value } : {}),
  });
}

export function parsePlanFormat(text: string | undefined): PlanFormat {
  const f = (text ?? 'text').trim().toLowerCase();
  if (!(PLAN_FORMATS as readonly string[]).includes(f)) {
    throw usage('--format', `unknown output format; expected one of ${PLAN_FORMATS.join(', ')}`, text);
  }
  return f as PlanFormat;
}

export function registerPlan(program: Command): void {
  const cmd = program
    .command('plan')
    .description(
      'plan a ruleset change offline: semantic diff, findings introduced/fixed, intents, blast radius and risk; exit 1 when blocked',
    )
    .argument('<desired>', 'the desired ruleset (nft JSON, nft text, iptables-save)')
    .option('--config <rampart.yaml>', 'the site: hosts, services, admin networks, intents (required)')
    .option('--host <name>', 'the declared host the ruleset is for (required)')
    .option('--current <file>', "the host's current ruleset (default: none, the host's first ruleset)")
    .option('--today <date>', 'the date expiry rules compare with, YYYY-MM-DD (default: today)');
  addFormatOptions(cmd, PLAN_FORMATS, { input: true }).action(async (desiredFile: string, o: PlanCliOptions) =>
    run(o.format === 'json', () => {
      const format = parsePlanFormat(o.format);
      const today = parseToday(o.today);
      if (o.config === undefined) throw usage('--config', 'required: the rampart.yaml that declares the host');
      if (o.host === undefined) throw usage('--host', 'required: which declared host the ruleset is for');
      const config = parseConfig(readTextFile(o.config, 'config file'), o.config);
      if (!config.hosts.some((h) => h.name === o.host)) {
        const known = config.hosts.map((h) => h.name);
        throw usage(
          '--host',
          `no such host in ${o.config}; ${known.length > 0 ? `declared hosts: ${known.join(', ')}` : 'declare it under hosts:'}`,
          o.host,
        );
      }
      const side = (file: string) => {
        const text = readTextFile(file);
        return { text, format: o.inputFormat ?? detectFormat(text), file };
      };
      const plan = computePlan(
        config,
        [{ host: o.host, current: o.current !== undefined ? side(o.current) : null, desired: side(desiredFile) }],
        { today, include: includeFromDisk },
      );
      if (format === 'json') printJson(plan);
      else if (format === 'markdown') process.stdout.write(renderPlanMarkdown(plan));
      else {
        const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
        process.stdout.write(renderPlanText(plan, { color }));
      }
      if (plan.blocked) process.exitCode = 1;
    }),
  );
}
