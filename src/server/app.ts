/**
 * The Fastify app: every route of the registry (routes/index.ts) with authentication, the route's role check and
 * zod validation of params, query and body in front of its handler; RFC 9457 problems for every error; request
 * metrics. Nothing here knows SQL (the store) or the change rules (src/change/).
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ParseError, UserError } from '../errors.js';
import { jsonReplacer } from '../firewall/values.js';
import { roleAtLeast, type Store, type TokenRecord } from '../store/types.js';
import { AlertingService, type AlertingServiceOptions } from './alerting.js';
import { bearerOf, forbidden, parseToken, secretMatches, unauthenticated } from './auth.js';
import { AuthGuard, type AuthLimits, DEFAULT_AUTH_LIMITS, LastUsed } from './auth-guard.js';
import { ChangeService } from './changes.js';
import { IncidentService, type IncidentServiceOptions } from './incidents.js';
import { createMetrics } from './metrics.js';
import { MonitorService, type MonitorServiceOptions } from './monitoring.js';
import { createPlanner, type PlannerOptions } from './planner.js';
import { ProbeBoard } from './probe-board.js';
import { type FieldProblem, PROBLEM_CONTENT_TYPE, problemFromError, problemOf } from './problem.js';
import type { ConfigHolder, RouteDef, ServerDeps } from './route.js';
import { urlOf } from './route.js';
import { ROUTES } from './routes/index.js';
import { attachSession, checkCsrf, type SessionContext, sessionCookieOf, sessionFor } from './session.js';
import { registerStatusPage } from './status-page.js';
import { Hub, TOPICS_OF_TAG } from './stream.js';
import { TrafficService } from './traffic.js';
import { registerWeb } from './web.js';

/** A part of the server that takes longer than this to stop is named in a warning. */
const SLOW_STOP_MS = 5_000;

/**
 * Stops one part of the server and logs how long it took: a warning that names the part when it took 5 s or more,
 * so a hung shutdown says where (the services below, and `rampart serve`'s HTTP close and store).
 */
export async function timedStop(
  log: FastifyInstance['log'],
  part: string,
  stop: () => Promise<unknown>,
): Promise<void> {
  const started = Date.now();
  await stop();
  const ms = Date.now() - started;
  if (ms >= SLOW_STOP_MS) log.warn({ part, ms }, `shutdown: ${part} took ${(ms / 1000).toFixed(1)} s to stop`);
  else log.debug({ part, ms }, 'shutdown: stopped');
}

export interface ServerOptions {
  readonly store: Store;
  readonly config: ConfigHolder;
  readonly now?: () => Date;
  /** pino logging (default off: the CLI turns it on). */
  readonly logger?: boolean | { readonly level: string; readonly pretty?: boolean };
  /** Largest accepted body of the routes that carry a ruleset, in bytes (default 16 MiB: 100k iptables rules fit). */
  readonly bodyLimit?: number;
  /** Failed authentications allowed per address or token id and window before 429 (default 10 per 60 s). */
  readonly authLimits?: AuthLimits;
  /** How long a proposal waits for its plan before answering 202 with the change planning (default 2 s). */
  readonly planWaitMs?: number;
  /** The plan threads (default: 2 threads, the built worker). */
  readonly planner?: PlannerOptions;
  /** Monitoring's settings (issue 14); `probeFromServer: false` leaves the probing to agents and probes. */
  readonly monitoring?: Omit<MonitorServiceOptions, 'store' | 'config' | 'now' | 'metrics'>;
  /** Alerting's settings (issue 15): the link base of messages, the poll interval, whether this server sends. */
  readonly alerting?: Omit<AlertingServiceOptions, 'store' | 'config' | 'now' | 'metrics'>;
  /** Incidents' settings (issue 16): the poll interval of the policy's pass. */
  readonly incidents?: Omit<IncidentServiceOptions, 'store' | 'config' | 'now'>;
  /** Where the dashboard's bundle is (default dist/web of this package); false: no dashboard. */
  readonly webRoot?: string | false;
  /** Serve HTTPS with this certificate chain and key (PEM), for deployments without a TLS proxy. */
  readonly https?: { readonly cert: string | Buffer; readonly key: string | Buffer };
}

export const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;
/** Largest body of every other route: a comment, a reason, a token name. */
export const SMALL_BODY_LIMIT = 64 * 1024;

