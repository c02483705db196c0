/**
 * The dashboard's charts (issue 17 §1), drawn with uPlot: a monitor's latency per vantage point, and a service's
 * request rate against what is expected with a drop shaded. This module is a chunk of its own (scripts/build-web.mjs
 * splits it): only the pages that draw a chart load it, so the overview's first load does not carry uPlot. Colours
 * come from the page's CSS variables, so the charts follow the light or dark theme.
 */
import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { Json } from './api.js';

const PALETTE = ['--link', '--degraded', '--up', '--down', '--muted'];

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

function useChart(make: (el: HTMLElement, width: number) => uPlot, deps: unknown[]) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const chart = make(el, Math.max(320, el.clientWidth || 800));
    const resize = () => chart.setSize({ width: Math.max(320, el.clientWidth || 800), height: 260 });
    addEventListener('resize', resize);
    return () => {
      removeEventListener('resize', resize);
      chart.destroy();
    };
  }, deps);
  return ref;
}

const axes = (y: string): uPlot.Axis[] => {
  const stroke = cssVar('--fg');
  const grid = { stroke: cssVar('--line'), width: 1 };
  return [
    { stroke, grid, ticks: grid },
    { stroke, grid, ticks: grid, label: y, size: 60 },
  ];
};

/** Probe latency (ms) per vantage point over time, from the monitor's raw results; a failed probe is a gap. */
export function LatencyChart({ results, name }: { results: Json[]; name: string }) {
  const vantages = [...new Set(results.map((r) => String(r.vantage)))].sort();
  const sorted = [...results].sort((a, b) => a.at - b.at);
  const xs = sorted.map((r) => r.at / 1000);
  const series = vantages.map((v) => sorted.map((r) => (r.vantage === v && r.ok ? r.timings.totalMs : null)));
  const ref = useChart(
    (el, width) =>
      new uPlot(
        {
          width,
          height: 260,
          title: `Latency of ${name} per vantage point`,
          scales: { x: { time: true } },
          axes: axes('ms'),
          series: [
            {},
            ...vantages.map((v, i) => ({
              label: v,
              stroke: cssVar(PALETTE[i % PALETTE.length] as string),
              width: 2,
              spanGaps: false,
              points: { show: true, size: 4 },
              value: (_u: uPlot, x: number | null) => (x === null ? '—' : `${x.toFixed(1)} ms`),
            })),
          ],
        },
        [xs, ...series] as uPlot.AlignedData,
        el,
      ),
    [JSON.stringify(xs), JSON.stringify(series)],
  );
  return html`<figure class="chart">
    <div ref=${ref} role="img" aria-label=${`Latency of ${name} per vantage point: ${vantages
      .map((v, i) => {
        const last = [...(series[i] ?? [])].reverse().find((x) => x !== null);
        return `${v} last ${last === undefined || last === null ? 'failed' : `${last.toFixed(1)} ms`}`;
      })
      .join('; ')}`}></div>
    <figcaption class="muted">The last ${results.length} probes; a gap is a failed probe.</figcaption>
  </figure>`;
}

/**
 * A service's request rate (req/s) with what is expected now as a dashed line, and the drop (from when it began)
 * shaded.
 */
export function TrafficChart({
  service,
  points,
  expected,
  dropSince,
}: {
  service: string;
  points: Json[];
  expected: number | null;
  dropSince: string | null;
}) {
  const xs = points.map((p) => Date.parse(p.t) / 1000);
  const rate = points.map((p) => p.rate);
  const exp = points.map(() => expected);
  const since = dropSince ? Date.parse(dropSince) / 1000 : null;
  const ref = useChart(
    (el, width) =>
      new uPlot(
        {
          width,
          height: 260,
          title: `Requests per second to ${service}`,
          scales: { x: { time: true } },
          axes: axes('req/s'),
          series: [
            {},
            { label: 'rate', stroke: cssVar('--link'), width: 2 },
            { label: 'expected now', stroke: cssVar('--muted'), width: 1, dash: [6, 4] },
          ],
          hooks: {
            // The drop, from when it began to now, shaded behind the lines.
            drawClear: [
              (u: uPlot) => {
                if (since === null) return;
                const left = Math.max(u.bbox.left, u.valToPos(since, 'x', true));
                const right = u.bbox.left + u.bbox.width;
                if (left >= right) return;
                u.ctx.save();
                u.ctx.globalAlpha = 0.18;
                u.ctx.fillStyle = cssVar('--down');
                u.ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
                u.ctx.restore();
              },
            ],
          },
        },
        [xs, rate, exp] as uPlot.AlignedData,
        el,
      ),
    [JSON.stringify(xs), JSON.stringify(rate), expected, since],
  );
  const last = [...rate].reverse().find((x) => x !== null);
  return html`<figure class="chart">
    <div ref=${ref} role="img" aria-label=${`Requests per second to ${service}: now ${last ?? 'no data'}, expected ${expected ?? 'unknown'}${dropSince ? `, a drop since ${new Date(dropSince).toLocaleString()}` : ''}`}></div>
    <figcaption class="muted">${dropSince ? html`<span class="problem">Drop since ${new Date(dropSince).toLocaleString()} (shaded).</span> ` : null}The dashed line is the rate expected now.</figcaption>
  </figure>`;
}
