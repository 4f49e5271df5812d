/**
 * OPD+: on-policy distillation with an unbiased f-divergence advantage.
 *
 *   log u_t = clamp( sg[log pT(y_t) - log pS(y_t)], -c, +c )        c = clampLogU (0 = no clamp)
 *   w_t     = -f(u_t) + u_t f'(u_t)    weight 'unbiased' (OPD+)
 *           = -f(u_t)                  weight 'stopGrad' (plain OPD with reward -f(u); biased unless f = reverse KL)
 *   l_t     = -w_t * log pS(y_t)       (lib/objectives/pg.ts); loss = sum_t w_t^red l_t
 *
 * Why: D_f(pT || pS) = E_{y~pS}[f(u(y))] and grad u = -u grad log pS, so
 *   grad D_f = E_{y~pS}[ (f(u) - u f'(u)) grad log pS(y) ] = E[ -w_f(u) grad log pS(y) ],
 * i.e. with the unbiased weight the expected gradient of l_t is exactly grad D_f (per position, over the full
 * vocabulary). The stop-gradient weight -f(u) drops the E[u f'(u) grad log pS] term; for reverse KL u f'(u) = -1
 * has zero expected score, so there (and only there) both weights give the same expected gradient
 * (unbiased = stopGrad - 1). f and u f'(u) come from lib/probs/fdivergences.ts.
 *
 * Source: Zhao et al. 2026, "OPD+", arXiv 2606.01039 — methods.md section 5: the weight table is [2nd] (the
 * siyux1927/opd reproduction quoting the paper's Table 1) and re-derived [recon]; no equation number verified.
 * The clamp of log u to +-6 and "no advantage normalisation" are from the reproduction, not the paper.
 *
 * Inputs: batch.studentLogits_NV [N, V] (differentiable), tokens_N [N], mask_N [N], the teacher (full logits or
 * top-K dump: only log pT(y_t) is read).
 *
 * Metrics: adv/mean and adv/max (w_t over masked tokens), clip/fraction (share of masked tokens whose log u was
 * clamped).
 *
 * Deliberate deviations: on-policy policy gradient instead of an IS/PPO surrogate; log pS inside u is the
 * current student log-prob, detached. An advantage that overflows (possible only with clampLogU = 0 and a
 * huge log u, e.g. forwardKL / chiSquared) is an error rather than a silent Infinity.
 */
import * as tf from '@tensorflow/tfjs';
import { F_DIVERGENCES, stopGradAdvantage, unbiasedWeight, type FDivergenceName } from '../probs/fdivergences';
import { teacherSampledLogprobs } from './batch';
import { maskedMean, pgLoss, studentSampledLogprobs } from './pg';
import { registerObjective } from './registry';
import { reductionWeights } from './types';

export type OpdPlusWeight = 'unbiased' | 'stopGrad';
const WEIGHTS: readonly OpdPlusWeight[] = ['unbiased', 'stopGrad'];

export interface OpdPlusOptions {
  /** The f of D_f(pT || pS) = E_{y~pS} f(pT/pS): reverseKL, forwardKL, jsd, totalVariation, chiSquared, hellinger. Default 'forwardKL'. */
  divergence: FDivergenceName;
  /** 'unbiased' = -f(u) + u f'(u) (OPD+); 'stopGrad' = -f(u) (the biased stop-gradient baseline). Default 'unbiased'. */
  weight: OpdPlusWeight;
  /** Clamp log u to [-clampLogU, clampLogU]; 0 = no clamp. Default 6 (the reproduction's value). */
  clampLogU: number;
}

export const OPDPLUS_DEFAULTS: OpdPlusOptions = { divergence: 'forwardKL', weight: 'unbiased', clampLogU: 6 };

export const opdplus = registerObjective<OpdPlusOptions>({
  name: 'opdplus',
  summary: 'OPD+: sampled-token policy gradient with the unbiased f-divergence weight -f(u) + u f\'(u), u = pT/pS',
  formula: "log u_t = clamp(sg[log pT(y_t) - log pS(y_t)]);  w_t = -f(u_t) + u_t f'(u_t) (or -f(u_t));  l_t = -w_t log pS(y_t)",
  source: 'Zhao et al. 2026, arXiv 2606.01039, Table 1 (via the siyux1927/opd reproduction; re-derived)',
  needs: ['teacherSampled'],
  teacherForms: ['full', 'topk'],
  defaults: OPDPLUS_DEFAULTS,
  fused: false,
  gradientOf: 'surrogate',
  compute(batch, options, reduction) {
    const { divergence, weight, clampLogU } = options;
    if (!F_DIVERGENCES.includes(divergence)) {
      throw new Error(`opdplus: option divergence must be one of ${F_DIVERGENCES.join(', ')}, got '${String(divergence)}'`);
    }
    if (!WEIGHTS.includes(weight)) throw new Error(`opdplus: option weight must be one of ${WEIGHTS.join(', ')}, got '${String(weight)}'`);
    if (typeof clampLogU !== 'number' || !Number.isFinite(clampLogU) || clampLogU < 0) {
      throw new Error(`opdplus: option clampLogU must be a finite number >= 0 (0 = no clamp), got ${String(clampLogU)}`);
    }
    const mask_N = batch.mask_N;
    const n = mask_N.length;
    const logpT_N = teacherSampledLogprobs(batch);
    const { logpS_N, values_N: logpSv_N } = studentSampledLogprobs(batch.studentLogits_NV, batch.tokens_N);

    const logu_N = new Float32Array(n);
    let clipped = 0;
    let count = 0;
    for (let i = 0; i < n; i++) {
      let lu = logpT_N[i] - logpSv_N[i];
      if (clampLogU > 0 && Math.abs(lu) > clampLogU) {
        lu = Math.sign(lu) * clampLogU;
        if (mask_N[i] !== 0) clipped++;
      }
      logu_N[i] = lu;
      if (mask_N[i] !== 0) count++;
    }
    const adv_N = tf.tidy(() => {
      const logu = tf.tensor1d(logu_N);
      return (weight === 'unbiased' ? unbiasedWeight(divergence, logu) : stopGradAdvantage(divergence, logu)).dataSync() as Float32Array;
    });
    let advMax = count > 0 ? -Infinity : 0;
    for (let i = 0; i < n; i++) {
      if (mask_N[i] === 0) continue;
      if (!Number.isFinite(adv_N[i])) {
        throw new Error(
          `opdplus: the ${weight} ${divergence} advantage is not finite at token ${i} (log u = ${logu_N[i]}); set option clampLogU > 0`,
        );
      }
      advMax = Math.max(advMax, adv_N[i]);
    }
    const weights_N = reductionWeights(mask_N, reduction, batch.seqIds_N);
    const { loss, perToken_N } = pgLoss(logpS_N, logpSv_N, adv_N, weights_N, mask_N);
    return {
      loss,
      perToken_N,
      metrics: {
        'adv/mean': maskedMean(adv_N, mask_N),
        'adv/max': advMax,
        'clip/fraction': count > 0 ? clipped / count : 0,
      },
    };
  },
});
