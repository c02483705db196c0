import { z } from 'zod';
import { CHANGE_STATES } from '../../store/types.js';
import { defineRoute } from '../route.js';

export const systemRoutes = [
  defineRoute({
    method: 'GET',
    path: '/healthz',
    access: 'public',
    tag: 'system',
    summary: 'Liveness and store check',
    handler: async ({ deps }) => ({ status: 'ok', store: deps.store.kind, schema: await deps.store.schemaVersion() }),
  }),
  defineRoute({
    method: 'GET',
    path: '/metrics',
    access: 'public',
    tag: 'system',
    summary: 'Prometheus metrics (aggregate counts only, no names or rulesets)',
    produces: ['text/plain; version=0.0.4'],
    handler: async ({ deps, reply }) => {
      // One GROUP BY per scrape: the changes themselves (with their rulesets) are never loaded for a count.
      const counts = await deps.store.countChangesByState();
      for (const state of CHANGE_STATES) deps.metrics.changes.set({ state }, counts[state] ?? 0);
      const load = deps.planner.load();
      deps.metrics.plans.set({ state: 'queued' }, load.queued);
      deps.metrics.plans.set({ state: 'running' }, load.running);
      await deps.incidents.exportMetrics(deps.metrics);
      reply.header('content-type', deps.metrics.registry.contentType);
      return reply.send(await deps.metrics.registry.metrics());
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/whoami',
    access: 'viewer',
    tag: 'system',
    summary: 'The token this request authenticated with',
    handler: async ({ token, actor }) => ({ id: token?.id, name: actor.name, role: actor.role, from: actor.from }),
  }),
  defineRoute({
    method: 'POST',
    path: '/config/reload',
    access: 'admin',
    tag: 'config',
    summary: 'Re-read rampart.yaml; an invalid file is refused and the config in force stays',
    handler: async ({ deps, actor }) => {
      const r = deps.config.reload();
      deps.metrics.configReloads.inc({ result: r.ok ? 'ok' : 'refused' });
      await deps.store.write(actor, (w) =>
        w.audit({
          action: r.ok ? 'config.reload' : 'config.reload-refused',
          target: 'config',
          after: r.ok ? { file: deps.config.path } : { file: deps.config.path, error: r.error.message },
        }),
      );
      if (!r.ok) throw r.error;
      return { status: 'reloaded', file: deps.config.path };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/config',
    access: 'viewer',
    tag: 'config',
    summary: 'The configuration in force: hosts, services, policy',
    handler: async ({ deps }) => {
      const c = deps.config.current();
      return {
        file: deps.config.path,
        site: c.site ?? null,
        hosts: c.hosts.map(({ at: _at, ...h }) => h),
        services: c.services.map((s) => ({
          name: s.name,
          hosts: s.hosts,
          group: s.group ?? null,
          public: s.public.map((p) => p.text),
        })),
        policy: { ...c.policy, freeze: c.policy.freeze.map(({ at: _at, ...f }) => f) },
        intents: c.intents.length,
      };
    },
  }),
];

export const idParam = z.object({ id: z.coerce.number().int().positive().describe('change id') });
