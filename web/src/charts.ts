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
 * A service's request rate (req/s) against its expected band per point (GET /traffic/{service}: each point's
 * expected rate, and the band the detector judges it against: below `lower` a point counts as low), points below the
 * band marked, and the drop (from when it began) shaded. A server that answers no band per point gets the rate
 * expected now as a dashed line, as before.
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
  const rate: (number | null)[] = points.map((p) => p.rate);
  const banded = points.some((p) => typeof p.lower === 'number');
  const lower: (number | null)[] = points.map((p) => p.lower ?? null);
  const upper: (number | null)[] = points.map((p) => p.upper ?? null);
  const exp: (number | null)[] = banded ? points.map((p) => p.expected ?? null) : points.map(() => expected);
  const below: (number | null)[] = points.map((p) =>
    p.rate !== null && typeof p.lower === 'number' && p.rate < p.lower ? p.rate : null,
  );
  const lows = below.filter((x) => x !== null).length;
  const since = dropSince ? Date.parse(dropSince) / 1000 : null;
  const ref = useChart(
    (el, width) => {
      const series: uPlot.Series[] = [
        {},
        { label: 'rate', stroke: cssVar('--link'), width: 2 },
        { label: banded ? 'expected' : 'expected now', stroke: cssVar('--muted'), width: 1, dash: [6, 4] },
      ];
      const data: (number | null)[][] = [xs, rate, exp];
      if (banded) {
        series.push(
          { label: 'band low', stroke: cssVar('--line'), width: 1 },
          { label: 'band high', stroke: cssVar('--line'), width: 1 },
          {
            label: 'below the band',
            stroke: cssVar('--down'),
            width: 0,
            points: { show: true, size: 6, stroke: cssVar('--down'), fill: cssVar('--down') },
          },
        );
        data.push(lower, upper, below);
      }
      return new uPlot(
        {
          width,
          height: 260,
          title: `Requests per second to ${service}`,
          scales: { x: { time: true } },
          axes: axes('req/s'),
          series,
          // The expected band: filled between its high (series 4) and low (series 3) edges.
          ...(banded ? { bands: [{ series: [4, 3] as [number, number], fill: cssVar('--band') }] } : {}),
          hooks: {
            // The drop, from when it began to now, shaded behind the lines.
            drawClear: [(u: uPlot) => shade(u, since === null ? [] : [[since, Number.POSITIVE_INFINITY]])],
          },
        },
        data as uPlot.AlignedData,
        el,
      );
    },
    [JSON.stringify(xs), JSON.stringify(rate), JSON.stringify(lower), JSON.stringify(upper), expected, since],
  );
  const lastAt = [...rate.keys()].reverse().find((i) => rate[i] !== null);
  const last = lastAt === undefined ? null : rate[lastAt];
  const lastBand = lastAt === undefined ? undefined : points[lastAt];
  const expectedText = banded
    ? lastBand && typeof lastBand.lower === 'number'
      ? `expected ${lastBand.expected} (band ${lastBand.lower} to ${lastBand.upper})`
      : 'no expected band at the last point'
    : `expected ${expected ?? 'unknown'}`;
  return html`<figure class="chart">
    <div ref=${ref} role="img" aria-label=${`Requests per second to ${service}: now ${last ?? 'no data'}, ${expectedText}${banded ? `; ${lows} of ${points.length} points below the band` : ''}${dropSince ? `; a drop since ${new Date(dropSince).toLocaleString()}` : ''}`}></div>
    <figcaption class="muted">${dropSince ? html`<span class="problem">Drop since ${new Date(dropSince).toLocaleString()} (shaded).</span> ` : null}${
      banded
        ? `The band is what the detector expects of each point: below it a point counts as low (marked), and low points that last make a drop.`
        : 'The dashed line is the rate expected now.'
    }</figcaption>
  </figure>`;
}

/** Shades the x ranges [from, to) (epoch seconds) behind a chart's lines, in the colour of `--down`. */
function shade(u: uPlot, ranges: readonly (readonly [number, number])[]): void {
  if (ranges.length === 0) return;
  u.ctx.save();
  u.ctx.globalAlpha = 0.18;
  u.ctx.fillStyle = cssVar('--down');
  for (const [from, to] of ranges) {
    const left = Math.max(u.bbox.left, u.valToPos(from, 'x', true));
    const right = Math.min(u.bbox.left + u.bbox.width, u.valToPos(to, 'x', true));
    if (right > left) u.ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
  }
  u.ctx.restore();
}

/**
 * A monitor's latency by minute from its rollups (all vantage points together: the rollups add them up), for when
 * no raw results were kept: p50, p95 and the slowest probe of each minute; minutes with a failed probe shaded.
 */
export function MinuteChart({ minutes, name }: { minutes: Json[]; name: string }) {
  const sorted = [...minutes].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const xs = sorted.map((m) => Date.parse(m.at) / 1000);
  const p50 = sorted.map((m) => (m.count > 0 ? m.p50Ms : null));
  const p95 = sorted.map((m) => (m.count > 0 ? m.p95Ms : null));
  const max = sorted.map((m) => (m.count > 0 ? m.maxMs : null));
  const failing = sorted
    .filter((m) => m.failures > 0)
    .map((m) => [Date.parse(m.at) / 1000, Date.parse(m.at) / 1000 + 60] as const);
  const ref = useChart(
    (el, width) =>
      new uPlot(
        {
          width,
          height: 260,
          title: `Latency of ${name} by minute`,
          scales: { x: { time: true } },
          axes: axes('ms'),
          series: [
            {},
            { label: 'p50', stroke: cssVar('--link'), width: 2 },
            { label: 'p95', stroke: cssVar('--degraded'), width: 2 },
            { label: 'slowest', stroke: cssVar('--muted'), width: 1, dash: [4, 4] },
          ],
          hooks: { drawClear: [(u: uPlot) => shade(u, failing)] },
        },
        [xs, p50, p95, max] as uPlot.AlignedData,
        el,
      ),
    [JSON.stringify(xs), JSON.stringify(p95), JSON.stringify(failing)],
  );
  const last = sorted.at(-1);
  const probes = sorted.reduce((n, m) => n + m.count, 0);
  return html`<figure class="chart">
    <div ref=${ref} role="img" aria-label=${`Latency of ${name} by minute over ${sorted.length} minutes: ${last ? `last minute p50 ${last.p50Ms} ms, p95 ${last.p95Ms} ms` : 'no data'}; ${failing.length} minutes with a failed probe`}></div>
    <figcaption class="muted">From the minute rollups (${probes} probes, every vantage point together): no raw results were kept for this monitor (the server keeps them around state changes).${failing.length > 0 ? html` <span class="problem">Minutes with a failed probe are shaded.</span>` : null}</figcaption>
  </figure>`;
}
