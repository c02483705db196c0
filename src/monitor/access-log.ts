/**
 * Access-log lines to (time, status) (issue 14, §3): the combined format of nginx and Apache and HAProxy's HTTP log
 * format (`option httplog`), with or without a syslog header. Pure: a line in, a value or `undefined` out; a line
 * that is not understood is never an exception (the caller counts it as malformed).
 *
 *   combined:  1.2.3.4 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "http://r/" "Mozilla/4.08"
 *   haproxy:   [<syslog header>] 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 ...
 *
 * The combined time carries its UTC offset. HAProxy's accept date does not: it is the local time of the host that
 * logged it, so the caller says how to read a local time (`localTime`, default the process's time zone).
 */

export type AccessLogFormat = 'combined' | 'haproxy';

export interface AccessLogEntry {
  /** Epoch ms of the request (combined: as logged, Apache's start or nginx's end; HAProxy: the accept date). */
  readonly time: number;
  /** HTTP status; HAProxy logs -1 when no response was sent (an aborted request). */
  readonly status: number;
  /** The client's address as logged (combined: the first field; HAProxy: the address before `:port`). */
  readonly client: string;
  /**
   * The request's path without its query string (`/healthz` of `GET /healthz?full=1 HTTP/1.1`), when the request
   * line is readable (not `-`, not truncated before the path).
   */
  readonly path?: string;
}

/**
 * A request from the host itself (127.0.0.0/8, ::1, localhost): the agent's own inside probes and local health
 * checks, never a customer. Not incoming traffic: counting it would hide a fall to zero behind the probes' trickle.
 */
export function isLoopbackClient(client: string): boolean {
  const c = client.replace(/^\[|\]$/g, '').toLowerCase();
  return c === '::1' || c === 'localhost' || c.startsWith('127.') || c.startsWith('::ffff:127.');
}

export interface AccessLogParseOptions {
  /** Epoch ms of a local wall-clock time (month 0-11). Default: the process's time zone (`new Date(y, mo, ...)`). */
  readonly localTime?: (y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number) => number;
}

const MONTHS: Readonly<Record<string, number>> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};

// host ident user [time] "request" status bytes ...; the request may hold escaped quotes (Apache: \", nginx: \x22).
const COMBINED =
  /^(\S+) \S+ .*?\[(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\] "((?:[^"\\]|\\.)*)" (\d{3}) /;

// client:port [accept date] frontend backend/server TR/Tw/Tc/Tr/Ta status bytes (HAProxy 1.x-3.x, `option httplog`);
// found anywhere in the line, after whatever header syslog (RFC 3164 or 5424) or `format raw` put in front.
const HAPROXY =
  /(?:^|\s)(\S+):\d+ \[(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2})\.(\d{3})\] \S+ \S+\/\S+ -?\d+\/-?\d+\/-?\d+\/-?\d+\/\+?-?\d+ (-1|\d{3}) /;

// HAProxy's request line is the last field of `option httplog`, in quotes ("<BADREQ>" when it could not be read).
const HAPROXY_REQUEST = /"([A-Z]+) ([^\s"]+)[^"]*"\s*$/;

/** `/a` of `GET /a?b HTTP/1.1` (absolute-form `http://h/a` too); undefined when there is no path to read. */
function requestPath(method: string | undefined, target: string | undefined): string | undefined {
  if (!method || !target) return undefined;
  const t = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '');
  const path = t.split(/[?#]/, 1)[0] ?? '';
  return path.startsWith('/') ? path : undefined;
}

/**
 * A request to one of `paths` (exact, query string ignored): a health check (HAProxy's `option httpchk`, the
 * monitors' probes), not a customer. Counting them would hide part of a drop behind their constant rate.
 */
export function isIgnoredPath(entry: AccessLogEntry, paths: ReadonlySet<string>): boolean {
  return entry.path !== undefined && paths.has(entry.path);
}

const localDefault = (y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number) =>
  new Date(y, mo, d, h, mi, s, ms).getTime();

function valid(mo: number | undefined, d: number, h: number, mi: number, s: number): mo is number {
  return mo !== undefined && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60;
}

/** The time and status of one access-log line, or undefined when the line is not in `format`. */
export function parseAccessLine(
  line: string,
  format: AccessLogFormat,
  opts: AccessLogParseOptions = {},
): AccessLogEntry | undefined {
  if (format === 'combined') {
    const m = COMBINED.exec(line);
    if (!m) return undefined;
    const [, client, dd, mon, yyyy, hh, mi, ss, sign, oh, om, request, st] = m as unknown as string[];
    const mo = MONTHS[mon as string];
    const [d, h, min, s] = [Number(dd), Number(hh), Number(mi), Number(ss)];
    if (!valid(mo, d, h, min, s)) return undefined;
    const offsetMin = (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
    const time = Date.UTC(Number(yyyy), mo, d, h, min, s) - offsetMin * 60_000;
    const [method, target] = (request ?? '').split(' ', 3);
    const path = requestPath(method, target);
    return { time, status: Number(st), client: client as string, ...(path !== undefined ? { path } : {}) };
  }
  const m = HAPROXY.exec(line);
  if (!m) return undefined;
  const [, client, dd, mon, yyyy, hh, mi, ss, mss, st] = m as unknown as string[];
  const mo = MONTHS[mon as string];
  const [d, h, min, s] = [Number(dd), Number(hh), Number(mi), Number(ss)];
  if (!valid(mo, d, h, min, s)) return undefined;
  const time = (opts.localTime ?? localDefault)(Number(yyyy), mo, d, h, min, s, Number(mss));
  const r = HAPROXY_REQUEST.exec(line.slice(m.index + m[0].length));
  const path = requestPath(r?.[1], r?.[2]);
  return { time, status: Number(st), client: client as string, ...(path !== undefined ? { path } : {}) };
}

/** 5xx: what a traffic sample counts as `errors`. */
export const isServerError = (status: number): boolean => status >= 500 && status <= 599;
