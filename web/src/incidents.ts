/**
 * Incidents (issue 17 §1): the list with status and severity filters, and an incident's page: its timeline (read
 * again whenever the stream says incidents, alerts or monitors changed), acknowledge, status updates, notes, assign,
 * public status-page updates, the suspected change with "propose remediation" (shown when the server has the route),
 * and the postmortem rendered from Markdown (as text, never as HTML) and editable as a new version. Only what the
 * role may do is offered; the server checks again.
 */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { api, type Json, type Me, may } from './api.js';
import { markdown } from './markdown.js';
import { Action, Loading, Problem, State, useData, when } from './ui.js';

const STATUSES = ['investigating', 'identified', 'monitoring', 'resolved'];
const SEVERITIES = ['SEV1', 'SEV2', 'SEV3', 'SEV4'];

export function Incidents() {
  const [status, setStatus] = useState('open');
  const [severity, setSeverity] = useState('');
  const d = useData(`/incidents?limit=200${status ? `&status=${status}` : ''}`, ['incidents']);
  return html`<h1>Incidents</h1>
    <div class="filters">
      <label for="inc-status">Status</label>
      <select id="inc-status" value=${status} onChange=${(e: Event) => setStatus((e.target as HTMLSelectElement).value)}>
        <option value="open">open</option>
        <option value="">any</option>
        ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
      <label for="inc-severity">Severity</label>
      <select id="inc-severity" value=${severity} onChange=${(e: Event) => setSeverity((e.target as HTMLSelectElement).value)}>
        <option value="">any</option>
        ${SEVERITIES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
    </div>
    <${Loading} d=${d}>${(r: Json) => {
      const rows = r.incidents.filter((i: Json) => !severity || i.severity === severity);
      return rows.length === 0
        ? html`<p>No incidents${status ? ` (${status})` : ''}${severity ? ` at ${severity}` : ''}.</p>`
        : html`<table><caption class="sr">Incidents, newest first</caption>
          <thead><tr><th scope="col">Incident</th><th scope="col">Severity</th><th scope="col">Status</th><th scope="col">Services</th><th scope="col">Commander</th><th scope="col">Started</th></tr></thead>
          <tbody>${rows.map(
            (i: Json) => html`<tr>
              <th scope="row"><a href=${`#/incidents/${i.id}`}>${i.id}: ${i.title}</a></th>
              <td><span class=${`tag sev-${i.severity.toLowerCase()}`}>${i.severity}</span></td>
              <td><${State} s=${i.status} /></td>
              <td>${i.services.join(', ') || '—'}</td>
              <td>${i.commander ?? 'nobody'}</td>
              <td>${when(i.startedAt)}</td>
            </tr>`,
          )}</tbody></table>`;
    }}<//>`;
}

const minutes = (ms: number | null) =>
  ms === null ? '—' : ms < 60_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;

/** A labelled text box and the button that sends it; cleared when sent. */
function Say({
  id,
  label,
  button,
  send,
  rows,
}: {
  id: string;
  label: string;
  button: string;
  send: (text: string) => Promise<unknown>;
  rows?: number;
}) {
  const [text, setText] = useState('');
  return html`<div class="say">
    <label for=${id}>${label}</label>
    <textarea id=${id} rows=${rows ?? 2} value=${text} onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}></textarea>
    <${Action} label=${button} run=${async () => {
      await send(text);
      setText('');
    }} />
  </div>`;
}

export function IncidentPage({ id, me }: { id: number; me: Me }) {
  const d = useData(`/incidents/${id}`, ['incidents', 'alerts', 'monitors', 'changes', 'hosts']);
  const operator = may(me, 'operator');
  return html`<p><a href="#/incidents">← Incidents</a></p>
  <${Loading} d=${d}>${(v: Json) => {
    const i = v.incident;
    const post = (path: string, body?: unknown) => async () => {
      await api('POST', `/incidents/${id}/${path}`, body);
      d.reload();
    };
    return html`<h1>Incident ${i.id}: ${i.title} <${State} s=${i.status} /></h1>
    <dl class="facts">
      <dt>Severity</dt><dd><span class=${`tag sev-${i.severity.toLowerCase()}`}>${i.severity}</span></dd>
      <dt>Commander</dt><dd>${i.commander ?? 'nobody yet'}</dd>
      <dt>Services</dt><dd>${i.services.join(', ') || '—'}</dd>
      <dt>Hosts</dt><dd>${i.hosts.join(', ') || '—'}</dd>
      <dt>Started</dt><dd>${when(i.startedAt)}</dd>
      <dt>Acknowledged</dt><dd>${when(i.acknowledgedAt)}</dd>
      <dt>Resolved</dt><dd>${when(i.resolvedAt)}</dd>
      <dt>Detect / acknowledge / resolve</dt><dd>${minutes(i.response.mttdMs)} / ${minutes(i.response.mttaMs)} / ${minutes(i.response.mttrMs)}</dd>
    </dl>
    ${operator && i.status !== 'resolved' ? html`<${Respond} incident=${i} post=${post} />` : null}
    <${Suspects} id=${id} me=${me} />
    <section aria-labelledby="timeline-h">
      <h2 id="timeline-h">Timeline <span class="muted">(${v.timeZone})</span></h2>
      <ol class="timeline" aria-live="polite">${v.timeline.map(
        (e: Json) =>
          html`<li class=${e.keyMoment ? 'key' : ''}><time datetime=${e.at}>${e.local}</time> <span class="tag">${e.kind}</span> ${e.text}${e.starred ? html` <span class="tag" title="in the postmortem">★</span>` : null}</li>`,
      )}</ol>
    </section>
    <${Postmortem} id=${id} me=${me} />`;
  }}<//>`;
}

