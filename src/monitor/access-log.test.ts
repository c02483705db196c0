import { describe, expect, it } from 'vitest';
import { type AccessLogEntry, isIgnoredPath, isLoopbackClient, isServerError, parseAccessLine } from './access-log.js';

const utc = (y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number) =>
  Date.UTC(y, mo, d, h, mi, s, ms);

describe('parseAccessLine: combined (nginx, Apache)', () => {
  it("reads Apache's documented example with its UTC offset", () => {
    const line =
      '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"';
    expect(parseAccessLine(line, 'combined')).toEqual({
      time: Date.UTC(2000, 9, 10, 20, 55, 36),
      status: 200,
      client: '127.0.0.1',
      path: '/apache_pb.gif',
    });
  });

  it('reads an nginx line with an escaped quote in the request and a 5xx', () => {
    const line =
      '203.0.113.7 - - [03/Dec/2026:14:00:05 +0100] "GET /search?q=\\x22a\\x22 HTTP/1.1" 502 157 "-" "curl/8.5.0"';
    expect(parseAccessLine(line, 'combined')).toEqual({
      time: Date.UTC(2026, 11, 3, 13, 0, 5),
      status: 502,
      client: '203.0.113.7',
      path: '/search',
    });
    const apache = '::1 - - [03/Dec/2026:14:00:05 +0000] "GET /a\\"b HTTP/1.1" 404 12 "-" "x"';
    expect(parseAccessLine(apache, 'combined')?.status).toBe(404);
    // the host's own probes are not customers: loopback clients are told apart
    expect(['127.0.0.1', '::1', '127.3.0.1', 'localhost', '::ffff:127.0.0.1'].every(isLoopbackClient)).toBe(true);
    expect(['10.88.0.1', '203.0.113.7', '::2', '1270::1'].some(isLoopbackClient)).toBe(false);
  });

  it('reads the common format (no referer and user agent) and a line of the lab shop', () => {
    expect(parseAccessLine('10.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 5', 'combined')).toEqual({
      time: Date.UTC(2026, 0, 1),
      status: 200,
      client: '10.0.0.1',
      path: '/',
    });
  });

  it('gives undefined, never throws, for malformed lines', () => {
    for (const line of [
      '',
      'garbage',
      '10.0.0.1 - - [01/Foo/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 5',
      '10.0.0.1 - - [01/Jan/2026:25:00:00 +0000] "GET / HTTP/1.1" 200 5',
      '10.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" abc 5',
      '10.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1',
      '\u0000\u0000\u0000',
    ]) {
      expect(parseAccessLine(line, 'combined'), line).toBeUndefined();
    }
  });
});

