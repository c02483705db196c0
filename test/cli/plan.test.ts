/**
 * `rampart plan` offline. The first test starts the built CLI as its own process (a real start, its exit code and
 * stdio); the others share one process (cliRunner), as they are about what plan prints and its exit code.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner, ensureBuilt, main, rampart as rampartProcess } from './cli.js';

const outage = 'test/fixtures/nftables/founding-outage.nft';
const fixed = 'test/fixtures/queries/founding-fixed.nft';
const shop = 'test/fixtures/config/shop.yaml';
const change = 'test/fixtures/change';

beforeAll(() => {
  ensureBuilt();
  expect(existsSync(main)).toBe(true);
}, 180_000);

const rampart = cliRunner();
afterAll(() => rampart.close());

const plan = (...args: string[]) => rampart('plan', '--config', shop, '--host', 'web1', ...args);

describe('rampart plan (offline)', () => {
  it('prints a Markdown pull-request comment for the founding outage and exits 1 (blocked)', async () => {
    const r = await rampartProcess(
      'plan',
      '--config',
      shop,
      '--host',
      'web1',
      '--current',
      fixed,
      outage,
      '--format',
      'markdown',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')[0]).toBe('## Rampart plan: risk **critical** — ⛔ BLOCKED');
    expect(r.stdout).toContain('closes tcp/443 of service shop on web1 to the internet (was open)');
    expect(r.stdout).toMatch(/\| shop tcp\/80 \| service \| open \| closed \| 🔴 loses access \|/);
  });

  it('prints the plan as JSON (the stored form) and exits 0 for the fix', async () => {
    const r = await plan('--current', outage, fixed, '--format', 'json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const p = JSON.parse(r.stdout);
    expect(p.schema).toBe('rampart.plan/v1');
    expect(p.blocked).toBe(false);
    expect(p.hosts[0].host).toBe('web1');
    expect(p.hosts[0].firstRuleset).toBe(false);
    expect(p.hosts[0].changes[0]).toMatchObject({ hook: 'input', from: 'drop', to: 'accept' });
  });

  it('prints text without colour when stdout is not a terminal', async () => {
    const r = await plan('--current', fixed, `${change}/reordered.nft`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('\x1b[');
    expect(r.stdout.split('\n')[0]).toBe(
      'Plan: 1 host, 0 flow changes, 0 findings introduced, 0 fixed, risk low, not blocked',
    );
    expect(r.stdout).toContain('Flow changes: none (behaviour is the same)');
  });

  it('treats a missing --current as the host first ruleset', async () => {
    const r = await plan(outage, '--format', 'json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).hosts[0].firstRuleset).toBe(true);
  });

  it('exits 2 naming file:line:column for a bad desired ruleset', async () => {
    const r = await plan('--current', fixed, `${change}/invalid/bad.nft`);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^rampart: test\/fixtures\/change\/invalid\/bad\.nft:9:\d+: .*'acept'/);
  });

  it('exits 2 listing the declared hosts for an unknown --host', async () => {
    const r = await rampart('plan', '--config', shop, '--host', 'db1', fixed);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "--host 'db1': no such host in test/fixtures/config/shop.yaml; declared hosts: web1, web2",
    );
  });

  it('exits 2 without --config or --host, and for an unknown --format (as JSON for --format json errors)', async () => {
    expect((await rampart('plan', '--host', 'web1', fixed)).stderr).toContain('--config: required');
    expect((await rampart('plan', '--config', shop, fixed)).code).toBe(2);
    const f = await plan(fixed, '--format', 'yaml');
    expect(f.code).toBe(2);
    expect(f.stderr).toContain("--format 'yaml': unknown output format; expected one of text, json, markdown");
    const j = await plan('--current', 'no/such/file.nft', fixed, '--format', 'json');
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stderr).error.code).toBe('RAMPART_ERR_FILE');
  });
});
