import { z } from 'zod';
import { toJsonLines } from '../../store/audit-chain.js';
import { defineRoute } from '../route.js';

export const auditLogRoutes = [
  defineRoute({
    method: 'GET',
    path: '/audit-log',
    access: 'admin',
    tag: 'audit-log',
    summary: 'Audit log entries (hash-chained) as JSON or JSON lines',
    produces: ['application/json', 'application/x-ndjson'],
    query: z
      .object({
        from: z.coerce.number().int().min(1).optional(),
        to: z.coerce.number().int().min(1).optional(),
        format: z.enum(['json', 'jsonl']).default('json'),
      })
      .strict(),
    handler: async ({ deps, query, reply }) => {
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
