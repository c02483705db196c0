import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseIntents } from '../analysis/intents.js';
import { UserError } from '../errors.js';
import { loadRuleset } from '../firewall/load.js';
import type { Ruleset } from '../firewall/model.js';
import { parseRuleset } from '../firewall/parse.js';
import { type FailingFlow, findSuspects, type SuspectCandidate } from './suspect.js';

const root = join(import.meta.dirname, '..', '..');
const load = (rel: string) => loadRuleset([join(root, rel)]);
const text = (rel: string) => readFileSync(join(root, rel), 'utf8');

const OUTAGE = 'test/fixtures/nftables/founding-outage.nft';
const FIXED = 'test/fixtures/queries/founding-fixed.nft';
const WEB = 'test/fixtures/queries/web.nft';

// The founding outage: 14:00 GMT+3 on 2023-05-10 is 11:00 UTC.
const START = '2023-05-10T11:00:00.000Z';
const at = (hhmm: string) => `2023-05-10T${hhmm}:00.000Z`;

const shop: FailingFlow = {
  service: 'shop',
  proto: 'tcp',
  to: ['192.0.2.10'],
  ports: [80, 443],
  from: ['198.51.100.7', '203.0.113.9'],
};

/** The out-of-band edit of the founding outage: the desired (fixed) ruleset became the outage's. */
const founding: SuspectCandidate = {
  id: 'drift-web1-1',
  kind: 'drift',
  host: 'web1',
  at: at('10:58'),
  author: null,
  approvers: [],
  reason: null,
  before: load(FIXED),
  after: load(OUTAGE),
};

/** A change that closes ICMP echo and narrows SSH: restrictive, but nowhere near the shop's ports. */
const unrelated: SuspectCandidate = {
  id: 'chg-7',
  kind: 'change',
  host: 'web1',
  at: at('10:59'),
  author: 'alice',
  approvers: ['bob'],
  reason: 'close ping, narrow ssh',
  before: load(WEB),
  after: parseRuleset(
    text(WEB)
      .replace('\t\ticmp type echo-request accept\n', '')
      .replace('198.51.100.0/24 tcp dport 22', '198.51.100.0/25 tcp dport 22'),
    'web-unrelated.nft',
  ),
};

/** A change that rejects HTTPS from a scanner's network (203.0.113.0/24), a rule with a file and line. */
const scanner: SuspectCandidate = {
  id: 'chg-9',
  kind: 'change',
  host: 'web1',
  at: at('10:30'),
  author: 'erin',
  approvers: ['frank'],
  reason: 'block a scanner',
  before: load(WEB),
  after: parseRuleset(
    text(WEB).replace(
      '\t\ttcp dport { 80, 443 } accept\n',
      '\t\tip saddr 203.0.113.0/24 tcp dport 443 reject\n\t\ttcp dport { 80, 443 } accept\n',
    ),
    'web-scanner.nft',
  ),
};

/** A change that only opens something (the fix of the founding outage, applied as a change). */
const opening: SuspectCandidate = {
  id: 'chg-8',
  kind: 'change',
  host: 'web2',
  at: at('10:50'),
  author: 'carol',
  approvers: ['dave'],
  reason: 'open http and https',
  before: load(OUTAGE),
  after: load(FIXED),
};

