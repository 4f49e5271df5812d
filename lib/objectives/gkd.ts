/**
 * gkd — Generalised Knowledge Distillation: the generalised Jensen-Shannon divergence between teacher and student
 * at every token, on the full vocabulary or on the teacher's top-K support.
 *
 *   l_t  = JSD_beta(pT || pS) = beta KL(pT || M) + (1 - beta) KL(pS || M),   M = beta pT + (1 - beta) pS
 *          beta = 0: exactly KL(pT || pS) (forward);  beta = 1: exactly KL(pS || pT) (reverse)
 *   pS   = softmax(zS / tau),  pT = softmax(zT / tau)   (both logit sets divided by the temperature, as TRL)
 *   loss = sum_t w_t l_t,  w = reductionWeights(mask, reduction, seqIds)   (TRL "batchmean" = token-mean)
 *
 * Support (topK = K >= 1): S_t = the teacher's top-K ids; both sides are restricted to S_t and normalised by
 * `supportNorm` (lib/probs/topk.ts): 'none' = full-vocabulary log-probs on S_t (sub-normalised), 'both' =
 * renormalised on S_t, 'tailBucket' = S_t plus one bucket log(1 - mass on S_t) (dropped when K = V, where it is
 * empty). JSD_beta is then taken over those columns with the same formula.
 *
 * Source: Agarwal et al., ICLR 2024, arXiv 2306.13649, Eq. 1 (methods.md section 3, [paper]/[recon]); semantics of
 * TRL `generalized_jsd_loss` (trl/experimental/gkd/gkd_trainer.py, [code]): log M = logsumexp(log pS + log(1-beta),
 * log pT + log beta), exact KLs at the ends. Fused gradient: Liger-Kernel jsd.py's dX = (1-beta) Q (X - log M)
 * chained through the log-softmax (derivation in kernels/divergenceRows.ts); the full-vocabulary kernel is SIMD
 * (lib/kernels jsdRows, float32 with float64 row sums), the support kernel plain JS in float64.
 *
 * Inputs: batch.studentLogits_NV [N, V] (differentiable), mask_N [N], the teacher: full logits_NV [N, V] (any
 * topK) or a top-K dump (topK in [1, k] only).
 *
 * Deliberate deviations / conventions:
 *   - The interior (0 < beta < 1) is a *scaled* divergence (about beta KL(T||S) as beta -> 0), so the loss jumps
 *     at beta = 0 and beta = 1 (TRL #6780, ms-swift #10213); that is TRL's behaviour and is kept.
 *   - TRL's GKDTrainer calls the loss at temperature 1 (its `temperature` 0.9 is the sampling one); here
 *     `temperature` is the loss temperature and defaults to 1. No tau^2 factor is applied (TRL applies none).
 *   - A top-K dump holds log-probs at temperature 1; with temperature != 1 it supports only supportNorm 'both'
 *     (renormalising logpT / tau on S_t is exact; 'none' and 'tailBucket' would need the full normaliser).
 *   - The teacher's support columns are detached data, formed in float64: from full logits in the fused path,
 *     selected on the logits in place (ties to the lower id) with an exact off-support tail; in the composed path
 *     (no kernel code) from a tfjs log-softmax at tau, its top-K and a tfjs logsumexp off the support; from a dump,
 *     its log-probs with the tail log(1 - top-K mass) floored at log(1e-30) (lib/probs log1mexp's clamp), since a
 *     dump's top-K mass can round to >= 1. The student's tail is exact in the fused kernel (log space); the
 *     composed float32 path is inaccurate once the student's off-support mass is below ~1e-7, and at logits of
 *     +-1e4 (log-probs round to ~1e-3 on both sides there).
 *   - 'none' is not a divergence: at pS = pT its loss is 0 but the end KLs' gradients are not (they push mass
 *     onto the support), and the loss can go negative (methods.md 10.3: do not clamp).
 *   - Metrics are token-means over masked tokens at the loss temperature; `topk/teacher_mass` is omitted for a
 *     dump at temperature != 1 (not computable).
 */
