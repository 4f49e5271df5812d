/**
 * The summary table of a sweep: for each group of cells (equal labels on every axis but the seed axis) and each
 * final metric, n (finite values over the group's finished cells), the mean, the sample sd and the 95% confidence
 * interval m +- t_{0.975, n-1} sd / sqrt(n) (lib/sweep/stats.ts). Cells not finished, and metrics stored as null
 * (non-finite), are left out of n.
 *
 * The grouping is done by danfojs-node (architecture.md "Stack"), the statistics by simple-statistics. The CSV is
 * written by `toCsv` below, not danfojs' toCSV, which does not quote fields (labels of object-valued axes hold
 * commas and quotes). CSV layout, one row per (group, metric), groups in expansion order, metrics sorted:
 *   <axis 1>,...,<axis k>,metric,n,mean,sd,ci95_low,ci95_high       (NaN written as an empty field)
 * danfojs-node takes about 3 s to load (mathjs, xlsx): it is loaded on first use only.
 */
import { formatNumber, formatTable } from '../util/table';
import { meanCI, type MeanCI } from './stats';
import type { Cell } from './spec';
import type { CellResult } from './store';

export interface SummaryRow extends MeanCI {
  /** Non-seed axis -> label. */
  group: Record<string, string>;
  metric: string;
}

export interface SweepSummary {
  /** The grouping axes (every axis but the seed axis), in spec order. */
  axes: string[];
  seedAxis: string;
  /** Every metric found, sorted. */
  metrics: string[];
  /** Groups in expansion order with their cell counts. */
  groups: { group: Record<string, string>; cells: number; done: number }[];
  rows: SummaryRow[];
}

/** Group the finished cells' metrics and compute mean / 95% CI / n per group and metric. */
export function summarise(cells: readonly Cell[], results: ReadonlyMap<string, CellResult>, seedAxis = 'seed'): SweepSummary {
  const axes = cells.length ? Object.keys(cells[0].values).filter((a) => a !== seedAxis) : [];
  const groupIndex = new Map<string, number>();
  const groups: SweepSummary['groups'] = [];
  const long: { group: number; metric: string; value: number }[] = [];
  const metricSet = new Set<string>();
  for (const cell of [...cells].sort((a, b) => a.index - b.index)) {
    const group = Object.fromEntries(axes.map((a) => [a, cell.values[a]]));
    const id = JSON.stringify(axes.map((a) => cell.values[a]));
    if (!groupIndex.has(id)) {
      groupIndex.set(id, groups.length);
      groups.push({ group, cells: 0, done: 0 });
    }
    const gi = groupIndex.get(id)!;
    groups[gi].cells++;
    const r = results.get(cell.key);
    if (!r) continue;
    groups[gi].done++;
    for (const [metric, value] of Object.entries(r.metrics)) {
      metricSet.add(metric);
      if (typeof value === 'number' && Number.isFinite(value)) long.push({ group: gi, metric, value });
    }
  }
  const metrics = [...metricSet].sort();
  const values = new Map<string, number[]>(); // `${group}\u0000${metric}` -> values
  if (long.length > 0) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const dfd = require('danfojs-node') as typeof import('danfojs-node');
    const grouped = new dfd.DataFrame(long).groupby(['group', 'metric']);
    const keyToValue = (grouped as unknown as { keyToValue: Record<string, [number, string]> }).keyToValue;
    for (const [g, m] of Object.values(keyToValue)) {
      const column = grouped.getGroup([g, m] as never).column('value').values as number[];
      values.set(`${g}\u0000${m}`, column.map(Number));
    }
  }
  const rows: SummaryRow[] = [];
  groups.forEach((g, gi) => {
    for (const metric of metrics) rows.push({ group: g.group, metric, ...meanCI(values.get(`${gi}\u0000${metric}`) ?? []) });
  });
  return { axes, seedAxis, metrics, groups, rows };
}

function csvField(v: string | number): string {
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v;
  return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180 CSV of the summary (layout in the file header). */
export function toCsv(summary: SweepSummary): string {
  const reserved = ['metric', 'n', 'mean', 'sd', 'ci95_low', 'ci95_high'];
  const axisCols = summary.axes.map((a) => (reserved.includes(a) ? `axis:${a}` : a));
  const lines = [[...axisCols, ...reserved].map(csvField).join(',')];
  for (const r of summary.rows) {
    lines.push([...summary.axes.map((a) => r.group[a]), r.metric, r.n, r.mean, r.sd, r.low, r.high].map(csvField).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * The printed table: one row per group, one column per shown metric as `mean ± half-width (n)`.
 * Shown metrics: `prefer` (those present) else the first `max` metrics outside time/.
 */
export function formatSummary(summary: SweepSummary, prefer: readonly string[] = [], max = 5): string {
  const present = prefer.filter((m) => summary.metrics.includes(m));
  const shown = present.length ? present : summary.metrics.filter((m) => !m.startsWith('time/')).slice(0, max);
  const cell = (r: SummaryRow | undefined) =>
    !r || r.n === 0 ? '-' : r.n < 2 ? `${formatNumber(r.mean)} (n=1)` : `${formatNumber(r.mean)} ± ${formatNumber(r.halfWidth)} (${r.n})`;
  const rows = summary.groups.map((g, gi) => [
    ...summary.axes.map((a) => g.group[a]),
    `${g.done}/${g.cells}`,
    ...shown.map((m) => cell(summary.rows[gi * summary.metrics.length + summary.metrics.indexOf(m)])),
  ]);
  const table = formatTable([...summary.axes, 'done', ...shown.map((m) => `${m} (95% CI, n)`)], rows);
  const hidden = summary.metrics.length - shown.length;
  return hidden > 0 ? `${table}\n(${hidden} more metric(s) in summary.csv)` : table;
}
