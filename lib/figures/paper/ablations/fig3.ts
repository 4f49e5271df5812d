/**
 * AOPD Fig. 3 / Fig. 9 (claim C4): the JSD(beta) family in AOPD's imitation branch (specs/beta.json; beta = 0 is
 * forward KL(pT || pS), the default, beta = 1 reverse KL(pS || pT), GKD/TRL convention, lib/objectives/aopd.ts).
 * Three panels over training steps, one curve per beta (line = mean over seeds, band = min to max over seeds):
 * gradient norm ||dL/dtheta||_2 before Adam (log axis), the student's policy entropy on its rollouts (nats), and the
 * intervention ratio (share of tokens on the imitation branch). The claim reads as beta = 0 having the smoothest
 * gradient norm, and towards beta = 1 the entropy surging then collapsing and the intervention ratio plummeting.
 *
 * Numbers (`c4Numbers`, keys c4/<what>_beta<b>): gradnorm_mean (mean over all steps), gradnorm_roughness (per seed
 * the mean over steps of |log g_t - log g_{t-1}|: scale-free step-to-step jitter, 0 = perfectly smooth),
 * entropy_initial / entropy_final (first / last 10% of steps), entropy_peak (per seed the largest value) and
 * entropy_peak_step (the step of the largest mean), ratio_initial / ratio_final, pass1_final; each mean + _ci95
 * over seeds (common.ts).
 */
import { baseLayout, seriesColour, type PlotlyFigure } from '../../theme';
import { seedBand, tailMeans } from '../generateDynamics';
import { axisVariants, finalPass1, headMeans, putStats, ratioFinal, ratioInitial, ratioSeries, RATIO_FRAC, seedsNote, seriesBandTraces, valueSlug, type SeriesStyle } from './common';
import type { AblationsData } from './data';

/** Label of a beta value, naming the ends of the family. */
export function betaLabel(beta: number | string): string {
  const b = Number(beta);
  return `β = ${String(beta)}${b === 0 ? ' (forward KL)' : b === 1 ? ' (reverse KL)' : ''}`;
}

/** Per seed the mean of |log g_t - log g_{t-1}| over the steps (0 for a constant series; needs g > 0). */
export function logRoughness(perSeed: readonly (readonly number[])[]): number[] {
  return perSeed.map((s) => {
    if (s.length < 2) return NaN;
    let sum = 0;
    for (let t = 1; t < s.length; t++) sum += Math.abs(Math.log(s[t]) - Math.log(s[t - 1]));
    return sum / (s.length - 1);
  });
}

export function c4Numbers(data: AblationsData): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { value, v } of axisVariants(data, 'beta')) {
    const slug = valueSlug('beta', value);
    putStats(out, `c4/gradnorm_mean_${slug}`, tailMeans(v.gradNorm, 1));
    putStats(out, `c4/gradnorm_roughness_${slug}`, logRoughness(v.gradNorm));
    putStats(out, `c4/entropy_initial_${slug}`, headMeans(v.entropy, RATIO_FRAC));
    putStats(out, `c4/entropy_final_${slug}`, tailMeans(v.entropy, RATIO_FRAC));
    putStats(out, `c4/entropy_peak_${slug}`, v.entropy.map((s) => Math.max(...s)));
    const mean = seedBand(v.entropy).mean;
    out[`c4/entropy_peak_step_${slug}`] = v.trainStep[mean.indexOf(Math.max(...mean))];
    putStats(out, `c4/ratio_initial_${slug}`, ratioInitial(v));
    putStats(out, `c4/ratio_final_${slug}`, ratioFinal(v));
    putStats(out, `c4/pass1_final_${slug}`, finalPass1(v));
  }
  return out;
}

/** The Fig. 3 / 9 plotly spec (file header). */
export function fig3JsdFamilyDynamics(data: AblationsData): PlotlyFigure {
  const arms = axisVariants(data, 'beta');
  const styles: SeriesStyle[] = arms.map((a, i) => ({ label: betaLabel(a.value), colour: seriesColour(i), group: a.v.id }));
  const traces = arms.flatMap((a, i) => [
    ...seriesBandTraces(styles[i], a.v.trainStep, a.v.gradNorm),
    ...seriesBandTraces(styles[i], a.v.trainStep, a.v.entropy, { xaxis: 'x2', yaxis: 'y2', showlegend: false }),
    ...seriesBandTraces(styles[i], a.v.trainStep, ratioSeries(a.v), { xaxis: 'x3', yaxis: 'y3', showlegend: false }),
  ]);
  const base = baseLayout({
    title: `AOPD imitation branch, JSD(β) family: training dynamics (AOPD Fig. 3 / 9)<br><sub>line: mean, band: min to max over seeds; ${seedsNote(arms.map((a) => a.v))}</sub>`,
    xTitle: 'training step',
    yTitle: 'gradient norm ||dL/dθ||₂ (before Adam)',
    yLog: true,
  });
  const ax = base.xaxis as Record<string, unknown>;
  const ay = base.yaxis as Record<string, unknown>;
  const lin = { ...ay, type: '-' };
  return {
    data: traces,
    layout: {
      ...base,
      xaxis: { ...ax, domain: [0, 0.28] },
      xaxis2: { ...ax, domain: [0.36, 0.64], anchor: 'y2' },
      xaxis3: { ...ax, domain: [0.72, 1], anchor: 'y3' },
      yaxis2: { ...lin, anchor: 'x2', title: { text: 'policy entropy (nats, on rollouts)' } },
      yaxis3: { ...lin, anchor: 'x3', rangemode: 'tozero', title: { text: 'intervention ratio (imitated share)' } },
      legend: { orientation: 'h', x: 0, y: -0.25, xanchor: 'left', yanchor: 'top' },
      margin: { l: 70, r: 20, t: 80, b: 120 },
      width: 1150,
      height: 460,
    },
  };
}
