/**
 * Rampart's dashboard: Preact components written with htm (tagged templates, no JSX build step). Pages are chosen by
 * the URL's hash (#/changes/12), so the server serves one page. Everything shown comes from the JSON API on the
 * session cookie; the UI offers only what the role may do, and the server checks again.
 */
import { html } from 'htm/preact';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, type Json, type Me, may, signIn, whoAmI } from './api.js';
import { IncidentPage, Incidents } from './incidents.js';
import { connect, useLiveStatus } from './live.js';
import { MonitorPage, Traffic } from './pages-charts.js';
import { rolloutByHost, type Stage } from './rollout.js';
import { Action, Loading, Problem, State, useData, when } from './ui.js';

function useRoute(): string[] {
  const parse = () => (location.hash.replace(/^#\/?/, '') || 'overview').split('/');
  const [r, setR] = useState(parse());
  useEffect(() => {
    const on = () => setR(parse());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return r;
}

function SignIn({ onIn, why }: { onIn: (me: Me) => void; why: string | undefined }) {
  const [token, setToken] = useState('');
  const [err, setErr] = useState<string | undefined>();
  return html`<main class="signin" id="main">
    <h1>Rampart</h1>
    ${why ? html`<p class="note">${why}</p>` : null}
    <form
      onSubmit=${async (e: Event) => {
        e.preventDefault();
        setErr(undefined);
        try {
          const me = await signIn(token);
          setToken('');
          onIn(me);
        } catch (x) {
          setErr((x as Error).message);
        }
      }}>
      <label for="token">API token</label>
      <input id="token" name="token" type="password" autocomplete="off" required value=${token}
        placeholder="rpt_…" onInput=${(e: Event) => setToken((e.target as HTMLInputElement).value)} />
      <button type="submit">Sign in</button>
      <${Problem} text=${err} />
      <p class="hint">The token is exchanged for a session cookie and is not kept by this page.</p>
    </form>
  </main>`;
}

const PAGES: readonly [string, string][] = [
  ['overview', 'Overview'],
  ['changes', 'Changes'],
  ['incidents', 'Incidents'],
  ['alerts', 'Alerts'],
  ['monitors', 'Monitors'],
  ['traffic', 'Traffic'],
  ['hosts', 'Hosts'],
  ['audit', 'Audit log'],
];

function Shell({ me, route, onOut }: { me: Me; route: string[]; onOut: () => void }) {
  const live = useLiveStatus();
  const page = route[0] ?? 'overview';
  return html`<a class="skip" href="#main" onClick=${(e: Event) => {
    e.preventDefault();
    document.getElementById('main')?.focus();
  }}>Skip to content</a>
  <header>
    <span class="brand">Rampart</span>
    <nav aria-label="Main">
      <ul>
        ${PAGES.map(
          ([id, label]) =>
            html`<li><a href=${`#/${id}`} aria-current=${page === id ? 'page' : undefined}>${label}</a></li>`,
        )}
      </ul>
    </nav>
    <span class="who">
      <span class=${`live live-${live}`} role="status" aria-live="polite">${live}</span>
      <span>${me.name} (${me.role})</span>
      <${Action} label="Sign out" run=${async () => {
        await api('DELETE', '/session');
        onOut();
      }} />
    </span>
  </header>
  <main id="main" tabindex="-1">
    ${
      page === 'overview'
        ? html`<${Overview} />`
        : page === 'changes' && route[1]
          ? html`<${ChangePage} id=${Number(route[1])} me=${me} />`
          : page === 'changes'
            ? html`<${Changes} />`
            : page === 'incidents' && route[1]
              ? html`<${IncidentPage} id=${Number(route[1])} me=${me} />`
              : page === 'incidents'
                ? html`<${Incidents} />`
                : page === 'alerts'
                  ? html`<${Alerts} me=${me} />`
                  : page === 'monitors' && route[1]
                    ? html`<${MonitorPage} name=${decodeURIComponent(route.slice(1).join('/'))} />`
                    : page === 'monitors'
                      ? html`<${Monitors} />`
                      : page === 'traffic'
                        ? html`<${Traffic} />`
                        : page === 'hosts'
                          ? html`<${Hosts} />`
                          : page === 'audit'
                            ? html`<${Audit} me=${me} />`
                            : html`<h1>Not found</h1><p>No page ${page}.</p>`
    }
  </main>`;
}

const SILENT_MS = 5 * 60_000;

/** Re-renders every `ms`: a host turns silent by time passing, with nothing on the stream to say so. */
function useTick(ms: number): void {
  const [, setN] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setN((n) => n + 1), ms);
    return () => clearInterval(t);
  }, [ms]);
}

/**
 * A change waiting for review, as lists show it: blocked at plan (an admin must override; the first blocker's first
 * line says why) or reviewable, with its risk. From the list's plan brief (GET /changes: `plan` of planned changes).
 */
function Waiting({ c }: { c: Json }) {
  const p = c.plan;
  if (c.state !== 'planned' || !p) return null;
  if (p.blocked)
    return html`<span class="tag tag-blocked">blocked</span> <span class="blocker">${p.blocker ?? `${p.blockers} blockers`}</span>`;
  return html`<span class="tag tag-ready">ready for review</span> <span class="muted">risk ${p.risk}${p.stale ? ', stale' : ''}</span>`;
}

function Overview() {
  const monitors = useData('/monitors?limit=25&state=DOWN', ['monitors']);
  const degraded = useData('/monitors?limit=25&state=DEGRADED', ['monitors']);
  const alerts = useData('/alerts?state=firing', ['alerts']);
  const review = useData('/changes?state=planned&limit=20', ['changes']);
  const hosts = useData('/hosts', ['hosts']);
  const incidents = useData('/incidents?status=open&limit=20', ['incidents']);
  useTick(15_000);
  return html`<h1>Overview</h1>
  <section aria-labelledby="ov-services">
    <h2 id="ov-services">Services</h2>
    <${Loading} d=${monitors}>${(m: Json) => html`
      <p class="counts">Monitors: ${Object.entries(m.counts ?? {}).map(
        ([s, n]) => html`<span class="count"><${State} s=${s} /> ${n}</span> `,
      )}</p>
      ${
        m.services.length === 0
          ? html`<p>No services with monitors.</p>`
          : html`<table><caption class="sr">Services and their state</caption>
          <thead><tr><th scope="col">Service</th><th scope="col">State</th><th scope="col">Backends up</th><th scope="col">Why</th></tr></thead>
          <tbody>${m.services.map(
            (s: Json) =>
              html`<tr><th scope="row">${s.name}</th><td><${State} s=${s.state} /></td><td>${s.healthy}/${s.backends}</td><td>${s.reason}</td></tr>`,
          )}</tbody></table>`
      }`}<//>
    <h3>Monitors down or degraded, per vantage point</h3>
    <${Loading} d=${degraded}>${(d: Json) => html`<${MonitorTable} rows=${[...(monitors.data?.monitors ?? []), ...d.monitors]} empty="Every monitor is up." />`}<//>
  </section>
  <section aria-labelledby="ov-incidents">
    <h2 id="ov-incidents">Active incidents</h2>
    <${Loading} d=${incidents}>${(r: Json) =>
      r.incidents.length === 0
        ? html`<p>No open incident.</p>`
        : html`<ul class="list">${r.incidents.map(
            (i: Json) =>
              html`<li><a href=${`#/incidents/${i.id}`}>Incident ${i.id}</a>: ${i.title} <span class="tag">${i.severity}</span> <${State} s=${i.status} /> <span class="muted">since ${when(i.startedAt)}</span></li>`,
          )}</ul>`}<//>
  </section>
  <section aria-labelledby="ov-alerts">
    <h2 id="ov-alerts">Alerts firing</h2>
    <${Loading} d=${alerts}>${(a: Json) =>
      a.alerts.length === 0
        ? html`<p>No alert is firing.</p>`
        : html`<ul class="list">${a.alerts.map(
            (x: Json) =>
              html`<li><strong>${x.labels.alertname}</strong> ${labelText(x.labels)} <span class="muted">since ${when(x.startsAt)}</span>${x.ack ? html` <span class="tag">acknowledged by ${x.ack.by}</span>` : null}</li>`,
          )}</ul>`}<//>
  </section>
  <section aria-labelledby="ov-review">
    <h2 id="ov-review">Changes waiting for review</h2>
    <${Loading} d=${review}>${(c: Json) =>
      c.changes.length === 0
        ? html`<p>Nothing waits for review.</p>`
        : html`<ul class="list">${c.changes.map(
            (x: Json) =>
              html`<li class=${x.plan?.blocked ? 'waiting-blocked' : 'waiting-ready'}><a href=${`#/changes/${x.id}`}>Change ${x.id}</a>: ${x.reason} <span class="muted">by ${x.author}</span> <${Waiting} c=${x} /></li>`,
          )}</ul>`}<//>
  </section>
  <section aria-labelledby="ov-hosts">
    <h2 id="ov-hosts">Hosts drifted or silent</h2>
    <${Loading} d=${hosts}>${(h: Json) => {
      const now = Date.now();
      const bad = h.hosts.filter(
        (x: Json) => (x.drift && !x.drift.inSync) || !x.agent || now - Date.parse(x.agent.lastReport) > SILENT_MS,
      );
      return bad.length === 0
        ? html`<p>Every host reports and matches its desired ruleset.</p>`
        : html`<ul class="list">${bad.map(
            (x: Json) =>
              html`<li><strong>${x.name}</strong>: ${
                !x.agent
                  ? 'no agent report yet'
                  : now - Date.parse(x.agent.lastReport) > SILENT_MS
                    ? `silent since ${when(x.agent.lastReport)}`
                    : `drifted: ${x.drift.summary}`
              }</li>`,
          )}</ul>`;
    }}<//>
  </section>`;
}

function labelText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .filter(([k]) => k !== 'alertname')
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

function MonitorTable({ rows, empty }: { rows: Json[]; empty: string }) {
  if (rows.length === 0) return html`<p>${empty}</p>`;
  return html`<table><caption class="sr">Monitors</caption>
    <thead><tr><th scope="col">Monitor</th><th scope="col">State</th><th scope="col">Since</th><th scope="col">Vantage points</th><th scope="col">Why</th></tr></thead>
    <tbody>${rows.map(
      (m: Json) => html`<tr>
        <th scope="row"><a href=${`#/monitors/${encodeURIComponent(m.name)}`}>${m.name}</a><div class="muted">${m.check}</div></th>
        <td><${State} s=${m.state} /></td>
        <td>${when(m.since)}</td>
        <td>${Object.entries(m.vantages ?? {}).map(
          ([v, s]: [string, Json]) =>
            html`<span class="vantage">${v}: <${State} s=${s.state} />${s.ms !== undefined ? ` ${s.ms} ms` : ''}</span> `,
        )}</td>
        <td>${m.reason}</td>
      </tr>`,
    )}</tbody></table>`;
}

const CHANGE_STATES = [
  'proposed',
  'planning',
  'plan-failed',
  'planned',
  'approved',
  'rejected',
  'applying',
  'applied',
  'rolled-back',
  'failed',
];

function Changes() {
  const [state, setState] = useState('');
  const d = useData(`/changes?limit=100${state ? `&state=${state}` : ''}`, ['changes']);
  return html`<h1>Changes</h1>
    <div class="filters">
      <label for="change-state">State</label>
      <select id="change-state" value=${state} onChange=${(e: Event) => setState((e.target as HTMLSelectElement).value)}>
        <option value="">any</option>
        ${CHANGE_STATES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
    </div>
    <${Loading} d=${d}>${(c: Json) =>
      c.changes.length === 0
        ? html`<p>No changes${state ? ` in state ${state}` : ''}.</p>`
        : html`<table><caption class="sr">Changes, newest first</caption>
          <thead><tr><th scope="col">Change</th><th scope="col">State</th><th scope="col">Target</th><th scope="col">Author</th><th scope="col">Reason</th><th scope="col">Proposed</th></tr></thead>
          <tbody>${c.changes.map(
            (x: Json) => html`<tr>
              <th scope="row"><a href=${`#/changes/${x.id}`}>${x.id}</a></th>
              <td><${State} s=${x.state} /> <${Waiting} c=${x} /></td>
              <td>${x.target.kind} ${x.target.name}</td>
              <td>${x.author}</td>
              <td>${x.reason}</td>
              <td>${when(x.createdAt)}</td>
            </tr>`,
          )}</tbody></table>`}<//>`;
}

function ChangePage({ id, me }: { id: number; me: Me }) {
  const d = useData(`/changes/${id}`, ['changes']);
  const planText = useData<string>(d.data?.plan ? `/changes/${id}/plan?format=text` : null, ['changes']);
  const [comment, setComment] = useState('');
  return html`<p><a href="#/changes">← Changes</a></p>
  <${Loading} d=${d}>${(v: Json) => {
    const c = v.change;
    const plan = v.plan;
    const decide = (verdict: string, extra: Record<string, unknown>) => async () => {
      // The plan id the reviewer saw: refused with 409 if the change moved on since.
      await api('POST', `/changes/${id}/${verdict}`, { plan: plan.id, ...extra });
      setComment('');
      d.reload();
    };
    return html`<h1>Change ${c.id} <${State} s=${c.state} /></h1>
    <p>${c.reason}</p>
    <dl class="facts">
      <dt>Target</dt><dd>${c.target.kind} ${c.target.name} (${(c.hosts ?? []).join(', ')})</dd>
      <dt>Author</dt><dd>${(c.authors ?? [c.author]).join(', ')}</dd>
      <dt>Proposed</dt><dd>${when(c.createdAt)}</dd>
      ${plan ? html`<dt>Plan</dt><dd>#${plan.id}, risk ${plan.risk}${plan.blocked ? ', blocked' : ''}${plan.stale ? ', stale' : ''}</dd>` : null}
      <dt>Approvals</dt><dd>${v.approvals.approvers.length}/${v.approvals.required}${v.approvals.approvers.length ? ` (${v.approvals.approvers.join(', ')})` : ''}${v.approvals.rejectedBy.length ? `; rejected by ${v.approvals.rejectedBy.join(', ')}` : ''}</dd>
      ${v.flags.length ? html`<dt>Flags</dt><dd>${v.flags.map((f: string) => html`<span class="tag">${f}</span> `)}</dd>` : null}
    </dl>
    ${
      plan && c.state === 'planned' && may(me, 'approver')
        ? html`<section class="decide" aria-labelledby="decide-h">
          <h2 id="decide-h">Review plan #${plan.id}</h2>
          <label for="comment">Comment (needed to reject)</label>
          <textarea id="comment" rows="2" value=${comment} onInput=${(e: Event) => setComment((e.target as HTMLTextAreaElement).value)}></textarea>
          <div class="buttons">
            <${Action} label="Approve" kind="primary" run=${decide('approve', { comment })} />
            <${Action} label="Reject" kind="danger" run=${decide('reject', { comment })} />
            ${
              may(me, 'admin') && plan.blocked
                ? html`<${Action} label="Override the block" kind="danger" run=${decide('override', { reason: comment })} />`
                : null
            }
          </div>
        </section>`
        : null
    }
    ${
      may(me, 'operator') && (c.state === 'approved' || c.state === 'applied')
        ? html`<div class="buttons">
          ${
            c.state === 'approved'
              ? html`<${Action} label="Apply" kind="primary" run=${async () => {
                  await api('POST', `/changes/${id}/apply`, {});
                  d.reload();
                }} />`
              : null
          }
          ${
            c.state === 'applied'
              ? html`<${Action} label="Roll back" kind="danger" run=${async () => {
                  await api('POST', `/changes/${id}/rollback`, {
                    reason: comment || `roll back change ${id} from the dashboard`,
                  });
                  d.reload();
                }} />`
              : null
          }
        </div>`
        : null
    }
    <section aria-labelledby="plan-h">
      <h2 id="plan-h">The plan</h2>
      ${c.planError ? html`<${Problem} text=${c.planError} />` : null}
      ${plan ? html`<${Loading} d=${planText}>${(t: string) => html`<pre class="plan" tabindex="0">${t}</pre>`}<//>` : html`<p>No plan yet${v.planning ? ` (${v.planning.state})` : ''}.</p>`}
    </section>
    <section aria-labelledby="reviews-h">
      <h2 id="reviews-h">Reviews</h2>
      ${
        v.reviews.length === 0
          ? html`<p>No reviews yet.</p>`
          : html`<ul class="list">${v.reviews.map(
              (r: Json) =>
                html`<li><strong>${r.reviewer}</strong> ${r.verdict} plan #${r.planId} <span class="muted">${when(r.at ?? r.createdAt)}</span>${r.voidedAt ? html` <span class="tag">void</span>` : null}${r.comment ? html`: ${r.comment}` : null}</li>`,
            )}</ul>`
      }
    </section>
    <section aria-labelledby="rollout-h">
      <h2 id="rollout-h">Rollout</h2>
      <${RolloutTable} jobs=${v.jobs} events=${v.events} />
    </section>`;
  }}<//>`;
}