describe('parseAccessLine: HAProxy httplog', () => {
  // HAProxy's configuration manual, "8.2.3. HTTP log format", with the syslog header it shows.
  const doc =
    'Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1"';

  it('reads the manual example with its syslog header, in the given local time', () => {
    expect(parseAccessLine(doc, 'haproxy', { localTime: utc })).toEqual({
      time: Date.UTC(2009, 1, 6, 12, 14, 14, 655),
      status: 200,
      client: '10.0.1.2',
      path: '/index.html',
    });
  });

  it('reads it without a header (log stdout format raw) and with an RFC 5424 header', () => {
    const raw = doc.slice(doc.indexOf('10.0.1.2'));
    expect(parseAccessLine(raw, 'haproxy', { localTime: utc })?.time).toBe(Date.UTC(2009, 1, 6, 12, 14, 14, 655));
    const rfc5424 = `<134>1 2009-02-06T12:14:14.655+00:00 lb haproxy 14389 - - ${raw}`;
    expect(parseAccessLine(rfc5424, 'haproxy', { localTime: utc })?.status).toBe(200);
  });

  it('reads HAProxy 2.x lines: IPv6 client, a 503 from <NOSRV>, -1 timers, a logasap total, an aborted -1', () => {
    const v6 =
      '[::1]:40000 [03/Dec/2026:14:00:05.001] shop_front shop/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 "GET / HTTP/1.1"';
    expect(parseAccessLine(v6, 'haproxy', { localTime: utc })).toEqual({
      time: Date.UTC(2026, 11, 3, 14, 0, 5, 1),
      status: 503,
      client: '[::1]',
      path: '/',
    });
    expect(isLoopbackClient('[::1]')).toBe(true);
    const logasap =
      '10.88.0.1:5000 [03/Dec/2026:14:00:05.001] shop_front shop/web1 0/0/1/2/+3 200 10 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1"';
    expect(parseAccessLine(logasap, 'haproxy', { localTime: utc })?.status).toBe(200);
    const aborted =
      '10.88.0.1:5000 [03/Dec/2026:14:00:05.001] shop_front shop/web1 -1/-1/-1/-1/5000 -1 0 - - CR-- 1/1/0/0/0 0/0 "<BADREQ>"';
    expect(parseAccessLine(aborted, 'haproxy', { localTime: utc })?.status).toBe(-1);
    expect(parseAccessLine(aborted, 'haproxy', { localTime: utc })).not.toHaveProperty('path');
  });

  it('gives undefined for tcplog lines, combined lines and garbage', () => {
    const tcplog = '10.0.1.2:33313 [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0';
    expect(parseAccessLine(tcplog, 'haproxy')).toBeUndefined();
    expect(parseAccessLine('127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1', 'haproxy')).toBe(
      undefined,
    );
    expect(parseAccessLine('Feb  6 12:14:14 localhost haproxy[1]: Proxy http-in started.', 'haproxy')).toBe(undefined);
  });

  it('reads a local time in the process time zone by default', () => {
    const raw = doc.slice(doc.indexOf('10.0.1.2'));
    expect(parseAccessLine(raw, 'haproxy')?.time).toBe(new Date(2009, 1, 6, 12, 14, 14, 655).getTime());
  });
});

describe('request paths: health checks are told apart from customers', () => {
  const combined = (request: string) => `10.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "${request}" 200 5 "-" "x"`;
  const haproxy = (request: string) =>
    `10.88.0.1:5000 [03/Dec/2026:14:00:05.001] shop_front shop/web1 0/0/1/2/3 200 10 - - ---- 1/1/0/0/0 0/0 {h} "${request}"`;

  it('reads the path without its query string or fragment, from both formats', () => {
    for (const [request, path] of [
      ['GET /healthz HTTP/1.1', '/healthz'],
      ['GET /healthz?full=1 HTTP/1.1', '/healthz'],
      ['HEAD /a/b#c HTTP/1.0', '/a/b'],
      ['GET http://shop.example:8080/healthz?x HTTP/1.1', '/healthz'],
      ['OPTIONS /x HTTP/2.0', '/x'],
    ] as const) {
      expect(parseAccessLine(combined(request), 'combined')?.path, request).toBe(path);
      expect(parseAccessLine(haproxy(request), 'haproxy', { localTime: utc })?.path, request).toBe(path);
    }
  });

  it('has no path for a request line it cannot read, and still counts the request', () => {
    for (const request of ['-', '', 'GARBAGE', 'CONNECT shop.example:443 HTTP/1.1', 'GET * HTTP/1.1']) {
      const e = parseAccessLine(combined(request), 'combined');
      expect(e?.status, request).toBe(200);
      expect(e?.path, request).toBeUndefined();
    }
  });

  it('ignores exactly the given paths', () => {
    const ignore = new Set(['/healthz']);
    const at = (request: string) => parseAccessLine(combined(request), 'combined');
    expect(isIgnoredPath(at('GET /healthz HTTP/1.1') as AccessLogEntry, ignore)).toBe(true);
    expect(isIgnoredPath(at('GET /healthz?deep=1 HTTP/1.1') as AccessLogEntry, ignore)).toBe(true);
    for (const r of ['GET /healthz/x HTTP/1.1', 'GET /HEALTHZ HTTP/1.1', 'GET / HTTP/1.1', '-']) {
      expect(isIgnoredPath(at(r) as AccessLogEntry, ignore), r).toBe(false);
    }
    expect(isIgnoredPath(at('GET /healthz HTTP/1.1') as AccessLogEntry, new Set())).toBe(false);
  });
});

describe('isServerError', () => {
  it('is 5xx only', () => {
    expect([499, 500, 503, 599, 600, -1, 200].map(isServerError)).toEqual([
      false,
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
  });
});