import * as tf from '@tensorflow/tfjs';
import { jsd } from '../probs/divergences';
import { entropy } from '../probs/entropy';
import { gatherColumns } from '../probs/gather';
import { logSoftmax } from '../probs/logSoftmax';
import { normaliseOnSupport, SUPPORT_NORMS, teacherTopK, type SupportNorm } from '../probs/topk';
import { teacherSupport } from './batch';
import { fusedLoss, type RowKernel } from './fused';
import { jsdSupportRows, teacherColumns, teacherSupportFromLogits, type DivergenceRows } from './kernels/divergenceRows';
import { maskedMean } from './pg';
import { registerObjective } from './registry';
import { isTeacherFull, reductionWeights, type DistillBatch, type ObjectiveOutput, type Teacher } from './types';

export interface GkdOptions {
  /** JSD interpolation in [0, 1]: 0 = forward KL(T||S), 1 = reverse KL(S||T), between = mixture JSD. Default 0.5 (TRL). */
  beta: number;
  /** Loss temperature > 0: divides student and teacher logits before the log-softmax (TRL). Default 1. */
  temperature: number;
  /** 0 = full vocabulary (needs the teacher's full logits); K in [1, V] = the teacher's top-K support. Default 0. */
  topK: number;
  /** Normalisation on the support: 'none' | 'both' | 'tailBucket'; ignored when topK = 0. Default 'both'. */
  supportNorm: SupportNorm;
  /** Fused kernel (SIMD full vocabulary, JS on a support) (true) or the composed tfjs-op reference (false). Default true. */
  fused: boolean;
}

export const GKD_DEFAULTS: GkdOptions = { beta: 0.5, temperature: 1, topK: 0, supportNorm: 'both', fused: true };

function checkOptions(o: GkdOptions, vocab: number, teacher: Teacher): void {
  if (typeof o.beta !== 'number' || !(o.beta >= 0 && o.beta <= 1)) throw new Error(`gkd: option beta must be a number in [0, 1], got ${String(o.beta)}`);
  if (typeof o.temperature !== 'number' || !Number.isFinite(o.temperature) || !(o.temperature > 0)) {
    throw new Error(`gkd: option temperature must be a finite number > 0, got ${String(o.temperature)}`);
  }
  if (!Number.isInteger(o.topK) || o.topK < 0 || o.topK > vocab) {
    throw new Error(`gkd: option topK must be an integer in [0, ${vocab}] (0 = full vocabulary, else the support width in [1, V]), got ${String(o.topK)}`);
  }
  if (!SUPPORT_NORMS.includes(o.supportNorm)) throw new Error(`gkd: option supportNorm must be one of ${SUPPORT_NORMS.join(', ')}, got '${String(o.supportNorm)}'`);
  if (typeof o.fused !== 'boolean') throw new Error(`gkd: option fused must be a boolean, got ${String(o.fused)}`);
  if (isTeacherFull(teacher)) return;
  if (o.topK === 0) {
    throw new Error(
      `gkd: topK = 0 (full vocabulary) needs the teacher's full logits (batch.teacher.logits_NV [N, V]); with a top-K teacher set option topK to 1..${teacher.k}`,
    );
  }
  if (o.topK > teacher.k) throw new Error(`gkd: option topK = ${o.topK} exceeds the top-K teacher's width k = ${teacher.k}`);
  if (o.temperature !== 1 && o.supportNorm !== 'both') {
    throw new Error(
      `gkd: a top-K teacher holds log-probs at temperature 1, so temperature = ${o.temperature} works only with supportNorm 'both' (got '${o.supportNorm}'); pass full teacher logits for 'none' or 'tailBucket'`,
    );
  }
}

/**
 * The teacher's columns on its top-K support at the loss temperature, normalised by `norm` (float64, detached), and
 * the teacher's mass on the support where it is computable. Full logits, fused: selected and formed in float64 from
 * the logits in place (exact tail). Full logits, composed (no kernel code): a tfjs log-softmax at tau, its plain-JS
 * top-K and the tail as a tfjs logsumexp off the support. Dump: its log-probs / tau.
 */