/** A stage's cell: when (the agent's clock where it reported one), and what was said, or a dash. */
function StageCell({ s, label }: { s: Stage | undefined; label?: string }) {
  if (!s) return html`<td>—</td>`;
  return html`<td><${Time} at=${s.at} />${label ? html` <strong>${label}</strong>` : null}${s.detail ? html`<div class="muted detail">${s.detail}</div>` : null}</td>`;
}

const Time = ({ at }: { at: string }) => html`<time datetime=${at}>${when(at)}</time>`;

/** The rollout host by host (web/src/rollout.ts), then every recorded step. */
function RolloutTable({ jobs, events }: { jobs: Json[]; events: Json[] }) {
  if (jobs.length === 0 && events.length === 0) return html`<p>Not rolled out.</p>`;
  const rows = rolloutByHost(jobs, events);
  return html`<table class="rollout"><caption class="sr">The rollout host by host, the canary first</caption>
    <thead><tr><th scope="col">Step</th><th scope="col">Host</th><th scope="col">Staged</th><th scope="col">Applied</th><th scope="col">Health checked</th><th scope="col">Outcome</th></tr></thead>
    <tbody>${rows.map(
      (r) => html`<tr>
        <td>${r.step}</td>
        <th scope="row">${r.host}<div class="muted">queued ${when(r.queuedAt)}</div></th>
        <${StageCell} s=${r.staged} />
        <${StageCell} s=${r.applied} />
        <${StageCell} s=${r.health} label=${r.health ? (r.health.ok ? 'passed' : 'failed') : undefined} />
        ${
          r.outcome
            ? html`<${StageCell} s=${r.outcome} label=${r.status} />`
            : html`<td><strong>${r.status}</strong>${r.waiting ? html`<div class="muted detail">${r.waiting.detail}</div>` : null}</td>`
        }
      </tr>`,
    )}</tbody></table>
    ${
      events.length > 0
        ? html`<details><summary>Every step recorded (${events.length})</summary><ol class="timeline">${events.map(
            (e: Json) =>
              html`<li><${Time} at=${e.sourceAt ?? e.at} /> <strong>${e.host}</strong> <span class="tag">${e.kind}</span> ${e.detail} <span class="muted">(${e.source})</span></li>`,
          )}</ol></details>`
        : null
    }`;
}

