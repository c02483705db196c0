/**
 * Incidents' routes (issue 16; docs/incidents.md): list, show with the timeline, declare, acknowledge, note, status,
 * assign, resolve, public status-page updates, star timeline entries, and the postmortem (GET drafts it the first time; PUT stores an edited
 * version). Reading takes a viewer; acting takes an operator. Every action is audited by the incident service.
 */
import { z } from 'zod';
import { UserError } from '../../errors.js';
import { parseSeverity } from '../../incident/lifecycle.js';
import { parseSince, SINCE_EXPECTED } from '../../incident/stats.js';
import { STATUSES } from '../../incident/types.js';
import { remediate } from '../remediate.js';
import { defineRoute } from '../route.js';

const id = z.object({ id: z.coerce.number().int().positive() });
const text = z.string().max(4000);
const severity = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const s = parseSeverity(v);
  if (s) return s;
  ctx.addIssue({ code: 'custom', message: `'${v}' is not a severity; expected SEV1, SEV2, SEV3 or SEV4 (or 1-4)` });
  return z.NEVER;
});
const names = z.array(z.string().min(1).max(253)).max(100);

export const incidentRoutes = [
  defineRoute({
    method: 'GET',
    path: '/incidents',
    access: 'viewer',
    tag: 'incidents',
    summary: 'Incidents, newest first (open: every status but resolved)',
    query: z
      .object({
        status: z.enum(['open', ...STATUSES]).optional(),
        since: z.string().datetime().optional(),
        limit: z.coerce.number().int().min(1).max(1000).optional(),
      })
      .strict(),
    handler: async ({ deps, query }) => ({ incidents: await deps.incidents.list(query) }),
  }),
  defineRoute({
    method: 'GET',
    path: '/incidents/stats',
    access: 'viewer',
    tag: 'incidents',
    summary:
      'Incident figures since a time (default 90d): counts by severity and service, MTTD, MTTA and MTTR (median and p90, seconds)',
    query: z.object({ since: z.string().max(64, SINCE_EXPECTED).optional() }).strict(),
    handler: async ({ deps, query }) => {
      const text = query.since ?? '90d';
      const since = parseSince(text, deps.now().getTime());
      if (typeof since === 'string') {
        const message = `'${text}': ${since}; expected ${SINCE_EXPECTED}`;
        throw new UserError('RAMPART_ERR_VALIDATION', `query.since: ${message}`, {
          errors: [{ field: 'query.since', message }],
        });
      }
      return deps.incidents.stats(since);
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/incidents/:id',
    access: 'viewer',
    tag: 'incidents',
    summary:
      'An incident with its timeline (UTC and the site time zone), assembled from events, alerts, notifications, changes and drift',
    params: id,
    handler: async ({ deps, params }) => deps.incidents.show(params.id),
  }),
  defineRoute({
    method: 'POST',
    path: '/incidents',
    access: 'operator',
    tag: 'incidents',
    status: 201,
    summary: 'Declares an incident by hand',
    body: z
      .object({
        title: z.string().min(1).max(300),
        severity,
        services: names.optional(),
        hosts: names.optional(),
        commander: z.string().min(1).max(253).optional(),
        startedAt: z.string().datetime({ offset: true }).optional(),
      })
      .strict(),
    handler: async ({ deps, body, actor }) =>
      deps.incidents.declare(
        {
          title: body.title,
          severity: body.severity,
          ...(body.services ? { services: body.services } : {}),
          ...(body.hosts ? { hosts: body.hosts } : {}),
          ...(body.commander ? { commander: body.commander } : {}),
          ...(body.startedAt ? { startedAt: body.startedAt } : {}),
        },
        actor,
      ),
  }),
  defineRoute({
    method: 'POST',
    path: '/incidents/:id/ack',
    access: 'operator',
    tag: 'incidents',
    summary: 'Acknowledges an incident (MTTA stops); the one who acknowledges commands unless someone does',
    params: id,
    handler: async ({ deps, params, actor }) => deps.incidents.ack(params.id, actor),
  }),
  defineRoute({
    method: 'POST',
    path: '/incidents/:id/notes',
    access: 'operator',
    tag: 'incidents',
    status: 201,
    summary: "Adds a responder's note to the timeline",
    params: id,
    body: z.object({ text: text.min(1) }).strict(),
    handler: async ({ deps, params, body, actor }) => deps.incidents.note(params.id, body.text, actor),
  }),
  defineRoute({
    method: 'POST',
    path: '/incidents/:id/public-updates',
    access: 'operator',
    tag: 'incidents',
    status: 201,
    summary: 'An update for the public status page (GET /status.json shows it while the incident is open), audited',
    params: id,
    body: z.object({ text: text.min(1) }).strict(),
    handler: async ({ deps, params, body, actor }) => deps.incidents.publicUpdate(params.id, body.text, actor),
  }),
  defineRoute({
    method: 'POST',
    path: '/incidents/:id/status',
    access: 'operator',
    tag: 'incidents',
    summary: 'A status update: investigating, identified, monitoring (mitigated) or resolved, with what was found',
    params: id,
    body: z.object({ status: z.enum(STATUSES), text: text.optional() }).strict(),
    handler: async ({ deps, params, body, actor }) =>
      deps.incidents.status(params.id, body.status, body.text ?? '', actor),
  }),
  defineRoute({
    method: 'POST',
    path: '/incidents/:id/assign',
    access: 'operator',
    tag: 'incidents',
    summary: 'Makes a user the incident commander',
    params: id,
    body: z.object({ commander: z.string().min(1).max(253) }).strict(),
    handler: async ({ deps, params, body, actor }) => deps.incidents.assign(params.id, body.commander, actor),
  }),
  defineRoute({
    method: 'POST',
    path: '/incidents/:id/resolve',
    access: 'operator',
    tag: 'incidents',
    summary: 'Resolves an incident (MTTR stops); a new firing of its alert group within the reopen window reopens it',
    params: id,
    body: z.object({ text: text.optional() }).strict().optional(),
    handler: async ({ deps, params, body, actor }) => deps.incidents.resolve(params.id, body?.text ?? '', actor),
  }),
  defineRoute({
    method: 'POST',
    path: '/incidents/:id/star',
    access: 'operator',
    tag: 'incidents',
    summary: 'Stars (or unstars) a timeline entry by its key: starred entries are in the postmortem',
    params: id,
    body: z.object({ key: z.string().min(1).max(300), starred: z.boolean().default(true) }).strict(),
    handler: async ({ deps, params, body, actor }) => {
      await deps.incidents.star(params.id, body.key, body.starred, actor);
      return { key: body.key, starred: body.starred };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/incidents/:id/suspects',
    access: 'viewer',
    tag: 'incidents',
    summary:
      "The suspected cause: every change and drift in the look-back window on the incident's hosts, judged by the packet-space engine against its failing flows, suspected first (or the plain `none` verdict)",
    params: id,
    handler: async ({ deps, params }) => deps.incidents.suspects(params.id),
  }),
  defineRoute({
    method: 'POST',
    path: '/incidents/:id/remediate',
    access: 'operator',
    tag: 'incidents',
    status: 201,
    summary:
      'Proposes the fix of the suspected cause as a change through the normal review path: the rollback of a Rampart change, or the restoration of the desired ruleset after an out-of-band edit',
    params: id,
    body: z
      .object({ reason: text.min(1).optional() })
      .strict()
      .optional(),
    handler: async ({ deps, params, body, actor }) => remediate(deps, actor, params.id, body?.reason),
  }),
  defineRoute({
    method: 'GET',
    path: '/incidents/:id/postmortem',
    access: 'viewer',
    tag: 'incidents',
    summary: "The postmortem in the founding document's structure (the first request drafts and stores version 1)",
    params: id,
    query: z
      .object({
        format: z.enum(['json', 'markdown']).optional(),
        version: z.coerce.number().int().positive().optional(),
      })
      .strict(),
    produces: ['application/json', 'text/markdown'],
    handler: async ({ deps, params, query, reply }) => {
      const pm = await deps.incidents.postmortem(params.id, query.version);
      if (query.format === 'markdown') {
        reply.header('content-type', 'text/markdown; charset=utf-8');
        return reply.send(pm.markdown);
      }
      return pm;
    },
  }),
  defineRoute({
    method: 'PUT',
    path: '/incidents/:id/postmortem',
    access: 'operator',
    tag: 'incidents',
    summary: 'Stores an edited postmortem as the next version; `version` is the one the edit started from',
    params: id,
    body: z.object({ markdown: z.string().min(1).max(60_000), version: z.number().int().min(0) }).strict(),
    handler: async ({ deps, params, body, actor }) =>
      deps.incidents.savePostmortem(params.id, body.markdown, body.version, actor),
  }),
];
