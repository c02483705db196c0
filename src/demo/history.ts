/**
 * The example's past, written into a new store before `rampart serve` opens it (issue 17 §4): what the server would
 * have recorded had it watched the shop for the last 90 days, with the founding outage replayed yesterday at its
 * own local times (14:00 to 16:00 GMT+3). Everything goes through the store interfaces the server itself writes
 * with, and the alerts and the incident through the same pure cores (src/alerting/sources.ts,
 * src/incident/lifecycle.ts) the server runs, with the clock passed in; nothing waits.
 *
 * What is written:
 * - probe rollups of shop@web1 and shop@web2 (minutes for 48 h, hours for 90 days: the status page's bars, the
 *   monitor page's last hour), and the raw results the server keeps around state changes (the latency chart);
 * - the outage's monitoring events, and the alerts they raise (fired, acknowledged, resolved);
 * - incoming requests per backend (10 s points for 48 h, hours for 30 days; none while the firewall dropped them);
 * - incident 1: declared by the policy, acknowledged, identified, mitigated and resolved by the responders of the
 *   founding postmortem, with their notes.
 *
 * The generators are pure (`nowMs` in, rows out) so a unit test checks them without a store.
 */
import type { TrafficSample } from '../agent/protocol.js';
import { type AlertChange, alertsFromEvent } from '../alerting/sources.js';
import type { Alert } from '../alerting/types.js';
import {
  acknowledge,
  DEFAULT_INCIDENT_POLICY,
  decideForGroup,
  note,
  resolve,
  setStatus,
  type Transition,
} from '../incident/lifecycle.js';
import type { Incident, OwnEntry } from '../incident/types.js';
import { addResult, emptyRollup, mergeInto, type Rollup, type RollupRow } from '../monitor/rollup.js';
import type { ProbeResult } from '../monitor/types.js';
import type { MonitorEvent } from '../store/monitor-store.js';
import type { Store } from '../store/types.js';
import { DEMO_HOSTS, DEMO_TIMEZONE, type DemoHost, PROBE_INTERVAL_S } from './site.js';

const HOSTS = Object.keys(DEMO_HOSTS) as DemoHost[];
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const MONITOR_DAYS = 90;
const TRAFFIC_DAYS = 30;
/** Minute rollups and 10 s traffic points cover this much (older history is hours only). */
const FINE_MS = 48 * HOUR;
const TIMEOUT_MS = 2000;

/** The outage's times of day (UTC), from the founding postmortem (14:00 to 16:00 GMT+3). */
export const OUTAGE = {
  /** The edit lands on web1 and web2: every new connection is dropped from here. */
  start: '11:00:00',
  /** Both backends down (two failed probes each), the service down. */
  down: '11:00:09',
  /** The network team restored the desired ruleset. */
  restored: '12:00:00',
  up: '12:00:07',
  resolved: '13:00:00',
} as const;

export interface Replay {
  /** The day of the outage (UTC), `YYYY-MM-DD`: yesterday. */
  readonly day: string;
  readonly at: (hhmmss: string) => string;
  readonly ms: (hhmmss: string) => number;
  /** [start, end) of the outage, epoch ms. */
  readonly outage: readonly [number, number];
}

export function replayDay(nowMs: number): Replay {
  const day = new Date(nowMs - DAY).toISOString().slice(0, 10);
  const at = (hhmmss: string) => `${day}T${hhmmss}.000Z`;
  const ms = (hhmmss: string) => Date.parse(at(hhmmss));
  return { day, at, ms, outage: [ms(OUTAGE.start), ms(OUTAGE.restored)] };
}

/** A small, repeatable jitter in [0, 1) (no Math.random: the same now gives the same history). */
function jitter(n: number): number {
  const x = Math.sin(n * 12.9898) * 43758.5453;
  return x - Math.floor(x);
}

/** Loopback HTTP latency of the demo shop: a few ms, a little slower in the local afternoon. */
function latencyMs(t: number, host: DemoHost): number {
  const hourOfDay = ((t / HOUR + 3) % 24) / 24;
  const busy = 1 + Math.max(0, Math.sin(Math.PI * 2 * (hourOfDay - 0.3)));
  return Math.round((1.2 * busy + 2.5 * jitter(t / 1000 + (host === 'web2' ? 7 : 0))) * 10) / 10;
}

const monitorOf = (host: DemoHost) => `shop@${host}`;
const inOutage = (r: Replay, t: number) => t >= r.outage[0] && t < r.outage[1];

