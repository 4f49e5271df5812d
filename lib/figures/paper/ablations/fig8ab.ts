/**
 * AOPD Fig. 8a and 8b (claim C11): the teacher support size K of the imitation branch (specs/topk.json; K = 16 is
 * the aopd default). Left (8a): final pass@1 against K (log axis), mean over seeds with 95% CI bars, open points the
 * seeds. Right (8b): pass@1 over training per K (line = mean, band = min to max over seeds), the early window
 * (0 < step <= 30% of the steps) shaded. The claim reads as larger K ending higher and smaller K rising faster early.
 *
 * Numbers (`c11Numbers`): c11/pass1_final_K<k>, c11/pass1_early_K<k> (per seed the mean pass@1 over the early
 * evaluations), c11/pass1_mean_K<k> (mean over the evaluations after step 0), c11/pass1_early_gain_K<k> (early minus step 0), and the paired differences between the largest and
 * the smallest K: c11/pass1_final_diff_K<max>_minus_K<min>, c11/pass1_early_diff_K<min>_minus_K<max>.
 */
import { baseLayout, seriesColour, type PlotlyFigure } from '../../theme';
import { axisVariants, earlyEvalIndices, earlyPass1, EARLY_FRAC, finalPass1, meanCiTraces, meanPass1, pairedDiff, putStats, seedsNote, seriesBandTraces, valueSlug } from './common';
import type { AblationsData } from './data';

export function c11Numbers(data: AblationsData): Record<string, number> {
  const out: Record<string, number> = {};
  const arms = axisVariants(data, 'topk');
  for (const { value, v } of arms) {
    const slug = valueSlug('topk', value);
    putStats(out, `c11/pass1_final_${slug}`, finalPass1(v));
    putStats(out, `c11/pass1_early_${slug}`, earlyPass1(v));
    putStats(out, `c11/pass1_mean_${slug}`, meanPass1(v));
    const e = earlyPass1(v);
    putStats(out, `c11/pass1_early_gain_${slug}`, v.pass1.map((s, i) => e[i] - s[0]));
  }
  const byK = [...arms].sort((a, b) => Number(a.value) - Number(b.value));
  const lo = byK[0];
  const hi = byK[byK.length - 1];
  if (lo !== hi) {
    putStats(out, `c11/pass1_final_diff_${valueSlug('topk', hi.value)}_minus_${valueSlug('topk', lo.value)}`, pairedDiff(hi.v, finalPass1(hi.v), lo.v, finalPass1(lo.v)));
    putStats(out, `c11/pass1_early_diff_${valueSlug('topk', lo.value)}_minus_${valueSlug('topk', hi.value)}`, pairedDiff(lo.v, earlyPass1(lo.v), hi.v, earlyPass1(hi.v)));
  }
  return out;
}

/** The Fig. 8a/8b plotly spec (file header). */
export function fig8abTopK(data: AblationsData): PlotlyFigure {
  const arms = axisVariants(data, 'topk');
  const ks = arms.map((a) => Number(a.value));
  const curves = arms.flatMap((a, i) =>
    seriesBandTraces({ label: `K = ${String(a.value)}`, colour: seriesColour(i), group: a.v.id }, a.v.evalStep, a.v.pass1, { xaxis: 'x2', yaxis: 'y2' }),
  );
  const first = arms[0].v;
  const early = earlyEvalIndices(first);
  const earlyEnd = Math.max(EARLY_FRAC * first.trainStep[first.trainStep.length - 1], ...early.map((i) => first.evalStep[i]));
  const base = baseLayout({
    title: `Teacher support size K of the imitation branch (AOPD Fig. 8a, 8b)<br><sub>left: final pass@1 (mean ± 95% CI, open points: seeds); right: line mean, band min to max over seeds; ${seedsNote(arms.map((a) => a.v))}</sub>`,
    xTitle: 'K (teacher top-K support)',
    yTitle: 'final pass@1 (held-out math)',
    xLog: true,
  });
  const ax = base.xaxis as Record<string, unknown>;
  const ay = base.yaxis as Record<string, unknown>;
  return {
    data: [...meanCiTraces('AOPD, final pass@1', seriesColour(1), ks, arms.map((a) => finalPass1(a.v)), { showlegend: false }), ...curves],
    layout: {
      ...base,
      xaxis: { ...ax, domain: [0, 0.38], tickvals: ks, ticktext: ks.map(String) },
      yaxis: { ...ay, rangemode: 'tozero' },
      xaxis2: { ...ax, type: '-', domain: [0.5, 1], anchor: 'y2', title: { text: 'training step' } },
      yaxis2: { ...ay, anchor: 'x2', rangemode: 'tozero', title: { text: 'pass@1 (held-out math)' } },
      shapes: [{ type: 'rect', xref: 'x2', yref: 'y2 domain', x0: 0, x1: earlyEnd, y0: 0, y1: 1, fillcolor: 'rgba(0,0,0,0.06)', line: { width: 0 }, layer: 'below' }],
      annotations: [{ xref: 'x2', yref: 'y2 domain', x: earlyEnd / 2, y: 0.98, text: 'early', showarrow: false, yanchor: 'top', font: { size: 11 } }],
      legend: { orientation: 'h', x: 0, y: -0.22, xanchor: 'left', yanchor: 'top' },
      margin: { l: 70, r: 20, t: 80, b: 120 },
      width: 980,
      height: 480,
    },
  };
}
