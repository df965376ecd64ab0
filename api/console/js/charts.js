// Time-series charts on the vendored uPlot (vendor/uPlot.iife.min.js, a global `uPlot`):
// lines or bars per series, several y scales, vertical markers, and a width that follows
// the container. setData() updates in place so a poll does not rebuild the chart.

import { h } from './dom.js';
import { locale } from './i18n.js';

const { uPlot } = window;

/** Vertical lines at given times (seconds), labelled at the top of the plot. */
function markersPlugin(state) {
  return {
    hooks: {
      draw: [(u) => {
        const { ctx } = u;
        const { left, top, width, height } = u.bbox;
        state.markers.forEach((m, i) => {
          const x = Math.round(u.valToPos(m.t, 'x', true));
          if (x < left || x > left + width) return;
          ctx.save();
          ctx.strokeStyle = m.color;
          ctx.fillStyle = m.color;
          ctx.lineWidth = 2 * devicePixelRatio;
          ctx.setLineDash(m.dash ? m.dash.map((d) => d * devicePixelRatio) : []);
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          if (m.label) {
            ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
            const textWidth = ctx.measureText(m.label).width;
            const right = x + 4 * devicePixelRatio + textWidth > left + width;
            ctx.textAlign = right ? 'right' : 'left';
            // One line per marker, so labels of close markers do not overwrite each other.
            ctx.fillText(m.label, x + (right ? -4 : 4) * devicePixelRatio, top + (12 + 13 * i) * devicePixelRatio);
          }
          ctx.restore();
        });
      }],
    },
  };
}

/** Axis labels: the date at midnight (and at the first tick), the time of day otherwise. */
function timeLabels(u, splits) {
  const date = new Intl.DateTimeFormat(locale(), { month: 'numeric', day: 'numeric' });
  const time = new Intl.DateTimeFormat(locale(), { hour: '2-digit', minute: '2-digit', hour12: false });
  const span = (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0);
  return splits.map((s, i) => {
    const d = new Date(s * 1000);
    const midnight = d.getHours() === 0 && d.getMinutes() === 0;
    if (midnight || (i === 0 && span > 86400)) return date.format(d);
    return time.format(d);
  });
}

/**
 * A chart in `container`. `series`: [{label, color, scale, bars, dash, fill, points}]; `axes`:
 * [{scale, label, side, range}] (side 1 puts the axis on the right). `title` is drawn above
 * the plot; `label` (default: the title) names it for screen readers. Returns
 * {setData, destroy}.
 */
export function timeChart(container, { series, axes, height = 200, title, label, testid, timeLabel = 'Time' }) {
  const state = { markers: [], xRange: null };
  const host = h('div', { class: 'chart', testid, role: 'img', 'aria-label': label ?? title });
  container.append(host);
  const scales = { x: { time: true, range: (u, min, max) => state.xRange ?? [min, max] } };
  for (const a of axes) {
    scales[a.scale] = a.range ? { range: a.range } : { auto: true };
  }
  const opts = {
    width: Math.max(300, container.clientWidth || 600),
    height,
    title,
    scales,
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    plugins: [markersPlugin(state)],
    series: [
      { label: timeLabel, value: (u, v) => (v == null ? '—' : new Date(v * 1000).toLocaleString(locale())) },
      ...series.map((s) => ({
        label: s.label,
        scale: s.scale,
        stroke: s.color,
        width: s.bars ? 1 : 2,
        dash: s.dash,
        fill: s.fill ?? (s.bars ? `${s.color}55` : undefined),
        paths: s.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined,
        points: { show: Boolean(s.points), size: 6 },
        spanGaps: false,
        value: (u, v) => (v == null ? '—' : (s.format ? s.format(v) : String(Math.round(v * 10) / 10))),
      })),
    ],
    axes: [
      { values: timeLabels, stroke: '#555', grid: { stroke: '#0001' } },
      ...axes.map((a) => ({
        scale: a.scale, label: a.label, side: a.side ?? 3, stroke: '#555',
        grid: { show: a.side !== 1, stroke: '#0001' }, size: 56,
      })),
    ],
  };
  const plot = new uPlot(opts, [[], ...series.map(() => [])], host);
  const resize = new ResizeObserver(() => {
    const width = Math.max(300, container.clientWidth);
    if (Math.abs(width - plot.width) > 2) plot.setSize({ width, height });
  });
  resize.observe(container);
  return {
    /** xs in seconds; ys one array per series (null: no value); markers [{t, label, color}]. */
    setData(xs, ys, { markers = [], xRange = null } = {}) {
      state.markers = markers;
      state.xRange = xRange;
      host.dataset.points = String(xs.length);
      plot.setData([xs, ...ys]);
    },
    destroy() {
      resize.disconnect();
      plot.destroy();
      host.remove();
    },
  };
}

export function seconds(iso) {
  return new Date(iso).getTime() / 1000;
}
