/**
 * Times in the site's time zone (`site.timezone`, an IANA name such as Europe/Istanbul), as timelines and
 * postmortems print them: `14:00 GMT+3`. Uses the platform's time zone data (Intl); no clock is read.
 */

/** True when `tz` is a time zone this platform knows. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export interface LocalTime {
  /** `2023-05-10` */
  readonly date: string;
  /** `14:00` (24-hour) */
  readonly hhmm: string;
  /** `GMT+3`, `GMT-4:30`; `UTC` for UTC itself. */
  readonly zone: string;
}

const formats = new Map<string, Intl.DateTimeFormat>();

function formatFor(tz: string): Intl.DateTimeFormat {
  let f = formats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone: tz,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'shortOffset',
    });
    formats.set(tz, f);
  }
  return f;
}

/** The wall-clock time of `iso` in `tz`. */
export function localTime(iso: string, tz: string): LocalTime {
  const parts = Object.fromEntries(
    formatFor(tz)
      .formatToParts(new Date(iso))
      .map((p) => [p.type, p.value]),
  );
  const name = parts.timeZoneName ?? tz;
  const utc = tz === 'UTC' || tz === 'Etc/UTC' || tz === 'Etc/Universal' || tz === 'Zulu';
  const zone = utc ? 'UTC' : name === 'GMT+0' ? 'GMT' : name;
  return { date: `${parts.year}-${parts.month}-${parts.day}`, hhmm: `${parts.hour}:${parts.minute}`, zone };
}

/** `2023-05-10 14:00 GMT+3` */
export function formatLocal(iso: string, tz: string): string {
  const t = localTime(iso, tz);
  return `${t.date} ${t.hhmm} ${t.zone}`;
}

/** `2 hours`, `1 hour 5 minutes`, `45 minutes`, `30 seconds`. */
export function formatDuration(ms: number): string {
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (ms < 60_000) return plural(Math.max(0, Math.round(ms / 1000)), 'second');
  const minutes = Math.round(ms / 60_000);
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (h === 0) return plural(m, 'minute');
  return m === 0 ? plural(h, 'hour') : `${plural(h, 'hour')} ${plural(m, 'minute')}`;
}
