/**
 * Dashboard sessions (issue 17): a person's API token, sent once as a bearer token to POST /api/v1/session, is
 * exchanged for an HttpOnly, SameSite=Strict cookie (Secure over HTTPS), so the token never sits in the page's
 * storage. The cookie then authenticates the same routes as the token, with the same role checks (the role is read
 * from the token on every request). A cookie-authenticated request that changes state must also come from the
 * server's own origin (Origin header) and carry `x-rampart-csrf`, an HMAC of the session id under the session's
 * own secret, which only the signed-in page can read (GET /api/v1/session). Sign-in and sign-out are audited.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { UserError } from '../errors.js';
import type { WebSession } from '../store/session-store.js';
import type { TokenRecord } from '../store/types.js';
import { defineRoute, type ServerDeps } from './route.js';

export const SESSION_COOKIE = 'rampart_session';
export const CSRF_HEADER = 'x-rampart-csrf';
/** A session lasts 12 hours (a shift), never longer than its token. */
export const SESSION_TTL_MS = 12 * 3_600_000;

const SESSION_ID_RE = /^[A-Za-z0-9_-]{43}$/;

/** What a cookie-authenticated request carries, for the session routes and the stream. */
export interface SessionContext {
  readonly id: string;
  readonly session: WebSession;
}

const sessions = new WeakMap<FastifyRequest, SessionContext>();

export function sessionOf(req: FastifyRequest): SessionContext | undefined {
  return sessions.get(req);
}

export function hashSessionId(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}

export function csrfTokenOf(id: string, session: WebSession): string {
  return createHmac('sha256', session.csrfSecret).update(id, 'utf8').digest('base64url');
}

/** The session id in the request's cookie header (undefined when there is none or it is not shaped like one). */
export function sessionCookieOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const v = part.slice(eq + 1).trim();
    return SESSION_ID_RE.test(v) ? v : undefined;
  }
  return undefined;
}

function cookie(req: FastifyRequest, value: string, maxAgeS: number): string {
  const secure = req.protocol === 'https' ? '; Secure' : '';
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure}`;
}

const unauthenticatedSession = (why: string): UserError =>
  new UserError('RAMPART_ERR_UNAUTHENTICATED', `${why}; sign in again with your API token`);

/**
 * Checks a presented session cookie: known, not signed out, not expired. The token behind it is checked by the
 * caller like a bearer token's. Undefined with an error when the session is not valid.
 */
export async function sessionFor(
  deps: ServerDeps,
  id: string,
  now: Date,
): Promise<{ ok: true; session: WebSession } | { ok: false; error: UserError; reason: string }> {
  const session = await deps.store.sessions.get(hashSessionId(id));
  if (!session) return { ok: false, reason: 'unknown-session', error: unauthenticatedSession('unknown session') };
  if (session.endedAt !== null) {
    return { ok: false, reason: 'ended-session', error: unauthenticatedSession(`signed out at ${session.endedAt}`) };
  }
  if (Date.parse(session.expiresAt) <= now.getTime()) {
    return {
      ok: false,
      reason: 'expired-session',
      error: unauthenticatedSession(`the session expired at ${session.expiresAt}`),
    };
  }
  return { ok: true, session };
}

/**
 * A state-changing request on a session must come from the dashboard itself: its Origin is the server's own and
 * it carries the CSRF header. Throws 403 saying which is missing or wrong.
 */
export function checkCsrf(req: FastifyRequest, id: string, session: WebSession): void {
  const origin = req.headers.origin;
  const own = `${req.protocol}://${req.host}`;
  if (origin !== own) {
    throw new UserError(
      'RAMPART_ERR_FORBIDDEN',
      `${req.method} ${req.url.split('?')[0]} on a session cookie needs the Origin ${own}; this request's Origin is ${origin === undefined ? 'missing' : `'${origin}'`}`,
      { csrf: 'origin' },
    );
  }
  const presented = req.headers[CSRF_HEADER];
  const expected = Buffer.from(csrfTokenOf(id, session));
  const got = Buffer.from(typeof presented === 'string' ? presented : '');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
    throw new UserError(
      'RAMPART_ERR_FORBIDDEN',
      `${req.method} ${req.url.split('?')[0]} on a session cookie needs the ${CSRF_HEADER} header of the session (GET /api/v1/session gives it); it is ${presented === undefined ? 'missing' : 'wrong'}`,
      { csrf: 'header' },
    );
  }
}