function matcherText(m: Json): string {
  return `${m.name}${m.op}"${m.value}"`;
}

function Alerts({ me }: { me: Me }) {
  const firing = useData('/alerts?state=firing', ['alerts']);
  const silences = useData('/silences', ['silences', 'alerts']);
  const oncall = useData('/oncall', []);
  const [silencing, setSilencing] = useState<Json | null>(null);
  return html`<h1>Alerts</h1>
  <section aria-labelledby="al-firing">
    <h2 id="al-firing">Firing</h2>
    <${Loading} d=${firing}>${(a: Json) =>
      a.alerts.length === 0
        ? html`<p>No alert is firing.</p>`
        : html`<table><caption class="sr">Firing alerts</caption>
          <thead><tr><th scope="col">Alert</th><th scope="col">Labels</th><th scope="col">Since</th><th scope="col">Status</th>${may(me, 'operator') ? html`<th scope="col">Actions</th>` : null}</tr></thead>
          <tbody>${a.alerts.map(
            (x: Json) => html`<tr>
              <th scope="row">${x.labels.alertname}<div class="muted">${x.annotations?.summary ?? ''}</div></th>
              <td>${labelText(x.labels)}</td>
              <td>${when(x.startsAt)}</td>
              <td>${x.ack ? `acknowledged by ${x.ack.by}` : x.muted ? `muted (${x.muted.kind ?? 'silenced'})` : 'notifying'}</td>
              ${
                may(me, 'operator')
                  ? html`<td>
                  ${
                    x.ack
                      ? null
                      : html`<${Action} label="Acknowledge" run=${async () => {
                          await api('POST', `/alerts/${x.fingerprint}/ack`);
                          firing.reload();
                        }} />`
                  }
                  <button type="button" onClick=${() => setSilencing(x)}>Silence…</button>
                </td>`
                  : null
              }
            </tr>`,
          )}</tbody></table>`}<//>
    ${
      silencing
        ? html`<${SilenceForm} alert=${silencing} done=${() => {
            setSilencing(null);
            silences.reload();
            firing.reload();
          }} />`
        : null
    }
  </section>
  <section aria-labelledby="al-silences">
    <h2 id="al-silences">Silences</h2>
    <${Loading} d=${silences}>${(s: Json) =>
      s.silences.length === 0
        ? html`<p>No silences.</p>`
        : html`<table><caption class="sr">Silences, newest first</caption>
          <thead><tr><th scope="col">Matchers</th><th scope="col">Status</th><th scope="col">Until</th><th scope="col">By</th><th scope="col">Comment</th>${may(me, 'operator') ? html`<th scope="col">Actions</th>` : null}</tr></thead>
          <tbody>${s.silences.map(
            (x: Json) => html`<tr>
              <th scope="row">${x.matchers.map(matcherText).join(', ')}</th>
              <td>${x.status}</td>
              <td>${x.untilResolved ? 'resolved' : when(x.endsAt)}</td>
              <td>${x.createdBy}</td>
              <td>${x.comment}</td>
              ${
                may(me, 'operator')
                  ? html`<td>${
                      x.status !== 'expired'
                        ? html`<${Action} label="Expire" run=${async () => {
                            await api('DELETE', `/silences/${x.id}`);
                            silences.reload();
                          }} />`
                        : null
                    }</td>`
                  : null
              }
            </tr>`,
          )}</tbody></table>`}<//>
  </section>
  <section aria-labelledby="al-oncall">
    <h2 id="al-oncall">On call now</h2>
    <${Loading} d=${oncall}>${(o: Json) =>
      o.schedules.length === 0
        ? html`<p>No on-call schedules configured.</p>`
        : html`<ul class="list">${o.schedules.map(
            (s: Json) =>
              html`<li><strong>${s.name}</strong>: ${s.now?.user ?? 'nobody'}${s.next ? html` <span class="muted">(next: ${s.next.user ?? 'nobody'} at ${when(s.next.at)})</span>` : null}</li>`,
          )}</ul>`}<//>
  </section>`;
}