type AuthedRequest = FastifyRequest & { rampartToken?: TokenRecord };

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
  const now = opts.now ?? (() => new Date());
  const metrics = createMetrics();
  const hub = new Hub();
  const traffic = new TrafficService({
    store: opts.store,
    config: opts.config,
    now,
    metrics,
    onEvents: () => {
      alerting.kick();
      hub.publish({ topic: 'traffic' });
    },
  });
  const incidents = new IncidentService({
    store: opts.store,
    config: opts.config,
    now,
    traffic,
    ...opts.incidents,
    onChange: () => hub.publish({ topic: 'incidents' }),
  });
  const alerting = new AlertingService({
    store: opts.store,
    config: opts.config,
    now,
    metrics,
    ...opts.alerting,
    onAlerts: (changed) => {
      incidents.kick();
      hub.publish({ topic: 'alerts' });
      opts.alerting?.onAlerts?.(changed);
    },
  });
  const onEvents = (kinds: readonly string[] = []) => {
    alerting.kick();
    hub.publish({ topic: 'monitors' });
    // An agent turning silent or back: the hosts the overview lists as silent.
    if (kinds.some((k) => k.startsWith('vantage.'))) hub.publish({ topic: 'hosts' });
  };
  const deps: ServerDeps = {
    store: opts.store,
    config: opts.config,
    now,
    metrics,
    monitoring: new MonitorService({
      store: opts.store,
      config: opts.config,
      now,
      metrics,
      onEvents,
      onView: () => hub.publish({ topic: 'monitors' }),
      ...opts.monitoring,
    }),
    traffic,
    alerting,
    incidents,
    hub,
    planner: createPlanner(opts.planner),
    probes: new ProbeBoard(),
    planWaitMs: opts.planWaitMs ?? 2000,
    planning: new Map(),
  };
  const app = Fastify({
    ...(opts.https ? { https: { cert: opts.https.cert, key: opts.https.key } } : {}),
    // JSON lines for log shippers; human-readable lines when a person watches a terminal (`pretty`).
    logger:
      typeof opts.logger === 'object' && opts.logger.pretty
        ? {
            level: opts.logger.level,
            transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
          }
        : typeof opts.logger === 'object'
          ? { level: opts.logger.level }
          : (opts.logger ?? false),
    // Each route sets its own limit (register); this is the ceiling.
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Behind a load balancer the operator sets trustProxy themselves; by default the socket address is "from where".
    trustProxy: false,
  });

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendProblem(
        reply,
        req,
        new UserError(
          'RAMPART_ERR_TOO_LARGE',
          `the request body is larger than ${req.routeOptions.bodyLimit ?? app.initialConfig.bodyLimit} bytes, the limit of ${req.method} ${req.routeOptions.url ?? req.url}`,
        ),
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
    // A successful change through the API: the dashboard's open pages re-read that part.
    if (req.method !== 'GET' && req.method !== 'HEAD' && reply.statusCode < 400) {
      const tag = ROUTE_TAG.get(`${req.method} ${route}`);
      for (const topic of (tag ? TOPICS_OF_TAG[tag] : undefined) ?? []) hub.publish({ topic });
    }
  });
  // Open event streams would hold the server open: they end before it closes.
  app.addHook('preClose', async () => hub.closeAll());

  app.addHook('onClose', async () => {
    // Each service finishes what it has under way; one that is slow to stop is named.
    await timedStop(app.log, 'monitoring', () => deps.monitoring.stop());
    await timedStop(app.log, 'traffic', () => deps.traffic.stop());
    await timedStop(app.log, 'alerting', () => deps.alerting.stop());
    await timedStop(app.log, 'incidents', () => deps.incidents.stop());
    await timedStop(app.log, 'planner', () => deps.planner.close());
  });
  // Changes a previous process left planning (it stopped mid-plan) are planned again.
  app.addHook('onReady', async () => {
    await new ChangeService(deps).resumePlanning({ name: 'rampart-server', role: 'system', from: 'local' });
    await deps.monitoring.start();
    await deps.traffic.start();
    await deps.alerting.start();
    await deps.incidents.start();
  });
  const auth = authenticator(deps, opts.authLimits ?? DEFAULT_AUTH_LIMITS);
  const largeLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  for (const route of ROUTES) {
    register(app, route, deps, auth, route.largeBody ? largeLimit : Math.min(SMALL_BODY_LIMIT, largeLimit));
  }
  if (opts.webRoot !== false) registerWeb(app, opts.webRoot);
  registerStatusPage(app, deps);
  return app;
}

const ROUTE_TAG = new Map(ROUTES.map((r) => [`${r.method} ${urlOf(r)}`, r.tag]));

type Authenticate = (route: RouteDef, req: FastifyRequest) => Promise<TokenRecord>;

/**
 * Checks the bearer token and the route's role. Runs in `onRequest`, before the body is read: a caller without a
 * valid token is refused without the server reading, buffering or parsing what it sent. Failures are counted in
 * /metrics, slowed down per address and per token id (429), and written to the audit log once per burst.
 */