/** One probe of a backend at `t` as the server would have recorded it. */
function probe(r: Replay, host: DemoHost, t: number): ProbeResult {
  const monitor = monitorOf(host);
  if (inOutage(r, t)) {
    // The firewall's policy drop: the SYN is never answered.
    return {
      monitor,
      vantage: 'server',
      at: t,
      ok: false,
      timings: { totalMs: TIMEOUT_MS },
      error: `timeout after ${TIMEOUT_MS} ms`,
    };
  }
  const total = latencyMs(t, host);
  return {
    monitor,
    vantage: 'server',
    at: t,
    ok: true,
    timings: { connectMs: Math.round(total * 3) / 10, firstByteMs: Math.round(total * 8) / 10, totalMs: total },
    detail: { status: 200 },
  };
}

/** Probe times in [from, to): every interval, 4 s into it. */
function probeTimes(from: number, to: number): number[] {
  const step = PROBE_INTERVAL_S * 1000;
  const out: number[] = [];
  for (let t = Math.ceil((from - 4000) / step) * step + 4000; t < to; t += step) if (t >= from) out.push(t);
  return out;
}

/**
 * Rollups of both monitors: minutes over the last 48 h, hours over 90 days (the last 48 h's hours are their
 * minutes added up, as the server's are). Only whole buckets before `nowMs`: the server adds the current ones.
 */
export function monitorRollups(nowMs: number): RollupRow[] {
  const r = replayDay(nowMs);
  const rows: RollupRow[] = [];
  const endMinute = Math.floor(nowMs / MINUTE) * MINUTE;
  const endHour = Math.floor(nowMs / HOUR) * HOUR;
  const fineFrom = Math.floor((nowMs - FINE_MS) / HOUR) * HOUR;
  for (const host of HOSTS) {
    const monitor = monitorOf(host);
    const hours = new Map<number, Rollup>();
    for (let m = fineFrom; m < endMinute; m += MINUTE) {
      const rollup = emptyRollup();
      for (const t of probeTimes(m, m + MINUTE)) {
        const p = probe(r, host, t);
        addResult(rollup, p.ok, p.timings.totalMs);
      }
      rows.push({ monitor, resolution: 60, bucket: m / 1000, rollup });
      const h = Math.floor(m / HOUR) * HOUR;
      if (h < endHour) {
        const into = hours.get(h) ?? emptyRollup();
        mergeInto(into, rollup);
        hours.set(h, into);
      }
    }
    for (let h = endHour - MONITOR_DAYS * DAY; h < fineFrom; h += HOUR) {
      const rollup = emptyRollup();
      // Hours are summed from 360 probes; latency sampled once a minute is enough for p50/p95.
      for (let i = 0; i < 60; i++) {
        const lat = latencyMs(h + i * MINUTE, host);
        for (let k = 0; k < 60 / PROBE_INTERVAL_S; k++) addResult(rollup, true, lat);
      }
      rows.push({ monitor, resolution: 3600, bucket: h / 1000, rollup });
    }
    for (const [h, rollup] of hours) rows.push({ monitor, resolution: 3600, bucket: h / 1000, rollup });
  }
  return rows;
}

/** The raw results the server keeps around a vantage point's change: the dozen before it and a few after. */
export function outageResults(nowMs: number): ProbeResult[] {
  const r = replayDay(nowMs);
  const step = PROBE_INTERVAL_S * 1000;
  const out: ProbeResult[] = [];
  for (const host of HOSTS) {
    for (const edge of [r.outage[0], r.outage[1]]) {
      for (const t of probeTimes(edge - 12 * step, edge + 4 * step)) out.push(probe(r, host, t));
      // The re-check of a first failure (or success), a quarter interval after it.
      const first = probeTimes(edge, edge + step)[0] as number;
      out.push(probe(r, host, first + step / 4));
    }
  }
  return out.sort((a, b) => a.at - b.at);
}

