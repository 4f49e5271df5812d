/**
 * AOPD Fig. 8c (claim C12): where AOPD intervenes (specs/location.json). Left: final pass@1 per variant, bars = mean
 * over seeds with 95% CI, open points the seeds, in the paper's claimed order (standard AOPD eta = 0 > accuracy-
 * filtered > AOPD-Zero > a negative eta > OPD). Right: the intervention ratio averaged over training (share of
 * tokens on the imitation branch), same layout, so the figure shows how much each variant imitates next to what it
 * gains.
 *
 * Numbers (`c12Numbers`, slugs aopd, aopd-acc, aopd-zero, eta-0.1, opd: the location labels with 'aopd-eta'
 * shortened to 'eta'): c12/pass1_final_<slug>, c12/pass1_mean_<slug> (mean over the evaluations after step 0),
 * c12/ratio_mean_<slug>, the paired difference of each neighbouring
 * pair in the claimed order (c12/pass1_final_diff_<a>_minus_<b>), and c12/claimed_pairs_holding: how many of those
 * c12/claimed_pairs neighbouring pairs have a positive mean difference.
 */
import { baseLayout, type PlotlyFigure, type PlotlyTrace } from '../../theme';
import { seedStats } from '../generateDynamics';
import { axisVariants, finalPass1, meanPass1, pairedDiff, putStats, ratioMean, seedsNote, valueSlug, VARIANT_COLOUR_INDEX, variantLabel, variantStyle } from './common';
import type { AblationsData, VariantRuns } from './data';

/** The paper's claimed order of the location variants (best first), as specs/location.json labels them. */
export const CLAIMED_LOCATION_ORDER = ['aopd', 'aopd-acc', 'aopd-zero', 'aopd-eta-0.1', 'opd'] as const;

function ordered(data: AblationsData): { value: string; v: VariantRuns }[] {
  const arms = axisVariants(data, 'location').map((a) => ({ value: String(a.value), v: a.v }));
  const rank = (s: string) => {
    const i = (CLAIMED_LOCATION_ORDER as readonly string[]).indexOf(s);
    return i < 0 ? CLAIMED_LOCATION_ORDER.length : i;
  };
  return arms.sort((a, b) => rank(a.value) - rank(b.value));
}

export function c12Numbers(data: AblationsData): Record<string, number> {
  const out: Record<string, number> = {};
  const arms = ordered(data);
  for (const { value, v } of arms) {
    putStats(out, `c12/pass1_final_${valueSlug('location', value)}`, finalPass1(v));
    putStats(out, `c12/pass1_mean_${valueSlug('location', value)}`, meanPass1(v));
    putStats(out, `c12/ratio_mean_${valueSlug('location', value)}`, ratioMean(v));
  }
  const claimed = arms.filter((a) => (CLAIMED_LOCATION_ORDER as readonly string[]).includes(a.value));
  let holding = 0;
  for (let i = 0; i + 1 < claimed.length; i++) {
    const [a, b] = [claimed[i], claimed[i + 1]];
    const d = pairedDiff(a.v, finalPass1(a.v), b.v, finalPass1(b.v));
    putStats(out, `c12/pass1_final_diff_${valueSlug('location', a.value)}_minus_${valueSlug('location', b.value)}`, d);
    if (seedStats(d).mean > 0) holding++;
  }
  out['c12/claimed_pairs'] = Math.max(0, claimed.length - 1);
  out['c12/claimed_pairs_holding'] = holding;
  return out;
}

function colourOf(v: VariantRuns): string {
  return variantStyle(v, VARIANT_COLOUR_INDEX).colour;
}

function barTraces(names: string[], colours: string[], perArm: number[][], axes: { xaxis?: string; yaxis?: string }, label: string): PlotlyTrace[] {
  const stats = perArm.map((x) => seedStats(x));
  const ax = { ...(axes.xaxis ? { xaxis: axes.xaxis } : {}), ...(axes.yaxis ? { yaxis: axes.yaxis } : {}) };
  return [
    {
      type: 'bar',
      name: label,
      x: names,
      y: stats.map((s) => s.mean),
      marker: { color: colours, opacity: 0.85 },
      error_y: { type: 'data', array: stats.map((s) => (Number.isFinite(s.ci95) ? s.ci95 : 0)), visible: true, color: '#222222', thickness: 1.5, width: 6 },
      showlegend: false,
      ...ax,
    },
    {
      type: 'scatter',
      mode: 'markers',
      name: `${label}: seeds`,
      x: perArm.flatMap((vals, i) => vals.map(() => names[i])),
      y: perArm.flat(),
      marker: { size: 7, color: '#222222', symbol: 'circle-open' },
      showlegend: false,
      ...ax,
    },
  ];
}

/** The Fig. 8c plotly spec (file header). */
export function fig8cInterventionLocation(data: AblationsData): PlotlyFigure {
  const arms = ordered(data);
  const names = arms.map((a) => variantLabel(a.v));
  const colours = arms.map((a) => colourOf(a.v));
  const base = baseLayout({
    title: `Where AOPD intervenes (AOPD Fig. 8c)<br><sub>bars: mean ± 95% CI, open points: seeds; claimed order left to right; ${seedsNote(arms.map((a) => a.v))}</sub>`,
    yTitle: 'final pass@1 (held-out math)',
  });
  const ax = { ...(base.xaxis as Record<string, unknown>), type: 'category', title: { text: '' } };
  const ay = base.yaxis as Record<string, unknown>;
  return {
    data: [
      ...barTraces(names, colours, arms.map((a) => finalPass1(a.v)), {}, 'final pass@1'),
      ...barTraces(names, colours, arms.map((a) => ratioMean(a.v)), { xaxis: 'x2', yaxis: 'y2' }, 'intervention ratio'),
    ],
    layout: {
      ...base,
      xaxis: { ...ax, domain: [0, 0.46] },
      yaxis: { ...ay, rangemode: 'tozero' },
      xaxis2: { ...ax, domain: [0.56, 1], anchor: 'y2' },
      yaxis2: { ...ay, anchor: 'x2', rangemode: 'tozero', range: [0, 1], title: { text: 'intervention ratio, mean over training' } },
      margin: { l: 70, r: 20, t: 80, b: 110 },
      width: 980,
      height: 480,
    },
  };
}
