/**
 * AOPD Fig. 2a (claim C1): the distribution of the OPD advantage on student rollouts.
 *
 *   A_t = log pT(y_t) - log pS(y_t),  y_t ~ pS      (AOPD Eq. 1; methods.md section 1)
 *
 * Histogram on a symmetric-log axis t(A) = sign(A) log10(1 + |A| / c) (lib/analysis/histogram.ts; plotly has no
 * symlog axis, so bars are placed on t and the ticks are labelled in A), with the zero band |A| < eps shaded and
 * its share, the skewness and the q01 / q05 / q95 / q99 quantiles annotated. The claim reads off the figure as:
 * a tall spike at 0, and a left tail (A < 0: the teacher dislikes the sampled token) reaching further than the
 * right one. Numbers: `c1Numbers` (advantageStats, lib/analysis/advantages.ts).
 */
import { advantageStats, type AdvantageStats } from '../../analysis/advantages';
import { axisTransform } from '../../analysis/histogram';
import { baseLayout, COLORS, type PlotlyFigure } from '../theme';

export interface Fig2aInput {
  /** Per-token advantages on student rollouts (finite). */
  advantages: ArrayLike<number>;
  /** Half-width of the annotated zero band. Default 0.01. */
  eps?: number;
  /** c of the symlog axis. Default 0.01. */
  linthresh?: number;
  /** Histogram bins (equal width on the symlog axis). Default 60. */
  bins?: number;
}

const DEFAULTS = { eps: 0.01, linthresh: 0.01, bins: 60 };
const EPS_LIST = [1e-3, 1e-2, 1e-1];

function stats(input: Fig2aInput): { s: AdvantageStats; eps: number; c: number } {
  const eps = input.eps ?? DEFAULTS.eps;
  const c = input.linthresh ?? DEFAULTS.linthresh;
  if (!(eps > 0)) throw new Error(`fig2aAdvantageDistribution: eps must be > 0, got ${eps}`);
  if (!input.advantages || input.advantages.length < 4) throw new Error(`fig2aAdvantageDistribution: advantages needs at least 4 values, got ${input.advantages?.length ?? 0}`);
  const s = advantageStats(
    { advantages_N: Float64Array.from(input.advantages) },
    { eps: Array.from(new Set([...EPS_LIST, eps])).sort((a, b) => a - b), histogram: { scale: 'symlog', linthresh: c, bins: input.bins ?? DEFAULTS.bins } },
  );
  return { s, eps, c };
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toPrecision(3) : String(x);
}

/** Numbers C1 quotes (keys under c1/; NaN when undefined, e.g. an empty tail). */
export function c1Numbers(input: Fig2aInput): Record<string, number> {
  const { s, eps } = stats(input);
  const m = s.metrics;
  const key = (e: number) => Object.keys(m).find((k) => k.startsWith('adv/frac_abs_lt_') && Math.abs(Number(k.slice('adv/frac_abs_lt_'.length)) - e) <= 1e-12 * e);
  const out: Record<string, number> = {
    'c1/tokens': m['adv/count'],
    'c1/zero_band_eps': eps,
    'c1/zero_band_share': m[key(eps)!],
    'c1/zero_band_share_eps_0.1': m[key(0.1)!],
    'c1/zero_band_share_eps_0.001': m[key(0.001)!],
    'c1/frac_neg': m['adv/frac_neg'],
    'c1/frac_pos': m['adv/frac_pos'],
    'c1/mean': m['adv/mean'],
    'c1/skewness': m['adv/skewness'],
    'c1/excess_kurtosis': m['adv/excess_kurtosis'],
    'c1/q01': m['adv/q01'],
    'c1/q05': m['adv/q05'],
    'c1/q50': m['adv/q50'],
    'c1/q95': m['adv/q95'],
    'c1/q99': m['adv/q99'],
    'c1/tail_spread_ratio': m['adv/tail_spread_ratio'],
    'c1/hill_neg': m['adv/hill_neg'],
    'c1/hill_pos': m['adv/hill_pos'],
    'c1/hill_k': m['adv/hill_neg_k'],
  };
  return out;
}

