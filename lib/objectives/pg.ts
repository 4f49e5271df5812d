/**
 * Policy-gradient loss on the sampled token with a detached per-token advantage (shared by gopd, opdplus, scope):
 *
 *   l_n    = -sg[A_n] * log pS(y_n)                 (0 where m_n = 0)
 *   loss   = sum_n w_n l_n                          w_N = reductionWeights(mask_N, reduction, seqIds_N)
 *   dl_n/dz_nv = -A_n (1[v = y_n] - pS_n(v))        (softmax score; the only gradient path)
 *
 * The advantage A_N is a plain JS array, so it is detached by construction: it never enters the autodiff tape.
 * On-policy (sampler = student) this is the REINFORCE estimator of -E_y[A(y)] with A held fixed (methods.md
 * sections 0 and 1); no importance ratio, clipping or baseline is applied here.
 *
 * Shapes: studentLogits_NV [N, V] (differentiable), tokens_N / adv_N / weights_N / mask_N [N].
 */
import * as tf from '@tensorflow/tfjs';
import { tokenLogprobs } from '../probs/gather';

/** log pS(y_n) as a differentiable tensor [N] plus its detached values (for advantages and metrics). */
export function studentSampledLogprobs(studentLogits_NV: tf.Tensor2D, tokens_N: Int32Array): { logpS_N: tf.Tensor1D; values_N: Float32Array } {
  const logpS_N = tf.tidy(() => tokenLogprobs(tf.logSoftmax(studentLogits_NV) as tf.Tensor2D, tokens_N)); // NV -> N
  return { logpS_N, values_N: logpS_N.dataSync() as Float32Array };
}

/**
 * loss = sum_n w_n * (-A_n) * log pS(y_n) and the per-token l_n = -A_n log pS(y_n) (0 where masked).
 * Masked tokens get coefficient exactly 0 even when A_n is not finite there, so an all-zero mask gives loss 0
 * and gradient 0.
 */
export function pgLoss(
  logpS_N: tf.Tensor1D,
  logpSValues_N: ArrayLike<number>,
  adv_N: ArrayLike<number>,
  weights_N: Float32Array,
  mask_N: Float32Array,
): { loss: tf.Scalar; perToken_N: Float32Array } {
  const n = mask_N.length;
  const coef_N = new Float32Array(n);
  const perToken_N = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (mask_N[i] === 0) continue;
    perToken_N[i] = -adv_N[i] * logpSValues_N[i];
    if (weights_N[i] !== 0) coef_N[i] = -weights_N[i] * adv_N[i];
  }
  const loss = tf.tidy(() => tf.sum(tf.mul(tf.tensor1d(coef_N), logpS_N)) as tf.Scalar);
  return { loss, perToken_N };
}

/** Mean of values over masked tokens (0 when nothing is masked in). */
export function maskedMean(values_N: ArrayLike<number>, mask_N: Float32Array): number {
  let s = 0;
  let c = 0;
  for (let i = 0; i < mask_N.length; i++) {
    if (mask_N[i] === 0) continue;
    s += values_N[i];
    c++;
  }
  return c > 0 ? s / c : 0;
}
