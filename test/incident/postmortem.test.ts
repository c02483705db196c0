/**
 * The founding outage replayed (test/incident/founding.ts): the generated postmortem has the founding document's
 * sections in the same order, a 2-hour duration with MTTD, MTTA and MTTR, the same key moments (14:00 to 16:00
 * GMT+3), the root cause prefilled from the suspect the engine found, and the impact estimated from the shop's rate
 * series. The generated document is docs/examples/founding-postmortem.md; this test fails when the two differ.
 * After a deliberate change, regenerate it with `npm run docs:postmortem`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderMarkdown } from '../../src/incident/postmortem.js';
import { replayFounding } from './founding.js';

const EXAMPLE = join(import.meta.dirname, '../../docs/examples/founding-postmortem.md');
const FOUNDING_SECTIONS = [
  '## Issue Summary',
  '## Timeline',
  '## Root Cause and Resolution',
  '## Corrective and Preventative Measures',
  '## TODO',
];
/** The founding timeline's moments, GMT+3. */
const FOUNDING_MOMENTS = ['14:00', '14:05', '14:10', '14:15', '14:20', '14:25', '14:30', '14:35', '15:00', '16:00'];

describe('the founding outage, replayed', () => {
  const { incident, timeline, suspects, postmortem } = replayFounding();
  const md = renderMarkdown(postmortem);
  const lines = md.split('\n');

  it('has the founding document’s sections, in the same order, under one # title', () => {
    expect(lines[0]).toMatch(/^# \S/);
    expect(lines.filter((l) => l.startsWith('# '))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith('## '))).toEqual(FOUNDING_SECTIONS);
    const summary = lines.slice(lines.indexOf('## Issue Summary') + 1, lines.indexOf('## Timeline'));
    expect(summary.filter((l) => l.startsWith('- **')).map((l) => l.slice(0, l.indexOf(':**') + 3))).toEqual([
      '- **Duration:**',
      '- **Impact:**',
      '- **Root Cause:**',
    ]);
  });

  it('lasted 2 hours, from 14:00 to 16:00 GMT+3, with MTTD, MTTA and MTTR', () => {
    expect(postmortem.summary.duration.ms).toBe(2 * 3_600_000);
    expect(postmortem.summary.duration.text).toContain('2 hours, from 14:00 to 16:00 GMT+3');
    expect(postmortem.response).toEqual({ mttdMs: 30_000, mttaMs: 270_000, mttrMs: 2 * 3_600_000 });
    expect(md).toContain('MTTD 30 seconds, MTTA 5 minutes, MTTR 2 hours');
    expect(incident.status).toBe('resolved');
  });

  it('has a timeline bullet at each of the founding timeline’s moments, in order, as **HH:MM TZ:** text', () => {
    const bullets = lines.slice(lines.indexOf('## Timeline') + 1, lines.indexOf('## Root Cause and Resolution') - 1);
    for (const b of bullets) expect(b).toMatch(/^- \*\*\d\d:\d\d GMT\+3:\*\* \S/);
    const times = bullets.map((b) => b.slice(4, 9));
    expect([...new Set(times)]).toEqual(FOUNDING_MOMENTS);
    const at = (hhmm: string) => bullets.filter((b) => b.startsWith(`- **${hhmm} `)).join('\n');
    expect(at('14:00')).toContain('First failing probe of shop-public from server');
    expect(at('14:00')).toContain('Incoming traffic to shop on web1 fell 83%');
    expect(at('14:00')).toContain('Drift on web1');
    expect(at('14:00')).toContain('Alert MonitorDown');
    expect(at('14:05')).toContain('alice acknowledged');
    expect(at('14:15')).toContain('misconfigured firewall rule');
    expect(at('14:20')).toContain('Change #41 applied');
    expect(at('14:25')).toContain('Escalation web step 2');
    expect(at('14:35')).toContain('Change #42 applied');
    expect(at('15:00')).toContain('Incoming traffic to shop on web1 is back');
    expect(at('16:00')).toContain('fully functional');
  });

  it('prefills the root cause from the suspect the engine found, then the identified status; the resolution from the fix', () => {
    expect(suspects.verdict).toBe('suspected');
    expect(suspects.candidates.map((c) => [c.host, c.kind, c.suspected, c.rule])).toEqual([
      ['web1', 'drift', true, 'policy drop of inet filter/input'],
      ['web2', 'drift', true, 'policy drop of inet filter/input'],
    ]);
    expect(postmortem.summary.rootCause).toMatch(
      /^Suspected by Rampart: An out-of-band edit of the firewall \(drift\) on web1 and web2 turns 100% of shop: tcp port 80, 443 .* from accept to drop, now decided by policy drop of inet filter\/input .*; made outside Rampart, so without review\. A misconfigured firewall rule on web1 and web2 blocks all incoming traffic to the web server\.$/,
    );
    expect(postmortem.rootCauseAndResolution.startsWith(postmortem.summary.rootCause)).toBe(true);
    // on the timeline at 14:00, a quarter of an hour before the responders identified it
    const named = timeline.find((e) => e.kind === 'incident.suspect');
    expect(named?.keyMoment).toBe(true);
    expect(named?.local).toBe('2023-05-10 14:00 GMT+3');
    expect(postmortem.rootCauseAndResolution).toContain('restored the desired ruleset');
    expect(postmortem.todo).toEqual(incident.followUps);
  });

  it('leaves out what is not the incident’s: another service, a change before the look-back window, repeated failures', () => {
    expect(timeline.some((e) => e.key === 'event:109' || e.text.includes('Monitor mail'))).toBe(false);
    expect(timeline.some((e) => e.text.includes('Change #30'))).toBe(false);
    expect(timeline.filter((e) => e.kind === 'monitor.vantage' && e.text.startsWith('First failing'))).toHaveLength(2);
    for (const e of timeline) expect(e.local).toMatch(/^2023-05-10 \d\d:\d\d GMT\+3$/);
  });

  it('estimates the impact from the rate series and the failed probes, not from a typed sentence', () => {
    const e = postmortem.summary.estimate;
    // 6.4 req/s expected for 2 hours; 1.1 req/s arrived in the first hour, 6.4 on average in the second.
    expect(e?.overall).toEqual({
      expectedRequests: 46_080,
      observedRequests: 27_000,
      lostRequests: 19_080,
      lostShare: 0.414,
      measuredMs: 2 * 3_600_000,
    });
    expect(e?.vantagePoints.map((v) => [v.vantage, v.firstAt])).toEqual([
      ['server', '2023-05-10T11:00:10.000Z'],
      ['probe-eu', '2023-05-10T11:00:15.000Z'],
    ]);
    expect(postmortem.summary.impact).toBe(
      'The service shop (SEV2). Over 2 hours, about 41% of the requests to shop were lost: 27,000 arrived of 46,080 expected from the traffic baseline; probes failed from server, probe-eu.',
    );
  });

  it('is the example checked into docs/examples/founding-postmortem.md', () => {
    if (process.env.RAMPART_WRITE_EXAMPLES === '1') writeFileSync(EXAMPLE, md);
    expect(
      readFileSync(EXAMPLE, 'utf8'),
      'docs/examples/founding-postmortem.md is not the generated postmortem: after a deliberate change, run `npm run docs:postmortem`',
    ).toBe(md);
  });
});
