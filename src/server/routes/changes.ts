import { z } from 'zod';
import { renderPlanMarkdown, renderPlanText } from '../../change/render-plan.js';
import type { Plan } from '../../change/types.js';
import { UserError } from '../../errors.js';
import { CHANGE_STATES, type Store } from '../../store/types.js';
import { ChangeService } from '../changes.js';
import { defineRoute } from '../route.js';
import { idParam } from './system.js';

const FORMATS = ['nft-text', 'nft-json', 'iptables-save'] as const;
const NAME = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a host or group name from rampart.yaml');

const target = z
  .union([
    z
      .object({ host: NAME })
      .strict()
      .transform((t) => ({ kind: 'host' as const, name: t.host })),
    z
      .object({ group: NAME })
      .strict()
      .transform((t) => ({ kind: 'group' as const, name: t.group })),
  ])
  .describe('either {"host": "web1"} or {"group": "web"}');

const reason = z.string().trim().min(3, 'say why, in at least 3 characters').max(2000);

/** The plan the caller read before deciding: a decision is bound to it, and refused once the change moved on. */
const seenPlan = z
  .number()
  .int()
  .min(1)
  .describe('the id of the plan you read (GET /changes/{id}: plan.id); refused with 409 when it is no longer current');

/**
 * A waiting change's plan in a few words, for lists (the overview, the changes page): whether it is blocked and the
 * first line of its first blocker, so a reviewer sees which waiting change needs an admin before opening it.
 */
async function planBrief(
  store: Pick<Store, 'latestPlan'>,
  changeId: number,
): Promise<{ id: number; risk: string; blocked: boolean; stale: boolean; blockers: number; blocker?: string } | null> {
  const p = await store.latestPlan(changeId);
  if (!p) return null;
  const blockers = (p.plan as Partial<Plan> | null)?.blockers ?? [];
  const first = blockers[0]?.message.split('\n')[0];
  return {
    id: p.id,
    risk: p.risk,
    blocked: p.blocked,
    stale: p.stale,
    blockers: blockers.length,
    ...(first ? { blocker: first } : {}),
  };
}

