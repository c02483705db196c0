/**
 * The founding outage (/work/shared/founding-postmortem.md) replayed as Rampart would have seen it: its times
 * (14:00 to 16:00 GMT+3) become monitoring events, the shop's request rate against its traffic baseline, an alert,
 * notifications, changes, drift (the live ruleset test/fixtures/nftables/founding-outage.nft against the desired
 * test/fixtures/queries/founding-fixed.nft) and the responders' actions, run through the same pure parts the server
 * drafts a postmortem with (the clock passed in): the timeline, the suspect found by the packet-space engine, the
 * impact estimated from the rate series, the postmortem. Used by test/incident/postmortem.test.ts, which checks
 * that docs/examples/founding-postmortem.md is its output (`npm run docs:postmortem` writes it).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { firing } from '../../src/alerting/alert.js';
import type { Alert } from '../../src/alerting/types.js';
import { parseRuleset } from '../../src/firewall/parse.js';
import { type ImpactPoint, incidentImpact } from '../../src/incident/impact.js';
import {
  acknowledge,
  DEFAULT_INCIDENT_POLICY,
  decideForGroup,
  type IncidentPolicy,
  note,
  resolve,
  setStatus,
} from '../../src/incident/lifecycle.js';
import { buildPostmortem, type Postmortem } from '../../src/incident/postmortem.js';
import { type FailingFlow, findSuspects, type SuspectCandidate } from '../../src/incident/suspect.js';
import {
  assembleTimeline,
  outageStart,
  type TimelineChange,
  type TimelineDrift,
  type TimelineEvent,
  type TimelineNotification,
} from '../../src/incident/timeline.js';
import type { Incident, OwnEntry, StoredOwnEntry, TimelineEntry } from '../../src/incident/types.js';
import { candidateView, type SuspectsView, suspectSentence } from '../../src/server/suspects.js';

const root = join(import.meta.dirname, '..', '..');
const fixture = (rel: string) => readFileSync(join(root, rel), 'utf8');

export const FOUNDING_TZ = 'Europe/Istanbul';
/** 14:00 GMT+3 on the day of the outage. */
const DAY = '2023-05-10';
export const at = (hhmmss: string) => `${DAY}T${hhmmss}.000Z`;
const ms = (hhmmss: string) => Date.parse(at(hhmmss));

/** The measures of the founding postmortem, as the responders wrote them. */
export const FOUNDING_MEASURES = [
  'Regularly review and audit firewall rules to ensure that they are correctly configured (rampart audit, in CI and on the live hosts).',
  'Bring every firewall edit under change management: reviewed, planned and tested before it reaches production (rampart change).',
  'Add redundancy to the website: a second web server behind the load balancer (the shop service has web1 and web2).',
  'Train engineers on the incident process: declare, acknowledge, write the timeline as you go.',
  'Monitor incoming traffic to the web servers and alert on drops (traffic monitors and alerting are now on).',
];

export interface FoundingReplay {
  readonly incident: Incident;
  readonly timeline: TimelineEntry[];
  readonly suspects: SuspectsView;
  readonly postmortem: Postmortem;
}

/** The shop's public address and ports, from anywhere: the flows that failed (as the server derives them). */
const SHOP_FLOW: FailingFlow = { service: 'shop', proto: 'tcp', to: ['10.0.0.10'], ports: [80, 443], from: 'anywhere' };

/**
 * The shop's requests per second in 1-minute buckets from 13:00 to 16:00 GMT+3, with what its baseline expected
 * (6.4 req/s at that hour): normal until the edit at 14:00, a trickle (1.1 req/s: established connections and the
 * few customers the load balancer's retries got through) until traffic was back in its band at 15:00, normal again.
 */
function shopRates(): ImpactPoint[] {
  const from = ms('10:00:00');
  return Array.from({ length: 180 }, (_, i) => {
    const t = from + i * 60_000;
    const down = t >= ms('11:00:00') && t < ms('12:00:00');
    return { t, ms: 60_000, observed: down ? 1.1 : i % 2 === 0 ? 6.3 : 6.5, expected: 6.4 };
  });
}

/** The drift on web1 and web2 ranked by the engine, as `GET /incidents/ID/suspects` shows it. */
function foundingSuspects(incident: Incident, drift: readonly TimelineDrift[]): SuspectsView {
  const desired = fixture('test/fixtures/queries/founding-fixed.nft');
  const live = fixture('test/fixtures/nftables/founding-outage.nft');
  const candidates: SuspectCandidate[] = drift.map((d, i) => ({
    id: `drift:${i + 1}`,
    kind: 'drift',
    host: d.host,
    at: d.at,
    author: null,
    approvers: [],
    reason: d.text,
    before: parseRuleset(desired, `desired:${d.host}@1`),
    after: parseRuleset(live, `live:${d.host}`),
  }));
  const r = findSuspects([SHOP_FLOW], candidates, incident.startedAt);
  return {
    incident: incident.id,
    startedAt: incident.startedAt,
    window: { from: at('09:00:00'), to: incident.resolvedAt ?? at('13:00:00') },
    flows: [SHOP_FLOW],
    verdict: r.verdict,
    text: r.text,
    candidates: r.candidates.map((c) => candidateView(c)),
    skipped: [],
  };
}

