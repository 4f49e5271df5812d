/**
 * What the ablation figures share: labels and colours of the settings, the seed statistics every number uses, and
 * the two trace builders (a seed band over steps; mean +- 95% CI against an axis value with the seeds as points).
 *
 *   final pass@1        per seed the last evaluation (step S), as c8Numbers does for Fig. 6
 *   mean pass@1         per seed the mean over every evaluation after step 0 (the area under the training curve:
 *                       separates settings that all end at the same floor)
 *   early pass@1        per seed the mean over the evaluations at 0 < step <= EARLY_FRAC * S (at least the first one)
 *   ratio initial/final per seed the mean of the intervention ratio over the first / last RATIO_FRAC of the steps
 *   across seeds        mean and 95% CI half-width t_{0.975, n-1} s / sqrt(n) (seedStats; NaN for one seed)
 *   paired difference   per seed a - b (the arms of one seed share its warm-up student), then the same statistics
 */
import { methodStyle, seriesColour, type PlotlyTrace } from '../../theme';
import { seedBand, seedStats, tailMeans } from '../generateDynamics';
import type { AblationsData, AblationSpec, VariantRuns } from './data';

/** Share of the training steps averaged for the initial / final intervention ratio. */
export const RATIO_FRAC = 0.1;
/** Share of the training steps counted as "early" (AOPD Fig. 8b). */
export const EARLY_FRAC = 0.3;

/** Symbols of the objective options in labels. */
const OPTION_SYMBOL: Record<string, string> = { eta: 'η', beta: 'β', topK: 'K', epsZero: 'ε' };

/** Legend label of a setting: the method's label, then its non-default options ('AOPD η = -0.1'). */
export function variantLabel(v: Pick<VariantRuns, 'method' | 'options'>): string {
  const parts = Object.keys(v.options)
    .sort()
    .map((k) => `${OPTION_SYMBOL[k] ?? k} = ${String(v.options[k])}`);
  return [methodStyle(v.method).label, ...parts].join(' ');
}

/** The key fragment of an axis value in numbers.json: 'eta-0.1', 'beta0.5', 'K4', or the location label. */
export function valueSlug(spec: AblationSpec, value: number | string): string {
  if (spec === 'location') return String(value).replace(/^aopd-eta/, 'eta');
  return `${spec === 'topk' ? 'K' : spec}${String(value)}`;
}

/** The settings of one spec's axis, in spec order. */
export function axisVariants(data: AblationsData, spec: AblationSpec): { value: number | string; v: VariantRuns }[] {
  return data.axes[spec].map((p) => {
    const v = data.variants[p.variant];
    if (!v) throw new Error(`ablation figure: axes.${spec} names variant '${p.variant}', which the data do not hold`);
    return { value: p.value, v };
  });
}

/** A variant the data must hold (e.g. 'opd'), with a clear error. */
export function requireVariant(data: AblationsData, id: string): VariantRuns {
  const v = data.variants[id];
  if (!v) throw new Error(`ablation figure: the data hold no variant '${id}' (known: ${Object.keys(data.variants).join(', ')})`);
  return v;
}

/** Per seed the last evaluation of pass@1. */
export function finalPass1(v: VariantRuns): number[] {
  return v.pass1.map((s) => s[s.length - 1]);
}

/** Per seed the mean pass@1 over the evaluations after step 0 (header). */
export function meanPass1(v: VariantRuns): number[] {
  const idx = v.evalStep.map((s, i) => [s, i] as const).filter(([s]) => s > 0).map(([, i]) => i);
  if (idx.length === 0) throw new Error(`ablation figure: variant '${v.id}' has no evaluation after step 0`);
  return v.pass1.map((s) => idx.reduce((a, i) => a + s[i], 0) / idx.length);
}

/** The evaluation indices counted as early: 0 < step <= EARLY_FRAC * last training step (at least the first one after 0). */
export function earlyEvalIndices(v: Pick<VariantRuns, 'evalStep' | 'trainStep'>): number[] {
  const S = v.trainStep[v.trainStep.length - 1] ?? 0;
  const after0 = v.evalStep.map((s, i) => [s, i] as const).filter(([s]) => s > 0);
  const inside = after0.filter(([s]) => s <= EARLY_FRAC * S).map(([, i]) => i);
  return inside.length > 0 ? inside : after0.slice(0, 1).map(([, i]) => i);
}

