/**
 * The founding outage replayed (test/incident/founding.ts): the generated postmortem has the founding document's
 * sections in the same order, a 2-hour duration and the same key moments (14:00 to 16:00 GMT+3). The generated
 * document is docs/examples/founding-postmortem.md; this test fails when the two differ. After a deliberate change
 * to the renderer, regenerate it with `RAMPART_WRITE_EXAMPLES=1 npx vitest run test/incident/postmortem.test.ts`.
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
  const { incident, timeline, postmortem } = replayFounding();
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

  it('prefills the root cause from the identified status and the resolution from the fix', () => {
    expect(postmortem.summary.rootCause).toBe(
      'A misconfigured firewall rule on web1 and web2 blocks all incoming traffic to the web server.',
    );
    expect(postmortem.rootCauseAndResolution).toContain('restored the desired ruleset');
    expect(postmortem.todo).toEqual(incident.followUps);
  });

  it('leaves out what is not the incident’s: another service, a change before the look-back window, repeated failures', () => {
    expect(timeline.some((e) => e.key === 'event:109' || e.text.includes('Monitor mail'))).toBe(false);
    expect(timeline.some((e) => e.text.includes('Change #30'))).toBe(false);
    expect(timeline.filter((e) => e.kind === 'monitor.vantage' && e.text.startsWith('First failing'))).toHaveLength(2);
    for (const e of timeline) expect(e.local).toMatch(/^2023-05-10 \d\d:\d\d GMT\+3$/);
  });

  it('is the example checked into docs/examples/founding-postmortem.md', () => {
    if (process.env.RAMPART_WRITE_EXAMPLES === '1') writeFileSync(EXAMPLE, md);
    expect(readFileSync(EXAMPLE, 'utf8')).toBe(md);
  });
});
