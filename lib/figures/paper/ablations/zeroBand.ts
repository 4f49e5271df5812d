/**
 * The zero-advantage band (notebook 03; claim C6's AOPD-Zero): how much of the advantage mass sits near A = 0 and
 * what each AOPD variant does there.
 *
 *   band          |A_t| < eps, A_t = log pT(y_t) - log pS(y_t) on the student's rollouts (eps = 0.05, aopd-zero's
 *                 epsZero default; lib/analysis/intervention.ts)
 *   zero share    share of masked-in tokens in the band (metrics.jsonl intervention/aopd_zero_ratio)
 *   imitated      share of all tokens that the variant sends to imitation inside the band:
 *                   aopd (any eta)   intervention/ratio_zero_band at the run's eta (exactly its mask)
 *                   aopd-zero        its whole intervention ratio (it imitates only inside the band)
 *                   aopd-acc         intervention/ratio_zero_band at eta: an UPPER bound (the eta rule without the
 *                                    accuracy filter, which keeps correct rollouts on the policy gradient)
 *                   opd              0 (no imitation branch)
 *   band covered  imitated / zero share, per step, then averaged: the share of the band that gets a learning signal
 *                 beyond the policy gradient (which is ~0 there: A ~ 0 scales it)
 *
 * `bandShares` is the static version on one set of advantages (e.g. c1c2.json's warm-up rollouts): the share of
 * tokens with |A| < eps over a grid of eps.
 */
import { baseLayout, type PlotlyFigure } from '../../theme';
import { seedStats, tailMeans } from '../generateDynamics';
import { axisVariants, headMeans, RATIO_FRAC, seriesBandTraces, variantLabel, VARIANT_COLOUR_INDEX, variantStyle } from './common';
import type { AblationsData, VariantRuns } from './data';

/** Band half-width of the stored zero-band metrics (aopd-zero's epsZero default). */
export const ZERO_BAND_EPS = 0.05;

/** Share of the values with |a| < eps, for each eps (NaN-free input required). */
export function bandShares(advantages: readonly number[], eps: readonly number[] = [0.001, 0.01, 0.05, 0.1, 0.5, 1]): { eps: number; share: number }[] {
  if (advantages.length === 0) throw new Error('bandShares: advantages must hold at least one value');
  for (const e of eps) if (!(e > 0)) throw new Error(`bandShares: every eps must be > 0, got ${e}`);
  return eps.map((e) => ({ eps: e, share: advantages.filter((a) => Math.abs(a) < e).length / advantages.length }));
}

/** Per seed, per step, the share of all tokens the variant imitates inside the band (header). */
export function imitatedInBand(v: VariantRuns): { series: number[][]; exact: boolean } {
  if (v.method === 'opd') return { series: v.zeroShare.map((s) => s.map(() => 0)), exact: true };
  if (v.method === 'aopd-zero') {
    if (!v.interventionRatio) throw new Error(`imitatedInBand: '${v.id}' has no intervention ratio`);
    return { series: v.interventionRatio, exact: true };
  }
  return { series: v.zeroImitated, exact: v.method === 'aopd' };
}

export interface ZeroBandRow {
  variant: string;
  label: string;
  /** Mean over seeds of the zero share over the first / last 10% of steps. */
  zeroShareInitial: number;
  zeroShareFinal: number;
  /** Mean over seeds and steps of the share of all tokens imitated inside the band. */
  imitatedInBand: number;
  /** Mean over seeds and steps of imitated / zero share (steps with an empty band skipped). */
  bandCovered: number;
  /** Mean over seeds and steps of the variant's whole intervention ratio (0 for opd). */
  ratio: number;
  /** False where `imitatedInBand` is an upper bound (aopd-acc). */
  exact: boolean;
}

const mean = (xs: number[]): number => seedStats(xs).mean;

/** One row per setting of specs/location.json, in spec order (header). */
export function zeroBandSummary(data: AblationsData): ZeroBandRow[] {
  return axisVariants(data, 'location').map(({ v }) => {
    const imit = imitatedInBand(v);
    const covered = v.zeroShare.map((s, i) => {
      const r = s.map((z, t) => (z > 0 ? imit.series[i][t] / z : NaN)).filter(Number.isFinite);
      return r.length ? r.reduce((a, b) => a + b, 0) / r.length : NaN;
    });
    return {
      variant: v.id,
      label: variantLabel(v),
      zeroShareInitial: mean(headMeans(v.zeroShare, RATIO_FRAC)),
      zeroShareFinal: mean(tailMeans(v.zeroShare, RATIO_FRAC)),
      imitatedInBand: mean(tailMeans(imit.series, 1)),
      bandCovered: mean(covered),
      ratio: v.interventionRatio ? mean(tailMeans(v.interventionRatio, 1)) : 0,
      exact: imit.exact,
    };
  });
}

/** Zero-band share over training per location variant (left) and the share imitated inside it (right). */
export function zeroBandDynamics(data: AblationsData): PlotlyFigure {
  const arms = axisVariants(data, 'location');
  const traces = arms.flatMap(({ v }) => {
    const style = variantStyle(v, VARIANT_COLOUR_INDEX);
    return [
      ...seriesBandTraces(style, v.trainStep, v.zeroShare),
      ...seriesBandTraces(style, v.trainStep, imitatedInBand(v).series, { xaxis: 'x2', yaxis: 'y2', showlegend: false }),
    ];
  });
  const base = baseLayout({
    title: `The zero-advantage band |A| < ${ZERO_BAND_EPS} on the student's rollouts<br><sub>left: its share of tokens; right: share of all tokens imitated inside it (aopd-acc: upper bound); line mean, band min to max over seeds</sub>`,
    xTitle: 'training step',
    yTitle: `share of tokens with |A| < ${ZERO_BAND_EPS}`,
  });
  const ax = base.xaxis as Record<string, unknown>;
  const ay = base.yaxis as Record<string, unknown>;
  return {
    data: traces,
    layout: {
      ...base,
      xaxis: { ...ax, domain: [0, 0.45] },
      yaxis: { ...ay, rangemode: 'tozero' },
      xaxis2: { ...ax, domain: [0.55, 1], anchor: 'y2' },
      yaxis2: { ...ay, anchor: 'x2', rangemode: 'tozero', title: { text: 'share of tokens imitated inside the band' } },
      legend: { orientation: 'h', x: 0, y: -0.22, xanchor: 'left', yanchor: 'top' },
      margin: { l: 70, r: 20, t: 80, b: 120 },
      width: 980,
      height: 480,
    },
  };
}
