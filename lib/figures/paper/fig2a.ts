/**
 * AOPD Fig. 2a (claim C1): the distribution of the OPD advantage on student rollouts, over seeds.
 *
 *   A_t = log pT(y_t) - log pS(y_t),  y_t ~ pS      (AOPD Eq. 1; methods.md section 1)
 *
 * Histogram on a symmetric-log axis t(A) = sign(A) log10(1 + |A| / c) (lib/analysis/histogram.ts; plotly has no
 * symlog axis, so bars are placed on t and the ticks are labelled in A). The bars pool the tokens of every seed;
 * with more than one seed each seed's own histogram on the same bins is drawn over them as a thin step outline
 * (seed-to-seed spread). The zero band |A| < eps is shaded; the annotations give, per seed then mean +- 95% CI over
 * seeds, its share, the skewness and the q01 / q05 / q95 / q99 quantiles (the dotted lines sit at the means). The
 * claim reads off the figure as: a tall spike at 0, and a left tail (A < 0: the teacher dislikes the sampled token)
 * reaching further than the right one.
 *
 * Numbers: `c1SeedNumbers` per seed (advantageStats, lib/analysis/advantages.ts), `c1Numbers` = their mean over
 * seeds under the same key and the 95% t-interval half-width under key_ci95 (putStats, ablations/common.ts; NaN for
 * one seed).
 */
import { advantageStats } from '../../analysis/advantages';
import { axisTransform, histogramBins, histogramOnBins, resolveHistogramOptions } from '../../analysis/histogram';
import { baseLayout, COLORS, type PlotlyFigure, type PlotlyTrace } from '../theme';
import { plural, putStats } from './ablations/common';

/** The advantages of one seed. */
export interface Fig2aSeed {
  seed: number;
  /** Per-token advantages on that seed's student rollouts (finite, at least 4). */
  advantages: ArrayLike<number>;
}

export interface Fig2aOptions {
  /** Half-width of the annotated zero band. Default 0.01. */
  eps?: number;
  /** c of the symlog axis. Default 0.01. */
  linthresh?: number;
  /** Histogram bins (equal width on the symlog axis). Default 60. */
  bins?: number;
}

export interface Fig2aInput extends Fig2aOptions {
  /** One entry per seed (data/figures/c1c2.json `seeds` fits as is). */
  seeds: readonly Fig2aSeed[];
}

const DEFAULTS = { eps: 0.01, linthresh: 0.01, bins: 60 };
const EPS_LIST = [1e-3, 1e-2, 1e-1];
/** Keys that are settings, not measurements: written as they are, not as a mean over seeds. */
const C1_PLAIN = new Set(['c1/zero_band_eps']);

function resolve(op: string, o: Fig2aOptions): { eps: number; c: number; bins: number } {
  const eps = o.eps ?? DEFAULTS.eps;
  const c = o.linthresh ?? DEFAULTS.linthresh;
  if (!(eps > 0)) throw new Error(`${op}: eps must be > 0, got ${eps}`);
  if (!(c > 0)) throw new Error(`${op}: linthresh must be > 0, got ${c}`);
  return { eps, c, bins: o.bins ?? DEFAULTS.bins };
}

function checkSeeds(op: string, seeds: readonly Fig2aSeed[]): void {
  if (!Array.isArray(seeds) || seeds.length === 0) throw new Error(`${op}: seeds must hold at least one seed's advantages, got ${Array.isArray(seeds) ? 0 : typeof seeds}`);
  seeds.forEach((s, i) => {
    if (!s?.advantages || s.advantages.length < 4) throw new Error(`${op}: seeds[${i}].advantages needs at least 4 values, got ${s?.advantages?.length ?? 0}`);
  });
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toPrecision(3) : String(x);
}

/** 'm ± ci' (3 significant digits), or 'm' when the interval is undefined (one seed). */
function fmtCi(m: number, ci: number | undefined, scale = 1, digits?: number): string {
  const f = (x: number) => (digits === undefined ? fmt(x * scale) : (x * scale).toFixed(digits));
  return ci !== undefined && Number.isFinite(ci) ? `${f(m)} ± ${f(ci)}` : f(m);
}