/** The outage's monitoring events, in the shapes of docs/monitoring.md ("Events"). */
export function outageEvents(nowMs: number): Omit<MonitorEvent, 'id'>[] {
  const r = replayDay(nowMs);
  const err = `timeout after ${TIMEOUT_MS} ms`;
  const events: Omit<MonitorEvent, 'id'>[] = [];
  for (const host of HOSTS) {
    const monitor = monitorOf(host);
    events.push(
      {
        at: r.at(OUTAGE.down),
        kind: 'monitor.vantage',
        subject: `monitor:${monitor}`,
        data: { monitor, vantage: 'server', from: 'up', to: 'down', error: err },
      },
      {
        at: r.at(OUTAGE.down),
        kind: 'monitor.state',
        subject: `monitor:${monitor}`,
        data: {
          monitor,
          service: 'shop',
          host,
          from: 'UP',
          to: 'DOWN',
          reason: `down from 1 of 1 (quorum 1): server: ${err}`,
          down: ['server'],
          counted: 1,
          quorum: 1,
        },
      },
      {
        at: r.at(OUTAGE.up),
        kind: 'monitor.vantage',
        subject: `monitor:${monitor}`,
        data: { monitor, vantage: 'server', from: 'down', to: 'up' },
      },
      {
        at: r.at(OUTAGE.up),
        kind: 'monitor.state',
        subject: `monitor:${monitor}`,
        data: {
          monitor,
          service: 'shop',
          host,
          from: 'DOWN',
          to: 'UP',
          reason: 'up from 1 of 1',
          down: [],
          counted: 1,
          quorum: 1,
        },
      },
    );
  }
  events.push(
    {
      at: r.at(OUTAGE.down),
      kind: 'service.state',
      subject: 'service:shop',
      data: {
        service: 'shop',
        from: 'UP',
        to: 'DOWN',
        reason: 'no backend healthy (web1, web2 down)',
        healthy: 0,
        backends: 2,
      },
    },
    {
      at: r.at(OUTAGE.up),
      kind: 'service.state',
      subject: 'service:shop',
      data: { service: 'shop', from: 'DOWN', to: 'UP', reason: 'every backend healthy', healthy: 2, backends: 2 },
    },
  );
  // Each backend's detector saw its new connections stop (two 10 s points at zero), and come back.
  for (const host of HOSTS) {
    const expected = Math.round(trafficRate(r.outage[0], host) * 10) / 10;
    const since = r.at(OUTAGE.start);
    events.push(
      {
        at: r.at('11:00:20'),
        kind: 'traffic.drop',
        subject: 'service:shop',
        data: {
          service: 'shop',
          host,
          source: 'counters',
          observed: 0,
          expected,
          dropShare: 1,
          since,
          description: `shop@${host}: traffic ~100% below expected since ${since} (0.0/s, expected ${expected}/s)`,
        },
      },
      {
        at: r.at('12:00:20'),
        kind: 'traffic.recovered',
        subject: 'service:shop',
        data: {
          service: 'shop',
          host,
          source: 'counters',
          observed: expected,
          expected,
          dropShare: 0,
          since,
          description: `shop@${host}: traffic back to its expected rate (${expected}/s)`,
        },
      },
    );
  }
  return events.sort((a, b) => a.at.localeCompare(b.at));
}

/** New connections accepted per second by a backend at `t`: around 3/s, following the local day. */
function trafficRate(t: number, host: DemoHost): number {
  const local = ((t / HOUR + 3) % 24) / 24;
  return 3 * (0.55 + 0.45 * Math.sin(Math.PI * 2 * (local - 0.35))) * (host === 'web2' ? 0.9 : 1);
}

/** New connections accepted per backend: a diurnal rate (local time) around 3/s, nothing during the outage. */
export function trafficSamples(nowMs: number): Map<DemoHost, TrafficSample[]> {
  const r = replayDay(nowMs);
  const out = new Map<DemoHost, TrafficSample[]>();
  const fineFrom = Math.floor((nowMs - FINE_MS) / HOUR) * HOUR;
  const end = Math.floor(nowMs / 10_000) * 10_000 - 10_000;
  for (const host of HOSTS) {
    const samples: TrafficSample[] = [];
    for (let h = fineFrom - TRAFFIC_DAYS * DAY; h < fineFrom; h += HOUR) {
      samples.push({
        service: 'shop',
        source: 'counters',
        start: h,
        ms: HOUR,
        requests: Math.round(trafficRate(h, host) * 3600),
      });
    }
    for (let t = fineFrom; t < end; t += 10_000) {
      const requests = inOutage(r, t) ? 0 : Math.round(trafficRate(t, host) * 10 * (0.7 + 0.6 * jitter(t / 10_000)));
      samples.push({ service: 'shop', source: 'counters', start: t, ms: 10_000, requests });
    }
    out.set(host, samples);
  }
  return out;
}

/** The responders' notes and actions of the founding postmortem, at yesterday's times. */
const NOTES: readonly (readonly [string, string, string, boolean?])[] = [
  ['11:05:30', 'alice', 'The website is indeed down from both backends; investigating.'],
  ['11:10:00', 'alice', 'The web server logs on web1 show no incoming traffic at all.'],
  [
    '11:20:40',
    'alice',
    'The first fix did not resolve the issue: the accept went into a chain the input hook never reaches.',
  ],
  ['11:30:00', 'bob', 'The network team confirms the input policy drop with no accept for 80/443 is the cause.'],
  ['12:00:45', 'bob', 'Verified: incoming traffic reaches the web servers again and the website is accessible.', true],
];

export interface SeededHistory {
  readonly incidentId: number;
  readonly outageDay: string;
  readonly rollups: number;
  readonly results: number;
  readonly events: number;
  readonly alerts: number;
  readonly trafficSamples: number;
}

/**
 * Writes the history into `store` (a new one: the server has not started on it). The alerts come from the events
 * through alerting's own mapping, grouped nowhere (no notification is sent for the past); the incident through
 * the lifecycle with each step's time.
 */
