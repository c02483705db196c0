/**
 * Progress on long work (issue 13): audit, rules --unreachable, diff, plan and reach print progress lines on stderr
 * when it is a terminal; --quiet silences them. A test has no terminal: RAMPART_PROGRESS=1 shows the lines anyway.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, main, root } from './cli.js';

const fx = (p: string) => join(root, 'test', 'fixtures', p);
const KUBE = fx('iptables/kube-proxy.rules');
const OUTAGE = fx('nftables/founding-outage.nft');
const FIXED = fx('queries/founding-fixed.nft');

/** Asynchronous, so that the three runs of a command overlap and the worker's event loop is never blocked. */
function run(
  env: NodeJS.ProcessEnv,
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main, ...args], {
      cwd: root,
      env: { ...process.env, RAMPART_PROGRESS: undefined, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    // Killed by its PID, should it outlive the test's own timeout (the config's, 180 s).
    const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const COMMANDS: Record<string, { args: string[]; phases: RegExp[] }> = {
  'rules --unreachable': {
    args: ['rules', KUBE, '--unreachable'],
    phases: [
      /^rampart: reading the rulesets \(\d+\.\d s\)$/m,
      /^rampart: compiling the input hook path \(\d+\.\d s\)$/m,
      /^rampart: compiling the input hook path: [\d,]+ of [\d,]+ rules walked \(\d+\.\d s\)$/m,
      /^rampart: looking for unreachable rules: [\d,]+ of [\d,]+ rules examined \(\d+\.\d s\)$/m,
    ],
  },
  diff: {
    args: ['diff', OUTAGE, FIXED],
    phases: [
      /^rampart: compiling the old ruleset where the rules differ \(input hook path\): [\d,]+ of [\d,]+ rules walked/m,
      /^rampart: compiling the new ruleset where the rules differ \(input hook path\)/m,
    ],
  },
  reach: {
    args: ['reach', KUBE, '--proto', 'tcp', '--dport', '443'],
    phases: [
      /^rampart: compiling the input hook path: [\d,]+ of [\d,]+ rules walked/m,
      /^rampart: answering the query/m,
    ],
  },
  audit: {
    args: ['audit', KUBE],
    phases: [/^rampart: running the audit rules: \d+ of \d+ audit rules/m, /^rampart: compiling the input hook path/m],
  },
  plan: {
    args: ['plan', '--config', fx('config/shop.yaml'), '--host', 'web1', '--current', OUTAGE, FIXED],
    phases: [
      /^rampart: planning web1: compiling both rulesets/m,
      /^rampart: planning web1: working out the blast radius/m,
    ],
  },
};

beforeAll(() => ensureBuilt());

describe.each(Object.entries(COMMANDS))('rampart %s', (_name, { args, phases }) => {
  it('prints progress lines on stderr when asked to (as on a terminal), the same report on stdout', async () => {
    const [shown, plain, quiet] = await Promise.all([
      run({ RAMPART_PROGRESS: '1' }, ...args),
      run({}, ...args),
      run({ RAMPART_PROGRESS: '1' }, ...args, '--quiet'),
    ]);
    expect(shown.code, shown.stderr).toBeLessThan(2);
    for (const p of phases) expect(shown.stderr).toMatch(p);
    for (const line of shown.stderr.trimEnd().split('\n')) expect(line).toMatch(/^rampart: .* \(\d+\.\d s\)$/);
    expect(plain.stdout).toBe(shown.stdout);
    // Off a terminal nothing is printed; --quiet silences them even when asked for.
    expect(plain.stderr).toBe('');
    expect(quiet.stderr).toBe('');
    expect(quiet.stdout).toBe(shown.stdout);
    expect(quiet.code).toBe(shown.code);
  });
});
