/**
 * Authorisation, table-driven over every route of the registry: without a token (or with a revoked, malformed or
 * unknown one) a protected route answers 401; every role below the route's role answers 403; the route's own role
 * gets past the check. A route added without a role cannot slip through: the registry is the table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RouteDef, urlOf } from '../../src/server/route.js';
import { ROUTES } from '../../src/server/routes/index.js';
import { type Role, roleAtLeast, TOKEN_ROLES } from '../../src/store/types.js';
import { type Harness, startHarness, type User } from './harness.js';

const AS: Record<Role, User> = {
  viewer: 'vic',
  operator: 'alice',
  approver: 'bob',
  admin: 'admin',
  agent: 'web1',
  probe: 'probe-eu',
  alertmanager: 'prometheus',
};

function concrete(r: RouteDef): string {
  return urlOf(r)
    .replace(':id', r.path.startsWith('/tokens') ? 'deadbeef' : '1')
    .replace(':name', 'web1')
    .replace(':fingerprint', '0123456789abcdef')
    .replace(':schedule', 'primary');
}

const protectedRoutes = ROUTES.filter((r) => r.access !== 'public');

describe('every route checks the role', () => {
  let h: Harness;
  beforeAll(async () => {
    // Every route is tried without a token: far more failures from one address than the limiter allows.
    h = await startHarness('sqlite', { authLimits: { failures: 1_000_000, windowMs: 60_000 } });
  });
  afterAll(async () => h?.close());

  it('has a role on every route, and only health, metrics and the API document are public', () => {
    expect(
      ROUTES.filter((r) => r.access === 'public')
        .map(urlOf)
        .sort(),
    ).toEqual(['/api/v1/openapi.json', '/healthz', '/metrics']);
    for (const r of ROUTES) expect([...TOKEN_ROLES, 'public']).toContain(r.access);
    // every route the server answers is in the registry (nothing registered by hand around it)
    for (const r of ROUTES) expect(h.app.hasRoute({ method: r.method, url: urlOf(r) }), urlOf(r)).toBe(true);
  });

  it.each(protectedRoutes.map((r) => [`${r.method} ${urlOf(r)}`, r] as const))(
    '%s refuses requests without a valid token',
    async (_n, r) => {
      const none = await h.call(undefined, r.method, concrete(r), r.method === 'GET' ? undefined : {});
      expect(none.status).toBe(401);
      expect(none.body.code).toBe('RAMPART_ERR_UNAUTHENTICATED');
      const res = await fetch(`${h.url}${concrete(r)}`, {
        method: r.method,
        headers: { authorization: 'Bearer rpt_00000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
      });
      expect(res.status).toBe(401);
    },
  );

  const cases = protectedRoutes.flatMap((r) =>
    TOKEN_ROLES.map(
      (role) => [`${r.method} ${urlOf(r)} as ${role}`, r, role, roleAtLeast(role, r.access as Role)] as const,
    ),
  );
  it.each(cases)('%s', async (_n, r, role, allowed) => {
    if (allowed && r.produces?.includes('text/event-stream')) {
      // An event stream never ends: its head is enough, then the client goes away.
      const stop = new AbortController();
      const res = await fetch(`${h.url}${concrete(r)}`, {
        headers: { authorization: `Bearer ${h.tokens[AS[role]]}` },
        signal: stop.signal,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      stop.abort();
      return;
    }
    const res = await h.call(AS[role], r.method, concrete(r), r.method === 'GET' ? undefined : {});
    if (allowed) {
      expect(
        [401, 403].includes(res.status) &&
          ['RAMPART_ERR_UNAUTHENTICATED', 'RAMPART_ERR_FORBIDDEN'].includes(res.body.code),
      ).toBe(false);
    } else {
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({ code: 'RAMPART_ERR_FORBIDDEN', required: r.access, role });
    }
  });

  it('refuses a revoked token', async () => {
    const created = await h.call('admin', 'POST', '/tokens', { name: 'temp', role: 'viewer' });
    expect(created.status).toBe(201);
    expect(created.body.token).toMatch(/^rpt_[0-9a-f]{8}_/);
    expect(created.body.secretHash).toBeUndefined();
    const use = () => fetch(`${h.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${created.body.token}` } });
    expect((await use()).status).toBe(200);
    expect((await h.call('admin', 'DELETE', `/tokens/${created.body.id}`)).body.revokedAt).not.toBeNull();
    const after = await use();
    expect(after.status).toBe(401);
    expect(((await after.json()) as { detail: string }).detail).toMatch(/revoked/);
  });

  it('never returns secrets or their hashes in token lists', async () => {
    const list = await h.call('admin', 'GET', '/tokens');
    expect(JSON.stringify(list.body)).not.toMatch(/secretHash|rpt_/);
  });
});
