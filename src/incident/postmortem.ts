/**
 * The postmortem (issue 16 §5), drafted in exactly the founding document's structure
 * (/work/shared/founding-postmortem.md; docs/examples/founding-postmortem.md is the replayed outage's draft):
 *
 *   # title
 *   ## Issue Summary            Duration (start, end, time zone), Impact, Root Cause
 *   ## Timeline                 one bullet per starred or key entry: `**HH:MM TZ:** text`
 *   ## Root Cause and Resolution
 *   ## Corrective and Preventative Measures
 *   ## TODO                     the incident's follow-up items
 *
 * with MTTD (start → detected), MTTA (detected → acknowledged) and MTTR (start → resolved) in the Duration line.
 * Pure: the draft is a value (the JSON format), rendered to Markdown by renderMarkdown.
 */
import type { Impact } from './impact.js';
import { responseTimes } from './lifecycle.js';
import { formatDuration, localTime } from './timezone.js';
import type { Incident, TimelineEntry } from './types.js';

export interface PostmortemTimelineItem {
  readonly at: string;
  /** `14:00` in the site's time zone, prefixed by the date when it is not the start's day. */
  readonly time: string;
  readonly zone: string;
  readonly text: string;
  readonly key: string;
}

export interface Postmortem {
  readonly incident: number;
  readonly title: string;
  readonly timeZone: string;
  readonly summary: {
    readonly duration: {
      readonly startedAt: string;
      readonly endedAt: string | null;
      readonly ms: number;
      readonly text: string;
    };
    readonly impact: string;
    /** The estimate the Impact line was written from (src/incident/impact.ts), when something was measured. */
    readonly estimate: Impact | null;
    readonly rootCause: string;
  };
  readonly response: { readonly mttdMs: number; readonly mttaMs: number | null; readonly mttrMs: number | null };
  readonly timeline: readonly PostmortemTimelineItem[];
  readonly rootCauseAndResolution: string;
  readonly measures: readonly string[];
  readonly todo: readonly string[];
}

export interface PostmortemOptions {
  readonly timeZone: string;
  readonly nowMs: number;
  /**
   * The estimated impact (requests lost, vantage points that failed): the Impact line when it measured something.
   */
  readonly estimate?: Impact | undefined;
  /**
   * The top suspect in one sentence (suspectSentence in src/server/suspects.ts): the Root Cause is prefilled from it,
   * followed by what the responders said when they moved the incident to `identified`.
   */
  readonly suspect?: string | undefined;
  /** Overrides of the prefilled texts (the API's PUT edits the stored draft instead). */
  readonly impact?: string;
  readonly rootCause?: string;
  readonly resolution?: string;
  readonly measures?: readonly string[];
}

const MEASURES_INTRO =
  'To prevent similar issues from occurring in the future, we will implement the following corrective and preventative measures:';

function durationText(inc: Incident, tz: string, ms: number, r: Postmortem['response']): string {
  const s = localTime(inc.startedAt, tz);
  const times = [`MTTD ${formatDuration(r.mttdMs)}`];
  if (r.mttaMs !== null) times.push(`MTTA ${formatDuration(r.mttaMs)}`);
  if (r.mttrMs !== null) times.push(`MTTR ${formatDuration(r.mttrMs)}`);
  const utcStart = inc.startedAt.slice(11, 16);
  if (inc.resolvedAt === null) {
    return `The outage has lasted for ${formatDuration(ms)} so far, since ${s.hhmm} ${s.zone} on ${s.date} (${utcStart} UTC), and is not resolved yet (${times.join(', ')}).`;
  }
  const e = localTime(inc.resolvedAt, tz);
  const endDate = e.date === s.date ? '' : ` on ${e.date}`;
  const zone = s.zone === e.zone ? ` ${s.zone}` : '';
  const startZone = s.zone === e.zone ? '' : ` ${s.zone}`;
  const endZone = s.zone === e.zone ? '' : ` ${e.zone}`;
  return `The outage lasted for ${formatDuration(ms)}, from ${s.hhmm}${startZone} to ${e.hhmm}${endZone}${endDate}${zone} on ${s.date} (${utcStart} to ${inc.resolvedAt.slice(11, 16)} UTC); ${times.join(', ')}.`;
}

/** The text of the newest own entry of `kind` moving to `to`, if any. */
function statusText(timeline: readonly TimelineEntry[], kind: string): string | undefined {
  const es = timeline.filter((e) => e.kind === kind);
  return es[es.length - 1]?.text;
}

function defaultImpact(inc: Incident): string {
  const svc =
    inc.services.length > 0
      ? `the service${inc.services.length > 1 ? 's' : ''} ${inc.services.join(', ')}`
      : 'no service named yet';
  const hosts = inc.hosts.length > 0 ? ` on ${inc.hosts.join(', ')}` : '';
  return `${inc.severity}: ${svc}${hosts}.`;
}

