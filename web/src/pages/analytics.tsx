import { useState } from 'preact/hooks';
import { hay, type Outputs } from '../api.js';
import { ErrorBox, Loading, Page, useLoad } from '../common.js';

type Row = Outputs['plugins']['analytics'][number];

const RANGES = { '24h': 24, '7d': 24 * 7, '30d': 24 * 30 } as const;

/** Calls (bars) and errors (red bars) per time bucket, with p50 and p95 latency as lines; plain SVG. */
function Chart({ rows, label }: { rows: Row[]; label: string }) {
  const w = 720;
  const h = 180;
  const pad = 28;
  const max = Math.max(1, ...rows.map((r) => r.calls));
  const maxLat = Math.max(1, ...rows.map((r) => Math.max(r.latencyMs.p50 ?? 0, r.latencyMs.p95 ?? 0)));
  const bw = rows.length > 0 ? (w - 2 * pad) / rows.length : 0;
  const y = (v: number) => h - pad - (v / max) * (h - 2 * pad);
  const yl = (v: number) => h - pad - (v / maxLat) * (h - 2 * pad);
  const line = (pick: (r: Row) => number | null) =>
    rows
      .map((r, i) => {
        const v = pick(r);
        return v === null ? null : `${pad + i * bw + bw / 2},${yl(v)}`;
      })
      .filter((p): p is string => p !== null)
      .join(' ');
  const points = line((r) => r.latencyMs.p50);
  const points95 = line((r) => r.latencyMs.p95);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${w} ${h}`} role="img" aria-label={label}>
        <line x1={pad} y1={h - pad} x2={w - pad} y2={h - pad} class="axis" />
        <text x={pad} y={pad - 8} class="axis-label">
          max {max} calls · latency max {Math.round(maxLat)} ms
        </text>
        {rows.map((r, i) => (
          <g key={r.key}>
            <rect
              class="bar-calls"
              x={pad + i * bw + 1}
              y={y(r.calls)}
              width={Math.max(1, bw - 2)}
              height={h - pad - y(r.calls)}
            >
              <title>
                {r.key}: {r.calls} calls, {r.errors.total} errors
              </title>
            </rect>
            <rect
              class="bar-errors"
              x={pad + i * bw + 1}
              y={y(r.errors.total)}
              width={Math.max(1, bw - 2)}
              height={h - pad - y(r.errors.total)}
            />
          </g>
        ))}
        {points && <polyline class="line-p50" points={points} fill="none" />}
        {points95 && <polyline class="line-p95" points={points95} fill="none" />}
      </svg>
      <figcaption class="muted">
        Bars: calls (errors in red). Lines: p50 latency (solid), p95 (dashed). {rows.length} buckets.
      </figcaption>
    </figure>
  );
}

export function Analytics() {
  const [range, setRange] = useState<keyof typeof RANGES>('24h');
  const [pluginId, setPluginId] = useState('');
  const plugins = useLoad(() => hay.plugins.list.query());
  const load = (groupBy: 'hour' | 'day' | 'tool') => {
    const to = new Date(Date.now() + 60 * 60_000);
    const from = new Date(to.getTime() - RANGES[range] * 60 * 60_000);
    return hay.plugins.analytics.query({
      from: from.toISOString(),
      to: to.toISOString(),
      groupBy,
      ...(pluginId ? { pluginId } : {}),
    });
  };
  const series = useLoad(() => load(range === '24h' ? 'hour' : 'day'), [range, pluginId]);
  const byTool = useLoad(() => load('tool'), [range, pluginId]);
  return (
    <Page
      title="Analytics"
      actions={
        <button
          type="button"
          class="secondary"
          onClick={() => {
            series.reload();
            byTool.reload();
          }}
        >
          Refresh
        </button>
      }
    >
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="an-range">Time range</label>
          <select
            id="an-range"
            value={range}
            onChange={(e) => setRange(e.currentTarget.value as keyof typeof RANGES)}
          >
            <option value="24h">Last 24 hours</option>
            <option value="7d">Last 7 days</option>
            <option value="30d">Last 30 days</option>
          </select>
        </div>
        <div class="field">
          <label for="an-plugin">Plugin</label>
          <select id="an-plugin" value={pluginId} onChange={(e) => setPluginId(e.currentTarget.value)}>
            <option value="">All plugins</option>
            {(plugins.data ?? []).map((p) => (
              <option key={p.id} value={p.id}>
                {p.id}
              </option>
            ))}
          </select>
        </div>
      </form>
      <p class="muted">From the usage rollups in the database (flushed every few seconds).</p>
      <ErrorBox error={series.error ?? byTool.error} />
      <Loading when={series.loading && !series.data} />
      {series.data && <Chart rows={series.data} label="Calls and errors over time" />}
      <h2>Per plugin and tool</h2>
      {byTool.data && byTool.data.length === 0 && <p class="muted">No calls in this range.</p>}
      {byTool.data && byTool.data.length > 0 && (
        <table>
          <caption class="sr-only">Calls per plugin and tool</caption>
          <thead>
            <tr>
              <th scope="col">Plugin</th>
              <th scope="col">Tool</th>
              <th scope="col">Calls</th>
              <th scope="col">Errors</th>
              <th scope="col">Error rate</th>
              <th scope="col">p50</th>
              <th scope="col">p90</th>
              <th scope="col">p95</th>
              <th scope="col">p99</th>
            </tr>
          </thead>
          <tbody>
            {byTool.data.map((r) => (
              <tr key={`${r.pluginId ?? ''}/${r.key}`} data-tool={`${r.pluginId ?? ''}/${r.key}`}>
                <td>{r.pluginId ?? '—'}</td>
                <td class="mono">{r.key}</td>
                <td>{r.calls}</td>
                <td>{r.errors.total}</td>
                <td>{(r.errorRate * 100).toFixed(1)}%</td>
                <td>{r.latencyMs.p50 === null ? '—' : `${Math.round(r.latencyMs.p50)} ms`}</td>
                <td>{r.latencyMs.p90 === null ? '—' : `${Math.round(r.latencyMs.p90)} ms`}</td>
                <td>{r.latencyMs.p95 === null ? '—' : `${Math.round(r.latencyMs.p95)} ms`}</td>
                <td>{r.latencyMs.p99 === null ? '—' : `${Math.round(r.latencyMs.p99)} ms`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}
