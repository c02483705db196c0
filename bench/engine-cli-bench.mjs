#!/usr/bin/env node
/**
 * The engine as a new user meets it (issue 19): the `rampart` CLI on the shapes real hosts have, one command per
 * fresh child process, as typed at a shell:
 * - unreach: `rampart rules --unreachable --json --hook H FILE`
 * - audit:   `rampart audit --json FILE`
 * - diff:    `rampart diff --json --hook H FILE FILE-minus-one-line` (one rule of a user chain deleted)
 * - reach:   `rampart reach --json --hook H --from 10.0.0.0/8 --proto tcp --dport 443 FILE`
 * Shapes: src/lab/engine-generator.ts (per-source: 250 user chains of one /24 each, jumped to from INPUT at 5 000
 * rules; fail2ban, docker (forward hook), ufw), iptables-save, seed 42.
 *
 * Progress lines are off (stderr is not a terminal), so builds without --quiet run too.
 *
 * Each child reports its own CPU time (user + system, process.cpuUsage at exit: node's start and the module loading
 * included, as the user waits for them) and its peak RSS; the parent records wall time and a hash of stdout (the
 * answer: equal hashes between builds mean byte-identical output). With --before OTHER/dist, the two builds
 * alternate child by child on the same files.
 *
 * Usage: npm run build && node bench/engine-cli-bench.mjs [--shapes per-source,fail2ban,docker,ufw] [--size 5000]
 *          [--runs 1] [--timeout 300] [--commands unreach,audit,diff,reach] [--before OTHER_CHECKOUT/dist]
 * Prints a markdown table (median of --runs, min-max) and writes bench/out/engine-cli.json.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ownDist = join(resolve(here, '..'), 'dist');
const outDir = join(here, 'out');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const COMMANDS = ['unreach', 'audit', 'diff', 'reach'];
const REPORT = '\u0000engine-cli-bench ';

// The child: runs the CLI in this process and reports its CPU time and peak RSS on stderr when it exits.
const CHILD = `
const [main, ...args] = process.argv.slice(1);
process.argv = [process.argv[0], main, ...args];
process.on('exit', () => {
  const u = process.cpuUsage();
  process.stderr.write(${JSON.stringify(REPORT)} + JSON.stringify({ cpuMs: (u.user + u.system) / 1000, rssMiB: process.resourceUsage().maxRSS / 1024 }) + '\\n');
});
await import(require('node:url').pathToFileURL(main).href);
`;

function argsOf(command, file, file2, hook) {
  switch (command) {
    case 'unreach':
      return ['rules', '--unreachable', '--json', '--hook', hook, file];
    case 'audit':
      return ['audit', '--json', file];
    case 'diff':
      return ['diff', '--json', '--hook', hook, file, file2];
    case 'reach':
      return [
        'reach',
        '--json',
        '--quiet',
        '--hook',
        hook,
        '--from',
        '10.0.0.0/8',
        '--proto',
        'tcp',
        '--dport',
        '443',
        file,
      ];
  }
  throw new Error(`unknown command ${command}`);
}

function runChild(dist, args, timeoutS) {
  const t0 = performance.now();
  const r = spawnSync(
    process.execPath,
    ['--input-type=commonjs', '-e', `(async () => {${CHILD}})()`, join(dist, 'cli/main.js'), ...args],
    { encoding: 'utf8', maxBuffer: 1 << 28, timeout: timeoutS * 1000, killSignal: 'SIGKILL' },
  );
  const wallMs = performance.now() - t0;
  if (r.error?.code === 'ETIMEDOUT' || r.signal === 'SIGKILL') return { error: `timeout > ${timeoutS} s` };
  // audit exits 1 when it has findings at or above --fail-on: an answer, not a failure.
  const line = r.stderr.split('\n').find((l) => l.startsWith(REPORT));
  if ((r.status !== 0 && r.status !== 1) || (r.status === 1 && r.stdout === '') || !line) {
    // The child's own report line is left out: what it printed before exiting says why (an uncaught error's
    // message and first frames, not the last frame and the report).
    const said = r.stderr
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith(REPORT))
      .slice(0, 4)
      .join(' | ');
    return { error: `exit ${r.status}${said ? `: ${said}` : ' (nothing on stderr)'}` };
  }
  const answer = createHash('sha256').update(r.stdout).digest('hex').slice(0, 12);
  return { wallMs, answer, bytes: r.stdout.length, ...JSON.parse(line.slice(REPORT.length)) };
}

/** The text without one rule of a user chain (the middle one of those the file has), and that rule. */
function deleteOneLine(text) {
  const lines = text.split('\n');
  const builtin = /^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) /;
  const user = lines.flatMap((l, i) => (l.startsWith('-A ') && !builtin.test(l) ? [i] : []));
  const pool = user.length > 0 ? user : lines.flatMap((l, i) => (l.startsWith('-A ') ? [i] : []));
  const at = pool[Math.floor(pool.length / 2)];
  return { text: lines.filter((_, i) => i !== at).join('\n'), deleted: lines[at] };
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? undefined : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const n0 = (x) => (x === undefined ? '-' : Math.round(x).toLocaleString('en-US').replace(/,/g, ' '));
const cell = (v) =>
  v.length === 0 ? '-' : v.length === 1 ? n0(v[0]) : `${n0(median(v))} (${n0(Math.min(...v))}-${n0(Math.max(...v))})`;

