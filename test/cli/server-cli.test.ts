/**
 * The server from the command line, as an operator meets it: `rampart init` prints the first admin token once,
 * `rampart serve` runs the API, `rampart token` and `rampart change` talk to it, SIGHUP reloads the config (an
 * invalid file is refused and the old one stays), `rampart audit-log verify` finds tampering, and a server killed
 * with SIGKILL in the middle of writes comes back with nothing corrupt or half-recorded.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseToken } from '../../src/server/auth.js';
import { selfSigned } from '../alerting/receivers.js';
import { cliRunner, ensureBuilt, main, rampartAsync as realCli, root } from './cli.js';

/**
 * The CLI runs in one shared process (test/cli/cli.ts `cliRunner()`): these tests are about a command's output and
 * exit code against a real server, and loading the client's modules again for every run was most of their CPU.
 */
const runner = cliRunner();
afterAll(() => runner.close());
const rampartAsync = (env: Record<string, string>, ...args: string[]) =>
  runner.withEnv({ NO_COLOR: '1', ...env }, ...args);

const fixtures = join(root, 'test', 'fixtures');
const OUTAGE = join(fixtures, 'nftables', 'founding-outage.nft');
const FIXED = join(fixtures, 'queries', 'founding-fixed.nft');

/** Runs the CLI asynchronously (the server runs in this same test process's children). */
const cli = rampartAsync;

interface Server {
  proc: ChildProcess;
  url: string;
  log: () => string;
}

function serve(dir: string, config: string, extra: string[] = []): Promise<Server> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [
        main,
        'serve',
        '--data-dir',
        dir,
        '--config',
        config,
        '--listen',
        '127.0.0.1:0',
        '--log-level',
        'warn',
        ...extra,
      ],
      {
        cwd: root,
      },
    );
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}${err}`)), 90_000);
    proc.stderr?.on('data', (d) => (err += d));
    proc.stdout?.on('data', (d) => {
      out += d;
      const m = /listening on (https?:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[1] as string, log: () => out + err });
      }
    });
    proc.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}${err}`)));
  });
}

function stop(s: Server | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((done) => {
    if (!s || s.proc.exitCode !== null || s.proc.signalCode !== null) return done();
    s.proc.once('exit', () => done());
    s.proc.kill(signal);
  });
}

