import { describe, expect, it } from 'vitest';
import { DRILL_SCENARIOS, findScenario } from './scenarios.js';
import {
  type DrillObservation,
  FOUNDING_FIGURES,
  judgeSuspects,
  renderCompareTable,
  renderScoreTable,
  scoreCompare,
  scoreDrill,
} from './score.js';

const T0 = Date.parse('2026-12-04T14:00:00Z');
const founding = findScenario('founding-outage');
const backendDown = findScenario('backend-down');
if (!founding || !backendDown) throw new Error('scenarios missing');

/** The founding outage as a good response sees it: 50 req/s, failures from the fault to 20 s later. */
function foundingRun(over: Partial<DrillObservation> = {}): DrillObservation {
  const failuresAt = Array.from({ length: 1000 }, (_, i) => T0 + i * 20);
  return {
    scenario: 'founding-outage',
    faultAt: T0,
    alerts: [
      { labels: { alertname: 'MonitorDegraded', service: 'shop', monitor: 'shop' }, startsAt: T0 + 1500 },
      { labels: { alertname: 'MonitorDown', service: 'shop', monitor: 'shop' }, startsAt: T0 + 2500 },
      { labels: { alertname: 'ServiceDown', service: 'shop' }, startsAt: T0 + 2600 },
      {
        labels: { alertname: 'MonitorDown', service: 'shop', host: 'web1', monitor: 'shop@web1' },
        startsAt: T0 + 2700,
      },
      {
        labels: { alertname: 'MonitorDown', service: 'shop', host: 'web2', monitor: 'shop@web2' },
        startsAt: T0 + 2800,
      },
      // fired before the drill: not this drill's
      { labels: { alertname: 'AgentSilent', host: 'web1' }, startsAt: T0 - 60_000 },
    ],
    pages: [
      { at: T0 + 3200, receiver: '/team', id: 'g1:1', status: 'firing' },
      { at: T0 + 3300, receiver: '/alice', id: 'g1:e0', status: 'firing' },
      { at: T0 + 25_000, receiver: '/team', id: 'g1:2', status: 'resolved' },
    ],
    ackedAt: T0 + 5200,
    mitigatedAt: T0 + 18_000,
    traffic: { startedAt: T0 - 5000, endedAt: T0 + 40_000, rate: 50, sent: 2250, failed: 1000, failuresAt },
    endedAt: T0 + 40_000,
    ...over,
  };
}

