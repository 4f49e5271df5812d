/**
 * AOPD intervention ratio (AOPD Eq. 9; claims C6, C13).
 *
 *   d_t = pT(y_t) - pS(y_t)                 gap in probability space (methods.md section 2, "Mask direction")
 *   M_t = 1[d_t <= eta]                      1 = imitation (forward-KL) branch, 0 = policy-gradient branch
 *   A_t = log pT(y_t) - log pS(y_t)          (sign(A_t) = sign(d_t): log is monotone)
 *
 * Over the n masked-in tokens:
 *   intervention/ratio             (1/n) sum_t M_t
 *   intervention/ratio_zero_band   (1/n) sum_t M_t 1[|A_t| < zeroEps]          the near-zero-advantage region
 *   intervention/ratio_negative    (1/n) sum_t M_t 1[A_t <= -zeroEps]          the clearly negative region
 *   intervention/ratio_positive    (1/n) sum_t M_t 1[A_t >= zeroEps]           only possible for eta > 0
 *   (the three parts add up to the ratio), plus intervention/eta and intervention/zero_eps, and
 *   intervention/aopd_zero_ratio   (1/n) sum_t 1[|A_t| < zeroEps]          the ratio aopd-zero has with epsZero = zeroEps
 * Note: the aopd objective's own metrics intervention/zero_band and intervention/negative are shares of the
 * *intervened* tokens (band |A| < 1e-3, and A < 0); the keys here are shares of *all* masked-in tokens.
 * eta = -1 gives ratio 0 (OPD), eta = 1 gives ratio 1 (top-K forward KL everywhere), eta = 0 intervenes exactly on
 * the tokens with A <= 0. `interventionCurve` gives the ratio and its parts over a grid of eta.
 */
import * as tf from '@tensorflow/tfjs';
import { teacherSampledLogprobs, validateBatch } from '../objectives/batch';
import type { DistillBatch } from '../objectives/types';
import { tokenLogprobs } from '../probs/gather';
import { assertFiniteMasked, maskCount, readValues, requireTokens, resolveMask, type PerTokenValues } from './values';

export interface InterventionInput {
  /** [N] log pT(y_t). */
  teacherLogprobs_N: PerTokenValues;
  /** [N] log pS(y_t). */
  studentLogprobs_N: PerTokenValues;
  /** [N] 0/1; default all ones. */
  mask_N?: ArrayLike<number>;
}

export interface InterventionOptions {
  /** Threshold eta of M_t = 1[pT(y) - pS(y) <= eta]. Default 0 (standard AOPD). */
  eta: number;
  /** Half-width of the zero band |A| < zeroEps. Default 0.05 (aopd-zero's epsZero default). */
  zeroEps: number;
}

export const DEFAULT_INTERVENTION_OPTIONS: Readonly<InterventionOptions> = { eta: 0, zeroEps: 0.05 };

export interface InterventionStats {
  /** [N] M_t (0 on masked-out tokens). */
  mask_N: Uint8Array;
  metrics: Record<string, number>;
}

export interface InterventionCurve {
  eta_G: Float64Array;
  ratio_G: Float64Array;
  zeroBand_G: Float64Array;
  negative_G: Float64Array;
  positive_G: Float64Array;
}

/** The masked-in (d_t, A_t) pairs in float64. */
function gaps(op: string, input: InterventionInput): { d: Float64Array; a: Float64Array; mask: ArrayLike<number> } {
  const lT = readValues(op, 'teacherLogprobs_N', input.teacherLogprobs_N);
  const lS = readValues(op, 'studentLogprobs_N', input.studentLogprobs_N);
  const n = lT.length;
  if (lS.length !== n) throw new Error(`${op}: studentLogprobs_N must have length ${n} like teacherLogprobs_N, got ${lS.length}`);
  const mask = resolveMask(op, input.mask_N, n);
  assertFiniteMasked(op, 'teacherLogprobs_N', lT, mask);
  assertFiniteMasked(op, 'studentLogprobs_N', lS, mask);
  const count = maskCount(mask);
  requireTokens(op, count, n);
  const d = new Float64Array(count);
  const a = new Float64Array(count);
  let j = 0;
  for (let i = 0; i < n; i++) {
    if (mask[i] === 0) continue;
    d[j] = Math.exp(lT[i]) - Math.exp(lS[i]);
    a[j] = lT[i] - lS[i];
    j++;
  }
  return { d, a, mask };
}

