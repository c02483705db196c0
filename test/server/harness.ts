/**
 * A real Rampart server on a real store for API tests: SQLite in a temp dir or a throwaway PostgreSQL database,
 * listening on 127.0.0.1 port 0, with one token per role (two approvers) created the way `rampart init` does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildServer, type ServerOptions } from '../../src/server/app.js';
import { generateToken } from '../../src/server/auth.js';
import type { AuthLimits } from '../../src/server/auth-guard.js';
import { configHolder } from '../../src/server/config-holder.js';
import { openStore } from '../../src/store/open.js';
import type { Role, Store } from '../../src/store/types.js';
import { ensureBuilt, root } from '../cli/cli.js';
import { createTestDatabase, IN_CI, pgUnavailable } from '../store/pg.js';

export type Backend = 'sqlite' | 'postgres';
export const BACKENDS: readonly Backend[] = ['sqlite', 'postgres'];
export const SHOP_CONFIG = join(import.meta.dirname, '..', 'fixtures', 'config', 'shop.yaml');

export const USERS = {
  admin: 'admin',
  alice: 'operator',
  bob: 'approver',
  carol: 'approver',
  dave: 'approver',
  vic: 'viewer',
  /** web1's agent */
  web1: 'agent',
  /** a `rampart probe` in another network */
  'probe-eu': 'probe',
  /** a team's Alertmanager posting its webhook */
  prometheus: 'alertmanager',
} as const satisfies Record<string, Role>;
export type User = keyof typeof USERS;

export interface Answer {
  readonly status: number;
  // biome-ignore lint/suspicious/noExplicitAny: answers are arbitrary JSON the tests pick apart
  readonly body: any;
  readonly type: string;
}

export interface Harness {
  readonly url: string;
  readonly store: Store;
  readonly app: FastifyInstance;
  readonly tokens: Record<User, string>;
  /** fetch against the server as `user` (undefined: no token); JSON bodies in and out. */
  call(user: User | undefined, method: string, path: string, body?: unknown): Promise<Answer>;
  /** Polls change `id` until `done(view)` holds (or `ms` pass), and returns the view. */
  // biome-ignore lint/suspicious/noExplicitAny: views are arbitrary JSON the tests pick apart
  until(id: number, done: (view: any) => boolean, ms?: number): Promise<any>;
  /**
   * Approves, rejects or overrides change `id` as a person does: reads the change first and sends the id of the plan
   * it shows (`plan` in `body` wins, to send a plan the caller read earlier).
   */
  decide(
    user: User,
    id: number,
    verdict: 'approve' | 'reject' | 'override',
    body?: Record<string, unknown>,
  ): Promise<Answer>;
  close(): Promise<void>;
}

export async function pgSkipReason(): Promise<string | undefined> {
  const why = await pgUnavailable();
  if (why && IN_CI) throw new Error(`CI needs PostgreSQL for the server tests: ${why}`);
  return why;
}

export async function startHarness(
  backend: Backend,
  opts: {
    config?: string;
    now?: () => Date;
    bodyLimit?: number;
    authLimits?: AuthLimits;
    /** Plans on real worker threads (the built dist/server/plan-worker.js, rebuilt when stale), with budgets. */
    worker?: boolean;
    planWaitMs?: number;
    /** Runs on the store before the server starts (to leave state a previous process would have left). */
    before?: (store: Store) => Promise<void>;
    /** PostgreSQL only: this database (another replica's) instead of a throwaway one; not dropped at close. */
    db?: string;
    /** Monitoring's settings (the replica's name, for one). */
    monitoring?: ServerOptions['monitoring'];
  } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-server-'));
  const pgdb = backend === 'postgres' && !opts.db ? await createTestDatabase() : undefined;
  const store = await openStore(opts.db ? { db: opts.db } : pgdb ? { db: pgdb.url } : { dataDir: dir });
  const tokens = {} as Record<User, string>;
  await store.write({ name: 'test-setup', role: 'system', from: 'local' }, async (w) => {
    for (const [name, role] of Object.entries(USERS)) {
      const t = generateToken();
      await w.insertToken({
        id: t.id,
        name,
        role,
        secretHash: t.secretHash,
        createdAt: new Date().toISOString(),
        createdBy: 'test',
      });
      tokens[name as User] = t.token;
    }
  });
  await opts.before?.(store);
  if (opts.worker) ensureBuilt();
  const app = await buildServer({
    store,
    config: configHolder(opts.config ?? SHOP_CONFIG),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.bodyLimit ? { bodyLimit: opts.bodyLimit } : {}),
    ...(opts.authLimits ? { authLimits: opts.authLimits } : {}),
    ...(opts.planWaitMs !== undefined ? { planWaitMs: opts.planWaitMs } : {}),
    ...(opts.worker ? { planner: { script: join(root, 'dist', 'server', 'plan-worker.js') } } : {}),
    ...(opts.monitoring ? { monitoring: opts.monitoring } : {}),
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const call: Harness['call'] = async (user, method, path, body) => {
    const headers: Record<string, string> = {};
    if (user) headers.authorization = `Bearer ${tokens[user]}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(
      `${url}${path.startsWith('/api') || path === '/healthz' || path === '/metrics' ? path : `/api/v1${path}`}`,
      {
        method,
        headers,
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      },
    );
    const type = res.headers.get('content-type') ?? '';
    const text = await res.text();
    return {
      status: res.status,
      type,
      body: /application\/(problem\+)?json/.test(type) && text ? JSON.parse(text) : text,
    };
  };
  return {
    url,
    store,
    app,
    tokens,
    call,
    async until(id, done, ms = 240_000) {
      const end = Date.now() + ms;
      for (;;) {
        const v = (await call('vic', 'GET', `/changes/${id}`)).body;
        if (done(v)) return v;
        if (Date.now() > end)
          throw new Error(`change ${id} did not get there in ${ms} ms: ${JSON.stringify(v.change)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async decide(user, id, verdict, body = {}) {
      const seen = (await call(user, 'GET', `/changes/${id}`)).body?.plan?.id;
      return call(user, 'POST', `/changes/${id}/${verdict}`, { plan: seen, ...body });
    },
    async close() {
      await app.close();
      await store.close();
      await pgdb?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
