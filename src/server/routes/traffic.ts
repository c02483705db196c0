/**
 * Incoming traffic's routes (issue 14, §3): what agents measure and send, and what people read (`rampart traffic`).
 * A sample's host is the agent token that sent it, never the body.
 */
import { z } from 'zod';
import { UserError } from '../../errors.js';
import { defineRoute } from '../route.js';
import { TrafficInputError } from '../traffic.js';

const sample = z
  .object({
    service: z.string().min(1).max(253),
    source: z.enum(['access-log', 'counters', 'haproxy']),
    start: z.number().int().nonnegative(),
    ms: z.number().int().min(1000).max(60_000),
    requests: z.number().int().nonnegative(),
    errors: z.number().int().nonnegative().optional(),
  })
  .strict();

const RESOLUTIONS = { '10s': 10, '1m': 60, '1h': 3600 } as const;

export const trafficRoutes = [
  defineRoute({
    method: 'GET',
    path: '/agent/traffic-sources',
    access: 'agent',
    tag: 'agent',
    summary: "What this agent measures: each service's access logs, rule counters or HAProxy backend on this host",
    handler: async ({ deps, actor }) => deps.traffic.sources(actor.name),
  }),
  defineRoute({
    method: 'POST',
    path: '/agent/traffic',
    access: 'agent',
    tag: 'agent',
    summary: "A batch of this agent's request counts per service, source and window (resent windows are ignored)",
    body: z.object({ samples: z.array(sample).max(10_000) }).strict(),
    handler: async ({ deps, actor, body }) => {
      try {
        const r = await deps.traffic.ingest(
          actor.name,
          body.samples.map(({ errors, ...s }) => (errors === undefined ? s : { ...s, errors })),
        );
        return { accepted: r.accepted, duplicates: r.duplicates };
      } catch (e) {
        if (e instanceof TrafficInputError) {
          throw new UserError('RAMPART_ERR_VALIDATION', e.message, {
            errors: [{ field: `body.${e.field}`, message: `${e.problem}; expected ${e.expected}` }],
          });
        }
        throw e;
      }
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/traffic',
    access: 'viewer',
    tag: 'monitors',
    summary: "Each service's incoming request rate now against what is expected, per host, and any drop",
    handler: async ({ deps }) => ({ traffic: await deps.traffic.now() }),
  }),
  defineRoute({
    method: 'GET',
    path: '/traffic/:service',
    access: 'viewer',
    tag: 'monitors',
    summary:
      "A service's rate now and its series (10 s points for 48 h, 1 min for 35 days, 1 h for 400 days), each point with its expected band (expected, lower, upper: below lower the detector counts it low)",
    params: z.object({ service: z.string().min(1).max(253) }),
    query: z
      .object({
        resolution: z.enum(['10s', '1m', '1h']).optional(),
        /** How far back, in seconds (default one hour). */
        since: z.coerce
          .number()
          .int()
          .min(10)
          .max(400 * 86_400)
          .optional(),
        host: z.string().max(253).optional(),
      })
      .strict(),
    handler: async ({ deps, params, query }) => {
      const services = deps.config
        .current()
        .services.filter((s) => s.traffic)
        .map((s) => s.name);
      if (!services.includes(params.service)) {
        throw new UserError(
          'RAMPART_ERR_NOT_FOUND',
          `no traffic for service '${params.service}'; measured services: ${services.length > 0 ? services.join(', ') : 'none (give a service a traffic: map in the config)'}`,
        );
      }
      const resolution = RESOLUTIONS[query.resolution ?? '1m'];
      const now = deps.now().getTime();
      const since = query.since ?? 3600;
      const points = await deps.traffic.series(params.service, resolution, now - since * 1000, now, query.host);
      // Each point with the band it is judged against (the dashboard draws it): expected, lower, upper, or nulls.
      const band = deps.traffic.band(params.service, points, resolution, query.host);
      return {
        now: await deps.traffic.now(params.service),
        resolution: query.resolution ?? '1m',
        points: points.map((p, i) => ({ ...p, expected: null, lower: null, upper: null, ...band[i] })),
      };
    },
  }),
];
