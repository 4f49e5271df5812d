/**
 * AOPD Fig. 7 (claim C10): final pass@1 (last evaluation, math task, held-out prompts) against beta of the
 * imitation branch's JSD(beta) (specs/beta.json; beta = 0 forward KL, the teacher-centred end). Points: mean over
 * seeds with 95% CI bars, open points the seeds. References: the warm-up student (step 0, shared by every setting of
 * a seed; dotted) and OPD's final pass@1 (dashed), each a line over its 95% CI band. The claim reads as accuracy rising
 * towards beta = 0.
 *
 * Numbers (`c10Numbers`): c10/pass1_final_beta<b>, c10/pass1_mean_beta<b> (mean over the evaluations after step 0),
 * c10/pass8_final_beta<b>, the paired differences to the first beta of the axis
 * (c10/pass1_final_diff_beta<b>_minus_beta0, c10/pass1_mean_diff_...), c10/pass1_initial (step 0) and c10/pass1_final_opd.
 */
import { baseLayout, COLORS, methodStyle, seriesColour, type PlotlyFigure } from '../../theme';
import { axisVariants, finalPass1, meanCiTraces, meanPass1, pairedDiff, putStats, referenceTraces, requireVariant, seedsNote, valueSlug } from './common';
import type { AblationsData } from './data';

export function c10Numbers(data: AblationsData): Record<string, number> {
  const out: Record<string, number> = {};
  const arms = axisVariants(data, 'beta');
  const ref = arms[0];
  for (const { value, v } of arms) {
    const slug = valueSlug('beta', value);
    putStats(out, `c10/pass1_final_${slug}`, finalPass1(v));
    putStats(out, `c10/pass1_mean_${slug}`, meanPass1(v));
    putStats(out, `c10/pass8_final_${slug}`, v.pass8.map((s) => s[s.length - 1]));
    if (v !== ref.v) {
      putStats(out, `c10/pass1_final_diff_${slug}_minus_${valueSlug('beta', ref.value)}`, pairedDiff(v, finalPass1(v), ref.v, finalPass1(ref.v)));
      putStats(out, `c10/pass1_mean_diff_${slug}_minus_${valueSlug('beta', ref.value)}`, pairedDiff(v, meanPass1(v), ref.v, meanPass1(ref.v)));
    }
  }
  putStats(out, 'c10/pass1_initial', ref.v.pass1.map((s) => s[0]));
  putStats(out, 'c10/pass1_final_opd', finalPass1(requireVariant(data, 'opd')));
  return out;
}

/** The Fig. 7 plotly spec (file header). */
export function fig7BetaAccuracy(data: AblationsData): PlotlyFigure {
  const arms = axisVariants(data, 'beta');
  const betas = arms.map((a) => Number(a.value));
  const opd = requireVariant(data, 'opd');
  const x0 = Math.min(...betas) - 0.05;
  const x1 = Math.max(...betas) + 0.05;
  const traces = [
    ...referenceTraces('warm-up student (step 0)', COLORS.neutral, x0, x1, arms[0].v.pass1.map((s) => s[0]), { dash: 'dot' }),
    ...referenceTraces(`${methodStyle('opd').label}, final`, methodStyle('opd').colour, x0, x1, finalPass1(opd)),
    ...meanCiTraces('AOPD, final pass@1', seriesColour(1), betas, arms.map((a) => finalPass1(a.v))),
  ];
  return {
    data: traces,
    layout: baseLayout({
      title: `Final accuracy vs β of the imitation branch's JSD(β) (AOPD Fig. 7)<br><sub>β = 0: forward KL (teacher-centred), β = 1: reverse KL; ${seedsNote(arms.map((a) => a.v))}</sub>`,
      xTitle: 'β (JSD interpolation in the imitation branch)',
      yTitle: 'final pass@1 (held-out math)',
      extra: {
        xaxis: { range: [x0, x1], tickvals: betas },
        yaxis: { rangemode: 'tozero' },
        legend: { orientation: 'h', x: 0, y: -0.22, xanchor: 'left', yanchor: 'top' },
        margin: { l: 70, r: 20, t: 80, b: 120 },
        height: 480,
      },
    }),
  };
}