function SilenceForm({ alert, done }: { alert: Json; done: () => void }) {
  const [hours, setHours] = useState('2');
  const [comment, setComment] = useState('');
  const [err, setErr] = useState<string | undefined>();
  const matchers = Object.entries(alert.labels as Record<string, string>).map(
    ([k, v]) => `${k}="${v.replace(/["\\]/g, '\\$&')}"`,
  );
  return html`<form class="silence" aria-labelledby="sil-h" onSubmit=${async (e: Event) => {
    e.preventDefault();
    setErr(undefined);
    try {
      const endsAt = new Date(Date.now() + Number(hours) * 3_600_000).toISOString();
      await api('POST', '/silences', { matchers, endsAt, comment });
      done();
    } catch (x) {
      setErr((x as Error).message);
    }
  }}>
    <h3 id="sil-h">Silence ${alert.labels.alertname}</h3>
    <p class="muted">Matchers: ${matchers.join(', ')}</p>
    <label for="sil-hours">For</label>
    <select id="sil-hours" value=${hours} onChange=${(e: Event) => setHours((e.target as HTMLSelectElement).value)}>
      <option value="1">1 hour</option><option value="2">2 hours</option><option value="8">8 hours</option><option value="24">24 hours</option>
    </select>
    <label for="sil-comment">Comment</label>
    <input id="sil-comment" required value=${comment} onInput=${(e: Event) => setComment((e.target as HTMLInputElement).value)} />
    <button type="submit" class="primary">Create silence</button>
    <button type="button" onClick=${done}>Cancel</button>
    <${Problem} text=${err} />
  </form>`;
}