describe('the suspected change', () => {
  it('names the founding outage’s drift, with the dropping policy, the rule it lost and an example packet', () => {
    const r = findSuspects([shop], [unrelated, opening, founding], START);
    expect(r.verdict).toBe('suspected');
    expect(r.candidates.map((c) => [c.id, c.suspected])).toEqual([
      ['drift-web1-1', true],
      // Not suspected: ranked by time, the nearest before the start first.
      ['chg-7', false],
      ['chg-8', false],
    ]);
    const top = r.candidates[0];
    expect(top?.rule).toBe('policy drop of inet filter/input');
    const b = top?.breaks[0];
    expect(b?.hook).toBe('input');
    expect(b?.to).toBe('drop');
    expect(b?.acceptedBefore[0]).toMatchObject({
      kind: 'rule',
      verdict: 'accept',
      file: expect.stringContaining('founding-fixed.nft'),
      line: 12,
      text: 'tcp dport { 80, 443 } accept',
    });
    // The example is one of the failing packets: from a vantage point, to the shop, on its ports.
    expect(b?.examplePacket?.daddr).toBe('192.0.2.10');
    expect(['198.51.100.7', '203.0.113.9']).toContain(b?.examplePacket?.saddr);
    expect([80, 443]).toContain(b?.examplePacket?.dport);
    expect(b?.examplePacket?.ctState).toBe('new');
    // Every failing packet is broken.
    expect(b?.packets).toBe(b?.flowPackets);
    expect(top?.why).toContain('out-of-band edit (drift) on web1');
    expect(top?.why).toContain(
      'turns all of shop: tcp port 80, 443 to 192.0.2.10 from 198.51.100.7, 203.0.113.9 from accept to drop',
    );
    expect(r.text).toMatch(/^Suspected: out-of-band edit \(drift\) on web1 /);
    expect(r.candidates[1]?.why).toBe(
      'change chg-7 on web1 by alice, approved by bob: its semantic diff turns none of the failing flows from accept to drop',
    );
  });

  it('reports the dropping rule by file and line, and the author and approvers, for a change that rejects', () => {
    const r = findSuspects([shop], [unrelated, scanner], START);
    expect(r.candidates.map((c) => c.id)).toEqual(['chg-9', 'chg-7']);
    const top = r.candidates[0];
    expect(top?.suspected).toBe(true);
    expect(top?.rule).toMatch(/^web-scanner\.nft:10: ip saddr 203\.0\.113\.0\/24 tcp dport 443 reject/);
    expect(top?.breaks[0]?.to).toBe('reject');
    // Only the vantage point in the scanner's network, on 443, is broken.
    expect(top?.breaks[0]?.examplePacket).toMatchObject({ saddr: '203.0.113.9', daddr: '192.0.2.10', dport: 443 });
    // One source of two, one port of two: a quarter of the failing packets.
    expect((top?.breaks[0]?.packets ?? 0n) * 4n).toBe(top?.breaks[0]?.flowPackets);
    expect(top?.why).toContain('turns 25% of shop: tcp port 80, 443');
    expect(top?.why).toContain('change chg-9 on web1 by erin, approved by frank');
  });

  it('says plainly when no change explains the failure', () => {
    const r = findSuspects([shop], [opening, unrelated], START);
    expect(r.verdict).toBe('none');
    expect(r.candidates.every((c) => !c.suspected)).toBe(true);
    expect(r.candidates.map((c) => c.id)).toEqual(['chg-7', 'chg-8']);
    expect(r.text).toContain('no change explains the failure');
    expect(findSuspects([shop], [], START).verdict).toBe('none');
    // A rewrite that changes no behaviour is not suspected either.
    const rewrite = { ...unrelated, id: 'chg-10', after: load('test/fixtures/queries/web-restructured.nft') };
    const w = findSuspects([shop], [rewrite], START);
    expect(w.verdict).toBe('none');
    expect(w.candidates[0]?.breaks).toEqual([]);
  });

  it('counts failing flows from anywhere, and ranks candidates after the start last', () => {
    const anywhere: FailingFlow = { service: 'shop', ports: [443], from: 'anywhere' };
    const later = { ...unrelated, id: 'chg-late', at: at('11:01') };
    const earlier = { ...unrelated, id: 'chg-early', at: at('09:30') };
    const r = findSuspects([anywhere], [later, earlier, unrelated], START);
    expect(r.verdict).toBe('none');
    expect(r.candidates.map((c) => c.id)).toEqual(['chg-7', 'chg-early', 'chg-late']);
    const s = findSuspects([anywhere], [later, founding], START);
    expect(s.candidates[0]?.id).toBe('drift-web1-1');
    expect(s.candidates[0]?.breaks[0]?.examplePacket?.dport).toBe(443);
  });

  it('rejects a bad failing flow naming the flow, the field and the value', () => {
    const bad: FailingFlow = { service: 'shop', ports: [80], to: ['192.0.2.300'], from: 'anywhere' };
    expect(() => findSuspects([bad], [founding], START)).toThrow(UserError);
    expect(() => findSuspects([bad], [founding], START)).toThrow(/failing flow 1 \(shop\): to '192\.0\.2\.300'/);
  });

  it('suspects a change that breaks a must-allow intent about the failing services, not one about other ports', () => {
    const intentsFile = 'test/fixtures/intents/shop.yaml';
    const intents = parseIntents(text(intentsFile), intentsFile);
    // Only the vantage point outside the scanner's network fails: the flows alone do not point at the change.
    const one: FailingFlow = { ...shop, from: ['198.51.100.7'] };
    expect(findSuspects([one], [scanner, unrelated], START).verdict).toBe('none');
    const r = findSuspects([one], [scanner, unrelated], START, { intents });
    expect(r.verdict).toBe('suspected');
    expect(r.candidates.map((c) => [c.id, c.suspected])).toEqual([
      ['chg-9', true],
      // It breaks 'ssh stays open for the admins', which is not about the shop's ports.
      ['chg-7', false],
    ]);
    const b = r.candidates[0]?.breaks[0];
    expect(b?.intent).toBe('shop https from anywhere');
    expect(b?.flow).toBe(`must-allow intent 'shop https from anywhere' (${intentsFile}:2:3)`);
    expect(b?.examplePacket).toMatchObject({ daddr: '192.0.2.10', dport: 443 });
    expect(b?.examplePacket?.saddr).toMatch(/^203\.0\.113\./);
    expect(r.candidates[0]?.rule).toMatch(/^web-scanner\.nft:10: /);
    expect(r.candidates[0]?.why).toContain("breaks must-allow intent 'shop https from anywhere'");
    expect(r.candidates[1]?.why).toContain('and breaks no must-allow intent about them');
  });

  it('ranks the others when one candidate cannot be evaluated, saying why', () => {
    const broken = { ...unrelated, id: 'chg-11', after: { tables: null } as unknown as Ruleset };
    const r = findSuspects([shop], [broken, founding], START);
    expect(r.verdict).toBe('suspected');
    expect(r.candidates.map((c) => c.id)).toEqual(['drift-web1-1', 'chg-11']);
    expect(r.candidates[1]?.suspected).toBe(false);
    expect(r.candidates[1]?.error).toBeTruthy();
    expect(r.candidates[1]?.why).toMatch(/^change chg-11 on web1 by alice, approved by bob: not evaluated: /);
  });
});
