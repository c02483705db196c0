/**
 * The `incidents:` section of rampart.yaml and the site's time zone (issue 16; docs/incidents.md), with positioned
 * errors:
 *
 *   site:
 *     name: shop
 *     timezone: Europe/Istanbul     # timelines and postmortems print local times in it (default UTC)
 *   incidents:
 *     auto-declare: severity >= critical   # or `off`: incidents only by hand
 *     severity: SEV2                       # of the incidents declared automatically
 *     reopen-window: 1h                    # the same alert group firing again within it reopens the incident
 *     look-back: 2h                        # changes and drift this long before the start are on the timeline
 *
 * `site: shop` (a name alone) stays valid.
 */
import { z } from 'zod';
import {
  ALERT_SEVERITIES,
  type AlertSeverity,
  DEFAULT_INCIDENT_POLICY,
  type IncidentPolicy,
  parseSeverity,
} from '../incident/lifecycle.js';
import { isTimeZone } from '../incident/timezone.js';
import { type IncidentSeverity, SEVERITIES } from '../incident/types.js';
import { didYouMean } from './did-you-mean.js';
import { ENVIRONMENT_EXPECTED, type Environment, environmentProblem } from './environment.js';
import { durationField, object } from './schema-kit.js';

export const TIME_ZONE_EXPECTED = 'an IANA time zone, like Europe/Istanbul, America/New_York or UTC';
const SITE_EXPECTED = 'a site name (text), or a map with name, timezone and environment';
const SITE_KEYS = ['name', 'timezone', 'environment'];

function timeZoneProblem(tz: string): string {
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return `unknown time zone${didYouMean(tz, zones)}`;
}

/** `site:` as a name, or a map with the name and the time zone. */
export const SiteSchema = z
  .unknown()
  .transform((v, ctx): { name?: string; timeZone?: string; environment?: Environment } => {
    if (typeof v === 'string') {
      if (v.trim() !== '') return { name: v };
      ctx.addIssue({ code: 'custom', message: SITE_EXPECTED, params: { problem: 'the site name is empty' } });
      return z.NEVER;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      ctx.addIssue({ code: 'custom', message: SITE_EXPECTED });
      return z.NEVER;
    }
    const o = v as Record<string, unknown>;
    const out: { name?: string; timeZone?: string; environment?: Environment } = {};
    for (const k of Object.keys(o)) {
      if (!SITE_KEYS.includes(k)) {
        ctx.addIssue({
          code: 'custom',
          path: [k],
          message: 'name, timezone or environment',
          params: { problem: `unknown key '${k}'${didYouMean(k, SITE_KEYS)}` },
        });
      }
    }
    if (o.name !== undefined) {
      if (typeof o.name === 'string' && o.name.trim() !== '') out.name = o.name;
      else ctx.addIssue({ code: 'custom', path: ['name'], message: 'a non-empty site name' });
    }
    if (o.timezone !== undefined) {
      if (typeof o.timezone === 'string' && isTimeZone(o.timezone)) out.timeZone = o.timezone;
      else {
        ctx.addIssue({
          code: 'custom',
          path: ['timezone'],
          message: TIME_ZONE_EXPECTED,
          ...(typeof o.timezone === 'string' ? { params: { problem: timeZoneProblem(o.timezone) } } : {}),
        });
      }
    }
    if (o.environment !== undefined) {
      const problem = typeof o.environment === 'string' ? environmentProblem(o.environment) : undefined;
      if (typeof o.environment === 'string' && problem === undefined) out.environment = o.environment as Environment;
      else {
        ctx.addIssue({
          code: 'custom',
          path: ['environment'],
          message: ENVIRONMENT_EXPECTED,
          ...(problem !== undefined ? { params: { problem } } : {}),
        });
      }
    }
    return out;
  });

const AUTO_EXPECTED = `'severity >= LEVEL' with LEVEL one of ${ALERT_SEVERITIES.filter((s) => s !== 'none').join(', ')}; or off`;

function parseAutoDeclare(text: string): { min: AlertSeverity | null } | string {
  const t = text.trim();
  if (t === 'off' || t === 'false' || t === 'none') return { min: null };
  const m = /^severity\s*>=\s*([a-z]+)$/.exec(t);
  if (!m) return 'not a severity threshold';
  const level = m[1] as string;
  if (!(ALERT_SEVERITIES as readonly string[]).includes(level) || level === 'none') {
    return `unknown severity '${level}'${didYouMean(level, [...ALERT_SEVERITIES])}`;
  }
  return { min: level as AlertSeverity };
}

const SEV_EXPECTED = `one of ${SEVERITIES.join(', ')}`;

export const IncidentsSchema = object(
  {
    'auto-declare': z
      .unknown()
      .transform((v, ctx): { min: AlertSeverity | null } => {
        // YAML reads a bare `off` as text and `false` as a boolean: both turn it off.
        const r = v === false ? { min: null } : typeof v === 'string' ? parseAutoDeclare(v) : null;
        if (r !== null && typeof r !== 'string') return r;
        ctx.addIssue({ code: 'custom', message: AUTO_EXPECTED, ...(r === null ? {} : { params: { problem: r } }) });
        return z.NEVER;
      })
      .optional(),
    severity: z
      .unknown()
      .transform((v, ctx): IncidentSeverity => {
        const sev = typeof v === 'string' || typeof v === 'number' ? parseSeverity(v) : undefined;
        if (sev) return sev;
        ctx.addIssue({ code: 'custom', message: SEV_EXPECTED, params: { problem: 'unknown severity' } });
        return z.NEVER;
      })
      .optional(),
    'reopen-window': durationField(0, 7 * 24 * 3_600_000).optional(),
    'look-back': durationField(60_000, 7 * 24 * 3_600_000).optional(),
  },
  'a map with auto-declare, severity, reopen-window and look-back',
);

/** The incident policy from the parsed section and the site's time zone (defaults for what is not given). */
export function incidentsOf(
  parsed: z.output<typeof IncidentsSchema> | undefined,
  timeZone: string | undefined,
): IncidentPolicy {
  const d = DEFAULT_INCIDENT_POLICY;
  const auto = parsed?.['auto-declare'];
  const min = auto === undefined ? (d.autoDeclare?.minSeverity ?? null) : auto.min;
  return {
    autoDeclare:
      min === null ? null : { minSeverity: min, severity: parsed?.severity ?? d.autoDeclare?.severity ?? 'SEV2' },
    reopenWindowMs: parsed?.['reopen-window'] ?? d.reopenWindowMs,
    lookBackMs: parsed?.['look-back'] ?? d.lookBackMs,
    timeZone: timeZone ?? d.timeZone,
  };
}