function authenticator(deps: ServerDeps, limits: AuthLimits): Authenticate {
  const guard = new AuthGuard(limits);
  const lastUsed = new LastUsed();
  const fail = async (req: FastifyRequest, reason: string, tokenId: string | undefined, e: Error): Promise<never> => {
    const now = deps.now().getTime();
    // Over the limit, a failed attempt is answered 429 with the time to wait; valid tokens from the same address
    // still get through, so a scanner behind a shared NAT or proxy cannot lock everyone else out.
    const wait = guard.retryAfter(req.ip, tokenId, now);
    deps.metrics.authFailures.inc({ reason: wait === undefined ? reason : 'rate-limited' });
    const bursts = guard.fail(req.ip, tokenId, now);
    if (bursts.length > 0) {
      const actor = { name: 'anonymous', role: 'system' as const, from: req.ip };
      await deps.store.write(actor, async (w) => {
        for (const b of bursts) {
          await w.audit({
            action: 'auth.failures',
            target: b.key,
            after: { failures: b.count, since: b.since, slowedUntil: b.until, lastReason: reason },
          });
        }
      });
    }
    if (wait === undefined) throw e;
    throw new UserError(
      'RAMPART_ERR_RATE_LIMITED',
      `too many failed authentications from ${req.ip}${tokenId ? ` or for token ${tokenId}` : ''}; ${e.message}; try again in ${wait} s`,
      { retryAfter: wait },
    );
  };
  return async (route, req) => {
    const now = deps.now();
    const presented = bearerOf(req.headers.authorization);
    let token: TokenRecord | undefined;
    let session: SessionContext | undefined;
    if (presented) {
      const parsed = parseToken(presented);
      if (!parsed) return fail(req, 'malformed', undefined, unauthenticated('malformed token'));
      token = await deps.store.getToken(parsed.id);
      if (!token || !secretMatches(token, parsed.secret)) {
        return fail(req, 'unknown', parsed.id, unauthenticated('unknown token'));
      }
    } else {
      // The dashboard's session cookie (src/server/session.ts), only when no Authorization header was sent.
      const sid = req.headers.authorization === undefined ? sessionCookieOf(req.headers.cookie) : undefined;
      if (!sid) return fail(req, 'missing', undefined, unauthenticated('no token'));
      const found = await sessionFor(deps, sid, now);
      if (!found.ok) return fail(req, found.reason, undefined, found.error);
      token = await deps.store.getToken(found.session.tokenId);
      if (!token) return fail(req, 'unknown', found.session.tokenId, unauthenticated('unknown token'));
      session = { id: sid, session: found.session };
    }
    if (token.revokedAt !== null) {
      return fail(req, 'revoked', token.id, unauthenticated(`token ${token.id} was revoked at ${token.revokedAt}`));
    }
    if (token.expiresAt !== null && Date.parse(token.expiresAt) <= now.getTime()) {
      return fail(
        req,
        'expired',
        token.id,
        unauthenticated(`token ${token.id} (${token.name}) expired at ${token.expiresAt}; ask an admin for a new one`),
      );
    }
    if (session) {
      // A cookie is sent by the browser whoever wrote the page: changes need the dashboard's own origin and header.
      if (req.method !== 'GET' && req.method !== 'HEAD') checkCsrf(req, session.id, session.session);
      attachSession(req, session);
    }
    if (lastUsed.due(token.id, now.getTime())) void deps.store.touchToken(token.id, now.toISOString());
    if (!roleAtLeast(token.role, route.access as Exclude<RouteDef['access'], 'public'>)) {
      throw forbidden(
        token.role,
        route.access as Exclude<RouteDef['access'], 'public'>,
        `${route.method} ${urlOf(route)}`,
      );
    }
    return token;
  };
}

function register(
  app: FastifyInstance,
  route: RouteDef,
  deps: ServerDeps,
  authenticate: Authenticate,
  bodyLimit: number,
): void {
  app.route({
    method: route.method,
    url: urlOf(route),
    bodyLimit,
    onRequest: async (req, reply) => {
      if (route.access === 'public') return;
      try {
        (req as AuthedRequest).rampartToken = await authenticate(route, req);
      } catch (e) {
        if (e instanceof UserError && e.code === 'RAMPART_ERR_RATE_LIMITED') {
          reply.header('retry-after', String(e.details.retryAfter));
        }
        // Whatever the caller was still sending is not read: close the connection after the answer.
        reply.header('connection', 'close');
        return sendProblem(reply, req, e);
      }
    },
    handler: async (req, reply) => {
      try {
        const token = (req as AuthedRequest).rampartToken;
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
        // A handler may answer with another success status (202 while a plan goes on); else the route's own.
        if (route.status && reply.statusCode === 200) reply.code(route.status);
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
