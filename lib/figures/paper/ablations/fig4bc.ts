/**
 * AOPD Fig. 4b and 4c (claim C6): the intervention ratio over training (left: share of tokens on the imitation
 * branch) for standard AOPD (eta = 0), AOPD-Zero (imitation only where |A| < epsZero = 0.05) and a negative eta
 * (-0.1), and pass@1 over training (right) of AOPD-Zero and the negative eta against OPD. Runs of
 * specs/location.json; line = mean over seeds, band = min to max over seeds. The claim reads as AOPD-Zero's ratio
 * rising and its accuracy above OPD's, the negative eta imitating few tokens yet beating OPD, and AOPD's ratio
 * bounded and slowly decreasing (paper: about 40% to 30%).
 *
 * Numbers (`c6Numbers`, slugs aopd, aopd-zero, eta-0.1, opd): c6/ratio_initial_<s>, c6/ratio_final_<s> (first /
 * last 10% of steps), c6/ratio_change_<s> (paired final - initial), c6/ratio_mean_<s>; c6/pass1_final_<s> and the
 * paired c6/pass1_final_diff_<s>_minus_opd for aopd-zero and eta-0.1, and the same for c6/pass1_mean_<s> (mean over
 * the evaluations after step 0).
 */
import { baseLayout, type PlotlyFigure } from '../../theme';
import { axisVariants, finalPass1, meanPass1, pairedDiff, putStats, ratioFinal, ratioInitial, ratioMean, ratioSeries, seedsNote, seriesBandTraces, valueSlug, VARIANT_COLOUR_INDEX, variantStyle } from './common';
import type { AblationsData, VariantRuns } from './data';

/** The location labels Fig. 4b shows (ratio) and Fig. 4c compares with OPD (pass@1). */
export const FIG4B_VARIANTS = ['aopd', 'aopd-zero', 'aopd-eta-0.1'] as const;
export const FIG4C_VARIANTS = ['aopd-zero', 'aopd-eta-0.1', 'opd'] as const;

function byLabel(data: AblationsData, labels: readonly string[]): { value: string; v: VariantRuns; index: number }[] {
  const arms = axisVariants(data, 'location').map((a, index) => ({ value: String(a.value), v: a.v, index }));
  return labels.map((l) => {
    const a = arms.find((x) => x.value === l);
    if (!a) throw new Error(`fig4bcInterventionRatio: specs/location.json has no variant '${l}' (has: ${arms.map((x) => x.value).join(', ')})`);
    return a;
  });
}

export function c6Numbers(data: AblationsData): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { value, v } of byLabel(data, FIG4B_VARIANTS)) {
    const s = valueSlug('location', value);
    putStats(out, `c6/ratio_initial_${s}`, ratioInitial(v));
    putStats(out, `c6/ratio_final_${s}`, ratioFinal(v));
    putStats(out, `c6/ratio_mean_${s}`, ratioMean(v));
    const fin = ratioFinal(v);
    putStats(out, `c6/ratio_change_${s}`, ratioInitial(v).map((x, i) => fin[i] - x));
  }
  const [opd] = byLabel(data, ['opd']);
  putStats(out, 'c6/pass1_final_opd', finalPass1(opd.v));
  putStats(out, 'c6/pass1_mean_opd', meanPass1(opd.v));
  for (const { value, v } of byLabel(data, ['aopd-zero', 'aopd-eta-0.1'])) {
    const s = valueSlug('location', value);
    putStats(out, `c6/pass1_final_${s}`, finalPass1(v));
    putStats(out, `c6/pass1_final_diff_${s}_minus_opd`, pairedDiff(v, finalPass1(v), opd.v, finalPass1(opd.v)));
    putStats(out, `c6/pass1_mean_${s}`, meanPass1(v));
    putStats(out, `c6/pass1_mean_diff_${s}_minus_opd`, pairedDiff(v, meanPass1(v), opd.v, meanPass1(opd.v)));
  }
  return out;
}

/** The Fig. 4b/4c plotly spec (file header). */
export function fig4bcInterventionRatio(data: AblationsData): PlotlyFigure {
  const left = byLabel(data, FIG4B_VARIANTS);
  const right = byLabel(data, FIG4C_VARIANTS);
  const shown = new Set<string>();
  const traces = [
    ...left.flatMap((a) => {
      shown.add(a.v.id);
      return seriesBandTraces(variantStyle(a.v, VARIANT_COLOUR_INDEX), a.v.trainStep, ratioSeries(a.v));
    }),
    ...right.flatMap((a) => {
      const first = !shown.has(a.v.id);
      shown.add(a.v.id);
      return seriesBandTraces(variantStyle(a.v, VARIANT_COLOUR_INDEX), a.v.evalStep, a.v.pass1, { xaxis: 'x2', yaxis: 'y2', showlegend: first });
    }),
  ];
  const base = baseLayout({
    title: `Intervention ratio and accuracy of the AOPD variants (AOPD Fig. 4b, 4c)<br><sub>line: mean, band: min to max over seeds; ${seedsNote([...left, ...right].map((a) => a.v))}</sub>`,
    xTitle: 'training step',
    yTitle: 'intervention ratio (imitated share)',
  });
  const ax = base.xaxis as Record<string, unknown>;
  const ay = base.yaxis as Record<string, unknown>;
  return {
    data: traces,
    layout: {
      ...base,
      xaxis: { ...ax, domain: [0, 0.45] },
      yaxis: { ...ay, range: [0, 1] },
      xaxis2: { ...ax, domain: [0.55, 1], anchor: 'y2' },
      yaxis2: { ...ay, anchor: 'x2', rangemode: 'tozero', title: { text: 'pass@1 (held-out math)' } },
      legend: { orientation: 'h', x: 0, y: -0.22, xanchor: 'left', yanchor: 'top' },
      margin: { l: 70, r: 20, t: 80, b: 120 },
      width: 980,
      height: 480,
    },
  };
}
