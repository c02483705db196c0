/**
 * `rampart audit`: review a ruleset (a file, or the running one with --live) against best practice and the
 * declared site (rampart.yaml, --public), print the findings for people, scripts, code scanning or a pull request,
 * and exit 1 when a finding is at or above --fail-on. This is the I/O edge: it reads files, sockets and the date.
 */
import type { Command } from 'commander';
import { readListeningSockets, readLiveRuleset } from '../../agent/live.js';
import { AUDIT_RULES } from '../../analysis/audit/catalogue.js';
import { createAuditContext } from '../../analysis/audit/context.js';
import { renderHuman } from '../../analysis/audit/format/human.js';
import { renderJson } from '../../analysis/audit/format/json.js';
import { renderMarkdown } from '../../analysis/audit/format/markdown.js';
import { docsUri, renderSarif } from '../../analysis/audit/format/sarif.js';
import { runAudit } from '../../analysis/audit/run.js';
import { type AuditReport, type ListeningSocket, SEVERITIES, type Severity } from '../../analysis/audit/types.js';
import { didYouMean } from '../../config/did-you-mean.js';
import { parseConfig, parsePortDecl } from '../../config/load.js';
import type { PortDecl, RampartConfig } from '../../config/types.js';
import { UserError } from '../../errors.js';
import { loadRuleset, readTextFile } from '../../firewall/load.js';
import type { InputFormat, L3, Ruleset } from '../../firewall/model.js';
import { mergeRulesets } from '../../firewall/parse.js';
import { addFormatOptions } from '../formats.js';
import { run } from '../output.js';
import { createProgress, QUIET_HELP } from '../progress.js';
import { EXAMPLE_INTERFACES } from './reach.js';

export const AUDIT_FORMATS = ['text', 'json', 'sarif', 'markdown'] as const;
export type AuditFormat = (typeof AUDIT_FORMATS)[number];

interface AuditCliOptions {
  format?: string;
  inputFormat?: string;
  family?: string;
  ipset?: string;
  iptables6?: string;
  config?: string;
  host?: string;
  public?: string;
  failOn?: string;
  only?: string;
  enable?: string;
  today?: string;
  listRules?: boolean;
  docsUrl?: string;
  live?: boolean;
  netns?: string;
  quiet?: boolean;
}

function usage(flag: string, message: string, value?: string): UserError {
  return new UserError('RAMPART_ERR_USAGE', `${flag}${value !== undefined ? ` '${value}'` : ''}: ${message}`, {
    flag,
    ...(value !== undefined ? { value } : {}),
  });
}

export function parseAuditFormat(text: string | undefined): AuditFormat {
  const f = (text ?? 'text').trim().toLowerCase();
  if (!(AUDIT_FORMATS as readonly string[]).includes(f)) {
    throw usage('--format', `unknown output format; expected one of ${AUDIT_FORMATS.join(', ')}`, text);
  }
  return f as AuditFormat;
}

export function parseSeverity(text: string, flag: string): Severity {
  const s = text.trim().toLowerCase();
  if (!(SEVERITIES as readonly string[]).includes(s)) {
    throw usage(flag, `unknown severity${didYouMean(s, SEVERITIES)}; expected one of ${SEVERITIES.join(', ')}`, text);
  }
  return s as Severity;
}

export function parsePublic(text: string): PortDecl[] {
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) throw usage('--public', 'no ports; expected a list like tcp/80,tcp/443', text);
  return parts.map((p) => {
    try {
      return parsePortDecl(p);
    } catch (e) {
      throw new UserError('RAMPART_ERR_USAGE', `--public ${e instanceof Error ? e.message : String(e)}`, {
        flag: '--public',
        value: p,
      });
    }
  });
}

export function parseOnly(text: string, flag = '--only'): string[] {
  const ids = AUDIT_RULES.map((r) => r.id);
  const wanted = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (wanted.length === 0) throw usage(flag, 'no rule ids; expected ids from rampart audit --list-rules', text);
  for (const id of wanted) {
    if (!ids.includes(id)) {
      throw usage(flag, `unknown rule id${didYouMean(id, ids)}; expected ids from rampart audit --list-rules`, id);
    }
  }
  return wanted;
}

export function parseToday(text: string | undefined, now: Date = new Date()): string {
  if (text === undefined) {
    const pad = (n: number) => String(n).padStart(2, '0');
    return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  }
  const t = text.trim();
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(t);
  const d = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : undefined;
  if (!d || d.toISOString().slice(0, 10) !== t) {
    throw usage('--today', 'not a date; expected YYYY-MM-DD, like 2025-03-14', text);
  }
  return t;
}

