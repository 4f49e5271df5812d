/**
 * AOPD Fig. 11 (claim C13): the intervention threshold eta (specs/eta.json; M_t = 1[pT(y) - pS(y) <= eta], eta = 0
 * the default, eta = -1 exactly OPD). Left: final pass@1 against eta, mean over seeds with 95% CI bars, open points
 * the seeds; OPD (the eta = -1 end, its own runs) as a dashed reference line over its CI band. Right: the
 * intervention ratio against eta, averaged over all training steps and over the last 10% of them, with the 10% level
 * dotted. The claim reads as accuracy falling as eta decreases and then levelling off, and the ratio dropping below
 * 10% for eta negative enough.
 *
 * Numbers (`c13Numbers`): c13/pass1_final_eta<e>, c13/pass1_final_opd, c13/pass1_mean_eta<e> and c13/pass1_mean_opd
 * (mean over the evaluations after step 0), c13/pass1_final_diff_eta<e>_minus_eta<first>
 * (paired, against the first eta of the axis, the default 0), c13/ratio_mean_eta<e>, c13/ratio_final_eta<e>, and
 * c13/eta_first_below_10pct: the largest eta whose mean ratio over training is below 0.1 (NaN if none).
 */
import { baseLayout, methodStyle, seriesColour, type PlotlyFigure } from '../../theme';
import { seedStats } from '../generateDynamics';
import { axisVariants, finalPass1, meanCiTraces, meanPass1, pairedDiff, putStats, ratioFinal, ratioMean, referenceTraces, requireVariant, seedsNote, valueSlug } from './common';
import type { AblationsData } from './data';

/** The level the claim names for "few" intervened tokens. */
export const LOW_RATIO = 0.1;

export function c13Numbers(data: AblationsData): Record<string, number> {
  const out: Record<string, number> = {};
  const arms = axisVariants(data, 'eta');
  const ref = arms[0];
  let below = NaN;
  for (const { value, v } of arms) {
    const slug = valueSlug('eta', value);
    putStats(out, `c13/pass1_final_${slug}`, finalPass1(v));
    putStats(out, `c13/pass1_mean_${slug}`, meanPass1(v));
    if (v !== ref.v) putStats(out, `c13/pass1_final_diff_${slug}_minus_${valueSlug('eta', ref.value)}`, pairedDiff(v, finalPass1(v), ref.v, finalPass1(ref.v)));
    putStats(out, `c13/ratio_mean_${slug}`, ratioMean(v));
    putStats(out, `c13/ratio_final_${slug}`, ratioFinal(v));
    if (seedStats(ratioMean(v)).mean < LOW_RATIO && !(Number(value) <= below)) below = Number(value);
  }
  putStats(out, 'c13/pass1_final_opd', finalPass1(requireVariant(data, 'opd')));
  putStats(out, 'c13/pass1_mean_opd', meanPass1(requireVariant(data, 'opd')));
  out['c13/eta_first_below_10pct'] = below;
  return out;
}

/** The Fig. 11 plotly spec (file header). */
export function fig11EtaAblation(data: AblationsData): PlotlyFigure {
  const arms = axisVariants(data, 'eta');
  const etas = arms.map((a) => Number(a.value));
  const opd = requireVariant(data, 'opd');
  const x0 = -1.05;
  const x1 = Math.max(0, ...etas) + 0.05;
  const opdStyle = methodStyle('opd');
  const base = baseLayout({
    title: `Intervention threshold η (AOPD Fig. 11)<br><sub>M = 1[pT(y) − pS(y) ≤ η]; η = −1 is OPD (dashed, its own runs); ${seedsNote([...arms.map((a) => a.v), opd])}</sub>`,
    xTitle: 'η',
    yTitle: 'final pass@1 (held-out math)',
  });
  const ax = { ...(base.xaxis as Record<string, unknown>), range: [x0, x1], tickvals: [-1, ...etas] };
  const ay = base.yaxis as Record<string, unknown>;
  return {
    data: [
      ...referenceTraces(`${opdStyle.label} (η = −1), final pass@1`, opdStyle.colour, x0, x1, finalPass1(opd)),
      ...meanCiTraces('AOPD, final pass@1', seriesColour(1), etas, arms.map((a) => finalPass1(a.v))),
      ...meanCiTraces('intervention ratio, mean over training', seriesColour(0), etas, arms.map((a) => ratioMean(a.v)), { xaxis: 'x2', yaxis: 'y2' }),
      ...meanCiTraces('intervention ratio, last 10% of steps', seriesColour(2), etas, arms.map((a) => ratioFinal(a.v)), { xaxis: 'x2', yaxis: 'y2' }),
      { type: 'scatter', mode: 'lines', name: `${LOW_RATIO * 100}% level`, x: [x0, x1], y: [LOW_RATIO, LOW_RATIO], line: { width: 1, color: '#777777', dash: 'dot' }, xaxis: 'x2', yaxis: 'y2' },
    ],
    layout: {
      ...base,
      xaxis: { ...ax, domain: [0, 0.45] },
      yaxis: { ...ay, rangemode: 'tozero' },
      xaxis2: { ...ax, domain: [0.55, 1], anchor: 'y2' },
      yaxis2: { ...ay, anchor: 'x2', range: [0, 1], title: { text: 'intervention ratio (imitated share)' } },
      legend: { orientation: 'h', x: 0, y: -0.22, xanchor: 'left', yanchor: 'top' },
      margin: { l: 70, r: 20, t: 80, b: 130 },
      width: 980,
      height: 500,
    },
  };
}
