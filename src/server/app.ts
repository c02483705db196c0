/**
 * The Fastify app: every route of the registry (routes/index.ts) with authentication, the route's role check and
 * zod validation of params, query and body in front of its handler; RFC 9457 problems for every error; request
 * metrics. Nothing here knows SQL (the store) or the change rules (src/change/).
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ParseError, UserError } from '../errors.js';
import { jsonReplacer } from '../firewall/values.js';
import { roleAtLeast, type Store } from '../store/types.js';
import { bearerOf, forbidden, parseToken, secretMatches, unauthenticated } from './auth.js';
import { createMetrics } from './metrics.js';
import { createPlanner } from './planner.js';
import { ProbeBoard } from './probe-board.js';
import { type FieldProblem, PROBLEM_CONTENT_TYPE, problemFromError, problemOf } from './problem.js';
import type { ConfigHolder, RouteDef, ServerDeps } from './route.js';
import { urlOf } from './route.js';
import { ROUTES } from './routes/index.js';

export interface ServerOptions {
  readonly store: Store;
  readonly config: ConfigHolder;
  readonly now?: () => Date;
  /** pino logging (default off: the CLI turns it on). */
  readonly logger?: boolean | { readonly level: string };
  /** Largest accepted request body in bytes (default 16 MiB: a 100k-rule iptables-save fits). */
  readonly bodyLimit?: number;
}

export const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;

function zodProblems(where: string, error: z.ZodError): FieldProblem[] {
  return error.issues.map((i) => ({
    field: [where, ...i.path.map(String)].join('.'),
    message: i.message,
  }));
}

function validate(where: string, schema: z.ZodType | undefined, value: unknown): unknown {
  if (!schema) return value;
  const r = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (r.success) return r.data;
  const errors = zodProblems(where, r.error);
  throw new UserError('RAMPART_ERR_VALIDATION', errors.map((e) => `${e.field}: ${e.message}`).join('; '), { errors });
}

function sendProblem(reply: FastifyReply, req: FastifyRequest, e: unknown): FastifyReply {
  let problem = problemFromError(e);
  if (e instanceof ParseError && !(problem.errors && problem.errors.length > 0)) {
    // A ruleset or config that does not parse: the field is the body field it came in, with line:column.
    problem = { ...problem, errors: [{ field: 'body.ruleset', message: e.message }] };
  }
  if (problem.status >= 500) req.log.error({ err: e }, 'request failed');
  return reply
    .code(problem.status)
    .header('content-type', PROBLEM_CONTENT_TYPE)
    .send(JSON.stringify({ ...problem, instance: req.url }, jsonReplacer));
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const deps: ServerDeps = {
    store: opts.store,
    config: opts.config,
    now: opts.now ?? (() => new Date()),
    metrics: createMetrics(),
    planner: createPlanner(),
    probes: new ProbeBoard(),
  };
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Behind a load balancer the operator sets trustProxy themselves; by default the socket address is "from where".
    trustProxy: false,
  });

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendProblem(
        reply,
        req,
        new UserError('RAMPART_ERR_TOO_LARGE', `the request body is larger than ${app.initialConfig.bodyLimit} bytes`),
      );
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      // Fastify's own input errors (malformed JSON, wrong content type): the body as a whole is the field.
      const e = new UserError('RAMPART_ERR_VALIDATION', error.message, {
        errors: [{ field: 'body', message: error.message }],
      });
      return sendProblem(reply, req, e);
    }
    return sendProblem(reply, req, error);
  });
  app.setNotFoundHandler((req, reply) =>
    sendProblem(reply, req, new UserError('RAMPART_ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)),
  );

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    deps.metrics.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    deps.metrics.duration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  app.addHook('onClose', async () => deps.planner.close());
  for (const route of ROUTES) register(app, route, deps);
  return app;
}

function register(app: FastifyInstance, route: RouteDef, deps: ServerDeps): void {
  app.route({
    method: route.method,
    url: urlOf(route),
    handler: async (req, reply) => {
      try {
        let token: Awaited<ReturnType<Store['getToken']>>;
        if (route.access !== 'public') {
          const presented = bearerOf(req.headers.authorization);
          if (!presented) throw unauthenticated('no token');
          const parsed = parseToken(presented);
          if (!parsed) throw unauthenticated('malformed token');
          token = await deps.store.getToken(parsed.id);
          if (!token || !secretMatches(token, parsed.secret)) throw unauthenticated('unknown token');
          if (token.revokedAt !== null) throw unauthenticated(`token ${token.id} was revoked at ${token.revokedAt}`);
          if (!roleAtLeast(token.role, route.access)) {
            throw forbidden(token.role, route.access, `${route.method} ${urlOf(route)}`);
          }
        }
        const params = validate('params', route.params, req.params);
        const query = validate('query', route.query, req.query);
        const body = validate('body', route.body, req.body);
        const actor = token
          ? { name: token.name, role: token.role, from: req.ip }
          : { name: 'anonymous', role: 'system' as const, from: req.ip };
        const result = await route.handler({
          params,
          query,
          body,
          actor,
          token,
          req,
          reply,
          deps,
        } as never);
        if (reply.sent) return reply;
        if (route.status) reply.code(route.status);
        if (typeof result === 'string') return reply.send(result);
        return reply
          .header('content-type', 'application/json; charset=utf-8')
          .send(JSON.stringify(result, jsonReplacer));
      } catch (e) {
        return sendProblem(reply, req, e);
      }
    },
  });
}

export { problemOf };
