import { z } from 'zod';
import { UserError } from '../../errors.js';
import { TOKEN_ROLES, type TokenRecord } from '../../store/types.js';
import { generateToken } from '../auth.js';
import { defineRoute } from '../route.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

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
      })
      .strict(),
    handler: async ({ deps, actor, body }) => {
      const t = generateToken();
      const record = await deps.store.write(actor, async (w) => {
        const r = await w.insertToken({
          id: t.id,
          name: body.name,
          role: body.role,
          secretHash: t.secretHash,
          createdAt: deps.now().toISOString(),
          createdBy: actor.name,
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
