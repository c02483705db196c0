#!/usr/bin/env node
/**
 * `rampart audit` over the real-world corpus (test/fixtures/real-world/corpus.json): how many files it reads, and
 * what it reports, per rule and per file. This measures precision, not speed: the figures to watch are parse
 * failures on files the kernel accepts, and findings per rule (a rule that fires on every file is noise).
 *
 * Each entry is read as `rampart audit` reads it (absolute nft includes resolve under the entry's directory, the
 * ipsets come from the manifest, the family from the files as rampart detects it) and audited without a config, as a new user would first run it. Entries
 * the kernel refuses must be refused by the parser too; they are counted apart.
 *
 * Usage: npm run build && node bench/audit-corpus.mjs [--dist DIR] [--today 2025-01-01] [--out FILE]
 *   --dist: another build to measure (e.g. one of the base commit, for a before/after table).
 * Prints markdown tables for bench/RESULTS.md and writes bench/out/audit-corpus.json.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const corpusDir = join(root, 'test/fixtures/real-world');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const dist = resolve(arg('dist', join(root, 'dist')));
const today = arg('today', '2025-06-01');
const outFile = resolve(arg('out', join(here, 'out', 'audit-corpus.json')));
if (!existsSync(join(dist, 'index.js'))) {
  console.error(`${dist} has no build: run \`npm run build\` first (or give --dist)`);
  process.exit(2);
}
const load = async (p) => import(pathToFileURL(join(dist, p)).href);
const lib = await load('index.js');
const { createAuditContext } = await load('analysis/audit/context.js');
const { runAudit } = await load('analysis/audit/run.js');

const manifest = JSON.parse(readFileSync(join(corpusDir, 'corpus.json'), 'utf8'));

/** Reads an entry's files as the CLI would, with absolute includes under the entry's directory. */
function readEntry(e) {
  const base = join(corpusDir, e.root);
  const include = (path, fromFile) => {
    const p = isAbsolute(path) ? join(base, path) : join(dirname(fromFile), path);
    return [{ file: p, text: readFileSync(p, 'utf8') }];
  };
  const ipsets = e.ipsets ? { file: e.ipsets, text: readFileSync(join(corpusDir, e.ipsets), 'utf8') } : undefined;
  const parts = e.files.map((f) =>
    lib.parseRuleset(readFileSync(join(corpusDir, f), 'utf8'), `test/fixtures/real-world/${f}`, {
      include,
      ...(ipsets ? { ipsets } : {}),
    }),
  );
  return lib.mergeRulesets(parts);
}

const SEV = ['critical', 'high', 'medium', 'low', 'info'];
const perFile = [];
const perRule = new Map();
for (const e of manifest.entries) {
  const row = { id: e.id, kernel: e.kernel, parsed: false, error: undefined, bySeverity: {}, rules: {}, findings: [] };
  let ruleset;
  try {
    ruleset = readEntry(e);
    row.parsed = true;
  } catch (err) {
    row.error = String(err?.message ?? err).split('\n')[0];
  }
  if (ruleset && e.kernel === 'accepts') {
    const t0 = performance.now();
    try {
      const ctx = createAuditContext({ ruleset, file: ruleset.file, today });
      const report = runAudit(ctx, { failOn: 'high' });
      row.ms = Math.round(performance.now() - t0);
      for (const f of report.findings) {
        row.bySeverity[f.severity] = (row.bySeverity[f.severity] ?? 0) + 1;
        row.rules[f.rule] = (row.rules[f.rule] ?? 0) + 1;
        row.findings.push({ rule: f.rule, severity: f.severity, message: f.message, line: f.location?.line });
        let r = perRule.get(f.rule);
        if (!r) {
          r = { findings: 0, files: new Set(), bySeverity: {} };
          perRule.set(f.rule, r);
        }
        r.findings++;
        r.files.add(e.id);
        r.bySeverity[f.severity] = (r.bySeverity[f.severity] ?? 0) + 1;
      }
    } catch (err) {
      row.error = `audit failed: ${String(err?.message ?? err).split('\n')[0]}`;
    }
  }
  perFile.push(row);
}

const accepted = perFile.filter((r) => r.kernel === 'accepts');
const refused = perFile.filter((r) => r.kernel === 'refuses');
const parsedOk = accepted.filter((r) => r.parsed && !r.error);
const refusedOk = refused.filter((r) => !r.parsed);
const total = perFile.reduce((n, r) => n + r.findings.length, 0);
const sevText = (by) => SEV.map((s) => by[s] ?? 0).join(' / ');

const lines = [];
lines.push(
  `corpus: ${manifest.entries.length} entries (${accepted.length} the kernel accepts, ${refused.length} it refuses)`,
);
lines.push(`read: ${parsedOk.length}/${accepted.length} kernel-accepted entries parsed and audited`);
lines.push(`refused: ${refusedOk.length}/${refused.length} kernel-refused entries refused by the parser too`);
lines.push(
  `findings: ${total} (critical / high / medium / low / info: ${sevText(Object.fromEntries(SEV.map((s) => [s, perFile.reduce((n, r) => n + (r.bySeverity[s] ?? 0), 0)])))})`,
);
lines.push('');
lines.push('| rule | findings | files | critical / high / medium / low / info |');
lines.push('| --- | ---: | ---: | --- |');
for (const [rule, r] of [...perRule].sort((a, b) => b[1].findings - a[1].findings || a[0].localeCompare(b[0]))) {
  lines.push(`| ${rule} | ${r.findings} | ${r.files.size} | ${sevText(r.bySeverity)} |`);
}
lines.push('');
lines.push('| entry | kernel | read | findings (c/h/m/l/i) | rules |');
lines.push('| --- | --- | --- | --- | --- |');
for (const r of perFile) {
  const read = r.error ? `no: ${r.error.replace(/\|/g, '\\|').slice(0, 140)}` : 'yes';
  const rules = Object.entries(r.rules)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  lines.push(
    `| ${r.id} | ${r.kernel} | ${read} | ${r.kernel === 'accepts' && !r.error ? sevText(r.bySeverity) : '-'} | ${rules} |`,
  );
}
console.log(lines.join('\n'));
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(
  outFile,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      dist,
      today,
      perRule: Object.fromEntries([...perRule].map(([k, v]) => [k, { ...v, files: [...v.files] }])),
      perFile,
    },
    null,
    1,
  )}\n`,
);
