/**
 * The public status page (issue 16 §6, issue 17): `GET /status.json` and `GET /status`, without a token. What is
 * public is chosen in rampart.yaml's `status-page:` section and nothing else leaves: each listed service by its
 * display name with its state in customers' words, the open incidents touching one of them by their public updates
 * only (`rampart incident update ID --public "..."`; never an incident's title, severity, notes, hosts or alerts),
 * and 90 days of daily availability from the probe rollups of the service's monitors. Without the section both
 * answer 404. The page is rendered on the server (no script) under the dashboard's Content-Security-Policy.
 *
 * `publicStatus` is the pure core: it takes what the store and monitoring say and the clock, and decides what shows.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { StatusPageConfig } from '../config/status-page.js';
import type { Incident, StoredOwnEntry } from '../incident/types.js';
import type { ServerDeps } from './route.js';
import { securityHeaders } from './web.js';

export const STATUS_DAYS = 90;
const DAY_MS = 86_400_000;

export type PublicState = 'operational' | 'degraded' | 'outage' | 'unknown';

const PUBLIC_STATE: Readonly<Record<string, PublicState>> = {
  UP: 'operational',
  DEGRADED: 'degraded',
  DOWN: 'outage',
  UNKNOWN: 'unknown',
};

export interface DayCount {
  /** The UTC day's start, epoch ms. */
  readonly day: number;
  readonly count: number;
  readonly failures: number;
}

export interface PublicStatusInput {
  readonly config: StatusPageConfig;
  /** Each service's state by monitoring (internal name → UP, DEGRADED, DOWN or UNKNOWN). */
  readonly states: ReadonlyMap<string, string>;
  /** Open incidents with their own entries. */
  readonly incidents: readonly { readonly incident: Incident; readonly entries: readonly StoredOwnEntry[] }[];
  /** Probe counts per internal service name and UTC day (any order; days outside the window are ignored). */
  readonly days: ReadonlyMap<string, readonly DayCount[]>;
  readonly nowMs: number;
}

export interface PublicStatus {
  readonly title: string;
  readonly updatedAt: string;
  readonly state: PublicState;
  readonly services: readonly {
    readonly name: string;
    readonly state: PublicState;
    /** Oldest first, STATUS_DAYS entries; `availability` is null on a day without probes. */
    readonly days: readonly { readonly date: string; readonly availability: number | null }[];
    /** Over the days with probes; null when there were none. */
    readonly availability: number | null;
  }[];
  readonly incidents: readonly {
    readonly status: string;
    readonly startedAt: string;
    readonly resolvedAt: string | null;
    /** The display names of the public services it touches. */
    readonly services: readonly string[];
    /** Newest first. */
    readonly updates: readonly { readonly at: string; readonly text: string }[];
  }[];
}

const WORST: readonly PublicState[] = ['outage', 'degraded', 'unknown', 'operational'];

export function dayStart(ms: number): number {
  return ms - (((ms % DAY_MS) + DAY_MS) % DAY_MS);
}

/** What the public may see, and nothing else. */
export function publicStatus(input: PublicStatusInput): PublicStatus {
  const { config, nowMs } = input;
  const today = dayStart(nowMs);
  const first = today - (STATUS_DAYS - 1) * DAY_MS;
  const services = config.services.map((s) => {
    const counts = new Map<number, { count: number; failures: number }>();
    for (const d of input.days.get(s.service) ?? []) {
      const day = dayStart(d.day);
      if (day < first || day > today) continue;
      const c = counts.get(day) ?? { count: 0, failures: 0 };
      counts.set(day, { count: c.count + d.count, failures: c.failures + d.failures });
    }
    let total = 0;
    let failed = 0;
    const days = Array.from({ length: STATUS_DAYS }, (_, i) => {
      const day = first + i * DAY_MS;
      const c = counts.get(day);
      if (c && c.count > 0) {
        total += c.count;
        failed += c.failures;
      }
      return {
        date: new Date(day).toISOString().slice(0, 10),
        availability: c && c.count > 0 ? round((c.count - c.failures) / c.count) : null,
      };
    });
    return {
      name: s.name,
      state: PUBLIC_STATE[input.states.get(s.service) ?? 'UNKNOWN'] ?? 'unknown',
      days,
      availability: total > 0 ? round((total - failed) / total) : null,
    };
  });
  const shown = new Map(config.services.map((s) => [s.service, s.name]));
  const incidents = input.incidents
    .filter(({ incident }) => incident.resolvedAt === null && incident.services.some((s) => shown.has(s)))
    .map(({ incident, entries }) => ({
      status: incident.status,
      startedAt: incident.startedAt,
      resolvedAt: incident.resolvedAt,
      services: incident.services.flatMap((s) => (shown.has(s) ? [shown.get(s) as string] : [])),
      updates: entries
        .filter((e) => e.kind === 'incident.public')
        .sort((a, b) => b.at.localeCompare(a.at))
        .map((e) => ({ at: e.at, text: e.text })),
    }));
  const state = WORST.find((w) => services.some((s) => s.state === w)) ?? 'unknown';
  return { title: config.title, updatedAt: new Date(nowMs).toISOString(), state, services, incidents };
}