describe('scoreDrill', () => {
  it('measures detect, page, ack, mitigate and recover from the fault, and passes a clean response', () => {
    const s = scoreDrill(founding, foundingRun(), T0 + 60_000);
    expect(s).toMatchObject({
      detect: 1500,
      notify: 3200,
      ack: 5200,
      mitigate: 18_000,
      recover: 999 * 20 + 20,
      cause: 'not measured',
      usersAffected: true,
      notifications: { sent: 2, duplicates: 0, resolved: 1 },
    });
    expect(s.failedShare).toBeCloseTo(1000 / 2250);
    expect(s.alerts.missing).toEqual([]);
    expect(s.alerts.unexpected).toEqual([]);
    expect(s.alerts.fired).toContain('ServiceDown{service="shop"}');
    expect(s.problems).toEqual([]);
    expect(s.passed).toBe(true);
  });

  it('names a missing expected alert and an unexpected one', () => {
    const obs = foundingRun();
    const s = scoreDrill(
      founding,
      {
        ...obs,
        alerts: [
          ...obs.alerts.filter((a) => a.labels.alertname !== 'ServiceDown'),
          { labels: { alertname: 'TlsCertificateExpiring', service: 'shop' }, startsAt: T0 + 4000 },
        ],
      },
      T0 + 60_000,
    );
    expect(s.alerts.missing).toEqual(['ServiceDown{service="shop"}']);
    expect(s.alerts.unexpected).toEqual(['TlsCertificateExpiring{service="shop"}']);
    expect(s.passed).toBe(false);
    expect(s.problems).toEqual([
      'expected alert ServiceDown{service="shop"} did not fire',
      'unexpected alert TlsCertificateExpiring{service="shop"} fired',
    ]);
  });

  it('counts the same notification accepted twice by one receiver as a duplicate, not the same group at two', () => {
    const obs = foundingRun();
    const s = scoreDrill(
      founding,
      { ...obs, pages: [...obs.pages, { at: T0 + 4000, receiver: '/team', id: 'g1:1', status: 'firing' }] },
      T0 + 60_000,
    );
    expect(s.notifications).toEqual({ sent: 3, duplicates: 1, resolved: 1 });
    expect(s.problems).toContain('1 duplicate notification(s)');
  });

  it('takes the clock as an argument: before the page arrives, it has not happened', () => {
    const s = scoreDrill(founding, foundingRun(), T0 + 3000);
    expect(s.detect).toBe(1500);
    expect(s.notify).toBe('never');
    expect(s.mitigate).toBe('never');
    expect(s.recover).toBe('never');
  });

  it('does not count failures that run to the end of the client as a recovery', () => {
    const obs = foundingRun();
    const failuresAt = Array.from({ length: 2000 }, (_, i) => T0 + i * 20);
    const s = scoreDrill(founding, { ...obs, traffic: { ...obs.traffic, failuresAt } }, T0 + 60_000);
    expect(s.recover).toBe('never');
    expect(s.problems).toContain('the customers did not succeed again before the drill ended');
  });

  it('scores a degraded backend: users unaffected, nothing to recover, failures beyond its 1% are a problem', () => {
    const obs: DrillObservation = {
      scenario: 'backend-down',
      faultAt: T0,
      alerts: [
        {
          labels: { alertname: 'MonitorDown', service: 'shop', host: 'web2', monitor: 'shop@web2' },
          startsAt: T0 + 2000,
        },
        { labels: { alertname: 'RedundancyDegraded', service: 'shop' }, startsAt: T0 + 2100 },
      ],
      pages: [{ at: T0 + 2900, receiver: '/team', id: 'g2:1', status: 'firing' }],
      ackedAt: T0 + 4900,
      mitigatedAt: T0 + 6000,
      traffic: { startedAt: T0 - 1000, endedAt: T0 + 20_000, rate: 20, sent: 420, failed: 0, failuresAt: [] },
      endedAt: T0 + 20_000,
    };
    const s = scoreDrill(backendDown, obs, T0 + 30_000);
    expect(s).toMatchObject({ recover: 'not applicable', usersAffected: false, failedShare: 0, passed: true });
    // one request in flight on the killed process: within the scenario's 1%
    const inFlight = scoreDrill(
      backendDown,
      { ...obs, traffic: { ...obs.traffic, failed: 1, failuresAt: [T0 + 2500] } },
      T0 + 30_000,
    );
    expect(inFlight).toMatchObject({ usersAffected: true, passed: true });
    const bad = scoreDrill(
      backendDown,
      {
        ...obs,
        traffic: { ...obs.traffic, failed: 10, failuresAt: Array.from({ length: 10 }, (_, i) => T0 + 2500 + i * 50) },
      },
      T0 + 30_000,
    );
    expect(bad.passed).toBe(false);
    expect(bad.problems).toContain('10 customer request(s) failed (2.38%) although users should be unaffected');
  });

  it('measures the cause when suspects are observed, the first correct one', () => {
    const s = scoreDrill(
      founding,
      {
        ...foundingRun(),
        suspects: [
          { at: T0 + 4000, correct: false },
          { at: T0 + 7000, correct: true },
        ],
      },
      T0 + 60_000,
    );
    expect(s.cause).toBe(7000);
    expect(s.passed).toBe(true);
  });

  it('fails a drill whose cause the suspects route never named, saying what it named instead', () => {
    const s = scoreDrill(
      founding,
      { ...foundingRun(), suspects: [{ at: T0 + 4000, correct: false, named: ['drift on web1'] }] },
      T0 + 60_000,
    );
    expect(s.cause).toBe('never');
    expect(s.causeNote).toBe('named instead: drift on web1');
    expect(s.problems).toContain('the suspects route never named the drift on web1 and web2 (it named drift on web1)');
    expect(s.passed).toBe(false);
  });

  it("says n/a with the scenario's reason where the route cannot name the cause, and fails a false suspect", () => {
    const obs: DrillObservation = {
      ...foundingRun(),
      scenario: 'backend-down',
      alerts: [
        { labels: { alertname: 'MonitorDown', service: 'shop', host: 'web2' }, startsAt: T0 + 2000 },
        { labels: { alertname: 'RedundancyDegraded', service: 'shop' }, startsAt: T0 + 2100 },
      ],
      traffic: { startedAt: T0 - 1000, endedAt: T0 + 20_000, rate: 20, sent: 420, failed: 0, failuresAt: [] },
      suspects: [{ at: T0 + 5000, correct: true, named: [] }],
    };
    const ok = scoreDrill(backendDown, obs, T0 + 60_000);
    expect(ok).toMatchObject({
      cause: 'not applicable',
      causeNote: 'a stopped process, not a firewall change or drift',
    });
    expect(ok.passed).toBe(true);
    expect(renderScoreTable([ok])).toContain('| cause named | 15 min | n/a |');
    expect(renderScoreTable([ok])).toContain(
      '- cause named, backend-down: a stopped process, not a firewall change or drift',
    );
    const wrong = scoreDrill(
      backendDown,
      { ...obs, suspects: [{ at: T0 + 5000, correct: false, named: ['change 3 on web1'] }] },
      T0 + 60_000,
    );
    expect(wrong.problems).toContain(
      'the suspects route named change 3 on web1 although a stopped process, not a firewall change or drift',
    );
  });

  it('does not measure the mitigation of a person (only their ack and the recovery)', () => {
    const s = scoreDrill(founding, { ...foundingRun(), responder: 'person' }, T0 + 60_000);
    expect(s).toMatchObject({ mitigate: 'not measured', ack: 5200, recover: 20_000 });
  });
});