const PAGE = 50;

function Monitors() {
  const [state, setState] = useState('');
  const [q, setQ] = useState('');
  const [offset, setOffset] = useState(0);
  const params = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  if (state) params.set('state', state);
  if (q) params.set('q', q);
  const d = useData(`/monitors?${params}`, ['monitors']);
  return html`<h1>Monitors</h1>
    <div class="filters">
      <label for="mon-state">State</label>
      <select id="mon-state" value=${state} onChange=${(e: Event) => {
        setState((e.target as HTMLSelectElement).value);
        setOffset(0);
      }}>
        <option value="">any</option>${['UP', 'DEGRADED', 'DOWN', 'UNKNOWN'].map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
      <label for="mon-q">Search</label>
      <input id="mon-q" type="search" value=${q} onInput=${(e: Event) => {
        setQ((e.target as HTMLInputElement).value);
        setOffset(0);
      }} />
    </div>
    <${Loading} d=${d}>${(m: Json) => html`
      <p class="muted">${m.total} monitors${m.total > 0 ? `, ${offset + 1}–${Math.min(offset + PAGE, m.total)} shown` : ''}</p>
      <${MonitorTable} rows=${m.monitors} empty="No monitor matches." />
      <div class="buttons">
        <button type="button" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>Previous</button>
        <button type="button" disabled=${offset + PAGE >= m.total} onClick=${() => setOffset(offset + PAGE)}>Next</button>
      </div>`}<//>`;
}

