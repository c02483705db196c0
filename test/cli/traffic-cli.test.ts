/**
 * `rampart traffic` (issue 14, §3) against a real server: the rate now per service and host, the expectation once
 * the detector has history, a sparkline of the last hour, JSON for scripts, exit 1 during a drop.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../server/harness.js';
import { cliRunner, ensureBuilt } from './cli.js';

/**
 * The CLI runs in one shared process (test/cli/cli.ts `cliRunner()`): these tests are about a command's output and
 * exit code against a real server, and loading the client's modules again for every run was most of their CPU.
 */
const runner = cliRunner();
afterAll(() => runner.close());
const rampartAsync = (env: Record<string, string>, ...args: string[]) =>
  runner.withEnv({ NO_COLOR: '1', ...env }, ...args);

const cli = rampartAsync;

const W = 5000;

describe('rampart traffic', () => {
  let h: Harness;
  let dir: string;
  let env: Record<string, string>;
  /** The server's clock: set to the end of what the agent has sent (the CLI itself reads no clock for this). */
  let clock = Date.now();
  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'rampart-traffic-cli-'));
    writeFileSync(
      join(dir, 'rampart.yaml'),
      `hosts:
  - {name: web1, addresses: [192.0.2.11]}
services:
  - name: shop
    hosts: [web1]
    public: [tcp/80]
    traffic: {drop: {slot: 10s}}
  - name: quiet
    hosts: [web1]
    public: [tcp/8080]
    traffic: {}
`,
    );
    h = await startHarness('sqlite', { config: join(dir, 'rampart.yaml'), now: () => new Date(clock) });
    env = { RAMPART_SERVER: h.url, RAMPART_TOKEN: h.tokens.vic, XDG_CONFIG_HOME: dir };
  });
  afterAll(async () => {
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows the rate now, the expectation and the last hour; exits 1 during a drop', async () => {
    const end = Math.floor(Date.now() / W) * W;
    // 15 minutes of steady traffic that ended just now (the windows are in the past, as an agent sends them)
    const steady = Array.from({ length: 180 }, (_, i) => ({
      service: 'shop',
      source: 'counters',
      start: end - (180 - i) * W,
      ms: W,
      requests: 100 + (i % 5) * 5,
    }));
    for (let i = 0; i < steady.length; i += 60) {
      const r = await h.call('web1', 'POST', '/agent/traffic', { samples: steady.slice(i, i + 60) });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    clock = end;
    const ok = await cli(env, 'traffic');
    expect(ok.code, ok.stderr).toBe(0);
    const lines = ok.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^SERVICE\s+HOST\s+SOURCE\s+RATE\s+EXPECTED\s+STATE\s+LAST HOUR$/);
    expect(ok.stdout).toMatch(/^shop\s+\(all\)\s+\S+\/s\s+\S+\/s\s+normal\s+[▁▂▃▄▅▆▇█ ]+$/m);
    expect(ok.stdout).toMatch(/^\s+web1\s+counters\s+\S+\/s\s+\S+\/s\s+normal/m);
    expect(ok.stdout).toMatch(/^quiet\s+\(all\)\s+-\s+-\s+no-data/m);

    // the firewall drops everything: a minute of zeros
    const zeros = Array.from({ length: 12 }, (_, i) => ({
      service: 'shop',
      source: 'counters',
      start: end + i * W,
      ms: W,
      requests: 0,
    }));
    clock = end + 12 * W;
    expect((await h.call('web1', 'POST', '/agent/traffic', { samples: zeros })).body.accepted).toBe(12);
    const down = await cli(env, 'traffic', 'shop');
    expect(down.code).toBe(1);
    const all = /^shop\s+\(all\)\s+(\S+)\/s\s+(\S+)\/s\s+DROP/m.exec(down.stdout);
    expect(all, down.stdout).not.toBeNull();
    expect(Number(all?.[1])).toBeLessThan(5); // the last minute: zeros (and at most one window of the steady rate)
    expect(Number(all?.[2])).toBeGreaterThan(15);
    expect(down.stdout).toMatch(/shop@web1: ~100% below expected since /);
    expect(down.stdout).not.toMatch(/^quiet/m);

    const json = await cli(env, 'traffic', 'shop', '--json');
    expect(json.code).toBe(1);
    const body = JSON.parse(json.stdout);
    expect(body.traffic[0]).toMatchObject({ service: 'shop', state: 'drop' });
    expect(body.lastHour.shop.length).toBeGreaterThan(14);

    const events = await cli(env, 'events', '--kind', 'traffic.drop');
    expect(events.code, events.stderr).toBe(0);
    expect(events.stdout).toMatch(
      /^\d+ {2}\S+Z {2}traffic\.drop {2}service:shop {2}shop@web1: traffic ~100% below expected since /m,
    );
    expect((await cli(env, 'events', '--kind', 'traffic.recovered')).stdout).toBe('no events\n');
    const bad = await cli(env, 'events', '--limit', '0');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/limit/);
    const none = await cli(env, 'traffic', 'nothing');
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/no traffic for service 'nothing'; measured services: shop, quiet/);
  });
});
