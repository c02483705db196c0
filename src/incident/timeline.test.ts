import { describe, expect, it } from 'vitest';
import { declare } from './lifecycle.js';
import { assembleTimeline, fromAudit, outageStart, type TimelineSources } from './timeline.js';
import { formatDuration, formatLocal, isTimeZone } from './timezone.js';
import type { Incident } from './types.js';

const T0 = Date.parse('2026-07-01T10:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const min = 60_000;

const inc: Incident = {
  ...declare({ title: 'shop', severity: 'SEV2', services: ['shop'], hosts: ['web1'] }, 'a', T0).draft,
  id: 1,
  version: 1,
};

const empty: TimelineSources = {
  events: [],
  alerts: [],
  notifications: [],
  changes: [],
  drift: [],
  own: [],
  stars: new Set(),
};
const opts = { timeZone: 'America/New_York', lookBackMs: 2 * 3_600_000, nowMs: T0 + 30 * min };

describe('the timeline', () => {
  it('gives each entry its UTC time and the site’s local time', () => {
    const t = assembleTimeline(inc, { ...empty, drift: [{ host: 'web1', at: iso(T0 - min), text: 'edited' }] }, opts);
    expect(t).toHaveLength(1);
    expect(t[0]).toMatchObject({
      at: iso(T0 - min),
      local: '2026-07-01 05:59 GMT-4',
      kind: 'host.drift',
      keyMoment: true,
    });
  });

  it('takes changes and drift on the incident’s hosts within the look-back window only', () => {
    const changes = [
      { changeId: 1, at: iso(T0 - 121 * min), action: 'applied', by: 'x', hosts: ['web1'], reason: '' },
      { changeId: 2, at: iso(T0 - 119 * min), action: 'applied', by: 'x', hosts: ['web1'], reason: 'r' },
      { changeId: 3, at: iso(T0 - 10 * min), action: 'applied', by: 'x', hosts: ['db1'], reason: '' },
      { changeId: 4, at: iso(T0 + 40 * min), action: 'applied', by: 'x', hosts: ['web1'], reason: '' },
    ];
    const t = assembleTimeline(inc, { ...empty, changes }, opts);
    expect(t.map((e) => e.text)).toEqual(['Change #2 applied on web1 by x: r']);
    expect(assembleTimeline(inc, { ...empty, changes }, { ...opts, lookBackMs: 3 * 3_600_000 })).toHaveLength(2);
  });

  it('leaves out a traffic drop that recovered before the incident began: it does not move the start back', () => {
    const drop = (id: number, at: number, since: number) => ({
      id,
      at: iso(at),
      kind: 'traffic.drop',
      subject: 'service:shop',
      data: { service: 'shop', host: 'web1', dropShare: 0.9, observed: 1, expected: 20, since: iso(since) },
    });
    const recovered = (id: number, at: number) => ({
      id,
      at: iso(at),
      kind: 'traffic.recovered',
      subject: 'service:shop',
      data: { service: 'shop', host: 'web1', observed: 20, expected: 20 },
    });
    // an earlier outage 40 to 30 minutes before, over; this one's drop began a minute before the alert
    const events = [drop(1, T0 - 39 * min, T0 - 40 * min), recovered(2, T0 - 30 * min), drop(3, T0, T0 - min)];
    const t = assembleTimeline(inc, { ...empty, events }, opts);
    expect(t.map((e) => e.key)).toEqual(['event:3']);
    expect(outageStart(inc, t)).toBe(iso(T0 - min));
    // without this outage's own drop, the start stays the alert's
    const earlier = assembleTimeline(inc, { ...empty, events: events.slice(0, 2) }, opts);
    expect(outageStart(inc, earlier)).toBe(inc.startedAt);
  });

  it('places a traffic drop when it began, and shows a probe’s first failure per vantage point', () => {
    const events = [
      {
        id: 1,
        at: iso(T0 + 5 * min),
        kind: 'traffic.drop',
        subject: 'service:shop',
        data: { service: 'shop', dropShare: 0.5, observed: 1, expected: 2, since: iso(T0 - 2 * min) },
      },
      {
        id: 2,
        at: iso(T0),
        kind: 'monitor.vantage',
        subject: 'monitor:m',
        data: { monitor: 'm', service: 'shop', vantage: 'a', to: 'down' },
      },
      {
        id: 3,
        at: iso(T0 + min),
        kind: 'monitor.vantage',
        subject: 'monitor:m',
        data: { monitor: 'm', service: 'shop', vantage: 'a', to: 'down' },
      },
      {
        id: 4,
        at: iso(T0 + min),
        kind: 'monitor.vantage',
        subject: 'monitor:m',
        data: { monitor: 'm', service: 'shop', vantage: 'b', to: 'down' },
      },
    ];
    const t = assembleTimeline(inc, { ...empty, events }, opts);
    expect(t.map((e) => [e.key, e.at])).toEqual([
      ['event:1', iso(T0 - 2 * min)],
      ['event:2', iso(T0)],
      ['event:4', iso(T0 + min)],
    ]);
    expect(t[0]?.text).toContain('fell 50% below');
  });

  it('marks stars on assembled entries by key and keeps own entries’ flags', () => {
    const own = [
      {
        id: 9,
        incidentId: 1,
        kind: 'incident.note' as const,
        at: iso(T0 + min),
        by: 'bob',
        text: 'hm',
        data: {},
        starred: true,
      },
    ];
    const drift = [{ host: 'web1', at: iso(T0), text: 'edited' }];
    const t = assembleTimeline(inc, { ...empty, own, drift, stars: new Set([`drift:web1:${iso(T0)}`]) }, opts);
    expect(t.map((e) => [e.key, e.starred, e.text])).toEqual([
      [`drift:web1:${iso(T0)}`, true, 'Drift on web1: edited'],
      ['entry:9', true, 'bob: hm'],
    ]);
  });
});

describe('an earlier outage that ended', () => {
  it('leaves out monitoring from before the last all-clear; changes and drift keep their look-back', () => {
    const vantage = (id: number, at: number, to: 'down' | 'up', vantage = 'server') => ({
      id,
      at: iso(at),
      kind: 'monitor.vantage',
      subject: 'monitor:shop',
      data: { monitor: 'shop', service: 'shop', vantage, to },
    });
    const events = [
      // an outage 30 minutes before, over after 5 minutes (both vantage points back)
      vantage(1, T0 - 30 * min, 'down'),
      vantage(2, T0 - 30 * min, 'down', 'probe-eu'),
      vantage(3, T0 - 26 * min, 'up'),
      vantage(4, T0 - 25 * min, 'up', 'probe-eu'),
      // this one: the probe fails a little before the alert
      vantage(5, T0 - min, 'down'),
    ];
    const drift = [{ host: 'web1', at: iso(T0 - 40 * min), text: 'edited' }];
    const t = assembleTimeline(inc, { ...empty, events, drift }, opts);
    expect(t.map((e) => [e.kind, e.at])).toEqual([
      ['host.drift', iso(T0 - 40 * min)],
      ['monitor.vantage', iso(T0 - min)],
    ]);
    expect(t[1]?.text).toBe('First failing probe of shop from server');
  });
});

describe('changes and drift from the audit trail', () => {
  it('reads change steps, applied jobs, rollbacks and drift; leaves the rest out', () => {
    const at = iso(T0);
    const { changes, drift } = fromAudit([
      {
        at,
        actor: 'alice',
        action: 'change.propose',
        target: 'change:4',
        after: { hosts: ['web1', 'web2'], reason: 'open 443' },
      },
      { at, actor: 'bob', action: 'change.approve', target: 'change:4', after: { state: 'approved' } },
      { at, actor: 'agent-web1', action: 'job.done', target: 'change:4', after: { host: 'web1', change: 'applied' } },
      { at, actor: 'agent-web1', action: 'job.done', target: 'change:4', after: { host: 'web2', change: 'applying' } },
      {
        at,
        actor: 'agent-web2',
        action: 'job.rolled-back',
        target: 'change:5',
        after: { host: 'web2', detail: 'health check failed' },
      },
      { at, actor: 'agent-web1', action: 'host.drift', target: 'host:web1', after: { summary: '1 rule removed' } },
      { at, actor: 'alice', action: 'token.create', target: 'token:x', after: {} },
    ]);
    expect(changes.map((c) => [c.changeId, c.action, c.by, c.hosts, c.reason])).toEqual([
      [4, 'proposed', 'alice', ['web1', 'web2'], 'open 443'],
      [4, 'approved', 'bob', ['web1', 'web2'], ''],
      [4, 'applied', 'agent-web1', ['web1'], ''],
      [5, 'rolled-back', 'agent-web2', ['web2'], 'health check failed'],
    ]);
    expect(drift).toEqual([{ host: 'web1', at, text: '1 rule removed' }]);
  });

  it('gives a review the hosts its change names elsewhere (the proposal), so it is in a host-scoped timeline', () => {
    const at = iso(T0);
    const { changes } = fromAudit([
      { at, actor: 'alice', action: 'change.propose', target: 'change:7', after: { hosts: ['web1', 'web2'] } },
      { at, actor: 'bob', action: 'change.approve', target: 'change:7', after: { state: 'approved' } },
      { at, actor: 'bob', action: 'change.approve', target: 'change:8', after: { state: 'approved' } },
    ]);
    expect(changes.map((c) => [c.changeId, c.action, c.hosts])).toEqual([
      [7, 'proposed', ['web1', 'web2']],
      [7, 'approved', ['web1', 'web2']],
      [8, 'approved', []],
    ]);
  });

  it('dates drift by when the agent read the live ruleset, within a minute before the server diffed it', () => {
    const drift = (seenAt: string) =>
      fromAudit([
        { at: iso(T0), actor: 'web1', action: 'host.drift', target: 'host:web1', after: { summary: 'x', seenAt } },
      ]).drift[0]?.at;
    expect(drift(iso(T0 - 12_000))).toBe(iso(T0 - 12_000));
    // a clock far off (or ahead of the server) is not believed
    expect(drift(iso(T0 - 5 * min))).toBe(iso(T0));
    expect(drift(iso(T0 + 1000))).toBe(iso(T0));
  });
});

describe('time zones', () => {
  it('knows IANA names and prints offsets', () => {
    expect(isTimeZone('Europe/Istanbul')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
    expect(formatLocal('2026-01-01T00:30:00Z', 'UTC')).toBe('2026-01-01 00:30 UTC');
    expect(formatLocal('2026-01-01T00:30:00Z', 'Asia/Kolkata')).toBe('2026-01-01 06:00 GMT+5:30');
  });

  it('says durations in words', () => {
    expect(formatDuration(2 * 3_600_000)).toBe('2 hours');
    expect(formatDuration(65 * min)).toBe('1 hour 5 minutes');
    expect(formatDuration(30_000)).toBe('30 seconds');
  });
});
