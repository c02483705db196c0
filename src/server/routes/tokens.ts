import { z } from 'zod';
import { samePerson } from '../../change/policy.js';
import { UserError } from '../../errors.js';
import { TOKEN_ROLES, type TokenRecord } from '../../store/types.js';
import { generateToken } from '../auth.js';
import { defineRoute } from '../route.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

const DURATION_RE = /^(\d{1,5})([mhdw])$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** `90d`, `12h`, `30m`, `2w` from now, or an ISO 8601 date-time (or date) in the future. */
export function expiryOf(text: string, now: Date): string {
  const m = DURATION_RE.exec(text.trim());
  if (m) {
    const n = Number(m[1]);
    if (n < 1) throw badExpiry(text, 'a duration of at least 1');
    return new Date(now.getTime() + n * UNIT_MS[m[2] as keyof typeof UNIT_MS]).toISOString();
  }
  const t = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(t)) {
    throw badExpiry(text, 'a duration such as 90d, 12h, 30m, 2w, or an ISO 8601 date such as 2027-03-31');
  }
  if (t <= now.getTime()) throw badExpiry(text, `a time after now (${now.toISOString()})`);
  return new Date(t).toISOString();
}

function badExpiry(text: string, expected: string): UserError {
  return new UserError('RAMPART_ERR_VALIDATION', `body.expires: '${text}'; expected ${expected}`, {
    errors: [{ field: 'body.expires', message: `expected ${expected}` }],
  });
}

/** A token as shown to anyone: never its hash. */
export function publicToken(t: TokenRecord): Record<string, unknown> {
  const { secretHash: _hash, ...rest } = t;
  return rest;
}

export const tokenRoutes = [
  defineRoute({
    method: 'GET',
    path: '/tokens',
    access: 'admin',
    tag: 'tokens',
    summary: 'List tokens (ids, names, roles; never secrets)',
    handler: async ({ deps }) => ({ tokens: (await deps.store.listTokens()).map(publicToken) }),
  }),
  defineRoute({
    method: 'POST',
    path: '/tokens',
    access: 'admin',
    tag: 'tokens',
    status: 201,
    summary: 'Create a token; the secret is in this answer only',
    body: z
      .object({
        name: z.string().regex(NAME_RE, 'letters, digits, . _ @ - (1-64, starting with a letter or digit)'),
        role: z.enum(TOKEN_ROLES),
        expires: z
          .string()
          .max(40)
          .optional()
          .describe('when the token stops working: a duration (90d, 12h, 30m, 2w) or an ISO 8601 date'),
      })
      .strict(),
    handler: async ({ deps, actor, token: minter, body }) => {
      const t = generateToken();
      const now = deps.now();
      const expiresAt = body.expires !== undefined ? expiryOf(body.expires, now) : null;
      const record = await deps.store.write(actor, async (w) => {
        // A name is a person, compared without case: 'olga' next to 'Olga' would be a second identity for four
        // eyes to be fooled by. The same spelling again is the same person's next token (rotation).
        const other = (await w.listTokens()).find((x) => samePerson(x.name, body.name) && x.name !== body.name);
        if (other) {
          throw new UserError(
            'RAMPART_ERR_CONFLICT',
            `token names are compared without case, and '${body.name}' is '${other.name}' (token ${other.id}); use the spelling '${other.name}' to give that person another token, or another name for someone else`,
            { name: body.name, existing: other.name, errors: [{ field: 'body.name', message: 'taken' }] },
          );
        }
        const r = await w.insertToken({
          id: t.id,
          name: body.name,
          role: body.role,
          secretHash: t.secretHash,
          createdAt: now.toISOString(),
          createdBy: actor.name,
          createdByToken: minter?.id ?? null,
          expiresAt,
        });
        await w.audit({ action: 'token.create', target: `token:${r.id}`, after: publicToken(r) });
        return r;
      });
      return { token: t.token, ...publicToken(record) };
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/tokens/:id',
    access: 'admin',
    tag: 'tokens',
    summary: 'Revoke a token (it stays listed, marked revoked)',
    params: z.object({ id: z.string().regex(/^[0-9a-f]{8}$/, '8 hex digits') }),
    handler: async ({ deps, actor, params }) =>
      deps.store.write(actor, async (w) => {
        const before = await w.getToken(params.id);
        if (!before) throw new UserError('RAMPART_ERR_NOT_FOUND', `token ${params.id} does not exist`);
        if (before.revokedAt !== null) return publicToken(before);
        const after = (await w.revokeToken(params.id, deps.now().toISOString())) as TokenRecord;
        await w.audit({
          action: 'token.revoke',
          target: `token:${params.id}`,
          before: publicToken(before),
          after: publicToken(after),
        });
        return publicToken(after);
      }),
  }),
];