function parseFamily(text: string | undefined): L3 | undefined {
  if (text === undefined) return undefined;
  if (text !== 'ipv4' && text !== 'ipv6') throw usage('--family', 'unknown family; expected ipv4 or ipv6', text);
  return text;
}

/** Where the rules' pages are published: `--docs-url`, else RAMPART_DOCS_URL (a repository's web address). */
function docsUrl(flag: string | undefined): string | undefined {
  const u = (flag ?? process.env.RAMPART_DOCS_URL)?.trim();
  if (u === undefined || u === '') return undefined;
  if (!/^https?:\/\/[^\s/]+/.test(u)) {
    throw usage('--docs-url', 'not a web address; expected the repository, like https://github.com/you/rampart', u);
  }
  return u.replace(/\/+$/, '');
}

export function renderReport(report: AuditReport, format: AuditFormat, colour: boolean, docs?: string): string {
  switch (format) {
    case 'json':
      return renderJson(report);
    case 'sarif':
      return renderSarif(report, { root: process.cwd(), ...(docs !== undefined ? { informationUri: docs } : {}) });
    case 'markdown':
      return renderMarkdown(report, docs !== undefined ? { docsBase: docsUri('', docs).replace(/\.md$/, '') } : {});
    default:
      return renderHuman(report, { colour });
  }
}

