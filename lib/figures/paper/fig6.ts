/**
 * AOPD Fig. 6 (claim C8): held-out accuracy over training (eval.jsonl, math task, 64 prompts x 8 samples at
 * temperature 1; step 0 = the warm-up student): left panel pass@1, right panel pass@8 (unbiased estimator,
 * Chen et al. 2021 Eq. 1), for OPD, AOPD and GKD; line = mean over seeds, band = min to max over seeds. The claim
 * reads as AOPD rising from the start, OPD dipping early, GKD flat but below AOPD. Numbers: `c8Numbers` (final
 * = last evaluation; per method mean and 95% CI half-width over seeds; `pass1_min` = the lowest point of the
 * mean curve, `pass1_initial` = step 0).
 */
import { baseLayout, type PlotlyFigure } from '../theme';
import { seedBand, seedStats } from './generateDynamics';
import { bandNote, bandTraces, orderedMethods, type DynamicsInput } from './fig4a';

/** Numbers C8 quotes (keys under c8/). */
export function c8Numbers(input: DynamicsInput): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of orderedMethods(input)) {
    const c = input[m];
    for (const k of ['pass1', 'pass4', 'pass8'] as const) {
      const s = seedStats(c[k].map((x) => x[x.length - 1]));
      out[`c8/${k}_final_${m}`] = s.mean;
      out[`c8/${k}_final_${m}_ci95`] = s.ci95;
    }
    const band = seedBand(c.pass1);
    out[`c8/pass1_initial_${m}`] = band.mean[0];
    out[`c8/pass1_min_${m}`] = Math.min(...band.mean);
    out[`c8/pass1_min_step_${m}`] = c.evalStep[band.mean.indexOf(Math.min(...band.mean))];
  }
  return out;
}

/** The Fig. 6 plotly spec (file header). */
export function fig6TrainingCurves(input: DynamicsInput): PlotlyFigure {
  const methods = orderedMethods(input);
  const data = [
    ...methods.flatMap((m) => bandTraces(m, input[m].evalStep, input[m].pass1)),
    ...methods.flatMap((m) => bandTraces(m, input[m].evalStep, input[m].pass8, { xaxis: 'x2', yaxis: 'y2', showlegend: false })),
  ];
  const base = baseLayout({
    title: `Accuracy over training (AOPD Fig. 6)<br><sub>${bandNote(input)}</sub>`,
    xTitle: 'training step',
    yTitle: 'pass@1 (held-out math)',
  });
  const ax = base.xaxis as Record<string, unknown>;
  const ay = base.yaxis as Record<string, unknown>;
  return {
    data,
    layout: {
      ...base,
      xaxis: { ...ax, domain: [0, 0.45] },
      yaxis: { ...ay, rangemode: 'tozero' },
      xaxis2: { ...ax, domain: [0.55, 1], anchor: 'y2', title: { text: 'training step' } },
      yaxis2: { ...ay, anchor: 'x2', rangemode: 'tozero', title: { text: 'pass@8 (held-out math)' } },
      legend: { orientation: 'h', x: 0, y: -0.28, xanchor: 'left', yanchor: 'top' },
      margin: { l: 70, r: 20, t: 70, b: 130 },
      width: 900,
      height: 480,
    },
  };
}
