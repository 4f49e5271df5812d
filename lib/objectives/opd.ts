/**
 * opd: standard on-policy distillation, the teacher's sampled-token log-ratio as a detached advantage.
 *
 *   r_t = log pT(y_t) - log pS(y_t)                     (log pS: the recomputed student, or the sampler's log q)
 *   A_t = sg[r_t]                                        gamma = 0 (default)
 *   A_t = sg[ sum_{k >= t, same sequence} gamma^(k - t) m_k r_k ]   gamma in (0, 1]; gamma = 1 is the
 *         sequence-level reverse-KL (return-to-go) estimator that Revisiting-OPD compares against
 *   l_t = -A_t log pS(y_t)                              importanceRatio = false (default)
 *   l_t = -A_t exp(log pS(y_t) - log q(y_t))            importanceRatio = true (tinker's importance_sampling
 *                                                        loss; the same gradient on-policy, where pS = q)
 *   loss = sum_t w_t l_t,  w from the reduction (token-mean by default; tinker uses 'sum')
 *
 * Sources: Thinking Machines "On-policy distillation" blog and tinker-cookbook `incorporate_kl_penalty`
 * (methods.md section 1, [code]); AOPD Eq. 1-2 (section 2, [2nd]); Revisiting-OPD for gamma = 1 (section 6).
 * The gradient is unbiased for token-level reverse KL(pS || pT) (its expectation over y_t ~ pS is -KL).
 *
 * Arguments: batch.studentLogits_NV [N, V] (differentiable), tokens_N, mask_N, teacher (full logits [N, V] or
 * top-K dump: only log pT(y_t) is read), samplerLogprobs_N [N] (advantageFrom 'sampler' or importanceRatio),
 * seqIds_N [N] (gamma > 0).
 * Deviations: tinker folds kl_penalty_coef into A (here: scale the loss); the discount exponent counts token
 * positions, as tinker's discounted_future_sum does (masked positions carry r = 0).
 *
 * fused (default): the row exponentials in lib/kernels (WebAssembly SIMD, written into the gradient's memory),
 *   then the analytic gradient, rows scaled in place plus the entry at y_t (gamma = 0: a cache-sized block of rows
 *   at a time, studentRowsInBlocks)
 *   d l_t / d z_v = A_t (p_v - 1[v = y_t])   (times rho_t with the importance ratio)   (kernels/pg.ts)
 * fused = false: tfjs ops + autodiff, the reference (a full teacher read by a tfjs log-softmax and gather too).
 */
import * as tf from '@tensorflow/tfjs';
import { tokenLogprobs } from '../probs/gather';
import { assertInRange } from '../probs/validate';
import { teacherSampledLogprobs } from './batch';
import { fusedLoss } from './fused';
import { advantageMetrics, discountedAdvantages, pgTerms, setPgRow, studentRows, studentRowsInBlocks, teacherLogprobs, writeRows, type StudentRows } from './kernels/pg';
import { registerObjective } from './registry';
import { reductionWeights, type DistillBatch, type ObjectiveOutput, type Reduction } from './types';

export interface OpdOptions {
  /** Discount of the future sum of log-ratios, in [0, 1]; 0 = per-token advantage (tinker default), 1 = return-to-go. gamma > 0 needs batch.seqIds_N. Default 0. */
  gamma: number;
  /** Whose log pS(y_t) enters r_t: 'student' = recomputed from the logits, detached (verl); 'sampler' = batch.samplerLogprobs_N (tinker). Default 'student'. */
  advantageFrom: 'student' | 'sampler';
  /** false: l = -A log pS(y); true: l = -A pS(y)/q(y) with q = batch.samplerLogprobs_N (tinker's importance_sampling). Default false. */
  importanceRatio: boolean;
  /** Use the fused kernel (SIMD row softmax + analytic gradient) (true) or the composed tfjs reference (false). Default true. */
  fused: boolean;
}

export const OPD_DEFAULTS: OpdOptions = { gamma: 0, advantageFrom: 'student', importanceRatio: false, fused: true };