const round = (x: number) => Math.round(x * 100_000) / 100_000;

/** Reads what `publicStatus` needs: service states, open incidents and their entries, 90 days of hour rollups. */
export async function readPublicStatus(deps: ServerDeps, config: StatusPageConfig): Promise<PublicStatus> {
  const nowMs = deps.now().getTime();
  const wanted = new Set(config.services.map((s) => s.service));
  const states = new Map(deps.monitoring.services().map((s) => [s.name, s.state as string]));
  const open = (await deps.incidents.list({ status: 'open' })).filter((i) => i.services.some((s) => wanted.has(s)));
  const incidents = await Promise.all(
    open.map(async (incident) => ({ incident, entries: await deps.store.incidents.entries(incident.id) })),
  );
  const from = Math.floor((dayStart(nowMs) - (STATUS_DAYS - 1) * DAY_MS) / 1000);
  const to = Math.floor(nowMs / 1000);
  const monitors = (deps.config.current().monitors ?? []).filter((m) => m.service && wanted.has(m.service));
  const days = new Map<string, DayCount[]>();
  for (const m of monitors) {
    const rows = await deps.store.monitoring.rollups(m.name, 3600, from, to);
    const list = days.get(m.service as string) ?? [];
    for (const r of rows) list.push({ day: r.bucket * 1000, count: r.count, failures: r.failures });
    days.set(m.service as string, list);
  }
  return publicStatus({ config, states, incidents, days, nowMs });
}

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

const STATE_TEXT: Readonly<Record<PublicState, string>> = {
  operational: 'Operational',
  degraded: 'Degraded performance',
  outage: 'Outage',
  unknown: 'Status unknown',
};

function level(a: number | null): string {
  if (a === null) return 'none';
  if (a >= 0.999) return 'good';
  if (a >= 0.99) return 'fair';
  if (a >= 0.95) return 'poor';
  return 'bad';
}

const pct = (a: number) => `${(Math.floor(a * 100_000) / 1000).toFixed(2)}%`;

