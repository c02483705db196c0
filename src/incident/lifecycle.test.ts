import { describe, expect, it } from 'vitest';
import { firing } from '../alerting/alert.js';
import type { Alert } from '../alerting/types.js';
import { RampartError } from '../errors.js';
import {
  acknowledge,
  assign,
  DEFAULT_INCIDENT_POLICY,
  decideForGroup,
  declare,
  note,
  parseSeverity,
  resolve,
  responseTimes,
  setStatus,
  withHostService,
} from './lifecycle.js';
import type { Incident } from './types.js';

const T0 = Date.parse('2026-03-01T10:00:00Z');
const min = 60_000;
const policy = DEFAULT_INCIDENT_POLICY;

const alert = (name: string, severity: string, atMs = T0, extra: Record<string, string> = {}): Alert =>
  firing({ labels: { alertname: name, severity, service: 'shop', ...extra }, source: 'monitor.state' }, atMs);

function stored(draft: Omit<Incident, 'id' | 'version'>): Incident {
  return { ...draft, id: 7, version: 1 };
}

function thrown(fn: () => unknown): RampartError {
  try {
    fn();
  } catch (e) {
    if (e instanceof RampartError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

describe('declaring from an alert group', () => {
  it('declares when a firing alert is at least as severe as the policy asks', () => {
    const d = decideForGroup(
      'g1',
      [alert('ServiceDown', 'critical', T0, { host: 'web1' })],
      undefined,
      policy,
      T0 + 1000,
    );
    expect(d.kind).toBe('declare');
    if (d.kind !== 'declare') return;
    expect(d.draft).toMatchObject({
      title: 'ServiceDown: shop',
      severity: 'SEV2',
      status: 'investigating',
      services: ['shop'],
      hosts: ['web1'],
      groupKey: 'g1',
      declaredBy: 'rampart',
      startedAt: new Date(T0).toISOString(),
      detectedAt: new Date(T0).toISOString(),
    });
    expect(d.entry.kind).toBe('incident.declared');
  });

  it('does not declare for a warning, a resolved alert or an unknown severity under severity >= critical', () => {
    const resolved: Alert = {
      ...alert('ServiceDown', 'critical'),
      state: 'resolved',
      endsAt: new Date(T0).toISOString(),
    };
    for (const a of [alert('RedundancyDegraded', 'warning'), resolved, alert('X', 'urgent')]) {
      expect(decideForGroup('g1', [a], undefined, policy, T0).kind).toBe('none');
    }
    expect(decideForGroup('g1', [alert('X', 'critical')], undefined, { ...policy, autoDeclare: null }, T0).kind).toBe(
      'none',
    );
  });

  it('declares for warnings too under severity >= warning', () => {
    const p = { ...policy, autoDeclare: { minSeverity: 'warning' as const, severity: 'SEV3' as const } };
    const d = decideForGroup('g1', [alert('RedundancyDegraded', 'warning')], undefined, p, T0);
    expect(d.kind === 'declare' && d.draft.severity).toBe('SEV3');
  });

  it('widens the open incident with a new host instead of declaring another', () => {
    const d0 = decideForGroup('g1', [alert('ServiceDown', 'critical', T0, { host: 'web1' })], undefined, policy, T0);
    if (d0.kind !== 'declare') throw new Error('expected declare');
    const inc = stored(d0.draft);
    const again = decideForGroup('g1', [alert('ServiceDown', 'critical', T0, { host: 'web1' })], inc, policy, T0 + min);
    expect(again.kind).toBe('none');
    const wider = decideForGroup(
      'g1',
      [alert('ServiceDown', 'critical', T0, { host: 'web1' }), alert('ServiceDown', 'critical', T0, { host: 'web2' })],
      inc,
      policy,
      T0 + min,
    );
    expect(wider.kind === 'widen' && wider.incident.hosts).toEqual(['web1', 'web2']);
  });

  it('reopens a resolved incident when its group fires again within the window, and declares anew after it', () => {
    const d0 = decideForGroup('g1', [alert('ServiceDown', 'critical')], undefined, policy, T0);
    if (d0.kind !== 'declare') throw new Error('expected declare');
    const done = resolve(stored(d0.draft), 'alice', T0 + 30 * min).incident;
    const within = decideForGroup('g1', [alert('ServiceDown', 'critical', T0 + 80 * min)], done, policy, T0 + 80 * min);
    expect(within.kind).toBe('reopen');
    if (within.kind !== 'reopen') return;
    expect(within.incident).toMatchObject({
      id: 7,
      status: 'investigating',
      resolvedAt: null,
      mitigatedAt: null,
      reopened: 1,
    });
    expect(within.entry.text).toContain('50 min after it was resolved');
    const after = decideForGroup('g1', [alert('ServiceDown', 'critical', T0 + 91 * min)], done, policy, T0 + 91 * min);
    expect(after.kind).toBe('declare');
  });
});

describe('the lifecycle by hand', () => {
  const { draft } = declare({ title: ' Shop down ', severity: 'SEV1', services: ['shop'] }, 'alice', T0);
  const inc = stored(draft);

  it('declares with the time it began when given, never in the future', () => {
    expect(inc).toMatchObject({
      title: 'Shop down',
      severity: 'SEV1',
      declaredBy: 'alice',
      startedAt: new Date(T0).toISOString(),
    });
    const earlier = declare({ title: 'x', severity: 'SEV3', startedAt: '2026-03-01T09:50:00Z' }, 'a', T0).draft;
    expect(responseTimes(stored(earlier)).mttdMs).toBe(10 * min);
    const e = thrown(() => declare({ title: 'x', severity: 'SEV3', startedAt: '2026-03-01T11:00:00Z' }, 'a', T0));
    expect(e.code).toBe('RAMPART_ERR_VALIDATION');
    expect(e.message).toContain('startedAt');
    expect(thrown(() => declare({ title: '  ', severity: 'SEV3' }, 'a', T0)).message).toContain('title');
  });

  it('walks investigating → identified → monitoring → resolved with MTTA and MTTR', () => {
    const acked = acknowledge(inc, 'bob', T0 + 4 * min);
    expect(acked.incident).toMatchObject({ commander: 'bob', acknowledgedAt: new Date(T0 + 4 * min).toISOString() });
    const identified = setStatus(acked.incident, 'identified', 'bob', T0 + 10 * min, 'the rule');
    expect(identified.entry).toMatchObject({
      kind: 'incident.status',
      text: 'the rule',
      data: { from: 'investigating', to: 'identified' },
    });
    const mitigated = setStatus(identified.incident, 'monitoring', 'bob', T0 + 20 * min);
    expect(mitigated.incident.mitigatedAt).toBe(new Date(T0 + 20 * min).toISOString());
    const done = setStatus(mitigated.incident, 'resolved', 'bob', T0 + 60 * min);
    expect(done.incident.status).toBe('resolved');
    expect(responseTimes(done.incident)).toEqual({ mttdMs: 0, mttaMs: 4 * min, mttrMs: 60 * min });
  });

  it('refuses what the state does not allow, saying what it is', () => {
    const acked = acknowledge(inc, 'bob', T0 + min).incident;
    expect(thrown(() => acknowledge(acked, 'carol', T0 + 2 * min)).message).toMatch(/acknowledged at .* already/);
    expect(thrown(() => setStatus(inc, 'investigating', 'bob', T0)).code).toBe('RAMPART_ERR_STATE');
    const bad = thrown(() => setStatus(inc, 'fixed', 'bob', T0));
    expect(bad.code).toBe('RAMPART_ERR_VALIDATION');
    expect(bad.message).toContain('investigating, identified, monitoring, resolved');
    const done = resolve(inc, 'bob', T0 + min).incident;
    expect(thrown(() => resolve(done, 'bob', T0 + 2 * min)).message).toContain('is resolved');
    expect(thrown(() => assign(done, 'carol', 'bob', T0 + 2 * min)).code).toBe('RAMPART_ERR_STATE');
    // Notes are still welcome after the resolution.
    expect(note(done, 'learnt', 'bob', T0 + 3 * min).kind).toBe('incident.note');
    expect(thrown(() => note(done, ' ', 'bob', T0)).code).toBe('RAMPART_ERR_VALIDATION');
  });

  it('reads severities as 1, sev1 or SEV1', () => {
    expect(parseSeverity(1)).toBe('SEV1');
    expect(parseSeverity('sev4')).toBe('SEV4');
    expect(parseSeverity('5')).toBeUndefined();
  });

  it("groups a host's alert with the one service that host runs, and leaves it alone otherwise", () => {
    const services = [
      { name: 'shop', hosts: ['web1', 'web2'] },
      { name: 'api', hosts: ['web2'] },
    ];
    const drift = (host: string, extra: Record<string, string> = {}) =>
      firing(
        { labels: { alertname: 'FirewallDrift', severity: 'critical', host, ...extra }, source: 'host.drift' },
        T0,
      );
    expect(withHostService(drift('web1'), services).labels).toEqual({
      alertname: 'FirewallDrift',
      severity: 'critical',
      host: 'web1',
      service: 'shop',
    });
    // web2 runs two services: which outage it belongs to is not the config's to say
    expect(withHostService(drift('web2'), services).labels.service).toBeUndefined();
    // a host no service runs, an alert that names its service already, an alert with no host: unchanged
    expect(withHostService(drift('db1'), services).labels.service).toBeUndefined();
    expect(withHostService(drift('web1', { service: 'admin' }), services).labels.service).toBe('admin');
    const a = alert('ServiceDown', 'critical');
    expect(withHostService(a, services)).toBe(a);
    // the fingerprint (the stored alert's identity) is kept
    expect(withHostService(drift('web1'), services).fingerprint).toBe(drift('web1').fingerprint);
  });
});
