/**
 * API tokens: `rpt_<id>_<secret>`. The id (8 hex digits) names the token in lists and in the audit log; the secret
 * (32 random bytes, base64url) is shown once and only its SHA-256 is stored. A secret with 256 bits of entropy needs
 * no slow hash: SHA-256 cannot be brute-forced back, and lookups stay one index read per request.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { UserError } from '../errors.js';
import type { Role, TokenRecord } from '../store/types.js';

export interface NewToken {
  readonly id: string;
  /** The whole token as the client sends it; never stored. */
  readonly token: string;
  readonly secretHash: string;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function generateToken(): NewToken {
  const id = randomBytes(4).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, token: `rpt_${id}_${secret}`, secretHash: hashSecret(secret) };
}

const TOKEN_RE = /^rpt_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$/;

/** Splits a presented token; undefined when it is not shaped like one of ours. */
export function parseToken(presented: string): { id: string; secret: string } | undefined {
  const m = TOKEN_RE.exec(presented);
  return m ? { id: m[1] as string, secret: m[2] as string } : undefined;
}

/** Constant-time check of a presented secret against a stored record. */
export function secretMatches(record: TokenRecord, secret: string): boolean {
  const a = Buffer.from(record.secretHash, 'hex');
  const b = Buffer.from(hashSecret(secret), 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

export function bearerOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

export const unauthenticated = (why: string): UserError =>
  new UserError('RAMPART_ERR_UNAUTHENTICATED', `${why}; send 'Authorization: Bearer rpt_...' with a valid token`);

export const forbidden = (have: Role, need: Role, what: string): UserError =>
  new UserError('RAMPART_ERR_FORBIDDEN', `${what} needs the ${need} role; this token has ${have}`, {
    role: have,
    required: need,
  });
