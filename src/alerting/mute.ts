/**
 * Silences and inhibition (issue 15 §2), pure. A silence mutes the alerts its matchers select between its start and
 * end; one made `until resolved` also ends as soon as no firing alert matches it any more, once it has matched one
 * (Alertmanager declined this: its #1057). An inhibition rule mutes the alerts matching its target matchers while
 * an alert matching its source matchers fires with the same values of the `equal` labels (an alert never inhibits
 * itself).
 */
import type { MuteReason } from './group.js';
import { type Matcher, matchAll } from './matchers.js';
import type { Alert, Labels } from './types.js';

export interface Silence {
  readonly id: string;
  readonly matchers: readonly Matcher[];
  /** ISO 8601 UTC. */
  readonly startsAt: string;
  readonly endsAt: string;
  readonly createdBy: string;
  readonly comment: string;
  /** Ends when no firing alert matches it any more (after it matched one). */
  readonly untilResolved: boolean;
  /** When it first muted a firing alert (what lets an until-resolved silence end). */
  readonly matchedAt: string | null;
  /** When it was expired by hand or by resolution, before its endsAt. */
  readonly expiredAt: string | null;
}

export type SilenceStatus = 'pending' | 'active' | 'expired';

export function silenceStatus(s: Silence, nowMs: number): SilenceStatus {
  if (s.expiredAt !== null && Date.parse(s.expiredAt) <= nowMs) return 'expired';
  if (Date.parse(s.endsAt) <= nowMs) return 'expired';
  if (Date.parse(s.startsAt) > nowMs) return 'pending';
  return 'active';
}

export interface InhibitRule {
  readonly sourceMatchers: readonly Matcher[];
  readonly targetMatchers: readonly Matcher[];
  readonly equal: readonly string[];
}

/**
 * Rampart's inhibition when `inhibit_rules` is not written: a service DOWN as a whole (its public address, no
 * host) mutes the per-host alerts of the same service; the page says the site is down, not that each host is.
 */
export const DEFAULT_INHIBIT_RULES: readonly InhibitRule[] = [
  {
    sourceMatchers: [
      { name: 'alertname', op: '=~', value: 'MonitorDown|ServiceDown' },
      { name: 'host', op: '=', value: '' },
      { name: 'service', op: '!=', value: '' },
    ],
    targetMatchers: [{ name: 'host', op: '!=', value: '' }],
    equal: ['service'],
  },
];

export interface MuteInput {
  readonly silences: readonly Silence[];
  readonly inhibitRules: readonly InhibitRule[];
  /** Every alert firing now, muted or not (sources of inhibition). */
  readonly firing: readonly Alert[];
  /** Active maintenance windows for a label set (from src/alerting/maintenance.ts), or none. */
  readonly maintenance?: (labels: Labels) => string | null;
  readonly nowMs: number;
}

/** A function telling why an alert is muted now (silence first, then inhibition, then maintenance), or null. */
export function muter(input: MuteInput): (a: Alert) => MuteReason | null {
  const active = input.silences.filter((s) => silenceStatus(s, input.nowMs) === 'active');
  const sources = input.inhibitRules.map((r) => input.firing.filter((a) => matchAll(r.sourceMatchers, a.labels)));
  return (a) => {
    for (const s of active) if (matchAll(s.matchers, a.labels)) return { kind: 'silenced', silence: s.id };
    for (let i = 0; i < input.inhibitRules.length; i++) {
      const r = input.inhibitRules[i] as InhibitRule;
      if (!matchAll(r.targetMatchers, a.labels)) continue;
      for (const src of sources[i] ?? []) {
        if (src.fingerprint === a.fingerprint) continue;
        if (r.equal.every((l) => (src.labels[l] ?? '') === (a.labels[l] ?? '')))
          return { kind: 'inhibited', by: src.fingerprint, rule: i };
      }
    }
    const w = input.maintenance?.(a.labels);
    if (w) return { kind: 'maintenance', window: w };
    return null;
  };
}

/**
 * What silences change now: until-resolved silences that match a firing alert for the first time (matchedAt to
 * set), and those that matched before and now match none (to expire).
 */
export function silenceUpdates(
  silences: readonly Silence[],
  firing: readonly Alert[],
  nowMs: number,
): { matched: string[]; expire: string[] } {
  const matched: string[] = [];
  const expire: string[] = [];
  for (const s of silences) {
    if (!s.untilResolved || silenceStatus(s, nowMs) !== 'active') continue;
    const any = firing.some((a) => matchAll(s.matchers, a.labels));
    if (any && s.matchedAt === null) matched.push(s.id);
    else if (!any && s.matchedAt !== null) expire.push(s.id);
  }
  return { matched, expire };
}
