/**
 * Alerting's routes (issue 15): alerts and their acknowledgement, the route a label set takes, Alertmanager's
 * webhook in, silences, and who is on call (with an iCal feed per schedule). People's actions are audited.
 */
import { z } from 'zod';
import { scheduleCalendar } from '../../alerting/ical.js';
import { MATCHER_EXPECTED, type Matcher, parseMatcher, parseMatchers } from '../../alerting/matchers.js';
import { onCallNowAndNext } from '../../alerting/schedule.js';
import { NO_ALERTING } from '../../config/alerting.js';
import { UserError } from '../../errors.js';
import { AlertingInputError } from '../alerting.js';
import { defineRoute, type ServerDeps } from '../route.js';

function inputError(e: unknown): never {
  if (e instanceof AlertingInputError) {
    throw new UserError('RAMPART_ERR_VALIDATION', e.message, {
      errors: [{ field: e.field, message: `${e.problem}; expected ${e.expected}` }],
    });
  }
  throw e;
}

const matcherText = z.string().min(1).max(1024);
const labelsQuery = z
  .string()
  .max(4096)
  .transform((text, ctx) => {
    const out: Record<string, string> = {};
    for (const part of text.split(',').filter((p) => p.trim() !== '')) {
      const m = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*(.*?)\s*$/.exec(part);
      if (!m) {
        ctx.addIssue({ code: 'custom', message: `'${part}' is not name=value (like severity=critical)` });
        return z.NEVER;
      }
      out[m[1] as string] = (m[2] as string).replace(/^"(.*)"$/, '$1');
    }
    return out;
  });

const schedulesOf = (deps: ServerDeps) => (deps.config.current().alerting ?? NO_ALERTING).onCall.schedules;