export function replayFounding(
  policy: IncidentPolicy = { ...DEFAULT_INCIDENT_POLICY, timeZone: FOUNDING_TZ },
): FoundingReplay {
  // 14:00: the edit on web1 and web2 (out of band), the first failing probes, traffic gone, the alert.
  const drift: TimelineDrift[] = [
    {
      host: 'web1',
      at: at('11:00:05'),
      text: 'live ruleset differs from the desired one: input policy drop, the accept for tcp dport 80,443 removed',
    },
    {
      host: 'web2',
      at: at('11:00:06'),
      text: 'live ruleset differs from the desired one: input policy drop, the accept for tcp dport 80,443 removed',
    },
  ];
  const events: TimelineEvent[] = [
    {
      id: 101,
      at: at('11:00:10'),
      kind: 'monitor.vantage',
      subject: 'monitor:shop-public',
      data: {
        monitor: 'shop-public',
        vantage: 'server',
        from: 'up',
        to: 'down',
        error: 'connect ETIMEDOUT 10.0.0.10:443',
      },
    },
    {
      id: 102,
      at: at('11:00:15'),
      kind: 'monitor.vantage',
      subject: 'monitor:shop-public',
      data: {
        monitor: 'shop-public',
        vantage: 'probe-eu',
        from: 'up',
        to: 'down',
        error: 'connect ETIMEDOUT 10.0.0.10:443',
      },
    },
    // A later failure from the same vantage point is not news.
    {
      id: 103,
      at: at('11:00:40'),
      kind: 'monitor.vantage',
      subject: 'monitor:shop-public',
      data: { monitor: 'shop-public', vantage: 'server', from: 'down', to: 'down' },
    },
    {
      id: 104,
      at: at('11:00:30'),
      kind: 'monitor.state',
      subject: 'monitor:shop-public',
      data: { monitor: 'shop-public', service: 'shop', from: 'up', to: 'down', reason: '2 of 2 vantage points fail' },
    },
    // Detected at 11:06 from the rate series; it began at 11:00.
    {
      id: 105,
      at: at('11:06:00'),
      kind: 'traffic.drop',
      subject: 'service:shop',
      data: {
        service: 'shop',
        host: 'web1',
        source: 'access-log',
        observed: 1.1,
        expected: 6.4,
        dropShare: 0.83,
        since: at('11:00:00'),
      },
    },
    {
      id: 106,
      at: at('12:00:05'),
      kind: 'monitor.vantage',
      subject: 'monitor:shop-public',
      data: { monitor: 'shop-public', vantage: 'server', from: 'down', to: 'up' },
    },
    {
      id: 107,
      at: at('12:00:20'),
      kind: 'monitor.state',
      subject: 'monitor:shop-public',
      data: { monitor: 'shop-public', service: 'shop', from: 'down', to: 'up', reason: 'all vantage points answer' },
    },
    {
      id: 108,
      at: at('12:00:30'),
      kind: 'traffic.recovered',
      subject: 'service:shop',
      data: { service: 'shop', host: 'web1', observed: 6.1, expected: 6.4, since: at('11:00:00') },
    },
    // Another service's event is not this incident's.
    {
      id: 109,
      at: at('11:30:00'),
      kind: 'monitor.state',
      subject: 'monitor:mail',
      data: { monitor: 'mail', service: 'mail', from: 'up', to: 'down', reason: 'x' },
    },
  ];
  const alert: Alert = firing(
    {
      labels: { alertname: 'MonitorDown', severity: 'critical', monitor: 'shop-public', service: 'shop' },
      annotations: { summary: 'shop-public is down from 2 of 2 vantage points' },
      source: 'monitor.state',
    },
    ms('11:00:30'),
  );
  const groupKey = 'root/0:{service="shop"}';
  const decision = decideForGroup(groupKey, [alert], undefined, policy, ms('11:00:31'));
  if (decision.kind !== 'declare') throw new Error(`expected a declaration, got ${decision.kind}`);
  let incident: Incident = {
    ...decision.draft,
    id: 1,
    version: 1,
    followUps: [
      'Review and audit the firewall rules of web1 and web2 against their desired rulesets.',
      'Put the emergency edit path through rampart change (four eyes, staged apply).',
      'Add a third vantage point outside the data centre.',
    ],
  };
  const own: StoredOwnEntry[] = [];
  const add = (e: OwnEntry, starred = false) => own.push({ ...e, id: own.length + 1, incidentId: 1, starred });
  add(decision.entry);
  // Rampart names the suspect as soon as the incident is declared (the server puts it on the timeline once).
  const suspects = foundingSuspects({ ...incident, startedAt: at('11:00:00') }, drift);
  const sentence = suspectSentence(suspects);
  if (sentence === undefined) throw new Error(`expected a suspect, got: ${suspects.text}`);
  add({
    kind: 'incident.suspect',
    at: at('11:00:40'),
    by: 'rampart',
    text: `Suspected cause: ${sentence}`,
    data: { candidate: suspects.candidates[0]?.id },
  });
  const step = (t: { incident: Incident; entry: OwnEntry }) => {
    incident = t.incident;
    add(t.entry);
  };
  step(acknowledge(incident, 'alice', ms('11:05:00')));
  add(note(incident, 'The website is indeed down from both vantage points; investigating.', 'alice', ms('11:05:30')));
  add(note(incident, 'The web server logs on web1 show no incoming traffic at all.', 'alice', ms('11:10:00')));
  step(
    setStatus(
      incident,
      'identified',
      'alice',
      ms('11:15:00'),
      'A misconfigured firewall rule on web1 and web2 blocks all incoming traffic to the web server.',
    ),
  );
  add(
    note(
      incident,
      'The first fix (change #41) did not resolve the issue: the accept went into a chain the input hook never reaches.',
      'alice',
      ms('11:20:40'),
    ),
  );
  add(
    note(
      incident,
      'The network team confirms the input policy drop with no accept for 80/443 is the cause.',
      'bob',
      ms('11:30:00'),
    ),
  );
  step(
    setStatus(
      incident,
      'monitoring',
      'bob',
      ms('11:35:30'),
      'The network team restored the desired ruleset, which allows incoming traffic only from trusted sources (change #42).',
    ),
  );
  add(
    note(
      incident,
      'Verified: incoming traffic reaches the web servers again and the website is accessible.',
      'bob',
      ms('12:00:45'),
    ),
    true,
  );
  step(resolve(incident, 'bob', ms('13:00:00'), 'The incident was resolved, and the website was fully functional.'));

  const changes: TimelineChange[] = [
    // Outside the look-back window (more than 2 h before the start): not on the timeline.
    {
      changeId: 30,
      at: at('08:10:00'),
      action: 'applied',
      by: 'carol',
      hosts: ['web1'],
      reason: 'open 8443 for the admin panel',
    },
    {
      changeId: 41,
      at: at('11:20:00'),
      action: 'applied',
      by: 'alice',
      hosts: ['web1'],
      reason: 'emergency: allow tcp 80,443',
    },
    {
      changeId: 42,
      at: at('11:35:00'),
      action: 'applied',
      by: 'bob',
      hosts: ['web1', 'web2'],
      reason: 'emergency: restore the desired ruleset',
    },
  ];
  const notifications: TimelineNotification[] = [
    {
      id: 1,
      receiver: 'oncall',
      channel: 'webhook',
      groupKey,
      state: 'sent',
      createdAt: at('11:00:31'),
      doneAt: at('11:00:32'),
      attempts: 1,
      lastError: null,
      alerts: [alert.fingerprint],
      status: 'firing',
    },
    {
      id: 2,
      receiver: '@network-team',
      channel: 'email',
      groupKey,
      state: 'sent',
      createdAt: at('11:25:00'),
      doneAt: at('11:25:01'),
      attempts: 1,
      lastError: null,
      alerts: [alert.fingerprint],
      status: 'firing',
      escalation: { policy: 'web', step: 1, round: 0 },
    },
  ];
  const resolvedAlert: Alert = {
    ...alert,
    state: 'resolved',
    endsAt: at('12:00:20'),
    ack: { by: 'alice', at: at('11:05:00') },
  };
  const sources = { events, alerts: [resolvedAlert], notifications, changes, drift, own, stars: new Set<string>() };
  const opts = { timeZone: policy.timeZone, lookBackMs: policy.lookBackMs, nowMs: ms('13:00:00') };
  // The alert fired 30 s after the outage began: the timeline says when it began (MTTD 30 s).
  incident = { ...incident, startedAt: outageStart(incident, assembleTimeline(incident, sources, opts)) };
  const timeline = assembleTimeline(incident, sources, opts);
  const impact = incidentImpact(
    incident,
    events,
    ['shop-public'],
    [{ service: 'shop', points: shopRates() }],
    ms('13:00:00'),
  );
  const postmortem = buildPostmortem(incident, timeline, {
    timeZone: policy.timeZone,
    nowMs: ms('13:00:00'),
    suspect: sentence,
    estimate: impact,
    measures: FOUNDING_MEASURES,
  });
  return { incident, timeline, suspects, postmortem };
}