/** The Impact line from the estimate: what was affected, then the figures (the founding document's "80% of users"). */
export function impactLine(inc: Incident, impact: Impact): string {
  const what =
    inc.services.length > 0
      ? `The service${inc.services.length > 1 ? 's' : ''} ${inc.services.join(', ')}`
      : 'The site';
  const where = inc.hosts.length > 0 ? ` on ${inc.hosts.join(', ')}` : '';
  return `${what}${where} (${inc.severity}). ${impact.text}`;
}

const measured = (i: Impact | undefined): i is Impact =>
  i !== undefined && (i.overall.lostShare !== null || i.vantagePoints.length > 0);

/** The draft for an incident and its assembled timeline. */
export function buildPostmortem(
  inc: Incident,
  timeline: readonly TimelineEntry[],
  opts: PostmortemOptions,
): Postmortem {
  const tz = opts.timeZone;
  const startMs = Date.parse(inc.startedAt);
  const endMs = inc.resolvedAt ? Date.parse(inc.resolvedAt) : opts.nowMs;
  const response = responseTimes(inc);
  const startDate = localTime(inc.startedAt, tz).date;
  const seen = new Set<string>();
  const items: PostmortemTimelineItem[] = [];
  for (const e of timeline) {
    if (!(e.starred || e.keyMoment)) continue;
    const t = localTime(e.at, tz);
    const time = t.date === startDate ? t.hhmm : `${t.date} ${t.hhmm}`;
    const dedupe = `${time}|${e.text}`;
    if (seen.has(dedupe)) continue;
    seen.add(dedupe);
    items.push({ at: e.at, time, zone: t.zone, text: e.text, key: e.key });
  }
  // The root cause is what the responders said when they moved the incident to `identified`; the resolution is
  // what they said when it went to `monitoring` and when it was resolved.
  const identified = statusOf(timeline, 'identified');
  const suspected = opts.suspect
    ? `Suspected by Rampart: ${opts.suspect[0]?.toUpperCase()}${opts.suspect.slice(1)}${identified ? ` ${identified}` : ''}`
    : undefined;
  const rootCause = opts.rootCause ?? suspected ?? identified ?? 'Not determined yet.';
  const estimate = measured(opts.estimate) ? opts.estimate : null;
  const fix = [statusOf(timeline, 'monitoring'), statusText(timeline, 'incident.resolved')].filter(
    (t): t is string => t !== undefined,
  );
  const resolution = opts.resolution ?? (fix.length > 0 ? fix.join(' ') : 'Not resolved yet.');
  return {
    incident: inc.id,
    title: `Postmortem: ${inc.title} (incident ${inc.id})`,
    timeZone: tz,
    summary: {
      duration: {
        startedAt: inc.startedAt,
        endedAt: inc.resolvedAt,
        ms: endMs - startMs,
        text: durationText(inc, tz, endMs - startMs, response),
      },
      impact: opts.impact ?? (estimate ? impactLine(inc, estimate) : defaultImpact(inc)),
      estimate,
      rootCause,
    },
    response,
    timeline: items,
    rootCauseAndResolution: `${rootCause} ${resolution}`.trim(),
    measures: opts.measures ?? [],
    todo: inc.followUps,
  };
}

/** The text of the newest status update to `to` (the entry's text as the responder wrote it). */
function statusOf(timeline: readonly TimelineEntry[], to: string): string | undefined {
  const es = timeline.filter((e) => e.kind === 'incident.status' && e.statusTo === to);
  return es[es.length - 1]?.text;
}

function bullets(xs: readonly string[], none: string): string {
  return xs.length === 0 ? `- ${none}` : xs.map((x) => `- ${x}`).join('\n');
}

/** The founding document's structure, section for section. */
export function renderMarkdown(pm: Postmortem): string {
  const timeline = pm.timeline.map((t) => `- **${t.time} ${t.zone}:** ${t.text}`);
  return [
    `# ${pm.title}`,
    '',
    '## Issue Summary',
    `- **Duration:** ${pm.summary.duration.text}`,
    `- **Impact:** ${pm.summary.impact}`,
    `- **Root Cause:** ${pm.summary.rootCause}`,
    '',
    '## Timeline',
    timeline.length > 0 ? timeline.join('\n') : '- Nothing recorded yet.',
    '',
    '## Root Cause and Resolution',
    pm.rootCauseAndResolution,
    '',
    '## Corrective and Preventative Measures',
    MEASURES_INTRO,
    bullets(pm.measures, 'None decided yet.'),
    '',
    '## TODO',
    bullets(pm.todo, 'No follow-up items recorded yet.'),
    '',
  ].join('\n');
}