/**
 * The composed PG per-token loss [N] (the reference for pgRow): -A log pS(y), or -A exp(log pS(y) - log q)
 * with the importance ratio. lpSy_N is differentiable; A_N and logq_N are data. Masked rows must have A = 0
 * (their log q is replaced by 0 so that a meaningless q there cannot overflow the ratio).
 */
export function pgPerTokenComposed(
  lpSy_N: tf.Tensor1D,
  advantage_N: Float64Array,
  importanceRatio: boolean,
  logq_N: Float32Array | undefined,
  mask_N: Float32Array,
): tf.Tensor1D {
  return tf.tidy(() => {
    const negA = tf.tensor1d(Float32Array.from(advantage_N, (a) => -a));
    if (!importanceRatio) return tf.mul(negA, lpSy_N) as tf.Tensor1D;
    const q = Float32Array.from(logq_N!, (x, i) => (mask_N[i] > 0 ? x : 0));
    return tf.mul(negA, tf.exp(tf.sub(lpSy_N, tf.tensor1d(q)))) as tf.Tensor1D;
  });
}

/** Checks opd's options and the inputs they need; returns nothing, throws naming the option. */
function checkOptions(name: string, batch: DistillBatch, o: OpdOptions): void {
  assertInRange(name, 'option gamma', o.gamma, 0, 1);
  if (o.advantageFrom !== 'student' && o.advantageFrom !== 'sampler') {
    throw new Error(`${name}: option advantageFrom must be 'student' or 'sampler', got '${String(o.advantageFrom)}'`);
  }
  if (typeof o.importanceRatio !== 'boolean') throw new Error(`${name}: option importanceRatio must be a boolean, got ${String(o.importanceRatio)}`);
  if (typeof o.fused !== 'boolean') throw new Error(`${name}: option fused must be a boolean, got ${String(o.fused)}`);
  if ((o.advantageFrom === 'sampler' || o.importanceRatio) && !batch.samplerLogprobs_N) {
    throw new Error(`${name}: advantageFrom 'sampler' and importanceRatio need batch.samplerLogprobs_N ([N] log q(y_t))`);
  }
  if (o.gamma > 0 && !batch.seqIds_N) throw new Error(`${name}: option gamma > 0 needs batch.seqIds_N (the discounted sum runs within a sequence)`);
}