/** The page: plain HTML and one stylesheet, no script. */
export function renderStatusPage(s: PublicStatus): string {
  const overall =
    s.state === 'operational' && s.incidents.length > 0
      ? 'We are working on an incident'
      : s.state === 'operational'
        ? 'All systems operational'
        : s.state === 'unknown'
          ? 'Status unknown'
          : s.state === 'outage'
            ? 'Some services are down'
            : 'Some services are degraded';
  const services = s.services
    .map(
      (v) => `<section class="service" aria-labelledby="svc-${esc(slug(v.name))}">
  <h2 id="svc-${esc(slug(v.name))}">${esc(v.name)} <span class="state state-${v.state}">${STATE_TEXT[v.state]}</span></h2>
  <ol class="bars" aria-label="Daily availability of ${esc(v.name)}, the last ${STATUS_DAYS} days">${v.days
    .map(
      (d) =>
        `<li class="bar bar-${level(d.availability)}" title="${d.date}: ${d.availability === null ? 'no data' : pct(d.availability)}"><span class="sr">${d.date}: ${d.availability === null ? 'no data' : pct(d.availability)}</span></li>`,
    )
    .join('')}</ol>
  <p class="range"><span>${STATUS_DAYS} days ago</span><span>${v.availability === null ? 'no data yet' : `${pct(v.availability)} available`}</span><span>today</span></p>
</section>`,
    )
    .join('\n');
  const incidents =
    s.incidents.length === 0
      ? ''
      : `<section aria-labelledby="incidents-h"><h2 id="incidents-h">Current incidents</h2>
${s.incidents
  .map(
    (i) => `<article class="incident">
  <h3>${esc(i.services.join(', '))}: ${esc(i.status)}</h3>
  <p class="muted">Since <time datetime="${i.startedAt}">${esc(i.startedAt.replace('T', ' ').slice(0, 16))} UTC</time></p>
  ${
    i.updates.length === 0
      ? '<p>We are investigating.</p>'
      : `<ul class="updates">${i.updates.map((u) => `<li><time datetime="${u.at}">${esc(u.at.replace('T', ' ').slice(0, 16))} UTC</time> ${esc(u.text)}</li>`).join('')}</ul>`
  }
</article>`,
  )
  .join('\n')}</section>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${esc(s.title)}</title><link rel="stylesheet" href="/status.css"></head>
<body><main>
<h1>${esc(s.title)}</h1>
<p class="overall overall-${s.state}" role="status">${overall}</p>
${incidents}
${services || '<p>No services are listed.</p>'}
<p class="muted">Updated <time datetime="${s.updatedAt}">${esc(s.updatedAt.replace('T', ' ').slice(0, 19))} UTC</time>. Machine-readable: <a href="/status.json">status.json</a>.</p>
</main></body></html>
`;
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-');

const STATUS_CSS = `:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--muted:#57606a;--good:#1a7f37;--fair:#9a6700;--poor:#bc4c00;--bad:#cf222e;--none:#d0d7de}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9da7b3;--good:#3fb950;--fair:#d29922;--poor:#db6d28;--bad:#f85149;--none:#30363d}}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,sans-serif}
main{max-width:60rem;margin:0 auto;padding:1.5rem}
a{color:inherit}
.muted,.range{color:var(--muted)}
.overall{font-size:1.25rem;font-weight:600;padding:.75rem 1rem;border-radius:.5rem;border:2px solid var(--none)}
.overall-operational{border-color:var(--good)}.overall-degraded{border-color:var(--fair)}.overall-outage{border-color:var(--bad)}
.state{font-size:.9rem;font-weight:500;margin-left:.5rem}
.state-operational{color:var(--good)}.state-degraded{color:var(--fair)}.state-outage{color:var(--bad)}.state-unknown{color:var(--muted)}
.bars{display:flex;gap:2px;list-style:none;margin:0;padding:0;height:2.25rem}
.bar{flex:1;border-radius:2px;background:var(--none)}
.bar-good{background:var(--good)}.bar-fair{background:var(--fair)}.bar-poor{background:var(--poor)}.bar-bad{background:var(--bad)}
.range{display:flex;justify-content:space-between;font-size:.85rem;margin:.25rem 0 1.5rem}
.incident{border-left:4px solid var(--bad);padding:.25rem 1rem;margin-bottom:1rem}
.updates{padding-left:1rem}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
`;

/** `GET /status.json`, `GET /status` and its stylesheet: public, read-only, and 404 without a `status-page:` section. */
export function registerStatusPage(app: FastifyInstance, deps: ServerDeps): void {
  const none = (reply: FastifyReply) =>
    securityHeaders(reply)
      .code(404)
      .header('content-type', 'text/plain; charset=utf-8')
      .send('this server has no public status page (add a status-page: section to rampart.yaml)\n');
  app.get('/status.json', async (_req, reply) => {
    const config = deps.config.current().statusPage;
    if (!config) return none(reply);
    const body = await readPublicStatus(deps, config);
    return securityHeaders(reply)
      .header('cache-control', 'no-cache')
      .header('access-control-allow-origin', '*')
      .header('content-type', 'application/json; charset=utf-8')
      .send(JSON.stringify(body));
  });
  app.get('/status', async (_req, reply) => {
    const config = deps.config.current().statusPage;
    if (!config) return none(reply);
    const body = renderStatusPage(await readPublicStatus(deps, config));
    return securityHeaders(reply)
      .header('cache-control', 'no-cache')
      .header('content-type', 'text/html; charset=utf-8')
      .send(body);
  });
  app.get('/status.css', async (_req, reply) =>
    securityHeaders(reply)
      .header('cache-control', 'no-cache')
      .header('content-type', 'text/css; charset=utf-8')
      .send(STATUS_CSS),
  );
}