describe('judgeSuspects', () => {
  const drift = (host: string, suspected = true) => ({ kind: 'drift', host, suspected });
  it('wants the drift suspected on every host the scenario names', () => {
    const want = { kind: 'drift', hosts: ['web1', 'web2'] } as const;
    expect(judgeSuspects(want, [drift('web1')])).toEqual({ correct: false, named: ['drift on web1'] });
    expect(judgeSuspects(want, [drift('web1'), drift('web2', false)]).correct).toBe(false);
    expect(judgeSuspects(want, [drift('web2'), drift('web1')]).correct).toBe(true);
  });
  it('wants the change the drill pushed, not another one', () => {
    const want = { kind: 'change', hosts: ['web1'] } as const;
    const c = (changeId: number) => ({ kind: 'change', host: 'web1', suspected: true, changeId });
    expect(judgeSuspects(want, [c(4)], 5)).toEqual({ correct: false, named: ['change 4 on web1'] });
    expect(judgeSuspects(want, [c(4), c(5)], 5).correct).toBe(true);
  });
  it('for a cause that is not a firewall change: correct while nothing is suspected', () => {
    const want = { kind: 'none', why: 'a stopped process' } as const;
    expect(judgeSuspects(want, [drift('web1', false)])).toEqual({ correct: true, named: [] });
    expect(judgeSuspects(want, [drift('web1')]).correct).toBe(false);
  });
});

describe('scoreCompare', () => {
  const settings = { name: 'default', scrapeInterval: '15s', evaluationInterval: '15s', for: '1m', groupWait: '30s' };
  it("detects at the alert's startsAt as Prometheus sent it, pages at the receiver's acceptance", () => {
    const c = scoreCompare(settings, T0, T0 + 200_000, [
      { at: T0 - 5000, status: 'firing', startsAt: T0 - 9000 },
      { at: T0 + 106_000, status: 'firing', startsAt: T0 + 76_000 },
      { at: T0 + 150_000, status: 'resolved' },
    ]);
    expect(c).toEqual({
      stack: 'default',
      settings: 'scrape 15s, eval 15s, for 1m, group_wait 30s',
      detect: 76_000,
      notify: 106_000,
    });
    expect(scoreCompare(settings, T0, T0 + 200_000, [])).toMatchObject({ detect: 'never', notify: 'never' });
    const table = renderCompareTable([{ score: scoreDrill(founding, foundingRun(), T0 + 60_000), compare: [c] }]);
    expect(table).toContain('| founding-outage | 1.5 s | 3.2 s | 1.3 min | 1.8 min |');
    expect(table).toContain('- Prometheus default: scrape 15s, eval 15s, for 1m, group_wait 30s');
  });
});

describe('the scenarios', () => {
  it('have unique names, inject something unless unavailable, and expect at least one alert', () => {
    const names = DRILL_SCENARIOS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual([
      'founding-outage',
      'forced-change',
      'backend-down',
      'lb-down',
      'cert-expiring',
      // last: its baseline of customers would make the customers leaving look like a drop in the drills after it
      'partial-block',
    ]);
    for (const s of DRILL_SCENARIOS) {
      expect(s.expect.alerts.length).toBeGreaterThan(0);
      if (!s.unavailable) expect(s.inject.length, s.name).toBeGreaterThan(0);
    }
  });
});

describe('renderScoreTable', () => {
  it('prints each drill next to the founding postmortem', () => {
    const table = renderScoreTable([scoreDrill(founding, foundingRun(), T0 + 60_000)]);
    expect(table.split('\n')[0]).toBe('|  | founding postmortem | founding-outage |');
    expect(table).toContain('| detected | by a customer | 1.5 s |');
    expect(table).toContain('| recovered | 2 h | 20.0 s |');
    expect(table).toContain(`| failed requests | ${FOUNDING_FIGURES.usersAffectedShare * 100}% of users | 44% |`);
    expect(table).toContain('| result | - | PASS |');
  });
});