/** Per seed the mean pass@1 over the early evaluations. */
export function earlyPass1(v: VariantRuns): number[] {
  const idx = earlyEvalIndices(v);
  if (idx.length === 0) throw new Error(`ablation figure: variant '${v.id}' has no evaluation after step 0`);
  return v.pass1.map((s) => idx.reduce((a, i) => a + s[i], 0) / idx.length);
}

/** The intervention ratio series of a setting; zeros for a method without an imitation branch (OPD imitates nothing). */
export function ratioSeries(v: VariantRuns): number[][] {
  return v.interventionRatio ?? v.gradNorm.map((s) => s.map(() => 0));
}

/** Per seed the mean over the first `frac` of the entries (at least one). */
export function headMeans(perSeed: readonly (readonly number[])[], frac: number): number[] {
  return perSeed.map((s) => {
    const k = Math.max(1, Math.round(s.length * frac));
    return s.slice(0, k).reduce((a, b) => a + b, 0) / k;
  });
}

export const ratioInitial = (v: VariantRuns): number[] => headMeans(ratioSeries(v), RATIO_FRAC);
export const ratioFinal = (v: VariantRuns): number[] => tailMeans(ratioSeries(v), RATIO_FRAC);
export const ratioMean = (v: VariantRuns): number[] => tailMeans(ratioSeries(v), 1);

/** Per seed a - b for the seeds both settings hold (matched by seed number); throws when they share none. */
export function pairedDiff(a: VariantRuns, av: number[], b: VariantRuns, bv: number[]): number[] {
  const out: number[] = [];
  a.seeds.forEach((s, i) => {
    const j = b.seeds.indexOf(s);
    if (j >= 0) out.push(av[i] - bv[j]);
  });
  if (out.length === 0) throw new Error(`ablation figure: '${a.id}' and '${b.id}' share no seed`);
  return out;
}

/** out[key] = mean over seeds, out[key_ci95] = its 95% CI half-width. */
export function putStats(out: Record<string, number>, key: string, values: number[]): void {
  const s = seedStats(values);
  out[key] = s.mean;
  out[`${key}_ci95`] = s.ci95;
}

/** '1 seed', '3 seeds'. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function rgba(hex: string, alpha: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

export interface SeriesStyle {
  label: string;
  colour: string;
  dash?: string;
  group?: string;
}

/** The series colour index of a non-default setting shown next to methods (the negative eta: green, #009E73). */
export const VARIANT_COLOUR_INDEX = 2;

/** The style of a setting: the method's own when it has default options, else `seriesColour(index)` (solid). */
export function variantStyle(v: Pick<VariantRuns, 'id' | 'method' | 'options'>, index: number): SeriesStyle {
  const m = methodStyle(v.method);
  const isDefault = Object.keys(v.options).length === 0;
  return { label: variantLabel(v), colour: isDefault ? m.colour : seriesColour(index), dash: isDefault ? m.dash : 'solid', group: v.id };
}

/** Band (max, then min filled to it) and mean line over steps of one setting, on axes `xaxis` / `yaxis`. */
export function seriesBandTraces(
  style: SeriesStyle,
  x: readonly number[],
  perSeed: readonly (readonly number[])[],
  axes: { xaxis?: string; yaxis?: string; showlegend?: boolean } = {},
): PlotlyTrace[] {
  const b = seedBand(perSeed);
  const ax = { ...(axes.xaxis ? { xaxis: axes.xaxis } : {}), ...(axes.yaxis ? { yaxis: axes.yaxis } : {}) };
  const group = style.group ?? style.label;
  return [
    { type: 'scatter', mode: 'lines', name: `${style.label} max over seeds`, legendgroup: group, x: [...x], y: b.max, line: { width: 0, color: style.colour }, showlegend: false, hoverinfo: 'skip', ...ax },
    { type: 'scatter', mode: 'lines', name: `${style.label} min over seeds`, legendgroup: group, x: [...x], y: b.min, line: { width: 0, color: style.colour }, fill: 'tonexty', fillcolor: rgba(style.colour, 0.16), showlegend: false, hoverinfo: 'skip', ...ax },
    {
      type: 'scatter',
      mode: 'lines',
      name: `${style.label} (mean of ${plural(perSeed.length, 'seed')})`,
      legendgroup: group,
      x: [...x],
      y: b.mean,
      line: { width: 2, color: style.colour, dash: style.dash ?? 'solid' },
      showlegend: axes.showlegend ?? true,
      ...ax,
    },
  ];
}

