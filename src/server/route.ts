/**
 * Routes are data: method, path, the role they need, and the zod schemas of params, query and body. The same
 * schemas validate requests and generate the OpenAPI document, and the role table drives both the authorisation
 * check and the test that proves each role is refused what it may not do.
 */

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { RampartConfig } from '../config/types.js';
import type { Actor, Role, Store, TokenRecord } from '../store/types.js';
import type { AlertingService } from './alerting.js';
import type { IncidentService } from './incidents.js';
import type { ServerMetrics } from './metrics.js';
import type { MonitorService } from './monitoring.js';
import type { Planner, PlanTicket } from './planner.js';
import type { ProbeBoard } from './probe-board.js';
import type { Hub } from './stream.js';
import type { TrafficService } from './traffic.js';

export type Access = Role | 'public';

/** What handlers get besides the request: the store, the config in force, the clock, metrics. */
export interface ServerDeps {
  readonly store: Store;
  readonly config: ConfigHolder;
  readonly now: () => Date;
  readonly metrics: ServerMetrics;
  readonly planner: Planner;
  readonly probes: ProbeBoard;
  /** Monitoring (issue 14): states, the server's own probes, results from agents and probes. */
  readonly monitoring: MonitorService;
  /** Incoming traffic (issue 14, §3): agents' request counts, the traffic-drop detectors. */
  readonly traffic: TrafficService;
  /** Alerting (issue 15): alerts, groups, silences, escalation, the outbox worker. */
  readonly alerting: AlertingService;
  /** Incidents (issue 16): declared by policy or by hand, timelines, postmortems. */
  readonly incidents: IncidentService;
  /** The dashboard's live stream (issue 17): what changed, fanned out to open SSE streams. */
  readonly hub: Hub;
  /** How long a proposal, edit or re-plan waits for its plan before answering 202 (state planning). */
  readonly planWaitMs: number;
  /** The plans that outlived their request, by change id (the version they were started for). */
  readonly planning: Map<number, { readonly version: number; readonly ticket: PlanTicket }>;
}

export interface ConfigHolder {
  current(): RampartConfig;
  /** The text it was parsed from (the plan worker parses it again on its side). */
  source(): { readonly text: string; readonly file: string };
  /** Where the config was read from (null for the embedded default). */
  readonly path: string | null;
  /** Re-reads the file; an invalid file is refused and the old config stays in force. */
  reload(): { readonly ok: true; readonly config: RampartConfig } | { readonly ok: false; readonly error: Error };
}

export interface RouteContext<P, Q, B> {
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  /** The authenticated caller (`anonymous` on public routes). */
  readonly actor: Actor;
  readonly token: TokenRecord | undefined;
  readonly req: FastifyRequest;
  readonly reply: FastifyReply;
  readonly deps: ServerDeps;
}

/** A handler returns the JSON body (status 200, or `status` in the route), or sends the reply itself. */
export interface RouteDef {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Fastify path below /api/v1 (e.g. `/changes/:id`), or an absolute one for /healthz and /metrics. */
  readonly path: string;
  readonly access: Access;
  readonly summary: string;
  readonly tag: string;
  /** Status of a successful answer (default 200). */
  readonly status?: number;
  readonly params?: z.ZodType;
  readonly query?: z.ZodType;
  readonly body?: z.ZodType;
  /** The body carries a ruleset: allowed up to the server's large limit (16 MiB), not the small one (64 KiB). */
  readonly largeBody?: boolean;
  /** Media types of the answer (default application/json). */
  readonly produces?: readonly string[];
  /** A state-changing route (POST/PUT/PATCH/DELETE) in the audit sense; for docs and the role test. */
  readonly handler: (ctx: RouteContext<never, never, never>) => Promise<unknown>;
}

/** Typed helper: the handler sees the inferred types of its schemas. */
export function defineRoute<
  P extends z.ZodType = z.ZodType<Record<string, never>>,
  Q extends z.ZodType = z.ZodType<Record<string, never>>,
  B extends z.ZodType = z.ZodType<undefined>,
>(
  def: Omit<RouteDef, 'handler' | 'params' | 'query' | 'body'> & {
    readonly params?: P;
    readonly query?: Q;
    readonly body?: B;
    readonly handler: (ctx: RouteContext<z.output<P>, z.output<Q>, z.output<B>>) => Promise<unknown>;
  },
): RouteDef {
  return def as unknown as RouteDef;
}

/** The full URL of a route. */
export function urlOf(r: RouteDef): string {
  return r.path.startsWith('/api/') || r.path === '/healthz' || r.path === '/metrics' ? r.path : `/api/v1${r.path}`;
}
