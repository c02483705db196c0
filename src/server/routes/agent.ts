import { z } from 'zod';
import { AGENT_EVENT_KINDS } from '../../agent/protocol.js';
import { RolloutService } from '../rollout.js';
import { defineRoute } from '../route.js';

const jobId = z.object({ id: z.coerce.number().int().positive() });
const health = z.object({ check: z.string(), ok: z.boolean(), detail: z.string(), ms: z.number() }).strict();

/** The agent protocol (src/agent/protocol.ts): an agent token speaks for the host it is named after, only. */
export const agentRoutes = [
  defineRoute({
    method: 'GET',
    path: '/agent/hello',
    access: 'agent',
    tag: 'agent',
    summary: 'Which host this agent token speaks for, and what the config says the agent manages there',
    handler: async ({ deps, actor }) => new RolloutService(deps).hello(actor.name),
  }),
  defineRoute({
    method: 'GET',
    path: '/agent/next',
    access: 'agent',
    tag: 'agent',
    summary: "The host's next job when it is its turn in the rollout (null otherwise)",
    handler: async ({ deps, actor }) => new RolloutService(deps).next(actor, actor.name),
  }),
  defineRoute({
    method: 'POST',
    path: '/agent/jobs/:id/events',
    access: 'agent',
    tag: 'agent',
    summary: 'A step of the safe apply, for the change timeline',
    params: jobId,
    body: z.object({ kind: z.enum(AGENT_EVENT_KINDS), at: z.iso.datetime(), detail: z.string().max(8000) }).strict(),
    handler: async ({ deps, actor, params, body }) =>
      new RolloutService(deps).recordEvent(actor, actor.name, params.id, body),
  }),
  defineRoute({
    method: 'POST',
    path: '/agent/jobs/:id/confirm',
    access: 'agent',
    tag: 'agent',
    summary: 'Ask for confirmation: the server probes the host through its firewall; confirmed = commit',
    params: jobId,
    body: z.object({ local: z.array(health).max(100) }).strict(),
    handler: async ({ deps, actor, params, body }) =>
      new RolloutService(deps).confirm(actor, actor.name, params.id, body),
  }),
  defineRoute({
    method: 'POST',
    path: '/agent/probes/:id',
    access: 'agent',
    tag: 'agent',
    summary: "A peer probe's results (the server asked this agent, in /agent/next, to probe another host)",
    params: z.object({ id: z.string().regex(/^[0-9a-f]{12}$/, '12 hex digits') }),
    body: z.object({ results: z.array(health).max(100) }).strict(),
    handler: async ({ deps, actor, params, body }) =>
      new RolloutService(deps).answerProbe(actor.name, params.id, body.results),
  }),
  defineRoute({
    method: 'POST',
    path: '/agent/report',
    access: 'agent',
    largeBody: true,
    tag: 'agent',
    summary: 'The live managed ruleset and listening sockets; the server computes drift',
    body: z
      .object({
        at: z.iso.datetime(),
        firewall: z.enum(['nftables', 'iptables']),
        live: z
          .object({ format: z.enum(['nft-text', 'nft-json', 'iptables-save']), text: z.string().max(16 * 1024 * 1024) })
          .strict(),
        sockets: z
          .array(
            z
              .object({ proto: z.enum(['tcp', 'udp']), address: z.string(), port: z.number().int().min(0).max(65535) })
              .strict(),
          )
          .max(10000),
        state: z.string().max(200),
      })
      .strict(),
    handler: async ({ deps, actor, body }) => {
      const r = await new RolloutService(deps).report(actor, actor.name, body);
      deps.monitoring.noteReport(actor.name, body.at, body.live, r.drift);
      return r;
    },
  }),
];