/** Numbers C1 quotes for one seed's advantages (keys under c1/; NaN when undefined, e.g. an empty tail). */
export function c1SeedNumbers(advantages: ArrayLike<number>, options: Fig2aOptions = {}): Record<string, number> {
  const op = 'c1SeedNumbers';
  const { eps, c, bins } = resolve(op, options);
  if (!advantages || advantages.length < 4) throw new Error(`${op}: advantages needs at least 4 values, got ${advantages?.length ?? 0}`);
  const m = advantageStats(
    { advantages_N: Float64Array.from(advantages) },
    { eps: Array.from(new Set([...EPS_LIST, eps])).sort((a, b) => a - b), histogram: { scale: 'symlog', linthresh: c, bins } },
  ).metrics;
  const key = (e: number) => Object.keys(m).find((k) => k.startsWith('adv/frac_abs_lt_') && Math.abs(Number(k.slice('adv/frac_abs_lt_'.length)) - e) <= 1e-12 * e);
  return {
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
}

/**
 * Per-seed numbers (one record per seed, the same keys) -> numbers.json entries: `plain` keys as seed 0 has them,
 * every other key the mean over seeds and key_ci95 its 95% CI half-width (putStats). Throws when a seed lacks a key.
 */
export function numbersOverSeeds(op: string, perSeed: readonly Record<string, number>[], plain: (key: string) => boolean): Record<string, number> {
  if (perSeed.length === 0) throw new Error(`${op}: no seeds`);
  const out: Record<string, number> = {};
  for (const k of Object.keys(perSeed[0])) {
    const values = perSeed.map((r, i) => {
      if (typeof r[k] !== 'number') throw new Error(`${op}: seed ${i} lacks '${k}' (every seed must have the same measurements)`);
      return r[k];
    });
    if (plain(k)) out[k] = values[0];
    else putStats(out, k, values);
  }
  return out;
}

/**
 * Numbers C1 quotes (keys under c1/): `c1SeedNumbers` of every seed, then the mean over seeds under the same key
 * and the 95% CI half-width under key_ci95; plus c1/seeds and c1/tokens_total (all seeds' tokens).
 */
export function c1Numbers(input: Fig2aInput): Record<string, number> {
  checkSeeds('c1Numbers', input.seeds);
  const perSeed = input.seeds.map((s) => c1SeedNumbers(s.advantages, input));
  return {
    ...numbersOverSeeds('c1Numbers', perSeed, (k) => C1_PLAIN.has(k)),
    'c1/seeds': perSeed.length,
    'c1/tokens_total': perSeed.reduce((a, r) => a + r['c1/tokens'], 0),
  };
}

/** The Fig. 2a plotly spec (file header). */
export function fig2aAdvantageDistribution(input: Fig2aInput): PlotlyFigure {
  const op = 'fig2aAdvantageDistribution';
  const { eps, c, bins } = resolve(op, input);
  checkSeeds(op, input.seeds);
  const S = input.seeds.length;
  const pooled = new Float64Array(input.seeds.reduce((a, s) => a + s.advantages.length, 0));
  let off = 0;
  for (const s of input.seeds) {
    pooled.set(Float64Array.from(s.advantages), off);
    off += s.advantages.length;
  }
  const shared = histogramBins(pooled, resolveHistogramOptions(op, { scale: 'symlog', linthresh: c, bins }));
  const h = histogramOnBins(pooled, shared);
  const t = (x: number) => axisTransform(x, 'symlog', c);
  const B = h.counts.length;
  const centres = Array.from({ length: B }, (_, i) => (h.axisEdges[i] + h.axisEdges[i + 1]) / 2);
  const widths = Array.from({ length: B }, (_, i) => h.axisEdges[i + 1] - h.axisEdges[i]);
  const colour = centres.map((x) => (Math.abs(x) < t(eps) ? COLORS.zero : x < 0 ? COLORS.negative : COLORS.positive));
  const n = c1Numbers(input);
  const ci = (k: string) => n[`${k}_ci95`];
  const lo = h.axisEdges[0];
  const hi = h.axisEdges[B];
  // ticks at 0, +-c * 10^k inside the data range, labelled in A
  const tickA: number[] = [0];
  for (let k = 0; k <= 6; k++) {
    const a = c * Math.pow(10, k);
    if (t(a) <= Math.max(hi, t(c))) tickA.push(a);
    if (-t(a) >= Math.min(lo, -t(c))) tickA.unshift(-a);
  }
  const perSeed = S > 1 ? input.seeds.map((s) => ({ seed: s.seed, frac: Array.from(histogramOnBins(Float64Array.from(s.advantages), shared).frac) })) : [];
  const maxFrac = Math.max(...Array.from(h.frac), ...perSeed.flatMap((p) => p.frac));
  const quantiles: [string, number][] = [['q01', n['c1/q01']], ['q05', n['c1/q05']], ['q95', n['c1/q95']], ['q99', n['c1/q99']]];
  const shapes: Record<string, unknown>[] = [
    { type: 'rect', xref: 'x', yref: 'paper', x0: -t(eps), x1: t(eps), y0: 0, y1: 1, fillcolor: COLORS.zero, opacity: 0.15, line: { width: 0 }, layer: 'below' },
    ...quantiles.map(([, q]) => ({ type: 'line', xref: 'x', yref: 'paper', x0: t(q), x1: t(q), y0: 0, y1: 1, line: { color: COLORS.ink, width: 1, dash: 'dot' } })),
  ];
  const annotations: Record<string, unknown>[] = [
    ...quantiles.map(([name, q], i) => ({ x: t(q), y: 1 - 0.05 * (q < 0 ? i : 3 - i), xref: 'x', yref: 'paper', text: `${name} = ${fmtCi(q, ci(`c1/${name}`))}`, showarrow: false, font: { size: 11 }, xanchor: q < 0 ? 'left' : 'right', bgcolor: 'rgba(255,255,255,0.8)' })),
    {
      x: 0.99, y: 0.88, xref: 'paper', yref: 'paper', xanchor: 'right', yanchor: 'top', align: 'right', showarrow: false, bgcolor: 'rgba(255,255,255,0.85)', font: { size: 12 },
      text:
        `|A| &lt; ${eps}: ${fmtCi(n['c1/zero_band_share'], ci('c1/zero_band_share'), 100, 1)}% of ${S > 1 ? `${n['c1/tokens_total']} tokens, ${plural(S, 'seed')} pooled` : `${n['c1/tokens']} tokens`}` +
        `<br>skewness ${fmtCi(n['c1/skewness'], ci('c1/skewness'))}` +
        `<br>A &lt; 0: ${fmtCi(n['c1/frac_neg'], ci('c1/frac_neg'), 100, 1)}%, A &gt; 0: ${fmtCi(n['c1/frac_pos'], ci('c1/frac_pos'), 100, 1)}%` +
        (S > 1 ? `<br>bars: the seeds pooled; lines: one seed each<br>numbers: each seed's value, mean ± 95% CI over ${plural(S, 'seed')}` : ''),
    },
  ];
  const dashes = ['solid', 'dot', 'dash', 'dashdot', 'longdash'];
  const outlines: PlotlyTrace[] = perSeed.map((p, j) => ({
    type: 'scatter', mode: 'lines', name: `seed ${p.seed}`, legendgroup: 'seeds', x: centres, y: p.frac, line: { color: COLORS.ink, width: 1, shape: 'hvh', dash: dashes[j % dashes.length] }, opacity: 0.7,
    hovertemplate: `seed ${p.seed}: %{y:.3%}<extra></extra>`,
  }));
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
      ...outlines,
    ],
    layout: baseLayout({
      title: `OPD advantage on student rollouts (AOPD Fig. 2a)${S > 1 ? `, ${plural(S, 'seed')}` : ''}`,
      xTitle: `advantage A = log pT(y) - log pS(y), y ~ student (symmetric-log axis, linear for |A| < ${c})`,
      yTitle: 'share of tokens',
      extra: {
        xaxis: { tickmode: 'array', tickvals: tickA.map(t), ticktext: tickA.map((a) => (a === 0 ? '0' : String(Number(a.toPrecision(3))))), range: [lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)] },
        // headroom for the quantile labels and the note (top right) above the tallest bar or outline
        yaxis: { range: [0, maxFrac * (S > 1 ? 1.8 : 1.25)], tickformat: '.0%' },
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
