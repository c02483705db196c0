/**
 * Dashboard sessions (issue 17): an API token exchanged for a cookie. Only the SHA-256 of the session id is stored
 * (the id is the secret the cookie carries, 32 random bytes, so a plain hash cannot be reversed, as for tokens); a
 * session names its token, not a role, so the token's revocation, expiry or role holds for the session too. Like
 * alerting's, these rows are outside the store's write lock and the audit chain: the API writes an audit entry for
 * each sign-in and sign-out.
 */
import type { Kysely, Selectable } from 'kysely';
import type { DB, WebSessionsTable } from './schema.js';

export interface WebSession {
  /** SHA-256 (hex) of the session id. */
  readonly idHash: string;
  readonly tokenId: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  /** When it was signed out (null: not signed out). */
  readonly endedAt: string | null;
  /** The key of the session's CSRF header (an HMAC of the session id); random, per session. */
  readonly csrfSecret: string;
}

export interface SessionStore {
  create(s: Omit<WebSession, 'endedAt'>): Promise<WebSession>;
  get(idHash: string): Promise<WebSession | undefined>;
  /** Ends a session that is not ended yet; the ended session, or undefined when there was none to end. */
  end(idHash: string, at: string): Promise<WebSession | undefined>;
  /** Deletes sessions that expired or ended before `before`; how many. */
  prune(before: string): Promise<number>;
}

function sessionOf(r: Selectable<WebSessionsTable>): WebSession {
  return {
    idHash: r.id_hash,
    tokenId: r.token_id,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    endedAt: r.ended_at,
    csrfSecret: r.csrf_secret,
  };
}

export class SqlSessionStore implements SessionStore {
  constructor(private readonly db: Kysely<DB>) {}

  async create(s: Omit<WebSession, 'endedAt'>): Promise<WebSession> {
    const r = await this.db
      .insertInto('web_sessions')
      .values({
        id_hash: s.idHash,
        token_id: s.tokenId,
        created_at: s.createdAt,
        expires_at: s.expiresAt,
        ended_at: null,
        csrf_secret: s.csrfSecret,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return sessionOf(r);
  }

  async get(idHash: string): Promise<WebSession | undefined> {
    const r = await this.db.selectFrom('web_sessions').selectAll().where('id_hash', '=', idHash).executeTakeFirst();
    return r && sessionOf(r);
  }

  async end(idHash: string, at: string): Promise<WebSession | undefined> {
    const r = await this.db
      .updateTable('web_sessions')
      .set({ ended_at: at })
      .where('id_hash', '=', idHash)
      .where('ended_at', 'is', null)
      .returningAll()
      .executeTakeFirst();
    return r && sessionOf(r);
  }

  async prune(before: string): Promise<number> {
    const r = await this.db
      .deleteFrom('web_sessions')
      .where((eb) => eb.or([eb('expires_at', '<', before), eb('ended_at', '<', before)]))
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