function listRules(format: AuditFormat, docs: string | undefined): string {
  if (format === 'json') {
    const rules = AUDIT_RULES.map((r) => ({
      id: r.id,
      severity: r.defaultSeverity,
      needs: r.needs,
      ...(r.optIn ? { optIn: true } : {}),
      title: r.title,
      rationale: r.rationale,
      fix: r.fix,
      docs: docs !== undefined ? docsUri(r.id, docs) : `docs/rules/${r.id}.md`,
    }));
    return `${JSON.stringify({ rules }, null, 2)}\n`;
  }
  if (format === 'markdown') {
    const rows = AUDIT_RULES.map(
      (r) =>
        `| ${docs !== undefined ? `[${r.id}](${docsUri(r.id, docs)})` : `\`${r.id}\``} | ${r.defaultSeverity} | ${r.needs}${r.optIn ? ' (opt-in)' : ''} | ${r.title.replace(/\|/g, '\\|')} |`,
    );
    return `| Rule | Default severity | Needs | What it finds |\n| --- | --- | --- | --- |\n${rows.join('\n')}\n`;
  }
  const w = Math.max(2, ...AUDIT_RULES.map((r) => r.id.length));
  const lines = AUDIT_RULES.map(
    (r) =>
      `${r.id.padEnd(w)}  ${r.defaultSeverity.padEnd(8)}  ${r.needs.padEnd(6)}  ${r.optIn ? '(opt-in) ' : ''}${r.title}`,
  );
  return `${'id'.padEnd(w)}  ${'severity'.padEnd(8)}  ${'needs'.padEnd(6)}  title\n${lines.join('\n')}\n`;
}

export function registerAudit(program: Command): void {
  const cmd = program
    .command('audit')
    .description(
      'review a ruleset against best practice and the declared site; exit 1 when a finding is at or above --fail-on',
    )
    .argument('[files...]', 'ruleset files (nft JSON, nft text, iptables-save); several are merged');
  // The one grammar (src/cli/formats.ts): --format text|json|sarif|markdown, --json, --input-format; the old
  // `--format human` is read as text, with a note.
  addFormatOptions(cmd, AUDIT_FORMATS, { input: true, aliases: { human: 'text' } })
    .option('--config <rampart.yaml>', 'the site: hosts, services, admin networks, audit settings')
    .option('--host <name>', 'which host of the config this ruleset belongs to')
    .option('--public <ports>', 'services this host offers to the internet, e.g. tcp/80,tcp/443')
    .option('--fail-on <severity>', `exit 1 at this severity or above: ${SEVERITIES.join(', ')} (default high)`)
    .option('--only <ids>', 'run only these rules (comma-separated ids)')
    .option('--enable <ids>', 'also run these opt-in rules (comma-separated ids; e.g. rule-without-comment)')
    .option('--today <date>', 'the date expiry rules compare with, YYYY-MM-DD (default: today)')
    .option('--iptables6 <file>', 'ip6tables-save output to audit together with the iptables-save file(s)')
    .option('--family <family>', 'for iptables-save input: ipv4 or ipv6 (default: detected)')
    .option('--ipset <file>', 'ipset definitions (`ipset save` output) for -m set matches')
    .option(
      '--docs-url <url>',
      "the web address of Rampart's repository, for links to the rules' pages (markdown, SARIF; default: RAMPART_DOCS_URL)",
    )
    .option('--list-rules', 'list the audit rules (id, default severity, what they need) and exit')
    .option('--live', 'audit the running ruleset and listening sockets of this host (read-only; needs root)')
    .option('--netns <name>', 'with --live: read a network namespace instead of this host')
    .option('--quiet', QUIET_HELP)
    .action(async (files: string[], o: AuditCliOptions) => {
      // Errors go to stderr as JSON for the machine formats, so a CI step can parse them.
      const machine = o.format === 'json' || o.format === 'sarif';
      await run(machine, async () => {
        const format = parseAuditFormat(o.format);
        const docs = docsUrl(o.docsUrl);
        if (o.listRules) {
          process.stdout.write(listRules(format, docs));
          return;
        }
        // Validate every flag before reading anything: a bad flag fails fast and alone.
        const failOn = o.failOn !== undefined ? parseSeverity(o.failOn, '--fail-on') : undefined;
        const only = o.only !== undefined ? parseOnly(o.only) : undefined;
        const enable = o.enable !== undefined ? parseOnly(o.enable, '--enable') : undefined;
        const publicPorts = o.public !== undefined ? parsePublic(o.public) : undefined;
        const today = parseToday(o.today);
        const inputFormat = o.inputFormat as InputFormat | undefined;
        const family = parseFamily(o.family);
        if (o.netns !== undefined && !o.live) throw usage('--netns', 'needs --live', o.netns);
        if (o.live && (files.length > 0 || o.iptables6 !== undefined)) {
          throw usage('--live', 'reads the running ruleset; give either --live or ruleset files, not both');
        }
        if (!o.live && files.length === 0) {
          throw new UserError(
            'RAMPART_ERR_USAGE',
            'no ruleset: give ruleset files (e.g. rampart audit /etc/nftables.conf), --live, or --list-rules',
          );
        }

        let config: RampartConfig | undefined;
        if (o.config !== undefined) config = parseConfig(readTextFile(o.config, 'config file'), o.config);

        const progress = createProgress(o);
        // Hooks are compiled when an audit rule first needs them: the phase goes back and forth.
        let compiling: string | undefined;
        progress.phase(o.live ? 'reading the running ruleset' : 'reading the rulesets');
        let ruleset: Ruleset;
        let file: string;
        let listening: ListeningSocket[] | undefined;
        if (o.live) {
          const liveOpts = o.netns !== undefined ? { netns: o.netns } : {};
          const got = await readLiveRuleset(liveOpts);
          ruleset = got.ruleset;
          file = got.file;
          listening = await readListeningSockets(liveOpts);
        } else {
          const ipsetOpt = o.ipset !== undefined ? { ipsetFile: o.ipset } : {};
          const main = loadRuleset(files, {
            ...(inputFormat ? { format: inputFormat } : {}),
            ...(family ? { family } : {}),
            ...ipsetOpt,
          });
          ruleset =
            o.iptables6 !== undefined
              ? mergeRulesets([
                  main,
                  loadRuleset([o.iptables6], { format: 'iptables-save', family: 'ipv6', ...ipsetOpt }),
                ])
              : main;
          file = files.join(', ');
        }

        const ctx = createAuditContext({
          ruleset,
          file,
          ...(config ? { config } : {}),
          ...(o.host !== undefined ? { hostName: o.host } : {}),
          ...(publicPorts ? { publicPorts } : {}),
          ...(listening ? { listening } : {}),
          today,
          interfaces: EXAMPLE_INTERFACES,
          onCompile: (hook, walked, total) => {
            if (hook !== compiling) progress.phase(`compiling the ${hook} hook path`);
            compiling = hook;
            progress.count(walked, total, 'rules walked');
          },
        });
        const report = runAudit(ctx, {
          ...(failOn ? { failOn } : {}),
          ...(only ? { only } : {}),
          ...(enable ? { enable } : {}),
          onRule: (_id, done, total) => {
            if (compiling !== 'rules') progress.phase('running the audit rules');
            compiling = 'rules';
            progress.count(done, total, 'audit rules');
          },
        });
        progress.end();
        const colour = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
        process.stdout.write(renderReport(report, format, colour, docs));
        if (report.summary.failed) process.exitCode = 1;
      });
    });
}
