/**
 * G-OPD / ExOPD: generalised on-policy distillation with a reward scale lambda and a reference model.
 *
 *   A_t = sg[ lambda * log pT(y_t) + (1 - lambda) * log pRef(y_t) - log pS(y_t) ]
 *       = lambda * (log pT - log pRef) - (log pS - log pRef)          (reward minus KL to the reference)
 *   l_t = -A_t * log pS(y_t)                                          (lib/objectives/pg.ts)
 *   loss = sum_t w_t l_t,  w = reductionWeights(mask, reduction, seqIds)
 *
 * Optimum of the sequence objective: pS* ∝ pT^lambda pRef^(1 - lambda). lambda = 1 is standard OPD (A = log pT -
 * log pS, pRef unused); 0 < lambda < 1 interpolates towards pRef; lambda > 1 extrapolates beyond the teacher
 * (ExOPD, recipe value 1.25); lambda = 0 distils the reference itself (A = log pRef - log pS).
 *
 * Source: Yang et al. 2026, "Learning beyond Teacher", arXiv 2602.12125, the per-token advantage written as the
 * paper's Eq. 22 (negated "reverse_kl") — methods.md section 4, [code] (RUCBM/G-OPD dp_actor.py advantage block,
 * `lambda_vals`) + [2nd] for the objective. The equation number is from a secondary source, unverified in the PDF.
 *
 * Inputs: batch.studentLogits_NV [N, V] (differentiable), tokens_N [N], mask_N [N], the teacher (full logits or
 * top-K dump: only log pT(y_t) is read), refLogprobs_N [N] = log pRef(y_t) (not needed when lambda = 1).
 *
 * Metrics: adv/mean (mean A_t over masked tokens), adv/neg_share (share of masked tokens with A_t < 0),
 * reward/teacher_ref (mean log pT - log pRef over masked tokens; only when refLogprobs_N is given).
 *
 * Deliberate deviations: the repo feeds A_t to verl's PPO-clip surrogate (eps 0.2, dual-clip 3) with rollout
 * importance correction; here the on-policy policy gradient -A_t log pS is used (the surrogate's gradient at
 * ratio 1, where no clipping is active). log pS inside A_t is the current student log-prob, detached (the repo's
 * `old_log_prob`, equal on-policy).
 */
import { teacherSampledLogprobs } from './batch';
import { maskedMean, pgLoss, studentSampledLogprobs } from './pg';
import { registerObjective } from './registry';
import { reductionWeights } from './types';

export interface GopdOptions {
  /** Reward scale lambda >= 0 (finite). 1 = standard OPD (no reference needed); > 1 = ExOPD. Default 1.25 (ExOPD recipe). */
  lambda: number;
}

export const GOPD_DEFAULTS: GopdOptions = { lambda: 1.25 };

export const gopd = registerObjective<GopdOptions>({
  name: 'gopd',
  summary: 'G-OPD / ExOPD: OPD with reward scale lambda against a reference model (lambda = 1 is OPD)',
  formula: 'A_t = sg[lambda log pT(y_t) + (1 - lambda) log pRef(y_t) - log pS(y_t)];  l_t = -A_t log pS(y_t)',
  source: 'Yang et al. 2026, arXiv 2602.12125, Eq. 22 (via secondary source; code: RUCBM/G-OPD dp_actor.py)',
  // refLogprobs is required only for lambda != 1, so it is checked in compute rather than listed here
  needs: ['teacherSampled'],
  teacherForms: ['full', 'topk'],
  defaults: GOPD_DEFAULTS,
  fused: false,
  gradientOf: 'surrogate',
  compute(batch, options, reduction) {
    const { lambda } = options;
    if (typeof lambda !== 'number' || !Number.isFinite(lambda) || lambda < 0) {
      throw new Error(`gopd: option lambda must be a finite number >= 0, got ${String(lambda)}`);
    }
    const ref = batch.refLogprobs_N;
    if (lambda !== 1 && !ref) {
      throw new Error(
        `gopd: lambda = ${lambda} needs batch.refLogprobs_N ([N] reference log-probs log pRef(y_t)); only lambda = 1 (plain OPD) works without it`,
      );
    }
    const mask_N = batch.mask_N;
    const n = mask_N.length;
    const logpT_N = teacherSampledLogprobs(batch);
    const { logpS_N, values_N: logpSv_N } = studentSampledLogprobs(batch.studentLogits_NV, batch.tokens_N);

    const adv_N = new Float64Array(n);
    let negatives = 0;
    let count = 0;
    for (let i = 0; i < n; i++) {
      const mix = lambda === 1 ? logpT_N[i] : lambda * logpT_N[i] + (1 - lambda) * ref![i];
      adv_N[i] = mix - logpSv_N[i];
      if (mask_N[i] !== 0) {
        count++;
        if (adv_N[i] < 0) negatives++;
      }
    }
    const weights_N = reductionWeights(mask_N, reduction, batch.seqIds_N);
    const { loss, perToken_N } = pgLoss(logpS_N, logpSv_N, adv_N, weights_N, mask_N);

    const metrics: Record<string, number> = {
      'adv/mean': maskedMean(adv_N, mask_N),
      'adv/neg_share': count > 0 ? negatives / count : 0,
    };
    if (ref) {
      const diff_N = new Float64Array(n);
      for (let i = 0; i < n; i++) diff_N[i] = logpT_N[i] - ref[i];
      metrics['reward/teacher_ref'] = maskedMean(diff_N, mask_N);
    }
    return { loss, perToken_N, metrics };
  },
});
