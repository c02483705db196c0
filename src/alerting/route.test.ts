import { describe, expect, it } from 'vitest';
import { type Matcher, parseMatcher } from './matchers.js';
import { buildRoute, groupKeyOf, groupLabelsOf, matchRoutes, ROUTE_DEFAULTS } from './route.js';

const ms = (...texts: string[]): Matcher[] =>
  texts.map((t) => {
    const r = parseMatcher(t);
    if (typeof r === 'string') throw new Error(r);
    return r;
  });

// Alertmanager's documented example tree, in Rampart's terms.
const root = buildRoute({
  receiver: 'default',
  groupBy: ['alertname'],
  groupWaitMs: 30_000,
  routes: [
    { matchers: ms('service=~"mysql|cassandra"'), receiver: 'database-pager', groupWaitMs: 10_000 },
    {
      matchers: ms('team="frontend"'),
      receiver: 'frontend',
      groupBy: ['alertname', 'cluster'],
      routes: [{ matchers: ms('severity="critical"'), receiver: 'frontend-pager' }],
    },
    { matchers: ms('severity="critical"'), receiver: 'audit-log', continue: true },
    { matchers: ms('severity="critical"'), receiver: 'pager' },
  ],
});
const receivers = (labels: Record<string, string>) => matchRoutes(root, labels).map((r) => r.receiver);

describe('the routing tree', () => {
  it('takes the first matching child, and the root when none matches', () => {
    expect(receivers({ service: 'mysql' })).toEqual(['database-pager']);
    expect(receivers({ service: 'redis' })).toEqual(['default']);
  });

  it('goes deeper, and stays at a node whose children do not match', () => {
    expect(receivers({ team: 'frontend', severity: 'critical' })).toEqual(['frontend-pager']);
    expect(receivers({ team: 'frontend', severity: 'warning' })).toEqual(['frontend']);
  });

  it('goes on past a matching child that says continue', () => {
    expect(receivers({ severity: 'critical' })).toEqual(['audit-log', 'pager']);
  });

  it('inherits intervals and grouping from the parent, and the root from Rampart defaults', () => {
    const [db] = matchRoutes(root, { service: 'mysql' });
    expect(db?.groupWaitMs).toBe(10_000);
    expect(db?.groupBy).toEqual(['alertname']);
    expect(db?.groupIntervalMs).toBe(ROUTE_DEFAULTS.groupIntervalMs);
    const [fe] = matchRoutes(root, { team: 'frontend', severity: 'critical' });
    expect(fe?.groupBy).toEqual(['alertname', 'cluster']);
    expect(fe?.groupWaitMs).toBe(30_000);
    expect(buildRoute({ receiver: 'x' }).groupWaitMs).toBeLessThanOrEqual(2000);
  });

  it("keys groups like Alertmanager: the route's matchers from the root and the group labels", () => {
    const [fe] = matchRoutes(root, { team: 'frontend', severity: 'critical', alertname: 'Down', cluster: 'eu' });
    if (!fe) throw new Error('route');
    const g = groupLabelsOf(fe, { team: 'frontend', severity: 'critical', alertname: 'Down', cluster: 'eu' });
    expect(g).toEqual({ alertname: 'Down', cluster: 'eu' });
    expect(groupKeyOf(fe, g)).toBe('{}/{team="frontend"}/{severity="critical"}:{alertname="Down",cluster="eu"}');
  });

  it('gives siblings with the same matchers different keys', () => {
    const keys = matchRoutes(root, { severity: 'critical' }).map((r) => r.key);
    expect(new Set(keys).size).toBe(2);
  });

  it("groups by every label with '...'", () => {
    const all = buildRoute({ receiver: 'x', groupBy: 'all' });
    expect(groupLabelsOf(all, { a: '1', b: '2' })).toEqual({ a: '1', b: '2' });
  });
});
