/**
 * The dashboard's live updates (issue 17): GET /api/v1/stream is a server-sent event stream that says which part
 * of the state changed (monitors, alerts, changes, hosts, silences, incidents, ...); the page then reads that part again
 * through the same JSON API, so the stream carries no data a role could not read anyway and no second copy of any
 * business rule. The first line is the comment `: ready` (the client knows it is subscribed); a comment every
 * 15 s keeps proxies from closing an idle stream, and at each one a session's expiry is checked again. A session's
 * stream closes (event `session-ended`) when the session signs out or expires, and any stream when its token is
 * revoked or expires (checked at each heartbeat).
 *
 * Publishers are in-process: monitoring and traffic after they write events, monitoring also whenever what a monitor
 * shows changed without an event (a vantage point's first result, UNKNOWN -> UP, a state another replica wrote),
 * alerting after alerts fire or resolve, incidents after the policy declares or reopens one, a plan that finished
 * after its request answered, and the app after every successful state-changing API request (by the route's tag). Several replicas on
 * one PostgreSQL each tell their own clients what they saw; a page also re-reads everything when it reconnects.
 */
import type { FastifyRequest } from 'fastify';
import { defineRoute, type ServerDeps } from './route.js';
import { sessionFor, sessionOf } from './session.js';

/** What a page re-reads when it hears one. */
export type Topic = 'monitors' | 'traffic' | 'alerts' | 'changes' | 'hosts' | 'silences' | 'audit' | 'incidents';

export type StreamEvent = { readonly topic: Topic } | { readonly topic: 'session.end'; readonly session: string };

type Listener = (e: StreamEvent) => void;

/** A topic is published at most once per this window (the first at once, the rest of a burst once at its end). */
export const TOPIC_WINDOW_MS = 250;

export interface HubOptions {
  /** Default TOPIC_WINDOW_MS. */
  readonly windowMs?: number;
  /** The clock, in ms (default Date.now); with `later`, tests run the coalescing on simulated time. */
  readonly now?: () => number;
  /** Runs `fn` after `ms`; returns how to cancel it (default setTimeout, unref'd). */
  readonly later?: (fn: () => void, ms: number) => () => void;
}

/**
 * Fans events out to the open streams, coalesced per topic: every change of what a page shows may publish (a
 * monitor's first result, each vantage point's verdict, a plan finishing), and a burst of them (10,000 monitors
 * starting) reaches a page as one event per topic per window, the first at once and the last never lost.
 */
export class Hub {
  private readonly listeners = new Set<Listener>();
  private readonly closers = new Set<() => void>();
  private readonly lastSent = new Map<Topic, number>();
  private readonly due = new Map<Topic, () => void>();
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly later: (fn: () => void, ms: number) => () => void;

  constructor(o: HubOptions = {}) {
    this.windowMs = o.windowMs ?? TOPIC_WINDOW_MS;
    this.now = o.now ?? Date.now;
    this.later =
      o.later ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        t.unref?.();
        return () => clearTimeout(t);
      });
  }

  subscribe(fn: Listener, close: () => void): () => void {
    this.listeners.add(fn);
    this.closers.add(close);
    return () => {
      this.listeners.delete(fn);
      this.closers.delete(close);
    };
  }

  publish(e: StreamEvent): void {
    if (e.topic === 'session.end') {
      this.deliver(e);
      return;
    }
    const topic = e.topic;
    // Already coming at the end of this window: that one tells of this change too.
    if (this.due.has(topic)) return;
    const wait = (this.lastSent.get(topic) ?? Number.NEGATIVE_INFINITY) + this.windowMs - this.now();
    if (wait <= 0) {
      this.lastSent.set(topic, this.now());
      this.deliver(e);
      return;
    }
    this.due.set(
      topic,
      this.later(() => {
        this.due.delete(topic);
        this.lastSent.set(topic, this.now());
        this.deliver(e);
      }, wait),
    );
  }

  private deliver(e: StreamEvent): void {
    for (const fn of this.listeners) fn(e);
  }

  get size(): number {
    return this.listeners.size;
  }

  /** Ends every open stream (the server is closing: open streams would hold it open). */
  closeAll(): void {
    for (const cancel of this.due.values()) cancel();
    this.due.clear();
    for (const c of [...this.closers]) c();
  }
}

/** Route tags whose successful POST/PATCH/DELETE change what the dashboard shows, and the topics they change. */
export const TOPICS_OF_TAG: Readonly<Record<string, readonly Topic[]>> = {
  changes: ['changes'],
  reviews: ['changes'],
  jobs: ['changes', 'hosts'],
  agent: ['hosts', 'changes'],
  hosts: ['hosts'],
  alerts: ['alerts', 'silences'],
  monitors: ['monitors'],
  probe: ['monitors'],
  'audit-log': ['audit'],
  incidents: ['incidents'],
};

const HEARTBEAT_MS = 15_000;
/** Events of one topic within this window are sent once (a burst of probe results is one re-read, not hundreds). */
const COALESCE_MS = 100;

export const streamRoutes = [
  defineRoute({
    method: 'GET',
    path: '/stream',
    access: 'viewer',
    tag: 'session',
    summary:
      'Server-sent events naming what changed (monitors, alerts, changes, hosts, silences, traffic); the page re-reads it through the API',
    produces: ['text/event-stream'],
    handler: async ({ deps, req, reply, token }) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(': ready\n\n');
      openStream(
        deps,
        req,
        token?.id,
        (chunk) => res.write(chunk),
        () => res.end(),
      );
      return undefined;
    },
  }),
];

function openStream(
  deps: ServerDeps,
  req: FastifyRequest,
  tokenId: string | undefined,
  write: (s: string) => void,
  end: () => void,
): void {
  const session = sessionOf(req);
  const pending = new Set<string>();
  let flushTimer: NodeJS.Timeout | undefined;
  let closed = false;
  const close = (why?: string) => {
    if (closed) return;
    closed = true;
    if (why) write(`event: session-ended\ndata: ${JSON.stringify({ reason: why })}\n\n`);
    unsubscribe();
    clearInterval(beat);
    if (flushTimer) clearTimeout(flushTimer);
    end();
  };
  const flush = () => {
    flushTimer = undefined;
    for (const topic of pending) write(`event: ${topic}\ndata: {}\n\n`);
    pending.clear();
  };
  const unsubscribe = deps.hub.subscribe(
    (e) => {
      if (e.topic === 'session.end') {
        if (session && e.session === session.session.idHash) close('signed out');
        return;
      }
      pending.add(e.topic);
      flushTimer ??= setTimeout(flush, COALESCE_MS);
    },
    () => close(),
  );
  // Still allowed? The session (signed out elsewhere, expired) and the token behind it (revoked, expired).
  const stillAllowed = async (): Promise<string | undefined> => {
    const now = deps.now();
    if (session) {
      const r = await sessionFor(deps, session.id, now);
      if (!r.ok) return r.error.message;
    }
    const t = tokenId === undefined ? undefined : await deps.store.getToken(tokenId);
    if (!t || t.revokedAt !== null) return `token ${tokenId} was revoked`;
    if (t.expiresAt !== null && Date.parse(t.expiresAt) <= now.getTime()) return `token ${tokenId} expired`;
    return undefined;
  };
  const beat = setInterval(() => {
    write(': ping\n\n');
    void stillAllowed().then(
      (why) => {
        if (why) close(why);
      },
      () => undefined,
    );
  }, HEARTBEAT_MS);
  beat.unref?.();
  req.raw.on('close', () => close());
}
