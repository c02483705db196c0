import { z } from 'zod';
import { toJsonLines } from '../../store/audit-chain.js';
import { defineRoute } from '../route.js';

export const auditLogRoutes = [
  defineRoute({
    method: 'GET',
    path: '/audit-log',
    access: 'admin',
    tag: 'audit-log',
    summary:
      'Audit log entries (hash-chained) as JSON or JSON lines; with limit (and before, the cursor) a page, newest first',
    produces: ['application/json', 'application/x-ndjson'],
    query: z
      .object({
        from: z.coerce.number().int().min(1).optional(),
        to: z.coerce.number().int().min(1).optional(),
        format: z.enum(['json', 'jsonl']).default('json'),
        limit: z.coerce
          .number()
          .int()
          .min(1)
          .max(1000)
          .optional()
          .describe('a page of at most this many entries, newest first (with `next`, the cursor of the page after)'),
        before: z.coerce
          .number()
          .int()
          .min(2)
          .optional()
          .describe('the cursor: entries with a seq below this one (the `next` of the page before)'),
      })
      .strict()
      .refine((q) => q.format === 'json' || (q.limit === undefined && q.before === undefined), {
        message: 'jsonl exports every entry in [from, to], oldest first, without pages: leave out limit and before',
        path: ['format'],
      }),
    handler: async ({ deps, query, reply }) => {
      if (query.limit !== undefined || query.before !== undefined) {
        // A page, newest first: the cursor is a seq (entries never move), so a page stays what it was while new
        // entries arrive at the head.
        const limit = query.limit ?? 50;
        const to = query.before !== undefined ? Math.min(query.before - 1, query.to ?? Infinity) : query.to;
        const [entries, head] = await Promise.all([
          deps.store.auditEntries({
            ...(query.from !== undefined ? { from: query.from } : {}),
            ...(to !== undefined ? { to } : {}),
            newestFirst: true,
            limit: limit + 1,
          }),
          deps.store.auditHead(),
        ]);
        const page = entries.slice(0, limit);
        return {
          entries: page,
          next: entries.length > limit ? (page.at(-1)?.seq ?? null) : null,
          head: head?.lastSeq ?? 0,
        };
      }
      const entries = await deps.store.auditEntries({
        ...(query.from !== undefined ? { from: query.from } : {}),
        ...(query.to !== undefined ? { to: query.to } : {}),
      });
      if (query.format === 'jsonl') {
        reply.header('content-type', 'application/x-ndjson');
        return reply.send(toJsonLines(entries));
      }
      return { entries };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/audit-log/verify',
    access: 'viewer',
    tag: 'audit-log',
    summary:
      "Recompute the hash chain and each change's recorded ruleset hash; names the first entry altered, inserted or removed",
    query: z
      .object({
        head: z
          .string()
          .regex(/^(?:\d+:)?[0-9a-f]{64}$/, "SEQ:HASH or HASH, the head kept elsewhere ('rampart audit-log head')")
          .optional(),
      })
      .strict(),
    handler: async ({ deps, query }) => {
      if (query.head === undefined) return deps.store.verifyAuditLog();
      const [a, b] = query.head.split(':');
      return deps.store.verifyAuditLog(b === undefined ? { hash: a as string } : { seq: Number(a), hash: b });
    },
  }),
];