export async function writeHistory(store: Store, nowMs: number): Promise<SeededHistory> {
  const r = replayDay(nowMs);
  const rollups = monitorRollups(nowMs);
  await store.monitoring.addRollups(rollups);
  const results = outageResults(nowMs);
  await store.monitoring.insertResults(results);
  const events = await store.monitoring.insertEvents(outageEvents(nowMs));
  let trafficCount = 0;
  for (const [host, samples] of trafficSamples(nowMs)) {
    trafficCount += (await store.traffic.ingest(host, samples)).accepted.length;
  }

  // Alerts, event by event as the server's alerting pass would have applied them; alice acknowledges at 11:05.
  const alerts = new Map<string, Alert>();
  const apply = async (changes: readonly AlertChange[], atMs: number) => {
    for (const a of await store.alerting.apply(changes, () => [], atMs)) alerts.set(a.fingerprint, a);
  };
  const ackAt = r.ms('11:05:00');
  let acked = false;
  let incident: Incident | undefined;
  const policy = { ...DEFAULT_INCIDENT_POLICY, timeZone: DEMO_TIMEZONE };
  for (const e of events) {
    const atMs = Date.parse(e.at);
    if (!acked && atMs > ackAt) {
      await ack(store, alerts, 'alice', ackAt);
      acked = true;
    }
    await apply(alertsFromEvent(e), atMs);
    if (!incident && e.kind === 'service.state') {
      // The policy's pass a second after the first critical alert of the group.
      const firing = [...alerts.values()].filter((a) => a.state === 'firing' && a.labels.service === 'shop');
      const decision = decideForGroup('incident:{service=shop}', firing, undefined, policy, atMs + 1000);
      if (decision.kind !== 'declare') throw new Error(`the demo's outage declared no incident (${decision.kind})`);
      const stored = await store.incidents.insert(
        {
          ...decision.draft,
          followUps: [
            'Review and audit the firewall rules of web1 and web2 against their desired rulesets (rampart audit).',
            'Put every firewall edit through rampart change: four eyes, a plan that refuses this ruleset, staged apply.',
            'Alert on incoming traffic to the web servers, not only on probes.',
          ],
        },
        decision.entry,
        atMs + 1000,
      );
      if (!stored) throw new Error('the demo store already had an open incident for the shop');
      incident = stored.incident;
    }
  }
  if (!incident) throw new Error("the demo's outage declared no incident");

  let inc: Incident = incident;
  const step = async (t: Transition) => {
    inc = (await store.incidents.update(t.incident, t.entry, Date.parse(t.entry.at))).incident;
  };
  const add = async (e: OwnEntry, starred = false) => {
    const stored = await store.incidents.addEntry(inc.id, e);
    if (starred) await store.incidents.star(inc.id, `entry:${stored.id}`, true, e.by, e.at);
  };
  const timeline: (() => Promise<void>)[] = [
    () => step(acknowledge(inc, 'alice', ackAt)),
    ...NOTES.slice(0, 2).map(
      ([t, by, text]) =>
        () =>
          add(note(inc, text, by, r.ms(t))),
    ),
    () =>
      step(
        setStatus(
          inc,
          'identified',
          'alice',
          r.ms('11:15:00'),
          'A misconfigured firewall rule on web1 and web2 blocks all incoming traffic to the web server.',
        ),
      ),
    ...NOTES.slice(2, 4).map(
      ([t, by, text]) =>
        () =>
          add(note(inc, text, by, r.ms(t))),
    ),
    () =>
      step(
        setStatus(
          inc,
          'monitoring',
          'bob',
          r.ms(OUTAGE.restored),
          'The network team restored the desired ruleset, which allows incoming traffic only from trusted sources.',
        ),
      ),
    ...NOTES.slice(4).map(
      ([t, by, text, star]) =>
        () =>
          add(note(inc, text, by, r.ms(t)), star === true),
    ),
    () =>
      step(
        resolve(inc, 'bob', r.ms(OUTAGE.resolved), 'The incident was resolved, and the website was fully functional.'),
      ),
  ];
  for (const f of timeline) await f();
  return {
    incidentId: inc.id,
    outageDay: r.day,
    rollups: rollups.length,
    results: results.length,
    events: events.length,
    alerts: alerts.size,
    trafficSamples: trafficCount,
  };
}

async function ack(store: Store, alerts: Map<string, Alert>, by: string, atMs: number): Promise<void> {
  for (const a of [...alerts.values()]) {
    if (a.state !== 'firing' || a.labels.alertname !== 'ServiceDown') continue;
    const acked = await store.alerting.ack(a.fingerprint, by, atMs);
    if (acked) alerts.set(a.fingerprint, acked);
  }
}