describe('rampart serve, init, token, change, audit-log', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-cli-server-'));
  const config = join(dir, 'rampart.yaml');
  let server: Server | undefined;
  let admin = '';
  const env = (token: string) => ({ RAMPART_SERVER: server?.url ?? '', RAMPART_TOKEN: token });

  beforeAll(async () => {
    ensureBuilt();
    copyFileSync(join(fixtures, 'config', 'shop.yaml'), config);
  });
  afterAll(async () => {
    await stop(server);
    rmSync(dir, { recursive: true, force: true });
  });

  it('init creates the store and prints the first admin token once', async () => {
    const r = await cli({}, 'init', '--data-dir', dir, '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { token: string; role: string };
    expect(out.role).toBe('admin');
    admin = out.token;
    const again = await cli({}, 'init', '--data-dir', dir);
    expect(again.code).toBe(5);
    expect(again.stderr).toMatch(/already initialised/);
    // the secret is nowhere in the store file
    expect(readFileSync(join(dir, 'rampart.db')).includes(parseToken(admin)?.secret as string)).toBe(false);
  });

  it('serve on an address already in use says so and exits, leaving nothing running', async () => {
    const taken = createServer();
    await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
    const port = (taken.address() as { port: number }).port;
    try {
      const p = spawn(
        process.execPath,
        [main, 'serve', '--data-dir', dir, '--config', config, '--listen', `127.0.0.1:${port}`],
        { cwd: root, env: { ...process.env, NO_COLOR: '1' } },
      );
      let stderr = '';
      p.stderr.on('data', (d) => (stderr += d));
      // before the fix it reported the error and kept running: stopped here so a failure leaves no process behind
      const kill = setTimeout(() => p.kill('SIGKILL'), 90_000);
      const code = await new Promise<number | null>((done) => p.on('close', (c) => done(c)));
      clearTimeout(kill);
      expect(code).toBe(2);
      expect(stderr).toContain(`--listen 127.0.0.1:${port}: cannot listen: the address is already in use`);
    } finally {
      await new Promise((ok) => taken.close(ok));
    }
  });

  it('runs a change from proposal to the queue through the CLI, refusing the founding outage', async () => {
    server = await serve(dir, config);
    const alice = JSON.parse(
      (await cli(env(admin), 'token', 'create', '--name', 'alice', '--role', 'operator', '--json')).stdout,
    ).token;
    const bob = JSON.parse(
      (await cli(env(admin), 'token', 'create', '--name', 'bob', '--role', 'approver', '--json')).stdout,
    ).token;
    const list = await cli(env(admin), 'token', 'list');
    expect(list.stdout).toMatch(/alice\s+operator/);

    const outage = await cli(
      env(alice),
      'change',
      'propose',
      OUTAGE,
      '--host',
      'web1',
      '--reason',
      'block all incoming',
    );
    expect(outage.code).toBe(1);
    expect(outage.stdout).toMatch(/BLOCKED/);
    const refused = await cli(env(bob), 'change', 'approve', '1');
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/blocked/);

    const fixed = await cli(
      env(alice),
      'change',
      'propose',
      FIXED,
      '--group',
      'web',
      '--reason',
      'restore the shop',
      '--json',
    );
    expect(fixed.code).toBe(0);
    const id = String(JSON.parse(fixed.stdout).change.id);
    const own = await cli(env(alice), 'change', 'approve', id);
    expect(own.code).toBe(3); // an operator may not approve at all
    expect(own.stderr).toMatch(/needs the approver role/);
    const pinned = await cli(env(bob), 'change', 'approve', id, '--plan', '999');
    expect(pinned.code).toBe(5);
    expect(pinned.stderr).toMatch(/you approved plan 999 of change \d+, but its current plan is \d+/);
    const ok = await cli(env(bob), 'change', 'approve', id, '--comment', 'looks right');
    expect(ok.code).toBe(0);
    // the reviewer saw what they approved: the plan's id and summary, before the answer
    expect(ok.stderr).toMatch(/^change \d+: plan \d+ \(.*\), ruleset sha256 [0-9a-f]{12}, by alice\n {2}2 hosts, /);
    expect(ok.stdout).toMatch(/change \d+: approved/);
    const md = await cli(env(bob), 'change', 'show', id, '--format', 'markdown');
    expect(md.stdout).toMatch(/^#/m);
    const applied = await cli(env(alice), 'change', 'apply', id);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/1\. web1\s+queued\n\s+2\. web2\s+queued/);
    const listed = await cli(env(bob), 'change', 'list');
    expect(listed.stdout).toMatch(/applying\s+group:web/);
    const noServer = await cli({ RAMPART_SERVER: 'http://127.0.0.1:9', RAMPART_TOKEN: bob }, 'change', 'list');
    expect(noServer.code).toBe(6);
    expect(noServer.stderr).toMatch(/cannot reach the Rampart server/);
  });

  it('reloads the config on SIGHUP and keeps the old one when the new file is invalid', async () => {
    const site = async () =>
      (
        (await (
          await fetch(`${server?.url}/api/v1/config`, { headers: { authorization: `Bearer ${admin}` } })
        ).json()) as { site: string }
      ).site;
    expect(await site()).toBe('shop');
    const good = readFileSync(config, 'utf8');
    writeFileSync(config, good.replace('site: shop', 'site: shop\nsites: typo'));
    server?.proc.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 500));
    expect(await site()).toBe('shop');
    expect(server?.log()).toMatch(/config reload refused/);
    writeFileSync(config, good.replace('site: shop', 'site: shop-eu'));
    server?.proc.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 500));
    expect(await site()).toBe('shop-eu');
  });

  it('survives SIGKILL in the middle of writes: nothing corrupt or half-recorded', async () => {
    const alice = JSON.parse(
      (await cli(env(admin), 'token', 'create', '--name', 'alice2', '--role', 'operator', '--json')).stdout,
    ).token;
    const ruleset = readFileSync(FIXED, 'utf8');
    const stored: number[] = [];
    for (let round = 0; round < 3; round++) {
      const url = server?.url as string;
      const post = (path: string, token: string, body: unknown) =>
        fetch(`${url}/api/v1${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }).catch(() => undefined);
      // a stream of cheap writes (token creation) and a few expensive ones (proposals), until the kill
      let alive = true;
      const streams = Array.from({ length: 4 }, async (_, k) => {
        for (let i = 0; alive; i++) await post('/tokens', admin, { name: `crash-${round}-${k}-${i}`, role: 'viewer' });
      });
      const fire = Array.from({ length: 6 }, () =>
        post('/changes', alice, { target: { group: 'web' }, ruleset, reason: `crash round ${round}` }),
      );
      await new Promise((r) => setTimeout(r, 300 + round * 400));
      await stop(server, 'SIGKILL');
      alive = false;
      await Promise.all([...fire, ...streams]);
      const verify = await cli({}, 'audit-log', 'verify', '--data-dir', dir, '--json');
      expect(verify.code).toBe(0);
      expect(JSON.parse(verify.stdout).ok).toBe(true);
      server = await serve(dir, config);
      const { changes } = (await (
        await fetch(`${server.url}/api/v1/changes?limit=500`, { headers: { authorization: `Bearer ${admin}` } })
      ).json()) as {
        changes: { id: number; state: string }[];
      };
      // every stored change has its plan and its audit entries: propose and plan land together or not at all
      const log = (await (
        await fetch(`${server.url}/api/v1/audit-log`, { headers: { authorization: `Bearer ${admin}` } })
      ).json()) as {
        entries: { action: string; target: string }[];
      };
      const { tokens } = (await (
        await fetch(`${server.url}/api/v1/tokens`, { headers: { authorization: `Bearer ${admin}` } })
      ).json()) as {
        tokens: { id: string }[];
      };
      stored.push(changes.length + tokens.length);
      // a proposal whose plan outlived the kill is planned again by the restarted server
      const planning = changes.filter((c) => c.state === 'planning').map((c) => c.id);
      for (let i = 0; planning.length > 0 && i < 600; i++) {
        await new Promise((r) => setTimeout(r, 200));
        const left = (await (
          await fetch(`${server.url}/api/v1/changes?state=planning`, { headers: { authorization: `Bearer ${admin}` } })
        ).json()) as { changes: unknown[] };
        if (left.changes.length === 0) break;
      }
      const settled = (await (
        await fetch(`${server.url}/api/v1/audit-log`, { headers: { authorization: `Bearer ${admin}` } })
      ).json()) as { entries: { action: string; target: string }[] };
      log.entries = settled.entries;
      for (const t of tokens) {
        expect(log.entries.filter((e) => e.target === `token:${t.id}` && e.action === 'token.create')).toHaveLength(1);
      }
      for (const c of changes) {
        expect(c.state).not.toBe('proposed');
        expect(log.entries.filter((e) => e.target === `change:${c.id}` && e.action === 'change.propose')).toHaveLength(
          1,
        );
        expect(log.entries.filter((e) => e.target === `change:${c.id}` && e.action === 'change.plan')).toHaveLength(1);
      }
    }
    // writes landed between kills (the kills hit a server that was busy writing, not an idle one)
    console.log(`crash test: records (changes + tokens) after each SIGKILL: ${stored.join(', ')}`);
    expect(stored[2]).toBeGreaterThan(stored[0] as number);
  });

  it('audit-log verify names the first altered entry', async () => {
    await stop(server);
    server = undefined;
    const db = new Database(join(dir, 'rampart.db'));
    db.prepare("update audit_log set actor = 'mallory' where seq = 3").run();
    db.close();
    const r = await cli({}, 'audit-log', 'verify', '--data-dir', dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/entry 3 altered/);
    const jsonl = await cli({}, 'audit-log', 'export', '--data-dir', dir);
    expect(jsonl.stdout.split('\n')[2]).toMatch(/"actor":"mallory"/);
  });
});

describe('the trail kept honest: TLS, the data directory, the head kept elsewhere, edited records', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-cli-trail-'));
  const data = join(dir, 'data');
  const config = join(dir, 'rampart.yaml');
  let server: Server | undefined;
  afterAll(async () => {
    await stop(server);
    rmSync(dir, { recursive: true, force: true });
  });

  it('tightens a data directory others can read, serves HTTPS, and catches every kind of tampering', async () => {
    ensureBuilt();
    copyFileSync(join(fixtures, 'config', 'shop.yaml'), config);
    mkdirSync(data, { mode: 0o755 });
    chmodSync(data, 0o755);
    const init = await cli({}, 'init', '--data-dir', data, '--json');
    expect(init.code).toBe(0);
    expect(init.stderr).toMatch(/was readable or writable by others \(mode 755\); tightened to 700/);
    expect(statSync(data).mode & 0o777).toBe(0o700);
    const admin = (JSON.parse(init.stdout) as { token: string }).token;

    // HTTPS with a self-signed certificate the client is told to trust
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    // the one openssl recipe the notifier tests use too (a ~50 ms run)
    const pem = selfSigned();
    writeFileSync(cert, pem.cert);
    writeFileSync(key, pem.key, { mode: 0o600 });
    server = await serve(data, config, ['--tls-cert', cert, '--tls-key', key]);
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const tls = { RAMPART_SERVER: server.url, RAMPART_TOKEN: admin, NODE_EXTRA_CA_CERTS: cert };
    // NODE_EXTRA_CA_CERTS is read when node starts: real processes, not the shared runner
    const proposed = await realCli(tls, 'change', 'propose', FIXED, '--host', 'web1', '--reason', 'over TLS', '--json');
    expect(proposed.code, proposed.stderr).toBe(0);
    expect((await realCli(tls, 'token', 'create', '--name', 'carol', '--role', 'approver')).code).toBe(0);
    const bad = await cli({}, 'serve', '--data-dir', data, '--tls-cert', cert);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/give both --tls-cert FILE and --tls-key FILE/);
    await stop(server);
    server = undefined;

    // the head, kept elsewhere
    const head = await cli({}, 'audit-log', 'head', '--data-dir', data);
    expect(head.stdout).toMatch(/^\d+ [0-9a-f]{64}\n$/);
    const kept = join(dir, 'head.txt');
    writeFileSync(kept, head.stdout);
    expect((await cli({}, 'audit-log', 'verify', '--data-dir', data, '--expect-head-file', kept)).code).toBe(0);

    // the last entry removed and the head rewritten to match: the chain alone looks intact, the kept head does not
    const db = new Database(join(data, 'rampart.db'));
    const [seq] = head.stdout.split(' ');
    const prev = db.prepare('select hash from audit_log where seq = ?').get(Number(seq) - 1) as { hash: string };
    db.prepare('delete from audit_log where seq = ?').run(Number(seq));
    db.prepare('update audit_head set last_seq = ?, last_hash = ?').run(Number(seq) - 1, prev.hash);
    expect((await cli({}, 'audit-log', 'verify', '--data-dir', data)).code).toBe(0);
    const rewritten = await cli({}, 'audit-log', 'verify', '--data-dir', data, '--expect-head', head.stdout.trim());
    expect(rewritten.code).toBe(1);
    expect(rewritten.stdout).toMatch(
      /TAMPERED: entry \d+ removed: entry \d+, the head kept elsewhere, is not in the log/,
    );

    // a change's ruleset edited in the table: the chain recorded another hash
    db.prepare("update changes set ruleset = ruleset || '# and a backdoor' where id = 1").run();
    const edited = await cli({}, 'audit-log', 'verify', '--data-dir', data);
    expect(edited.code).toBe(1);
    expect(edited.stdout).toMatch(/the ruleset of change 1 .* the changes table was edited outside the server/);

    // the head row deleted: reported as tampering, not as an internal error
    db.prepare('delete from audit_head').run();
    db.close();
    const headless = await cli({}, 'audit-log', 'verify', '--data-dir', data);
    expect(headless.code).toBe(1);
    expect(headless.stdout).toMatch(/TAMPERED: .*head row is missing/);
    expect((await cli({}, 'audit-log', 'head', '--data-dir', data)).code).toBe(1);
  });
});
