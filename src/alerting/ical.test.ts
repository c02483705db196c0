import { describe, expect, it } from 'vitest';
import { foldLine, icalText, scheduleCalendar, shiftUid } from './ical.js';
import { firstHandoffWallMs, type Schedule } from './schedule.js';

const DAY = 86_400_000;
const at = (iso: string) => Date.parse(iso);

const s: Schedule = {
  name: 'shop-primary',
  timeZone: 'Europe/Berlin',
  layers: [
    {
      name: 'weekdays',
      periodMs: DAY,
      firstHandoffWallMs: firstHandoffWallMs('2026-03-01', 9 * 60),
      participants: ['alice', 'bob'],
    },
  ],
  overrides: [{ user: 'zoë', fromMs: at('2026-03-30T12:00:00Z'), toMs: at('2026-03-30T14:00:00Z') }],
};

/** Unfolds (RFC 5545 §3.1) and splits into [name, value] pairs. */
function parse(text: string): [string, string][] {
  return text
    .replace(/\r\n /g, '')
    .split('\r\n')
    .filter((l) => l !== '')
    .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]);
}

describe('the iCal feed of a schedule', () => {
  const opts = { nowMs: at('2026-03-27T10:00:00Z'), externalURL: 'https://rampart.example.com/' };
  const text = scheduleCalendar(s, at('2026-03-28T00:00:00Z'), at('2026-03-31T00:00:00Z'), opts);

  it('is a VCALENDAR of the shifts in UTC, CRLF-terminated, lines folded at 75 octets', () => {
    expect(text.endsWith('END:VCALENDAR\r\n')).toBe(true);
    expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    for (const line of text.split('\r\n')) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(75);
    const props = parse(text);
    expect(props.slice(0, 3)).toEqual([
      ['BEGIN', 'VCALENDAR'],
      ['VERSION', '2.0'],
      ['PRODID', '-//Rampart//On-call schedules//EN'],
    ]);
    const events = props.filter(([k]) => k === 'DTSTART' || k === 'DTEND' || k === 'SUMMARY').map(([, v]) => v);
    // Handoffs at 09:00 local: 08:00Z before the change on 03-29, 07:00Z after it; the override cuts 03-30.
    expect(events).toEqual([
      '20260327T080000Z',
      '20260328T080000Z',
      'On call: alice (shop-primary)',
      '20260328T080000Z',
      '20260329T070000Z',
      'On call: bob (shop-primary)',
      '20260329T070000Z',
      '20260330T070000Z',
      'On call: alice (shop-primary)',
      '20260330T070000Z',
      '20260330T120000Z',
      'On call: bob (shop-primary)',
      '20260330T120000Z',
      '20260330T140000Z',
      'On call: zoë (shop-primary)',
      '20260330T140000Z',
      '20260331T070000Z',
      'On call: bob (shop-primary)',
    ]);
    expect(props.filter(([k]) => k === 'DTSTAMP').every(([, v]) => v === '20260327T100000Z')).toBe(true);
    expect(props.find(([k]) => k === 'URL')?.[1]).toBe('https://rampart.example.com/oncall/shop-primary');
  });

  it('gives a shift the same UID whatever range asked for it, and every shift its own', () => {
    const other = scheduleCalendar(s, at('2026-03-29T12:00:00Z'), at('2026-03-29T13:00:00Z'), opts);
    const uids = (t: string) =>
      parse(t)
        .filter(([k]) => k === 'UID')
        .map(([, v]) => v);
    expect(uids(other)).toEqual(['20260329T070000Z-alice@shop-primary.oncall.rampart']);
    expect(uids(text)).toContain(uids(other)[0]);
    expect(new Set(uids(text)).size).toBe(6);
    expect(
      shiftUid('x', { user: 'u', startMs: 0, endMs: 1, onCall: { user: 'u', source: { kind: 'override', index: 0 } } }),
    ).toBe('19700101T000000Z-u@x.oncall.rampart');
  });

  it('escapes TEXT values and folds without splitting a UTF-8 character', () => {
    expect(icalText('a,b;c\\d\ne')).toBe('a\\,b\\;c\\\\d\\ne');
    const long = `DESCRIPTION:${'é'.repeat(100)}`;
    const folded = foldLine(long);
    const lines = folded.split('\r\n');
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(Buffer.byteLength(l)).toBeLessThanOrEqual(75);
    expect(lines.slice(1).every((l) => l.startsWith(' '))).toBe(true);
    expect(folded.replace(/\r\n /g, '')).toBe(long);
    expect(foldLine('x'.repeat(75))).toBe('x'.repeat(75));
  });
});