export const alertRoutes = [
  defineRoute({
    method: 'GET',
    path: '/alerts',
    access: 'viewer',
    tag: 'alerts',
    summary: 'Alerts, newest first, each with why it is not notified now (silenced, inhibited, maintenance)',
    query: z.object({ state: z.enum(['firing', 'resolved']).optional() }).strict(),
    handler: async ({ deps, query }) => ({
      alerts: await deps.alerting.alerts(query.state ? { state: query.state } : {}),
    }),
  }),
  defineRoute({
    method: 'GET',
    path: '/alerts/route',
    access: 'viewer',
    tag: 'alerts',
    summary: 'The routes and receivers an alert with these labels takes (like amtool config routes test)',
    query: z.object({ labels: labelsQuery }).strict(),
    handler: async ({ deps, query }) => deps.alerting.route(query.labels),
  }),
  defineRoute({
    method: 'GET',
    path: '/alerts/:fingerprint',
    access: 'viewer',
    tag: 'alerts',
    summary: 'One alert, with why it is not notified now and the runbooks of its service and routes',
    params: z.object({ fingerprint: z.string().regex(/^[0-9a-f]{16}$/) }),
    handler: async ({ deps, params }) => {
      const a = await deps.alerting.alert(params.fingerprint);
      if (!a) throw new UserError('RAMPART_ERR_NOT_FOUND', `no alert ${params.fingerprint}`);
      return a;
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/alerts/:fingerprint/ack',
    access: 'operator',
    tag: 'alerts',
    summary: 'Acknowledges a firing alert: its escalation stops; it still resolves by itself',
    params: z.object({ fingerprint: z.string().regex(/^[0-9a-f]{16}$/) }),
    handler: async ({ deps, params, actor }) => {
      const a = await deps.alerting.ack(params.fingerprint, actor);
      if (!a) throw new UserError('RAMPART_ERR_NOT_FOUND', `no firing alert ${params.fingerprint}`);
      return a;
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/alerts/:fingerprint/resolve',
    access: 'operator',
    tag: 'alerts',
    summary: 'Resolves a firing alert by hand (it fires again if its source says so)',
    params: z.object({ fingerprint: z.string().regex(/^[0-9a-f]{16}$/) }),
    handler: async ({ deps, params, actor }) => {
      const a = await deps.alerting.resolve(params.fingerprint, actor);
      if (!a) throw new UserError('RAMPART_ERR_NOT_FOUND', `no firing alert ${params.fingerprint}`);
      return a;
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/alerts/alertmanager',
    access: 'alertmanager',
    tag: 'alerts',
    summary: "Alertmanager's webhook (version 4): a team's Prometheus alerts join Rampart's routing",
    // A group of hundreds of alerts is well over the 64 KiB of the small routes (Alertmanager's max_alerts is 0).
    largeBody: true,
    body: z
      .object({
        version: z.string().optional(),
        status: z.string().optional(),
        alerts: z
          .array(
            z
              .object({
                status: z.enum(['firing', 'resolved']),
                labels: z.record(z.string(), z.string()),
                annotations: z.record(z.string(), z.string()).optional(),
                startsAt: z.string().optional(),
                endsAt: z.string().optional(),
                generatorURL: z.string().optional(),
              })
              .passthrough(),
          )
          .max(10_000),
      })
      .passthrough(),
    handler: async ({ deps, body }) => deps.alerting.ingestAlertmanager(body).catch(inputError),
  }),
  defineRoute({
    method: 'GET',
    path: '/silences',
    access: 'viewer',
    tag: 'alerts',
    summary: 'Silences, newest first, with their status (pending, active, expired)',
    handler: async ({ deps }) => ({ silences: await deps.alerting.silences() }),
  }),
  defineRoute({
    method: 'POST',
    path: '/silences',
    access: 'operator',
    tag: 'alerts',
    status: 201,
    summary: 'Creates a silence: matchers, start and end (or until what it matches resolves), and a comment',
    body: z
      .object({
        matchers: z.union([z.array(matcherText).min(1).max(64), matcherText]),
        startsAt: z.iso.datetime().optional(),
        endsAt: z.iso.datetime().optional(),
        untilResolved: z.boolean().optional(),
        comment: z.string().min(1).max(4096),
      })
      .strict(),
    handler: async ({ deps, body, actor }) => {
      const matchers: Matcher[] = [];
      const texts = typeof body.matchers === 'string' ? [body.matchers] : body.matchers;
      for (const [i, t] of texts.entries()) {
        const parsed = typeof body.matchers === 'string' ? parseMatchers(t) : parseMatcher(t);
        if (typeof parsed === 'string' || (!Array.isArray(parsed) && 'problem' in parsed)) {
          const problem = typeof parsed === 'string' ? parsed : parsed.problem;
          throw new UserError('RAMPART_ERR_VALIDATION', `body.matchers[${i}]: ${problem}`, {
            errors: [{ field: `body.matchers[${i}]`, message: `${problem}; expected ${MATCHER_EXPECTED}` }],
          });
        }
        if (Array.isArray(parsed)) matchers.push(...parsed);
        else matchers.push(parsed);
      }
      return deps.alerting
        .addSilence(
          {
            matchers,
            comment: body.comment,
            ...(body.startsAt ? { startsAt: new Date(body.startsAt).toISOString() } : {}),
            ...(body.endsAt ? { endsAt: new Date(body.endsAt).toISOString() } : {}),
            ...(body.untilResolved !== undefined ? { untilResolved: body.untilResolved } : {}),
          },
          actor,
        )
        .catch(inputError);
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/silences/:id',
    access: 'operator',
    tag: 'alerts',
    summary: 'Expires a silence now',
    params: z.object({ id: z.string().min(1).max(64) }),
    handler: async ({ deps, params, actor }) => {
      if (!(await deps.alerting.expireSilence(params.id, actor)))
        throw new UserError('RAMPART_ERR_NOT_FOUND', `no active or pending silence ${params.id}`);
      return { id: params.id, expired: true };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/oncall',
    access: 'viewer',
    tag: 'alerts',
    summary: 'Who is on call now and who is next, per schedule',
    handler: async ({ deps }) => {
      const now = deps.now().getTime();
      return {
        schedules: schedulesOf(deps).map((s) => {
          const { now: on, next } = onCallNowAndNext(s, now);
          return {
            name: s.name,
            timeZone: s.timeZone,
            now: on ? { user: on.user, source: on.source } : null,
            next: next ? { at: new Date(next.atMs).toISOString(), user: next.to?.user ?? null } : null,
          };
        }),
      };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/oncall/:schedule.ics',
    access: 'viewer',
    tag: 'alerts',
    summary: "A schedule's shifts from a week ago to 90 days ahead as an iCalendar (RFC 5545) feed",
    produces: ['text/calendar'],
    params: z.object({ schedule: z.string().min(1).max(253) }),
    handler: async ({ deps, params, reply }) => {
      const s = schedulesOf(deps).find((x) => x.name === params.schedule);
      if (!s) throw new UserError('RAMPART_ERR_NOT_FOUND', `no schedule '${params.schedule}'`);
      const now = deps.now().getTime();
      const ics = scheduleCalendar(s, now - 7 * 86_400_000, now + 90 * 86_400_000, {
        nowMs: now,
        externalURL: deps.config.current().alerting?.externalURL ?? '',
      });
      reply.header('content-type', 'text/calendar; charset=utf-8');
      return reply.send(ics);
    },
  }),
];
