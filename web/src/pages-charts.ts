/**
 * The pages with charts: a monitor (its state per vantage point, latency per vantage point, the last hour by minute,
 * recent events) and traffic (each measured service's request rate against what is expected). The chart module is
 * imported on demand (a separate chunk), so only these pages load uPlot.
 */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import type { Json } from './api.js';
import { Loading, Problem, State, useData, when } from './ui.js';

type Charts = typeof import('./charts.js');

function useCharts(): { charts: Charts | undefined; error: string | undefined } {
  const [charts, setCharts] = useState<Charts | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    import('./charts.js').then(setCharts, (e: Error) => setError(`the charts could not be loaded: ${e.message}`));
  }, []);
  return { charts, error };
}

export function MonitorPage({ name }: { name: string }) {
  const d = useData(`/monitors/${encodeURIComponent(name)}?results=300`, ['monitors']);
  const { charts, error } = useCharts();
  return html`<p><a href="#/monitors">← Monitors</a></p>
    <${Loading} d=${d}>${(m: Json) => html`<h1>Monitor ${m.name} <${State} s=${m.state} /></h1>
      <dl class="facts">
        <dt>Check</dt><dd>${m.check}</dd>
        <dt>Since</dt><dd>${when(m.since)}</dd>
        ${m.service ? html`<dt>Service</dt><dd>${m.service}</dd>` : null}
        <dt>Why</dt><dd>${m.reason ?? '—'}</dd>
        <dt>Vantage points</dt><dd>${Object.entries(m.vantages ?? {}).map(
          ([v, s]: [string, Json]) =>
            html`<span class="vantage">${v}: <${State} s=${s.state} />${s.ms !== undefined ? ` ${s.ms} ms` : ''}</span> `,
        )}</dd>
      </dl>
      <section aria-labelledby="lat-h">
        <h2 id="lat-h">${m.results.length === 0 && m.lastHour.length > 0 ? 'Latency by minute' : 'Latency per vantage point'}</h2>
        <${Problem} text=${error} />
        ${
          m.results.length === 0
            ? m.lastHour.length === 0
              ? html`<p>No results yet: neither raw results (kept around state changes) nor minute rollups.</p>`
              : charts
                ? html`<${charts.MinuteChart} minutes=${m.lastHour} name=${m.name} />`
                : html`<p aria-busy="true">Loading the chart…</p>`
            : charts
              ? html`<${charts.LatencyChart} results=${m.results} name=${m.name} />`
              : html`<p aria-busy="true">Loading the chart…</p>`
        }
      </section>
      <section aria-labelledby="hour-h">
        <h2 id="hour-h">The last hour, by minute</h2>
        ${
          m.lastHour.length === 0
            ? html`<p>No minute rollups yet.</p>`
            : html`<table><caption class="sr">Probes per minute</caption>
              <thead><tr><th scope="col">Minute</th><th scope="col">Probes</th><th scope="col">Failed</th><th scope="col">p50 ms</th><th scope="col">p95 ms</th><th scope="col">max ms</th></tr></thead>
              <tbody>${[...m.lastHour]
                .reverse()
                .slice(0, 15)
                .map(
                  (r: Json) =>
                    html`<tr><th scope="row">${when(r.at)}</th><td>${r.count}</td><td>${r.failures}</td><td>${r.p50Ms}</td><td>${r.p95Ms}</td><td>${r.maxMs}</td></tr>`,
                )}</tbody></table>`
        }
      </section>
      <section aria-labelledby="ev-h">
        <h2 id="ev-h">Events</h2>
        ${
          m.events.length === 0
            ? html`<p>No events.</p>`
            : html`<ol class="timeline">${m.events.map(
                (e: Json) =>
                  html`<li><time datetime=${e.at}>${when(e.at)}</time> <span class="tag">${e.kind}</span> ${eventText(e.data)}</li>`,
              )}</ol>`
        }
      </section>`}<//>`;
}

/** A monitoring event's data in a few words: `server: UP → DOWN (connect ECONNREFUSED)`. */
function eventText(d: Json): string {
  if (!d || typeof d !== 'object') return '';
  const move = d.from !== undefined || d.to !== undefined ? `${d.from ?? '?'} → ${d.to ?? '?'}` : '';
  const why = d.reason ?? d.error ?? d.diagnosis?.summary;
  return `${d.vantage ? `${d.vantage}: ` : ''}${move}${why ? ` (${typeof why === 'string' ? why : JSON.stringify(why)})` : ''}`;
}

const WINDOWS: readonly [string, string, number][] = [
  ['1 hour', '10s', 3600],
  ['6 hours', '1m', 6 * 3600],
  ['48 hours', '1m', 48 * 3600],
  ['30 days', '1h', 30 * 86_400],
];

export function Traffic() {
  const d = useData('/traffic', ['traffic']);
  const [win, setWin] = useState(0);
  const { charts, error } = useCharts();
  return html`<h1>Traffic</h1>
    <div class="filters">
      <label for="traffic-window">Window</label>
      <select id="traffic-window" value=${String(win)} onChange=${(e: Event) => setWin(Number((e.target as HTMLSelectElement).value))}>
        ${WINDOWS.map(([label], i) => html`<option value=${String(i)}>${label}</option>`)}
      </select>
    </div>
    <${Problem} text=${error} />
    <${Loading} d=${d}>${(t: Json) => {
      const services = t.traffic.filter((x: Json) => x.host === undefined);
      return services.length === 0
        ? html`<p>No service measures its traffic (give a service a traffic: map in the config).</p>`
        : services.map(
            (s: Json) =>
              html`<${ServiceTraffic} now=${s} win=${WINDOWS[win] as [string, string, number]} charts=${charts} />`,
          );
    }}<//>`;
}

function ServiceTraffic({
  now,
  win,
  charts,
}: {
  now: Json;
  win: [string, string, number];
  charts: Charts | undefined;
}) {
  const d = useData(`/traffic/${encodeURIComponent(now.service)}?resolution=${win[1]}&since=${win[2]}`, ['traffic']);
  const id = `traffic-${now.service.replace(/[^A-Za-z0-9_-]/g, '-')}`;
  return html`<section aria-labelledby=${id}>
    <h2 id=${id}>${now.service} <span class=${`state state-${now.state === 'drop' ? 'down' : now.state === 'normal' ? 'up' : 'unknown'}`}>${now.state}</span></h2>
    <p>Now ${now.rate ?? '—'} req/s; expected ${now.expected ?? 'not known yet'}${now.drop ? html`; <strong>${now.drop.description}</strong>` : null}</p>
    <${Loading} d=${d}>${(r: Json) =>
      charts
        ? html`<${charts.TrafficChart} service=${now.service} points=${r.points} expected=${now.expected} dropSince=${now.drop?.since ?? null} />`
        : html`<p aria-busy="true">Loading the chart…</p>`}<//>
  </section>`;
}