/**
 * Mean +- 95% CI (error bars) of one value per seed at each x, plus the seeds as small open points: two traces.
 * `x` may be numbers or category labels; NaN half-widths (one seed) draw no bar.
 */
export function meanCiTraces(
  name: string,
  colour: string,
  x: readonly (number | string)[],
  perX: readonly number[][],
  axes: { xaxis?: string; yaxis?: string; showlegend?: boolean; mode?: 'markers' | 'lines+markers' } = {},
): PlotlyTrace[] {
  const stats = perX.map((vals) => seedStats(vals));
  const ax = { ...(axes.xaxis ? { xaxis: axes.xaxis } : {}), ...(axes.yaxis ? { yaxis: axes.yaxis } : {}) };
  const n = Math.min(...perX.map((v) => v.length));
  return [
    {
      type: 'scatter',
      mode: axes.mode ?? 'lines+markers',
      name: `${name} (mean ± 95% CI, ${plural(n, 'seed')})`,
      legendgroup: name,
      x: [...x],
      y: stats.map((s) => s.mean),
      error_y: { type: 'data', array: stats.map((s) => (Number.isFinite(s.ci95) ? s.ci95 : 0)), visible: true, color: colour, thickness: 1.5, width: 5 },
      line: { width: 2, color: colour },
      marker: { size: 9, color: colour, symbol: 'circle' },
      showlegend: axes.showlegend ?? true,
      ...ax,
    },
    {
      type: 'scatter',
      mode: 'markers',
      name: `${name}: seeds`,
      legendgroup: name,
      x: perX.flatMap((vals, i) => vals.map(() => x[i])),
      y: perX.flat(),
      marker: { size: 6, color: colour, symbol: 'circle-open', opacity: 0.7 },
      showlegend: false,
      hoverinfo: 'x+y',
      ...ax,
    },
  ];
}

/** A horizontal reference: the mean (dashed line, or `dash`) and its 95% CI (shaded) of one value per seed, over [x0, x1]. */
export function referenceTraces(name: string, colour: string, x0: number, x1: number, values: number[], axes: { xaxis?: string; yaxis?: string; dash?: string } = {}): PlotlyTrace[] {
  const s = seedStats(values);
  const ax = { ...(axes.xaxis ? { xaxis: axes.xaxis } : {}), ...(axes.yaxis ? { yaxis: axes.yaxis } : {}) };
  const lo = Number.isFinite(s.ci95) ? s.mean - s.ci95 : s.mean;
  const hi = Number.isFinite(s.ci95) ? s.mean + s.ci95 : s.mean;
  return [
    { type: 'scatter', mode: 'lines', name: `${name} CI high`, legendgroup: name, x: [x0, x1], y: [hi, hi], line: { width: 0, color: colour }, showlegend: false, hoverinfo: 'skip', ...ax },
    { type: 'scatter', mode: 'lines', name: `${name} CI low`, legendgroup: name, x: [x0, x1], y: [lo, lo], line: { width: 0, color: colour }, fill: 'tonexty', fillcolor: rgba(colour, 0.15), showlegend: false, hoverinfo: 'skip', ...ax },
    { type: 'scatter', mode: 'lines', name: `${name} (mean ± 95% CI, ${plural(values.length, 'seed')})`, legendgroup: name, x: [x0, x1], y: [s.mean, s.mean], line: { width: 2, color: colour, dash: axes.dash ?? 'dash' }, ...ax },
  ];
}

export function seedsNote(vs: readonly VariantRuns[]): string {
  return `${plural(Math.min(...vs.map((v) => v.seeds.length)), 'seed')} per setting`;
}