function teacherOnSupport(batch: DistillBatch, teacher: Teacher, k: number, tau: number, norm: SupportNorm, fused: boolean) {
  const [rows, vocab] = batch.studentLogits_NV.shape;
  if (isTeacherFull(teacher) && !fused) {
    const logpT_NV = logSoftmax(teacher.logits_NV, tau);
    try {
      const s = teacherTopK(logpT_NV, k);
      let tail_N: Float32Array | undefined;
      if (norm === 'tailBucket' && k < vocab) {
        // the off-support log-mass, logsumexp of logpT with the support masked to -Infinity (tfjs ops): 1 - sum_S pT
        // would cancel to 0 where the support holds nearly all the mass
        const bias = new Float32Array(rows * vocab);
        for (let i = 0; i < rows * k; i++) bias[Math.floor(i / k) * vocab + s.ids_NK[i]] = -Infinity;
        tail_N = tf.tidy(() => tf.logSumExp(tf.add(logpT_NV, tf.tensor2d(bias, [rows, vocab])), 1).dataSync() as Float32Array);
      }
      return { ids_NK: s.ids_NK, y_NC: teacherColumns(s.values_NK, rows, k, vocab, norm, tail_N), logp_NK: s.values_NK as ArrayLike<number> | null };
    } finally {
      logpT_NV.dispose();
    }
  }
  if (isTeacherFull(teacher)) {
    const s = teacherSupportFromLogits(teacher.logits_NV, k, tau, norm === 'tailBucket');
    return { ids_NK: s.ids_NK, y_NC: teacherColumns(s.logp_NK, rows, k, vocab, norm, s.tail_N ?? undefined), logp_NK: s.logp_NK as ArrayLike<number> | null };
  }
  const s = teacherSupport(batch, k); // sorted, temperature 1
  if (tau === 1) return { ids_NK: s.ids_NK, y_NC: teacherColumns(s.values_NK, rows, k, vocab, norm), logp_NK: s.values_NK as ArrayLike<number> | null };
  // temperature != 1 (norm 'both' only): logpT / tau renormalised on the support is exact; the mass is unknown
  const scaled = Float64Array.from(s.values_NK, (x) => x / tau);
  return { ids_NK: s.ids_NK, y_NC: teacherColumns(scaled, rows, k, vocab, norm), logp_NK: null };
}

/** Loss tensor and per-token values from a per-token tensor (composed path): masked tokens read 0. */
function reduceComposed(perToken: tf.Tensor1D, weights_N: Float32Array, mask_N: Float32Array): { loss: tf.Scalar; perToken_N: Float32Array } {
  const perToken_N = Float32Array.from(perToken.dataSync());
  for (let i = 0; i < perToken_N.length; i++) if (mask_N[i] === 0) perToken_N[i] = 0;
  const loss = tf.sum(tf.mul(perToken, tf.tensor1d(weights_N))) as tf.Scalar;
  return { loss, perToken_N };
}