export const changeRoutes = [
  defineRoute({
    method: 'GET',
    path: '/changes',
    access: 'viewer',
    tag: 'changes',
    summary:
      'List changes, newest first; a change waiting for review (planned) carries its plan in brief: id, risk, blocked, stale and the first blocker',
    query: z
      .object({
        state: z.enum(CHANGE_STATES).optional(),
        host: NAME.optional(),
        limit: z.coerce.number().int().min(1).max(500).default(50),
      })
      .strict(),
    handler: async ({ deps, query }) => ({
      changes: await Promise.all(
        (await deps.store.listChanges(query)).map(async ({ ruleset: _r, ...c }) =>
          c.state === 'planned' ? { ...c, plan: await planBrief(deps.store, c.id) } : c,
        ),
      ),
    }),
  }),
  defineRoute({
    method: 'POST',
    path: '/changes',
    access: 'operator',
    largeBody: true,
    tag: 'changes',
    status: 201,
    summary:
      'Propose a desired ruleset for a host or group; 201 with the plan, or 202 with the change planning when the plan takes longer (follow GET /changes/{id})',
    body: z
      .object({
        target,
        ruleset: z.string().min(1, 'the desired ruleset text (nft, nft -j or iptables-save)'),
        format: z.enum(FORMATS).optional(),
        file: z.string().max(500).optional().describe('the file name the ruleset was read from, for error locations'),
        reason,
        ticket: z.string().max(500).optional(),
      })
      .strict(),
    handler: async ({ deps, actor, body, reply }) => {
      const { target: t, ...rest } = body;
      const { view, status } = await new ChangeService(deps).propose(actor, {
        target: t,
        ruleset: rest.ruleset,
        reason: rest.reason,
        ...(rest.format ? { format: rest.format } : {}),
        ...(rest.file ? { file: rest.file } : {}),
        ...(rest.ticket ? { ticket: rest.ticket } : {}),
      });
      reply.code(status);
      return view;
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/changes/:id',
    access: 'viewer',
    tag: 'changes',
    summary: 'A change with its latest plan, reviews, approval status, jobs and flags',
    params: idParam,
    query: z
      .object({
        ruleset: z
          .enum(['true', 'false'])
          .default('true')
          .describe('false: leave the ruleset text out (for polling a large change)'),
      })
      .strict(),
    handler: async ({ deps, params, query }) =>
      new ChangeService(deps).view(params.id, { ruleset: query.ruleset === 'true' }),
  }),
  defineRoute({
    method: 'PATCH',
    path: '/changes/:id',
    access: 'operator',
    largeBody: true,
    tag: 'changes',
    summary: "Edit a change's ruleset or reason (author or admin): approvals are void, the plan is recomputed",
    params: idParam,
    body: z
      .object({
        ruleset: z.string().min(1).optional(),
        format: z.enum(FORMATS).optional(),
        file: z.string().max(500).optional(),
        reason: reason.optional(),
      })
      .strict()
      .refine((b) => b.ruleset !== undefined || b.reason !== undefined, 'give a new ruleset or reason'),
    handler: async ({ deps, actor, params, body, reply }) => {
      const { view, status } = await new ChangeService(deps).update(actor, params.id, {
        ...(body.ruleset !== undefined ? { ruleset: body.ruleset } : {}),
        ...(body.format !== undefined ? { format: body.format } : {}),
        ...(body.file !== undefined ? { file: body.file } : {}),
        ...(body.reason !== undefined ? { reason: body.reason } : {}),
      });
      reply.code(status);
      return view;
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/changes/:id/plan',
    access: 'viewer',
    tag: 'changes',
    summary: 'The latest plan as JSON, text or Markdown',
    params: idParam,
    query: z.object({ format: z.enum(['json', 'text', 'markdown']).default('json') }).strict(),
    produces: ['application/json', 'text/plain', 'text/markdown'],
    handler: async ({ deps, params, query, reply }) => {
      const view = await new ChangeService(deps).view(params.id);
      if (!view.plan) throw new UserError('RAMPART_ERR_NOT_FOUND', `change ${params.id} has no plan yet`);
      const plan = view.plan.plan as Plan;
      if (query.format === 'json') return { ...view.plan, flags: view.flags };
      const head = view.flags.map((f) => (query.format === 'markdown' ? `> **${f}**\n` : `${f}\n`)).join('');
      const text = query.format === 'markdown' ? renderPlanMarkdown(plan) : renderPlanText(plan, { color: false });
      reply.header(
        'content-type',
        query.format === 'markdown' ? 'text/markdown; charset=utf-8' : 'text/plain; charset=utf-8',
      );
      return reply.send(`${head}${head ? '\n' : ''}${text}`);
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/changes/:id/plan',
    access: 'operator',
    tag: 'changes',
    summary: 'Re-plan: recompute when the change or a host moved on (approvals are then void)',
    params: idParam,
    handler: async ({ deps, actor, params, reply }) => {
      const { view, status } = await new ChangeService(deps).replan(actor, params.id);
      reply.code(status);
      return view;
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/changes/:id/approve',
    access: 'approver',
    tag: 'reviews',
    summary: 'Approve the plan you read (never your own change; 409 when the change has a newer plan)',
    params: idParam,
    body: z.object({ plan: seenPlan, comment: z.string().max(2000).default('') }).strict(),
    handler: async ({ deps, actor, token, params, body }) =>
      new ChangeService(deps).review(actor, params.id, 'approve', body.comment, body.plan, token),
  }),
  defineRoute({
    method: 'POST',
    path: '/changes/:id/reject',
    access: 'approver',
    tag: 'reviews',
    summary: 'Reject the plan you read, with a comment',
    params: idParam,
    body: z
      .object({ plan: seenPlan, comment: z.string().trim().min(3, 'say why the change is rejected').max(2000) })
      .strict(),
    handler: async ({ deps, actor, token, params, body }) =>
      new ChangeService(deps).review(actor, params.id, 'reject', body.comment, body.plan, token),
  }),
  defineRoute({
    method: 'POST',
    path: '/changes/:id/override',
    access: 'admin',
    tag: 'reviews',
    summary:
      'Override the blocked plan you read, with a reason: it covers that ruleset and its blockers, and lapses on an edit or a new blocker',
    params: idParam,
    body: z
      .object({
        plan: seenPlan,
        reason: z.string().trim().min(10, 'an override needs a real reason (10+ characters)').max(2000),
      })
      .strict(),
    handler: async ({ deps, actor, params, body }) =>
      new ChangeService(deps).override(actor, params.id, body.reason, body.plan),
  }),
  defineRoute({
    method: 'POST',
    path: '/changes/:id/rollback',
    access: 'operator',
    tag: 'changes',
    status: 201,
    summary: "Roll an applied change back: proposes each host's previous desired ruleset as a new, linked change",
    params: idParam,
    body: z.object({ reason }).strict(),
    handler: async ({ deps, actor, params, body }) => ({
      changes: await new ChangeService(deps).rollback(actor, params.id, body.reason),
    }),
  }),
  defineRoute({
    method: 'POST',
    path: '/changes/:id/apply',
    access: 'operator',
    tag: 'changes',
    summary: "Hand an approved, current plan to the agents' queue (inside a freeze only as an emergency)",
    params: idParam,
    body: z
      .object({
        emergency: z
          .object({ reason: z.string().trim().min(10, 'an emergency needs a real reason (10+ characters)') })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    handler: async ({ deps, actor, params, body }) => new ChangeService(deps).apply(actor, params.id, body.emergency),
  }),
];
