/**
 * `rampart audit --live --netns NAME` against a real kernel: a namespace created here gets a ruleset (input policy
 * drop, only SSH accepted) and a web server on 8080, and the audit must read both and report the blocked listener.
 *
 * Safety: everything happens inside a namespace created (and always deleted) here; the host namespace is never
 * read or changed. The web server is killed by its PID. Runs only as root with nft, ip, ss and python3.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_RULES } from '../../src/analysis/audit/catalogue.js';
import { ensureBuilt, rampart, run } from '../cli/cli.js';

async function skipReason(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'not Linux';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root (needs network namespaces)';
  for (const tool of ['nft', 'ip', 'ss', 'python3']) {
    if ((await run('sh', ['-c', `command -v ${tool}`], { input: '' })).code !== 0) return `${tool} not found`;
  }
  return undefined;
}
const SKIP = await skipReason();
if (SKIP) console.warn(`live audit suite skipped: ${SKIP}`);

const NS = `rampart-live-${randomBytes(4).toString('hex')}`;
const RULESET = `table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname "lo" accept
    tcp dport 22 accept comment "ssh for the admins"
  }
}
`;

/** A command that does not block the worker (vitest must hear from it), killed past 15 s. */
const sh = (argv: string[], input = '') => run(argv[0] ?? 'false', argv.slice(1), { input, timeoutMs: 15_000 });

let server: ChildProcess | undefined;

function killServer(): void {
  if (server?.pid !== undefined && server.exitCode === null) {
    try {
      process.kill(server.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function deleteNamespace(): Promise<void> {
  killServer();
  await sh(['ip', 'netns', 'del', NS]);
}

/** The last resort when the worker exits without afterAll: an exit handler can only run synchronous work. */
function deleteNamespaceOnExit(): void {
  killServer();
  spawnSync('ip', ['netns', 'del', NS], { timeout: 15_000 });
}

async function waitForListener(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await sh(['ip', 'netns', 'exec', NS, 'ss', '-Hltn', `sport = :${port}`]);
    if (r.stdout.includes(`:${port}`)) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`nothing listens on ${port} in ${NS}`);
}

describe.skipIf(SKIP !== undefined)('rampart audit --live --netns (real kernel)', () => {
  beforeAll(async () => {
    ensureBuilt();
    process.on('exit', deleteNamespaceOnExit);
    expect((await sh(['ip', 'netns', 'add', NS])).code).toBe(0);
    expect((await sh(['ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up'])).code).toBe(0);
    const load = await sh(['ip', 'netns', 'exec', NS, 'nft', '-f', '-'], RULESET);
    expect(load.stderr).toBe('');
    // Not via a shell: the PID is python's own, so killing it kills exactly the server.
    server = spawn('ip', ['netns', 'exec', NS, 'python3', '-m', 'http.server', '8080', '--bind', '0.0.0.0'], {
      stdio: 'ignore',
    });
    await waitForListener(8080);
  }, 180_000);

  afterAll(async () => {
    await deleteNamespace();
    process.off('exit', deleteNamespaceOnExit);
    expect((await sh(['ip', 'netns', 'list'])).stdout).not.toContain(NS);
  });

  it('reads the namespace ruleset and its listening sockets, and reports what the rules find', async () => {
    const r = await rampart('audit', '--live', '--netns', NS, '--format', 'json');
    expect(r.stderr).toBe('');
    const j = JSON.parse(r.stdout);
    expect(j.summary.file).toBe(`live:${NS}`);
    // The live read is the ruleset loaded above: a finding locates its rule in the live source.
    const ids = new Set(AUDIT_RULES.map((x) => x.id));
    if (ids.has('listening-port-blocked')) {
      const blocked = j.findings.filter((f: { rule: string }) => f.rule === 'listening-port-blocked');
      expect(blocked.length).toBeGreaterThan(0);
      expect(JSON.stringify(blocked)).toContain('8080');
      expect(j.summary.failed).toBe(true);
      expect(r.code).toBe(1);
    } else {
      expect(j.skipped.map((s: { rule: string }) => s.rule)).not.toContain('listening-port-blocked');
    }
    // A live audit never skips a rule for want of listening sockets.
    expect(j.skipped.every((s: { reason: string }) => !s.reason.includes('live'))).toBe(true);
    // Only SSH (an admin port) is open while a service listens: the founding outage, critical.
    if (ids.has('all-inbound-blocked')) {
      expect(j.findings.find((f: { rule: string }) => f.rule === 'all-inbound-blocked')).toMatchObject({
        severity: 'critical',
        location: { file: `live:${NS}` },
      });
    }
  });

  it('prints a human report naming the live source, and exits 2 for a namespace that does not exist', async () => {
    const r = await rampart('audit', '--live', '--netns', NS, '--only', AUDIT_RULES.map((x) => x.id).join(','));
    expect(r.stdout.split('\n')[0]).toBe(`rampart audit live:${NS}`);
    const missing = await rampart('audit', '--live', '--netns', `${NS}-gone`);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      `rampart: --netns ${NS}-gone: no such network namespace (ip netns list shows the existing ones)\n`,
    );
  });

  it('finds the server with the ruleset flushed too: nothing blocks it, so no listening-port finding', async () => {
    expect((await sh(['ip', 'netns', 'exec', NS, 'nft', 'flush', 'ruleset'])).code).toBe(0);
    const r = await rampart('audit', '--live', '--netns', NS, '--format', 'json');
    expect(r.stderr).toBe('');
    const j = JSON.parse(r.stdout);
    const rules = j.findings.map((f: { rule: string }) => f.rule);
    expect(rules).not.toContain('listening-port-blocked');
    expect(rules).not.toContain('all-inbound-blocked');
    // No firewall at all is the most exposed host there is (issue 20): one unfiltered-input finding, high.
    expect(rules).toEqual(['unfiltered-input']);
    expect(r.code).toBe(1);
  });
});
