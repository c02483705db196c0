/**
 * Monitoring's routes (issue 14): what people read (monitors, their history, events), and what vantage points use
 * (their assignments, their results). A result's vantage point is the token that sent it, never the body.
 */
import { z } from 'zod';
import { UserError } from '../../errors.js';
import { quantile } from '../../monitor/rollup.js';
import type { ProbeResult } from '../../monitor/types.js';
import { defineRoute } from '../route.js';

const result = z
  .object({
    monitor: z.string().min(1).max(200),
    at: z.number().int().nonnegative(),
    ok: z.boolean(),
    timings: z
      .object({
        dnsMs: z.number().nonnegative().optional(),
        connectMs: z.number().nonnegative().optional(),
        tlsMs: z.number().nonnegative().optional(),
        firstByteMs: z.number().nonnegative().optional(),
        totalMs: z.number().nonnegative(),
      })
      .strict(),
    error: z.string().max(1000).optional(),
    detail: z.record(z.string(), z.unknown()).optional(),
    inside: z.boolean().optional(),
  })
  .strict();
const results = z
  .object({
    results: z.array(result).max(10_000),
    /** One run of the sender (a random id): with `first`, a batch sent again is taken once. */
    sender: z.string().min(1).max(100).optional(),
    /** The sequence number of the batch's first result in this sender's run (0, 1, 2, ... oldest first). */
    first: z.number().int().nonnegative().optional(),
  })
  .strict()
  .refine((b) => (b.sender === undefined) === (b.first === undefined), {
    message: 'sender and first go together (a run of the sender and the sequence number of its first result)',
    path: ['first'],
  });
const from = (b: z.output<typeof results>) =>
  b.sender !== undefined && b.first !== undefined ? { sender: b.sender, first: b.first } : undefined;

function clean(r: z.output<typeof result>): Omit<ProbeResult, 'vantage'> {
  return {
    monitor: r.monitor,
    at: r.at,
    ok: r.ok,
    timings: Object.fromEntries(
      Object.entries(r.timings).filter(([, v]) => v !== undefined),
    ) as unknown as ProbeResult['timings'],
    ...(r.error !== undefined ? { error: r.error } : {}),
    ...(r.detail !== undefined ? { detail: r.detail } : {}),
    ...(r.inside ? { inside: true } : {}),
  };
}

