import { z } from 'zod';
import { UserError } from '../../errors.js';
import { defineRoute } from '../route.js';

export const hostRoutes = [
  defineRoute({
    method: 'GET',
    path: '/hosts',
    access: 'viewer',
    tag: 'hosts',
    summary: 'Hosts of the config with their desired ruleset revision',
    handler: async ({ deps }) => ({
      hosts: await Promise.all(
        deps.config.current().hosts.map(async (h) => {
          const d = await deps.store.getDesired(h.name);
          const r = await deps.store.getHostReport(h.name);
          const drift = r?.drift as { inSync: boolean; summary: string } | null | undefined;
          return {
            name: h.name,
            addresses: h.addresses,
            firewall: h.firewall ?? null,
            group: h.group ?? null,
            desired: d ? { revision: d.revision, changeId: d.changeId, updatedAt: d.updatedAt } : null,
            agent: r ? { lastReport: r.at, state: (r.report as { state?: string }).state ?? null } : null,
            drift: drift ? { inSync: drift.inSync, summary: drift.summary, at: r?.driftAt ?? null } : null,
          };
        }),
      ),
    }),
  }),
  defineRoute({
    method: 'GET',
    path: '/hosts/:name/desired',
    access: 'viewer',
    tag: 'hosts',
    summary: "A host's current desired ruleset",
    params: z.object({ name: z.string().min(1) }),
    handler: async ({ deps, params }) => {
      const d = await deps.store.getDesired(params.name);
      if (!d) throw new UserError('RAMPART_ERR_NOT_FOUND', `host ${params.name} has no desired ruleset yet`);
      return d;
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/hosts/:name/drift',
    access: 'viewer',
    tag: 'hosts',
    summary: "The host's live ruleset against its desired one, as a semantic diff (from the agent's last report)",
    params: z.object({ name: z.string().min(1) }),
    handler: async ({ deps, params }) => {
      const r = await deps.store.getHostReport(params.name);
      if (!r) throw new UserError('RAMPART_ERR_NOT_FOUND', `no agent has reported for host ${params.name} yet`);
      return {
        host: r.host,
        reportedAt: r.at,
        driftAt: r.driftAt,
        drift: r.drift,
        state: (r.report as { state?: string }).state ?? null,
      };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/jobs',
    access: 'viewer',
    tag: 'jobs',
    summary: "The agents' apply queue",
    query: z
      .object({
        host: z.string().optional(),
        changeId: z.coerce.number().int().positive().optional(),
        state: z.enum(['queued', 'taken', 'done', 'failed', 'cancelled']).optional(),
      })
      .strict(),
    handler: async ({ deps, query }) => ({ jobs: await deps.store.listJobs(query) }),
  }),
];

export const jobReportRoute = defineRoute({
  method: 'POST',
  path: '/jobs/:id/report',
  access: 'admin',
  tag: 'jobs',
  summary:
    "Record a job's outcome (the agent protocol of issue 6 reports through this; admin until agents have tokens)",
  params: z.object({ id: z.coerce.number().int().positive() }),
  body: z.object({ state: z.enum(['done', 'failed']), detail: z.string().max(4000).default('') }).strict(),
  handler: async ({ deps, actor, params, body }) => {
    const { ChangeService } = await import('../changes.js');
    return new ChangeService(deps).reportJob(actor, params.id, body.state, body.detail);
  },
});
