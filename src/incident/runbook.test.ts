import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatRunbook, parseRunbook } from './runbook.js';

const SHOP = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'examples', 'runbooks', 'shop.md'), 'utf8');

describe('parseRunbook', () => {
  it("reads the shop's runbook (the founding outage's steps) into numbered steps with their rampart commands", () => {
    const r = parseRunbook(SHOP, 'runbooks/shop.md');
    expect(r.title).toBe('Runbook: the shop is down or its traffic dropped');
    expect(r.steps.map((s) => s.n)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(r.steps[0]?.commands).toEqual(['rampart incident ack ID']);
    // A fenced block under a step belongs to it.
    expect(r.steps[1]?.commands).toEqual(['rampart incident show ID']);
    expect(r.steps[1]?.text).toContain('```sh');
    expect(r.steps[2]?.commands).toEqual([
      'rampart hosts drift web1',
      'rampart trace /etc/nftables.conf --src 203.0.113.9 --dst 192.0.2.11 --dport 443',
    ]);
    expect(r.steps[3]?.commands).toEqual([]);
    expect(r.steps[5]?.commands).toEqual(['rampart incident resolve ID', 'rampart incident postmortem ID']);
    expect(r.steps[0]?.line).toBeGreaterThan(1);
    expect(SHOP.split('\n')[(r.steps[0]?.line ?? 0) - 1]).toMatch(/^1\. Acknowledge/);
  });

  it('takes one step per ## section when there is no numbered list, and `$ rampart` lines in fences', () => {
    const r = parseRunbook(
      [
        '## Check the hosts',
        '',
        '```',
        '$ rampart hosts',
        'journalctl -u nginx',
        '```',
        '',
        '## Roll back',
        'Use `rampart change rollback 7`.',
      ].join('\n'),
      'ops/web.md',
    );
    expect(r.title).toBe('web');
    expect(r.steps).toEqual([
      { n: 1, text: expect.stringContaining('Check the hosts'), commands: ['rampart hosts'], line: 1 },
      { n: 2, text: 'Roll back\nUse `rampart change rollback 7`.', commands: ['rampart change rollback 7'], line: 8 },
    ]);
  });

  it('falls back to bullets, and does not read list markers or headings inside fenced blocks (a fence joins the step above)', () => {
    const r = parseRunbook(
      ['# T', '- first `rampart alerts`', '- second', '', '```', '1. not a step', '# not a title', '```'].join('\n'),
      't.md',
    );
    expect(r.title).toBe('T');
    expect(r.steps.map((s) => [s.text, s.commands])).toEqual([
      ['first `rampart alerts`', ['rampart alerts']],
      ['second\n\n```\n1. not a step\n# not a title\n```', []],
    ]);
  });

  it('ends a step at a paragraph after a blank line, keeps lazy continuation lines, and ignores other code', () => {
    const r = parseRunbook(
      ['1. Look at', 'the logs: `journalctl -u nginx`', '', 'Not a step.', '2) Then `rampart traffic shop`'].join('\n'),
      'x.md',
    );
    expect(r.steps.map((s) => [s.n, s.text, s.commands])).toEqual([
      [1, 'Look at\nthe logs: `journalctl -u nginx`', []],
      [2, 'Then `rampart traffic shop`', ['rampart traffic shop']],
    ]);
  });

  it('an empty file has no steps and says so when printed', () => {
    const r = parseRunbook('', 'empty.md');
    expect(r.steps).toEqual([]);
    expect(formatRunbook(r)).toBe('empty (empty.md)\n  (no steps: write them as a numbered list)');
  });

  it('prints the steps for a terminal with their commands marked $', () => {
    const text = formatRunbook(parseRunbook(SHOP, 'runbooks/shop.md'));
    expect(text.split('\n').slice(0, 4)).toEqual([
      'Runbook: the shop is down or its traffic dropped (runbooks/shop.md)',
      '  1. Acknowledge, so escalation stops and you are the commander: `rampart incident ack ID`.',
      '     $ rampart incident ack ID',
      '  2. Read the incident: the timeline shows the first failing probe per vantage point, the traffic drop (from when it',
    ]);
    expect(text).toContain('     $ rampart incident show ID');
  });
});