async function main() {
  const gen = await import(pathToFileURL(join(ownDist, 'lab/engine-generator.js')).href);
  const shapes = arg('shapes', 'per-source,fail2ban,docker,ufw').split(',');
  const size = Number(arg('size', '5000'));
  const runs = Number(arg('runs', '1'));
  const timeoutS = Number(arg('timeout', '300'));
  const commands = arg('commands', COMMANDS.join(',')).split(',');
  for (const c of commands)
    if (!COMMANDS.includes(c)) throw new Error(`--commands: unknown ${c}; expected ${COMMANDS}`);
  const before = arg('before', undefined);
  const sides = before ? { before: resolve(before), after: ownDist } : { after: ownDist };
  mkdirSync(outDir, { recursive: true });
  console.log(
    `engine-cli-bench: ${shapes.join(', ')} at ${size} rules; ${commands.join(', ')}; ${runs} run(s) per build; ${Object.entries(
      sides,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}; ${cpus().length} cpu, node ${process.version}, load ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  const names = Object.keys(sides);
  const head = names.flatMap((s) => [`CPU ms ${s}`, `wall ms ${s}`]);
  console.log(
    `| shape | command | ${head.join(' | ')} |${before ? ' CPU after/before |' : ''} peak RSS MiB | answer |`,
  );
  console.log(`| --- | --- | ${head.map(() => '---:').join(' | ')} |${before ? ' ---: |' : ''} ---: | --- |`);
  const rows = [];
  for (const shape of shapes) {
    const format = gen.SHAPE_FORMATS[shape].includes('iptables-save') ? 'iptables-save' : gen.SHAPE_FORMATS[shape][0];
    const ext = format === 'nft-text' ? 'nft' : 'rules';
    const hook = gen.SHAPE_HOOKS[shape] ?? 'input';
    const text = gen.generateEngineRuleset(shape, size, 42, format);
    const file = join(outDir, `cli-${shape}-${size}.${ext}`);
    writeFileSync(file, text);
    const { text: text2, deleted } = deleteOneLine(text);
    const file2 = join(outDir, `cli-${shape}-${size}-minus-one.${ext}`);
    writeFileSync(file2, text2);
    for (const command of commands) {
      const got = Object.fromEntries(names.map((s) => [s, []]));
      const errors = {};
      for (let i = 0; i < runs; i++) {
        for (const side of names) {
          if (errors[side]) continue;
          const r = runChild(sides[side], argsOf(command, file, file2, hook), timeoutS);
          if (r.error) errors[side] = r.error;
          else got[side].push(r);
        }
      }
      rows.push({ shape, size, command, hook, deleted: command === 'diff' ? deleted : undefined, errors, ...got });
      writeFileSync(
        join(outDir, 'engine-cli.json'),
        `${JSON.stringify({ argv: process.argv.slice(2), rows }, null, 2)}\n`,
      );
      const pick = (side, k) => got[side].map((r) => r[k]);
      const cells = names.flatMap((s) =>
        errors[s] ? [errors[s], '-'] : [cell(pick(s, 'cpuMs')), cell(pick(s, 'wallMs'))],
      );
      const ratio =
        before && !errors.before && !errors.after
          ? ` ${(median(pick('after', 'cpuMs')) / median(pick('before', 'cpuMs'))).toFixed(2)} |`
          : before
            ? ' - |'
            : '';
      const answers = [...new Set(names.flatMap((s) => pick(s, 'answer')))];
      const rss = names.map((s) => n0(median(pick(s, 'rssMiB')))).join(' / ');
      console.log(
        `| ${shape} | ${command} | ${cells.join(' | ')} |${ratio} ${rss} | ${answers.length === 0 ? '-' : answers.length === 1 ? `${answers[0]} (${n0(median(names.flatMap((x) => pick(x, 'bytes'))))} B)` : `DIFFER: ${answers.join(', ')}`} |`,
      );
    }
  }
  console.log(
    `load at end ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
}

await main();