/** Remembers the session of a request authenticated by cookie. */
export function attachSession(req: FastifyRequest, ctx: SessionContext): void {
  sessions.set(req, ctx);
}

function view(token: TokenRecord, id: string, session: WebSession) {
  return {
    name: token.name,
    role: token.role,
    tokenId: token.id,
    createdAt: session.createdAt,
    expiresAt: session.expiresAt,
    csrf: csrfTokenOf(id, session),
  };
}

function clear(req: FastifyRequest, reply: FastifyReply): void {
  reply.header('set-cookie', cookie(req, '', 0));
}

export const sessionRoutes = [
  defineRoute({
    method: 'POST',
    path: '/session',
    access: 'viewer',
    tag: 'session',
    status: 201,
    summary:
      "Signs in to the dashboard: the bearer token (a person's) is exchanged for an HttpOnly session cookie; the answer has the CSRF header value",
    handler: async ({ deps, actor, token, req, reply }) => {
      if (!token || sessionOf(req)) {
        throw new UserError(
          'RAMPART_ERR_UNAUTHENTICATED',
          "a session is made from an API token: send 'Authorization: Bearer rpt_...', not a session cookie",
        );
      }
      const now = deps.now();
      const ttlEnd = now.getTime() + SESSION_TTL_MS;
      const end = token.expiresAt !== null ? Math.min(ttlEnd, Date.parse(token.expiresAt)) : ttlEnd;
      const id = randomBytes(32).toString('base64url');
      const session = await deps.store.sessions.create({
        idHash: hashSessionId(id),
        tokenId: token.id,
        createdAt: now.toISOString(),
        expiresAt: new Date(end).toISOString(),
        csrfSecret: randomBytes(32).toString('base64url'),
      });
      try {
        await deps.store.write(actor, (w) =>
          w.audit({
            action: 'session.create',
            target: `token:${token.id}`,
            after: { session: session.idHash.slice(0, 12), expiresAt: session.expiresAt },
          }),
        );
      } catch (e) {
        // Not audited, not given: the session is ended before the error goes back.
        await deps.store.sessions.end(session.idHash, now.toISOString());
        throw e;
      }
      // Expired and signed-out sessions older than a day are dropped (best effort, off the answer's path).
      void deps.store.sessions.prune(new Date(now.getTime() - 86_400_000).toISOString()).catch(() => undefined);
      reply.header('set-cookie', cookie(req, id, Math.floor((end - now.getTime()) / 1000)));
      reply.header('cache-control', 'no-store');
      return view(token, id, session);
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/session',
    access: 'viewer',
    tag: 'session',
    summary: 'Who this session (or token) is: name, role, expiry, and the CSRF header value of the session',
    handler: async ({ token, req, reply }) => {
      const s = sessionOf(req);
      if (!token) throw unauthenticatedSession('no session');
      reply.header('cache-control', 'no-store');
      if (!s) return { name: token.name, role: token.role, tokenId: token.id, session: null };
      return view(token, s.id, s.session);
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/session',
    access: 'viewer',
    tag: 'session',
    summary: 'Signs out: the session ends now (its cookie is cleared and refused from now on, also by open streams)',
    handler: async ({ deps, actor, token, req, reply }) => {
      const s = sessionOf(req);
      if (!s || !token) {
        throw new UserError(
          'RAMPART_ERR_VALIDATION',
          'DELETE /api/v1/session signs out a session cookie; none was sent',
          {
            errors: [{ field: 'cookie', message: `no ${SESSION_COOKIE} cookie` }],
          },
        );
      }
      const at = deps.now().toISOString();
      // Ended first: a sign-out that could not be audited still signs out (the safe side), and says so.
      const ended = await deps.store.sessions.end(s.session.idHash, at);
      if (ended) {
        await deps.store.write(actor, (w) =>
          w.audit({
            action: 'session.end',
            target: `token:${token.id}`,
            before: { session: s.session.idHash.slice(0, 12), expiresAt: s.session.expiresAt },
            after: { session: s.session.idHash.slice(0, 12), endedAt: at },
          }),
        );
      }
      deps.hub.publish({ topic: 'session.end', session: s.session.idHash });
      clear(req, reply);
      return { signedOut: at };
    },
  }),
];
