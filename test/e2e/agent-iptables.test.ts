/**
 * The agent on an iptables host, in the shop lab: web2's firewall is iptables (nf_tables backend), web1's stays
 * nftables. A reviewed change goes in with iptables-restore of the filter table only (the nat table is left
 * alone), and the founding outage forced through on web2 is restored from the iptables-save snapshot by the agent.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASELINE_IPTABLES, type RampartLab, startRampart } from '../../src/lab/rampart-lab.js';
import { createShopLab, type ShopLab, shopLabUnavailable, startShop } from '../../src/lab/shop-lab.js';
import { ensureBuilt, main } from '../cli/cli.js';

const skip = shopLabUnavailable(['ip', 'haproxy', 'iptables-restore']);
if (skip && process.env.CI === 'true') throw new Error(`CI needs the iptables agent scenario: ${skip}`);

describe.skipIf(skip !== undefined)('agent on an iptables host (web2) in the shop lab', () => {
  let lab: ShopLab;
  let r: RampartLab;
  const file = (name: string, text: string) => {
    const p = join(lab.paths.dir, name);
    writeFileSync(p, text);
    return p;
  };
  const save = async () => (await lab.exec.web2.run(['iptables-save'])).stdout;
  async function land(path: string, reason: string, extra: string[] = []) {
    const p = await r.cli('alice', 'change', 'propose', path, '--host', 'web2', '--reason', reason, '--json');
    expect(p.code === 0 || p.code === 1, p.stderr).toBe(true);
    const id = String((JSON.parse(p.stdout) as { change: { id: number } }).change.id);
    if (p.code === 1)
      expect((await r.cli('admin', 'change', 'override', id, '--reason', 'lab: forcing the outage through')).code).toBe(
        0,
      );
    expect((await r.cli('bob', 'change', 'approve', id)).code).toBe(0);
    return r.cli('alice', 'change', 'apply', id, '--watch', ...extra);
  }

  beforeAll(async () => {
    ensureBuilt();
    lab = await createShopLab();
    await startShop(lab);
    // something the agent must never touch: a nat table of web2's own
    await lab.exec.web2.run(['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'eth0', '-j', 'RETURN']);
    r = await startRampart(lab, main, { confirmTimeoutSeconds: 10, pollMs: 300, firewalls: { web2: 'iptables' } });
  });
  afterAll(async () => lab?.destroy());

  it('applies a reviewed iptables-save change to the filter table only', async () => {
    const w = await land(file('web2.rules', BASELINE_IPTABLES), 'take web2 under management');
    expect(w.code, w.stdout + w.stderr).toBe(0);
    const live = await save();
    expect(live).toContain('--dport 80');
    expect(live).toContain(':INPUT DROP');
    expect(live).toMatch(/\*nat[\s\S]*-A POSTROUTING -o eth0 -j RETURN/);
    expect(await lab.backendStatus()).toMatchObject({ web2: 'UP' });
  });

  it('restores the iptables snapshot when the founding outage is forced through', async () => {
    const before = await save();
    const outage = BASELINE_IPTABLES.replace(/^-A INPUT -p tcp -m tcp --dport 80 .*\n/m, '');
    const w = await land(file('outage.rules', outage), 'block all incoming traffic', [
      '--emergency',
      'lab: replaying the outage on iptables',
    ]);
    expect(w.code).toBe(1);
    expect(w.stdout).toMatch(/web2\]\s+rolled-back/);
    const after = await save();
    const rules = (t: string) => t.split('\n').filter((l) => l.startsWith('-A') || l.startsWith(':'));
    expect(rules(after).map((l) => l.replace(/\[\d+:\d+\]/, ''))).toEqual(
      rules(before).map((l) => l.replace(/\[\d+:\d+\]/, '')),
    );
  });
});