function Hosts() {
  const d = useData('/hosts', ['hosts']);
  const [drift, setDrift] = useState<{ host: string; text: string } | null>(null);
  return html`<h1>Hosts</h1>
    <${Loading} d=${d}>${(h: Json) => html`<table><caption class="sr">Hosts</caption>
      <thead><tr><th scope="col">Host</th><th scope="col">Group</th><th scope="col">Desired revision</th><th scope="col">Agent last seen</th><th scope="col">Drift</th></tr></thead>
      <tbody>${h.hosts.map(
        (x: Json) => html`<tr>
          <th scope="row">${x.name}<div class="muted">${(x.addresses ?? []).join(', ')}</div></th>
          <td>${x.group ?? '—'}</td>
          <td>${
            x.desired
              ? html`${x.desired.revision}${x.desired.changeId != null ? html` (<a href=${`#/changes/${x.desired.changeId}`}>change ${x.desired.changeId}</a>)` : ''}`
              : 'none'
          }</td>
          <td>${x.agent ? when(x.agent.lastReport) : 'never'}</td>
          <td>${
            x.drift
              ? html`${x.drift.inSync ? 'in sync' : x.drift.summary} <button type="button" onClick=${async () => {
                  const r = await api('GET', `/hosts/${x.name}/drift`);
                  setDrift({ host: x.name, text: typeof r === 'string' ? r : JSON.stringify(r, null, 2) });
                }}>Details</button>`
              : '—'
          }</td>
        </tr>`,
      )}</tbody></table>`}<//>
    ${drift ? html`<section aria-labelledby="drift-h"><h2 id="drift-h">Drift of ${drift.host}</h2><pre tabindex="0">${drift.text}</pre></section>` : null}`;
}

const AUDIT_PAGE = 25;

/**
 * The audit log a page at a time, newest first (GET /audit-log?limit=&before=: the cursor is a seq, so a page stays
 * what it was while entries arrive), and the chain's verification (on a large log it takes a while: the button
 * says so and the answer says how many entries and how long).
 */
function Audit({ me }: { me: Me }) {
  // The cursors of the pages before this one (to go back), and this page's (undefined: the newest entries).
  const [cursors, setCursors] = useState<number[]>([]);
  const cursor = cursors.at(-1);
  const d = useData(
    may(me, 'admin') ? `/audit-log?limit=${AUDIT_PAGE}${cursor !== undefined ? `&before=${cursor}` : ''}` : null,
    cursor === undefined ? ['audit', 'changes', 'alerts', 'silences'] : [],
  );
  const [verdict, setVerdict] = useState<{ v: Json; seconds: number } | null>(null);
  const [head, setHead] = useState('');
  return html`<h1>Audit log</h1>
    <section aria-labelledby="verify-h">
      <h2 id="verify-h">Verify the chain</h2>
      <p class="muted">Recomputes every entry's hash and each change's recorded ruleset hash on the server; on a large log this takes a while.</p>
      <label for="audit-head">Head kept elsewhere (optional, SEQ:HASH from <code>rampart audit-log head</code>)</label>
      <input id="audit-head" class="wide" value=${head} onInput=${(e: Event) => setHead((e.target as HTMLInputElement).value)} />
      <div class="buttons">
        <${Action} label="Verify the chain" run=${async () => {
          setVerdict(null);
          const t0 = performance.now();
          const v = await api(
            'GET',
            `/audit-log/verify${head.trim() ? `?head=${encodeURIComponent(head.trim())}` : ''}`,
          );
          setVerdict({ v, seconds: (performance.now() - t0) / 1000 });
        }} />
      </div>
      ${
        verdict
          ? html`<p role="status" class=${verdict.v.ok ? 'ok' : 'problem'}>${
              verdict.v.ok
                ? `The chain is intact: ${verdict.v.count} entries verified (head ${String(verdict.v.headHash).slice(0, 16)}…) in ${verdict.seconds.toFixed(1)} s.`
                : `Not intact at entry ${verdict.v.seq} (${verdict.v.problem}): ${verdict.v.message}`
            }</p>`
          : null
      }
    </section>
    ${
      may(me, 'admin')
        ? html`<section aria-labelledby="entries-h"><h2 id="entries-h">Entries</h2>
        <${Loading} d=${d}>${(a: Json) => html`
          <p class="muted">${
            a.entries.length === 0
              ? 'No entries.'
              : `Entries ${a.entries.at(-1).seq}–${a.entries[0].seq} of ${a.head}, newest first.`
          }</p>
          <table><caption class="sr">Audit entries, newest first</caption>
          <thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Target</th></tr></thead>
          <tbody>${a.entries.map(
            (e: Json) =>
              html`<tr><th scope="row">${e.seq}</th><td>${when(e.at)}</td><td>${e.actor} (${e.role})</td><td>${e.action}</td><td>${e.target}</td></tr>`,
          )}</tbody></table>
          <nav class="pager" aria-label="Audit log pages">
            <button type="button" disabled=${cursors.length === 0} onClick=${() => setCursors([])}>Newest</button>
            <button type="button" disabled=${cursors.length === 0} onClick=${() => setCursors(cursors.slice(0, -1))}>Newer entries</button>
            <button type="button" disabled=${a.next === null} onClick=${() => {
              // the entries shown are this page's until the next page arrives: a second click adds nothing
              if (cursors.at(-1) !== a.next) setCursors([...cursors, a.next]);
            }}>Older entries</button>
          </nav>`}<//></section>`
        : html`<p>Reading the entries needs the admin role; anyone may verify the chain.</p>`
    }`;
}

function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [why, setWhy] = useState<string | undefined>();
  const route = useRoute();
  useEffect(() => {
    whoAmI().then(setMe, (e: Error) => {
      setWhy(e instanceof ApiError ? e.message : 'the server could not be reached');
      setMe(null);
    });
  }, []);
  useEffect(() => {
    if (!me) return;
    return connect((reason) => {
      setWhy(`Signed out: ${reason}.`);
      setMe(null);
    });
  }, [me?.tokenId, me?.expiresAt]);
  if (me === undefined) return html`<p aria-busy="true">Loading…</p>`;
  if (me === null)
    return html`<${SignIn} why=${why} onIn=${(m: Me) => {
      setWhy(undefined);
      setMe(m);
    }} />`;
  return html`<${Shell} me=${me} route=${route} onOut=${() => {
    setWhy('Signed out.');
    setMe(null);
  }} />`;
}

const root = document.getElementById('app');
if (root) render(html`<${App} />`, root);
