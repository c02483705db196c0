/**
 * The `traffic:` map of a service in rampart.yaml (issue 14, §3; docs/monitoring.md): where the agents read the
 * service's incoming request rate (access logs, the firewall's own rule counters, HAProxy's stats socket) and when
 * the server calls a fall a drop. Schema with the same positioned errors as the rest of the file.
 *
 *   traffic:
 *     logs:
 *       - {path: /var/log/nginx/access.log, format: combined}   # combined (nginx, Apache) or haproxy
 *     counters: true                                             # the accept rules of the public ports (read-only)
 *     haproxy: {host: lb, socket: /run/haproxy/admin.sock, backend: shop}
 *     ignore-paths: [/metrics]                                   # besides the health checks' paths
 *     drop: {share: 0.5, for: 20s, floor: 1, slot: 5m}
 */
import { z } from 'zod';
import { DEFAULT_TRAFFIC_DROP_CONFIG } from '../monitor/traffic-drop.js';
import { durationField, expect, nameField, object } from './schema-kit.js';
import type { ConfigLocation, TrafficConfig } from './types.js';

export const TRAFFIC_LOG_FORMATS = ['combined', 'haproxy'] as const;
const PATH_EXPECTED = 'an absolute file path, like /var/log/nginx/access.log';
const SOCKET_EXPECTED = "the absolute path of HAProxy's stats socket, like /run/haproxy/admin.sock";
const absolutePath = (expected: string) =>
  z
    .string(expect(expected))
    .regex(/^\/[^\0]*$/, expect(expected))
    .max(4096, expect(expected));

const URL_PATH_EXPECTED = 'a URL path starting with / (no query string), like /metrics';

const SHARE_EXPECTED = 'a share of the expected rate: a number from 0.05 to 0.95, or a percentage like 50%';
/** 0.5 or "50%". */
const shareField = z.unknown().transform((v, ctx) => {
  const m = typeof v === 'string' ? /^(\d{1,3}(?:\.\d+)?)\s*%$/.exec(v.trim()) : null;
  const n = typeof v === 'number' ? v : m ? Number(m[1]) / 100 : Number.NaN;
  if (Number.isFinite(n) && n >= 0.05 && n <= 0.95) return n;
  const problem = Number.isFinite(n) ? `${String(v)} is outside 0.05-0.95` : undefined;
  ctx.addIssue({ code: 'custom', message: SHARE_EXPECTED, ...(problem ? { params: { problem } } : {}) });
  return z.NEVER;
});
const SLOT_EXPECTED = 'a slot length that divides a day, from 10s to 1h, like 10s, 1m or 5m';
const slotField = durationField(10_000, 3_600_000).superRefine((ms, ctx) => {
  if (86_400_000 % ms !== 0)
    ctx.addIssue({ code: 'custom', message: SLOT_EXPECTED, params: { problem: 'does not divide a day' } });
});

export const TrafficSchema = object(
  {
    logs: z
      .array(
        object(
          {
            path: absolutePath(PATH_EXPECTED),
            format: z.enum(TRAFFIC_LOG_FORMATS, expect(`one of ${TRAFFIC_LOG_FORMATS.join(', ')}`)).optional(),
          },
          'an access log: a map with path and optionally format (combined or haproxy)',
        ),
        expect('a list of access logs: [{path, format}]'),
      )
      .optional(),
    counters: z.boolean(expect('true or false')).optional(),
    'ignore-paths': z
      .array(
        z
          .string(expect(URL_PATH_EXPECTED))
          .regex(/^\/[^\s?#]*$/, expect(URL_PATH_EXPECTED))
          .max(2048),
        expect(`a list of URL paths: ${URL_PATH_EXPECTED}`),
      )
      .optional(),
    haproxy: object(
      { host: nameField('a host name'), socket: absolutePath(SOCKET_EXPECTED), backend: nameField('a backend name') },
      'a map with host (where HAProxy runs, with an agent), socket and backend',
    ).optional(),
    drop: object(
      {
        share: shareField.optional(),
        for: durationField(5_000, 3_600_000).optional(),
        floor: z.number(expect('a rate in requests/s >= 0')).min(0, expect('a rate in requests/s >= 0')).optional(),
        slot: slotField.optional(),
      },
      'a map with share, for, floor and slot',
    ).optional(),
  },
  'a traffic map: logs, counters, ignore-paths, haproxy and drop',
);
export type TrafficEntry = z.infer<typeof TrafficSchema>;

/** The entry with its defaults: counters on when nothing else is named (the firewall always has them). */
export function trafficOf(
  e: TrafficEntry,
  loc: (path: readonly (string | number)[]) => ConfigLocation,
  path: readonly (string | number)[],
): TrafficConfig {
  const d = DEFAULT_TRAFFIC_DROP_CONFIG;
  const logs = (e.logs ?? []).map((l, i) => ({
    path: l.path,
    format: l.format ?? 'combined',
    at: loc([...path, 'logs', i]),
  }));
  return {
    logs,
    counters: e.counters ?? (logs.length === 0 && e.haproxy === undefined),
    ignorePaths: e['ignore-paths'] ?? [],
    ...(e.haproxy ? { haproxy: { ...e.haproxy, at: loc([...path, 'haproxy']) } } : {}),
    drop: {
      share: e.drop?.share ?? d.share,
      forMs: e.drop?.for ?? d.forMs,
      floor: e.drop?.floor ?? d.floor,
      slotMs: e.drop?.slot ?? d.slotMs,
    },
    at: loc(path),
  };
}