function checkOptions(op: string, eta: number, zeroEps: number): void {
  if (!Number.isFinite(eta)) throw new Error(`${op}: eta must be a finite number, got ${eta}`);
  if (!(zeroEps > 0) || !Number.isFinite(zeroEps)) throw new Error(`${op}: zeroEps must be a finite number > 0, got ${zeroEps}`);
}

function ratios(d: Float64Array, a: Float64Array, eta: number, zeroEps: number): [number, number, number, number] {
  let all = 0, zero = 0, neg = 0, pos = 0;
  for (let j = 0; j < d.length; j++) {
    if (!(d[j] <= eta)) continue;
    all++;
    if (Math.abs(a[j]) < zeroEps) zero++;
    else if (a[j] < 0) neg++;
    else pos++;
  }
  const n = d.length;
  return [all / n, zero / n, neg / n, pos / n];
}

/** Intervention ratio and its split for one eta (file header). */
export function interventionStats(input: InterventionInput, options: Partial<InterventionOptions> = {}): InterventionStats {
  const op = 'interventionStats';
  const { eta, zeroEps } = { ...DEFAULT_INTERVENTION_OPTIONS, ...options };
  checkOptions(op, eta, zeroEps);
  const { d, a, mask } = gaps(op, input);
  const [ratio, zero, neg, pos] = ratios(d, a, eta, zeroEps);
  let band = 0;
  for (let j = 0; j < a.length; j++) if (Math.abs(a[j]) < zeroEps) band++;
  const m = new Uint8Array(mask.length);
  let j = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) m[i] = d[j++] <= eta ? 1 : 0;
  return {
    mask_N: m,
    metrics: {
      'intervention/ratio': ratio,
      'intervention/ratio_zero_band': zero,
      'intervention/ratio_negative': neg,
      'intervention/ratio_positive': pos,
      'intervention/aopd_zero_ratio': band / a.length,
      'intervention/eta': eta,
      'intervention/zero_eps': zeroEps,
      'intervention/count': d.length,
    },
  };
}

/** The ratio and its parts over a grid of eta (default 41 points from -1 to 1). */
export function interventionCurve(input: InterventionInput, etaGrid?: ArrayLike<number>, zeroEps = DEFAULT_INTERVENTION_OPTIONS.zeroEps): InterventionCurve {
  const op = 'interventionCurve';
  const eta_G = Float64Array.from(etaGrid ?? Array.from({ length: 41 }, (_, i) => -1 + i * 0.05));
  for (const e of eta_G) checkOptions(op, e, zeroEps);
  const { d, a } = gaps(op, input);
  const out: InterventionCurve = {
    eta_G,
    ratio_G: new Float64Array(eta_G.length),
    zeroBand_G: new Float64Array(eta_G.length),
    negative_G: new Float64Array(eta_G.length),
    positive_G: new Float64Array(eta_G.length),
  };
  eta_G.forEach((eta, g) => {
    [out.ratio_G[g], out.zeroBand_G[g], out.negative_G[g], out.positive_G[g]] = ratios(d, a, eta, zeroEps);
  });
  return out;
}

/** log pT(y) and log pS(y) of a batch (student at temperature 1), ready for the functions above. */
export function sampledLogprobsFromBatch(batch: DistillBatch): InterventionInput {
  validateBatch('sampledLogprobsFromBatch', batch, ['teacherSampled'], ['full', 'topk']);
  const studentLogprobs_N = tf.tidy(() => tokenLogprobs(tf.logSoftmax(batch.studentLogits_NV) as tf.Tensor2D, batch.tokens_N).dataSync() as Float32Array);
  return { teacherLogprobs_N: teacherSampledLogprobs(batch), studentLogprobs_N, mask_N: batch.mask_N };
}