function computeGkd(batch: DistillBatch, o: GkdOptions, weights_N: Float32Array): ObjectiveOutput {
  const z = batch.studentLogits_NV;
  const [rows, vocab] = z.shape;
  const mask_N = batch.mask_N;
  const teacher = batch.teacher!;
  const { beta, temperature: tau, topK: k, supportNorm: norm } = o;
  const metrics: Record<string, number> = {};
  let loss: tf.Scalar;
  let perToken_N: Float32Array;

  if (k === 0) {
    const teacherLogits_NV = (teacher as { logits_NV: tf.Tensor2D }).logits_NV;
    if (o.fused) {
      // the SIMD kernel reads both logit sets in place and writes the weighted gradient (lib/kernels jsdRows)
      let entropy_N = new Float32Array(rows);
      const kernel: RowKernel = (z_NV, r, v, { kernels, arena, grad_NV, w_N }) => {
        const t_NV = arena.load(teacherLogits_NV);
        const loss_N = arena.f32(r);
        const ent_N = arena.f32(r);
        kernels.jsdRows(z_NV, t_NV, w_N, r, v, 1 / tau, beta, loss_N, ent_N, grad_NV); // NV, NV -> N, N, NV
        entropy_N = Float32Array.from(ent_N);
        return Float32Array.from(loss_N);
      };
      ({ loss, perToken_N } = fusedLoss(z, weights_N, kernel, { loadBytes: rows * vocab * 4 }));
      metrics['entropy/student'] = maskedMean(entropy_N, mask_N);
    } else {
      const logpS = logSoftmax(z, tau);
      ({ loss, perToken_N } = reduceComposed(jsd(logSoftmax(teacherLogits_NV, tau), logpS, beta), weights_N, mask_N));
      metrics['entropy/student'] = maskedMean(entropy(logpS).dataSync(), mask_N);
    }
  } else {
    const support = teacherOnSupport(batch, teacher, k, tau, norm, o.fused);
    if (support.logp_NK) {
      const massT_N = new Float32Array(rows);
      for (let n = 0; n < rows; n++) for (let c = 0; c < k; c++) massT_N[n] += Math.exp(support.logp_NK[n * k + c]);
      metrics['topk/teacher_mass'] = maskedMean(massT_N, mask_N);
    }
    const { ids_NK, y_NC } = support;
    if (o.fused) {
      let rowsOut: DivergenceRows | undefined;
      ({ loss, perToken_N } = fusedLoss(z, weights_N, (z_NV, r, v, { grad_NV }) => {
        rowsOut = jsdSupportRows(z_NV, r, v, ids_NK, k, y_NC, norm, beta, tau, weights_N, grad_NV);
        return rowsOut.perToken_N;
      }));
      metrics['topk/student_mass'] = maskedMean(rowsOut!.studentMass_N, mask_N);
      metrics['entropy/student'] = maskedMean(rowsOut!.entropy_N, mask_N);
    } else {
      const logpS = logSoftmax(z, tau);
      const logpS_NK = gatherColumns(logpS, ids_NK, k); // NV -> NK
      let xS: tf.Tensor2D;
      if (norm === 'both') {
        // renormalise the gathered logits / tau: exact in float32 even where the full-vocabulary log-probs are ~-1e4
        xS = normaliseOnSupport(gatherColumns(tau === 1 ? z : (tf.div(z, tau) as tf.Tensor2D), ids_NK, k), 'both');
      } else {
        xS = normaliseOnSupport(logpS_NK, norm);
        // nothing lies outside a full-vocabulary support: drop the empty bucket (as the fused kernel does)
        if (norm === 'tailBucket' && k === vocab) xS = tf.slice(xS, [0, 0], [rows, k]);
      }
      const yT = tf.tensor2d(Float32Array.from(y_NC), xS.shape);
      ({ loss, perToken_N } = reduceComposed(jsd(yT, xS, beta), weights_N, mask_N));
      metrics['topk/student_mass'] = maskedMean(tf.sum(tf.exp(logpS_NK), 1).dataSync(), mask_N);
      metrics['entropy/student'] = maskedMean(entropy(logpS).dataSync(), mask_N);
    }
  }
  metrics['loss/gkd'] = loss.dataSync()[0];
  return { loss, perToken_N, metrics };
}

export const gkd = registerObjective<GkdOptions>({
  name: 'gkd',
  summary: 'GKD: generalised JSD(beta) between teacher and student per token (full vocabulary or teacher top-K)',
  formula: 'l_t = beta KL(pT || M) + (1 - beta) KL(pS || M), M = beta pT + (1 - beta) pS; beta = 0 forward KL, beta = 1 reverse KL',
  source: 'Agarwal et al. 2024 (GKD), arXiv 2306.13649, Eq. 1; TRL generalized_jsd_loss; Liger-Kernel jsd.py gradient',
  // a teacher is always needed; topK = 0 additionally needs its full logits (checked in compute)
  needs: ['teacherTopK'],
  teacherForms: ['full', 'topk'],
  defaults: GKD_DEFAULTS,
  fused: true,
  gradientOf: 'loss',
  compute(batch, options, reduction) {
    const vocab = batch.studentLogits_NV.shape[1];
    checkOptions(options, vocab, batch.teacher!);
    const weights_N = reductionWeights(batch.mask_N, reduction, batch.seqIds_N);
    return computeGkd(batch, options, weights_N);
  },
});
