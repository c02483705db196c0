import { describe, expect, it } from 'vitest';
import { firing } from './alert.js';
import { flush, type GroupState, newGroup, placements } from './group.js';
import { buildRoute, matchRoutes } from './route.js';
import type { Alert } from './types.js';

const route = buildRoute({
  receiver: 'pager',
  groupBy: ['service'],
  groupWaitMs: 500,
  groupIntervalMs: 30_000,
  repeatIntervalMs: 3_600_000,
});
const alert = (host: string, atMs: number) =>
  firing({ labels: { alertname: 'MonitorDown', service: 'shop', host }, source: 'test' }, atMs);
const resolved = (a: Alert, atMs: number): Alert => ({
  ...a,
  state: 'resolved',
  endsAt: new Date(atMs).toISOString(),
});
const ctx = (nowMs: number, mute: (a: Alert) => null | { kind: 'silenced'; silence: string } = () => null) => ({
  nowMs,
  route,
  mute,
  externalURL: 'http://rampart.test',
});

function start(a: Alert, nowMs: number): GroupState {
  const [p] = placements(matchRoutes(route, a.labels), a.labels);
  if (!p) throw new Error('placement');
  return newGroup(p, nowMs);
}

describe('alert groups over simulated time', () => {
  it('flush after group_wait with every alert that arrived meanwhile, then stay quiet while nothing changes', () => {
    const web1 = alert('web1', 0);
    const web2 = alert('web2', 200);
    const g = start(web1, 0);
    expect(g.nextFlushMs).toBe(500);
    const first = flush(g, [web1, web2], ctx(500));
    expect(first.notification?.alerts.map((a) => a.labels.host)).toEqual(['web1', 'web2']);
    expect(first.notification).toMatchObject({ status: 'firing', groupLabels: { service: 'shop' }, receiver: 'pager' });
    expect(first.notification?.commonLabels).toEqual({ alertname: 'MonitorDown', service: 'shop' });
    const quiet = flush(first.group as GroupState, [web1, web2], ctx(30_500));
    expect(quiet.notification).toBeNull();
    expect(quiet.group?.nextFlushMs).toBe(60_500);
  });

  it('notify a new alert at the next group_interval, and repeat after repeat_interval while firing', () => {
    const web1 = alert('web1', 0);
    let g = flush(start(web1, 0), [web1], ctx(500)).group as GroupState;
    const web2 = alert('web2', 10_000);
    const grew = flush(g, [web1, web2], ctx(30_500));
    expect(grew.notification?.alerts).toHaveLength(2);
    g = grew.group as GroupState;
    let t = 30_500;
    let sent = 0;
    while (t < 30_500 + 3_600_000) {
      t += 30_000;
      const r = flush(g, [web1, web2], ctx(t));
      if (r.notification) sent++;
      g = r.group as GroupState;
    }
    expect(sent).toBe(1);
    expect(g.seq).toBe(3);
  });

  it('announce a resolution once, then finish the group', () => {
    const web1 = alert('web1', 0);
    const g = flush(start(web1, 0), [web1], ctx(500)).group as GroupState;
    const done = flush(g, [resolved(web1, 5000)], ctx(30_500));
    expect(done.notification).toMatchObject({ status: 'resolved' });
    expect(done.notification?.alerts[0]?.state).toBe('resolved');
    expect(done.group).toBeNull();
    expect(done.drop).toEqual([web1.fingerprint]);
  });

  it('say nothing of an alert that resolved before the group first flushed', () => {
    const web1 = alert('web1', 0);
    const r = flush(start(web1, 0), [resolved(web1, 300)], ctx(500));
    expect(r.notification).toBeNull();
    expect(r.group).toBeNull();
  });

  it('leave muted alerts out, and send them when the mute ends', () => {
    const web1 = alert('web1', 0);
    const silenced = () => ({ kind: 'silenced' as const, silence: 's1' });
    const muted = flush(start(web1, 0), [web1], ctx(500, silenced));
    expect(muted.notification).toBeNull();
    expect(muted.group).not.toBeNull();
    const after = flush(muted.group as GroupState, [web1], ctx(30_500));
    expect(after.notification?.alerts).toHaveLength(1);
  });

  it('bound the alerts listed and count the rest', () => {
    const alerts = Array.from({ length: 5 }, (_, i) => alert(`web${i}`, i));
    const r = flush(start(alerts[0] as Alert, 0), alerts, { ...ctx(500), maxAlerts: 2 });
    expect(r.notification?.alerts).toHaveLength(2);
    expect(r.notification?.truncatedAlerts).toBe(3);
  });
});