export const monitorRoutes = [
  defineRoute({
    method: 'GET',
    path: '/monitors',
    access: 'viewer',
    tag: 'monitors',
    summary:
      "Monitors' states by quorum over their vantage points (filtered and paginated on the server when asked), counts by state, and each service's state",
    query: z
      .object({
        state: z.enum(['UP', 'DEGRADED', 'DOWN', 'UNKNOWN']).optional().describe('only monitors in this state'),
        q: z.string().max(200).optional().describe('only monitors whose name, service or host contains this text'),
        limit: z.coerce.number().int().min(1).max(1000).optional().describe('at most this many (default: all)'),
        offset: z.coerce.number().int().min(0).optional().describe('skip this many first (with limit: a page)'),
      })
      .strict(),
    handler: async ({ deps, query }) => {
      const all = deps.monitoring.list();
      const counts = { UP: 0, DEGRADED: 0, DOWN: 0, UNKNOWN: 0 };
      for (const m of all) counts[m.state]++;
      const q = query.q?.toLowerCase();
      const matching = all.filter(
        (m) =>
          (query.state === undefined || m.state === query.state) &&
          (q === undefined || [m.name, m.service ?? '', m.host ?? ''].some((x) => x.toLowerCase().includes(q))),
      );
      const offset = query.offset ?? 0;
      const monitors =
        query.limit !== undefined ? matching.slice(offset, offset + query.limit) : matching.slice(offset);
      return { monitors, total: matching.length, counts, services: deps.monitoring.services() };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/monitors/:name',
    access: 'viewer',
    tag: 'monitors',
    summary: 'One monitor: per-vantage state, the diagnosis, the last hour by minute, recent raw results and events',
    params: z.object({ name: z.string().min(1).max(200) }),
    query: z
      .object({
        results: z.coerce
          .number()
          .int()
          .min(1)
          .max(1000)
          .optional()
          .describe(
            'how many recent raw results (default 30; the dashboard charts latency per vantage point from them)',
          ),
      })
      .strict(),
    handler: async ({ deps, params, query }) => {
      const view = deps.monitoring.get(params.name);
      if (!view) {
        const names = deps.monitoring.list().map((m) => m.name);
        throw new UserError(
          'RAMPART_ERR_NOT_FOUND',
          `no monitor '${params.name}'; the monitors are: ${names.length > 0 ? names.join(', ') : 'none (declare them under monitors: in the config)'}`,
        );
      }
      // What is still in memory (the last results around a change, rollups) is written first: one consistent view.
      await deps.monitoring.flush(true);
      const now = Math.floor(deps.now().getTime() / 1000);
      const minutes = await deps.store.monitoring.rollups(params.name, 60, now - 3600, now);
      return {
        ...view,
        lastHour: minutes.map((m) => ({
          at: new Date(m.bucket * 1000).toISOString(),
          count: m.count,
          failures: m.failures,
          p50Ms: Math.round(quantile(m, 0.5) * 10) / 10,
          p95Ms: Math.round(quantile(m, 0.95) * 10) / 10,
          maxMs: Math.round(m.maxMs * 10) / 10,
        })),
        results: await deps.store.monitoring.listResults(params.name, query.results ?? 30),
        events: await deps.store.monitoring.listEvents({ subject: `monitor:${params.name}`, limit: 30 }),
      };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/events',
    access: 'viewer',
    tag: 'monitors',
    summary: "Monitoring's events (state changes, diagnoses), oldest first; `after` follows the stream",
    query: z
      .object({
        subject: z.string().max(300).optional(),
        kind: z.string().max(100).optional(),
        after: z.coerce.number().int().nonnegative().optional(),
        limit: z.coerce.number().int().min(1).max(1000).optional(),
      })
      .strict(),
    handler: async ({ deps, query }) => ({
      events: await deps.store.monitoring.listEvents({
        subject: query.subject,
        kind: query.kind,
        afterId: query.after,
        limit: query.limit,
      }),
    }),
  }),
  defineRoute({
    method: 'GET',
    path: '/probe/monitors',
    access: 'probe',
    tag: 'probe',
    summary: 'What this probe is asked to probe (the monitors declared `from: probes`)',
    handler: async ({ deps, actor }) => ({
      vantage: `probe:${actor.name}`,
      monitors: deps.monitoring.assignments({ kind: 'probe' }),
    }),
  }),
  defineRoute({
    method: 'POST',
    path: '/probe/results',
    access: 'probe',
    tag: 'probe',
    summary: "A batch of this probe's results (buffered ones included, oldest first)",
    body: results,
    handler: async ({ deps, actor, body }) => {
      const answer = await deps.monitoring.ingest(
        `probe:${actor.name}`,
        // a probe never speaks for the inside of a host
        body.results.map((r) => ({ ...clean(r), inside: false, vantage: `probe:${actor.name}` })),
        from(body),
      );
      // Stored before the answer: a probe drops what the server acknowledged, so it must not be lost to a crash.
      await deps.monitoring.flush();
      return answer;
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/agent/monitors',
    access: 'agent',
    tag: 'agent',
    summary:
      "What this agent probes: its own service on loopback (the inside view) and its peers' through their firewalls",
    handler: async ({ deps, actor }) => ({
      vantage: `agent:${actor.name}`,
      monitors: deps.monitoring.assignments({ kind: 'agent', host: actor.name }),
    }),
  }),
  defineRoute({
    method: 'POST',
    path: '/agent/monitor-results',
    access: 'agent',
    tag: 'agent',
    summary: "A batch of this agent's probe results",
    body: results,
    handler: async ({ deps, actor, body }) => {
      const own = new Set(
        deps.monitoring
          .assignments({ kind: 'agent', host: actor.name })
          .filter((a) => a.inside)
          .map((a) => a.monitor),
      );
      const answer = await deps.monitoring.ingest(
        `agent:${actor.name}`,
        // only the host's own monitors can be seen from its inside
        body.results.map((r) => ({
          ...clean(r),
          inside: r.inside === true && own.has(r.monitor),
          vantage: `agent:${actor.name}`,
        })),
        from(body),
      );
      await deps.monitoring.flush();
      return answer;
    },
  }),
];
