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
import { ensureBuilt, rampart } from '../cli/cli.js';

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root (needs network namespaces)';
  for (const tool of ['nft', 'ip', 'ss', 'python3']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} not found`;
  }
  return undefined;
}
const SKIP = skipReason();
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

const sh = (argv: string[], input?: string) =>
  spawnSync(argv[0] ?? 'false', argv.slice(1), { encoding: 'utf8', timeout: 15_000, ...(input ? { input } : {}) });

let server: ChildProcess | undefined;

function deleteNamespace(): void {
  if (server?.pid !== undefined && server.exitCode === null) {
    try {
      process.kill(server.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  sh(['ip', 'netns', 'del', NS]);
}

async function waitForListener(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = sh(['ip', 'netns', 'exec', NS, 'ss', '-Hltn', `sport = :${port}`]);
    if (r.stdout.includes(`:${port}`)) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`nothing listens on ${port} in ${NS}`);
}

describe.skipIf(SKIP !== undefined)('rampart audit --live --netns (real kernel)', () => {
  beforeAll(async () => {
    ensureBuilt();
    process.on('exit', deleteNamespace);
    expect(sh(['ip', 'netns', 'add', NS]).status).toBe(0);
    expect(sh(['ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up']).status).toBe(0);
    const load = sh(['ip', 'netns', 'exec', NS, 'nft', '-f', '-'], RULESET);
    expect(load.stderr).toBe('');
    // Not via a shell: the PID is python's own, so killing it kills exactly the server.
    server = spawn('ip', ['netns', 'exec', NS, 'python3', '-m', 'http.server', '8080', '--bind', '0.0.0.0'], {
      stdio: 'ignore',
    });
    await waitForListener(8080);
  }, 180_000);

  afterAll(() => {
    deleteNamespace();
    expect(sh(['ip', 'netns', 'list']).stdout).not.toContain(NS);
  });

  it('reads the namespace ruleset and its listening sockets, and reports what the rules find', () => {
    const r = rampart('audit', '--live', '--netns', NS, '--format', 'json');
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

  it('prints a human report naming the live source, and exits 2 for a namespace that does not exist', () => {
    const r = rampart('audit', '--live', '--netns', NS, '--only', AUDIT_RULES.map((x) => x.id).join(','));
    expect(r.stdout.split('\n')[0]).toBe(`rampart audit live:${NS}`);
    const missing = rampart('audit', '--live', '--netns', `${NS}-gone`);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      `rampart: --netns ${NS}-gone: no such network namespace (ip netns list shows the existing ones)\n`,
    );
  });

  it('finds the server with the ruleset flushed too: nothing blocks it, so no listening-port finding', () => {
    expect(sh(['ip', 'netns', 'exec', NS, 'nft', 'flush', 'ruleset']).status).toBe(0);
    const r = rampart('audit', '--live', '--netns', NS, '--format', 'json');
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