function Respond({ incident, post }: { incident: Json; post: (p: string, b?: unknown) => () => Promise<void> }) {
  const [status, setStatus] = useState(incident.status === 'investigating' ? 'identified' : incident.status);
  const [commander, setCommander] = useState('');
  return html`<section class="respond" aria-labelledby="respond-h">
    <h2 id="respond-h">Respond</h2>
    <div class="buttons">
      ${incident.acknowledgedAt ? null : html`<${Action} label="Acknowledge" kind="primary" run=${post('ack')} />`}
    </div>
    <div class="say">
      <label for="inc-new-status">New status</label>
      <select id="inc-new-status" value=${status} onChange=${(e: Event) => setStatus((e.target as HTMLSelectElement).value)}>
        ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
    </div>
    <${Say} id="inc-status-text" label="What was found or done" button="Post status update"
      send=${(text: string) => post('status', { status, ...(text.trim() ? { text } : {}) })()} />
    <${Say} id="inc-note" label="Note" button="Add note" send=${(text: string) => post('notes', { text })()} />
    <${Say} id="inc-public" label="Public update (shown on the status page as written)" button="Post public update"
      send=${(text: string) => post('public-updates', { text })()} />
    <div class="say">
      <label for="inc-commander">Commander</label>
      <input id="inc-commander" value=${commander} onInput=${(e: Event) => setCommander((e.target as HTMLInputElement).value)} />
      <${Action} label="Assign" run=${async () => {
        await post('assign', { commander })();
        setCommander('');
      }} />
    </div>
  </section>`;
}

/** The suspected change (GET …/suspects); nothing when this server does not have the route. */
function Suspects({ id, me }: { id: number; me: Me }) {
  const d = useData(`/incidents/${id}/suspects`, ['incidents', 'changes', 'hosts']);
  const [proposed, setProposed] = useState<Json | null>(null);
  if (d.notFound && d.data === undefined) return null;
  return html`<section aria-labelledby="suspects-h">
    <h2 id="suspects-h">Suspected cause</h2>
    <${Loading} d=${d}>${(s: Json) => html`<p>${s.text}</p>
      ${
        s.candidates?.length
          ? html`<ul class="list">${s.candidates.map(
              (c: Json) => html`<li>
                <strong>${c.kind === 'change' ? `change ${c.changeId ?? c.id}` : `drift ${c.id}`}</strong> on ${c.host}
                <span class="muted">${when(c.at)}${c.author ? ` by ${c.author}` : ''}</span>
                ${c.suspected ? html` <span class="tag">suspected</span>` : null}
                <div>${c.why}</div>
                ${c.rule ? html`<div>Rule: <code>${c.rule}</code></div>` : null}
                ${c.example ? html`<div>Example: <code>${c.example}</code></div>` : null}
                ${c.error ? html`<${Problem} text=${c.error} />` : null}
              </li>`,
            )}</ul>`
          : null
      }
      ${
        s.verdict === 'suspected' && may(me, 'operator')
          ? html`<div class="buttons"><${Action} label="Propose remediation" kind="danger" run=${async () =>
              setProposed(await api('POST', `/incidents/${id}/remediate`, {}))} /></div>`
          : null
      }
      ${
        proposed
          ? html`<p role="status">${(proposed.changes ?? []).map(
              (c: Json) => html`<a href=${`#/changes/${c.change?.id ?? c.id}`}>Change ${c.change?.id ?? c.id}</a> `,
            )} ${proposed.next ?? ''}</p>`
          : null
      }`}<//>
  </section>`;
}

function Postmortem({ id, me }: { id: number; me: Me }) {
  const d = useData(`/incidents/${id}/postmortem`, ['incidents']);
  const [draft, setDraft] = useState<{ text: string; version: number } | null>(null);
  const [err, setErr] = useState<string | undefined>();
  return html`<section aria-labelledby="pm-h">
    <h2 id="pm-h">Postmortem</h2>
    <${Loading} d=${d}>${(pm: Json) =>
      draft
        ? html`<form class="pm-edit" onSubmit=${async (e: Event) => {
            e.preventDefault();
            setErr(undefined);
            try {
              await api('PUT', `/incidents/${id}/postmortem`, { markdown: draft.text, version: draft.version });
              setDraft(null);
              d.reload();
            } catch (x) {
              setErr((x as Error).message);
            }
          }}>
            <label for="pm-text">Postmortem (Markdown), editing version ${draft.version}</label>
            <textarea id="pm-text" rows="20" value=${draft.text}
              onInput=${(e: Event) => setDraft({ ...draft, text: (e.target as HTMLTextAreaElement).value })}></textarea>
            <div class="buttons">
              <button type="submit" class="primary">Save as a new version</button>
              <button type="button" onClick=${() => setDraft(null)}>Cancel</button>
            </div>
            <${Problem} text=${err} />
          </form>`
        : html`<p class="muted">Version ${pm.version} of ${pm.versions}, by ${pm.author}, ${when(pm.createdAt)}</p>
          ${may(me, 'operator') ? html`<div class="buttons"><button type="button" onClick=${() => setDraft({ text: pm.markdown, version: pm.version })}>Edit the postmortem</button></div>` : null}
          <article class="postmortem">${markdown(pm.markdown)}</article>`}<//>
  </section>`;
}