/** The Fig. 2a plotly spec (file header). */
export function fig2aAdvantageDistribution(input: Fig2aInput): PlotlyFigure {
  const { s, eps, c } = stats(input);
  const h = s.histogram;
  const t = (x: number) => axisTransform(x, 'symlog', c);
  const B = h.counts.length;
  const centres = Array.from({ length: B }, (_, i) => (h.axisEdges[i] + h.axisEdges[i + 1]) / 2);
  const widths = Array.from({ length: B }, (_, i) => h.axisEdges[i + 1] - h.axisEdges[i]);
  const colour = centres.map((x) => (Math.abs(x) < t(eps) ? COLORS.zero : x < 0 ? COLORS.negative : COLORS.positive));
  const n = c1Numbers(input);
  const lo = h.axisEdges[0];
  const hi = h.axisEdges[B];
  // ticks at 0, +-c * 10^k inside the data range, labelled in A
  const tickA: number[] = [0];
  for (let k = 0; k <= 6; k++) {
    const a = c * Math.pow(10, k);
    if (t(a) <= Math.max(hi, t(c))) tickA.push(a);
    if (-t(a) >= Math.min(lo, -t(c))) tickA.unshift(-a);
  }
  const maxFrac = Math.max(...Array.from(h.frac));
  const quantiles: [string, number][] = [['q01', n['c1/q01']], ['q05', n['c1/q05']], ['q95', n['c1/q95']], ['q99', n['c1/q99']]];
  const shapes: Record<string, unknown>[] = [
    { type: 'rect', xref: 'x', yref: 'paper', x0: -t(eps), x1: t(eps), y0: 0, y1: 1, fillcolor: COLORS.zero, opacity: 0.15, line: { width: 0 }, layer: 'below' },
    ...quantiles.map(([, q]) => ({ type: 'line', xref: 'x', yref: 'paper', x0: t(q), x1: t(q), y0: 0, y1: 1, line: { color: COLORS.ink, width: 1, dash: 'dot' } })),
  ];
  const annotations: Record<string, unknown>[] = [
    ...quantiles.map(([name, q], i) => ({ x: t(q), y: 1 - 0.05 * (q < 0 ? i : 3 - i), xref: 'x', yref: 'paper', text: `${name} = ${fmt(q)}`, showarrow: false, font: { size: 11 }, xanchor: q < 0 ? 'left' : 'right', bgcolor: 'rgba(255,255,255,0.8)' })),
    {
      x: 0.99, y: 0.75, xref: 'paper', yref: 'paper', xanchor: 'right', align: 'right', showarrow: false, bgcolor: 'rgba(255,255,255,0.85)', font: { size: 12 },
      text: `|A| &lt; ${eps}: ${(100 * n['c1/zero_band_share']).toFixed(1)}% of ${n['c1/tokens']} tokens<br>skewness ${fmt(n['c1/skewness'])}<br>A &lt; 0: ${(100 * n['c1/frac_neg']).toFixed(1)}%, A &gt; 0: ${(100 * n['c1/frac_pos']).toFixed(1)}%`,
    },
  ];
  return {
    data: [
      {
        type: 'bar', name: 'share of tokens', x: centres, y: Array.from(h.frac), width: widths, marker: { color: colour, line: { width: 0 } },
        customdata: Array.from({ length: B }, (_, i) => [h.edges[i], h.edges[i + 1]]),
        hovertemplate: 'A in [%{customdata[0]:.3g}, %{customdata[1]:.3g}): %{y:.3%}<extra></extra>', showlegend: false,
      },
      // legend keys for the colour convention (no data of their own)
      { type: 'scatter', mode: 'markers', name: `zero band |A| < ${eps}`, x: [null], y: [null], marker: { color: COLORS.zero, symbol: 'square', size: 10 } },
      { type: 'scatter', mode: 'markers', name: 'A < 0 (teacher dislikes y)', x: [null], y: [null], marker: { color: COLORS.negative, symbol: 'square', size: 10 } },
      { type: 'scatter', mode: 'markers', name: 'A > 0 (teacher prefers y)', x: [null], y: [null], marker: { color: COLORS.positive, symbol: 'square', size: 10 } },
    ],
    layout: baseLayout({
      title: 'OPD advantage on student rollouts (AOPD Fig. 2a)',
      xTitle: `advantage A = log pT(y) - log pS(y), y ~ student (symmetric-log axis, linear for |A| < ${c})`,
      yTitle: 'share of tokens',
      extra: {
        xaxis: { tickmode: 'array', tickvals: tickA.map(t), ticktext: tickA.map((a) => (a === 0 ? '0' : String(Number(a.toPrecision(3))))), range: [lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)] },
        yaxis: { range: [0, maxFrac * 1.25], tickformat: '.0%' },
        bargap: 0,
        shapes,
        annotations,
        legend: { orientation: 'h', x: 0, y: -0.2, xanchor: 'left', yanchor: 'top' },
        margin: { l: 70, r: 20, t: 50, b: 110 },
        height: 500,
      },
    }),
  };
}
