/**
 * The iCal feed of an on-call schedule (issue 15 §3; served at GET /oncall/NAME.ics): an RFC 5545 VCALENDAR with
 * one event per shift, so people see their on-call time in their own calendar. Pure text: the shifts come from
 * schedule.ts, the clock (DTSTAMP) is an argument.
 *
 * Each event's UID is stable for its shift (the schedule, the person and the start), so a calendar that polls the
 * feed updates events instead of duplicating them. Times are UTC (`Z`), so no VTIMEZONE is needed. Lines end in
 * CRLF and are folded at 75 octets without splitting a UTF-8 character (RFC 5545 §3.1).
 */
import { type Schedule, type Shift, shiftsBetween } from './schedule.js';

export interface ICalOptions {
  /** DTSTAMP: when the feed was generated. */
  readonly nowMs: number;
  /** The dashboard's base URL, for each event's URL, e.g. https://rampart.example.com. */
  readonly externalURL?: string | undefined;
}

/** 20260329T070000Z */
export function icalTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** TEXT value escaping (RFC 5545 §3.3.11). */
export function icalText(text: string): string {
  return text.replace(/[\\;,]/g, (c) => `\\${c}`).replace(/\r?\n/g, '\\n');
}

/** A content line folded at 75 octets: continuation lines start with one space (RFC 5545 §3.1). */
export function foldLine(line: string): string {
  const out: string[] = [];
  let current = '';
  let octets = 0;
  let limit = 75;
  for (const ch of line) {
    const size = Buffer.byteLength(ch, 'utf8');
    if (octets + size > limit) {
      out.push(current);
      current = '';
      octets = 0;
      limit = 74; // the leading space counts
    }
    current += ch;
    octets += size;
  }
  out.push(current);
  return out.join('\r\n ');
}

/** The UID of a shift: the same shift gets the same UID in every feed. */
export function shiftUid(schedule: string, shift: Shift): string {
  return `${icalTime(shift.startMs)}-${shift.user}@${schedule}.oncall.rampart`;
}

function event(s: Schedule, shift: Shift, opts: ICalOptions): string[] {
  const how =
    shift.onCall.source.kind === 'override' ? 'an override' : `layer ${shift.onCall.source.layer} of the rotation`;
  const url = opts.externalURL ? `${opts.externalURL.replace(/\/+$/, '')}/oncall/${encodeURIComponent(s.name)}` : '';
  return [
    'BEGIN:VEVENT',
    `UID:${shiftUid(s.name, shift)}`,
    `DTSTAMP:${icalTime(opts.nowMs)}`,
    `DTSTART:${icalTime(shift.startMs)}`,
    `DTEND:${icalTime(shift.endMs)}`,
    `SUMMARY:${icalText(`On call: ${shift.user} (${s.name})`)}`,
    `DESCRIPTION:${icalText(`${shift.user} is on call for ${s.name} (${how}; times in ${s.timeZone}).`)}`,
    ...(url ? [`URL:${url}`] : []),
    'TRANSP:TRANSPARENT',
    'END:VEVENT',
  ];
}

/** A VCALENDAR of the shifts of `schedule` that overlap [fromMs, toMs). */
export function scheduleCalendar(s: Schedule, fromMs: number, toMs: number, opts: ICalOptions): string {
  const lines = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Rampart//On-call schedules//EN',
    'CALSCALE:GREGORIAN',
    'METHOD:PUBLISH',
    `X-WR-CALNAME:${icalText(`On call: ${s.name}`)}`,
    `X-WR-TIMEZONE:${s.timeZone}`,
    ...shiftsBetween(s, fromMs, toMs).flatMap((shift) => event(s, shift, opts)),
    'END:VCALENDAR',
  ];
  return `${lines.map(foldLine).join('\r\n')}\r\n`;
}
