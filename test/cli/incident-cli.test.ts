/**
 * `rampart incident` against a real server (issue 16): declare, list (exit 1 while one is open), ack, note, status,
 * assign, show with the timeline in the site's time zone, resolve, the postmortem in Markdown and JSON, an edit
 * through $EDITOR saved as the next version, and a viewer refused what an operator may do. Then the figures
 * (`rampart incidents stats --since 90d`, §6) of that incident, and an alert with its service's runbook
 * (`rampart alerts show FP`, §4).
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

let clock = Date.parse('2026-12-03T11:00:00.000Z');
const now = () => new Date(clock);

describe('rampart incident', () => {
  let h: Harness;
  let dir: string;
  const as = (user: 'vic' | 'alice' | 'bob', env: Record<string, string> = {}) => ({
    RAMPART_SERVER: h.url,
    RAMPART_TOKEN: h.tokens[user],
    ...env,
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-incident-cli-'));
    const config = join(dir, 'rampart.yaml');
    writeFileSync(
      config,
      `site: {name: shop, timezone: Europe/Istanbul}
hosts:
  - {name: web1, addresses: [192.0.2.11]}
services:
  - {name: shop, hosts: [web1], public: [tcp/80], runbook: runbooks/shop.md}
`,
    );
    mkdirSync(join(dir, 'runbooks'));
    writeFileSync(
      join(dir, 'runbooks', 'shop.md'),
      '# Shop down\n\n1. Acknowledge: `rampart incident ack ID`\n2. Read the timeline.\n\n   ```sh\n   rampart incident show ID\n   ```\n',
    );
    h = await startHarness('sqlite', { config, now });
    ensureBuilt();
  });
  afterAll(async () => {
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('declares, acts on and resolves an incident, and prints its timeline and postmortem', async () => {
    const denied = await rampartAsync(as('vic'), 'incident', 'declare', '--title', 'Shop down', '--sev', '1');
    expect(denied.code).toBe(3);
    const d = await rampartAsync(
      as('alice'),
      'incident',
      'declare',
      '--title',
      'Shop down',
      '--sev',
      '1',
      '--service',
      'shop',
    );
    expect(d.stderr).toBe('');
    expect(d.stdout).toBe('declared incident 1 SEV1 investigating: Shop down\n');
    const list = await rampartAsync(as('vic'), 'incident', 'list');
    expect(list.code).toBe(1);
    expect(list.stdout).toMatch(/^ID +SEV +STATUS +STARTED \(UTC\)/);
    expect(list.stdout).toMatch(/\n1 +SEV1 +investigating +2026-12-03 11:00 +- +shop/);

    clock += 5 * 60_000;
    expect((await rampartAsync(as('bob'), 'incident', 'ack', '1')).stdout).toBe(
      'incident 1 SEV1 investigating: Shop down (commander bob)\n',
    );
    expect((await rampartAsync(as('alice'), 'incident', 'note', '1', 'no', 'incoming', 'traffic')).stdout).toMatch(
      /^noted \(entry:\d+\)\n$/,
    );
    expect(
      (await rampartAsync(as('alice'), 'incident', 'update', '1', '--public', 'The shop is unreachable; we are on it.'))
        .stdout,
    ).toMatch(/^public update posted \(entry:\d+\); GET \/status\.json shows it\n$/);
    clock += 10 * 60_000;
    const st = await rampartAsync(
      as('alice'),
      'incident',
      'status',
      '1',
      '--status',
      'identified',
      '-m',
      'A firewall rule drops port 80.',
    );
    expect(st.stdout).toContain('identified');
    const bad = await rampartAsync(as('alice'), 'incident', 'status', '1', '--status', 'fixed');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/investigating.*identified.*monitoring.*resolved/);
    expect((await rampartAsync(as('alice'), 'incident', 'assign', '1', '--commander', 'carol')).stdout).toContain(
      '(commander carol)',
    );
    clock += 105 * 60_000;
    expect((await rampartAsync(as('alice'), 'incident', 'resolve', '1', '-m', 'Rule restored.')).stdout).toContain(
      'resolved',
    );

    const show = await rampartAsync(as('vic'), 'incident', 'show', '1');
    expect(show.stdout).toContain('MTTD 0 seconds, MTTA 5 minutes, MTTR 2 hours');
    expect(show.stdout).toContain('timeline (Europe/Istanbul; * starred, ! key moment):');
    expect(show.stdout).toMatch(
      /! 2026-12-03 14:05 GMT\+3 +\(11:05 UTC\) +bob acknowledged the incident +\[entry:\d+\]/,
    );

    const md = await rampartAsync(as('vic'), 'incident', 'postmortem', '1');
    expect(md.stdout.split('\n').filter((l) => l.startsWith('## '))).toEqual([
      '## Issue Summary',
      '## Timeline',
      '## Root Cause and Resolution',
      '## Corrective and Preventative Measures',
      '## TODO',
    ]);
    expect(md.stdout).toContain('The outage lasted for 2 hours, from 14:00 to 16:00 GMT+3');
    expect(md.stdout).toContain('- **Root Cause:** A firewall rule drops port 80.');
    const json = JSON.parse((await rampartAsync(as('vic'), 'incident', 'postmortem', '1', '--format', 'json')).stdout);
    expect(json).toMatchObject({ version: 1, json: { response: { mttdMs: 0, mttaMs: 300_000, mttrMs: 7_200_000 } } });

    // An editor that appends a line: the edit is saved as version 2.
    const editor = join(dir, 'editor.sh');
    writeFileSync(editor, '#!/bin/sh\necho "Reviewed by the team." >> "$1"\n');
    chmodSync(editor, 0o755);
    const ed = await rampartAsync(as('alice', { EDITOR: editor, VISUAL: '' }), 'incident', 'postmortem', '1', '--edit');
    expect(ed.stderr).toBe('');
    expect(ed.stdout).toBe('saved the postmortem of incident 1 as version 2\n');
    expect((await rampartAsync(as('vic'), 'incident', 'postmortem', '1')).stdout).toMatch(/Reviewed by the team\.\n$/);
    expect((await rampartAsync(as('vic'), 'incident', 'postmortem', '1', '--version', '1')).stdout).not.toContain(
      'Reviewed',
    );
    expect((await rampartAsync(as('vic'), 'incident', 'list')).code).toBe(0);
  });

  it("prints the figures since 90 days ago: the incident above's counts and MTTD, MTTA, MTTR", async () => {
    // The clock is at 13:00 UTC, two hours after the declaration: 90 days back is 2026-09-04 13:00.
    const s = await rampartAsync(as('vic'), 'incidents', 'stats', '--since', '90d');
    expect(s.stderr).toBe('');
    expect(s.code).toBe(0);
    const lines = s.stdout.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      '1 incident since 2026-09-04 13:00 UTC (0 open)',
      '  by severity: SEV1 1, SEV2 0, SEV3 0, SEV4 0',
      '  by service: shop 1',
      '',
    ]);
    expect(lines[4]).toMatch(/^ +MEDIAN +P90 +OF$/);
    // One incident: the median and the 90th percentile are its own figures.
    expect(lines[5]).toMatch(/^MTTD \(start to detected\) +0 seconds +0 seconds +1$/);
    expect(lines[6]).toMatch(/^MTTA \(detected to acknowledged\) +5 minutes +5 minutes +1$/);
    expect(lines[7]).toMatch(/^MTTR \(start to resolved\) +2 hours +2 hours +1$/);
    const json = JSON.parse((await rampartAsync(as('vic'), 'incidents', 'stats', '--since', '90d', '--json')).stdout);
    expect(json).toMatchObject({ total: 1, mttd: { median: 0 }, mtta: { median: 300 }, mttr: { median: 7200 } });
    // Before the incident began: none.
    expect((await rampartAsync(as('vic'), 'incidents', 'stats', '--since', '2026-12-03T12:00:00Z')).stdout).toMatch(
      /^0 incidents since 2026-12-03 12:00 UTC \(0 open\)\n/,
    );
    const bad = await rampartAsync(as('vic'), 'incidents', 'stats', '--since', '90days');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("query.since: '90days': unknown unit 'days'");
  });

  it("shows an alert with its service's runbook: the annotation, the steps and their commands", async () => {
    const fire = await h.call('prometheus', 'POST', '/alerts/alertmanager', {
      version: '4',
      alerts: [
        {
          status: 'firing',
          // a warning: below auto-declare's critical, so no incident comes of it
          labels: { alertname: 'ShopSlow', severity: 'warning', service: 'shop' },
          annotations: { summary: 'the shop answers in 3 s' },
          startsAt: new Date(clock).toISOString(),
        },
      ],
    });
    expect(fire.status).toBe(200);
    const listed = await h.call('vic', 'GET', '/alerts');
    const fp = listed.body.alerts.find((a: { labels: { alertname: string } }) => a.labels.alertname === 'ShopSlow')
      ?.fingerprint as string;
    expect(fp).toMatch(/^[0-9a-f]+$/);
    const shown = await rampartAsync(as('vic'), 'alerts', 'show', fp);
    expect(shown.stderr).toBe('');
    expect(shown.code).toBe(0);
    const lines = shown.stdout.split('\n');
    expect(lines[0]).toBe(`${fp} ShopSlow firing since 2026-12-03 13:00:00`);
    expect(lines).toContain('  summary: the shop answers in 3 s');
    expect(lines).toContain('  runbook: runbooks/shop.md');
    expect(shown.stdout).toContain(
      [
        'runbook: Shop down (runbooks/shop.md)',
        '  1. Acknowledge: `rampart incident ack ID`',
        '     $ rampart incident ack ID',
        '  2. Read the timeline.',
        '     $ rampart incident show ID',
      ].join('\n'),
    );
    const missing = await rampartAsync(as('vic'), 'alerts', 'show', '0123456789abcdef');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('0123456789abcdef');
  });
});