function computeOpd(batch: DistillBatch, o: OpdOptions, reduction: Reduction): ObjectiveOutput {
  checkOptions('opd', batch, o);
  const { tokens_N, mask_N, seqIds_N } = batch;
  const logq_N = batch.samplerLogprobs_N;
  const rows = batch.studentLogits_NV.shape[0];
  // fused: full teacher logits read in place (lib/kernels); composed: a tfjs log-softmax and gather (no kernel code)
  const lpT_N = o.fused ? teacherLogprobs(batch, 0).lpT_N : teacherSampledLogprobs(batch);
  const weights_N = reductionWeights(mask_N, reduction, seqIds_N);
  const lpS_N = new Float64Array(rows); // detached log pS(y_t), for metrics and the advantage
  let advantage_N: Float64Array;
  let loss: tf.Scalar;
  let perToken_N: Float32Array;

  if (o.fused) {
    advantage_N = new Float64Array(rows);
    const out = fusedLoss(batch.studentLogits_NV, weights_N, (z, nRows, nVocab, { kernels, arena, grad_NV, w_N }) => {
      const perTok = new Float32Array(nRows);
      /** Row n's PG loss and gradient row, once its advantage is known (w = 0 rows stay zero: dense coefficient 0). */
      const settleRow = (s: StudentRows, n: number) => {
        if (mask_N[n] === 0) return;
        const logq = o.importanceRatio ? logq_N![n] : 0;
        const pg = pgTerms(advantage_N[n], lpS_N[n], logq, o.importanceRatio, 1);
        perTok[n] = pg.loss;
        setPgRow(s, n, tokens_N[n], w_N[n] * pg.c, lpS_N[n]);
      };
      const logRatio = (s: StudentRows, n: number) => {
        lpS_N[n] = z[n * nVocab + tokens_N[n]] - s.lse_N[n];
        return lpT_N[n] - (o.advantageFrom === 'sampler' ? logq_N![n] : lpS_N[n]);
      };
      if (o.gamma === 0) {
        // A_t = r_t depends on its own row only: rows are settled a cache-sized block at a time (kernels/pg.ts)
        studentRowsInBlocks(kernels, arena, z, grad_NV, nRows, nVocab, undefined, (s, from, to) => {
          for (let n = from; n < to; n++) {
            if (mask_N[n] === 0) continue;
            advantage_N[n] = logRatio(s, n); // discountedAdvantages at gamma = 0: r on masked tokens, 0 elsewhere
            settleRow(s, n);
          }
        }); // NV -> NV: e = exp(z - max) in the gradient, then the gradient in place, block by block
        return perTok;
      }
      const s = studentRows(kernels, arena, z, grad_NV, nRows, nVocab); // NV -> NV (e = exp(z - max) in the gradient)
      const r = new Float64Array(nRows);
      for (let n = 0; n < nRows; n++) if (mask_N[n] !== 0) r[n] = logRatio(s, n);
      advantage_N.set(discountedAdvantages(r, mask_N, o.gamma, seqIds_N));
      for (let n = 0; n < nRows; n++) settleRow(s, n);
      writeRows(s); // NV -> NV: the gradient, in place
      return perTok;
    });
    loss = out.loss;
    perToken_N = out.perToken_N;
  } else {
    const logpS_NV = tf.logSoftmax(batch.studentLogits_NV) as tf.Tensor2D;
    const lpSy_N = tokenLogprobs(logpS_NV, tokens_N); // [N], differentiable
    lpS_N.set(lpSy_N.dataSync());
    const r = new Float64Array(rows);
    for (let n = 0; n < rows; n++) r[n] = lpT_N[n] - (o.advantageFrom === 'sampler' ? logq_N![n] : lpS_N[n]);
    advantage_N = discountedAdvantages(r, mask_N, o.gamma, seqIds_N);
    const perTok = pgPerTokenComposed(lpSy_N, advantage_N, o.importanceRatio, logq_N, mask_N);
    loss = tf.sum(tf.mul(tf.tensor1d(weights_N), perTok)) as tf.Scalar;
    perToken_N = perTok.dataSync().slice() as Float32Array;
    for (let n = 0; n < rows; n++) if (mask_N[n] === 0) perToken_N[n] = 0;
  }

  const lpAdv_N = o.advantageFrom === 'sampler' ? logq_N! : lpS_N;
  const metrics = advantageMetrics(advantage_N, lpAdv_N, lpT_N, mask_N);
  let pg = 0;
  for (let n = 0; n < rows; n++) pg += weights_N[n] * perToken_N[n];
  metrics['loss/pg'] = pg;
  if (o.importanceRatio) {
    let count = 0, sum = 0, max = 0;
    for (let n = 0; n < rows; n++) {
      if (mask_N[n] === 0) continue;
      const rho = Math.exp(lpS_N[n] - logq_N![n]);
      count++;
      sum += rho;
      if (rho > max) max = rho;
    }
    metrics['is/ratio_mean'] = count > 0 ? sum / count : 0;
    metrics['is/ratio_max'] = max;
  }
  return { loss, perToken_N, metrics };
}

export const opd = registerObjective<OpdOptions>({
  name: 'opd',
  summary: 'On-policy distillation: PG with the detached per-token log-ratio log pT(y) - log pS(y) as advantage',
  formula: 'A_t = sg[sum_{k>=t} gamma^(k-t) (log pT(y_k) - log pS(y_k))]; l_t = -A_t log pS(y_t) (or -A_t pS(y_t)/q(y_t))',
  source: 'Thinking Machines OPD blog / tinker-cookbook incorporate_kl_penalty (methods.md section 1); AOPD Eq. 1-2',
  needs: ['teacherSampled'],
  teacherForms: ['full', 'topk'],
  defaults: OPD_DEFAULTS,
  fused: true,
  gradientOf: 'surrogate',
  compute: computeOpd,
});
