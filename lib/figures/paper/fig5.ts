/**
 * AOPD Fig. 5 (claim C7): the student's policy entropy over training, H(pS(.|prefix)) in nats averaged over the
 * response tokens of each step's rollouts (metrics.jsonl entropy/student_mean), for OPD, AOPD and GKD; line = mean
 * over seeds, band = min to max over seeds. The claim reads as AOPD above GKD above OPD. Numbers: `c7Numbers`
 * (per seed the mean over the last 10% of steps and over all steps; mean and 95% CI half-width over seeds).
 */
import { baseLayout, type PlotlyFigure } from '../theme';
import { seedStats, tailMeans } from './generateDynamics';
import { bandNote, bandTraces, FINAL_FRAC, orderedMethods, type DynamicsInput } from './fig4a';

/** Numbers C7 quotes (keys under c7/). */
export function c7Numbers(input: DynamicsInput): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of orderedMethods(input)) {
    const fin = seedStats(tailMeans(input[m].entropy, FINAL_FRAC));
    out[`c7/entropy_final_${m}`] = fin.mean;
    out[`c7/entropy_final_${m}_ci95`] = fin.ci95;
    const all = seedStats(tailMeans(input[m].entropy, 1));
    out[`c7/entropy_mean_${m}`] = all.mean;
    out[`c7/entropy_mean_${m}_ci95`] = all.ci95;
    out[`c7/entropy_first_${m}`] = seedStats(input[m].entropy.map((s) => s[0])).mean;
  }
  return out;
}

/** The Fig. 5 plotly spec (file header). */
export function fig5Entropy(input: DynamicsInput): PlotlyFigure {
  return {
    data: orderedMethods(input).flatMap((m) => bandTraces(m, input[m].trainStep, input[m].entropy)),
    layout: baseLayout({
      title: `Policy entropy over training (AOPD Fig. 5)<br><sub>${bandNote(input)}</sub>`,
      xTitle: 'training step',
      yTitle: 'student entropy on its rollouts (nats / token)',
      extra: { margin: { l: 70, r: 20, t: 70, b: 60 } },
    }),
  };
}
